//! Batch inserts (one statement, or a binary COPY for a large count-only
//! batch) and upserts: through the `Db` handle, inside a transaction, by
//! message, typed, and behind PgBouncer.

use pgactor::{
    Call, ConstraintKind, CreateManyRequest, Db, DbMsg, Elem, ErrorKind, Field, FieldType, Filter,
    Index, Model, OnConflict, PoolerMode, PrimaryKey, Query, Record, TxMsg, TxOptions,
    UpsertRequest, Upserted, COPY_MIN_ROWS, MAX_BATCH_ROWS,
};
use uuid::Uuid;

use crate::support::db::{in_schema, registry, stock_model, unique_schema, StockBalance};
use crate::support::observer::{observer, statements_containing};
use crate::support::topology::{bouncer_url, primary_url};

/// A ticket whose id is the server's (an identity key), with a unique label.
fn ticket_model() -> Model {
    Model::new("Ticket")
        .primary_key(PrimaryKey::Identity)
        .field(Field::new("label", FieldType::Text).unique())
        .field(Field::new("seat", FieldType::I32).default_value(0_i32))
}

/// A model with an array field (not unnested) and a jsonb field, unique per
/// (shelf, label).
fn tagged_model() -> Model {
    Model::new("Tagged")
        .field(Field::new("shelf", FieldType::Text))
        .field(Field::new("label", FieldType::Text))
        .field(Field::new("tags", FieldType::Array(Elem::I64)))
        .field(Field::new("doc", FieldType::Json).nullable())
        .index(Index::on(["shelf", "label"]).unique())
}

async fn open_at(url: &str, prefix: &str, pooler: bool) -> (Db, String) {
    let schema = unique_schema(prefix);
    let mut options = pgactor::OpenOptions::new(url)
        .registry(registry([stock_model(), ticket_model(), tagged_model()]))
        .session(in_schema(&schema));
    if pooler {
        options = options.pooler(PoolerMode::Transaction);
    }
    (options.open().await.expect("open"), schema)
}

async fn open(prefix: &str) -> (Db, String) {
    open_at(&primary_url(), prefix, false).await
}

fn stock(sku: &str, quantity: i64) -> Record {
    Record::new().with("sku", sku).with("quantity", quantity)
}

/// `n` stock rows `<prefix>-<i>`, each with quantity `i`.
fn stocks(prefix: &str, n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| stock(&format!("{prefix}-{i}"), i as i64))
        .collect()
}

async fn stored(db: &Db, model: &str) -> u64 {
    db.list(model, Query::new().limit(1))
        .await
        .unwrap()
        .total
        .expect("counted")
}

fn skus(rows: &[Record]) -> Vec<String> {
    rows.iter().map(|r| r.get("sku").unwrap()).collect()
}

#[tokio::test]
async fn create_many_answers_the_stored_rows_in_the_order_given() {
    let (db, _) = open("batch_order").await;
    // Not in any order the server would pick: descending names, ids
    // given for some.
    let given = Uuid::now_v7();
    let rows: Vec<Record> = (0..300)
        .rev()
        .map(|i| {
            let note = (i % 3 == 0).then(|| format!("note {i}"));
            let id = (i == 150).then_some(given);
            Record::new()
                .with("sku", format!("S-{i:03}"))
                .with("note", note)
                .with("id", id)
        })
        .collect();
    let expected = skus(&rows);
    let answer = db.create_many("StockBalance", rows).await.unwrap();
    assert_eq!(skus(&answer), expected);
    let ids: std::collections::HashSet<Uuid> =
        answer.iter().map(|r| r.get("id").unwrap()).collect();
    assert_eq!(ids.len(), 300, "each row has an id of its own");
    assert!(!ids.contains(&Uuid::nil()));
    let row_150 = &answer[300 - 1 - 150];
    assert_eq!(row_150.get::<Uuid>("id").unwrap(), given);
    for (row, i) in answer.iter().zip((0..300).rev()) {
        // The default, the nulls, the timestamps.
        assert_eq!(row.get::<i64>("quantity").unwrap(), 0);
        let note: Option<String> = row.get("note").unwrap();
        assert_eq!(note, (i % 3 == 0).then(|| format!("note {i}")));
        let created: chrono::DateTime<chrono::Utc> = row.get("created_at").unwrap();
        assert_eq!(created, row.get("updated_at").unwrap());
    }
    // As stored.
    let again = db
        .read("StockBalance", answer[7].get::<Uuid>("id").unwrap())
        .await
        .unwrap();
    assert_eq!(again, answer[7]);
    assert_eq!(stored(&db, "StockBalance").await, 300);
}

#[tokio::test]
async fn create_many_on_an_identity_key_answers_server_ids_in_the_order_given() {
    let (db, _) = open("batch_identity").await;
    let labels: Vec<String> = (0..50).map(|i| format!("L{}", (i * 37) % 50)).collect();
    let rows = labels
        .iter()
        .map(|l| Record::new().with("label", l.as_str()))
        .collect();
    let answer = db.create_many("Ticket", rows).await.unwrap();
    let got: Vec<String> = answer.iter().map(|r| r.get("label").unwrap()).collect();
    assert_eq!(got, labels);
    let ids: std::collections::HashSet<i64> = answer.iter().map(|r| r.get("id").unwrap()).collect();
    assert_eq!(ids.len(), 50);
    for row in &answer {
        let id: i64 = row.get("id").unwrap();
        let read = db.read("Ticket", id).await.unwrap();
        assert_eq!(
            read.get::<String>("label").unwrap(),
            row.get::<String>("label").unwrap()
        );
        assert_eq!(row.get::<i32>("seat").unwrap(), 0);
    }
    // A count of them, and rows with no field at all: every one takes its defaults.
    let n = db
        .create_many_count("Ticket", vec![Record::new().with("label", "x")])
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(stored(&db, "Ticket").await, 51);
}

#[tokio::test]
async fn bad_batches_are_refused_naming_the_row_or_the_bound_and_store_nothing() {
    let (db, _) = open("batch_refused").await;
    let kind = |r: pgactor::Result<Vec<Record>>| r.unwrap_err();

    let mixed = vec![stock("a", 1), stock("b", 2), Record::new().with("sku", "c")];
    let err = kind(db.create_many("StockBalance", mixed).await);
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("row 2"), "{err}");

    let missing = vec![Record::new().with("quantity", 1_i64)];
    let err = kind(db.create_many("StockBalance", missing).await);
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("\"sku\""), "{err}");

    let null = vec![
        stock("a", 1),
        Record::new()
            .with("sku", None::<String>)
            .with("quantity", 1_i64),
    ];
    let err = kind(db.create_many("StockBalance", null).await);
    assert!(err.to_string().contains("row 1"), "{err}");

    let wrong = vec![
        stock("a", 1),
        Record::new().with("sku", "b").with("quantity", "many"),
    ];
    let err = kind(db.create_many("StockBalance", wrong).await);
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("row 1"), "{err}");

    let kept = vec![stock("a", 1).with("created_at", chrono::Utc::now())];
    assert_eq!(
        kind(db.create_many("StockBalance", kept).await).kind(),
        ErrorKind::InvalidInput
    );

    let too_many = vec![Record::new().with("sku", "x"); MAX_BATCH_ROWS + 1];
    let err = db
        .create_many_count("StockBalance", too_many)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("100000"), "{err}");

    // An array field binds every value: past 65,535 parameters, refused.
    let row = |i: usize| {
        Record::new()
            .with("shelf", "s")
            .with("label", i.to_string())
            .with("tags", vec![1_i64])
    };
    let wide: Vec<Record> = (0..20_000).map(row).collect();
    let err = db.create_many("Tagged", wide).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("65535"), "{err}");

    assert_eq!(stored(&db, "StockBalance").await, 0);
    assert_eq!(stored(&db, "Tagged").await, 0);
}

#[tokio::test]
async fn an_empty_batch_answers_nothing() {
    let (db, _) = open("batch_empty").await;
    assert!(db
        .create_many("StockBalance", vec![])
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        db.create_many_count("StockBalance", vec![]).await.unwrap(),
        0
    );
    let none = db
        .upsert_many("StockBalance", vec![], &["sku"], OnConflict::Update)
        .await
        .unwrap();
    assert!(none.is_empty());
    // The target is checked all the same.
    let err = db
        .upsert_many("StockBalance", vec![], &["quantity"], OnConflict::Update)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn a_unique_violation_in_the_middle_stores_no_row_through_insert_and_copy() {
    let (db, _) = open("batch_atomic").await;
    let mut small = stocks("A", 10);
    small[6] = stock("A-2", 9);
    let err = db.create_many("StockBalance", small).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Constraint(ConstraintKind::Unique),
        "{err}"
    );
    let violation = err.constraint().expect("the constraint is named");
    assert_eq!(violation.columns, ["sku"]);

    let mut large = stocks("B", COPY_MIN_ROWS + 500);
    large[COPY_MIN_ROWS / 2] = stock("B-3", 1);
    let err = db
        .create_many_count("StockBalance", large)
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Constraint(ConstraintKind::Unique),
        "{err}"
    );

    assert_eq!(stored(&db, "StockBalance").await, 0);
    // The connections are clean: the next batches go in.
    assert_eq!(
        db.create_many_count("StockBalance", stocks("C", COPY_MIN_ROWS))
            .await
            .unwrap(),
        COPY_MIN_ROWS as u64
    );
}

#[tokio::test]
async fn create_many_count_copies_in_from_the_threshold_on() {
    let (db, schema) = open("batch_copy").await;
    let obs = observer(&primary_url()).await;
    let copy = format!("COPY \"{schema}\".\"stock_balance\"");

    let below = COPY_MIN_ROWS - 1;
    let n = db
        .create_many_count("StockBalance", stocks("A", below))
        .await
        .unwrap();
    assert_eq!(n, below as u64);
    assert_eq!(statements_containing(&obs, &copy).await, 0);

    let n = db
        .create_many_count("StockBalance", stocks("B", COPY_MIN_ROWS))
        .await
        .unwrap();
    assert_eq!(n, COPY_MIN_ROWS as u64);
    assert_eq!(statements_containing(&obs, &copy).await, 1);
    assert_eq!(
        stored(&db, "StockBalance").await,
        (below + COPY_MIN_ROWS) as u64
    );
    // Copied rows are rows like any other: ids, values, defaults.
    let page = db
        .list(
            "StockBalance",
            Query::new().filter(Filter::eq("sku", format!("B-{}", COPY_MIN_ROWS - 1))),
        )
        .await
        .unwrap();
    let row = &page.rows[0];
    assert_eq!(
        row.get::<i64>("quantity").unwrap(),
        COPY_MIN_ROWS as i64 - 1
    );
    assert_ne!(row.get::<Uuid>("id").unwrap(), Uuid::nil());
}

#[tokio::test]
async fn array_and_json_fields_go_in_by_every_path() {
    let (db, _) = open("batch_arrays").await;
    let row = |i: usize| {
        Record::new()
            .with("shelf", "s")
            .with("label", format!("L{i}"))
            .with("tags", vec![Some(i as i64), None])
            .with(
                "doc",
                i.is_multiple_of(2)
                    .then(|| serde_json::json!({ "n": i, "deep": [[i]] })),
            )
    };
    let answer = db
        .create_many("Tagged", (0..5).rev().map(row).collect())
        .await
        .unwrap();
    let labels: Vec<String> = answer.iter().map(|r| r.get("label").unwrap()).collect();
    assert_eq!(labels, ["L4", "L3", "L2", "L1", "L0"]);
    assert_eq!(
        answer[0].get::<Vec<Option<i64>>>("tags").unwrap(),
        [Some(4), None]
    );
    assert_eq!(
        answer[0].get::<serde_json::Value>("doc").unwrap(),
        serde_json::json!({ "n": 4, "deep": [[4]] })
    );
    assert_eq!(
        answer[1].get::<Option<serde_json::Value>>("doc").unwrap(),
        None
    );
    let small = db
        .create_many_count("Tagged", (5..10).map(row).collect())
        .await
        .unwrap();
    let copied = db
        .create_many_count("Tagged", (10..10 + COPY_MIN_ROWS).map(row).collect())
        .await
        .unwrap();
    assert_eq!((small, copied), (5, COPY_MIN_ROWS as u64));
    let page = db
        .list("Tagged", Query::new().filter(Filter::eq("label", "L1009")))
        .await
        .unwrap();
    assert_eq!(
        page.rows[0].get::<Vec<Option<i64>>>("tags").unwrap(),
        [Some(1009), None]
    );
    // An upsert on the composite unique index, through the same path.
    let done = db
        .upsert_many(
            "Tagged",
            vec![row(3).with("tags", vec![Some(7_i64)]), row(20_000)],
            &["label", "shelf"],
            OnConflict::Update,
        )
        .await
        .unwrap();
    assert!(
        matches!(&done[0], Upserted::Updated(r) if r.get::<Vec<Option<i64>>>("tags").unwrap() == [Some(7)])
    );
    assert!(done[1].is_inserted());
}

#[tokio::test]
async fn upsert_answers_which_rows_it_inserted_and_which_it_updated_in_order() {
    let (db, _) = open("batch_upsert").await;
    let seeded = db
        .create_many(
            "StockBalance",
            vec![
                stock("A", 1).with("note", "keep"),
                stock("B", 2).with("note", "keep"),
            ],
        )
        .await
        .unwrap();
    let rows = vec![
        stock("C", 30),
        stock("A", 10),
        stock("D", 40),
        stock("B", 20),
    ];
    let done = db
        .upsert_many("StockBalance", rows, &["sku"], OnConflict::Update)
        .await
        .unwrap();
    let shape: Vec<(bool, String, i64)> = done
        .iter()
        .map(|u| {
            let row = u.row().expect("no row is skipped");
            (
                u.is_inserted(),
                row.get("sku").unwrap(),
                row.get("quantity").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            (true, "C".into(), 30),
            (false, "A".into(), 10),
            (true, "D".into(), 40),
            (false, "B".into(), 20)
        ]
    );
    // An updated row keeps its id and the fields not given; updated_at moves.
    let a = done[1].row().unwrap();
    assert_eq!(
        a.get::<Uuid>("id").unwrap(),
        seeded[0].get::<Uuid>("id").unwrap()
    );
    assert_eq!(
        a.get::<Option<String>>("note").unwrap().as_deref(),
        Some("keep")
    );
    let (was, is): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) = (
        seeded[0].get("updated_at").unwrap(),
        a.get("updated_at").unwrap(),
    );
    assert!(is > was);
    assert_eq!(stored(&db, "StockBalance").await, 4);

    // One row, on the primary key.
    let id: Uuid = seeded[1].get("id").unwrap();
    let one = db
        .upsert(
            "StockBalance",
            stock("B", 99).with("id", id),
            &["id"],
            OnConflict::Update,
        )
        .await
        .unwrap();
    assert!(matches!(&one, Upserted::Updated(r) if r.get::<i64>("quantity").unwrap() == 99));
    // On an identity key's unique field.
    let t = db
        .upsert(
            "Ticket",
            Record::new().with("label", "T").with("seat", 1_i32),
            &["label"],
            OnConflict::Update,
        )
        .await
        .unwrap();
    assert!(t.is_inserted());
    let t2 = db
        .upsert(
            "Ticket",
            Record::new().with("label", "T").with("seat", 2_i32),
            &["label"],
            OnConflict::Update,
        )
        .await
        .unwrap();
    let (first, second) = (t.into_row().unwrap(), t2.into_row().unwrap());
    assert_eq!(
        first.get::<i64>("id").unwrap(),
        second.get::<i64>("id").unwrap()
    );
    assert_eq!(second.get::<i32>("seat").unwrap(), 2);
}

#[tokio::test]
async fn upsert_do_nothing_skips_the_rows_whose_key_is_taken() {
    let (db, _) = open("batch_nothing").await;
    db.create("StockBalance", stock("A", 1)).await.unwrap();
    let rows = vec![stock("A", 50), stock("E", 5), stock("E", 6), stock("F", 7)];
    let done = db
        .upsert_many("StockBalance", rows, &["sku"], OnConflict::Nothing)
        .await
        .unwrap();
    assert_eq!(done.len(), 4);
    assert_eq!(done[0], Upserted::Skipped);
    assert!(done[1].is_inserted());
    // The second row of the batch with the same key is skipped too.
    assert_eq!(done[2], Upserted::Skipped);
    assert!(done[3].is_inserted());
    let a = db
        .list("StockBalance", Query::new().filter(Filter::eq("sku", "A")))
        .await
        .unwrap();
    assert_eq!(a.rows[0].get::<i64>("quantity").unwrap(), 1);
    assert_eq!(stored(&db, "StockBalance").await, 3);
    // With DO UPDATE, two rows with one key are the server's refusal: no
    // row is updated twice by one statement, and none is stored.
    let twice = vec![stock("G", 1), stock("G", 2)];
    let err = db
        .upsert_many("StockBalance", twice, &["sku"], OnConflict::Update)
        .await
        .unwrap_err();
    assert_eq!(err.sqlstate().map(|s| s.code()), Some("21000"), "{err}");
    assert_eq!(stored(&db, "StockBalance").await, 3);
}

#[tokio::test]
async fn an_upsert_on_a_target_that_is_not_unique_is_refused_before_any_sql() {
    let (db, _) = open("batch_target").await;
    for on in [
        &["quantity"][..],
        &["note"],
        &["colour"],
        &[],
        &["sku", "quantity"],
        &["label"],
    ] {
        let err = db
            .upsert("StockBalance", stock("A", 1), on, OnConflict::Update)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{on:?}: {err}");
    }
    // Rows that do not set the target's fields.
    let err = db
        .upsert(
            "Tagged",
            Record::new()
                .with("label", "x")
                .with("shelf", "s")
                .with("tags", Vec::<i64>::new()),
            &["shelf", "label", "label"],
            OnConflict::Nothing,
        )
        .await;
    assert!(
        err.unwrap().is_inserted(),
        "a target named twice is the same target"
    );
    let err = db
        .upsert(
            "Ticket",
            Record::new().with("seat", 1_i32),
            &["label"],
            OnConflict::Nothing,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("\"label\""), "{err}");
    assert_eq!(stored(&db, "StockBalance").await, 0);
}

#[tokio::test]
async fn inside_a_transaction_batch_writes_roll_back_with_it() {
    let (db, _) = open("batch_tx").await;
    let tx = db.begin(TxOptions::default()).await.unwrap();
    let rows = tx
        .create_many("StockBalance", stocks("A", 5))
        .await
        .unwrap();
    assert_eq!(skus(&rows), skus(&stocks("A", 5)));
    let copied = tx
        .create_many_count("StockBalance", stocks("B", COPY_MIN_ROWS))
        .await
        .unwrap();
    assert_eq!(copied, COPY_MIN_ROWS as u64);
    let up = tx
        .upsert(
            "StockBalance",
            stock("A-1", 100),
            &["sku"],
            OnConflict::Update,
        )
        .await
        .unwrap();
    assert!(!up.is_inserted());
    let seen = tx
        .list("StockBalance", Query::new().limit(1))
        .await
        .unwrap();
    assert_eq!(seen.total, Some(5 + COPY_MIN_ROWS as u64));
    tx.rollback().await.unwrap();
    assert_eq!(stored(&db, "StockBalance").await, 0);

    // A failed COPY fails its transaction, which then stores nothing.
    let tx = db.begin(TxOptions::default()).await.unwrap();
    tx.create_many("StockBalance", stocks("C", 3))
        .await
        .unwrap();
    let mut clash = stocks("D", COPY_MIN_ROWS);
    clash[10] = stock("C-1", 0);
    let err = tx
        .create_many_count("StockBalance", clash)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Constraint(ConstraintKind::Unique));
    assert!(tx.commit().await.is_err());
    assert_eq!(stored(&db, "StockBalance").await, 0);
}

#[tokio::test]
async fn batch_writes_run_by_message_on_the_db_and_in_a_transaction() {
    let (db, _) = open("batch_msg").await;
    let req = CreateManyRequest {
        model: "StockBalance".into(),
        rows: stocks("A", 3),
    };
    let rows = ractor::call!(db.actor(), DbMsg::create_many, req, Call::here())
        .unwrap()
        .unwrap();
    assert_eq!(skus(&rows), ["A-0", "A-1", "A-2"]);
    let req = CreateManyRequest {
        model: "StockBalance".into(),
        rows: stocks("B", COPY_MIN_ROWS),
    };
    let n = ractor::call!(db.actor(), DbMsg::create_many_count, req, Call::here())
        .unwrap()
        .unwrap();
    assert_eq!(n, COPY_MIN_ROWS as u64);
    let req = UpsertRequest {
        model: "StockBalance".into(),
        rows: vec![stock("A-0", 9), stock("Z", 1)],
        on: vec!["sku".into()],
        action: OnConflict::Update,
    };
    let done = ractor::call!(db.actor(), DbMsg::upsert, req, Call::here())
        .unwrap()
        .unwrap();
    assert_eq!(
        done.iter().map(Upserted::is_inserted).collect::<Vec<_>>(),
        [false, true]
    );
    let typed = vec![StockBalance::new("T-1", 1), StockBalance::new("T-2", 2)];
    let rows = ractor::call!(
        db.actor(),
        DbMsg::create_many_as::<StockBalance>,
        typed,
        Call::here()
    )
    .unwrap()
    .unwrap();
    assert_eq!(rows[1].sku, "T-2");
    let n = ractor::call!(
        db.actor(),
        DbMsg::create_many_count_as::<StockBalance>,
        vec![StockBalance::new("T-3", 3)],
        Call::here()
    )
    .unwrap()
    .unwrap();
    assert_eq!(n, 1);
    let done = ractor::call!(
        db.actor(),
        DbMsg::upsert_as::<StockBalance>,
        vec![StockBalance::new("T-1", 10)],
        vec!["sku".into()],
        OnConflict::Nothing,
        Call::here()
    )
    .unwrap()
    .unwrap();
    assert_eq!(done, [Upserted::Skipped]);

    let tx = db.begin(TxOptions::default()).await.unwrap();
    let req = CreateManyRequest {
        model: "StockBalance".into(),
        rows: stocks("X", 2),
    };
    let rows = ractor::call!(tx.actor(), TxMsg::create_many, req)
        .unwrap()
        .unwrap();
    assert_eq!(skus(&rows), ["X-0", "X-1"]);
    let req = CreateManyRequest {
        model: "StockBalance".into(),
        rows: stocks("Y", COPY_MIN_ROWS),
    };
    let n = ractor::call!(tx.actor(), TxMsg::create_many_count, req)
        .unwrap()
        .unwrap();
    assert_eq!(n, COPY_MIN_ROWS as u64);
    let req = UpsertRequest {
        model: "StockBalance".into(),
        rows: vec![stock("X-0", 5)],
        on: vec!["sku".into()],
        action: OnConflict::Update,
    };
    let done = ractor::call!(tx.actor(), TxMsg::upsert, req)
        .unwrap()
        .unwrap();
    assert!(!done[0].is_inserted());
    let rows = ractor::call!(
        tx.actor(),
        TxMsg::create_many_as::<StockBalance>,
        vec![StockBalance::new("X-9", 9)]
    )
    .unwrap()
    .unwrap();
    assert_eq!(rows[0].quantity, 9);
    let n = ractor::call!(
        tx.actor(),
        TxMsg::create_many_count_as::<StockBalance>,
        vec![StockBalance::new("X-8", 8)]
    )
    .unwrap()
    .unwrap();
    assert_eq!(n, 1);
    let done = ractor::call!(
        tx.actor(),
        TxMsg::upsert_as::<StockBalance>,
        vec![StockBalance::new("X-8", 80)],
        vec!["sku".into()],
        OnConflict::Update
    )
    .unwrap()
    .unwrap();
    assert!(matches!(&done[0], Upserted::Updated(s) if s.quantity == 80));
    tx.commit().await.unwrap();
    // 3 + copied + Z + T-1..3 + X-0, X-1 + copied + X-9, X-8.
    let expected = 3 + COPY_MIN_ROWS + 1 + 3 + 2 + COPY_MIN_ROWS + 2;
    assert_eq!(stored(&db, "StockBalance").await, expected as u64);
}

#[tokio::test]
async fn typed_batch_writes_answer_entities_in_order() {
    let (db, _) = open("batch_typed").await;
    let typed = db.typed::<StockBalance>();
    let rows: Vec<StockBalance> = (0..20)
        .rev()
        .map(|i| StockBalance::new(&format!("S{i}"), i))
        .collect();
    let stored_rows = typed.create_many(&rows).await.unwrap();
    let got: Vec<(&str, i64)> = stored_rows
        .iter()
        .map(|s| (s.sku.as_str(), s.quantity))
        .collect();
    let want: Vec<(&str, i64)> = rows.iter().map(|s| (s.sku.as_str(), s.quantity)).collect();
    assert_eq!(got, want);
    assert!(stored_rows.iter().all(|s| s.id != Uuid::nil()));
    let many: Vec<StockBalance> = (0..COPY_MIN_ROWS)
        .map(|i| StockBalance::new(&format!("C{i}"), 1))
        .collect();
    assert_eq!(
        typed.create_many_count(&many).await.unwrap(),
        COPY_MIN_ROWS as u64
    );
    let done = typed
        .upsert(&StockBalance::new("S3", 33), &["sku"], OnConflict::Update)
        .await
        .unwrap();
    assert!(
        matches!(&done, Upserted::Updated(s) if s.quantity == 33 && s.id == stored_rows[16].id)
    );
    let done = typed
        .upsert_many(
            &[StockBalance::new("new", 1), StockBalance::new("S4", 44)],
            &["sku"],
            OnConflict::Nothing,
        )
        .await
        .unwrap();
    assert!(done[0].is_inserted());
    assert_eq!(done[1], Upserted::Skipped);

    let tx = db.begin(TxOptions::default()).await.unwrap();
    let in_tx = tx.typed::<StockBalance>();
    let rows = in_tx
        .create_many(&[StockBalance::new("tx-1", 1), StockBalance::new("tx-2", 2)])
        .await
        .unwrap();
    assert_eq!(rows[1].sku, "tx-2");
    assert_eq!(
        in_tx
            .create_many_count(&many[..1])
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Constraint(ConstraintKind::Unique)
    );
    tx.rollback().await.unwrap();

    let tx = db.begin(TxOptions::default()).await.unwrap();
    let in_tx = tx.typed::<StockBalance>();
    let up = in_tx
        .upsert_many(
            &[StockBalance::new("tx-3", 3)],
            &["sku"],
            OnConflict::Update,
        )
        .await
        .unwrap();
    assert!(up[0].is_inserted());
    let one = in_tx
        .upsert(&StockBalance::new("tx-3", 4), &["sku"], OnConflict::Update)
        .await
        .unwrap();
    assert!(matches!(one, Upserted::Updated(s) if s.quantity == 4));
    tx.commit().await.unwrap();
    assert_eq!(
        stored(&db, "StockBalance").await,
        20 + COPY_MIN_ROWS as u64 + 2
    );
}

#[tokio::test]
async fn batch_writes_work_behind_pgbouncer_in_transaction_pooling_mode() {
    let (db, _) = open_at(&bouncer_url(), "batch_bouncer", true).await;
    let rows = db
        .create_many("StockBalance", stocks("A", 50))
        .await
        .unwrap();
    assert_eq!(skus(&rows), skus(&stocks("A", 50)));
    // Copied in a transaction of its own, several times over the
    // bouncer's few server sessions.
    for round in 0..3 {
        let n = db
            .create_many_count("StockBalance", stocks(&format!("B{round}"), COPY_MIN_ROWS))
            .await
            .unwrap();
        assert_eq!(n, COPY_MIN_ROWS as u64);
    }
    // A failed COPY rolls its transaction back and leaves its session clean.
    let mut clash = stocks("C", COPY_MIN_ROWS);
    clash[500] = stock("A-1", 0);
    let err = db
        .create_many_count("StockBalance", clash)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Constraint(ConstraintKind::Unique));
    let done = db
        .upsert_many(
            "StockBalance",
            vec![stock("A-1", 7), stock("N", 1)],
            &["sku"],
            OnConflict::Update,
        )
        .await
        .unwrap();
    assert_eq!(
        done.iter().map(Upserted::is_inserted).collect::<Vec<_>>(),
        [false, true]
    );
    // Inside a transaction, the COPY is the transaction's.
    let tx = db.begin(TxOptions::default()).await.unwrap();
    let n = tx
        .create_many_count("StockBalance", stocks("D", COPY_MIN_ROWS))
        .await
        .unwrap();
    assert_eq!(n, COPY_MIN_ROWS as u64);
    tx.rollback().await.unwrap();
    assert_eq!(
        stored(&db, "StockBalance").await,
        (50 + 3 * COPY_MIN_ROWS + 1) as u64
    );
}
