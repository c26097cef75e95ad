//! The replicas reads outside transactions choose from: one pool and one
//! watch per replica, the choice of a replica for each read, and the
//! bounded places for reads that run on the primary instead.
//!
//! A read goes to the replica with the fewest operations in flight among
//! those that can serve it: up, not promoted, within `max_lag`, and known
//! to have replayed what the read needs (its consistency token, the
//! schema changes this adapter made). Ties go round-robin. When no
//! replica is known to have replayed a read's token, the one it would use
//! otherwise is asked, on the read's own connection and in the same round
//! trip, and serves the read only if it has. When none can serve it, the
//! read runs on the primary, within `max_primary_reads`.
//!
//! One replica costs what it cost before there could be several: the
//! choice reads its watch and counts the read, and nothing rotates.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::error::SqlState;

use super::connections::ConnectionPool;
use super::lanes::SharedReads;
use super::replica::{ReplicaConfig, ReplicaWatch, Standing};
use crate::error::{Error, ErrorKind, Result};
use crate::messages::ConsistencyToken;
use crate::stats::{ReplicaServerStats, ReplicaStats};

/// The most replicas one adapter reads from ([`crate::OpenOptions::read_dsns`]):
/// each costs a pool, a watch task and two probe connections.
pub const MAX_REPLICAS: usize = 16;

/// One replica: its pool, its watch, its shared read connections.
pub(crate) struct Replica {
    pub(crate) pool: ConnectionPool,
    pub(crate) watch: Arc<ReplicaWatch>,
    /// With [`crate::OpenOptions::shared_reads`]: the connections reads by
    /// id share on this replica.
    pub(crate) shared: Option<SharedReads>,
    /// Operations running on it now (reads, raw queries, streams).
    in_flight: Arc<AtomicUsize>,
    /// Operations sent to it, since open.
    reads: AtomicU64,
}

impl Replica {
    /// The replica served by `pool`, watched by `watch`.
    pub(crate) fn new(
        pool: ConnectionPool,
        watch: Arc<ReplicaWatch>,
        shared: Option<SharedReads>,
    ) -> Replica {
        Replica {
            pool,
            watch,
            shared,
            in_flight: Arc::default(),
            reads: AtomicU64::new(0),
        }
    }

    fn stats(&self) -> ReplicaServerStats {
        let seen = self.watch.seen();
        ReplicaServerStats {
            name: self.watch.name.to_string(),
            up: seen.up,
            promoted: seen.promoted,
            lag: seen.lag,
            probe_age: seen.probe_age,
            in_flight: self.in_flight.load(Ordering::Relaxed),
            reads: self.reads.load(Ordering::Relaxed),
            pool: self.pool.stats(),
        }
    }
}

/// Counts one operation among its replica's operations in flight until dropped.
pub(crate) struct Reading(Arc<AtomicUsize>);

impl Drop for Reading {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Where one read runs ([`ReplicaSet::place`]).
pub(crate) struct Placed<'a> {
    pub(crate) replica: &'a Replica,
    /// The replica's bit among those a read has tried.
    pub(crate) bit: u32,
    /// The WAL position the replica must answer it has replayed, on the
    /// read's connection, before its answer counts.
    pub(crate) ask: Option<u64>,
    /// Counts the read in flight on the replica.
    pub(crate) reading: Reading,
}

/// One read's way through the replicas: those it found unreachable, and
/// the last such failure.
#[derive(Default)]
pub(crate) struct Tries {
    /// The bits of the replicas tried.
    tried: u32,
    unreachable: Option<Error>,
}

/// Whether a read failed with `err` because its replica cannot be reached,
/// so it may run elsewhere: not a read pool without room (that is no sign
/// of a failed replica), nor a replica that answered by refusing a write
/// (raw SQL on the read pool): that write must not land on the primary
/// instead.
pub(crate) fn replica_unreachable(err: &Error) -> bool {
    err.kind() == ErrorKind::Unavailable
        && !err.is_exhausted()
        && err.sqlstate() != Some(&SqlState::READ_ONLY_SQL_TRANSACTION)
}

/// The replicas of one adapter and the primary their reads fall back to.
pub(crate) struct ReplicaSet {
    /// At least one, at most [`MAX_REPLICAS`], in the order given.
    replicas: Box<[Replica]>,
    /// The write pool, where reads go when no replica can serve them.
    pub(crate) primary: ConnectionPool,
    fallback: bool,
    /// Where the next read starts looking, for ties (several replicas only).
    next: AtomicUsize,
    primary_reads: AtomicU64,
    /// Places for reads that run on the primary instead of a replica.
    spill: Arc<Semaphore>,
    spill_limit: usize,
}

impl ReplicaSet {
    /// `replicas` (1 to [`MAX_REPLICAS`]) read as `config` says, falling
    /// back to `primary`.
    pub(crate) fn new(
        replicas: Vec<Replica>,
        primary: ConnectionPool,
        config: &ReplicaConfig,
    ) -> ReplicaSet {
        debug_assert!((1..=MAX_REPLICAS).contains(&replicas.len()));
        let spill_limit = config
            .max_primary_reads
            .unwrap_or(primary.settings.max_open / 2)
            .max(1);
        ReplicaSet {
            replicas: replicas.into_boxed_slice(),
            primary,
            fallback: config.fallback,
            next: AtomicUsize::new(0),
            primary_reads: AtomicU64::new(0),
            spill: Arc::new(Semaphore::new(spill_limit)),
            spill_limit,
        }
    }

    /// Every replica, in the order given.
    pub(crate) fn replicas(&self) -> &[Replica] {
        &self.replicas
    }

    /// The replica a read that must see `after` runs on now, leaving out
    /// those it `tries`d; `None`: the primary ([`ReplicaSet::instead`]).
    /// `ask`: a replica not known to have replayed `after` may be asked
    /// instead of sending the read to the primary at once.
    pub(crate) fn place(
        &self,
        after: Option<ConsistencyToken>,
        ask: bool,
        tries: &Tries,
    ) -> Option<Placed<'_>> {
        let tried = tries.tried;
        let token = after.map_or(0, |t| t.0);
        let n = self.replicas.len();
        let several = n > 1;
        // With one replica, being down matters only for fallback (as it
        // always has); with several, a down one is left for the others.
        let rank_down = self.fallback || several;
        let start = match several {
            true => self.next.fetch_add(1, Ordering::Relaxed),
            false => 0,
        };
        // (tier, operations in flight, index, position to ask for)
        let mut best: Option<(u8, usize, usize, Option<u64>)> = None;
        for k in 0..n {
            let i = (start + k) % n;
            if tried & (1 << i) != 0 {
                continue;
            }
            let replica = &self.replicas[i];
            let (tier, ask) = match replica.watch.standing(token, ask, rank_down) {
                Standing::Ready => (0, None),
                Standing::Ask(need) => (1, Some(need)),
                Standing::Down if !self.fallback => (2, None),
                Standing::Down | Standing::Out => continue,
            };
            let load = match several {
                true => replica.in_flight.load(Ordering::Relaxed),
                false => 0,
            };
            if best.is_none_or(|(t, l, _, _)| (tier, load) < (t, l)) {
                best = Some((tier, load, i, ask));
            }
        }
        let (_, _, i, ask) = best?;
        let replica = &self.replicas[i];
        replica.in_flight.fetch_add(1, Ordering::Relaxed);
        replica.reads.fetch_add(1, Ordering::Relaxed);
        Some(Placed {
            replica,
            bit: 1 << i,
            ask,
            reading: Reading(replica.in_flight.clone()),
        })
    }

    /// A read on `placed` failed with `err`: when it could not reach the
    /// replica, the replica is marked down and the read may try another
    /// (`Ok`); any other failure is the read's answer.
    pub(crate) fn failed(&self, tries: &mut Tries, placed: &Placed<'_>, err: Error) -> Result<()> {
        if !replica_unreachable(&err) {
            return Err(err);
        }
        placed.replica.watch.mark_down();
        tries.tried |= placed.bit;
        tries.unreachable = Some(err);
        Ok(())
    }

    /// The replica `placed` was asked whether it has replayed a read's
    /// token, and had not (or failed with `err`, marked down when it could
    /// not be reached): the read goes to the primary, as when no replica
    /// was known at the token, whatever the fallback.
    pub(crate) fn not_at_token(&self, tries: &mut Tries, placed: &Placed<'_>, err: Option<Error>) {
        if err.as_ref().is_some_and(replica_unreachable) {
            placed.replica.watch.mark_down();
        }
        tries.unreachable = None;
    }

    /// No replica (left) for a read: a place for it on the primary
    /// ([`ReplicaSet::spill`]), unless the replicas it tried could not be
    /// reached and fallback is off (the last such error).
    pub(crate) async fn instead(&self, tries: Tries) -> Result<OwnedSemaphorePermit> {
        match tries.unreachable.filter(|_| !self.fallback) {
            Some(err) => Err(err),
            None => self.spill().await,
        }
    }

    /// A place for one read on the primary instead of a replica, waiting
    /// at most the write pool's `wait_timeout` for one; counted in
    /// `primary_reads` once taken.
    async fn spill(&self) -> Result<OwnedSemaphorePermit> {
        let wait = self.primary.settings.wait_timeout;
        let acquired = match self.spill.clone().try_acquire_owned() {
            Ok(permit) => Ok(permit),
            Err(_) => match tokio::time::timeout(wait, self.spill.clone().acquire_owned()).await {
                Ok(Ok(permit)) => Ok(permit),
                Ok(Err(_)) | Err(_) => Err(()),
            },
        };
        if acquired.is_ok() {
            self.primary_reads.fetch_add(1, Ordering::Relaxed);
        }
        acquired.map_err(|()| {
            Error::unavailable(format!(
                "{} reads already run on the primary instead of the replicas (max_primary_reads); \
                 no place within {wait:?}",
                self.spill_limit
            ))
            .exhausted()
        })
    }

    /// Each replica as last seen, and their summary.
    pub(crate) fn stats(&self) -> (ReplicaStats, Vec<ReplicaServerStats>) {
        let each: Vec<ReplicaServerStats> = self.replicas.iter().map(Replica::stats).collect();
        let up = each.iter().any(|r| r.up);
        let least = |lags: &mut dyn Iterator<Item = Duration>| lags.min().unwrap_or_default();
        let lag = match up {
            true => least(&mut each.iter().filter(|r| r.up).map(|r| r.lag)),
            false => least(&mut each.iter().map(|r| r.lag)),
        };
        let summary = ReplicaStats {
            up,
            lag,
            primary_reads: self.primary_reads.load(Ordering::Relaxed),
            probe_age: each.iter().map(|r| r.probe_age).min().unwrap_or_default(),
        };
        (summary, each)
    }

    /// Close every replica's pool and shared connections.
    pub(crate) fn close(&self) {
        for replica in self.replicas.iter() {
            if let Some(lanes) = &replica.shared {
                lanes.close();
            }
            replica.pool.pool.close();
        }
    }
}
