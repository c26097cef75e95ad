//! Shared helpers: server addresses, per-test schemas, an outside observer,
//! captured logs.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pgactor::{Db, Field, FieldType, Index, Model, Registry, SessionConfig};
use tracing_subscriber::fmt::format::FmtSpan;

/// A variable of the topology's env file. Tests never skip: without the
/// topology they fail loudly.
fn topology(var: &str) -> String {
    std::env::var(var)
        .unwrap_or_else(|_| panic!("{var} is not set: run the suite with scripts/test.sh"))
}

/// The primary's URL.
pub fn primary_url() -> String {
    topology("PGACTOR_PRIMARY_URL")
}

/// The streaming replica's URL.
pub fn replica_url() -> String {
    topology("PGACTOR_REPLICA_URL")
}

/// The PgBouncer (transaction pooling) in front of the primary.
pub fn bouncer_url() -> String {
    topology("PGACTOR_BOUNCER_URL")
}

/// The bouncer's `default_pool_size`: server connections per database and user.
pub fn bouncer_pool_size() -> usize {
    topology("PGACTOR_BOUNCER_POOL_SIZE")
        .parse()
        .expect("PGACTOR_BOUNCER_POOL_SIZE is a number")
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

/// Everything a `tracing` fmt subscriber writes, kept in memory.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Install a subscriber that records every event and span close, at
    /// every level, as plain text, for the current thread (a
    /// `#[tokio::test]` runtime and the tasks it spawns).
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_span_events(FmtSpan::CLOSE)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    /// What was written so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// Run `body` with everything `tracing` logs [`Captured`]; answer `body`'s
/// output and the text.
pub async fn capturing_logs<T>(body: impl std::future::Future<Output = T>) -> (T, String) {
    let captured = Captured::default();
    let guard = captured.install();
    let output = body.await;
    drop(guard);
    (output, captured.text())
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
