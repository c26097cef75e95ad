//! Keyset pagination and lists without a count, against real rows: a walk
//! by cursor meets every row once in the order an OFFSET walk meets them
//! (ascending, descending, mixed directions, NULLs, ties broken by `id`, a
//! filter), keeps its place when rows before it come and go, refuses
//! cursors that do not fit, and works typed, in a transaction and by
//! message. `without_total` answers no count and sends none.

use std::cmp::Ordering;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use pgactor::{
    Call, Cursor, Db, DbMsg, Direction, ErrorKind, Field, FieldType, Filter, ListRequest, Model,
    Page, PrimaryKey, Query, Record, TxMsg, TxOptions, MAX_CURSOR_LEN,
};
use ractor::call;

use crate::support::db::{open_primary, stock_model, StockBalance};
use crate::support::observer::{observer, statements_containing};
use crate::support::topology::primary_url;

const MODEL: &str = "Entry";
/// Not a multiple of [`PAGE`]: the last page is short.
const ROWS: i64 = 157;
const PAGE: u64 = 10;

/// `id` bigint identity; `grp` with 4 values and `score` with 7 (many
/// ties); `label` NULL in every fifth row; `doc` jsonb.
fn entry_model() -> Model {
    Model::new(MODEL)
        .table_name("entry")
        .primary_key(PrimaryKey::Identity)
        .field(Field::new("grp", FieldType::I32))
        .field(Field::new("score", FieldType::F64))
        .field(Field::new("label", FieldType::Text).nullable())
        .field(Field::new("doc", FieldType::Json).nullable())
}

/// A row as the test knows it.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    id: i64,
    grp: i32,
    score: f64,
    label: Option<String>,
}

impl Entry {
    fn of(row: &Record) -> Entry {
        Entry {
            id: row.get("id").expect("id"),
            grp: row.get("grp").expect("grp"),
            score: row.get("score").expect("score"),
            label: row.get("label").expect("label"),
        }
    }

    /// PostgreSQL's order of one field: NULL above every value.
    fn cmp_by(&self, other: &Entry, field: &str) -> Ordering {
        match field {
            "id" => self.id.cmp(&other.id),
            "grp" => self.grp.cmp(&other.grp),
            "score" => self.score.total_cmp(&other.score),
            "label" => match (&self.label, &other.label) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => a.cmp(b),
            },
            other => panic!("no field {other}"),
        }
    }
}

/// A fresh schema with [`ROWS`] entries, inserted in one statement.
async fn seeded(prefix: &str) -> Db {
    let (db, _) = open_primary(prefix, [entry_model()]).await;
    db.execute(format!(
        "INSERT INTO entry (grp, score, label, created_at, updated_at) \
         SELECT g % 4, (g * 3 % 7)::float8 / 2, \
                CASE WHEN g % 5 = 0 THEN NULL ELSE 'l' || (g % 6) END, now(), now() \
         FROM generate_series(1, {ROWS}) AS g"
    ))
    .await
    .expect("seed");
    db
}

async fn every_entry(db: &Db) -> Vec<Entry> {
    let page = db
        .list(MODEL, Query::new().limit(ROWS as u64 * 2))
        .await
        .expect("list all");
    page.rows.iter().map(Entry::of).collect()
}

/// `rows` in the order of `sort` then `id`, as the server sorts them.
fn in_order(mut rows: Vec<Entry>, sort: &[(&str, Direction)]) -> Vec<i64> {
    rows.sort_by(|a, b| {
        sort.iter()
            .chain([("id", Direction::Asc)].iter())
            .map(|(field, dir)| match dir {
                Direction::Asc => a.cmp_by(b, field),
                Direction::Desc => b.cmp_by(a, field),
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    });
    rows.iter().map(|e| e.id).collect()
}

fn sorted_query(sort: &[(&str, Direction)]) -> Query {
    sort.iter()
        .fold(Query::new(), |q, (field, dir)| q.sort_by(*field, *dir))
        .limit(PAGE)
}

fn ids(page: &Page) -> Vec<i64> {
    page.rows.iter().map(|r| r.get("id").expect("id")).collect()
}

/// Every page of `query` by cursor, each page's rows' ids; checks that a
/// full page and only a full page answers a cursor.
async fn walk_by_cursor(db: &Db, query: Query) -> Vec<i64> {
    let mut seen = Vec::new();
    let mut page = db.list(MODEL, query.clone()).await.expect("first page");
    loop {
        seen.extend(ids(&page));
        assert_eq!(page.next.is_some(), page.rows.len() as u64 == PAGE);
        let Some(next) = page.next else { break };
        // Through its token, as a client would hand it back.
        let next = Cursor::parse(&next.to_string()).expect("our own token");
        page = db
            .list(MODEL, query.clone().after(next))
            .await
            .expect("next page");
        assert_eq!(page.offset, 0);
    }
    seen
}

async fn walk_by_offset(db: &Db, query: Query) -> Vec<i64> {
    let mut seen = Vec::new();
    for n in 0.. {
        let page = db
            .list(MODEL, query.clone().offset(n * PAGE))
            .await
            .expect("page");
        seen.extend(ids(&page));
        if (page.rows.len() as u64) < PAGE {
            break;
        }
    }
    seen
}

#[tokio::test]
async fn walking_by_cursor_meets_every_row_once_in_the_offset_order() {
    use Direction::{Asc, Desc};
    let db = seeded("keyset_walk").await;
    let all = every_entry(&db).await;
    assert_eq!(all.len(), ROWS as usize);
    let sorts: &[&[(&str, Direction)]] = &[
        &[],
        &[("grp", Asc)],
        &[("grp", Desc)],
        &[("grp", Asc), ("score", Asc)],
        &[("grp", Desc), ("score", Asc)],
        &[("score", Desc), ("grp", Desc)],
        &[("label", Asc)],
        &[("label", Desc)],
        &[("grp", Desc), ("label", Asc), ("score", Desc)],
        &[("id", Desc)],
        &[("grp", Asc), ("id", Desc), ("label", Asc)],
    ];
    for sort in sorts {
        let expected = in_order(all.clone(), sort);
        let by_cursor = walk_by_cursor(&db, sorted_query(sort).without_total()).await;
        assert_eq!(by_cursor, expected, "{sort:?} by cursor");
        let by_offset = walk_by_offset(&db, sorted_query(sort)).await;
        assert_eq!(by_offset, expected, "{sort:?} by offset");
    }
    // With a filter (and the count, which counts all the filter matches).
    let sort = [("label", Desc), ("score", Asc)];
    let query = sorted_query(&sort).filter(Filter::ne("grp", 2_i32));
    let expected = in_order(all.into_iter().filter(|e| e.grp != 2).collect(), &sort);
    let first = db.list(MODEL, query.clone()).await.expect("first");
    assert_eq!(first.total, Some(expected.len() as u64));
    let after = first.next.expect("a full page");
    let second = db.list(MODEL, query.clone().after(after)).await.unwrap();
    assert_eq!(second.total, Some(expected.len() as u64), "the same count");
    assert_eq!(walk_by_cursor(&db, query.clone()).await, expected);
    assert_eq!(walk_by_offset(&db, query).await, expected);
    db.close().await;
}

#[tokio::test]
async fn rows_coming_and_going_before_the_cursor_do_not_shift_the_pages_after_it() {
    let db = seeded("keyset_moves").await;
    // Newest first: new rows land before the cursor.
    let query = Query::new().sort_desc("id").limit(PAGE).without_total();
    let first = db.list(MODEL, query.clone()).await.unwrap();
    let first_ids = ids(&first);
    let rest: Vec<i64> = (1..=ROWS).rev().skip(PAGE as usize).collect();
    // Two new rows before the cursor, five rows of the first page gone.
    for _ in 0..2 {
        db.create(MODEL, Record::new().with("grp", 9_i32).with("score", 0.0))
            .await
            .unwrap();
    }
    let gone = Filter::is_in("id", first_ids[..5].to_vec());
    db.delete_where(MODEL, gone).await.unwrap();

    let by_offset = db.list(MODEL, query.clone().offset(PAGE)).await.unwrap();
    assert_ne!(ids(&by_offset), rest[..PAGE as usize], "offset pages shift");
    let mut seen = Vec::new();
    let mut next = first.next;
    while let Some(cursor) = next {
        let page = db.list(MODEL, query.clone().after(cursor)).await.unwrap();
        seen.extend(ids(&page));
        next = page.next;
    }
    assert_eq!(seen, rest, "every remaining row after the cursor, once");
    db.close().await;
}

#[tokio::test]
async fn cursors_that_do_not_fit_the_query_are_refused_before_any_sql() {
    let db = seeded("keyset_refused").await;
    let by_grp = Query::new().sort_asc("grp").limit(PAGE);
    let good = db.list(MODEL, by_grp.clone()).await.unwrap().next.unwrap();
    let token = good.to_string();
    let json: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&token).unwrap()).unwrap();
    let edited = |edit: &dyn Fn(&mut Vec<serde_json::Value>)| {
        let mut items = json.as_array().unwrap().clone();
        edit(&mut items);
        Cursor::parse(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(&items).unwrap())).unwrap()
    };
    let refused = [
        (
            "an offset too",
            by_grp.clone().offset(PAGE).after(good.clone()),
        ),
        (
            "another sort",
            Query::new().sort_desc("grp").after(good.clone()),
        ),
        ("no sort", Query::new().after(good.clone())),
        (
            "a text for a number",
            by_grp.clone().after(edited(&|k| k[1] = "x".into())),
        ),
        (
            "a NULL in a NOT NULL field",
            by_grp
                .clone()
                .after(edited(&|k| k[1] = serde_json::Value::Null)),
        ),
        (
            "an integer too large",
            by_grp
                .clone()
                .after(edited(&|k| k[1] = (1_i64 << 40).into())),
        ),
        (
            "a value too few",
            by_grp.clone().after(edited(&|k| drop(k.pop()))),
        ),
        (
            "another fingerprint",
            by_grp.clone().after(edited(&|k| k[0] = 7.into())),
        ),
        (
            "a jsonb sort",
            Query::new().sort_asc("doc").after(good.clone()),
        ),
    ];
    let obs = observer(&primary_url()).await;
    let before = statements_containing(&obs, "FROM \"t_keyset_refused").await;
    for (what, query) in refused {
        let err = db.list(MODEL, query).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{what}: {err}");
    }
    assert_eq!(
        statements_containing(&obs, "FROM \"t_keyset_refused").await,
        before,
        "no SQL sent"
    );
    // Another model's cursor: the same sort, another fingerprint.
    let stock = Query::new().sort_asc("id").limit(1);
    let (other, _) = open_primary("keyset_other", [stock_model()]).await;
    other
        .create("StockBalance", Record::new().with("sku", "a"))
        .await
        .unwrap();
    let theirs = other
        .list("StockBalance", stock)
        .await
        .unwrap()
        .next
        .unwrap();
    let err = db
        .list(MODEL, Query::new().sort_asc("id").after(theirs))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    // Garbage and oversize tokens never become cursors.
    for token in ["", "%%%", "eyJ9", &"A".repeat(MAX_CURSOR_LEN + 4)] {
        let err = token.parse::<Cursor>().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{token:.20}: {err}");
    }
    // A jsonb sort makes no cursor, and pages by offset still work.
    let page = db
        .list(MODEL, Query::new().sort_asc("doc").limit(PAGE))
        .await
        .unwrap();
    assert_eq!((page.rows.len() as u64, page.next), (PAGE, None));
    other.close().await;
    db.close().await;
}

#[tokio::test]
async fn without_total_answers_no_count_and_sends_none() {
    let db = seeded("keyset_nocount").await;
    let query = Query::new().sort_desc("score").limit(PAGE);
    let counted = db.list(MODEL, query.clone()).await.unwrap();
    assert_eq!(counted.total, Some(ROWS as u64));
    let obs = observer(&primary_url()).await;
    let counts = || statements_containing(&obs, "SELECT count(*) FROM \"t_keyset_nocount");
    let before = counts().await;
    assert!(before > 0, "the counted page ran its count");
    let uncounted = db.list(MODEL, query.without_total()).await.unwrap();
    assert_eq!(uncounted.total, None);
    assert_eq!(uncounted.rows, counted.rows);
    assert_eq!(uncounted.next, counted.next);
    assert_eq!(counts().await, before, "no count ran");
    db.close().await;
}

/// StockBalance rows with `quantity` ties and some NULL notes.
async fn stock(db: &Db) -> Vec<uuid::Uuid> {
    let stock = db.typed::<StockBalance>();
    let mut ids = Vec::new();
    for i in 0..23 {
        let mut row = StockBalance::new(&format!("sku-{i:02}"), i % 4);
        row.note = (i % 3 != 0).then(|| format!("n{}", i % 2));
        ids.push(stock.create(&row).await.unwrap().id);
    }
    ids
}

fn stock_query() -> Query {
    Query::new()
        .sort_desc("quantity")
        .sort_asc("note")
        .limit(4)
        .without_total()
}

fn record_ids(page: &Page) -> Vec<uuid::Uuid> {
    page.rows.iter().map(|r| r.get("id").unwrap()).collect()
}

#[tokio::test]
async fn typed_lists_transactions_and_messages_walk_by_cursor_alike() {
    let (db, _) = open_primary("keyset_typed", [stock_model()]).await;
    let created = stock(&db).await;
    // The offset walk, as records: what every other walk must meet.
    let all = db
        .list("StockBalance", stock_query().limit(100))
        .await
        .unwrap();
    let expected = record_ids(&all);
    assert_eq!(expected.len(), created.len());

    let typed = db.typed::<StockBalance>();
    let mut seen = Vec::new();
    let mut page = typed.list(stock_query()).await.unwrap();
    loop {
        seen.extend(page.rows.iter().map(|s| s.id));
        let Some(next) = page.next else { break };
        page = typed.list(stock_query().after(next)).await.unwrap();
    }
    assert_eq!(seen, expected, "typed");

    let tx = db.begin(TxOptions::default()).await.unwrap();
    let mut seen = Vec::new();
    let mut page = tx.list("StockBalance", stock_query()).await.unwrap();
    loop {
        seen.extend(record_ids(&page));
        let Some(next) = page.next else { break };
        let query = stock_query().after(next);
        // By handle and by message in turn.
        page = if seen.len() % 8 == 0 {
            tx.list("StockBalance", query).await.unwrap()
        } else {
            let req = ListRequest {
                model: "StockBalance".into(),
                query,
            };
            call!(tx.actor(), TxMsg::List, req).unwrap().unwrap()
        };
    }
    assert_eq!(seen, expected, "in a transaction, by handle and by message");
    tx.commit().await.unwrap();

    let mut seen = Vec::new();
    let mut query = stock_query();
    loop {
        let req = ListRequest {
            model: "StockBalance".into(),
            query: query.clone(),
        };
        let page = call!(db.actor(), DbMsg::List, req, Call::here())
            .unwrap()
            .unwrap();
        seen.extend(record_ids(&page));
        let Some(next) = page.next else { break };
        query = stock_query().after(next);
    }
    assert_eq!(seen, expected, "by message");
    db.close().await;
}
