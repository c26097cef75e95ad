//! Scenarios 6c–6e: shared read connections (`OpenOptions::shared_reads`)
//! when the read pool has no connection to spare or a lane's read waits
//! for a lock (catalogue H1, H2, G).
//!
//! - 6c: a lane's backend is terminated while the read pool's other
//!   connection is held by a list waiting on a lock: the dead lane gives
//!   its connection back, so its replacement can be opened, and reads go
//!   on (no read fails).
//! - 6d: both read connections are held by lists waiting on a lock, and 4
//!   reads want a lane: they wait as checkouts do, each answered within the
//!   pool's `wait_timeout` (never one behind the other), and counted against
//!   `max_queued` (2 of them refused at once).
//! - 6e: a read on a lane waits for a table lock; a read of another table
//!   sent behind it on the same lane answers while the lock is still held
//!   (the blocked read leaves the lane after the lane's lock bound).

use std::time::{Duration, Instant};

use pgactor::{Db, Field, FieldType, Model, PoolConfig, Record};

use crate::figures::{self, Figures};
use crate::support::blocking::{lock_table, lock_waiters, until_lock_waiters};
use crate::support::db::{create_stock, stock_model, tagged_options, unique_schema};
use crate::support::kill::terminate_sessions;
use crate::support::observer::observer;
use crate::support::topology::primary_url;

/// The read pool's wait timeout in these scenarios.
const WAIT: Duration = Duration::from_secs(1);

/// A second table, which a lock on stock_balance leaves alone (replica
/// health's writes use it too).
pub(crate) fn note_model() -> Model {
    Model::new("Note").field(Field::new("body", FieldType::Text))
}

/// Open on the primary, both pools of 2 connections (wait 1 s, at most
/// `max_queued` waiting), one lane; the schema is also the sessions'
/// application_name.
async fn open(max_queued: usize) -> (Db, String) {
    let schema = unique_schema("lanes");
    let pool = PoolConfig {
        max_open: Some(2),
        wait_timeout: Some(WAIT),
        max_queued: Some(max_queued),
        ..PoolConfig::default()
    };
    let db = tagged_options(
        &primary_url(),
        [stock_model(), note_model()],
        pool,
        &schema,
        &schema,
    )
    .shared_reads(1)
    // The lanes alone: coalesced reads share a statement before they
    // reach a lane (their own bounds are tested with the coalescer).
    .coalesce_reads(false)
    .open()
    .await
    .expect("open");
    (db, schema)
}

/// Two lists of the notes, waiting on `schema`'s locked note table, each
/// holding a read connection.
fn waiting_lists(
    db: &Db,
    n: usize,
) -> Vec<tokio::task::JoinHandle<pgactor::Result<pgactor::Page>>> {
    (0..n)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move { db.list("Note", pgactor::Query::new()).await })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_lane_gives_its_connection_back_and_reads_go_on_with_the_pool_otherwise_full() {
    let _serial = figures::serial().await;
    let (db, schema) = open(100).await;
    let obs = observer(&primary_url()).await;
    let id = create_stock(&db, &uuid::Uuid::new_v4().to_string()).await;
    db.read("StockBalance", id).await.expect("open the lane");

    // The read pool's other connection: a list waiting on a lock.
    let locker = lock_table(&primary_url(), &schema, "note").await;
    let lists = waiting_lists(&db, 1);
    until_lock_waiters(&obs, &schema, 1).await;
    // The lane's backend: the idle one whose last statement read stock_balance.
    let killed = terminate_sessions(
        &obs,
        &schema,
        "state = 'idle' AND query LIKE 'SELECT%stock_balance%'",
    )
    .await;
    assert_eq!(killed.len(), 1, "the lane's backend");

    let mut f = Figures::new(
        "6c",
        "lane's backend terminated, the pool's other connection held",
    );
    let started = Instant::now();
    for _ in 0..30 {
        f.outcome(&db.read("StockBalance", id).await);
    }
    let took = started.elapsed();
    let still_waiting = lock_waiters(&obs, &schema).await;
    drop(locker);
    for list in lists {
        f.outcome(&list.await.unwrap());
    }
    let stats = db.stats();
    f.note(format!(
        "30 reads in {} ms with the list still waiting ({still_waiting}); lanes after {}, closed broken {}",
        took.as_millis(),
        stats.read.shared,
        stats.read.closed.broken
    ));
    f.publish();
    assert!(f.errors.is_empty(), "{}", f.row());
    assert_eq!(still_waiting, 1, "the list held its connection throughout");
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_waiting_for_a_lane_wait_as_checkouts_do_bounded_and_queued() {
    let _serial = figures::serial().await;
    let (db, schema) = open(2).await;
    let obs = observer(&primary_url()).await;
    let id = create_stock(&db, &uuid::Uuid::new_v4().to_string()).await;

    // Both read connections: lists waiting on a lock, before any lane opened.
    let locker = lock_table(&primary_url(), &schema, "note").await;
    let lists = waiting_lists(&db, 2);
    until_lock_waiters(&obs, &schema, 2).await;
    let refused_before = db.stats().read.refused_total;

    let mut f = Figures::new(
        "6d",
        "4 reads want a lane, every read connection held, max_queued 2",
    );
    let reads: Vec<_> = (0..4)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let result = db.read("StockBalance", id).await;
                (result, started.elapsed())
            })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    for read in reads {
        let (result, took) = read.await.unwrap();
        slowest = slowest.max(took);
        f.outcome(&result);
    }
    let refused = db.stats().read.refused_total - refused_before;
    drop(locker);
    for list in lists {
        f.outcome(&list.await.unwrap());
    }
    f.note(format!(
        "slowest answer {} ms (wait_timeout {} ms); refused at once {refused}",
        slowest.as_millis(),
        WAIT.as_millis()
    ));
    f.publish();
    assert!(
        slowest <= WAIT * 2,
        "{}: a read waited past the pool's wait_timeout",
        f.row()
    );
    assert_eq!(
        refused,
        2,
        "{}: waits for a lane not counted in max_queued",
        f.row()
    );
    assert_eq!(f.errors.get("UNAVAILABLE").copied(), Some(4), "{}", f.row());
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lane_read_waiting_for_a_lock_does_not_hold_up_the_reads_behind_it() {
    let _serial = figures::serial().await;
    let (db, schema) = open(100).await;
    let obs = observer(&primary_url()).await;
    let stock = create_stock(&db, &uuid::Uuid::new_v4().to_string()).await;
    let note: uuid::Uuid = db
        .create("Note", Record::new().with("body", "n"))
        .await
        .expect("create")
        .get("id")
        .unwrap();
    db.read("StockBalance", stock).await.expect("open the lane");

    let mut f = Figures::new(
        "6e",
        "a lane read waits on a table lock, another table's read behind it",
    );
    let locker = lock_table(&primary_url(), &schema, "stock_balance").await;
    let blocked = tokio::spawn({
        let db = db.clone();
        async move { db.read("StockBalance", stock).await }
    });
    until_lock_waiters(&obs, &schema, 1).await;
    let started = Instant::now();
    let behind = tokio::time::timeout(Duration::from_secs(10), db.read("Note", note)).await;
    let took = started.elapsed();
    // Released only now: the read behind answered while the lock was held.
    drop(locker);
    let behind = behind.expect("the read behind the blocked one never answered");
    f.outcome(&behind);
    f.outcome(&blocked.await.unwrap());
    let stats = db.stats();
    f.note(format!(
        "read behind answered in {} ms, the lock still held; lanes {}, closed broken {}",
        took.as_millis(),
        stats.read.shared,
        stats.read.closed.broken
    ));
    f.publish();
    assert!(f.errors.is_empty(), "{}", f.row());
    assert_eq!(
        stats.read.closed.broken,
        0,
        "{}: the lane was retired",
        f.row()
    );
    db.close().await;
}
