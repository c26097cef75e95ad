//! Bounded waits, for states that arrive asynchronously (replication, a
//! killed backend going away), never for timing.

use std::time::Duration;

/// How long [`eventually`] waits: generous, since replicas lag and CI is slow.
const PATIENCE: Duration = Duration::from_secs(10);

/// Run `attempt` until it answers `Ok`, for at most [`PATIENCE`]; panic with
/// the last error otherwise. For states that arrive asynchronously
/// (replication, a killed backend going away), never for timing.
pub async fn eventually<T, E, F, Fut>(what: &str, mut attempt: F) -> T
where
    E: std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(err) if tokio::time::Instant::now() >= deadline => {
                panic!("gave up after {PATIENCE:?} waiting for {what}; last: {err:?}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// `Ok(value)` when `ready`, for [`eventually`].
pub fn ready<T>(ready: bool, value: T) -> Result<T, &'static str> {
    if ready {
        Ok(value)
    } else {
        Err("not yet")
    }
}
