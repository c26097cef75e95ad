//! The replica watch: whether the read pool's server is up, how far behind
//! it is, and so where each read outside a transaction goes.
//!
//! A monitor task probes the replica (and the primary's WAL position) every
//! `poll_interval`; reads consult the last probe, which costs them nothing.
//! A read that finds the replica unreachable marks it down at once and, with
//! fallback on, runs on the primary instead. A standby that leaves
//! recovery (promoted) is marked down for good: it no longer follows the
//! primary.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::types::PgLsn;

use crate::config::{duration, MAX_DURATION};
use crate::connection::ConnectionPool;
use crate::error::Result;

/// A position in the primary's write-ahead log, returned by writes that ask
/// for it ([`crate::Db::write_with_token`], [`crate::Tx::commit_with_token`]).
/// A read made with [`crate::Db::after`] that carries it is served by the
/// replica only once the replica has replayed that far, else by the primary:
/// it always sees the write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConsistencyToken(pub(crate) u64);

impl ConsistencyToken {
    /// The later of two tokens.
    pub fn max(self, other: ConsistencyToken) -> ConsistencyToken {
        ConsistencyToken(self.0.max(other.0))
    }
}

impl std::fmt::Display for ConsistencyToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", PgLsn::from(self.0))
    }
}

/// How reads treat the replica. Used only when a read DSN is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaConfig {
    /// Serve reads from the primary while the replica is unreachable
    /// (default `true`). Off, such reads fail with `Unavailable`.
    pub fallback: bool,
    /// Serve reads from the primary while the replica is further behind
    /// than this (default: no limit; at most [`crate::MAX_DURATION`]).
    pub max_lag: Option<Duration>,
    /// How often the replica is probed (default 1 s; positive, at most
    /// [`crate::MAX_DURATION`]).
    pub poll_interval: Duration,
}

impl ReplicaConfig {
    /// Check every value: a [`crate::ErrorKind::Config`] error naming the
    /// first one out of bounds. `open` checks it before connecting.
    pub fn validate(&self) -> Result<()> {
        let owner = "replica: ";
        duration(
            owner,
            "poll_interval",
            Some(self.poll_interval),
            Duration::ZERO,
            false,
            MAX_DURATION,
        )?;
        if let Some(max_lag) = self.max_lag {
            duration(
                owner,
                "max_lag",
                Some(max_lag),
                Duration::ZERO,
                true,
                MAX_DURATION,
            )?;
        }
        Ok(())
    }
}

impl Default for ReplicaConfig {
    fn default() -> ReplicaConfig {
        ReplicaConfig {
            fallback: true,
            max_lag: None,
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// The replica as last seen ([`crate::Stats::replica`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaStats {
    /// The last probe reached it and it was replaying.
    pub up: bool,
    /// How far its replay is behind: zero when it has replayed all it has
    /// received, else the time since the last transaction it replayed.
    pub lag: Duration,
    /// Reads outside transactions served by the primary instead: replica
    /// down, too far behind, or not yet at a read's consistency token.
    pub primary_reads: u64,
}

/// Where one read goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Replica,
    Primary,
}

/// Shared between the monitor, the read pool's tasks and `stats()`.
#[derive(Debug)]
pub(crate) struct ReplicaWatch {
    config: ReplicaConfig,
    up: AtomicBool,
    replayed: AtomicU64,
    lag_ms: AtomicU64,
    primary_reads: AtomicU64,
    /// A probe has found the server in recovery: it is a standby, and
    /// leaving recovery later means it was promoted.
    standby: AtomicBool,
}

impl ReplicaWatch {
    pub(crate) fn new(config: ReplicaConfig) -> ReplicaWatch {
        ReplicaWatch {
            config,
            // Open has just connected to it.
            up: AtomicBool::new(true),
            replayed: AtomicU64::new(0),
            lag_ms: AtomicU64::new(0),
            primary_reads: AtomicU64::new(0),
            standby: AtomicBool::new(false),
        }
    }

    /// Where a read that must see `after` goes now.
    pub(crate) fn route(&self, after: Option<ConsistencyToken>) -> Route {
        let down = !self.up.load(Ordering::Relaxed) && self.config.fallback;
        let lagging = self
            .config
            .max_lag
            .is_some_and(|max| Duration::from_millis(self.lag_ms.load(Ordering::Relaxed)) > max);
        let behind = after.is_some_and(|t| t.0 > self.replayed.load(Ordering::Relaxed));
        if down || lagging || behind {
            self.primary_reads.fetch_add(1, Ordering::Relaxed);
            Route::Primary
        } else {
            Route::Replica
        }
    }

    /// Whether a read the replica could not serve may run on the primary.
    pub(crate) fn falls_back(&self) -> bool {
        self.config.fallback
    }

    /// Record that the replica was found unreachable.
    pub(crate) fn mark_down(&self) {
        self.down("replica unreachable");
    }

    /// Record that the replica cannot serve reads, saying why.
    fn down(&self, why: &str) {
        if self.up.swap(false, Ordering::Relaxed) {
            tracing::warn!(target: "pgactor.replica", "{why}; reads fall back to the primary");
        }
    }

    fn mark_up(&self, replayed: u64, lag: Duration) {
        self.replayed.store(replayed, Ordering::Relaxed);
        self.lag_ms.store(lag.as_millis() as u64, Ordering::Relaxed);
        if !self.up.swap(true, Ordering::Relaxed) {
            tracing::info!(target: "pgactor.replica", "replica reachable again; reads go back to it");
        }
    }

    pub(crate) fn stats(&self) -> ReplicaStats {
        ReplicaStats {
            up: self.up.load(Ordering::Relaxed),
            lag: Duration::from_millis(self.lag_ms.load(Ordering::Relaxed)),
            primary_reads: self.primary_reads.load(Ordering::Relaxed),
        }
    }

    /// Probe the replica every `poll_interval` until its pool is closed.
    pub(crate) fn spawn_monitor(self: Arc<ReplicaWatch>, replica: ConnectionPool) {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(self.config.poll_interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if replica.pool.is_closed() {
                    break;
                }
                let probe = tokio::time::timeout(
                    self.config.poll_interval.max(Duration::from_secs(1)),
                    probe(&replica),
                );
                match probe.await {
                    Ok(Ok(Probe {
                        in_recovery: false, ..
                    })) if self.standby.load(Ordering::Relaxed) => {
                        self.down("the replica was promoted: it no longer follows the primary")
                    }
                    Ok(Ok(found)) => {
                        self.standby.fetch_or(found.in_recovery, Ordering::Relaxed);
                        self.mark_up(found.replayed, found.lag);
                    }
                    Ok(Err(_)) | Err(_) => self.mark_down(),
                }
            }
        });
    }
}

/// What one probe of the read server found.
struct Probe {
    /// `pg_is_in_recovery()`: a standby. A read DSN may also name a server
    /// that never was one (a logical replica, another database).
    in_recovery: bool,
    /// Its replay position; 0 on a server that never was in recovery.
    replayed: u64,
    lag: Duration,
}

/// Probe the read server: whether it is in recovery, its replay position
/// and its lag.
async fn probe(replica: &ConnectionPool) -> Result<Probe> {
    let client = replica.get().await?;
    let row = client
        .query_typed_one(
            "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn(), \
             CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0 \
             ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) * 1000, 0) END::float8",
            &[],
        )
        .await
        .map_err(|e| crate::Error::from_statement(e, false))?;
    let replayed: Option<PgLsn> = row.get(1);
    let lag_ms: f64 = row.get(2);
    Ok(Probe {
        in_recovery: row.get(0),
        replayed: replayed.map_or(0, u64::from),
        lag: Duration::from_millis(lag_ms.max(0.0) as u64),
    })
}
