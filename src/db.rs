//! The `Db` handle plain async code uses: each method runs in the caller's
//! task on the pool of its role.

use std::future::Future;
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{ActorRef, RpcReplyPort};

use crate::config::{Role, SessionSettings, DEFAULT_SHUTDOWN_GRACE};
use crate::error::{Error, ErrorKind, Result};
use crate::health::{ping_pools, Health};
use crate::listener::{ListenerContext, Notification};
use crate::messages::{
    aggregate_reads, batch_writes, field_reads, filter_writes, write_shorthands, BulkOp,
    BulkWriteRequest, ConsistencyToken, CountMany, CreateManyRequest, IncrementRequest,
    ListRequest, ReadRequest, UpsertRequest, Upserted, WriteOp, WriteRequest,
};
use crate::migrate::{auto_migrate, unreplayed_schema, MigrationReport};
use crate::pool::{
    open_stream, serve, InFlight, Plan, PoolContext, RawRequest, Request, Rows, RunOptions,
    WriteWithToken,
};
use crate::raw::{raw_queries, FromRow, Row, Sql};
use crate::schema::{Filter, Page, Query, Record, Registry, Value};
use crate::sql::OnConflict;
use crate::stats::Stats;
use crate::supervisor::{close_now, gather_stats, shutdown, DbMsg, Routes};
use crate::tx::{begin, SpareActors, Tx, TxOptions};
use tracing::Instrument;

/// A cheap, cloneable handle to an open adapter, for plain async code.
///
/// Every method runs in the caller's own task, directly on the pool of its
/// role; ractor actors send [`DbMsg`]s to [`Db::actor`] instead, which the
/// supervisor forwards to the pool actor of the message's role.
///
/// ```no_run
/// # async fn demo(db: pgactor::Db) -> pgactor::Result<()> {
/// use pgactor::{Filter, Query, Record};
/// let row = db.create("StockBalance", Record::new().with("sku", "A-1").with("quantity", 5_i64)).await?;
/// let id: uuid::Uuid = row.get("id")?;
/// let again = db.read("StockBalance", id).await?;
/// let page = db.list("StockBalance", Query::new().filter(Filter::gt("quantity", 0_i64))).await?;
/// db.update("StockBalance", id, Record::new().with("quantity", 4_i64)).await?;
/// db.delete("StockBalance", id).await?;
/// # let _ = (again, page); Ok(()) }
/// ```
#[derive(Clone)]
pub struct Db {
    inner: Arc<DbInner>,
    /// This handle's statement deadline ([`Db::with_query_timeout`]) and
    /// consistency token ([`Db::after`]).
    call: RunOptions,
    /// The pool raw queries run on ([`Db::replica`]).
    queries_on: Role,
}

pub(crate) struct DbInner {
    pub(crate) supervisor: ActorRef<DbMsg>,
    pub(crate) routes: Arc<Routes>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) session: Arc<SessionSettings>,
    /// The write pool's context, then the read pool's: what the pool
    /// actors serve messages with, and what [`Db`] runs operations on.
    pub(crate) pools: [Arc<PoolContext>; 2],
    /// Operations running now, for graceful shutdown.
    pub(crate) in_flight: Arc<InFlight>,
    /// The LISTEN/NOTIFY listener's context: its bounds and figures.
    pub(crate) listener: Arc<ListenerContext>,
    /// Transaction actors ready for the next transaction.
    pub(crate) spares: Arc<SpareActors>,
}

impl DbInner {
    /// The context of the pool of `role`.
    fn context(&self, role: Role) -> &Arc<PoolContext> {
        match role {
            Role::Write => &self.pools[0],
            Role::Read => &self.pools[1],
        }
    }

    fn stats(&self) -> Stats {
        gather_stats(
            &self.context(Role::Write).pool,
            self.context(Role::Read),
            &self.listener,
        )
    }
}

/// The last handle gone: nobody can send to the adapter any more, so its
/// actors stop and its connections close (open transactions roll back).
/// The pools are closed here too, not only by the supervisor: one that was
/// killed, or never gets to the stop, must not leave them open.
impl Drop for DbInner {
    fn drop(&mut self) {
        close_now(&self.routes, &self.pools);
        self.supervisor.stop(Some("every Db handle dropped".into()));
    }
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("write", &self.inner.context(Role::Write).pool.target)
            .field("schema", &self.inner.session.schema)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// A handle to the adapter `inner` opened, with its `call` defaults.
    pub(crate) fn new(call: RunOptions, inner: DbInner) -> Db {
        Db {
            inner: Arc::new(inner),
            call,
            queries_on: Role::Write,
        }
    }

    /// Read one row by id from the read pool; [`ErrorKind::NotFound`] when absent.
    pub async fn read(&self, model: &str, id: impl Into<Value>) -> Result<Record> {
        let req = ReadRequest {
            model: model.into(),
            id: id.into(),
        };
        self.run(Role::Read, req).await
    }

    /// List one page of rows from the read pool, with the total count.
    pub async fn list(&self, model: &str, query: Query) -> Result<Page> {
        let req = ListRequest {
            model: model.into(),
            query,
        };
        self.run(Role::Read, req).await
    }

    /// Run a write on the write pool and answer the row it touched.
    pub async fn write(&self, model: &str, op: WriteOp) -> Result<Record> {
        let req = WriteRequest {
            model: model.into(),
            op,
        };
        self.run(Role::Write, req).await
    }

    /// [`Db::write`], also answering a [`ConsistencyToken`]: the primary's
    /// WAL position after the write committed. Reads through
    /// [`Db::after`]`(token)` then see the write, even on a replica.
    pub async fn write_with_token(
        &self,
        model: &str,
        op: WriteOp,
    ) -> Result<(Record, ConsistencyToken)> {
        let req = WriteRequest {
            model: model.into(),
            op,
        };
        self.run(Role::Write, WriteWithToken(req)).await
    }

    /// A handle whose reads see every write up to `token` (read-your-writes
    /// without a transaction): they run on the replica only once the
    /// replica has replayed that far (as of its last probe), else on the
    /// primary. They never wait for the replica.
    ///
    /// ```no_run
    /// # async fn demo(db: pgactor::Db) -> pgactor::Result<()> {
    /// use pgactor::{Record, WriteOp};
    /// let (row, token) = db
    ///     .write_with_token("StockBalance", WriteOp::Create(Record::new().with("sku", "A-1")))
    ///     .await?;
    /// let id: uuid::Uuid = row.get("id")?;
    /// let fresh = db.after(token).read("StockBalance", id).await?; // never NotFound
    /// # let _ = fresh; Ok(()) }
    /// ```
    pub fn after(&self, token: ConsistencyToken) -> Db {
        Db {
            inner: self.inner.clone(),
            call: RunOptions {
                after: Some(self.call.after.map_or(token, |t| t.max(token))),
                ..self.call.clone()
            },
            queries_on: self.queries_on,
        }
    }

    write_shorthands!("");

    filter_writes!(" on the primary", "pgactor::Db");

    batch_writes!(" on the primary", "pgactor::Db", false);

    aggregate_reads!(
        " on the read pool (routed, lag-bounded and token-aware as `Db::list`)",
        "pgactor::Db"
    );

    field_reads!(" from the read pool", "pgactor::Db");

    /// Run `req` on the read pool.
    async fn run_read<R: Request>(&self, req: R) -> Result<<R::Plan as Plan>::Output> {
        self.run(Role::Read, req).await
    }

    /// Run `req` on the write pool.
    async fn run_write<R: Request>(&self, req: R) -> Result<<R::Plan as Plan>::Output> {
        self.run(Role::Write, req).await
    }

    raw_queries!("on the primary (the read pool through [`Db::replica`])");

    /// Run a statement written by hand on the primary (the read pool
    /// through [`Db::replica`]) and answer how many rows it inserted,
    /// updated or deleted (for a `SELECT`: how many it answered, which are
    /// dropped as they come).
    ///
    /// ```no_run
    /// # async fn demo(db: pgactor::Db) -> pgactor::Result<()> {
    /// use pgactor::Sql;
    /// let emptied = db
    ///     .execute(Sql::new("UPDATE stock_balance SET quantity = 0 WHERE sku LIKE $1").bind("TEST-%"))
    ///     .await?;
    /// # let _ = emptied; Ok(()) }
    /// ```
    pub async fn execute(&self, sql: impl Into<Sql>) -> Result<u64> {
        self.run(self.queries_on, RawRequest::new(sql.into(), self.writes()))
            .await
    }

    /// A handle whose raw queries ([`Db::query`], [`Db::query_as`],
    /// [`Db::execute`] and their kin) run on the read pool: on the replica
    /// when one is configured, with the same fallback, lag bound and
    /// consistency tokens as [`Db::read`]; else on read-only sessions of
    /// the primary. A statement that writes is refused there by the server.
    /// Its other operations are this handle's.
    ///
    /// ```no_run
    /// # async fn demo(db: pgactor::Db) -> pgactor::Result<()> {
    /// let (skus,): (i64,) = db.replica().query_one_as("SELECT count(*) FROM stock_balance").await?;
    /// # let _ = skus; Ok(()) }
    /// ```
    pub fn replica(&self) -> Db {
        Db {
            inner: self.inner.clone(),
            call: self.call.clone(),
            queries_on: Role::Read,
        }
    }

    /// Run a statement written by hand on the primary (the read pool
    /// through [`Db::replica`]) and answer its rows as they come, for
    /// answers too large to hold at once: memory stays flat however many
    /// rows there are, and a slow consumer slows the server's sending, not
    /// the heap. See [`Rows`] for what it holds and how long.
    ///
    /// ```no_run
    /// # async fn demo(db: pgactor::Db) -> pgactor::Result<()> {
    /// let mut rows = db.replica().stream("SELECT sku, quantity FROM stock_balance").await?;
    /// while let Some(row) = rows.next().await {
    ///     let sku: String = pgactor::column(&row?, "sku")?;
    /// #   let _ = sku;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn stream(&self, sql: impl Into<Sql>) -> Result<Rows> {
        if self.inner.routes.is_closing() {
            return Err(Error::shut_down("the operation was"));
        }
        let ctx = self.inner.context(self.queries_on);
        let running = ctx.in_flight.start();
        open_stream(ctx, sql.into(), self.writes(), &self.here(), running).await
    }

    /// [`Db::stream`], each row decoded into a `T` (a tuple, or a type
    /// that implements [`crate::FromRow`]).
    pub async fn stream_as<T: FromRow>(&self, sql: impl Into<Sql>) -> Result<Rows<T>> {
        Ok(self.stream(sql).await?.decoded())
    }

    /// The rows of a raw statement, on the pool raw queries run on.
    async fn rows(&self, sql: Sql) -> Result<Vec<Row>> {
        self.run(self.queries_on, RawRequest::new(sql, self.writes()))
            .await
    }

    /// Whether this handle's raw queries run where they may change data.
    fn writes(&self) -> bool {
        self.queries_on == Role::Write
    }

    /// Start a transaction: its actor holds one write connection (on the
    /// primary, even with a replica configured) until [`Tx::commit`] or
    /// [`Tx::rollback`], or until the last [`Tx`] clone is dropped, which
    /// rolls back. `BEGIN` goes out with the first statement, in the same
    /// round trip when that statement only reads; a failed `BEGIN` fails
    /// that statement.
    ///
    /// A transaction left idle past the session's
    /// `idle_in_transaction_timeout` (60 s by default), `BEGIN` sent or
    /// not, is rolled back and its connection freed; a WARN on `pgactor.tx`
    /// names this call's file and line, and the `Tx` answers
    /// [`ErrorKind::TxAborted`] from then on (see docs/transactions.md).
    #[track_caller]
    pub fn begin(&self, options: TxOptions) -> impl Future<Output = Result<Tx>> + '_ {
        self.begin_at(options, Location::caller())
    }

    /// [`Db::begin`] on behalf of the code at `begun_at`.
    async fn begin_at(
        &self,
        options: TxOptions,
        begun_at: &'static Location<'static>,
    ) -> Result<Tx> {
        // In this task: the supervisor would only spawn a task to do it.
        if self.inner.routes.is_closing() {
            return Err(Error::shut_down("BEGIN was"));
        }
        let ctx = self.inner.context(Role::Write);
        let supervisor = self.inner.supervisor.get_cell();
        // This handle's deadline (none included) is the transaction's
        // unless the options give one; its span is the caller's child.
        let call = self.here();
        begin(
            ctx,
            &self.inner.spares,
            options,
            &call,
            supervisor,
            Some(begun_at),
        )
        .await
    }

    /// Deliver every notification on `channel` to the `subscriber` actor,
    /// as [`Notification::Message`], from now until [`Db::unsubscribe`],
    /// the adapter closes or the actor stops.
    ///
    /// Answers once `LISTEN` is in force: every notification committed
    /// after that is delivered, in commit order, unless the listener's
    /// connection is lost. Then the listener reconnects (with backoff),
    /// LISTENs again, and sends the subscriber [`Notification::Gap`]:
    /// whatever was sent meanwhile may be lost.
    ///
    /// The first subscribe opens the adapter's one listener connection to
    /// the primary (never a pooled one), with the session's
    /// `application_name`. While that connection is down, a subscribe
    /// waits for one connection attempt and answers
    /// [`ErrorKind::Unavailable`] when it fails (the subscription is not
    /// kept). `channel` is a plain identifier (`[A-Za-z_][A-Za-z0-9_$]*`),
    /// case-sensitive as `pg_notify`'s argument is; anything else is
    /// [`ErrorKind::InvalidInput`] and sends no SQL. Subscribing twice is
    /// one subscription. A subscribe to a channel beyond
    /// [`crate::OpenOptions::max_channels`] answers [`ErrorKind::Unavailable`].
    ///
    /// Waits at most twice the write pool's `connect_timeout` plus 1 s
    /// (21 s by default) for the listener, which takes subscribes one at a
    /// time; past that it answers [`ErrorKind::Timeout`] and the
    /// subscription is not kept (the listener skips it, or undoes it if
    /// its LISTEN was under way).
    ///
    /// See [`Notification`] for a subscriber actor.
    pub async fn subscribe(&self, channel: &str, subscriber: ActorRef<Notification>) -> Result<()> {
        let channel = channel.to_owned();
        self.ask_listener(
            |reply| DbMsg::Subscribe(channel, subscriber, reply),
            "SUBSCRIBE",
            "the subscription is not kept",
        )
        .await
    }

    /// Stop delivering `channel`'s notifications to `subscriber` (its
    /// queued ones still arrive); `UNLISTEN` when no subscriber is left.
    /// Unsubscribing what was not subscribed is not an error. Waits for the
    /// listener as long as [`Db::subscribe`] does; past that it answers
    /// [`ErrorKind::Timeout`], and the listener still unsubscribes when it
    /// gets to it.
    pub async fn unsubscribe(
        &self,
        channel: &str,
        subscriber: &ActorRef<Notification>,
    ) -> Result<()> {
        let (channel, subscriber) = (channel.to_owned(), subscriber.clone());
        self.ask_listener(
            |reply| DbMsg::Unsubscribe(channel, subscriber, reply),
            "UNSUBSCRIBE",
            "the listener still unsubscribes when it gets to it",
        )
        .await
    }

    /// Send `msg` to the supervisor (which hands it to the listener) and
    /// await the answer, at most the listener's answer bound; `what` names
    /// the message, `after` says what a timeout leaves behind.
    async fn ask_listener(
        &self,
        msg: impl FnOnce(RpcReplyPort<Result<()>>) -> DbMsg,
        what: &str,
        after: &str,
    ) -> Result<()> {
        let within = self.inner.listener.answer_within();
        match self.inner.supervisor.call(msg, Some(within)).await {
            Ok(CallResult::Success(result)) => result,
            Ok(CallResult::Timeout) => Err(Error::new(
                ErrorKind::Timeout,
                format!("{what} was not answered within {within:?} (the listener is busy or its connection slow); {after}"),
            )),
            Ok(_) | Err(_) => Err(Error::shut_down(&format!("{what} was"))),
        }
    }

    /// Run `body` in a transaction: commit when it returns `Ok`, roll back
    /// when it returns `Err` or panics (the panic then goes on unwinding).
    ///
    /// With [`TxOptions::retry`] set, a run that fails with
    /// [`ErrorKind::Conflict`] (serialization failure, deadlock) or
    /// [`ErrorKind::Unavailable`] is rolled back and `body` runs again after
    /// a backoff, up to `max_attempts` runs; nothing else is retried, and an
    /// [`ErrorKind::OutcomeUnknown`] commit never is.
    ///
    /// ```no_run
    /// # async fn demo(db: pgactor::Db, from: uuid::Uuid, to: uuid::Uuid) -> pgactor::Result<()> {
    /// use pgactor::{IsolationLevel, Record, RetryPolicy, TxOptions};
    /// let opts = TxOptions {
    ///     isolation: IsolationLevel::Serializable,
    ///     retry: RetryPolicy::attempts(5),
    ///     ..TxOptions::default()
    /// };
    /// db.with_transaction(opts, |tx| async move {
    ///     let a: i64 = tx.read("Account", from).await?.get("balance")?;
    ///     let b: i64 = tx.read("Account", to).await?.get("balance")?;
    ///     tx.update("Account", from, Record::new().with("balance", a - 10)).await?;
    ///     tx.update("Account", to, Record::new().with("balance", b + 10)).await?;
    ///     Ok(())
    /// })
    /// .await
    /// # }
    /// ```
    #[track_caller]
    pub fn with_transaction<'a, T, F, Fut>(
        &'a self,
        options: TxOptions,
        mut body: F,
    ) -> impl Future<Output = Result<T>> + 'a
    where
        F: FnMut(Tx) -> Fut + 'a,
        Fut: Future<Output = Result<T>> + 'a,
        T: 'a,
    {
        // Taken here: inside the future it would name this file.
        let begun_at = Location::caller();
        async move {
            let retry = options.retry;
            let mut attempt = 1;
            loop {
                let outcome = async {
                    let tx = self.begin_at(options.clone(), begun_at).await?;
                    match body(tx.clone()).await {
                        Ok(value) => tx.commit().await.map(|()| value),
                        Err(err) => {
                            // The body's error is the one to report; a failed
                            // rollback leaves the drop guard to close the connection.
                            let _ = tx.rollback().await;
                            Err(err)
                        }
                    }
                }
                .await;
                match outcome {
                    Err(err) if retry.retries(&err, attempt) => {
                        tracing::debug!(target: "pgactor.tx", attempt, error = %err, "transaction conflict; running it again");
                        tokio::time::sleep(retry.backoff(attempt)).await;
                        attempt += 1;
                    }
                    other => return other,
                }
            }
        }
    }

    /// A handle whose operations use `timeout` as their statement deadline
    /// instead of the session's `query_timeout` (`Duration::ZERO`: none).
    /// Past it the statement is cancelled on the server and the caller gets
    /// [`ErrorKind::Timeout`].
    pub fn with_query_timeout(&self, timeout: Duration) -> Db {
        Db {
            inner: self.inner.clone(),
            call: RunOptions {
                deadline: Some(timeout).filter(|d| !d.is_zero()),
                ..self.call.clone()
            },
            queries_on: self.queries_on,
        }
    }

    /// The managed session settings as the server reports them on a
    /// connection of the pool of `role` (`current_setting`, e.g.
    /// `("statement_timeout", "30s")`): what is really in force, for checks
    /// and diagnostics. Read-pool sessions report
    /// `default_transaction_read_only = on`.
    pub async fn settings_in_force(&self, role: Role) -> Result<Vec<(String, String)>> {
        self.inner.context(role).pool.settings_in_force().await
    }

    /// One round trip on each pool (the primary, and the replica or the
    /// primary again), both at once, each within `within`: for a
    /// service's `/health`. Each answers its latency and, when it did not
    /// answer in time or failed, why. A ping takes a connection like any
    /// operation (opening one if none is idle), so a pool saturated for
    /// longer than `within` reports down; a statement past `within` is
    /// cancelled on the server. As a message: [`DbMsg::Ping`].
    ///
    /// ```no_run
    /// # async fn demo(db: pgactor::Db) {
    /// let health = db.ping(std::time::Duration::from_secs(2)).await;
    /// if !health.is_up() {
    ///     eprintln!("write: {:?}, read: {:?}", health.write.error, health.read.error);
    /// }
    /// println!("primary answered in {:?}", health.write.latency);
    /// # }
    /// ```
    pub async fn ping(&self, within: Duration) -> Health {
        let write = &self.inner.context(Role::Write).pool;
        ping_pools(write, self.inner.context(Role::Read), within).await
    }

    /// The pools' statistics now: open, in use, idle and waiting
    /// connections, waits, closings by reason, open transactions.
    ///
    /// ```no_run
    /// # fn demo(db: pgactor::Db) {
    /// let stats = db.stats();
    /// println!("write pool: {} of {} in use", stats.write.in_use, stats.write.max_open);
    /// # }
    /// ```
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// [`Db::stats`] while the adapter is open, `None` once it is closing
    /// or gone, for a task that must not keep it open.
    #[cfg(feature = "metrics")]
    pub(crate) fn stats_while_open(&self) -> impl Fn() -> Option<Stats> + Send + 'static {
        let inner = Arc::downgrade(&self.inner);
        move || {
            let inner = inner.upgrade().filter(|i| !i.routes.is_closing())?;
            Some(inner.stats())
        }
    }

    /// Run AutoMigrate now, on the write pool (also when it is off at open).
    pub async fn migrate(&self) -> Result<MigrationReport> {
        let mut client = self.inner.context(Role::Write).pool.get().await?;
        let report = auto_migrate(&mut client, &self.inner.session, &self.inner.registry).await?;
        if let Some(set) = &self.inner.context(Role::Read).replica {
            let pools = set.replicas().iter().map(|r| &r.pool);
            let unreplayed = unreplayed_schema(&client, &report, pools).await?;
            for (replica, token) in set.replicas().iter().zip(unreplayed) {
                if let Some(token) = token {
                    replica.watch.schema_changed(token);
                }
            }
        }
        Ok(report)
    }

    /// The supervisor actor: send it [`DbMsg`]s from ractor code. Keep a
    /// `Db` alive meanwhile: when the last one is dropped the adapter stops.
    /// Stopping or killing this actor closes the adapter: every later call
    /// on any `Db` answers [`ErrorKind::Closed`].
    pub fn actor(&self) -> ActorRef<DbMsg> {
        self.inner.supervisor.clone()
    }

    /// The models this adapter was opened with.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The session settings every connection gets, defaults filled in.
    pub fn session(&self) -> &SessionSettings {
        &self.inner.session
    }

    /// Shut down gracefully within [`DEFAULT_SHUTDOWN_GRACE`]; see
    /// [`Db::close_within`].
    pub async fn close(&self) {
        self.close_within(DEFAULT_SHUTDOWN_GRACE).await;
    }

    /// Shut down gracefully: new operations and transactions are refused at
    /// once ([`ErrorKind::Closed`]); operations already running and open
    /// transactions get `grace` to finish (a transaction can still commit);
    /// then the transactions still open are rolled back, every connection
    /// is closed and the actors stop. Later calls on any clone of this
    /// handle fail with [`ErrorKind::Closed`].
    pub async fn close_within(&self, grace: Duration) {
        let inner = &self.inner;
        shutdown(
            &inner.routes,
            &inner.in_flight,
            &inner.context(Role::Write).pool,
            &inner.supervisor,
            grace,
        )
        .await;
    }

    /// This handle's call options, with the caller's span as the parent of
    /// the operation's span.
    fn here(&self) -> RunOptions {
        RunOptions {
            parent: Some(tracing::Span::current()),
            ..self.call.clone()
        }
    }

    /// Run one autocommit operation on the pool of `role`, in the
    /// caller's own task: what the pool actor's spawned task does for a
    /// message, without the task hand-offs that cost a caller that is
    /// already a task of its own client CPU on every operation (measured:
    /// a spawned task and a channel took a read by id from 12-13 to 19 us
    /// at one caller). The future holds its connection until it is polled
    /// to its end or dropped, like any driver's future; dropped
    /// mid-statement, its statement is cancelled on the server and the
    /// connection goes back only once idle again (see `pool_actor::Busy`).
    pub(crate) async fn run<R: Request>(
        &self,
        role: Role,
        req: R,
    ) -> Result<<R::Plan as Plan>::Output> {
        if self.inner.routes.is_closing() {
            return Err(Error::shut_down("the operation was"));
        }
        let ctx = self.inner.context(role);
        let call = self.here();
        let op = ctx.operation(&call, req.operation(), req.model());
        let _running = ctx.in_flight.start();
        let span = op.span.clone();
        serve(ctx, &op, req.plan(&ctx.catalog), &call, &|| false)
            .instrument(span)
            .await
    }
}
