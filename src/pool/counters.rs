//! What one pool counts as it works (closings by reason, waits, refusals,
//! open transactions, shared lanes, statement evictions), read into
//! [`PoolStats`]; and the operations running across both pools, which
//! graceful shutdown waits for.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::config::Role;
use crate::stats::{ClosedStats, PoolStats};

/// Why a connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    MaxLifetime,
    MaxIdleTime,
    MaxIdleCount,
    Broken,
}

impl Reason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Reason::MaxLifetime => "max_lifetime",
            Reason::MaxIdleTime => "max_idle_time",
            Reason::MaxIdleCount => "max_idle_count",
            Reason::Broken => "broken",
        }
    }
}

/// The counters one pool keeps, shared by its checkouts, hooks and reaper.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    closed_max_lifetime: AtomicU64,
    closed_max_idle_time: AtomicU64,
    closed_max_idle_count: AtomicU64,
    closed_broken: AtomicU64,
    waits: AtomicU64,
    wait_micros: AtomicU64,
    transactions: AtomicI64,
    /// Checkouts in progress (waiting for a connection or about to get one).
    queued: AtomicUsize,
    refused: AtomicU64,
    lanes: AtomicUsize,
    statements_evicted: AtomicU64,
    /// Coalesced batches of reads by id, and the reads they answered.
    read_batches: AtomicU64,
    batched_reads: AtomicU64,
    /// Reads by id waiting for their model's next batch now.
    batch_waiting: AtomicUsize,
    /// The reaper's task runs (set when it starts, cleared if it ends
    /// while the pool is open).
    reaper: AtomicBool,
}

/// One checkout in progress, counted against `max_queued` until dropped.
pub(crate) struct Queued<'a>(&'a Counters);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.queued.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Counters {
    pub(crate) fn closed(&self, role: Role, reason: Reason) {
        let counter = match reason {
            Reason::MaxLifetime => &self.closed_max_lifetime,
            Reason::MaxIdleTime => &self.closed_max_idle_time,
            Reason::MaxIdleCount => &self.closed_max_idle_count,
            Reason::Broken => &self.closed_broken,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(target: "pgactor.pool", role = role.as_str(), reason = reason.as_str(), "connection closed");
    }

    pub(crate) fn waited(&self, time: Duration) {
        self.waits.fetch_add(1, Ordering::Relaxed);
        self.wait_micros.fetch_add(
            time.as_micros().min(u64::MAX as u128) as u64,
            Ordering::Relaxed,
        );
    }

    /// Count a checkout in, unless `limit` are in progress already (then
    /// it is counted as refused).
    pub(crate) fn enqueue(&self, limit: usize) -> Option<Queued<'_>> {
        if self.queued.fetch_add(1, Ordering::Relaxed) >= limit {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            self.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(Queued(self))
    }

    pub(crate) fn statement_evicted(&self) {
        self.statements_evicted.fetch_add(1, Ordering::Relaxed);
    }

    /// A read by id now waits for its model's next batch.
    pub(crate) fn batch_joined(&self) {
        self.batch_waiting.fetch_add(1, Ordering::Relaxed);
    }

    /// `reads` waiting reads were taken into a batch (or left it).
    pub(crate) fn batch_taken(&self, reads: usize) {
        self.batch_waiting.fetch_sub(reads, Ordering::Relaxed);
    }

    /// A coalesced batch of `reads` reads by id went out.
    pub(crate) fn read_batch(&self, reads: u64) {
        self.read_batches.fetch_add(1, Ordering::Relaxed);
        self.batched_reads.fetch_add(reads, Ordering::Relaxed);
    }

    pub(crate) fn reaper_started(&self) {
        self.reaper.store(true, Ordering::Relaxed);
    }

    pub(crate) fn reaper_stopped(&self) {
        self.reaper.store(false, Ordering::Relaxed);
    }

    pub(crate) fn lane_opened(&self) {
        self.lanes.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn lane_closed(&self) {
        self.lanes.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn transaction_opened(&self) {
        self.transactions.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn transaction_ended(&self) {
        self.transactions.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn open_transactions(&self) -> u64 {
        self.transactions.load(Ordering::Relaxed).max(0) as u64
    }

    pub(crate) fn snapshot(&self, status: deadpool_postgres::Status) -> PoolStats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        PoolStats {
            max_open: status.max_size,
            open: status.size,
            in_use: status.size.saturating_sub(status.available),
            shared: self.lanes.load(Ordering::Relaxed),
            idle: status.available,
            waiting: status.waiting,
            waits_total: load(&self.waits),
            wait_time_total: Duration::from_micros(load(&self.wait_micros)),
            refused_total: load(&self.refused),
            closed: ClosedStats {
                max_lifetime: load(&self.closed_max_lifetime),
                max_idle_time: load(&self.closed_max_idle_time),
                max_idle_count: load(&self.closed_max_idle_count),
                broken: load(&self.closed_broken),
            },
            statements_evicted: load(&self.statements_evicted),
            read_batches_total: load(&self.read_batches),
            batched_reads_total: load(&self.batched_reads),
            batch_waiting: self.batch_waiting.load(Ordering::Relaxed),
            reaper_running: self.reaper.load(Ordering::Relaxed),
        }
    }
}

/// Pool operations running now (handed to a task, not yet answered).
#[derive(Debug, Default)]
pub(crate) struct InFlight(AtomicUsize);

/// Counts one running operation until dropped.
pub(crate) struct Running(Arc<InFlight>);

impl InFlight {
    pub(crate) fn start(self: &Arc<InFlight>) -> Running {
        self.0.fetch_add(1, Ordering::Relaxed);
        Running(self.clone())
    }

    pub(crate) fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::Relaxed);
    }
}
