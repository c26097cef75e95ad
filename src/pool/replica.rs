//! The replica watch: whether one replica's server is up, how far behind
//! it is, and so whether reads outside transactions may go to it (the
//! choice among replicas is in `super::replicas`). Each replica has a
//! watch of its own.
//!
//! A monitor task probes the replica and the primary every
//! `poll_interval`, each on a connection of its own (never a pool's: a
//! saturated pool is not a failed replica). Reads consult the last probe,
//! which costs them nothing. A read that cannot reach the replica marks it
//! down at once and, with fallback on, runs on another replica or the
//! primary instead. A
//! standby that leaves recovery (promoted) is marked down for good: it no
//! longer follows the primary.
//!
//! The lag is measured against the primary, never from the replica alone:
//! a standby cut off from its primary has replayed all it received, so its
//! own positions freeze together and read "caught up". Each probe reads
//! the primary's flushed WAL position and the replica's replay position;
//! the lag is the time since the primary had flushed WAL the replica has
//! not replayed, on this process's monotonic clock (the servers' clocks
//! are never compared). An idle primary writes no WAL, and a replica that
//! has replayed all of it has no lag.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use postgres_openssl::MakeTlsConnector;
use tokio::time::Instant;
use tokio_postgres::types::PgLsn;
use tokio_postgres::Client;

use super::connections::ConnectionPool;
use crate::config::{duration, MAX_DURATION};
use crate::error::{describe, Error, Result};
use crate::messages::ConsistencyToken;

/// How reads treat the replica. Used only when a read DSN is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaConfig {
    /// Serve reads from the primary while the replica is unreachable
    /// (default `true`). Off, such reads fail with `Unavailable`.
    pub fallback: bool,
    /// Serve reads from the primary while the replica is further behind
    /// than this (default: no limit; at most [`crate::MAX_DURATION`]). The
    /// lag is measured to within one `poll_interval`, so keep this above it.
    pub max_lag: Option<Duration>,
    /// How often the replica is probed (default 1 s; positive, at most
    /// [`crate::MAX_DURATION`]).
    pub poll_interval: Duration,
    /// The most reads outside transactions that run on the primary at once
    /// instead of the replica (replica down, too far behind, or behind a
    /// read's consistency token), so that they cannot take every write
    /// connection (default: half the write pool's `max_open`, at least 1).
    /// A read past it waits for a place at most the write pool's
    /// `wait_timeout`, then fails with `Unavailable`. `Some(0)` is refused
    /// at open ([`crate::ErrorKind::Config`]).
    pub max_primary_reads: Option<usize>,
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
        if self.max_primary_reads == Some(0) {
            return Err(Error::config(
                "replica: max_primary_reads must be at least 1 (None: half the write pool)",
            ));
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
            max_primary_reads: None,
        }
    }
}

/// How one replica stands for a read outside a transaction
/// ([`ReplicaWatch::standing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    /// Up, within `max_lag`, and known to have replayed what the read needs.
    Ready,
    /// Up and within `max_lag`, but not known to have replayed this WAL
    /// position: it may serve the read if it answers, asked on the read's
    /// own connection, that it has.
    Ask(u64),
    /// Unreachable, promoted, or its probes stopped: it serves reads only
    /// with fallback off and no other replica up.
    Down,
    /// Past `max_lag`, or behind the read and not to be asked: not used.
    Out,
}

/// The monitor's bound on one statement of a probe, at least this long.
const MIN_PROBE_LIMIT: Duration = Duration::from_secs(1);

/// Primary positions kept while the replica has not replayed them (a
/// frozen replica would otherwise make the list grow forever); past it
/// the newest is overwritten, which only makes the lag read lower later.
const MAX_SAMPLES: usize = 64;

/// How often the monitor, between probes, checks whether the adapter has closed.
const CLOSE_CHECK: Duration = Duration::from_millis(100);

/// `behind_since` when the replica had replayed everything at the last probe.
const CAUGHT_UP: u64 = u64::MAX;

/// Shared between the monitor, the read pool's tasks and `stats()`.
#[derive(Debug)]
pub(crate) struct ReplicaWatch {
    config: ReplicaConfig,
    /// `host:port`, naming the replica in logs and statistics.
    pub(crate) name: Arc<str>,
    /// The origin of the millisecond instants below.
    base: Instant,
    up: AtomicBool,
    replayed: AtomicU64,
    /// When (ms since `base`) the primary had flushed WAL the replica has
    /// not replayed yet; [`CAUGHT_UP`] when there is none.
    behind_since: AtomicU64,
    /// When (ms since `base`) a probe last reached the replica.
    probed: AtomicU64,
    /// A successful probe older than this means the monitor is stuck or
    /// gone: the replica then reads down.
    stale_after: Duration,
    /// A probe has found the server in recovery: it is a standby, and
    /// leaving recovery later means it was promoted.
    standby: AtomicBool,
    /// A probe found the standby out of recovery: it no longer follows the
    /// primary, and stays down while it is.
    promoted: AtomicBool,
    /// The primary's position after the schema changes this adapter made
    /// (AutoMigrate): every read goes to the primary until the replica has
    /// replayed that far, so a table just created is never looked for
    /// where it does not exist yet. 0: none. A probe that finds the server
    /// is no standby clears it (its positions say nothing of the primary's).
    schema_floor: AtomicU64,
}

impl ReplicaWatch {
    /// The watch of the replica `name`, whose probe connections open
    /// within `connect_timeout`.
    pub(crate) fn new(
        config: ReplicaConfig,
        name: Arc<str>,
        connect_timeout: Duration,
    ) -> ReplicaWatch {
        ReplicaWatch {
            config,
            name,
            base: Instant::now(),
            // Open has just connected to it.
            up: AtomicBool::new(true),
            replayed: AtomicU64::new(0),
            behind_since: AtomicU64::new(CAUGHT_UP),
            probed: AtomicU64::new(0),
            stale_after: connect_timeout
                .saturating_add(probe_limit(&config))
                .saturating_add(config.poll_interval.saturating_mul(2)),
            standby: AtomicBool::new(false),
            promoted: AtomicBool::new(false),
            schema_floor: AtomicU64::new(0),
        }
    }

    /// Milliseconds since `base`, now.
    fn now(&self) -> u64 {
        self.base.elapsed().as_millis() as u64
    }

    /// Whether the last successful probe is too old to be believed at `now`.
    fn stale(&self, now: u64) -> bool {
        let age = now.saturating_sub(self.probed.load(Ordering::Relaxed));
        Duration::from_millis(age) > self.stale_after
    }

    /// The lag at `now`: it keeps growing between probes while the
    /// replica is behind.
    fn lag(&self, now: u64) -> Duration {
        match self.behind_since.load(Ordering::Relaxed) {
            CAUGHT_UP => Duration::ZERO,
            since => Duration::from_millis(now.saturating_sub(since)),
        }
    }

    /// How the replica stands now for a read that must see the primary's
    /// WAL up to `token` (0: any position) and the schema changes this
    /// adapter made. `ask`: a replica not known to have replayed that far
    /// may be asked ([`Standing::Ask`]) rather than left out. `rank_down`:
    /// whether being down matters (fallback on, or other replicas to
    /// prefer); when it does not, neither it nor the clock is read for a
    /// plain read without `max_lag`.
    pub(crate) fn standing(&self, token: u64, ask: bool, rank_down: bool) -> Standing {
        let need = token.max(self.schema_floor.load(Ordering::Relaxed));
        let behind = need > self.replayed.load(Ordering::Relaxed);
        let check = behind || rank_down || self.config.max_lag.is_some();
        let now = if check { self.now() } else { 0 };
        let down = rank_down && (!self.up.load(Ordering::Relaxed) || self.stale(now));
        if self.config.max_lag.is_some_and(|max| self.lag(now) > max) || (behind && (down || !ask))
        {
            Standing::Out
        } else if down {
            Standing::Down
        } else if behind {
            Standing::Ask(need)
        } else {
            Standing::Ready
        }
    }

    /// The replica answered that it has replayed up to `position`.
    pub(crate) fn replayed_to(&self, position: u64) {
        self.replayed.fetch_max(position, Ordering::Relaxed);
    }

    /// The schema changed on the primary up to `token` and the replica had
    /// not replayed it within [`SCHEMA_REPLAY_WAIT`]: reads go to the
    /// primary until it has.
    pub(crate) fn schema_changed(&self, token: ConsistencyToken) {
        self.schema_floor.fetch_max(token.0, Ordering::Relaxed);
    }

    /// Record that the replica was found unreachable.
    pub(crate) fn mark_down(&self) {
        self.down("replica unreachable");
    }

    /// Record that the replica cannot serve reads, saying why.
    fn down(&self, why: &str) {
        if self.up.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                target: "pgactor.replica",
                replica = %self.name,
                "{why}; its reads go to the other replicas or fall back to the primary"
            );
        }
    }

    fn mark_up(&self) {
        if !self.up.swap(true, Ordering::Relaxed) {
            tracing::info!(
                target: "pgactor.replica",
                replica = %self.name,
                "replica reachable again; reads go back to it"
            );
        }
    }

    /// What the last probes found: whether it is up, whether it was
    /// promoted, its lag and the age of the last probe that reached it.
    pub(crate) fn seen(&self) -> Seen {
        let now = self.now();
        Seen {
            up: self.up.load(Ordering::Relaxed) && !self.stale(now),
            promoted: self.promoted.load(Ordering::Relaxed),
            lag: self.lag(now),
            probe_age: Duration::from_millis(
                now.saturating_sub(self.probed.load(Ordering::Relaxed)),
            ),
        }
    }

    /// Probe every `poll_interval` until the replica's pool is closed,
    /// on connections of its own to the replica and the primary.
    pub(crate) fn spawn_monitor(
        self: Arc<ReplicaWatch>,
        replica_pool: ConnectionPool,
        replica: ProbeLink,
        primary: ProbeLink,
    ) {
        let watching = Watching {
            watch: self,
            pool: replica_pool,
        };
        tokio::spawn(watching.run(replica, primary));
    }

    /// Take in one probe's findings: `replica` as the replica answered,
    /// `primary` the primary's flushed position and when it was read.
    fn record(
        &self,
        samples: &mut VecDeque<(u64, u64)>,
        replica: Result<(bool, u64)>,
        primary: Option<(u64, u64)>,
    ) {
        let (in_recovery, replayed) = match replica {
            Ok(found) => found,
            Err(_) => return self.mark_down(),
        };
        self.probed.store(self.now(), Ordering::Relaxed);
        if !in_recovery && self.standby.load(Ordering::Relaxed) {
            self.promoted.store(true, Ordering::Relaxed);
            return self.down("the replica was promoted: it no longer follows the primary");
        }
        self.promoted.store(false, Ordering::Relaxed);
        self.standby.fetch_or(in_recovery, Ordering::Relaxed);
        if in_recovery {
            if let Some((at, position)) = primary {
                if samples.back().is_some_and(|&(_, last)| position < last) {
                    // A primary behind the positions kept is another
                    // server (a failover): they say nothing about it.
                    samples.clear();
                }
                if samples.back().is_none_or(|&(_, last)| position > last) {
                    if samples.len() == MAX_SAMPLES {
                        samples.pop_back();
                    }
                    samples.push_back((at, position));
                }
            }
            while samples.front().is_some_and(|&(_, p)| p <= replayed) {
                samples.pop_front();
            }
        } else {
            // Not a standby (a logical replica, another database): no
            // position of the primary's to compare with.
            samples.clear();
            self.schema_floor.store(0, Ordering::Relaxed);
        }
        let since = samples.front().map_or(CAUGHT_UP, |&(at, _)| at);
        self.behind_since.store(since, Ordering::Relaxed);
        self.replayed.store(replayed, Ordering::Relaxed);
        self.mark_up();
    }
}

/// How long `open` (and `Db::migrate`) waits for the replica to replay
/// the DDL AutoMigrate ran; past it, reads go to the primary until the
/// replica has replayed it ([`ReplicaWatch::schema_changed`]).
pub(crate) const SCHEMA_REPLAY_WAIT: Duration = Duration::from_secs(1);

/// How far the server `client` reaches has replayed the primary's WAL;
/// `None` when it is no standby (nothing to replay). Unnamed, as a probe:
/// the read DSN may be a pooler's.
pub(crate) async fn replay_position(client: &Client) -> Result<Option<u64>> {
    let row = client
        .query_typed_one("SELECT pg_last_wal_replay_lsn()", &[])
        .await
        .map_err(|e| Error::from_statement(e, false))?;
    let lsn: Option<PgLsn> = row.try_get(0).map_err(|e| Error::decode(describe(&e)))?;
    Ok(lsn.map(u64::from))
}

/// Whether the replica `client` reaches has replayed up to `token` within
/// `wait` (polled every 10 ms). A server that is no standby has nothing to
/// replay: yes. An error or the bound: no.
pub(crate) async fn replayed_within(
    client: &Client,
    token: ConsistencyToken,
    wait: Duration,
) -> bool {
    let caught_up = async {
        loop {
            match replay_position(client).await.ok()? {
                None => return Some(()),
                Some(lsn) if lsn >= token.0 => return Some(()),
                Some(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    };
    matches!(tokio::time::timeout(wait, caught_up).await, Ok(Some(())))
}

/// A replica's state as its watch last saw it ([`ReplicaWatch::seen`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seen {
    pub(crate) up: bool,
    pub(crate) promoted: bool,
    pub(crate) lag: Duration,
    pub(crate) probe_age: Duration,
}

/// The bound on each statement of a probe.
fn probe_limit(config: &ReplicaConfig) -> Duration {
    config.poll_interval.max(MIN_PROBE_LIMIT)
}

/// The monitor task's state; dropped when the task ends, however it ends.
struct Watching {
    watch: Arc<ReplicaWatch>,
    pool: ConnectionPool,
}

impl Watching {
    async fn run(self, mut replica: ProbeLink, mut primary: ProbeLink) {
        let watch = &self.watch;
        let limit = probe_limit(&watch.config);
        let mut samples = VecDeque::new();
        let mut primary_seen = true;
        let mut ticks = tokio::time::interval(watch.config.poll_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while self.next_probe(&mut ticks).await {
            let (on_replica, on_primary) = tokio::join!(
                replica.query(
                    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()",
                    limit
                ),
                primary.query("SELECT pg_current_wal_flush_lsn()", limit),
            );
            // Read with try_get: a server that answers other types is a
            // failed probe, never a panic.
            let decoded = |e: tokio_postgres::Error| Error::decode(describe(&e));
            let found = on_replica.and_then(|row| {
                let replayed: Option<PgLsn> = row.try_get(1).map_err(decoded)?;
                Ok((
                    row.try_get(0).map_err(decoded)?,
                    replayed.map_or(0, u64::from),
                ))
            });
            let position = on_primary.and_then(|row| {
                let flushed: PgLsn = row.try_get(0).map_err(decoded)?;
                Ok((watch.now(), u64::from(flushed)))
            });
            if position.is_ok() != primary_seen {
                primary_seen = position.is_ok();
                match &position {
                    Err(e) => tracing::warn!(
                        target: "pgactor.replica",
                        replica = %watch.name,
                        error = %e,
                        "cannot read the primary's WAL position: the replica's lag is measured against the last one read"
                    ),
                    Ok(_) => {
                        tracing::info!(target: "pgactor.replica", replica = %watch.name, "the primary's WAL position is read again")
                    }
                }
            }
            watch.record(&mut samples, found, position.ok());
        }
    }

    /// Wait for the next probe's turn; `false` once the adapter has
    /// closed (seen within [`CLOSE_CHECK`]), so that the monitor's
    /// connections close with the pools.
    async fn next_probe(&self, ticks: &mut tokio::time::Interval) -> bool {
        loop {
            if self.pool.pool.is_closed() {
                return false;
            }
            tokio::select! {
                _ = ticks.tick() => return !self.pool.pool.is_closed(),
                () = tokio::time::sleep(CLOSE_CHECK) => {}
            }
        }
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        if !self.pool.pool.is_closed() {
            // A panic, or the runtime shutting down: nothing probes any more.
            tracing::error!(
                target: "pgactor.replica",
                replica = %self.watch.name,
                "the replica monitor stopped; the replica reads down from now on"
            );
            self.watch.up.store(false, Ordering::Relaxed);
        }
    }
}

/// One probe connection of the monitor's own, opened when needed and
/// closed after any failure.
pub(crate) struct ProbeLink {
    config: tokio_postgres::Config,
    connector: MakeTlsConnector,
    connect_timeout: Duration,
    client: Option<Client>,
}

impl ProbeLink {
    /// A link to the server `config` names, over `connector`.
    pub(crate) fn new(
        config: tokio_postgres::Config,
        connector: MakeTlsConnector,
        connect_timeout: Duration,
    ) -> ProbeLink {
        ProbeLink {
            config,
            connector,
            connect_timeout,
            client: None,
        }
    }

    /// Run `sql` within `limit` (plus `connect_timeout` when it has to
    /// connect first); on any failure the connection is dropped.
    async fn query(&mut self, sql: &str, limit: Duration) -> Result<tokio_postgres::Row> {
        let answer = self.try_query(sql, limit).await;
        if answer.is_err() {
            self.client = None;
        }
        answer
    }

    async fn try_query(&mut self, sql: &str, limit: Duration) -> Result<tokio_postgres::Row> {
        let client = match self.client.take().filter(|c| !c.is_closed()) {
            Some(client) => self.client.insert(client),
            None => {
                let connecting = self.config.connect(self.connector.clone());
                let (client, connection) =
                    match tokio::time::timeout(self.connect_timeout, connecting).await {
                        Ok(Ok(pair)) => pair,
                        Ok(Err(e)) => return Err(Error::unavailable(describe(&e))),
                        Err(_) => return Err(Error::unavailable("connecting timed out")),
                    };
                tokio::spawn(connection);
                self.client.insert(client)
            }
        };
        match tokio::time::timeout(limit, client.query_typed_one(sql, &[])).await {
            Ok(Ok(row)) => Ok(row),
            Ok(Err(e)) => Err(Error::from_statement(e, false)),
            Err(_) => Err(Error::unavailable(format!("no answer within {limit:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch() -> ReplicaWatch {
        let config = ReplicaConfig {
            max_lag: Some(Duration::from_secs(1)),
            ..ReplicaConfig::default()
        };
        ReplicaWatch::new(config, "replica:5432".into(), Duration::from_secs(1))
    }

    /// The watch as if opened `ago` earlier (its instants count from then).
    fn opened_ago(watch: &mut ReplicaWatch, ago: Duration) {
        watch.base = Instant::now()
            .checked_sub(ago)
            .expect("a clock that far back");
    }

    #[test]
    fn a_replica_that_stops_replaying_falls_behind_while_the_primary_writes() {
        let mut w = watch();
        opened_ago(&mut w, Duration::from_secs(10));
        let mut samples = VecDeque::new();
        // Caught up with an idle primary, probe after probe: no lag.
        for at in [1_000, 2_000, 3_000] {
            w.record(&mut samples, Ok((true, 500)), Some((at, 500)));
            assert_eq!(w.lag(at + 500), Duration::ZERO);
        }
        assert_eq!(w.standing(0, false, true), Standing::Ready);
        // The primary moves on; the replica's position stays where it was
        // (its own positions agree with each other: it looks caught up).
        w.record(&mut samples, Ok((true, 500)), Some((4_000, 600)));
        w.record(&mut samples, Ok((true, 500)), Some((5_000, 700)));
        assert_eq!(w.lag(5_000), Duration::from_secs(1));
        assert_eq!(w.lag(6_500), Duration::from_millis(2_500));
        // The clock at routing time, not the last probe's: past max_lag.
        assert!(w.lag(w.now()) > Duration::from_secs(5));
        assert_eq!(w.standing(0, false, true), Standing::Out);
        assert!(w.seen().up, "behind, not down");
        // A primary behind the positions kept (another server after a
        // failover): they are dropped, and only its own position counts.
        let mut kept = samples.clone();
        w.record(&mut kept, Ok((true, 500)), Some((5_500, 550)));
        assert_eq!(w.lag(6_000), Duration::from_millis(500));
        // It replays the first missing position: behind since the second.
        w.record(&mut samples, Ok((true, 600)), Some((6_000, 700)));
        assert_eq!(w.lag(6_000), Duration::from_secs(1));
        w.record(&mut samples, Ok((true, 700)), Some((7_000, 700)));
        assert_eq!(w.lag(7_000), Duration::ZERO);
        assert_eq!(w.standing(0, false, true), Standing::Ready);
    }

    #[test]
    fn the_primary_positions_kept_stay_bounded_and_the_oldest_keeps_the_lag() {
        let w = watch();
        let mut samples = VecDeque::new();
        for i in 1..=1_000_u64 {
            w.record(&mut samples, Ok((true, 1)), Some((i, 1 + i)));
        }
        assert_eq!(samples.len(), MAX_SAMPLES);
        assert_eq!(samples.front(), Some(&(1, 2)));
        assert_eq!(samples.back(), Some(&(1_000, 1_001)));
        // Without a position from the primary, the lag goes on from the last ones.
        w.record(&mut samples, Ok((true, 1_001)), None);
        assert_eq!(w.lag(2_000), Duration::ZERO);
    }

    #[test]
    fn a_server_that_never_was_a_standby_has_no_lag() {
        let w = watch();
        let mut samples = VecDeque::new();
        w.record(&mut samples, Ok((false, 0)), Some((1, 900)));
        assert_eq!(w.lag(10_000), Duration::ZERO);
        assert!(samples.is_empty());
    }

    #[test]
    fn a_watch_whose_probes_stopped_reads_down() {
        let mut w = watch();
        let mut samples = VecDeque::new();
        w.record(&mut samples, Ok((true, 1)), Some((0, 1)));
        assert!(w.seen().up);
        assert_eq!(w.standing(0, false, true), Standing::Ready);
        // No probe since, for longer than the staleness bound.
        let past = w.stale_after + Duration::from_secs(1);
        opened_ago(&mut w, past);
        let stats = w.seen();
        assert!(!stats.up, "{stats:?}");
        assert!(stats.probe_age > w.stale_after, "{stats:?}");
        assert_eq!(w.standing(0, false, true), Standing::Down);
    }

    #[tokio::test]
    async fn a_monitor_that_stops_marks_the_replica_down_and_says_so() {
        let session = Arc::new(crate::config::SessionConfig::default().resolve().unwrap());
        let dsn = crate::wire::Dsn::parse(
            "postgres://app@127.0.0.1:1/db?sslmode=disable",
            crate::config::Role::Read,
        )
        .unwrap();
        let settings = crate::config::PoolConfig::default()
            .resolve(crate::config::Role::Read)
            .unwrap();
        let pool = ConnectionPool::build(
            crate::config::Role::Read,
            &dsn,
            settings,
            session,
            1,
            Default::default(),
        )
        .unwrap();
        let w = Arc::new(watch());
        assert!(w.seen().up);
        // The monitor's task ends while its pool is open (a panic, an abort).
        drop(Watching {
            watch: w.clone(),
            pool: pool.clone(),
        });
        assert!(!w.seen().up);
        assert_eq!(w.standing(0, false, true), Standing::Down);
        // Once the pool is closed, a monitor ending is the normal end.
        let w = Arc::new(watch());
        pool.pool.close();
        drop(Watching {
            watch: w.clone(),
            pool,
        });
        assert!(w.seen().up);
    }
}
