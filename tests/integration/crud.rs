//! Create, read, update, delete and list through the `Db` handle.

use pgactor::{Db, ErrorKind, Filter, Query, Record};

use crate::common::{open_primary, stock_model};

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
    assert_eq!((page.total, page.rows.len()), (1, 1));

    db.delete("StockBalance", id).await.unwrap();
    let err = db.read("StockBalance", id).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::NotFound);
    assert_eq!(err.http_status(), 404);
}
