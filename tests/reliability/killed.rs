//! Catalogue B1 (idle pooled connections terminated), B2 (busy autocommit
//! connections terminated) and B3 (a connection terminated inside a
//! transaction), on the shared primary: only this scenario's own backends
//! (its own application_name) are terminated.
//!
//! - **2a**: with both pools warm, every idle pooled backend is terminated;
//!   100 ms later 100 operations run. The pool must notice the dead
//!   connections before handing them out: 0 caller errors (B1 (a)). The
//!   race variant (operations at once, no pause) is reported as a note:
//!   errors there are allowed, but only typed ones.
//! - **2b**: 4 reads, 4 autocommit writes and 4 transactions (one statement
//!   done, the next one running) are busy when their backends are
//!   terminated. A statement is kept busy by an observer holding an ACCESS
//!   EXCLUSIVE lock on the ledger table: it waits for as long as the test
//!   wants and blocks reads as well as writes, with no test-only model.
//!   The read gets UNAVAILABLE, the write OUTCOME_UNKNOWN, the statement in
//!   the transaction UNAVAILABLE ("nothing was committed") and its COMMIT
//!   TX_ABORTED; nothing of the transactions is stored; the pool discards
//!   the dead connections and the next operations all succeed.
//!
//! Both check the [`crate::ledger`] (lost, phantom, dup 0) and that
//! nothing leaks.

use std::time::{Duration, Instant};

use pgactor::{Db, PoolConfig, Query, Record, Result, TxOptions};

use crate::figures::{self, Figures};
use crate::ledger::{self, Ledger};
use crate::support::blocking::until_lock_waiters;
use crate::support::db::stock_model;
use crate::support::kill::{gone, terminate_sessions};
use crate::support::observer::{no_session_left, observer};
use crate::support::topology::primary_url;

/// Connections per pool: 8, all kept when idle, short bounds.
fn pool() -> PoolConfig {
    PoolConfig {
        max_open: Some(8),
        max_idle: Some(8),
        wait_timeout: Some(Duration::from_secs(2)),
        connect_timeout: Some(Duration::from_secs(2)),
        ..PoolConfig::default()
    }
}

/// Operations after the kill.
const BURST: usize = 100;
/// Of which run at once.
const AT_ONCE: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b1_idle_connections_terminated() {
    let _serial = figures::serial().await;
    let mut f = Figures::new(
        "2a",
        "pg_terminate_backend of every idle pooled connection, 100 ms pause, then 100 ops",
    );
    let (db, app) = ledger::open(&primary_url(), "killed_idle", pool(), []).await;
    let admin = observer(&primary_url()).await;
    let ledger = Ledger::new();

    warm(&db, &ledger).await;
    let killed = terminate_sessions(&admin, &app, "state = 'idle'").await;
    assert!(!killed.is_empty(), "no idle backend of {app}");
    gone(&admin, &killed).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    for result in burst(&db, &ledger).await {
        f.outcome(&result);
    }
    f.note(format!("killed {}", killed.len()));

    // The race (B1 (b)): operations at once, the backends maybe still exiting.
    warm(&db, &ledger).await;
    let raced = terminate_sessions(&admin, &app, "state = 'idle'").await;
    assert!(!raced.is_empty(), "no idle backend of {app}");
    let race = burst(&db, &ledger).await;
    let mut race_errors = Figures::new("", "");
    for result in &race {
        race_errors.outcome(result);
    }
    f.note(format!(
        "no pause: killed {}, {} ops, errors {}",
        raced.len(),
        race_errors.operations,
        kinds(&race_errors)
    ));

    let stats = db.stats();
    f.note(format!(
        "open after: write {}, read {}",
        stats.write.open, stats.read.open
    ));
    f.leaked = ledger::leaks(&db, &admin, &app).await;
    let check = ledger.check(&admin, &app).await;
    check.report(&mut f);
    f.publish();

    assert!(
        f.errors.is_empty(),
        "100 ms after the kill every operation succeeds: {:?}",
        f.errors
    );
    assert!(
        race_errors
            .errors
            .keys()
            .all(|code| code == "UNAVAILABLE" || code == "OUTCOME_UNKNOWN"),
        "racing the kill, only typed connection errors: {:?}",
        race_errors.errors
    );
    check.assert_consistent();
    assert_eq!(f.leaked, 0, "leaked after quiesce");
    db.close().await;
    no_session_left(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b2_b3_busy_connections_terminated() {
    let _serial = figures::serial().await;
    let mut f = Figures::new(
        "2b",
        "pg_terminate_backend of 4 busy reads, 4 busy writes, 4 busy transactions",
    );
    let (db, app) = ledger::open(&primary_url(), "killed_busy", pool(), [stock_model()]).await;
    let admin = observer(&primary_url()).await;
    let ledger = Ledger::new();

    let mut holder = observer(&primary_url()).await;
    let lock = holder.transaction().await.expect("BEGIN");
    lock.batch_execute(&format!(
        "LOCK TABLE \"{app}\".\"{}\" IN ACCESS EXCLUSIVE MODE",
        ledger::model().table()
    ))
    .await
    .expect("lock the ledger");

    let reads: Vec<_> = (0..4)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move { db.list(ledger::MODEL, Query::new()).await.map(drop) })
        })
        .collect();
    let writes: Vec<_> = (0..4)
        .map(|worker| {
            let (db, ledger) = (db.clone(), ledger.clone());
            tokio::spawn(async move { ledger.append(&db, worker, 1).await.map(drop) })
        })
        .collect();
    let transactions: Vec<_> = (4..8)
        .map(|worker| {
            let (db, ledger) = (db.clone(), ledger.clone());
            tokio::spawn(async move { busy_transaction(&db, &ledger, worker).await })
        })
        .collect();
    until_lock_waiters(&admin, &app, 12).await;
    let killed = terminate_sessions(&admin, &app, "wait_event_type = 'Lock'").await;
    assert!(!killed.is_empty(), "no backend of {app} waits for a lock");
    gone(&admin, &killed).await;
    let killed_at = Instant::now();
    lock.rollback().await.expect("release the lock");

    let expect = |f: &mut Figures, what: &str, result: &Result<()>, code: &str| {
        f.outcome(result);
        let got = result.as_ref().err().map(|e| e.code());
        assert_eq!(got, Some(code), "{what}: {result:?}");
    };
    for read in reads {
        expect(&mut f, "a busy read", &read.await.unwrap(), "UNAVAILABLE");
    }
    for write in writes {
        expect(
            &mut f,
            "a busy write",
            &write.await.unwrap(),
            "OUTCOME_UNKNOWN",
        );
    }
    for tx in transactions {
        let (created, statement, commit) = tx.await.unwrap();
        f.outcome(&created);
        created.expect("the transaction's first statement ran before the kill");
        expect(
            &mut f,
            "the busy statement in a transaction",
            &statement,
            "UNAVAILABLE",
        );
        expect(&mut f, "COMMIT after it", &commit, "TX_ABORTED");
    }

    let mut first_success = None;
    let mut failed_after = Figures::new("", "");
    for result in burst(&db, &ledger).await {
        f.outcome(&result);
        failed_after.outcome(&result);
        if result.is_ok() && first_success.is_none() {
            first_success = Some(Instant::now());
        }
    }
    f.recovery = first_success.map(|at| at.duration_since(killed_at));
    let rows_of_aborted: i64 = admin
        .query_one(
            &format!(
                "SELECT count(*) FROM \"{app}\".\"{}\"",
                stock_model().table()
            ),
            &[],
        )
        .await
        .expect("count the transactions' rows")
        .get(0);
    f.note(format!("killed {}", killed.len()));
    f.note(format!("rows of aborted transactions {rows_of_aborted}"));
    f.leaked = ledger::leaks(&db, &admin, &app).await;
    let check = ledger.check(&admin, &app).await;
    check.report(&mut f);
    f.publish();

    assert!(
        failed_after.errors.is_empty(),
        "every operation after the kill succeeds: {:?}",
        failed_after.errors
    );
    assert_eq!(rows_of_aborted, 0, "a terminated transaction left rows");
    check.assert_consistent();
    assert_eq!(f.leaked, 0, "leaked after quiesce");
    db.close().await;
    no_session_left(&app).await;
}

/// A transaction whose first statement runs, whose second (a ledger write)
/// is left busy, and which then tries to COMMIT: answers the three results.
async fn busy_transaction(
    db: &Db,
    ledger: &Ledger,
    worker: i32,
) -> (Result<()>, Result<()>, Result<()>) {
    let tx = db.begin(TxOptions::default()).await.expect("BEGIN");
    let created = tx
        .create(
            "StockBalance",
            Record::new().with("sku", format!("tx-{worker}")),
        )
        .await
        .map(drop);
    let op = ledger.op(worker, 1);
    let statement = tx.create(ledger::MODEL, op.record.clone()).await.map(drop);
    let commit = tx.commit().await;
    ledger.settle(&[&op], &commit);
    (created, statement, commit)
}

/// Use 8 connections of each pool at once, so both pools hold 8 idle ones.
async fn warm(db: &Db, ledger: &Ledger) {
    let calls = (0..8).map(|worker| {
        let (db, ledger) = (db.clone(), ledger.clone());
        tokio::spawn(async move {
            let (written, read) = tokio::join!(
                ledger.append(&db, worker, 0),
                db.list(ledger::MODEL, Query::new().limit(1))
            );
            written.expect("warm-up write");
            read.expect("warm-up read");
        })
    });
    for call in calls.collect::<Vec<_>>() {
        call.await.expect("warm-up");
    }
}

/// [`BURST`] operations, [`AT_ONCE`] at a time, half ledger writes, half reads.
async fn burst(db: &Db, ledger: &Ledger) -> Vec<Result<()>> {
    let mut results = Vec::with_capacity(BURST);
    for round in 0..BURST / AT_ONCE {
        let calls: Vec<_> = (0..AT_ONCE)
            .map(|i| {
                let (db, ledger) = (db.clone(), ledger.clone());
                tokio::spawn(async move {
                    if i % 2 == 0 {
                        ledger
                            .append(&db, 100 + i as i32, round as i64)
                            .await
                            .map(drop)
                    } else {
                        db.list(ledger::MODEL, Query::new().limit(1))
                            .await
                            .map(drop)
                    }
                })
            })
            .collect();
        for call in calls {
            results.push(call.await.expect("an operation of the burst"));
        }
    }
    results
}

/// `kind n, …` of `figures`' errors, or `none`.
fn kinds(figures: &Figures) -> String {
    if figures.errors.is_empty() {
        return "none".into();
    }
    let kinds: Vec<_> = figures
        .errors
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    kinds.join(", ")
}
