//! Every field type round-trips create → read with the exact value, checked
//! through the adapter and, as text, from an observer connection; NULLs, both
//! primary-key kinds, the adapter's timestamps, serde structs and the typed
//! getters of `Record`.

use chrono::{DateTime, NaiveDate, Utc};
use pgactor::{
    Db, ErrorKind, Field, FieldType, Filter, Model, PrimaryKey, Query, Record, SessionConfig, Value,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::support::db::{registry, unique_schema};
use crate::support::observer::{observer, rows_in};
use crate::support::topology::primary_url;

/// One nullable column per field type.
const COLUMNS: [(&str, FieldType); 14] = [
    ("b", FieldType::Bool),
    ("i2", FieldType::I16),
    ("i4", FieldType::I32),
    ("i8", FieldType::I64),
    ("f4", FieldType::F32),
    ("f8", FieldType::F64),
    ("num", FieldType::Numeric),
    ("txt", FieldType::Text),
    ("vc", FieldType::Varchar(5)),
    ("bin", FieldType::Bytes),
    ("uid", FieldType::Uuid),
    ("ts", FieldType::Timestamptz),
    ("day", FieldType::Date),
    ("doc", FieldType::Json),
];

fn sample_model() -> Model {
    COLUMNS.iter().fold(Model::new("Sample"), |m, (name, ty)| {
        m.field(Field::new(*name, *ty).nullable())
    })
}

/// Open on the primary in a fresh schema whose session time zone is not UTC,
/// so a round trip that depended on it would show.
async fn open_typed(models: impl IntoIterator<Item = Model>) -> (Db, String) {
    let schema = unique_schema("types");
    let db = pgactor::OpenOptions::new(primary_url())
        .registry(registry(models))
        .session(SessionConfig {
            schema: Some(schema.clone()),
            time_zone: Some("America/St_Johns".into()),
            ..SessionConfig::default()
        })
        .open()
        .await
        .expect("open");
    (db, schema)
}

/// An observer whose text output of timestamps is in UTC.
async fn utc_observer() -> tokio_postgres::Client {
    let client = observer(&primary_url()).await;
    client
        .batch_execute("SET TimeZone = 'UTC'")
        .await
        .expect("observer time zone");
    client
}

fn ts(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .expect("timestamp")
        .with_timezone(&Utc)
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("date")
}

fn dec(s: &str) -> Value {
    Value::Numeric(s.parse::<Decimal>().expect("decimal"))
}

/// `(field, value sent, the column as the server prints it)`.
fn cases() -> Vec<(&'static str, Value, String)> {
    let all_bytes: Vec<u8> = (0..=255).collect();
    let hex: String = all_bytes.iter().map(|b| format!("{b:02x}")).collect();
    let uid = Uuid::parse_str("6f1c2b0e-8d9a-4e3b-9c7d-5a4b3c2d1e0f").expect("uuid");
    let text = "héllo 日本語 🦀 'single' \"double\" back\\slash\n\ttab";
    let doc = json!({"a": [1, 2.5, {"b": null, "c": "🦀"}], "nested": {"deep": {"k": true}}});
    vec![
        ("b", true.into(), "true".into()),
        ("b", false.into(), "false".into()),
        ("i2", i16::MIN.into(), "-32768".into()),
        ("i2", i16::MAX.into(), "32767".into()),
        ("i4", i32::MIN.into(), "-2147483648".into()),
        ("i4", i32::MAX.into(), "2147483647".into()),
        ("i8", i64::MIN.into(), "-9223372036854775808".into()),
        ("i8", i64::MAX.into(), "9223372036854775807".into()),
        ("f4", 1.5_f32.into(), "1.5".into()),
        ("f4", f32::NAN.into(), "NaN".into()),
        ("f4", f32::INFINITY.into(), "Infinity".into()),
        ("f4", f32::NEG_INFINITY.into(), "-Infinity".into()),
        ("f8", 0.1_f64.into(), "0.1".into()),
        ("f8", f64::MAX.into(), "1.7976931348623157e+308".into()),
        ("f8", f64::NAN.into(), "NaN".into()),
        ("f8", f64::INFINITY.into(), "Infinity".into()),
        ("f8", f64::NEG_INFINITY.into(), "-Infinity".into()),
        (
            "num",
            dec("12345678901234567890.123456789"),
            "12345678901234567890.123456789".into(),
        ),
        ("num", dec("-0.000000001"), "-0.000000001".into()),
        ("num", dec("12.50"), "12.50".into()),
        ("txt", text.into(), text.into()),
        ("txt", "".into(), "".into()),
        ("vc", "ab🦀cd".into(), "ab🦀cd".into()),
        ("bin", all_bytes.into(), format!("\\x{hex}")),
        ("bin", vec![0x00_u8, 0xff].into(), "\\x00ff".into()),
        ("uid", uid.into(), uid.to_string()),
        (
            "ts",
            ts("2024-02-29T13:45:56.123456Z").into(),
            "2024-02-29 13:45:56.123456+00".into(),
        ),
        (
            "ts",
            ts("2024-03-01T01:15:56.000001+05:30").into(),
            "2024-02-29 19:45:56.000001+00".into(),
        ),
        ("day", date(2024, 2, 29).into(), "2024-02-29".into()),
        ("day", date(1, 1, 1).into(), "0001-01-01".into()),
        ("day", date(9999, 12, 31).into(), "9999-12-31".into()),
        (
            "doc",
            doc.into(),
            r#"{"a": [1, 2.5, {"b": null, "c": "🦀"}], "nested": {"deep": {"k": true}}}"#.into(),
        ),
    ]
}

/// Exact equality: the same variant, the same bits (NaN equals NaN, `12.50`
/// differs from `12.5`).
fn assert_exact(got: Option<&Value>, sent: &Value, what: &str) {
    assert_eq!(format!("{got:?}"), format!("{:?}", Some(sent)), "{what}");
}

#[tokio::test]
async fn every_field_type_round_trips_with_the_exact_value() {
    let (db, schema) = open_typed([sample_model()]).await;
    let obs = utc_observer().await;
    for (field, sent, printed) in cases() {
        let what = format!("{field} = {sent:?}");
        let created = db
            .create("Sample", Record::new().with(field, sent.clone()))
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_exact(created.value(field), &sent, &what);
        let id: Uuid = created.get("id").expect("id");
        let read = db.read("Sample", id).await.expect("read");
        assert_exact(read.value(field), &sent, &what);

        let sql = format!("SELECT \"{field}\"::text FROM \"{schema}\".\"sample\" WHERE id = $1");
        let stored: String = obs.query_one(&sql, &[&id]).await.expect("observe").get(0);
        assert_eq!(stored, printed, "{what}: as stored");

        for filter in [
            Filter::eq(field, sent.clone()),
            Filter::is_in(field, [sent.clone()]),
        ] {
            let page = db.list("Sample", Query::new().filter(filter.clone())).await;
            let page = page.unwrap_or_else(|e| panic!("{what}: {filter:?}: {e}"));
            let found: Vec<Uuid> = page.rows.iter().map(|r| r.get("id").expect("id")).collect();
            assert!(found.contains(&id), "{what}: {filter:?} finds the row");
        }
    }
    db.close().await;
}

#[tokio::test]
async fn nullable_fields_store_and_return_null() {
    let (db, schema) = open_typed([sample_model()]).await;
    let all_null: Record = COLUMNS
        .iter()
        .map(|(name, _)| (*name, Value::Null))
        .collect();
    for (what, record) in [
        ("explicit NULLs", all_null),
        ("fields left out", Record::new()),
    ] {
        let created = db.create("Sample", record).await.expect(what);
        let read = db
            .read("Sample", created.get::<Uuid>("id").expect("id"))
            .await
            .expect(what);
        for (name, _) in COLUMNS {
            assert_eq!(read.value(name), Some(&Value::Null), "{what}: {name}");
            assert_eq!(read.get::<Option<String>>(name).expect(name), None);
        }
    }
    let obs = observer(&primary_url()).await;
    let columns: Vec<String> = COLUMNS.iter().map(|(n, _)| format!("\"{n}\"")).collect();
    let sql = format!(
        "SELECT count(*) FROM \"{schema}\".\"sample\" WHERE num_nulls({}) = {}",
        columns.join(", "),
        columns.len()
    );
    let rows: i64 = obs.query_one(&sql, &[]).await.expect("observe").get(0);
    assert_eq!(rows, 2, "the server holds real NULLs");
    db.close().await;
}

#[tokio::test]
async fn identity_keys_are_assigned_by_the_server_in_increasing_order() {
    let ticket = Model::new("Ticket")
        .primary_key(PrimaryKey::Identity)
        .field(Field::new("title", FieldType::Text));
    let (db, _) = open_typed([ticket]).await;
    let mut ids = Vec::new();
    for title in ["a", "b", "c"] {
        let row = db
            .create("Ticket", Record::new().with("title", title))
            .await
            .expect("create");
        ids.push(row.get::<i64>("id").expect("bigint id"));
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let read = db.read("Ticket", ids[1]).await.expect("read by bigint id");
    assert_eq!(read.get::<String>("title").expect("title"), "b");
    db.close().await;
}

#[tokio::test]
async fn uuid_keys_are_generated_client_side_when_absent_and_honoured_when_given() {
    let doc = Model::new("Doc").field(Field::new("title", FieldType::Text));
    let (db, _) = open_typed([doc]).await;
    let generated = db
        .create("Doc", Record::new().with("title", "generated"))
        .await
        .expect("create");
    let id: Uuid = generated.get("id").expect("id");
    // The table's server-side default is gen_random_uuid(), a version 4.
    assert_eq!(id.get_version_num(), 7, "UUIDv7 from the adapter: {id}");

    let given = Uuid::new_v4();
    let row = db
        .create(
            "Doc",
            Record::new().with("id", given).with("title", "given"),
        )
        .await
        .expect("create with id");
    assert_eq!(row.get::<Uuid>("id").expect("id"), given);
    let read = db.read("Doc", given).await.expect("read");
    assert_eq!(read.get::<String>("title").expect("title"), "given");
    db.close().await;
}

#[tokio::test]
async fn created_at_and_updated_at_are_kept_by_the_adapter() {
    let doc = Model::new("Doc").field(Field::new("title", FieldType::Text));
    let (db, _) = open_typed([doc]).await;
    let obs = observer(&primary_url()).await;
    let clock = || async {
        let row = obs
            .query_one("SELECT clock_timestamp()", &[])
            .await
            .expect("clock");
        row.get::<_, DateTime<Utc>>(0)
    };
    let before = clock().await;
    let created = db
        .create("Doc", Record::new().with("title", "t"))
        .await
        .expect("create");
    let after = clock().await;
    let created_at: DateTime<Utc> = created.get("created_at").expect("created_at");
    let updated_at: DateTime<Utc> = created.get("updated_at").expect("updated_at");
    assert!(
        before <= created_at && created_at <= after,
        "{before} {created_at} {after}"
    );
    assert_eq!(created_at, updated_at, "both set on insert");

    let id: Uuid = created.get("id").expect("id");
    let updated = db
        .update("Doc", id, Record::new().with("title", "u"))
        .await
        .expect("update");
    assert_eq!(
        updated
            .get::<DateTime<Utc>>("created_at")
            .expect("created_at"),
        created_at
    );
    assert!(
        updated
            .get::<DateTime<Utc>>("updated_at")
            .expect("updated_at")
            > updated_at
    );
    db.close().await;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    id: Uuid,
    sku: String,
    quantity: i64,
    price: Decimal,
    placed_at: DateTime<Utc>,
    ship_on: NaiveDate,
    payload: Vec<u8>,
    meta: serde_json::Value,
    note: Option<String>,
}

fn order_model() -> Model {
    Model::new("Order")
        .field(Field::new("sku", FieldType::Text))
        .field(Field::new("quantity", FieldType::I64))
        .field(Field::new("price", FieldType::Numeric))
        .field(Field::new("placed_at", FieldType::Timestamptz))
        .field(Field::new("ship_on", FieldType::Date))
        .field(Field::new("payload", FieldType::Bytes))
        .field(Field::new("meta", FieldType::Json))
        .field(Field::new("note", FieldType::Text).nullable())
}

#[tokio::test]
async fn serde_structs_convert_to_records_and_back_unchanged() {
    let model = order_model();
    let (db, _) = open_typed([model.clone()]).await;
    let first = Order {
        id: Uuid::new_v4(),
        sku: "A-1 'quoted'".into(),
        quantity: 42,
        price: "1234.50".parse().expect("decimal"),
        placed_at: ts("2025-06-30T23:59:59.999999Z"),
        ship_on: date(2025, 7, 1),
        payload: vec![0, 1, 254, 255],
        meta: json!({"tags": ["x", "y"], "n": {"m": 1}}),
        note: None,
    };
    let second = Order {
        id: Uuid::new_v4(),
        quantity: -1,
        note: Some("gift 🎁".into()),
        ..first.clone()
    };
    for order in [first, second] {
        let record = Record::from_serde(&model, &order).expect("from_serde");
        let created = db.create("Order", record).await.expect("create");
        assert_eq!(created.to_serde::<Order>().expect("to_serde"), order);
        let read = db.read("Order", order.id).await.expect("read");
        assert_eq!(read.to_serde::<Order>().expect("to_serde"), order);
    }
    db.close().await;
}

#[tokio::test]
async fn typed_getters_read_the_stored_type_and_refuse_others() {
    let stock = Model::new("Stock")
        .field(Field::new("sku", FieldType::Text))
        .field(Field::new("quantity", FieldType::I64));
    let (db, _) = open_typed([stock]).await;
    let row = db
        .create(
            "Stock",
            Record::new().with("sku", "A").with("quantity", 7_i32),
        )
        .await
        .expect("create");
    assert_eq!(row.get::<i64>("quantity").expect("i64"), 7);
    assert_eq!(
        row.get::<Option<i64>>("quantity").expect("Option<i64>"),
        Some(7)
    );
    assert_eq!(row.get::<String>("sku").expect("String"), "A");

    let wrong = [
        row.get::<i32>("quantity").map(drop),
        row.get::<String>("quantity").map(drop),
        row.get::<bool>("sku").map(drop),
        row.get::<Uuid>("created_at").map(drop),
        row.get::<i64>("no_such_field").map(drop),
    ];
    for (i, result) in wrong.into_iter().enumerate() {
        let err = result.expect_err(&format!("case {i} must fail"));
        assert_eq!(err.kind(), ErrorKind::Decode, "case {i}: {err}");
        assert_eq!((err.http_status(), err.code()), (500, "DECODE"));
    }
    db.close().await;
}

#[tokio::test]
async fn stored_values_the_rust_types_cannot_hold_are_a_decode_error() {
    let (db, schema) = open_typed([sample_model()]).await;
    let obs = observer(&primary_url()).await;
    for (field, stored) in [
        ("num", "'NaN'"),
        ("num", "1e40"),
        ("ts", "'infinity'"),
        ("day", "'-infinity'"),
    ] {
        let id = Uuid::new_v4();
        let sql =
            format!("INSERT INTO \"{schema}\".sample (id, \"{field}\") VALUES ($1, {stored})");
        obs.execute(&sql, &[&id]).await.expect("written by hand");
        let err = db.read("Sample", id).await.expect_err(stored);
        assert_eq!(err.kind(), ErrorKind::Decode, "{field} = {stored}: {err:?}");
        assert!(
            err.to_string().contains(field),
            "{field} = {stored}: names the column: {err}"
        );
        obs.execute(
            &format!("DELETE FROM \"{schema}\".sample WHERE id = $1"),
            &[&id],
        )
        .await
        .expect("cleanup");
    }
    db.close().await;
}

/// A JSON array nested `depth` levels deep around `1`.
fn nested(depth: usize) -> serde_json::Value {
    (0..depth).fold(json!(1), |inner, _| json!([inner]))
}

/// Its text, as the server writes jsonb (`[[1]]`).
fn nested_text(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

#[tokio::test]
async fn a_jsonb_document_too_deep_is_refused_before_it_is_sent() {
    let (db, schema) = open_typed([sample_model()]).await;
    let obs = observer(&primary_url()).await;
    let deepest = db
        .create(
            "Sample",
            Record::new().with("doc", nested(pgactor::MAX_JSON_DEPTH)),
        )
        .await
        .expect("the deepest tree pgactor holds is stored");
    assert_eq!(
        deepest.get::<serde_json::Value>("doc").unwrap(),
        nested(pgactor::MAX_JSON_DEPTH)
    );
    // One level more was stored and answered DECODE (a retry stored it
    // twice); now it is refused and nothing is sent.
    let err = db
        .create(
            "Sample",
            Record::new().with("doc", nested(pgactor::MAX_JSON_DEPTH + 1)),
        )
        .await
        .expect_err("too deep");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("doc"), "{err}");
    assert_eq!(
        rows_in(&obs, &schema, "sample").await,
        1,
        "only the first create stored a row"
    );
    let page = db.list("Sample", Query::new()).await.expect("list");
    assert_eq!(page.rows.len(), 1);
    db.close().await;
}

#[tokio::test]
async fn a_jsonb_document_of_any_depth_the_server_holds_reads_back_as_its_text() {
    let (db, schema) = open_typed([sample_model()]).await;
    let obs = observer(&primary_url()).await;
    // Written by another client, as deep as the server's parser takes.
    for depth in [pgactor::MAX_JSON_DEPTH + 1, 5_000] {
        let sql = format!("INSERT INTO \"{schema}\".sample (id, doc) VALUES ($1, $2::text::jsonb)");
        obs.execute(&sql, &[&Uuid::now_v7(), &nested_text(depth)])
            .await
            .expect("insert");
    }
    // Written through pgactor as text: the create answers the row.
    let created = db
        .create(
            "Sample",
            Record::new().with("doc", Value::JsonText(nested_text(10_000))),
        )
        .await
        .expect("a deep document written as text is stored and answered");
    assert_eq!(
        created.value("doc"),
        Some(&Value::JsonText(nested_text(10_000)))
    );
    let page = db
        .list("Sample", Query::new())
        .await
        .expect("every row reads");
    let mut depths: Vec<usize> = page
        .rows
        .iter()
        .map(|row| match row.value("doc") {
            Some(Value::JsonText(text)) => text.chars().take_while(|c| *c == '[').count(),
            other => panic!("not kept as text: {other:?}"),
        })
        .collect();
    depths.sort_unstable();
    assert_eq!(depths, [pgactor::MAX_JSON_DEPTH + 1, 5_000, 10_000]);
    db.close().await;
}
