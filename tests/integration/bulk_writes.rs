//! Update and delete by filter, and increments under a guard: through the
//! `Db` handle, inside a transaction, by message, and typed.

use std::sync::Arc;

use pgactor::{
    BulkOp, BulkWriteRequest, Call, Db, DbMsg, ErrorKind, Filter, IncrementRequest, Record,
    Registry, TxMsg, TxOptions,
};
use uuid::Uuid;

use crate::support::db::{in_schema, unique_schema, StockBalance};
use crate::support::topology::primary_url;

async fn open(prefix: &str) -> Db {
    pgactor::OpenOptions::new(primary_url())
        .registry(Registry::new().with_entity::<StockBalance>().unwrap())
        .session(in_schema(&unique_schema(prefix)))
        .open()
        .await
        .expect("open")
}

/// Create rows `<prefix>-0`… with the given quantities; answer their ids.
async fn seed(db: &Db, prefix: &str, quantities: &[i64]) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for (n, quantity) in quantities.iter().enumerate() {
        let row = db
            .create(
                "StockBalance",
                Record::new()
                    .with("sku", format!("{prefix}-{n}"))
                    .with("quantity", *quantity),
            )
            .await
            .unwrap();
        ids.push(row.get("id").unwrap());
    }
    ids
}

async fn quantity(db: &Db, id: Uuid) -> i64 {
    db.read("StockBalance", id)
        .await
        .unwrap()
        .get("quantity")
        .unwrap()
}

async fn count(db: &Db, filter: Filter) -> u64 {
    db.list("StockBalance", pgactor::Query::new().filter(filter))
        .await
        .unwrap()
        .total
        .expect("counted")
}

#[tokio::test]
async fn update_and_delete_where_answer_how_many_rows_changed() {
    let db = open("bulk_db").await;
    let ids = seed(&db, "A", &[0, 1, 5, 9]).await;
    let before = db.read("StockBalance", ids[2]).await.unwrap();

    let changed = db
        .update_where(
            "StockBalance",
            Filter::ge("quantity", 1_i64),
            Record::new().with("note", "restock"),
        )
        .await
        .unwrap();
    assert_eq!(changed, 3);
    let after = db.read("StockBalance", ids[2]).await.unwrap();
    assert_eq!(
        after.get::<Option<String>>("note").unwrap().as_deref(),
        Some("restock")
    );
    let (was, is): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) = (
        before.get("updated_at").unwrap(),
        after.get("updated_at").unwrap(),
    );
    assert!(is > was, "updated_at moves as in update");
    assert_eq!(count(&db, Filter::is_null("note")).await, 1);

    // No row matching is no error.
    let none = Filter::gt("quantity", 100_i64);
    assert_eq!(
        db.update_where("StockBalance", none.clone(), Record::new())
            .await
            .unwrap(),
        0
    );
    assert_eq!(db.delete_where("StockBalance", none).await.unwrap(), 0);

    let deleted = db
        .delete_where("StockBalance", Filter::lt("quantity", 2_i64))
        .await
        .unwrap();
    assert_eq!(deleted, 2);
    assert_eq!(count(&db, Filter::And(vec![])).await, 2);
    db.close().await;
}

#[tokio::test]
async fn writes_by_filter_inside_a_rolled_back_transaction_change_nothing() {
    let db = open("bulk_tx").await;
    seed(&db, "T", &[1, 2, 3]).await;
    let tx = db.begin(TxOptions::default()).await.unwrap();
    let changed = tx
        .update_where(
            "StockBalance",
            Filter::ge("quantity", 2_i64),
            Record::new().with("quantity", 0_i64),
        )
        .await
        .unwrap();
    assert_eq!(changed, 2);
    let typed = tx.typed::<StockBalance>();
    assert_eq!(
        typed
            .delete_where(StockBalance::QUANTITY.eq(0))
            .await
            .unwrap(),
        2
    );
    // The transaction sees its own writes.
    let page = tx
        .list("StockBalance", pgactor::Query::new())
        .await
        .unwrap();
    assert_eq!(page.total, Some(1));
    tx.rollback().await.unwrap();
    assert_eq!(count(&db, Filter::And(vec![])).await, 3);
    assert_eq!(count(&db, Filter::eq("quantity", 0_i64)).await, 0);
    db.close().await;
}

#[tokio::test]
async fn writes_by_filter_and_increments_go_by_message_too() {
    let db = open("bulk_msg").await;
    let ids = seed(&db, "M", &[1, 2, 3]).await;
    let req = BulkWriteRequest {
        model: "StockBalance".into(),
        filter: Filter::ge("quantity", 2_i64),
        op: BulkOp::Update(Record::new().with("note", "msg")),
    };
    let changed = ractor::call!(db.actor(), DbMsg::bulk_write, req, Call::here()).unwrap();
    assert_eq!(changed.unwrap(), 2);

    let req = IncrementRequest {
        model: "StockBalance".into(),
        id: ids[0].into(),
        field: "quantity".into(),
        by: 4_i64.into(),
        guard: None,
    };
    let row = ractor::call!(db.actor(), DbMsg::increment, req, Call::here()).unwrap();
    assert_eq!(row.unwrap().get::<i64>("quantity").unwrap(), 5);

    let typed = ractor::call!(
        db.actor(),
        DbMsg::increment_as::<StockBalance, _>,
        ids[1].into(),
        StockBalance::QUANTITY,
        -2,
        Some(StockBalance::QUANTITY.ge(2)),
        Call::here()
    )
    .unwrap()
    .unwrap();
    assert_eq!(typed.quantity, 0);

    let deleted = ractor::call!(
        db.actor(),
        DbMsg::delete_where_as::<StockBalance>,
        StockBalance::QUANTITY.eq(0),
        Call::here()
    )
    .unwrap();
    assert_eq!(deleted.unwrap(), 1);

    // Inside a transaction, by message, rolled back.
    let tx = db.begin(TxOptions::default()).await.unwrap();
    let req = BulkWriteRequest {
        model: "StockBalance".into(),
        filter: Filter::And(vec![]),
        op: BulkOp::Delete,
    };
    let all = ractor::call!(tx.actor(), TxMsg::bulk_write, req).unwrap();
    assert_eq!(all.unwrap(), 2);
    let bumped = ractor::call!(
        tx.actor(),
        TxMsg::update_where_as::<StockBalance>,
        StockBalance::SKU.eq("nothing"),
        Record::new().with("note", "x")
    )
    .unwrap();
    assert_eq!(bumped.unwrap(), 0);
    tx.rollback().await.unwrap();
    assert_eq!(count(&db, Filter::And(vec![])).await, 2);
    db.close().await;
}

#[tokio::test]
async fn typed_writes_by_filter_and_increments() {
    let db = open("bulk_typed").await;
    let ids = seed(&db, "Y", &[3, 4]).await;
    let stock = db.typed::<StockBalance>();
    let changed = stock
        .update_where(
            StockBalance::QUANTITY.ge(4),
            Record::new().with("note", "big"),
        )
        .await
        .unwrap();
    assert_eq!(changed, 1);
    let row = stock
        .increment(
            ids[0],
            StockBalance::QUANTITY,
            10,
            Some(Filter::is_null(StockBalance::NOTE)),
        )
        .await
        .unwrap();
    assert_eq!((row.id, row.quantity), (ids[0], 13));
    let err = stock
        .increment(
            ids[1],
            StockBalance::QUANTITY,
            10,
            Some(Filter::is_null(StockBalance::NOTE)),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert_eq!(
        stock
            .delete_where(StockBalance::QUANTITY.gt(5))
            .await
            .unwrap(),
        1
    );
    db.close().await;
}

#[tokio::test]
async fn an_increment_under_its_guard_changes_the_row_or_says_why_not() {
    let db = open("bulk_inc").await;
    let ids = seed(&db, "I", &[1]).await;
    let id = ids[0];
    let guard = || Some(Filter::ge("quantity", 1_i64));

    let row = db
        .increment("StockBalance", id, "quantity", -1_i64, guard())
        .await
        .unwrap();
    assert_eq!(row.get::<i64>("quantity").unwrap(), 0);

    // The guard no longer holds: Conflict, and the row is as it was.
    let before = db.read("StockBalance", id).await.unwrap();
    let err = db
        .increment("StockBalance", id, "quantity", -1_i64, guard())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.to_string().contains("guard"), "{err}");
    assert_eq!(db.read("StockBalance", id).await.unwrap(), before);

    assert!(!err.is_retryable(), "running it again finds the same row");
    // So a transaction that meets it is run once, retry policy or not.
    let runs = std::sync::atomic::AtomicU32::new(0);
    let options = TxOptions {
        retry: pgactor::RetryPolicy::attempts(3),
        ..TxOptions::default()
    };
    let err = db
        .with_transaction(options, |tx| {
            runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            async move {
                tx.increment("StockBalance", id, "quantity", -1_i64, guard())
                    .await
            }
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(runs.load(std::sync::atomic::Ordering::Relaxed), 1);

    // No row with the id: NotFound, guard or not.
    for guard in [guard(), None] {
        let err = db
            .increment("StockBalance", Uuid::now_v7(), "quantity", 1_i64, guard)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    }
    db.close().await;
}

#[tokio::test]
async fn sixteen_reservations_of_a_stock_of_ten_take_exactly_ten() {
    let db = open("bulk_race").await;
    let id = seed(&db, "R", &[10]).await[0];
    let start = Arc::new(tokio::sync::Barrier::new(16));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (db, start) = (db.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                db.increment(
                    "StockBalance",
                    id,
                    "quantity",
                    -1_i64,
                    Some(Filter::ge("quantity", 1_i64)),
                )
                .await
                .map(|row| row.get::<i64>("quantity").unwrap())
            })
        })
        .collect();
    let mut taken = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(left) => {
                assert!(left >= 0, "never negative: {left}");
                taken += 1;
            }
            Err(err) => assert_eq!(err.kind(), ErrorKind::Conflict, "{err}"),
        }
    }
    assert_eq!(taken, 10);
    assert_eq!(quantity(&db, id).await, 0);
    db.close().await;
}

#[tokio::test]
async fn bad_increments_and_filters_are_refused_before_any_sql() {
    let db = open("bulk_bad").await;
    let id = seed(&db, "B", &[1]).await[0];
    for (field, by) in [
        ("colour", pgactor::Value::from(1_i64)),
        ("sku", pgactor::Value::from(1_i64)),
        ("note", pgactor::Value::from(1_i64)),
        ("quantity", pgactor::Value::from("one")),
        ("id", pgactor::Value::from(1_i64)),
    ] {
        let err = db
            .increment("StockBalance", id, field, by, None)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{field}: {err}");
    }
    let err = db
        .update_where("StockBalance", Filter::eq("colour", "red"), Record::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let err = db
        .delete_where("Nope", Filter::eq("sku", "B-0"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert_eq!(quantity(&db, id).await, 1);
    db.close().await;
}
