//! The steps a transaction actor hands off (see [`super::handoff`]): a
//! statement, COMMIT or ROLLBACK, each run on the transaction's state by
//! the caller that waits for it, and the slot the state comes back to.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use ractor::RpcReplyPort;

use crate::error::{Error, Result};
use crate::pool::{Plan, Request, Timer};
use crate::telemetry;

use super::handoff::{self, Starter, HANDOFF_GRACE};
use super::state::{Receipt, TxState};

/// The actor's state.
pub(crate) enum Slot {
    /// A transaction (away while a caller runs one of its statements, see
    /// [`super::handoff`]).
    Open(Box<TxState>),
    /// A statement of the transaction never ended; its connection was
    /// closed with it.
    Lost,
    /// COMMIT or ROLLBACK answered: waiting for the next transaction.
    Ended,
}

/// A statement of any request, its answer's type erased, so one job
/// variant carries every kind of statement (typed ones included).
pub(crate) trait HandOff: Send {
    /// Hand the statement off on the transaction in `slot`.
    fn hand_off<'a>(
        self: Box<Self>,
        slot: &'a mut Slot,
        timer: &'a mut Timer,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;
    /// The operation, for `Debug`.
    fn operation(&self) -> &'static str;
}

impl std::fmt::Debug for dyn HandOff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HandOff({})", self.operation())
    }
}

/// The statement of `R`, with the actor's end of its answer.
pub(crate) struct Planned<R: Request> {
    req: R,
    answer: Starter<<R::Plan as Plan>::Output>,
}

impl<R: Request> Planned<R> {
    pub(crate) fn new(req: R, answer: Starter<<R::Plan as Plan>::Output>) -> Planned<R> {
        Planned { req, answer }
    }
}

impl<R: Request> HandOff for Planned<R> {
    fn hand_off<'a>(
        self: Box<Self>,
        slot: &'a mut Slot,
        timer: &'a mut Timer,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        let Planned { req, answer } = *self;
        Box::pin(statement(slot, timer, req, answer))
    }
    fn operation(&self) -> &'static str {
        self.req.operation()
    }
}

/// Run `hand_off` (which starts a statement and leaves it to the end of
/// its answer it is given) and take the answer here, for `reply`: how the
/// actor serves a [`super::TxMsg`] in its caller's place.
pub(super) async fn answer_for<T: Send + 'static, F: Future<Output = ()>>(
    reply: RpcReplyPort<Result<T>>,
    hand_off: impl FnOnce(Starter<T>) -> F,
) {
    let (starter, answer) = handoff::pair();
    // A caller that has gone leaves no answer to take: a COMMIT is then
    // not sent, any other statement runs to its end in a task of its own.
    let answer = (!reply.is_closed()).then_some(answer);
    let taken = async move {
        match answer {
            Some(answer) => Some(answer.await),
            None => None,
        }
    };
    let ((), answer) = tokio::join!(hand_off(starter), taken);
    // A caller that has gone meanwhile is not the actor's failure.
    if let Some(answer) = answer {
        let _ = reply.send(answer);
    }
}

/// A typed entity's statement sent as a [`super::TxMsg::Typed`]: built by
/// `TxMsg::read_as` and its kin, for `call!`.
pub struct TypedTxRequest(pub(super) Box<dyn HandOff>);

impl TypedTxRequest {
    /// `req`, answered on `reply`.
    pub(crate) fn new<R: Request>(
        req: R,
        reply: RpcReplyPort<Result<<R::Plan as Plan>::Output>>,
    ) -> TypedTxRequest {
        TypedTxRequest(Box::new(Replied { req, reply }))
    }
}

impl std::fmt::Debug for TypedTxRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TypedTxRequest({})", self.0.operation())
    }
}

/// The statement of `R`, answered on a reply port by the actor.
struct Replied<R: Request> {
    req: R,
    reply: RpcReplyPort<Result<<R::Plan as Plan>::Output>>,
}

impl<R: Request> HandOff for Replied<R> {
    fn hand_off<'a>(
        self: Box<Self>,
        slot: &'a mut Slot,
        timer: &'a mut Timer,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        let Replied { req, reply } = *self;
        Box::pin(answer_for(reply, move |answer| {
            statement(slot, timer, req, answer)
        }))
    }
    fn operation(&self) -> &'static str {
        self.req.operation()
    }
}

/// Hand off `ROLLBACK TO SAVEPOINT name`.
pub(super) async fn rollback_to(
    slot: &mut Slot,
    timer: &mut Timer,
    name: String,
    answer: Starter<()>,
) {
    run_handed_off(slot, timer, |_: &TxState| RollbackTo(name), answer).await;
}

/// Hand off ROLLBACK.
pub(super) async fn rollback(slot: &mut Slot, timer: &mut Timer, answer: Starter<()>) {
    run_handed_off(slot, timer, |_: &TxState| Rollback, answer).await;
}

/// Hand off COMMIT, answering `R`.
pub(super) async fn commit<R: Receipt>(slot: &mut Slot, timer: &mut Timer, answer: Starter<R>) {
    run_handed_off(slot, timer, |_: &TxState| Commit(PhantomData), answer).await;
}

/// Hand off the statement of `req`, in its span.
async fn statement<R: Request>(
    slot: &mut Slot,
    timer: &mut Timer,
    req: R,
    answer: Starter<<R::Plan as Plan>::Output>,
) {
    let step = |state: &TxState| Statement {
        op: state.operation(req.operation(), req.model()),
        plan: req.plan(state.held.catalog()),
    };
    run_handed_off(slot, timer, step, answer).await;
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
            return answer.answer(Err(Error::tx_closed()));
        }
    };
    let step = step(&state);
    let (mut back, mut returned) = tokio::sync::oneshot::channel();
    let statement = move |mut state: Box<TxState>| -> handoff::Statement<S::Output> {
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
        Error::tx_stopped_while_answering()
    }

    /// The answer once a statement of the transaction never ended
    /// ([`Slot::Lost`]): its connection closed with it, so nothing of the
    /// transaction was committed and nothing more can run.
    fn after_lost() -> Result<Self::Output> {
        Err(Error::tx_lost())
    }
}

/// One statement, in its operation's span.
struct Statement<P> {
    plan: Result<P>,
    op: telemetry::Operation,
}

impl<P: Plan + Send + 'static> Step for Statement<P>
where
    P::Output: Send + 'static,
{
    type Output = P::Output;
    const ENDS: bool = false;

    fn run(self, state: &mut TxState) -> impl Future<Output = Result<P::Output>> + Send + '_ {
        state.run_recorded(self.plan, self.op)
    }
}

/// COMMIT, answering `R`: nothing, or a [`crate::ConsistencyToken`].
struct Commit<R>(PhantomData<fn() -> R>);

impl<R: Receipt> Step for Commit<R> {
    type Output = R;
    const ENDS: bool = true;
    const COMMITS: bool = true;

    async fn run(self, state: &mut TxState) -> Result<R> {
        let op = state.own_operation("commit");
        let result = op.end(state.commit().await, |_| 0, "COMMIT");
        telemetry::record(&state.span, &result, |_| 0);
        result
    }

    fn cut_short(state: &TxState) -> Error {
        state.cut_short_commit()
    }
}

/// `ROLLBACK TO SAVEPOINT`: the transaction goes on.
struct RollbackTo(String);

impl Step for RollbackTo {
    type Output = ();
    const ENDS: bool = false;

    async fn run(self, state: &mut TxState) -> Result<()> {
        state.rollback_to(&self.0).await
    }
}

struct Rollback;

impl Step for Rollback {
    type Output = ();
    const ENDS: bool = true;

    async fn run(self, state: &mut TxState) -> Result<()> {
        let op = state.own_operation("rollback");
        let result = op.end(state.rollback().await, |_| 0, "ROLLBACK");
        state.span.record("pgactor.outcome", "rolled_back");
        result
    }

    /// Rolled back already: the server ended the transaction with its
    /// connection. `Ok`, as a rollback after any other abort.
    fn after_lost() -> Result<()> {
        Ok(())
    }
}
