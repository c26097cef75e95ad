//! `timestamp`, `time`, `inet` and text-backed enums, end to end: a model
//! declared at run time (written and read as `Record`s) and the same
//! columns as a derived struct, each created by AutoMigrate, written, read
//! back, filtered on, and migrated again without drift.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use pgactor::{
    AsText, Db, Entity, ErrorKind, Field, FieldType, Filter, Model, Query, Record, SessionConfig,
    Sql, Value,
};
use uuid::Uuid;

use crate::support::db::{ids_matching, registry, typed_ids_matching, unique_schema};
use crate::support::topology::primary_url;

/// A side of an order, stored as its text.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Side {
    Buy,
    Sell,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        })
    }
}

impl FromStr for Side {
    type Err = String;
    fn from_str(s: &str) -> Result<Side, String> {
        match s {
            "buy" => Ok(Side::Buy),
            "sell" => Ok(Side::Sell),
            _ => Err("expected buy or sell".into()),
        }
    }
}

/// The derived struct: every new type, plain and nullable.
#[derive(Debug, Clone, PartialEq, pgactor::Entity)]
#[pgactor(model = "TypedVisit", index(at))]
struct Visit {
    id: Uuid,
    at: NaiveDateTime,
    opens: NaiveTime,
    from: IpAddr,
    #[pgactor(text)]
    side: Side,
    left: Option<NaiveDateTime>,
    closes: Option<NaiveTime>,
    via: Option<IpAddr>,
    #[pgactor(text, varchar = 8)]
    prior: Option<Side>,
}

/// The same columns declared at run time.
fn runtime_model() -> Model {
    Model::new("Visit")
        .field(Field::new("at", FieldType::Timestamp))
        .field(Field::new("opens", FieldType::Time))
        .field(Field::new("from", FieldType::Inet))
        .field(Field::new("side", FieldType::Text))
        .field(Field::new("left", FieldType::Timestamp).nullable())
        .field(Field::new("closes", FieldType::Time).nullable())
        .field(Field::new("via", FieldType::Inet).nullable())
        .field(Field::new("prior", FieldType::Varchar(8)).nullable())
        .index(pgactor::Index::on(["at"]))
}

/// Open on the primary in a fresh schema, its session time zone not UTC
/// (a `timestamp` must not move with it).
async fn open(schema: &str) -> Db {
    pgactor::OpenOptions::new(primary_url())
        .registry(registry([runtime_model(), Visit::model()]))
        .session(SessionConfig {
            schema: Some(schema.to_owned()),
            time_zone: Some("America/St_Johns".into()),
            ..SessionConfig::default()
        })
        .open()
        .await
        .expect("open")
}

fn at(day: u32, h: u32, micro: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2025, 7, day)
        .and_then(|d| d.and_hms_micro_opt(h, 15, 30, micro))
        .expect("timestamp")
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("address")
}

/// Three visits: different days, opening times, addresses and sides.
fn visits() -> Vec<Visit> {
    let visit = |day, from: &str, side, prior| Visit {
        id: Uuid::nil(),
        at: at(day, 8 + day, 123_456),
        opens: at(day, 8 + day, 250).time(),
        from: ip(from),
        side,
        left: (day != 3).then(|| at(day, 20, 0)),
        closes: (day == 1).then(|| at(day, 18, 0).time()),
        via: (day == 2).then(|| ip("2001:db8::1")),
        prior,
    };
    vec![
        visit(1, "192.0.2.1", Side::Buy, None),
        visit(2, "2001:db8::7", Side::Sell, Some(Side::Buy)),
        visit(3, "198.51.100.9", Side::Buy, Some(Side::Sell)),
    ]
}

async fn runtime_ids(db: &Db, filter: Filter) -> Vec<Uuid> {
    ids_matching(db, "Visit", filter).await
}

async fn typed_ids(db: &Db, filter: Filter) -> Vec<Uuid> {
    typed_ids_matching(db, filter, |row: &Visit| row.id).await
}

#[test]
fn the_derived_columns_are_the_runtime_models() {
    assert_eq!(Visit::model().fields(), runtime_model().fields());
}

#[tokio::test]
async fn records_write_read_and_filter_timestamps_times_addresses_and_enum_text() {
    let db = open(&unique_schema("coltypes_rt")).await;
    let mut ids = Vec::new();
    for v in visits() {
        let record = Record::new()
            .with("at", v.at)
            .with("opens", v.opens)
            .with("from", v.from)
            .with("side", AsText(v.side))
            .with("left", v.left)
            .with("closes", v.closes)
            .with("via", v.via)
            .with("prior", v.prior.map(AsText));
        let created = db.create("Visit", record).await.expect("create");
        let id: Uuid = created.get("id").expect("id");
        let read = db.read("Visit", id).await.expect("read");
        assert_eq!(read.get::<NaiveDateTime>("at").unwrap(), v.at, "µs kept");
        assert_eq!(read.get::<NaiveTime>("opens").unwrap(), v.opens);
        assert_eq!(read.get::<IpAddr>("from").unwrap(), v.from);
        assert_eq!(read.get::<String>("side").unwrap(), v.side.to_string());
        assert_eq!(read.get::<Option<NaiveDateTime>>("left").unwrap(), v.left);
        assert_eq!(read.get::<Option<NaiveTime>>("closes").unwrap(), v.closes);
        assert_eq!(read.get::<Option<IpAddr>>("via").unwrap(), v.via);
        assert_eq!(
            read.get::<Option<String>>("prior").unwrap(),
            v.prior.map(|p| p.to_string())
        );
        // JSON, as serde writes the Rust types.
        assert_eq!(
            read.value("at").map(Value::to_json),
            Some(serde_json::to_value(v.at).unwrap())
        );
        assert_eq!(
            read.value("from").map(Value::to_json),
            Some(serde_json::to_value(v.from).unwrap())
        );
        ids.push(id);
    }
    let (a, b, c) = (ids[0], ids[1], ids[2]);
    let v = visits();

    assert_eq!(runtime_ids(&db, Filter::eq("at", v[1].at)).await, [b]);
    assert_eq!(runtime_ids(&db, Filter::lt("at", v[2].at)).await, [a, b]);
    assert_eq!(runtime_ids(&db, Filter::eq("opens", v[0].opens)).await, [a]);
    assert_eq!(runtime_ids(&db, Filter::lt("opens", v[1].opens)).await, [a]);
    assert_eq!(runtime_ids(&db, Filter::eq("from", v[1].from)).await, [b]);
    assert_eq!(
        runtime_ids(&db, Filter::is_in("from", [v[0].from, v[2].from])).await,
        [a, c]
    );
    assert_eq!(
        runtime_ids(&db, Filter::eq("side", AsText(Side::Buy))).await,
        [a, c]
    );
    assert_eq!(runtime_ids(&db, Filter::is_null("via")).await, [a, c]);
    assert_eq!(
        runtime_ids(&db, Filter::eq("prior", AsText(Side::Sell))).await,
        [c]
    );

    // A value of another type is refused before anything is sent.
    let err = db
        .create(
            "Visit",
            Record::new()
                .with("at", "2025-07-01T00:00:00")
                .with("opens", v[0].opens)
                .with("from", v[0].from)
                .with("side", "buy"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

#[tokio::test]
async fn a_derived_struct_writes_reads_and_filters_the_same_columns() {
    let db = open(&unique_schema("coltypes_typed")).await;
    let visits_of = db.typed::<Visit>();
    let mut stored = Vec::new();
    for v in visits() {
        let created = visits_of.create(&v).await.expect("create");
        assert_eq!(
            Visit {
                id: created.id,
                ..v
            },
            created
        );
        let read = visits_of.read(created.id).await.expect("read");
        assert_eq!(read, created);
        stored.push(read);
    }
    let [a, b, c] = [stored[0].id, stored[1].id, stored[2].id];
    let v = &stored;
    // Many rows decode as each one does alone.
    let mut listed = visits_of.list(Query::new()).await.expect("list").rows;
    listed.sort_by_key(|visit| visit.id);
    let mut each = stored.clone();
    each.sort_by_key(|visit| visit.id);
    assert_eq!(listed, each);

    assert_eq!(typed_ids(&db, Visit::AT.eq(v[1].at)).await, [b]);
    assert_eq!(typed_ids(&db, Visit::AT.lt(v[2].at)).await, [a, b]);
    assert_eq!(typed_ids(&db, Visit::OPENS.eq(v[2].opens)).await, [c]);
    assert_eq!(typed_ids(&db, Visit::OPENS.lt(v[1].opens)).await, [a]);
    assert_eq!(typed_ids(&db, Visit::FROM.eq(v[0].from)).await, [a]);
    assert_eq!(typed_ids(&db, Visit::SIDE.eq(Side::Sell)).await, [b]);
    assert_eq!(
        typed_ids(&db, Visit::SIDE.is_in([Side::Buy, Side::Sell])).await,
        [a, b, c]
    );
    assert_eq!(typed_ids(&db, Visit::PRIOR.eq(Side::Buy)).await, [b]);
    assert_eq!(typed_ids(&db, Filter::is_null(Visit::PRIOR)).await, [a]);
    assert_eq!(typed_ids(&db, Visit::LEFT.ge(v[1].at)).await, [b]);

    // The enum's column written by hand: a text the type does not parse
    // is a Decode error naming the column, not a panic.
    let bad = Sql::new("UPDATE typed_visit SET side = 'hold' WHERE id = $1").bind(b);
    assert_eq!(db.execute(bad).await.expect("update"), 1);
    let err = visits_of.read(b).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode, "{err}");
    assert!(err.to_string().contains("side"), "{err}");
    assert!(err.to_string().contains("expected buy or sell"), "{err}");
    // The same error from a row of a page.
    let err = visits_of.list(Query::new()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode, "{err}");
    assert!(err.to_string().contains("expected buy or sell"), "{err}");
}

#[tokio::test]
async fn timestamp_time_and_inet_defaults_are_written_by_the_server() {
    let stamp = at(1, 9, 500);
    let model = Model::new("Stamped")
        .field(Field::new("note", FieldType::Text))
        .field(Field::new("at", FieldType::Timestamp).default_value(stamp))
        .field(Field::new("opens", FieldType::Time).default_value(stamp.time()))
        .field(Field::new("from", FieldType::Inet).default_value(ip("::1")))
        .field(Field::new("side", FieldType::Text).default_value(AsText(Side::Sell)));
    let db = pgactor::OpenOptions::new(primary_url())
        .registry(registry([model]))
        .session(SessionConfig {
            schema: Some(unique_schema("coltypes_default")),
            ..SessionConfig::default()
        })
        .open()
        .await
        .expect("open");
    let created = db
        .create("Stamped", Record::new().with("note", "defaults"))
        .await
        .expect("create");
    assert_eq!(created.get::<NaiveDateTime>("at").unwrap(), stamp);
    assert_eq!(created.get::<NaiveTime>("opens").unwrap(), stamp.time());
    assert_eq!(created.get::<IpAddr>("from").unwrap(), ip("::1"));
    assert_eq!(created.get::<String>("side").unwrap(), "sell");
}

#[tokio::test]
async fn automigrate_finds_no_drift_in_the_new_types() {
    let schema = unique_schema("coltypes_mig");
    let first = open(&schema).await;
    let report = first.migrate().await.expect("migrate");
    assert!(report.statements.is_empty(), "{:?}", report.statements);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    // A second adapter opening on the tables the first made.
    let second = open(&schema).await;
    let report = second.migrate().await.expect("migrate");
    assert!(report.statements.is_empty(), "{:?}", report.statements);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}
