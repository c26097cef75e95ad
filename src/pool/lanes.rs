//! Shared read connections ([`crate::OpenOptions::shared_reads`]): reads
//! by id outside transactions take turns on a few read-pool connections
//! instead of one connection each, and tokio-postgres pipelines them: their
//! statements go out back to back without waiting for each other's
//! answers. The server then works through one stream per connection
//! instead of a wake-up per statement on many backends.
//!
//! Each shared connection is a [`Lane`], checked out of the read pool for
//! as long as it serves (so the pool's `in_use` counts it). A lane whose
//! state is no longer known (a statement ran past its query timeout) is
//! retired: no new statement goes to it, and once the last one on it has
//! answered its connection is closed, never returned to the pool.
//!
//! A lane waits at most [`LANE_LOCK_TIMEOUT`] for a lock (its session's
//! `lock_timeout` while it serves): a read by id waits only for a table
//! lock (an ALTER, TRUNCATE or LOCK TABLE holding ACCESS EXCLUSIVE), and on
//! a lane every read behind it would wait too. Past it the read runs again
//! on a connection of its own, where it waits as long as the session's
//! `lock_timeout` says. A lane's connection gets the session's
//! `lock_timeout` back before it returns to the pool.
//!
//! A lane that can serve no more gives up its slot before its replacement
//! is checked out, so the read pool always has room for the replacement
//! (a lane's connection goes back once its last read is off it). Reads
//! waiting for a slot to be refilled wait as any checkout does: counted
//! against `max_queued`, and at most the pool's `wait_timeout` in all.
//!
//! A CancelRequest stops whatever its backend runs when it arrives, which
//! on a lane may be another caller's statement. So a timed-out statement
//! is cancelled only when the lane is retired and it is the only one on
//! it; otherwise it runs on until the server's `statement_timeout`, and
//! only its caller stops waiting.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_postgres::types::Type;

use super::conn::{Conn, Object};
use super::connections::ConnectionPool;
use super::deadline::Timer;
use crate::error::{Error, Result};
use crate::wire::{timeout_setting, CANCEL_GRACE};

/// The longest a read on a lane waits for a lock (or the session's
/// `lock_timeout`, when shorter and not disabled) before it moves to a
/// connection of its own: how long one blocked read can hold up the reads
/// behind it on its lane.
pub(crate) const LANE_LOCK_TIMEOUT: Duration = Duration::from_millis(50);

/// Sets the `lock_timeout` of a lane's session.
const SET_LOCK_TIMEOUT: &str = "SELECT set_config('lock_timeout', $1, false)";

/// The lanes of one read pool.
pub(crate) struct SharedReads {
    slots: Vec<Slot>,
    next: AtomicUsize,
    /// `lock_timeout` while a connection serves as a lane, and after.
    lock_timeout: LockTimeouts,
}

/// A lane's `lock_timeout` and the session's, as `set_config` takes them.
#[derive(Clone)]
struct LockTimeouts {
    lane: Arc<str>,
    session: Arc<str>,
}

/// Where one lane lives: read by every ride, refilled by one caller at a
/// time (the others wait for its connection instead of each checking out
/// one of their own).
#[derive(Default)]
struct Slot {
    lane: RwLock<Option<Arc<Lane>>>,
    refill: tokio::sync::Mutex<()>,
}

impl Slot {
    fn board(&self) -> Option<Ride> {
        self.lane
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .and_then(Lane::board)
    }
}

/// Set the `lock_timeout` of `client`'s session to `value`.
async fn set_lock_timeout(client: &Conn, value: &str) -> Result<(), tokio_postgres::Error> {
    client
        .query_typed(SET_LOCK_TIMEOUT, &[(&value, Type::TEXT)])
        .await
        .map(drop)
}

/// `d` as `set_config` takes a timeout, kept to be bound on every ride.
fn millis(d: Duration) -> Arc<str> {
    timeout_setting(d).into()
}

impl SharedReads {
    /// `lanes` shared connections (at least 1), opened on first use, on a
    /// pool whose sessions have `lock_timeout` (zero: disabled).
    pub(crate) fn new(lanes: usize, lock_timeout: Duration) -> SharedReads {
        let lane = match lock_timeout {
            Duration::ZERO => LANE_LOCK_TIMEOUT,
            session => session.min(LANE_LOCK_TIMEOUT),
        };
        SharedReads {
            slots: (0..lanes.max(1)).map(|_| Slot::default()).collect(),
            next: AtomicUsize::new(0),
            lock_timeout: LockTimeouts {
                lane: millis(lane),
                session: millis(lock_timeout),
            },
        }
    }

    /// A lane to run one statement on, the next in turn; its connection is
    /// checked out of `pool` when the slot is empty or its lane can serve
    /// no more. Waiting for a refill (ours or another caller's) counts as
    /// one queued checkout and lasts at most the pool's wait timeout.
    pub(crate) async fn lane(&self, pool: &ConnectionPool) -> Result<Ride> {
        let slot = &self.slots[self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len()];
        if let Some(ride) = slot.board() {
            return Ok(ride);
        }
        let _queued = pool.enqueue()?;
        let wait = pool.settings.wait_timeout;
        let started = std::time::Instant::now();
        let mut timer = Timer::default();
        let Some(_refilling) = timer.within(wait, slot.refill.lock()).await else {
            return Err(pool.wait_timed_out());
        };
        if let Some(ride) = slot.board() {
            // Refilled while we waited.
            return Ok(ride);
        }
        // The old lane leaves its slot first: its connection goes back once
        // its last ride is off, so the replacement can be checked out even
        // when every connection of the pool served as a lane.
        let old = slot.lane.write().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(old) = old {
            old.retire();
        }
        let left = wait.saturating_sub(started.elapsed());
        let conn = pool.take(&mut timer, left).await?;
        // Set through the lane: should this caller stop waiting meanwhile,
        // the lane's drop gives the connection back with the session's
        // lock_timeout again.
        let lane = Arc::new(Lane::new(conn, pool.clone(), self.lock_timeout.clone()));
        let set = set_lock_timeout(lane.client(), &self.lock_timeout.lane);
        let left = wait.saturating_sub(started.elapsed());
        if !matches!(timer.within(left, set).await, Some(Ok(_))) {
            lane.broken.store(true, Ordering::SeqCst);
            return Err(Error::unavailable(format!(
                "{} pool: a new shared connection did not take its lock_timeout",
                pool.role
            )));
        }
        let Some(ride) = lane.board() else {
            return Err(Error::unavailable(format!(
                "{} pool: a new shared connection closed at once",
                pool.role
            )));
        };
        *slot.lane.write().unwrap_or_else(|e| e.into_inner()) = Some(lane);
        Ok(ride)
    }

    /// The lane of `ride` can serve no more: take it out of its slot now,
    /// so that its connection goes back (or is closed) as soon as its last
    /// ride is off, not when its slot is refilled, which may need that
    /// very connection.
    pub(crate) fn evict(&self, ride: Ride) {
        for slot in &self.slots {
            let mut lane = slot.lane.write().unwrap_or_else(|e| e.into_inner());
            if lane.as_ref().is_some_and(|l| Arc::ptr_eq(l, &ride.0)) {
                *lane = None;
                return;
            }
        }
    }

    /// Retire every lane: their connections close once idle.
    pub(crate) fn close(&self) {
        for slot in &self.slots {
            if let Some(lane) = slot.lane.write().unwrap_or_else(|e| e.into_inner()).take() {
                lane.retire();
            }
        }
    }
}

/// One shared connection.
pub(crate) struct Lane {
    conn: Option<Object>,
    pool: ConnectionPool,
    /// What its session's `lock_timeout` goes back to.
    lock_timeout: LockTimeouts,
    /// Statements on it now.
    riders: AtomicUsize,
    /// No new statement may board; closed when the last rider is done.
    retired: AtomicBool,
    /// Its state is unknown: closed, never given back to the pool.
    broken: AtomicBool,
}

impl Lane {
    /// Its connection, while it has one (until dropped).
    fn client(&self) -> &Conn {
        self.conn
            .as_ref()
            .expect("a lane has its connection until dropped")
    }

    fn new(conn: Object, pool: ConnectionPool, lock_timeout: LockTimeouts) -> Lane {
        pool.counters.lane_opened();
        Lane {
            conn: Some(conn),
            pool,
            lock_timeout,
            riders: AtomicUsize::new(0),
            retired: AtomicBool::new(false),
            broken: AtomicBool::new(false),
        }
    }

    /// A place on this lane, unless it is retired, closed or past the
    /// pool's `max_lifetime` (then retired, so a fresh one replaces it).
    fn board(self: &Arc<Lane>) -> Option<Ride> {
        let conn = self.conn.as_ref()?;
        let aged = Object::metrics(conn).age() >= self.pool.settings.max_lifetime;
        if aged || conn.is_closed() {
            self.retire();
            return None;
        }
        // Counted before the retired check, and retire() sets the flag
        // before counting: either we see it retired, or it sees us.
        self.riders.fetch_add(1, Ordering::SeqCst);
        if self.retired.load(Ordering::SeqCst) {
            self.riders.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Ride(self.clone()))
    }

    fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        self.pool.counters.lane_closed();
        let Some(conn) = self.conn.take() else { return };
        let runtime = tokio::runtime::Handle::try_current();
        let (Ok(runtime), false) = (runtime, self.broken.load(Ordering::SeqCst)) else {
            return self.pool.discard(conn);
        };
        // Back to the pool (whose recycling checks it) with the session's
        // lock_timeout again, or closed if that cannot be set.
        let (pool, session) = (self.pool.clone(), self.lock_timeout.session.clone());
        runtime.spawn(async move {
            let reset = set_lock_timeout(&conn, &session);
            match tokio::time::timeout(CANCEL_GRACE, reset).await {
                Ok(Ok(_)) => drop(conn),
                _ => pool.discard(conn),
            }
        });
    }
}

/// One statement's place on a lane; gets off when dropped.
pub(crate) struct Ride(Arc<Lane>);

impl Ride {
    /// The lane's connection.
    pub(crate) fn client(&self) -> &Conn {
        self.0.client()
    }

    /// The statement ran past its deadline: retire the lane, closing its
    /// connection later. Answers whether a CancelRequest may be sent, i.e.
    /// this statement is the only one on the lane and no other can board.
    pub(crate) fn abandon(&self) -> bool {
        self.0.broken.store(true, Ordering::SeqCst);
        self.0.retire();
        self.0.riders.load(Ordering::SeqCst) == 1
    }

    /// The connection failed: retire the lane.
    pub(crate) fn failed(&self) {
        self.0.broken.store(true, Ordering::SeqCst);
        self.0.retire();
    }
}

impl Drop for Ride {
    fn drop(&mut self) {
        self.0.riders.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lane_waits_for_a_lock_at_most_50_ms_or_the_sessions_lock_timeout_when_shorter() {
        let timeouts = |session_ms| {
            let t = SharedReads::new(1, Duration::from_millis(session_ms)).lock_timeout;
            (t.lane.to_string(), t.session.to_string())
        };
        assert_eq!(timeouts(5_000), ("50ms".into(), "5000ms".into()));
        assert_eq!(timeouts(20), ("20ms".into(), "20ms".into()));
        // Disabled in the session: the lane still has its bound.
        assert_eq!(timeouts(0), ("50ms".into(), "0ms".into()));
    }
}
