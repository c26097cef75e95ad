//! The transaction actor: one per open transaction, holding ONE write
//! connection from BEGIN to COMMIT or ROLLBACK.
//!
//! Unlike a pool actor it takes the next message only once the statement
//! before it has ended: a transaction's statements run one after another on
//! one connection anyway, so its mailbox is the right queue. A `Tx`
//! method's statement is started here and finished by its caller (see
//! [`crate::handoff`]); `TxMsg`s from ractor code are answered here. Every
//! statement is bounded by the query timeout.
//!
//! An actor outlives its transaction: once the last `Tx` handle of a
//! transaction that ended (COMMIT or ROLLBACK answered) is dropped, the
//! actor goes back to the write pool's spares, and the next `begin` hands
//! it a new transaction instead of spawning an actor (see
//! [`SpareActors`]).
//!
//! The actor waits for no caller without bound: a statement whose caller
//! stops polling it is taken back after [`crate::handoff`]'s grace, and a
//! COMMIT whose caller has gone before it was sent is not sent: the
//! transaction rolls back instead. A watch ([`Watch`]) bounds the
//! transaction itself: one left idle past the session's
//! `idle_in_transaction_timeout` (BEGIN sent or not) is rolled back and its
//! connection freed, and one whose connection the server closed frees it,
//! each with a WARN naming where the transaction was begun.
//!
//! BEGIN waits for the transaction's first statement. When that statement
//! only reads (a read, a list, `LockForUpdate`) both go out together and
//! take one round trip: should BEGIN fail, the read ran outside any
//! transaction, which changes nothing, and the caller gets BEGIN's error.
//! A first write waits for BEGIN's answer. A transaction that ends before
//! its first statement never sends BEGIN at all.

use std::borrow::Cow;
use std::future::Future;
use std::panic::Location;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::pool::Object;
use ractor::{
    Actor, ActorCell, ActorProcessingErr, ActorRef, ActorRuntime, MessagingErr, RpcReplyPort,
};
use tracing::{Instrument, Span};

use crate::error::{Error, ErrorKind, Result};
use crate::handoff::{Starter, HANDOFF_GRACE};
use crate::pool::ConnectionPool;
use crate::pool::ConsistencyToken;
use crate::pool::PoolContext;
use crate::pool::{bounded, Fate, Overrun, Timer};
use crate::pool::{wal_position, PagePlan, Plan, RowPlan};
use crate::sql::Catalog;
use crate::telemetry;
use crate::transaction::{
    closed, in_doubt, stopped_while_answering, Adopt, Drive, Job, Tx, TxMsg, TxOptions, Watch,
};

/// The transaction's connection. The transaction counts as open in the
/// pool's statistics exactly while it holds one. Dropped while still
/// holding it (a panic, a kill, a failed spawn: the paths where `post_stop`
/// does not run) it closes it, so the server rolls back and the pool never
/// sees a connection inside a transaction.
struct Held {
    conn: Option<Object>,
    /// The write pool's context: its pool, and the catalog statements use.
    write: Arc<PoolContext>,
}

impl Held {
    fn new(write: Arc<PoolContext>, conn: Object) -> Held {
        write.pool.counters.transaction_opened();
        Held {
            conn: Some(conn),
            write,
        }
    }

    fn pool(&self) -> &ConnectionPool {
        &self.write.pool
    }

    fn catalog(&self) -> &Catalog {
        &self.write.catalog
    }

    fn client(&self) -> Option<&Object> {
        self.conn.as_ref()
    }

    /// Give the connection back to the pool: only after COMMIT or ROLLBACK succeeded.
    fn release(&mut self) {
        if self.conn.take().is_some() {
            self.pool().counters.transaction_ended();
        }
    }

    /// Close the connection; the server rolls back whatever was open.
    fn discard(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool().discard(conn);
            self.pool().counters.transaction_ended();
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.discard();
    }
}

/// A BEGIN not sent yet: in pooler mode, with the transaction's settings
/// behind it in the same message.
struct PendingBegin {
    sql: Cow<'static, str>,
}

impl PendingBegin {
    /// BEGIN (with the settings behind it), unbounded: the caller bounds it.
    async fn send(&self, client: &Object) -> Result<()> {
        client
            .batch_execute(&self.sql)
            .await
            .map_err(|e| Error::from_statement(e, false))
    }
}

/// Whether later statements may run.
enum Status {
    Open,
    /// The server aborted the transaction, or the connection is gone.
    Failed(String),
    /// The watch found the connection closed and freed it: the next
    /// statement answers as one that met the closed connection would
    /// (Unavailable: nothing was committed), and the status becomes `Failed`.
    Lost(String),
    /// COMMIT or ROLLBACK ran.
    Finished,
}

pub(crate) struct TxState {
    /// The transaction's span; its operations' spans are its children.
    span: Span,
    held: Held,
    /// BEGIN until it is sent, with the first statement.
    begin: Option<PendingBegin>,
    /// Began `READ ONLY`: a write is refused by the server (25006), which
    /// then says nothing about the server itself.
    read_only: bool,
    query_timeout: Option<Duration>,
    /// Bounds the checkout, then each statement in turn (see [`Timer`]).
    timer: Timer,
    status: Status,
    /// Set just before COMMIT is sent: only after that can a commit whose
    /// answer is lost be in doubt.
    commit_sent: bool,
    /// Where the transaction was begun (`Db::begin`'s caller), for the
    /// WARN of a transaction the watch ends; `None` for `DbMsg::Begin`.
    begun_at: Option<&'static Location<'static>>,
}

/// A transaction dropped before its BEGIN went out (its `Adopt` message
/// dropped by a spare that stopped, a failed spawn) has sent nothing on its
/// connection: it goes back to the pool. Otherwise `Held`'s drop closes it.
impl Drop for TxState {
    fn drop(&mut self) {
        if self.begin.is_some() {
            self.held.release();
        }
    }
}

pub(crate) struct TxActor;

/// Transaction actors between transactions, ready for the next one: a
/// `begin` that finds one sends it the new transaction in a message, where
/// spawning an actor would create its channels and tasks and report its
/// start and its end to the supervisor. At most as many as the write pool
/// has connections (each open transaction holds one); more are stopped.
#[derive(Default)]
pub(crate) struct SpareActors {
    idle: Mutex<Vec<ActorRef<TxMsg>>>,
    most: usize,
}

impl SpareActors {
    /// Keeping at most `most` actors.
    pub(crate) fn new(most: usize) -> SpareActors {
        SpareActors {
            idle: Mutex::default(),
            most,
        }
    }

    fn take(&self) -> Option<ActorRef<TxMsg>> {
        self.lock().pop()
    }

    /// Keep `actor`, whose transaction has ended and whose `Tx` handles
    /// are all gone; `false` if there are enough spares already.
    pub(crate) fn keep(&self, actor: &ActorRef<TxMsg>) -> bool {
        let mut idle = self.lock();
        let room = idle.len() < self.most;
        if room {
            idle.push(actor.clone());
        }
        room
    }

    fn lock(&self) -> MutexGuard<'_, Vec<ActorRef<TxMsg>>> {
        // The list stays valid whatever a panicking holder did.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A write connection, then an actor that owns it (and sends BEGIN with
/// the first statement): a spare one, else a new one linked to the
/// supervisor. Runs in the caller's task ([`crate::Db::begin`]) or in one
/// the supervisor spawns, never in an actor's `handle`.
pub(crate) async fn begin(
    write: &Arc<PoolContext>,
    options: TxOptions,
    default_timeout: Option<Duration>,
    supervisor: ActorCell,
    begun_at: Option<&'static Location<'static>>,
) -> Result<Tx> {
    let query_timeout = match options.query_timeout {
        Some(timeout) => Some(timeout).filter(|d| !d.is_zero()),
        None => default_timeout,
    };
    let mut timer = Timer::default();
    let held = Held::new(write.clone(), write.pool.checkout(&mut timer).await?);
    let state = Box::new(TxState {
        span: telemetry::transaction(None, options.isolation.name(), options.read_only),
        held,
        begin: Some(PendingBegin {
            sql: crate::wire::begin_sql(options.begin_sql(), &write.session),
        }),
        read_only: options.read_only,
        query_timeout,
        timer,
        status: Status::Open,
        commit_sent: false,
        begun_at,
    });
    let actor = adopt(&write.spare_tx, state, supervisor)?;
    Ok(Tx::new(actor, write.spare_tx.clone()))
}

/// The actor for a new transaction: a spare that takes it (a spare that
/// stopped meanwhile gives it back), else a new one. Nothing here awaits,
/// so a caller that stops waiting cannot leave an actor half-started, and
/// the first statement is queued behind the transaction at once. Should a
/// new actor's start fail (the supervisor is stopping), the state is
/// dropped, which closes the connection, and the transaction's statements
/// answer TxAborted (queued) or TxClosed (sent later).
fn adopt(
    spares: &SpareActors,
    mut state: Box<TxState>,
    supervisor: ActorCell,
) -> Result<ActorRef<TxMsg>> {
    while let Some(actor) = spares.take() {
        match actor.send_message(TxMsg::Adopt(Adopt(state))) {
            Ok(()) => return Ok(actor),
            Err(MessagingErr::SendErr(TxMsg::Adopt(Adopt(returned)))) => state = returned,
            Err(_) => {
                return Err(Error::closed(
                    "the transaction actor refused its transaction",
                ))
            }
        }
    }
    // Unnamed: actor names are process-global.
    let (actor, _) = ActorRuntime::spawn_linked_instant(None, TxActor, state, supervisor)
        .map_err(|e| Error::closed(format!("cannot start a transaction actor: {e}")))?;
    Ok(actor)
}

/// The actor's state.
pub(crate) enum Slot {
    /// A transaction (away while a caller runs one of its statements, see
    /// [`crate::handoff`]).
    Open(Box<TxState>),
    /// A statement of the transaction never ended; its connection was
    /// closed with it.
    Lost,
    /// COMMIT or ROLLBACK answered: waiting for the next transaction.
    Ended,
}

/// The actor's state: the slot of its transaction, and what the actor
/// keeps from one transaction to the next.
pub(crate) struct Serving {
    slot: Slot,
    /// Bounds the wait for a caller driving a statement ([`HANDOFF_GRACE`]).
    timer: Timer,
    /// When the actor last finished a message: the transaction has been
    /// idle since, unless a message is being handled.
    quiet_since: Instant,
    /// Sends the actor a [`Watch`] every [`watch_period`]; stopped with it.
    ticker: Ticker,
}

/// The task that sends the actor a [`Watch`] every period, never more than
/// one at a time (a statement that runs long does not pile them up in the
/// mailbox); aborted when the actor's state goes.
struct Ticker {
    task: tokio::task::JoinHandle<()>,
    /// A [`Watch`] is in the mailbox.
    queued: Arc<AtomicBool>,
}

impl Ticker {
    fn start(actor: ActorRef<TxMsg>, period: Duration) -> Ticker {
        let queued = Arc::new(AtomicBool::new(false));
        let flag = queued.clone();
        let task = tokio::spawn(async move {
            let mut every = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if !flag.swap(true, Ordering::AcqRel)
                    && actor.send_message(TxMsg::Watch(Watch(()))).is_err()
                {
                    return;
                }
            }
        });
        Ticker { task, queued }
    }

    /// The [`Watch`] in the mailbox was taken.
    fn taken(&self) {
        self.queued.store(false, Ordering::Release);
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The most time between two [`Watch`]es: how long a connection the
/// server closed may stay counted in use.
const WATCH_PERIOD_MAX: Duration = Duration::from_secs(1);

/// The least time between two [`Watch`]es.
const WATCH_PERIOD_MIN: Duration = Duration::from_millis(10);

/// How often the watch looks at the transaction: a quarter of the idle
/// bound (so one idle past it ends within a quarter more), between
/// [`WATCH_PERIOD_MIN`] and [`WATCH_PERIOD_MAX`]; the latter with no idle bound.
fn watch_period(idle_limit: Duration) -> Duration {
    if idle_limit.is_zero() {
        return WATCH_PERIOD_MAX;
    }
    (idle_limit / 4).clamp(WATCH_PERIOD_MIN, WATCH_PERIOD_MAX)
}

impl Actor for TxActor {
    type Msg = TxMsg;
    type State = Serving;
    type Arguments = Box<TxState>;

    async fn pre_start(
        &self,
        myself: ActorRef<TxMsg>,
        state: Box<TxState>,
    ) -> Result<Serving, ActorProcessingErr> {
        // One pool, one session: every transaction of this actor has this bound.
        let period = watch_period(state.idle_limit());
        Ok(Serving {
            slot: Slot::Open(state),
            timer: Timer::default(),
            quiet_since: Instant::now(),
            ticker: Ticker::start(myself, period),
        })
    }

    async fn handle(
        &self,
        _: ActorRef<TxMsg>,
        msg: TxMsg,
        serving: &mut Serving,
    ) -> Result<(), ActorProcessingErr> {
        if let TxMsg::Watch(_) = msg {
            serving.ticker.taken();
            serving.watch().await;
        } else {
            serving.serve(msg).await;
            serving.quiet_since = Instant::now();
        }
        Ok(())
    }

    /// A graceful stop before COMMIT or ROLLBACK (the handle dropped, the
    /// supervisor stopping): roll back. Other exits rely on `Held`'s drop.
    async fn post_stop(
        &self,
        _: ActorRef<TxMsg>,
        serving: &mut Serving,
    ) -> Result<(), ActorProcessingErr> {
        if let Slot::Open(state) = &mut serving.slot {
            if state.held.client().is_some() {
                let _ = state.rollback().await;
            }
        }
        Ok(())
    }
}

impl Serving {
    async fn serve(&mut self, msg: TxMsg) {
        let slot = &mut self.slot;
        let msg = match msg {
            TxMsg::Drive(Drive(job)) => {
                hand_off(slot, &mut self.timer, job).await;
                return;
            }
            // Sent to a spare only, whose slot is `Ended`.
            TxMsg::Adopt(Adopt(state)) => {
                *slot = Slot::Open(state);
                return;
            }
            msg => msg,
        };
        let state = match slot {
            Slot::Open(state) => state,
            Slot::Ended => {
                msg.refuse(closed());
                return;
            }
            Slot::Lost => {
                if msg.ends_transaction() {
                    *slot = Slot::Ended;
                }
                match msg {
                    // Nothing of it was committed: see `Rollback::after_lost`.
                    TxMsg::Rollback(reply) => drop(reply.send(Ok(()))),
                    msg => msg.refuse(lost()),
                }
                return;
            }
        };
        // Replies ignore a caller that has gone: that is not the actor's failure.
        match msg {
            TxMsg::Read(req, reply) => {
                let span = state.operation_span("read", &req.model);
                let plan = RowPlan::read(state.held.catalog(), &req.model, req.id);
                state.answer(plan, span, reply).await;
            }
            TxMsg::LockForUpdate(req, reply) => {
                let span = state.operation_span("lock_for_update", &req.model);
                let plan = RowPlan::lock_for_update(state.held.catalog(), &req.model, req.id);
                state.answer(plan, span, reply).await;
            }
            TxMsg::Write(req, reply) => {
                let span = state.operation_span(req.op.name(), &req.model);
                let plan = RowPlan::write(state.held.catalog(), &req.model, req.op);
                state.answer(plan, span, reply).await;
            }
            TxMsg::List(req, reply) => {
                let span = state.operation_span("list", &req.model);
                let plan = PagePlan::new(state.held.catalog(), req);
                state.answer(plan, span, reply).await;
            }
            // A commit whose caller has gone (a `call!` that timed out) is
            // not sent: the transaction rolls back.
            TxMsg::Commit(reply) if reply.is_closed() => state.abandon_commit().await,
            TxMsg::CommitWithToken(reply) if reply.is_closed() => state.abandon_commit().await,
            // Boxed, like `answer`: these futures would otherwise size
            // (and be copied with) every message's. The transaction's
            // state (and its span) ends before the answer goes out;
            // messages after it are answered TxClosed.
            TxMsg::Commit(reply) => {
                let result = Box::pin(Commit.run(state)).await;
                *slot = Slot::Ended;
                let _ = reply.send(result);
            }
            TxMsg::CommitWithToken(reply) => {
                let result = Box::pin(CommitWithToken.run(state)).await;
                *slot = Slot::Ended;
                let _ = reply.send(result);
            }
            TxMsg::Rollback(reply) => {
                let result = Box::pin(Rollback.run(state)).await;
                *slot = Slot::Ended;
                let _ = reply.send(result);
            }
            TxMsg::Drive(_) | TxMsg::Adopt(_) | TxMsg::Watch(_) => unreachable!("taken above"),
        }
    }

    /// The watch: end a transaction idle past the idle bound, free the
    /// connection of one whose session the server ended. Never while a
    /// statement runs: the actor handles one message at a time.
    async fn watch(&mut self) {
        let Slot::Open(state) = &mut self.slot else {
            return;
        };
        let Some(client) = state.held.client() else {
            return;
        };
        let idle = self.quiet_since.elapsed();
        let limit = state.idle_limit();
        let idle_ms = idle.as_millis();
        let why = if client.is_closed() {
            state.held.discard();
            let why = "the server closed its connection";
            state.status = Status::Lost(format!("{why} after {idle_ms} ms idle"));
            why
        } else if !limit.is_zero() && idle >= limit {
            let _ = state.rollback().await;
            let why = "it was idle past idle_in_transaction_timeout and was rolled back";
            state.status = Status::Failed(format!("{why} after {idle_ms} ms"));
            why
        } else {
            return;
        };
        let begun_at = state
            .begun_at
            .map_or_else(|| "a DbMsg::Begin".to_owned(), |at| at.to_string());
        tracing::warn!(
            target: "pgactor.tx",
            begun_at = %begun_at,
            idle_ms = idle.as_millis() as u64,
            idle_in_transaction_timeout_ms = limit.as_millis() as u64,
            "transaction ended while idle ({why}); its connection is freed and nothing of it was committed: a Tx kept without commit or rollback?"
        );
    }
}

/// Start a [`Tx`] method's statement (or its COMMIT or ROLLBACK) and
/// leave it to its caller; the transaction comes back when it ends (see
/// [`crate::handoff`]). Messages queued meanwhile wait their turn.
async fn hand_off(slot: &mut Slot, timer: &mut Timer, job: Job) {
    match job {
        Job::Read(req, answer) => {
            let step = |state: &TxState| Statement {
                span: state.operation_span("read", &req.model),
                plan: RowPlan::read(state.held.catalog(), &req.model, req.id),
            };
            run_handed_off(slot, timer, step, answer).await;
        }
        Job::LockForUpdate(req, answer) => {
            let step = |state: &TxState| Statement {
                span: state.operation_span("lock_for_update", &req.model),
                plan: RowPlan::lock_for_update(state.held.catalog(), &req.model, req.id),
            };
            run_handed_off(slot, timer, step, answer).await;
        }
        Job::Write(req, answer) => {
            let step = |state: &TxState| Statement {
                span: state.operation_span(req.op.name(), &req.model),
                plan: RowPlan::write(state.held.catalog(), &req.model, req.op),
            };
            run_handed_off(slot, timer, step, answer).await;
        }
        Job::List(req, answer) => {
            let step = |state: &TxState| Statement {
                span: state.operation_span("list", &req.model),
                plan: PagePlan::new(state.held.catalog(), req),
            };
            run_handed_off(slot, timer, step, answer).await;
        }
        Job::Commit(answer) => run_handed_off(slot, timer, |_: &TxState| Commit, answer).await,
        Job::CommitWithToken(answer) => {
            run_handed_off(slot, timer, |_: &TxState| CommitWithToken, answer).await
        }
        Job::Rollback(answer) => run_handed_off(slot, timer, |_: &TxState| Rollback, answer).await,
    }
}

async fn run_handed_off<S: Step>(
    slot: &mut Slot,
    timer: &mut Timer,
    step: impl FnOnce(&TxState) -> S,
    answer: Starter<S::Output>,
) {
    let state = match std::mem::replace(slot, Slot::Lost) {
        Slot::Open(state) => state,
        Slot::Lost => {
            if S::ENDS {
                *slot = Slot::Ended;
            }
            return answer.answer(S::after_lost());
        }
        Slot::Ended => {
            *slot = Slot::Ended;
            return answer.answer(Err(closed()));
        }
    };
    let step = step(&state);
    let (mut back, mut returned) = tokio::sync::oneshot::channel();
    let statement = move |mut state: Box<TxState>| -> crate::handoff::Statement<S::Output> {
        Box::pin(async move {
            // An actor killed meanwhile (no longer waiting for the transaction)
            // ends the step half-way: the transaction's state is dropped,
            // which closes its connection, and the caller is answered at once.
            let ended = tokio::select! {
                biased;
                result = step.run(&mut state) => Some(result),
                () = back.closed() => None,
            };
            match ended {
                Some(result) => {
                    let _ = back.send(state);
                    result
                }
                None => Err(S::cut_short(&state)),
            }
        })
    };
    let handed = if S::COMMITS {
        match answer.start_unless_gone(state, statement) {
            Ok(handed) => handed,
            // Its caller has gone: COMMIT is not sent.
            Err(mut state) => {
                state.abandon_commit().await;
                *slot = Slot::Open(state);
                return;
            }
        }
    } else {
        answer.start(statement(state))
    };
    // A caller that stops polling (and keeps the future) gets the
    // statement taken back; it then ends within its own bounds.
    let returned = match timer.within(HANDOFF_GRACE, &mut returned).await {
        Some(returned) => returned,
        None => {
            handed.take_back();
            returned.await
        }
    };
    // The transaction (and its span) ends here, after COMMIT or ROLLBACK;
    // messages after it are answered TxClosed.
    *slot = match returned {
        _ if S::ENDS => Slot::Ended,
        Ok(state) => Slot::Open(state),
        Err(_) => Slot::Lost,
    };
}

/// What a handed-off job runs on the transaction.
trait Step: Send + 'static {
    type Output: Send + 'static;
    /// Whether the transaction ends with it (COMMIT, ROLLBACK).
    const ENDS: bool;
    /// Whether it commits: then it is not sent once its caller has gone.
    const COMMITS: bool = false;

    fn run(self, state: &mut TxState) -> impl Future<Output = Result<Self::Output>> + Send + '_;

    /// The answer when the actor is killed while this runs.
    fn cut_short(_: &TxState) -> Error {
        stopped_while_answering()
    }

    /// The answer once a statement of the transaction never ended
    /// ([`Slot::Lost`]): its connection closed with it, so nothing of the
    /// transaction was committed and nothing more can run.
    fn after_lost() -> Result<Self::Output> {
        Err(lost())
    }
}

/// One statement, in its span.
struct Statement<P> {
    plan: Result<P>,
    span: Span,
}

impl<P: Plan + Send + 'static> Step for Statement<P>
where
    P::Output: Send + 'static,
{
    type Output = P::Output;
    const ENDS: bool = false;

    fn run(self, state: &mut TxState) -> impl Future<Output = Result<P::Output>> + Send + '_ {
        state.run_recorded(self.plan, self.span)
    }
}

struct Commit;

impl Step for Commit {
    type Output = ();
    const ENDS: bool = true;
    const COMMITS: bool = true;

    async fn run(self, state: &mut TxState) -> Result<()> {
        let result = state.commit().await;
        telemetry::record(&state.span, &result, |_| 0);
        result
    }

    fn cut_short(state: &TxState) -> Error {
        state.cut_short_commit()
    }
}

struct CommitWithToken;

impl Step for CommitWithToken {
    type Output = ConsistencyToken;
    const ENDS: bool = true;
    const COMMITS: bool = true;

    async fn run(self, state: &mut TxState) -> Result<ConsistencyToken> {
        let result = state.commit_with_token().await;
        telemetry::record(&state.span, &result, |_| 0);
        result
    }

    fn cut_short(state: &TxState) -> Error {
        state.cut_short_commit()
    }
}

struct Rollback;

impl Step for Rollback {
    type Output = ();
    const ENDS: bool = true;

    async fn run(self, state: &mut TxState) -> Result<()> {
        let result = state.rollback().await;
        state.span.record("outcome", "rolled_back");
        result
    }

    /// Rolled back already: the server ended the transaction with its
    /// connection. `Ok`, as a rollback after any other abort.
    fn after_lost() -> Result<()> {
        Ok(())
    }
}

impl TxState {
    /// The session's `idle_in_transaction_timeout` (zero: no bound), which
    /// the watch applies to the transaction client-side too.
    fn idle_limit(&self) -> Duration {
        self.held.write.session.idle_in_transaction_timeout
    }

    /// A COMMIT whose caller had gone before it was sent: never sent. The
    /// transaction rolls back; later statements and commits answer
    /// TxAborted, a rollback Ok.
    async fn abandon_commit(&mut self) {
        let _ = self.rollback().await;
        self.status = Status::Failed(
            "its caller abandoned the commit before it was sent, so it was rolled back".into(),
        );
        tracing::debug!(target: "pgactor.tx", "commit abandoned before it was sent; rolled back");
    }

    /// The answer to a commit whose actor stopped: in doubt once COMMIT
    /// went out, else nothing was committed.
    fn cut_short_commit(&self) -> Error {
        if self.commit_sent {
            in_doubt()
        } else {
            stopped_while_answering()
        }
    }

    /// The connection, if the transaction can still run statements.
    fn usable(&self) -> Result<&Object> {
        match (&self.status, self.held.client()) {
            (Status::Open, Some(client)) => Ok(client),
            (Status::Failed(reason) | Status::Lost(reason), _) => Err(aborted(reason)),
            (Status::Finished, _) | (Status::Open, None) => Err(closed()),
        }
    }

    /// The span of one operation inside this transaction.
    fn operation_span(&self, operation: &'static str, model: &str) -> Span {
        telemetry::operation(self.span.id(), operation, "tx", model)
    }

    /// Run one statement and answer it. Boxed: a statement's future is
    /// kilobytes (the prepared-statement cache, the deadline, a pipelined
    /// BEGIN), and ractor moves the `handle` future, as large as its
    /// largest arm, for every message.
    fn answer<P: Plan>(
        &mut self,
        plan: Result<P>,
        span: Span,
        reply: RpcReplyPort<Result<P::Output>>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let result = self.run_recorded(plan, span).await;
            let _ = reply.send(result);
        })
    }

    /// Run one statement in its span and record its outcome there.
    async fn run_recorded<P: Plan>(&mut self, plan: Result<P>, span: Span) -> Result<P::Output> {
        // Pinned where it is made and instrumented by reference: every
        // wrapper that took the statement's future by value would copy its
        // kilobytes.
        let statement = pin!(self.run_plan(plan));
        let result = statement.instrument(span.clone()).await;
        telemetry::record(&span, &result, P::rows);
        result
    }

    /// Answer a connection the watch found closed ([`Status::Lost`]) once.
    fn lost_connection(&mut self) -> Result<()> {
        let Status::Lost(reason) = &self.status else {
            return Ok(());
        };
        let err = Error::unavailable(format!(
            "the transaction's connection was lost; nothing was committed ({reason})"
        ));
        self.status = Status::Failed(err.to_string());
        Err(err)
    }

    async fn run_plan<P: Plan>(&mut self, plan: Result<P>) -> Result<P::Output> {
        self.lost_connection()?;
        self.usable()?;
        // Bad input is refused before any SQL: the transaction stays usable.
        let plan = plan?;
        let begin = self.begin.take();
        let mut timer = std::mem::take(&mut self.timer);
        let client = self.usable()?;
        let overrun = Overrun::Cancel(&self.held.pool().cancel);
        let deadline = self.query_timeout;
        let (result, fate) = match begin {
            None => plan.run(client, overrun, deadline, &mut timer).await,
            // `biased`: BEGIN is polled, and so written, first. Should it
            // fail, the read ran outside any transaction, which changes
            // nothing, and BEGIN's error is the answer.
            Some(begin) if !plan.writes() => {
                let both = pin!(async {
                    let (began, ran) = tokio::join!(biased; begin.send(client), plan.fetch(client));
                    began.and(ran)
                });
                bounded(client, overrun, deadline, false, both, &mut timer).await
            }
            Some(begin) => {
                let began = pin!(begin.send(client));
                match bounded(client, overrun, deadline, false, began, &mut timer).await {
                    (Ok(()), Fate::Reusable) => {
                        plan.run(client, overrun, deadline, &mut timer).await
                    }
                    (began, _) => (
                        began.and(Err(aborted("BEGIN was answered too late"))),
                        Fate::Discard,
                    ),
                }
            }
        };
        self.timer = timer;
        self.settle(result, fate)
    }

    /// Record what a statement did to the transaction.
    fn settle<T>(&mut self, result: Result<T>, fate: Fate) -> Result<T> {
        // 25006 is a server that takes no writes (a demoted primary), except
        // in a READ ONLY transaction: there it is the caller's write refused.
        let read_only_server = result.as_ref().is_err_and(Error::is_read_only_server);
        let refused_write = read_only_server && self.read_only;
        let broken = fate == Fate::Discard
            || self.held.client().is_some_and(|c| c.is_closed())
            || result.as_ref().is_err_and(Error::ended_session)
            || (read_only_server && !refused_write);
        if broken {
            self.held.discard();
        }
        // Nothing inside a transaction is committed before COMMIT, so a
        // statement whose answer was lost is not in doubt: the transaction
        // is simply gone (and may be run again).
        let result = result.map_err(|err| match err.kind() {
            ErrorKind::OutcomeUnknown => Error::unavailable(format!(
                "the transaction's connection was lost; nothing was committed ({err})"
            )),
            // Not Unavailable, which `with_transaction` would retry in vain.
            _ if refused_write => err.reclassified(ErrorKind::Database),
            _ => err,
        });
        if let Err(err) = &result {
            // NotFound and Decode follow a statement that succeeded.
            if broken || !matches!(err.kind(), ErrorKind::NotFound | ErrorKind::Decode) {
                self.status = Status::Failed(err.to_string());
            }
        } else if broken {
            self.status = Status::Failed("its connection was closed".into());
        }
        result
    }

    /// COMMIT, then the primary's WAL position on the same connection. A
    /// position that cannot be read gives the largest token, which sends
    /// every read made after it to the primary: never a stale read. The
    /// read is bounded by the query timeout, as every statement is.
    async fn commit_with_token(&mut self) -> Result<ConsistencyToken> {
        let committed = self.commit_keeping_connection().await?;
        let mut fate = Fate::Reusable;
        let token = match self.held.client() {
            Some(client) if committed => {
                let cancel = Overrun::Cancel(&self.held.pool().cancel);
                let position = pin!(wal_position(client));
                let read;
                (read, fate) = bounded(
                    client,
                    cancel,
                    self.query_timeout,
                    false,
                    position,
                    &mut self.timer,
                )
                .await;
                read.unwrap_or(ConsistencyToken(u64::MAX))
            }
            _ => ConsistencyToken(u64::MAX),
        };
        match fate {
            Fate::Reusable => self.held.release(),
            Fate::Discard => self.held.discard(),
        }
        Ok(token)
    }

    async fn commit(&mut self) -> Result<()> {
        let committed = self.commit_keeping_connection().await;
        self.held.release();
        committed.map(drop)
    }

    /// COMMIT. On success the connection stays held (`true`) for a caller
    /// that still needs it, to be released by that caller.
    async fn commit_keeping_connection(&mut self) -> Result<bool> {
        if let Err(err) = self.usable() {
            let _ = self.rollback().await;
            return Err(err);
        }
        if self.begin.take().is_some() {
            // Nothing ran, BEGIN never went out: nothing to commit.
            self.end(Ok(()), Fate::Reusable, true)?;
            return Ok(self.held.client().is_some());
        }
        if self.held.client().is_some_and(|c| c.is_closed()) {
            self.held.discard();
            return Err(aborted(
                "its connection was lost before COMMIT; nothing was committed",
            ));
        }
        self.commit_sent = true;
        let (result, fate) = self.finish("COMMIT", true).await;
        let clean = result.is_ok() && fate == Fate::Reusable;
        self.end(result, fate, clean)?;
        Ok(clean)
    }

    async fn rollback(&mut self) -> Result<()> {
        if self.held.client().is_none() {
            // Nothing to undo: the connection (and with it the transaction) is gone.
            self.status = Status::Finished;
            return Ok(());
        }
        if self.begin.take().is_some() {
            // BEGIN never went out: nothing to undo.
            return self.end(Ok(()), Fate::Reusable, false);
        }
        let (result, fate) = self.finish("ROLLBACK", false).await;
        self.end(result, fate, false)
    }

    async fn finish(&mut self, sql: &str, write: bool) -> (Result<()>, Fate) {
        let Some(client) = self.held.client() else {
            return (Err(closed()), Fate::Discard);
        };
        let statement = async {
            client
                .batch_execute(sql)
                .await
                .map_err(|e| Error::from_statement(e, write))
        };
        let cancel = &self.held.pool().cancel;
        bounded(
            client,
            Overrun::Cancel(cancel),
            self.query_timeout,
            write,
            pin!(statement),
            &mut self.timer,
        )
        .await
    }

    /// After COMMIT or ROLLBACK: the connection is clean and goes back to
    /// the pool only if the statement answered.
    fn end(&mut self, result: Result<()>, fate: Fate, keep: bool) -> Result<()> {
        let answered = result.is_ok() || result.as_ref().is_err_and(Error::is_server_error);
        let clean = answered
            && fate == Fate::Reusable
            && self.held.client().is_some_and(|c| !c.is_closed());
        if !clean {
            self.held.discard();
        } else if !keep {
            self.held.release();
        }
        self.status = Status::Finished;
        result
    }
}

fn aborted(reason: &str) -> Error {
    Error::new(
        ErrorKind::TxAborted,
        format!("the transaction cannot continue: {reason}"),
    )
}

/// The answer to a message that finds the transaction gone: a statement
/// of it never ended, and its connection was closed with it.
fn lost() -> Error {
    aborted("a statement of it never ended, and its connection was closed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watch_looks_every_quarter_of_the_idle_bound_between_10_ms_and_1_s() {
        let ms = Duration::from_millis;
        assert_eq!(watch_period(ms(1_000)), ms(250));
        assert_eq!(watch_period(ms(60_000)), WATCH_PERIOD_MAX);
        assert_eq!(watch_period(ms(1)), WATCH_PERIOD_MIN);
        // No idle bound: it still looks for closed connections once a second.
        assert_eq!(watch_period(Duration::ZERO), WATCH_PERIOD_MAX);
    }
}
