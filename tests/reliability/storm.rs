//! Scenario 4, a cancellation storm (catalogue E1, and E2's drops at every
//! await point): 10,000 operations whose callers give up at random points,
//! by a tiny `tokio::time::timeout` budget or by aborting their task.
//!
//! Proves that a caller dropped mid-checkout, mid-statement, mid-`BEGIN`,
//! between a transaction's statements or mid-`COMMIT` leaks nothing: no
//! connection stays checked out, no session stays active or idle in a
//! transaction, no transaction actor stays open; that every answer a caller
//! does get belongs to its own request (no crosstalk); that every
//! acknowledged commit is there and none counts twice (each transaction
//! adds 1 to a quantity); and that the next 1,000 operations all succeed.
//! The RNG seed is printed; `PGACTOR_STORM_SEED` replays one (the timing,
//! and so which operations get dropped, still varies from run to run).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pgactor::{Db, PoolConfig, Record, TxOptions};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use uuid::Uuid;

use crate::figures::{self, Figures};
use crate::ledger;
use crate::support::db::open_tagged;
use crate::support::observer::{no_session_left, observer};
use crate::support::topology::primary_url;

/// How long [`leaked`] gives the adapter (and the server) to calm down.
const SETTLE: Duration = Duration::from_secs(10);

/// What the adapter still holds busy, once it had up to [`SETTLE`] to calm
/// down: connections checked out in either pool, open transactions, and
/// sessions named `app` on the primary that are not idle (active, idle in
/// a transaction), seen directly, never through a proxy. 0: nothing leaked.
pub async fn leaked(db: &Db, app: &str) -> u64 {
    let admin = observer(&primary_url()).await;
    ledger::leaks_within(db, &admin, app, SETTLE).await
}

/// A tiny xorshift64*: reproducible from its printed seed, no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// One operation of the mix.
#[derive(Debug, Clone, Copy)]
enum Op {
    Read,
    /// An autocommit update.
    Update,
    /// BEGIN, lock the row, update it, COMMIT.
    Transaction,
}

/// How its caller gives up.
#[derive(Debug, Clone, Copy)]
enum How {
    /// Never: awaits the answer.
    Never,
    /// `tokio::time::timeout` drops the operation's future.
    Timeout,
    /// The operation's task is aborted.
    Abort,
}

/// When its caller gives up.
#[derive(Debug, Clone, Copy)]
struct GiveUp {
    how: How,
    /// The budget.
    after: Duration,
    /// The budget starts once BEGIN answered (transactions only), so the
    /// drop lands inside the transaction instead of in the checkout queue.
    from_begin: bool,
}

/// One operation, drawn from the RNG.
#[derive(Debug, Clone)]
struct Request {
    op: Op,
    give_up: GiveUp,
    row: Uuid,
    /// The note it writes, unique in its batch.
    nonce: String,
}

/// What became of one operation.
enum Fate {
    Answered(pgactor::Result<()>),
    /// The caller gave up; a transaction had reached this step (see [`STEPS`]).
    Dropped(usize),
}

/// A transaction's steps, where its caller may give up.
const STEPS: [&str; 4] = ["BEGIN", "lock", "update", "COMMIT"];

/// Run `req` on `db`, checking that the answer is about this request: the
/// row read or locked is `req.row`, the note written is `req.nonce`
/// (otherwise `crosstalk` counts it). A transaction adds 1 to the row's
/// quantity, so the sum of quantities counts the transactions that
/// committed; `progress` follows it through [`STEPS`].
async fn run(
    db: Db,
    req: Request,
    crosstalk: Arc<AtomicU64>,
    progress: Arc<Progress>,
) -> pgactor::Result<()> {
    let (row, nonce) = (req.row, req.nonce.as_str());
    let mine = |record: &Record, note: Option<&str>| {
        let id_ok = record.get::<Uuid>("id").ok() == Some(row);
        let note_ok = match note {
            Some(n) => record.get::<String>("note").ok().as_deref() == Some(n),
            None => true,
        };
        if !(id_ok && note_ok) {
            crosstalk.fetch_add(1, Ordering::Relaxed);
        }
    };
    let patch = || Record::new().with("note", nonce);
    match req.op {
        Op::Read => mine(&db.read("StockBalance", row).await?, None),
        Op::Update => mine(&db.update("StockBalance", row, patch()).await?, Some(nonce)),
        Op::Transaction => {
            let tx = db.begin(TxOptions::default()).await?;
            progress.step.store(1, Ordering::Relaxed);
            progress.begun.notify_one();
            let locked = tx.lock_for_update("StockBalance", row).await?;
            mine(&locked, None);
            progress.step.store(2, Ordering::Relaxed);
            let plus_one = patch().with("quantity", locked.get::<i64>("quantity")? + 1);
            mine(
                &tx.update("StockBalance", row, plus_one).await?,
                Some(nonce),
            );
            progress.step.store(3, Ordering::Relaxed);
            tx.commit().await?;
        }
    }
    Ok(())
}

/// How far a transaction got.
#[derive(Default)]
struct Progress {
    /// The index in [`STEPS`] of the step it runs.
    step: AtomicUsize,
    /// Notified once BEGIN answered.
    begun: Notify,
}

/// With `from_begin`, run `work` (no budget) until the transaction has
/// begun: `Some(answer)` if it finished first.
async fn until_begun<F: Future + Unpin>(
    from_begin: bool,
    progress: &Progress,
    work: &mut F,
) -> Option<F::Output> {
    if !from_begin {
        return None;
    }
    tokio::select! {
        answer = work => Some(answer),
        () = progress.begun.notified() => None,
    }
}

/// Run `req` as its caller would, giving up as `req.give_up` says.
async fn attempt(db: Db, req: Request, crosstalk: Arc<AtomicU64>) -> Fate {
    let progress = Arc::new(Progress::default());
    let GiveUp {
        how,
        after,
        from_begin,
    } = req.give_up;
    let work = run(db, req, crosstalk, progress.clone());
    let dropped = || Fate::Dropped(progress.step.load(Ordering::Relaxed));
    match how {
        How::Never => Fate::Answered(work.await),
        How::Timeout => {
            tokio::pin!(work);
            if let Some(answer) = until_begun(from_begin, &progress, &mut work).await {
                return Fate::Answered(answer);
            }
            match tokio::time::timeout(after, work).await {
                Ok(answer) => Fate::Answered(answer),
                Err(_) => dropped(),
            }
        }
        How::Abort => {
            let mut task = tokio::spawn(work);
            let joined = match until_begun(from_begin, &progress, &mut task).await {
                Some(joined) => joined,
                None => {
                    tokio::time::sleep(after).await;
                    task.abort();
                    task.await
                }
            };
            match joined {
                Ok(answer) => Fate::Answered(answer),
                Err(e) if e.is_cancelled() => dropped(),
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            }
        }
    }
}

/// Tallies of a batch of operations.
#[derive(Default)]
struct Tally {
    ok: u64,
    dropped: u64,
    errors: BTreeMap<&'static str, u64>,
    /// Transactions whose commit was acknowledged.
    committed: u64,
    /// Transactions whose caller got no answer, or an error: committed or not.
    unsure: u64,
    /// Transactions dropped, by the step they had reached.
    dropped_at: [u64; STEPS.len()],
}

impl Tally {
    fn count(&mut self, op: Op, fate: Fate) {
        let tx = matches!(op, Op::Transaction);
        match fate {
            Fate::Answered(Ok(())) => {
                self.ok += 1;
                self.committed += u64::from(tx);
            }
            Fate::Answered(Err(e)) => {
                *self.errors.entry(e.code()).or_default() += 1;
                self.unsure += u64::from(tx);
            }
            Fate::Dropped(step) => {
                self.dropped += 1;
                if tx {
                    self.unsure += 1;
                    self.dropped_at[step] += 1;
                }
            }
        }
    }
}

/// Draw one operation: 40 % reads, 30 % autocommit updates, 30 %
/// transactions; with `drops`, a third each given up by timeout, by
/// abort, or never, after 0–5 ms (for half the transactions, 0–5 ms
/// after BEGIN answered).
fn draw(rng: &mut Rng, rows: &[Uuid], n: u64, drops: bool) -> Request {
    let op = match rng.below(10) {
        0..=3 => Op::Read,
        4..=6 => Op::Update,
        _ => Op::Transaction,
    };
    let how = match rng.below(3) {
        _ if !drops => How::Never,
        0 => How::Timeout,
        1 => How::Abort,
        _ => How::Never,
    };
    let give_up = GiveUp {
        how,
        after: Duration::from_micros(rng.below(5_001)),
        from_begin: matches!(op, Op::Transaction) && rng.below(2) == 0,
    };
    let row = rows[rng.below(rows.len() as u64) as usize];
    Request {
        op,
        give_up,
        row,
        nonce: format!("n{n}"),
    }
}

/// Run `count` operations drawn from `rng`, at most `parallel` at a time;
/// `drops` says whether callers give up.
async fn batch(
    db: &Db,
    rows: &[Uuid],
    rng: &mut Rng,
    count: u64,
    parallel: usize,
    drops: bool,
    crosstalk: &Arc<AtomicU64>,
) -> Tally {
    let permits = Arc::new(Semaphore::new(parallel));
    let mut tasks = JoinSet::new();
    for n in 0..count {
        let req = draw(rng, rows, n, drops);
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .expect("open semaphore");
        let (db, crosstalk) = (db.clone(), crosstalk.clone());
        tasks.spawn(async move {
            let op = req.op;
            let fate = attempt(db, req, crosstalk).await;
            drop(permit);
            (op, fate)
        });
    }
    let mut tally = Tally::default();
    while let Some(done) = tasks.join_next().await {
        let (op, fate) = done.expect("no operation panics");
        tally.count(op, fate);
    }
    tally
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_storm_leaks_nothing() {
    let _serial = figures::serial().await;
    const OPS: u64 = 10_000;
    const AFTER: u64 = 1_000;
    let seed = std::env::var("PGACTOR_STORM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_2024_u64);
    println!("storm seed {seed:#x} (PGACTOR_STORM_SEED to replay)");
    let mut rng = Rng(seed | 1);
    let pool = PoolConfig {
        max_open: Some(4),
        max_idle: Some(4),
        ..PoolConfig::default()
    };
    let (db, app) = open_tagged("storm", pool).await;
    let mut rows = Vec::new();
    for i in 0..64 {
        let row = db
            .create("StockBalance", Record::new().with("sku", format!("S-{i}")))
            .await
            .expect("seed row");
        rows.push(row.get::<Uuid>("id").expect("id"));
    }
    let crosstalk = Arc::new(AtomicU64::new(0));

    let started = Instant::now();
    let storm = batch(&db, &rows, &mut rng, OPS, 64, true, &crosstalk).await;
    let wall = started.elapsed();
    let calm = Instant::now();
    let leaked = leaked(&db, &app).await;
    let settled = calm.elapsed();
    let after = batch(&db, &rows, &mut rng, AFTER, 16, false, &crosstalk).await;
    let admin = observer(&primary_url()).await;
    let sum = format!("SELECT sum(quantity)::bigint FROM \"{app}\".stock_balance");
    let increments = admin
        .query_one(&sum, &[])
        .await
        .expect("sum")
        .get::<_, i64>(0) as u64;
    let (committed, unsure) = (
        storm.committed + after.committed,
        storm.unsure + after.unsure,
    );

    let mut f = Figures::new(
        "4",
        "cancellation storm: 10,000 ops, callers dropped at random (64 at a time, 4+4 connections)",
    );
    f.operations = OPS + AFTER;
    f.acknowledged = storm.ok + after.ok;
    for (code, n) in storm.errors.iter().chain(&after.errors) {
        *f.errors.entry((*code).to_owned()).or_default() += n;
    }
    f.recovery = Some(settled);
    f.leaked = leaked;
    f.lost = committed.saturating_sub(increments);
    let crosstalk = crosstalk.load(Ordering::Relaxed);
    f.note(format!(
        "storm: answered {}, dropped {}, in {} ms",
        OPS - storm.dropped,
        storm.dropped,
        wall.as_millis()
    ));
    f.note(format!("next {AFTER}: {} ok", after.ok));
    f.note(format!(
        "transactions committed: {increments} ({committed} acknowledged, {unsure} dropped)"
    ));
    let at = STEPS.iter().zip(storm.dropped_at);
    let at: Vec<String> = at.map(|(step, n)| format!("{step} {n}")).collect();
    f.note(format!("transactions dropped at {}", at.join(", ")));
    f.note(format!(
        "connections discarded: {}",
        db.stats().write.closed.broken + db.stats().read.closed.broken
    ));
    f.note(format!("crosstalk {crosstalk}"));
    f.note(format!("seed {seed:#x}"));
    f.publish();

    assert_eq!(leaked, 0, "nothing stays checked out, open or busy");
    assert_eq!(f.lost, 0, "every acknowledged commit is in the sum");
    assert!(
        increments <= committed + unsure,
        "no transaction committed twice"
    );
    assert_eq!(crosstalk, 0, "every answer is its own request's");
    assert!(
        storm.errors.is_empty(),
        "no operation that was answered failed: {:?}",
        storm.errors
    );
    assert_eq!(
        after.ok, AFTER,
        "the next operations all succeed: {:?}",
        after.errors
    );
    db.close().await;
    no_session_left(&app).await;
}
