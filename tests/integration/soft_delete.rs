//! Soft delete: a delete sets `deleted_at`, and reads, lists (their counts
//! and cursors), locks, updates, updates by filter and increments see live
//! rows only; a list may ask for deleted rows; a restore clears the mark; a
//! hard delete removes rows for good. Unique keys and upserts hold live
//! rows only. Through the `Db` handle, inside a transaction, typed, by
//! message, and added by AutoMigrate to an existing table.

use chrono::{DateTime, Utc};
use pgactor::{
    BulkOp, BulkWriteRequest, Call, ConstraintKind, Db, DbMsg, ErrorKind, Field, FieldType, Filter,
    Model, OnConflict, OnDelete, OpenOptions, Query, Record, Registry, Sql, TxMsg, TxOptions,
    Upserted, WriteOp, WriteRequest,
};
use uuid::Uuid;

use crate::support::db::{in_schema, open_primary, registry, stock_model, unique_schema};
use crate::support::topology::primary_url;

/// A versioned, soft-delete document with a unique slug.
fn doc() -> Model {
    doc_without_soft_delete().soft_delete()
}

/// The same document before it turned soft delete on.
fn doc_without_soft_delete() -> Model {
    Model::new("Doc")
        .field(Field::new("slug", FieldType::Text).unique())
        .field(Field::new("hits", FieldType::I64).default_value(0_i64))
        .versioned()
}

/// The same as a struct that reads `deleted_at`.
#[derive(Debug, Clone, Default, PartialEq, pgactor::Entity)]
#[pgactor(soft_delete)]
struct Note {
    id: Uuid,
    #[pgactor(unique)]
    slug: String,
    deleted_at: Option<DateTime<Utc>>,
}

async fn create(db: &Db, slug: &str) -> Uuid {
    let row = db
        .create("Doc", Record::new().with("slug", slug))
        .await
        .unwrap();
    assert_eq!(deleted_at(&row), None, "a new row is live");
    row.get("id").unwrap()
}

fn deleted_at(row: &Record) -> Option<DateTime<Utc>> {
    row.get("deleted_at").unwrap()
}

fn assert_kind<T: std::fmt::Debug>(result: pgactor::Result<T>, kind: ErrorKind) {
    let err = result.expect_err("should fail");
    assert_eq!(err.kind(), kind, "{err}");
}

/// The slugs a list answers, in order, and its total.
async fn slugs(db: &Db, query: Query) -> (Vec<String>, Option<u64>) {
    let page = db.list("Doc", query.sort_asc("slug")).await.unwrap();
    let slugs = page.rows.iter().map(|r| r.get("slug").unwrap()).collect();
    (slugs, page.total)
}

#[tokio::test]
async fn a_deleted_row_is_hidden_from_reads_lists_locks_updates_and_increments() {
    let (db, _) = open_primary("soft_hidden", [doc()]).await;
    let gone = create(&db, "a").await;
    create(&db, "b").await;

    let deleted = db.delete("Doc", gone).await.unwrap();
    assert!(deleted_at(&deleted).is_some(), "answered as marked");
    assert_eq!(deleted.get::<i64>("version").unwrap(), 2, "a change");

    assert_kind(db.read("Doc", gone).await, ErrorKind::NotFound);
    assert_eq!(slugs(&db, Query::new()).await, (vec!["b".into()], Some(1)));
    assert_kind(
        db.update("Doc", gone, Record::new().with("hits", 1_i64))
            .await,
        ErrorKind::NotFound,
    );
    // The versioned update's refusal reads live rows too: not a Conflict.
    let versioned = Record::new().with("hits", 1_i64).with("version", 2_i64);
    assert_kind(db.update("Doc", gone, versioned).await, ErrorKind::NotFound);
    assert_kind(
        db.increment("Doc", gone, "hits", 1_i64, None).await,
        ErrorKind::NotFound,
    );
    let guard = Some(Filter::ge("hits", 0_i64));
    assert_kind(
        db.increment("Doc", gone, "hits", 1_i64, guard).await,
        ErrorKind::NotFound,
    );
    let every = || Filter::And(vec![]);
    let patch = Record::new().with("hits", 7_i64);
    assert_eq!(db.update_where("Doc", every(), patch).await.unwrap(), 1);
    assert_kind(db.delete("Doc", gone).await, ErrorKind::NotFound);

    let tx = db.begin(TxOptions::default()).await.unwrap();
    assert_kind(tx.lock_for_update("Doc", gone).await, ErrorKind::NotFound);
    assert_kind(
        tx.lock_for_update_nowait("Doc", gone).await,
        ErrorKind::NotFound,
    );
    let taken = tx.lock_next("Doc", Query::new().limit(10)).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].get::<String>("slug").unwrap(), "b");
    tx.rollback().await.unwrap();

    // The deleted row kept its values: nothing above reached it.
    let (rows, _) = slugs(&db, Query::new().only_deleted()).await;
    assert_eq!(rows, ["a"]);
    let page = db.list("Doc", Query::new().only_deleted()).await.unwrap();
    assert_eq!(page.rows[0].get::<i64>("hits").unwrap(), 0);
    assert_eq!(page.rows[0].get::<i64>("version").unwrap(), 2);

    // A delete by filter marks the live rows it matches, and counts them.
    assert_eq!(db.delete_where("Doc", every()).await.unwrap(), 1);
    assert_eq!(db.delete_where("Doc", every()).await.unwrap(), 0);
    assert_eq!(slugs(&db, Query::new()).await, (vec![], Some(0)));
    // Raw SQL is not rewritten: it sees every row.
    let (all,): (i64,) = db.query_one_as("SELECT count(*) FROM doc").await.unwrap();
    assert_eq!(all, 2);
}

#[tokio::test]
async fn lists_walk_live_deleted_or_every_row_by_cursor() {
    let (db, _) = open_primary("soft_walk", [doc()]).await;
    for slug in ["a", "b", "c", "d", "e"] {
        let id = create(&db, slug).await;
        if ["b", "d"].contains(&slug) {
            db.delete("Doc", id).await.unwrap();
        }
    }
    let walk = |query: Query| {
        let db = db.clone();
        async move {
            let query = query.sort_asc("slug").limit(2);
            let mut seen = Vec::new();
            let mut page = db.list("Doc", query.clone()).await.unwrap();
            let total = page.total;
            loop {
                seen.extend(page.rows.iter().map(|r| r.get::<String>("slug").unwrap()));
                let Some(next) = page.next.take() else { break };
                page = db.list("Doc", query.clone().after(next)).await.unwrap();
            }
            (seen, total)
        }
    };
    assert_eq!(
        walk(Query::new()).await,
        (vec!["a".into(), "c".into(), "e".into()], Some(3))
    );
    assert_eq!(
        walk(Query::new().only_deleted()).await,
        (vec!["b".into(), "d".into()], Some(2))
    );
    let (every, total) = walk(Query::new().with_deleted()).await;
    assert_eq!((every.len(), total), (5, Some(5)));
    // A filter on deleted_at is ANDed with the scope.
    let marked = Query::new().filter(Filter::is_not_null("deleted_at"));
    assert_eq!(slugs(&db, marked.clone()).await, (vec![], Some(0)));
    assert_eq!(slugs(&db, marked.with_deleted()).await.1, Some(2));
}

#[tokio::test]
async fn a_restore_brings_a_row_back_and_a_hard_delete_removes_it_for_good() {
    let (db, _) = open_primary("soft_restore", [doc()]).await;
    let a = create(&db, "a").await;
    let b = create(&db, "b").await;
    let c = create(&db, "c").await;
    assert_kind(db.restore("Doc", a).await, ErrorKind::NotFound);
    db.delete("Doc", a).await.unwrap();
    let restored = db.restore("Doc", a).await.unwrap();
    assert_eq!(deleted_at(&restored), None);
    assert_eq!(restored.get::<i64>("version").unwrap(), 3);
    assert_eq!(db.read("Doc", a).await.unwrap(), restored);
    assert_kind(db.restore("Doc", a).await, ErrorKind::NotFound);
    assert_kind(db.restore("Doc", Uuid::now_v7()).await, ErrorKind::NotFound);

    // A hard delete takes a live row and a deleted one alike.
    let removed = db.hard_delete("Doc", a).await.unwrap();
    assert_eq!(removed.get::<String>("slug").unwrap(), "a");
    db.delete("Doc", b).await.unwrap();
    db.hard_delete("Doc", b).await.unwrap();
    assert_kind(db.hard_delete("Doc", b).await, ErrorKind::NotFound);
    assert_kind(db.restore("Doc", b).await, ErrorKind::NotFound);

    // Purging by filter: deleted rows only, here.
    let d = create(&db, "d").await;
    db.delete("Doc", d).await.unwrap();
    let deleted = Filter::is_not_null("deleted_at");
    assert_eq!(db.hard_delete_where("Doc", deleted).await.unwrap(), 1);
    let (every, _) = slugs(&db, Query::new().with_deleted()).await;
    assert_eq!(every, ["c"]);
    assert_eq!(
        db.read("Doc", c)
            .await
            .unwrap()
            .get::<String>("slug")
            .unwrap(),
        "c"
    );
}

#[tokio::test]
async fn a_deleted_row_frees_its_unique_key_and_cannot_be_restored_over_a_new_holder() {
    let (db, _) = open_primary("soft_unique", [doc()]).await;
    let old = create(&db, "a").await;
    let err = db
        .create("Doc", Record::new().with("slug", "a"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Constraint(ConstraintKind::Unique));
    db.delete("Doc", old).await.unwrap();
    let new = create(&db, "a").await;
    assert_ne!(old, new);
    // Two deleted rows may hold one key.
    db.delete("Doc", new).await.unwrap();
    let newest = create(&db, "a").await;
    let err = db.restore("Doc", old).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Constraint(ConstraintKind::Unique),
        "{err}"
    );
    db.delete("Doc", newest).await.unwrap();
    db.restore("Doc", old).await.unwrap();
    let (every, total) = slugs(&db, Query::new().with_deleted()).await;
    assert_eq!((every.len(), total), (3, Some(3)));
}

#[tokio::test]
async fn an_upsert_matches_live_rows_only() {
    let (db, _) = open_primary("soft_upsert", [doc()]).await;
    let row = |hits: i64| Record::new().with("slug", "a").with("hits", hits);
    let Upserted::Inserted(first) = db
        .upsert("Doc", row(1), &["slug"], OnConflict::Update)
        .await
        .unwrap()
    else {
        panic!("a new key is inserted")
    };
    let first_id: Uuid = first.get("id").unwrap();
    let updated = db
        .upsert("Doc", row(2), &["slug"], OnConflict::Update)
        .await
        .unwrap();
    assert!(matches!(&updated, Upserted::Updated(r) if r.get::<i64>("hits").unwrap() == 2));
    db.delete("Doc", first_id).await.unwrap();

    // The deleted row holds the key no more: the upsert inserts anew.
    let again = db
        .upsert("Doc", row(3), &["slug"], OnConflict::Nothing)
        .await
        .unwrap();
    let Upserted::Inserted(second) = again else {
        panic!("a deleted row is no conflict: {again:?}")
    };
    assert_ne!(second.get::<Uuid>("id").unwrap(), first_id);
    let skipped = db
        .upsert("Doc", row(4), &["slug"], OnConflict::Nothing)
        .await
        .unwrap();
    assert_eq!(skipped, Upserted::Skipped);
    // On the id, the deleted row is left as it is.
    let by_id = Record::new()
        .with("id", first_id)
        .with("slug", "z")
        .with("hits", 9_i64);
    let answer = db
        .upsert("Doc", by_id, &["id"], OnConflict::Update)
        .await
        .unwrap();
    assert_eq!(answer, Upserted::Skipped);
    let deleted = db.list("Doc", Query::new().only_deleted()).await.unwrap();
    assert_eq!(deleted.rows.len(), 1);
    assert_eq!(deleted.rows[0].get::<i64>("hits").unwrap(), 2);
}

#[tokio::test]
async fn typed_entities_and_messages_delete_restore_and_hard_delete() {
    let db = OpenOptions::new(primary_url())
        .registry(Registry::new().with_entity::<Note>().unwrap())
        .session(in_schema(&unique_schema("soft_typed")))
        .open()
        .await
        .unwrap();
    let notes = db.typed::<Note>();
    let note = |slug: &str| Note {
        slug: slug.into(),
        ..Note::default()
    };
    let a = notes.create(&note("a")).await.unwrap();
    assert_eq!(a.deleted_at, None);
    let deleted = notes.delete(a.id).await.unwrap();
    assert!(deleted.deleted_at.is_some());
    assert_kind(notes.read(a.id).await, ErrorKind::NotFound);
    let trash = notes.list(Query::new().only_deleted()).await.unwrap();
    assert_eq!(trash.rows, [deleted]);
    let restored = notes.restore(a.id).await.unwrap();
    assert_eq!(restored.deleted_at, None);
    assert_eq!(notes.hard_delete(a.id).await.unwrap().slug, "a");

    // As messages to the supervisor, typed and not.
    let b = notes.create(&note("b")).await.unwrap();
    let call = Call::here;
    let deleted = ractor::call!(db.actor(), DbMsg::delete_as::<Note>, b.id.into(), call())
        .unwrap()
        .unwrap();
    assert!(deleted.deleted_at.is_some());
    let restored = ractor::call!(db.actor(), DbMsg::restore_as::<Note>, b.id.into(), call())
        .unwrap()
        .unwrap();
    assert_eq!(restored.deleted_at, None);
    let write = |op| WriteRequest {
        model: "Note".into(),
        op,
    };
    let req = write(WriteOp::Delete { id: b.id.into() });
    ractor::call!(db.actor(), DbMsg::Write, req, call())
        .unwrap()
        .unwrap();
    let req = write(WriteOp::Restore { id: b.id.into() });
    let row = ractor::call!(db.actor(), DbMsg::Write, req, call())
        .unwrap()
        .unwrap();
    assert_eq!(deleted_at(&row), None);
    let req = write(WriteOp::HardDelete { id: b.id.into() });
    ractor::call!(db.actor(), DbMsg::Write, req, call())
        .unwrap()
        .unwrap();
    let c = notes.create(&note("c")).await.unwrap();
    notes.delete(c.id).await.unwrap();
    let listed = ractor::call!(
        db.actor(),
        DbMsg::list_as::<Note>,
        Query::new().with_deleted(),
        call()
    )
    .unwrap()
    .unwrap();
    assert_eq!(listed.total, Some(1));
    let gone = ractor::call!(
        db.actor(),
        DbMsg::hard_delete_where_as::<Note>,
        Filter::is_not_null("deleted_at"),
        call()
    )
    .unwrap()
    .unwrap();
    assert_eq!(gone, 1);
    let d = notes.create(&note("d")).await.unwrap();
    let hard = BulkWriteRequest {
        model: "Note".into(),
        filter: Filter::eq("slug", "d"),
        op: BulkOp::HardDelete,
    };
    let req = hard.clone();
    assert_eq!(
        ractor::call!(db.actor(), DbMsg::bulk_write, req, call())
            .unwrap()
            .unwrap(),
        1
    );
    assert_kind(notes.read(d.id).await, ErrorKind::NotFound);
    let e = notes.create(&note("e")).await.unwrap();
    ractor::call!(
        db.actor(),
        DbMsg::hard_delete_as::<Note>,
        e.id.into(),
        call()
    )
    .unwrap()
    .unwrap();
    let f = notes.create(&note("f")).await.unwrap();
    let soft = Filter::eq("slug", "f");
    assert_eq!(notes.delete_where(soft.clone()).await.unwrap(), 1);
    assert_eq!(notes.hard_delete_where(soft).await.unwrap(), 1);
    assert_kind(notes.restore(f.id).await, ErrorKind::NotFound);
    let every = notes.list(Query::new().with_deleted()).await.unwrap();
    assert_eq!(every.total, Some(0));

    // Typed inside a transaction, and by message to its actor.
    let g = notes.create(&note("g")).await.unwrap();
    let tx = db.begin(TxOptions::default()).await.unwrap();
    let in_tx = tx.typed::<Note>();
    assert!(in_tx.delete(g.id).await.unwrap().deleted_at.is_some());
    assert_kind(in_tx.lock_for_update(g.id).await, ErrorKind::NotFound);
    assert_eq!(in_tx.restore(g.id).await.unwrap().deleted_at, None);
    assert_eq!(in_tx.lock_for_update(g.id).await.unwrap().slug, "g");
    let actor = tx.actor();
    let marked = ractor::call!(actor, TxMsg::delete_as::<Note>, g.id.into())
        .unwrap()
        .unwrap();
    assert!(marked.deleted_at.is_some());
    ractor::call!(actor, TxMsg::restore_as::<Note>, g.id.into())
        .unwrap()
        .unwrap();
    let req = write(WriteOp::Delete { id: g.id.into() });
    ractor::call!(actor, TxMsg::Write, req).unwrap().unwrap();
    let req = write(WriteOp::Restore { id: g.id.into() });
    ractor::call!(actor, TxMsg::Write, req).unwrap().unwrap();
    ractor::call!(actor, TxMsg::hard_delete_as::<Note>, g.id.into())
        .unwrap()
        .unwrap();
    let purged = ractor::call!(
        actor,
        TxMsg::hard_delete_where_as::<Note>,
        Filter::And(vec![])
    )
    .unwrap()
    .unwrap();
    assert_eq!(purged, 0);
    let req = BulkWriteRequest {
        op: BulkOp::Delete,
        ..hard
    };
    assert_eq!(
        ractor::call!(actor, TxMsg::bulk_write, req)
            .unwrap()
            .unwrap(),
        0
    );
    tx.commit().await.unwrap();
    assert_kind(notes.read(g.id).await, ErrorKind::NotFound);
    assert_eq!(
        notes.list(Query::new().with_deleted()).await.unwrap().total,
        Some(0)
    );
}

#[tokio::test]
async fn inside_a_transaction_a_delete_and_a_restore_are_seen_and_roll_back() {
    let (db, _) = open_primary("soft_tx", [doc()]).await;
    let a = create(&db, "a").await;
    let tx = db.begin(TxOptions::default()).await.unwrap();
    tx.delete("Doc", a).await.unwrap();
    assert_kind(tx.read("Doc", a).await, ErrorKind::NotFound);
    assert_eq!(tx.list("Doc", Query::new()).await.unwrap().total, Some(0));
    let trash = tx.list("Doc", Query::new().only_deleted()).await.unwrap();
    assert_eq!(trash.total, Some(1));
    // Outside, the row is live until the commit.
    assert!(db.read("Doc", a).await.is_ok());
    tx.restore("Doc", a).await.unwrap();
    tx.delete_where("Doc", Filter::eq("slug", "a"))
        .await
        .unwrap();
    tx.hard_delete_where("Doc", Filter::eq("slug", "a"))
        .await
        .unwrap();
    assert_eq!(
        tx.list("Doc", Query::new().with_deleted())
            .await
            .unwrap()
            .total,
        Some(0)
    );
    tx.rollback().await.unwrap();
    let row = db.read("Doc", a).await.unwrap();
    assert_eq!(deleted_at(&row), None);
}

#[tokio::test]
async fn a_model_without_soft_delete_refuses_restore_and_deleted_rows_before_any_sql() {
    // No table exists (AutoMigrate off): any statement sent would fail on
    // the server, so an InvalidInput was refused before one was.
    let db = OpenOptions::new(primary_url())
        .registry(registry([stock_model()]))
        .session(in_schema(&unique_schema("soft_refused")))
        .auto_migrate(false)
        .open()
        .await
        .unwrap();
    let id = Uuid::now_v7();
    assert_kind(
        db.restore("StockBalance", id).await,
        ErrorKind::InvalidInput,
    );
    let err = db
        .list("StockBalance", Query::new().with_deleted())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("StockBalance is none"), "{err}");
    assert_kind(
        db.list("StockBalance", Query::new().only_deleted()).await,
        ErrorKind::InvalidInput,
    );
    let req = WriteRequest {
        model: "StockBalance".into(),
        op: WriteOp::Restore { id: id.into() },
    };
    assert_kind(
        ractor::call!(db.actor(), DbMsg::Write, req, Call::here()).unwrap(),
        ErrorKind::InvalidInput,
    );
    // The witness: a valid read reaches the server, which has no table.
    let err = db.read("StockBalance", id).await.unwrap_err();
    assert_ne!(err.kind(), ErrorKind::InvalidInput, "{err}");

    // With its table, a hard delete is its delete.
    let (db, _) = open_primary("soft_plain", [stock_model()]).await;
    let row = db
        .create("StockBalance", Record::new().with("sku", "a"))
        .await
        .unwrap();
    let id: Uuid = row.get("id").unwrap();
    db.hard_delete("StockBalance", id).await.unwrap();
    assert_kind(db.read("StockBalance", id).await, ErrorKind::NotFound);
    assert_kind(db.delete("StockBalance", id).await, ErrorKind::NotFound);
}

#[tokio::test]
async fn automigrate_adds_deleted_at_to_an_existing_table_and_names_a_full_unique_index() {
    let schema = unique_schema("soft_migrate");
    let open = |model: Model| {
        OpenOptions::new(primary_url())
            .registry(registry([model]))
            .session(in_schema(&schema))
            .open()
    };
    let before = open(doc_without_soft_delete()).await.unwrap();
    let old = create_plain(&before, "a").await;
    drop(before);

    let db = open(doc()).await.unwrap();
    let row = db.read("Doc", old).await.unwrap();
    assert_eq!(deleted_at(&row), None, "existing rows are live");
    // The unique index made before soft delete is left, and named.
    let report = db.migrate().await.unwrap();
    assert!(report.statements.is_empty(), "{report:?}");
    assert_eq!(report.warnings.len(), 1, "{report:?}");
    assert!(
        report.warnings[0].contains("\"doc_key(slug)\" without WHERE \"deleted_at\" IS NULL"),
        "{}",
        report.warnings[0]
    );
    // It still holds deleted rows' keys: the stricter, old behaviour.
    db.delete("Doc", old).await.unwrap();
    let err = db
        .create("Doc", Record::new().with("slug", "a"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Constraint(ConstraintKind::Unique));
    // Dropped by hand, it comes back partial.
    db.execute(Sql::new("DROP INDEX \"doc_key(slug)\""))
        .await
        .unwrap();
    let report = db.migrate().await.unwrap();
    assert_eq!(
        report.statements,
        [format!(
            "CREATE UNIQUE INDEX \"doc_key(slug)\" ON \"{schema}\".\"doc\" (\"slug\") \
             WHERE \"deleted_at\" IS NULL"
        )]
    );
    assert!(report.warnings.is_empty(), "{report:?}");
    create(&db, "a").await;
}

/// A create on the model before soft delete (its rows have no deleted_at).
async fn create_plain(db: &Db, slug: &str) -> Uuid {
    let row = db
        .create("Doc", Record::new().with("slug", slug))
        .await
        .unwrap();
    assert!(row.value("deleted_at").is_none());
    row.get("id").unwrap()
}

#[tokio::test]
async fn a_soft_delete_fires_no_cascade_and_a_hard_delete_does() {
    let warehouse = Model::new("Warehouse").soft_delete();
    let item = Model::new("Item").field(
        Field::new("warehouse_id", FieldType::Uuid).references("Warehouse", OnDelete::Cascade),
    );
    let (db, _) = open_primary("soft_cascade", [warehouse, item]).await;
    let house: Uuid = db
        .create("Warehouse", Record::new())
        .await
        .unwrap()
        .get("id")
        .unwrap();
    let item = db
        .create("Item", Record::new().with("warehouse_id", house))
        .await
        .unwrap();
    let item: Uuid = item.get("id").unwrap();
    db.delete("Warehouse", house).await.unwrap();
    assert!(
        db.read("Item", item).await.is_ok(),
        "a soft delete cascades nothing"
    );
    db.hard_delete("Warehouse", house).await.unwrap();
    assert_kind(db.read("Item", item).await, ErrorKind::NotFound);
}

#[tokio::test]
async fn counts_exists_and_aggregates_leave_deleted_rows_out() {
    let (db, _) = open_primary("soft_aggregates", [doc()]).await;
    let gone = create(&db, "gone").await;
    create(&db, "kept").await;
    db.increment("Doc", gone, "hits", 5_i64, None)
        .await
        .unwrap();
    db.delete("Doc", gone).await.unwrap();

    assert_eq!(db.count("Doc", Filter::And(vec![])).await.unwrap(), 1);
    assert!(!db.exists("Doc", Filter::eq("slug", "gone")).await.unwrap());
    assert!(db.exists("Doc", Filter::eq("slug", "kept")).await.unwrap());
    let sums = db
        .aggregate("Doc", pgactor::Aggregate::new().count().sum("hits"))
        .await
        .unwrap();
    assert_eq!(sums[0].get::<i64>("count").unwrap(), 1);
    assert_eq!(sums[0].get::<i64>("sum_hits").unwrap(), 0);
    // An OR filter keeps its parentheses before the live-rows condition.
    let either = Filter::eq("slug", "gone").or(Filter::eq("slug", "kept"));
    assert_eq!(db.count("Doc", either).await.unwrap(), 1);
    db.close().await;
}
