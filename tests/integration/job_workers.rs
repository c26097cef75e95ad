//! The work-queue pattern under fire: 16 worker actors drain 400 jobs by
//! messages (`DbMsg::Begin`, `TxMsg::lock_next_as`, commit), while a boss
//! kills some of them (ractor `kill()`) and makes others panic inside
//! their handler, each while it holds a job in an open transaction, and
//! starts a replacement for each. Every job must be completed exactly once
//! (one committed completion row, `done_by` set once), none lost, the jobs
//! of the dead done later by others, and no transaction left open.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use pgactor::{
    Call, Db, DbMsg, Entity, Filter, PoolConfig, Query, Record, SessionConfig, TxMsg, TxOptions,
};
use ractor::{call, Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use crate::support::db::{tagged_options, tagged_session, unique_app_name, unique_schema};
use crate::support::observer::{no_session_left, observer};
use crate::support::topology::primary_url;
use crate::support::wait::{eventually, ready};

const WORKERS: usize = 16;
const JOBS: i64 = 400;
/// Workers killed or made to panic while they hold a job.
const VICTIMS: usize = 12;
/// One victim every this many jobs taken (retries counted).
const STRIDE: u64 = 30;
/// How long the workers may take to drain the queue.
const DRAIN: Duration = Duration::from_secs(120);
/// The whole test's bound.
const BOUND: Duration = Duration::from_secs(240);

/// A job: queued while `done_by` is null.
#[derive(Debug, Default, pgactor::Entity)]
struct Job {
    id: i64,
    done_by: Option<String>,
}

/// A job's completion, written in the transaction that holds the job. No
/// unique constraint on `job_id`: a job completed twice would show as two
/// rows, not as a refused second write.
#[derive(Debug, Default, pgactor::Entity)]
struct Completion {
    job_id: i64,
    worker: String,
}

/// The queue's next job.
fn next() -> Query {
    Query::new()
        .filter(Filter::is_null("done_by"))
        .sort_asc("id")
        .limit(1)
}

/// Where a worker stands in a job, its transaction open either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Stage {
    /// The job is locked (`lock_next`), nothing written yet.
    Taken,
    /// The completion row is written and `done_by` set, not committed.
    Completed,
}

/// How a victim dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Death {
    /// `ActorRef::kill()`, while it waits for the boss's answer.
    Killed,
    /// A panic in its handler, on the boss's answer.
    Panicked,
}

/// The boss's answer at a checkpoint.
#[derive(Debug)]
enum Verdict {
    Go,
    Panic,
}

enum WorkerMsg {
    Next,
}

enum BossMsg {
    /// A worker at a checkpoint of a job: it goes on (or dies) on the answer.
    Holding(ActorRef<WorkerMsg>, Stage, i64, RpcReplyPort<Verdict>),
    /// Stop replacing workers; answer what happened.
    Finish(RpcReplyPort<Report>),
}

#[cfg(feature = "cluster")]
impl ractor::Message for WorkerMsg {}
#[cfg(feature = "cluster")]
impl ractor::Message for BossMsg {}

/// The adapter's supervisor, the boss, and the worker's name.
type WorkerState = (ActorRef<DbMsg>, ActorRef<BossMsg>, String);

struct Worker;

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
        if turn(&myself, state).await? {
            myself.send_message(WorkerMsg::Next)?;
        } else {
            myself.send_after(Duration::from_millis(20), || WorkerMsg::Next);
        }
        Ok(())
    }
}

/// One job: take it, complete it, commit, with a checkpoint at the boss
/// after each step. `false`: the queue had nothing free.
async fn turn(
    myself: &ActorRef<WorkerMsg>,
    (db, boss, name): &WorkerState,
) -> Result<bool, ActorProcessingErr> {
    // Dropped when the worker dies: the transaction rolls back.
    let tx = call!(db, DbMsg::Begin, TxOptions::default(), Call::here())??;
    let actor = tx.actor();
    let Some(job) = call!(actor, TxMsg::lock_next_as::<Job>, next())??.pop() else {
        call!(actor, TxMsg::Commit)??;
        return Ok(false);
    };
    checkpoint(myself, boss, Stage::Taken, job.id).await?;
    let completion = Completion {
        job_id: job.id,
        worker: name.clone(),
    };
    call!(actor, TxMsg::create_as, completion)??;
    let this = Filter::eq("id", job.id).and(Filter::is_null("done_by"));
    let done = Record::new().with("done_by", name.as_str());
    let marked = call!(actor, TxMsg::update_where_as::<Job>, this, done)??;
    if marked != 1 {
        return Err(format!("{name}: job {} was done already", job.id).into());
    }
    checkpoint(myself, boss, Stage::Completed, job.id).await?;
    call!(actor, TxMsg::Commit)??;
    Ok(true)
}

/// Ask the boss whether to go on; panic when told to.
async fn checkpoint(
    myself: &ActorRef<WorkerMsg>,
    boss: &ActorRef<BossMsg>,
    stage: Stage,
    job: i64,
) -> Result<(), ActorProcessingErr> {
    match call!(boss, BossMsg::Holding, myself.clone(), stage, job)? {
        Verdict::Go => Ok(()),
        Verdict::Panic => panic!("told to panic holding job {job} at {stage:?}"),
    }
}

/// A worker chosen to die holding a job.
#[derive(Debug, Clone)]
struct Victim {
    worker: String,
    job: i64,
    death: Death,
    at: Stage,
    /// How the boss saw it end (supervision event), once it has.
    seen: Option<String>,
}

/// What the boss saw.
#[derive(Debug, Default)]
struct Report {
    /// Workers started, replacements included.
    started: usize,
    /// The workers that took each job, in order.
    attempts: HashMap<i64, Vec<String>>,
    victims: Vec<Victim>,
    /// Workers that ended when nobody wanted them to.
    unexpected: Vec<String>,
}

/// Starts the workers, tells each at its checkpoints to go on or kills
/// it, and replaces every worker that dies.
struct Boss;

struct BossState {
    db: ActorRef<DbMsg>,
    report: Report,
    /// Jobs taken, retries included.
    taken: u64,
    /// The names of the live workers.
    names: HashMap<ActorId, String>,
    /// Live workers chosen to die: index into `report.victims`.
    doomed: HashMap<ActorId, usize>,
    /// The unanswered ports of killed workers, kept so that no answer
    /// races the kill.
    unanswered: Vec<RpcReplyPort<Verdict>>,
    finishing: bool,
}

impl BossState {
    async fn start_worker(&mut self, boss: &ActorRef<BossMsg>) -> Result<(), ActorProcessingErr> {
        self.report.started += 1;
        let name = format!("w{}", self.report.started);
        let args = (self.db.clone(), boss.clone(), name.clone());
        let (worker, _) = Actor::spawn_linked(None, Worker, args, boss.get_cell()).await?;
        self.names.insert(worker.get_id(), name);
        Ok(())
    }

    /// Whether the worker taking the job now is the next victim; if so,
    /// choose how and where it dies (each pair of the two in turn).
    fn choose(&mut self, worker: &ActorRef<WorkerMsg>, job: i64) {
        self.taken += 1;
        let k = self.report.victims.len();
        if !self.taken.is_multiple_of(STRIDE) || k == VICTIMS {
            return;
        }
        let death = [Death::Killed, Death::Panicked][k % 2];
        let at = [Stage::Taken, Stage::Completed][(k / 2) % 2];
        self.report.victims.push(Victim {
            worker: self.names[&worker.get_id()].clone(),
            job,
            death,
            at,
            seen: None,
        });
        self.doomed.insert(worker.get_id(), k);
    }
}

#[cfg_attr(feature = "async-trait", ractor::async_trait)]
impl Actor for Boss {
    type Msg = BossMsg;
    type State = BossState;
    type Arguments = ActorRef<DbMsg>;

    async fn pre_start(
        &self,
        myself: ActorRef<BossMsg>,
        db: ActorRef<DbMsg>,
    ) -> Result<BossState, ActorProcessingErr> {
        let mut state = BossState {
            db,
            report: Report::default(),
            taken: 0,
            names: HashMap::new(),
            doomed: HashMap::new(),
            unanswered: Vec::new(),
            finishing: false,
        };
        for _ in 0..WORKERS {
            state.start_worker(&myself).await?;
        }
        Ok(state)
    }

    async fn handle(
        &self,
        _: ActorRef<BossMsg>,
        msg: BossMsg,
        state: &mut BossState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            BossMsg::Holding(worker, stage, job, reply) => {
                if stage == Stage::Taken {
                    let name = state.names[&worker.get_id()].clone();
                    state.report.attempts.entry(job).or_default().push(name);
                    state.choose(&worker, job);
                }
                let victim = state.doomed.get(&worker.get_id());
                match victim.map(|&k| &state.report.victims[k]) {
                    Some(v) if v.at == stage && v.death == Death::Killed => {
                        worker.kill();
                        state.unanswered.push(reply);
                    }
                    Some(v) if v.at == stage => drop(reply.send(Verdict::Panic)),
                    _ => drop(reply.send(Verdict::Go)),
                }
            }
            BossMsg::Finish(reply) => {
                state.finishing = true;
                drop(reply.send(std::mem::take(&mut state.report)));
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<BossMsg>,
        event: SupervisionEvent,
        state: &mut BossState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, how) = match event {
            SupervisionEvent::ActorFailed(cell, err) => (cell, format!("failed: {err}")),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, reason.unwrap_or_else(|| "stopped".into()))
            }
            _ => return Ok(()),
        };
        let name = state.names.remove(&cell.get_id()).unwrap_or_default();
        match state.doomed.remove(&cell.get_id()) {
            Some(k) => state.report.victims[k].seen = Some(how),
            None if state.finishing => {}
            None => state.report.unexpected.push(format!("{name}: {how}")),
        }
        if !state.finishing {
            state.start_worker(&myself).await?;
        }
        Ok(())
    }
}

/// Jobs not done yet.
async fn queued(db: &Db) -> u64 {
    let page = db.typed::<Job>().list(next()).await.expect("count queued");
    page.total.expect("a counted list answers its total")
}

#[tokio::test]
async fn sixteen_worker_actors_killed_or_panicking_mid_job_complete_every_job_exactly_once() {
    tokio::time::timeout(BOUND, drain_under_kills())
        .await
        .expect("the test ends within its bound");
}

async fn drain_under_kills() {
    let (schema, app) = (unique_schema("jobs_kills"), unique_app_name("jobs_kills"));
    let models = [Job::model(), Completion::model()];
    let options = tagged_options(&primary_url(), models, PoolConfig::default(), &schema, &app);
    // Far past the test's bound: only a worker's death can end its
    // transaction in time, not the idle watch.
    let session = SessionConfig {
        idle_in_transaction_timeout: Some(Duration::from_secs(600)),
        ..tagged_session(&schema, &app)
    };
    let db = options.session(session).open().await.expect("open");
    let jobs = db.typed::<Job>();
    for _ in 0..JOBS {
        jobs.create(&Job::default()).await.expect("queue a job");
    }

    let (boss, boss_done) = Actor::spawn(None, Boss, db.actor()).await.unwrap();
    let started = tokio::time::Instant::now();
    loop {
        let left = queued(&db).await;
        if left == 0 {
            break;
        }
        assert!(
            started.elapsed() < DRAIN,
            "{left} jobs still queued after {DRAIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let report = call!(boss, BossMsg::Finish).unwrap();
    boss.stop_children_and_wait(None, Some(Duration::from_secs(30)))
        .await;
    boss.stop(None);
    boss_done.await.unwrap();

    let unexpected = &report.unexpected;
    assert!(
        unexpected.is_empty(),
        "{} workers ended unexpectedly, the first: {:?}",
        unexpected.len(),
        &unexpected[..unexpected.len().min(3)]
    );
    // Every victim died as chosen, and every way to die was used.
    assert_eq!(report.victims.len(), VICTIMS, "{:?}", report.victims);
    let mut ways = BTreeMap::new();
    for v in &report.victims {
        let seen = v.seen.as_deref().unwrap_or("alive");
        let expected = match v.death {
            Death::Killed => seen == "killed",
            Death::Panicked => seen.starts_with("failed: told to panic"),
        };
        assert!(expected, "{v:?}");
        *ways.entry((v.death, v.at)).or_insert(0) += 1;
    }
    assert_eq!(
        ways.len(),
        4,
        "killed and panicked, at each stage: {ways:?}"
    );
    assert_eq!(report.started, WORKERS + VICTIMS, "one replacement each");

    // Committed completions: exactly one per job, by the worker in done_by.
    let everything = Query::new().sort_asc("id").limit(10 * JOBS as u64);
    let completions = db
        .typed::<Completion>()
        .list(everything.clone())
        .await
        .unwrap()
        .rows;
    let all = jobs.list(everything).await.unwrap().rows;
    assert_eq!(all.len(), JOBS as usize);
    let mut completed: HashMap<i64, Vec<&str>> = HashMap::new();
    for c in &completions {
        completed.entry(c.job_id).or_default().push(&c.worker);
    }
    for job in &all {
        let by = job.done_by.as_deref().expect("every job done");
        assert_eq!(completed.get(&job.id), Some(&vec![by]), "job {}", job.id);
        // Taken once, plus once more for each time its holder died.
        let tries = &report.attempts[&job.id];
        let deaths = report.victims.iter().filter(|v| v.job == job.id).count();
        assert_eq!(tries.len(), 1 + deaths, "job {}: {tries:?}", job.id);
        assert_eq!(tries.last().map(String::as_str), Some(by), "job {}", job.id);
    }
    assert_eq!(completions.len(), JOBS as usize, "no completion twice");
    // At least once: each victim's job was done later by another worker.
    for v in &report.victims {
        let job = all
            .iter()
            .find(|j| j.id == v.job)
            .expect("the victim's job");
        assert_ne!(job.done_by.as_deref(), Some(v.worker.as_str()), "{v:?}");
        assert!(report.attempts[&v.job].contains(&v.worker), "{v:?}");
    }

    // Nothing left open: not in the pool, not on the server.
    eventually("every transaction ends", || async {
        let stats = db.stats();
        ready(
            stats.open_transactions == 0 && stats.write.in_use == 0,
            stats,
        )
    })
    .await;
    let admin = observer(&primary_url()).await;
    let in_tx: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE application_name = $1 AND state LIKE 'idle in transaction%'",
            &[&app],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(in_tx, 0, "sessions idle in a transaction");
    db.close().await;
    no_session_left(&app).await;
}
