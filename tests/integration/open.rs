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

use crate::schema::crud_round_trip;
use crate::support::blocking::{lock_stock_table, lock_waiters, until_lock_waiters};
use crate::support::db::{
    in_schema, open_primary, registry, stock_model, unique_app_name, unique_schema,
};
use crate::support::observer::{no_session_left, observer, rows_in};
use crate::support::topology::{primary_url, replica_url, TempDatabase};

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
    assert_eq!(err.kind(), kind, "{err}");
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
        .session(in_schema(&unique_schema("open_read")))
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
    until_lock_waiters(&watcher, &app, 2).await;

    // Both write connections are busy: the third write waits for one, then gives up.
    // (A guard, not a timing check: were max_open not honoured, this write
    // would queue on the lock like the other two.)
    let third = tokio::time::timeout(Duration::from_secs(20), create("B-3"))
        .await
        .expect("the third write waits for the pool, not for the lock");
    let err = third.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("write pool"), "{err}");
    assert_eq!(lock_waiters(&watcher, &app).await, 2, "no third connection");

    locker.batch_execute("COMMIT").await.unwrap();
    for task in blocked {
        task.await
            .unwrap()
            .expect("a queued write completes once the lock is gone");
    }
    assert_eq!(
        rows_in(&watcher, &schema, "stock_balance").await,
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
    assert_eq!(err.kind(), ErrorKind::NotFound, "b has its own schema");

    a.close().await;
    let err = a.read("StockBalance", in_a).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
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
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    // The write pool had connected before the read pool failed: it is closed.
    no_session_left(&app).await;
}

/// Options on the primary (and the replica as read DSN) with one setting changed.
fn options_with(
    change: impl FnOnce(pgactor::OpenOptions) -> pgactor::OpenOptions,
) -> pgactor::OpenOptions {
    change(
        pgactor::OpenOptions::new(primary_url())
            .read_dsn(replica_url())
            .registry(registry([stock_model()]))
            .session(in_schema(&unique_schema("open_bounds"))),
    )
}

#[tokio::test]
async fn every_setting_out_of_bounds_fails_open_with_a_config_error_naming_it() {
    use pgactor::ReplicaConfig;
    let huge = Duration::from_secs(u64::MAX / 4);
    let pool = |config: PoolConfig| move |o: pgactor::OpenOptions| o.write_pool(config);
    let read_pool = |config: PoolConfig| move |o: pgactor::OpenOptions| o.read_pool(config);
    let session = |config: SessionConfig| move |o: pgactor::OpenOptions| o.session(config);
    let replica = |config: ReplicaConfig| move |o: pgactor::OpenOptions| o.replica(config);
    type Change = Box<dyn FnOnce(pgactor::OpenOptions) -> pgactor::OpenOptions>;
    let cases: Vec<(&str, Change)> = vec![
        // Panicked inside open (a semaphore of usize::MAX permits).
        (
            "max_open",
            Box::new(pool(PoolConfig {
                max_open: Some(usize::MAX),
                ..PoolConfig::default()
            })),
        ),
        // Aborted the process (a slot reserved per connection).
        (
            "max_open",
            Box::new(read_pool(PoolConfig {
                max_open: Some(1 << 36),
                ..PoolConfig::default()
            })),
        ),
        (
            "max_open",
            Box::new(pool(PoolConfig {
                max_open: Some(pgactor::MAX_POOL_SIZE + 1),
                ..PoolConfig::default()
            })),
        ),
        (
            "max_idle",
            Box::new(pool(PoolConfig {
                max_open: Some(2),
                max_idle: Some(3),
                ..PoolConfig::default()
            })),
        ),
        (
            "max_queued",
            Box::new(pool(PoolConfig {
                max_queued: Some(usize::MAX),
                ..PoolConfig::default()
            })),
        ),
        (
            "max_lifetime",
            Box::new(pool(PoolConfig {
                max_lifetime: Some(huge),
                ..PoolConfig::default()
            })),
        ),
        (
            "max_idle_time",
            Box::new(read_pool(PoolConfig {
                max_idle_time: Some(huge),
                ..PoolConfig::default()
            })),
        ),
        (
            "wait_timeout",
            Box::new(pool(PoolConfig {
                wait_timeout: Some(huge),
                ..PoolConfig::default()
            })),
        ),
        (
            "connect_timeout",
            Box::new(pool(PoolConfig {
                connect_timeout: Some(huge),
                ..PoolConfig::default()
            })),
        ),
        (
            "wait_timeout",
            Box::new(pool(PoolConfig {
                wait_timeout: Some(Duration::ZERO),
                ..PoolConfig::default()
            })),
        ),
        (
            "statement_timeout",
            Box::new(session(SessionConfig {
                statement_timeout: Some(pgactor::MAX_SERVER_TIMEOUT + Duration::from_millis(1)),
                ..SessionConfig::default()
            })),
        ),
        (
            "lock_timeout",
            Box::new(session(SessionConfig {
                lock_timeout: Some(huge),
                ..SessionConfig::default()
            })),
        ),
        (
            "idle_in_transaction_timeout",
            Box::new(session(SessionConfig {
                idle_in_transaction_timeout: Some(huge),
                ..SessionConfig::default()
            })),
        ),
        (
            "query_timeout",
            Box::new(session(SessionConfig {
                query_timeout: Some(Duration::MAX),
                ..SessionConfig::default()
            })),
        ),
        // Killed the replica monitor while stats still said up.
        (
            "poll_interval",
            Box::new(replica(ReplicaConfig {
                poll_interval: Duration::ZERO,
                ..ReplicaConfig::default()
            })),
        ),
        (
            "poll_interval",
            Box::new(replica(ReplicaConfig {
                poll_interval: Duration::MAX,
                ..ReplicaConfig::default()
            })),
        ),
        (
            "max_lag",
            Box::new(replica(ReplicaConfig {
                max_lag: Some(Duration::MAX),
                ..ReplicaConfig::default()
            })),
        ),
        (
            "shared_reads",
            Box::new(|o: pgactor::OpenOptions| o.shared_reads(usize::MAX)),
        ),
    ];
    for (setting, change) in cases {
        let opened = tokio::spawn(options_with(change).open()).await;
        let err = match opened {
            Ok(Ok(db)) => {
                db.close().await;
                panic!("{setting}: open succeeded");
            }
            Ok(Err(err)) => err,
            Err(panicked) => panic!("{setting}: open panicked: {panicked}"),
        };
        assert_open_error(&err, ErrorKind::Config, &[setting]);
    }
}

#[test]
fn a_pool_of_one_keeps_its_connection_when_idle() {
    use pgactor::Role;
    for role in [Role::Write, Role::Read] {
        let one = PoolConfig {
            max_open: Some(1),
            ..PoolConfig::default()
        };
        let settings = one.resolve(role).expect("valid");
        assert_eq!((settings.max_open, settings.max_idle), (1, 1), "{role}");
    }
}

#[tokio::test]
async fn a_pool_of_one_serves_calls_an_idle_second_apart_on_one_connection() {
    let schema = unique_schema("open_one");
    let db = pgactor::OpenOptions::new(primary_url())
        .registry(registry([stock_model()]))
        .session(in_schema(&schema))
        .write_pool(PoolConfig {
            max_open: Some(1),
            ..PoolConfig::default()
        })
        .read_pool(PoolConfig {
            max_open: Some(1),
            ..PoolConfig::default()
        })
        .open()
        .await
        .expect("open");
    let row = db
        .create(
            "StockBalance",
            Record::new().with("sku", "one").with("quantity", 1_i64),
        )
        .await
        .expect("create");
    let id: uuid::Uuid = row.get("id").expect("id");
    // The reaper looks at idle connections at least every second: after
    // two seconds it has had its passes over the idle connection.
    tokio::time::sleep(Duration::from_secs(2)).await;
    db.read("StockBalance", id).await.expect("read");
    let stats = db.stats();
    assert_eq!(
        (
            stats.write.closed.max_idle_count,
            stats.read.closed.max_idle_count
        ),
        (0, 0),
        "an idle connection of a pool of one was closed: {stats:?}"
    );
    db.close().await;
}

/// The two halves of the password the malformed DSNs below carry.
const HALVES: [&str; 2] = ["LEFTHALFpw", "RIGHTHALFpw"];

/// Malformed DSNs whose password (or part of it) a parser could take for
/// the user, the host, the database, an option name or an sslmode.
fn malformed_with_password() -> Vec<String> {
    let [left, right] = HALVES;
    vec![
        // An unencoded @ in the password.
        format!("postgres://app:{left}@{right}@127.0.0.1:5432/shop"),
        format!("postgres://app:{left}@{right}/x@127.0.0.1:5432/shop"),
        // password= as a parameter, an @ later in the URL.
        format!("postgres://127.0.0.1/shop?user=app&password={left}&application_name=x@{right}"),
        format!("postgres://127.0.0.1?password={left}:{right}@x"),
        // An unencoded & or an unquoted space in the password.
        format!("postgres://app@127.0.0.1/shop?password={left}&{right}=1"),
        format!("host=127.0.0.1 user=app password={left} {right}=1"),
        // A password pasted where the sslmode goes.
        format!("postgres://app@127.0.0.1/shop?sslmode={left}{right}"),
        format!("host=127.0.0.1 sslmode='{left} {right}'"),
    ]
}

fn shows_a_half(text: &str) -> bool {
    HALVES.iter().any(|half| text.contains(half))
}

#[tokio::test]
async fn malformed_dsns_never_show_any_part_of_the_password() {
    for dsn in malformed_with_password() {
        let options = pgactor::OpenOptions::new(dsn.as_str()).read_dsn(dsn.as_str());
        let debug = format!("{options:?}");
        assert!(!shows_a_half(&debug), "Debug shows the password: {debug}");
        let err = options.open().await.expect_err("malformed");
        let shown = everything_shown(&err);
        assert!(
            !shows_a_half(&shown),
            "the error shows the password: {shown}"
        );
        assert_eq!(err.kind(), ErrorKind::Config, "{dsn}: {err}");
        let panicked = tokio::spawn({
            let dsn = dsn.clone();
            async move { pgactor::must_open(&dsn, "", Registry::new()).await }
        })
        .await
        .expect_err("must_open panics")
        .into_panic();
        let message = panicked
            .downcast_ref::<String>()
            .cloned()
            .expect("a text panic message");
        assert!(
            !shows_a_half(&message),
            "the panic shows the password: {message}"
        );
    }
}

#[tokio::test]
async fn an_unknown_sslmode_is_quoted_as_a_short_prefix_only() {
    let err = pgactor::open(
        "postgres://app@127.0.0.1/shop?sslmode=verify-fulll",
        "",
        Registry::new(),
    )
    .await
    .expect_err("unknown sslmode");
    assert_eq!(err.kind(), ErrorKind::Config);
    let shown = err.to_string();
    assert!(
        shown.contains("unknown sslmode \"ver…\" (12 bytes)"),
        "{shown}"
    );
    assert!(!shown.contains("verify-fulll"), "{shown}");
}

#[tokio::test]
async fn a_size_of_zero_for_the_statement_cache_the_notification_buffer_the_channels_or_the_page_fails_open_naming_it(
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
            "max_channels",
            pgactor::OpenOptions::new(primary_url()).max_channels(0),
        ),
        (
            "max_page",
            pgactor::OpenOptions::new(primary_url()).max_page(0),
        ),
    ];
    for (setting, options) in cases {
        let err = options.open().await.expect_err(setting);
        assert_eq!(err.kind(), ErrorKind::Config, "{setting}: {err}");
        assert!(err.to_string().contains(setting), "{setting}: {err}");
    }
}
