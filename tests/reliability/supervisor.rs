//! Scenario 5l, the adapter's own supervisor killed (catalogue E3, E6): the
//! supervisor (`Db::actor`) is killed, then the last `Db` is dropped, on
//! the shared topology. ractor runs no `post_stop` after a kill, so
//! whatever the supervisor must undo when it goes has to happen anyway.
//!
//! Three ways, each repeated:
//!
//! - idle: both pools warm, nothing running;
//! - busy: a transaction open after a write, and a subscriber (the
//!   listener's connection open);
//! - replica: opened with a read DSN, so the replica monitor runs.
//!
//! What each repetition proves: once the supervisor is gone, every later
//! call on the `Db` answers `CLOSED` (never a hang, a panic or a success),
//! a `commit()` of the open transaction `TX_ABORTED` or `TX_CLOSED` with
//! its write absent, and `close()` returns; once the last `Db` is dropped, within
//! [`SETTLE`], no session of the adapter (its own application_name) is
//! left on the primary or the replica and every task it started (pool
//! reapers, the replica monitor, connection tasks, actors) has ended.
//!
//! Figures: operations = calls after the kill; acknowledged = those that
//! succeeded (must be 0); errors = their answers by kind; leaked =
//! repetitions whose sessions or tasks were still there after [`SETTLE`].
//! The supervisor cannot be made to panic: no `DbMsg` makes its handlers
//! panic, so a kill is the way it goes without `post_stop`.

use std::time::{Duration, Instant};

use pgactor::{Record, TxOptions};
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::figures::{self, Figures};
use crate::support::db::{stock_model, tagged_options, unique_schema};
use crate::support::observer::{observer, session_pids};
use crate::support::topology::{primary_url, replica_url};

/// Repetitions of each way.
const REPETITIONS: u64 = 3;

/// How long after the last `Db` is dropped its sessions and tasks may
/// take to go: connections close at once, the reapers and the replica
/// monitor end at their next tick (at most 1 s here).
const SETTLE: Duration = Duration::from_secs(3);

/// How long a call after the kill may take before it counts as a hang.
const HANG: Duration = Duration::from_secs(10);

/// The note of the write the open transaction makes: never committed.
const ABANDONED: &str = "abandoned-by-a-killed-supervisor";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    Idle,
    Busy,
    Replica,
}

/// A subscriber that takes whatever comes.
struct Sink;

#[cfg_attr(feature = "async-trait", ractor::async_trait)]
impl Actor for Sink {
    type Msg = pgactor::Notification;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<Self::Msg>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

/// Count one call made after the kill and note its answer (`hang` when
/// none came within [`HANG`]).
async fn after_kill<T>(
    f: &mut Figures,
    what: &str,
    answers: &mut Vec<String>,
    call: impl std::future::Future<Output = pgactor::Result<T>>,
) {
    match tokio::time::timeout(HANG, call).await {
        Ok(result) => {
            f.outcome(&result);
            let answer = match &result {
                Ok(_) => "ok".to_owned(),
                Err(e) => e.code().to_owned(),
            };
            answers.push(format!("{what} {answer}"));
        }
        Err(_) => {
            f.operations += 1;
            f.error("hang");
            answers.push(format!("{what} hang"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_supervisor_closes_the_adapter_and_the_last_drop_leaves_nothing_running() {
    let _serial = figures::serial().await;
    let mut f = Figures::new(
        "5l",
        "the supervisor killed (idle; an open Tx and a subscriber; a replica), then the last Db dropped",
    );
    let primary = observer(&primary_url()).await;
    let replica = observer(&replica_url()).await;
    let metrics = tokio::runtime::Handle::current().metrics();
    let mut slowest = Duration::ZERO;
    let mut slowest_close = Duration::ZERO;
    let mut answers_seen = std::collections::BTreeMap::<String, u64>::new();
    let mut commits = Vec::new();
    let mut before_kill = Vec::new();

    for way in [Way::Idle, Way::Busy, Way::Replica] {
        for _ in 0..REPETITIONS {
            let tasks_before = metrics.num_alive_tasks();
            let app = unique_schema("sup_killed");
            let mut options = tagged_options(
                &primary_url(),
                [stock_model()],
                pgactor::PoolConfig::default(),
                &app,
                &app,
            );
            if way == Way::Replica {
                options = options.read_dsn(replica_url());
            }
            let db = options.open().await.expect("open");
            let row = db
                .create("StockBalance", Record::new().with("sku", "kept"))
                .await
                .expect("a write before the kill");
            let id: uuid::Uuid = row.get("id").unwrap();
            if way == Way::Replica {
                // Only that the read pool ran counts: a replica that has not
                // replayed the table or the row yet may refuse or miss it.
                let _ = db.read("StockBalance", id).await;
            } else {
                db.read("StockBalance", id)
                    .await
                    .expect("a read before the kill");
            }
            let busy = if way == Way::Busy {
                let tx = db.begin(TxOptions::default()).await.expect("begin");
                tx.create(
                    "StockBalance",
                    Record::new().with("sku", "tx").with("note", ABANDONED),
                )
                .await
                .expect("a write in the transaction");
                let (sink, _) = Actor::spawn(None, Sink, ()).await.expect("a subscriber");
                db.subscribe("sup_killed", sink.clone())
                    .await
                    .expect("subscribe");
                Some((tx, sink))
            } else {
                None
            };
            before_kill.push(
                session_pids(&primary, &app).await.len()
                    + if way == Way::Replica {
                        session_pids(&replica, &app).await.len()
                    } else {
                        0
                    },
            );

            db.actor()
                .kill_and_wait(None)
                .await
                .expect("the supervisor is killed");

            let mut answers = Vec::new();
            after_kill(&mut f, "read", &mut answers, db.read("StockBalance", id)).await;
            after_kill(
                &mut f,
                "create",
                &mut answers,
                db.create("StockBalance", Record::new().with("sku", "after")),
            )
            .await;
            after_kill(
                &mut f,
                "begin",
                &mut answers,
                db.begin(TxOptions::default()),
            )
            .await;
            let (probe, _) = Actor::spawn(None, Sink, ()).await.expect("a subscriber");
            after_kill(
                &mut f,
                "subscribe",
                &mut answers,
                db.subscribe("sup_killed", probe.clone()),
            )
            .await;
            probe.stop_and_wait(None, None).await.unwrap();
            after_kill(&mut f, "migrate", &mut answers, db.migrate()).await;
            for answer in &answers {
                *answers_seen.entry(answer.clone()).or_default() += 1;
            }

            if let Some((tx, sink)) = busy {
                let commit = tokio::time::timeout(HANG, tx.commit()).await;
                let code = match &commit {
                    Ok(Ok(())) => "ok",
                    Ok(Err(e)) => e.code(),
                    Err(_) => "hang",
                };
                commits.push(code.to_owned());
                drop(tx);
                sink.stop_and_wait(None, None).await.unwrap();
                // With a transaction killed open: the shutdown's wait for
                // open transactions must not wait in vain.
                let closing = Instant::now();
                if tokio::time::timeout(HANG, db.close()).await.is_err() {
                    f.error("hang");
                }
                slowest_close = slowest_close.max(closing.elapsed());
            }

            drop(db);
            let dropped = Instant::now();
            let settled = loop {
                let left = session_pids(&primary, &app).await.len()
                    + session_pids(&replica, &app).await.len();
                let tasks = metrics.num_alive_tasks();
                if left == 0 && tasks <= tasks_before {
                    break true;
                }
                if dropped.elapsed() >= SETTLE {
                    f.note(format!(
                        "{way:?}: {left} sessions and {} tasks left {SETTLE:?} after the drop",
                        tasks.saturating_sub(tasks_before)
                    ));
                    break false;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            if settled {
                slowest = slowest.max(dropped.elapsed());
            } else {
                f.leaked += 1;
            }
        }
    }

    let abandoned = abandoned_rows(&primary).await;
    f.note(format!(
        "{REPETITIONS} of each way; sessions before the kill: {}..{}",
        before_kill.iter().min().unwrap(),
        before_kill.iter().max().unwrap()
    ));
    f.note(format!("calls after the kill: {answers_seen:?}"));
    f.note(format!("commit of the open Tx: {commits:?}"));
    f.note(format!("abandoned writes kept: {abandoned}"));
    f.note(format!(
        "close() after the kill (open Tx) took ≤ {} ms",
        slowest_close.as_millis()
    ));
    f.note(format!("slowest settle {} ms", slowest.as_millis()));
    f.note("supervisor panic: not reachable (no DbMsg panics)");
    f.publish();

    assert_eq!(
        f.leaked, 0,
        "sessions or tasks left after the drop: {:?}",
        f.notes
    );
    assert_eq!(
        f.acknowledged, 0,
        "no call succeeds once the supervisor is gone: {answers_seen:?}"
    );
    assert!(
        f.errors.keys().all(|code| code == "CLOSED"),
        "every call after the kill answers CLOSED: {answers_seen:?}"
    );
    assert!(
        commits
            .iter()
            .all(|c| c == "TX_ABORTED" || c == "TX_CLOSED"),
        "the open transaction's commit answers TX_ABORTED or TX_CLOSED: {commits:?}"
    );
    assert_eq!(
        abandoned, 0,
        "nothing of the open transaction was committed"
    );
}

/// Rows of the transactions the killed supervisor's adapters left open,
/// in any schema of this scenario.
async fn abandoned_rows(obs: &tokio_postgres::Client) -> i64 {
    let schemas: Vec<String> = obs
        .query(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 't_sup_killed_%'",
            &[],
        )
        .await
        .expect("schemas")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut n = 0;
    for schema in schemas {
        n += obs
            .query_one(
                &format!("SELECT count(*) FROM \"{schema}\".stock_balance WHERE note = $1"),
                &[&ABANDONED],
            )
            .await
            .expect("count abandoned rows")
            .get::<_, i64>(0);
    }
    n
}
