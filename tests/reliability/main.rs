//! The reliability suite: faults the adapter must survive and bad input it
//! must refuse, each scenario against real servers (the shared topology of
//! `scripts/test.sh`, or a private one for faults that stop or promote a
//! server), each publishing its figures (see [`figures`]).
//!
//! Scenarios run one at a time ([`figures::serial`]): a fault must not
//! disturb another scenario's measurements. `scripts/reliability.sh` runs
//! this suite alone and prints the table that docs/reliability.md shows.

// The helpers both suites share (`tests/support`). The integration suite
// uses every one of them and needs no allow; this suite uses most but not
// all (it opens no database of its own on the primary, reads no row back
// from a replica through the adapter, asks nothing of the bouncer's pool
// size), and those would be dead code in this binary only.
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
