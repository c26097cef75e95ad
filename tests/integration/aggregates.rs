//! Aggregates, count and exists: each function's answer type, groups by one
//! and two fields, NULLs, the bound on groups, refusals before any SQL, on
//! a lagging replica with and without a token, inside a transaction, by
//! message, typed, and behind PgBouncer.

use chrono::NaiveDate;
use pgactor::{
    column, Aggregate, AggregateFn, AggregateRequest, Call, CountRequest, Db, DbMsg, ErrorKind,
    ExistsRequest, Field, FieldType, Filter, FromRow, Model, OpenOptions, PoolerMode, Record,
    Registry, Row, TxMsg, TxOptions, Value, WriteOp,
};
use rust_decimal::Decimal;

use crate::support::blocking::{pause_replay, resume_replay};
use crate::support::db::{
    fast_probe, open_primary, open_with_replica, registry, stock_model, tagged_options,
    unique_app_name, unique_schema, StockBalance,
};
use crate::support::observer::{observer, statements_containing};
use crate::support::topology::{bouncer_url, primary_url, Topology};
use crate::support::wait::read_when_replicated;

const ITEM: &str = "Item";

/// A field of every kind the functions treat apart.
fn item_model() -> Model {
    Model::new(ITEM)
        .field(Field::new("category", FieldType::Text))
        .field(Field::new("shelf", FieldType::I32))
        .field(Field::new("small", FieldType::I16))
        .field(Field::new("quantity", FieldType::I64))
        .field(Field::new("price", FieldType::Numeric).nullable())
        .field(Field::new("weight", FieldType::F64))
        .field(Field::new("ratio", FieldType::F32))
        .field(Field::new("day", FieldType::Date))
        .field(Field::new("label", FieldType::Varchar(16)).nullable())
        .field(Field::new("flag", FieldType::Bool).default_value(false))
        .field(Field::new("doc", FieldType::Json).nullable())
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn cents(n: i64) -> Value {
    Value::Numeric(Decimal::new(n, 2))
}

/// One item: category, shelf, small, quantity, price, weight, ratio, day, label.
#[allow(clippy::too_many_arguments)]
fn item(
    category: &str,
    shelf: i32,
    small: i16,
    quantity: i64,
    price: Value,
    weight: f64,
    ratio: f32,
    on: NaiveDate,
    label: Option<&str>,
) -> Record {
    Record::new()
        .with("category", category)
        .with("shelf", shelf)
        .with("small", small)
        .with("quantity", quantity)
        .with("price", price)
        .with("weight", weight)
        .with("ratio", ratio)
        .with("day", on)
        .with("label", label.map_or(Value::Null, Value::from))
}

/// Four items: three tools (two on shelf 1, one without a price), one paint.
fn items() -> Vec<Record> {
    vec![
        item(
            "tools",
            1,
            1,
            10,
            cents(150),
            2.5,
            0.5,
            day(2024, 1, 1),
            Some("a"),
        ),
        item(
            "tools",
            1,
            2,
            20,
            cents(225),
            1.0,
            0.25,
            day(2024, 3, 1),
            None,
        ),
        item(
            "tools",
            2,
            3,
            5,
            Value::Null,
            0.5,
            1.0,
            day(2024, 2, 1),
            Some("c"),
        ),
        item(
            "paint",
            1,
            4,
            7,
            cents(1000),
            3.0,
            2.0,
            day(2023, 12, 31),
            Some("b"),
        ),
    ]
}

/// The adapter on the primary in a fresh schema, with the items stored.
async fn seeded(prefix: &str) -> Db {
    let (db, _) = open_primary(prefix, [item_model()]).await;
    db.create_many(ITEM, items()).await.expect("seed");
    db
}

fn value<'a>(record: &'a Record, name: &str) -> &'a Value {
    record
        .value(name)
        .unwrap_or_else(|| panic!("no \"{name}\" in {record:?}"))
}

#[tokio::test]
async fn count_and_exists_answer_for_a_filter_for_every_row_and_for_no_match() {
    let (db, _) = open_primary("agg_count", [item_model()]).await;
    let every = || Filter::And(vec![]);
    assert_eq!(db.count(ITEM, every()).await.unwrap(), 0);
    assert!(!db.exists(ITEM, every()).await.unwrap());

    db.create_many(ITEM, items()).await.unwrap();
    assert_eq!(db.count(ITEM, every()).await.unwrap(), 4);
    assert!(db.exists(ITEM, every()).await.unwrap());
    let tools = Filter::eq("category", "tools");
    assert_eq!(db.count(ITEM, tools.clone()).await.unwrap(), 3);
    assert_eq!(
        db.count(ITEM, tools.clone().and(Filter::gt("quantity", 5_i64)))
            .await
            .unwrap(),
        2
    );
    assert_eq!(db.count(ITEM, Filter::is_null("price")).await.unwrap(), 1);
    assert_eq!(
        db.count(ITEM, Filter::starts_with("category", "pa"))
            .await
            .unwrap(),
        1
    );
    assert!(db.exists(ITEM, tools).await.unwrap());
    let none = Filter::eq("category", "glue");
    assert_eq!(db.count(ITEM, none.clone()).await.unwrap(), 0);
    assert!(!db.exists(ITEM, none).await.unwrap());
    // The same count a List's total gives.
    let page = db
        .list(
            ITEM,
            pgactor::Query::new().filter(Filter::lt("shelf", 2_i32)),
        )
        .await
        .unwrap();
    assert_eq!(
        db.count(ITEM, Filter::lt("shelf", 2_i32)).await.unwrap(),
        page.total.unwrap()
    );
    db.close().await;
}

#[tokio::test]
async fn each_aggregate_function_answers_its_documented_type() {
    let db = seeded("agg_types").await;
    let everything = Aggregate::new()
        .count()
        .sum("small")
        .sum("shelf")
        .sum("quantity")
        .sum("price")
        .sum("ratio")
        .sum("weight")
        .avg("quantity")
        .avg("price")
        .avg("weight")
        .avg("ratio")
        .min("day")
        .max("label")
        .min("quantity")
        .max("shelf")
        .max("created_at");
    let rows = db.aggregate(ITEM, everything).await.unwrap();
    assert_eq!(rows.len(), 1, "no group: one row");
    let row = &rows[0];
    assert_eq!(row.len(), 16);
    // count and every integer sum: bigint.
    assert_eq!(value(row, "count"), &Value::I64(4));
    assert_eq!(value(row, "sum_small"), &Value::I64(10));
    assert_eq!(value(row, "sum_shelf"), &Value::I64(5));
    assert_eq!(value(row, "sum_quantity"), &Value::I64(42));
    // numeric, real and double sums keep their type.
    assert_eq!(value(row, "sum_price"), &cents(1375));
    assert_eq!(value(row, "sum_ratio"), &Value::F32(3.75));
    assert_eq!(value(row, "sum_weight"), &Value::F64(7.0));
    // avg: numeric for integers and numeric, double for floats.
    assert_eq!(
        value(row, "avg_quantity"),
        &Value::Numeric(Decimal::new(105, 1))
    );
    match value(row, "avg_price") {
        Value::Numeric(avg) => assert_eq!(avg.round_dp(4), Decimal::new(45833, 4)),
        other => panic!("avg of numeric: {other:?}"),
    }
    assert_eq!(value(row, "avg_weight"), &Value::F64(1.75));
    assert_eq!(value(row, "avg_ratio"), &Value::F64(0.9375));
    // min and max keep the column's type (varchar as text).
    assert_eq!(value(row, "min_day"), &Value::Date(day(2023, 12, 31)));
    assert_eq!(value(row, "max_label"), &Value::Text("c".into()));
    assert_eq!(value(row, "min_quantity"), &Value::I64(5));
    assert_eq!(value(row, "max_shelf"), &Value::I32(2));
    assert!(matches!(
        value(row, "max_created_at"),
        Value::Timestamptz(_)
    ));
    // The same, read typed: count and sums as i64, avg as Decimal.
    let (count, sum, avg): (i64, i64, Decimal) = db
        .aggregate_as(ITEM, Aggregate::new().count().sum("small").avg("shelf"))
        .await
        .unwrap()
        .remove(0);
    assert_eq!((count, sum, avg.round_dp(2)), (4, 10, Decimal::new(125, 2)));
    db.close().await;
}

#[tokio::test]
async fn a_bigint_sum_past_i64_is_refused_by_the_server_and_its_avg_still_decodes() {
    let (db, _) = open_primary("agg_overflow", [item_model()]).await;
    let big = |label| {
        item(
            "big",
            1,
            1,
            i64::MAX,
            Value::Null,
            0.0,
            0.0,
            day(2024, 1, 1),
            label,
        )
    };
    db.create_many(ITEM, vec![big(Some("x")), big(Some("y"))])
        .await
        .unwrap();
    let err = db
        .aggregate(ITEM, Aggregate::new().sum("quantity"))
        .await
        .expect_err("a sum beyond bigint");
    assert_eq!(
        err.sqlstate(),
        Some(&tokio_postgres::error::SqlState::NUMERIC_VALUE_OUT_OF_RANGE),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let rows = db
        .aggregate(ITEM, Aggregate::new().avg("quantity"))
        .await
        .expect("the avg of two i64::MAX");
    let avg: Decimal = rows[0].get("avg_quantity").unwrap();
    assert_eq!(avg, Decimal::from(i64::MAX));
    db.close().await;
}

#[tokio::test]
async fn groups_by_one_and_two_fields_come_in_order_sorted_and_limited() {
    let db = seeded("agg_groups").await;
    let by_category = || {
        Aggregate::new()
            .group_by("category")
            .count()
            .sum("quantity")
    };
    let groups: Vec<(String, i64, i64)> = db.aggregate_as(ITEM, by_category()).await.unwrap();
    assert_eq!(
        groups,
        [("paint".into(), 1, 7), ("tools".into(), 3, 35)],
        "by the group field, ascending"
    );
    let biggest: Vec<(String, i64, i64)> = db
        .aggregate_as(ITEM, by_category().sort_desc("sum_quantity").limit(1))
        .await
        .unwrap();
    assert_eq!(biggest, [("tools".into(), 3, 35)]);
    let records = db
        .aggregate(ITEM, by_category().filter(Filter::ge("quantity", 10_i64)))
        .await
        .unwrap();
    assert_eq!(
        records,
        [Record::new()
            .with("category", "tools")
            .with("count", 2_i64)
            .with("sum_quantity", 30_i64)]
    );

    let two: Vec<(String, i32, i64, Option<i64>)> = db
        .aggregate_as(
            ITEM,
            Aggregate::new()
                .group_by("category")
                .group_by("shelf")
                .count_as("items")
                .max_as("most", "quantity"),
        )
        .await
        .unwrap();
    assert_eq!(
        two,
        [
            ("paint".into(), 1, 1, Some(7)),
            ("tools".into(), 1, 2, Some(20)),
            ("tools".into(), 2, 1, Some(5)),
        ]
    );
    // A group without outputs: the distinct values.
    let shelves: Vec<(i32,)> = db
        .aggregate_as(ITEM, Aggregate::new().group_by("shelf").sort_desc("shelf"))
        .await
        .unwrap();
    assert_eq!(shelves, [(2,), (1,)]);
    db.close().await;
}

#[tokio::test]
async fn nulls_count_in_count_star_not_in_count_of_a_field_and_group_on_their_own() {
    let db = seeded("agg_nulls").await;
    let row = db
        .aggregate(
            ITEM,
            Aggregate::new()
                .count()
                .count_of("price")
                .count_of("label")
                .sum("price"),
        )
        .await
        .unwrap()
        .remove(0);
    assert_eq!(value(&row, "count"), &Value::I64(4));
    assert_eq!(value(&row, "count_price"), &Value::I64(3));
    assert_eq!(value(&row, "count_label"), &Value::I64(3));
    assert_eq!(value(&row, "sum_price"), &cents(1375), "NULLs are skipped");

    // NULL is a group of its own, last in ascending order.
    let labels: Vec<(Option<String>, i64)> = db
        .aggregate_as(ITEM, Aggregate::new().group_by("label").count())
        .await
        .unwrap();
    assert_eq!(
        labels,
        [
            (Some("a".into()), 1),
            (Some("b".into()), 1),
            (Some("c".into()), 1),
            (None, 1)
        ]
    );
    // A group whose values are all NULL sums to NULL.
    let priced: Vec<(i32, Option<Decimal>)> = db
        .aggregate_as(
            ITEM,
            Aggregate::new()
                .filter(Filter::eq("category", "tools"))
                .group_by("shelf")
                .sum("price"),
        )
        .await
        .unwrap();
    assert_eq!(priced, [(1, Some(Decimal::new(375, 2))), (2, None)]);

    // No row matching: one row without groups (count 0, the rest NULL),
    // no row with them.
    let nothing = Filter::eq("category", "glue");
    let empty = db
        .aggregate(
            ITEM,
            Aggregate::new()
                .filter(nothing.clone())
                .count()
                .sum("quantity")
                .min("day"),
        )
        .await
        .unwrap();
    assert_eq!(
        empty,
        [Record::new()
            .with("count", 0_i64)
            .with("sum_quantity", Value::Null)
            .with("min_day", Value::Null)]
    );
    let groups = db
        .aggregate(
            ITEM,
            Aggregate::new().filter(nothing).group_by("shelf").count(),
        )
        .await
        .unwrap();
    assert!(groups.is_empty());
    db.close().await;
}

#[tokio::test]
async fn more_groups_than_max_page_are_refused_and_a_limit_takes_the_first() {
    let schema = unique_schema("agg_bound");
    let db = OpenOptions::new(primary_url())
        .registry(registry([item_model()]))
        .session(crate::support::db::in_schema(&schema))
        .max_page(3)
        .open()
        .await
        .expect("open");
    db.create_many(ITEM, items()).await.unwrap();
    let by_label = || Aggregate::new().group_by("label").count();
    // Four groups (a, b, c, NULL) past a bound of three.
    let err = db.aggregate(ITEM, by_label()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("more than 3 groups"), "{err}");
    // At the bound: answered whole.
    let three = db
        .aggregate(ITEM, by_label().filter(Filter::is_not_null("label")))
        .await
        .unwrap();
    assert_eq!(three.len(), 3);
    // A limit takes the first groups in order.
    let first: Vec<(Option<String>, i64)> =
        db.aggregate_as(ITEM, by_label().limit(2)).await.unwrap();
    assert_eq!(first, [(Some("a".into()), 1), (Some("b".into()), 1)]);
    let err = db.aggregate(ITEM, by_label().limit(4)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("maximum of 3 groups"), "{err}");
    db.close().await;
}

#[tokio::test]
async fn bad_aggregates_counts_and_exists_are_refused_before_any_sql() {
    let schema = unique_schema("agg_refused");
    let app = unique_app_name("agg_refused");
    let db = tagged_options(
        &primary_url(),
        [item_model()],
        pgactor::PoolConfig::default(),
        &schema,
        &app,
    )
    .open()
    .await
    .expect("open");
    let obs = observer(&primary_url()).await;
    let seen = || statements_containing(&obs, &schema);
    let before = seen().await;
    let aggregates = [
        ("nothing asked", Aggregate::new()),
        ("unknown group", Aggregate::new().group_by("colour")),
        ("unknown field", Aggregate::new().max("colour")),
        ("sum of text", Aggregate::new().sum("category")),
        ("avg of a date", Aggregate::new().avg("day")),
        ("min of a boolean", Aggregate::new().min("flag")),
        ("max of jsonb", Aggregate::new().max("doc")),
        ("max of a uuid", Aggregate::new().max("id")),
        (
            "sum without a field",
            Aggregate::new().output("s", AggregateFn::Sum, None),
        ),
        (
            "a name twice",
            Aggregate::new()
                .group_by("shelf")
                .sum_as("shelf", "quantity"),
        ),
        (
            "a bad name",
            Aggregate::new().count_as("n\"; DROP TABLE item; --"),
        ),
        (
            "a sort by no output",
            Aggregate::new().count().sort_asc("quantity"),
        ),
        (
            "a limit past max_page",
            Aggregate::new().count().limit(10_001),
        ),
        (
            "a bad filter",
            Aggregate::new()
                .count()
                .filter(Filter::eq("quantity", "many")),
        ),
        (
            "too many groups",
            (0..17).fold(Aggregate::new(), |a, _| a.group_by("shelf")),
        ),
        (
            "too many outputs",
            (0..17).fold(Aggregate::new(), |a, n| a.count_as(&format!("c{n}"))),
        ),
    ];
    for (label, aggregate) in aggregates {
        let err = db.aggregate(ITEM, aggregate).await.expect_err(label);
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{label}: {err}");
    }
    for filter in [Filter::eq("colour", "red"), Filter::gt("day", "soon")] {
        let err = db.count(ITEM, filter.clone()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        let err = db.exists(ITEM, filter).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    }
    let err = db.count("Nothing", Filter::And(vec![])).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(seen().await, before, "refused input sent SQL");
    // The witness sees a valid aggregate.
    db.aggregate(ITEM, Aggregate::new().count()).await.unwrap();
    assert!(seen().await > before, "pg_stat_statements sees the adapter");
    db.close().await;
}

#[tokio::test]
async fn aggregates_inside_a_transaction_see_its_uncommitted_rows() {
    let db = seeded("agg_tx").await;
    let tx = db.begin(TxOptions::default()).await.unwrap();
    let glue = item(
        "glue",
        3,
        1,
        100,
        cents(99),
        0.1,
        0.1,
        day(2024, 5, 1),
        None,
    );
    tx.create(ITEM, glue).await.unwrap();
    let is_glue = || Filter::eq("category", "glue");
    assert_eq!(tx.count(ITEM, Filter::And(vec![])).await.unwrap(), 5);
    assert!(tx.exists(ITEM, is_glue()).await.unwrap());
    let totals: Vec<(String, i64)> = tx
        .aggregate_as(
            ITEM,
            Aggregate::new()
                .group_by("category")
                .sum("quantity")
                .sort_desc("sum_quantity"),
        )
        .await
        .unwrap();
    assert_eq!(totals[0], ("glue".into(), 100));
    let glue_rows = tx
        .aggregate(ITEM, Aggregate::new().filter(is_glue()).count())
        .await
        .unwrap();
    assert_eq!(value(&glue_rows[0], "count"), &Value::I64(1));
    // Outside, nothing of it yet.
    assert_eq!(db.count(ITEM, Filter::And(vec![])).await.unwrap(), 4);
    assert!(!db.exists(ITEM, is_glue()).await.unwrap());
    tx.rollback().await.unwrap();
    assert!(!db.exists(ITEM, is_glue()).await.unwrap());
    db.close().await;
}

#[tokio::test]
async fn aggregates_run_as_messages_to_the_supervisor_and_to_a_transaction() {
    let db = seeded("agg_msg").await;
    let tools = || Filter::eq("category", "tools");
    let count = CountRequest {
        model: ITEM.into(),
        filter: tools(),
    };
    let n = ractor::call!(db.actor(), DbMsg::count, count, Call::here())
        .unwrap()
        .unwrap();
    assert_eq!(n, 3);
    let exists = ExistsRequest {
        model: ITEM.into(),
        filter: Filter::eq("category", "glue"),
    };
    let found = ractor::call!(db.actor(), DbMsg::exists, exists, Call::default())
        .unwrap()
        .unwrap();
    assert!(!found);
    let by_category = AggregateRequest {
        model: ITEM.into(),
        aggregate: Aggregate::new()
            .group_by("category")
            .sum_as("total", "quantity"),
    };
    let records = ractor::call!(
        db.actor(),
        DbMsg::aggregate,
        by_category.clone(),
        Call::here()
    )
    .unwrap()
    .unwrap();
    assert_eq!(records[1].get::<i64>("total").unwrap(), 35);
    let typed: Vec<(String, i64)> = ractor::call!(
        db.actor(),
        DbMsg::aggregate_as,
        by_category.clone(),
        Call::here()
    )
    .unwrap()
    .unwrap();
    assert_eq!(typed, [("paint".into(), 7), ("tools".into(), 35)]);

    let tx = db.begin(TxOptions::default()).await.unwrap();
    tx.delete_where(ITEM, Filter::eq("category", "paint"))
        .await
        .unwrap();
    let count = CountRequest {
        model: ITEM.into(),
        filter: Filter::And(vec![]),
    };
    assert_eq!(
        ractor::call!(tx.actor(), TxMsg::count, count)
            .unwrap()
            .unwrap(),
        3
    );
    let paint = ExistsRequest {
        model: ITEM.into(),
        filter: Filter::eq("category", "paint"),
    };
    assert!(!ractor::call!(tx.actor(), TxMsg::exists, paint)
        .unwrap()
        .unwrap());
    let records = ractor::call!(tx.actor(), TxMsg::aggregate, by_category.clone())
        .unwrap()
        .unwrap();
    assert_eq!(records.len(), 1);
    let typed: Vec<(String, i64)> = ractor::call!(tx.actor(), TxMsg::aggregate_as, by_category)
        .unwrap()
        .unwrap();
    assert_eq!(typed, [("tools".into(), 35)]);
    tx.rollback().await.unwrap();
    db.close().await;
}

/// What a group of stock balances decodes into, by column name.
#[derive(Debug, PartialEq)]
struct NoteTotal {
    note: Option<String>,
    rows: i64,
    total: i64,
}

impl FromRow for NoteTotal {
    fn from_row(row: &Row) -> pgactor::Result<NoteTotal> {
        Ok(NoteTotal {
            total: column(row, "total")?,
            rows: column(row, "rows")?,
            note: column(row, "note")?,
        })
    }
}

#[tokio::test]
async fn typed_aggregates_decode_groups_into_the_callers_struct() {
    let db = OpenOptions::new(primary_url())
        .registry(Registry::new().with_entity::<StockBalance>().unwrap())
        .session(crate::support::db::in_schema(&unique_schema("agg_typed")))
        .open()
        .await
        .expect("open");
    let stock = db.typed::<StockBalance>();
    let rows: Vec<StockBalance> = [("A", 3, Some("x")), ("B", 4, Some("x")), ("C", 0, None)]
        .iter()
        .map(|&(sku, quantity, note)| StockBalance {
            note: note.map(str::to_owned),
            ..StockBalance::new(sku, quantity)
        })
        .collect();
    stock.create_many(&rows).await.unwrap();
    assert_eq!(stock.count(StockBalance::QUANTITY.gt(0)).await.unwrap(), 2);
    assert!(stock.exists(StockBalance::SKU.eq("C")).await.unwrap());
    assert!(!stock.exists(StockBalance::SKU.eq("D")).await.unwrap());
    let by_note = || {
        Aggregate::new()
            .group_by(StockBalance::NOTE.name())
            .count_as("rows")
            .sum_as("total", StockBalance::QUANTITY.name())
    };
    let totals: Vec<NoteTotal> = stock.aggregate_as(by_note()).await.unwrap();
    assert_eq!(
        totals,
        [
            NoteTotal {
                note: Some("x".into()),
                rows: 2,
                total: 7
            },
            NoteTotal {
                note: None,
                rows: 1,
                total: 0
            },
        ]
    );
    assert_eq!(stock.aggregate(by_note()).await.unwrap().len(), 2);

    let tx = db.begin(TxOptions::default()).await.unwrap();
    let in_tx = tx.typed::<StockBalance>();
    in_tx.create(&StockBalance::new("D", 5)).await.unwrap();
    assert!(in_tx.exists(StockBalance::SKU.eq("D")).await.unwrap());
    assert_eq!(in_tx.count(Filter::And(vec![])).await.unwrap(), 4);
    let totals: Vec<NoteTotal> = in_tx.aggregate_as(by_note()).await.unwrap();
    assert_eq!(totals[1].total, 5, "the new row's NULL note group");
    assert_eq!(in_tx.aggregate(by_note()).await.unwrap().len(), 2);
    tx.rollback().await.unwrap();
    db.close().await;
}

#[tokio::test]
async fn aggregates_read_the_replica_and_a_token_makes_them_see_the_write() {
    let topo = Topology::up();
    let db = open_with_replica(topo.primary(), topo.replica(), fast_probe(), "aggregates").await;
    let first = crate::support::db::create_stock(&db, "first").await;
    read_when_replicated(&db, "StockBalance", first).await;

    let replica = pause_replay(topo.replica()).await;
    // Fields no create of this test set before: its INSERT is prepared
    // first, and the token must still be read after it.
    let fields = Record::new()
        .with("sku", "fresh")
        .with("note", "new fields");
    let (_, token) = db
        .write_with_token("StockBalance", WriteOp::Create(fields))
        .await
        .unwrap();
    let fresh = || Filter::eq("sku", "fresh");
    let total = || Aggregate::new().count().max("sku");
    // Without the token they read the paused replica: the write is not there.
    assert_eq!(db.count("StockBalance", fresh()).await.unwrap(), 0);
    assert!(!db.exists("StockBalance", fresh()).await.unwrap());
    let stale: Vec<(i64, Option<String>)> = db.aggregate_as("StockBalance", total()).await.unwrap();
    assert_eq!(stale, [(1, Some("first".into()))]);
    // With it they go to the primary, which has it.
    let after = db.after(token);
    assert_eq!(after.count("StockBalance", fresh()).await.unwrap(), 1);
    assert!(after.exists("StockBalance", fresh()).await.unwrap());
    let seen: Vec<(i64, Option<String>)> =
        after.aggregate_as("StockBalance", total()).await.unwrap();
    assert_eq!(seen, [(2, Some("fresh".into()))]);
    let records = after
        .aggregate("StockBalance", total().filter(fresh()))
        .await
        .unwrap();
    assert_eq!(value(&records[0], "count"), &Value::I64(1));
    let msg = CountRequest {
        model: "StockBalance".into(),
        filter: fresh(),
    };
    let by_message = ractor::call!(db.actor(), DbMsg::count, msg, Call::here().after(token))
        .unwrap()
        .unwrap();
    assert_eq!(by_message, 1);
    assert!(db.stats().replica.unwrap().primary_reads >= 5);
    resume_replay(&replica).await;
    db.close().await;
}

#[tokio::test]
async fn aggregates_count_and_exists_run_behind_pgbouncer_in_pooler_mode() {
    let db = OpenOptions::new(bouncer_url())
        .pooler(PoolerMode::Transaction)
        .registry(registry([stock_model()]))
        .session(crate::support::db::in_schema(&unique_schema("agg_bouncer")))
        .open()
        .await
        .expect("open through the bouncer");
    let rows = (0..6)
        .map(|n| {
            Record::new()
                .with("sku", format!("S-{n}"))
                .with("quantity", n as i64)
                .with("note", if n % 2 == 0 { "even" } else { "odd" })
        })
        .collect();
    db.create_many("StockBalance", rows).await.unwrap();
    let by_note = || {
        Aggregate::new()
            .group_by("note")
            .count()
            .sum("quantity")
            .avg("quantity")
    };
    // More rounds than the bouncer has server sessions: the statements
    // keep nothing on any of them.
    for _ in 0..3 * crate::support::topology::bouncer_pool_size() {
        assert_eq!(
            db.count("StockBalance", Filter::gt("quantity", 2_i64))
                .await
                .unwrap(),
            3
        );
        assert!(db
            .exists("StockBalance", Filter::eq("note", "odd"))
            .await
            .unwrap());
        let groups: Vec<(String, i64, i64, Decimal)> =
            db.aggregate_as("StockBalance", by_note()).await.unwrap();
        assert_eq!(
            groups,
            [
                ("even".into(), 3, 6, Decimal::from(2)),
                ("odd".into(), 3, 9, Decimal::from(3))
            ]
        );
    }
    let tx = db.begin(TxOptions::default()).await.unwrap();
    tx.delete_where("StockBalance", Filter::eq("note", "odd"))
        .await
        .unwrap();
    assert_eq!(
        tx.count("StockBalance", Filter::And(vec![])).await.unwrap(),
        3
    );
    assert_eq!(
        tx.aggregate("StockBalance", by_note()).await.unwrap().len(),
        1
    );
    tx.rollback().await.unwrap();
    db.close().await;
}
