//! Bounds on a query's shape (`QueryBounds`): past one, a List, a
//! `lock_next`, a write by filter or an increment's guard is refused with
//! InvalidInput naming the bound, before any SQL; one model may have bounds
//! of its own.

use pgactor::{
    Db, ErrorKind, Field, FieldType, Filter, Model, OpenOptions, Query, QueryBounds, Record,
    Registry, TxOptions,
};

use crate::support::db::{in_schema, unique_schema, StockBalance};
use crate::support::topology::primary_url;

fn registry() -> Registry {
    Registry::new()
        .with_entity::<StockBalance>()
        .unwrap()
        .with(Model::new("Note").field(Field::new("body", FieldType::Text)))
        .unwrap()
}

fn options(prefix: &str) -> OpenOptions {
    OpenOptions::new(primary_url())
        .registry(registry())
        .session(in_schema(&unique_schema(prefix)))
}

/// `sku = 0 OR sku = 1 OR …`, `n` branches.
fn either(n: usize) -> Filter {
    Filter::Or(
        (0..n)
            .map(|i| Filter::eq("sku", format!("S-{i}")))
            .collect(),
    )
}

fn assert_past(result: pgactor::Result<impl std::fmt::Debug>, bound: &str) {
    let err = result.expect_err("past the bound");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains(bound), "{err}");
}

async fn seed(db: &Db) {
    for i in 0..3 {
        let row = Record::new()
            .with("sku", format!("S-{i}"))
            .with("quantity", 5_i64);
        db.create("StockBalance", row).await.expect("seed");
    }
}

#[tokio::test]
async fn every_filtered_operation_refuses_a_shape_past_the_default_bounds() {
    let db = options("bounds_default").open().await.expect("open");
    seed(&db).await;
    let bounds = QueryBounds::default();
    let model = "StockBalance";
    // At the bound: served.
    let at = Query::new().filter(either(bounds.max_or_branches));
    assert_eq!(
        db.list(model, at).await.expect("at the bound").rows.len(),
        3
    );

    let past = || either(bounds.max_or_branches + 1);
    assert_past(
        db.list(model, Query::new().filter(past())).await,
        "max_or_branches",
    );
    let zero = Record::new().with("quantity", 0_i64);
    assert_past(
        db.update_where(model, past(), zero).await,
        "max_or_branches",
    );
    assert_past(db.delete_where(model, past()).await, "max_or_branches");
    let id: uuid::Uuid = db.list(model, Query::new()).await.unwrap().rows[0]
        .get("id")
        .unwrap();
    assert_past(
        db.increment(model, id, "quantity", -1_i64, Some(past()))
            .await,
        "max_or_branches",
    );
    let tx = db.begin(TxOptions::default()).await.expect("begin");
    assert_past(
        tx.lock_next(model, Query::new().filter(past())).await,
        "max_or_branches",
    );
    tx.rollback().await.expect("rollback");
    let sorted = (0..9).fold(Query::new(), |q, _| q.sort_asc("sku"));
    assert_past(db.list(model, sorted).await, "max_sort_fields");
    let many = Filter::is_in("quantity", 0..(bounds.max_list_values as i64 + 1));
    assert_past(
        db.list(model, Query::new().filter(many)).await,
        "max_list_values",
    );
    let conditions = Filter::And(
        (0..257)
            .map(|i| Filter::ge("quantity", i as i64 - 300))
            .collect(),
    );
    assert_past(
        db.list(model, Query::new().filter(conditions)).await,
        "max_conditions",
    );

    // Nothing was written by the refused writes.
    let page = db
        .list(model, Query::new().filter(Filter::eq("quantity", 5_i64)))
        .await
        .unwrap();
    assert_eq!(page.rows.len(), 3);
    db.close().await;
}

#[tokio::test]
async fn one_model_may_have_bounds_of_its_own() {
    let tight = QueryBounds {
        max_or_branches: 2,
        ..QueryBounds::default()
    };
    let db = options("bounds_model")
        .model_query_bounds("Note", tight)
        .open()
        .await
        .expect("open");
    let three = Filter::Or(
        (0..3)
            .map(|i| Filter::eq("body", format!("b{i}")))
            .collect(),
    );
    assert_past(
        db.list("Note", Query::new().filter(three)).await,
        "max_or_branches",
    );
    // The other model keeps the adapter's bounds.
    db.list("StockBalance", Query::new().filter(either(3)))
        .await
        .expect("within its bounds");
    db.close().await;

    let err = options("bounds_unknown")
        .model_query_bounds("Nope", tight)
        .open()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("Nope"), "{err}");
}
