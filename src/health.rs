//! Health checks: one cheap round trip on each pool, for a service's
//! `/health` ([`crate::Db::ping`], [`crate::DbMsg::Ping`]).

use std::time::{Duration, Instant};

use crate::config::Role;
use crate::error::{Error, ErrorKind, Result};
use crate::pool::{bounded, ConnectionPool, Fate, Overrun, Timer};

/// How each pool answered a ping ([`crate::Db::ping`]).
#[derive(Debug)]
pub struct Health {
    /// The write pool (the primary).
    pub write: PoolHealth,
    /// The read pool: the replica, or the primary when there is no read DSN.
    pub read: PoolHealth,
}

impl Health {
    /// Both pools answered.
    pub fn is_up(&self) -> bool {
        self.write.is_up() && self.read.is_up()
    }
}

/// How one pool answered a ping: a connection taken from it (opened if
/// none was free) and one empty statement run on it.
#[derive(Debug)]
pub struct PoolHealth {
    /// Which pool.
    pub role: Role,
    /// `user@host:port/db`, never a password.
    pub target: String,
    /// From the ping's start to its answer or its failure: the wait for a
    /// connection (and its opening) included.
    pub latency: Duration,
    /// Why the pool did not answer; `None` when it did.
    pub error: Option<Error>,
}

impl PoolHealth {
    /// The pool answered within the ping's bound.
    pub fn is_up(&self) -> bool {
        self.error.is_none()
    }
}

/// Ping both pools at once, each within `within`.
pub(crate) async fn ping_pools(
    write: &ConnectionPool,
    read: &ConnectionPool,
    within: Duration,
) -> Health {
    let (write, read) = tokio::join!(ping(write, within), ping(read, within));
    Health { write, read }
}

/// Take a connection from `pool` and run an empty statement on it, the
/// two within `within` on one timer; a statement still running then is
/// cancelled on the server, and its connection closed unless the cancel
/// was confirmed.
async fn ping(pool: &ConnectionPool, within: Duration) -> PoolHealth {
    let started = Instant::now();
    let outcome: Result<()> = async {
        let mut timer = Timer::default();
        let _queued = pool.enqueue()?;
        let conn = pool.take(&mut timer, within).await?;
        let left = within.saturating_sub(started.elapsed());
        let (answer, fate) = {
            let empty = std::pin::pin!(async {
                conn.simple_query("")
                    .await
                    .map(drop)
                    .map_err(|e| Error::from_statement(e, false))
            });
            let overrun = Overrun::Cancel(&pool.cancel);
            bounded(&conn, overrun, Some(left), false, empty, &mut timer).await
        };
        let broken = answer
            .as_ref()
            .is_err_and(|e| e.kind() == ErrorKind::Unavailable);
        if fate == Fate::Discard || broken {
            pool.discard(conn);
        }
        answer
    }
    .await;
    PoolHealth {
        role: pool.role,
        target: pool.target.to_string(),
        latency: started.elapsed(),
        error: outcome.err(),
    }
}
