//! A statement the transaction actor starts and its caller finishes.
//!
//! Run by the actor alone, a statement costs four task wake-ups: caller →
//! actor → connection task → actor → caller. A worker thread of tokio's
//! runtime runs at most three woken tasks in a row from its LIFO slot, so
//! such a chain wakes the other worker thread on every statement, which is
//! most of what a transaction at one caller pays over the raw driver.
//!
//! So a [`crate::Tx`] call (a statement, or the COMMIT or ROLLBACK that
//! ends the transaction) goes the other way round: the actor takes the
//! message (in order with every other message of the transaction), starts
//! the statement, which sends its request, and leaves it here; the caller
//! polls it to its end. The connection task then wakes the caller directly
//! (connection → caller → actor → connection: three wake-ups), and the
//! statement gives the transaction's state back to the actor when it ends.
//!
//! A caller that stops waiting leaves the statement to a task of its own,
//! which runs it to its end, so the transaction's state always goes back
//! to the actor, as when the actor answered a caller that had gone. A
//! caller that keeps the statement's future but stops polling it (a
//! `select!` on `&mut fut`) cannot hold the actor up either: past
//! [`HANDOFF_GRACE`] the actor takes the statement back
//! ([`Handed::take_back`]) and a task of its own runs it to its end; the
//! caller, should it poll again, gets the statement's own answer.
//!
//! A COMMIT is started only while its caller still waits
//! ([`Starter::start_unless_gone`]): one whose caller has gone is never
//! sent, and the actor rolls the transaction back instead.

use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use crate::error::{Error, Result};

/// How long the actor waits for a caller to drive a statement it started
/// before it takes the statement back and runs it itself.
pub(crate) const HANDOFF_GRACE: Duration = Duration::from_secs(1);

/// A started statement, with its answer as output.
pub(crate) type Statement<T> = Pin<Box<dyn Future<Output = Result<T>> + Send>>;

enum Stage<T> {
    /// The actor has not taken it up yet.
    Queued,
    /// Started by the actor; the caller polls it.
    Running(Statement<T>),
    /// Taken back by the actor from a caller that stopped polling: a task
    /// runs it and leaves its answer here.
    TakenBack,
    /// Answered before the caller took over (a refusal, a statement
    /// refused without a round trip), or by the task of a statement taken back.
    Answered(Result<T>),
    /// The caller has the answer, or has gone.
    Closed,
}

/// What the actor and the caller of one statement share.
struct Shared<T> {
    stage: Mutex<Stage<T>>,
    /// The caller's waker: the statement's first poll (by the actor)
    /// wakes through it, and so does an answer left by a statement taken back.
    caller: Mutex<Option<Waker>>,
}

impl<T> Shared<T> {
    fn stage(&self) -> MutexGuard<'_, Stage<T>> {
        // A panic while a statement was polled poisons the lock; the stage
        // itself is still consistent (the caller's drop takes care of it).
        self.stage.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keep `waker` to wake the caller by, unless it is the one kept.
    fn remember(&self, waker: &Waker) {
        let mut caller = self.caller.lock().unwrap_or_else(PoisonError::into_inner);
        if !caller.as_ref().is_some_and(|kept| kept.will_wake(waker)) {
            *caller = Some(waker.clone());
        }
    }

    fn wake_caller(&self) {
        let waker = self
            .caller
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T: Send + 'static> Wake for Shared<T> {
    fn wake(self: Arc<Self>) {
        self.wake_caller();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wake_caller();
    }
}

/// Make a statement's pair: the actor's end and the caller's.
pub(crate) fn pair<T: Send + 'static>() -> (Starter<T>, Answer<T>) {
    let shared = Arc::new(Shared {
        stage: Mutex::new(Stage::Queued),
        caller: Mutex::new(None),
    });
    (
        Starter {
            shared: Some(shared.clone()),
        },
        Answer { shared },
    )
}

/// The actor's end: starts the statement, or answers without one.
/// Dropped unused (the actor stopped with the message queued), it answers
/// that the transaction stopped.
pub(crate) struct Starter<T: Send + 'static> {
    shared: Option<Arc<Shared<T>>>,
}

impl<T: Send + 'static> std::fmt::Debug for Starter<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Starter")
    }
}

impl<T: Send + 'static> Starter<T> {
    /// Poll `statement` once (its request goes out, with BEGIN when it is
    /// the first) and leave it to the caller; a caller that has gone
    /// leaves it to a task of its own.
    pub(crate) fn start(self, statement: Statement<T>) -> Handed<T> {
        self.start_unless_gone(statement, |statement| statement)
            .unwrap_or_else(|statement| {
                run_detached(statement);
                Handed { shared: None }
            })
    }

    /// [`Starter::start`] the statement `make(arg)` if its caller still
    /// waits; if it has gone, start nothing and give `arg` back. Checked
    /// and started under the stage's lock: a caller that goes meanwhile
    /// goes after the request was sent.
    pub(crate) fn start_unless_gone<A>(
        mut self,
        arg: A,
        make: impl FnOnce(A) -> Statement<T>,
    ) -> std::result::Result<Handed<T>, A> {
        let Some(shared) = self.shared.clone() else {
            return Err(arg);
        };
        let mut stage = shared.stage();
        if !matches!(*stage, Stage::Queued) {
            drop(stage);
            self.shared = None;
            return Err(arg);
        }
        let mut statement = make(arg);
        // `self` stays armed through the poll: should it panic, its drop
        // answers the caller instead of leaving it waiting.
        let waker = Waker::from(shared.clone());
        let ready = match statement.as_mut().poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(answer) => {
                *stage = Stage::Answered(answer);
                true
            }
            Poll::Pending => {
                *stage = Stage::Running(statement);
                false
            }
        };
        drop(stage);
        if ready {
            shared.wake_caller();
        }
        self.shared = None;
        Ok(Handed {
            shared: Some(shared),
        })
    }

    /// Answer without a statement.
    pub(crate) fn answer(mut self, answer: Result<T>) {
        if let Some(shared) = self.shared.take() {
            answered(&shared, answer);
        }
    }
}

impl<T: Send + 'static> Drop for Starter<T> {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            answered(&shared, Err(Error::tx_stopped_while_answering()));
        }
    }
}

/// A statement the actor started and left to its caller.
pub(crate) struct Handed<T: Send + 'static> {
    /// `None` when the statement runs in a task already.
    shared: Option<Arc<Shared<T>>>,
}

impl<T: Send + 'static> Handed<T> {
    /// Take the statement back from a caller that has not driven it to its
    /// end, and run it to its end in a task of its own, which leaves its
    /// answer to the caller. Nothing if it has ended or is taken already.
    pub(crate) fn take_back(self) {
        let Some(shared) = self.shared else {
            return;
        };
        let mut stage = shared.stage();
        if !matches!(*stage, Stage::Running(_)) {
            return;
        }
        let Stage::Running(statement) = mem::replace(&mut *stage, Stage::TakenBack) else {
            unreachable!("matched Running above")
        };
        drop(stage);
        let mut reply = TakenBack {
            shared: shared.clone(),
            answer: None,
        };
        tokio::spawn(async move { reply.answer(statement.await) });
    }
}

/// Leaves the answer of a statement taken back to its caller, when the
/// statement ends, panics or its task is dropped (the caller then hears
/// that the transaction stopped).
struct TakenBack<T: Send + 'static> {
    shared: Arc<Shared<T>>,
    answer: Option<Result<T>>,
}

impl<T: Send + 'static> TakenBack<T> {
    fn answer(&mut self, answer: Result<T>) {
        self.answer = Some(answer);
    }
}

impl<T: Send + 'static> Drop for TakenBack<T> {
    fn drop(&mut self) {
        let mut stage = self.shared.stage();
        if matches!(*stage, Stage::TakenBack) {
            let answer = self
                .answer
                .take()
                .unwrap_or_else(|| Err(Error::tx_stopped_while_answering()));
            *stage = Stage::Answered(answer);
            drop(stage);
            self.shared.wake_caller();
        }
    }
}

fn answered<T>(shared: &Shared<T>, answer: Result<T>) {
    let mut stage = shared.stage();
    if matches!(*stage, Stage::Queued) {
        *stage = Stage::Answered(answer);
        drop(stage);
        shared.wake_caller();
    }
}

/// The caller's end: a future of the statement's answer, which drives the
/// statement once the actor has started it.
pub(crate) struct Answer<T: Send + 'static> {
    shared: Arc<Shared<T>>,
}

impl<T: Send + 'static> Future for Answer<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let shared = &self.shared;
        let mut stage = shared.stage();
        match &mut *stage {
            // The statement registers this caller's waker itself from now on.
            // Remembered too: should the actor take the statement back
            // (see `Handed::take_back`), its answer wakes this caller.
            Stage::Running(statement) => match statement.as_mut().poll(cx) {
                Poll::Ready(answer) => {
                    *stage = Stage::Closed;
                    Poll::Ready(answer)
                }
                Poll::Pending => {
                    shared.remember(cx.waker());
                    Poll::Pending
                }
            },
            Stage::Answered(_) => match mem::replace(&mut *stage, Stage::Closed) {
                Stage::Answered(answer) => Poll::Ready(answer),
                _ => unreachable!("matched Answered above"),
            },
            // Under the stage's lock: the actor cannot start the statement
            // (or the task answer it) between this check and the waker being stored.
            Stage::Queued | Stage::TakenBack => {
                shared.remember(cx.waker());
                Poll::Pending
            }
            Stage::Closed => Poll::Ready(Err(Error::tx_closed())),
        }
    }
}

impl<T: Send + 'static> Drop for Answer<T> {
    fn drop(&mut self) {
        let poisoned = self.shared.stage.is_poisoned();
        let mut stage = self.shared.stage();
        let left = mem::replace(&mut *stage, Stage::Closed);
        drop(stage);
        match left {
            // A statement that panicked in the caller's poll cannot be
            // polled again: dropped, it closes its connection.
            Stage::Running(statement) if !poisoned => run_detached(statement),
            // Dropped here and not left in the stage, whose wakers (held
            // by the statement's own channels) would otherwise keep it alive.
            other => drop(other),
        }
    }
}

/// Run a statement nobody waits for to its end, so it gives the
/// transaction back to its actor. Without a runtime (it is shutting down)
/// it is dropped, which closes its connection.
fn run_detached<T: Send + 'static>(statement: Statement<T>) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let _ = statement.await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use std::time::Duration;
    use tokio::sync::oneshot;

    /// A statement that answers `value` once `go` fires, and says so on `done`.
    fn statement(
        go: oneshot::Receiver<()>,
        done: oneshot::Sender<()>,
        value: u32,
    ) -> Statement<u32> {
        Box::pin(async move {
            let _ = go.await;
            let _ = done.send(());
            Ok(value)
        })
    }

    async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(5), f)
            .await
            .unwrap_or_else(|_| panic!("{what} never happened"))
    }

    #[tokio::test]
    async fn the_caller_takes_the_answer_of_a_statement_the_actor_started() {
        let (starter, answer) = pair();
        let waiting = tokio::spawn(answer);
        tokio::task::yield_now().await;
        let (go, gate) = oneshot::channel();
        let (done, finished) = oneshot::channel();
        starter.start(statement(gate, done, 7));
        go.send(()).unwrap();
        assert_eq!(within("the answer", waiting).await.unwrap().unwrap(), 7);
        finished.await.unwrap();
    }

    #[tokio::test]
    async fn a_statement_answered_at_once_reaches_the_caller() {
        let (starter, answer) = pair();
        let waiting = tokio::spawn(answer);
        tokio::task::yield_now().await;
        starter.start(Box::pin(async { Ok(3) }));
        assert_eq!(within("the answer", waiting).await.unwrap().unwrap(), 3);
    }

    #[tokio::test]
    async fn a_message_dropped_unstarted_answers_that_the_transaction_stopped() {
        let (starter, answer) = pair::<u32>();
        drop(starter);
        let err = within("the answer", answer).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TxAborted, "{err}");
    }

    #[tokio::test]
    async fn a_statement_that_panics_when_started_answers_its_caller() {
        let (starter, answer) = pair::<u32>();
        let waiting = tokio::spawn(answer);
        tokio::task::yield_now().await;
        let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            starter.start(Box::pin(async {
                panic!("a statement that panics (expected)")
            }))
        }));
        assert!(started.is_err());
        let err = within("the answer", waiting).await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TxAborted, "{err}");
    }

    #[tokio::test]
    async fn a_caller_gone_before_the_start_leaves_the_statement_to_run_to_its_end() {
        let (starter, answer) = pair();
        drop(answer);
        let (go, gate) = oneshot::channel();
        let (done, finished) = oneshot::channel();
        starter.start(statement(gate, done, 1));
        go.send(()).unwrap();
        within("the statement's end", finished).await.unwrap();
    }

    #[tokio::test]
    async fn a_statement_is_not_started_for_a_caller_that_has_gone_when_asked() {
        let (starter, answer) = pair::<u32>();
        drop(answer);
        let (_go, gate) = oneshot::channel();
        let (done, _finished) = oneshot::channel();
        let back = starter.start_unless_gone(7, |_| statement(gate, done, 1));
        assert_eq!(back.err(), Some(7), "nothing started, the argument back");
    }

    #[tokio::test]
    async fn a_statement_taken_back_from_a_caller_that_stopped_polling_answers_it_later() {
        let (starter, mut answer) = pair();
        let (go, gate) = oneshot::channel();
        let (done, finished) = oneshot::channel();
        let handed = starter.start(statement(gate, done, 5));
        // Polled once, then kept without being polled.
        let pending =
            std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut answer).poll(cx).is_pending()))
                .await;
        assert!(pending, "the statement waits for its gate");
        handed.take_back();
        go.send(()).unwrap();
        // Run to its end without its caller.
        within("the statement's end", finished).await.unwrap();
        assert_eq!(within("the kept answer", answer).await.unwrap(), 5);
    }

    #[tokio::test]
    async fn a_statement_taken_back_that_panics_answers_its_caller() {
        let (starter, answer) = pair::<u32>();
        let waiting = tokio::spawn(answer);
        tokio::task::yield_now().await;
        let (go, gate) = oneshot::channel::<()>();
        let handed = starter.start(Box::pin(async move {
            let _ = gate.await;
            panic!("a statement taken back that panics (expected)")
        }));
        handed.take_back();
        go.send(()).unwrap();
        let err = within("the answer", waiting).await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TxAborted, "{err}");
    }

    #[tokio::test]
    async fn a_caller_gone_mid_statement_leaves_it_to_run_to_its_end() {
        let (starter, mut answer) = pair();
        let (go, gate) = oneshot::channel();
        let (done, finished) = oneshot::channel();
        starter.start(statement(gate, done, 1));
        let pending =
            std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut answer).poll(cx).is_pending()))
                .await;
        assert!(pending, "the statement waits for its gate");
        drop(answer);
        go.send(()).unwrap();
        within("the statement's end", finished).await.unwrap();
    }
}
