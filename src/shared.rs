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
//! A CancelRequest stops whatever its backend runs when it arrives, which
//! on a lane may be another caller's statement. So a timed-out statement
//! is cancelled only when the lane is retired and it is the only one on
//! it; otherwise it runs on until the server's `statement_timeout`, and
//! only its caller stops waiting.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use crate::connection::{Conn, Object};

use crate::connection::ConnectionPool;
use crate::error::{Error, Result};

/// The lanes of one read pool.
pub(crate) struct SharedReads {
    slots: Vec<Slot>,
    next: AtomicUsize,
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

impl SharedReads {
    /// `lanes` shared connections (at least 1), opened on first use.
    pub(crate) fn new(lanes: usize) -> SharedReads {
        SharedReads {
            slots: (0..lanes.max(1)).map(|_| Slot::default()).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// A lane to run one statement on, the next in turn; its connection is
    /// checked out of `pool` (bounded by the pool's wait timeout) when the
    /// slot is empty or its lane can serve no more.
    pub(crate) async fn lane(&self, pool: &ConnectionPool) -> Result<Ride> {
        let slot = &self.slots[self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len()];
        if let Some(ride) = slot.board() {
            return Ok(ride);
        }
        let _refilling = slot.refill.lock().await;
        if let Some(ride) = slot.board() {
            // Refilled while we waited.
            return Ok(ride);
        }
        let lane = Arc::new(Lane::new(pool.get().await?, pool.clone()));
        let Some(ride) = lane.board() else {
            return Err(Error::unavailable(format!(
                "{} pool: a new shared connection closed at once",
                pool.role
            )));
        };
        let old = slot
            .lane
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .replace(lane);
        if let Some(old) = old {
            old.retire();
        }
        Ok(ride)
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
    /// Statements on it now.
    riders: AtomicUsize,
    /// No new statement may board; closed when the last rider is done.
    retired: AtomicBool,
    /// Its state is unknown: closed, never given back to the pool.
    broken: AtomicBool,
}

impl Lane {
    fn new(conn: Object, pool: ConnectionPool) -> Lane {
        pool.counters.lane_opened();
        Lane {
            conn: Some(conn),
            pool,
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
        if let Some(conn) = self.conn.take() {
            if self.broken.load(Ordering::SeqCst) {
                self.pool.discard(conn);
            }
            // Otherwise back to the pool, whose recycling checks it.
        }
    }
}

/// One statement's place on a lane; gets off when dropped.
pub(crate) struct Ride(Arc<Lane>);

impl Ride {
    /// The lane's connection.
    pub(crate) fn client(&self) -> &Conn {
        self.0
            .conn
            .as_ref()
            .expect("a boarded lane has its connection")
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
