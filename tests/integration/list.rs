//! `List` against real rows: every filter operator, multi-column sort with
//! the `id` tie-break, page windows and the total count, the default limit.
//!
//! Each test seeds its own schema with rows whose values are known here, so
//! the expected answer of every query is computed in Rust from those rows and
//! compared with what the server returned.

use std::cmp::Ordering;

use pgactor::{
    Db, ErrorKind, Field, FieldType, Filter, Model, Page, Query, Record, DEFAULT_LIMIT, MAX_PAGE,
};
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::support::db::{in_schema, open_primary, registry, unique_schema};
use crate::support::observer::observer;
use crate::support::topology::primary_url;

const MODEL: &str = "Item";
/// More rows than [`DEFAULT_LIMIT`], so the default page is a strict subset.
const ROWS: usize = 130;
/// Larger than any page these tests read, so a list returns every match.
const ALL: u64 = 10_000;
const FRUITS: [&str; 4] = ["Apple", "apricot", "Banana", "cherry"];

fn item_model() -> Model {
    Model::new(MODEL)
        .field(Field::new("name", FieldType::Text).unique())
        .field(Field::new("grp", FieldType::I32))
        .field(Field::new("qty", FieldType::I64))
        .field(Field::new("category", FieldType::Text).nullable())
}

/// One seeded row as the test knows it.
#[derive(Debug, Clone)]
struct Item {
    id: Uuid,
    name: String,
    grp: i32,
    qty: i64,
    category: Option<String>,
}

impl Item {
    /// The `i`-th row: few distinct `grp`/`qty` values, so sort keys tie often.
    fn nth(i: usize) -> Item {
        Item {
            id: Uuid::nil(),
            name: format!("{}-{i:03}", FRUITS[i % FRUITS.len()]),
            grp: (i % 5) as i32,
            qty: (i * 7 % 23) as i64,
            category: match i % 3 {
                0 => None,
                1 => Some("x".into()),
                _ => Some("y".into()),
            },
        }
    }

    fn record(&self) -> Record {
        Record::new()
            .with("name", self.name.as_str())
            .with("grp", self.grp)
            .with("qty", self.qty)
            .with("category", self.category.clone())
    }
}

/// A fresh schema holding [`ROWS`] items, created through the adapter.
async fn seeded(prefix: &str) -> (Db, Vec<Item>) {
    let (db, _) = open_primary(prefix, [item_model()]).await;
    let mut tasks = JoinSet::new();
    for i in 0..ROWS {
        let db = db.clone();
        tasks.spawn(async move {
            let mut item = Item::nth(i);
            let row = db.create(MODEL, item.record()).await.expect("seed row");
            item.id = row.get("id").expect("id");
            item
        });
    }
    let mut items = Vec::with_capacity(ROWS);
    while let Some(item) = tasks.join_next().await {
        items.push(item.expect("seed task"));
    }
    (db, items)
}

async fn list(db: &Db, query: Query) -> Page {
    db.list(MODEL, query).await.expect("list")
}

fn ids(page: &Page) -> Vec<Uuid> {
    page.rows.iter().map(|r| r.get("id").expect("id")).collect()
}

fn sorted(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.sort();
    ids
}

/// A label, a filter, and which seeded rows it must select.
type FilterCase = (&'static str, Filter, Box<dyn Fn(&Item) -> bool>);

#[tokio::test]
async fn every_filter_operator_selects_exactly_the_matching_rows() {
    let (db, items) = seeded("list_filter").await;
    let ap_or_banana = |r: &Item| r.name.starts_with("Apple") || r.name.starts_with("Banana");
    let cases: Vec<FilterCase> = vec![
        ("=", Filter::eq("qty", 5_i64), Box::new(|r| r.qty == 5)),
        ("<>", Filter::ne("qty", 5_i64), Box::new(|r| r.qty != 5)),
        ("<", Filter::lt("qty", 5_i64), Box::new(|r| r.qty < 5)),
        ("<=", Filter::le("qty", 5_i64), Box::new(|r| r.qty <= 5)),
        (">", Filter::gt("qty", 5_i64), Box::new(|r| r.qty > 5)),
        (">=", Filter::ge("qty", 5_i64), Box::new(|r| r.qty >= 5)),
        (
            "<> skips NULL (SQL semantics)",
            Filter::ne("category", "x"),
            Box::new(|r| r.category.as_deref() == Some("y")),
        ),
        (
            "IN",
            Filter::is_in("qty", [1_i64, 2, 3]),
            Box::new(|r| [1, 2, 3].contains(&r.qty)),
        ),
        (
            "IN with an empty list",
            Filter::is_in("qty", Vec::<i64>::new()),
            Box::new(|_| false),
        ),
        (
            "IN with 70,000 values",
            Filter::is_in("name", (0..70_000).map(|i| format!("Banana-{i:03}"))),
            Box::new(|r| r.name.starts_with("Banana-")),
        ),
        (
            "LIKE is case-sensitive",
            Filter::like("name", "Ap%"),
            Box::new(|r| r.name.starts_with("Ap")),
        ),
        (
            "LIKE with _",
            Filter::like("name", "cherry-00_"),
            Box::new(|r| r.name.starts_with("cherry-00")),
        ),
        (
            "ILIKE ignores case",
            Filter::ilike("name", "ap%"),
            Box::new(|r| r.name.to_lowercase().starts_with("ap")),
        ),
        (
            "IS NULL",
            Filter::is_null("category"),
            Box::new(|r| r.category.is_none()),
        ),
        (
            "IS NOT NULL",
            Filter::is_not_null("category"),
            Box::new(|r| r.category.is_some()),
        ),
        (
            "(grp = 1 OR grp = 3) AND (qty >= 10 OR category IS NULL)",
            Filter::eq("grp", 1_i32)
                .or(Filter::eq("grp", 3_i32))
                .and(Filter::ge("qty", 10_i64).or(Filter::is_null("category"))),
            Box::new(|r| (r.grp == 1 || r.grp == 3) && (r.qty >= 10 || r.category.is_none())),
        ),
        (
            "OR of ANDs",
            Filter::And(vec![
                Filter::like("name", "Apple%"),
                Filter::lt("qty", 8_i64),
            ])
            .or(Filter::And(vec![
                Filter::like("name", "Banana%"),
                Filter::gt("qty", 15_i64),
            ])),
            Box::new(move |r| {
                ap_or_banana(r)
                    && if r.name.starts_with("Apple") {
                        r.qty < 8
                    } else {
                        r.qty > 15
                    }
            }),
        ),
        ("empty AND holds", Filter::And(vec![]), Box::new(|_| true)),
        (
            "empty OR never holds",
            Filter::Or(vec![]),
            Box::new(|_| false),
        ),
    ];
    for (label, filter, matches) in cases {
        let page = list(&db, Query::new().filter(filter).limit(ALL)).await;
        let expected: Vec<Uuid> = items.iter().filter(|r| matches(r)).map(|r| r.id).collect();
        assert_eq!(page.total, Some(expected.len() as u64), "{label}: total");
        assert_eq!(sorted(ids(&page)), sorted(expected), "{label}: rows");
    }
    db.close().await;
}

#[tokio::test]
async fn calling_filter_twice_keeps_rows_matching_both() {
    let (db, items) = seeded("list_and").await;
    let query = Query::new()
        .filter(Filter::eq("grp", 2_i32))
        .filter(Filter::is_not_null("category"))
        .limit(ALL);
    let page = list(&db, query).await;
    let expected = items
        .iter()
        .filter(|r| r.grp == 2 && r.category.is_some())
        .map(|r| r.id);
    assert!(!page.rows.is_empty());
    assert_eq!(sorted(ids(&page)), sorted(expected.collect()));
    db.close().await;
}

/// Compare two items by `grp` descending, then `qty` ascending, then `id`.
fn grp_desc_qty_asc(a: &Item, b: &Item) -> Ordering {
    b.grp
        .cmp(&a.grp)
        .then(a.qty.cmp(&b.qty))
        .then(a.id.cmp(&b.id))
}

#[tokio::test]
async fn sort_keys_apply_in_order_and_ties_are_broken_by_id() {
    let (db, mut items) = seeded("list_sort").await;
    items.sort_by(grp_desc_qty_asc);
    let ties = items
        .windows(2)
        .filter(|w| (w[0].grp, w[0].qty) == (w[1].grp, w[1].qty))
        .count();
    assert!(ties > 0, "the data must contain ties on every sort key");

    let page = list(
        &db,
        Query::new().sort_desc("grp").sort_asc("qty").limit(ALL),
    )
    .await;
    let expected: Vec<Uuid> = items.iter().map(|r| r.id).collect();
    assert_eq!(ids(&page), expected);

    let by_id_desc = list(&db, Query::new().sort_desc("id").limit(ALL)).await;
    let mut expected = expected;
    expected.sort_by(|a, b| b.cmp(a));
    assert_eq!(
        ids(&by_id_desc),
        expected,
        "an explicit id sort is honoured"
    );
    db.close().await;
}

#[tokio::test]
async fn pages_cover_every_row_exactly_once_and_report_the_full_total() {
    let (db, mut items) = seeded("list_pages").await;
    items.sort_by(grp_desc_qty_asc);
    let query = || Query::new().sort_desc("grp").sort_asc("qty").limit(7);

    let mut seen = Vec::new();
    for offset in (0..).step_by(7) {
        let page = list(&db, query().offset(offset)).await;
        assert_eq!(
            (page.total, page.limit, page.offset),
            (Some(ROWS as u64), 7, offset)
        );
        assert!(page.rows.len() <= 7);
        if page.rows.is_empty() {
            break;
        }
        seen.extend(ids(&page));
    }
    assert_eq!(seen, items.iter().map(|r| r.id).collect::<Vec<_>>());

    let past_end = list(&db, query().offset(ROWS as u64 + 50)).await;
    assert!(
        past_end.rows.is_empty(),
        "an offset past the end is an empty page"
    );
    assert_eq!(past_end.total, Some(ROWS as u64), "with the full total");
    db.close().await;
}

#[tokio::test]
async fn the_total_counts_every_match_not_just_the_page() {
    let (db, items) = seeded("list_total").await;
    let matching = items.iter().filter(|r| r.grp == 1).count() as u64;
    assert!(matching > 2);
    let page = list(
        &db,
        Query::new()
            .filter(Filter::eq("grp", 1_i32))
            .limit(2)
            .offset(1),
    )
    .await;
    assert_eq!((page.rows.len(), page.total), (2, Some(matching)));
    db.close().await;
}

#[tokio::test]
async fn a_query_without_limit_returns_the_default_page_size() {
    let (db, items) = seeded("list_default").await;
    let page = list(&db, Query::new()).await;
    assert_eq!(page.limit, DEFAULT_LIMIT);
    assert_eq!(page.rows.len() as u64, DEFAULT_LIMIT);
    assert_eq!(page.total, Some(items.len() as u64));
    let mut first: Vec<Uuid> = sorted(items.iter().map(|r| r.id).collect());
    first.truncate(DEFAULT_LIMIT as usize);
    assert_eq!(ids(&page), first, "unsorted pages are ordered by id");
    db.close().await;
}

#[tokio::test]
async fn a_limit_above_the_maximum_page_is_refused_and_the_maximum_itself_is_served() {
    let (db, items) = seeded("list_max_page").await;
    let err = db
        .list(MODEL, Query::new().limit(MAX_PAGE + 1))
        .await
        .expect_err("a page above MAX_PAGE");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("max_page"), "{err}");
    let page = list(&db, Query::new().limit(MAX_PAGE)).await;
    assert_eq!(page.rows.len(), items.len());
    db.close().await;
}

#[tokio::test]
async fn a_configured_maximum_page_refuses_larger_limits_and_caps_the_default() {
    let schema = unique_schema("list_own_max");
    let options = |rows| {
        pgactor::OpenOptions::new(primary_url())
            .registry(registry([item_model()]))
            .session(in_schema(&schema))
            .max_page(rows)
    };
    let zero = options(0).open().await.expect_err("max_page 0");
    assert_eq!(zero.kind(), ErrorKind::Config, "{zero}");
    let db = options(5).open().await.expect("open");
    for i in 0..8 {
        db.create(MODEL, Item::nth(i).record()).await.expect("seed");
    }
    let err = db
        .list(MODEL, Query::new().limit(6))
        .await
        .expect_err("a page above max_page");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let page = list(&db, Query::new()).await;
    assert_eq!((page.limit, page.rows.len(), page.total), (5, 5, Some(8)));
    let page = list(&db, Query::new().limit(5)).await;
    assert_eq!(page.rows.len(), 5);
    db.close().await;
}

/// A model read from a view that answers, in the session that reads it,
/// how many named prepared statements that session holds.
fn probe_model() -> Model {
    Model::new("Probe")
        .field(Field::new("prepared", FieldType::I64))
        .field(Field::new("long", FieldType::I64))
}

#[tokio::test]
async fn many_filter_shapes_on_one_connection_keep_at_most_the_statement_cache_size_on_the_server()
{
    const CACHE: usize = 8;
    const SHAPES: usize = 40;
    // AutoMigrate creates the item table; the probe is a view made by hand.
    let (setup, schema) = open_primary("list_stmt_cache", [item_model()]).await;
    setup.close().await;
    let admin = observer(&primary_url()).await;
    admin
        .batch_execute(&format!(
            "CREATE VIEW \"{schema}\".probe AS SELECT gen_random_uuid() AS id, \
             (SELECT count(*) FROM pg_prepared_statements) AS prepared, \
             (SELECT count(*) FROM pg_prepared_statements WHERE length(statement) > 16384) AS long, \
             now() AS created_at, now() AS updated_at"
        ))
        .await
        .expect("probe view");
    // One connection, kept while idle: every statement runs in one session.
    let one = pgactor::PoolConfig {
        max_open: Some(1),
        max_idle: Some(1),
        ..pgactor::PoolConfig::default()
    };
    let db = pgactor::OpenOptions::new(primary_url())
        .registry(registry([item_model(), probe_model()]))
        .session(in_schema(&schema))
        .write_pool(one.clone())
        .read_pool(one)
        .auto_migrate(false)
        .statement_cache_size(CACHE)
        .query_bounds(pgactor::QueryBounds {
            max_conditions: 2_000,
            max_or_branches: 2_000,
            ..pgactor::QueryBounds::default()
        })
        .open()
        .await
        .expect("open");
    db.create(MODEL, Item::nth(0).record()).await.expect("seed");
    // Each shape is a page statement and a count statement of its own.
    for shape in 1..=SHAPES {
        let filter = Filter::And((0..shape).map(|i| Filter::ge("qty", i as i64)).collect());
        list(&db, Query::new().filter(filter)).await;
    }
    // The probe's two statements are prepared together: while the second
    // is, the server holds one more than the cache until its eviction's
    // Close. Read once they are both cached, nothing is prepared.
    db.list("Probe", Query::new()).await.expect("probe");
    let probe = db.list("Probe", Query::new()).await.expect("probe");
    let prepared: i64 = probe.rows[0].get("prepared").expect("prepared");
    assert!(
        prepared as usize <= CACHE,
        "the read connection holds {prepared} prepared statements, more than {CACHE}"
    );
    let evicted = db.stats().read.statements_evicted;
    // Two statements per shape and two for the probe, less what is kept.
    assert!(
        evicted as usize >= 2 * SHAPES + 2 - CACHE,
        "{evicted} statements evicted"
    );
    // The hot statements still answer, prepared again when evicted.
    assert_eq!(list(&db, Query::new()).await.rows.len(), 1);
    // A text past 16 KiB is never kept: it goes unnamed.
    let huge = Filter::Or((0..2_000).map(|i| Filter::eq("qty", i as i64)).collect());
    assert_eq!(list(&db, Query::new().filter(huge)).await.rows.len(), 1);
    let probe = db.list("Probe", Query::new()).await.expect("probe");
    let long: i64 = probe.rows[0].get("long").expect("long");
    assert_eq!(long, 0, "a statement longer than 16 KiB was kept prepared");
    db.close().await;
}
