//! Optimistic locking: a model's version column. An update that carries
//! the version changes the row only while it is at that version (a stale
//! one is a Conflict and changes nothing); every update adds 1. Through
//! the `Db` handle, inside a transaction, by message, typed, behind the
//! bouncer, and added by AutoMigrate to a table that has rows.

use pgactor::{
    Call, Db, DbMsg, ErrorKind, Field, FieldType, Filter, Model, OpenOptions, PoolerMode, Record,
    TxMsg, TxOptions, WriteOp, WriteRequest,
};
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::support::db::{in_schema, registry, unique_schema};
use crate::support::topology::{bouncer_url, primary_url};

/// A document with a version, as a struct.
#[derive(Debug, Clone, Default, PartialEq, pgactor::Entity)]
struct Doc {
    id: Uuid,
    title: String,
    #[pgactor(default = 0)]
    pages: i64,
    #[pgactor(version)]
    version: i64,
}

async fn open_at(url: &str, pooler: PoolerMode, prefix: &str) -> Db {
    OpenOptions::new(url)
        .pooler(pooler)
        .registry(pgactor::Registry::new().with_entity::<Doc>().unwrap())
        .session(in_schema(&unique_schema(prefix)))
        .open()
        .await
        .expect("open")
}

async fn open(prefix: &str) -> Db {
    open_at(&primary_url(), PoolerMode::Direct, prefix).await
}

async fn create(db: &Db, title: &str) -> Uuid {
    let row = db
        .create("Doc", Record::new().with("title", title))
        .await
        .unwrap();
    assert_eq!(row.get::<i64>("version").unwrap(), 1, "a row starts at 1");
    row.get("id").unwrap()
}

/// The row's `(title, version)`.
async fn state(db: &Db, id: Uuid) -> (String, i64) {
    let row = db.read("Doc", id).await.unwrap();
    (row.get("title").unwrap(), row.get("version").unwrap())
}

fn at(version: i64, title: &str) -> Record {
    Record::new().with("title", title).with("version", version)
}

fn assert_stale(err: &pgactor::Error, version: i64) {
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("Doc") && text.contains(&format!("no longer at version {version}")),
        "{text}"
    );
    assert!(!err.is_retryable(), "a stale version is the data's answer");
}

#[tokio::test]
async fn a_stale_update_is_a_conflict_and_leaves_the_row_unchanged() {
    let db = open("ver_stale").await;
    let id = create(&db, "draft").await;

    let fresh = db.update("Doc", id, at(1, "first")).await.unwrap();
    assert_eq!(fresh.get::<i64>("version").unwrap(), 2);
    assert_eq!(state(&db, id).await, ("first".into(), 2));

    let err = db.update("Doc", id, at(1, "lost")).await.unwrap_err();
    assert_stale(&err, 1);
    assert_eq!(state(&db, id).await, ("first".into(), 2), "nothing changed");

    let missing = db.update("Doc", Uuid::now_v7(), at(2, "x")).await;
    assert_eq!(missing.unwrap_err().kind(), ErrorKind::NotFound);

    // A create cannot choose the version; an update can only expect one.
    let err = db.create("Doc", at(7, "chosen")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let err = db
        .update("Doc", id, Record::new().with("version", "2"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert_eq!(state(&db, id).await, ("first".into(), 2));
    db.close().await;
}

#[tokio::test]
async fn writes_without_the_version_still_add_one_to_it() {
    let db = open("ver_bump").await;
    let id = create(&db, "draft").await;
    let other = create(&db, "other").await;

    let row = db
        .update("Doc", id, Record::new().with("title", "unconditional"))
        .await
        .unwrap();
    assert_eq!(row.get::<i64>("version").unwrap(), 2);

    let changed = db
        .update_where(
            "Doc",
            Filter::And(vec![]),
            Record::new().with("pages", 3_i64),
        )
        .await
        .unwrap();
    assert_eq!(changed, 2);
    assert_eq!(state(&db, id).await.1, 3);
    assert_eq!(state(&db, other).await.1, 2);

    let row = db.increment("Doc", id, "pages", 1_i64, None).await.unwrap();
    assert_eq!(row.get::<i64>("version").unwrap(), 4);

    // The version is the adapter's to change.
    let by_filter = db
        .update_where("Doc", Filter::eq("title", "other"), at(2, "x"))
        .await;
    assert_eq!(by_filter.unwrap_err().kind(), ErrorKind::InvalidInput);
    let bumped = db.increment("Doc", id, "version", 10_i64, None).await;
    assert_eq!(bumped.unwrap_err().kind(), ErrorKind::InvalidInput);
    // Filtering on it is how rows at a version are updated by filter.
    let at_two = db
        .update_where(
            "Doc",
            Filter::eq("version", 2_i64),
            Record::new().with("pages", 9_i64),
        )
        .await
        .unwrap();
    assert_eq!(at_two, 1);
    assert_eq!(state(&db, other).await.1, 3);
    db.close().await;
}

#[tokio::test]
async fn of_concurrent_updaters_holding_one_version_exactly_one_wins() {
    let db = open("ver_race").await;
    let id = create(&db, "draft").await;
    let mut updaters = JoinSet::new();
    for n in 0..8 {
        let db = db.clone();
        updaters.spawn(async move { db.update("Doc", id, at(1, &format!("writer {n}"))).await });
    }
    let (mut won, mut stale) = (Vec::new(), 0);
    while let Some(result) = updaters.join_next().await {
        match result.unwrap() {
            Ok(row) => won.push(row.get::<String>("title").unwrap()),
            Err(err) => {
                assert_stale(&err, 1);
                stale += 1;
            }
        }
    }
    assert_eq!((won.len(), stale), (1, 7), "{won:?}");
    assert_eq!(state(&db, id).await, (won[0].clone(), 2));
    db.close().await;
}

#[tokio::test]
async fn a_typed_update_of_a_stale_struct_is_refused() {
    let db = open("ver_typed").await;
    let docs = db.typed::<Doc>();
    // The struct's version (0 here) is not written: the row starts at 1.
    let created = docs
        .create(&Doc {
            title: "draft".into(),
            ..Doc::default()
        })
        .await
        .unwrap();
    assert_eq!(created.version, 1);

    let mut mine = docs.read(created.id).await.unwrap();
    let mut theirs = mine.clone();
    mine.title = "mine".into();
    let saved = docs.update(mine.id, &mine).await.unwrap();
    assert_eq!((saved.title.as_str(), saved.version), ("mine", 2));

    theirs.title = "theirs".into();
    let err = docs.update(theirs.id, &theirs).await.unwrap_err();
    assert_stale(&err, 1);
    assert_eq!(docs.read(created.id).await.unwrap(), saved);

    // Re-read, change, save: the usual retry.
    let mut fresh = docs.read(created.id).await.unwrap();
    fresh.title = "theirs".into();
    assert_eq!(docs.update(fresh.id, &fresh).await.unwrap().version, 3);

    // A patch follows the record rule: with the version, conditional.
    let err = docs
        .patch(
            created.id,
            Record::new().with("pages", 1_i64).with("version", 2_i64),
        )
        .await
        .unwrap_err();
    assert_stale(&err, 2);
    let patched = docs
        .patch(created.id, Record::new().with("pages", 1_i64))
        .await
        .unwrap();
    assert_eq!((patched.pages, patched.version), (1, 4));
    db.close().await;
}

#[tokio::test]
async fn a_stale_update_inside_a_transaction_leaves_it_usable() {
    // The UPDATE ran and changed nothing: no server error, no abort.
    let db = open("ver_tx").await;
    let id = create(&db, "draft").await;
    let tx = db.begin(TxOptions::default()).await.unwrap();
    let err = tx.update("Doc", id, at(5, "stale")).await.unwrap_err();
    assert_stale(&err, 5);
    // So does an increment whose guard the row fails: both changed nothing.
    let guard = Some(Filter::ge("pages", 100_i64));
    let err = tx
        .increment("Doc", id, "pages", 1_i64, guard)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    let row = tx.update("Doc", id, at(1, "in tx")).await.unwrap();
    assert_eq!(row.get::<i64>("version").unwrap(), 2);
    let typed = tx.typed::<Doc>();
    let mut doc = typed.read(id).await.unwrap();
    doc.title = "typed in tx".into();
    let doc = typed.update(id, &doc).await.unwrap();
    assert_eq!(doc.version, 3);
    let err = typed
        .update(id, &Doc { version: 2, ..doc })
        .await
        .unwrap_err();
    assert_stale(&err, 2);
    tx.commit().await.unwrap();
    assert_eq!(state(&db, id).await, ("typed in tx".into(), 3));
    db.close().await;
}

#[tokio::test]
async fn versioned_updates_go_by_message_too() {
    let db = open("ver_msg").await;
    let id = create(&db, "draft").await;
    let write = |version: i64, title: &str| WriteRequest {
        model: "Doc".into(),
        op: WriteOp::Update {
            id: id.into(),
            patch: at(version, title),
        },
    };
    let row = ractor::call!(db.actor(), DbMsg::Write, write(1, "msg"), Call::here()).unwrap();
    assert_eq!(row.unwrap().get::<i64>("version").unwrap(), 2);
    let stale = ractor::call!(db.actor(), DbMsg::Write, write(1, "lost"), Call::here()).unwrap();
    assert_stale(&stale.unwrap_err(), 1);

    let doc = db.typed::<Doc>().read(id).await.unwrap();
    let typed = ractor::call!(
        db.actor(),
        DbMsg::update_as::<Doc>,
        id.into(),
        Doc {
            title: "typed msg".into(),
            ..doc.clone()
        },
        Call::here()
    )
    .unwrap()
    .unwrap();
    assert_eq!(typed.version, 3);
    let stale = ractor::call!(
        db.actor(),
        DbMsg::update_as::<Doc>,
        id.into(),
        doc,
        Call::here()
    )
    .unwrap();
    assert_stale(&stale.unwrap_err(), 2);

    let tx = db.begin(TxOptions::default()).await.unwrap();
    let stale = ractor::call!(tx.actor(), TxMsg::Write, write(2, "tx msg")).unwrap();
    assert_stale(&stale.unwrap_err(), 2);
    let row = ractor::call!(tx.actor(), TxMsg::Write, write(3, "tx msg")).unwrap();
    assert_eq!(row.unwrap().get::<i64>("version").unwrap(), 4);
    tx.commit().await.unwrap();
    assert_eq!(state(&db, id).await, ("tx msg".into(), 4));
    db.close().await;
}

#[tokio::test]
async fn a_stale_update_through_the_bouncer_is_a_conflict() {
    let db = open_at(&bouncer_url(), PoolerMode::Transaction, "ver_bnc").await;
    let id = create(&db, "draft").await;
    db.update("Doc", id, at(1, "first")).await.unwrap();
    let err = db.update("Doc", id, at(1, "lost")).await.unwrap_err();
    assert_stale(&err, 1);
    assert_eq!(state(&db, id).await, ("first".into(), 2));
    db.close().await;
}

#[tokio::test]
async fn a_version_added_to_a_table_with_rows_starts_them_at_one() {
    let schema = unique_schema("ver_add");
    let open = |model: Model| {
        OpenOptions::new(primary_url())
            .registry(registry([model]))
            .session(in_schema(&schema))
            .open()
    };
    let plain = Model::new("Note").field(Field::new("body", FieldType::Text));
    let db = open(plain.clone()).await.unwrap();
    let id: Uuid = db
        .create("Note", Record::new().with("body", "old"))
        .await
        .unwrap()
        .get("id")
        .unwrap();
    db.close().await;

    let db = open(plain.versioned()).await.unwrap();
    let row = db.read("Note", id).await.unwrap();
    assert_eq!(row.get::<i64>("version").unwrap(), 1);
    let updated = db
        .update(
            "Note",
            id,
            Record::new().with("body", "new").with("version", 1_i64),
        )
        .await
        .unwrap();
    assert_eq!(updated.get::<i64>("version").unwrap(), 2);
    assert!(db.migrate().await.unwrap().statements.is_empty());
    db.close().await;
}

#[tokio::test]
async fn batch_creates_start_at_the_default_version_and_an_upsert_update_adds_one() {
    let db = open("ver_batch").await;
    let docs = [
        Doc {
            title: "a".into(),
            version: 9, // not written: a create starts at the default
            ..Doc::default()
        },
        Doc {
            title: "b".into(),
            ..Doc::default()
        },
    ];
    let stored = db.typed::<Doc>().create_many(&docs).await.unwrap();
    assert!(stored.iter().all(|d| d.version == 1), "{stored:?}");

    let again = Record::new().with("id", stored[0].id).with("title", "a2");
    let answer = db
        .upsert("Doc", again, &["id"], pgactor::OnConflict::Update)
        .await
        .unwrap();
    let pgactor::Upserted::Updated(row) = answer else {
        panic!("the taken id updates its row: {answer:?}")
    };
    assert_eq!(row.get::<i64>("version").unwrap(), 2);
    assert_eq!(state(&db, stored[0].id).await, ("a2".into(), 2));

    let err = db.create_many("Doc", vec![at(3, "c")]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}
