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

/// Poll (bounded) until `check` answers `Some`; panics with `what` if it never does.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..500 {
        if let Some(found) = check().await {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never happened: {what}");
}
