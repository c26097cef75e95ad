//! Typed entities: a struct that is a model, read, listed, written and
//! locked through `Db::typed` and `Tx::typed`, its rows decoded straight
//! into the struct.

use pgactor::{column, Entity, ErrorKind, FromRow, Model, Query, Record, Registry, Row, TxOptions};
use uuid::Uuid;

use crate::support::db::{in_schema, unique_schema, StockBalance};
use crate::support::topology::primary_url;

#[test]
fn the_derived_model_is_the_seeds_stock_model() {
    assert_eq!(StockBalance::model(), crate::support::db::stock_model());
}

async fn open(prefix: &str) -> pgactor::Db {
    pgactor::OpenOptions::new(primary_url())
        .registry(Registry::new().with_entity::<StockBalance>().unwrap())
        .session(in_schema(&unique_schema(prefix)))
        .open()
        .await
        .expect("open")
}

#[tokio::test]
async fn an_entity_is_created_read_listed_updated_and_deleted_as_its_struct() {
    let db = open("typed_crud").await;
    let stock = db.typed::<StockBalance>();

    let a = stock.create(&StockBalance::new("A-1", 5)).await.unwrap();
    assert_eq!(
        (a.sku.as_str(), a.quantity, a.note.as_deref()),
        ("A-1", 5, None)
    );
    assert!(!a.id.is_nil(), "the adapter generated the id");
    assert_eq!(a.created_at, a.updated_at);
    let b = stock.create(&StockBalance::new("B-2", 12)).await.unwrap();
    assert_eq!(stock.read(a.id).await.unwrap(), a);

    let page = stock
        .list(
            Query::new()
                .filter(StockBalance::QUANTITY.gt(1))
                .sort_desc(StockBalance::QUANTITY),
        )
        .await
        .unwrap();
    assert_eq!(page.total, Some(2));
    assert_eq!(page.rows, [b.clone(), a.clone()]);
    let page = stock
        .list(Query::new().filter(StockBalance::SKU.eq("B-2")))
        .await
        .unwrap();
    assert_eq!(page.rows, std::slice::from_ref(&b));

    let changed = StockBalance {
        quantity: 4,
        note: Some("recounted".into()),
        ..a.clone()
    };
    let updated = stock.update(a.id, &changed).await.unwrap();
    assert_eq!(
        (updated.quantity, updated.note.as_deref()),
        (4, Some("recounted"))
    );
    assert_eq!(updated.created_at, a.created_at);
    assert!(updated.updated_at >= a.updated_at);

    // The same rows through the record API.
    let record = db.read("StockBalance", a.id).await.unwrap();
    assert_eq!(record.get::<i64>("quantity").unwrap(), 4);

    let dup = stock
        .create(&StockBalance::new("A-1", 1))
        .await
        .unwrap_err();
    assert_eq!(
        dup.kind(),
        ErrorKind::Constraint(pgactor::ConstraintKind::Unique)
    );
    let gone = stock.delete(b.id).await.unwrap();
    assert_eq!(gone, b);
    let missing = stock.read(b.id).await.unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    db.close().await;
}

#[tokio::test]
async fn an_entity_in_a_transaction_is_locked_read_and_written_on_its_connection() {
    let db = open("typed_tx").await;
    let stock = db.typed::<StockBalance>();
    let a = stock.create(&StockBalance::new("A-1", 5)).await.unwrap();

    let tx = db.begin(TxOptions::default()).await.unwrap();
    let in_tx = tx.typed::<StockBalance>();
    let mut locked = in_tx.lock_for_update(a.id).await.unwrap();
    assert_eq!(locked, a);
    locked.quantity -= 1;
    in_tx.update(a.id, &locked).await.unwrap();
    let c = in_tx.create(&StockBalance::new("C-3", 1)).await.unwrap();
    let page = in_tx
        .list(Query::new().sort_asc(StockBalance::SKU))
        .await
        .unwrap();
    assert_eq!(
        page.rows
            .iter()
            .map(|s| (s.sku.as_str(), s.quantity))
            .collect::<Vec<_>>(),
        [("A-1", 4), ("C-3", 1)]
    );
    assert_eq!(in_tx.read(c.id).await.unwrap(), c);
    assert_eq!(
        stock.read(c.id).await.unwrap_err().kind(),
        ErrorKind::NotFound,
        "not committed yet"
    );
    in_tx.delete(c.id).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(stock.read(a.id).await.unwrap().quantity, 4);
    assert_eq!(stock.list(Query::new()).await.unwrap().total, Some(1));
    db.close().await;
}

#[tokio::test]
async fn a_row_that_does_not_decode_into_the_struct_is_a_decode_error() {
    let db = open("typed_decode").await;
    db.create(
        "StockBalance",
        Record::new().with("sku", "x").with("quantity", 1_i64),
    )
    .await
    .unwrap();
    /// A struct that says `quantity` is text.
    #[derive(Debug)]
    struct Wrong;
    impl FromRow for Wrong {
        fn from_row(row: &Row) -> pgactor::Result<Wrong> {
            let _: String = column(row, "quantity")?;
            Ok(Wrong)
        }
    }
    impl Entity for Wrong {
        const MODEL: &'static str = "StockBalance";
        fn model() -> Model {
            StockBalance::model()
        }
        fn to_record(&self) -> Record {
            Record::new()
        }
    }
    let err = db.typed::<Wrong>().list(Query::new()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode, "{err}");
    assert!(err.to_string().contains("quantity"), "{err}");
    db.close().await;
}

#[tokio::test]
async fn typed_operations_run_by_message_on_the_pools_and_in_a_transaction() {
    use pgactor::{Call, DbMsg, TxMsg};
    use ractor::call;

    let db = open("typed_messages").await;
    let actor = db.actor();
    let a: StockBalance = call!(
        actor,
        DbMsg::create_as,
        StockBalance::new("A-1", 5),
        Call::here()
    )
    .unwrap()
    .unwrap();
    let read: StockBalance = call!(actor, DbMsg::read_as, a.id.into(), Call::here())
        .unwrap()
        .unwrap();
    assert_eq!(read, a);
    let page = call!(
        actor,
        DbMsg::list_as::<StockBalance>,
        Query::new().filter(StockBalance::QUANTITY.ge(5)),
        Call::here()
    )
    .unwrap()
    .unwrap();
    assert_eq!(page.rows, std::slice::from_ref(&a));
    let more = StockBalance {
        quantity: 6,
        ..a.clone()
    };
    let updated: StockBalance = call!(actor, DbMsg::update_as, a.id.into(), more, Call::here())
        .unwrap()
        .unwrap();
    assert_eq!(updated.quantity, 6);
    let missing = call!(
        actor,
        DbMsg::read_as::<StockBalance>,
        Uuid::now_v7().into(),
        Call::here()
    )
    .unwrap()
    .unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);

    let tx = db.begin(TxOptions::default()).await.unwrap();
    let in_tx = tx.actor();
    let mut locked: StockBalance = call!(in_tx, TxMsg::lock_for_update_as, a.id.into())
        .unwrap()
        .unwrap();
    locked.quantity = 0;
    let _: StockBalance = call!(in_tx, TxMsg::update_as, a.id.into(), locked)
        .unwrap()
        .unwrap();
    let b: StockBalance = call!(in_tx, TxMsg::create_as, StockBalance::new("B-2", 1))
        .unwrap()
        .unwrap();
    let page = call!(
        in_tx,
        TxMsg::list_as::<StockBalance>,
        Query::new().sort_asc(StockBalance::SKU)
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        page.rows.iter().map(|s| s.quantity).collect::<Vec<_>>(),
        [0, 1]
    );
    let gone: StockBalance = call!(in_tx, TxMsg::delete_as, b.id.into())
        .unwrap()
        .unwrap();
    assert_eq!(gone, b);
    let read: StockBalance = call!(in_tx, TxMsg::read_as, a.id.into()).unwrap().unwrap();
    assert_eq!(read.quantity, 0);
    call!(in_tx, TxMsg::Commit).unwrap().unwrap();
    let gone: StockBalance = call!(actor, DbMsg::delete_as, a.id.into(), Call::here())
        .unwrap()
        .unwrap();
    assert_eq!(gone.quantity, 0);
    db.close().await;
}
