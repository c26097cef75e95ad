//! The work-queue pattern: `Tx::lock_next` (`FOR UPDATE SKIP LOCKED`)
//! takes the next rows no other transaction holds; concurrent workers never
//! take one twice, and a worker's rows go back to the queue when its
//! transaction ends without removing them.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use pgactor::{ErrorKind, Filter, Query, TxOptions};
use uuid::Uuid;

use crate::support::db::{open_primary, stock_model, StockBalance};

/// The queue: stock rows, oldest first.
fn next(n: u64) -> Query {
    Query::new()
        .filter(Filter::ge("quantity", 0_i64))
        .sort_asc("id")
        .limit(n)
}

#[tokio::test]
async fn concurrent_workers_take_every_job_exactly_once() {
    let (db, _schema) = open_primary("jobs_workers", [stock_model()]).await;
    let jobs = db.typed::<StockBalance>();
    for n in 0..200 {
        jobs.create(&StockBalance::new(&format!("job-{n}"), n))
            .await
            .unwrap();
    }
    let taken = Arc::new(Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (db, taken) = (db.clone(), taken.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let tx = db.begin(TxOptions::default()).await.unwrap();
                let batch = tx.typed::<StockBalance>().lock_next(next(5)).await.unwrap();
                if batch.is_empty() {
                    tx.commit().await.unwrap();
                    return;
                }
                for job in &batch {
                    tx.delete("StockBalance", job.id).await.unwrap();
                }
                tx.commit().await.unwrap();
                taken.lock().unwrap().extend(batch.iter().map(|j| j.id));
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    let taken = std::mem::take(&mut *taken.lock().unwrap());
    let distinct: HashSet<&Uuid> = taken.iter().collect();
    assert_eq!(taken.len(), 200, "every job was taken");
    assert_eq!(distinct.len(), 200, "none twice");
    assert_eq!(jobs.list(Query::new()).await.unwrap().total, Some(0));
    db.close().await;
}

#[tokio::test]
async fn locked_rows_are_skipped_and_return_when_their_transaction_ends() {
    let (db, _schema) = open_primary("jobs_skip", [stock_model()]).await;
    for n in 0..6 {
        db.typed::<StockBalance>()
            .create(&StockBalance::new(&format!("job-{n}"), n))
            .await
            .unwrap();
    }
    let a = db.begin(TxOptions::default()).await.unwrap();
    let first = a.lock_next("StockBalance", next(3)).await.unwrap();
    let b = db.begin(TxOptions::default()).await.unwrap();
    let second = b.lock_next("StockBalance", next(3)).await.unwrap();
    let skus = |rows: &[pgactor::Record]| -> Vec<String> {
        rows.iter().map(|r| r.get("sku").unwrap()).collect()
    };
    assert_eq!(skus(&first), ["job-0", "job-1", "job-2"]);
    assert_eq!(
        skus(&second),
        ["job-3", "job-4", "job-5"],
        "A's rows skipped, not waited for"
    );
    // A "crashes": its rows go back to the queue.
    a.rollback().await.unwrap();
    let c = db.begin(TxOptions::default()).await.unwrap();
    let again = c.lock_next("StockBalance", next(10)).await.unwrap();
    assert_eq!(skus(&again), ["job-0", "job-1", "job-2"]);
    c.rollback().await.unwrap();
    b.rollback().await.unwrap();

    // Bounded as a List's page.
    let tx = db.begin(TxOptions::default()).await.unwrap();
    let too_many = tx
        .lock_next("StockBalance", next(1_000_000))
        .await
        .unwrap_err();
    assert_eq!(too_many.kind(), ErrorKind::InvalidInput, "{too_many}");
    tx.rollback().await.unwrap();
    db.close().await;
}

#[tokio::test]
async fn a_transaction_actor_takes_jobs_by_message() {
    use pgactor::TxMsg;
    use ractor::call;

    let (db, _schema) = open_primary("jobs_msg", [stock_model()]).await;
    for n in 0..3 {
        db.typed::<StockBalance>()
            .create(&StockBalance::new(&format!("job-{n}"), n))
            .await
            .unwrap();
    }
    let tx = db.begin(TxOptions::default()).await.unwrap();
    let actor = tx.actor();
    let typed: Vec<StockBalance> = call!(actor, TxMsg::lock_next_as, next(2)).unwrap().unwrap();
    assert_eq!(typed.len(), 2);
    let rest = call!(actor, TxMsg::lock_next, "StockBalance".into(), next(5))
        .unwrap()
        .unwrap();
    assert_eq!(rest.len(), 3, "rows it holds itself are not skipped");
    call!(actor, TxMsg::Rollback).unwrap().unwrap();
    db.close().await;
}

#[tokio::test]
async fn a_nowait_lock_on_a_held_row_is_refused_at_once_with_conflict() {
    let (db, _schema) = open_primary("jobs_nowait", [stock_model()]).await;
    let row = db
        .typed::<StockBalance>()
        .create(&StockBalance::new("held", 1))
        .await
        .unwrap();
    let holder = db.begin(TxOptions::default()).await.unwrap();
    holder
        .lock_for_update("StockBalance", row.id)
        .await
        .unwrap();

    let tx = db.begin(TxOptions::default()).await.unwrap();
    let busy = tx
        .with_savepoint(|tx| async move {
            tx.typed::<StockBalance>()
                .lock_for_update_nowait(row.id)
                .await
        })
        .await
        .unwrap_err();
    // Conflict, not the Timeout a lock waiting out lock_timeout would end in.
    assert_eq!(busy.kind(), ErrorKind::Conflict, "{busy}");
    assert_eq!(
        busy.sqlstate(),
        Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE)
    );
    assert!(!busy.is_retryable());
    // The savepoint kept the transaction going.
    tx.create("StockBalance", pgactor::Record::new().with("sku", "other"))
        .await
        .unwrap();
    holder.rollback().await.unwrap();
    let locked = tx
        .lock_for_update_nowait("StockBalance", row.id)
        .await
        .unwrap();
    assert_eq!(locked.get::<String>("sku").unwrap(), "held");
    tx.commit().await.unwrap();
    db.close().await;
}
