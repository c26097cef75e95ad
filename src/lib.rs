#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]
#[cfg(feature = "cluster")]
mod cluster;
mod config;

mod db;
mod entity;
mod error;
mod health;
mod listener;
mod messages;
#[cfg(feature = "metrics")]
mod meter;
mod migrate;
mod open;
mod pool;
mod raw;
#[cfg(feature = "remote")]
pub mod remote;

mod retry;
mod schema;
mod sql;
mod stats;
mod supervisor;
mod telemetry;
mod tx;

mod wire;

pub use config::{
    PoolConfig, PoolSettings, PoolerMode, Role, SessionConfig, SessionSettings,
    DEFAULT_APPLICATION_NAME, DEFAULT_CONNECT_TIMEOUT, DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT,
    DEFAULT_LOCK_TIMEOUT, DEFAULT_MAX_IDLE_TIME, DEFAULT_MAX_LIFETIME, DEFAULT_MAX_QUEUED,
    DEFAULT_QUERY_TIMEOUT, DEFAULT_READ_MAX_OPEN, DEFAULT_SCHEMA, DEFAULT_SHUTDOWN_GRACE,
    DEFAULT_STATEMENT_TIMEOUT, DEFAULT_TIME_ZONE, DEFAULT_WAIT_TIMEOUT, DEFAULT_WRITE_MAX_OPEN,
    MAX_DURATION, MAX_POOL_SIZE, MAX_QUEUED_LIMIT, MAX_SERVER_TIMEOUT,
};
pub use db::Db;
pub use entity::{AsText, Column, Entity, Partial, Typed, TypedTx};
pub use error::{ConstraintKind, ConstraintViolation, Error, ErrorKind, Result};
pub use health::{Health, PoolHealth};
pub use listener::{
    Backlog, Notification, DEFAULT_MAX_CHANNELS, DEFAULT_NOTIFICATION_BUFFER, SUBSCRIBER_SWEEP,
};
pub use messages::{
    AggregateRequest, BulkOp, BulkWriteRequest, Call, ConsistencyToken, CountRequest,
    CreateManyRequest, ExistsRequest, IncrementRequest, ListRequest, ReadFieldsRequest,
    ReadRequest, UpsertRequest, Upserted, WriteOp, WriteRequest,
};
#[cfg(feature = "metrics")]
pub use meter::METRICS_INTERVAL;
pub use migrate::MigrationReport;
pub use open::{must_open, open, open_with_config, OpenOptions};
// The derive macro beside the trait of the same name (they live in different
// namespaces), as serde re-exports its derives.
#[cfg(feature = "derive")]
pub use pgactor_derive::{Entity, Partial, PgEnum};
pub use pool::{
    More, ReplicaConfig, Rows, RowsMsg, TypedRequest, BATCHES_IN_FLIGHT, BATCH_ROWS,
    DEFAULT_STATEMENT_CACHE_SIZE, MAX_QUEUED_READS, MAX_READ_BATCH, MAX_REPLICAS,
};
pub use raw::{column, quote_identifier, FromRow, LocatedRow, Row, RowLayout, RowReader, Sql};
pub use retry::RetryPolicy;
/// What `#[derive(PgEnum)]` generates calls these.
#[doc(hidden)]
pub use schema::{enum_accepts, enum_from_sql};
pub use schema::{
    Aggregate, AggregateFn, AggregateOutput, ArrayElement, CmpOp, ColumnDefault, Cursor, Direction,
    Elem, EnumType, Field, FieldType, Filter, FromValue, Included, Index, Interval, Model,
    OnDelete, Page, PgEnum, PrimaryKey, Query, QueryBounds, Record, RecordIntoIter, Reference,
    Registry, Sort, TextMatch, Value, CREATED_AT, DEFAULT_LIMIT, DEFAULT_SEARCH_LANGUAGE,
    DELETED_AT, ID, MAX_AGGREGATES, MAX_CURSOR_LEN, MAX_GROUP_FIELDS, MAX_JSON_DEPTH, MAX_PAGE,
    SEARCH_VECTOR, UPDATED_AT,
};
pub use sql::{OnConflict, COPY_MIN_ROWS, MAX_BATCH_ROWS};
pub use stats::{ClosedStats, ListenerStats, PoolStats, ReplicaServerStats, ReplicaStats, Stats};
pub use supervisor::DbMsg;
pub use telemetry::{log_bound_values, DEFAULT_SLOW_OPERATION};
pub use tx::{IsolationLevel, Tx, TxMsg, TxOptions, TypedTxRequest};
pub use wire::{HookError, HookFuture, NewConnection};

/// PostgreSQL's types and the conversions of Rust values to and from them
/// (tokio-postgres's `types` module): implement [`types::ToSql`] and
/// [`types::FromSql`] for a type of your own to bind it in [`Sql`] and read
/// it with [`column()`].
pub mod types {
    pub use tokio_postgres::types::*;
}

// The guides' examples are compiled (and, unless marked `no_run`, run) as
// doc tests, so they stay true to the API.
#[cfg(doctest)]
mod guides {
    #[doc = include_str!("../docs/getting-started.md")]
    struct GettingStarted;
    #[doc = include_str!("../docs/transactions.md")]
    struct Transactions;
    #[doc = include_str!("../docs/production.md")]
    struct Production;
    #[doc = include_str!("../docs/observability.md")]
    struct Observability;
    #[doc = include_str!("../docs/actors.md")]
    struct Actors;
    #[doc = include_str!("../docs/raw-sql.md")]
    struct RawSql;
    #[doc = include_str!("../docs/querying.md")]
    struct Querying;
}
