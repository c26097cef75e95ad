//! Client-side statement deadlines that cancel on the server.
//!
//! Dropping a query future does not stop the statement: the backend keeps
//! running it and the connection stays busy. At the deadline we send a
//! CancelRequest and read the statement's answer, so the connection is known
//! to be idle again. A CancelRequest stops whatever the backend runs when it
//! arrives, so a connection goes back to the pool only when the answer shows
//! that *our* cancel was consumed ("canceling statement due to user
//! request"); in every other case it is discarded, and a late cancel can
//! never hit the next borrower's query.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use tokio::time::{Instant, Sleep};
use tokio_postgres::Client;

use crate::error::{Error, Result};
use crate::wire::{CancelTarget, CANCEL_GRACE};

/// Whether a connection may serve another statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Idle, clean: give it back.
    Reusable,
    /// A cancel may still be on its way, or the answer never came: close it.
    Discard,
}

/// What happens to a statement past its client-side deadline.
#[derive(Clone, Copy)]
pub(crate) enum Overrun<'a> {
    /// Its connection runs nothing else: cancel it through this target.
    Cancel(&'a CancelTarget),
    /// It shares its connection (a shared-read lane): the statement is
    /// cancelled only if the function says it is the connection's last one
    /// (a cancel would stop whatever the backend runs, maybe another
    /// caller's statement). Either way the connection is closed afterwards.
    Shared(&'a CancelTarget, &'a (dyn Fn() -> bool + Sync)),
}

impl<'a> Overrun<'a> {
    /// Where to send the CancelRequest, if one may be sent now.
    fn cancel(self) -> Option<&'a CancelTarget> {
        match self {
            Overrun::Cancel(target) => Some(target),
            Overrun::Shared(target, last) => last().then_some(target),
        }
    }
}

/// The one timer of an operation: it bounds the wait for a connection,
/// then, set again, each statement the operation runs. A timer already
/// running is moved to a later instant without touching the runtime's
/// timer wheel, where each new timer is put in it (under the wheel's lock)
/// and taken out again when it is dropped: one timer per operation (per
/// transaction, inside one) instead of one per wait and per statement.
#[derive(Default)]
pub(crate) struct Timer(Option<Pin<Box<Sleep>>>);

impl Timer {
    /// `work`'s output, or `None` if `limit` passes first. `work` is polled
    /// first, so one that is ready is never reported late.
    pub(crate) async fn within<F: Future>(
        &mut self,
        limit: Duration,
        work: F,
    ) -> Option<F::Output> {
        let Some(deadline) = Instant::now().checked_add(limit) else {
            // Past any instant the clock can name: unbounded.
            return Some(work.await);
        };
        let sleep = match &mut self.0 {
            Some(sleep) => {
                sleep.as_mut().reset(deadline);
                sleep
            }
            None => self.0.insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        let mut work = std::pin::pin!(work);
        poll_fn(|cx| match work.as_mut().poll(cx) {
            Poll::Ready(output) => Poll::Ready(Some(output)),
            Poll::Pending => sleep.as_mut().poll(cx).map(|()| None),
        })
        .await
    }
}

/// Run `statement` on `client`, bounded by `limit` on `timer` (none:
/// unbounded here; the session's `statement_timeout` still applies on the
/// server). Past `limit`, `overrun` says whether a CancelRequest is sent.
///
/// `write` says whether the statement may change data: a write whose answer
/// never came after the cancel has an unknown outcome. The cancel request
/// goes through `tls`, the connector `client` was opened with, so it is
/// encrypted (and the server verified) exactly as the connection was.
///
/// `statement` comes pinned by the caller, so its (large) future is stored
/// once, in the caller's, and not copied into this one.
pub(crate) async fn bounded<T>(
    client: &Client,
    overrun: Overrun<'_>,
    limit: Option<Duration>,
    write: bool,
    mut statement: Pin<&mut impl Future<Output = Result<T>>>,
    timer: &mut Timer,
) -> (Result<T>, Fate) {
    let Some(limit) = limit else {
        return (statement.await, Fate::Reusable);
    };
    let Some(done) = timer.within(limit, statement.as_mut()).await else {
        return match overrun.cancel() {
            // Boxed: the cancel's connection and TLS handshake would
            // otherwise make every statement's future kilobytes larger,
            // memory that is moved with it on every message and spawn.
            Some(target) => Box::pin(cancel_after(client, target, limit, write, statement)).await,
            None => (
                Err(Error::overran(
                    limit,
                    write,
                    "was left to the server's statement_timeout (its connection is shared)",
                )),
                Fate::Discard,
            ),
        };
    };
    (done, Fate::Reusable)
}

async fn cancel_after<T>(
    client: &Client,
    target: &CancelTarget,
    limit: Duration,
    write: bool,
    statement: impl Future<Output = Result<T>>,
) -> (Result<T>, Fate) {
    // The cancel goes over a new connection, which may itself hang: both waits are bounded.
    let (sent, answer) = tokio::join!(
        tokio::time::timeout(CANCEL_GRACE, target.send(client.cancel_token())),
        tokio::time::timeout(CANCEL_GRACE, statement)
    );
    if !matches!(sent, Ok(Ok(_))) {
        tracing::warn!(target: "pgactor.pool", "could not send the cancel request; the connection will be closed");
    }
    match answer {
        Ok(Err(err)) if err.is_user_cancel() => (Err(Error::cancelled_past(limit)), Fate::Reusable),
        // It finished after all (or failed otherwise): keep the answer, but
        // our cancel may still reach the backend, so the connection goes.
        Ok(finished) => (finished, Fate::Discard),
        Err(_) => (
            Err(Error::overran(limit, write, "its cancel was not confirmed")),
            Fate::Discard,
        ),
    }
}

/// Make `client`'s connection idle again after its caller went away
/// mid-statement (the statement's future was dropped, so its answer is
/// lost), or after a timeout that may have left pipelined statements
/// running behind the cancelled one: send a CancelRequest through
/// `target`, then an empty query behind whatever runs, each within
/// [`CANCEL_GRACE`]. An empty query that does not answer in time (a
/// second statement was pipelined behind the first, and waits in turn)
/// gets one more round: another cancel, another empty query.
///
/// The empty query is sent only once the server has closed the cancel
/// connection, and the server closes it only after it has signalled the
/// backend. Whatever the backend ran then (the statement, or nothing), the
/// cancel is consumed before the empty query is read (a backend reading
/// its next command ignores a cancel) or by the empty query itself, which
/// then answers "canceling statement due to user request": in both cases
/// the connection may serve again, no cancel of ours still on its way. A
/// cancel that was not sent, or not confirmed so (the driver's own cancel,
/// for a DSN with several hosts), or no answer in time: the connection is
/// discarded.
///
/// A write whose cancel arrives after it committed stays committed: its
/// outcome was unknown from the moment its caller stopped waiting.
pub(crate) async fn abandon(client: &Client, target: &CancelTarget) -> Fate {
    const ROUNDS: usize = 2;
    for _ in 0..ROUNDS {
        let sent = tokio::time::timeout(CANCEL_GRACE, target.send(client.cancel_token())).await;
        let confirmed = matches!(sent, Ok(Ok(true)));
        if !matches!(sent, Ok(Ok(_))) {
            tracing::warn!(target: "pgactor.pool", "could not cancel an abandoned statement; its connection will be closed");
        }
        match tokio::time::timeout(CANCEL_GRACE, client.simple_query("")).await {
            Ok(Ok(_)) if confirmed => return Fate::Reusable,
            Ok(Err(err)) if cancelled_by_user(&err) => return Fate::Reusable,
            // Still waiting behind a statement the cancel did not reach.
            Err(_) if confirmed => continue,
            _ => return Fate::Discard,
        }
    }
    Fate::Discard
}

/// The driver's error is "canceling statement due to user request" (see
/// [`Error::is_user_cancel`]).
fn cancelled_by_user(err: &tokio_postgres::Error) -> bool {
    err.as_db_error().is_some_and(|db| {
        db.code() == &tokio_postgres::error::SqlState::QUERY_CANCELED
            && db.message().contains("user request")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `within(limit, never)` on `timer`: `None` once `limit` passes (an
    /// outer bound turns a timer that never fires into a failure, not a hang).
    async fn expires(timer: &mut Timer, limit: Duration) -> bool {
        let never = std::future::pending::<()>();
        let bounded = timer.within(limit, never);
        tokio::time::timeout(Duration::from_secs(30), bounded).await == Ok(None)
    }

    #[tokio::test]
    async fn one_timer_bounds_each_wait_by_its_own_limit() {
        let hour = Duration::from_secs(3600);
        let short = Duration::from_millis(20);
        let mut timer = Timer::default();
        // Work that is ready is never reported late, even with no time left.
        assert_eq!(timer.within(Duration::ZERO, async { 7 }).await, Some(7));
        // No instant is that far: unbounded.
        assert_eq!(timer.within(Duration::MAX, async { 8 }).await, Some(8));
        assert!(expires(&mut timer, short).await);
        // Fired, then set again later: work that ends well before is done.
        let slept = timer.within(hour, tokio::time::sleep(short)).await;
        assert_eq!(slept, Some(()));
        // In the wheel for an hour now, moved earlier: it fires.
        assert!(expires(&mut timer, short).await);
        assert_eq!(timer.within(hour, async { 9 }).await, Some(9));
    }
}
