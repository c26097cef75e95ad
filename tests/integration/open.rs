//! Opening the adapter: what fails `open` and how it says so (never showing a
//! DSN's password), which defaults unset options take, `must_open`, and
//! several adapters in one process.
//!
//! Unreachable servers are `127.0.0.1` on a port that was just free; pool
//! limits are observed through `pg_stat_activity` (sessions waiting on a lock
//! an observer holds).
//!
//! Also home of [`unreachable_dsn`], used by other modules.

use std::time::Duration;

use pgactor::{Error, ErrorKind, PoolConfig, Record, Registry, SessionConfig, SessionSettings};

use crate::common::{eventually, no_session_left};
use crate::common::{
    lock_stock_table, lock_waiters, observer, open_primary, primary_url, registry, stock_model,
    unique_schema,
};
use crate::routing::{unique_app_name, TempDatabase};
use crate::schema::{crud_round_trip, stored_rows};

/// The password every DSN here carries; no error may show it.
pub(crate) const PASSWORD: &str = "s3cr3t-pw";

/// A URL with [`PASSWORD`] to 127.0.0.1 on a port nothing listens on, and
/// that `host:port`.
pub(crate) fn unreachable_dsn() -> (String, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local addr").to_string();
    drop(listener);
    (
        format!("postgres://app:{PASSWORD}@{addr}/shop?sslmode=disable"),
        addr,
    )
}

/// Display, Debug and every source of `err`, as one string.
fn everything_shown(err: &Error) -> String {
    let mut shown = format!("{err} {err:?}");
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        shown.push_str(&format!(" {s} {s:?}"));
        source = s.source();
    }
    shown
}

/// `err` is of `kind`, its message mentions each of `mentions`, and nothing
/// it shows (sources included) holds [`PASSWORD`].
pub(crate) fn assert_open_error(err: &Error, kind: ErrorKind, mentions: &[&str]) {
    assert_eq!(err.kind(), &kind, "{err}");
    for part in mentions {
        assert!(err.to_string().contains(part), "{part:?} missing in: {err}");
    }
    assert!(
        !everything_shown(err).contains(PASSWORD),
        "the password leaked: {err:?}"
    );
}

/// Open on the primary in `schema` with `pool` for both pools and `session`,
/// sessions named `app`.
async fn open_with_pools(
    app: &str,
    schema: &str,
    pool: PoolConfig,
    session: SessionConfig,
) -> pgactor::Db {
    let session = SessionConfig {
        application_name: Some(app.into()),
        schema: Some(schema.into()),
        ..session
    };
    pgactor::open_with_config(
        &primary_url(),
        "",
        registry([stock_model()]),
        pool.clone(),
        pool,
        session,
    )
    .await
    .expect("open")
}

#[tokio::test]
async fn an_unreachable_write_server_fails_open_with_unavailable_naming_pool_and_address() {
    let (url, addr) = unreachable_dsn();
    let (host, port) = addr.split_once(':').unwrap();
    let key_value = format!("host={host} port={port} user=app password={PASSWORD} dbname=shop");
    for dsn in [url, key_value] {
        let err = pgactor::open(&dsn, "", registry([stock_model()]))
            .await
            .unwrap_err();
        assert_open_error(&err, ErrorKind::Unavailable, &["write pool", &addr]);
    }
}

#[tokio::test]
async fn an_unreachable_read_server_fails_open_with_unavailable_naming_the_read_pool() {
    let (read_dsn, addr) = unreachable_dsn();
    let err = pgactor::OpenOptions::new(primary_url())
        .read_dsn(read_dsn)
        .registry(registry([stock_model()]))
        .session(crate::common::in_schema(&unique_schema("open_read")))
        .open()
        .await
        .unwrap_err();
    assert_open_error(&err, ErrorKind::Unavailable, &["read pool", &addr]);
}

#[tokio::test]
async fn malformed_dsns_fail_open_with_config_and_hide_the_password() {
    let malformed = [
        "not a dsn".to_owned(),
        format!("postgres://u:{PASSWORD}@h:notaport/db"),
        format!("host=h sslmode=bogus password={PASSWORD}"),
    ];
    for dsn in &malformed {
        let err = pgactor::open(dsn, "", Registry::new()).await.unwrap_err();
        assert_open_error(&err, ErrorKind::Config, &["write DSN"]);
        let err = pgactor::open(&primary_url(), dsn, Registry::new())
            .await
            .unwrap_err();
        assert_open_error(&err, ErrorKind::Config, &["read DSN"]);
    }
    let err = pgactor::open("", "", Registry::new()).await.unwrap_err();
    assert_open_error(&err, ErrorKind::Config, &["write DSN"]);

    // The message says which option is wrong (never its value).
    for (dsn, option) in malformed.iter().skip(1).zip(["port", "sslmode"]) {
        let err = pgactor::open(dsn, "", Registry::new()).await.unwrap_err();
        assert!(
            err.to_string().contains(option),
            "{option:?} missing in: {err}"
        );
    }
}

#[tokio::test]
async fn unset_session_fields_take_the_documented_defaults() {
    let schema = unique_schema("open_defaults");
    let db = pgactor::open_with_config(
        &primary_url(),
        "",
        registry([stock_model()]),
        PoolConfig {
            max_open: Some(3),
            ..PoolConfig::default()
        },
        PoolConfig::default(),
        SessionConfig {
            statement_timeout: Some(Duration::from_secs(7)),
            application_name: Some("orders-api".into()),
            schema: Some(schema.clone()),
            ..SessionConfig::default()
        },
    )
    .await
    .expect("open");
    let expected = SessionSettings {
        statement_timeout: Duration::from_secs(7),
        lock_timeout: Duration::from_secs(5),
        idle_in_transaction_timeout: Duration::from_secs(60),
        application_name: "orders-api".into(),
        time_zone: "UTC".into(),
        schema,
        query_timeout: pgactor::DEFAULT_QUERY_TIMEOUT,
        pooler: pgactor::PoolerMode::Direct,
    };
    assert_eq!(db.session(), &expected);
    crud_round_trip(&db).await;
    db.close().await;
}

#[tokio::test]
async fn write_max_open_caps_the_write_pool_and_a_write_beyond_it_waits_then_fails() {
    let app = unique_app_name("open_max");
    let schema = unique_schema("open_max");
    let pool = PoolConfig {
        max_open: Some(2),
        wait_timeout: Some(Duration::from_secs(1)),
        ..PoolConfig::default()
    };
    let session = SessionConfig {
        // Writes queue on the observer's lock for as long as it holds it.
        lock_timeout: Some(Duration::ZERO),
        ..SessionConfig::default()
    };
    let db = open_with_pools(&app, &schema, pool, session).await;
    let locker = lock_stock_table(&schema).await;
    let create = |sku: &'static str| {
        let db = db.clone();
        async move {
            db.create("StockBalance", Record::new().with("sku", sku))
                .await
        }
    };
    let blocked = [tokio::spawn(create("B-1")), tokio::spawn(create("B-2"))];
    let watcher = observer(&primary_url()).await;
    eventually("two write connections waiting on the lock", || async {
        match lock_waiters(&watcher, &app).await {
            2 => Ok(()),
            n => Err(format!("{n} waiting")),
        }
    })
    .await;

    // Both write connections are busy: the third write waits for one, then gives up.
    // (A guard, not a timing check: were max_open not honoured, this write
    // would queue on the lock like the other two.)
    let third = tokio::time::timeout(Duration::from_secs(20), create("B-3"))
        .await
        .expect("the third write waits for the pool, not for the lock");
    let err = third.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("write pool"), "{err}");
    assert_eq!(lock_waiters(&watcher, &app).await, 2, "no third connection");

    locker.batch_execute("COMMIT").await.unwrap();
    for task in blocked {
        task.await
            .unwrap()
            .expect("a queued write completes once the lock is gone");
    }
    assert_eq!(
        stored_rows(&watcher, &schema).await,
        2,
        "the write that gave up was never sent"
    );
    db.close().await;
}

#[tokio::test]
async fn must_open_panics_with_a_message_naming_the_pool() {
    let (dsn, addr) = unreachable_dsn();
    let outcome =
        tokio::spawn(async move { pgactor::must_open(&dsn, "", Registry::new()).await }).await;
    let payload = outcome.expect_err("must_open panics").into_panic();
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .expect("a text panic message");
    for part in ["write pool", addr.as_str()] {
        assert!(message.contains(part), "{part:?} missing in: {message}");
    }
    assert!(
        !message.contains(PASSWORD),
        "the password leaked: {message}"
    );
}

#[tokio::test]
async fn must_open_returns_a_working_db() {
    // `must_open` takes no session options, so it works in `public`: of a
    // database of this test's own.
    let database = TempDatabase::create("db_must_open").await;
    let db = pgactor::must_open(&database.url, "", registry([stock_model()])).await;
    crud_round_trip(&db).await;
    db.close().await;
    database.remove().await;
}

#[tokio::test]
async fn two_adapters_in_one_process_serve_side_by_side() {
    let (a, _) = open_primary("open_a", [stock_model()]).await;
    let (b, _) = open_primary("open_b", [stock_model()]).await;
    let in_a: uuid::Uuid = a
        .create("StockBalance", Record::new().with("sku", "A-1"))
        .await
        .unwrap()
        .get("id")
        .unwrap();
    crud_round_trip(&b).await;
    a.read("StockBalance", in_a).await.expect("a reads its row");
    let err = b.read("StockBalance", in_a).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::NotFound, "b has its own schema");

    a.close().await;
    let err = a.read("StockBalance", in_a).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Closed, "{err}");
    crud_round_trip(&b).await;
    b.close().await;
}

#[tokio::test]
async fn a_failed_open_leaves_no_connection_behind() {
    let app = unique_app_name("failed_open");
    let (bad_read, _) = unreachable_dsn();
    let err = pgactor::OpenOptions::new(primary_url())
        .read_dsn(bad_read)
        .registry(registry([stock_model()]))
        .session(SessionConfig {
            application_name: Some(app.clone()),
            schema: Some(unique_schema("failed_open")),
            ..SessionConfig::default()
        })
        .open()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Unavailable, "{err}");
    // The write pool had connected before the read pool failed: it is closed.
    no_session_left(&app).await;
}

#[tokio::test]
async fn a_size_of_zero_for_the_statement_cache_the_notification_buffer_or_the_page_fails_open_naming_it(
) {
    let cases = [
        (
            "statement_cache_size",
            pgactor::OpenOptions::new(primary_url()).statement_cache_size(0),
        ),
        (
            "notification_buffer",
            pgactor::OpenOptions::new(primary_url()).notification_buffer(0),
        ),
        (
            "max_page",
            pgactor::OpenOptions::new(primary_url()).max_page(0),
        ),
    ];
    for (setting, options) in cases {
        let err = options.open().await.expect_err(setting);
        assert_eq!(err.kind(), &ErrorKind::Config, "{setting}: {err}");
        assert!(err.to_string().contains(setting), "{setting}: {err}");
    }
}
