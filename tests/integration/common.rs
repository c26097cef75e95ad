//! Shared helpers: server addresses, per-test schemas, an outside observer,
//! captured logs.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pgactor::{Db, Field, FieldType, Index, Model, Registry, SessionConfig};
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::util::SubscriberInitExt;

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

/// Statements completed on the server (pg_stat_statements) whose text
/// contains `needle`: how a test proves that refused input sent no SQL.
pub async fn statements_containing(obs: &tokio_postgres::Client, needle: &str) -> i64 {
    obs.query_one(
        "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements \
         WHERE strpos(query, $1) > 0",
        &[&needle],
    )
    .await
    .expect("pg_stat_statements")
    .get(0)
}

/// (pid, start of the last statement) of each session tagged `app`: it
/// changes when any of them runs a statement, even one not counted yet.
pub async fn last_statement_starts(obs: &tokio_postgres::Client, app: &str) -> Vec<(i32, String)> {
    obs.query(
        "SELECT pid, coalesce(query_start::text, '') FROM pg_stat_activity \
         WHERE application_name = $1 ORDER BY pid",
        &[&app],
    )
    .await
    .expect("pg_stat_activity")
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
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

/// Everything `tracing` writes on one test's thread, kept in memory.
///
/// One fmt subscriber, installed once as the global default (and as the
/// `log` crate's logger, so the driver's records come too), writes each
/// event and span close (every level, plain text) to the capture of the
/// thread it happens on, if any: a `#[tokio::test]` runtime and the tasks it
/// spawns run on the test's thread. Thread-local subscribers
/// (`set_default`) are not used: tracing caches each callsite's interest
/// globally, and a callsite first hit on a thread without a subscriber while
/// another test installs one can stay cached as "never", losing events.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

thread_local! {
    static CAPTURE: std::cell::RefCell<Option<Captured>> = const { std::cell::RefCell::new(None) };
}

/// The global subscriber's writer: this thread's capture, or nowhere.
struct ThreadCapture;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for ThreadCapture {
    type Writer = CaptureWriter;

    fn make_writer(&'a self) -> CaptureWriter {
        CaptureWriter(CAPTURE.with(|c| c.borrow().clone()))
    }
}

struct CaptureWriter(Option<Captured>);

impl std::io::Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(captured) = &self.0 {
            captured.0.lock().unwrap().extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Ends a capture when dropped.
pub struct CaptureGuard(());

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        CAPTURE.with(|c| c.borrow_mut().take());
    }
}

impl Captured {
    /// Capture what this thread logs until the guard is dropped.
    pub fn install(&self) -> CaptureGuard {
        static GLOBAL: std::sync::Once = std::sync::Once::new();
        GLOBAL.call_once(|| {
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_span_events(FmtSpan::CLOSE)
                .with_writer(ThreadCapture)
                .with_ansi(false)
                .finish();
            // try_init also forwards the `log` crate's records (the
            // driver's, tokio-postgres logs through `log`) to it.
            subscriber
                .try_init()
                .expect("no other global subscriber or logger in the test binary");
        });
        // A callsite another thread registered while the global subscriber
        // was being installed may still be cached as uninterested.
        tracing::callsite::rebuild_interest_cache();
        CAPTURE.with(|c| *c.borrow_mut() = Some(self.clone()));
        CaptureGuard(())
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

/// Wait until the primary shows no session named `app` (bounded).
pub async fn no_session_left(app: &str) {
    let admin = observer(&primary_url()).await;
    eventually("no session of the adapter is left", || async {
        let n: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                &[&app],
            )
            .await
            .unwrap()
            .get(0);
        ready(n == 0, ())
    })
    .await;
}

/// Open on the primary in a fresh schema (`<prefix>_…`) whose name is also
/// the sessions' application_name, so a test can find them; both pools use
/// `pool`.
pub async fn open_tagged(prefix: &str, pool: pgactor::PoolConfig) -> (Db, String) {
    open_tagged_at(&primary_url(), prefix, pool).await
}

/// [`open_tagged`] on the server at `url` (e.g. a proxy in front of the primary).
pub async fn open_tagged_at(url: &str, prefix: &str, pool: pgactor::PoolConfig) -> (Db, String) {
    let schema = unique_schema(prefix);
    let db = tagged_options(url, [stock_model()], pool, &schema, &schema)
        .open()
        .await
        .expect("open");
    (db, schema)
}

/// Options for `url` with `models`, both pools `pool`, everything in
/// `schema` and every session named `app` (for pg_stat_activity checks).
pub fn tagged_options(
    url: &str,
    models: impl IntoIterator<Item = Model>,
    pool: pgactor::PoolConfig,
    schema: &str,
    app: &str,
) -> pgactor::OpenOptions {
    pgactor::OpenOptions::new(url)
        .registry(registry(models))
        .write_pool(pool.clone())
        .read_pool(pool)
        .session(SessionConfig {
            schema: Some(schema.to_owned()),
            application_name: Some(app.to_owned()),
            ..SessionConfig::default()
        })
}

/// A session holding an ACCESS EXCLUSIVE lock on `schema`'s stock_balance
/// table on the primary, which every statement on it waits for, until it
/// rolls back.
pub async fn lock_stock_table(schema: &str) -> tokio_postgres::Client {
    lock_table(&primary_url(), schema, "stock_balance").await
}

/// A session on the server of `url` holding an ACCESS EXCLUSIVE lock on
/// `schema`.`table` until it rolls back (or is dropped).
pub async fn lock_table(url: &str, schema: &str, table: &str) -> tokio_postgres::Client {
    let locker = observer(url).await;
    locker
        .batch_execute(&format!(
            "BEGIN; LOCK TABLE \"{schema}\".{table} IN ACCESS EXCLUSIVE MODE"
        ))
        .await
        .expect("lock the table");
    locker
}

/// A session on the server of `url` holding the row lock of `schema`'s
/// stock_balance row `id` (`SELECT … FOR UPDATE`) until it rolls back.
pub async fn lock_row_outside(url: &str, schema: &str, id: uuid::Uuid) -> tokio_postgres::Client {
    let holder = observer(url).await;
    holder.batch_execute("BEGIN").await.expect("begin");
    holder
        .query_typed(
            &format!("SELECT 1 FROM \"{schema}\".stock_balance WHERE id = $1 FOR UPDATE"),
            &[(&id, tokio_postgres::types::Type::UUID)],
        )
        .await
        .expect("lock the row");
    holder
}

/// Sessions named `app` that wait for a lock now.
pub async fn lock_waiters(client: &tokio_postgres::Client, app: &str) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE application_name = $1 AND wait_event_type = 'Lock'",
            &[&app],
        )
        .await
        .expect("pg_stat_activity")
        .get(0)
}
