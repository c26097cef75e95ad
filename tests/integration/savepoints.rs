//! Nested transactions (`Tx::with_savepoint`): a failing inner block is
//! undone while the outer transaction goes on and commits, savepoints
//! nest, and they work behind PgBouncer.

use pgactor::{Db, ErrorKind, OpenOptions, PoolerMode, Record, TxOptions};

use crate::support::db::{in_schema, open_primary, registry, stock_model, unique_schema};
use crate::support::topology::bouncer_url;

async fn skus(db: &Db) -> Vec<String> {
    db.query_as::<(String,)>("SELECT sku FROM stock_balance ORDER BY sku")
        .await
        .unwrap()
        .into_iter()
        .map(|(sku,)| sku)
        .collect()
}

fn stock(sku: &str) -> Record {
    Record::new().with("sku", sku)
}

/// Outer writes before and after a nested block that fails on a unique
/// violation (which aborts the transaction) and one that fails by its own
/// choice after writing: both are undone, the rest commits.
async fn a_failing_nested_block_is_undone_and_the_outer_commits(db: &Db) {
    let tx = db.begin(TxOptions::default()).await.unwrap();
    tx.create("StockBalance", stock("A")).await.unwrap();
    let dup = tx
        .with_savepoint(|tx| async move {
            tx.create("StockBalance", stock("B")).await?;
            tx.create("StockBalance", stock("A")).await
        })
        .await
        .unwrap_err();
    assert_eq!(
        dup.kind(),
        ErrorKind::Constraint(pgactor::ConstraintKind::Unique)
    );
    let refused: pgactor::Result<()> = tx
        .with_savepoint(|tx| async move {
            tx.create("StockBalance", stock("C")).await?;
            Err(pgactor::Error::invalid_input("not enough stock"))
        })
        .await;
    assert_eq!(refused.unwrap_err().kind(), ErrorKind::InvalidInput);
    // Nested twice: the innermost fails, the middle one goes on.
    let kept = tx
        .with_savepoint(|tx| async move {
            tx.create("StockBalance", stock("D")).await?;
            let inner = tx
                .with_savepoint(|tx| async move { tx.create("StockBalance", stock("D")).await })
                .await;
            assert!(inner.is_err());
            tx.create("StockBalance", stock("E")).await
        })
        .await
        .unwrap();
    assert_eq!(kept.get::<String>("sku").unwrap(), "E");
    tx.create("StockBalance", stock("F")).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(skus(db).await, ["A", "D", "E", "F"]);
}

#[tokio::test]
async fn nested_blocks_run_as_savepoints_on_a_direct_connection() {
    let (db, _schema) = open_primary("savepoints", [stock_model()]).await;
    a_failing_nested_block_is_undone_and_the_outer_commits(&db).await;

    // A statement past the transaction's query timeout, cancelled on the
    // server, is undone the same way.
    let bounded = TxOptions {
        query_timeout: Some(std::time::Duration::from_millis(200)),
        ..TxOptions::default()
    };
    let tx = db.begin(bounded).await.unwrap();
    let slow = tx
        .with_savepoint(|tx| async move {
            tx.create("StockBalance", stock("slow")).await?;
            tx.execute("SELECT pg_sleep(5)").await
        })
        .await
        .unwrap_err();
    assert_eq!(slow.kind(), ErrorKind::Timeout, "{slow}");
    tx.create("StockBalance", stock("after")).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(skus(&db).await, ["A", "D", "E", "F", "after"]);

    // Without the savepoint, the same failure aborts the transaction.
    let tx = db.begin(TxOptions::default()).await.unwrap();
    tx.create("StockBalance", stock("G")).await.unwrap();
    tx.create("StockBalance", stock("G")).await.unwrap_err();
    let aborted = tx.create("StockBalance", stock("H")).await.unwrap_err();
    assert_eq!(aborted.kind(), ErrorKind::TxAborted);
    tx.rollback().await.unwrap();
    db.close().await;
}

#[tokio::test]
async fn nested_blocks_run_as_savepoints_behind_pgbouncer() {
    let db = OpenOptions::new(bouncer_url())
        .pooler(PoolerMode::Transaction)
        .registry(registry([stock_model()]))
        .session(in_schema(&unique_schema("savepoints_bnc")))
        .open()
        .await
        .expect("open through the bouncer");
    let tx = db.begin(TxOptions::default()).await.unwrap();
    tx.create("StockBalance", stock("A")).await.unwrap();
    let dup = tx
        .with_savepoint(|tx| async move { tx.create("StockBalance", stock("A")).await })
        .await;
    assert!(dup.is_err());
    tx.create("StockBalance", stock("B")).await.unwrap();
    tx.commit().await.unwrap();
    // Counted in a transaction: behind the bouncer, raw SQL outside one
    // sees the role's search_path, not the schema.
    let tx = db.begin(TxOptions::default()).await.unwrap();
    let (n,): (i64,) = tx
        .query_one_as("SELECT count(*) FROM stock_balance")
        .await
        .unwrap();
    assert_eq!(n, 2);
    tx.rollback().await.unwrap();
    db.close().await;
}
