//! Transactions as actors: options, the messages a transaction takes, and
//! the `Tx` handle.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ractor::{ActorRef, RpcReplyPort};

use crate::error::{Error, ErrorKind, Result};
use crate::handoff::{self, Starter};
use crate::messages::{write_shorthands, ListRequest, ReadRequest, WriteOp, WriteRequest};
use crate::pool::ConsistencyToken;
use crate::schema::Record;
use crate::schema::Value;
use crate::schema::{Page, Query};
use crate::tx_actor::{SpareActors, TxState};

/// The isolation level a transaction runs at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsolationLevel {
    /// PostgreSQL's default: each statement sees what was committed before it began.
    #[default]
    ReadCommitted,
    /// The whole transaction sees one snapshot; concurrent updates of the
    /// same rows fail with [`ErrorKind::Conflict`].
    RepeatableRead,
    /// Like running one at a time; anomalies fail with [`ErrorKind::Conflict`].
    Serializable,
}

impl IsolationLevel {
    /// `read_committed`, `repeatable_read` or `serializable`, for spans.
    pub(crate) fn name(self) -> &'static str {
        match self {
            IsolationLevel::ReadCommitted => "read_committed",
            IsolationLevel::RepeatableRead => "repeatable_read",
            IsolationLevel::Serializable => "serializable",
        }
    }
}

/// How [`crate::Db::with_transaction`] re-runs a transaction that failed
/// with [`ErrorKind::Conflict`] (or [`ErrorKind::Unavailable`], where
/// nothing was committed). Off by default: `max_attempts` 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Runs in all, the first included (1: no retry).
    pub max_attempts: u32,
    /// The wait before the first retry; doubled each time, with jitter.
    pub base_backoff: Duration,
    /// The longest wait between two runs.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 1,
            base_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(500),
        }
    }
}

impl RetryPolicy {
    /// Up to `max_attempts` runs with the default backoff.
    pub fn attempts(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            ..RetryPolicy::default()
        }
    }

    /// Whether run number `attempt` (from 1) that failed with `err` is re-run.
    /// Only errors where nothing was committed qualify; OutcomeUnknown never does.
    pub(crate) fn retries(&self, err: &Error, attempt: u32) -> bool {
        attempt < self.max_attempts
            && matches!(err.kind(), ErrorKind::Conflict | ErrorKind::Unavailable)
    }

    /// The wait after run number `attempt`: exponential, capped, full jitter.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .base_backoff
            .saturating_mul(1 << attempt.saturating_sub(1).min(16))
            .min(self.max_backoff);
        ceiling.mul_f64(jitter())
    }
}

/// A number in [0, 1), different on every call; good enough for backoff jitter.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// How a transaction starts.
///
/// ```
/// use pgactor::{IsolationLevel, RetryPolicy, TxOptions};
/// let opts = TxOptions {
///     isolation: IsolationLevel::Serializable,
///     retry: RetryPolicy::attempts(5),
///     ..TxOptions::default()
/// };
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TxOptions {
    /// Isolation level (default read committed).
    pub isolation: IsolationLevel,
    /// `READ ONLY`: writes fail on the server.
    pub read_only: bool,
    /// Per-statement client deadline for this transaction: `None` takes the
    /// deadline of the handle that begins it (the session's `query_timeout`
    /// unless [`crate::Db::with_query_timeout`] changed it), `Duration::ZERO`
    /// means none.
    pub query_timeout: Option<Duration>,
    /// Re-runs of [`crate::Db::with_transaction`] (ignored by [`crate::Db::begin`]).
    pub retry: RetryPolicy,
}

impl TxOptions {
    /// `BEGIN ISOLATION LEVEL … READ WRITE` or `READ ONLY`.
    pub(crate) fn begin_sql(&self) -> &'static str {
        use IsolationLevel::*;
        match (self.isolation, self.read_only) {
            (ReadCommitted, false) => "BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE",
            (ReadCommitted, true) => "BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY",
            (RepeatableRead, false) => "BEGIN ISOLATION LEVEL REPEATABLE READ READ WRITE",
            (RepeatableRead, true) => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            (Serializable, false) => "BEGIN ISOLATION LEVEL SERIALIZABLE READ WRITE",
            (Serializable, true) => "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY",
        }
    }
}

/// The messages a transaction actor takes. Each runs on the transaction's
/// one connection to the primary, in order, so a transaction reads its own
/// writes even when reads outside it go to a replica.
#[derive(Debug)]
pub enum TxMsg {
    /// Read one row by id.
    Read(ReadRequest, RpcReplyPort<Result<Record>>),
    /// List a page of rows.
    List(ListRequest, RpcReplyPort<Result<Page>>),
    /// Create, update or delete a row.
    Write(WriteRequest, RpcReplyPort<Result<Record>>),
    /// `SELECT … FOR UPDATE`: read the row and lock it until the transaction
    /// ends; [`ErrorKind::NotFound`] when absent.
    LockForUpdate(ReadRequest, RpcReplyPort<Result<Record>>),
    /// Commit and end the transaction.
    Commit(RpcReplyPort<Result<()>>),
    /// Commit, end the transaction, and answer the primary's WAL position
    /// after the commit (see [`crate::ConsistencyToken`]).
    CommitWithToken(RpcReplyPort<Result<ConsistencyToken>>),
    /// Roll back and end the transaction.
    Rollback(RpcReplyPort<Result<()>>),
    /// A statement of a [`Tx`] method, whose caller takes the answer
    /// itself (see `crate::handoff`); not for ractor code, which sends the
    /// variants above.
    #[doc(hidden)]
    Drive(Drive),
    /// A new transaction for a spare actor (internal).
    #[doc(hidden)]
    Adopt(Adopt),
    /// The actor's periodic look at an idle transaction (internal).
    #[doc(hidden)]
    Watch(Watch),
}

impl TxMsg {
    /// Answer `err` without running anything.
    pub(crate) fn refuse(self, err: Error) {
        match self {
            TxMsg::Read(_, reply) | TxMsg::LockForUpdate(_, reply) => drop(reply.send(Err(err))),
            TxMsg::Write(_, reply) => drop(reply.send(Err(err))),
            TxMsg::List(_, reply) => drop(reply.send(Err(err))),
            TxMsg::Commit(reply) | TxMsg::Rollback(reply) => drop(reply.send(Err(err))),
            TxMsg::CommitWithToken(reply) => drop(reply.send(Err(err))),
            TxMsg::Drive(Drive(job)) => match job {
                Job::Read(_, answer) | Job::LockForUpdate(_, answer) | Job::Write(_, answer) => {
                    answer.answer(Err(err))
                }
                Job::List(_, answer) => answer.answer(Err(err)),
                Job::Commit(answer) | Job::Rollback(answer) => answer.answer(Err(err)),
                Job::CommitWithToken(answer) => answer.answer(Err(err)),
            },
            // Dropping the transaction closes its connection.
            TxMsg::Adopt(_) | TxMsg::Watch(_) => {}
        }
    }

    /// Whether this message ends the transaction (COMMIT or ROLLBACK).
    pub(crate) fn ends_transaction(&self) -> bool {
        matches!(
            self,
            TxMsg::Commit(_) | TxMsg::CommitWithToken(_) | TxMsg::Rollback(_)
        )
    }
}

/// A statement sent by a [`Tx`] method (opaque).
#[doc(hidden)]
#[derive(Debug)]
pub struct Drive(pub(crate) Job);

/// The transaction actor's periodic look at its transaction (opaque): one
/// idle past the session's `idle_in_transaction_timeout`, or whose
/// connection the server closed, is ended.
#[doc(hidden)]
#[derive(Debug)]
pub struct Watch(pub(crate) ());

/// A transaction handed to a spare actor (opaque).
#[doc(hidden)]
pub struct Adopt(pub(crate) Box<TxState>);

impl std::fmt::Debug for Adopt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Adopt")
    }
}

/// What a [`Drive`] asks for, with the actor's end of its answer.
#[derive(Debug)]
pub(crate) enum Job {
    Read(ReadRequest, Starter<Record>),
    LockForUpdate(ReadRequest, Starter<Record>),
    Write(WriteRequest, Starter<Record>),
    List(ListRequest, Starter<Page>),
    Commit(Starter<()>),
    CommitWithToken(Starter<ConsistencyToken>),
    Rollback(Starter<()>),
}

/// A handle to one open transaction: cheap to clone, sends [`TxMsg`]s to the
/// transaction's actor.
///
/// When the last clone is dropped before [`Tx::commit`] or [`Tx::rollback`]
/// (an early return, a panic, a cancelled task) the transaction is rolled
/// back: it never stays open, and its connection never returns to the pool
/// inside it. A `Tx` kept idle past the session's
/// `idle_in_transaction_timeout` (before its first statement too) is rolled
/// back and its connection freed, with a WARN naming where it was begun;
/// its calls then answer [`ErrorKind::TxAborted`] ([`Tx::rollback`]: `Ok`).
///
/// ```no_run
/// # async fn demo(db: pgactor::Db, id: uuid::Uuid) -> pgactor::Result<()> {
/// use pgactor::{Record, TxOptions};
/// let tx = db.begin(TxOptions::default()).await?;
/// let stock = tx.lock_for_update("StockBalance", id).await?;
/// let quantity: i64 = stock.get("quantity")?;
/// if quantity > 0 {
///     tx.update("StockBalance", id, Record::new().with("quantity", quantity - 1)).await?;
/// }
/// tx.commit().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Tx {
    owner: Arc<Owner>,
}

/// Ends the transaction actor's part in this transaction when the last
/// handle goes. A transaction that ended (its COMMIT or ROLLBACK was
/// answered) leaves its actor to the spares, unless the actor was handed
/// out ([`Tx::actor`]): what ractor code holds must never reach another
/// transaction. Otherwise the actor stops: its `post_stop` rolls back, and
/// its state's drop guard closes the connection on paths where `post_stop`
/// does not run.
struct Owner {
    actor: ActorRef<TxMsg>,
    /// COMMIT or ROLLBACK was answered.
    ended: AtomicBool,
    /// [`Tx::actor`] was called.
    handed_out: AtomicBool,
    spares: Arc<SpareActors>,
}

impl std::fmt::Debug for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Owner").field("actor", &self.actor).finish()
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        let spare = self.ended.load(Ordering::Acquire) && !self.handed_out.load(Ordering::Acquire);
        if !(spare && self.spares.keep(&self.actor)) {
            self.actor.stop(Some("transaction handle dropped".into()));
        }
    }
}

impl Tx {
    pub(crate) fn new(actor: ActorRef<TxMsg>, spares: Arc<SpareActors>) -> Tx {
        Tx {
            owner: Arc::new(Owner {
                actor,
                ended: AtomicBool::new(false),
                handed_out: AtomicBool::new(false),
                spares,
            }),
        }
    }

    /// The transaction actor, to send [`TxMsg`]s from ractor code. Keep this
    /// `Tx` alive meanwhile: dropping the last one rolls back. The actor
    /// serves this transaction only; it stops when the last `Tx` goes.
    pub fn actor(&self) -> ActorRef<TxMsg> {
        self.owner.handed_out.store(true, Ordering::Release);
        self.owner.actor.clone()
    }

    /// Read one row by id on the transaction's connection.
    pub async fn read(&self, model: &str, id: impl Into<Value>) -> Result<Record> {
        let req = ReadRequest {
            model: model.into(),
            id: id.into(),
        };
        self.drive(|answer| Job::Read(req, answer)).await
    }

    /// List a page of rows on the transaction's connection.
    pub async fn list(&self, model: &str, query: Query) -> Result<Page> {
        let req = ListRequest {
            model: model.into(),
            query,
        };
        self.drive(|answer| Job::List(req, answer)).await
    }

    /// Read one row and lock it (`SELECT … FOR UPDATE`) until the
    /// transaction ends; [`ErrorKind::NotFound`] when absent.
    pub async fn lock_for_update(&self, model: &str, id: impl Into<Value>) -> Result<Record> {
        let req = ReadRequest {
            model: model.into(),
            id: id.into(),
        };
        self.drive(|answer| Job::LockForUpdate(req, answer)).await
    }

    /// Run a write inside the transaction.
    pub async fn write(&self, model: &str, op: WriteOp) -> Result<Record> {
        let req = WriteRequest {
            model: model.into(),
            op,
        };
        self.drive(|answer| Job::Write(req, answer)).await
    }

    write_shorthands!(" inside the transaction");

    /// Commit. A lost answer is [`ErrorKind::OutcomeUnknown`], never a guess;
    /// a serialization failure at commit is [`ErrorKind::Conflict`]. A
    /// commit whose future is dropped before `COMMIT` was sent (while queued
    /// behind another clone's statement) is not sent: the transaction rolls
    /// back.
    pub async fn commit(&self) -> Result<()> {
        self.end(Job::Commit).await
    }

    /// [`Tx::commit`], also answering a [`ConsistencyToken`]: reads through
    /// [`crate::Db::after`]`(token)` see this transaction's writes, even on a replica.
    pub async fn commit_with_token(&self) -> Result<ConsistencyToken> {
        self.end(Job::CommitWithToken).await
    }

    /// Roll back. `Ok` also when the transaction was already aborted (a
    /// failed statement, a lost connection, a statement that never ended,
    /// the idle bound): nothing of it is committed, which is what a
    /// rollback asks for. [`ErrorKind::TxClosed`] once it has ended by
    /// `commit()` or `rollback()`, or its actor is gone.
    pub async fn rollback(&self) -> Result<()> {
        self.end(Job::Rollback).await
    }

    /// Send a statement to the actor, which starts it, and take its answer
    /// here (see `crate::handoff`).
    async fn drive<T: Send + 'static>(&self, job: impl FnOnce(Starter<T>) -> Job) -> Result<T> {
        let (starter, answer) = handoff::pair();
        if self
            .owner
            .actor
            .send_message(TxMsg::Drive(Drive(job(starter))))
            .is_err()
        {
            return Err(closed());
        }
        answer.await
    }

    /// Send COMMIT or ROLLBACK the way of a statement. Once answered, the
    /// transaction has ended and its actor may serve another one when the
    /// last handle goes.
    async fn end<T: Send + 'static>(&self, job: impl FnOnce(Starter<T>) -> Job) -> Result<T> {
        let result = self.drive(job).await;
        self.owner.ended.store(true, Ordering::Release);
        result
    }
}

/// The answer to a caller whose transaction's actor stopped before the
/// statement ended: nothing of the transaction was committed.
pub(crate) fn stopped_while_answering() -> Error {
    Error::new(
        ErrorKind::TxAborted,
        "the transaction stopped while answering and was rolled back",
    )
}

/// The answer to a commit whose transaction's actor stopped after it sent
/// COMMIT.
pub(crate) fn in_doubt() -> Error {
    Error::new(
        ErrorKind::OutcomeUnknown,
        "the transaction stopped while committing; the commit may or may not have happened",
    )
}

pub(crate) fn closed() -> Error {
    Error::new(ErrorKind::TxClosed, "the transaction is finished")
}
