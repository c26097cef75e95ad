//! Catalogue A1 (fast restart mid-load) and A2 (crash: `stop -m immediate`,
//! then start), on a private topology.
//!
//! 16 callers run before, during and after the restart: 8 autocommit
//! writers and 4 transaction writers (two ledger rows per
//! `with_transaction`, no retry) through the [`crate::ledger`], and 4
//! readers. What it proves:
//!
//! - every acknowledged write survives the restart (lost 0), no write the
//!   adapter called "not applied" landed (phantom 0), none landed twice
//!   (dup 0). The primary runs `synchronous_commit = on`: the rig runs it
//!   off, which lets a crash lose acknowledged commits, the server's doing
//!   and not the adapter's;
//! - callers get only typed errors of the kinds a restart explains
//!   (UNAVAILABLE, OUTCOME_UNKNOWN, TX_ABORTED), never a panic or a hang;
//! - the adapter serves again by itself. Recovery is measured from the
//!   moment an observer connects again to the first operation the adapter
//!   answers with success afterwards (reported; only a 30 s give-up fails);
//! - once the load stops nothing leaks: no adapter session busy or inside
//!   a transaction, no connection lent, no transaction open.
//!
//! 1c is the catalogue's A2-neg, the checker's self-test: the crash of 1b
//! with `synchronous_commit = off`, where the server may lose commits it
//! acknowledged. Its `lost` shows the checker sees a loss; it is reported,
//! not asserted (everything else is).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pgactor::{Db, PoolConfig, Query, TxOptions};

use crate::figures::{self, Figures};
use crate::ledger::{self, Ledger};
use crate::support::observer::observer;
use crate::support::topology::Topology;

const AUTOCOMMIT_WRITERS: i32 = 8;
const TX_WRITERS: i32 = 4;
const READERS: i32 = 4;
/// Each caller's pause between two operations (about 400–800 ops/s in all).
const PAUSE: Duration = Duration::from_millis(20);
/// Load before the fault, and after the server is back.
const BEFORE: Duration = Duration::from_secs(3);
const AFTER: Duration = Duration::from_secs(3);
/// An operation unanswered this long counts as a hang (fails the test).
const HANG: Duration = Duration::from_secs(20);
/// The give-up bound on the server coming back and the adapter serving again.
const GIVE_UP: Duration = Duration::from_secs(30);
/// The error kinds a restart explains.
const EXPECTED: [&str; 3] = ["UNAVAILABLE", "OUTCOME_UNKNOWN", "TX_ABORTED"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a1_fast_restart_under_load() {
    restart_under_load(
        "1a",
        "restart -m fast under 16 callers",
        Fault::Fast,
        Durability::Synchronous,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a2_crash_and_start_under_load() {
    restart_under_load(
        "1b",
        "stop -m immediate, then start, under 16 callers",
        Fault::Crash,
        Durability::Synchronous,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a2_neg_crash_without_synchronous_commit_shows_the_checker_sees_loss() {
    restart_under_load(
        "1c",
        "checker self-test: 1b with synchronous_commit = off (acknowledged commits may be lost by the server)",
        Fault::Crash,
        Durability::Asynchronous,
    )
    .await;
}

/// The primary's `synchronous_commit` during the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// `on`: an acknowledged commit is in the WAL the OS holds; survives a crash.
    Synchronous,
    /// `off`: a crash may lose the last acknowledged commits.
    Asynchronous,
}

/// How the primary goes down and comes back.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// `pg_ctl restart -m fast`.
    Fast,
    /// `pg_ctl stop -m immediate`, then `pg_ctl start` (crash recovery).
    Crash,
}

impl Fault {
    /// Run it (blocking: pg_ctl waits until the server is up again).
    fn apply(self, topology: &Topology) {
        let data = topology.var("PGACTOR_PRIMARY_DATA");
        match self {
            Fault::Fast => topology.pg_ctl(data, &["restart", "-m", "fast"]),
            Fault::Crash => {
                topology.pg_ctl(data, &["stop", "-m", "immediate"]);
                topology.pg_ctl(data, &["start"]);
            }
        }
    }
}

/// What one caller does, once per iteration.
#[derive(Debug, Clone, Copy)]
enum Caller {
    /// One autocommit ledger write.
    Writer(i32),
    /// Two ledger writes in one transaction.
    TxWriter(i32),
    /// One page of the ledger.
    Reader,
}

/// Every answer the callers got: when, and its error code (`None`: success).
type Answers = Arc<Mutex<Vec<(Instant, Option<&'static str>)>>>;

async fn restart_under_load(id: &str, scenario: &str, fault: Fault, durability: Durability) {
    let _serial = figures::serial().await;
    let topology = Arc::new(
        tokio::task::spawn_blocking(Topology::up)
            .await
            .expect("start a private topology"),
    );
    let url = topology.primary().to_owned();
    let admin = observer(&url).await;
    let synchronous_commit = match durability {
        Durability::Synchronous => "on",
        Durability::Asynchronous => "off",
    };
    for sql in [
        &format!("ALTER SYSTEM SET synchronous_commit = {synchronous_commit}"),
        "SELECT pg_reload_conf()",
    ] {
        admin.batch_execute(sql).await.expect(sql);
    }
    // Short bounds, so a caller learns of the outage at once; room for
    // every caller, so no error comes from waiting for a connection.
    let pool = PoolConfig {
        max_open: Some(12),
        max_idle: Some(12),
        wait_timeout: Some(Duration::from_secs(1)),
        connect_timeout: Some(Duration::from_secs(1)),
        ..PoolConfig::default()
    };
    let (db, app) = ledger::open(&url, "restart", pool, []).await;
    let ledger = Ledger::new();
    let answers = Answers::default();
    let stop = Arc::new(AtomicBool::new(false));

    let callers = (0..AUTOCOMMIT_WRITERS)
        .map(Caller::Writer)
        .chain((0..TX_WRITERS).map(|w| Caller::TxWriter(AUTOCOMMIT_WRITERS + w)))
        .chain((0..READERS).map(|_| Caller::Reader))
        .map(|caller| {
            let (db, ledger, answers, stop) =
                (db.clone(), ledger.clone(), answers.clone(), stop.clone());
            tokio::spawn(async move { run(caller, db, ledger, answers, stop).await })
        })
        .collect::<Vec<_>>();

    tokio::time::sleep(BEFORE).await;
    let fault_started = Instant::now();
    let watch = tokio::spawn(back_up(url.clone()));
    let on = topology.clone();
    tokio::task::spawn_blocking(move || fault.apply(&on))
        .await
        .expect("the fault ran");
    let (last_down, ready) = tokio::time::timeout(GIVE_UP, watch)
        .await
        .expect("the server accepts connections again")
        .expect("the watch ran");
    tokio::time::sleep(AFTER).await;

    stop.store(true, Ordering::Relaxed);
    let mut f = Figures::new(id, scenario);
    for caller in callers {
        if caller.await.is_err() {
            f.error("panic");
        }
    }
    let answers = std::mem::take(&mut *answers.lock().unwrap());
    let served = match answers
        .iter()
        .find(|(at, code)| *at > last_down && code.is_none())
    {
        Some((at, _)) => *at,
        None => serves_again(&db).await,
    };
    f.recovery = Some(served.saturating_duration_since(ready));
    for (_, code) in &answers {
        f.operations += 1;
        match code {
            None => f.acknowledged += 1,
            Some(code) => f.error(code),
        }
    }
    let before = answers
        .iter()
        .filter(|(at, code)| *at < fault_started && code.is_some())
        .count();
    let after = answers
        .iter()
        .filter(|(at, code)| *at > served && code.is_some())
        .count();
    f.note(format!(
        "down (observer) {} ms",
        ready.duration_since(fault_started).as_millis()
    ));
    f.note(format!(
        "errors before the fault {before}, after recovery {after}"
    ));

    // The first observer's session ended with the restart.
    let admin = observer(&url).await;
    f.leaked = ledger::leaks(&db, &admin, &app).await;
    let check = ledger.check(&admin, &app).await;
    check.report(&mut f);
    f.publish();

    let unexpected: BTreeSet<_> = f
        .errors
        .keys()
        .filter(|code| !EXPECTED.contains(&code.as_str()))
        .collect();
    assert!(
        unexpected.is_empty(),
        "only {EXPECTED:?} may reach callers (a panic or a hang fails): {:?}",
        f.errors
    );
    match durability {
        Durability::Synchronous => check.assert_consistent(),
        // The server may lose acknowledged commits: only `lost` may be non-zero.
        Durability::Asynchronous => assert_eq!(
            (check.phantom, check.dup, check.stray),
            (0, 0, 0),
            "{check:?}"
        ),
    }
    assert_eq!(
        f.leaked, 0,
        "sessions busy or in a transaction, or connections lent, after quiesce"
    );
    db.close().await;
    tokio::task::spawn_blocking(move || drop(topology))
        .await
        .expect("tear the topology down");
}

/// One caller: operations until `stop`, each answer recorded.
async fn run(caller: Caller, db: Db, ledger: Ledger, answers: Answers, stop: Arc<AtomicBool>) {
    let mut seq = 0;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        let code = match tokio::time::timeout(HANG, once(caller, &db, &ledger, seq)).await {
            Ok(Ok(())) => None,
            Ok(Err(err)) => Some(err.code()),
            Err(_) => Some("hang"),
        };
        answers.lock().unwrap().push((Instant::now(), code));
        tokio::time::sleep(PAUSE).await;
    }
}

async fn once(caller: Caller, db: &Db, ledger: &Ledger, seq: i64) -> pgactor::Result<()> {
    match caller {
        Caller::Writer(worker) => ledger.append(db, worker, seq).await.map(drop),
        Caller::TxWriter(worker) => {
            let ops = [ledger.op(worker, 2 * seq), ledger.op(worker, 2 * seq + 1)];
            let result = db
                .with_transaction(TxOptions::default(), |tx| {
                    let records = ops.clone().map(|op| op.record);
                    async move {
                        for record in records {
                            tx.create(ledger::MODEL, record).await?;
                        }
                        Ok(())
                    }
                })
                .await;
            ledger.settle(&[&ops[0], &ops[1]], &result);
            result
        }
        Caller::Reader => db
            .list(ledger::MODEL, Query::new().limit(20))
            .await
            .map(drop),
    }
}

/// Watch the server from outside: answers the last moment a connection
/// failed, and the first moment one succeeded after that (the server
/// accepts connections again).
async fn back_up(url: String) -> (Instant, Instant) {
    let mut last_down = None;
    loop {
        match (accepts_connections(&url).await, last_down) {
            (true, Some(down)) => return (down, Instant::now()),
            (true, None) => {}
            (false, _) => last_down = Some(Instant::now()),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Whether a fresh connection to `url` answers `SELECT 1` within 500 ms.
async fn accepts_connections(url: &str) -> bool {
    let attempt = async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        let connection = tokio::spawn(connection);
        client.simple_query("SELECT 1").await?;
        drop(client);
        let _ = connection.await;
        Ok::<_, tokio_postgres::Error>(())
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(500), attempt).await,
        Ok(Ok(()))
    )
}

/// No caller succeeded since the server came back: probe until the adapter
/// serves, for at most [`GIVE_UP`]; answers when it did.
async fn serves_again(db: &Db) -> Instant {
    let give_up = Instant::now() + GIVE_UP;
    loop {
        if db.list(ledger::MODEL, Query::new().limit(1)).await.is_ok() {
            return Instant::now();
        }
        assert!(
            Instant::now() < give_up,
            "the adapter did not serve again within {GIVE_UP:?} of the server's return"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
