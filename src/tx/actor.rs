//! The transaction actor: one per open transaction, holding ONE write
//! connection from BEGIN to COMMIT or ROLLBACK.
//!
//! Unlike a pool actor it takes the next message only once the statement
//! before it has ended: a transaction's statements run one after another on
//! one connection anyway, so its mailbox is the right queue. Every
//! statement takes one path, whoever sends it: the actor starts it and
//! hands it off (see [`super::handoff`]); a `Tx` method's caller finishes
//! it, and for a `TxMsg` from ractor code the actor finishes it itself, in
//! the caller's place, and answers the reply port. Every statement is
//! bounded by the query timeout.
//!
//! An actor outlives its transaction: once the last `Tx` handle of a
//! transaction that ended (COMMIT or ROLLBACK answered) is dropped, the
//! actor goes back to the write pool's spares, and the next `begin` hands
//! it a new transaction instead of spawning an actor (see
//! [`SpareActors`]).
//!
//! The actor waits for no caller without bound: a statement whose caller
//! stops polling it is taken back after [`super::handoff`]'s grace, and a
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

use std::panic::Location;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{
    Actor, ActorCell, ActorProcessingErr, ActorRef, ActorRuntime, MessagingErr, RpcReplyPort,
};
use tracing::Span;

use crate::error::{Error, Result};
use crate::pool::{LockForUpdate, PoolContext, RunOptions, Timer};
use crate::telemetry::{self, Operation};

use super::handle::Tx;
use super::handoff::Starter;
use super::msg::{Inbox, Job, TxMsg};
use super::options::TxOptions;
use super::spares::SpareActors;
use super::state::{Held, PendingBegin, Status, TxState};
use super::steps::{answer_for, commit, rollback, rollback_to, Slot};

/// The transaction actor: serves one transaction at a time, in order.
pub(crate) struct TxActor;

/// A write connection, then an actor that owns it (and sends BEGIN with
/// the first statement): a spare one, else a new one linked to the
/// supervisor. Runs in the caller's task ([`crate::Db::begin`]) or in one
/// the supervisor spawns, never in an actor's `handle`.
pub(crate) async fn begin(
    write: &Arc<PoolContext>,
    spares: &Arc<SpareActors>,
    options: TxOptions,
    call: &RunOptions,
    supervisor: ActorCell,
    begun_at: Option<&'static Location<'static>>,
) -> Result<Tx> {
    let query_timeout = match options.query_timeout {
        Some(timeout) => Some(timeout).filter(|d| !d.is_zero()),
        None => call.deadline,
    };
    let mut timer = Timer::default();
    let span = telemetry::transaction(
        call.parent.as_ref().and_then(Span::id),
        options.isolation.name(),
        options.read_only,
        &write.observed,
    );
    // BEGIN itself goes out with the first statement: `begin` times the
    // wait for the transaction's connection.
    let begun = Operation::within(span.clone(), "begin", "", &write.observed);
    begun.runs_on(&write.pool.server);
    let conn = begun.end(write.pool.checkout(&mut timer).await, |_| 0, "")?;
    let held = Held::new(write.clone(), conn);
    let state = Box::new(TxState {
        span,
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
    let actor = adopt(spares, state, supervisor)?;
    Ok(Tx::new(actor, spares.clone()))
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
) -> Result<ActorRef<Inbox>> {
    while let Some(actor) = spares.take() {
        match actor.send_message(Inbox::Adopt(state)) {
            Ok(()) => return Ok(actor),
            Err(MessagingErr::SendErr(Inbox::Adopt(returned))) => state = returned,
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
    fn start(actor: ActorRef<Inbox>, period: Duration) -> Ticker {
        let queued = Arc::new(AtomicBool::new(false));
        let flag = queued.clone();
        let task = tokio::spawn(async move {
            let mut every = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if !flag.swap(true, Ordering::AcqRel) && actor.send_message(Inbox::Watch).is_err() {
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

#[cfg_attr(feature = "async-trait", ractor::async_trait)]
impl Actor for TxActor {
    type Msg = Inbox;
    type State = Serving;
    type Arguments = Box<TxState>;

    async fn pre_start(
        &self,
        myself: ActorRef<Inbox>,
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
        _: ActorRef<Inbox>,
        msg: Inbox,
        serving: &mut Serving,
    ) -> Result<(), ActorProcessingErr> {
        let Serving { slot, timer, .. } = serving;
        match msg {
            Inbox::Watch => {
                serving.ticker.taken();
                serving.watch().await;
                return Ok(());
            }
            Inbox::Drive(job) => hand_off(slot, timer, job).await,
            // Boxed: the message's future would otherwise size (and be
            // copied with) every message's.
            Inbox::Message(msg) => Box::pin(on_behalf(slot, timer, msg)).await,
            // Sent to a spare only, whose slot is `Ended`.
            Inbox::Adopt(state) => *slot = Slot::Open(state),
        }
        serving.quiet_since = Instant::now();
        Ok(())
    }

    /// A graceful stop before COMMIT or ROLLBACK (the handle dropped, the
    /// supervisor stopping): roll back. Other exits rely on `Held`'s drop.
    async fn post_stop(
        &self,
        _: ActorRef<Inbox>,
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

/// A [`TxMsg`] from ractor code, run the way of a [`Tx`] method's job
/// (one path, whoever sends): the actor starts it, then drives it to its
/// end itself, in the caller's place, and answers the reply port once the
/// transaction is back (or ended). A COMMIT whose caller has gone before it
/// is sent (a `call_t!` that timed out) is not sent: the transaction rolls
/// back, as for a [`Tx::commit`] future dropped while queued.
async fn on_behalf(slot: &mut Slot, timer: &mut Timer, msg: TxMsg) {
    match msg {
        TxMsg::Read(req, reply) => drive(slot, timer, |a| Job::statement(req, a), reply).await,
        TxMsg::LockForUpdate(req, reply) => {
            drive(
                slot,
                timer,
                |a| Job::statement(LockForUpdate(req), a),
                reply,
            )
            .await
        }
        TxMsg::Write(req, reply) => drive(slot, timer, |a| Job::statement(req, a), reply).await,
        TxMsg::List(req, reply) => drive(slot, timer, |a| Job::statement(req, a), reply).await,
        TxMsg::Query(sql, reply) => drive(slot, timer, |a| Job::raw(sql, a), reply).await,
        TxMsg::Execute(sql, reply) => drive(slot, timer, |a| Job::raw(sql, a), reply).await,
        TxMsg::Commit(reply) => drive(slot, timer, Job::Commit, reply).await,
        TxMsg::CommitWithToken(reply) => drive(slot, timer, Job::CommitWithToken, reply).await,
        TxMsg::Rollback(reply) => drive(slot, timer, Job::Rollback, reply).await,
        TxMsg::Typed(typed) => typed.0.hand_off(slot, timer).await,
    }
}

/// Hand `job` off and take its answer here, for `reply`.
async fn drive<T: Send + 'static>(
    slot: &mut Slot,
    timer: &mut Timer,
    job: impl FnOnce(Starter<T>) -> Job,
    reply: RpcReplyPort<Result<T>>,
) {
    answer_for(reply, move |starter| hand_off(slot, timer, job(starter))).await;
}

/// Start a [`Tx`] method's statement (or its COMMIT or ROLLBACK) and
/// leave it to its caller; the transaction comes back when it ends (see
/// [`super::handoff`]). Messages queued meanwhile wait their turn.
async fn hand_off(slot: &mut Slot, timer: &mut Timer, job: Job) {
    match job {
        Job::Statement(statement) => statement.hand_off(slot, timer).await,
        Job::Commit(answer) => commit(slot, timer, answer).await,
        Job::CommitWithToken(answer) => commit(slot, timer, answer).await,
        Job::Rollback(answer) => rollback(slot, timer, answer).await,
        Job::RollbackTo(name, answer) => rollback_to(slot, timer, name, answer).await,
    }
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
