//! The `Tx` handle: a transaction's methods, each a statement its actor
//! starts and the caller finishes.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use ractor::{ActorRef, DerivedActorRef};

use crate::error::{Error, Result};
use crate::messages::{
    aggregate_reads, batch_writes, field_reads, filter_writes, write_shorthands, BulkOp,
    BulkWriteRequest, ConsistencyToken, CountMany, CreateManyRequest, IncrementRequest,
    ListRequest, ReadRequest, UpsertRequest, Upserted, WriteOp, WriteRequest,
};
use crate::pool::{LockForUpdate, LockNext, LockNowait, Plan, Request, Rows};
use crate::raw::{raw_queries, FromRow, Row, Sql};
use crate::schema::{Filter, Page, Query, Record, Value};
use crate::sql::OnConflict;

use super::cursor::{self, CursorHost, CursorSlots};
use super::handoff::{self, Starter};
use super::msg::{Inbox, Job, TxMsg};
use super::spares::SpareActors;

/// A handle to one open transaction: cheap to clone, sends [`TxMsg`]s to the
/// transaction's actor.
///
/// When the last clone is dropped before [`Tx::commit`] or [`Tx::rollback`]
/// (an early return, a panic, a cancelled task) the transaction is rolled
/// back: it never stays open, and its connection never returns to the pool
/// inside it. A `Tx` kept idle past the session's
/// `idle_in_transaction_timeout` (before its first statement too) is rolled
/// back and its connection freed, with a WARN naming where it was begun;
/// its calls then answer [`crate::ErrorKind::TxAborted`] ([`Tx::rollback`]: `Ok`).
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
    actor: ActorRef<Inbox>,
    /// COMMIT or ROLLBACK was answered.
    ended: AtomicBool,
    /// [`Tx::actor`] was called.
    handed_out: AtomicBool,
    spares: Arc<SpareActors>,
    /// The cursors of the transaction's streams.
    cursors: CursorSlots,
    /// How many savepoints are open ([`Tx::with_savepoint`]), which names
    /// the next one.
    savepoints: AtomicU32,
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
    pub(crate) fn new(actor: ActorRef<Inbox>, spares: Arc<SpareActors>) -> Tx {
        Tx {
            owner: Arc::new(Owner {
                actor,
                ended: AtomicBool::new(false),
                handed_out: AtomicBool::new(false),
                spares,
                cursors: CursorSlots::default(),
                savepoints: AtomicU32::new(0),
            }),
        }
    }

    /// The transaction actor, to send [`TxMsg`]s from ractor code
    /// (`ractor::call!` works on it as on an `ActorRef`). Keep this `Tx`
    /// alive meanwhile: dropping the last one rolls back. The actor serves
    /// this transaction only; it stops when the last `Tx` goes.
    pub fn actor(&self) -> DerivedActorRef<TxMsg> {
        self.owner.handed_out.store(true, Ordering::Release);
        self.owner.actor.get_derived()
    }

    /// Read one row by id on the transaction's connection.
    pub async fn read(&self, model: &str, id: impl Into<Value>) -> Result<Record> {
        let req = ReadRequest {
            model: model.into(),
            id: id.into(),
        };
        self.run(req).await
    }

    /// List a page of rows on the transaction's connection.
    pub async fn list(&self, model: &str, query: Query) -> Result<Page> {
        let req = ListRequest {
            model: model.into(),
            query,
        };
        self.run(req).await
    }

    /// Read one row and lock it (`SELECT … FOR UPDATE`) until the
    /// transaction ends; [`crate::ErrorKind::NotFound`] when absent.
    pub async fn lock_for_update(&self, model: &str, id: impl Into<Value>) -> Result<Record> {
        let req = ReadRequest {
            model: model.into(),
            id: id.into(),
        };
        self.run(LockForUpdate(req)).await
    }

    /// [`Tx::lock_for_update`] without waiting: when another transaction
    /// holds the row, [`crate::ErrorKind::Conflict`] at once (SQLSTATE
    /// 55P03, not retried by [`crate::RetryPolicy`]) instead of waiting up
    /// to `lock_timeout`. The refusal aborts the transaction, as any failed
    /// statement does: run it in [`Tx::with_savepoint`] to go on after it.
    ///
    /// ```no_run
    /// # async fn demo(tx: pgactor::Tx, id: uuid::Uuid) -> pgactor::Result<()> {
    /// use pgactor::ErrorKind;
    /// match tx.with_savepoint(|tx| async move { tx.lock_for_update_nowait("StockBalance", id).await }).await {
    ///     Ok(row) => { let _ = row; /* ours until the transaction ends */ }
    ///     Err(err) if err.kind() == ErrorKind::Conflict => { /* busy: try another row */ }
    ///     Err(err) => return Err(err),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn lock_for_update_nowait(
        &self,
        model: &str,
        id: impl Into<Value>,
    ) -> Result<Record> {
        let req = ReadRequest {
            model: model.into(),
            id: id.into(),
        };
        self.run(LockNowait(req)).await
    }

    /// Take the next rows of a `List` that no other transaction holds, and
    /// lock them until this one ends (`… FOR UPDATE SKIP LOCKED`): the rows
    /// `query` matches, in its order, at most its limit (bounded as a
    /// List's page), skipping every row another transaction has locked
    /// instead of waiting for it. Workers that each take their next jobs
    /// this way never take one twice, and a worker's jobs go back to the
    /// queue when its transaction ends without deleting them (a crash, a
    /// rollback).
    ///
    /// ```no_run
    /// # async fn demo(db: pgactor::Db) -> pgactor::Result<()> {
    /// use pgactor::{Filter, Query, TxOptions};
    /// let tx = db.begin(TxOptions::default()).await?;
    /// let jobs = tx
    ///     .lock_next("Job", Query::new().filter(Filter::eq("state", "queued")).sort_asc("id").limit(10))
    ///     .await?;
    /// for job in &jobs {
    ///     // … do the work, then remove it from the queue:
    ///     tx.delete("Job", job.get::<uuid::Uuid>("id")?).await?;
    /// }
    /// tx.commit().await?;
    /// # Ok(()) }
    /// ```
    pub async fn lock_next(&self, model: &str, query: Query) -> Result<Vec<Record>> {
        let req = ListRequest {
            model: model.into(),
            query,
        };
        self.run(LockNext(req)).await
    }

    /// Run a write inside the transaction.
    pub async fn write(&self, model: &str, op: WriteOp) -> Result<Record> {
        let req = WriteRequest {
            model: model.into(),
            op,
        };
        self.run(req).await
    }

    write_shorthands!(" inside the transaction");

    filter_writes!(" inside the transaction", "pgactor::Tx");

    batch_writes!(" inside the transaction", "pgactor::Tx", true);

    aggregate_reads!(
        " on the transaction's connection (it sees the transaction's own writes)",
        "pgactor::Tx"
    );

    field_reads!(" on the transaction's connection", "pgactor::Tx");

    /// Run `req` on the transaction's connection (reads see its writes).
    async fn run_read<R: Request>(&self, req: R) -> Result<<R::Plan as Plan>::Output> {
        self.run(req).await
    }

    /// Run `req` on the transaction's connection (every statement of a
    /// transaction runs on the primary).
    async fn run_write<R: Request>(&self, req: R) -> Result<<R::Plan as Plan>::Output> {
        self.run(req).await
    }

    raw_queries!("on the transaction's connection (it reads the transaction's own writes)");

    /// Run a statement written by hand on the transaction's connection and
    /// answer how many rows it inserted, updated or deleted. A failed
    /// statement aborts the transaction, as any failed statement does.
    ///
    /// ```no_run
    /// # async fn demo(tx: pgactor::Tx) -> pgactor::Result<()> {
    /// use pgactor::Sql;
    /// tx.execute(Sql::new("UPDATE stock_balance SET quantity = quantity - $1 WHERE sku = $2").bind(1_i64).bind("SKU-1"))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn execute(&self, sql: impl Into<Sql>) -> Result<u64> {
        let sql = sql.into();
        self.drive(|answer| Job::raw(sql, answer)).await
    }

    /// Run a query written by hand in the transaction and answer its rows
    /// as they come: a cursor on the transaction's connection, read
    /// 1,000 rows at a time, so
    /// memory stays flat however many rows it answers, and the rows are
    /// those the transaction sees (its own writes too). Each FETCH is a
    /// statement of the transaction, in order with its others and under
    /// its query timeout; the transaction's other statements may run
    /// between two batches. `sql` must be a query (`SELECT`, `VALUES`,
    /// `TABLE`). At most 64 streams may be open in one transaction; a
    /// stream dropped before its end closes its cursor, and the
    /// transaction's end closes them all.
    ///
    /// ```no_run
    /// # async fn demo(tx: pgactor::Tx) -> pgactor::Result<()> {
    /// let mut rows = tx.stream_as::<(String, i64)>("SELECT sku, quantity FROM stock_balance").await?;
    /// while let Some(row) = rows.next().await {
    ///     let (sku, quantity) = row?;
    /// #   let _ = (sku, quantity);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn stream(&self, sql: impl Into<Sql>) -> Result<Rows> {
        cursor::declare(self.clone(), sql.into()).await
    }

    /// [`Tx::stream`], each row decoded into a `T` (a tuple, or a type
    /// that implements [`crate::FromRow`]).
    pub async fn stream_as<T: FromRow>(&self, sql: impl Into<Sql>) -> Result<Rows<T>> {
        Ok(self.stream(sql).await?.decoded())
    }

    /// The rows of a raw statement, on the transaction's connection.
    async fn rows(&self, sql: Sql) -> Result<Vec<Row>> {
        self.drive(|answer| Job::raw(sql, answer)).await
    }

    /// Run `body` as a nested transaction: inside a savepoint of this
    /// transaction, released when `body` returns `Ok`, rolled back to when
    /// it returns `Err`. Then what `body` did is undone, what ran before it
    /// stays, and the transaction goes on, even after a failed statement
    /// of `body` aborted it (a failure that closed its connection cannot
    /// be undone in part: the transaction then stays aborted). `body`'s
    /// error is the answer. Savepoints nest; run one at a time on a
    /// transaction (a transaction runs its statements in one order).
    ///
    /// ```no_run
    /// # async fn demo(tx: pgactor::Tx) -> pgactor::Result<()> {
    /// use pgactor::Record;
    /// tx.create("StockBalance", Record::new().with("sku", "A-1")).await?;
    /// // A duplicate sku fails the inner block only; A-1 is still created.
    /// let dup = tx
    ///     .with_savepoint(|tx| async move { tx.create("StockBalance", Record::new().with("sku", "A-1")).await })
    ///     .await;
    /// assert!(dup.is_err());
    /// tx.commit().await?;
    /// # Ok(()) }
    /// ```
    pub async fn with_savepoint<T, F, Fut>(&self, body: F) -> Result<T>
    where
        F: FnOnce(Tx) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let depth = Depth::enter(&self.owner.savepoints);
        let name = format!("pgactor_savepoint_{}", depth.0);
        self.execute(format!("SAVEPOINT {name}")).await?;
        match body(self.clone()).await {
            Ok(value) => {
                self.execute(format!("RELEASE SAVEPOINT {name}")).await?;
                Ok(value)
            }
            Err(err) => {
                // Failing, the transaction stays aborted, and its next
                // statement says so; the body's error is the answer.
                let _ = self.drive(|answer| Job::RollbackTo(name, answer)).await;
                Err(err)
            }
        }
    }

    /// Commit. A lost answer is [`crate::ErrorKind::OutcomeUnknown`], never a guess;
    /// a serialization failure at commit is [`crate::ErrorKind::Conflict`]. A
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
    /// rollback asks for. [`crate::ErrorKind::TxClosed`] once it has ended by
    /// `commit()` or `rollback()`, or its actor is gone.
    pub async fn rollback(&self) -> Result<()> {
        self.end(Job::Rollback).await
    }

    /// Run the statement of `req` on the transaction's connection.
    pub(crate) async fn run<R: Request>(&self, req: R) -> Result<<R::Plan as Plan>::Output> {
        self.drive(|answer| Job::statement(req, answer)).await
    }

    /// Send a statement to the actor, which starts it, and take its answer
    /// here (see `crate::handoff`).
    async fn drive<T: Send + 'static>(&self, job: impl FnOnce(Starter<T>) -> Job) -> Result<T> {
        let (starter, answer) = handoff::pair();
        if self
            .owner
            .actor
            .send_message(Inbox::Drive(job(starter)))
            .is_err()
        {
            return Err(Error::tx_closed());
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

impl CursorHost for Tx {
    fn rows(&self, sql: Sql) -> impl std::future::Future<Output = Result<Vec<Row>>> + Send {
        Tx::rows(self, sql)
    }
    fn slots(&self) -> &CursorSlots {
        &self.owner.cursors
    }
}

/// One level of [`Tx::with_savepoint`] nesting, left when dropped (also
/// when the body's future is dropped or panics).
struct Depth<'a>(u32, &'a AtomicU32);

impl<'a> Depth<'a> {
    fn enter(open: &'a AtomicU32) -> Depth<'a> {
        Depth(open.fetch_add(1, Ordering::AcqRel) + 1, open)
    }
}

impl Drop for Depth<'_> {
    fn drop(&mut self) {
        self.1.fetch_sub(1, Ordering::AcqRel);
    }
}
