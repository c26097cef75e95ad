//! PostgreSQL enum types, `interval`, `citext` and a custom type
//! (`ltree`), end to end: a model declared at run time (written and read
//! as `Record`s) and the same columns as a derived struct, each made by
//! AutoMigrate, written one row and many at a time (the unnest INSERT and,
//! from `COPY_MIN_ROWS` rows on, the binary COPY), read back, updated,
//! filtered, sorted and paged on, and migrated again without drift; the
//! enum and citext through a transaction-pooling PgBouncer too.

use pgactor::{
    Aggregate, Db, Entity, EnumType, ErrorKind, Field, FieldType, Filter, Interval, Model,
    OnConflict, OpenOptions, PgEnum, PoolerMode, Query, Record, SessionConfig, Sql, Upserted,
    Value, COPY_MIN_ROWS,
};
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use crate::support::db::{ids_matching, registry, typed_ids_matching, unique_schema};
use crate::support::observer::observer;
use crate::support::topology::{bouncer_url, primary_url, TempDatabase};

/// The enum type the run-time model declares.
static MOOD: EnumType = EnumType::new("mood", &["sad", "ok", "happy"]);

/// The same type as a Rust enum. Its labels sort unlike their text
/// (`happy` < `ok` < `sad`), so a sort in text order would show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PgEnum)]
#[pgactor(type_name = "mood")]
enum Mood {
    Sad,
    Ok,
    Happy,
}

/// The derived struct: every new type, plain and nullable.
#[derive(Debug, Clone, PartialEq, pgactor::Entity)]
#[pgactor(model = "TypedEntry")]
struct Entry {
    id: Uuid,
    #[pgactor(pg_enum)]
    mood: Mood,
    #[pgactor(pg_enum)]
    was: Option<Mood>,
    wait: Interval,
    #[pgactor(citext, unique)]
    nick: String,
    #[pgactor(sql_type = "public.ltree")]
    path: Option<String>,
}

/// The same columns declared at run time.
fn runtime_model() -> Model {
    Model::new("Entry")
        .field(Field::new("mood", FieldType::Enum(&MOOD)))
        .field(Field::new("was", FieldType::Enum(&MOOD)).nullable())
        .field(Field::new("wait", FieldType::Interval))
        .field(Field::new("nick", FieldType::Citext).unique())
        .field(Field::new("path", FieldType::Custom("public.ltree")).nullable())
}

/// Creates the `ltree` extension (the test's custom type, in schema
/// `public`, which the adapter's search path does not hold: the model
/// names it `public.ltree`) once; pgactor does not, it only names the
/// type.
async fn with_ltree(url: &str) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    // Tests running at once may race to create it: one wins.
    if let Err(e) = client
        .batch_execute("CREATE EXTENSION IF NOT EXISTS ltree")
        .await
    {
        assert_eq!(e.code(), Some(&SqlState::UNIQUE_VIOLATION), "{e}");
    }
}

fn options(url: &str, schema: &str) -> OpenOptions {
    OpenOptions::new(url)
        .registry(registry([runtime_model(), Entry::model()]))
        .session(SessionConfig {
            schema: Some(schema.to_owned()),
            ..SessionConfig::default()
        })
}

async fn open(schema: &str) -> Db {
    with_ltree(&primary_url()).await;
    options(&primary_url(), schema).open().await.expect("open")
}

fn minutes(n: i64) -> Interval {
    Interval::new(0, 0, n * 60_000_000)
}

fn entry(mood: Mood, was: Option<Mood>, wait: Interval, nick: &str, path: Option<&str>) -> Entry {
    Entry {
        id: Uuid::nil(),
        mood,
        was,
        wait,
        nick: nick.into(),
        path: path.map(Into::into),
    }
}

/// Three entries: every mood, waits that sort unlike them, nicks in
/// mixed case.
fn entries() -> Vec<Entry> {
    vec![
        entry(Mood::Happy, None, minutes(90), "Alice", Some("top.a")),
        entry(
            Mood::Sad,
            Some(Mood::Ok),
            Interval::new(1, 0, 0),
            "bob",
            Some("top.b.c"),
        ),
        entry(
            Mood::Ok,
            Some(Mood::Happy),
            Interval::new(0, 2, 0),
            "Carol",
            None,
        ),
    ]
}

fn record(e: &Entry) -> Record {
    Record::new()
        .with("mood", e.mood)
        .with("was", e.was)
        .with("wait", e.wait)
        .with("nick", e.nick.as_str())
        .with("path", e.path.clone())
}

async fn ids(db: &Db, filter: Filter) -> Vec<Uuid> {
    ids_matching(db, "Entry", filter).await
}

async fn sorted(db: &Db, query: Query) -> Vec<Uuid> {
    let page = db.list("Entry", query).await.expect("list");
    page.rows.iter().map(|r| r.get("id").expect("id")).collect()
}

#[test]
fn the_derived_columns_are_the_runtime_models() {
    assert_eq!(Entry::model().fields(), runtime_model().fields());
}

#[tokio::test]
async fn records_write_read_update_filter_and_sort_enums_intervals_citext_and_ltree() {
    let db = open(&unique_schema("pgtypes_rt")).await;
    let mut ids_made = Vec::new();
    for e in entries() {
        let created = db.create("Entry", record(&e)).await.expect("create");
        let id: Uuid = created.get("id").expect("id");
        let read = db.read("Entry", id).await.expect("read");
        assert_eq!(read.get::<String>("mood").unwrap(), e.mood.label());
        assert_eq!(
            read.get::<Option<String>>("was").unwrap(),
            e.was.map(|m| m.label().to_owned())
        );
        assert_eq!(read.get::<Interval>("wait").unwrap(), e.wait, "kept apart");
        assert_eq!(read.get::<String>("nick").unwrap(), e.nick, "case kept");
        assert_eq!(read.get::<Option<String>>("path").unwrap(), e.path);
        assert_eq!(
            read.value("wait").map(Value::to_json),
            Some(serde_json::to_value(e.wait).unwrap())
        );
        ids_made.push(id);
    }
    let [a, b, c] = [ids_made[0], ids_made[1], ids_made[2]];

    // Filters: the enum by label, IN and NOT IN lists, its order.
    assert_eq!(ids(&db, Filter::eq("mood", "sad")).await, [b]);
    assert_eq!(
        ids(&db, Filter::is_in("mood", ["sad", "happy"])).await,
        [a, b]
    );
    assert_eq!(ids(&db, Filter::not_in("mood", [Mood::Sad])).await, [a, c]);
    assert_eq!(
        ids(&db, Filter::lt("mood", "happy")).await,
        [b, c],
        "enum order"
    );
    assert_eq!(ids(&db, Filter::eq("was", Mood::Happy)).await, [c]);
    // Intervals compare as PostgreSQL does (a month is 30 days).
    assert_eq!(
        ids(&db, Filter::lt("wait", Interval::new(0, 1, 0))).await,
        [a]
    );
    assert_eq!(
        ids(&db, Filter::eq("wait", Interval::new(0, 30, 0))).await,
        [b]
    );
    // citext: equality and lists ignore case, as does LIKE.
    assert_eq!(ids(&db, Filter::eq("nick", "BOB")).await, [b]);
    assert_eq!(
        ids(&db, Filter::is_in("nick", ["alice", "CAROL"])).await,
        [a, c]
    );
    assert_eq!(ids(&db, Filter::like("nick", "c%")).await, [c]);
    // ltree, with its own operators: equality of its values.
    assert_eq!(ids(&db, Filter::eq("path", "top.b.c")).await, [b]);

    // Sorts follow each type's order: the labels', the intervals', case
    // ignored.
    let by = |field: &str| Query::new().sort_asc(field);
    assert_eq!(sorted(&db, by("mood")).await, [b, c, a]);
    assert_eq!(sorted(&db, by("wait")).await, [a, c, b]);
    assert_eq!(sorted(&db, by("nick")).await, [a, b, c]);
    // Pages after a cursor on the enum's order.
    let mut after = Vec::new();
    let mut query = by("mood").limit(1);
    loop {
        let page = db.list("Entry", query.clone()).await.expect("page");
        after.extend(page.rows.iter().map(|r| r.get::<Uuid>("id").unwrap()));
        match page.next {
            Some(cursor) => query = by("mood").limit(1).after(cursor),
            None => break,
        }
    }
    assert_eq!(after, [b, c, a]);
    // A cursor cannot follow a custom type's order.
    let page = db.list("Entry", by("path").limit(1)).await.expect("list");
    assert!(page.next.is_none());

    // Aggregates group in the labels' order and answer labels.
    let groups = db
        .aggregate("Entry", Aggregate::new().group_by("mood").count())
        .await
        .expect("aggregate");
    let labels: Vec<String> = groups.iter().map(|g| g.get("mood").unwrap()).collect();
    assert_eq!(labels, ["sad", "ok", "happy"]);
    let most = db
        .aggregate("Entry", Aggregate::new().max("mood").max("wait"))
        .await
        .expect("aggregate");
    assert_eq!(most[0].get::<String>("max_mood").unwrap(), "happy");
    assert_eq!(
        most[0].get::<Interval>("max_wait").unwrap(),
        Interval::new(1, 0, 0)
    );

    // Updates of each type.
    let updated = db
        .update(
            "Entry",
            a,
            Record::new()
                .with("mood", "ok")
                .with("wait", Interval::new(0, 0, -1))
                .with("nick", "ALICE")
                .with("path", "top.z"),
        )
        .await
        .expect("update");
    assert_eq!(updated.get::<String>("mood").unwrap(), "ok");
    assert_eq!(
        updated.get::<Interval>("wait").unwrap(),
        Interval::new(0, 0, -1)
    );
    assert_eq!(updated.get::<String>("nick").unwrap(), "ALICE");
    assert_eq!(updated.get::<String>("path").unwrap(), "top.z");

    // The unique citext refuses a nick another row holds in other case.
    let err = db
        .create(
            "Entry",
            record(&entry(Mood::Ok, None, minutes(1), "BoB", None)),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Constraint(pgactor::ConstraintKind::Unique),
        "{err}"
    );

    // Refused before any SQL: a text that is no label, an interval given
    // as text, an interval text that does not read.
    let refused = [
        record(&entries()[0]).with("mood", "SECRET"),
        record(&entries()[0]).with("wait", "1 day"),
    ];
    for bad in refused {
        let err = db.create("Entry", bad).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(!err.to_string().contains("SECRET"), "{err}");
    }
    let err = db
        .list("Entry", Query::new().filter(Filter::eq("mood", "glad")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("mood"), "{err}");
    #[derive(serde::Serialize)]
    struct Wait<'a> {
        mood: &'a str,
        wait: &'a str,
        nick: &'a str,
    }
    let model = runtime_model();
    let bad_text = Wait {
        mood: "ok",
        wait: "2 days",
        nick: "dan",
    };
    let err = Record::from_serde(&model, &bad_text).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let good_text = Wait {
        wait: "P2D",
        ..bad_text
    };
    let read = Record::from_serde(&model, &good_text).expect("ISO 8601 text");
    assert_eq!(
        read.get::<Interval>("wait").unwrap(),
        Interval::new(0, 2, 0)
    );
    // The server refuses what ltree does not read, in its own words.
    let err = db
        .create(
            "Entry",
            record(&entries()[0])
                .with("nick", "x")
                .with("path", "no..path"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Database, "{err}");
    assert!(err.to_string().contains("ltree syntax error"), "{err}");
}

#[tokio::test]
async fn batches_unnest_and_copy_every_type() {
    let db = open(&unique_schema("pgtypes_batch")).await;
    // A few rows: one INSERT unnesting one array per column.
    let rows: Vec<Record> = entries().iter().map(record).collect();
    let made = db.create_many("Entry", rows).await.expect("create_many");
    let nicks: Vec<String> = made.iter().map(|r| r.get("nick").unwrap()).collect();
    assert_eq!(nicks, ["Alice", "bob", "Carol"]);
    assert_eq!(
        made[1].get::<Interval>("wait").unwrap(),
        Interval::new(1, 0, 0)
    );
    assert_eq!(made[2].get::<String>("was").unwrap(), "happy");

    // An upsert on the citext key: a nick in other case is the same row.
    let upserted = db
        .upsert_many(
            "Entry",
            vec![record(&entry(Mood::Happy, None, minutes(5), "BOB", None))],
            &["nick"],
            OnConflict::Update,
        )
        .await
        .expect("upsert_many");
    let Upserted::Updated(row) = &upserted[0] else {
        panic!("{upserted:?}");
    };
    assert_eq!(
        row.get::<Uuid>("id").unwrap(),
        made[1].get::<Uuid>("id").unwrap()
    );
    assert_eq!(row.get::<String>("mood").unwrap(), "happy");

    // Many rows: the binary COPY, without the custom type (whose binary
    // form is its own) and then with it (an INSERT).
    let many = |prefix: &str, path: bool| -> Vec<Record> {
        (0..COPY_MIN_ROWS)
            .map(|n| {
                let mood = [Mood::Sad, Mood::Ok, Mood::Happy][n % 3];
                let row = Record::new()
                    .with("mood", mood)
                    .with("was", (n % 2 == 0).then_some(mood))
                    .with("wait", minutes(n as i64))
                    .with("nick", format!("{prefix}{n}"));
                match path {
                    true => row.with("path", format!("p.n{n}")),
                    false => row,
                }
            })
            .collect()
    };
    for (prefix, path) in [("Copy", false), ("Insert", true)] {
        let n = db
            .create_many_count("Entry", many(prefix, path))
            .await
            .expect("create_many_count");
        assert_eq!(n, COPY_MIN_ROWS as u64);
        let lower = prefix.to_lowercase();
        let found = db
            .list(
                "Entry",
                Query::new()
                    .filter(Filter::eq("nick", format!("{lower}7")))
                    .sort_asc("id"),
            )
            .await
            .expect("list");
        let row = &found.rows[0];
        assert_eq!(row.get::<String>("nick").unwrap(), format!("{prefix}7"));
        assert_eq!(row.get::<String>("mood").unwrap(), "ok");
        assert_eq!(row.get::<Option<String>>("was").unwrap(), None);
        assert_eq!(row.get::<Interval>("wait").unwrap(), minutes(7));
        assert_eq!(
            row.get::<Option<String>>("path").unwrap(),
            path.then(|| "p.n7".to_owned())
        );
        let sad = db
            .count(
                "Entry",
                Filter::and(
                    Filter::eq("mood", "sad"),
                    Filter::ilike("nick", format!("{lower}%")),
                ),
            )
            .await
            .expect("count");
        assert_eq!(sad, COPY_MIN_ROWS.div_ceil(3) as u64);
    }
    // A label the type lacks is refused for the whole batch, before SQL.
    let mut bad = many("Bad", false);
    bad[999].set("mood", "SECRET");
    let err = db.create_many_count("Entry", bad).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("row 999"), "{err}");
}

#[tokio::test]
async fn a_derived_struct_round_trips_the_same_columns() {
    let db = open(&unique_schema("pgtypes_typed")).await;
    let of = db.typed::<Entry>();
    let mut stored = Vec::new();
    for e in entries() {
        let created = of.create(&e).await.expect("create");
        assert_eq!(
            Entry {
                id: created.id,
                ..e
            },
            created
        );
        assert_eq!(of.read(created.id).await.expect("read"), created);
        stored.push(created);
    }
    let [a, b, c] = [stored[0].id, stored[1].id, stored[2].id];
    let typed = |filter| typed_ids_matching(&db, filter, |row: &Entry| row.id);
    assert_eq!(typed(Entry::MOOD.eq(Mood::Sad)).await, [b]);
    assert_eq!(
        typed(Entry::MOOD.is_in([Mood::Ok, Mood::Happy])).await,
        [a, c]
    );
    assert_eq!(typed(Entry::WAS.eq(Mood::Ok)).await, [b]);
    assert_eq!(typed(Entry::WAIT.gt(minutes(90))).await, [b, c]);
    assert_eq!(typed(Entry::NICK.eq("ALICE")).await, [a]);
    let page = of
        .list(Query::new().sort_desc(Entry::MOOD))
        .await
        .expect("list");
    let moods: Vec<Mood> = page.rows.iter().map(|e| e.mood).collect();
    assert_eq!(moods, [Mood::Happy, Mood::Ok, Mood::Sad]);

    let mut changed = stored[1].clone();
    changed.mood = Mood::Happy;
    changed.was = None;
    changed.wait = Interval::new(-1, 3, 5);
    changed.path = Some("x.y".into());
    assert_eq!(of.update(b, &changed).await.expect("update"), changed);

    let more: Vec<Entry> = (0..3)
        .map(|n| entry(Mood::Ok, None, minutes(n), &format!("many{n}"), None))
        .collect();
    let made = of.create_many(&more).await.expect("create_many");
    assert_eq!(made.len(), 3);
    assert_eq!(made[2].wait, minutes(2));
    let copied: Vec<Entry> = (0..COPY_MIN_ROWS)
        .map(|n| {
            entry(
                Mood::Sad,
                Some(Mood::Ok),
                minutes(1),
                &format!("copied{n}"),
                None,
            )
        })
        .collect();
    assert_eq!(
        of.create_many_count(&copied)
            .await
            .expect("create_many_count"),
        COPY_MIN_ROWS as u64
    );
    let found = typed(Entry::NICK.eq("COPIED9")).await;
    let read = of.read(found[0]).await.expect("read");
    assert_eq!(
        (read.mood, read.was, read.nick.as_str()),
        (Mood::Sad, Some(Mood::Ok), "copied9")
    );

    // A label written by hand that the enum lacks is a Decode error
    // naming the column.
    let add = Sql::new(format!(
        "ALTER TYPE \"{}\".mood ADD VALUE 'gone'",
        db.session().schema
    ));
    db.execute(add).await.expect("add a label");
    let set = Sql::new("UPDATE typed_entry SET mood = 'gone' WHERE id = $1").bind(c);
    assert_eq!(db.execute(set).await.expect("update"), 1);
    let err = of.read(c).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode, "{err}");
    assert!(err.to_string().contains("mood"), "{err}");
}

#[tokio::test]
async fn automigrate_adds_labels_reports_removed_ones_and_finds_no_drift_again() {
    let schema = unique_schema("pgtypes_migrate");
    let db = open(&schema).await;
    let again = db.migrate().await.expect("migrate");
    assert_eq!(
        again,
        pgactor::MigrationReport::default(),
        "no DDL, no drift"
    );
    db.close().await;

    // A later version: a label added between two, one dropped.
    static LATER: EnumType = EnumType::new("mood", &["sad", "meh", "ok"]);
    let later = Model::new("Entry")
        .field(Field::new("mood", FieldType::Enum(&LATER)))
        .field(Field::new("was", FieldType::Enum(&LATER)).nullable())
        .field(Field::new("wait", FieldType::Interval))
        .field(Field::new("nick", FieldType::Citext).unique())
        .field(Field::new("path", FieldType::Custom("public.ltree")).nullable());
    let db = OpenOptions::new(primary_url())
        .registry(registry([later]))
        .session(SessionConfig {
            schema: Some(schema.clone()),
            ..SessionConfig::default()
        })
        .auto_migrate(false)
        .open()
        .await
        .expect("open");
    let report = db.migrate().await.expect("migrate");
    assert_eq!(
        report.statements,
        [format!(
            "ALTER TYPE \"{schema}\".\"mood\" ADD VALUE IF NOT EXISTS 'meh' AFTER 'sad'"
        )]
    );
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(
        report.warnings[0].contains("happy"),
        "{:?}",
        report.warnings
    );
    // The new label is usable at once, and sorts where it was declared.
    let made = db
        .create(
            "Entry",
            Record::new()
                .with("mood", "meh")
                .with("wait", minutes(1))
                .with("nick", "new"),
        )
        .await
        .expect("create with the new label");
    assert_eq!(made.get::<String>("mood").unwrap(), "meh");
    let n = db
        .count(
            "Entry",
            Filter::and(Filter::gt("mood", "sad"), Filter::lt("mood", "ok")),
        )
        .await
        .expect("count");
    assert_eq!(n, 1);
}

#[tokio::test]
async fn enums_intervals_and_citext_work_through_a_transaction_pooling_bouncer() {
    let schema = unique_schema("pgtypes_bouncer");
    with_ltree(&primary_url()).await;
    let db = options(&bouncer_url(), &schema)
        .pooler(PoolerMode::Transaction)
        .open()
        .await
        .expect("open through the bouncer");
    let made = db
        .create("Entry", record(&entries()[1]))
        .await
        .expect("create");
    let id: Uuid = made.get("id").expect("id");
    // Each statement is unnamed and reads the named types as text: no
    // type lookup (a named statement) reaches the bouncer.
    for _ in 0..3 {
        let read = db.read("Entry", id).await.expect("read");
        assert_eq!(read.get::<String>("mood").unwrap(), "sad");
        assert_eq!(read.get::<String>("nick").unwrap(), "bob");
        assert_eq!(ids(&db, Filter::eq("nick", "BOB")).await, [id]);
        assert_eq!(ids(&db, Filter::is_in("mood", ["sad", "ok"])).await, [id]);
    }
    let of = db.typed::<Entry>();
    let typed = of.create(&entries()[0]).await.expect("typed create");
    assert_eq!(
        of.read(typed.id).await.expect("typed read").mood,
        Mood::Happy
    );
    let copied: Vec<Entry> = (0..COPY_MIN_ROWS)
        .map(|n| entry(Mood::Ok, None, minutes(3), &format!("b{n}"), None))
        .collect();
    assert_eq!(
        of.create_many_count(&copied)
            .await
            .expect("copy through the bouncer"),
        COPY_MIN_ROWS as u64
    );
    let page = of
        .list(Query::new().filter(Entry::NICK.eq("B5")).limit(5))
        .await
        .expect("list");
    assert_eq!(page.rows[0].wait, minutes(3));
    let rows = db
        .create_many("Entry", vec![record(&entries()[2])])
        .await
        .expect("create_many");
    assert_eq!(rows[0].get::<String>("mood").unwrap(), "ok");
}

#[tokio::test]
async fn a_role_that_cannot_create_citext_fails_open_with_a_config_error_naming_it() {
    // A database without citext, and a role that owns a schema there but
    // may not create extensions (no CREATE on the database).
    let temp = TempDatabase::create("pgtypes_ext").await;
    let role = format!("pga_role_{}", &Uuid::new_v4().simple().to_string()[..12]);
    let admin = observer(&temp.url).await;
    admin
        .batch_execute(&format!(
            "CREATE ROLE \"{role}\" LOGIN; CREATE SCHEMA app AUTHORIZATION \"{role}\""
        ))
        .await
        .expect("role");
    let url = temp.url.replacen("://postgres@", &format!("://{role}@"), 1);
    assert_ne!(url, temp.url, "a URL of the postgres user");
    let nick = Model::new("Member").field(Field::new("nick", FieldType::Citext).unique());
    let err = OpenOptions::new(url)
        .registry(registry([nick]))
        .session(SessionConfig {
            schema: Some("app".into()),
            ..SessionConfig::default()
        })
        .open()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("CREATE EXTENSION citext"), "{err}");
    drop(admin);
    temp.remove().await;
    observer(&primary_url())
        .await
        .batch_execute(&format!("DROP ROLE \"{role}\""))
        .await
        .expect("drop role");
}
