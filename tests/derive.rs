//! `#[derive(pgactor::Entity)]` without a database: the model, the record
//! and the column constants it generates, and that the registry takes them.
//! Decoding rows (`FromRow`) is tested against the database.
#![cfg(feature = "derive")]

use std::net::IpAddr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use pgactor::{
    AsText, Column, Elem, Entity, Field, FieldType, Filter, Index, Model, PrimaryKey, Record,
    Registry, Value,
};
use rust_decimal::Decimal;
use uuid::Uuid;

/// Every attribute and the adapter's three columns.
#[derive(pgactor::Entity)]
#[pgactor(unique_index(warehouse, sku))]
#[pgactor(index(quantity), index(created_at))]
struct StockBalance {
    id: Uuid,
    #[pgactor(varchar = 32)]
    sku: String,
    warehouse: String,
    #[pgactor(default = 0)]
    quantity: i64,
    note: Option<String>,
    #[pgactor(unique, column = "external_ref")]
    reference: Option<Uuid>,
    #[pgactor(skip)]
    cached: Vec<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// Every mapped type, an identity key, a model and a table name of its own,
/// and the defaults.
#[derive(pgactor::Entity)]
#[pgactor(model = "Everything", table = "all_types")]
struct AllTypes {
    id: i64,
    #[pgactor(default = true)]
    flag: bool,
    #[pgactor(default = -3)]
    small: i16,
    #[pgactor(default = 70_000)]
    medium: i32,
    #[pgactor(default = 1.5)]
    real: f32,
    #[pgactor(default = -2)]
    double: f64,
    #[pgactor(default = 12)]
    amount: Decimal,
    #[pgactor(default = "none")]
    text: String,
    bytes: Vec<u8>,
    other: Option<uuid::Uuid>,
    #[pgactor(default_now)]
    at: chrono::DateTime<chrono::Utc>,
    #[pgactor(default_now)]
    day: Option<NaiveDate>,
    doc: serde_json::Value,
    r#type: Option<i32>,
}

/// A side of an order, stored as its text.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Side {
    Buy,
    Sell,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        })
    }
}

impl std::str::FromStr for Side {
    type Err = String;
    fn from_str(s: &str) -> Result<Side, String> {
        match s {
            "buy" => Ok(Side::Buy),
            "sell" => Ok(Side::Sell),
            _ => Err("expected buy or sell".into()),
        }
    }
}

/// The local timestamp, time and address types, and text-backed fields.
#[derive(pgactor::Entity)]
struct Visit {
    at: NaiveDateTime,
    opens: Option<chrono::NaiveTime>,
    from: std::net::IpAddr,
    via: Option<IpAddr>,
    #[pgactor(text)]
    side: Side,
    #[pgactor(text, varchar = 4, default = "buy")]
    last: Option<Side>,
}

/// No `id` field, no timestamps: the model still has its uuid key.
#[derive(pgactor::Entity)]
pub(crate) struct Note {
    body: String,
}

#[test]
fn the_model_is_the_one_written_by_hand() {
    let by_hand = Model::new("StockBalance")
        .field(Field::new("sku", FieldType::Varchar(32)))
        .field(Field::new("warehouse", FieldType::Text))
        .field(Field::new("quantity", FieldType::I64).default_value(0_i64))
        .field(Field::new("note", FieldType::Text).nullable())
        .field(
            Field::new("external_ref", FieldType::Uuid)
                .nullable()
                .unique(),
        )
        .index(Index::on(["warehouse", "sku"]).unique())
        .index(Index::on(["quantity"]))
        .index(Index::on(["created_at"]));
    assert_eq!(StockBalance::model(), by_hand);
    assert_eq!(StockBalance::MODEL, "StockBalance");
    let model = StockBalance::model();
    assert_eq!(model.table(), "stock_balance");
    assert_eq!(model.key(), PrimaryKey::Uuid);
    let note = &model.fields()[3];
    assert_eq!(
        (note.name(), note.ty(), note.is_nullable(), note.is_unique()),
        ("note", FieldType::Text, true, false)
    );
}

#[test]
fn every_type_maps_and_defaults_are_typed_as_the_field() {
    let by_hand = Model::new("Everything")
        .table_name("all_types")
        .primary_key(PrimaryKey::Identity)
        .field(Field::new("flag", FieldType::Bool).default_value(true))
        .field(Field::new("small", FieldType::I16).default_value(-3_i16))
        .field(Field::new("medium", FieldType::I32).default_value(70_000_i32))
        .field(Field::new("real", FieldType::F32).default_value(1.5_f32))
        .field(Field::new("double", FieldType::F64).default_value(-2.0_f64))
        .field(Field::new("amount", FieldType::Numeric).default_value(Decimal::from(12)))
        .field(Field::new("text", FieldType::Text).default_value("none"))
        .field(Field::new("bytes", FieldType::Bytes))
        .field(Field::new("other", FieldType::Uuid).nullable())
        .field(Field::new("at", FieldType::Timestamptz).default_now())
        .field(Field::new("day", FieldType::Date).nullable().default_now())
        .field(Field::new("doc", FieldType::Json))
        .field(Field::new("type", FieldType::I32).nullable());
    assert_eq!(AllTypes::model(), by_hand);
    assert_eq!(AllTypes::MODEL, "Everything");
    assert_eq!(AllTypes::model().table(), "all_types");
    assert_eq!(AllTypes::TYPE.name(), "type");

    let all = AllTypes {
        id: 9,
        flag: false,
        small: 1,
        medium: 2,
        real: 0.5,
        double: 0.25,
        amount: Decimal::new(314, 2),
        text: "t".into(),
        bytes: vec![0, 1],
        other: None,
        at: DateTime::UNIX_EPOCH,
        day: NaiveDate::from_ymd_opt(2024, 2, 29),
        doc: serde_json::json!({"a": [1]}),
        r#type: Some(4),
    };
    let record = all.to_record();
    assert_eq!(record.len(), 13, "every declared field, not the key");
    assert_eq!(record.value("id"), None);
    assert_eq!(all.id, 9);
    assert_eq!(
        record.get::<Decimal>("amount").unwrap(),
        Decimal::new(314, 2)
    );
    assert_eq!(record.get::<Vec<u8>>("bytes").unwrap(), [0, 1]);
    assert_eq!(record.value("other"), Some(&Value::Null));
    assert_eq!(record.get::<Option<NaiveDate>>("day").unwrap(), all.day);
    assert_eq!(record.get::<serde_json::Value>("doc").unwrap(), all.doc);
    assert_eq!(record.get::<i32>("type").unwrap(), 4);
    assert_eq!(record.get::<f32>("real").unwrap(), 0.5);
}

#[test]
fn local_timestamps_times_addresses_and_text_backed_fields_map() {
    let by_hand = Model::new("Visit")
        .field(Field::new("at", FieldType::Timestamp))
        .field(Field::new("opens", FieldType::Time).nullable())
        .field(Field::new("from", FieldType::Inet))
        .field(Field::new("via", FieldType::Inet).nullable())
        .field(Field::new("side", FieldType::Text))
        .field(
            Field::new("last", FieldType::Varchar(4))
                .nullable()
                .default_value("buy"),
        );
    assert_eq!(Visit::model(), by_hand);

    let at = NaiveDate::from_ymd_opt(2025, 7, 1)
        .unwrap()
        .and_hms_opt(9, 30, 0)
        .unwrap();
    let from: IpAddr = "192.0.2.1".parse().unwrap();
    let visit = Visit {
        at,
        opens: Some(at.time()),
        from,
        via: None,
        side: Side::Sell,
        last: Some(Side::Buy),
    };
    let expected = Record::new()
        .with("at", at)
        .with("opens", at.time())
        .with("from", from)
        .with("via", None::<IpAddr>)
        .with("side", "sell")
        .with("last", "buy");
    assert_eq!(visit.to_record(), expected);
    let none = Visit {
        last: None,
        ..visit
    };
    assert_eq!(none.to_record().value("last"), Some(&Value::Null));
    assert_eq!(none.to_record().get::<NaiveDateTime>("at").unwrap(), at);
    assert_eq!(
        none.to_record().get::<NaiveTime>("opens").unwrap(),
        at.time()
    );

    assert_eq!(Visit::AT.lt(at), Filter::lt("at", at));
    assert_eq!(Visit::OPENS.ge(at.time()), Filter::ge("opens", at.time()));
    assert_eq!(Visit::FROM.eq(from), Filter::eq("from", from));
    // A text-backed column compares with its type, as its text.
    let side: Column<Visit, AsText<Side>> = Visit::SIDE;
    assert_eq!(side.eq(Side::Buy), Filter::eq("side", "buy"));
    assert_eq!(Visit::LAST.ne(Side::Sell), Filter::ne("last", "sell"));
    assert_eq!(
        Visit::SIDE.is_in([Side::Buy, Side::Sell]),
        Filter::is_in("side", ["buy", "sell"])
    );
}

#[test]
fn a_struct_without_id_keeps_the_uuid_key() {
    assert_eq!(
        Note::model(),
        Model::new("Note").field(Field::new("body", FieldType::Text))
    );
    assert_eq!(Note::model().key(), PrimaryKey::Uuid);
}

fn stock() -> StockBalance {
    StockBalance {
        id: Uuid::nil(),
        sku: "A-1".into(),
        warehouse: "north".into(),
        quantity: 7,
        note: None,
        reference: Some(Uuid::from_u128(5)),
        cached: vec!["not a column".into()],
        created_at: DateTime::UNIX_EPOCH,
        updated_at: DateTime::UNIX_EPOCH,
    }
}

#[test]
fn the_record_holds_every_declared_field_and_nothing_else() {
    let stock = stock();
    let expected = Record::new()
        .with("sku", "A-1")
        .with("warehouse", "north")
        .with("quantity", 7_i64)
        .with("note", None::<String>)
        .with("external_ref", Uuid::from_u128(5));
    assert_eq!(stock.to_record(), expected);
    assert_eq!(stock.to_record().value("note"), Some(&Value::Null));
    // Read from the struct, not written: the key, the timestamps, the
    // skipped field.
    assert_eq!(
        (
            stock.id,
            stock.created_at,
            stock.updated_at,
            stock.cached.len()
        ),
        (Uuid::nil(), DateTime::UNIX_EPOCH, DateTime::UNIX_EPOCH, 1)
    );

    let note = Note { body: "hi".into() };
    assert_eq!(note.to_record(), Record::new().with("body", "hi"));
}

#[test]
fn column_constants_name_their_columns_and_filter_with_their_types() {
    assert_eq!(StockBalance::ID.name(), "id");
    assert_eq!(StockBalance::SKU.name(), "sku");
    assert_eq!(StockBalance::QUANTITY.name(), "quantity");
    assert_eq!(StockBalance::REFERENCE.name(), "external_ref");
    assert_eq!(StockBalance::CREATED_AT.name(), "created_at");
    assert_eq!(StockBalance::UPDATED_AT.name(), "updated_at");
    assert_eq!(Note::BODY.name(), "body");

    assert_eq!(StockBalance::QUANTITY.lt(5), Filter::lt("quantity", 5_i64));
    assert_eq!(StockBalance::SKU.eq("A-1"), Filter::eq("sku", "A-1"));
    // An Option<T> field's constant compares with a T; NULL is asked with
    // is_null.
    assert_eq!(StockBalance::NOTE.eq("x"), Filter::eq("note", "x"));
    assert_eq!(Filter::is_null(StockBalance::NOTE), Filter::is_null("note"));
    assert_eq!(
        StockBalance::ID.is_in([Uuid::nil()]),
        Filter::is_in("id", [Uuid::nil()])
    );
    assert_eq!(AllTypes::ID.ge(10), Filter::ge("id", 10_i64));
    assert_eq!(AllTypes::TYPE.eq(3), Filter::eq("type", 3_i32));
}

#[test]
fn the_registry_takes_the_derived_models() {
    let registry = Registry::new()
        .with_entity::<StockBalance>()
        .and_then(|r| r.with_entity::<AllTypes>())
        .and_then(|r| r.with_entity::<Note>())
        .and_then(|r| r.with_entity::<Visit>())
        .expect("valid models");
    let names: Vec<&str> = registry.models().map(|m| m.name()).collect();
    assert_eq!(names, ["Everything", "Note", "StockBalance", "Visit"]);
}

/// Array columns: a `Vec` of each element kind, NULL elements, a nullable
/// array, and `Vec<u8>` still `bytea`.
#[derive(pgactor::Entity)]
struct Tagged {
    #[pgactor(unique)]
    flags: Vec<bool>,
    small: Vec<i16>,
    medium: Vec<i32>,
    big: Vec<Option<i64>>,
    ratios: Vec<f64>,
    prices: Vec<Decimal>,
    tags: Option<Vec<String>>,
    refs: Vec<Uuid>,
    seen: Vec<DateTime<Utc>>,
    days: Vec<Option<NaiveDate>>,
    blob: Vec<u8>,
}

#[test]
fn vecs_map_to_array_columns() {
    let array = |name: &str, elem| Field::new(name, FieldType::Array(elem));
    let by_hand = Model::new("Tagged")
        .field(array("flags", Elem::Bool).unique())
        .field(array("small", Elem::I16))
        .field(array("medium", Elem::I32))
        .field(array("big", Elem::I64))
        .field(array("ratios", Elem::F64))
        .field(array("prices", Elem::Numeric))
        .field(array("tags", Elem::Text).nullable())
        .field(array("refs", Elem::Uuid))
        .field(array("seen", Elem::Timestamptz))
        .field(array("days", Elem::Date))
        .field(Field::new("blob", FieldType::Bytes));
    assert_eq!(Tagged::model(), by_hand);

    let day = NaiveDate::from_ymd_opt(2025, 7, 1).unwrap();
    let tagged = Tagged {
        flags: vec![true, false],
        small: vec![],
        medium: vec![3],
        big: vec![Some(1), None],
        ratios: vec![0.5],
        prices: vec![Decimal::new(1250, 2)],
        tags: None,
        refs: vec![Uuid::nil()],
        seen: vec![],
        days: vec![None, Some(day)],
        blob: vec![1, 2],
    };
    let record = tagged.to_record();
    assert_eq!(
        record.value("big"),
        Some(&Value::Array(vec![Value::I64(1), Value::Null]))
    );
    assert_eq!(record.value("small"), Some(&Value::Array(vec![])));
    assert_eq!(record.value("tags"), Some(&Value::Null));
    assert_eq!(record.value("blob"), Some(&Value::Bytes(vec![1, 2])));
    assert_eq!(
        record.get::<Vec<Option<NaiveDate>>>("days").unwrap(),
        tagged.days
    );
    assert_eq!(record.get::<Vec<Decimal>>("prices").unwrap(), tagged.prices);

    // The constant's filters take the whole Vec.
    let tags: Column<Tagged, Vec<String>> = Tagged::TAGS;
    assert_eq!(
        tags.eq(vec!["a".to_owned()]),
        Filter::eq("tags", vec!["a".to_owned()])
    );
    assert_eq!(
        Tagged::BIG.eq(vec![Some(1), None]),
        Filter::eq("big", Value::Array(vec![Value::I64(1), Value::Null]))
    );
}

/// A versioned struct with references to another model.
#[derive(pgactor::Entity)]
struct Shelf {
    #[pgactor(references = "StockBalance", on_delete = "cascade")]
    stock_id: Uuid,
    #[pgactor(references = "StockBalance", on_delete = "set_null")]
    backup_id: Option<Uuid>,
    #[pgactor(references = "StockBalance")]
    origin_id: Uuid,
    #[pgactor(references = "Tally", on_delete = "restrict")]
    tally_id: i64,
    #[pgactor(version)]
    revision: i32,
}

/// An identity key, for `Shelf::tally_id`; only its model is used.
#[allow(dead_code)]
#[derive(pgactor::Entity)]
struct Tally {
    id: i64,
}

#[test]
fn version_and_references_are_the_model_written_by_hand() {
    use pgactor::OnDelete;
    let uuid_ref = |name: &str, on_delete| {
        Field::new(name, FieldType::Uuid).references("StockBalance", on_delete)
    };
    assert_eq!(
        Shelf::model(),
        Model::new("Shelf")
            .field(uuid_ref("stock_id", OnDelete::Cascade))
            .field(
                Field::new("backup_id", FieldType::Uuid)
                    .nullable()
                    .references("StockBalance", OnDelete::SetNull)
            )
            .field(uuid_ref("origin_id", OnDelete::NoAction))
            .field(Field::new("tally_id", FieldType::I64).references("Tally", OnDelete::Restrict))
            .field(Field::new("revision", FieldType::I32).version())
    );
    assert_eq!(Shelf::VERSION, Some("revision"));
    assert_eq!(Tally::model().key(), PrimaryKey::Identity);
    assert_eq!(StockBalance::VERSION, None);
    let registry = Registry::new()
        .with_entity::<Shelf>()
        .unwrap()
        .with_entity::<StockBalance>()
        .unwrap()
        .with_entity::<Tally>()
        .unwrap();
    registry.validate().unwrap();
    // Without the models it references, the registry is incomplete.
    let alone = Registry::new().with_entity::<Shelf>().unwrap();
    assert!(alone.validate().is_err());
}

/// A soft-delete struct that reads `deleted_at`, and indexes it; its rows
/// are only written here.
#[allow(dead_code)]
#[derive(pgactor::Entity)]
#[pgactor(soft_delete, index(deleted_at))]
struct Page {
    id: Uuid,
    #[pgactor(unique)]
    slug: String,
    deleted_at: Option<DateTime<Utc>>,
}

/// A soft-delete struct that does not read it.
#[allow(dead_code)]
#[derive(pgactor::Entity)]
#[pgactor(soft_delete)]
struct Memo {
    body: String,
}

/// Without `soft_delete`, `deleted_at` is a field like any other.
#[allow(dead_code)]
#[derive(pgactor::Entity)]
struct Plain {
    deleted_at: Option<DateTime<Utc>>,
}

#[test]
fn soft_delete_is_the_model_written_by_hand_and_deleted_at_is_the_adapter_s() {
    assert_eq!(
        Page::model(),
        Model::new("Page")
            .field(Field::new("slug", FieldType::Text).unique())
            .index(Index::on(["deleted_at"]))
            .soft_delete()
    );
    assert_eq!(
        Memo::model(),
        Model::new("Memo")
            .field(Field::new("body", FieldType::Text))
            .soft_delete()
    );
    assert_eq!(
        Plain::model(),
        Model::new("Plain").field(Field::new("deleted_at", FieldType::Timestamptz).nullable())
    );
    let page = Page {
        id: Uuid::nil(),
        slug: "a".into(),
        deleted_at: Some(Utc::now()),
    };
    let record = page.to_record();
    assert!(record.value("deleted_at").is_none(), "{record:?}");
    assert_eq!(Page::DELETED_AT.name(), pgactor::DELETED_AT);
    Registry::new()
        .with_entity::<Page>()
        .unwrap()
        .with_entity::<Memo>()
        .unwrap();
}

/// A searchable struct: text fields in declared order, one of them
/// stored as its text, in the `simple` language; its rows are only
/// written here.
#[allow(dead_code)]
#[derive(pgactor::Entity)]
#[pgactor(search_language = "simple")]
struct Recipe {
    id: Uuid,
    #[pgactor(searchable, varchar = 80)]
    title: String,
    #[pgactor(searchable)]
    steps: Option<String>,
    #[pgactor(searchable, text)]
    cuisine: Side,
    servings: i64,
}

/// Searchable in the default language.
#[allow(dead_code)]
#[derive(pgactor::Entity)]
struct Tip {
    #[pgactor(searchable)]
    body: String,
}

#[test]
fn searchable_fields_and_the_language_are_the_model_written_by_hand() {
    assert_eq!(
        Recipe::model(),
        Model::new("Recipe")
            .field(Field::new("title", FieldType::Varchar(80)).searchable())
            .field(Field::new("steps", FieldType::Text).nullable().searchable())
            .field(Field::new("cuisine", FieldType::Text).searchable())
            .field(Field::new("servings", FieldType::I64))
            .search_language("simple")
    );
    assert_eq!(Tip::model().search_language_name(), "english");
    assert_eq!(
        Tip::model(),
        Model::new("Tip").field(Field::new("body", FieldType::Text).searchable())
    );
    Registry::new()
        .with_entity::<Recipe>()
        .unwrap()
        .with_entity::<Tip>()
        .unwrap();
}
