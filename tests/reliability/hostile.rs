//! 8a: one corpus of hostile input through every public entry point
//! (catalogue L1–L10), each case with the answer it must get.
//!
//! Entry points: `Registry::register` and `Record::from_serde` (no server),
//! `OpenOptions::open` with bad DSNs, sslmodes, schemas and pool or session
//! settings, every `Db` operation (`create`, `read`, `update`, `delete`,
//! `list`, `subscribe`), the supervisor actor (`Db::actor`), and a `Tx`.
//! Input: names with quotes, semicolons, dots, homoglyphs, invisible
//! characters, 64 bytes (two of them equal in their first 63), empty; NUL
//! bytes; bytes where text is expected; 10 MB strings; varchar(n) + 1;
//! NaN and infinities; integers and timestamps out of range; a 70,000-value
//! IN list; the bind-parameter limit ±1; SQL and LIKE metacharacters as
//! values.
//!
//! Every case must answer as listed: success, or an error of the listed
//! `Error::code()`. A case refused by the adapter must send nothing, which
//! is proved from outside per case: completed statements naming the test's
//! schema (pg_stat_statements), the start of the last statement of each of
//! the adapter's sessions (pg_stat_activity, by a unique
//! application_name), and connections accepted by a listening socket that
//! the open cases' DSNs point at. Cases that must reach the server must
//! move that witness, so it is seen to work. Panics anywhere in the process
//! (caller, actors, spawned tasks) are counted by a panic hook: 0.
//!
//! What the adapter does, as found (the answers below assert it):
//! - NaN, +Infinity and -Infinity are stored in real and double precision
//!   fields as PostgreSQL's NaN and Infinity and read back as such; an
//!   `=` filter on NaN matches the NaN rows (PostgreSQL orders NaN as equal
//!   to itself, above every number). `numeric` (Decimal) cannot hold them:
//!   refused client-side.
//! - Timestamps and dates before 4713 BC (chrono reaches 262,143 BC) are
//!   sent and refused by the server, 22008, as INVALID_INPUT; inside a
//!   transaction that aborts it. `infinity` written by another client reads
//!   back as a DECODE error, not a panic; a delete of that row answers
//!   DECODE too, although it was applied (the decode fails on the row the
//!   DELETE returned).
//! - A jsonb tree nested deeper than `MAX_JSON_DEPTH` is refused before it
//!   is sent; a document 5,000 levels deep, written as `Value::JsonText`,
//!   is stored and lists back as that text.
//! - A 10 MB string is stored in a text field; in a field with a unique
//!   index the server refuses it (54000, index row too large), answered as
//!   DATABASE.
//! - There is no "contains" filter: LIKE patterns are patterns, so `%` and
//!   `_` are wildcards unless escaped; an `=` filter is always literal.
//! - A 70,000-value IN list is one array parameter and works; 65,535 bind
//!   parameters work and 65,536 are refused client-side.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use pgactor::{
    Call, DbMsg, Field, FieldType, Filter, Index, Model, Notification, OpenOptions, PoolConfig,
    Query, QueryBounds, ReadRequest, Record, Registry, SessionConfig, TxOptions, Value,
};
use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde_json::json;
use uuid::Uuid;

use crate::figures::{self, Figures};
use crate::support::db::{like_literal, tagged_options, unique_schema};
use crate::support::observer::{
    canary_table, last_statement_starts, observer, statements_containing, tables_in,
};
use crate::support::topology::primary_url;

/// The model every case goes through: one nullable field per type.
pub const MODEL: &str = "Hostile";

/// A model whose name is hostile but whose table name is plain: the model
/// name is a lookup key only, never SQL.
const ODD_MODEL: &str = "it's \"odd\"; DROP TABLE canary; --";

/// The password of every DSN case; no error may contain it.
const CANARY: &str = "CANARY-p@ss:w/rd%7f3c";
const CANARY_ENCODED: &str = "CANARY-p%40ss%3Aw%2Frd%257f3c";

/// A 63-byte field name; two of them make index names that are equal in
/// their first 63 bytes.
fn long_field(tag: char) -> String {
    format!("c{}{tag}", "x".repeat(61))
}

/// The model: `name` (text), `tag` (text, unique), `code` (varchar(8)), one
/// field per other type, and two 63-byte fields with an index each.
pub fn hostile_model() -> Model {
    let field = |name: &str, ty| Field::new(name, ty).nullable();
    Model::new(MODEL)
        .field(field("name", FieldType::Text))
        .field(field("tag", FieldType::Text).unique())
        .field(field("code", FieldType::Varchar(8)))
        .field(field("flag", FieldType::Bool))
        .field(field("small", FieldType::I16))
        .field(field("medium", FieldType::I32))
        .field(field("big", FieldType::I64))
        .field(field("ratio32", FieldType::F32))
        .field(field("ratio", FieldType::F64))
        .field(field("amount", FieldType::Numeric))
        .field(field("blob", FieldType::Bytes))
        .field(field("ref_id", FieldType::Uuid))
        .field(field("at", FieldType::Timestamptz))
        .field(field("day", FieldType::Date))
        .field(field("doc", FieldType::Json))
        .field(field(&long_field('a'), FieldType::Text))
        .field(field(&long_field('b'), FieldType::Text))
        .index(Index::on([long_field('a')]))
        .index(Index::on([long_field('b')]))
}

/// Panics anywhere in this process so far (a hook counts them, then lets
/// the default hook print them).
pub fn panics() -> u64 {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            COUNT.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
    COUNT.load(Ordering::SeqCst)
}

/// Identifiers no SQL may see: each is refused wherever a name is taken.
fn hostile_names() -> Vec<(&'static str, String)> {
    let long = long_field('a');
    vec![
        ("double quote", "x\"; DROP TABLE canary; --".into()),
        ("escaped quote", "x\\\"".into()),
        ("single quote", "x'; DROP TABLE canary; --".into()),
        ("semicolon", "name;".into()),
        ("dotted", "a.b".into()),
        ("catalog", "pg_catalog.pg_authid".into()),
        ("dollar quote", "$$".into()),
        ("space", "a b".into()),
        ("empty", String::new()),
        ("cyrillic a", "n\u{430}me".into()),
        ("fullwidth", "\u{ff4e}\u{ff41}\u{ff4d}\u{ff45}".into()),
        ("zero-width space", "name\u{200b}".into()),
        ("64 bytes", "x".repeat(64)),
        ("64 bytes, same 63 as another #1", format!("{long}1")),
        ("64 bytes, same 63 as another #2", format!("{long}2")),
    ]
}

/// Values an attacker would try; stored and found literally.
fn hostile_values() -> Vec<&'static str> {
    vec![
        "' OR '1'='1",
        "'; DROP TABLE canary; --",
        "\"; DROP TABLE canary; --",
        "$$; DROP TABLE canary; $$",
        "\\'; DROP TABLE canary; --",
        "); DROP TABLE canary; --",
        "%",
        "_",
        "a%b_c",
        "\\",
        "",
    ]
}

/// `len` bytes of text that does not compress (xorshift over 62 letters
/// and digits), so an index cannot store it.
fn incompressible(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ALPHABET[(state % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

/// A socket that accepts and drops connections, counting them: the open
/// cases point their DSNs here, so "nothing dialled" is visible.
struct Trap {
    port: u16,
    dialled: Arc<AtomicU64>,
}

impl Trap {
    async fn bind() -> Trap {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the trap");
        let port = listener.local_addr().expect("trap address").port();
        let dialled = Arc::new(AtomicU64::new(0));
        let count = dialled.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                drop(socket);
            }
        });
        Trap { port, dialled }
    }

    /// A URL to the trap with the canary password and `tail` after the port.
    fn url(&self, tail: &str) -> String {
        format!(
            "postgres://app:{CANARY_ENCODED}@127.0.0.1:{}/db{tail}",
            self.port
        )
    }

    /// A key=value DSN to the trap with the canary password, then `tail`.
    fn key_value(&self, tail: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=app password='{CANARY}' {tail}",
            self.port
        )
    }
}

/// What a case must answer.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Success.
    Ok,
    /// This error code, with nothing sent to any server.
    Refused(&'static str),
    /// This error code, from a server the case reached.
    Sent(&'static str),
}

/// What the servers have seen of the adapter.
#[derive(Debug, PartialEq)]
struct Seen {
    /// Completed statements naming the schema.
    statements: i64,
    /// (pid, start of the last statement) of each adapter session.
    sessions: Vec<(i32, String)>,
    /// Connections the trap accepted.
    dialled: u64,
}

/// The adapter under test and its witnesses.
struct Fixture {
    db: pgactor::Db,
    schema: String,
    app: String,
    obs: tokio_postgres::Client,
    trap: Trap,
}

impl Fixture {
    async fn open() -> Fixture {
        let schema = unique_schema("hostile");
        let app = schema.clone();
        // One connection per pool, kept: the witness's sessions stay put.
        let one = PoolConfig {
            max_open: Some(1),
            max_idle: Some(1),
            ..PoolConfig::default()
        };
        let odd = Model::new(ODD_MODEL)
            .table_name("odd")
            .field(Field::new("name", FieldType::Text));
        // Unbounded shapes: the corpus reaches the server's own limits.
        let wide = QueryBounds {
            max_conditions: usize::MAX,
            max_or_branches: usize::MAX,
            max_list_values: usize::MAX,
            ..QueryBounds::default()
        };
        let db = tagged_options(&primary_url(), [hostile_model(), odd], one, &schema, &app)
            .query_bounds(wide)
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
            trap: Trap::bind().await,
        }
    }

    async fn seen(&self) -> Seen {
        Seen {
            statements: statements_containing(&self.obs, &self.schema).await,
            sessions: last_statement_starts(&self.obs, &self.app).await,
            dialled: self.trap.dialled.load(Ordering::SeqCst),
        }
    }

    /// Open options that reach the trap unless the input is refused first.
    fn trap_options(&self, dsn: &str) -> OpenOptions {
        OpenOptions::new(dsn).write_pool(PoolConfig {
            connect_timeout: Some(Duration::from_secs(2)),
            ..PoolConfig::default()
        })
    }
}

/// The corpus run: figures, and every case that answered wrongly.
struct Corpus<'a> {
    fx: &'a Fixture,
    figures: Figures,
    wrong: Vec<String>,
    refused_with_sql: u64,
    refused: u64,
    sent: u64,
}

impl Corpus<'_> {
    /// Run one case and check its answer and what it sent; answer its value.
    async fn case<T>(
        &mut self,
        label: &str,
        expect: Expect,
        op: impl Future<Output = pgactor::Result<T>>,
    ) -> Option<T> {
        let before = self.fx.seen().await;
        let result = op.await;
        let after = self.fx.seen().await;
        self.figures.outcome(&result);
        let moved = after != before;
        let verdict = match (expect, &result) {
            (Expect::Ok, Ok(_)) => None,
            (Expect::Refused(code), Err(e)) if e.code() == code && e.sqlstate().is_none() => {
                self.refused += 1;
                moved.then(|| {
                    self.refused_with_sql += 1;
                    format!("sent something: {before:?} -> {after:?}")
                })
            }
            (Expect::Sent(code), Err(e)) if e.code() == code => {
                self.sent += 1;
                (!moved).then(|| "the witness saw nothing".to_owned())
            }
            (_, Err(e)) => Some(format!("answered {e:?}")),
            (_, Ok(_)) => Some("succeeded".to_owned()),
        };
        if let Err(e) = &result {
            let text = format!("{e} {e:?}");
            if e.to_string().is_empty() || text.contains(CANARY) || text.contains(CANARY_ENCODED) {
                self.wrong.push(format!(
                    "{label}: message empty or shows the password: {text}"
                ));
            }
        }
        if let Some(why) = verdict {
            self.wrong
                .push(format!("{label}: expected {expect:?}; {why}"));
        }
        result.ok()
    }
}

/// A subscriber that drops what it gets: the subscribe cases need one.
struct Sink;

#[cfg_attr(feature = "async-trait", ractor::async_trait)]
impl Actor for Sink {
    type Msg = Notification;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<Notification>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

/// Ask the supervisor actor directly, as ractor code would.
async fn ask_actor(db: &pgactor::Db, req: ReadRequest) -> pgactor::Result<Record> {
    match db
        .actor()
        .call(|reply| DbMsg::Read(req, Call::here(), reply), None)
        .await
    {
        Ok(CallResult::Success(result)) => result,
        other => panic!("the supervisor did not answer: {other:?}"),
    }
}

/// Every hostile name, wherever the API takes a name.
async fn names(c: &mut Corpus<'_>, id: Uuid, sink: &ActorRef<Notification>) {
    let (db, invalid, config) = (&c.fx.db.clone(), "INVALID_INPUT", "CONFIG");
    for (what, name) in hostile_names() {
        let name = name.as_str();
        let field = Model::new("Probe").field(Field::new(name, FieldType::Text));
        let table = Model::new("Probe").table_name(name);
        let text = Record::new().with(name, "x");
        let label = |entry: &str| format!("{entry}: {what} name");
        c.case(&label("register field"), Expect::Refused(config), async {
            Registry::new().register(field)
        })
        .await;
        c.case(&label("register table"), Expect::Refused(config), async {
            Registry::new().register(table)
        })
        .await;
        c.case(&label("create model"), Expect::Refused(invalid), async {
            db.create(name, Record::new()).await
        })
        .await;
        c.case(&label("read model"), Expect::Refused(invalid), async {
            db.read(name, id).await
        })
        .await;
        c.case(&label("create field"), Expect::Refused(invalid), async {
            db.create(MODEL, text.clone()).await
        })
        .await;
        c.case(&label("update field"), Expect::Refused(invalid), async {
            db.update(MODEL, id, text.clone()).await
        })
        .await;
        c.case(
            &label("from_serde field"),
            Expect::Refused(invalid),
            async { Record::from_serde(&hostile_model(), &json!({ (name): "x" })) },
        )
        .await;
        let filters = [
            ("filter =", Filter::eq(name, "x")),
            ("filter IN", Filter::is_in(name, ["x"])),
            ("filter LIKE", Filter::like(name, "x")),
            ("filter IS NULL", Filter::is_null(name)),
            (
                "nested filter",
                Filter::is_null("name").or(Filter::is_not_null(name)),
            ),
        ];
        for (entry, filter) in filters {
            c.case(&label(entry), Expect::Refused(invalid), async {
                db.list(MODEL, Query::new().filter(filter)).await
            })
            .await;
        }
        c.case(&label("sort"), Expect::Refused(invalid), async {
            db.list(MODEL, Query::new().sort_desc(name)).await
        })
        .await;
        c.case(&label("list model"), Expect::Refused(invalid), async {
            db.list(name, Query::new()).await
        })
        .await;
        c.case(
            &label("actor read model"),
            Expect::Refused(invalid),
            async {
                let req = ReadRequest {
                    model: name.into(),
                    id: id.into(),
                };
                ask_actor(db, req).await
            },
        )
        .await;
        c.case(
            &label("subscribe channel"),
            Expect::Refused(invalid),
            async { db.subscribe(name, sink.clone()).await },
        )
        .await;
        let schema = SessionConfig {
            schema: Some(name.into()),
            ..SessionConfig::default()
        };
        let opts = c.fx.trap_options(&c.fx.trap.url("?sslmode=disable"));
        c.case(&label("open schema"), Expect::Refused(config), async {
            opts.session(schema).open().await
        })
        .await;
    }
    // A hostile model name with a plain table name is only a key.
    let odd = c
        .case("odd model name: create", Expect::Ok, async {
            db.create(ODD_MODEL, Record::new().with("name", "odd"))
                .await
        })
        .await
        .expect("odd create");
    c.case("odd model name: read", Expect::Ok, async {
        db.read(ODD_MODEL, odd.value("id").cloned().unwrap_or(Value::Null))
            .await
    })
    .await;
    // The two 63-byte fields' index names were kept apart at open.
    let long_indexes =
        c.fx.obs
            .query_one(
                "SELECT count(DISTINCT indexname) FROM pg_indexes \
             WHERE schemaname = $1 AND indexdef LIKE '%cxxxxxxxxx%'",
                &[&c.fx.schema],
            )
            .await
            .expect("pg_indexes")
            .get::<_, i64>(0);
    assert_eq!(
        long_indexes, 2,
        "index names equal in 63 bytes are kept apart"
    );
    c.case("63-byte field names", Expect::Ok, async {
        db.create(
            MODEL,
            Record::new()
                .with(long_field('a'), "a")
                .with(long_field('b'), "b"),
        )
        .await
    })
    .await;
}

/// A JSON array nested `depth` levels around `1`.
fn nested_json(depth: usize) -> serde_json::Value {
    (0..depth).fold(json!(1), |inner, _| json!([inner]))
}

/// Text: NUL bytes, bytes for text, sizes, varchar(n) + 1, jsonb depth.
async fn text(c: &mut Corpus<'_>, id: Uuid) {
    let (db, invalid) = (&c.fx.db.clone(), "INVALID_INPUT");
    let nul = "a\0b";
    let refused: Vec<(&str, Record)> = vec![
        ("NUL in text", Record::new().with("name", nul)),
        (
            "NUL in a JSON string",
            Record::new().with("doc", json!({"k": [nul]})),
        ),
        (
            "NUL in a JSON key",
            Record::new().with("doc", json!({ (nul): 1 })),
        ),
        (
            "bytes into text",
            Record::new().with("name", vec![0xff_u8, 0xfe]),
        ),
        (
            "9 characters into varchar(8)",
            Record::new().with("code", "123456789"),
        ),
        (
            "10 MB into varchar(8)",
            Record::new().with("code", "x".repeat(10 << 20)),
        ),
        (
            "jsonb nested MAX_JSON_DEPTH + 1",
            Record::new().with("doc", nested_json(pgactor::MAX_JSON_DEPTH + 1)),
        ),
    ];
    for (what, record) in refused {
        c.case(
            &format!("create: {what}"),
            Expect::Refused(invalid),
            async { db.create(MODEL, record.clone()).await },
        )
        .await;
        c.case(
            &format!("update: {what}"),
            Expect::Refused(invalid),
            async { db.update(MODEL, id, record).await },
        )
        .await;
    }
    let filters = [
        ("NUL in =", Filter::eq("name", nul)),
        ("NUL in IN", Filter::is_in("name", ["a", nul])),
        ("NUL in LIKE", Filter::like("name", "%\0%")),
        (
            "bytes compared with text",
            Filter::eq("name", vec![0xff_u8]),
        ),
        ("varchar(8) + 1 in =", Filter::eq("code", "123456789")),
    ];
    for (what, filter) in filters {
        c.case(&format!("list: {what}"), Expect::Refused(invalid), async {
            db.list(MODEL, Query::new().filter(filter)).await
        })
        .await;
    }
    c.case(
        "from_serde: bytes into text",
        Expect::Refused(invalid),
        async { Record::from_serde(&hostile_model(), &json!({"name": [255, 254]})) },
    )
    .await;

    // A document too deep for a tree is stored and read back as its text.
    let deep = format!("{}1{}", "[".repeat(5_000), "]".repeat(5_000));
    let stored = c
        .case("create: jsonb nested 5,000 as text", Expect::Ok, async {
            db.create(
                MODEL,
                Record::new().with("doc", Value::JsonText(deep.clone())),
            )
            .await
        })
        .await;
    let deep_id: Option<Value> = stored.and_then(|r| r.value("id").cloned());
    let found = c
        .case(
            "list: a row holding jsonb nested 5,000",
            Expect::Ok,
            async {
                let id = deep_id.clone().unwrap_or(Value::Null);
                db.list(MODEL, Query::new().filter(Filter::eq("id", id)))
                    .await
            },
        )
        .await;
    assert_eq!(
        found.map(|page| page.rows.first().and_then(|r| r.value("doc").cloned())),
        Some(Some(Value::JsonText(deep)))
    );

    // Invalid UTF-8 has a type of its own: bytea keeps every byte.
    let raw = vec![0xff_u8, 0xfe, 0x00, 0xc3];
    let stored = c
        .case("create: invalid UTF-8 into bytea", Expect::Ok, async {
            db.create(MODEL, Record::new().with("blob", raw.clone()))
                .await
        })
        .await;
    assert_eq!(
        stored.map(|r| r.get::<Vec<u8>>("blob").ok()),
        Some(Some(raw))
    );
    let eight = "é".repeat(8);
    c.case(
        "create: 8 two-byte characters into varchar(8)",
        Expect::Ok,
        async {
            db.create(MODEL, Record::new().with("code", eight.as_str()))
                .await
        },
    )
    .await;
    let big = "x".repeat(10 << 20);
    let stored = c
        .case("create: 10 MB into text", Expect::Ok, async {
            db.create(MODEL, Record::new().with("name", big.as_str()))
                .await
        })
        .await;
    assert_eq!(
        stored
            .and_then(|r| r.get::<String>("name").ok())
            .map(|s| s.len()),
        Some(10 << 20)
    );
    let big = incompressible(10 << 20);
    c.case(
        "create: 10 MB into a unique-indexed text field",
        Expect::Sent("DATABASE"),
        async { db.create(MODEL, Record::new().with("tag", big)).await },
    )
    .await;
}

/// Numbers: NaN and infinities, integers out of range, page bounds.
async fn numbers(c: &mut Corpus<'_>) {
    let (db, invalid) = (&c.fx.db.clone(), "INVALID_INPUT");
    for (what, f) in [
        ("NaN", f64::NAN),
        ("+Infinity", f64::INFINITY),
        ("-Infinity", f64::NEG_INFINITY),
    ] {
        let row = c
            .case(
                &format!("create: {what} into double and real"),
                Expect::Ok,
                async {
                    db.create(
                        MODEL,
                        Record::new().with("ratio", f).with("ratio32", f as f32),
                    )
                    .await
                },
            )
            .await;
        let back = row.map(|r| (r.get::<f64>("ratio").ok(), r.get::<f32>("ratio32").ok()));
        let same = |x: f64| x.to_bits() == f.to_bits() || (x.is_nan() && f.is_nan());
        assert!(
            matches!(back, Some((Some(a), Some(b))) if same(a) && same(b as f64)),
            "{what} reads back as stored: {back:?}"
        );
        c.case(
            &format!("create: {what} into numeric"),
            Expect::Refused(invalid),
            async { db.create(MODEL, Record::new().with("amount", f)).await },
        )
        .await;
    }
    let nan_rows = c
        .case("list: = NaN", Expect::Ok, async {
            db.list(MODEL, Query::new().filter(Filter::eq("ratio", f64::NAN)))
                .await
        })
        .await;
    assert_eq!(
        nan_rows.and_then(|p| p.total),
        Some(1),
        "= NaN matches the NaN row"
    );

    let out_of_range: [(&str, &str, Value); 7] = [
        ("i64 40,000 into smallint", "small", 40_000_i64.into()),
        ("i32::MIN into smallint", "small", i32::MIN.into()),
        ("i64::MAX into integer", "medium", i64::MAX.into()),
        ("2^53 + 1 into double", "ratio", ((1_i64 << 53) + 1).into()),
        ("2^24 + 1 into real", "ratio32", ((1_i64 << 24) + 1).into()),
        ("f64 into real, inexact", "ratio32", 0.1_f64.into()),
        ("text into bigint", "big", "5".into()),
    ];
    for (what, field, value) in out_of_range {
        c.case(
            &format!("create: {what}"),
            Expect::Refused(invalid),
            async {
                db.create(MODEL, Record::new().with(field, value.clone()))
                    .await
            },
        )
        .await;
        c.case(&format!("list: {what}"), Expect::Refused(invalid), async {
            db.list(MODEL, Query::new().filter(Filter::eq(field, value)))
                .await
        })
        .await;
    }
    c.case("create: i64::MIN into bigint", Expect::Ok, async {
        db.create(MODEL, Record::new().with("big", i64::MIN)).await
    })
    .await;
    c.case("list: limit past i64", Expect::Refused(invalid), async {
        db.list(MODEL, Query::new().limit(u64::MAX)).await
    })
    .await;
    c.case("list: offset past i64", Expect::Refused(invalid), async {
        db.list(MODEL, Query::new().offset(u64::MAX)).await
    })
    .await;
}

/// Dates and times: below PostgreSQL's range, at chrono's top, `infinity`.
async fn times(c: &mut Corpus<'_>) {
    let (db, invalid) = (&c.fx.db.clone(), "INVALID_INPUT");
    let ancient = NaiveDate::from_ymd_opt(-5000, 1, 1).expect("a date chrono has");
    let ancient_at = ancient.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    c.case("create: timestamp 5001 BC", Expect::Sent(invalid), async {
        db.create(MODEL, Record::new().with("at", ancient_at)).await
    })
    .await;
    c.case("create: date 5001 BC", Expect::Sent(invalid), async {
        db.create(MODEL, Record::new().with("day", ancient)).await
    })
    .await;
    c.case(
        "create: chrono's smallest date",
        Expect::Sent(invalid),
        async {
            db.create(MODEL, Record::new().with("day", NaiveDate::MIN))
                .await
        },
    )
    .await;
    c.case("list: created_at < 5001 BC", Expect::Sent(invalid), async {
        db.list(
            MODEL,
            Query::new().filter(Filter::lt("created_at", ancient_at)),
        )
        .await
    })
    .await;
    // PostgreSQL keeps microseconds.
    let top = DateTime::from_timestamp_micros(DateTime::<Utc>::MAX_UTC.timestamp_micros())
        .expect("in chrono's range");
    let row = c
        .case("create: chrono's largest timestamp", Expect::Ok, async {
            db.create(
                MODEL,
                Record::new().with("at", top).with("day", NaiveDate::MAX),
            )
            .await
        })
        .await;
    assert_eq!(
        row.and_then(|r| r.get::<DateTime<Utc>>("at").ok()),
        Some(top)
    );

    // `infinity`, written by another client, cannot be a chrono value.
    let sql = format!(
        "INSERT INTO \"{}\".hostile (id, at, day) VALUES ($1, 'infinity', '-infinity')",
        c.fx.schema
    );
    let id = Uuid::now_v7();
    c.fx.obs
        .execute(&sql, &[&id])
        .await
        .expect("insert infinity");
    c.case("read: infinity", Expect::Sent("DECODE"), async {
        db.read(MODEL, id).await
    })
    .await;
    c.case("delete: infinity", Expect::Sent("DECODE"), async {
        db.delete(MODEL, id).await
    })
    .await;
    let left =
        c.fx.obs
            .execute(
                &format!("DELETE FROM \"{}\".hostile WHERE id = $1", c.fx.schema),
                &[&id],
            )
            .await
            .expect("clean up");
    assert_eq!(
        left, 0,
        "the adapter's delete ran; only its answer was undecodable"
    );
}

/// Big lists: a 70,000-value IN list, and the bind-parameter limit ±1.
async fn lists(c: &mut Corpus<'_>) {
    let (db, invalid) = (&c.fx.db.clone(), "INVALID_INPUT");
    c.case("list: IN with 70,000 integers", Expect::Ok, async {
        db.list(
            MODEL,
            Query::new().filter(Filter::is_in("medium", 0..70_000)),
        )
        .await
    })
    .await;
    let words: Vec<String> = (0..70_000).map(|i| format!("w{i}")).collect();
    c.case("list: IN with 70,000 strings", Expect::Ok, async {
        db.list(MODEL, Query::new().filter(Filter::is_in("name", words)))
            .await
    })
    .await;
    let with_null: Vec<Value> = (0..70_000)
        .map(|i| if i == 69_999 { Value::Null } else { i.into() })
        .collect();
    c.case(
        "list: IN with a NULL among 70,000",
        Expect::Refused(invalid),
        async {
            db.list(
                MODEL,
                Query::new().filter(Filter::is_in("medium", with_null)),
            )
            .await
        },
    )
    .await;
    // A page binds the filter's values, then LIMIT and OFFSET.
    let either = |n: i32| Filter::Or((0..n).map(|i| Filter::eq("medium", i)).collect());
    c.case("list: 65,535 bind parameters", Expect::Ok, async {
        db.list(MODEL, Query::new().filter(either(65_533))).await
    })
    .await;
    c.case(
        "list: 65,536 bind parameters",
        Expect::Refused(invalid),
        async { db.list(MODEL, Query::new().filter(either(65_534))).await },
    )
    .await;
}

/// SQL and LIKE metacharacters as values: stored and found literally.
async fn values(c: &mut Corpus<'_>) {
    let db = &c.fx.db.clone();
    for value in hostile_values() {
        let label = |entry: &str| format!("{entry}: value {value:?}");
        let row = c
            .case(&label("create"), Expect::Ok, async {
                db.create(MODEL, Record::new().with("name", value).with("tag", value))
                    .await
            })
            .await
            .expect("stored");
        let id = row.value("id").cloned();
        for (entry, filter) in [
            ("list =", Filter::eq("tag", value)),
            ("list IN", Filter::is_in("tag", [value])),
            (
                "list LIKE escaped",
                Filter::like("tag", like_literal(value)),
            ),
        ] {
            let page = c
                .case(&label(entry), Expect::Ok, async {
                    db.list(MODEL, Query::new().filter(filter)).await
                })
                .await;
            let ids: Option<Vec<Option<Value>>> =
                page.map(|p| p.rows.iter().map(|r| r.value("id").cloned()).collect());
            assert_eq!(
                ids,
                Some(vec![id.clone()]),
                "{} finds exactly its row",
                label(entry)
            );
        }
    }
    // Unescaped, `%` is a wildcard: every stored tag matches.
    let tags = c
        .case("list LIKE '%': a pattern, not a value", Expect::Ok, async {
            db.list(MODEL, Query::new().filter(Filter::like("tag", "%")))
                .await
        })
        .await;
    assert_eq!(
        tags.and_then(|p| p.total),
        Some(hostile_values().len() as u64)
    );
}

/// A transaction: refused input leaves it usable; a server refusal aborts it.
async fn transaction(c: &mut Corpus<'_>) {
    let (db, invalid) = (&c.fx.db.clone(), "INVALID_INPUT");
    let tx = c
        .case("tx: begin", Expect::Ok, db.begin(TxOptions::default()))
        .await
        .expect("begin");
    let bad = hostile_names().remove(0).1;
    c.case("tx: create with NUL", Expect::Refused(invalid), async {
        tx.create(MODEL, Record::new().with("name", "\0")).await
    })
    .await;
    c.case(
        "tx: list by a hostile field",
        Expect::Refused(invalid),
        async { tx.list(MODEL, Query::new().sort_asc(bad.as_str())).await },
    )
    .await;
    c.case("tx: lock a bigint id", Expect::Refused(invalid), async {
        tx.lock_for_update(MODEL, 42_i64).await
    })
    .await;
    c.case(
        "tx: read a hostile model",
        Expect::Refused(invalid),
        async { tx.read(&bad, Uuid::nil()).await },
    )
    .await;
    let kept = c
        .case("tx: create after refused input", Expect::Ok, async {
            tx.create(MODEL, Record::new().with("name", "in tx")).await
        })
        .await
        .and_then(|r| r.value("id").cloned())
        .expect("the transaction is still usable");
    let ancient = NaiveDate::from_ymd_opt(-5000, 1, 1).expect("a date chrono has");
    c.case("tx: create a date 5001 BC", Expect::Sent(invalid), async {
        tx.create(MODEL, Record::new().with("day", ancient)).await
    })
    .await;
    c.case(
        "tx: create after the server refused",
        Expect::Refused("TX_ABORTED"),
        async { tx.create(MODEL, Record::new().with("name", "late")).await },
    )
    .await;
    c.case("tx: rollback", Expect::Ok, tx.rollback()).await;
    c.case(
        "tx: its create was rolled back",
        Expect::Sent("NOT_FOUND"),
        async { db.read(MODEL, kept).await },
    )
    .await;
}

/// Opening: bad DSNs, sslmodes, pool and session settings.
async fn opening(c: &mut Corpus<'_>) {
    let config = "CONFIG";
    let trap = &c.fx.trap;
    let dsns = [
        ("empty", String::new()),
        ("blank", " \t\n".into()),
        ("no host", "postgres://".into()),
        (
            "port not a number",
            trap.url("")
                .replace(&format!(":{}/", trap.port), ":notaport/"),
        ),
        (
            "port past 65535",
            trap.url("").replace(&format!(":{}/", trap.port), ":99999/"),
        ),
        (
            "negative port",
            trap.url("").replace(&format!(":{}/", trap.port), ":-1/"),
        ),
        (
            "port 0",
            trap.url("").replace(&format!(":{}/", trap.port), ":0/"),
        ),
        (
            "unclosed IPv6 bracket",
            format!("postgres://app:{CANARY_ENCODED}@[::1/db"),
        ),
        (
            "other scheme",
            trap.url("").replace("postgres://", "mysql://"),
        ),
        (
            "other scheme with a query",
            trap.url("?sslmode=disable")
                .replace("postgres://", "postgresql+psycopg://"),
        ),
        ("one slash", trap.url("?sslmode=disable").replace("//", "/")),
        ("unknown URL key", trap.url("?foo=bar")),
        ("URL key without value", trap.url("?sslmode")),
        ("sslmode=verify-fulll", trap.url("?sslmode=verify-fulll")),
        ("sslmode empty", trap.url("?sslmode=")),
        ("sslmode upper case", trap.url("?sslmode=VERIFY-FULL")),
        (
            "sslmode twice, second bad",
            trap.url("?sslmode=disable&sslmode=off"),
        ),
        (
            "sslcert without sslkey",
            trap.url("?sslmode=require&sslcert=/x.pem"),
        ),
        (
            "sslrootcert missing",
            trap.url("?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"),
        ),
        (
            "sslrootcert=system, sslmode=require",
            trap.url("?sslmode=require&sslrootcert=system"),
        ),
        (
            "connect_timeout not a number",
            trap.url("?connect_timeout=soon"),
        ),
        (
            "target_session_attrs unknown",
            trap.url("?target_session_attrs=any-primary"),
        ),
        ("NUL in URL", trap.url("?application_name=a%00b")),
        ("unknown key", trap.key_value("foo=bar")),
        ("key without =", trap.key_value("sslmode")),
        ("unterminated quote", trap.key_value("dbname='db")),
        ("port=abc", trap.key_value("port=abc")),
        ("port=70000", trap.key_value("port=70000")),
        (
            "sslmode=verify-fulll key=value",
            trap.key_value("sslmode=verify-fulll"),
        ),
        ("= without key", trap.key_value("=db")),
        (
            "stray = before sslmode=verify-full",
            trap.key_value("=x sslmode=verify-full sslrootcert=/nonexistent/ca.pem"),
        ),
        (
            "unencoded @ in the password",
            format!("postgres://app:{CANARY}@127.0.0.1:{}/db", trap.port),
        ),
        (
            "password parameter, @ after the host",
            format!(
                "postgres://127.0.0.1:{}/db?user=app&password={CANARY}",
                trap.port
            ),
        ),
        (
            "bare password with a space",
            format!(
                "host=127.0.0.1 port={} user=app password=CANARY {CANARY}=x",
                trap.port
            ),
        ),
    ];
    for (what, dsn) in dsns {
        let opts = c.fx.trap_options(&dsn);
        c.case(
            &format!("open: DSN {what}"),
            Expect::Refused(config),
            opts.open(),
        )
        .await;
    }
    let opts =
        c.fx.trap_options(&trap.url("?sslmode=disable"))
            .read_dsn(trap.url("?sslmode=bogus"));
    c.case("open: bad read DSN", Expect::Refused(config), opts.open())
        .await;
    let pools = [
        (
            "max_open 0",
            PoolConfig {
                max_open: Some(0),
                ..PoolConfig::default()
            },
        ),
        (
            "max_idle over max_open",
            PoolConfig {
                max_open: Some(2),
                max_idle: Some(3),
                ..PoolConfig::default()
            },
        ),
        (
            "wait_timeout 0",
            PoolConfig {
                wait_timeout: Some(Duration::ZERO),
                ..PoolConfig::default()
            },
        ),
        (
            "max_open usize::MAX",
            PoolConfig {
                max_open: Some(usize::MAX),
                ..PoolConfig::default()
            },
        ),
        (
            "max_open 2^36",
            PoolConfig {
                max_open: Some(1 << 36),
                ..PoolConfig::default()
            },
        ),
        (
            "max_queued usize::MAX",
            PoolConfig {
                max_queued: Some(usize::MAX),
                ..PoolConfig::default()
            },
        ),
        (
            "max_lifetime Duration::MAX",
            PoolConfig {
                max_lifetime: Some(Duration::MAX),
                ..PoolConfig::default()
            },
        ),
    ];
    for (what, pool) in pools {
        let opts =
            c.fx.trap_options(&trap.url("?sslmode=disable"))
                .read_pool(pool);
        c.case(
            &format!("open: {what}"),
            Expect::Refused(config),
            opts.open(),
        )
        .await;
    }
    let sessions = [
        (
            "NUL in application_name",
            SessionConfig {
                application_name: Some("a\0b".into()),
                ..SessionConfig::default()
            },
        ),
        (
            "64-byte application_name",
            SessionConfig {
                application_name: Some("a".repeat(64)),
                ..SessionConfig::default()
            },
        ),
        (
            "empty time_zone",
            SessionConfig {
                time_zone: Some(String::new()),
                ..SessionConfig::default()
            },
        ),
        (
            "statement_timeout past the server's limit",
            SessionConfig {
                statement_timeout: Some(Duration::from_secs(30 * 24 * 3600)),
                ..SessionConfig::default()
            },
        ),
        (
            "query_timeout Duration::MAX",
            SessionConfig {
                query_timeout: Some(Duration::MAX),
                ..SessionConfig::default()
            },
        ),
    ];
    for (what, session) in sessions {
        let opts =
            c.fx.trap_options(&trap.url("?sslmode=disable"))
                .session(session);
        c.case(
            &format!("open: {what}"),
            Expect::Refused(config),
            opts.open(),
        )
        .await;
    }
    let opts =
        c.fx.trap_options(&trap.url("?sslmode=disable"))
            .replica(pgactor::ReplicaConfig {
                poll_interval: Duration::ZERO,
                ..pgactor::ReplicaConfig::default()
            });
    c.case(
        "open: replica poll_interval 0",
        Expect::Refused(config),
        opts.open(),
    )
    .await;
    // The control: a good DSN does dial the trap.
    let opts = c.fx.trap_options(&trap.url("?sslmode=disable"));
    c.case(
        "open: a good DSN dials",
        Expect::Sent("UNAVAILABLE"),
        opts.open(),
    )
    .await;
}

#[tokio::test]
async fn hostile_input_is_refused_or_stored_literally() {
    let _serial = figures::serial().await;
    let panics_before = panics();
    let fx = Fixture::open().await;
    let id: Uuid = fx
        .db
        .create(MODEL, Record::new().with("name", "target"))
        .await
        .expect("a row")
        .get("id")
        .expect("id");
    let (sink, sink_handle) = Actor::spawn(None, Sink, ()).await.expect("sink");
    let mut c = Corpus {
        fx: &fx,
        figures: Figures::new("8a", "hostile input through every public entry point"),
        wrong: Vec::new(),
        refused_with_sql: 0,
        refused: 0,
        sent: 0,
    };
    names(&mut c, id, &sink).await;
    text(&mut c, id).await;
    numbers(&mut c).await;
    times(&mut c).await;
    values(&mut c).await;
    transaction(&mut c).await;
    opening(&mut c).await;
    // Last: its statements' texts are large, which slows the witness.
    lists(&mut c).await;

    // Afterwards: the canary and the model's tables are intact, the
    // adapter answers, nothing is left in a transaction.
    assert_eq!(
        tables_in(&fx.obs, &fx.schema).await,
        ["canary", "hostile", "odd"]
    );
    let target = fx
        .db
        .read(MODEL, id)
        .await
        .expect("the adapter still answers");
    assert_eq!(target.get::<String>("name").expect("name"), "target");
    let idle_in_tx: i64 = fx
        .obs
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE application_name = $1 AND state LIKE 'idle in transaction%'",
            &[&fx.app],
        )
        .await
        .expect("pg_stat_activity")
        .get(0);
    let panicked = panics() - panics_before;
    let Corpus {
        mut figures,
        wrong,
        refused_with_sql,
        refused,
        sent,
        ..
    } = c;
    figures.leaked = idle_in_tx as u64;
    figures.note(format!("refused client-side: {refused}"));
    figures.note(format!("refused by the server: {sent}"));
    figures.note(format!(
        "no SQL for refused: {}",
        if refused_with_sql == 0 { "yes" } else { "no" }
    ));
    figures.note(format!("panics: {panicked}"));
    figures.note(format!("wrong answers: {}", wrong.len()));
    figures.publish();
    sink.stop(None);
    sink_handle.await.expect("sink stopped");
    fx.db.close().await;
    assert!(
        wrong.is_empty(),
        "cases answered wrongly:\n{}",
        wrong.join("\n")
    );
    assert_eq!(panicked, 0, "nothing panicked");
    assert_eq!(idle_in_tx, 0, "no session left in a transaction");
}
