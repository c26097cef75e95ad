//! The filter operators beyond plain comparisons, against real rows:
//! `not_in`, `between`, the literal text matches (`contains`,
//! `starts_with`, `ends_with`) and field-to-field comparisons, with their
//! edge meanings (empty lists, NULL fields, `%`, `_` and `\` in a text,
//! case, inclusive bounds) and their refusals.
//!
//! Each case's expected rows are computed in Rust from the seeded rows (an
//! oracle written independently of SQL), and compared with what the server
//! returned.

use pgactor::{CmpOp, Db, ErrorKind, Field, FieldType, Filter, Model, Query, Record, Value};

use crate::support::db::open_primary;
use crate::support::observer::{observer, statements_containing};
use crate::support::topology::primary_url;

const MODEL: &str = "Bill";

fn bill_model() -> Model {
    Model::new(MODEL)
        .field(Field::new("name", FieldType::Text).unique())
        .field(Field::new("note", FieldType::Text).nullable())
        .field(Field::new("code", FieldType::Varchar(12)).nullable())
        .field(Field::new("due", FieldType::I64))
        .field(Field::new("paid", FieldType::I32).nullable())
        .field(Field::new("ratio", FieldType::F64).nullable())
}

/// One seeded row as the test knows it.
struct Bill {
    name: &'static str,
    note: Option<&'static str>,
    code: Option<&'static str>,
    due: i64,
    paid: Option<i32>,
}

const BILLS: &[Bill] = &[
    Bill {
        name: "r01",
        note: Some("50% off"),
        code: Some("50% OFF"),
        due: 10,
        paid: Some(10),
    },
    Bill {
        name: "r02",
        note: Some("500 off"),
        code: Some("x"),
        due: 10,
        paid: Some(5),
    },
    Bill {
        name: "r03",
        note: Some("a_b"),
        code: Some("a_b"),
        due: 20,
        paid: Some(25),
    },
    Bill {
        name: "r04",
        note: Some("axb"),
        code: None,
        due: 5,
        paid: None,
    },
    Bill {
        name: "r05",
        note: Some(r"C:\dir\file"),
        code: Some("z"),
        due: 0,
        paid: Some(0),
    },
    Bill {
        name: "r06",
        note: Some("C:dir"),
        code: Some("C:dir"),
        due: 15,
        paid: Some(20),
    },
    Bill {
        name: "r07",
        note: None,
        code: Some("n"),
        due: 30,
        paid: Some(30),
    },
    Bill {
        name: "r08",
        note: Some("HELLO World"),
        code: None,
        due: 1,
        paid: Some(2),
    },
    Bill {
        name: "r09",
        note: Some("hello%"),
        code: Some("HELLO%"),
        due: 40,
        paid: None,
    },
    Bill {
        name: "r10",
        note: Some(""),
        code: Some(""),
        due: 25,
        paid: Some(1),
    },
    Bill {
        name: "r11",
        note: Some("50_50"),
        code: Some("q"),
        due: 25,
        paid: Some(25),
    },
];

impl Bill {
    fn record(&self) -> Record {
        Record::new()
            .with("name", self.name)
            .with("note", self.note)
            .with("code", self.code)
            .with("due", self.due)
            .with("paid", self.paid)
            .with("ratio", self.paid.map(|p| f64::from(p) / 2.0))
    }
}

async fn seeded(prefix: &str) -> (Db, String) {
    let (db, schema) = open_primary(prefix, [bill_model()]).await;
    for bill in BILLS {
        db.create(MODEL, bill.record()).await.expect("seed row");
    }
    (db, schema)
}

/// The names of the rows `filter` selects, in name order, and checks the
/// page's total agrees.
async fn names(db: &Db, filter: Filter) -> Vec<String> {
    let page = db
        .list(MODEL, Query::new().filter(filter).sort_asc("name"))
        .await
        .expect("list");
    let names: Vec<String> = page
        .rows
        .iter()
        .map(|r| r.get("name").expect("name"))
        .collect();
    assert_eq!(page.total, Some(names.len() as u64));
    names
}

fn expected(matches: impl Fn(&Bill) -> bool) -> Vec<String> {
    BILLS
        .iter()
        .filter(|b| matches(b))
        .map(|b| b.name.to_owned())
        .collect()
}

/// A label, a filter, and which seeded rows it must select.
type Case = (&'static str, Filter, Box<dyn Fn(&Bill) -> bool>);

async fn check(db: &Db, cases: Vec<Case>) {
    for (label, filter, matches) in cases {
        let want = expected(matches);
        assert_eq!(names(db, filter).await, want, "{label}");
    }
}

/// Case-insensitive in the sense ILIKE has for these ASCII texts.
fn lower(s: &str) -> String {
    s.to_lowercase()
}

#[tokio::test]
async fn not_in_selects_rows_differing_from_every_value() {
    let (db, _) = seeded("filters_not_in").await;
    check(
        &db,
        vec![
            (
                "NOT IN on a NOT NULL field",
                Filter::not_in("due", [10_i64, 20]),
                Box::new(|b| ![10, 20].contains(&b.due)),
            ),
            (
                "a NULL field never matches a non-empty NOT IN",
                Filter::not_in("paid", [5_i32, 10]),
                Box::new(|b| b.paid.is_some_and(|p| ![5, 10].contains(&p))),
            ),
            (
                "NOT IN on text",
                Filter::not_in("note", ["50% off", "axb"]),
                Box::new(|b| b.note.is_some_and(|n| !["50% off", "axb"].contains(&n))),
            ),
            (
                "an empty NOT IN matches every row, NULL fields too",
                Filter::not_in("paid", Vec::<i32>::new()),
                Box::new(|_| true),
            ),
            (
                "an empty IN matches nothing",
                Filter::is_in("paid", Vec::<i32>::new()),
                Box::new(|_| false),
            ),
            (
                "NOT IN and IN of one list split the non-NULL rows",
                Filter::not_in("paid", [0_i32, 25]).or(Filter::is_in("paid", [0_i32, 25])),
                Box::new(|b| b.paid.is_some()),
            ),
            (
                "a long NOT IN is one array",
                Filter::not_in("due", 1..70_000_i64),
                Box::new(|b| b.due < 1),
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn between_includes_both_bounds() {
    let (db, _) = seeded("filters_between").await;
    check(
        &db,
        vec![
            (
                "both bounds are matched",
                Filter::between("due", 10_i64, 25_i64),
                Box::new(|b| (10..=25).contains(&b.due)),
            ),
            (
                "one value",
                Filter::between("due", 25_i64, 25_i64),
                Box::new(|b| b.due == 25),
            ),
            (
                "low above high matches nothing",
                Filter::between("due", 25_i64, 10_i64),
                Box::new(|_| false),
            ),
            (
                "a NULL field does not match",
                Filter::between("paid", 0_i32, 5_i32),
                Box::new(|b| b.paid.is_some_and(|p| (0..=5).contains(&p))),
            ),
            (
                "bounds widen to the field's type",
                Filter::between("paid", 0_i64, 5_i64),
                Box::new(|b| b.paid.is_some_and(|p| (0..=5).contains(&p))),
            ),
            (
                "text bounds",
                Filter::between("name", "r02", "r04"),
                Box::new(|b| ("r02"..="r04").contains(&b.name)),
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn text_matches_are_literal_and_ignore_case() {
    let (db, _) = seeded("filters_text").await;
    let has = |text: &'static str| {
        Box::new(move |b: &Bill| b.note.is_some_and(|n| lower(n).contains(&lower(text))))
            as Box<dyn Fn(&Bill) -> bool>
    };
    check(
        &db,
        vec![
            (
                "% is literal: 50% is not 500",
                Filter::contains("note", "50%"),
                has("50%"),
            ),
            (
                "_ is literal: not axb",
                Filter::contains("note", "a_b"),
                has("a_b"),
            ),
            ("a lone _", Filter::contains("note", "_"), has("_")),
            ("a lone %", Filter::contains("note", "%"), has("%")),
            (r"a backslash", Filter::contains("note", r"\"), has(r"\")),
            (
                r"backslash then letter",
                Filter::contains("note", r"c:\d"),
                has(r"c:\d"),
            ),
            (
                "case is ignored",
                Filter::contains("note", "hello"),
                has("hello"),
            ),
            (
                "case is ignored, upper",
                Filter::contains("note", "WORLD"),
                has("WORLD"),
            ),
            (
                "an empty text matches every non-NULL value",
                Filter::contains("note", ""),
                Box::new(|b| b.note.is_some()),
            ),
            (
                "starts_with",
                Filter::starts_with("note", "HEL"),
                Box::new(|b| b.note.is_some_and(|n| lower(n).starts_with("hel"))),
            ),
            (
                "starts_with a literal %",
                Filter::starts_with("note", "50%"),
                Box::new(|b| b.note.is_some_and(|n| n.starts_with("50%"))),
            ),
            (
                "starts_with a literal _",
                Filter::starts_with("note", "50_"),
                Box::new(|b| b.note.is_some_and(|n| n.starts_with("50_"))),
            ),
            (
                "ends_with a literal %",
                Filter::ends_with("note", "%"),
                Box::new(|b| b.note.is_some_and(|n| n.ends_with('%'))),
            ),
            (
                "ends_with ignores case",
                Filter::ends_with("note", "world"),
                Box::new(|b| b.note.is_some_and(|n| lower(n).ends_with("world"))),
            ),
            (
                "on a varchar field",
                Filter::contains("code", "% o"),
                Box::new(|b| b.code.is_some_and(|c| lower(c).contains("% o"))),
            ),
            (
                "ilike stays a raw pattern: 50% matches 500 too",
                Filter::ilike("note", "50%"),
                Box::new(|b| b.note.is_some_and(|n| n.starts_with("50"))),
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn fields_compare_with_fields_of_the_same_row() {
    let (db, _) = seeded("filters_fields").await;
    let both = |f: fn(i64, i64) -> bool| {
        Box::new(move |b: &Bill| b.paid.is_some_and(|p| f(i64::from(p), b.due)))
            as Box<dyn Fn(&Bill) -> bool>
    };
    check(
        &db,
        vec![
            (
                "paid = due",
                Filter::eq_field("paid", "due"),
                both(|p, d| p == d),
            ),
            (
                "paid <> due",
                Filter::ne_field("paid", "due"),
                both(|p, d| p != d),
            ),
            (
                "paid < due",
                Filter::lt_field("paid", "due"),
                both(|p, d| p < d),
            ),
            (
                "paid <= due",
                Filter::le_field("paid", "due"),
                both(|p, d| p <= d),
            ),
            (
                "paid > due",
                Filter::gt_field("paid", "due"),
                both(|p, d| p > d),
            ),
            (
                "paid >= due",
                Filter::ge_field("paid", "due"),
                both(|p, d| p >= d),
            ),
            (
                "due >= paid is paid <= due",
                Filter::ge_field("due", "paid"),
                both(|p, d| p <= d),
            ),
            (
                "an operator by name",
                Filter::compare_fields("paid", "gte".parse::<CmpOp>().expect("gte"), "due"),
                both(|p, d| p >= d),
            ),
            (
                "text against varchar",
                Filter::eq_field("note", "code"),
                Box::new(|b| b.note.is_some() && b.note == b.code),
            ),
            (
                "a NULL on either side never matches, not even <>",
                Filter::ne_field("note", "code"),
                Box::new(|b| b.note.zip(b.code).is_some_and(|(n, c)| n != c)),
            ),
            (
                "a field equals itself unless NULL",
                Filter::eq_field("paid", "paid"),
                Box::new(|b| b.paid.is_some()),
            ),
            (
                "combined with value filters",
                Filter::ge_field("paid", "due").and(Filter::between("due", 10_i64, 25_i64)),
                Box::new(|b| {
                    b.paid.is_some_and(|p| i64::from(p) >= b.due) && (10..=25).contains(&b.due)
                }),
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn malformed_filters_are_refused_before_any_sql() {
    let (db, schema) = seeded("filters_refused").await;
    let obs = observer(&primary_url()).await;
    let needle = format!("\"{schema}\"");
    let before = statements_containing(&obs, &needle).await;
    let refused = [
        (
            "NULL in a NOT IN list",
            Filter::not_in("paid", [Value::from(1_i32), Value::Null]),
        ),
        ("NULL low bound", Filter::between("due", Value::Null, 3_i64)),
        (
            "NULL high bound",
            Filter::between("due", 1_i64, Value::Null),
        ),
        ("bound of another type", Filter::between("due", "a", "b")),
        ("NOT IN value of another type", Filter::not_in("due", ["a"])),
        (
            "NOT IN on an unknown field",
            Filter::not_in("nope", [1_i64]),
        ),
        ("contains on a number", Filter::contains("due", "1")),
        (
            "starts_with on an unknown field",
            Filter::starts_with("nope", "a"),
        ),
        ("ends_with a NUL", Filter::ends_with("note", "a\0")),
        ("integer against float", Filter::eq_field("paid", "ratio")),
        ("number against text", Filter::lt_field("due", "note")),
        (
            "timestamp against integer",
            Filter::ge_field("created_at", "due"),
        ),
        ("unknown right field", Filter::ge_field("paid", "nope")),
        ("unknown left field", Filter::ge_field("nope", "paid")),
        (
            "a name that is SQL",
            Filter::eq_field("paid", "due\" OR TRUE --"),
        ),
        ("NULL comparison", Filter::eq("paid", Value::Null)),
        (
            "deep inside an OR",
            Filter::eq("due", 1_i64).or(Filter::contains("paid", "1")),
        ),
    ];
    for (label, filter) in refused {
        let err = db
            .list(MODEL, Query::new().filter(filter))
            .await
            .expect_err(label);
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{label}: {err}");
    }
    // An operator name the adapter does not know fails closed.
    for name in ["equals", "EQ", "gte ", "", "1=1"] {
        let err = name.parse::<CmpOp>().expect_err(name);
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{name:?}: {err}");
    }
    assert_eq!(
        statements_containing(&obs, &needle).await,
        before,
        "no SQL was sent"
    );
    // The witness sees a valid list.
    names(&db, Filter::contains("note", "x")).await;
    assert!(statements_containing(&obs, &needle).await > before);
}
