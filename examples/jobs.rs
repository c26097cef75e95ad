//! A job queue worked by ractor actors, safe when a worker dies mid-job.
//!
//! `Job` rows wait in a table. Eight `Worker` actors, children of a
//! `Foreman`, each loop, by messages only: begin a transaction
//! (`DbMsg::Begin`), take the next ready job no other transaction holds
//! (`TxMsg::lock_next_as`: `SELECT … FOR UPDATE SKIP LOCKED`, oldest
//! `run_after` first), log the attempt outside the transaction, do the work
//! (a sleep here), mark the job done inside the transaction, commit.
//!
//! The job row stays locked by the worker's transaction while it works, so
//! no other worker takes it. A worker that dies mid-job drops its `Tx`, the
//! transaction rolls back, and the job is back in the queue for another
//! worker: at-least-once. Marking it done commits with the transaction, so
//! a job is done exactly once. To show it, the foreman kills one worker
//! while it holds a job, and one job's work panics its worker on the first
//! attempt; the foreman starts a replacement for each. The attempts log
//! (its own autocommit writes, kept when a transaction rolls back) shows
//! who held each retried job before it was done; a job that has crashed
//! [`MAX_ATTEMPTS`] workers is marked failed instead of run again.
//!
//! It connects like the quickstart: `DATABASE_URL` (in a fresh schema,
//! dropped at the end) or a throwaway cluster (`examples/support/cluster.rs`).

#[path = "support/cluster.rs"]
mod cluster;

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use cluster::{BoxError, Target};
use pgactor::{Call, Db, DbMsg, Filter, Query, Record, Registry, TxMsg, TxOptions};
use ractor::{
    call, Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, DerivedActorRef,
    SupervisionEvent,
};

const WORKERS: u32 = 8;
/// Jobs ready at once.
const JOBS: i64 = 200;
/// Jobs scheduled for later (`run_after` one second ahead).
const LATER: i64 = 10;
/// The foreman kills the worker that takes the queue's this-many-th job.
const KILL_AT: u64 = 25;
/// The job whose work panics its worker on the first attempt.
const FLAKY: i64 = 40;
/// Attempts after which a job is marked failed instead of run again.
const MAX_ATTEMPTS: u64 = 3;
/// How long a worker waits before looking again when nothing is ready.
const POLL: Duration = Duration::from_millis(50);
/// How long the run may take before the example gives up.
const DEADLINE: Duration = Duration::from_secs(60);

/// A job in the queue: `queued` until a worker commits it `done` (or
/// `failed`), with the worker's name in `done_by`.
#[derive(Debug, Default, pgactor::Entity)]
#[pgactor(index(state, run_after))]
struct Job {
    id: i64,
    kind: String,
    payload: serde_json::Value,
    #[pgactor(default = "queued")]
    state: String,
    /// Not taken before this.
    run_after: DateTime<Utc>,
    done_by: Option<String>,
}

/// One attempt at a job, written outside the job's transaction so it stays
/// when the transaction rolls back. Its key is the adapter's UUIDv7 `id`:
/// in id order, attempts are in the order they were made.
#[derive(Debug, pgactor::Entity)]
#[pgactor(index(job_id))]
struct Attempt {
    job_id: i64,
    worker: String,
}

fn registry() -> pgactor::Result<Registry> {
    Registry::new()
        .with_entity::<Job>()?
        .with_entity::<Attempt>()
}

/// The queue's next ready job: queued, due, oldest `run_after` first.
fn next_job() -> Query {
    Query::new()
        .filter(Job::STATE.eq("queued").and(Job::RUN_AFTER.le(Utc::now())))
        .sort_asc(Job::RUN_AFTER)
        .sort_asc("id")
        .limit(1)
}

#[derive(Debug)]
enum WorkerMsg {
    /// Take the next job, or look again after [`POLL`].
    Next,
}

#[derive(Debug)]
enum ForemanMsg {
    /// A worker holds this job (its transaction is open); it goes on once
    /// answered. A call, not a cast: the foreman knows of the job before
    /// it hears of the worker's death.
    Took(ActorRef<WorkerMsg>, i64, ractor::RpcReplyPort<()>),
    /// A worker committed the job it held.
    Finished(ActorId),
    /// How many jobs the workers have committed.
    Progress(ractor::RpcReplyPort<u64>),
    /// Stop replacing workers; answer what happened.
    Finish(ractor::RpcReplyPort<Outcome>),
}

// An application built with ractor's `cluster` feature (and pgactor's, see
// README.md "Feature flags") implements `ractor::Message` for its own
// message types: ractor has no blanket impl then.
#[cfg(feature = "cluster")]
impl ractor::Message for WorkerMsg {}
#[cfg(feature = "cluster")]
impl ractor::Message for ForemanMsg {}

/// A worker that died while it held a job.
#[derive(Debug)]
struct Crash {
    worker: String,
    job: i64,
}

/// What the foreman saw.
#[derive(Debug, Default)]
struct Outcome {
    crashes: Vec<Crash>,
    /// From the kill to another worker holding the killed worker's job.
    kill_to_retake: Option<Duration>,
}

struct Worker;

/// The adapter's supervisor and the foreman to report to.
type WorkerState = (ActorRef<DbMsg>, ActorRef<ForemanMsg>);

#[cfg_attr(feature = "async-trait", ractor::async_trait)]
impl Actor for Worker {
    type Msg = WorkerMsg;
    type State = WorkerState;
    type Arguments = WorkerState;

    async fn pre_start(
        &self,
        myself: ActorRef<WorkerMsg>,
        args: WorkerState,
    ) -> Result<WorkerState, ActorProcessingErr> {
        myself.send_message(WorkerMsg::Next)?;
        Ok(args)
    }

    async fn handle(
        &self,
        myself: ActorRef<WorkerMsg>,
        WorkerMsg::Next: WorkerMsg,
        state: &mut WorkerState,
    ) -> Result<(), ActorProcessingErr> {
        if work_one(&myself, state).await? {
            myself.send_message(WorkerMsg::Next)?;
        } else {
            myself.send_after(POLL, || WorkerMsg::Next);
        }
        Ok(())
    }
}

/// One turn of a worker: take the next ready job, work it, commit.
/// `false`: nothing was ready.
async fn work_one(
    myself: &ActorRef<WorkerMsg>,
    (db, foreman): &WorkerState,
) -> Result<bool, ActorProcessingErr> {
    let name = myself.get_name().unwrap_or_default();
    // Kept until the commit. A worker killed or panicking here drops it:
    // the transaction rolls back and its job returns to the queue.
    let tx = call!(db, DbMsg::Begin, TxOptions::default(), Call::here())??;
    let actor = tx.actor();
    let Some(job) = call!(actor, TxMsg::lock_next_as::<Job>, next_job())??.pop() else {
        call!(actor, TxMsg::Commit)??;
        return Ok(false);
    };
    let attempt = log_attempt(db, &actor, job.id, &name).await?;
    call!(foreman, ForemanMsg::Took, myself.clone(), job.id)?;
    let state = if attempt > MAX_ATTEMPTS {
        "failed"
    } else {
        work(&job, attempt).await;
        "done"
    };
    // The job's outcome commits with the transaction that held it: done
    // exactly once. Work with effects elsewhere (an email sent, a call to
    // another service) may happen again after a crash: make it idempotent.
    let done = Record::new().with("state", state).with("done_by", name);
    let this = Filter::eq("id", job.id);
    call!(actor, TxMsg::update_where_as::<Job>, this, done)??;
    call!(actor, TxMsg::Commit)??;
    foreman.cast(ForemanMsg::Finished(myself.get_id()))?;
    Ok(true)
}

/// Record an attempt at `job` by `worker`, outside the job's transaction
/// (an autocommit write of its own); answer how many attempts it has had.
async fn log_attempt(
    db: &ActorRef<DbMsg>,
    tx: &DerivedActorRef<TxMsg>,
    job: i64,
    worker: &str,
) -> Result<u64, ActorProcessingErr> {
    let attempt = Attempt {
        job_id: job,
        worker: worker.into(),
    };
    call!(db, DbMsg::create_as, attempt, Call::here())??;
    // Counted in the transaction, on the primary: it sees the attempt just
    // committed, where a read outside it may go to a replica not there yet.
    let so_far = Query::new().filter(Attempt::JOB_ID.eq(job)).limit(1);
    let counted = call!(tx, TxMsg::list_as::<Attempt>, so_far)??.total;
    Ok(counted.ok_or("the list was counted")?)
}

/// The work itself: a sleep of the payload's `ms`. The flaky job panics
/// on its first attempt, as a bug in a handler would.
async fn work(job: &Job, attempt: u64) {
    if job.kind == "flaky" && attempt == 1 {
        panic!("job {} crashed its worker", job.id);
    }
    let ms = job.payload["ms"].as_u64().unwrap_or(10);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Starts the workers, kills one mid-job, and replaces every worker that
/// dies.
struct Foreman;

struct Crew {
    db: ActorRef<DbMsg>,
    /// Workers started so far: the next one is `worker-{started + 1}`.
    started: u32,
    /// Jobs taken, retries included.
    taken: u64,
    /// Jobs committed.
    finished: u64,
    /// The job each live worker holds, with the worker's name.
    holding: HashMap<ActorId, (String, i64)>,
    outcome: Outcome,
    /// The job of the worker killed, and when.
    killed: Option<(i64, Instant)>,
    /// Set once the queue is drained: workers that stop are not replaced.
    finishing: bool,
}

impl Crew {
    async fn start_worker(
        &mut self,
        foreman: &ActorRef<ForemanMsg>,
    ) -> Result<(), ActorProcessingErr> {
        self.started += 1;
        let name = format!("worker-{}", self.started);
        let args = (self.db.clone(), foreman.clone());
        Actor::spawn_linked(Some(name), Worker, args, foreman.get_cell()).await?;
        Ok(())
    }

    /// A worker is gone: note the job it held, start another worker.
    async fn lost(
        &mut self,
        foreman: &ActorRef<ForemanMsg>,
        cell: &ActorCell,
        how: String,
    ) -> Result<(), ActorProcessingErr> {
        if let Some((worker, job)) = self.holding.remove(&cell.get_id()) {
            println!("  {worker} died holding job {job} ({how})");
            self.outcome.crashes.push(Crash { worker, job });
        }
        if !self.finishing {
            self.start_worker(foreman).await?;
        }
        Ok(())
    }
}

#[cfg_attr(feature = "async-trait", ractor::async_trait)]
impl Actor for Foreman {
    type Msg = ForemanMsg;
    type State = Crew;
    type Arguments = ActorRef<DbMsg>;

    async fn pre_start(
        &self,
        myself: ActorRef<ForemanMsg>,
        db: ActorRef<DbMsg>,
    ) -> Result<Crew, ActorProcessingErr> {
        let mut crew = Crew {
            db,
            started: 0,
            taken: 0,
            finished: 0,
            holding: HashMap::new(),
            outcome: Outcome::default(),
            killed: None,
            finishing: false,
        };
        for _ in 0..WORKERS {
            crew.start_worker(&myself).await?;
        }
        Ok(crew)
    }

    async fn handle(
        &self,
        _: ActorRef<ForemanMsg>,
        msg: ForemanMsg,
        crew: &mut Crew,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ForemanMsg::Took(worker, job, reply) => {
                let name = worker.get_name().unwrap_or_default();
                crew.holding.insert(worker.get_id(), (name, job));
                crew.taken += 1;
                if crew.taken == KILL_AT {
                    // Mid-job: the worker waits for this answer, its
                    // transaction open and the job locked.
                    worker.kill();
                    crew.killed = Some((job, Instant::now()));
                } else if let Some((_, at)) = crew.killed.filter(|(held, _)| *held == job) {
                    crew.outcome.kill_to_retake = Some(at.elapsed());
                    crew.killed = None;
                }
                drop(reply.send(()));
            }
            ForemanMsg::Finished(worker) => {
                crew.holding.remove(&worker);
                crew.finished += 1;
            }
            ForemanMsg::Progress(reply) => drop(reply.send(crew.finished)),
            ForemanMsg::Finish(reply) => {
                crew.finishing = true;
                drop(reply.send(std::mem::take(&mut crew.outcome)));
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<ForemanMsg>,
        event: SupervisionEvent,
        crew: &mut Crew,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(cell, err) => {
                crew.lost(&myself, &cell, format!("failed: {err}")).await?
            }
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                let how = reason.unwrap_or_else(|| "stopped".into());
                crew.lost(&myself, &cell, how).await?
            }
            _ => {}
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    cluster::main("jobs", registry, run).await
}

async fn run(db: Db, _: Target) -> Result<(), BoxError> {
    let jobs = db.typed::<Job>();
    let now = Utc::now();
    let kinds = ["thumbnail", "email", "invoice"];
    for n in 1..=JOBS + LATER {
        let (kind, run_after) = match n {
            FLAKY => ("flaky", now),
            n if n > JOBS => ("digest", now + Duration::from_secs(1)),
            n => (kinds[n as usize % kinds.len()], now),
        };
        let job = Job {
            kind: kind.into(),
            payload: serde_json::json!({ "ms": 10 + n % 30 }),
            state: "queued".into(),
            run_after,
            ..Job::default()
        };
        jobs.create(&job).await?;
    }
    let total = (JOBS + LATER) as u64;
    println!(
        "{total} jobs queued ({LATER} of them due in 1 s); {WORKERS} workers start; \
         the {KILL_AT}th job taken has its worker killed, job {FLAKY} panics its first worker \
         (its panic message below is on purpose)"
    );

    let started = Instant::now();
    let (foreman, foreman_done) = Actor::spawn(None, Foreman, db.actor()).await?;
    while call!(foreman, ForemanMsg::Progress)? < total {
        if started.elapsed() > DEADLINE {
            foreman.kill();
            return Err(format!("the queue was not drained within {DEADLINE:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    let outcome = call!(foreman, ForemanMsg::Finish)?;
    // Each worker finishes the turn it is in, then stops.
    foreman.stop_children_and_wait(None, Some(DEADLINE)).await;
    foreman.stop(None);
    foreman_done.await?;

    report(&db, total, elapsed, &outcome).await
}

/// Read the outcome back from the database and print it; an error if any
/// job is left unfinished or a transaction is still open.
async fn report(db: &Db, total: u64, elapsed: Duration, outcome: &Outcome) -> Result<(), BoxError> {
    // Read back in a transaction: on the primary, even with a replica.
    let tx = db
        .begin(TxOptions {
            read_only: true,
            ..TxOptions::default()
        })
        .await?;
    let all = Query::new().sort_asc("id").limit(total);
    let jobs = tx.typed::<Job>().list(all).await?.rows;
    let every_attempt = Query::new().limit(10 * total);
    let attempts = tx.typed::<Attempt>().list(every_attempt).await?.rows;
    tx.commit().await?;

    let mut per_worker: BTreeMap<(usize, String), u64> = BTreeMap::new();
    for job in &jobs {
        let Some(worker) = job.done_by.clone().filter(|_| job.state != "queued") else {
            return Err(format!("job {} is still {}", job.id, job.state).into());
        };
        // worker-2 before worker-10.
        *per_worker.entry((worker.len(), worker)).or_default() += 1;
    }
    let done = jobs.iter().filter(|j| j.state == "done").count();
    println!(
        "all {total} jobs finished in {:.1} s: {done} done, {} failed, {} attempts",
        elapsed.as_secs_f64(),
        jobs.len() - done,
        attempts.len()
    );
    let tally: Vec<String> = per_worker
        .iter()
        .map(|((_, worker), n)| format!("{worker} {n}"))
        .collect();
    println!("  per worker: {}", tally.join(", "));

    let mut tries: HashMap<i64, usize> = HashMap::new();
    for attempt in &attempts {
        *tries.entry(attempt.job_id).or_default() += 1;
    }
    for crash in &outcome.crashes {
        let job = jobs.iter().find(|j| j.id == crash.job);
        let done_by = job.and_then(|j| j.done_by.as_deref()).unwrap_or("nobody");
        let held = tries.get(&crash.job).copied().unwrap_or(0);
        println!(
            "  retried after a crash: job {} (held by {}) done by {done_by} on attempt {held}",
            crash.job, crash.worker
        );
    }

    if let Some(after) = outcome.kill_to_retake {
        let ms = after.as_secs_f64() * 1e3;
        println!("  the killed worker's job was held by another worker {ms:.1} ms after the kill");
    }

    // The workers' transactions end as the workers stop: none stays open.
    let settle = Instant::now();
    while db.stats().open_transactions > 0 && settle.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let open = db.stats().open_transactions;
    println!("  open transactions now: {open}");
    if open > 0 {
        return Err(format!("{open} transactions are still open").into());
    }
    Ok(())
}
