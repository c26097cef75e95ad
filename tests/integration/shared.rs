//! Shared reads (`OpenOptions::shared_reads`): many concurrent reads by id
//! take turns on a few connections, each caller still gets its own answer,
//! lists keep connections of their own, the stats say what is shared, and a
//! read past its query timeout retires its lane instead of leaving a
//! possibly busy connection in the pool.

use std::time::Duration;

use pgactor::{Db, ErrorKind, PoolConfig, Record};

use crate::support::blocking::{lock_stock_table, until_lock_waiters};
use crate::support::db::{stock_model, tagged_options, unique_schema};
use crate::support::observer::{no_session_left, observer};
use crate::support::topology::{bouncer_url, primary_url};
use crate::support::wait::{eventually, ready};

/// Open on the primary with `lanes` shared read connections out of pools
/// of 8; the schema is also the sessions' application_name.
async fn open_shared(prefix: &str, lanes: usize) -> (Db, String) {
    let schema = unique_schema(prefix);
    let pool = PoolConfig {
        max_open: Some(8),
        ..PoolConfig::default()
    };
    let db = tagged_options(&primary_url(), [stock_model()], pool, &schema, &schema)
        .shared_reads(lanes)
        .open()
        .await
        .expect("open");
    (db, schema)
}

async fn create_rows(db: &Db, n: usize) -> Vec<uuid::Uuid> {
    let mut ids = Vec::new();
    for i in 0..n {
        let row = Record::new()
            .with("sku", format!("s-{i}"))
            .with("quantity", i as i64);
        let row = db.create("StockBalance", row).await.expect("create");
        ids.push(row.get("id").expect("id"));
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reads_share_few_connections_and_each_gets_its_own_row() {
    let (db, schema) = open_shared("shared_many", 2).await;
    let ids = create_rows(&db, 40).await;

    let mut reads = Vec::new();
    for round in 0..20 {
        for (i, id) in ids.iter().enumerate() {
            let (db, id) = (db.clone(), *id);
            reads.push(tokio::spawn(async move {
                let row = db.read("StockBalance", id).await.expect("read");
                (round, i, id, row)
            }));
        }
    }
    for read in reads {
        let (_, i, id, row) = read.await.unwrap();
        assert_eq!(
            row.get::<uuid::Uuid>("id").unwrap(),
            id,
            "a read answered another caller's row"
        );
        assert_eq!(row.get::<i64>("quantity").unwrap(), i as i64);
    }

    let stats = db.stats();
    assert_eq!(stats.read.shared, 2, "{stats:?}");
    assert!(
        stats.read.in_use >= 2,
        "shared connections count as in use: {stats:?}"
    );
    // 800 concurrent reads, and the read pool never opened more than its
    // two lanes (plus the one `open` checks the server with).
    assert!(stats.read.open <= 3, "{stats:?}");

    db.close_within(Duration::from_secs(5)).await;
    no_session_left(&schema).await;
}

/// A list's cost grows with the rows it scans, so it never waits on a lane
/// behind reads (nor makes them wait): it runs on a connection of its own.
/// Seen from the server: with one lane busy, a list runs on a second
/// backend at the same time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_run_on_connections_of_their_own() {
    let (db, schema) = open_shared("shared_lists", 1).await;
    let id = create_rows(&db, 1).await[0];
    db.read("StockBalance", id).await.expect("warm the lane");

    let admin = lock_stock_table(&schema).await;
    let read = tokio::spawn({
        let db = db.clone();
        async move { db.read("StockBalance", id).await }
    });
    let list = tokio::spawn({
        let db = db.clone();
        async move { db.list("StockBalance", pgactor::Query::new()).await }
    });
    // Watched from outside the locking transaction, whose view of
    // pg_stat_activity is a snapshot taken once per transaction.
    let watcher = observer(&primary_url()).await;
    until_lock_waiters(&watcher, &schema, 2).await;
    admin.batch_execute("ROLLBACK").await.unwrap();
    let row = read.await.unwrap().expect("read");
    assert_eq!(row.get::<uuid::Uuid>("id").unwrap(), id);
    assert_eq!(list.await.unwrap().expect("list").total, Some(1));
    assert_eq!(db.stats().read.shared, 1);

    db.close_within(Duration::from_secs(5)).await;
    no_session_left(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_past_its_timeout_retires_its_lane_and_reads_go_on() {
    let (db, schema) = open_shared("shared_timeout", 1).await;
    let ids = create_rows(&db, 1).await;
    db.read("StockBalance", ids[0])
        .await
        .expect("warm the lane");

    // A deadline shorter than the lane's lock bound: the read times out on
    // its lane, before it could move to a connection of its own.
    let admin = lock_stock_table(&schema).await;
    let err = db
        .with_query_timeout(Duration::from_millis(20))
        .read("StockBalance", ids[0])
        .await
        .expect_err("the table is locked");
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    admin.batch_execute("ROLLBACK").await.unwrap();

    // The lane's connection is closed, never given back, and a new one serves.
    let row = db
        .read("StockBalance", ids[0])
        .await
        .expect("read after the timeout");
    assert_eq!(row.get::<uuid::Uuid>("id").unwrap(), ids[0]);
    eventually("the timed-out lane's connection is closed", || async {
        let stats = db.stats();
        ready(stats.read.closed.broken >= 1 && stats.read.shared == 1, ())
    })
    .await;
    // Its statement did not outlive it on the server.
    let waiting: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state = 'active'",
            &[&schema],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(waiting, 0);
    db.close_within(Duration::from_secs(5)).await;
    no_session_left(&schema).await;
}

/// Lanes hold their connections for as long as they serve: as many lanes
/// as read connections would leave none for lists or a lane's replacement.
#[tokio::test]
async fn as_many_lanes_as_read_connections_or_more_is_refused_at_open() {
    for lanes in [2, 3] {
        let err = pgactor::OpenOptions::new(primary_url())
            .read_pool(PoolConfig {
                max_open: Some(2),
                ..PoolConfig::default()
            })
            .shared_reads(lanes)
            .open()
            .await
            .expect_err("lanes need a read connection to spare");
        assert_eq!(err.kind(), ErrorKind::Config, "{err}");
        assert!(err.to_string().contains("shared_reads"), "{err}");
    }
}

/// A lane sets its own lock_timeout, which behind a transaction-pooling
/// bouncer would reach other clients' sessions.
#[tokio::test]
async fn shared_reads_behind_a_transaction_pooling_bouncer_are_refused_at_open() {
    let err = pgactor::OpenOptions::new(bouncer_url())
        .pooler(pgactor::PoolerMode::Transaction)
        .shared_reads(1)
        .open()
        .await
        .expect_err("lanes need a session of their own");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("shared_reads"), "{err}");
}
