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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{PoolConfig, Role, SessionConfig};
    use crate::wire::Dsn;

    /// A pool on an unreachable server: pools are lazy, nothing connects.
    fn pool(role: Role) -> ConnectionPool {
        let session = Arc::new(SessionConfig::default().resolve().unwrap());
        let dsn = Dsn::parse("postgres://app@127.0.0.1:1/db?sslmode=disable", role).unwrap();
        let settings = PoolConfig::default().resolve(role).unwrap();
        ConnectionPool::build(role, &dsn, settings, session, 1, Default::default()).unwrap()
    }

    fn set(replicas: usize, fallback: bool) -> ReplicaSet {
        let config = ReplicaConfig {
            fallback,
            ..ReplicaConfig::default()
        };
        let replicas = (0..replicas)
            .map(|i| {
                let name = format!("r{i}:5432").into();
                let watch = ReplicaWatch::new(config, name, Duration::from_secs(1));
                Replica::new(pool(Role::Read), Arc::new(watch), None)
            })
            .collect();
        ReplicaSet::new(replicas, pool(Role::Write), &config)
    }

    /// The index of the replica a plain read goes to now, if any.
    fn chosen(set: &ReplicaSet, tries: &Tries) -> Option<usize> {
        let placed = set.place(None, true, tries)?;
        Some(placed.bit.trailing_zeros() as usize)
    }

    #[tokio::test]
    async fn idle_replicas_take_reads_in_turn_and_a_busy_one_is_passed_over() {
        let set = set(3, true);
        let turns: Vec<_> = (0..6).map(|_| chosen(&set, &Tries::default())).collect();
        assert_eq!(turns, [0, 1, 2, 0, 1, 2].map(Some));
        // Two operations hold replicas 0 and 1: every read goes to 2.
        let busy = [
            set.place(None, true, &Tries::default()).unwrap(),
            set.place(None, true, &Tries::default()).unwrap(),
        ];
        let held: Vec<u32> = busy.iter().map(|p| p.bit).collect();
        assert_eq!(held, [1, 2]);
        for _ in 0..4 {
            assert_eq!(chosen(&set, &Tries::default()), Some(2));
        }
        let (stats_summary, each) = set.stats();
        assert!(stats_summary.up);
        assert_eq!(
            each.iter().map(|r| r.in_flight).collect::<Vec<_>>(),
            [1, 1, 0]
        );
        drop(busy);
        assert!(set.stats().1.iter().all(|r| r.in_flight == 0));
        assert_eq!(set.stats().1.iter().map(|r| r.reads).sum::<u64>(), 12);
    }

    #[tokio::test]
    async fn a_replica_down_or_tried_is_left_out_and_with_none_left_the_primary_serves() {
        let set = set(2, true);
        set.replicas[0].watch.mark_down();
        for _ in 0..4 {
            assert_eq!(chosen(&set, &Tries::default()), Some(1));
        }
        let tried = Tries {
            tried: 2,
            unreachable: None,
        };
        assert_eq!(chosen(&set, &tried), None, "the primary");
        // Fallback off: a down replica still serves when no other can.
        let strict = self::set(2, false);
        strict.replicas[0].watch.mark_down();
        assert_eq!(chosen(&strict, &Tries::default()), Some(1));
        strict.replicas[1].watch.mark_down();
        assert!(chosen(&strict, &Tries::default()).is_some());
        // And with one replica, as it always has.
        let one = self::set(1, false);
        one.replicas[0].watch.mark_down();
        assert_eq!(chosen(&one, &Tries::default()), Some(0));
    }

    #[tokio::test]
    async fn a_token_no_replica_is_known_at_is_asked_of_one_or_goes_to_the_primary() {
        let set = set(2, true);
        let token = Some(ConsistencyToken(500));
        let asked = set.place(token, true, &Tries::default()).unwrap();
        assert_eq!(asked.ask, Some(500));
        // Streams do not ask: the primary.
        assert!(set.place(token, false, &Tries::default()).is_none());
        // A replica known at the token is preferred to one that must be asked.
        set.replicas[1].watch.replayed_to(600);
        for _ in 0..3 {
            let placed = set.place(token, true, &Tries::default()).unwrap();
            assert_eq!((placed.bit, placed.ask), (2, None));
        }
        // The schema changes this adapter made count as a token.
        set.replicas[1].watch.schema_changed(ConsistencyToken(700));
        assert_eq!(
            set.place(None, false, &Tries::default()).map(|p| p.bit),
            Some(1)
        );
    }

    #[tokio::test]
    async fn reads_past_the_bound_on_the_primary_wait_then_fail_as_exhausted() {
        let config = ReplicaConfig {
            max_primary_reads: Some(1),
            ..ReplicaConfig::default()
        };
        let watch = ReplicaWatch::new(config, "r:1".into(), Duration::from_secs(1));
        let replica = Replica::new(pool(Role::Read), Arc::new(watch), None);
        let mut primary = pool(Role::Write);
        primary.settings.wait_timeout = Duration::from_millis(10);
        let set = ReplicaSet::new(vec![replica], primary, &config);
        let held = set.instead(Tries::default()).await.unwrap();
        let err = set.instead(Tries::default()).await.unwrap_err();
        assert!(err.is_exhausted(), "{err}");
        assert_eq!(set.stats().0.primary_reads, 1);
        drop(held);
        // Fallback off: a read whose replicas were unreachable gets their error.
        let strict = self::set(1, false);
        let unreachable = Tries {
            tried: 1,
            unreachable: Some(Error::unavailable("connection refused")),
        };
        let err = strict.instead(unreachable).await.unwrap_err();
        assert_eq!(err.to_string(), "connection refused");
    }
}
