//! Health checks: one cheap round trip on each pool, for a service's
//! `/health` ([`crate::Db::ping`], [`crate::DbMsg::Ping`]).

use std::time::{Duration, Instant};

use crate::config::Role;
use crate::error::{Error, ErrorKind, Result};
use crate::pool::{bounded, ConnectionPool, Fate, Overrun, PoolContext, Timer};

/// How each pool answered a ping ([`crate::Db::ping`]).
#[derive(Debug)]
pub struct Health {
    /// The write pool (the primary).
    pub write: PoolHealth,
    /// The read pool: the (first) replica, or the primary when there is no
    /// read DSN.
    pub read: PoolHealth,
    /// With several replicas, the pools of the others, in the order the
    /// read DSNs name them; empty otherwise. [`Health::read_pools`] gives
    /// them all.
    pub replicas: Vec<PoolHealth>,
}

impl Health {
    /// Every pool answered: the primary's and every read pool.
    pub fn is_up(&self) -> bool {
        self.write.is_up() && self.read_pools().all(PoolHealth::is_up)
    }

    /// Every read pool: [`Health::read`], then [`Health::replicas`].
    pub fn read_pools(&self) -> impl Iterator<Item = &PoolHealth> {
        std::iter::once(&self.read).chain(&self.replicas)
    }
}

/// How one pool answered a ping: a connection taken from it (opened if
/// none was free) and one empty statement run on it.
#[derive(Debug)]
pub struct PoolHealth {
    /// Which pool.
    pub role: Role,
    /// `user@host:port/db`, never a password (a replica's `host:port` is
    /// its name in statistics).
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

/// Ping every pool at once (the write pool, and the read pool or each
/// replica's), each within `within`.
pub(crate) async fn ping_pools(
    write: &ConnectionPool,
    read: &PoolContext,
    within: Duration,
) -> Health {
    let reads: Vec<&ConnectionPool> = match &read.replica {
        Some(set) => set.replicas().iter().map(|r| &r.pool).collect(),
        None => vec![&read.pool],
    };
    let reads = futures_util::future::join_all(reads.into_iter().map(|pool| ping(pool, within)));
    let (write, mut reads) = tokio::join!(ping(write, within), reads);
    // At least one: the read pool on the primary, or the first replica's.
    let read = reads.remove(0);
    Health {
        write,
        read,
        replicas: reads,
    }
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
