//! Column subsets: a list or a read that asks for some fields reads and
//! decodes only those (and the id), as records and as a typed partial, on
//! the Db, in a transaction, by message and on the replica; a field left
//! out is an error to read, never a NULL.

use pgactor::{
    Call, DbMsg, ErrorKind, OpenOptions, Query, QueryBounds, ReadFieldsRequest, Record, TxMsg,
    TxOptions, WriteOp,
};
use uuid::Uuid;

use crate::support::db::{
    fast_probe, in_schema, open_with_replica, registry, stock_model, unique_schema, StockBalance,
};
use crate::support::observer::{observer, statements_containing};
use crate::support::topology::{primary_url, Topology};
use crate::support::wait::{eventually, ready};

/// Some fields of a stock row, decoded alone.
#[derive(Debug, Clone, PartialEq, pgactor::Partial)]
#[pgactor(of = StockBalance)]
struct SkuQty {
    id: Uuid,
    sku: String,
    quantity: i64,
}

/// A nullable field, as an `Option`, without the id.
#[derive(Debug, Clone, PartialEq, pgactor::Partial)]
#[pgactor(of = StockBalance)]
struct NoteOnly {
    note: Option<String>,
}

/// The adapter on the primary, in a fresh schema, with three stock rows:
/// `S-<n>` holding `n` units and a note.
async fn seeded(prefix: &str, bounds: QueryBounds) -> (pgactor::Db, String, Vec<Uuid>) {
    let schema = unique_schema(prefix);
    let db = OpenOptions::new(primary_url())
        .registry(registry([stock_model()]))
        .session(in_schema(&schema))
        .query_bounds(bounds)
        .open()
        .await
        .expect("open");
    let rows = (1..=3_i64)
        .map(|n| {
            Record::new()
                .with("sku", format!("S-{n}"))
                .with("quantity", n)
                .with("note", format!("note {n}"))
        })
        .collect();
    let stored = db.create_many("StockBalance", rows).await.unwrap();
    let ids = stored.iter().map(|r| r.get("id").unwrap()).collect();
    (db, schema, ids)
}

#[tokio::test]
async fn a_subset_list_reads_only_its_columns_and_its_rows_hold_only_those_fields() {
    let (db, schema, ids) = seeded("subset_list", QueryBounds::default()).await;
    let obs = observer(&primary_url()).await;
    let query = Query::new().select(["sku"]).sort_desc("quantity").limit(2);
    let page = db.list("StockBalance", query.clone()).await.unwrap();
    assert_eq!(page.total, Some(3));
    let fields: Vec<Vec<&str>> = page
        .rows
        .iter()
        .map(|r| r.iter().map(|(f, _)| f).collect())
        .collect();
    assert_eq!(fields, [["id", "sku"], ["id", "sku"]]);
    assert_eq!(page.rows[0].get::<String>("sku").unwrap(), "S-3");
    assert_eq!(page.rows[0].get::<Uuid>("id").unwrap(), ids[2]);
    // A field left out is an error to read, not a NULL.
    let err = page.rows[0].get::<Option<String>>("note").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert!(err.to_string().contains("no field \"note\""), "{err}");
    // The statement read the id, the field and the sort key, no other
    // column (which the rows then do not hold).
    let text = format!("SELECT \"id\", \"sku\", \"quantity\" FROM \"{schema}\".\"stock_balance\"");
    assert_eq!(statements_containing(&obs, &text).await, 1);
    // The cursor follows the sort though the rows do not hold its key.
    let next = db
        .list(
            "StockBalance",
            query.after(page.next.clone().expect("a full page")),
        )
        .await
        .unwrap();
    assert_eq!(next.rows.len(), 1);
    assert_eq!(next.rows[0].get::<String>("sku").unwrap(), "S-1");
    // Unknown fields are refused before any SQL.
    let err = db
        .list("StockBalance", Query::new().select(["sku", "price"]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("\"price\""), "{err}");
    db.close().await;
}

#[tokio::test]
async fn read_fields_reads_some_fields_of_one_row_on_the_db_in_a_transaction_and_by_message() {
    let (db, _, ids) = seeded("subset_read", QueryBounds::default()).await;
    let row = db
        .read_fields("StockBalance", ids[0], ["quantity", "note"])
        .await
        .unwrap();
    assert_eq!(row.len(), 3);
    assert_eq!(row.get::<i64>("quantity").unwrap(), 1);
    assert_eq!(
        row.get::<Option<String>>("note").unwrap().as_deref(),
        Some("note 1")
    );
    assert_eq!(
        row.get::<String>("sku").unwrap_err().kind(),
        ErrorKind::Decode
    );
    let missing = db
        .read_fields("StockBalance", Uuid::now_v7(), ["sku"])
        .await
        .unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    let unknown = db
        .read_fields("StockBalance", ids[0], ["nope"])
        .await
        .unwrap_err();
    assert_eq!(unknown.kind(), ErrorKind::InvalidInput);

    let req = ReadFieldsRequest::new("StockBalance", ids[1], ["sku"]);
    let by_message = ractor::call!(db.actor(), DbMsg::read_fields, req, Call::here())
        .unwrap()
        .unwrap();
    assert_eq!(by_message.get::<String>("sku").unwrap(), "S-2");
    assert_eq!(by_message.len(), 2);

    let tx = db.begin(TxOptions::default()).await.unwrap();
    tx.update(
        "StockBalance",
        ids[2],
        Record::new().with("quantity", 30_i64),
    )
    .await
    .unwrap();
    let own = tx
        .read_fields("StockBalance", ids[2], ["quantity"])
        .await
        .unwrap();
    assert_eq!(
        own.get::<i64>("quantity").unwrap(),
        30,
        "the transaction's own write"
    );
    let req = ReadFieldsRequest::new("StockBalance", ids[2], ["quantity"]);
    let in_tx = ractor::call!(tx.actor(), TxMsg::read_fields, req)
        .unwrap()
        .unwrap();
    assert_eq!(in_tx, own);
    let listed = tx
        .list(
            "StockBalance",
            Query::new().select(["quantity"]).sort_desc("quantity"),
        )
        .await
        .unwrap();
    assert_eq!(listed.rows[0], own);
    tx.rollback().await.unwrap();
    db.close().await;
}

#[tokio::test]
async fn a_typed_partial_selects_and_decodes_only_its_fields() {
    let (db, schema, ids) = seeded("subset_typed", QueryBounds::default()).await;
    let obs = observer(&primary_url()).await;
    let stock = db.typed::<StockBalance>();
    let page = stock
        .list_as::<SkuQty>(Query::new().sort_asc(StockBalance::SKU))
        .await
        .unwrap();
    let expected: Vec<SkuQty> = (1..=3)
        .map(|n| SkuQty {
            id: ids[n - 1],
            sku: format!("S-{n}"),
            quantity: n as i64,
        })
        .collect();
    assert_eq!(page.rows, expected);
    let text = format!("SELECT \"id\", \"sku\", \"quantity\" FROM \"{schema}\".\"stock_balance\"");
    assert_eq!(statements_containing(&obs, &text).await, 1);
    // Without the id in the struct, the id is still read; a nullable
    // field reads as an Option.
    let note: NoteOnly = stock.read_as(ids[0]).await.unwrap();
    assert_eq!(note.note.as_deref(), Some("note 1"));
    let text = format!("SELECT \"id\", \"note\" FROM \"{schema}\".\"stock_balance\" WHERE");
    assert_eq!(statements_containing(&obs, &text).await, 1);

    // By message, outside and inside a transaction.
    let by_message = ractor::call!(
        db.actor(),
        DbMsg::list_partial::<SkuQty>,
        Query::new().sort_asc("sku"),
        Call::here()
    )
    .unwrap()
    .unwrap();
    assert_eq!(by_message.rows, expected);
    let dynamic = ractor::call!(
        db.actor(),
        DbMsg::List,
        pgactor::ListRequest {
            model: "StockBalance".into(),
            query: Query::new().select(["quantity"]).sort_asc("sku"),
        },
        Call::here()
    )
    .unwrap()
    .unwrap();
    assert_eq!(dynamic.rows[2].len(), 2);
    let tx = db.begin(TxOptions::default()).await.unwrap();
    let in_tx = tx.typed::<StockBalance>();
    let one: SkuQty = in_tx.read_as(ids[1]).await.unwrap();
    assert_eq!(one, expected[1]);
    let listed = in_tx
        .list_as::<SkuQty>(
            Query::new()
                .filter(StockBalance::QUANTITY.ge(2))
                .sort_asc("sku"),
        )
        .await
        .unwrap();
    assert_eq!(listed.rows, expected[1..]);
    let by_tx_message = ractor::call!(tx.actor(), TxMsg::read_partial::<NoteOnly>, ids[2].into())
        .unwrap()
        .unwrap();
    assert_eq!(by_tx_message.note.as_deref(), Some("note 3"));
    let page_by_tx = ractor::call!(
        tx.actor(),
        TxMsg::list_partial::<SkuQty>,
        Query::new().sort_asc("sku")
    )
    .unwrap()
    .unwrap();
    assert_eq!(page_by_tx.rows, expected);
    tx.rollback().await.unwrap();
    db.close().await;
}

#[tokio::test]
async fn more_selected_fields_than_the_bound_are_refused_before_any_sql() {
    let bounds = QueryBounds {
        max_selected_fields: 1,
        ..QueryBounds::default()
    };
    let (db, schema, ids) = seeded("subset_bound", bounds).await;
    let obs = observer(&primary_url()).await;
    let two = Query::new().select(["sku", "note"]);
    let err = db.list("StockBalance", two).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("max_selected_fields"), "{err}");
    let err = db
        .read_fields("StockBalance", ids[0], ["sku", "note"])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("max_selected_fields"), "{err}");
    let partial = db
        .typed::<StockBalance>()
        .list_as::<SkuQty>(Query::new())
        .await;
    assert_eq!(partial.unwrap_err().kind(), ErrorKind::InvalidInput);
    let text = format!("\"{schema}\".\"stock_balance\" WHERE");
    assert_eq!(statements_containing(&obs, &text).await, 0, "no SQL sent");
    db.list("StockBalance", Query::new().select(["sku"]))
        .await
        .expect("one field is within the bound");
    db.close().await;
}

#[tokio::test]
async fn subsets_read_the_replica_and_a_token_makes_them_see_the_write() {
    let topo = Topology::up();
    let schema = unique_schema("subset_replica");
    let db = open_with_replica(topo.primary(), topo.replica(), fast_probe(), &schema).await;
    let (row, token) = db
        .write_with_token(
            "StockBalance",
            WriteOp::Create(Record::new().with("sku", "R-1").with("quantity", 7_i64)),
        )
        .await
        .unwrap();
    let id: Uuid = row.get("id").unwrap();
    // With the token: on the replica once replayed, else the primary.
    let fresh = db.after(token);
    let read = fresh
        .read_fields("StockBalance", id, ["quantity"])
        .await
        .unwrap();
    assert_eq!(read.get::<i64>("quantity").unwrap(), 7);
    let typed: SkuQty = fresh.typed::<StockBalance>().read_as(id).await.unwrap();
    assert_eq!((typed.sku.as_str(), typed.quantity), ("R-1", 7));
    // Without it, on the replica once it has the row.
    let page = eventually("the row on the replica", || async {
        let page = db
            .list("StockBalance", Query::new().select(["sku"]))
            .await
            .map_err(|e| e.to_string())?;
        ready(page.rows.len() == 1, page).map_err(str::to_owned)
    })
    .await;
    assert_eq!(page.rows[0].len(), 2);
    assert!(db.stats().replica.expect("a replica").up);
    db.close().await;
}
