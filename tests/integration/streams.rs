//! Rows as a stream (`Db::stream`, `Db::stream_as`): many rows with the
//! server held back by a slow consumer, a stream dropped mid-way, the
//! query timeout per wait, errors mid-stream, the read pool.

use std::time::Duration;

use pgactor::{ErrorKind, PoolConfig, Sql};

use crate::support::db::{fast_probe, open_tagged, open_with_replica, unique_schema};
use crate::support::observer::observer;
use crate::support::topology::{primary_url, replica_url};
use crate::support::wait::{eventually, ready, until};

/// The state and wait event of each backend named `app`.
async fn backends(obs: &tokio_postgres::Client, app: &str) -> Vec<(String, Option<String>)> {
    obs.query(
        "SELECT state, wait_event FROM pg_stat_activity WHERE application_name = $1",
        &[&app],
    )
    .await
    .expect("pg_stat_activity")
    .iter()
    .map(|row| (row.get(0), row.get(1)))
    .collect()
}

#[tokio::test]
async fn a_million_rows_stream_through_while_a_slow_consumer_holds_the_server_back() {
    let (db, app) = open_tagged("stream_many", PoolConfig::default()).await;
    let obs = observer(&primary_url()).await;
    let mut rows = db
        .stream_as::<(i64, String)>(
            "SELECT g::int8, repeat('x', 100) FROM generate_series(1, 1000000) AS g",
        )
        .await
        .unwrap();
    let (first, _) = rows.next().await.unwrap().unwrap();
    assert_eq!(first, 1);
    // The consumer pauses: the driver stops reading, the kernel's buffers
    // fill, and the server's backend waits to write the rest.
    eventually("the server waits for the client to read", || async {
        let seen = backends(&obs, &app).await;
        let writing = seen
            .iter()
            .any(|(state, wait)| state == "active" && wait.as_deref() == Some("ClientWrite"));
        ready(writing, seen)
    })
    .await;
    assert_eq!(
        db.stats().write.in_use,
        1,
        "the stream holds its connection"
    );

    let (mut count, mut sum) = (1_u64, 1_i64);
    while let Some(row) = rows.next().await {
        let (g, pad) = row.unwrap();
        assert_eq!(pad.len(), 100);
        count += 1;
        sum += g;
    }
    assert_eq!(count, 1_000_000);
    assert_eq!(sum, 500_000_500_000);
    assert!(rows.next().await.is_none(), "an ended stream stays ended");
    assert_eq!(
        db.stats().write.in_use,
        0,
        "its end gives the connection back"
    );
    db.close().await;
}

#[tokio::test]
async fn a_stream_dropped_mid_way_cancels_its_statement_and_frees_its_connection() {
    let (db, app) = open_tagged("stream_drop", PoolConfig::default()).await;
    let obs = observer(&primary_url()).await;
    let mut rows = db
        .stream("SELECT g FROM generate_series(1, 100000000) AS g")
        .await
        .unwrap();
    for _ in 0..10 {
        rows.next().await.unwrap().unwrap();
    }
    drop(rows);
    until("the connection is back in the pool, idle", || async {
        db.stats().write.in_use == 0
            && backends(&obs, &app)
                .await
                .iter()
                .all(|(state, _)| state == "idle")
    })
    .await;
    assert_eq!(db.stats().write.closed.broken, 0, "reused, not closed");
    let (n,): (i64,) = db.query_one_as("SELECT 41::int8 + 1").await.unwrap();
    assert_eq!(n, 42);
    db.close().await;
}

#[tokio::test]
async fn the_query_timeout_bounds_each_wait_for_the_server_not_the_consumer() {
    let (db, _app) = open_tagged("stream_timeout", PoolConfig::default()).await;
    let bounded = db.with_query_timeout(Duration::from_millis(300));

    // A consumer slower than the timeout, rows already on their way: fine.
    let mut rows = bounded
        .stream_as::<(i32,)>("SELECT g FROM generate_series(1, 5) AS g")
        .await
        .unwrap();
    let mut seen = Vec::new();
    while let Some(row) = rows.next().await {
        seen.push(row.unwrap().0);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    assert_eq!(seen, [1, 2, 3, 4, 5]);

    // A server slower than the timeout before its first rows: cancelled,
    // and the cancel confirmed before the answer.
    let err = bounded.stream("SELECT pg_sleep(5)").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(
        err.to_string()
            .contains("300ms query timeout and was cancelled on the server"),
        "{err}"
    );

    // Slower between two batches (the server sends rows 8 KiB at a time):
    // cancelled once the rows sent before are taken. On the read pool, where
    // statements cannot write, that is a Timeout (on the primary an
    // unconfirmed cancel leaves a statement that may write OutcomeUnknown).
    let mut rows = bounded
        .replica()
        .stream_as::<(i32, String)>(
            "SELECT g, repeat('x', 1000) FROM generate_series(1, 100) AS g, \
             LATERAL (SELECT pg_sleep(CASE WHEN g = 50 THEN 5 ELSE 0 END)) AS s",
        )
        .await
        .unwrap();
    let mut taken = 0;
    let err = loop {
        match rows.next().await.unwrap() {
            Ok((g, _)) => {
                taken += 1;
                assert_eq!(g, taken);
            }
            Err(err) => break err,
        }
    };
    assert!(
        (1..50).contains(&taken),
        "{taken} rows came before the pause"
    );
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.to_string().contains("300ms query timeout"), "{err}");
    assert!(rows.next().await.is_none());
    until("the connection is back in the pool", || async {
        db.stats().read.in_use == 0
    })
    .await;
    until("the connection is back in the pool", || async {
        db.stats().write.in_use == 0
    })
    .await;
    let (n,): (i32,) = db.query_one_as("SELECT 7").await.unwrap();
    assert_eq!(n, 7);
    db.close().await;
}

#[tokio::test]
async fn an_error_mid_stream_ends_it_and_decode_errors_are_per_row() {
    let (db, _app) = open_tagged("stream_errors", PoolConfig::default()).await;
    let mut rows = db
        .stream_as::<(i32,)>("SELECT 6 / (3 - g) FROM generate_series(1, 5) AS g")
        .await
        .unwrap();
    assert_eq!(rows.next().await.unwrap().unwrap().0, 3);
    assert_eq!(rows.next().await.unwrap().unwrap().0, 6);
    let err = rows.next().await.unwrap().unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::InvalidInput,
        "division by zero: {err}"
    );
    assert!(rows.next().await.is_none());
    assert_eq!(db.stats().write.in_use, 0);

    // A row of another shape fails to decode; the stream goes on.
    let mut rows = db
        .stream_as::<(String,)>("SELECT g FROM generate_series(1, 2) AS g")
        .await
        .unwrap();
    for _ in 0..2 {
        let err = rows.next().await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Decode, "{err}");
    }
    assert!(rows.next().await.is_none());

    // Refused before anything is sent.
    let err = db.stream(Sql::new("")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(db.stats().write.in_use, 0);
    db.close().await;
}

#[tokio::test]
async fn a_stream_on_the_read_pool_runs_on_the_replica() {
    let schema = unique_schema("stream_replica");
    let db = open_with_replica(&primary_url(), &replica_url(), fast_probe(), &schema).await;
    let mut rows = db
        .replica()
        .stream_as::<(bool,)>("SELECT pg_is_in_recovery()")
        .await
        .unwrap();
    assert!(rows.next().await.unwrap().unwrap().0);
    assert!(rows.next().await.is_none());
    let mut rows = db
        .stream_as::<(bool,)>("SELECT pg_is_in_recovery()")
        .await
        .unwrap();
    assert!(!rows.next().await.unwrap().unwrap().0);
    db.close().await;
}

/// Cursors open in the transaction.
async fn cursors(tx: &pgactor::Tx) -> i64 {
    tx.query_one_as::<(i64,)>("SELECT count(*) FROM pg_cursors WHERE name LIKE 'pgactor_rows_%'")
        .await
        .unwrap()
        .0
}

#[tokio::test]
async fn a_stream_in_a_transaction_reads_its_writes_in_batches_between_its_statements() {
    let (db, _app) = open_tagged("stream_tx", PoolConfig::default()).await;
    let tx = db.begin(pgactor::TxOptions::default()).await.unwrap();
    let written = tx
        .execute(
            Sql::new(
                "INSERT INTO stock_balance (id, sku, quantity) \
                 SELECT gen_random_uuid(), 'sku-' || g, g FROM generate_series(1, $1) AS g",
            )
            .bind(2500_i32),
        )
        .await
        .unwrap();
    assert_eq!(written, 2500);

    let mut rows = tx
        .stream_as::<(i64,)>(
            Sql::new("SELECT quantity FROM stock_balance WHERE quantity > $1 ORDER BY quantity")
                .bind(0_i64),
        )
        .await
        .unwrap();
    let mut expected = 1;
    while let Some(row) = rows.next().await {
        assert_eq!(row.unwrap().0, expected);
        if expected == 1500 {
            // The transaction's other statements run between two batches.
            assert_eq!(cursors(&tx).await, 1);
            tx.execute("UPDATE stock_balance SET note = 'seen' WHERE quantity = 1")
                .await
                .unwrap();
        }
        expected += 1;
    }
    assert_eq!(expected, 2501);
    assert_eq!(cursors(&tx).await, 0, "its end closed the cursor");

    // Dropped mid-way, it closes its cursor all the same.
    let mut rows = tx.stream("SELECT * FROM stock_balance").await.unwrap();
    rows.next().await.unwrap().unwrap();
    drop(rows);
    until("the dropped stream's cursor is closed", || async {
        cursors(&tx).await == 0
    })
    .await;
    tx.rollback().await.unwrap();
    let (left,): (i64,) = db
        .query_one_as("SELECT count(*) FROM stock_balance")
        .await
        .unwrap();
    assert_eq!(left, 0);
    db.close().await;
}

#[tokio::test]
async fn a_transaction_holds_a_bounded_number_of_streams_and_refuses_a_non_query() {
    let (db, _app) = open_tagged("stream_tx_bounds", PoolConfig::default()).await;
    let tx = db.begin(pgactor::TxOptions::default()).await.unwrap();
    let mut open = Vec::new();
    for _ in 0..64 {
        open.push(tx.stream("SELECT 1").await.unwrap());
    }
    let refused = tx.stream("SELECT 1").await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::InvalidInput, "{refused}");
    assert!(refused.to_string().contains("64 streams"), "{refused}");
    // Reading one to its end gives its name back.
    let mut first = open.swap_remove(0);
    assert!(first.next().await.unwrap().is_ok());
    assert!(first.next().await.is_none());
    let mut again = tx.stream("SELECT 2").await.unwrap();
    assert!(again.next().await.unwrap().is_ok());
    drop(open);
    drop(again);
    until("the dropped streams' cursors are closed", || async {
        cursors(&tx).await == 0
    })
    .await;
    tx.commit().await.unwrap();

    let tx = db.begin(pgactor::TxOptions::default()).await.unwrap();
    let not_a_query = tx
        .stream("UPDATE stock_balance SET note = 'x'")
        .await
        .unwrap_err();
    assert_eq!(not_a_query.kind(), ErrorKind::Database, "{not_a_query}");
    tx.rollback().await.unwrap();
    db.close().await;
}
