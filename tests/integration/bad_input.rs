//! Bad input is refused with `ErrorKind::InvalidInput` before any SQL is
//! sent, and no string a caller passes can inject SQL.
//!
//! "No SQL sent" is proved from outside, two ways: pg_stat_statements counts
//! every completed statement naming the test's schema, and pg_stat_activity
//! shows when each of the adapter's connections (found by a per-test
//! `application_name`) last started a statement, which also catches
//! statements the server rejected (pg_stat_statements counts only those that
//! complete). Each check is paired with a valid call that the same witness
//! does see.

use chrono::Utc;
use pgactor::{
    Db, Error, ErrorKind, Field, FieldType, Filter, Model, OpenOptions, PoolConfig, Query, Record,
    SessionConfig, Value,
};
use serde_json::json;
use uuid::Uuid;

use crate::support::db::{
    like_literal, registry, tagged_options, tagged_session, unique_app_name, unique_schema,
};
use crate::support::logs::capturing_logs;
use crate::support::observer::{
    canary_table, last_statement_starts, observer, schema_exists, session_pids,
    statements_containing, tables_in,
};
use crate::support::topology::primary_url;

const MODEL: &str = "Product";

fn product_model() -> Model {
    Model::new(MODEL)
        .field(Field::new("sku", FieldType::Varchar(8)))
        .field(Field::new("name", FieldType::Text))
        .field(Field::new("small", FieldType::I16).default_value(0_i16))
        .field(Field::new("medium", FieldType::I32).default_value(0_i32))
        .field(Field::new("doc", FieldType::Json).nullable())
        .field(Field::new("note", FieldType::Text).nullable())
}

/// An adapter on the primary, its schema, and a witness of what it sends.
struct Fixture {
    db: Db,
    schema: String,
    app: String,
    obs: tokio_postgres::Client,
}

/// What the server has seen of the adapter: completed statements naming the
/// schema, and the start of the last statement on each adapter connection.
#[derive(Debug, PartialEq)]
struct Seen {
    statements: i64,
    last_starts: Vec<(i32, String)>,
}

impl Fixture {
    /// One connection per pool, so the adapter's connections stay the same.
    async fn open(prefix: &str) -> Fixture {
        let schema = unique_schema(prefix);
        let app = unique_app_name("bad_input");
        let one = PoolConfig {
            max_open: Some(1),
            ..PoolConfig::default()
        };
        let db = tagged_options(&primary_url(), [product_model()], one, &schema, &app)
            .open()
            .await
            .expect("open");
        let obs = observer(&primary_url()).await;
        canary_table(&obs, &schema).await;
        Fixture {
            db,
            schema,
            app,
            obs,
        }
    }

    async fn seen(&self) -> Seen {
        Seen {
            statements: statements_containing(&self.obs, &format!("\"{}\"", self.schema)).await,
            last_starts: last_statement_starts(&self.obs, &self.app).await,
        }
    }

    /// Check that every result is InvalidInput and that none of them sent
    /// SQL; then that a valid call is seen, so the witness works.
    async fn assert_refused_without_sql(
        &self,
        cases: Vec<(String, pgactor::Result<()>)>,
        before: Seen,
    ) {
        for (label, result) in cases {
            let err = result.expect_err(&label);
            assert_invalid_input(&err, &label);
        }
        let now = self.seen().await;
        // pg_stat_statements may evict entries when full, never add any.
        assert!(
            now.statements <= before.statements,
            "refused input sent SQL: {before:?} -> {now:?}"
        );
        assert_eq!(
            now.last_starts, before.last_starts,
            "refused input sent SQL"
        );
        self.db.list(MODEL, Query::new()).await.expect("valid list");
        let after = self.seen().await;
        assert!(
            after.statements > now.statements,
            "pg_stat_statements sees the adapter"
        );
        assert_ne!(
            after.last_starts, now.last_starts,
            "pg_stat_activity sees the adapter"
        );
    }

    /// The canary table and the model's table are still there.
    async fn assert_tables_intact(&self) {
        assert_eq!(
            tables_in(&self.obs, &self.schema).await,
            ["canary", "product"]
        );
    }

    async fn create(&self, record: Record) -> pgactor::Result<Record> {
        self.db.create(MODEL, record).await
    }

    async fn list(&self, query: Query) -> pgactor::Result<pgactor::Page> {
        self.db.list(MODEL, query).await
    }
}

fn assert_invalid_input(err: &Error, label: &str) {
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{label}: {err:?}");
    assert_eq!(
        (err.http_status(), err.code()),
        (400, "INVALID_INPUT"),
        "{label}"
    );
    assert!(
        err.sqlstate().is_none(),
        "{label}: refused by the server, not the adapter"
    );
    assert!(!err.to_string().is_empty(), "{label}: a message says why");
}

fn valid() -> Record {
    Record::new().with("sku", "A-1").with("name", "widget")
}

fn deep_filter(levels: usize) -> Filter {
    (0..levels).fold(Filter::is_null("note"), |f, _| Filter::Or(vec![f]))
}

#[tokio::test]
async fn bad_writes_are_refused_without_sending_sql() {
    let fx = Fixture::open("bad_write").await;
    let row = fx.create(valid()).await.expect("a valid row");
    let id: Uuid = row.get("id").expect("id");
    let bad_creates = [
        ("unknown field", valid().with("colour", "red")),
        ("wrong value type", valid().with("medium", "5")),
        ("NUL byte in text", valid().with("name", "a\0b")),
        (
            "NUL in a JSON string",
            valid().with("doc", json!({"k": ["x\u{0}"]})),
        ),
        (
            "NUL in a JSON key",
            valid().with("doc", json!({"k\u{0}": 1})),
        ),
        (
            "explicit NULL into NOT NULL",
            valid().with("name", Value::Null),
        ),
        ("missing required field", Record::new().with("sku", "A-2")),
        ("varchar too long", valid().with("sku", "123456789")),
        (
            "varchar too long in characters",
            valid().with("sku", "ééééééééé"),
        ),
        ("i16 out of range", valid().with("small", 32_768_i32)),
        ("i16 out of range below", valid().with("small", -32_769_i64)),
        (
            "i32 out of range",
            valid().with("medium", i64::from(i32::MAX) + 1),
        ),
        ("setting created_at", valid().with("created_at", Utc::now())),
    ];
    let bad_patches: [(&str, &str, Value); 6] = [
        ("unknown field", "colour", "red".into()),
        ("wrong value type", "name", 5_i64.into()),
        ("NUL byte in text", "note", "\0".into()),
        ("NULL into NOT NULL", "name", Value::Null),
        ("changing the id", "id", Uuid::new_v4().into()),
        ("setting updated_at", "updated_at", Utc::now().into()),
    ];

    let before = fx.seen().await;
    let mut cases = Vec::new();
    for (label, record) in bad_creates {
        cases.push((
            format!("create: {label}"),
            fx.create(record).await.map(drop),
        ));
    }
    for (label, field, value) in bad_patches {
        let patch = Record::new().with(field, value);
        let result = fx.db.update(MODEL, id, patch).await.map(drop);
        cases.push((format!("update: {label}"), result));
    }
    let by_id = [
        ("unknown model", fx.db.create("Nope", valid()).await),
        ("id of the wrong type", fx.db.read(MODEL, 42_i64).await),
        ("null id", fx.db.delete(MODEL, Value::Null).await),
    ];
    cases.extend(by_id.map(|(label, r)| (label.to_owned(), r.map(drop))));
    fx.assert_refused_without_sql(cases, before).await;
    fx.db.close().await;
}

#[tokio::test]
async fn bad_queries_are_refused_without_sending_sql() {
    let fx = Fixture::open("bad_query").await;
    let bad_filters = [
        ("unknown field", Filter::eq("colour", "red")),
        (
            "unknown nested field",
            Filter::And(vec![Filter::is_null("x")]),
        ),
        ("wrong value type", Filter::eq("medium", "5")),
        (
            "wrong type in IN",
            Filter::is_in("medium", [Value::from(1), "2".into()]),
        ),
        ("NULL compared with =", Filter::eq("note", Value::Null)),
        ("NULL in an IN list", Filter::is_in("note", [Value::Null])),
        ("NUL byte in a value", Filter::eq("name", "a\0")),
        ("NUL byte in a LIKE pattern", Filter::like("name", "%\0%")),
        ("LIKE on a number", Filter::like("medium", "1%")),
        ("out of range for i16", Filter::eq("small", 40_000)),
        ("varchar too long", Filter::eq("sku", "123456789")),
        (
            "more than 65,535 bind parameters",
            Filter::Or((0..70_000).map(|i| Filter::eq("medium", i)).collect()),
        ),
        ("nested 100 deep", deep_filter(100)),
        ("nested 33 deep", deep_filter(33)),
    ];
    let bad_queries = [
        ("unknown sort field", Query::new().sort_asc("colour")),
        ("a limit past i64", Query::new().limit(u64::MAX)),
        ("an offset past i64", Query::new().offset(u64::MAX)),
    ];

    let before = fx.seen().await;
    let mut cases = Vec::new();
    for (label, filter) in bad_filters {
        let result = fx.list(Query::new().filter(filter)).await.map(drop);
        cases.push((format!("filter: {label}"), result));
    }
    for (label, query) in bad_queries {
        cases.push((label.to_owned(), fx.list(query).await.map(drop)));
    }
    let unknown = fx.db.list("Nope", Query::new()).await.map(drop);
    cases.push(("unknown model".to_owned(), unknown));
    fx.assert_refused_without_sql(cases, before).await;
    fx.list(Query::new().filter(deep_filter(32)))
        .await
        .expect("32 levels of nesting are allowed");
    fx.db.close().await;
}

/// Strings an attacker would try, each aimed at the canary table.
fn payloads(schema: &str) -> Vec<String> {
    let canary = format!("\"{schema}\".canary");
    vec![
        format!("'; DROP TABLE {canary}; --"),
        format!("\"; DROP TABLE {canary}; --"),
        "x' OR '1'='1".into(),
        format!("a\\'; DROP TABLE {canary}; --"),
        format!("$$; DROP TABLE {canary}; $$"),
        format!("); DROP TABLE {canary}; --"),
    ]
}

#[tokio::test]
async fn injected_identifiers_are_refused_without_sending_sql() {
    let fx = Fixture::open("inject_ident").await;
    let row = fx.create(valid()).await.expect("a valid row");
    let id: Uuid = row.get("id").expect("id");
    let before = fx.seen().await;
    let mut cases = Vec::new();
    for payload in payloads(&fx.schema) {
        let field = format!("name{payload}");
        let query = |filter| Query::new().filter(filter);
        let results = [
            (
                "model in create",
                fx.db.create(&payload, valid()).await.map(drop),
            ),
            (
                "model in list",
                fx.db.list(&payload, Query::new()).await.map(drop),
            ),
            ("model in read", fx.db.read(&payload, id).await.map(drop)),
            (
                "field in create",
                fx.create(valid().with(&field, "x")).await.map(drop),
            ),
            (
                "field in update",
                fx.db
                    .update(MODEL, id, Record::new().with(&field, "x"))
                    .await
                    .map(drop),
            ),
            (
                "field in =",
                fx.list(query(Filter::eq(&field, "x"))).await.map(drop),
            ),
            (
                "field in IN",
                fx.list(query(Filter::is_in(&field, ["x"]))).await.map(drop),
            ),
            (
                "field in LIKE",
                fx.list(query(Filter::like(&field, "x"))).await.map(drop),
            ),
            (
                "field in IS NULL",
                fx.list(query(Filter::is_null(&field))).await.map(drop),
            ),
            (
                "field in sort",
                fx.list(Query::new().sort_desc(&field)).await.map(drop),
            ),
        ];
        cases.extend(results.map(|(label, r)| (format!("{label}: {payload}"), r)));
    }
    fx.assert_refused_without_sql(cases, before).await;
    fx.assert_tables_intact().await;
    fx.db.close().await;
}

#[tokio::test]
async fn injected_values_are_bound_and_stored_literally() {
    let fx = Fixture::open("inject_value").await;
    for payload in payloads(&fx.schema) {
        let created = fx
            .create(
                valid()
                    .with("name", payload.as_str())
                    .with("note", payload.as_str()),
            )
            .await
            .expect("create");
        let id: Uuid = created.get("id").expect("id");
        assert_eq!(created.get::<String>("name").expect("name"), payload);

        let patch = Record::new().with("note", format!("{payload}{payload}"));
        let updated = fx.db.update(MODEL, id, patch).await.expect("update");
        assert_eq!(
            updated.get::<String>("note").expect("note"),
            format!("{payload}{payload}")
        );

        let sql = format!("SELECT name FROM \"{}\".product WHERE id = $1", fx.schema);
        let stored: String = fx
            .obs
            .query_one(&sql, &[&id])
            .await
            .expect("observe")
            .get(0);
        assert_eq!(stored, payload, "stored literally");

        for filter in [
            Filter::eq("name", payload.as_str()),
            Filter::is_in("name", [payload.as_str()]),
            Filter::like("name", like_literal(&payload)),
            Filter::ilike("note", format!("%{}%", like_literal(&payload))),
        ] {
            let page = fx
                .list(Query::new().filter(filter.clone()))
                .await
                .expect("list");
            let found: Vec<Uuid> = page.rows.iter().map(|r| r.get("id").expect("id")).collect();
            assert_eq!(found, [id], "{filter:?} matches the row literally");
        }
        fx.assert_tables_intact().await;
    }
    let page = fx.list(Query::new()).await.expect("list");
    assert_eq!(page.total, Some(payloads(&fx.schema).len() as u64));
    fx.db.close().await;
}

#[tokio::test]
async fn injected_session_settings_are_a_config_error_and_create_nothing() {
    let obs = observer(&primary_url()).await;
    let canary = unique_schema("inject_schema");
    canary_table(&obs, &canary).await;
    let in_schema = |schema: String| SessionConfig {
        schema: Some(schema),
        ..SessionConfig::default()
    };
    let cases = [
        in_schema(format!("x\"; DROP SCHEMA \"{canary}\" CASCADE; --")),
        in_schema(format!("{canary}'; DROP TABLE canary; --")),
        in_schema("public, pg_catalog".into()),
        in_schema("sch ema".into()),
        SessionConfig {
            time_zone: Some(format!("UTC'; DROP SCHEMA \"{canary}\" CASCADE; --")),
            ..in_schema(unique_schema("inject_tz"))
        },
    ];
    for session in cases {
        let schema = session.schema.clone().unwrap_or_default();
        let err = OpenOptions::new(primary_url())
            .registry(registry([product_model()]))
            .session(session.clone())
            .open()
            .await
            .expect_err(&format!("{session:?}"));
        assert_eq!(err.kind(), ErrorKind::Config, "{session:?}: {err:?}");
        assert!(
            !schema_exists(&obs, &schema).await,
            "{session:?}: no schema created"
        );
    }
    assert_eq!(
        tables_in(&obs, &canary).await,
        ["canary"],
        "the canary survived"
    );
}

#[tokio::test]
async fn an_application_name_with_quotes_is_stored_literally() {
    let name = format!(
        "it's \"{}\"; DROP TABLE x; --",
        &Uuid::new_v4().simple().to_string()[..8]
    );
    let schema = unique_schema("inject_app");
    let db = OpenOptions::new(primary_url())
        .registry(registry([product_model()]))
        .session(tagged_session(&schema, &name))
        .open()
        .await
        .expect("open");
    db.list(MODEL, Query::new()).await.expect("list");
    let obs = observer(&primary_url()).await;
    assert!(
        !session_pids(&obs, &name).await.is_empty(),
        "the adapter's sessions carry the name as given"
    );
    db.close().await;
}

#[tokio::test]
async fn a_refused_value_is_never_quoted_in_the_error() {
    let f = Fixture::open("bad_quoted").await;
    let cases = [
        ("32768", valid().with("small", 32_768_i32)),
        ("-32769", valid().with("small", -32_769_i64)),
        (
            "2147483648",
            valid().with("medium", i64::from(i32::MAX) + 1),
        ),
    ];
    for (value, record) in cases {
        let err = f.db.create(MODEL, record).await.expect_err(value);
        assert_invalid_input(&err, value);
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(value), "the value shows: {shown}");
    }
    let filter = Filter::eq("small", 40_000);
    let err =
        f.db.list(MODEL, Query::new().filter(filter))
            .await
            .expect_err("out of range");
    assert!(!format!("{err} {err:?}").contains("40000"), "{err:?}");
    // Through serde: a number past i64 for an integer field.
    let model = product_model();
    let err = Record::from_serde(&model, &json!({"small": u64::MAX})).expect_err("out of range");
    assert!(!err.to_string().contains(&u64::MAX.to_string()), "{err}");
    f.db.close().await;
}

#[tokio::test]
async fn a_huge_name_is_quoted_and_logged_only_in_part() {
    let f = Fixture::open("bad_huge_name").await;
    let huge = "n".repeat(100_000);
    let (unknown_model, logged) = capturing_logs(f.db.read(&huge, Uuid::new_v4())).await;
    let unknown_model = unknown_model.expect_err("unknown");
    assert!(logged.contains("db.collection.name"), "{logged}");
    assert!(
        !logged.contains(&"n".repeat(61)),
        "the span holds the whole name"
    );
    let unknown_field =
        f.db.list(MODEL, Query::new().filter(Filter::eq(&huge, 1)))
            .await
            .expect_err("unknown");
    let missing = Record::new().get::<i64>(&huge).expect_err("missing");
    for err in [unknown_model, unknown_field, missing] {
        let shown = err.to_string();
        assert!(
            shown.len() < 200,
            "{} bytes: {}…",
            shown.len(),
            &shown[..200]
        );
        assert!(shown.contains("(100000 bytes)"), "{shown}");
    }
    f.db.close().await;
}
