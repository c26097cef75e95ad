//! Test helpers shared by both suites, `tests/integration` and
//! `tests/reliability`, each of which includes this folder once with
//! `#[path = "../support/mod.rs"] mod support;` (cargo builds no test
//! binary of its own from a subfolder of `tests/`). By what they hold:
//!
//! - [`topology`]: where the servers are: the shared topology that
//!   `scripts/test.sh` starts, databases of a test's own on its primary,
//!   and private topologies for tests that stop, pause or promote servers.
//! - [`db`]: the adapter under test: fresh schema and application names,
//!   models, session settings and open options to open it with, and
//!   values to give it.
//! - [`observer`]: a plain session outside the adapter and what it sees of
//!   the adapter's work: its sessions, its statements, tables and rows.
//! - [`kill`]: ending the adapter's server sessions from outside.
//! - [`blocking`]: holding the adapter's statements up from outside (table
//!   and row locks) and seeing them wait.
//! - [`wait`]: bounded waits for what arrives asynchronously.
//! - [`logs`]: what `tracing` logs on a test's thread, captured.

pub mod blocking;
pub mod db;
pub mod kill;
pub mod logs;
pub mod observer;
pub mod topology;
pub mod wait;
