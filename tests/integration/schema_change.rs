//! The prepared-statement cache across a schema change (catalogue J1): a
//! column's type changed by another session makes every connection's
//! cached statement stale ("cached plan must not change result type").
//! Outside a transaction the read is prepared afresh and succeeds; inside
//! one the failure is reported once and the next transaction succeeds.

use pgactor::{PoolConfig, Record, TxOptions};

use crate::support::db::open_tagged;
use crate::support::observer::observer;
use crate::support::topology::primary_url;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_survive_a_column_type_change_under_a_warm_statement_cache() {
    let pool = PoolConfig {
        max_open: Some(3),
        ..PoolConfig::default()
    };
    let (db, schema) = open_tagged("stale_plan", pool).await;
    let row = db
        .create(
            "StockBalance",
            Record::new().with("sku", "J-1").with("note", "n"),
        )
        .await
        .unwrap();
    let id: uuid::Uuid = row.get("id").unwrap();
    // Warm the cache on every read connection.
    let warm: Vec<_> = (0..12)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move { db.read("StockBalance", id).await })
        })
        .collect();
    for read in warm {
        read.await.unwrap().unwrap();
    }

    let admin = observer(&primary_url()).await;
    admin
        .batch_execute(&format!(
            "ALTER TABLE \"{schema}\".stock_balance ALTER COLUMN note TYPE varchar(100)"
        ))
        .await
        .unwrap();

    for _ in 0..30 {
        let row = db
            .read("StockBalance", id)
            .await
            .expect("read after ALTER TABLE");
        assert_eq!(
            row.get::<Option<String>>("note").unwrap().as_deref(),
            Some("n")
        );
    }

    // Inside a transaction: at most one failure, reported, then fine.
    admin
        .batch_execute(&format!(
            "ALTER TABLE \"{schema}\".stock_balance ALTER COLUMN note TYPE text"
        ))
        .await
        .unwrap();
    let mut failures = 0;
    for _ in 0..3 {
        let tx = db.begin(TxOptions::default()).await.unwrap();
        match tx.read("StockBalance", id).await {
            Ok(row) => {
                assert_eq!(
                    row.get::<Option<String>>("note").unwrap().as_deref(),
                    Some("n")
                );
                tx.commit().await.unwrap();
            }
            Err(err) => {
                failures += 1;
                assert_eq!(err.sqlstate().map(|s| s.code()), Some("0A000"), "{err}");
            }
        }
    }
    assert!(
        failures <= 1,
        "{failures} transactions failed on one stale statement"
    );
    db.close().await;
}
