//! Scenarios 10a–10c: callers that give up on an operation mid-statement,
//! or stop polling it, on the shared primary (catalogue E1, E2).
//!
//! - 10a: a `Db::update` waiting for a row lock held from outside, its
//!   future dropped after 200 ms (`tokio::time::timeout`, as an HTTP
//!   handler is dropped when its client disconnects).
//! - 10b: the same update sent as a `DbMsg::Write` with `call_t!` and a
//!   200 ms timeout: the caller stops waiting, the reply port closes.
//! - 10c: a `Db::list` waiting for a table lock held from outside (query
//!   timeout 1 s): its page and the count pipelined behind it both wait.
//!
//! What each repetition proves, from an observer session: within
//! `CANCEL_GRACE` (1 s) and a margin after the caller gave up (10a, 10b),
//! or within three query timeouts of the call (10c), no session of
//! the adapter still runs the statement and its pool has no connection
//! in use; once the lock is released the abandoned update has not been
//! applied; and the next operation on the same pool succeeds.
//!
//! Figures: operations = repetitions; acknowledged = next operations that
//! succeeded; errors = what the caller was answered when it asked
//! (`caller gave up`, or the list's answer in 10c); leaked =
//! repetitions that did not settle within the bound.

use std::future::Future;
use std::time::{Duration, Instant};

use pgactor::{Call, Db, DbMsg, PoolConfig, Query, Record, WriteOp, WriteRequest};
use uuid::Uuid;

use crate::figures::{self, Figures};
use crate::support::blocking::{lock_row_outside, lock_stock_table};
use crate::support::db::{stock_model, tagged_options, unique_schema};
use crate::support::observer::observer;
use crate::support::topology::primary_url;

/// Repetitions of each way.
const REPETITIONS: u64 = 5;

/// How long a caller waits before it gives up (10a, 10b).
const GIVE_UP: Duration = Duration::from_millis(200);

/// The contract's bound, from the caller giving up to the statement gone
/// from the server and its connection free: `CANCEL_GRACE` (1 s), and a
/// margin for the cancel's connection and the drain.
const SETTLE: Duration = Duration::from_millis(1500);

/// The query timeout of 10c.
const QUERY_TIMEOUT: Duration = Duration::from_secs(1);

/// Open on the primary, both pools of 2 connections, in a fresh schema
/// that is also the sessions' application_name; a row to update.
async fn open() -> (Db, String, Uuid) {
    let schema = unique_schema("drop");
    let pool = PoolConfig {
        max_open: Some(2),
        ..PoolConfig::default()
    };
    let db = tagged_options(&primary_url(), [stock_model()], pool, &schema, &schema)
        .open()
        .await
        .expect("open");
    let row = db
        .create("StockBalance", Record::new().with("sku", "victim"))
        .await
        .expect("create the victim row");
    (db, schema, row.get("id").expect("id"))
}

/// Sessions named `app` running a statement that starts with `verb`
/// (owners' slow updates are seen starting by it too).
pub(crate) async fn running(admin: &tokio_postgres::Client, app: &str, verb: &str) -> i64 {
    admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE application_name = $1 AND state = 'active' AND query ILIKE $2",
            &[&app, &format!("{verb}%")],
        )
        .await
        .expect("pg_stat_activity")
        .get(0)
}

/// How long after `since` nothing named `app` runs a `verb` statement and
/// `in_use` answers 0; `None` if that did not happen within `bound`.
async fn settled(
    admin: &tokio_postgres::Client,
    app: &str,
    verb: &str,
    in_use: impl Fn() -> usize,
    since: Instant,
    bound: Duration,
) -> Option<Duration> {
    loop {
        let busy = running(admin, app, verb).await;
        let held = in_use();
        let at = since.elapsed();
        if busy == 0 && held == 0 {
            return Some(at);
        }
        if at >= bound {
            eprintln!("after {at:?}: {busy} {verb} still running, {held} connections in use");
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A patch no row may ever carry.
fn abandoned() -> Record {
    Record::new().with("note", "abandoned")
}

/// 10a and 10b: an update blocked on a row lock, given up after
/// [`GIVE_UP`] by `give_up` (which answers once the caller stopped
/// waiting); the statement must be gone and the write pool free within
/// [`SETTLE`], the update not applied.
async fn abandoned_updates<F, Fut>(id: &str, scenario: &str, give_up: F)
where
    F: Fn(Db, Uuid) -> Fut,
    Fut: Future<Output = ()>,
{
    let _serial = figures::serial().await;
    let (db, app, victim) = open().await;
    let admin = observer(&primary_url()).await;
    let mut f = Figures::new(id, scenario);
    let mut slowest = Duration::ZERO;
    for _ in 0..REPETITIONS {
        f.operations += 1;
        let holder = lock_row_outside(&primary_url(), &app, victim).await;
        let started = Instant::now();
        give_up(db.clone(), victim).await;
        let gave_up = Instant::now();
        f.error("caller gave up");
        assert!(
            gave_up - started >= GIVE_UP,
            "the update answered before the caller gave up"
        );
        let write_in_use = || db.stats().write.in_use;
        match settled(&admin, &app, "UPDATE", write_in_use, gave_up, SETTLE).await {
            Some(took) => slowest = slowest.max(took),
            None => f.leaked += 1,
        }
        holder
            .batch_execute("ROLLBACK")
            .await
            .expect("release the lock");
        // Even once the lock is gone, the abandoned update never lands.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let row = db.read("StockBalance", victim).await.expect("read back");
        let note: Option<String> = row.get("note").expect("note");
        if note.is_some() {
            f.note("the abandoned update was applied");
            f.lost += 1;
        }
        let next = db
            .update(
                "StockBalance",
                victim,
                Record::new().with("quantity", 1_i64),
            )
            .await;
        if next.is_ok() {
            f.acknowledged += 1;
        }
    }
    f.note(format!(
        "slowest from giving up to no statement and no connection in use: {} ms (bound {} ms)",
        slowest.as_millis(),
        SETTLE.as_millis()
    ));
    f.note(format!(
        "write connections closed as broken: {}",
        db.stats().write.closed.broken
    ));
    f.publish();
    db.close().await;
    assert_eq!(f.leaked, 0, "{}", f.row());
    assert_eq!(f.lost, 0, "{}", f.row());
    assert_eq!(f.acknowledged, REPETITIONS, "{}", f.row());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_update_future_is_cancelled_on_the_server_and_frees_its_connection() {
    abandoned_updates(
        "10a",
        "a `Db::update` blocked on a row lock, its future dropped after 200 ms",
        |db, victim| async move {
            let update = db.update("StockBalance", victim, abandoned());
            let answer = tokio::time::timeout(GIVE_UP, update).await;
            assert!(answer.is_err(), "the update answered: {answer:?}");
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actor_caller_that_stops_waiting_gets_its_update_cancelled_and_its_connection_freed() {
    abandoned_updates(
        "10b",
        "a `DbMsg::Write` update blocked on a row lock, its `call_t!` timing out after 200 ms",
        |db, victim| async move {
            let req = WriteRequest {
                model: "StockBalance".into(),
                op: WriteOp::Update {
                    id: victim.into(),
                    patch: abandoned(),
                },
            };
            let millis = GIVE_UP.as_millis() as u64;
            let answer = ractor::call_t!(db.actor(), DbMsg::Write, millis, req, Call::here());
            assert!(answer.is_err(), "the update answered: {answer:?}");
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_past_its_query_timeout_leaves_no_statement_behind_its_page() {
    let _serial = figures::serial().await;
    let (db, app, _) = open().await;
    let db = db.with_query_timeout(QUERY_TIMEOUT);
    let admin = observer(&primary_url()).await;
    let mut f = Figures::new(
        "10c",
        "a `Db::list` blocked on a table lock past its query timeout (1 s), page and pipelined count",
    );
    let mut slowest = Duration::ZERO;
    for _ in 0..REPETITIONS {
        f.operations += 1;
        let locker = lock_stock_table(&app).await;
        let called = Instant::now();
        // Bounded by the query timeout: the lock is held for longer.
        match db.list("StockBalance", Query::new()).await {
            Ok(_) => f.error("answered a page"),
            Err(e) => f.error(e.code()),
        }
        // Neither the page nor the count sent behind it may still run
        // once the connection is back in the pool.
        let bound = QUERY_TIMEOUT * 3;
        let read_in_use = || db.stats().read.in_use;
        match settled(&admin, &app, "SELECT", read_in_use, called, bound).await {
            Some(took) => slowest = slowest.max(took),
            None => f.leaked += 1,
        }
        locker.batch_execute("ROLLBACK").await.expect("unlock");
        if db.list("StockBalance", Query::new()).await.is_ok() {
            f.acknowledged += 1;
        }
    }
    f.note(format!(
        "slowest from the call to no statement and no connection in use: {} ms (bound {} ms)",
        slowest.as_millis(),
        (QUERY_TIMEOUT * 3).as_millis()
    ));
    f.publish();
    db.close().await;
    assert_eq!(f.leaked, 0, "{}", f.row());
    assert_eq!(f.acknowledged, REPETITIONS, "{}", f.row());
    assert_eq!(f.errors.get("TIMEOUT"), Some(&REPETITIONS), "{}", f.row());
}
