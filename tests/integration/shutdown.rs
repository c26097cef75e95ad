//! Graceful shutdown: new work refused at once, running work finished
//! within the grace period, what is still open rolled back past it, and no
//! session of the adapter left on the server afterwards.

use std::time::Duration;

use pgactor::{DbMsg, ErrorKind, PoolConfig, Query, Record, TxOptions};

use crate::support::db::open_tagged;
use crate::support::observer::{no_session_left, observer};
use crate::support::topology::primary_url;
use crate::support::wait::{eventually, ready};

async fn committed_skus(app: &str) -> Vec<String> {
    let admin = observer(&primary_url()).await;
    admin
        .query(
            &format!("SELECT sku FROM \"{app}\".stock_balance ORDER BY sku"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn an_open_transaction_may_commit_while_new_work_is_refused() {
    let (db, app) = open_tagged("shut", PoolConfig::default()).await;
    let tx = db.begin(TxOptions::default()).await.unwrap();
    tx.create("StockBalance", Record::new().with("sku", "in time"))
        .await
        .unwrap();

    let closing = {
        let db = db.clone();
        tokio::spawn(async move { db.close_within(Duration::from_secs(20)).await })
    };
    eventually("new work is refused", || async {
        match db.list("StockBalance", Query::new()).await {
            Err(err) if err.kind() == ErrorKind::Closed => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let begin = db.begin(TxOptions::default()).await.unwrap_err();
    assert_eq!(begin.kind(), ErrorKind::Closed);
    assert!(
        !closing.is_finished(),
        "shutdown waits for the open transaction"
    );

    tx.commit()
        .await
        .expect("the open transaction finishes within the grace");
    closing.await.unwrap();
    assert_eq!(committed_skus(&app).await, ["in time"]);
    no_session_left(&app).await;
}

#[tokio::test]
async fn past_the_grace_open_transactions_are_rolled_back() {
    let (db, app) = open_tagged("shut", PoolConfig::default()).await;
    let tx = db.begin(TxOptions::default()).await.unwrap();
    tx.create("StockBalance", Record::new().with("sku", "too late"))
        .await
        .unwrap();
    db.close_within(Duration::from_millis(200)).await;

    let err = tx.commit().await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::TxClosed | ErrorKind::TxAborted),
        "{err}"
    );
    assert!(committed_skus(&app).await.is_empty());
    no_session_left(&app).await;
}

#[tokio::test]
async fn a_running_operation_finishes_and_the_shutdown_message_answers_when_done() {
    let (db, app) = open_tagged("shut", PoolConfig::default()).await;
    let admin = observer(&primary_url()).await;
    let row = db
        .create("StockBalance", Record::new().with("sku", "slow"))
        .await
        .unwrap();
    let id: uuid::Uuid = row.get("id").unwrap();
    admin
        .batch_execute(&format!(
            "CREATE FUNCTION \"{app}\".slow() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN PERFORM pg_sleep(0.5); RETURN NEW; END $$;
             CREATE TRIGGER slow BEFORE UPDATE ON \"{app}\".stock_balance
             FOR EACH ROW EXECUTE FUNCTION \"{app}\".slow();"
        ))
        .await
        .unwrap();
    let updating = {
        let db = db.clone();
        tokio::spawn(async move {
            db.update("StockBalance", id, Record::new().with("quantity", 7_i64))
                .await
        })
    };
    eventually("the update is running", || async {
        let n: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'UPDATE%'",
                &[&app],
            )
            .await
            .unwrap()
            .get(0);
        ready(n == 1, ())
    })
    .await;
    ractor::call!(db.actor(), DbMsg::Shutdown, Duration::from_secs(20)).unwrap();
    let updated = updating
        .await
        .unwrap()
        .expect("the running update finished");
    assert_eq!(updated.get::<i64>("quantity").unwrap(), 7);
    no_session_left(&app).await;
}
