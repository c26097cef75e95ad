//! Integration tests against the real topology started by `scripts/test.sh`
//! (a primary, a streaming replica and PgBouncer in transaction pooling
//! mode). One binary, one module per concern; every test works in a schema
//! of its own so they run in parallel.

// The helpers both suites share (`tests/support`).
#[path = "../support/mod.rs"]
mod support;

mod actor_callers;
mod actors;
mod aggregates;
mod array_types;
mod bad_input;
mod batch_writes;
mod bouncer;
mod bulk_writes;
mod coalesce;
mod column_types;
mod connect_hook;
mod crud;
mod errors;
mod filters;
mod foreign_keys;
mod health;
mod includes;
mod job_queue;
mod job_workers;
mod keyset;
mod libpq;
mod lifetimes;
mod list;
mod listen;
mod many_replicas;
mod migrate;
mod observability;
mod open;
mod pg_types;
mod query_bounds;
mod raw;
mod replicas;
mod routing;
mod savepoints;
mod schema;
mod schema_change;
mod search;
mod session;
mod settings;
mod shared;
mod shutdown;
mod soft_delete;
mod spare_actors;
mod stats;
mod streams;
mod subsets;
mod tls;
mod transactions;
mod typed;
mod types;
mod versioning;
