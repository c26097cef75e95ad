//! Transaction actors outlive their transactions: one whose transaction
//! ended and whose `Tx` handles are gone serves the next `begin`, and
//! nothing that belonged to the old transaction ever reaches the new one.

use pgactor::{Db, ErrorKind, Query, Record, Tx, TxMsg, TxOptions, WriteOp, WriteRequest};
use ractor::{call, ActorCell, ActorId, ActorStatus};

use crate::support::db::{open_primary, stock_model};
use crate::support::wait::{eventually, ready};

/// The supervisor's children at open: its pool actors (nothing here
/// subscribes, so no listener runs).
fn pool_actors(db: &Db) -> Vec<ActorId> {
    db.actor()
        .get_children()
        .iter()
        .map(ActorCell::get_id)
        .collect()
}

/// The supervisor's transaction actors, open or spare: its children but
/// the pool actors it had at open.
fn transaction_actors(db: &Db, pool_actors: &[ActorId]) -> Vec<ActorCell> {
    db.actor()
        .get_children()
        .into_iter()
        .filter(|child| !pool_actors.contains(&child.get_id()))
        .collect()
}

/// A transaction that has inserted one stock row with this sku.
async fn begun_with(db: &Db, sku: &str) -> Tx {
    let tx = db.begin(TxOptions::default()).await.unwrap();
    tx.create("StockBalance", Record::new().with("sku", sku))
        .await
        .unwrap();
    tx
}

async fn skus(db: &Db) -> Vec<String> {
    let page = db.list("StockBalance", Query::new()).await.unwrap();
    let mut skus: Vec<String> = page
        .rows
        .iter()
        .map(|row| row.get("sku").unwrap())
        .collect();
    skus.sort();
    skus
}

#[tokio::test]
async fn sequential_transactions_take_turns_on_one_actor_and_concurrent_ones_stay_within_the_pool()
{
    let (db, _) = open_primary("spare_reuse", [stock_model()]).await;
    let pools = pool_actors(&db);
    for n in 0..10 {
        let tx = begun_with(&db, &format!("s{n}")).await;
        if n % 2 == 0 {
            tx.commit().await.unwrap();
        } else {
            tx.rollback().await.unwrap();
        }
    }
    assert_eq!(
        transaction_actors(&db, &pools).len(),
        1,
        "ten transactions one after another: one actor, kept between them"
    );
    assert_eq!(skus(&db).await, ["s0", "s2", "s4", "s6", "s8"]);

    // 30 at once on a write pool of 20: at most 20 open, so at most 20 actors kept.
    let concurrent: Vec<_> = (0..30)
        .map(|n| {
            let db = db.clone();
            tokio::spawn(async move {
                let tx = db.begin(TxOptions::default()).await?;
                tx.create("StockBalance", Record::new().with("sku", format!("c{n}")))
                    .await?;
                tx.commit().await
            })
        })
        .collect();
    for done in concurrent {
        done.await.unwrap().unwrap();
    }
    // Actors beyond that stop (asynchronously: wait for them to go).
    eventually("at most 20 transaction actors kept", || async {
        let actors = transaction_actors(&db, &pools).len();
        ready((1..=20).contains(&actors), actors)
    })
    .await;
    assert_eq!(skus(&db).await.len(), 35);
    db.close().await;
}

#[tokio::test]
async fn a_handle_kept_after_commit_never_reaches_the_next_transaction() {
    let (db, _) = open_primary("spare_kept_handle", [stock_model()]).await;
    let first = begun_with(&db, "first").await;
    let kept = first.clone();
    first.commit().await.unwrap();
    drop(first);

    let second = begun_with(&db, "second").await;
    let late = kept
        .create("StockBalance", Record::new().with("sku", "late"))
        .await
        .unwrap_err();
    assert_eq!(late.kind(), ErrorKind::TxClosed, "{late}");
    let late_commit = kept.commit().await.unwrap_err();
    assert_eq!(late_commit.kind(), ErrorKind::TxClosed, "{late_commit}");
    second.rollback().await.unwrap();
    assert_eq!(skus(&db).await, ["first"]);
    db.close().await;
}

#[tokio::test]
async fn an_actor_handed_to_ractor_code_serves_its_transaction_only() {
    let (db, _) = open_primary("spare_handed_out", [stock_model()]).await;
    let first = db.begin(TxOptions::default()).await.unwrap();
    let handed_out = first.actor();
    first.commit().await.unwrap();
    drop(first);

    let second = begun_with(&db, "second").await;
    let req = WriteRequest {
        model: "StockBalance".into(),
        op: WriteOp::Create(Record::new().with("sku", "stray")),
    };
    match call!(handed_out, TxMsg::Write, req) {
        Err(_) => {} // the actor has stopped
        Ok(answer) => assert_eq!(
            answer.unwrap_err().kind(),
            ErrorKind::TxClosed,
            "the old transaction's actor answers for the old transaction"
        ),
    }
    second.commit().await.unwrap();
    assert_eq!(skus(&db).await, ["second"]);
    db.close().await;
}

#[tokio::test]
async fn a_spare_actor_that_died_is_replaced_by_a_new_one() {
    let (db, _) = open_primary("spare_died", [stock_model()]).await;
    let pools = pool_actors(&db);
    let tx = db.begin(TxOptions::default()).await.unwrap();
    tx.commit().await.unwrap();
    drop(tx);
    let spares = transaction_actors(&db, &pools);
    assert_eq!(spares.len(), 1);
    spares[0].kill();
    eventually("the spare has stopped", || async {
        ready(spares[0].get_status() == ActorStatus::Stopped, ())
    })
    .await;

    let tx = begun_with(&db, "after").await;
    tx.commit().await.unwrap();
    assert_eq!(skus(&db).await, ["after"]);
    db.close().await;
}
