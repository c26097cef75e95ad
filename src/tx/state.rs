//! One open transaction: its connection, its status, and the statements,
//! COMMIT and ROLLBACK it runs on that connection.

use std::borrow::Cow;
use std::future::Future;
use std::panic::Location;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use tracing::{Instrument, Span};

use crate::error::{Error, ErrorKind, Result};
use crate::messages::ConsistencyToken;
use crate::pool::{
    bounded, wal_position, ConnectionPool, Fate, Object, Overrun, Plan, PoolContext, Timer,
};
use crate::sql::Catalog;
use crate::telemetry::Operation;

/// The transaction's connection. The transaction counts as open in the
/// pool's statistics exactly while it holds one. Dropped while still
/// holding it (a panic, a kill, a failed spawn: the paths where `post_stop`
/// does not run) it closes it, so the server rolls back and the pool never
/// sees a connection inside a transaction.
pub(super) struct Held {
    pub(super) conn: Option<Object>,
    /// The write pool's context: its pool, and the catalog statements use.
    pub(super) write: Arc<PoolContext>,
}

impl Held {
    pub(super) fn new(write: Arc<PoolContext>, conn: Object) -> Held {
        write.pool.counters.transaction_opened();
        Held {
            conn: Some(conn),
            write,
        }
    }

    pub(super) fn pool(&self) -> &ConnectionPool {
        &self.write.pool
    }

    pub(super) fn catalog(&self) -> &Catalog {
        &self.write.catalog
    }

    pub(super) fn client(&self) -> Option<&Object> {
        self.conn.as_ref()
    }

    /// Give the connection back to the pool: only after COMMIT or ROLLBACK succeeded.
    pub(super) fn release(&mut self) {
        if self.conn.take().is_some() {
            self.pool().counters.transaction_ended();
        }
    }

    /// Close the connection; the server rolls back whatever was open.
    pub(super) fn discard(&mut self) {
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
pub(super) struct PendingBegin {
    pub(super) sql: Cow<'static, str>,
}

impl PendingBegin {
    /// BEGIN (with the settings behind it), unbounded: the caller bounds it.
    pub(super) async fn send(&self, client: &Object) -> Result<()> {
        client
            .batch_execute(&self.sql)
            .await
            .map_err(|e| Error::from_statement(e, false))
    }
}

/// Whether later statements may run.
pub(super) enum Status {
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
    pub(super) span: Span,
    pub(super) held: Held,
    /// BEGIN until it is sent, with the first statement.
    pub(super) begin: Option<PendingBegin>,
    /// Began `READ ONLY`: a write is refused by the server (25006), which
    /// then says nothing about the server itself.
    pub(super) read_only: bool,
    pub(super) query_timeout: Option<Duration>,
    /// Bounds the checkout, then each statement in turn (see [`Timer`]).
    pub(super) timer: Timer,
    pub(super) status: Status,
    /// Set just before COMMIT is sent: only after that can a commit whose
    /// answer is lost be in doubt.
    pub(super) commit_sent: bool,
    /// Where the transaction was begun (`Db::begin`'s caller), for the
    /// WARN of a transaction the watch ends; `None` for `DbMsg::Begin`.
    pub(super) begun_at: Option<&'static Location<'static>>,
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

impl TxState {
    /// The session's `idle_in_transaction_timeout` (zero: no bound), which
    /// the watch applies to the transaction client-side too.
    pub(super) fn idle_limit(&self) -> Duration {
        self.held.write.session.idle_in_transaction_timeout
    }

    /// A COMMIT whose caller had gone before it was sent: never sent. The
    /// transaction rolls back; later statements and commits answer
    /// TxAborted, a rollback Ok.
    pub(super) async fn abandon_commit(&mut self) {
        let _ = self.rollback().await;
        self.status = Status::Failed(
            "its caller abandoned the commit before it was sent, so it was rolled back".into(),
        );
        tracing::debug!(target: "pgactor.tx", "commit abandoned before it was sent; rolled back");
    }

    /// The answer to a commit whose actor stopped: in doubt once COMMIT
    /// went out, else nothing was committed.
    pub(super) fn cut_short_commit(&self) -> Error {
        if self.commit_sent {
            Error::tx_in_doubt()
        } else {
            Error::tx_stopped_while_answering()
        }
    }

    /// The connection, if the transaction can still run statements.
    pub(super) fn usable(&self) -> Result<&Object> {
        match (&self.status, self.held.client()) {
            (Status::Open, Some(client)) => Ok(client),
            (Status::Failed(reason) | Status::Lost(reason), _) => Err(Error::tx_aborted(reason)),
            (Status::Finished, _) | (Status::Open, None) => Err(Error::tx_closed()),
        }
    }

    /// Start operation `name` on `model` inside this transaction, in a
    /// span of its own under the transaction's.
    pub(super) fn operation(&self, name: &'static str, model: &str) -> Operation {
        let op = Operation::start(self.span.id(), name, "tx", model, &self.held.write.observed);
        op.runs_on(&self.held.pool().server);
        op
    }

    /// Operation `name` of the transaction itself (`commit`, `rollback`),
    /// timed in the transaction's span.
    pub(super) fn own_operation(&self, name: &'static str) -> Operation {
        Operation::within(self.span.clone(), name, "", &self.held.write.observed)
    }

    /// Run one statement in its operation's span and record how it ended.
    pub(super) async fn run_recorded<P: Plan>(
        &mut self,
        plan: Result<P>,
        op: Operation,
    ) -> Result<P::Output> {
        // Pinned where it is made and instrumented by reference: every
        // wrapper that took the statement's future by value would copy its
        // kilobytes.
        match plan {
            Ok(plan) => {
                let statement = pin!(self.run_plan(Ok(&plan)));
                let result = statement.instrument(op.span.clone()).await;
                op.end(result, P::rows, plan.statement())
            }
            Err(refused) => {
                let statement = pin!(self.run_plan::<P>(Err(refused)));
                let result = statement.instrument(op.span.clone()).await;
                op.end(result, P::rows, "")
            }
        }
    }

    /// Answer a connection the watch found closed ([`Status::Lost`]) once.
    pub(super) fn lost_connection(&mut self) -> Result<()> {
        let Status::Lost(reason) = &self.status else {
            return Ok(());
        };
        let err = Error::unavailable(format!(
            "the transaction's connection was lost; nothing was committed ({reason})"
        ));
        self.status = Status::Failed(err.to_string());
        Err(err)
    }

    pub(super) async fn run_plan<P: Plan>(&mut self, plan: Result<&P>) -> Result<P::Output> {
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
                        began.and(Err(Error::tx_aborted("BEGIN was answered too late"))),
                        Fate::Discard,
                    ),
                }
            }
        };
        self.timer = timer;
        self.settle(result, fate)
    }

    /// Record what a statement did to the transaction.
    pub(super) fn settle<T>(&mut self, result: Result<T>, fate: Fate) -> Result<T> {
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
            // NotFound and Decode follow a statement that succeeded, and
            // so does a Conflict with no server code (a write's guard or
            // expected version refused by the data, nothing changed).
            let succeeded = matches!(err.kind(), ErrorKind::NotFound | ErrorKind::Decode)
                || (err.kind() == ErrorKind::Conflict && err.sqlstate().is_none());
            if broken || !succeeded {
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
    /// COMMIT, then the receipt `R` read on the connection (bounded by
    /// the query timeout); the connection goes back to the pool unless
    /// that read left it in doubt.
    pub(super) async fn commit<R: Receipt>(&mut self) -> Result<R> {
        let committed = match self.commit_keeping_connection().await {
            Ok(committed) => committed,
            Err(err) => {
                self.held.release();
                return Err(err);
            }
        };
        let (receipt, fate) = match self.held.client() {
            Some(client) if committed => {
                let cancel = Overrun::Cancel(&self.held.pool().cancel);
                R::read(client, cancel, self.query_timeout, &mut self.timer).await
            }
            _ => (R::unread(), Fate::Reusable),
        };
        match fate {
            Fate::Reusable => self.held.release(),
            Fate::Discard => self.held.discard(),
        }
        Ok(receipt)
    }

    /// COMMIT. On success the connection stays held (`true`) for a caller
    /// that still needs it, to be released by that caller.
    pub(super) async fn commit_keeping_connection(&mut self) -> Result<bool> {
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
            return Err(Error::tx_aborted(
                "its connection was lost before COMMIT; nothing was committed",
            ));
        }
        self.commit_sent = true;
        let (result, fate) = self.finish("COMMIT", true).await;
        let clean = result.is_ok() && fate == Fate::Reusable;
        self.end(result, fate, clean)?;
        Ok(clean)
    }

    pub(super) async fn rollback(&mut self) -> Result<()> {
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

    /// `ROLLBACK TO SAVEPOINT name`: undo what ran since the savepoint, and
    /// make a transaction a failed statement aborted usable again. Not
    /// when its connection is gone (or the transaction ended): then
    /// nothing can be undone in part.
    pub(super) async fn rollback_to(&mut self, name: &str) -> Result<()> {
        self.lost_connection()?;
        match (&self.status, self.held.client()) {
            (Status::Open | Status::Failed(_), Some(_)) => {}
            (Status::Failed(reason) | Status::Lost(reason), None) => {
                return Err(Error::tx_aborted(reason))
            }
            _ => return Err(Error::tx_closed()),
        }
        let (result, fate) = self
            .finish(&format!("ROLLBACK TO SAVEPOINT {name}"), false)
            .await;
        let result = self.settle(result, fate);
        if result.is_ok() {
            self.status = Status::Open;
        }
        result
    }

    pub(super) async fn finish(&mut self, sql: &str, write: bool) -> (Result<()>, Fate) {
        let Some(client) = self.held.client() else {
            return (Err(Error::tx_closed()), Fate::Discard);
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
    pub(super) fn end(&mut self, result: Result<()>, fate: Fate, keep: bool) -> Result<()> {
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

/// What a COMMIT answers besides its success.
pub(super) trait Receipt: Sized + Send + 'static {
    /// Read it on `client` after a COMMIT that succeeded, within `limit`
    /// on `timer`; the fate says whether the connection may serve again.
    fn read(
        client: &Object,
        overrun: Overrun<'_>,
        limit: Option<Duration>,
        timer: &mut Timer,
    ) -> impl Future<Output = (Self, Fate)> + Send;
    /// When there is no connection to read it on (the COMMIT needed none,
    /// or the connection is gone).
    fn unread() -> Self;
}

/// [`crate::Tx::commit`]: nothing to read.
impl Receipt for () {
    async fn read(_: &Object, _: Overrun<'_>, _: Option<Duration>, _: &mut Timer) -> ((), Fate) {
        ((), Fate::Reusable)
    }
    fn unread() {}
}

/// [`crate::Tx::commit_with_token`]: the primary's WAL position after the
/// commit; unread or unreadable, the highest position (reads then wait for
/// the replica to pass any position, or go to the primary).
impl Receipt for ConsistencyToken {
    async fn read(
        client: &Object,
        overrun: Overrun<'_>,
        limit: Option<Duration>,
        timer: &mut Timer,
    ) -> (ConsistencyToken, Fate) {
        let position = pin!(wal_position(client));
        let (read, fate) = bounded(client, overrun, limit, false, position, timer).await;
        (read.unwrap_or(ConsistencyToken::unread()), fate)
    }
    fn unread() -> ConsistencyToken {
        ConsistencyToken(u64::MAX)
    }
}
