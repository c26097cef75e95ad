//! Coalesced reads by id ([`crate::OpenOptions::coalesce_reads`]): reads by
//! primary key of one model, outside transactions and without a
//! consistency token, that wait at the same moment are answered by one
//! statement, `SELECT … WHERE id = ANY($1)`, each caller getting its own
//! row or `NotFound`.
//!
//! Each model of the read pool has a batcher: at most
//! [`BATCHES_IN_FLIGHT`] statements of that model run at once. A read
//! that finds a statement slot free and nobody waiting runs its own
//! statement (today's `WHERE id = $1`) in its own task, holding the slot;
//! otherwise it joins the model's queue (at most [`MAX_QUEUED_READS`]; a
//! full queue means the read runs its own statement, never unbounded
//! memory). The batcher's task takes the first waiting read, waits for a
//! free slot, drains what is queued by then (at most [`MAX_READ_BATCH`])
//! and runs it as one statement on the normal read path (routing,
//! replica fallback, shared lanes), in a task of its own. No timer makes
//! a read wait for more reads to come.
//!
//! A queued read waits for a connection no longer than a read of its own
//! would: it may wait the pool's `wait_timeout` from the moment it
//! queued (its budget), its batch's turn included. A batch waits for a
//! slot only until its first read's budget ends, then goes out without
//! one (as that read would have, on its own); until the batch has its
//! connection, each read whose budget ends leaves with the pool's wait
//! timeout error, and a batch with no read left stops waiting.
//!
//! Rows come back as the driver's rows, shared by the callers of one id,
//! and each caller decodes its own (a record, or its typed row): one row
//! that fails to decode fails only its callers. A failure of the whole
//! statement is every caller's. A caller that stopped waiting (dropped,
//! timed out) is skipped when its batch is made, and a batch whose every
//! caller has gone by the time it has its connection is not sent.
//!
//! Batches are per model, so a statement blocked by a lock on one table
//! holds only that table's batches: reads of other models go on.

use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_postgres::types::{FromSql, ToSql, Type};
use tokio_postgres::Row;

use super::actor::Deadline;
use super::conn::Conn;
use super::counters::Counters;
use super::plan::{query, ById, Plan};
use crate::error::{Error, ErrorKind, Result};
use crate::sql::{Catalog, Statement, Statements};

/// The most reads one batch statement answers (distinct ids bound in its
/// one array parameter); reads queued beyond it go in the next batch.
pub const MAX_READ_BATCH: usize = 128;

/// The most reads of one model that wait for a batch; a read that finds
/// the queue full runs its own statement.
pub const MAX_QUEUED_READS: usize = 1024;

/// The most statements of one model's reads by id that run at once: a
/// read's own statement or a batch (besides batches whose first read
/// waited its pool's `wait_timeout` for one, which go out without).
pub const BATCHES_IN_FLIGHT: usize = 2;

/// What a batch needs of the pool it reads from.
pub(crate) trait ReadPath: Send + Sync + 'static {
    /// The statements of each model.
    fn catalog(&self) -> &Catalog;
    /// Where batches and their sizes are counted.
    fn counters(&self) -> &Counters;
    /// How long a read waits for a connection (the pool's `wait_timeout`).
    fn wait_timeout(&self) -> Duration;
    /// The error of a read that found no connection within it.
    fn wait_timed_out(&self) -> Error;
    /// Run `plan`, a batch of `model`'s reads, on the read path (as a
    /// read by id would run: routed, with replica fallback, on a shared
    /// lane when there are some) within `deadline`. `sending` is asked
    /// each time the batch has a connection (or a shared lane), just
    /// before its statement goes out: it says whether every caller has
    /// stopped waiting (then the statement is not sent).
    fn run_batch(
        self: Arc<Self>,
        model: Arc<str>,
        plan: IdsPlan,
        deadline: Deadline,
        sending: Box<dyn Fn() -> bool + Send + Sync>,
    ) -> impl Future<Output = Result<Vec<Row>>> + Send;
}

/// The batchers of one read pool, one per model, made at open.
pub(crate) struct Coalescer {
    batchers: HashMap<Box<str>, Batcher>,
}

/// One model's batcher.
struct Batcher {
    model: Arc<str>,
    /// Statements of this model running now ([`BATCHES_IN_FLIGHT`]).
    slots: Arc<Semaphore>,
    queue: mpsc::Sender<Waiter>,
    /// Taken by the first read that queues, which starts the draining task.
    drain: Mutex<Option<mpsc::Receiver<Waiter>>>,
    started: AtomicBool,
}

/// Where a waiting read's answer goes: its row (shared by the callers of
/// one id), `None` when its id has no row, or the batch's error.
type Reply = oneshot::Sender<Result<Option<Arc<Row>>>>;

/// A read waiting for its batch.
struct Waiter {
    id: crate::schema::Value,
    deadline: Deadline,
    /// When its wait for a connection ends: when it queued, plus the
    /// pool's `wait_timeout`.
    budget: Instant,
    answer: Reply,
}

/// How a read by id goes.
pub(crate) enum Entry {
    /// It runs its own statement, holding a slot of its model until done
    /// (nobody waited, a slot was free; or the queue is full: no slot).
    Alone(Option<OwnedSemaphorePermit>),
    /// It waits for its batch's answer.
    Queued(Queued),
}

/// A read waiting for its batch's answer.
pub(crate) struct Queued(oneshot::Receiver<Result<Option<Arc<Row>>>>);

impl Coalescer {
    /// A batcher for each model of `catalog`.
    pub(crate) fn new(models: impl Iterator<Item = String>) -> Coalescer {
        let batchers = models
            .map(|model| {
                let (queue, drain) = mpsc::channel(MAX_QUEUED_READS);
                let batcher = Batcher {
                    model: model.as_str().into(),
                    slots: Arc::new(Semaphore::new(BATCHES_IN_FLIGHT)),
                    queue,
                    drain: Mutex::new(Some(drain)),
                    started: AtomicBool::new(false),
                };
                (model.into_boxed_str(), batcher)
            })
            .collect();
        Coalescer { batchers }
    }

    /// How `read` goes: alone when its model has a free slot and nobody
    /// waiting, else queued for the next batch of its model.
    pub(crate) fn enter<C: ReadPath, O>(
        &self,
        path: &Arc<C>,
        read: &ById<'_, O>,
        deadline: Deadline,
    ) -> Entry {
        let Some(batcher) = self.batchers.get(read.model) else {
            return Entry::Alone(None);
        };
        if batcher.queue.capacity() == MAX_QUEUED_READS {
            if let Ok(slot) = batcher.slots.clone().try_acquire_owned() {
                return Entry::Alone(Some(slot));
            }
        }
        if !batcher.started.load(Ordering::Acquire) {
            batcher.start(path);
        }
        let (answer, answered) = oneshot::channel();
        let waiter = Waiter {
            id: read.id.clone(),
            deadline,
            // At most MAX_DURATION (a year) ahead: no overflow.
            budget: Instant::now() + path.wait_timeout(),
            answer,
        };
        // Counted before it can be taken, so the count never goes below 0.
        path.counters().batch_joined();
        match batcher.queue.try_send(waiter) {
            Ok(()) => Entry::Queued(Queued(answered)),
            Err(_) => {
                path.counters().batch_taken(1);
                Entry::Alone(None)
            }
        }
    }
}

impl Queued {
    /// The read's answer from its batch, within `deadline`.
    pub(crate) async fn answer<O>(self, read: &ById<'_, O>, deadline: Deadline) -> Result<O> {
        let answered = match deadline {
            Some(limit) => tokio::time::timeout(limit, self.0).await.map_err(|_| {
                Error::new(
                    ErrorKind::Timeout,
                    format!("the read ran past the {limit:?} query timeout waiting for its batch"),
                )
            })?,
            None => self.0.await,
        };
        match answered {
            Ok(row) => read.answer(row?.as_deref()),
            Err(_) => Err(Error::closed("the read's batch ended without an answer")),
        }
    }
}

impl Batcher {
    /// Start the task that drains this model's queue (once).
    fn start<C: ReadPath>(&self, path: &Arc<C>) {
        let taken = self.drain.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(queue) = taken {
            let drained = drain(
                Arc::downgrade(path),
                self.model.clone(),
                self.slots.clone(),
                queue,
            );
            tokio::spawn(drained);
            self.started.store(true, Ordering::Release);
        }
    }
}

/// Take the first waiting read, wait for a free slot (until that read's
/// budget ends: then without one), take what else is queued by then (up
/// to [`MAX_READ_BATCH`]) and run them as one batch. Ends when the pool
/// is gone.
async fn drain<C: ReadPath>(
    path: Weak<C>,
    model: Arc<str>,
    slots: Arc<Semaphore>,
    mut queue: mpsc::Receiver<Waiter>,
) {
    while let Some(first) = queue.recv().await {
        let slot = match tokio::time::timeout_at(first.budget, slots.clone().acquire_owned()).await
        {
            Ok(Ok(slot)) => Some(slot),
            // The slots are never closed.
            Ok(Err(_)) => return,
            // A read of its own would have taken a connection by now.
            Err(_) => None,
        };
        let mut batch = Vec::with_capacity(queue.len().min(MAX_READ_BATCH) + 1);
        batch.push(first);
        while batch.len() < MAX_READ_BATCH {
            match queue.try_recv() {
                Ok(waiter) => batch.push(waiter),
                Err(_) => break,
            }
        }
        let Some(path) = path.upgrade() else { return };
        path.counters().batch_taken(batch.len());
        batch.retain(|waiter| !waiter.answer.is_closed());
        if batch.is_empty() {
            continue;
        }
        // Boxed where it is made (12 KiB), not copied into the task.
        tokio::spawn(Box::pin(run_batch(path, model.clone(), batch, slot)));
    }
}

/// The callers of each distinct id of a batch.
struct Callers {
    ids: Vec<crate::schema::Value>,
    /// An id's place in `ids`, by its binary form (as the row answers it).
    by_key: HashMap<Vec<u8>, usize>,
    /// The callers of each id of `ids` still waiting for an answer.
    waiting: Mutex<Vec<Vec<Caller>>>,
    /// The earliest budget among them.
    first_budget: Instant,
    /// The batch has had a connection: its callers wait for its answer,
    /// no longer for a connection. Set and read within the batch's task.
    connected: AtomicBool,
}

/// A caller of a batch.
struct Caller {
    answer: Reply,
    /// See [`Waiter::budget`].
    budget: Instant,
}

impl Callers {
    /// `batch` grouped by id; a caller whose id does not encode as the
    /// key's type gets its error at once.
    fn of(batch: Vec<Waiter>, key_type: &Type) -> Callers {
        let mut ids = Vec::with_capacity(batch.len());
        let mut waiting: Vec<Vec<Caller>> = Vec::with_capacity(batch.len());
        let mut by_key = HashMap::with_capacity(batch.len());
        let mut first_budget = None;
        for waiter in batch {
            let mut key = BytesMut::new();
            if let Err(e) = waiter.id.to_sql(key_type, &mut key) {
                let refused = Error::invalid_input(format!("the id does not bind: {e}"));
                let _ = waiter.answer.send(Err(refused));
                continue;
            }
            let at = *by_key.entry(key.to_vec()).or_insert_with(|| {
                ids.push(waiter.id);
                waiting.push(Vec::new());
                ids.len() - 1
            });
            let budget = waiter.budget;
            first_budget = Some(first_budget.map_or(budget, |b: Instant| b.min(budget)));
            waiting[at].push(Caller {
                answer: waiter.answer,
                budget,
            });
        }
        Callers {
            ids,
            by_key,
            waiting: Mutex::new(waiting),
            first_budget: first_budget.unwrap_or_else(Instant::now),
            connected: AtomicBool::new(false),
        }
    }

    fn waiting(&self) -> MutexGuard<'_, Vec<Vec<Caller>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The batch has a connection and its statement is about to go out:
    /// its callers now wait for its answer. True when every caller has
    /// stopped waiting (then it is not sent).
    fn sending(&self) -> bool {
        self.connected.store(true, Ordering::Relaxed);
        self.waiting()
            .iter()
            .flatten()
            .all(|c| c.answer.is_closed())
    }

    /// Answer `timed_out` to each caller whose budget has passed by `now`,
    /// and forget those that stopped waiting: the earliest budget of the
    /// callers left, `None` when none is.
    fn expire(&self, now: Instant, timed_out: &Error) -> Option<Instant> {
        let mut waiting = self.waiting();
        for callers in waiting.iter_mut() {
            for left in callers.extract_if(.., |c| c.answer.is_closed() || c.budget <= now) {
                // A caller that stopped waiting does not take the answer.
                let _ = left.answer.send(Err(timed_out.duplicate()));
            }
        }
        waiting.iter().flatten().map(|c| c.budget).min()
    }

    /// `run`'s answer. Until the batch has a connection, each caller
    /// whose budget passes leaves with the pool's wait timeout error
    /// (`timed_out`, as a read of its own that waited as long), and once
    /// none is left `run` is dropped: the batch stops waiting.
    async fn within_budgets(
        &self,
        run: impl Future<Output = Result<Vec<Row>>>,
        timed_out: impl Fn() -> Error,
    ) -> Result<Vec<Row>> {
        let mut run = pin!(run);
        // Polled only while the batch waits for a connection.
        let mut budget = pin!(tokio::time::sleep_until(self.first_budget));
        poll_fn(|cx| {
            if let Poll::Ready(rows) = run.as_mut().poll(cx) {
                return Poll::Ready(rows);
            }
            while !self.connected.load(Ordering::Relaxed) && budget.as_mut().poll(cx).is_ready() {
                match self.expire(Instant::now(), &timed_out()) {
                    Some(next) => budget.as_mut().reset(next),
                    None => return Poll::Ready(Err(timed_out())),
                }
            }
            Poll::Pending
        })
        .await
    }

    /// Send each caller still waiting its row, `None` (no row of its id),
    /// or the batch's error.
    fn answer(&self, rows: Result<Vec<Row>>) {
        let callers = std::mem::take(&mut *self.waiting());
        let mut rows_of: Vec<Option<Arc<Row>>> = vec![None; callers.len()];
        let rows = match rows {
            Ok(rows) => rows,
            Err(err) => {
                for caller in callers.into_iter().flatten() {
                    let _ = caller.answer.send(Err(err.duplicate()));
                }
                return;
            }
        };
        for row in rows {
            // The id is the first column of every row statement.
            let at = row
                .try_get::<_, Raw>(0)
                .ok()
                .and_then(|raw| self.by_key.get(raw.0).copied());
            if let Some(at) = at {
                rows_of[at] = Some(Arc::new(row));
            }
        }
        for (callers, row) in callers.into_iter().zip(rows_of) {
            for caller in callers {
                let _ = caller.answer.send(Ok(row.clone()));
            }
        }
    }
}

/// Run one batch of `model`'s reads, holding `slot` (if it has one), and
/// answer each caller.
async fn run_batch<C: ReadPath>(
    path: Arc<C>,
    model: Arc<str>,
    batch: Vec<Waiter>,
    slot: Option<OwnedSemaphorePermit>,
) {
    let _slot = slot;
    // The batch runs as long as its most patient caller waits.
    let deadline = batch
        .iter()
        .map(|w| w.deadline)
        .try_fold(Duration::ZERO, |most, d| d.map(|d| d.max(most)));
    let table = match path.catalog().table(&model) {
        Ok(table) => table,
        Err(err) => {
            for waiter in batch {
                let _ = waiter.answer.send(Err(err.duplicate()));
            }
            return;
        }
    };
    let key_type = table.key_type();
    let mode = path.catalog().statements;
    let reads = batch.len();
    let callers = Arc::new(Callers::of(batch, &key_type));
    if callers.ids.is_empty() {
        return;
    }
    path.counters().read_batch(reads as u64);
    // One id: today's statement, already prepared on the connection.
    let stmt = match &callers.ids[..] {
        [one] => table.read(one.clone()),
        ids => table.read_many(ids.to_vec()),
    };
    let rows = match stmt {
        Ok(stmt) => {
            let plan = IdsPlan { stmt, mode };
            let watched = callers.clone();
            let sending = Box::new(move || watched.sending());
            let run = path.clone().run_batch(model, plan, deadline, sending);
            callers.within_budgets(run, || path.wait_timed_out()).await
        }
        Err(err) => Err(err),
    };
    callers.answer(rows);
}

/// A column's value in its binary form, whatever its type.
struct Raw<'a>(&'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(
        _: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Raw<'a>, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

/// The statement of one batch: the rows of its ids, as the driver answers
/// them (each caller decodes its own).
pub(crate) struct IdsPlan {
    stmt: Statement,
    mode: Statements,
}

impl Plan for IdsPlan {
    type Output = Vec<Row>;
    fn rows(rows: &Vec<Row>) -> u64 {
        rows.len() as u64
    }
    fn statement(&self) -> &str {
        &self.stmt.sql
    }
    fn writes(&self) -> bool {
        false
    }
    /// At most [`MAX_READ_BATCH`] rows by primary key: small, bounded cost.
    fn shares_connection(&self) -> bool {
        true
    }
    async fn fetch(&self, client: &Conn) -> Result<Vec<Row>> {
        query(client, &self.stmt, false, self.mode).await
    }
}
