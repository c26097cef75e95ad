//! What operators see: one span per operation with the OpenTelemetry
//! database conventions' fields, a WARN per slow operation, a span per transaction around its operations, connection events,
//! and never a password, whatever is logged or printed.

use pgactor::{Db, Query, Record, SessionConfig, TxOptions};

use crate::support::db::{registry, stock_model, unique_schema};
use crate::support::logs::Captured;
use crate::support::topology::primary_url;

async fn open_in(url: &str, read: &str) -> Db {
    open_in_schema(url, read, &unique_schema("obs")).await
}

async fn open_in_schema(url: &str, read: &str, schema: &str) -> Db {
    pgactor::OpenOptions::new(url)
        .read_dsn(read)
        .registry(registry([stock_model()]))
        .session(SessionConfig {
            schema: Some(schema.into()),
            ..SessionConfig::default()
        })
        .open()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_operation_has_a_span_with_otel_fields_and_transactions_wrap_theirs() {
    let captured = Captured::default();
    let _guard = captured.install();
    let schema = unique_schema("obs");
    let db = open_in_schema(&primary_url(), "", &schema).await;
    let row = db
        .create("StockBalance", Record::new().with("sku", "a"))
        .await
        .unwrap();
    let id: uuid::Uuid = row.get("id").unwrap();
    db.read("StockBalance", id).await.unwrap();
    db.list("StockBalance", Query::new()).await.unwrap();
    let _ = db
        .read("StockBalance", uuid::Uuid::new_v4())
        .await
        .unwrap_err();
    let tx = db.begin(TxOptions::default()).await.unwrap();
    tx.lock_for_update("StockBalance", id).await.unwrap();
    tx.update("StockBalance", id, Record::new().with("quantity", 2_i64))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    db.close().await;

    let text = captured.text();
    let closes: Vec<&str> = text.lines().filter(|l| l.contains("close")).collect();
    let span_with = |needles: &[&str]| closes.iter().any(|l| needles.iter().all(|n| l.contains(n)));
    for (operation, role) in [("create", "write"), ("read", "read"), ("list", "read")] {
        assert!(
            span_with(&[
                "db{",
                "db.system.name=\"postgresql\"",
                &format!("db.namespace=\"postgres|{schema}\""),
                &format!("db.operation.name=\"{operation}\""),
                "db.collection.name=\"StockBalance\"",
                "server.address=\"127.0.0.1\"",
                "server.port=",
                &format!("pgactor.role=\"{role}\""),
                "pgactor.outcome=\"ok\"",
            ]),
            "no {operation} span in\n{text}"
        );
    }
    assert!(
        span_with(&[
            "db.operation.name=\"read\"",
            "pgactor.outcome=\"error\"",
            "error.type=\"NOT_FOUND\""
        ]),
        "{text}"
    );
    assert!(
        span_with(&["db.operation.name=\"list\"", "db.response.returned_rows=1"]),
        "{text}"
    );
    // Operations inside the transaction are children of its span.
    for operation in ["lock_for_update", "update"] {
        assert!(
            span_with(&[
                "tx{",
                &format!("db.operation.name=\"{operation}\""),
                "pgactor.role=\"tx\""
            ]),
            "no {operation} inside a tx span in\n{text}"
        );
    }
    assert!(
        span_with(&[
            "tx{",
            "db.system.name=\"postgresql\"",
            "pgactor.tx.isolation=\"read_committed\"",
            "pgactor.tx.read_only=false",
            "pgactor.outcome=\"ok\""
        ]),
        "{text}"
    );
    assert!(text.contains("connection opened"), "{text}");
}

#[tokio::test]
async fn a_password_in_the_dsn_never_appears_in_any_output() {
    const SECRET: &str = "Pgactor-Secret-4f1b";
    let with_password = primary_url().replacen(
        "postgres://postgres@",
        &format!("postgres://postgres:{SECRET}@"),
        1,
    );
    assert!(
        with_password.contains(SECRET),
        "the DSN carries the password"
    );
    let captured = Captured::default();
    let _guard = captured.install();

    let db = open_in(&with_password, &with_password).await;
    let row = db
        .create("StockBalance", Record::new().with("sku", "p"))
        .await
        .unwrap();
    let bad = db
        .create("StockBalance", Record::new().with("sku", "p"))
        .await
        .unwrap_err();
    let mut printed = format!(
        "{db:?} {bad} {bad:?} {:?} {}",
        db.stats(),
        db.stats().to_prometheus()
    );
    printed.push_str(&format!("{row:?}"));
    let options = pgactor::OpenOptions::new(with_password.clone()).read_dsn(with_password.clone());
    printed.push_str(&format!("{options:?}"));
    // Errors of opening: an unreachable server and a malformed DSN.
    let unreachable = with_password
        .replace("127.0.0.1", "127.0.0.2")
        .replace(":5", ":1");
    for dsn in [unreachable, format!("{with_password}&sslmode=bogus")] {
        let err = pgactor::open(&dsn, "", registry([stock_model()]))
            .await
            .unwrap_err();
        printed.push_str(&format!("{err} {err:?}"));
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            printed.push_str(&format!("{cause} {cause:?}"));
            source = cause.source();
        }
    }
    db.close().await;

    let everything = format!("{}\n{printed}", captured.text());
    assert!(everything.contains("pgactor open"), "the capture works");
    assert!(
        !everything.contains(SECRET),
        "the password leaked:\n{everything}"
    );
}

/// Create a row with `secret` in a text field, find it with a filter on
/// `secret`, update it to `secret` again, inside a transaction too: every
/// way a value is bound. Answers what was logged, at every level.
async fn bind_everywhere(db: &Db, secret: &str) -> String {
    let captured = Captured::default();
    let guard = captured.install();
    let row = db
        .create("StockBalance", Record::new().with("sku", secret))
        .await
        .unwrap();
    let id: uuid::Uuid = row.get("id").unwrap();
    let page = db
        .list(
            "StockBalance",
            Query::new().filter(pgactor::Filter::eq("sku", secret)),
        )
        .await
        .unwrap();
    assert_eq!(page.rows.len(), 1);
    db.update("StockBalance", id, Record::new().with("sku", secret))
        .await
        .unwrap();
    let tx = db.begin(TxOptions::default()).await.unwrap();
    tx.update("StockBalance", id, Record::new().with("sku", secret))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    drop(guard);
    captured.text()
}

#[tokio::test]
async fn bound_values_never_appear_in_logs_unless_the_switch_allows_them() {
    let db = open_in(&primary_url(), "").await;
    let logged = bind_everywhere(&db, "SECRET-VALUE-1").await;
    // The driver logs each statement it runs with prepared parameters.
    assert!(
        logged.contains("with parameters"),
        "the driver's DEBUG records were not captured: {logged}"
    );
    assert!(
        !logged.contains("SECRET-VALUE-1"),
        "a bound value was logged: {logged}"
    );
    assert!(logged.contains("<text>"), "the redacted value: {logged}");

    // The one switch lets them through, for debugging; and back off.
    pgactor::log_bound_values(true);
    let logged = bind_everywhere(&db, "SECRET-VALUE-2").await;
    pgactor::log_bound_values(false);
    assert!(
        logged.contains("SECRET-VALUE-2"),
        "the switch did not show the value: {logged}"
    );
    let logged = bind_everywhere(&db, "SECRET-VALUE-3").await;
    assert!(
        !logged.contains("SECRET-VALUE-3"),
        "a bound value was logged: {logged}"
    );
    db.close().await;
}

async fn open_slow(schema: &str, threshold: std::time::Duration) -> Db {
    pgactor::OpenOptions::new(primary_url())
        .registry(registry([stock_model()]))
        .session(SessionConfig {
            schema: Some(schema.into()),
            ..SessionConfig::default()
        })
        .slow_operation(threshold)
        .open()
        .await
        .unwrap()
}

/// An update that waits for a row another transaction holds for 600 ms,
/// binding `secret`; and a raw statement sleeping as long, binding it too.
async fn slow_operations(db: &Db, secret: &str) {
    let id: uuid::Uuid = db
        .create("StockBalance", Record::new().with("sku", "slow"))
        .await
        .unwrap()
        .get("id")
        .unwrap();
    let holder = db.begin(TxOptions::default()).await.unwrap();
    holder.lock_for_update("StockBalance", id).await.unwrap();
    let waiter = db.update("StockBalance", id, Record::new().with("sku", secret));
    let release = async {
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        holder.commit().await.unwrap();
    };
    let (updated, ()) = tokio::join!(waiter, release);
    updated.unwrap();
    db.execute(
        pgactor::Sql::new("SELECT pg_sleep(0.6), length($1::text)").bind(secret.to_string()),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn an_operation_past_the_slow_threshold_logs_one_warn_with_its_statement_and_no_value() {
    const SECRET: &str = "Slow-Secret-9c2e";
    let captured = Captured::default();
    let guard = captured.install();
    let db = open_slow(
        &unique_schema("slow"),
        std::time::Duration::from_millis(300),
    )
    .await;
    slow_operations(&db, SECRET).await;
    drop(guard);
    db.close().await;

    let text = captured.text();
    let slow: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("slow operation"))
        .collect();
    let update: Vec<&&str> = slow
        .iter()
        .filter(|l| l.contains("db.operation.name=\"update\""))
        .collect();
    assert_eq!(update.len(), 1, "one WARN for the update in\n{text}");
    for needle in [
        "pgactor.slow",
        "db.system.name=\"postgresql\"",
        "db.collection.name=\"StockBalance\"",
        "pgactor.role=\"write\"",
        "db.query.text=\"UPDATE",
        "$1",
        "pgactor.duration_ms=",
    ] {
        assert!(update[0].contains(needle), "no {needle} in {}", update[0]);
    }
    let raw: Vec<&&str> = slow
        .iter()
        .filter(|l| l.contains("db.operation.name=\"execute\""))
        .collect();
    assert_eq!(raw.len(), 1, "one WARN for the raw statement in\n{text}");
    assert!(
        raw[0].contains("db.query.text=\"SELECT pg_sleep(0.6), length($1::text)\""),
        "{}",
        raw[0]
    );
    assert!(
        !text.contains(SECRET),
        "a bound value reached the log:\n{text}"
    );
}

#[tokio::test]
async fn a_zero_slow_threshold_logs_no_slow_operation() {
    let captured = Captured::default();
    let guard = captured.install();
    let db = open_slow(&unique_schema("noslow"), std::time::Duration::ZERO).await;
    slow_operations(&db, "not-secret").await;
    drop(guard);
    db.close().await;
    let text = captured.text();
    assert!(text.contains("pgactor open"), "the capture works");
    assert!(!text.contains("slow operation"), "{text}");
}
