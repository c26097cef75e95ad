//! The reliability suite: faults the adapter must survive and bad input it
//! must refuse, each scenario against real servers (the shared topology of
//! `scripts/test.sh`, or a private one for faults that stop or promote a
//! server), each publishing its figures (see [`figures`]).
//!
//! Scenarios run one at a time ([`figures::serial`]): a fault must not
//! disturb another scenario's measurements. `scripts/reliability.sh` runs
//! this suite alone and prints the table that docs/reliability.md shows.

// The helpers both suites share (`tests/support`). The integration suite
// uses every one of them; this suite only those its scenarios need (it
// never opens with `open_primary` or asks the bouncer's pool size), and
// the rest would be dead code in this binary.
#[allow(dead_code)]
#[path = "../support/mod.rs"]
mod support;

mod dropped;
mod exhaustion;
mod figures;
mod fuzz;
mod hostile;
mod killed;
mod lanes;
mod ledger;
mod network;
mod owners;
mod proxy;
mod replica_faults;
mod replica_health;
mod restart;
mod storm;
mod subscribers;
mod supervisor;

/// Wait (at most 30 s: servers replaying or restarting under load) until
/// `ready` holds; answer how long it took.
async fn until<F, Fut>(what: &str, mut ready: F) -> std::time::Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    const PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);
    let started = std::time::Instant::now();
    while !ready().await {
        assert!(started.elapsed() < PATIENCE, "gave up waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    started.elapsed()
}
