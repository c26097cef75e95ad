//! Session settings: every new physical connection of either pool runs with
//! the configured `statement_timeout`, `lock_timeout`,
//! `idle_in_transaction_session_timeout`, `TimeZone`, `application_name` and
//! `search_path`, also the connection that replaces one whose backend died.
//!
//! How the settings are observed. The adapter runs no raw SQL, so a test
//! cannot `SHOW` on its connections; instead the adapter is made to read
//! them itself. An observer creates, in the test's schema, a view standing in
//! for a model's table whose columns are `current_setting(…)`,
//! `current_schema()` (what `search_path` resolves to), the UTC offset of
//! `now()` (the time zone at work) and `pg_backend_pid()`. Those expressions
//! are evaluated by whichever backend runs the adapter's statement: a
//! `create` through the (auto-updatable) view reports the write connection's
//! session in its `RETURNING` row, a `read` reports the read connection's,
//! on the replica when it is the read DSN. The pid ties each report to a
//! backend in `pg_stat_activity` (its `application_name`) and tells a new
//! connection from an old one.
//!
//! The timeouts are also checked by their effect: a statement that sleeps
//! longer than `statement_timeout` (a view calling `pg_sleep`) and a write
//! blocked by a row lock the observer holds longer than `lock_timeout` fail
//! with [`ErrorKind::Timeout`] and the server's SQLSTATE.
//! `idle_in_transaction_session_timeout` is checked by value only: the
//! adapter has no transactions yet.

use std::time::Duration;

use pgactor::{Db, ErrorKind, Field, FieldType, Model, OpenOptions, Record, SessionConfig};
use tokio_postgres::Client;
use uuid::Uuid;

use crate::support::db::{in_schema, registry, stock_model, unique_app_name, unique_schema};
use crate::support::kill::{gone, terminate};
use crate::support::observer::{observer, schema_exists};
use crate::support::topology::{primary_url, replica_url};
use crate::support::wait::{eventually, read_when_replicated};

/// The probe model: its "table" is a view of the session it is read in.
const PROBE: &str = "SessionProbe";

/// The probe view's columns: name, then the expression the backend evaluates.
const PROBE_COLUMNS: [(&str, &str); 7] = [
    ("statement_timeout", "current_setting('statement_timeout')"),
    ("lock_timeout", "current_setting('lock_timeout')"),
    (
        "idle_in_transaction_timeout",
        "current_setting('idle_in_transaction_session_timeout')",
    ),
    ("time_zone", "current_setting('TimeZone')"),
    ("utc_offset", "to_char(now(), 'TZH:TZM')"),
    ("application_name", "current_setting('application_name')"),
    ("current_schema", "current_schema()::text"),
];

/// The settings one backend reported, in the form `SHOW` prints them.
#[derive(Debug, PartialEq)]
struct Seen {
    statement_timeout: String,
    lock_timeout: String,
    idle_in_transaction_timeout: String,
    time_zone: String,
    utc_offset: String,
    application_name: String,
    current_schema: String,
}

impl Seen {
    fn expect(
        timeouts: [&str; 3],
        time_zone: &str,
        utc_offset: &str,
        application_name: &str,
        schema: &str,
    ) -> Seen {
        let [statement_timeout, lock_timeout, idle] = timeouts.map(String::from);
        Seen {
            statement_timeout,
            lock_timeout,
            idle_in_transaction_timeout: idle,
            time_zone: time_zone.into(),
            utc_offset: utc_offset.into(),
            application_name: application_name.into(),
            current_schema: schema.into(),
        }
    }
}

/// A probe's answer: the backend that evaluated it, and what it saw.
struct Probe {
    pid: i32,
    seen: Seen,
}

impl Probe {
    fn from(record: &Record) -> Probe {
        let text = |column: &str| record.get::<String>(column).expect(column);
        Probe {
            pid: record.get("backend_pid").expect("backend_pid"),
            seen: Seen {
                statement_timeout: text("statement_timeout"),
                lock_timeout: text("lock_timeout"),
                idle_in_transaction_timeout: text("idle_in_transaction_timeout"),
                time_zone: text("time_zone"),
                utc_offset: text("utc_offset"),
                application_name: text("application_name"),
                current_schema: text("current_schema"),
            },
        }
    }
}

fn probe_model() -> Model {
    PROBE_COLUMNS
        .iter()
        .fold(Model::new(PROBE), |model, (name, _)| {
            model.field(Field::new(*name, FieldType::Text).nullable())
        })
        .field(Field::new("backend_pid", FieldType::I32).nullable())
}

/// In a fresh schema, a view named after `model`'s table over a plain table
/// of ids (`<view>_rows`), with `columns` evaluated per row. Answers the schema.
async fn create_view_model(admin: &Client, prefix: &str, view: &str, columns: &str) -> String {
    let schema = unique_schema(prefix);
    admin
        .batch_execute(&format!(
            "CREATE SCHEMA \"{schema}\"; \
             CREATE TABLE \"{schema}\".\"{view}_rows\" (id uuid PRIMARY KEY, \
                 created_at timestamptz NOT NULL DEFAULT now(), \
                 updated_at timestamptz NOT NULL DEFAULT now()); \
             CREATE VIEW \"{schema}\".\"{view}\" AS \
                 SELECT id, {columns}, created_at, updated_at FROM \"{schema}\".\"{view}_rows\""
        ))
        .await
        .expect("create the view model");
    schema
}

/// A fresh schema holding the probe view.
async fn create_probe_schema(admin: &Client, prefix: &str) -> String {
    let columns: Vec<String> = PROBE_COLUMNS
        .iter()
        .map(|(name, expr)| format!("{expr} AS {name}"))
        .chain(["pg_backend_pid() AS backend_pid".to_owned()])
        .collect();
    create_view_model(admin, prefix, "session_probe", &columns.join(", ")).await
}

async fn open_with(read_dsn: &str, session: SessionConfig, model: Model) -> Db {
    OpenOptions::new(primary_url())
        .read_dsn(read_dsn)
        .registry(registry([model]))
        .session(session)
        .open()
        .await
        .expect("open")
}

/// Ask a write connection: a `create` through the probe view.
async fn probe_write(db: &Db) -> pgactor::Result<(Uuid, Probe)> {
    let record = db.create(PROBE, Record::new()).await?;
    Ok((record.get("id")?, Probe::from(&record)))
}

/// Ask a read connection: a `read` of the probe row `id`.
async fn probe_read(db: &Db, id: Uuid) -> pgactor::Result<Probe> {
    Ok(Probe::from(&db.read(PROBE, id).await?))
}

/// `application_name` of backend `pid` in `client`'s server's `pg_stat_activity`.
async fn application_name_of(client: &Client, pid: i32) -> Option<String> {
    client
        .query_opt(
            "SELECT application_name FROM pg_stat_activity WHERE pid = $1",
            &[&pid],
        )
        .await
        .expect("pg_stat_activity")
        .map(|row| row.get(0))
}

#[tokio::test]
async fn default_settings_hold_on_every_new_connection_also_after_a_backend_is_killed() {
    let admin = observer(&primary_url()).await;
    let schema = create_probe_schema(&admin, "session_defaults").await;
    let db = open_with("", in_schema(&schema), probe_model()).await;
    let want = Seen::expect(["30s", "5s", "1min"], "UTC", "+00:00", "pgactor", &schema);

    let (id, write) = probe_write(&db).await.expect("probe write");
    let read = probe_read(&db, id).await.expect("probe read");
    assert_eq!(write.seen, want, "write connection");
    assert_eq!(read.seen, want, "read connection");

    let killed = [write.pid, read.pid];
    terminate(&admin, &killed).await;
    gone(&admin, &killed).await;
    // The first operation may still meet the dead connection in its pool;
    // what matters here is the connection that replaces it.
    let (id, write) = eventually("a write on a new connection", || probe_write(&db)).await;
    let read = eventually("a read on a new connection", || probe_read(&db, id)).await;
    for (probe, pool) in [(write, "write"), (read, "read")] {
        assert!(!killed.contains(&probe.pid), "{pool}: a new backend");
        assert_eq!(probe.seen, want, "{pool}: settings are back");
    }
    db.close().await;
}

#[tokio::test]
async fn custom_settings_are_in_force_on_the_primary_and_on_the_replica() {
    let admin = observer(&primary_url()).await;
    let schema = create_probe_schema(&admin, "session_custom").await;
    let app = unique_app_name("session");
    let session = SessionConfig {
        statement_timeout: Some(Duration::from_millis(1500)),
        lock_timeout: Some(Duration::from_millis(250)),
        idle_in_transaction_timeout: Some(Duration::from_secs(45)),
        application_name: Some(app.clone()),
        // No daylight saving time: the offset is the same all year.
        time_zone: Some("Asia/Kolkata".into()),
        schema: Some(schema.clone()),
        query_timeout: None,
    };
    let db = open_with(&replica_url(), session, probe_model()).await;
    let want = Seen::expect(
        ["1500ms", "250ms", "45s"],
        "Asia/Kolkata",
        "+05:30",
        &app,
        &schema,
    );

    let (id, write) = probe_write(&db).await.expect("probe write");
    let read = Probe::from(&read_when_replicated(&db, PROBE, id).await);
    assert_eq!(write.seen, want, "write connection, on the primary");
    assert_eq!(read.seen, want, "read connection, on the replica");

    let replica = observer(&replica_url()).await;
    assert_eq!(
        application_name_of(&admin, write.pid).await,
        Some(app.clone())
    );
    assert_eq!(application_name_of(&replica, read.pid).await, Some(app));
    db.close().await;
}

#[tokio::test]
async fn an_unknown_time_zone_fails_open_with_config_naming_the_pool() {
    let schema = unique_schema("session_tz");
    let err = OpenOptions::new(primary_url())
        .registry(registry([stock_model()]))
        .session(SessionConfig {
            time_zone: Some("Mars/Olympus".into()),
            ..in_schema(&schema)
        })
        .open()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("write pool"), "{err}");
    let admin = observer(&primary_url()).await;
    assert!(
        !schema_exists(&admin, &schema).await,
        "open stopped before preparing the schema"
    );
    // And it says which setting the server refused, with its SQLSTATE.
    assert!(err.to_string().contains("Mars/Olympus"), "{err}");
    assert_eq!(err.sqlstate().map(|s| s.code()), Some("22023"), "{err:?}");
}

#[tokio::test]
async fn a_statement_running_past_statement_timeout_fails_with_timeout() {
    let admin = observer(&primary_url()).await;
    // Reading a row of this view takes 2 s.
    let schema = create_view_model(
        &admin,
        "session_slow",
        "slow_read",
        "pg_sleep(2)::text AS note",
    )
    .await;
    let id = Uuid::new_v4();
    admin
        .execute(
            &format!("INSERT INTO \"{schema}\".slow_read_rows (id) VALUES ($1)"),
            &[&id],
        )
        .await
        .unwrap();
    let model = Model::new("SlowRead").field(Field::new("note", FieldType::Text).nullable());
    let session = SessionConfig {
        statement_timeout: Some(Duration::from_millis(200)),
        ..in_schema(&schema)
    };
    let db = open_with("", session, model).await;

    let err = db.read("SlowRead", id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert_eq!(err.sqlstate().map(|s| s.code()), Some("57014"), "{err}");
    db.close().await;
}

#[tokio::test]
async fn a_write_waiting_past_lock_timeout_fails_with_timeout() {
    let schema = unique_schema("session_lock");
    let session = SessionConfig {
        lock_timeout: Some(Duration::from_millis(200)),
        // Longer than lock_timeout, shorter than its 5 s default: without the
        // configured lock_timeout this statement_timeout would fire instead.
        statement_timeout: Some(Duration::from_secs(3)),
        ..in_schema(&schema)
    };
    let db = open_with("", session, stock_model()).await;
    let row = db
        .create("StockBalance", Record::new().with("sku", "L-1"))
        .await
        .unwrap();
    let id: Uuid = row.get("id").unwrap();

    let locker = observer(&primary_url()).await;
    locker.batch_execute("BEGIN").await.unwrap();
    locker
        .execute(
            &format!("SELECT 1 FROM \"{schema}\".stock_balance WHERE id = $1 FOR UPDATE"),
            &[&id],
        )
        .await
        .unwrap();
    let err = db
        .update("StockBalance", id, Record::new().with("quantity", 1_i64))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert_eq!(err.sqlstate().map(|s| s.code()), Some("55P03"), "{err}");
    locker.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(db.read("StockBalance", id).await.unwrap(), row, "unchanged");
    db.close().await;
}
