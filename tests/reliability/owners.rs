//! Scenario 5, transaction owners vanish (catalogue E2, E3, E6, F1): every
//! way the owner of an open transaction can go away, each repeated and
//! counted, on the shared primary.
//!
//! - 5a: the closure given to `Db::with_transaction` panics (E3).
//! - 5b: the `Tx` handle is dropped without COMMIT or ROLLBACK: right after
//!   BEGIN, after a write, while a statement runs (a slow update) and while
//!   it waits for a row lock, the last two by aborting the task that awaits
//!   it (E2).
//! - 5c: a ractor actor holding the `Tx` in its state is stopped, killed,
//!   or panics.
//! - 5d: the transaction actor itself (`Tx::actor`) is killed after a
//!   write, stopped after a write, or killed while a statement runs. It
//!   cannot be made to panic: no `TxMsg` makes its handler panic (E3).
//! - 5e: the server's `idle_in_transaction_session_timeout` (1 s) ends the
//!   session of 20 transactions idle after a write (F1).
//! - 5f: `Db::close_within` with 10 open transactions, repeated (E6).
//! - 5g: a `commit()` dropped while queued behind a clone's statement, the
//!   `Tx` kept: COMMIT is not sent, the transaction rolls back (E2).
//! - 5h: a `Tx` statement future polled once and kept unpolled, then
//!   `commit()`: the actor takes the statement back, the commit answers.
//! - 5i, 5j: `Tx` handles kept idle past `idle_in_transaction_timeout`
//!   (half before their first statement) on a write pool they fill, direct
//!   and through PgBouncer: rolled back, connections freed, a WARN names
//!   where each was begun (E4, F1).
//! - 5k: the server ends the sessions of kept transactions with the idle
//!   bound off: their connections are freed all the same.
//!
//! What each repetition proves, seen from an observer session: the abandoned
//! writes are absent (never committed, not even by the next borrower of
//! the connection), no session of the adapter (a unique application_name)
//! is left idle in transaction or holding a lock, the pool shows nothing in
//! use and no open transaction once settled, and the next operation (a
//! committed transaction on the same small pool) succeeds and is present.
//!
//! Figures: operations = repetitions; acknowledged = next operations that
//! succeeded; lost = committed next rows missing; errors = what the owner
//! or caller was answered (`panic`, `TX_ABORTED`, …); leaked = repetitions
//! whose sessions, locks or pool did not settle within 10 s.

use std::future::Future;
use std::time::{Duration, Instant};

use pgactor::{Db, PoolConfig, PoolerMode, Query, Record, SessionConfig, Tx, TxOptions};
use ractor::{call, Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::dropped::running;
use crate::figures::{self, Figures};
use crate::support::blocking::{lock_waiters, make_updates_slow};
use crate::support::db::{registry, stock_model, unique_schema};
use crate::support::kill::terminate_sessions;
use crate::support::logs::capturing_logs;
use crate::support::observer::{no_session_left, observer};
use crate::support::topology::{bouncer_url, primary_url};

/// Repetitions of each way.
const REPETITIONS: u64 = 20;

/// How long a repetition may take to settle before it counts as leaked.
const PATIENCE: Duration = Duration::from_secs(10);

/// The note of every abandoned write: no row may ever carry it.
const ABANDONED: &str = "abandoned";

/// How long the slow update of [`Owners::slow_update`] sleeps on the server.
const SLOW_MS: i64 = 300;

/// One scenario's adapter (sessions tagged with its schema's name), an
/// observer on the primary, and the figures.
struct Owners {
    db: Db,
    app: String,
    session: SessionConfig,
    /// Where the adapter connects, and its pools.
    target: Target,
    admin: tokio_postgres::Client,
    figures: Figures,
    /// A committed row the slow and lock-waiting updates target.
    victim: uuid::Uuid,
    /// Rows of the committed next operations.
    committed: Vec<uuid::Uuid>,
    slowest_settle: Duration,
}

impl Owners {
    async fn open(id: &str, scenario: &str, session: SessionConfig, max_open: usize) -> Owners {
        Owners::open_at(id, scenario, session, Target::primary(max_open)).await
    }

    async fn open_at(id: &str, scenario: &str, session: SessionConfig, target: Target) -> Owners {
        let app = unique_schema("own");
        let session = SessionConfig {
            schema: Some(app.clone()),
            application_name: Some(app.clone()),
            ..session
        };
        let db = open_db(&session, &target).await;
        let admin = observer(&primary_url()).await;
        make_updates_slow(&admin, &app).await;
        let victim = db
            .create("StockBalance", Record::new().with("sku", "victim"))
            .await
            .expect("create the victim row")
            .get("id")
            .unwrap();
        Owners {
            db,
            app,
            session,
            target,
            admin,
            figures: Figures::new(id, scenario),
            victim,
            committed: Vec::new(),
            slowest_settle: Duration::ZERO,
        }
    }

    /// Open the adapter again on the same schema (after a shutdown).
    async fn reopen(&mut self) {
        self.db = open_db(&self.session, &self.target).await;
    }

    /// Begin a transaction and write an abandoned row in it.
    async fn begin_and_write(&self) -> Tx {
        let tx = self.db.begin(TxOptions::default()).await.expect("begin");
        tx.create("StockBalance", abandoned_row())
            .await
            .expect("write inside the transaction");
        tx
    }

    /// Run an update of the victim on `tx`, in a task of its own, and answer
    /// once the server shows it running (`blocked`: waiting for a row lock
    /// someone else holds; else sleeping in the slow trigger).
    async fn slow_update(
        &self,
        tx: Tx,
        blocked: bool,
    ) -> tokio::task::JoinHandle<pgactor::Result<Record>> {
        let quantity = if blocked { 1 } else { SLOW_MS };
        let patch = Record::new()
            .with("quantity", quantity)
            .with("note", ABANDONED);
        let victim = self.victim;
        let task = tokio::spawn(async move { tx.update("StockBalance", victim, patch).await });
        let started = Instant::now();
        while !(if blocked {
            lock_waiters(&self.admin, &self.app).await > 0
        } else {
            running(&self.admin, &self.app, "UPDATE").await > 0
        }) {
            assert!(started.elapsed() < PATIENCE, "the update never started");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        task
    }

    /// Lock the victim row from outside the adapter, in `outside`'s open
    /// transaction; `ROLLBACK` on it releases it.
    async fn lock_victim(&self, outside: &tokio_postgres::Client) {
        outside
            .batch_execute(&format!(
                "BEGIN; SELECT 1 FROM \"{}\".stock_balance WHERE id = '{}' FOR UPDATE",
                self.app, self.victim
            ))
            .await
            .expect("lock the victim row");
    }

    /// Wait until the adapter holds nothing: no session idle in transaction,
    /// no lock, no connection in use, no open transaction. A repetition that
    /// does not settle within [`PATIENCE`] counts as leaked.
    async fn settle(&mut self) {
        let started = Instant::now();
        let mut left = String::new();
        while started.elapsed() < PATIENCE {
            let row = self
                .admin
                .query_one(
                    "SELECT \
                     (SELECT count(*) FROM pg_stat_activity \
                      WHERE application_name = $1 AND state LIKE 'idle in transaction%'), \
                     (SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
                      WHERE a.application_name = $1)",
                    &[&self.app],
                )
                .await
                .expect("observe pg_stat_activity and pg_locks");
            let (idle_in_tx, locks): (i64, i64) = (row.get(0), row.get(1));
            let stats = self.db.stats();
            let (in_use, open) = (
                stats.write.in_use + stats.read.in_use,
                stats.open_transactions,
            );
            if idle_in_tx + locks == 0 && in_use == 0 && open == 0 {
                self.slowest_settle = self.slowest_settle.max(started.elapsed());
                return;
            }
            left = format!(
                "idle in transaction {idle_in_tx}, locks {locks}, in use {in_use}, open transactions {open}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.figures.leaked += 1;
        self.figures.note(format!("not settled: {left}"));
    }

    /// The next operation: a committed transaction on the same pool (so
    /// likely on the connection the abandoned transaction used).
    async fn next_operation(&mut self) {
        let outcome = self
            .db
            .with_transaction(TxOptions::default(), |tx| async move {
                tx.create("StockBalance", Record::new().with("sku", new_sku()))
                    .await
            })
            .await;
        self.figures.outcome(&outcome);
        if let Ok(row) = outcome {
            self.committed.push(row.get("id").unwrap());
        }
    }

    /// Settle, then run the next operation: the end of every repetition.
    async fn after_repetition(&mut self) {
        self.settle().await;
        self.next_operation().await;
    }

    /// Count the abandoned rows kept and the committed ones lost, publish,
    /// and assert: nothing kept, lost or leaked, every next operation
    /// succeeded, and only `expected` errors were answered.
    async fn finish(mut self, expected: &[&str]) {
        let table = format!("\"{}\".stock_balance", self.app);
        let kept: i64 = self
            .admin
            .query_one(
                &format!("SELECT count(*) FROM {table} WHERE note = $1"),
                &[&ABANDONED],
            )
            .await
            .expect("count the abandoned rows")
            .get(0);
        let present: i64 = self
            .admin
            .query_one(
                &format!("SELECT count(*) FROM {table} WHERE id = ANY($1)"),
                &[&self.committed],
            )
            .await
            .expect("count the committed rows")
            .get(0);
        self.figures.lost = self.committed.len() as u64 - present as u64;
        self.figures.note(format!("abandoned writes kept: {kept}"));
        self.figures.note(format!(
            "slowest settle {} ms",
            self.slowest_settle.as_millis()
        ));
        self.figures.publish();
        let f = &self.figures;
        assert_eq!(kept, 0, "an abandoned write was committed");
        assert_eq!(f.lost, 0, "a committed next operation is missing");
        assert_eq!(f.leaked, 0, "something was left: {:?}", f.notes);
        assert_eq!(
            f.acknowledged, f.operations,
            "a next operation failed: {:?}",
            f.errors
        );
        let unexpected: Vec<_> = f
            .errors
            .keys()
            .filter(|k| !expected.contains(&k.as_str()))
            .collect();
        assert!(unexpected.is_empty(), "unexpected answers: {:?}", f.errors);
        self.db.close().await;
    }
}

/// Where a scenario's adapter connects, how, and its pools.
struct Target {
    url: String,
    pooler: PoolerMode,
    pool: PoolConfig,
}

impl Target {
    /// Straight to the primary, pools of `max_open`.
    fn primary(max_open: usize) -> Target {
        Target {
            url: primary_url(),
            pooler: PoolerMode::Direct,
            pool: PoolConfig {
                max_open: Some(max_open),
                ..PoolConfig::default()
            },
        }
    }
}

async fn open_db(session: &SessionConfig, target: &Target) -> Db {
    pgactor::OpenOptions::new(target.url.clone())
        .pooler(target.pooler)
        .registry(registry([stock_model()]))
        .write_pool(target.pool.clone())
        .read_pool(target.pool.clone())
        .session(session.clone())
        .open()
        .await
        .expect("open")
}

fn new_sku() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn abandoned_row() -> Record {
    Record::new().with("sku", new_sku()).with("note", ABANDONED)
}

/// Count the answer of an operation whose transaction was taken away: an
/// error label, or `ok` (which no expected list holds).
fn answered<T>(figures: &mut Figures, result: &pgactor::Result<T>) {
    figures.error(result.as_ref().map_or_else(|e| e.code(), |_| "ok"));
}

/// A small write pool: the next operation most likely reuses the
/// connection the abandoned transaction had.
const SMALL_POOL: usize = 2;

#[tokio::test]
async fn a_with_transaction_body_that_panics_leaves_nothing() {
    let _serial = figures::serial().await;
    let mut s = Owners::open(
        "5a",
        "with_transaction body panics after a write",
        SessionConfig::default(),
        SMALL_POOL,
    )
    .await;
    for _ in 0..REPETITIONS {
        let db = s.db.clone();
        let run = tokio::spawn(async move {
            db.with_transaction::<(), _, _>(TxOptions::default(), |tx| async move {
                tx.create("StockBalance", abandoned_row()).await?;
                panic!("5a: the transaction's body panics (expected)")
            })
            .await
        });
        match run.await {
            Err(e) if e.is_panic() => s.figures.error("panic"),
            other => panic!("the body's panic must reach the caller: {other:?}"),
        }
        s.after_repetition().await;
    }
    s.finish(&["panic"]).await;
}

#[tokio::test]
async fn a_tx_handle_dropped_at_any_point_leaves_nothing() {
    let _serial = figures::serial().await;
    let mut s = Owners::open(
        "5b",
        "Tx dropped after BEGIN, after a write, during a statement, during a lock wait",
        SessionConfig::default(),
        SMALL_POOL,
    )
    .await;
    let outside = observer(&primary_url()).await;
    let points = [
        "after BEGIN",
        "after a write",
        "during a statement",
        "during a lock wait",
    ];
    for i in 0..REPETITIONS {
        match points[i as usize % points.len()] {
            "after BEGIN" => drop(s.db.begin(TxOptions::default()).await.expect("begin")),
            "after a write" => drop(s.begin_and_write().await),
            point => {
                let blocked = point == "during a lock wait";
                if blocked {
                    s.lock_victim(&outside).await;
                }
                let tx = s.begin_and_write().await;
                let task = s.slow_update(tx, blocked).await;
                // The caller goes away: its future (and the Tx in it) is dropped.
                task.abort();
                assert!(task.await.unwrap_err().is_cancelled());
                if blocked {
                    outside.batch_execute("ROLLBACK").await.unwrap();
                }
            }
        }
        s.after_repetition().await;
    }
    let each = REPETITIONS / points.len() as u64;
    s.figures.note(format!("{each} at each of the 4 points"));
    s.finish(&[]).await;
}

/// A ractor actor that owns a transaction in its state.
struct Holder;

enum HolderMsg {
    /// Begin a transaction, write `row` in it, keep it, and answer.
    Open(Db, Record, RpcReplyPort<pgactor::Result<()>>),
    /// Panic while holding the transaction.
    Panic,
}

// Built with the `cluster` feature, ractor has no blanket `Message` impl:
// the suite's own message types implement it.
#[cfg(feature = "cluster")]
impl ractor::Message for HolderMsg {}

#[cfg_attr(feature = "async-trait", ractor::async_trait)]
impl Actor for Holder {
    type Msg = HolderMsg;
    type State = Option<Tx>;
    type Arguments = ();

    async fn pre_start(
        &self,
        _: ActorRef<HolderMsg>,
        _: (),
    ) -> Result<Option<Tx>, ActorProcessingErr> {
        Ok(None)
    }

    async fn handle(
        &self,
        _: ActorRef<HolderMsg>,
        msg: HolderMsg,
        held: &mut Option<Tx>,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            HolderMsg::Open(db, row, reply) => {
                let opened = async {
                    let tx = db.begin(TxOptions::default()).await?;
                    tx.create("StockBalance", row).await?;
                    Ok(tx)
                }
                .await;
                let _ = reply.send(opened.map(|tx| *held = Some(tx)));
            }
            HolderMsg::Panic => panic!("5c: the transaction's owner panics (expected)"),
        }
        Ok(())
    }
}

#[tokio::test]
async fn an_owner_actor_that_stops_is_killed_or_panics_leaves_nothing() {
    let _serial = figures::serial().await;
    let mut s = Owners::open(
        "5c",
        "ractor owner of a Tx stopped, killed, panics",
        SessionConfig::default(),
        SMALL_POOL,
    )
    .await;
    let endings = ["stopped", "killed", "panicked"];
    for i in 0..REPETITIONS {
        let (holder, ended) = Actor::spawn(None, Holder, ())
            .await
            .expect("spawn the owner");
        call!(holder, HolderMsg::Open, s.db.clone(), abandoned_row())
            .expect("the owner answers")
            .expect("the owner holds an open transaction");
        let ending = endings[i as usize % endings.len()];
        match ending {
            "stopped" => holder.stop(None),
            "killed" => holder.kill(),
            _ => holder.cast(HolderMsg::Panic).expect("send"),
        }
        ended.await.expect("the owner's task ends");
        s.after_repetition().await;
    }
    s.figures.note("stopped, killed, panicked in turn");
    s.finish(&[]).await;
}

#[tokio::test]
async fn a_transaction_actor_killed_or_stopped_leaves_nothing() {
    let _serial = figures::serial().await;
    let mut s = Owners::open(
        "5d",
        "transaction actor killed after a write, stopped, killed during a statement",
        SessionConfig::default(),
        SMALL_POOL,
    )
    .await;
    let ways = ["killed", "stopped", "killed during a statement"];
    for i in 0..REPETITIONS {
        let tx = s.begin_and_write().await;
        match ways[i as usize % ways.len()] {
            "killed" => tx.actor().kill(),
            "stopped" => tx.actor().stop(None),
            _ => {
                let task = s.slow_update(tx.clone(), false).await;
                tx.actor().kill();
                // The caller awaiting the statement is answered at once.
                answered(&mut s.figures, &task.await.unwrap());
            }
        }
        // The caller still holds the Tx: COMMIT must not commit anything.
        answered(&mut s.figures, &tx.commit().await);
        drop(tx);
        s.after_repetition().await;
    }
    s.figures
        .note("killed, stopped, killed during a statement in turn");
    s.figures
        .note("actor panic: not reachable (no TxMsg panics)");
    s.finish(&["TX_ABORTED", "TX_CLOSED"]).await;
}

#[tokio::test]
async fn the_servers_idle_in_transaction_timeout_leaves_nothing() {
    let _serial = figures::serial().await;
    let timeout = Duration::from_secs(1);
    let session = SessionConfig {
        idle_in_transaction_timeout: Some(timeout),
        ..SessionConfig::default()
    };
    let n = REPETITIONS as usize;
    let mut s = Owners::open(
        "5e",
        "idle_in_transaction_session_timeout 1 s, 20 idle transactions",
        session,
        n + SMALL_POOL,
    )
    .await;
    let mut open = Vec::with_capacity(n);
    for _ in 0..n {
        open.push(s.begin_and_write().await);
    }
    // All idle past the server's timeout at once.
    tokio::time::sleep(timeout + Duration::from_millis(500)).await;
    let mut first = std::collections::BTreeMap::<&str, u64>::new();
    for tx in &open {
        let result = tx.list("StockBalance", Query::new()).await;
        *first
            .entry(result.as_ref().map_or_else(|e| e.code(), |_| "ok"))
            .or_default() += 1;
        answered(&mut s.figures, &result);
        answered(&mut s.figures, &tx.commit().await);
    }
    drop(open);
    for _ in 0..n {
        s.after_repetition().await;
    }
    s.figures
        .note(format!("first statement after the timeout: {first:?}"));
    s.finish(&["TX_ABORTED", "UNAVAILABLE"]).await;
}

#[tokio::test]
async fn shutdown_with_ten_open_transactions_rolls_them_all_back() {
    let _serial = figures::serial().await;
    const OPEN: usize = 10;
    const SHUTDOWNS: usize = 5;
    let mut s = Owners::open(
        "5f",
        "close_within(200 ms) with 10 open transactions, 5 times",
        SessionConfig::default(),
        OPEN + SMALL_POOL,
    )
    .await;
    let mut slowest_close = Duration::ZERO;
    for _ in 0..SHUTDOWNS {
        let mut open = Vec::with_capacity(OPEN);
        for _ in 0..OPEN {
            open.push(s.begin_and_write().await);
        }
        let started = Instant::now();
        s.db.close_within(Duration::from_millis(200)).await;
        slowest_close = slowest_close.max(started.elapsed());
        // Every session of the adapter is gone, with its transaction.
        no_session_left(&s.app).await;
        s.settle().await;
        for tx in &open {
            // A handle that outlived the shutdown commits nothing.
            answered(&mut s.figures, &tx.commit().await);
        }
        drop(open);
        s.reopen().await;
        for _ in 0..OPEN {
            s.next_operation().await;
        }
    }
    s.figures.note(format!(
        "{SHUTDOWNS} shutdowns, slowest close {} ms",
        slowest_close.as_millis()
    ));
    s.finish(&["TX_CLOSED", "TX_ABORTED", "CLOSED"]).await;
}

/// Repetitions of the scenarios whose callers misbehave (5g, 5h).
const MISBEHAVIOURS: u64 = 5;

#[tokio::test]
async fn a_commit_abandoned_while_queued_is_not_sent_and_the_transaction_rolls_back() {
    let _serial = figures::serial().await;
    let mut s = Owners::open(
        "5g",
        "commit() dropped while queued behind a lock wait, Tx kept",
        SessionConfig::default(),
        SMALL_POOL,
    )
    .await;
    let outside = observer(&primary_url()).await;
    let mut later = std::collections::BTreeMap::<String, u64>::new();
    for _ in 0..MISBEHAVIOURS {
        s.lock_victim(&outside).await;
        let tx = s.begin_and_write().await;
        // A clone's update waits for the row lock; the commit queues behind it.
        let update = s.slow_update(tx.clone(), true).await;
        let commit = tokio::time::timeout(Duration::from_millis(50), tx.commit()).await;
        assert!(commit.is_err(), "the commit waits behind the update");
        outside.batch_execute("ROLLBACK").await.unwrap();
        update
            .await
            .unwrap()
            .expect("the update, once the lock is free");
        // The transaction was rolled back instead: rollback() says so, a
        // second commit() cannot commit it.
        let rollback = tx.rollback().await;
        let commit = tx.commit().await;
        for (call, result) in [("rollback", &rollback), ("commit", &commit)] {
            let label = result.as_ref().map_or_else(|e| e.code(), |_| "ok");
            *later.entry(format!("{call} {label}")).or_default() += 1;
        }
        drop(tx);
        s.after_repetition().await;
    }
    s.figures
        .note(format!("the caller's later calls answered: {later:?}"));
    let expected = [
        ("commit TX_CLOSED".to_owned(), MISBEHAVIOURS),
        ("rollback ok".to_owned(), MISBEHAVIOURS),
    ];
    let later_ok = later == expected.into_iter().collect();
    s.finish(&[]).await;
    assert!(
        later_ok,
        "rollback() must answer ok, commit() TX_CLOSED: {later:?}"
    );
}

#[tokio::test]
async fn a_statement_future_polled_once_and_kept_does_not_hold_up_the_commit() {
    let _serial = figures::serial().await;
    let query_timeout = Duration::from_secs(1);
    let session = SessionConfig {
        query_timeout: Some(query_timeout),
        ..SessionConfig::default()
    };
    // Each repetition that hangs keeps its connection: room for all of them.
    let mut s = Owners::open(
        "5h",
        "a statement future polled once and kept, then commit() (query timeout 1 s)",
        session,
        MISBEHAVIOURS as usize + SMALL_POOL,
    )
    .await;
    // The contract: the actor waits for a caller that stopped polling at
    // most its 1 s hand-off grace, then the commit runs, bounded by the
    // query timeout and the 1 s cancel grace; twice that before giving up.
    let give_up = 2 * (Duration::from_secs(1) + query_timeout + Duration::from_secs(1));
    let mut slowest = Duration::ZERO;
    let mut kept_answers = std::collections::BTreeMap::<&str, u64>::new();
    let mut rows = Vec::new();
    for _ in 0..MISBEHAVIOURS {
        let tx = s.db.begin(TxOptions::default()).await.expect("begin");
        let sku = new_sku();
        let mut kept = Box::pin(tx.create("StockBalance", Record::new().with("sku", sku.clone())));
        // Polled once (as `select!` on `&mut fut` does), then kept unpolled.
        let pending =
            std::future::poll_fn(|cx| std::task::Poll::Ready(kept.as_mut().poll(cx).is_pending()))
                .await;
        assert!(pending, "the create waits for its actor");
        let started = Instant::now();
        match tokio::time::timeout(give_up, tx.commit()).await {
            Ok(result) => {
                slowest = slowest.max(started.elapsed());
                s.figures.outcome(&result);
            }
            Err(_) => {
                s.figures.operations += 1;
                s.figures.error("no answer");
            }
        }
        // The kept future, polled again, answers what its statement did.
        let kept = tokio::time::timeout(give_up, kept).await;
        let label = match &kept {
            Ok(Ok(_)) => "ok",
            Ok(Err(e)) => e.code(),
            Err(_) => "no answer",
        };
        *kept_answers.entry(label).or_default() += 1;
        rows.push(sku);
        drop(tx);
        s.settle().await;
    }
    let present: i64 = s
        .admin
        .query_one(
            &format!(
                "SELECT count(*) FROM \"{}\".stock_balance WHERE sku = ANY($1)",
                s.app
            ),
            &[&rows],
        )
        .await
        .expect("count the kept statements' rows")
        .get(0);
    s.figures.note(format!(
        "slowest commit answer {} ms (bound {} ms)",
        slowest.as_millis(),
        give_up.as_millis()
    ));
    s.figures
        .note(format!("kept futures answered: {kept_answers:?}"));
    s.figures.note(format!(
        "kept statements committed: {present} of {MISBEHAVIOURS}"
    ));
    let f = &s.figures;
    let all_answered =
        f.acknowledged == f.operations && kept_answers.get("ok") == Some(&MISBEHAVIOURS);
    s.figures.publish();
    assert!(
        all_answered,
        "every commit and kept future answers ok: {:?}, {kept_answers:?}",
        s.figures.errors
    );
    assert_eq!(
        present as u64, MISBEHAVIOURS,
        "the committed creates are present"
    );
    assert_eq!(
        s.figures.leaked, 0,
        "something was left: {:?}",
        s.figures.notes
    );
}

/// Transactions kept past the idle bound in 5i and 5j: as many as the
/// write pool has connections, half with no statement (no BEGIN sent),
/// half after a write.
const KEPT: usize = 4;

/// Keep [`KEPT`] transactions idle past a 1 s `idle_in_transaction_timeout`
/// on a write pool of [`KEPT`] connections (`target`): each is rolled back,
/// its connection freed and a WARN names where it was begun; the pool
/// serves the next writes, and the kept handles answer `TX_ABORTED`
/// (statements, commit) or ok (rollback).
async fn kept_idle_transactions_are_ended(
    id: &str,
    scenario: &str,
    url: String,
    pooler: PoolerMode,
) {
    let _serial = figures::serial().await;
    let session = SessionConfig {
        idle_in_transaction_timeout: Some(Duration::from_secs(1)),
        ..SessionConfig::default()
    };
    let target = Target {
        url,
        pooler,
        pool: PoolConfig {
            max_open: Some(KEPT),
            wait_timeout: Some(Duration::from_secs(2)),
            ..PoolConfig::default()
        },
    };
    let (mut s, logs) = capturing_logs(async {
        let mut s = Owners::open_at(id, scenario, session, target).await;
        let mut kept = Vec::with_capacity(KEPT);
        for i in 0..KEPT {
            kept.push(if i % 2 == 0 {
                s.db.begin(TxOptions::default()).await.expect("begin")
            } else {
                s.begin_and_write().await
            });
        }
        freed_and_answered(&mut s, &kept).await;
        s
    })
    .await;
    let warned = begin_warnings(&logs);
    s.figures
        .note(format!("WARNs naming where it was begun: {warned}"));
    s.finish(&["TX_ABORTED"]).await;
    assert_eq!(warned, KEPT, "one WARN per transaction ended:\n{logs}");
}

/// Once the adapter has ended the kept transactions: how long until the
/// pool settled, as many next operations as there were transactions, and
/// the kept handles' answers.
async fn freed_and_answered(s: &mut Owners, kept: &[Tx]) {
    let started = Instant::now();
    s.settle().await;
    s.figures
        .note(format!("freed after {} ms", started.elapsed().as_millis()));
    for _ in 0..kept.len() {
        s.next_operation().await;
    }
    kept_handles_answer(s, kept).await;
}

/// The answers of handles whose transaction the adapter ended: a statement
/// and commit() on half (counted), rollback() (ok) on the others.
async fn kept_handles_answer(s: &mut Owners, kept: &[Tx]) {
    for (i, tx) in kept.iter().enumerate() {
        if i % 2 == 0 {
            answered(&mut s.figures, &tx.read("StockBalance", s.victim).await);
            answered(&mut s.figures, &tx.commit().await);
        } else {
            tx.rollback()
                .await
                .expect("rollback() of an ended transaction");
        }
    }
}

/// WARN lines that name where a transaction was begun (in this file).
fn begin_warnings(logs: &str) -> usize {
    logs.lines()
        .filter(|l| l.contains("WARN") && l.contains("owners.rs:"))
        .count()
}

#[tokio::test]
async fn transactions_kept_idle_are_rolled_back_and_their_connections_freed() {
    kept_idle_transactions_are_ended(
        "5i",
        "4 Tx kept idle (2 without a statement) on a pool of 4, idle_in_transaction_timeout 1 s",
        primary_url(),
        PoolerMode::Direct,
    )
    .await;
}

#[tokio::test]
async fn transactions_kept_idle_behind_pgbouncer_are_rolled_back_and_their_connections_freed() {
    kept_idle_transactions_are_ended(
        "5j",
        "5i through PgBouncer (pooler mode)",
        bouncer_url(),
        PoolerMode::Transaction,
    )
    .await;
}

#[tokio::test]
async fn a_kept_transaction_whose_session_the_server_ended_frees_its_connection() {
    let _serial = figures::serial().await;
    // No idle bound on either side: only the server's end of the session frees it.
    let session = SessionConfig {
        idle_in_transaction_timeout: Some(Duration::ZERO),
        ..SessionConfig::default()
    };
    const ENDED: usize = 2;
    let target = Target {
        pool: PoolConfig {
            max_open: Some(ENDED),
            wait_timeout: Some(Duration::from_secs(2)),
            ..PoolConfig::default()
        },
        ..Target::primary(ENDED)
    };
    let (mut s, logs) = capturing_logs(async {
        let mut s = Owners::open_at(
            "5k",
            "pg_terminate_backend of 2 kept idle transactions, idle bound off",
            session,
            target,
        )
        .await;
        let mut kept = Vec::with_capacity(ENDED);
        for _ in 0..ENDED {
            kept.push(s.begin_and_write().await);
        }
        let ended = terminate_sessions(&s.admin, &s.app, "state = 'idle in transaction'").await;
        assert_eq!(ended.len(), ENDED);
        freed_and_answered(&mut s, &kept).await;
        s
    })
    .await;
    let warned = begin_warnings(&logs);
    s.figures
        .note(format!("WARNs naming where it was begun: {warned}"));
    // The first statement meets the lost connection (UNAVAILABLE: nothing
    // was committed), the commit after it TX_ABORTED.
    s.finish(&["TX_ABORTED", "UNAVAILABLE"]).await;
    assert_eq!(warned, ENDED, "one WARN per transaction ended:\n{logs}");
}
