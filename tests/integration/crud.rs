//! Create, read, update, delete and list through the `Db` handle.

use pgactor::{Db, ErrorKind, Filter, Query, Record};

use crate::support::blocking::lock_stock_table;
use crate::support::db::{open_primary, open_tagged, stock_model};
use crate::support::wait::{eventually, ready};

#[tokio::test]
async fn a_row_goes_through_its_whole_life() {
    let (db, _) = open_primary("crud", [stock_model()]).await;
    row_life(&db).await;
    db.close().await;
}

/// Create, read, update, list and delete one `StockBalance` row of a fresh
/// schema; also run through PgBouncer in `bouncer.rs`.
pub(crate) async fn row_life(db: &Db) {
    let created = db
        .create(
            "StockBalance",
            Record::new().with("sku", "A-1").with("quantity", 5_i64),
        )
        .await
        .unwrap();
    let id: uuid::Uuid = created.get("id").unwrap();
    assert_eq!(created.get::<i64>("quantity").unwrap(), 5);
    assert_eq!(created.get::<Option<String>>("note").unwrap(), None);

    let read = db.read("StockBalance", id).await.unwrap();
    assert_eq!(read, created);

    let updated = db
        .update("StockBalance", id, Record::new().with("quantity", 4_i64))
        .await
        .unwrap();
    assert_eq!(updated.get::<i64>("quantity").unwrap(), 4);
    assert_eq!(
        updated.get::<String>("sku").unwrap(),
        "A-1",
        "only the patch changes"
    );
    let before: chrono::DateTime<chrono::Utc> = created.get("updated_at").unwrap();
    let after: chrono::DateTime<chrono::Utc> = updated.get("updated_at").unwrap();
    assert!(after > before, "updated_at moves on update");

    let page = db
        .list(
            "StockBalance",
            Query::new().filter(Filter::ge("quantity", 1_i64)),
        )
        .await
        .unwrap();
    assert_eq!((page.total, page.rows.len()), (Some(1), 1));

    db.delete("StockBalance", id).await.unwrap();
    let err = db.read("StockBalance", id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.http_status(), 404);
}

/// A caller that stops waiting while its read waits on the server: the
/// statement runs on, and its connection goes back to the pool once the
/// read has finished (never closed, never handed out busy).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_stops_waiting_leaves_its_connection_to_the_pool_once_idle() {
    let pool = pgactor::PoolConfig {
        max_open: Some(1),
        ..pgactor::PoolConfig::default()
    };
    let (db, schema) = open_tagged("crud_drop", pool).await;
    let row = db
        .create("StockBalance", Record::new().with("sku", "D-1"))
        .await
        .unwrap();
    let id: uuid::Uuid = row.get("id").unwrap();
    let admin = lock_stock_table(&schema).await;
    let gave_up = tokio::time::timeout(
        std::time::Duration::from_millis(200),
        db.read("StockBalance", id),
    )
    .await;
    assert!(gave_up.is_err(), "the read waits for the lock");
    assert_eq!(db.stats().read.in_use, 1, "the read is still running");
    admin.batch_execute("ROLLBACK").await.unwrap();

    eventually("the connection is back in the pool", || async {
        let stats = db.stats().read;
        ready(stats.in_use == 0 && stats.idle == 1, ())
    })
    .await;
    let stats = db.stats().read;
    assert_eq!(stats.closed.broken, 0, "{stats:?}");
    assert_eq!(
        db.read("StockBalance", id)
            .await
            .unwrap()
            .get::<String>("sku")
            .unwrap(),
        "D-1"
    );
    db.close().await;
}
