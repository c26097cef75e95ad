//! The reliability suite: faults the adapter must survive and bad input it
//! must refuse, each scenario against real servers (the shared topology of
//! `scripts/test.sh`, or a private one for faults that stop or promote a
//! server), each publishing its figures (see [`figures`]).
//!
//! Scenarios run one at a time ([`figures::serial`]): a fault must not
//! disturb another scenario's measurements. `scripts/reliability.sh` runs
//! this suite alone and prints the table that docs/reliability.md shows.

// Shared with the integration suite; each binary uses part of it.
#[allow(dead_code)]
#[path = "../integration/common.rs"]
mod common;
#[allow(dead_code)]
#[path = "../integration/topology.rs"]
mod topology;

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
