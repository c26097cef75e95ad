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

use std::future::Future;
use std::time::Duration;

use postgres_openssl::MakeTlsConnector;
use tokio_postgres::Client;

use crate::error::{Error, ErrorKind, Result};

/// How long, after the deadline, to wait for the cancelled statement's answer.
pub(crate) const CANCEL_GRACE: Duration = Duration::from_secs(1);

/// Whether a connection may serve another statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Idle, clean: give it back.
    Reusable,
    /// A cancel may still be on its way, or the answer never came: close it.
    Discard,
}

/// Run `statement` on `client`, bounded by `limit` (none: unbounded here;
/// the session's `statement_timeout` still applies on the server).
///
/// `write` says whether the statement may change data: a write whose answer
/// never came after the cancel has an unknown outcome. The cancel request
/// goes through `tls`, the connector `client` was opened with, so it is
/// encrypted (and the server verified) exactly as the connection was.
pub(crate) async fn bounded<T>(
    client: &Client,
    tls: &MakeTlsConnector,
    limit: Option<Duration>,
    write: bool,
    statement: impl Future<Output = Result<T>>,
) -> (Result<T>, Fate) {
    let Some(limit) = limit else {
        return (statement.await, Fate::Reusable);
    };
    tokio::pin!(statement);
    let Ok(done) = tokio::time::timeout(limit, &mut statement).await else {
        return cancel(client, tls, limit, write, statement).await;
    };
    (done, Fate::Reusable)
}

async fn cancel<T>(
    client: &Client,
    tls: &MakeTlsConnector,
    limit: Duration,
    write: bool,
    statement: impl Future<Output = Result<T>>,
) -> (Result<T>, Fate) {
    let token = client.cancel_token();
    // The cancel goes over a new connection, which may itself hang: both waits are bounded.
    let (sent, answer) = tokio::join!(
        tokio::time::timeout(CANCEL_GRACE, token.cancel_query(tls.clone())),
        tokio::time::timeout(CANCEL_GRACE, statement)
    );
    if !matches!(sent, Ok(Ok(()))) {
        tracing::warn!(target: "pgactor.pool", "could not send the cancel request; the connection will be closed");
    }
    match answer {
        Ok(Err(err)) if err.is_user_cancel() => (
            Err(Error::new(
                ErrorKind::Timeout,
                format!("the statement ran past the {limit:?} query timeout and was cancelled on the server"),
            )),
            Fate::Reusable,
        ),
        // It finished after all (or failed otherwise): keep the answer, but
        // our cancel may still reach the backend, so the connection goes.
        Ok(finished) => (finished, Fate::Discard),
        Err(_) if write => (
            Err(Error::new(
                ErrorKind::OutcomeUnknown,
                format!("the write ran past the {limit:?} query timeout and its cancel was not confirmed; it may or may not have been applied"),
            )),
            Fate::Discard,
        ),
        Err(_) => (
            Err(Error::new(
                ErrorKind::Timeout,
                format!("the statement ran past the {limit:?} query timeout and the server did not confirm the cancel"),
            )),
            Fate::Discard,
        ),
    }
}
