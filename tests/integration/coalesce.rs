//! Coalesced reads by id (`OpenOptions::coalesce_reads`, on by default):
//! reads of one model that wait at the same moment are answered by one
//! statement, each caller getting its own row, `NotFound` or error.
//!
//! To make reads wait at the same moment without timing, a test holds the
//! table's ACCESS EXCLUSIVE lock: the first `BATCHES_IN_FLIGHT` reads run
//! their own statements and wait for the lock, holding the model's
//! statement slots, and every read after them waits for the next batch
//! (`PoolStats::batch_waiting` says how many). Rolling the lock back lets
//! them through.

use std::future::Future;
use std::time::Duration;

use futures_util::future::join_all;
use pgactor::{
    Call, ConsistencyToken, Db, DbMsg, ErrorKind, Field, FieldType, Model, OpenOptions, PoolConfig,
    PoolerMode, ReadRequest, Record, SessionConfig, WriteOp, BATCHES_IN_FLIGHT, MAX_READ_BATCH,
};
use ractor::call;

use crate::support::blocking::{lock_stock_table, lock_table, until_lock_waiters};
use crate::support::db::{registry, stock_model, tagged_options, tagged_session, unique_schema};
use crate::support::observer::observer;
use crate::support::topology::{bouncer_url, primary_url, Topology};
use crate::support::wait::{read_when_replicated, until};

/// Open on the primary in a fresh schema (also the sessions' name) with
/// the stock model and `Other`, pools of 8.
async fn open_coalesced(prefix: &str) -> (Db, String) {
    let schema = unique_schema(prefix);
    let db = options(&schema).open().await.expect("open");
    (db, schema)
}

fn other_model() -> Model {
    Model::new("Other").field(Field::new("name", FieldType::Text))
}

fn options(schema: &str) -> OpenOptions {
    let pool = PoolConfig {
        max_open: Some(8),
        ..PoolConfig::default()
    };
    tagged_options(
        &primary_url(),
        [stock_model(), other_model()],
        pool,
        schema,
        schema,
    )
}

/// `n` stock rows; row `i` has quantity `i` and, when `i` is odd, a note.
async fn create_rows(db: &Db, n: usize) -> Vec<uuid::Uuid> {
    let mut ids = Vec::new();
    for i in 0..n {
        let mut row = Record::new()
            .with("sku", format!("s-{i}"))
            .with("quantity", i as i64);
        if i % 2 == 1 {
            row = row.with("note", format!("n-{i}"));
        }
        let row = db.create("StockBalance", row).await.expect("create");
        ids.push(row.get("id").expect("id"));
    }
    ids
}

/// Run `reads` while `schema`'s stock table is locked: the first
/// [`BATCHES_IN_FLIGHT`] wait for the lock on statements of their own,
/// and once `queued` more wait for a batch (polled at once, in this task,
/// so every one of them has joined its batch by the time the lock waits
/// are seen) the lock is rolled back. Answers their answers in order.
async fn behind_a_lock<T>(
    db: &Db,
    schema: &str,
    queued: usize,
    reads: Vec<impl Future<Output = T>>,
) -> Vec<T> {
    let admin = lock_stock_table(schema).await;
    let watcher = observer(&primary_url()).await;
    let all = join_all(reads);
    let release = async {
        until_lock_waiters(&watcher, schema, BATCHES_IN_FLIGHT as i64).await;
        until(&format!("{queued} reads to wait for a batch"), || async {
            db.stats().read.batch_waiting == queued
        })
        .await;
        admin.batch_execute("ROLLBACK").await.unwrap();
    };
    let (answers, ()) = tokio::join!(all, release);
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_waiting_together_share_one_statement_and_each_gets_its_own_answer() {
    let (db, schema) = open_coalesced("coalesce_many").await;
    let ids = create_rows(&db, 20).await;
    let missing = uuid::Uuid::now_v7();
    // Every id, one id twice more and an id without a row.
    let mut asked: Vec<uuid::Uuid> = ids.clone();
    asked.extend([ids[3], ids[3], missing]);
    let reads = asked
        .iter()
        .map(|id| db.read("StockBalance", *id))
        .collect();
    let queued = asked.len() - BATCHES_IN_FLIGHT;
    let answers = behind_a_lock(&db, &schema, queued, reads).await;

    for (id, answer) in asked.iter().zip(answers) {
        if *id == missing {
            let err = answer.expect_err("no such row");
            assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
            continue;
        }
        let row = answer.expect("read");
        assert_eq!(row.get::<uuid::Uuid>("id").unwrap(), *id);
        let i = ids.iter().position(|x| x == id).unwrap();
        assert_eq!(row.get::<i64>("quantity").unwrap(), i as i64);
    }
    let stats = db.stats().read;
    assert_eq!(stats.read_batches_total, 1, "{stats:?}");
    assert_eq!(stats.batched_reads_total, queued as u64, "{stats:?}");
    assert_eq!(stats.batch_waiting, 0, "{stats:?}");
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_to_the_pool_actor_join_the_same_batches() {
    let (db, schema) = open_coalesced("coalesce_msg").await;
    let ids = create_rows(&db, 12).await;
    let request = |id: uuid::Uuid| ReadRequest {
        model: "StockBalance".into(),
        id: id.into(),
    };
    let reads = ids
        .iter()
        .map(|id| {
            let (actor, req) = (db.actor(), request(*id));
            async move {
                call!(actor, DbMsg::Read, req, Call::here())
                    .expect("the actor answers")
                    .map(|row| row.get::<uuid::Uuid>("id").unwrap())
            }
        })
        .collect();
    let answers = behind_a_lock(&db, &schema, ids.len() - BATCHES_IN_FLIGHT, reads).await;
    for (id, answer) in ids.iter().zip(answers) {
        assert_eq!(answer.expect("read"), *id);
    }
    assert_eq!(db.stats().read.read_batches_total, 1);
    db.close().await;
}

/// The stock table as an entity whose note may not be NULL: rows without
/// a note fail to decode.
#[derive(Debug, pgactor::Entity)]
#[pgactor(model = "StockBalance")]
struct Noted {
    id: uuid::Uuid,
    note: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_that_fails_to_decode_fails_only_its_callers() {
    let (db, schema) = open_coalesced("coalesce_decode").await;
    let ids = create_rows(&db, 10).await;
    let typed = db.typed::<Noted>();
    let reads = ids.iter().map(|id| typed.read(*id)).collect();
    let answers = behind_a_lock(&db, &schema, ids.len() - BATCHES_IN_FLIGHT, reads).await;
    for (i, answer) in answers.into_iter().enumerate() {
        match answer {
            Ok(row) => {
                assert_eq!(i % 2, 1, "row {i} has no note");
                assert_eq!(row.note, format!("n-{i}"));
                assert_eq!(row.id, ids[i]);
            }
            Err(err) => {
                assert_eq!(i % 2, 0, "row {i} has a note: {err}");
                assert_eq!(err.kind(), ErrorKind::Decode, "{err}");
            }
        }
    }
    assert_eq!(db.stats().read.read_batches_total, 1);
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_stops_waiting_leaves_the_others_their_answers() {
    let (db, schema) = open_coalesced("coalesce_gone").await;
    let ids = create_rows(&db, 8).await;
    let reads = join_all(ids.iter().map(|id| db.read("StockBalance", *id)));
    let admin = lock_stock_table(&schema).await;
    let watcher = observer(&primary_url()).await;
    // A read whose caller drops it while it waits.
    let dropped = tokio::spawn({
        let db = db.clone();
        let id = ids[6];
        async move { db.read("StockBalance", id).await }
    });
    let queued = ids.len() + 1 - BATCHES_IN_FLIGHT;
    let release = async {
        until_lock_waiters(&watcher, &schema, BATCHES_IN_FLIGHT as i64).await;
        until("the reads to wait for a batch", || async {
            db.stats().read.batch_waiting == queued
        })
        .await;
        // One that gives up while the table is locked: it waits for the
        // same batch, past its query timeout.
        let err = db
            .with_query_timeout(Duration::from_millis(50))
            .read("StockBalance", ids[5])
            .await
            .expect_err("it gives up");
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        dropped.abort();
        assert!(dropped.await.unwrap_err().is_cancelled());
        admin.batch_execute("ROLLBACK").await.unwrap();
    };
    let (answers, ()) = tokio::join!(reads, release);
    for (id, answer) in ids.iter().zip(answers) {
        let row = answer.expect("read");
        assert_eq!(row.get::<uuid::Uuid>("id").unwrap(), *id);
    }
    assert_eq!(db.stats().read.batch_waiting, 0);
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_statement_answers_every_caller() {
    let (db, schema) = open_coalesced("coalesce_fail").await;
    let ids = create_rows(&db, 6).await;
    let admin = lock_stock_table(&schema).await;
    let watcher = observer(&primary_url()).await;
    let reads = ids.iter().map(|id| db.read("StockBalance", *id));
    let all = join_all(reads);
    let drop_table = async {
        until_lock_waiters(&watcher, &schema, BATCHES_IN_FLIGHT as i64).await;
        until("the reads to wait for a batch", || async {
            db.stats().read.batch_waiting == ids.len() - BATCHES_IN_FLIGHT
        })
        .await;
        admin
            .batch_execute(&format!("DROP TABLE \"{schema}\".stock_balance; COMMIT"))
            .await
            .unwrap();
    };
    let (answers, ()) = tokio::join!(all, drop_table);
    for answer in answers {
        let err = answer.expect_err("the table is gone");
        assert_ne!(err.kind(), ErrorKind::NotFound, "{err}");
    }
    assert_eq!(db.stats().read.read_batches_total, 1);
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_holds_at_most_max_read_batch_reads() {
    let (db, schema) = open_coalesced("coalesce_cap").await;
    let ids = create_rows(&db, 4).await;
    let total = 2 * MAX_READ_BATCH + 10 + BATCHES_IN_FLIGHT;
    let reads = (0..total)
        .map(|i| db.read("StockBalance", ids[i % ids.len()]))
        .collect();
    let answers = behind_a_lock(&db, &schema, total - BATCHES_IN_FLIGHT, reads).await;
    for (i, answer) in answers.into_iter().enumerate() {
        let row = answer.expect("read");
        assert_eq!(row.get::<uuid::Uuid>("id").unwrap(), ids[i % ids.len()]);
    }
    let stats = db.stats().read;
    assert_eq!(stats.read_batches_total, 3, "{stats:?}");
    assert_eq!(
        stats.batched_reads_total,
        (total - BATCHES_IN_FLIGHT) as u64,
        "{stats:?}"
    );
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_table_holds_only_its_own_models_reads() {
    let (db, schema) = open_coalesced("coalesce_hol").await;
    let ids = create_rows(&db, 4).await;
    let other = db
        .create("Other", Record::new().with("name", "b"))
        .await
        .expect("create");
    let other: uuid::Uuid = other.get("id").unwrap();
    let reads = (0..12).map(|i| db.read("StockBalance", ids[i % ids.len()]));
    let admin = lock_stock_table(&schema).await;
    let watcher = observer(&primary_url()).await;
    let all = join_all(reads);
    let meanwhile = async {
        until_lock_waiters(&watcher, &schema, BATCHES_IN_FLIGHT as i64).await;
        until("the reads to wait for a batch", || async {
            db.stats().read.batch_waiting == 12 - BATCHES_IN_FLIGHT
        })
        .await;
        // Many reads of the other model, while the stock table stays locked.
        let others = join_all((0..10).map(|_| db.read("Other", other))).await;
        for row in others {
            assert_eq!(row.expect("read").get::<uuid::Uuid>("id").unwrap(), other);
        }
        admin.batch_execute("ROLLBACK").await.unwrap();
    };
    let (answers, ()) = tokio::join!(all, meanwhile);
    assert!(answers.iter().all(Result::is_ok));
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_with_a_token_and_reads_in_transactions_run_on_their_own() {
    let (db, schema) = open_coalesced("coalesce_token").await;
    let (id, token) = written_with_token(&db).await;
    let fresh = db.after(token);
    let admin = lock_stock_table(&schema).await;
    let watcher = observer(&primary_url()).await;
    let reads = join_all((0..6).map(|_| fresh.read("StockBalance", id)));
    let release = async {
        // Every one of them waits for the lock on a statement of its own.
        until_lock_waiters(&watcher, &schema, 6).await;
        admin.batch_execute("ROLLBACK").await.unwrap();
    };
    let (answers, ()) = tokio::join!(reads, release);
    assert!(answers.iter().all(Result::is_ok));

    let tx = db.begin(Default::default()).await.expect("begin");
    let reads = join_all((0..4).map(|_| tx.read("StockBalance", id))).await;
    assert!(reads.iter().all(Result::is_ok));
    tx.commit().await.expect("commit");
    let stats = db.stats().read;
    assert_eq!(stats.read_batches_total, 0, "{stats:?}");
    assert_eq!(stats.batched_reads_total, 0, "{stats:?}");
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coalescing_off_runs_one_statement_per_read() {
    let schema = unique_schema("coalesce_off");
    let db = options(&schema)
        .coalesce_reads(false)
        .open()
        .await
        .expect("open");
    let ids = create_rows(&db, 5).await;
    let admin = lock_stock_table(&schema).await;
    let watcher = observer(&primary_url()).await;
    let reads = join_all(ids.iter().map(|id| db.read("StockBalance", *id)));
    let release = async {
        until_lock_waiters(&watcher, &schema, ids.len() as i64).await;
        admin.batch_execute("ROLLBACK").await.unwrap();
    };
    let (answers, ()) = tokio::join!(reads, release);
    assert!(answers.iter().all(Result::is_ok));
    assert_eq!(db.stats().read.read_batches_total, 0);
    db.close().await;
}

/// Through PgBouncer in transaction pooling mode the batch goes unnamed,
/// as every statement does there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_work_behind_a_transaction_pooling_bouncer() {
    let schema = unique_schema("coalesce_bouncer");
    let db = OpenOptions::new(bouncer_url())
        .pooler(PoolerMode::Transaction)
        .registry(registry([stock_model()]))
        .session(SessionConfig {
            schema: Some(schema.clone()),
            ..SessionConfig::default()
        })
        .open()
        .await
        .expect("open through the bouncer");
    let ids = create_rows(&db, 8).await;
    let admin = lock_table(&primary_url(), &schema, "stock_balance").await;
    let reads = join_all(ids.iter().map(|id| db.read("StockBalance", *id)));
    let release = async {
        until("the reads to wait for a batch", || async {
            db.stats().read.batch_waiting == ids.len() - BATCHES_IN_FLIGHT
        })
        .await;
        admin.batch_execute("ROLLBACK").await.unwrap();
    };
    let (answers, ()) = tokio::join!(reads, release);
    assert_each_row_read(&ids, answers);
    assert_eq!(db.stats().read.read_batches_total, 1);
    db.close().await;
}

/// With the replica stopped, a batch that fails there runs on the primary
/// (fallback on), as a single read does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_falls_back_to_the_primary_when_the_replica_is_down() {
    let topo = Topology::up();
    let db = OpenOptions::new(topo.primary())
        .read_dsn(topo.replica())
        .registry(registry([stock_model()]))
        .session(SessionConfig {
            schema: Some("coalesce_replica".into()),
            ..SessionConfig::default()
        })
        .open()
        .await
        .expect("open");
    let ids = create_rows(&db, 10).await;
    read_when_replicated(&db, "StockBalance", *ids.last().unwrap()).await;
    let replica_data = topo.var("PGACTOR_REPLICA_DATA").to_owned();
    topo.pg_ctl(&replica_data, &["stop", "-m", "fast"]);
    // The first reads take their model's statement slots, the others wait
    // for them: a batch.
    let answers = join_all(ids.iter().map(|id| db.read("StockBalance", *id))).await;
    assert_each_row_read(&ids, answers);
    assert!(db.stats().read.read_batches_total >= 1);
    db.close().await;
}

/// Open on the primary in a fresh schema with the stock model, pools of
/// `max_open` whose checkouts wait at most [`SHORT_WAIT`], and sessions
/// that wait for a lock as long as the reads wait for an answer.
async fn open_short_wait(prefix: &str, max_open: usize) -> (Db, String) {
    let schema = unique_schema(prefix);
    let pool = PoolConfig {
        max_open: Some(max_open),
        max_idle: Some(max_open),
        wait_timeout: Some(SHORT_WAIT),
        ..PoolConfig::default()
    };
    let session = SessionConfig {
        lock_timeout: Some(PATIENT),
        ..tagged_session(&schema, &schema)
    };
    let db = tagged_options(&primary_url(), [stock_model()], pool, &schema, &schema)
        .session(session)
        .open()
        .await
        .expect("open");
    (db, schema)
}

/// Each read of `answers` answered the row of its id, the id at its place
/// in `ids`.
fn assert_each_row_read(ids: &[uuid::Uuid], answers: Vec<pgactor::Result<Record>>) {
    for (id, answer) in ids.iter().zip(answers) {
        assert_eq!(answer.expect("read").get::<uuid::Uuid>("id").unwrap(), *id);
    }
}

/// The id of a stock row written with a consistency token (a read after
/// it is never coalesced), and the token.
async fn written_with_token(db: &Db) -> (uuid::Uuid, ConsistencyToken) {
    let (row, token) = db
        .write_with_token(
            "StockBalance",
            WriteOp::Create(Record::new().with("sku", "t")),
        )
        .await
        .expect("create");
    (row.get("id").unwrap(), token)
}

/// The pools' `wait_timeout` in the tests of the wait budget: far below
/// [`PATIENT`], the query timeout of their reads.
const SHORT_WAIT: Duration = Duration::from_millis(300);

/// The query timeout of the reads that test the wait budget: a read that
/// ends by it has waited past its `wait_timeout`.
const PATIENT: Duration = Duration::from_secs(20);

/// The read pool (2 connections) is saturated by the model's two running
/// statements, held by a table lock the test keeps until every read below
/// has answered: the reads queued for a batch wait for the model's
/// statements, then for a connection, and each fails as a read of its own
/// (a read with a token, never coalesced) fails, with the pool's wait
/// timeout, long before its query timeout and while the lock is held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_read_waits_for_a_connection_no_longer_than_a_read_of_its_own() {
    let (db, schema) = open_short_wait("coalesce_budget", 2).await;
    let ids = create_rows(&db, 6).await;
    let (alone, token) = written_with_token(&db).await;
    let patient = db.with_query_timeout(PATIENT);
    let fresh = patient.after(token);
    let admin = lock_stock_table(&schema).await;
    let watcher = observer(&primary_url()).await;
    // Both statement slots and both connections, waiting for the lock.
    let holders = join_all(
        ids[..BATCHES_IN_FLIGHT]
            .iter()
            .map(|id| patient.read("StockBalance", *id)),
    );
    let meanwhile = async {
        until_lock_waiters(&watcher, &schema, BATCHES_IN_FLIGHT as i64).await;
        let queued = join_all(
            ids[BATCHES_IN_FLIGHT..]
                .iter()
                .map(|id| patient.read("StockBalance", *id)),
        );
        let own = fresh.read("StockBalance", alone);
        let answers = tokio::join!(queued, own);
        // Only now, every read above having answered, does the lock go.
        admin.batch_execute("ROLLBACK").await.unwrap();
        answers
    };
    let (held, (queued, own)) = tokio::join!(holders, meanwhile);

    let own = own.expect_err("no connection for a read of its own");
    assert_eq!(own.kind(), ErrorKind::Unavailable, "{own}");
    assert_eq!(queued.len(), ids.len() - BATCHES_IN_FLIGHT);
    for answer in queued {
        let err = answer.expect_err("no connection for the batch");
        assert_eq!(err.kind(), own.kind(), "{err}");
        assert_eq!(err.to_string(), own.to_string());
        assert!(err.is_retryable(), "{err}");
    }
    assert_each_row_read(&ids, held);
    db.close().await;
}

/// The model's two statements wait for a table lock past the pool's
/// `wait_timeout` while the pool has idle connections: the reads queued
/// behind them do not fail for want of a connection. Their batch goes out
/// without waiting any longer for a statement slot, waits for the lock in
/// turn, and answers every read once the lock goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_queued_past_the_wait_timeout_take_a_free_connection() {
    let (db, schema) = open_short_wait("coalesce_free", 8).await;
    let ids = create_rows(&db, 6).await;
    let (alone, token) = written_with_token(&db).await;
    let admin = lock_stock_table(&schema).await;
    let watcher = observer(&primary_url()).await;
    // Four connections of the read pool opened, each by a read of its own,
    // and kept idle once the lock goes.
    let fresh = db.after(token);
    let opening = join_all((0..4).map(|_| fresh.read("StockBalance", alone)));
    let release = async {
        until_lock_waiters(&watcher, &schema, 4).await;
        admin.batch_execute("ROLLBACK").await.unwrap();
    };
    let (opened, ()) = tokio::join!(opening, release);
    assert!(opened.iter().all(Result::is_ok));

    let admin = lock_stock_table(&schema).await;
    let patient = db.with_query_timeout(PATIENT);
    let reads = join_all(ids.iter().map(|id| patient.read("StockBalance", *id)));
    let release = async {
        // The slots' two statements and the batch's.
        until_lock_waiters(&watcher, &schema, BATCHES_IN_FLIGHT as i64 + 1).await;
        admin.batch_execute("ROLLBACK").await.unwrap();
    };
    let (answers, ()) = tokio::join!(reads, release);
    assert_each_row_read(&ids, answers);
    assert_eq!(db.stats().read.read_batches_total, 1);
    db.close().await;
}
