//! Bounded waits, for states that arrive asynchronously (replication, a
//! killed backend going away, a statement reaching a lock), never for
//! timing: [`eventually`] for an attempt that answers a value or why not
//! yet, [`until`] for a condition, answering how long it took.

use std::future::Future;
use std::time::Duration;

use pgactor::{Db, Record};

/// How long [`eventually`] waits: generous, since replicas lag and CI is slow.
const PATIENCE: Duration = Duration::from_secs(10);

/// How long [`until`] waits: servers replaying or restarting under load.
const UNTIL_PATIENCE: Duration = Duration::from_secs(30);

/// Run `attempt` until it answers `Ok`, for at most [`PATIENCE`]; panic with
/// the last error otherwise.
pub async fn eventually<T, E, F, Fut>(what: &str, attempt: F) -> T
where
    E: std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    poll(what, PATIENCE, Duration::from_millis(50), attempt)
        .await
        .0
}

/// `Ok(value)` when `ready`, for [`eventually`].
pub fn ready<T>(ready: bool, value: T) -> Result<T, &'static str> {
    if ready {
        Ok(value)
    } else {
        Err("not yet")
    }
}

/// `db.read` of a row just written, retried (see [`eventually`]) until the
/// read pool's server (a replica, which lags) has it.
pub async fn read_when_replicated(db: &Db, model: &str, id: uuid::Uuid) -> Record {
    eventually("the row to reach the read pool's server", || {
        db.read(model, id)
    })
    .await
}

/// Wait (at most [`UNTIL_PATIENCE`]) until `holds` answers true; answer how
/// long it took.
pub async fn until<F, Fut>(what: &str, mut holds: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let attempt = || {
        let check = holds();
        async move { ready(check.await, ()) }
    };
    poll(what, UNTIL_PATIENCE, Duration::from_millis(20), attempt)
        .await
        .1
}

/// Run `attempt` every `pause` until it answers `Ok`, for at most
/// `patience`; answer its value and how long it took, or panic with the
/// last error.
async fn poll<T, E, F, Fut>(
    what: &str,
    patience: Duration,
    pause: Duration,
    mut attempt: F,
) -> (T, Duration)
where
    E: std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let started = tokio::time::Instant::now();
    loop {
        match attempt().await {
            Ok(value) => return (value, started.elapsed()),
            Err(err) if started.elapsed() >= patience => {
                panic!("gave up after {patience:?} waiting for {what}; last: {err:?}")
            }
            Err(_) => tokio::time::sleep(pause).await,
        }
    }
}
