//! Shared helpers: server addresses, per-test schemas, an outside observer.

use std::time::Duration;

use pgactor::{Db, Field, FieldType, Index, Model, Registry, SessionConfig};

/// The primary's URL. Tests never skip: without the topology they fail loudly.
pub fn primary_url() -> String {
    std::env::var("PGACTOR_PRIMARY_URL")
        .expect("PGACTOR_PRIMARY_URL is not set: run the suite with scripts/test.sh")
}

/// The streaming replica's URL.
pub fn replica_url() -> String {
    std::env::var("PGACTOR_REPLICA_URL")
        .expect("PGACTOR_REPLICA_URL is not set: run the suite with scripts/test.sh")
}

/// A schema name no other test (or earlier run) uses.
pub fn unique_schema(prefix: &str) -> String {
    format!("t_{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// A plain tokio-postgres connection to `url`, outside the adapter, for
/// checking from outside what the adapter did.
pub async fn observer(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("observer connection");
    tokio::spawn(connection);
    client
}

/// The seed's stock example as a model.
pub fn stock_model() -> Model {
    Model::new("StockBalance")
        .field(Field::new("sku", FieldType::Text).unique())
        .field(Field::new("quantity", FieldType::I64).default_value(0_i64))
        .field(Field::new("note", FieldType::Text).nullable())
        .index(Index::on(["quantity"]))
}

/// A registry holding `models`.
pub fn registry(models: impl IntoIterator<Item = Model>) -> Registry {
    let mut registry = Registry::new();
    for model in models {
        registry.register(model).expect("valid model");
    }
    registry
}

/// Session settings that put everything in `schema`.
pub fn in_schema(schema: &str) -> SessionConfig {
    SessionConfig {
        schema: Some(schema.into()),
        ..SessionConfig::default()
    }
}

/// Open on the primary only, in a fresh schema, with `models`.
pub async fn open_primary(prefix: &str, models: impl IntoIterator<Item = Model>) -> (Db, String) {
    let schema = unique_schema(prefix);
    let db = pgactor::OpenOptions::new(primary_url())
        .registry(registry(models))
        .session(in_schema(&schema))
        .open()
        .await
        .expect("open");
    (db, schema)
}

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
