//! Scenarios 3a–3c, network faults between the adapter and the primary,
//! made by the fault proxy ([`crate::proxy`]) on the shared topology.
//!
//! - 3a (catalogue D1): a stall longer than the client-side query timeout.
//!   Statements in flight answer `Timeout` (reads) or `OutcomeUnknown`
//!   (autocommit writes: sent, no answer) once the timeout and the bounded
//!   cancel attempt (which stalls too) are over: the caller is freed. Their
//!   connections are discarded; after the stall the next operations
//!   succeed and nothing is left busy on the server.
//! - 3b (RST, catalogue D4's reset half): every connection reset while a
//!   read is in flight and writes run on the server, with idle connections
//!   in the pool. The read answers `Unavailable`, the writes
//!   `OutcomeUnknown` (as the error table of docs/getting-started.md says),
//!   nothing hangs, and the pool replaces the dead connections.
//! - 3c (catalogue D5): new connections refused, then blackholed. Every
//!   checkout that needs one answers `Unavailable` within the pool's
//!   connect and wait timeouts, writes included (nothing was sent).

use std::time::Duration;

use pgactor::{Db, ErrorKind, PoolConfig, Record};
use tokio::task::JoinSet;
use tokio::time::Instant;
use uuid::Uuid;

use crate::figures::{self, Figures};
use crate::proxy::{Mode, Proxy};
use crate::storm::leaked;
use crate::support::blocking::until_lock_waiters;
use crate::support::observer::{no_session_left, observer};
use crate::support::topology::primary_url;

/// The client-side query timeout of the stall scenario.
const QUERY_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the stall lasts: well past the timeout and the cancel's grace.
const STALL: Duration = Duration::from_secs(4);
/// Give-up bound of recovery loops (fails the test, never a timing claim).
const PATIENCE: Duration = Duration::from_secs(30);

/// `max_open` connections per pool, all kept when idle.
fn pool(max_open: usize, wait: Duration, connect: Duration) -> PoolConfig {
    PoolConfig {
        max_open: Some(max_open),
        max_idle: Some(max_open),
        wait_timeout: Some(wait),
        connect_timeout: Some(connect),
        ..PoolConfig::default()
    }
}

/// Create `n` rows named `<prefix>-<i>`; answer their ids.
async fn seed(db: &Db, prefix: &str, n: usize) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for i in 0..n {
        let row = db
            .create(
                "StockBalance",
                Record::new().with("sku", format!("{prefix}-{i}")),
            )
            .await
            .expect("seed row");
        ids.push(row.get("id").expect("id"));
    }
    ids
}

/// Make both pools hold `ids.len()` idle connections: rounds of
/// concurrent reads and updates, slowed by the proxy so that each needs a
/// connection of its own.
async fn warm(proxy: &Proxy, db: &Db, ids: &[Uuid]) {
    let n = ids.len();
    proxy.set(Mode::Delay(Duration::from_millis(20)));
    for _ in 0..10 {
        let stats = db.stats();
        if (stats.write.idle, stats.read.idle) == (n, n) {
            break;
        }
        let mut ops = JoinSet::new();
        reads(&mut ops, db, ids, n);
        writes(&mut ops, db, ids, n, Write::Update("warm"));
        for (kind, answer, _) in ops.join_all().await {
            assert!(answer.is_ok(), "warm {kind:?}: {answer:?}");
        }
    }
    proxy.set(Mode::Pass);
    let stats = db.stats();
    assert_eq!(
        (stats.write.idle, stats.read.idle),
        (n, n),
        "warm pools: {stats:?}"
    );
}

/// Which operation a caller ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
}

/// One answered operation: what it was, its answer, how long it took.
type Answer = (Kind, pgactor::Result<()>, Duration);

/// Start `n` reads of `ids` (round robin) in `ops`.
fn reads(ops: &mut JoinSet<Answer>, db: &Db, ids: &[Uuid], n: usize) {
    for i in 0..n {
        let (db, id) = (db.clone(), ids[i % ids.len()]);
        ops.spawn(async move {
            let t = Instant::now();
            let r = db.read("StockBalance", id).await.map(drop);
            (Kind::Read, r, t.elapsed())
        });
    }
}

/// A write [`writes`] starts.
#[derive(Debug, Clone, Copy)]
enum Write {
    /// Create rows whose sku is `<tag>-<i>`.
    Create(&'static str),
    /// Set the note of `ids` (round robin) to this.
    Update(&'static str),
}

/// Start `n` writes in `ops`.
fn writes(ops: &mut JoinSet<Answer>, db: &Db, ids: &[Uuid], n: usize, write: Write) {
    for i in 0..n {
        let (db, id) = (db.clone(), ids[i % ids.len()]);
        ops.spawn(async move {
            let t = Instant::now();
            let w = match write {
                Write::Create(tag) => {
                    let row = Record::new().with("sku", format!("{tag}-{i}"));
                    db.create("StockBalance", row).await
                }
                Write::Update(note) => {
                    let patch = Record::new().with("note", note);
                    db.update("StockBalance", id, patch).await
                }
            };
            (Kind::Write, w.map(drop), t.elapsed())
        });
    }
}

/// Run `n` reads of `ids` and `n` creates named `<tag>-<i>` at once;
/// answer every outcome.
async fn reads_and_creates(db: &Db, ids: &[Uuid], n: usize, tag: &'static str) -> Vec<Answer> {
    let mut ops = JoinSet::new();
    reads(&mut ops, db, ids, n);
    writes(&mut ops, db, ids, n, Write::Create(tag));
    ops.join_all().await
}

/// Count `answers` into `f`, check each failed with the kind `expect`
/// gives its operation, and answer the longest time taken.
fn tally(f: &mut Figures, answers: &[Answer], expect: impl Fn(Kind) -> ErrorKind) -> Duration {
    for (kind, answer, _) in answers {
        f.outcome(answer);
        match answer {
            Err(e) => assert_eq!(e.kind(), expect(*kind), "{kind:?}: {e}"),
            Ok(()) => panic!("a {kind:?} succeeded through the fault"),
        }
    }
    answers.iter().map(|a| a.2).max().unwrap_or_default()
}

/// After the fault: time until a read succeeds again (bounded), then
/// `n` reads and `n` creates named `after-<i>` that must all succeed;
/// `lost` counts acknowledged creates missing on the primary.
async fn recover(f: &mut Figures, db: &Db, app: &str, ids: &[Uuid], n: usize) {
    let healed = Instant::now();
    while db.read("StockBalance", ids[0]).await.is_err() {
        assert!(
            healed.elapsed() < PATIENCE,
            "no read succeeds after the fault"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f.recovery = Some(healed.elapsed());
    let answers = reads_and_creates(db, ids, n, "after").await;
    for (kind, answer, _) in &answers {
        f.outcome(answer);
        assert!(answer.is_ok(), "{kind:?} after the fault: {answer:?}");
    }
    f.lost = n as u64 - count_rows(app, "after-%").await;
}

/// Rows whose sku is `LIKE pattern` in schema `app`, seen on the primary.
async fn count_rows(app: &str, pattern: &str) -> u64 {
    let sql = format!("SELECT count(*) FROM \"{app}\".stock_balance WHERE sku LIKE $1");
    let admin = observer(&primary_url()).await;
    let n: i64 = admin
        .query_one(&sql, &[&pattern])
        .await
        .expect("count")
        .get(0);
    n as u64
}

/// Publish, check what nothing may leave behind, and close.
async fn finish(f: Figures, db: Db, app: &str) {
    f.publish();
    assert_eq!(f.leaked, 0, "nothing stays checked out, open or busy");
    assert_eq!(f.lost, 0, "no acknowledged write is missing");
    db.close().await;
    no_session_left(app).await;
}

#[tokio::test]
async fn a_stall_past_the_query_timeout_frees_the_caller() {
    let _serial = figures::serial().await;
    let proxy = Proxy::start(&primary_url()).await;
    let (db, app) = proxy
        .open_tagged(
            "stall",
            pool(4, Duration::from_secs(5), Duration::from_secs(2)),
        )
        .await;
    let ids = seed(&db, "seed", 4).await;
    warm(&proxy, &db, &ids).await;
    let db = db.with_query_timeout(QUERY_TIMEOUT);
    let mut f = Figures::new(
        "3a",
        "stall 4 s (proxy paused) vs 1 s query timeout, 4 reads + 4 writes in flight",
    );

    proxy.set(Mode::Pause);
    let paused = Instant::now();
    let answers = reads_and_creates(&db, &ids, 4, "stalled").await;
    let slowest = tally(&mut f, &answers, |kind| match kind {
        Kind::Read => ErrorKind::Timeout,
        Kind::Write => ErrorKind::OutcomeUnknown,
    });
    let freed = slowest.saturating_sub(QUERY_TIMEOUT);
    f.note(format!(
        "caller freed ≤ {} ms after the timeout",
        freed.as_millis()
    ));
    tokio::time::sleep_until(paused + STALL).await;
    proxy.set(Mode::Pass);

    recover(&mut f, &db, &app, &ids, 4).await;
    let closed = (db.stats().write.closed, db.stats().read.closed);
    f.note(format!(
        "connections discarded: write {}, read {}",
        closed.0.broken, closed.1.broken
    ));
    f.leaked = leaked(&db, &app).await;
    // The proxy delivers the stalled bytes once it resumes: the server then
    // runs writes whose callers were told OutcomeUnknown.
    let applied = count_rows(&app, "stalled-%").await;
    f.note(format!(
        "unknown writes applied after the stall: {applied} of 4"
    ));
    finish(f, db, &app).await;
}

#[tokio::test]
async fn a_reset_fails_what_is_in_flight_and_the_pool_recovers() {
    let _serial = figures::serial().await;
    let proxy = Proxy::start(&primary_url()).await;
    let (db, app) = proxy
        .open_tagged(
            "reset",
            pool(4, Duration::from_secs(5), Duration::from_secs(2)),
        )
        .await;
    let ids = seed(&db, "seed", 4).await;
    warm(&proxy, &db, &ids).await;
    let mut f = Figures::new(
        "3b",
        "RST of every connection: 2 reads in flight, 2 updates blocked on the server, idle ones",
    );

    // Two updates run on the server, waiting for row locks an observer holds.
    let locker = observer(&primary_url()).await;
    locker.batch_execute("BEGIN").await.expect("begin");
    let lock = format!("SELECT 1 FROM \"{app}\".stock_balance WHERE id = ANY($1) FOR UPDATE");
    locker
        .execute(&lock, &[&ids[..2].to_vec()])
        .await
        .expect("lock");
    let mut ops = JoinSet::new();
    writes(&mut ops, &db, &ids[..2], 2, Write::Update("reset"));
    until_lock_waiters(&locker, &app, 2).await;
    // Two reads in flight in the proxy, never answered.
    proxy.set(Mode::Pause);
    reads(&mut ops, &db, &ids, 2);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let reset = proxy.live();
    proxy.set(Mode::ResetAll);
    let cut = Instant::now();
    let answers = ops.join_all().await;
    let answered = cut.elapsed();
    tally(&mut f, &answers, |kind| match kind {
        Kind::Read => ErrorKind::Unavailable,
        Kind::Write => ErrorKind::OutcomeUnknown,
    });
    f.note(format!(
        "connections reset: {reset}; all answered {answered:.1?} after the reset"
    ));
    proxy.set(Mode::Pass);
    locker
        .batch_execute("ROLLBACK")
        .await
        .expect("release the locks");

    recover(&mut f, &db, &app, &ids, 4).await;
    // The blocked updates ran on when the locks went: OutcomeUnknown was right.
    f.leaked = leaked(&db, &app).await;
    let admin = observer(&primary_url()).await;
    let sql = format!("SELECT count(*) FROM \"{app}\".stock_balance WHERE note = 'reset'");
    let applied: i64 = admin.query_one(&sql, &[]).await.expect("count").get(0);
    f.note(format!("unknown writes applied: {applied} of 2"));
    finish(f, db, &app).await;
}

#[tokio::test]
async fn refused_or_blackholed_connects_are_bounded_by_the_pool_timeouts() {
    let _serial = figures::serial().await;
    let proxy = Proxy::start(&primary_url()).await;
    let (wait, connect) = (Duration::from_secs(1), Duration::from_secs(1));
    let (db, app) = proxy.open_tagged("refuse", pool(2, wait, connect)).await;
    let ids = seed(&db, "seed", 2).await;
    let mut f = Figures::new("3c", "new connections refused, then blackholed: 4 reads + 4 writes, 2 connections per pool, wait 1 s, connect 1 s");

    for mode in [Mode::RefuseNew, Mode::BlackholeNew] {
        // Every checkout needs a new connection: the idle ones are reset.
        proxy.set(Mode::ResetAll);
        tokio::time::sleep(Duration::from_millis(200)).await;
        proxy.set(mode);
        let accepted = proxy.accepted();
        let answers = reads_and_creates(&db, &ids, 4, "refused").await;
        let slowest = tally(&mut f, &answers, |_| ErrorKind::Unavailable);
        f.note(format!(
            "{mode:?}: answered ≤ {} ms, {} connects tried",
            slowest.as_millis(),
            proxy.accepted() - accepted
        ));
    }
    let pending = proxy.blackholed_peak();
    f.note(format!("blackholed connects pending at once ≤ {pending}"));
    assert!(
        pending <= 4,
        "at most max_open connects pending per pool: {pending}"
    );
    proxy.set(Mode::Pass);
    recover(&mut f, &db, &app, &ids, 4).await;
    f.leaked = leaked(&db, &app).await;
    assert_eq!(
        count_rows(&app, "refused-%").await,
        0,
        "a write refused as Unavailable was not applied"
    );
    finish(f, db, &app).await;
}
