//! Transactions as actors: routing to the primary, LockForUpdate, isolation
//! and conflicts, in-doubt outcomes, and nothing left open whatever the
//! caller does. Observed from outside through `pg_stat_activity`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pgactor::{
    Db, ErrorKind, Field, FieldType, IsolationLevel, Model, PoolConfig, Query, Record, RetryPolicy,
    SessionConfig, TxMsg, TxOptions,
};

use crate::support::blocking::{
    lock_row_outside, lock_waiters, make_updates_slow, until_lock_waiters,
};
use crate::support::db::{registry, stock_model, unique_schema};
use crate::support::kill::{terminate, terminate_sessions};
use crate::support::logs::capturing_logs;
use crate::support::observer::observer;
use crate::support::topology::{primary_url, replica_url};
use crate::support::wait::{eventually, ready};

/// An adapter in a fresh schema whose sessions carry a unique
/// application_name (the schema's name), so a test can find them.
async fn open_tagged(
    read_dsn: &str,
    session: SessionConfig,
    write_pool: PoolConfig,
) -> (Db, String) {
    let schema = unique_schema("tx");
    let db = pgactor::OpenOptions::new(primary_url())
        .read_dsn(read_dsn)
        .registry(registry([stock_model(), account_model()]))
        .write_pool(write_pool)
        .session(SessionConfig {
            schema: Some(schema.clone()),
            application_name: Some(schema.clone()),
            ..session
        })
        .open()
        .await
        .expect("open");
    (db, schema)
}

async fn open_default() -> (Db, String) {
    open_tagged("", SessionConfig::default(), PoolConfig::default()).await
}

pub(crate) fn account_model() -> Model {
    Model::new("Account").field(Field::new("balance", FieldType::I64))
}

pub(crate) async fn stock(db: &Db, quantity: i64) -> uuid::Uuid {
    let row = db
        .create(
            "StockBalance",
            Record::new()
                .with("sku", uuid::Uuid::new_v4().to_string())
                .with("quantity", quantity),
        )
        .await
        .unwrap();
    row.get("id").unwrap()
}

/// How many StockBalance rows the adapter sees outside any transaction.
async fn stock_rows(db: &Db) -> u64 {
    db.list("StockBalance", Query::new())
        .await
        .unwrap()
        .total
        .expect("counted")
}

/// A list and then a commit on `tx` are both refused as `kind`.
async fn assert_list_and_commit_refused(tx: &pgactor::Tx, kind: ErrorKind) {
    for err in [
        tx.list("StockBalance", Query::new()).await.unwrap_err(),
        tx.commit().await.unwrap_err(),
    ] {
        assert_eq!(err.kind(), kind, "{err}");
    }
}

/// Sessions of the adapter tagged `app` in `state` (e.g. "idle in transaction").
async fn sessions_in_state(admin: &tokio_postgres::Client, app: &str, state: &str) -> i64 {
    admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state = $2",
            &[&app, &state],
        )
        .await
        .unwrap()
        .get(0)
}

/// The pid of the first adapter session tagged `app` matching `condition`.
async fn backend_where(admin: &tokio_postgres::Client, app: &str, condition: &str) -> i32 {
    let sql = format!(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND {condition} LIMIT 1"
    );
    eventually(&format!("a session where {condition}"), || async {
        admin
            .query_opt(&sql, &[&app])
            .await
            .unwrap()
            .map(|r| r.get(0))
            .ok_or("no such session")
    })
    .await
}

async fn assert_nothing_left_open(admin: &tokio_postgres::Client, app: &str) {
    eventually("no session left idle in transaction", || async {
        let idle = sessions_in_state(admin, app, "idle in transaction").await
            + sessions_in_state(admin, app, "idle in transaction (aborted)").await;
        ready(idle == 0, ())
    })
    .await;
}

#[tokio::test]
async fn a_transaction_reads_its_own_writes_on_the_primary_while_the_replica_does_not_see_them() {
    let (db, schema) = open_tagged(
        &replica_url(),
        SessionConfig::default(),
        PoolConfig::default(),
    )
    .await;
    let replica = observer(&replica_url()).await;
    let sql = format!("SELECT count(*) FROM \"{schema}\".stock_balance WHERE id = $1");
    let on_replica = |id: uuid::Uuid| {
        let (replica, sql) = (&replica, &sql);
        async move {
            replica
                .query_one(sql, &[&id])
                .await
                .ok()
                .map(|r| r.get::<_, i64>(0))
        }
    };
    // AutoMigrate ran on the primary: wait until the replica has the table.
    eventually("the table reaches the replica", || async {
        on_replica(uuid::Uuid::nil()).await.ok_or("no table yet")
    })
    .await;

    let tx = db.begin(TxOptions::default()).await.unwrap();
    let row = tx
        .create(
            "StockBalance",
            Record::new().with("sku", "ryw").with("quantity", 3_i64),
        )
        .await
        .unwrap();
    let id: uuid::Uuid = row.get("id").unwrap();
    assert_eq!(
        tx.read("StockBalance", id).await.unwrap(),
        row,
        "the transaction sees its write"
    );
    assert_eq!(
        tx.list("StockBalance", Query::new()).await.unwrap().total,
        Some(1)
    );
    assert_eq!(
        on_replica(id).await,
        Some(0),
        "not on the replica before commit"
    );
    let err = db.read("StockBalance", id).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::NotFound,
        "a read outside the transaction goes to the replica"
    );

    tx.commit().await.unwrap();
    eventually("the committed row reaches the replica", || async {
        ready(on_replica(id).await == Some(1), ())
    })
    .await;
    db.close().await;
}

#[tokio::test]
async fn lock_for_update_serialises_a_stock_of_k_among_n_callers() {
    let (db, _) = open_default().await;
    k_of_n_callers_reserve_a_unit(&db, 60, 20).await;

    let tx = db.begin(TxOptions::default()).await.unwrap();
    let missing = tx
        .lock_for_update("StockBalance", uuid::Uuid::new_v4())
        .await
        .unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    tx.rollback().await.unwrap();
    db.close().await;
}

/// `callers` concurrent transactions each take one unit of a stock of
/// `stock_units` (fewer) with `lock_for_update`: exactly `stock_units`
/// succeed and the quantity ends at 0.
pub(crate) async fn k_of_n_callers_reserve_a_unit(db: &Db, callers: usize, stock_units: i64) {
    let id = stock(db, stock_units).await;

    let reserve = |db: Db| async move {
        db.with_transaction(TxOptions::default(), |tx| async move {
            let row = tx.lock_for_update("StockBalance", id).await?;
            let quantity: i64 = row.get("quantity")?;
            if quantity < 1 {
                return Ok(false); // out of stock: nothing to change
            }
            tx.update(
                "StockBalance",
                id,
                Record::new().with("quantity", quantity - 1),
            )
            .await?;
            Ok(true)
        })
        .await
    };
    let callers: Vec<_> = (0..callers)
        .map(|_| tokio::spawn(reserve(db.clone())))
        .collect();
    let mut reserved = 0;
    for caller in callers {
        if caller.await.unwrap().unwrap() {
            reserved += 1;
        }
    }
    assert_eq!(reserved, stock_units, "exactly K callers got a unit");
    let left: i64 = db
        .read("StockBalance", id)
        .await
        .unwrap()
        .get("quantity")
        .unwrap();
    assert_eq!(left, 0, "never negative, nothing lost");
}

#[tokio::test]
async fn a_serialization_failure_is_a_conflict_and_a_retried_transfer_applies_once() {
    let (db, schema) = open_default().await;
    let admin = observer(&primary_url()).await;
    let id = a_conflicted_transfer_retried_applies_once(&db, &schema, &admin).await;

    // Without retry the caller sees the conflict itself, as a 409.
    let tx = db
        .begin(TxOptions {
            isolation: IsolationLevel::Serializable,
            ..TxOptions::default()
        })
        .await
        .unwrap();
    tx.read("Account", id).await.unwrap();
    admin
        .execute(
            &format!("UPDATE \"{schema}\".account SET balance = 0 WHERE id = $1"),
            &[&id],
        )
        .await
        .unwrap();
    let err = tx
        .update("Account", id, Record::new().with("balance", 1_i64))
        .await
        .unwrap_err();
    assert_eq!((err.kind(), err.http_status()), (ErrorKind::Conflict, 409));
    assert!(err.is_retryable());
    let after = tx.read("Account", id).await.unwrap_err();
    assert_eq!(after.kind(), ErrorKind::TxAborted, "{after}");
    tx.rollback().await.unwrap();
    db.close().await;
}

/// A serializable transfer in `with_transaction` whose row `admin` (a
/// session on the primary) changes after the transfer's snapshot: the first
/// run fails with a serialization failure, the retry applies it once.
/// Answers the account's id.
pub(crate) async fn a_conflicted_transfer_retried_applies_once(
    db: &Db,
    schema: &str,
    admin: &tokio_postgres::Client,
) -> uuid::Uuid {
    let account = db
        .create("Account", Record::new().with("balance", 100_i64))
        .await
        .unwrap();
    let id: uuid::Uuid = account.get("id").unwrap();
    let runs = Arc::new(AtomicU32::new(0));

    let opts = TxOptions {
        isolation: IsolationLevel::Serializable,
        retry: RetryPolicy::attempts(3),
        ..TxOptions::default()
    };
    let outcome = db
        .with_transaction(opts, |tx| {
            let (schema, runs) = (schema.to_owned(), runs.clone());
            async move {
                let balance: i64 = tx.read("Account", id).await?.get("balance")?;
                if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                    // Someone else changes the row after our snapshot: our
                    // update must fail with 40001 and the body run again.
                    admin
                        .execute(
                            &format!("UPDATE \"{schema}\".account SET balance = balance + 1 WHERE id = $1"),
                            &[&id],
                        )
                        .await
                        .unwrap();
                }
                tx.update("Account", id, Record::new().with("balance", balance - 10))
                    .await?;
                Ok(balance)
            }
        })
        .await
        .unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 2, "one conflict, one retry");
    assert_eq!(outcome, 101, "the retry saw the concurrent update");
    let balance: i64 = db
        .read("Account", id)
        .await
        .unwrap()
        .get("balance")
        .unwrap();
    assert_eq!(balance, 91, "the transfer is applied exactly once");
    id
}

#[tokio::test]
async fn a_deadlock_is_a_conflict() {
    let (db, _) = open_default().await;
    let (a, b) = (stock(&db, 1).await, stock(&db, 1).await);
    let first = db.begin(TxOptions::default()).await.unwrap();
    let second = db.begin(TxOptions::default()).await.unwrap();
    first.lock_for_update("StockBalance", a).await.unwrap();
    second.lock_for_update("StockBalance", b).await.unwrap();
    let crossing = {
        let first = first.clone();
        tokio::spawn(async move { first.lock_for_update("StockBalance", b).await })
    };
    let other = second.lock_for_update("StockBalance", a).await;
    let crossing = crossing.await.unwrap();
    let kinds = [&other, &crossing].map(|r| r.as_ref().err().map(|e| e.kind()));
    assert!(
        kinds.contains(&Some(ErrorKind::Conflict)),
        "one side is chosen as the deadlock victim: {kinds:?}"
    );
    let _ = first.rollback().await;
    let _ = second.rollback().await;
    db.close().await;
}

#[tokio::test]
async fn messages_to_a_finished_transaction_are_refused_as_closed() {
    let (db, _) = open_default().await;
    let tx = db.begin(TxOptions::default()).await.unwrap();
    tx.create("StockBalance", Record::new().with("sku", "done"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_list_and_commit_refused(&tx, ErrorKind::TxClosed).await;
    assert_eq!(stock_rows(&db).await, 1);
    db.close().await;
}

#[tokio::test]
async fn bad_input_inside_a_transaction_does_not_abort_it() {
    let (db, _) = open_default().await;
    let tx = db.begin(TxOptions::default()).await.unwrap();
    let err = tx
        .create("StockBalance", Record::new().with("sku", 5_i64))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    tx.create("StockBalance", Record::new().with("sku", "fine"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(stock_rows(&db).await, 1);
    db.close().await;
}

/// Every way a caller can walk away from an open transaction; none leaves
/// a session idle in transaction, and the adapter keeps serving.
#[tokio::test]
async fn an_abandoned_transaction_is_rolled_back_however_it_is_abandoned() {
    let (db, app) = open_default().await;
    let admin = observer(&primary_url()).await;
    let write = |tx: pgactor::Tx, sku: &'static str| async move {
        tx.create("StockBalance", Record::new().with("sku", sku))
            .await
            .unwrap();
        tx
    };

    // The handle dropped without commit or rollback.
    drop(write(db.begin(TxOptions::default()).await.unwrap(), "dropped").await);
    assert_nothing_left_open(&admin, &app).await;

    // The caller's task panics while holding the transaction.
    let panicking = {
        let db = db.clone();
        tokio::spawn(async move {
            let _tx = write(db.begin(TxOptions::default()).await.unwrap(), "panicked").await;
            panic!("the caller fails mid-transaction");
        })
    };
    assert!(panicking.await.unwrap_err().is_panic());
    assert_nothing_left_open(&admin, &app).await;

    // The caller's task is cancelled while it waits inside the transaction.
    let (started, wait) = tokio::sync::oneshot::channel();
    let cancelled = {
        let db = db.clone();
        tokio::spawn(async move {
            let _tx = write(db.begin(TxOptions::default()).await.unwrap(), "cancelled").await;
            let _ = started.send(());
            std::future::pending::<()>().await;
        })
    };
    wait.await.unwrap();
    cancelled.abort();
    assert!(cancelled.await.unwrap_err().is_cancelled());
    assert_nothing_left_open(&admin, &app).await;

    // The transaction actor itself dies (killed: no post_stop runs).
    let tx = write(db.begin(TxOptions::default()).await.unwrap(), "killed").await;
    tx.actor().kill();
    assert_nothing_left_open(&admin, &app).await;
    let err = tx.commit().await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::TxClosed | ErrorKind::TxAborted),
        "{err}"
    );

    let page = db.list("StockBalance", Query::new()).await.unwrap();
    assert_eq!(
        page.total,
        Some(0),
        "nothing of the abandoned transactions was committed"
    );
    db.close().await;
}

#[tokio::test]
async fn the_servers_idle_in_transaction_timeout_fails_the_transaction_and_nothing_leaks() {
    let session = SessionConfig {
        idle_in_transaction_timeout: Some(Duration::from_millis(300)),
        ..SessionConfig::default()
    };
    let (db, app) = open_tagged("", session, PoolConfig::default()).await;
    let admin = observer(&primary_url()).await;
    let tx = db.begin(TxOptions::default()).await.unwrap();
    tx.create("StockBalance", Record::new().with("sku", "idle"))
        .await
        .unwrap();
    // The server ends the session once it idles past the timeout.
    eventually("the server ended the idle transaction", || async {
        ready(
            sessions_in_state(&admin, &app, "idle in transaction").await == 0,
            (),
        )
    })
    .await;
    let first = tx.list("StockBalance", Query::new()).await.unwrap_err();
    assert_ne!(first.kind(), ErrorKind::InvalidInput, "{first}");
    let commit = tx.commit().await.unwrap_err();
    assert_eq!(commit.kind(), ErrorKind::TxAborted, "{commit}");
    assert_eq!(stock_rows(&db).await, 0);
    assert_nothing_left_open(&admin, &app).await;
    db.close().await;
}

#[tokio::test]
async fn a_connection_killed_inside_a_transaction_fails_it_for_every_later_message() {
    let (db, app) = open_default().await;
    let admin = observer(&primary_url()).await;
    let tx = db.begin(TxOptions::default()).await.unwrap();
    tx.create("StockBalance", Record::new().with("sku", "lost"))
        .await
        .unwrap();
    let pid = backend_where(&admin, &app, "state = 'idle in transaction'").await;
    terminate(&admin, &[pid]).await;

    let first = tx
        .read("StockBalance", uuid::Uuid::new_v4())
        .await
        .unwrap_err();
    assert_ne!(
        first.kind(),
        ErrorKind::NotFound,
        "the transaction does not reconnect: {first}"
    );
    assert_list_and_commit_refused(&tx, ErrorKind::TxAborted).await;
    assert_eq!(stock_rows(&db).await, 0);
    db.close().await;
}

/// BEGIN goes out with the first statement (in the same round trip when it
/// reads), so a begun transaction holds no server transaction until then;
/// that first statement still runs inside it; one that ends without a
/// statement sends nothing and frees its connection.
#[tokio::test]
async fn begin_waits_for_the_first_statement_which_runs_inside_the_transaction() {
    let (db, app) = open_default().await;
    let admin = observer(&primary_url()).await;
    let id = stock(&db, 7).await;
    let table = format!("\"{app}\".stock_balance");
    let nowait = format!("SELECT 1 FROM {table} WHERE id = $1 FOR UPDATE NOWAIT");

    let tx = db.begin(TxOptions::default()).await.unwrap();
    assert_eq!(
        sessions_in_state(&admin, &app, "idle in transaction").await,
        0,
        "no server transaction before the first statement"
    );
    let locked = tx.lock_for_update("StockBalance", id).await.unwrap();
    assert_eq!(locked.get::<i64>("quantity").unwrap(), 7);
    assert_eq!(
        sessions_in_state(&admin, &app, "idle in transaction").await,
        1
    );
    let err = admin.query(&nowait, &[&id]).await.unwrap_err();
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE),
        "the first statement's lock is held by the transaction: {err}"
    );
    tx.update("StockBalance", id, Record::new().with("quantity", 6_i64))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    admin.query(&nowait, &[&id]).await.unwrap();
    let row = db.read("StockBalance", id).await.unwrap();
    assert_eq!(row.get::<i64>("quantity").unwrap(), 6);

    // Transactions without a statement: nothing reaches the server.
    db.begin(TxOptions::default())
        .await
        .unwrap()
        .commit()
        .await
        .unwrap();
    db.begin(TxOptions::default())
        .await
        .unwrap()
        .rollback()
        .await
        .unwrap();
    let tx = db.begin(TxOptions::default()).await.unwrap();
    tx.commit_with_token().await.unwrap();
    drop(db.begin(TxOptions::default()).await.unwrap());
    eventually("every connection back in the pool", || async {
        let stats = db.stats();
        ready(stats.write.in_use == 0 && stats.open_transactions == 0, ())
    })
    .await;
    assert_nothing_left_open(&admin, &app).await;
    db.close().await;
}

#[tokio::test]
async fn a_connection_lost_before_the_first_statement_fails_the_transaction() {
    let (db, app) = open_default().await;
    let admin = observer(&primary_url()).await;
    let tx = db.begin(TxOptions::default()).await.unwrap();
    // Every session of the adapter, the transaction's among them.
    terminate_sessions(&admin, &app, "true").await;
    eventually("the sessions are gone", || async {
        ready(sessions_in_state(&admin, &app, "idle").await == 0, ())
    })
    .await;

    let first = tx
        .lock_for_update("StockBalance", uuid::Uuid::new_v4())
        .await
        .unwrap_err();
    assert_eq!(first.kind(), ErrorKind::Unavailable, "{first}");
    let commit = tx.commit().await.unwrap_err();
    assert_eq!(commit.kind(), ErrorKind::TxAborted, "{commit}");
    // The next transaction gets a new connection.
    let tx = db.begin(TxOptions::default()).await.unwrap();
    tx.create("StockBalance", Record::new().with("sku", "after"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(stock_rows(&db).await, 1);
    db.close().await;
}

/// A `Tx` call whose caller stops waiting (a timeout around it, a
/// cancelled task) does not stop its statement: the statement runs to its
/// end, and the transaction goes on with the caller's next call, in order.
#[tokio::test]
async fn a_caller_that_stops_waiting_mid_statement_leaves_the_transaction_usable() {
    let (db, app) = open_default().await;
    let id = stock(&db, 5).await;
    let holder = lock_row_outside(&primary_url(), &app, id).await;

    let tx = db.begin(TxOptions::default()).await.unwrap();
    let waited = tokio::time::timeout(
        Duration::from_millis(300),
        tx.lock_for_update("StockBalance", id),
    )
    .await;
    assert!(waited.is_err(), "the row is locked outside: {waited:?}");
    holder.batch_execute("ROLLBACK").await.unwrap();

    // Behind the abandoned lock_for_update, which now gets the lock.
    let next = tokio::time::timeout(
        Duration::from_secs(10),
        tx.update("StockBalance", id, Record::new().with("quantity", 4_i64)),
    )
    .await
    .expect("the transaction goes on once the abandoned statement ends")
    .unwrap();
    assert_eq!(next.get::<i64>("quantity").unwrap(), 4);
    tx.commit().await.unwrap();
    let row = db.read("StockBalance", id).await.unwrap();
    assert_eq!(row.get::<i64>("quantity").unwrap(), 4);
    db.close().await;
}

/// A `TxMsg::Commit` whose `call!` gave up while it was queued (behind a
/// statement waiting for a lock) is never sent: the transaction rolls back
/// and a later `Rollback` answers ok, as through the `Tx` door.
#[tokio::test]
async fn a_ractor_commit_whose_caller_gave_up_while_queued_is_not_sent() {
    let (db, app) = open_default().await;
    let id = stock(&db, 5).await;
    let holder = lock_row_outside(&primary_url(), &app, id).await;
    let tx = db.begin(TxOptions::default()).await.unwrap();
    let actor = tx.actor();
    let blocked = tokio::spawn({
        let tx = tx.clone();
        async move {
            tx.update("StockBalance", id, Record::new().with("quantity", 4_i64))
                .await
        }
    });
    let admin = observer(&primary_url()).await;
    eventually("the update waits for the row lock", || async {
        ready(lock_waiters(&admin, &app).await > 0, ())
    })
    .await;
    let gave_up = ractor::call_t!(actor, TxMsg::Commit, 100);
    assert!(
        gave_up.is_err(),
        "the commit waits behind the update: {gave_up:?}"
    );
    holder.batch_execute("ROLLBACK").await.unwrap();
    blocked
        .await
        .unwrap()
        .expect("the update, once the lock is free");
    ractor::call!(actor, TxMsg::Rollback)
        .expect("the actor answers")
        .expect("the transaction was rolled back: rollback answers ok");
    let row = db.read("StockBalance", id).await.unwrap();
    assert_eq!(row.get::<i64>("quantity").unwrap(), 5, "nothing committed");
    drop(tx);
    assert_nothing_left_open(&admin, &app).await;
    db.close().await;
}

/// A `with_transaction` body that idles past `idle_in_transaction_timeout`
/// before its first statement (no BEGIN sent, so the server sees a plain
/// idle session) is rolled back client-side: the statement answers
/// TxAborted, nothing is committed, the connection is back, and a WARN
/// names the `with_transaction` call's file.
#[tokio::test]
async fn a_transaction_idle_before_its_first_statement_is_ended_and_the_warn_names_its_caller() {
    let session = SessionConfig {
        idle_in_transaction_timeout: Some(Duration::from_millis(300)),
        ..SessionConfig::default()
    };
    let (db, _app) = open_tagged("", session, PoolConfig::default()).await;
    let (outcome, logs) =
        capturing_logs(db.with_transaction(TxOptions::default(), |tx| async move {
            tokio::time::sleep(Duration::from_millis(800)).await;
            tx.create("StockBalance", Record::new().with("sku", "late"))
                .await
        }))
        .await;
    let err = outcome.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TxAborted, "{err}");
    assert!(err.to_string().contains("idle"), "{err}");
    assert_eq!(stock_rows(&db).await, 0);
    let stats = db.stats();
    assert_eq!((stats.open_transactions, stats.write.in_use), (0, 0));
    let warned = logs
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("tests/integration/transactions.rs:"))
        .count();
    assert_eq!(
        warned, 1,
        "one WARN naming the with_transaction call:\n{logs}"
    );
    db.close().await;
}

/// Each isolation level is the one in force: read committed sees a commit
/// made between two of its reads, repeatable read and serializable keep
/// the snapshot of their first read; `READ ONLY` holds at every level.
#[tokio::test]
async fn each_isolation_level_is_in_force_on_the_server() {
    let (db, _) = open_default().await;
    for (isolation, sees_the_commit) in [
        (IsolationLevel::ReadCommitted, true),
        (IsolationLevel::RepeatableRead, false),
        (IsolationLevel::Serializable, false),
    ] {
        for read_only in [false, true] {
            let id = stock(&db, 1).await;
            let tx = db
                .begin(TxOptions {
                    isolation,
                    read_only,
                    ..TxOptions::default()
                })
                .await
                .unwrap();
            let quantity = |row: Record| row.get::<i64>("quantity").unwrap();
            assert_eq!(quantity(tx.read("StockBalance", id).await.unwrap()), 1);
            db.update("StockBalance", id, Record::new().with("quantity", 2_i64))
                .await
                .unwrap();
            let second = quantity(tx.read("StockBalance", id).await.unwrap());
            assert_eq!(second == 2, sees_the_commit, "{isolation:?}: read {second}");
            let write = tx
                .update("StockBalance", id, Record::new().with("sku", "x"))
                .await;
            let refused = write
                .as_ref()
                .is_err_and(|e| e.sqlstate().map(|s| s.code()) == Some("25006"));
            assert_eq!(
                refused, read_only,
                "{isolation:?}, read_only {read_only}: {write:?}"
            );
            tx.rollback().await.unwrap();
        }
    }
    db.close().await;
}

/// A write in a `READ ONLY` transaction is the caller's mistake, not a sign
/// of a read-only server: a database error (25006) that is not retried,
/// and the connection is kept.
#[tokio::test]
async fn a_write_in_a_read_only_transaction_is_refused_and_keeps_its_connection() {
    let (db, _) = open_default().await;
    let id = stock(&db, 3).await;
    let read_only = TxOptions {
        read_only: true,
        ..TxOptions::default()
    };
    let broken_before = db.stats().write.closed.broken;

    let tx = db.begin(read_only.clone()).await.unwrap();
    let row = tx.read("StockBalance", id).await.unwrap();
    assert_eq!(row.get::<i64>("quantity").unwrap(), 3);
    let err = tx
        .update("StockBalance", id, Record::new().with("quantity", 0_i64))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Database, "{err}");
    assert_eq!(err.sqlstate().map(|s| s.code()), Some("25006"), "{err}");
    let commit = tx.commit().await.unwrap_err();
    assert_eq!(commit.kind(), ErrorKind::TxAborted, "{commit}");

    let runs = AtomicU32::new(0);
    let err = db
        .with_transaction(
            TxOptions {
                retry: RetryPolicy::attempts(3),
                ..read_only
            },
            |tx| {
                runs.fetch_add(1, Ordering::SeqCst);
                async move {
                    tx.create("StockBalance", Record::new().with("sku", "nope"))
                        .await
                }
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Database, "{err}");
    assert_eq!(runs.load(Ordering::SeqCst), 1, "not retried");

    assert_eq!(
        db.stats().write.closed.broken,
        broken_before,
        "no connection closed"
    );
    let row = db.read("StockBalance", id).await.unwrap();
    assert_eq!(row.get::<i64>("quantity").unwrap(), 3);
    assert_eq!(stock_rows(&db).await, 1);
    db.close().await;
}

/// A patch whose update sleeps 5 s in the trigger of [`make_updates_slow`].
pub(crate) fn slow_patch() -> Record {
    Record::new().with("quantity", 5_000_i64)
}

pub(crate) async fn active_sleeps(admin: &tokio_postgres::Client, app: &str) -> i64 {
    sessions_in_state(admin, app, "active").await
}

#[tokio::test]
async fn a_query_timeout_cancels_the_statement_on_the_server() {
    let one = PoolConfig {
        max_open: Some(1),
        ..PoolConfig::default()
    };
    let (db, app) = open_tagged("", SessionConfig::default(), one).await;
    let admin = observer(&primary_url()).await;
    let id = stock(&db, 1).await;
    make_updates_slow(&admin, &app).await;

    let hasty = db.with_query_timeout(Duration::from_millis(200));
    let err = hasty
        .update("StockBalance", id, slow_patch())
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.http_status(), err.code()),
        (ErrorKind::Timeout, 504, "TIMEOUT")
    );
    assert_eq!(
        active_sleeps(&admin, &app).await,
        0,
        "no statement is left running"
    );
    let row = db.read("StockBalance", id).await.unwrap();
    assert_eq!(
        row.get::<i64>("quantity").unwrap(),
        1,
        "the cancelled update did not apply"
    );

    // A cancel racing the statement's end must never hit the next query on
    // the pool's only connection.
    for millis in (150..250).step_by(5) {
        let _ = hasty
            .update(
                "StockBalance",
                id,
                Record::new().with("quantity", millis as i64),
            )
            .await;
        db.read("StockBalance", id)
            .await
            .expect("the victim query after a racing cancel");
    }
    db.close().await;
}

#[tokio::test]
async fn a_query_timeout_inside_a_transaction_aborts_it() {
    let (db, app) = open_default().await;
    let admin = observer(&primary_url()).await;
    let id = stock(&db, 1).await;
    make_updates_slow(&admin, &app).await;
    let tx = db
        .begin(TxOptions {
            query_timeout: Some(Duration::from_millis(200)),
            ..TxOptions::default()
        })
        .await
        .unwrap();
    let err = tx
        .update("StockBalance", id, slow_patch())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    let after = tx.read("StockBalance", id).await.unwrap_err();
    assert_eq!(after.kind(), ErrorKind::TxAborted, "{after}");
    tx.rollback().await.unwrap();
    assert_nothing_left_open(&admin, &app).await;
    db.close().await;
}

#[tokio::test]
async fn server_statement_and_lock_timeouts_are_timeouts_named_in_the_message() {
    let session = SessionConfig {
        statement_timeout: Some(Duration::from_millis(200)),
        lock_timeout: Some(Duration::from_millis(100)),
        ..SessionConfig::default()
    };
    let (db, app) = open_tagged("", session, PoolConfig::default()).await;
    let admin = observer(&primary_url()).await;
    let id = stock(&db, 1).await;
    make_updates_slow(&admin, &app).await;

    let slow = db
        .update(
            "StockBalance",
            id,
            Record::new().with("quantity", 2_000_i64),
        )
        .await
        .unwrap_err();
    assert_eq!(slow.kind(), ErrorKind::Timeout);
    assert!(slow.to_string().contains("statement timeout"), "{slow}");

    let holder = lock_row_outside(&primary_url(), &app, id).await;
    let locked = db
        .update("StockBalance", id, Record::new().with("quantity", 2_i64))
        .await
        .unwrap_err();
    assert_eq!(locked.kind(), ErrorKind::Timeout);
    assert!(locked.to_string().contains("lock timeout"), "{locked}");
    holder.batch_execute("ROLLBACK").await.unwrap();
    db.close().await;
}

/// A transaction that inserted a row, and the pid of its backend while
/// its COMMIT runs: a deferred constraint trigger that sleeps 2 s makes
/// COMMIT itself slow. The caller's `commit()` runs in the task answered.
async fn commit_in_flight(
    db: &Db,
    app: &str,
    admin: &tokio_postgres::Client,
) -> (
    pgactor::Tx,
    tokio::task::JoinHandle<pgactor::Result<()>>,
    i32,
) {
    admin
        .batch_execute(&format!(
            "CREATE FUNCTION \"{app}\".slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN PERFORM pg_sleep(2); RETURN NULL; END $$;
             CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON \"{app}\".stock_balance
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION \"{app}\".slow_commit();"
        ))
        .await
        .unwrap();
    let tx = db.begin(TxOptions::default()).await.unwrap();
    tx.create("StockBalance", Record::new().with("sku", "in doubt"))
        .await
        .unwrap();
    let committing = {
        let tx = tx.clone();
        tokio::spawn(async move { tx.commit().await })
    };
    let pid = backend_where(admin, app, "query = 'COMMIT' AND state = 'active'").await;
    (tx, committing, pid)
}

#[tokio::test]
async fn a_connection_lost_during_commit_is_outcome_unknown() {
    let (db, app) = open_default().await;
    let admin = observer(&primary_url()).await;
    let (_tx, committing, pid) = commit_in_flight(&db, &app, &admin).await;
    terminate(&admin, &[pid]).await;
    let err = committing.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutcomeUnknown, "{err}");
    db.close().await;
}

#[tokio::test]
async fn a_transaction_actor_killed_during_commit_is_outcome_unknown() {
    let (db, app) = open_default().await;
    let admin = observer(&primary_url()).await;
    let (tx, committing, _) = commit_in_flight(&db, &app, &admin).await;
    tx.actor().kill();
    let err = committing.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutcomeUnknown, "{err}");
    // And in doubt it was: the server finished the COMMIT it had received.
    eventually("the in-doubt row committed", || async {
        let page = db.list("StockBalance", Query::new()).await.unwrap();
        ready(page.total == Some(1), ())
    })
    .await;
    db.close().await;
}

#[tokio::test]
async fn an_autocommit_write_whose_answer_is_lost_is_outcome_unknown() {
    let (db, app) = open_default().await;
    let admin = observer(&primary_url()).await;
    let id = stock(&db, 1).await;
    make_updates_slow(&admin, &app).await;
    let writing = {
        let db = db.clone();
        tokio::spawn(async move {
            db.update(
                "StockBalance",
                id,
                Record::new().with("quantity", 3_000_i64),
            )
            .await
        })
    };
    let pid = backend_where(&admin, &app, "state = 'active' AND query LIKE 'UPDATE%'").await;
    terminate(&admin, &[pid]).await;
    let err = writing.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutcomeUnknown, "{err}");
    // A read whose connection is lost the same way is merely unavailable,
    // and the pool serves the next operation on a new connection.
    db.read("StockBalance", id).await.unwrap();
    db.close().await;
}

#[tokio::test]
async fn with_transaction_commits_on_ok_and_rolls_back_on_err_or_panic() {
    let (db, app) = open_default().await;
    only_the_ok_body_is_committed(&db).await;
    let admin = observer(&primary_url()).await;
    assert_nothing_left_open(&admin, &app).await;
    db.close().await;
}

/// `with_transaction` in a fresh schema: a body that returns `Ok` is
/// committed, one that returns `Err` or panics is rolled back.
pub(crate) async fn only_the_ok_body_is_committed(db: &Db) {
    let create = |tx: pgactor::Tx, sku: &'static str| async move {
        tx.create("StockBalance", Record::new().with("sku", sku))
            .await
    };

    db.with_transaction(TxOptions::default(), |tx| create(tx, "kept"))
        .await
        .unwrap();
    let refused = db
        .with_transaction(TxOptions::default(), |tx| async move {
            create(tx, "refused").await?;
            Err::<(), _>(pgactor::Error::invalid_input("the caller changes its mind"))
        })
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::InvalidInput);
    let panicking = {
        let db = db.clone();
        tokio::spawn(async move {
            db.with_transaction::<(), _, _>(TxOptions::default(), |tx| async move {
                create(tx, "panicked").await.unwrap();
                panic!("the body fails mid-transaction")
            })
            .await
        })
    };
    assert!(panicking.await.unwrap_err().is_panic());

    let page = db.list("StockBalance", Query::new()).await.unwrap();
    let skus: Vec<String> = page.rows.iter().map(|r| r.get("sku").unwrap()).collect();
    assert_eq!(skus, ["kept"], "only the Ok body was committed");
}

/// A transaction whose update of `victim` (row-locked by another session)
/// never ends: a runtime of its own polls it until it waits for the lock,
/// then shuts down, dropping the statement with it. The transaction's
/// connection closes with the statement (the transaction actor's lost
/// state); the transaction wrote one row before, which must never appear.
/// The backends of earlier such updates still wait for the lock (the
/// session's `lock_timeout` is long): this one is the next waiter.
async fn a_transaction_whose_statement_never_ended(
    db: &Db,
    admin: &tokio_postgres::Client,
    app: &str,
    victim: uuid::Uuid,
) -> pgactor::Tx {
    let waiting = lock_waiters(admin, app).await;
    let tx = db.begin(TxOptions::default()).await.unwrap();
    tx.create(
        "StockBalance",
        Record::new().with("sku", format!("lost-{}", uuid::Uuid::new_v4())),
    )
    .await
    .expect("BEGIN and a write");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let waits = {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let update = tx.update(
                    "StockBalance",
                    victim,
                    Record::new().with("quantity", 1_i64),
                );
                tokio::select! {
                    ended = update => panic!("the update was to wait for the lock: {ended:?}"),
                    _ = stopped => {}
                }
            });
            // The statement, left to a task of this runtime, goes with it.
            drop(runtime);
        })
    };
    until_lock_waiters(admin, app, waiting + 1).await;
    stop.send(()).unwrap();
    waits.join().expect("the caller's runtime shut down");
    tx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_whose_statement_never_ended_rolls_back_ok_and_commits_nothing() {
    let session = SessionConfig {
        lock_timeout: Some(Duration::from_secs(60)),
        ..SessionConfig::default()
    };
    let (db, app) = open_tagged("", session, PoolConfig::default()).await;
    let admin = observer(&primary_url()).await;
    let victim: uuid::Uuid = db
        .create("StockBalance", Record::new().with("sku", "victim"))
        .await
        .unwrap()
        .get("id")
        .unwrap();
    let holder = lock_row_outside(&primary_url(), &app, victim).await;

    // rollback() from a Tx: nothing was committed and the transaction is
    // over, which is what a rollback asks for.
    let tx = a_transaction_whose_statement_never_ended(&db, &admin, &app, victim).await;
    tx.rollback()
        .await
        .expect("rollback after a statement that never ended");
    let err = tx.commit().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TxClosed, "{err}");

    // The same through the actor door.
    let tx = a_transaction_whose_statement_never_ended(&db, &admin, &app, victim).await;
    ractor::call!(tx.actor(), TxMsg::Rollback)
        .expect("the transaction actor answers")
        .expect("TxMsg::Rollback after a statement that never ended");

    // A commit is refused: nothing of the transaction is left to commit.
    let tx = a_transaction_whose_statement_never_ended(&db, &admin, &app, victim).await;
    let err = tx.commit().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TxAborted, "{err}");

    // The backends of the three lost updates waited for the lock all
    // along (a backend waiting for a lock does not notice its client has
    // gone); they get it now, and end at their next read.
    holder.batch_execute("ROLLBACK").await.unwrap();
    assert_nothing_left_open(&admin, &app).await;
    let page = db.list("StockBalance", Query::new()).await.unwrap();
    assert_eq!(
        page.total,
        Some(1),
        "only the victim, none of the lost writes"
    );
    let quantity: i64 = page.rows[0].get("quantity").unwrap();
    assert_eq!(quantity, 0, "none of the lost updates");
    db.close().await;
}
