//! Array columns end to end: a model declared at run time (written and read
//! as `Record`s) and the same columns as a derived struct, each created by
//! AutoMigrate, written, read back (empty arrays, NULL elements, a NULL
//! array), filtered on whole arrays and on their elements (`has`), and
//! migrated again without drift.

use chrono::{DateTime, NaiveDate, Utc};
use pgactor::{
    Db, Elem, Entity, ErrorKind, Field, FieldType, Filter, Model, Query, Record, SessionConfig,
    Value,
};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::support::db::{ids_matching, registry, typed_ids_matching, unique_schema};
use crate::support::topology::primary_url;

/// The derived struct: arrays of several element kinds, NULL elements and
/// a nullable array.
#[derive(Debug, Clone, PartialEq, pgactor::Entity)]
#[pgactor(model = "TypedBasket")]
struct Basket {
    id: Uuid,
    counts: Vec<i64>,
    tags: Vec<Option<String>>,
    flags: Vec<bool>,
    prices: Vec<Decimal>,
    refs: Vec<Uuid>,
    seen: Vec<DateTime<Utc>>,
    days: Option<Vec<Option<NaiveDate>>>,
    small: Vec<i16>,
    ratios: Vec<f64>,
}

/// The same columns declared at run time.
fn runtime_model() -> Model {
    let array = |name: &str, elem| Field::new(name, FieldType::Array(elem));
    Model::new("Basket")
        .field(array("counts", Elem::I64))
        .field(array("tags", Elem::Text))
        .field(array("flags", Elem::Bool))
        .field(array("prices", Elem::Numeric))
        .field(array("refs", Elem::Uuid))
        .field(array("seen", Elem::Timestamptz))
        .field(array("days", Elem::Date).nullable())
        .field(array("small", Elem::I16))
        .field(array("ratios", Elem::F64))
}

async fn open(schema: &str) -> Db {
    pgactor::OpenOptions::new(primary_url())
        .registry(registry([runtime_model(), Basket::model()]))
        .session(SessionConfig {
            schema: Some(schema.to_owned()),
            ..SessionConfig::default()
        })
        .open()
        .await
        .expect("open")
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 7, d).expect("date")
}

/// Three baskets: one with values everywhere (NULL elements too), one with
/// empty arrays and a NULL array, one sharing the first one's counts
/// reordered.
fn baskets() -> Vec<Basket> {
    let seen = day(1)
        .and_hms_micro_opt(12, 30, 5, 250)
        .expect("timestamp")
        .and_utc();
    vec![
        Basket {
            id: Uuid::nil(),
            counts: vec![1, 2, 3],
            tags: vec![Some("red".into()), None, Some("".into())],
            flags: vec![true, false],
            prices: vec![Decimal::new(1250, 2), Decimal::new(-1, 0)],
            refs: vec![Uuid::now_v7()],
            seen: vec![seen],
            days: Some(vec![Some(day(1)), None]),
            small: vec![i16::MIN, i16::MAX],
            ratios: vec![0.5, -2.25],
        },
        Basket {
            id: Uuid::nil(),
            counts: vec![],
            tags: vec![],
            flags: vec![],
            prices: vec![],
            refs: vec![],
            seen: vec![],
            days: None,
            small: vec![],
            ratios: vec![],
        },
        Basket {
            id: Uuid::nil(),
            counts: vec![3, 2, 1],
            tags: vec![None],
            flags: vec![false],
            prices: vec![Decimal::new(1250, 2)],
            refs: vec![],
            seen: vec![],
            days: Some(vec![]),
            small: vec![7],
            ratios: vec![],
        },
    ]
}

fn record_of(b: &Basket) -> Record {
    Record::new()
        .with("counts", b.counts.clone())
        .with("tags", b.tags.clone())
        .with("flags", b.flags.clone())
        .with("prices", b.prices.clone())
        .with("refs", b.refs.clone())
        .with("seen", b.seen.clone())
        .with("days", b.days.clone())
        .with("small", b.small.clone())
        .with("ratios", b.ratios.clone())
}

async fn runtime_ids(db: &Db, filter: Filter) -> Vec<Uuid> {
    ids_matching(db, "Basket", filter).await
}

async fn typed_ids(db: &Db, filter: Filter) -> Vec<Uuid> {
    typed_ids_matching(db, filter, |row: &Basket| row.id).await
}

#[test]
fn the_derived_columns_are_the_runtime_models() {
    assert_eq!(Basket::model().fields(), runtime_model().fields());
}

#[tokio::test]
async fn records_write_read_and_filter_arrays() {
    let db = open(&unique_schema("arrays_rt")).await;
    let mut ids = Vec::new();
    for b in baskets() {
        let created = db.create("Basket", record_of(&b)).await.expect("create");
        let id: Uuid = created.get("id").expect("id");
        let read = db.read("Basket", id).await.expect("read");
        assert_eq!(read.get::<Vec<i64>>("counts").unwrap(), b.counts);
        assert_eq!(read.get::<Vec<Option<String>>>("tags").unwrap(), b.tags);
        assert_eq!(read.get::<Vec<bool>>("flags").unwrap(), b.flags);
        assert_eq!(read.get::<Vec<Decimal>>("prices").unwrap(), b.prices);
        assert_eq!(read.get::<Vec<Uuid>>("refs").unwrap(), b.refs);
        assert_eq!(read.get::<Vec<DateTime<Utc>>>("seen").unwrap(), b.seen);
        assert_eq!(
            read.get::<Option<Vec<Option<NaiveDate>>>>("days").unwrap(),
            b.days
        );
        assert_eq!(read.get::<Vec<i16>>("small").unwrap(), b.small);
        assert_eq!(read.get::<Vec<f64>>("ratios").unwrap(), b.ratios);
        // JSON, as serde writes the Rust types.
        assert_eq!(
            read.value("tags").map(Value::to_json),
            Some(serde_json::to_value(&b.tags).unwrap())
        );
        assert_eq!(
            read.value("days").map(Value::to_json),
            Some(serde_json::to_value(&b.days).unwrap())
        );
        ids.push(id);
    }
    let (a, b, c) = (ids[0], ids[1], ids[2]);
    let v = baskets();

    // eq compares whole arrays: order matters, and {} is an array.
    assert_eq!(
        runtime_ids(&db, Filter::eq("counts", v[0].counts.clone())).await,
        [a]
    );
    assert_eq!(
        runtime_ids(&db, Filter::eq("counts", vec![3_i64, 2, 1])).await,
        [c]
    );
    assert_eq!(
        runtime_ids(&db, Filter::eq("counts", Vec::<i64>::new())).await,
        [b]
    );
    assert_eq!(
        runtime_ids(&db, Filter::ne("counts", Vec::<i64>::new())).await,
        [a, c]
    );
    assert_eq!(
        runtime_ids(&db, Filter::eq("tags", v[2].tags.clone())).await,
        [c]
    );
    assert_eq!(runtime_ids(&db, Filter::is_null("days")).await, [b]);
    // Integers of another width are coerced element by element.
    assert_eq!(
        runtime_ids(&db, Filter::eq("small", vec![7_i64])).await,
        [c]
    );

    // has: an element among the array's, in any position; a NULL array
    // and an empty one hold nothing.
    assert_eq!(runtime_ids(&db, Filter::has("counts", 3_i64)).await, [a, c]);
    assert!(runtime_ids(&db, Filter::has("counts", 4_i64))
        .await
        .is_empty());
    assert_eq!(runtime_ids(&db, Filter::has("tags", "red")).await, [a]);
    assert_eq!(runtime_ids(&db, Filter::has("days", day(1))).await, [a]);
    assert_eq!(runtime_ids(&db, Filter::has("small", 7_i64)).await, [c]);

    // Refused before anything is sent: a wrong element, a nested array,
    // an IN list of arrays, has on a field that is no array, has NULL,
    // has an element of another type.
    for filter in [
        Filter::eq("counts", Value::Array(vec![Value::from("1")])),
        Filter::eq("counts", Value::Array(vec![Value::from(vec![1_i64])])),
        Filter::is_in("counts", [vec![1_i64]]),
        Filter::has("id", Uuid::nil()),
        Filter::has("tags", Value::Null),
        Filter::has("counts", "three"),
    ] {
        let err = db
            .list("Basket", Query::new().filter(filter))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    }
}

#[tokio::test]
async fn a_derived_struct_writes_reads_and_filters_the_same_columns() {
    let db = open(&unique_schema("arrays_typed")).await;
    let baskets_of = db.typed::<Basket>();
    let mut stored = Vec::new();
    for b in baskets() {
        let created = baskets_of.create(&b).await.expect("create");
        assert_eq!(
            Basket {
                id: created.id,
                ..b
            },
            created
        );
        let read = baskets_of.read(created.id).await.expect("read");
        assert_eq!(read, created);
        stored.push(read);
    }
    let [a, b, c] = [stored[0].id, stored[1].id, stored[2].id];
    let v = &stored;

    assert_eq!(
        typed_ids(&db, Basket::COUNTS.eq(v[0].counts.clone())).await,
        [a]
    );
    assert_eq!(typed_ids(&db, Basket::COUNTS.eq(vec![])).await, [b]);
    assert_eq!(typed_ids(&db, Basket::TAGS.eq(vec![None])).await, [c]);
    assert_eq!(
        typed_ids(&db, Basket::PRICES.eq(v[2].prices.clone())).await,
        [c]
    );
    assert_eq!(typed_ids(&db, Basket::DAYS.eq(vec![])).await, [c]);
    assert_eq!(typed_ids(&db, Filter::is_null(Basket::DAYS)).await, [b]);
    assert_eq!(typed_ids(&db, Basket::FLAGS.ne(vec![])).await, [a, c]);
    // has takes the element's type, without the Option of NULL elements.
    assert_eq!(typed_ids(&db, Basket::COUNTS.has(2)).await, [a, c]);
    assert_eq!(typed_ids(&db, Basket::TAGS.has("red")).await, [a]);
    assert_eq!(typed_ids(&db, Basket::DAYS.has(day(1))).await, [a]);
}

#[tokio::test]
async fn automigrate_finds_no_drift_in_array_columns() {
    let schema = unique_schema("arrays_mig");
    let first = open(&schema).await;
    let report = first.migrate().await.expect("migrate");
    assert!(report.statements.is_empty(), "{:?}", report.statements);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let second = open(&schema).await;
    let report = second.migrate().await.expect("migrate");
    assert!(report.statements.is_empty(), "{:?}", report.statements);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}
