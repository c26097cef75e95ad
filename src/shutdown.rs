//! Graceful shutdown: stop taking work, let what runs finish within a grace
//! period, then roll back what is still open and close every connection.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ractor::ActorRef;

use crate::connection::ConnectionPool;
use crate::messages::DbMsg;
use crate::supervisor::Routes;

/// How long [`crate::Db::close`] lets running operations and open
/// transactions finish before it rolls the transactions back.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

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

    fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Shut the adapter down: new operations and transactions are refused at
/// once; running operations and open transactions get `grace` to finish;
/// then the supervisor stops, which ends the transactions still open (their
/// connections are closed, so the server rolls them back) and closes the
/// pools.
pub(crate) async fn shutdown(
    routes: &Routes,
    in_flight: &InFlight,
    write: &ConnectionPool,
    supervisor: &ActorRef<DbMsg>,
    grace: Duration,
) {
    routes.close();
    let settled = || in_flight.count() == 0 && write.counters.open_transactions() == 0;
    let drained = tokio::time::timeout(grace, async {
        // Polled: both counts change in many places, and shutdown is rare.
        while !settled() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .is_ok();
    if !drained {
        tracing::warn!(
            target: "pgactor",
            operations = in_flight.count(),
            transactions = write.counters.open_transactions(),
            "shutdown grace of {grace:?} elapsed; rolling back what is still open"
        );
    }
    let _ = supervisor
        .stop_and_wait(Some("shut down".into()), None)
        .await;
    tracing::info!(target: "pgactor", "pgactor closed");
}
