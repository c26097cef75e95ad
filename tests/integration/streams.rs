//! Rows as a stream (`Db::stream`, `Db::stream_as`): many rows with the
//! server held back by a slow consumer, a stream dropped mid-way, the
//! query timeout per wait, errors mid-stream, the read pool.

use std::time::Duration;

use pgactor::{ErrorKind, PoolConfig, Sql};

use crate::support::db::{fast_probe, open_tagged, open_with_replica, unique_schema};
use crate::support::observer::{observer, session_states};
use crate::support::topology::{primary_url, replica_url};
use crate::support::wait::{eventually, ready, until};

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
        let seen = session_states(&obs, &app).await;
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
        .stream("SELECT generate_series(1, 100000000)")
        .await
        .unwrap();
    for _ in 0..10 {
        rows.next().await.unwrap().unwrap();
    }
    drop(rows);
    until("the connection is back in the pool, idle", || async {
        db.stats().write.in_use == 0
            && session_states(&obs, &app)
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

/// What a stream's actor does with each batch.
#[derive(Clone, Copy)]
enum Demand {
    /// Ask for the next batch at once.
    All,
    /// Keep the first batch's `More` without asking.
    Stall,
    /// Drop the first batch's `More`: stop.
    Stop,
}

/// What the actor saw: each batch's size, then the end.
#[derive(Debug)]
enum Seen {
    Batch(usize),
    End(pgactor::Result<u64>),
}

/// An actor that takes a stream's rows as `demand` says, reporting each
/// batch and the end to the test.
struct Consumer;

#[cfg_attr(feature = "async-trait", ractor::async_trait)]
impl ractor::Actor for Consumer {
    type Msg = pgactor::RowsMsg;
    type State = (
        Demand,
        tokio::sync::mpsc::UnboundedSender<Seen>,
        Vec<pgactor::More>,
    );
    type Arguments = (Demand, tokio::sync::mpsc::UnboundedSender<Seen>);

    async fn pre_start(
        &self,
        _: ractor::ActorRef<Self::Msg>,
        (demand, seen): Self::Arguments,
    ) -> Result<Self::State, ractor::ActorProcessingErr> {
        Ok((demand, seen, Vec::new()))
    }

    async fn handle(
        &self,
        _: ractor::ActorRef<Self::Msg>,
        msg: Self::Msg,
        (demand, seen, kept): &mut Self::State,
    ) -> Result<(), ractor::ActorProcessingErr> {
        match msg {
            pgactor::RowsMsg::Batch(rows, more) => {
                let _ = seen.send(Seen::Batch(rows.len()));
                match demand {
                    Demand::All => more.more(),
                    Demand::Stall => kept.push(more),
                    Demand::Stop => drop(more),
                }
            }
            pgactor::RowsMsg::End(end) => drop(seen.send(Seen::End(end))),
        }
        Ok(())
    }
}

/// Start a consumer taking a stream of `sql` sent by message to `db`.
async fn stream_to_actor(
    db: &pgactor::Db,
    sql: &str,
    call: pgactor::Call,
    demand: Demand,
) -> (
    ractor::ActorRef<pgactor::RowsMsg>,
    tokio::sync::mpsc::UnboundedReceiver<Seen>,
) {
    let (seen, events) = tokio::sync::mpsc::unbounded_channel();
    let (consumer, _) = ractor::Actor::spawn(None, Consumer, (demand, seen))
        .await
        .unwrap();
    db.actor()
        .send_message(pgactor::DbMsg::Stream(
            Sql::new(sql),
            call,
            consumer.get_derived(),
        ))
        .unwrap();
    (consumer, events)
}

#[tokio::test]
async fn an_actor_takes_a_streams_rows_in_batches_it_asks_for() {
    let (db, _app) = open_tagged("stream_actor", PoolConfig::default()).await;
    let (consumer, mut events) = stream_to_actor(
        &db,
        "SELECT g FROM generate_series(1, 25000) AS g",
        pgactor::Call::here(),
        Demand::All,
    )
    .await;
    let mut rows = 0;
    let total = loop {
        match events.recv().await.expect("the stream ends") {
            Seen::Batch(n) => {
                assert!((1..=pgactor::BATCH_ROWS).contains(&n), "{n}");
                rows += n;
            }
            Seen::End(end) => break end.unwrap(),
        }
    };
    assert_eq!((rows, total), (25000, 25000));
    assert_eq!(db.stats().write.in_use, 0);
    consumer.stop(None);

    // On the read pool, and refused before anything is sent.
    let (consumer, mut events) = stream_to_actor(
        &db,
        "SELECT current_setting('transaction_read_only')",
        pgactor::Call::here().on_replica(),
        Demand::All,
    )
    .await;
    assert!(matches!(events.recv().await, Some(Seen::Batch(1))));
    assert!(matches!(events.recv().await, Some(Seen::End(Ok(1)))));
    consumer.stop(None);
    let (consumer, mut events) =
        stream_to_actor(&db, " ", pgactor::Call::here(), Demand::All).await;
    match events.recv().await {
        Some(Seen::End(Err(err))) => assert_eq!(err.kind(), ErrorKind::InvalidInput),
        other => panic!("{other:?}"),
    }
    consumer.stop(None);
    db.close().await;
}

#[tokio::test]
async fn an_actor_that_stops_asking_ends_its_stream_and_frees_the_connection() {
    let (db, _app) = open_tagged("stream_actor_stall", PoolConfig::default()).await;
    // A set-returning function in the select list streams; in FROM it
    // would be materialized before the first row.
    let big = "SELECT generate_series(1, 100000000)";

    // Keeps its `More` without asking: past the query timeout, the stream ends.
    let call = pgactor::Call::here().query_timeout(Duration::from_millis(300));
    let (consumer, mut events) = stream_to_actor(&db, big, call, Demand::Stall).await;
    assert!(matches!(events.recv().await, Some(Seen::Batch(_))));
    match events.recv().await {
        Some(Seen::End(Err(err))) => {
            assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
            assert!(err.to_string().contains("did not ask"), "{err}");
        }
        other => panic!("{other:?}"),
    }
    until("the connection is back in the pool", || async {
        db.stats().write.in_use == 0
    })
    .await;
    consumer.stop(None);

    // Drops its `More`: the stream stops, nothing more comes.
    let (consumer, mut events) =
        stream_to_actor(&db, big, pgactor::Call::here(), Demand::Stop).await;
    assert!(matches!(events.recv().await, Some(Seen::Batch(_))));
    until("the connection is back in the pool", || async {
        db.stats().write.in_use == 0
    })
    .await;
    consumer.stop(None);
    assert!(events.recv().await.is_none(), "nothing after the stop");

    // Stops: the stream stops with it.
    let (consumer, mut events) =
        stream_to_actor(&db, big, pgactor::Call::here(), Demand::Stall).await;
    assert!(matches!(events.recv().await, Some(Seen::Batch(_))));
    consumer.stop(None);
    until("the connection is back in the pool", || async {
        db.stats().write.in_use == 0
    })
    .await;
    db.close().await;
}
