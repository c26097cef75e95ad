//! 8b: property tests (proptest) over the DSN parser and the query builder
//! (catalogue L2, L3, L9, L10), through the public API only.
//!
//! Properties, each over generated input:
//! - DSNs: any string, well-formed or not, with a canary password in URL,
//!   key=value or garbage form: percent-encoded or quoted, or as typed
//!   (an unencoded `@`, `/`, `?` or `&` in a URL's credentials, a
//!   `password=` parameter with an `@` after the host, a bare value); no
//!   part of it (either end) may show. `OpenOptions`'s `Debug` parses it without
//!   connecting; it never panics and never shows the password. A DSN that
//!   does not parse makes `open` fail with CONFIG before dialling (it is
//!   the same parse), and that error never shows the password, raw or
//!   percent-encoded. DSNs that parse are not opened: they could name any
//!   host.
//! - Queries: random filters (every variant, nested, over valid, hostile
//!   and random field names, with values of every type including NaN,
//!   infinities and out-of-range dates), sorts and pages, run by `list`
//!   against the real server: each either succeeds or is INVALID_INPUT
//!   (refused client-side, or a 22xxx data exception from the server);
//!   never a syntax error (42601) or any other server error, so the builder
//!   never writes invalid SQL and no value ever becomes SQL.
//! - Round trip (L3): any string stored by `create` and looked up by an
//!   `=` filter returns exactly the rows stored with that string; a string
//!   with NUL is refused with INVALID_INPUT.
//!
//! The run is bounded (3,000 DSNs, 500 queries, 300 round trips, plus the
//! shrinking of any failure) and seeded: the seed is printed and taken from
//! `PGACTOR_FUZZ_SEED` when set, so a failure reproduces with
//! `PGACTOR_FUZZ_SEED=<seed> cargo test --test reliability fuzz`. A failing
//! property is shrunk and its minimal input printed among the findings.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Mutex;

use chrono::{DateTime, NaiveDate};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use pgactor::{CmpOp, Direction, ErrorKind, Filter, OpenOptions, Query, Record, Value};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};
use rust_decimal::Decimal;
use tokio::runtime::Runtime;

use crate::figures::{self, Figures};
use crate::hostile::{hostile_model, panics, MODEL};
use crate::support::db::open_primary;
use crate::support::observer::{canary_table, observer, tables_in};
use crate::support::topology::primary_url;

const DSN_CASES: u32 = 3_000;
const QUERY_CASES: u32 = 500;
const ROUND_TRIP_CASES: u32 = 300;

/// The run's seed: `PGACTOR_FUZZ_SEED` (decimal or 0x-hex), else fixed.
fn seed() -> u64 {
    let Ok(text) = std::env::var("PGACTOR_FUZZ_SEED") else {
        return 0x8b_5eed;
    };
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.expect("PGACTOR_FUZZ_SEED is a number")
}

/// A runner of `cases` cases from `seed`, persisting nothing: the seed is
/// what reproduces a run.
fn runner(cases: u32, seed: u64) -> TestRunner {
    let mut bytes = [0_u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// Run `test` over `strategy`; answer the shrunk failure, if any.
fn check<S: Strategy>(
    name: &str,
    mut runner: TestRunner,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) -> Option<String>
where
    S::Value: Debug,
{
    match runner.run(&strategy, test) {
        Ok(()) => None,
        Err(TestError::Fail(why, input)) => Some(format!("{name}: {why}; minimal input {input:?}")),
        Err(TestError::Abort(why)) => Some(format!("{name}: aborted: {why}")),
    }
}

/// One of `options`, or now and then any short string.
fn pick(options: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![
        4 => select(options).prop_map(str::to_owned),
        1 => ".{0,8}",
    ]
    .boxed()
}

/// A password that starts with `CANARY` and ends with `YRANAC`, URL and
/// quoting metacharacters between: a parser that splits it in the wrong
/// place shows one end or the other.
fn password() -> impl Strategy<Value = String> {
    "CANARY[ -~]{0,10}YRANAC"
}

/// The password in `text`, raw or percent-encoded, whole or either end of it.
fn shows(text: &str, password: &str) -> bool {
    let encoded = utf8_percent_encode(password, NON_ALPHANUMERIC).to_string();
    text.contains(password)
        || text.contains(&encoded)
        || text.contains("CANARY")
        || text.contains("YRANAC")
}

/// How a URL carries its password.
#[derive(Debug, Clone, Copy)]
enum InUrl {
    /// `user:password@`, percent-encoded: well-formed.
    Encoded,
    /// `user:password@`, as typed: `@`, `/`, `?`, `&`, `:` unencoded.
    Raw,
    /// `?password=…` as typed (but `&`, which starts another parameter
    /// of a well-formed URL), no credentials: an `@` in it comes after
    /// the host.
    Parameter,
}

const KEYS: &[&str] = &[
    "host",
    "port",
    "user",
    "dbname",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "application_name",
    "connect_timeout",
    "target_session_attrs",
    "options",
    "foo",
];
const VALUES: &[&str] = &[
    "127.0.0.1",
    "5432",
    "0",
    "99999",
    "-1",
    "disable",
    "require",
    "verify-full",
    "verify-fulll",
    "system",
    "/nonexistent.pem",
    "read-write",
    "",
    "%",
    "%zz",
    "a%00b",
];

/// `postgres://user:password@host:port/db?k=v&…`, the password encoded,
/// as typed, or as a `password` parameter.
fn url_dsn() -> impl Strategy<Value = (String, Option<String>)> {
    let prefixes = select(&["postgres://", "postgresql://", "postgres:/", "pg://", ""][..]);
    let hosts = pick(&["127.0.0.1", "", "[::1]", "[::1", "a,b", "h ost"]);
    let ports = pick(&["", ":5432", ":0", ":99999", ":-1", ":x", ":", ":5432,5433"]);
    let params = prop::collection::vec((pick(KEYS), pick(VALUES)), 0..4);
    let separators = select(&["&", "&&", "?", ";"][..]);
    let forms = select(&[InUrl::Encoded, InUrl::Raw, InUrl::Parameter][..]);
    (
        prefixes,
        password(),
        hosts,
        ports,
        pick(&["db", "", "d b"]),
        params,
        (separators, forms),
    )
        .prop_map(|(prefix, password, host, port, db, params, (sep, form))| {
            let password = match form {
                InUrl::Parameter => password.replace('&', ""),
                InUrl::Encoded | InUrl::Raw => password,
            };
            let mut query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let credentials = match form {
                InUrl::Encoded => {
                    format!("app:{}@", utf8_percent_encode(&password, NON_ALPHANUMERIC))
                }
                InUrl::Raw => format!("app:{password}@"),
                InUrl::Parameter => {
                    query.insert(0, format!("password={password}"));
                    String::new()
                }
            };
            let query = if query.is_empty() {
                String::new()
            } else {
                format!("?{}", query.join(sep))
            };
            let dsn = format!("{prefix}{credentials}{host}{port}/{db}{query}");
            (dsn, Some(password))
        })
}

/// `key=value …` with `password=…` among the pairs: quoted and escaped so
/// the password stays the password, or bare as typed (without whitespace,
/// which would make a well-formed string of other options).
fn key_value_dsn() -> impl Strategy<Value = (String, Option<String>)> {
    let key = prop_oneof![3 => select(KEYS).prop_map(str::to_owned), 1 => "[A-Za-z_]{1,10}"];
    let pairs = prop::collection::vec((key, pick(VALUES), any::<bool>()), 0..5);
    (
        pairs,
        password(),
        any::<bool>(),
        any::<prop::sample::Index>(),
        select(&[" ", "  ", "\t", " \n "][..]),
    )
        .prop_map(|(pairs, password, as_typed, at, ws)| {
            let quote = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
            let bare = |v: &str| {
                v.chars().fold(String::new(), |mut out, c| {
                    if c.is_whitespace() || c == '\\' || c == '\'' {
                        out.push('\\');
                    }
                    out.push(c);
                    out
                })
            };
            let mut rendered: Vec<String> = pairs
                .iter()
                .map(|(k, v, quoted)| {
                    let v = if *quoted || v.is_empty() {
                        quote(v)
                    } else {
                        bare(v)
                    };
                    format!("{k}={v}")
                })
                .collect();
            let password = if as_typed {
                password.replace(char::is_whitespace, "")
            } else {
                password
            };
            let written = if as_typed {
                password.clone()
            } else {
                quote(&password)
            };
            let at = at.index(rendered.len() + 1);
            rendered.insert(at, format!("password={written}"));
            (rendered.join(ws), Some(password))
        })
}

/// Any DSN: a URL, a key=value string, or garbage (no password).
fn dsn() -> impl Strategy<Value = (String, Option<String>)> {
    prop_oneof![
        2 => url_dsn(),
        2 => key_value_dsn(),
        1 => ".{0,48}".prop_map(|s| (s, None)),
    ]
}

/// Field names: the model's, hostile ones, and random ones.
fn field() -> BoxedStrategy<String> {
    const FIELDS: &[&str] = &[
        "id",
        "name",
        "tag",
        "code",
        "flag",
        "small",
        "medium",
        "big",
        "ratio32",
        "ratio",
        "amount",
        "blob",
        "ref_id",
        "at",
        "day",
        "doc",
        "created_at",
        "updated_at",
    ];
    const HOSTILE: &[&str] = &[
        "name\"; DROP TABLE canary; --",
        "name'",
        "a.b",
        "n\u{430}me",
        "",
        "name ",
        "Name",
    ];
    prop_oneof![
        6 => select(FIELDS).prop_map(str::to_owned),
        1 => select(HOSTILE).prop_map(str::to_owned),
        1 => ".{0,12}",
    ]
    .boxed()
}

/// Strings an attacker would try, and pieces of them.
fn text() -> BoxedStrategy<String> {
    const PIECES: &[&str] = &[
        "'",
        "\"",
        ";",
        "--",
        "/*",
        "*/",
        "$$",
        "$1",
        "\\",
        "%",
        "_",
        " OR '1'='1",
        "); DROP TABLE canary; --",
        "\u{0}",
        "é",
        "\u{202e}",
        "NULL",
    ];
    prop_oneof![
        2 => any::<String>(),
        2 => prop::collection::vec(select(PIECES), 0..6).prop_map(|p| p.concat()),
        1 => ".{0,64}",
    ]
    .boxed()
}

/// A value of any type, NULL, NaN, infinities and out-of-range dates included.
fn value() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i16>().prop_map(Value::from),
        any::<i32>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f32>().prop_map(Value::from),
        prop::num::f64::ANY.prop_map(Value::from),
        (any::<i64>(), 0..20_u32).prop_map(|(n, scale)| Decimal::new(n, scale).into()),
        text().prop_map(Value::from),
        prop::collection::vec(any::<u8>(), 0..8).prop_map(Value::from),
        any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).into()),
        any::<i64>().prop_map(|us| DateTime::from_timestamp_micros(us).into()),
        any::<i32>().prop_map(|d| NaiveDate::from_num_days_from_ce_opt(d).into()),
        text().prop_map(|s| serde_json::json!({ "k": s }).into()),
    ]
    .boxed()
}

/// A field of the model with a value of its type, so the server sees it.
fn typed() -> BoxedStrategy<(String, Value)> {
    let of = |field: &'static str| move |v: Value| (field.to_owned(), v);
    prop_oneof![
        any::<bool>().prop_map(Value::from).prop_map(of("flag")),
        any::<i16>().prop_map(Value::from).prop_map(of("small")),
        any::<i32>().prop_map(Value::from).prop_map(of("medium")),
        any::<i64>().prop_map(Value::from).prop_map(of("big")),
        any::<f32>().prop_map(Value::from).prop_map(of("ratio32")),
        prop::num::f64::ANY
            .prop_map(Value::from)
            .prop_map(of("ratio")),
        (any::<i64>(), 0..20_u32)
            .prop_map(|(n, scale)| Decimal::new(n, scale).into())
            .prop_map(of("amount")),
        text().prop_map(Value::from).prop_map(of("name")),
        "[ -~]{0,8}".prop_map(Value::from).prop_map(of("code")),
        prop::collection::vec(any::<u8>(), 0..8)
            .prop_map(Value::from)
            .prop_map(of("blob")),
        any::<u128>()
            .prop_map(|n| uuid::Uuid::from_u128(n).into())
            .prop_map(of("id")),
        any::<i64>()
            .prop_map(|us| DateTime::from_timestamp_micros(us).into())
            .prop_map(of("created_at")),
        any::<i32>()
            .prop_map(|d| NaiveDate::from_num_days_from_ce_opt(d).into())
            .prop_map(of("day")),
        text()
            .prop_map(|s| serde_json::json!([s]).into())
            .prop_map(of("doc")),
    ]
    .boxed()
}

fn filter() -> impl Strategy<Value = Filter> {
    let ops = || {
        select(
            &[
                CmpOp::Eq,
                CmpOp::Ne,
                CmpOp::Lt,
                CmpOp::Le,
                CmpOp::Gt,
                CmpOp::Ge,
            ][..],
        )
    };
    let leaf = prop_oneof![
        3 => (typed(), ops()).prop_map(|((field, value), op)| Filter::Compare { field, op, value }),
        3 => (typed(), prop::collection::vec(typed(), 0..4)).prop_map(|((field, first), more)| {
            let values = std::iter::once(first).chain(more.into_iter().map(|(_, v)| v));
            Filter::In { field, values: values.collect() }
        }),
        1 => (field(), ops(), value()).prop_map(|(field, op, value)| Filter::Compare { field, op, value }),
        1 => (field(), prop::collection::vec(value(), 0..5))
            .prop_map(|(field, values)| Filter::In { field, values }),
        1 => (field(), text(), any::<bool>()).prop_map(|(field, pattern, case_insensitive)| {
            Filter::Like {
                field,
                pattern,
                case_insensitive,
            }
        }),
        1 => (field(), any::<bool>()).prop_map(|(field, negated)| Filter::IsNull { field, negated }),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Filter::And),
            prop::collection::vec(inner, 0..4).prop_map(Filter::Or),
        ]
    })
}

fn query() -> impl Strategy<Value = Query> {
    let sorts = prop::collection::vec((field(), any::<bool>()), 0..3);
    let limit = prop::option::of(prop_oneof![0..50_u64, any::<u64>()]);
    let offset = prop_oneof![3 => 0..10_u64, 1 => any::<u64>()];
    (prop::option::of(filter()), sorts, limit, offset).prop_map(|(filter, sorts, limit, offset)| {
        let mut q = Query::new().offset(offset);
        if let Some(filter) = filter {
            q = q.filter(filter);
        }
        for (field, asc) in sorts {
            q = q.sort_by(field, if asc { Direction::Asc } else { Direction::Desc });
        }
        match limit {
            Some(limit) => q.limit(limit),
            None => q,
        }
    })
}

/// Count one call's answer in the figures.
fn tally<T>(figures: &Mutex<Figures>, result: &pgactor::Result<T>) {
    figures.lock().unwrap().outcome(result);
}

#[test]
fn fuzzed_dsns_and_queries_never_panic_leak_or_become_sql() {
    let rt = Runtime::new().expect("runtime");
    let _serial = rt.block_on(figures::serial());
    let panics_before = panics();
    let seed = seed();
    println!("fuzz seed {seed:#x} (set PGACTOR_FUZZ_SEED to reproduce another run)");
    let figures = Mutex::new(Figures::new(
        "8b",
        "proptest: DSN parser, query builder, round trip",
    ));
    let mut findings = Vec::new();

    // DSNs: no panic, no password, CONFIG before dialling.
    let parsed = Mutex::new(0_u64);
    let dsns = check("dsn", runner(DSN_CASES, seed), dsn(), |(dsn, password)| {
        let opts = OpenOptions::new(dsn.as_str());
        let debug = format!("{opts:?}");
        if let Some(password) = &password {
            prop_assert!(
                !shows(&debug, password),
                "Debug shows the password: {debug}"
            );
        }
        if !debug.contains("write: \"\"") {
            *parsed.lock().unwrap() += 1;
            tally(&figures, &Ok(()));
            return Ok(());
        }
        let result = rt.block_on(opts.open()).map(drop);
        tally(&figures, &result);
        let Err(err) = result else {
            return Err(TestCaseError::fail("a DSN Debug could not parse opened"));
        };
        prop_assert_eq!(err.kind(), ErrorKind::Config, "{:?}", err);
        if let Some(password) = &password {
            let text = format!("{err} {err:?}");
            prop_assert!(
                !shows(&text, password),
                "the error shows the password: {text}"
            );
        }
        Ok(())
    });
    findings.extend(dsns);
    let parsed = parsed.into_inner().unwrap();

    // Queries and round trips, against the primary.
    let (db, schema) = rt.block_on(open_primary("fuzz", [hostile_model()]));
    let obs = rt.block_on(observer(&primary_url()));
    rt.block_on(canary_table(&obs, &schema));
    let (syntax_errors, served) = (Mutex::new(0_u64), Mutex::new(0_u64));
    let queries = check("query", runner(QUERY_CASES, seed), query(), |query| {
        let result = rt.block_on(db.list(MODEL, query)).map(drop);
        tally(&figures, &result);
        let Err(err) = result else {
            *served.lock().unwrap() += 1;
            return Ok(());
        };
        if err.sqlstate().map(|s| s.code()) == Some("42601") {
            *syntax_errors.lock().unwrap() += 1;
        }
        prop_assert_eq!(err.kind(), ErrorKind::InvalidInput, "{:?}", err);
        Ok(())
    });
    findings.extend(queries);

    // L3: what is stored is found by `=`, exactly.
    let stored: Mutex<HashMap<String, Vec<Value>>> = Mutex::default();
    let round_trips = check("round trip", runner(ROUND_TRIP_CASES, seed), text(), |s| {
        let created = rt.block_on(db.create(MODEL, Record::new().with("name", s.as_str())));
        tally(&figures, &created);
        if s.contains('\0') {
            prop_assert!(
                created.is_err_and(|e| e.kind() == ErrorKind::InvalidInput),
                "NUL is refused"
            );
            return Ok(());
        }
        let id = created
            .map_err(|e| TestCaseError::fail(format!("create: {e:?}")))?
            .value("id")
            .cloned()
            .expect("an id");
        let mut expected = {
            let mut stored = stored.lock().unwrap();
            let ids = stored.entry(s.clone()).or_default();
            ids.push(id);
            ids.clone()
        };
        let query = Query::new()
            .filter(Filter::eq("name", s.as_str()))
            .limit(10_000);
        let page = rt
            .block_on(db.list(MODEL, query))
            .map_err(|e| TestCaseError::fail(format!("list: {e:?}")))?;
        let mut found: Vec<Value> = page
            .rows
            .iter()
            .filter_map(|r| r.value("id").cloned())
            .collect();
        let key = |v: &Value| format!("{v:?}");
        found.sort_by_key(key);
        expected.sort_by_key(key);
        prop_assert_eq!(found, expected);
        Ok(())
    });
    findings.extend(round_trips);

    let tables = rt.block_on(tables_in(&obs, &schema));
    rt.block_on(db.close());
    let panicked = panics() - panics_before;
    let syntax_errors = syntax_errors.into_inner().unwrap();
    let mut figures = figures.into_inner().unwrap();
    figures.note(format!("seed {seed:#x}"));
    figures.note(format!("DSNs that parse: {parsed}"));
    figures.note(format!(
        "queries answered with rows: {}",
        served.into_inner().unwrap()
    ));
    figures.note(format!("42601: {syntax_errors}"));
    figures.note(format!("panics: {panicked}"));
    figures.note(if findings.is_empty() {
        "findings: none".to_owned()
    } else {
        format!("findings: {}", findings.join(" / "))
    });
    figures.publish();
    assert!(
        findings.is_empty(),
        "properties failed:\n{}",
        findings.join("\n")
    );
    assert_eq!(tables, ["canary", "hostile"], "no value became SQL");
    assert_eq!((panicked, syntax_errors), (0, 0));
}
