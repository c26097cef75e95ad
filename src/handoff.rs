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
//! to the actor, as when the actor answered a caller that had gone.

use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use crate::error::Result;

/// A started statement, with its answer as output.
pub(crate) type Statement<T> = Pin<Box<dyn Future<Output = Result<T>> + Send>>;

enum Stage<T> {
    /// The actor has not taken it up yet.
    Queued,
    /// Started by the actor; the caller polls it.
    Running(Statement<T>),
    /// Answered before the caller took over (a refusal, a statement
    /// refused without a round trip).
    Answered(Result<T>),
    /// The caller has the answer, or has gone.
    Closed,
}

/// What the actor and the caller of one statement share.
struct Shared<T> {
    stage: Mutex<Stage<T>>,
    /// The caller's waker while the statement is queued: the statement's
    /// first poll (by the actor) wakes through it.
    caller: Mutex<Option<Waker>>,
}

impl<T> Shared<T> {
    fn stage(&self) -> MutexGuard<'_, Stage<T>> {
        // A panic while a statement was polled poisons the lock; the stage
        // itself is still consistent (the caller's drop takes care of it).
        self.stage.lock().unwrap_or_else(PoisonError::into_inner)
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
    pub(crate) fn start(mut self, mut statement: Statement<T>) {
        let Some(shared) = self.shared.clone() else {
            return;
        };
        let mut stage = shared.stage();
        if !matches!(*stage, Stage::Queued) {
            drop(stage);
            self.shared = None;
            run_detached(statement);
            return;
        }
        // `self` stays armed through the poll: should it panic, its drop
        // answers the caller instead of leaving it waiting.
        let waker = Waker::from(shared.clone());
        match statement.as_mut().poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(answer) => {
                *stage = Stage::Answered(answer);
                drop(stage);
                shared.wake_caller();
            }
            Poll::Pending => *stage = Stage::Running(statement),
        }
        self.shared = None;
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
            answered(&shared, Err(crate::transaction::stopped_while_answering()));
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
            Stage::Running(statement) => {
                let answer = std::task::ready!(statement.as_mut().poll(cx));
                *stage = Stage::Closed;
                Poll::Ready(answer)
            }
            Stage::Answered(_) => match mem::replace(&mut *stage, Stage::Closed) {
                Stage::Answered(answer) => Poll::Ready(answer),
                _ => unreachable!("matched Answered above"),
            },
            Stage::Queued => {
                // Under the stage's lock: the actor cannot start the
                // statement between this check and the waker being stored.
                *shared.caller.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some(cx.waker().clone());
                Poll::Pending
            }
            Stage::Closed => Poll::Ready(Err(crate::transaction::closed())),
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
        assert_eq!(err.kind(), &ErrorKind::TxAborted, "{err}");
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
        assert_eq!(err.kind(), &ErrorKind::TxAborted, "{err}");
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
