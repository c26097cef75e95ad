//! Full-text search: searchable fields get a stored generated `tsvector`
//! and a GIN index from AutoMigrate; `Query::search` matches with
//! `websearch_to_tsquery` and orders by `ts_rank` unless sorted, with
//! filters, pages, soft delete, counts and aggregates; through the `Db`
//! handle, typed, in a transaction, by message and on the replica; and
//! the refusals before any SQL.

use pgactor::{
    Aggregate, Call, Db, DbMsg, ErrorKind, Field, FieldType, Filter, Model, OpenOptions, Query,
    QueryBounds, Record, Registry, TxMsg, TxOptions, WriteOp,
};
use uuid::Uuid;

use crate::support::db::{in_schema, open_primary, registry, unique_schema};
use crate::support::topology::{primary_url, replica_url};
use crate::support::wait::{eventually, ready};

/// Outdoor gear: a name and a description, both searchable (the name
/// weighs more), a price, soft delete.
fn product() -> Model {
    product_without_search()
        .field(Field::new("name", FieldType::Varchar(80)).searchable())
        .field(
            Field::new("description", FieldType::Text)
                .nullable()
                .searchable(),
        )
}

/// The same table's fields before they were searchable.
fn product_without_search() -> Model {
    Model::new("Product")
        .field(Field::new("price", FieldType::I64))
        .soft_delete()
}

/// The same with search: declared fields in the same columns, so the
/// table AutoMigrate made before is this model's table.
fn product_unsearched() -> Model {
    product_without_search()
        .field(Field::new("name", FieldType::Varchar(80)))
        .field(Field::new("description", FieldType::Text).nullable())
}

/// The gear: name, description, price.
#[rustfmt::skip]
const GEAR: [(&str, &str, i64); 21] = [
    ("Trail running shoes", "Lightweight shoes for running on rocky trails", 120),
    ("Road running shoes", "Cushioned shoes for long runs on the road", 110),
    ("Hiking boots", "Waterproof leather boots for hiking in the mountains", 180),
    ("Rain jacket", "Waterproof jacket that packs into its own pocket", 90),
    ("Wool socks", "Warm merino socks for hiking and running", 20),
    ("Camping stove", "Compact gas stove for camping trips", 60),
    ("Sleeping bag", "Down sleeping bag rated to minus ten degrees", 250),
    ("Tent", "Two person tent, light enough for long hikes", 300),
    ("Headlamp", "Bright headlamp for night running and camping", 40),
    ("Water bottle", "Insulated steel bottle keeps water cold all day", 25),
    ("Kids running shoes", "Durable running shoes for kids", 50),
    ("Trekking poles", "Carbon poles that take weight off your knees on descents", 130),
    ("Backpack", "Forty litre backpack for hiking and travel", 150),
    ("Sun hat", "Wide brim hat that shields from sun", 30),
    ("Gloves", "Windproof gloves for cold mornings", 35),
    ("Fleece", "Soft fleece for cool evenings at camp", 70),
    ("Running shorts", "Breathable shorts with a zip pocket", 40),
    ("Compass", "Classic baseplate compass for navigation", 25),
    ("First aid kit", "Compact kit with bandages and blister plasters", 45),
    ("Gaiters", "Waterproof gaiters keep snow and mud out of boots", 55),
    ("Café mug", "Enamel mug for crème brûlée at the crag", 15),
];

fn gear_rows() -> Vec<Record> {
    GEAR.iter()
        .map(|(name, description, price)| {
            Record::new()
                .with("name", *name)
                .with("description", *description)
                .with("price", *price)
        })
        .collect()
}

/// A fresh schema holding the gear.
async fn open_gear(prefix: &str) -> Db {
    let (db, _) = open_primary(prefix, [product()]).await;
    db.create_many("Product", gear_rows()).await.unwrap();
    db
}

/// The names a list answers, in order, and its total.
async fn names(db: &Db, query: Query) -> (Vec<String>, Option<u64>) {
    let page = db.list("Product", query).await.unwrap();
    let names = page.rows.iter().map(|r| r.get("name").unwrap()).collect();
    (names, page.total)
}

/// The names a search answers, in rank order.
async fn found(db: &Db, text: &str) -> Vec<String> {
    names(db, Query::new().search(text)).await.0
}

/// `names` sorted, for matches whose order is not the point.
fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

fn assert_kind<T: std::fmt::Debug>(result: pgactor::Result<T>, kind: ErrorKind, says: &str) {
    let err = result.expect_err("should fail");
    assert_eq!(err.kind(), kind, "{err}");
    assert!(err.to_string().contains(says), "{err}");
}

#[tokio::test]
async fn matches_rank_name_before_description_and_more_matches_first() {
    let db = open_gear("search_rank").await;
    // A match in the name (weight A) and the description ranks above one
    // in the description only.
    assert_eq!(found(&db, "boots").await, ["Hiking boots", "Gaiters"]);
    // English stems: "camp" in the fleece's description matches "camping";
    // the stove has it in its name and twice in all.
    let camping = found(&db, "camping").await;
    assert_eq!(camping[0], "Camping stove");
    assert_eq!(sorted(camping), ["Camping stove", "Fleece", "Headlamp"]);
    // All words must match: shoes and running.
    assert_eq!(
        sorted(found(&db, "running shoes").await),
        [
            "Kids running shoes",
            "Road running shoes",
            "Trail running shoes"
        ]
    );
    // More matches rank higher: "run" in the name and the description,
    // then in the name only, then in the description only.
    let running = found(&db, "running").await;
    assert_eq!(running.len(), 6);
    assert_eq!(
        sorted(running[..3].to_vec()),
        [
            "Kids running shoes",
            "Road running shoes",
            "Trail running shoes"
        ]
    );
    assert_eq!(running[3], "Running shorts");
    assert_eq!(sorted(running[4..].to_vec()), ["Headlamp", "Wool socks"]);
    // No match: no row, a total of 0.
    assert_eq!(
        names(&db, Query::new().search("kayak")).await,
        (vec![], Some(0))
    );
    // The hidden column is never answered.
    let row = &db
        .list("Product", Query::new().search("tent"))
        .await
        .unwrap()
        .rows[0];
    assert!(row.get::<String>("search_vector").is_err(), "{row:?}");
    let fields: Vec<&str> = row.iter().map(|(name, _)| name).collect();
    assert!(!fields.contains(&"search_vector"), "{fields:?}");
}

#[tokio::test]
async fn english_stems_words_and_leaves_stop_words_out() {
    let db = open_gear("search_stem").await;
    // "run" finds running and runs; "hike" finds hiking and hikes.
    assert_eq!(
        sorted(found(&db, "run").await),
        [
            "Headlamp",
            "Kids running shoes",
            "Road running shoes",
            "Running shorts",
            "Trail running shoes",
            "Wool socks"
        ]
    );
    assert_eq!(
        sorted(found(&db, "hikes").await),
        ["Backpack", "Hiking boots", "Tent", "Wool socks"]
    );
    // Case does not matter; unicode words match as written.
    assert_eq!(found(&db, "WATERPROOF JACKET").await, ["Rain jacket"]);
    assert_eq!(found(&db, "café").await, ["Café mug"]);
    assert_eq!(found(&db, "brûlée crème").await, ["Café mug"]);
    // Only stop words: nothing to match, no row (and no error).
    assert_eq!(found(&db, "the and of").await, Vec::<String>::new());
}

#[tokio::test]
async fn web_search_syntax_phrases_exclusions_and_or_and_odd_input_never_fails() {
    let db = open_gear("search_syntax").await;
    assert_eq!(
        sorted(found(&db, "\"running shoes\" -kids").await),
        ["Road running shoes", "Trail running shoes"]
    );
    assert_eq!(
        found(&db, "\"trail running\"").await,
        ["Trail running shoes"]
    );
    // The same words out of order are no phrase.
    assert_eq!(found(&db, "\"running trail\"").await, Vec::<String>::new());
    assert_eq!(
        sorted(found(&db, "socks or gloves").await),
        ["Gloves", "Wool socks"]
    );
    assert_eq!(
        sorted(found(&db, "waterproof -boots").await),
        ["Rain jacket"]
    );
    // Whatever a search box sends is a search, never a syntax error.
    for odd in [
        "\"unclosed quote",
        "---",
        "-",
        "or",
        "or or or",
        "!!!",
        "(a & b) | !c <-> d:*",
        "x'); DROP TABLE product; --",
        "\\",
        "日本語",
        "🏔️ mountains",
        "\"\"",
        "shoes \"",
    ] {
        let page = db.list("Product", Query::new().search(odd)).await;
        assert!(page.is_ok(), "{odd:?}: {page:?}");
    }
    // An emoji is a word too: no row holds it, so only an OR finds one.
    assert_eq!(found(&db, "🏔️ mountains").await, Vec::<String>::new());
    assert_eq!(found(&db, "🏔️ or mountains").await, ["Hiking boots"]);
}

#[tokio::test]
async fn a_search_combines_with_filters_pages_totals_and_a_sort() {
    let db = open_gear("search_pages").await;
    // Hiking gear from 100 up: boots (hiking twice, once in the name),
    // the backpack and the tent (hikes).
    let query = || {
        Query::new()
            .search("hiking")
            .filter(Filter::ge("price", 100_i64))
            .limit(2)
    };
    let (first, total) = names(&db, query()).await;
    assert_eq!(total, Some(3));
    assert_eq!(first.len(), 2);
    assert_eq!(first[0], "Hiking boots", "the best match first");
    let (second, total) = names(&db, query().offset(2)).await;
    assert_eq!(total, Some(3));
    assert_eq!(second.len(), 1);
    let mut every = [first, second].concat();
    every.sort();
    assert_eq!(every, ["Backpack", "Hiking boots", "Tent"]);

    // A sort replaces the rank; pages then follow a cursor.
    let by_price = || Query::new().search("hiking").sort_desc("price").limit(2);
    let page = db.list("Product", by_price()).await.unwrap();
    let first: Vec<String> = page.rows.iter().map(|r| r.get("name").unwrap()).collect();
    assert_eq!(first, ["Tent", "Hiking boots"]);
    let next = page.next.expect("a full page has a cursor");
    let (rest, total) = names(&db, by_price().after(next)).await;
    assert_eq!(rest, ["Backpack", "Wool socks"]);
    assert_eq!(total, Some(4));

    // A page ranked by relevance has no cursor, and takes none.
    let ranked = db
        .list("Product", Query::new().search("hiking").limit(1))
        .await
        .unwrap();
    assert!(ranked.next.is_none());
    let cursor = db
        .list("Product", Query::new().sort_asc("name").limit(1))
        .await
        .unwrap()
        .next
        .unwrap();
    assert_kind(
        db.list("Product", Query::new().search("hiking").after(cursor))
            .await,
        ErrorKind::InvalidInput,
        "by rank",
    );

    // An OR of a search and another condition, as a filter.
    let either = Filter::search("compass").or(Filter::eq("price", 15_i64));
    let (hits, _) = names(&db, Query::new().filter(either).sort_asc("name")).await;
    assert_eq!(hits, ["Café mug", "Compass"]);
}

#[tokio::test]
async fn counts_exists_aggregates_and_writes_by_filter_take_a_search() {
    let db = open_gear("search_count").await;
    let waterproof = || Filter::search("waterproof");
    assert_eq!(db.count("Product", waterproof()).await.unwrap(), 3);
    assert!(db.exists("Product", waterproof()).await.unwrap());
    assert!(!db.exists("Product", Filter::search("kayak")).await.unwrap());
    let total = db
        .aggregate(
            "Product",
            Aggregate::new().filter(waterproof()).sum("price"),
        )
        .await
        .unwrap();
    assert_eq!(total[0].get::<i64>("sum_price").unwrap(), 180 + 90 + 55);
    let raised = db
        .update_where("Product", waterproof(), Record::new().with("price", 1_i64))
        .await
        .unwrap();
    assert_eq!(raised, 3);
    // An update of a searchable field renews its words.
    let tent = &db
        .list("Product", Query::new().search("tent"))
        .await
        .unwrap()
        .rows[0];
    let id: Uuid = tent.get("id").unwrap();
    db.update(
        "Product",
        id,
        Record::new().with("name", "Waterproof shelter"),
    )
    .await
    .unwrap();
    assert_eq!(db.count("Product", waterproof()).await.unwrap(), 4);
    assert_eq!(found(&db, "shelter").await, ["Waterproof shelter"]);
    assert_eq!(
        found(&db, "tent").await,
        ["Waterproof shelter"],
        "in its description"
    );
    // Soft-deleted rows are not found, unless asked for.
    assert_eq!(db.delete_where("Product", waterproof()).await.unwrap(), 4);
    assert_eq!(found(&db, "waterproof").await, Vec::<String>::new());
    assert_eq!(db.count("Product", waterproof()).await.unwrap(), 0);
    let (deleted, total) = names(
        &db,
        Query::new()
            .search("waterproof")
            .only_deleted()
            .sort_asc("name"),
    )
    .await;
    assert_eq!(total, Some(4));
    assert_eq!(
        deleted,
        [
            "Gaiters",
            "Hiking boots",
            "Rain jacket",
            "Waterproof shelter"
        ]
    );
}

/// Notes searched word for word: `simple` neither stems nor drops words.
#[derive(Debug, Clone, Default, PartialEq, pgactor::Entity)]
#[pgactor(search_language = "simple")]
struct Article {
    id: Uuid,
    #[pgactor(searchable)]
    title: String,
    #[pgactor(searchable)]
    body: Option<String>,
    views: i64,
}

fn article(title: &str, body: Option<&str>) -> Article {
    Article {
        title: title.into(),
        body: body.map(Into::into),
        ..Article::default()
    }
}

#[tokio::test]
async fn typed_in_simple_by_message_and_in_a_transaction() {
    let db = OpenOptions::new(primary_url())
        .registry(Registry::new().with_entity::<Article>().unwrap())
        .session(in_schema(&unique_schema("search_typed")))
        .open()
        .await
        .unwrap();
    let articles = db.typed::<Article>();
    articles
        .create_many(&[
            article("Running in the rain", Some("Why the run is better wet")),
            article("The running club", None),
            article("Gear for wet days", Some("the rain jackets we tried")),
        ])
        .await
        .unwrap();
    let titles = |page: pgactor::Page<Article>| -> Vec<String> {
        page.rows.into_iter().map(|a| a.title).collect()
    };
    // simple: no stems, so "run" is only the word "run"; "the" is a word.
    let run = articles.list(Query::new().search("run")).await.unwrap();
    assert_eq!(titles(run), ["Running in the rain"]);
    let running = articles.list(Query::new().search("running")).await.unwrap();
    assert_eq!(
        sorted(titles(running)),
        ["Running in the rain", "The running club"]
    );
    let the = articles.list(Query::new().search("the")).await.unwrap();
    assert_eq!(the.total, Some(3));
    // A title match (A) outranks a body match (B), whatever the order made.
    let rain = articles.list(Query::new().search("rain")).await.unwrap();
    assert_eq!(titles(rain), ["Running in the rain", "Gear for wet days"]);
    assert_eq!(
        articles.count(Filter::search("rain -gear")).await.unwrap(),
        1
    );

    // As a message to the supervisor, typed and not.
    let call = Call::here;
    let by_message = ractor::call!(
        db.actor(),
        DbMsg::list_as::<Article>,
        Query::new().search("club"),
        call()
    )
    .unwrap()
    .unwrap();
    assert_eq!(titles(by_message), ["The running club"]);
    let req = pgactor::ListRequest {
        model: "Article".into(),
        query: Query::new().search("jackets"),
    };
    let page = ractor::call!(db.actor(), DbMsg::List, req, call())
        .unwrap()
        .unwrap();
    assert_eq!(
        page.rows[0].get::<String>("title").unwrap(),
        "Gear for wet days"
    );

    // In a transaction: its own new row is found, and gone after rollback.
    let tx = db.begin(TxOptions::default()).await.unwrap();
    let in_tx = tx.typed::<Article>();
    in_tx.create(&article("Snowshoes", None)).await.unwrap();
    let snow = in_tx.list(Query::new().search("snowshoes")).await.unwrap();
    assert_eq!(titles(snow), ["Snowshoes"]);
    let req = pgactor::ListRequest {
        model: "Article".into(),
        query: Query::new().search("snowshoes or club"),
    };
    let by_tx_message = ractor::call!(tx.actor(), TxMsg::List, req)
        .unwrap()
        .unwrap();
    assert_eq!(by_tx_message.total, Some(2));
    tx.rollback().await.unwrap();
    let after = articles
        .list(Query::new().search("snowshoes"))
        .await
        .unwrap();
    assert_eq!(after.total, Some(0));
    db.close().await;
}

#[tokio::test]
async fn a_search_runs_on_the_replica_like_a_list() {
    let schema = unique_schema("search_replica");
    let db = OpenOptions::new(primary_url())
        .read_dsn(replica_url())
        .registry(registry([product()]))
        .session(in_schema(&schema))
        .open()
        .await
        .unwrap();
    let (row, token) = db
        .write_with_token(
            "Product",
            WriteOp::Create(
                Record::new()
                    .with("name", "Avalanche beacon")
                    .with("price", 300_i64),
            ),
        )
        .await
        .unwrap();
    // With the write's token the search sees the row, wherever it runs.
    let page = db
        .after(token)
        .list("Product", Query::new().search("beacon"))
        .await
        .unwrap();
    assert_eq!(page.rows, [row]);
    // Once replicated, a search on the read pool finds it on the replica.
    eventually("the replica to answer the search", || async {
        let before = db.stats().replica.unwrap().primary_reads;
        let page = db
            .list("Product", Query::new().search("avalanche"))
            .await
            .unwrap();
        let on_replica = db.stats().replica.unwrap().primary_reads == before;
        ready(page.rows.len() == 1 && on_replica, ())
    })
    .await;
    db.close().await;
}

#[tokio::test]
async fn automigrate_is_idempotent_adds_search_to_a_table_and_names_drift() {
    let schema = unique_schema("search_migrate");
    let open = |model: Model| {
        OpenOptions::new(primary_url())
            .registry(registry([model]))
            .session(in_schema(&schema))
            .open()
    };
    let before = open(product_unsearched()).await.unwrap();
    before.create_many("Product", gear_rows()).await.unwrap();
    assert_kind(
        before.list("Product", Query::new().search("boots")).await,
        ErrorKind::InvalidInput,
        "Product has none",
    );
    before.close().await;

    // Searchable now: the column (made of the rows already there) and its
    // index are added.
    let db = open(product()).await.unwrap();
    assert_eq!(found(&db, "boots").await, ["Hiking boots", "Gaiters"]);
    let (index,): (String,) = db
        .query_one_as(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() \
             AND tablename = 'product' AND indexname LIKE '%gin%'",
        )
        .await
        .unwrap();
    assert!(index.contains("USING gin (search_vector)"), "{index}");
    // Opened again, nothing to do.
    let report = db.migrate().await.unwrap();
    assert_eq!(report, pgactor::MigrationReport::default());
    db.close().await;
    let again = open(product()).await.unwrap();
    assert_eq!(again.migrate().await.unwrap(), Default::default());
    again.close().await;

    // Another language is drift: named, left alone.
    let simple = open(product().search_language("simple")).await.unwrap();
    let report = simple.migrate().await.unwrap();
    assert!(report.statements.is_empty(), "{report:?}");
    assert_eq!(report.warnings.len(), 1, "{report:?}");
    assert!(
        report.warnings[0].contains("simple: name, description"),
        "{}",
        report.warnings[0]
    );
    simple.close().await;

    // A language the server lacks fails the open, named.
    let err = open(product().search_language("klingon"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("\"klingon\""), "{err}");
}

#[tokio::test]
async fn bad_declarations_and_searches_are_refused() {
    let refused = |model: Model, says: &str| {
        let err = Registry::new().with(model).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{err}");
        assert!(err.to_string().contains(says), "{err}");
    };
    let base = || Model::new("Doc").field(Field::new("title", FieldType::Text).searchable());
    refused(
        Model::new("Doc").field(Field::new("n", FieldType::I64).searchable()),
        "only text fields",
    );
    refused(
        Model::new("Doc")
            .field(Field::new("tags", FieldType::Array(pgactor::Elem::Text)).searchable()),
        "only text fields",
    );
    refused(
        base().field(Field::new("search_vector", FieldType::Text)),
        "name the field otherwise",
    );
    for language in ["English", "en-US", "x'y", "", "pg_catalog.english"] {
        refused(
            base().search_language(language),
            "lower-case plain identifier",
        );
    }
    refused(
        Model::new("Doc")
            .field(Field::new("title", FieldType::Text))
            .search_language("simple"),
        "no field is searchable",
    );
    // Without searchable fields, search_vector is an ordinary name.
    Registry::new()
        .with(Model::new("Doc").field(Field::new("search_vector", FieldType::Text)))
        .unwrap();

    let schema = unique_schema("search_refused");
    let db = OpenOptions::new(primary_url())
        .registry(registry([product(), Model::new("Plain")]))
        .session(in_schema(&schema))
        .model_query_bounds(
            "Product",
            QueryBounds {
                max_search_len: 16,
                ..QueryBounds::default()
            },
        )
        .open()
        .await
        .unwrap();
    let list = |query: Query| db.list("Product", query);
    assert_kind(
        db.list("Plain", Query::new().search("x")).await,
        ErrorKind::InvalidInput,
        "Plain has none",
    );
    assert_kind(
        db.count("Plain", Filter::search("x")).await,
        ErrorKind::InvalidInput,
        "Plain has none",
    );
    list(Query::new().search("a".repeat(16))).await.unwrap();
    assert_kind(
        list(Query::new().search("a".repeat(17))).await,
        ErrorKind::InvalidInput,
        "QueryBounds::max_search_len",
    );
    assert_kind(
        db.exists("Product", Filter::search("a".repeat(17))).await,
        ErrorKind::InvalidInput,
        "QueryBounds::max_search_len",
    );
    for empty in ["", "   ", "\n\t"] {
        assert_kind(
            list(Query::new().search(empty)).await,
            ErrorKind::InvalidInput,
            "empty",
        );
    }
    assert_kind(
        list(Query::new().search("a\0b")).await,
        ErrorKind::InvalidInput,
        "NUL",
    );
    // The hidden column is no field: not written, filtered or sorted on.
    assert_kind(
        db.create(
            "Product",
            Record::new()
                .with("name", "x")
                .with("price", 1_i64)
                .with("search_vector", "x"),
        )
        .await,
        ErrorKind::InvalidInput,
        "search_vector",
    );
    assert_kind(
        list(Query::new().filter(Filter::is_null("search_vector"))).await,
        ErrorKind::InvalidInput,
        "search_vector",
    );
    assert_kind(
        list(Query::new().sort_asc("search_vector")).await,
        ErrorKind::InvalidInput,
        "search_vector",
    );
    // The default bound is 1 KiB.
    assert_eq!(QueryBounds::default().max_search_len, 1024);
    db.close().await;
}
