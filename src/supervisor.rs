//! The supervisor: owns one pool actor per role, restarts a failed one, and
//! routes `DbMsg`s to the right pool; owns the LISTEN/NOTIFY listener too,
//! started on the first subscribe.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use ractor::{
    Actor, ActorProcessingErr, ActorRef, DerivedActorRef, RpcReplyPort, SupervisionEvent,
};

use crate::config::Role;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::health::{ping_pools, Health};
use crate::listener::{Listener, ListenerContext, ListenerMsg, Notification};
use crate::messages::{
    AggregateRequest, BulkWriteRequest, Call, ConsistencyToken, CountMany, CountRequest,
    CreateManyRequest, ExistsRequest, IncrementRequest, ListRequest, ReadFieldsRequest,
    ReadRequest, UpsertRequest, Upserted, WriteRequest,
};
use crate::pool::{
    AsType, ConnectionPool, Deadline, Decoded, InFlight, PoolActor, PoolContext, PoolMsg, RowsMsg,
    RunOptions, TypedRequest,
};
use crate::raw::{FromRow, Row, Sql};
use crate::schema::{Page, Record};
use crate::stats::Stats;
use crate::tx::{begin, SpareActors, Tx, TxOptions};

/// The messages the adapter's supervisor takes. Send them from any ractor
/// actor with `call!`, or use the [`crate::Db`] handle, whose methods do the
/// same work in the caller's own task, without a message.
///
/// `Read` and `List` run on the read pool (the replica when one is
/// configured); writes run on the write pool. Each carries a [`Call`]: its
/// consistency token, its own query timeout, and the span its operation's
/// span nests under ([`Call::here`]).
///
/// ```no_run
/// # async fn demo(db: pgactor::Db) -> Result<(), Box<dyn std::error::Error>> {
/// use pgactor::{Call, DbMsg, ReadRequest};
/// let req = ReadRequest { model: "StockBalance".into(), id: uuid::Uuid::nil().into() };
/// let row = ractor::call!(db.actor(), DbMsg::Read, req, Call::here())?;
/// # let _ = row; Ok(()) }
/// ```
#[derive(Debug)]
pub enum DbMsg {
    /// See [`ReadRequest`] ([`crate::Db::read`]).
    Read(ReadRequest, Call, RpcReplyPort<Result<Record>>),
    /// See [`ListRequest`] ([`crate::Db::list`]).
    List(ListRequest, Call, RpcReplyPort<Result<Page>>),
    /// See [`WriteRequest`] ([`crate::Db::write`]).
    Write(WriteRequest, Call, RpcReplyPort<Result<Record>>),
    /// A write that also answers the primary's WAL position after it
    /// committed, for later reads' [`Call::after`]
    /// ([`crate::Db::write_with_token`]).
    WriteWithToken(
        WriteRequest,
        Call,
        RpcReplyPort<Result<(Record, ConsistencyToken)>>,
    ),
    /// Run a statement written by hand and answer its rows
    /// ([`crate::Db::query`]): on the write pool, or on the read pool when
    /// the [`Call`] says [`Call::on_replica`].
    Query(Sql, Call, RpcReplyPort<Result<Vec<Row>>>),
    /// Run a statement written by hand and answer how many rows it changed
    /// ([`crate::Db::execute`]); routed as [`DbMsg::Query`].
    Execute(Sql, Call, RpcReplyPort<Result<u64>>),
    /// Run a query written by hand and send its rows to an actor, a batch
    /// at a time, each batch once the actor asks for it (see [`RowsMsg`]),
    /// then [`RowsMsg::End`]; routed as [`DbMsg::Query`]. Any actor whose
    /// message type converts from `RowsMsg` takes them, through
    /// `myself.get_derived()`.
    Stream(Sql, Call, DerivedActorRef<RowsMsg>),
    /// An operation whose answer has a type of its own: a typed entity's,
    /// built by [`DbMsg::read_as`], [`DbMsg::list_as`], [`DbMsg::create_as`],
    /// [`DbMsg::update_as`], [`DbMsg::delete_as`], [`DbMsg::update_where_as`],
    /// [`DbMsg::delete_where_as`], [`DbMsg::increment_as`],
    /// [`DbMsg::restore_as`], [`DbMsg::hard_delete_as`] and
    /// [`DbMsg::hard_delete_where_as`], and the writes
    /// by filter and increments, built by [`DbMsg::bulk_write`] and
    /// [`DbMsg::increment`], and the aggregate reads, built by
    /// [`DbMsg::count`], [`DbMsg::exists`], [`DbMsg::aggregate`] and
    /// [`DbMsg::aggregate_as`] (for `call!`).
    Typed(TypedRequest, Call),
    /// Start a transaction: answers a [`Tx`] whose actor holds one write
    /// connection until commit or rollback ([`crate::Db::begin`]). The
    /// [`Call`]'s span is the parent of the transaction's span, and its
    /// query timeout the transaction's when [`TxOptions::query_timeout`]
    /// is `None`; its token is not used (a transaction runs on the primary).
    Begin(TxOptions, Call, RpcReplyPort<Result<Tx>>),
    /// The pools' statistics now (answered at once, no I/O).
    Stats(RpcReplyPort<Stats>),
    /// One round trip on each pool, each within the duration: see
    /// [`crate::Db::ping`]. Answered from a task of its own, so the
    /// supervisor's mailbox keeps flowing while a pool is slow.
    Ping(std::time::Duration, RpcReplyPort<Health>),
    /// Shut down gracefully: refuse new work, give running operations and
    /// open transactions this long, then roll back and close everything.
    /// Answers when done.
    Shutdown(std::time::Duration, RpcReplyPort<()>),
    /// Deliver the notifications of a channel to an actor: see
    /// [`crate::Db::subscribe`].
    Subscribe(String, ActorRef<Notification>, RpcReplyPort<Result<()>>),
    /// Stop delivering a channel's notifications to an actor: see
    /// [`crate::Db::unsubscribe`].
    Unsubscribe(String, ActorRef<Notification>, RpcReplyPort<Result<()>>),
}

/// The writes by filter and the increment as messages, for `call!`: run on
/// the write pool as [`DbMsg::Write`] is (a lost answer is
/// [`crate::ErrorKind::OutcomeUnknown`]).
///
/// ```no_run
/// # async fn demo(db: pgactor::Db) -> Result<(), Box<dyn std::error::Error>> {
/// use pgactor::{BulkOp, BulkWriteRequest, Call, DbMsg, Filter};
/// let req = BulkWriteRequest {
///     model: "StockBalance".into(),
///     filter: Filter::eq("quantity", 0_i64),
///     op: BulkOp::Delete,
/// };
/// let deleted = ractor::call!(db.actor(), DbMsg::bulk_write, req, Call::here())??;
/// # let _ = deleted; Ok(()) }
/// ```
impl DbMsg {
    /// [`crate::Db::update_where`], [`crate::Db::delete_where`] or
    /// [`crate::Db::hard_delete_where`] as a message; answers how many rows
    /// changed.
    pub fn bulk_write(
        req: BulkWriteRequest,
        call: Call,
        reply: RpcReplyPort<Result<u64>>,
    ) -> DbMsg {
        DbMsg::Typed(TypedRequest::new(Role::Write, req, reply), call)
    }

    /// [`crate::Db::increment`] as a message; answers the row as updated.
    pub fn increment(
        req: IncrementRequest,
        call: Call,
        reply: RpcReplyPort<Result<Record>>,
    ) -> DbMsg {
        DbMsg::Typed(TypedRequest::new(Role::Write, req, reply), call)
    }
}

/// The batch writes as messages, for `call!`: run on the write pool as
/// [`DbMsg::Write`] is.
///
/// ```no_run
/// # async fn demo(db: pgactor::Db) -> Result<(), Box<dyn std::error::Error>> {
/// use pgactor::{Call, CreateManyRequest, DbMsg, Record};
/// let rows = vec![Record::new().with("sku", "A-1"), Record::new().with("sku", "A-2")];
/// let req = CreateManyRequest { model: "StockBalance".into(), rows };
/// let stored = ractor::call!(db.actor(), DbMsg::create_many, req, Call::here())??;
/// # let _ = stored; Ok(()) }
/// ```
impl DbMsg {
    /// [`crate::Db::create_many`] as a message; answers the rows as stored.
    pub fn create_many(
        req: CreateManyRequest,
        call: Call,
        reply: RpcReplyPort<Result<Vec<Record>>>,
    ) -> DbMsg {
        DbMsg::Typed(TypedRequest::new(Role::Write, req, reply), call)
    }

    /// [`crate::Db::create_many_count`] as a message; answers how many rows
    /// were inserted.
    pub fn create_many_count(
        req: CreateManyRequest,
        call: Call,
        reply: RpcReplyPort<Result<u64>>,
    ) -> DbMsg {
        let req = CountMany {
            req,
            in_transaction: false,
        };
        DbMsg::Typed(TypedRequest::new(Role::Write, req, reply), call)
    }

    /// [`crate::Db::upsert_many`] as a message; answers one
    /// [`Upserted`] per row.
    pub fn upsert(
        req: UpsertRequest,
        call: Call,
        reply: RpcReplyPort<Result<Vec<Upserted>>>,
    ) -> DbMsg {
        DbMsg::Typed(TypedRequest::new(Role::Write, req, reply), call)
    }
}

/// The aggregate reads as messages, for `call!`: run on the read pool as
/// [`DbMsg::List`] is (the replica, its lag bound and the [`Call`]'s token).
///
/// ```no_run
/// # async fn demo(db: pgactor::Db) -> Result<(), Box<dyn std::error::Error>> {
/// use pgactor::{Call, CountRequest, DbMsg, Filter};
/// let req = CountRequest { model: "StockBalance".into(), filter: Filter::eq("quantity", 0_i64) };
/// let empty = ractor::call!(db.actor(), DbMsg::count, req, Call::here())??;
/// # let _ = empty; Ok(()) }
/// ```
impl DbMsg {
    /// [`crate::Db::count`] as a message.
    pub fn count(req: CountRequest, call: Call, reply: RpcReplyPort<Result<u64>>) -> DbMsg {
        DbMsg::Typed(TypedRequest::new(Role::Read, req, reply), call)
    }

    /// [`crate::Db::exists`] as a message.
    pub fn exists(req: ExistsRequest, call: Call, reply: RpcReplyPort<Result<bool>>) -> DbMsg {
        DbMsg::Typed(TypedRequest::new(Role::Read, req, reply), call)
    }

    /// [`crate::Db::aggregate`] as a message.
    pub fn aggregate(
        req: AggregateRequest,
        call: Call,
        reply: RpcReplyPort<Result<Vec<Record>>>,
    ) -> DbMsg {
        DbMsg::Typed(TypedRequest::new(Role::Read, req, reply), call)
    }

    /// [`crate::Db::aggregate_as`] as a message.
    pub fn aggregate_as<R: FromRow + Send + 'static>(
        req: AggregateRequest,
        call: Call,
        reply: RpcReplyPort<Result<Vec<R>>>,
    ) -> DbMsg {
        let req = Decoded::<_, AsType<R>>::new(req);
        DbMsg::Typed(TypedRequest::new(Role::Read, req, reply), call)
    }
}

/// A read of some fields as a message, for `call!`: run on the read pool
/// as [`DbMsg::Read`] is.
///
/// ```no_run
/// # async fn demo(db: pgactor::Db, id: uuid::Uuid) -> Result<(), Box<dyn std::error::Error>> {
/// use pgactor::{Call, DbMsg, ReadFieldsRequest};
/// let req = ReadFieldsRequest::new("StockBalance", id, ["quantity"]);
/// let row = ractor::call!(db.actor(), DbMsg::read_fields, req, Call::here())??;
/// # let _ = row; Ok(()) }
/// ```
impl DbMsg {
    /// [`crate::Db::read_fields`] as a message.
    pub fn read_fields(
        req: ReadFieldsRequest,
        call: Call,
        reply: RpcReplyPort<Result<Record>>,
    ) -> DbMsg {
        DbMsg::Typed(TypedRequest::new(Role::Read, req, reply), call)
    }
}

/// The current pool actor of each role, to which the supervisor forwards
/// `DbMsg`s; it replaces an entry when it restarts a pool actor. Once
/// closed (shutdown began) it routes nowhere, and the `Db` handles, which
/// share it, refuse new work too.
#[derive(Default)]
pub(crate) struct Routes {
    pools: RwLock<HashMap<Role, ActorRef<PoolMsg>>>,
    closing: AtomicBool,
}

impl Routes {
    pub(crate) fn get(&self, role: Role) -> Option<ActorRef<PoolMsg>> {
        if self.is_closing() {
            return None;
        }
        self.pools
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&role)
            .cloned()
    }

    fn set(&self, role: Role, actor: ActorRef<PoolMsg>) {
        self.pools
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(role, actor);
    }

    /// Refuse new work from now on.
    pub(crate) fn close(&self) {
        self.closing.store(true, Ordering::Relaxed);
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    fn clear(&self) {
        self.pools
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

pub(crate) struct SupervisorArgs {
    pub(crate) pools: Vec<Arc<PoolContext>>,
    pub(crate) routes: Arc<Routes>,
    /// The session's statement deadline, for messages that carry none.
    pub(crate) deadline: Deadline,
    /// The LISTEN/NOTIFY listener's context; the actor starts on the first subscribe.
    pub(crate) listener: Arc<ListenerContext>,
    /// Transaction actors ready for the next transaction.
    pub(crate) spares: Arc<SpareActors>,
}

pub(crate) struct SupervisorState {
    /// Each role's context, kept to restart its actor with the same pool.
    contexts: HashMap<Role, Arc<PoolContext>>,
    routes: Arc<Routes>,
    deadline: Deadline,
    /// Kept to start (and restart) the listener with every subscription.
    listener_ctx: Arc<ListenerContext>,
    /// The listener actor, once something subscribed.
    listener: Option<ActorRef<ListenerMsg>>,
    /// Transaction actors ready for the next transaction.
    spares: Arc<SpareActors>,
}

pub(crate) struct Supervisor;

impl Supervisor {
    async fn start_pool(
        myself: &ActorRef<DbMsg>,
        ctx: Arc<PoolContext>,
        routes: &Routes,
    ) -> Result<(), ActorProcessingErr> {
        let role = ctx.pool.role;
        // Unnamed: actor names are process-global, and two adapters (or
        // parallel tests) in one process must not collide.
        let (actor, _) = Actor::spawn_linked(None, PoolActor, ctx, myself.get_cell()).await?;
        routes.set(role, actor);
        Ok(())
    }

    /// The listener actor, started (unnamed, linked) when there is none.
    async fn listener(
        myself: &ActorRef<DbMsg>,
        state: &mut SupervisorState,
    ) -> Result<ActorRef<ListenerMsg>> {
        if let Some(listener) = state
            .listener
            .as_ref()
            .filter(|l| l.get_status() <= ractor::ActorStatus::Running)
        {
            return Ok(listener.clone());
        }
        let ctx = state.listener_ctx.clone();
        let (listener, _) = Actor::spawn_linked(None, Listener, ctx, myself.get_cell())
            .await
            .map_err(|e| Error::closed(format!("cannot start the listener: {e}")))?;
        state.listener = Some(listener.clone());
        Ok(listener)
    }
}

#[cfg_attr(feature = "async-trait", ractor::async_trait)]
impl Actor for Supervisor {
    type Msg = DbMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<DbMsg>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        let mut contexts = HashMap::new();
        for ctx in args.pools {
            contexts.insert(ctx.pool.role, ctx.clone());
            Supervisor::start_pool(&myself, ctx, &args.routes).await?;
        }
        Ok(SupervisorState {
            contexts,
            routes: args.routes,
            deadline: args.deadline,
            listener_ctx: args.listener,
            listener: None,
            spares: args.spares,
        })
    }

    /// Forward to the pool actor of the message's role or to the listener,
    /// or start a transaction in a task of its own: no I/O here.
    async fn handle(
        &self,
        myself: ActorRef<DbMsg>,
        msg: DbMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let deadline = state.deadline;
        let run = |call: Call| RunOptions {
            deadline: match call.query_timeout {
                None => deadline,
                Some(timeout) => Some(timeout).filter(|d| !d.is_zero()),
            },
            after: call.after,
            parent: call.parent,
        };
        let pool = |call: &Call| {
            if call.replica {
                Role::Read
            } else {
                Role::Write
            }
        };
        let (role, msg) = match msg {
            DbMsg::Query(sql, call, reply) => (pool(&call), PoolMsg::Query(sql, run(call), reply)),
            DbMsg::Execute(sql, call, reply) => {
                (pool(&call), PoolMsg::Execute(sql, run(call), reply))
            }
            DbMsg::Stream(sql, call, to) => (pool(&call), PoolMsg::Stream(sql, run(call), to)),
            DbMsg::Typed(typed, call) => (typed.role, PoolMsg::Typed(typed, run(call))),
            DbMsg::Read(req, call, reply) => (Role::Read, PoolMsg::Read(req, run(call), reply)),
            DbMsg::List(req, call, reply) => (Role::Read, PoolMsg::List(req, run(call), reply)),
            DbMsg::Write(req, call, reply) => (Role::Write, PoolMsg::Write(req, run(call), reply)),
            DbMsg::WriteWithToken(req, call, reply) => {
                (Role::Write, PoolMsg::WriteWithToken(req, run(call), reply))
            }
            DbMsg::Begin(_, _, reply) if state.routes.is_closing() => {
                let _ = reply.send(Err(Error::shut_down("BEGIN was")));
                return Ok(());
            }
            DbMsg::Shutdown(grace, reply) => {
                let (routes, write, in_flight, supervisor) = (
                    state.routes.clone(),
                    state.contexts[&Role::Write].pool.clone(),
                    state.contexts[&Role::Write].in_flight.clone(),
                    myself.clone(),
                );
                tokio::spawn(async move {
                    shutdown(&routes, &in_flight, &write, &supervisor, grace).await;
                    let _ = reply.send(());
                });
                return Ok(());
            }
            DbMsg::Begin(options, call, reply) => {
                let ctx = state.contexts[&Role::Write].clone();
                let spares = state.spares.clone();
                let supervisor = myself.get_cell();
                let run = run(call);
                tokio::spawn(async move {
                    let tx = begin(&ctx, &spares, options, &run, supervisor, None).await;
                    // A Tx nobody receives is dropped here, which rolls it back.
                    let _ = reply.send(tx);
                });
                return Ok(());
            }
            DbMsg::Ping(within, reply) => {
                let write = state.contexts[&Role::Write].clone();
                let read = state.contexts[&Role::Read].clone();
                tokio::spawn(async move {
                    let health = ping_pools(&write.pool, &read, within).await;
                    let _ = reply.send(health);
                });
                return Ok(());
            }
            DbMsg::Stats(reply) => {
                let read = &state.contexts[&Role::Read];
                let write = &state.contexts[&Role::Write].pool;
                let stats = gather_stats(write, read, &state.listener_ctx);
                let _ = reply.send(stats);
                return Ok(());
            }
            DbMsg::Subscribe(_, _, reply) if state.routes.is_closing() => {
                let _ = reply.send(Err(Error::shut_down("SUBSCRIBE was")));
                return Ok(());
            }
            DbMsg::Subscribe(channel, subscriber, reply) => {
                // Checked here, so a refused subscribe starts nothing and sends no SQL.
                if let Err(err) = state.listener_ctx.admit(&channel) {
                    let _ = reply.send(Err(err));
                    return Ok(());
                }
                match Supervisor::listener(&myself, state).await {
                    Ok(listener) => {
                        let _ = listener
                            .send_message(ListenerMsg::Subscribe(channel, subscriber, reply));
                    }
                    Err(err) => {
                        let _ = reply.send(Err(err));
                    }
                }
                return Ok(());
            }
            DbMsg::Unsubscribe(channel, subscriber, reply) => {
                if let Err(err) = crate::listener::check_channel(&channel) {
                    let _ = reply.send(Err(err));
                    return Ok(());
                }
                match &state.listener {
                    Some(listener) => {
                        let msg = ListenerMsg::Unsubscribe(channel, subscriber.get_id(), reply);
                        let _ = listener.send_message(msg);
                    }
                    // No listener: nothing is subscribed.
                    None => {
                        let _ = reply.send(Ok(()));
                    }
                }
                return Ok(());
            }
        };
        match state.routes.get(role) {
            // A pool actor that is gone drops the message and with it the
            // reply port: the caller sees the adapter as closed.
            Some(pool) => drop(pool.send_message(msg)),
            None => msg.refuse(Error::shut_down("the operation was")),
        }
        Ok(())
    }

    /// Overridden because ractor's default stops the supervisor when any
    /// child exits. A pool actor that fails is restarted on the same pool.
    /// The listener is restarted while anything is subscribed (its
    /// subscribers get a `Gap`), else forgotten until the next subscribe.
    /// A transaction actor ending (even by a panic) is routine: its drop
    /// guard has already closed its connection.
    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<DbMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, failure) = match &event {
            SupervisionEvent::ActorFailed(cell, err) => (cell, Some(err.to_string())),
            SupervisionEvent::ActorTerminated(cell, _, reason) => (cell, reason.clone()),
            _ => return Ok(()),
        };
        if state
            .listener
            .as_ref()
            .is_some_and(|l| l.get_id() == cell.get_id())
        {
            state.listener = None;
            if state.listener_ctx.has_subscriptions() {
                tracing::warn!(target: "pgactor.supervisor", reason = ?failure, "listener stopped; restarting it");
                if let Err(err) = Supervisor::listener(&myself, state).await {
                    tracing::error!(target: "pgactor.supervisor", error = %err, "the listener could not be restarted");
                }
            }
            return Ok(());
        }
        let role = state.contexts.keys().copied().find(|role| {
            state
                .routes
                .get(*role)
                .is_some_and(|a| a.get_id() == cell.get_id())
        });
        if let Some(role) = role {
            tracing::warn!(target: "pgactor.supervisor", role = role.as_str(), reason = ?failure, "pool actor stopped; restarting it");
            Supervisor::start_pool(&myself, state.contexts[&role].clone(), &state.routes).await?;
        }
        Ok(())
    }
}

/// However the supervisor goes (stopped, killed, failed: ractor runs no
/// `post_stop` after a kill or a panic), the adapter closes with it: the
/// state is dropped on every path.
impl Drop for SupervisorState {
    fn drop(&mut self) {
        close_now(&self.routes, self.contexts.values());
    }
}

/// Close the adapter at once, without waiting for anything: new work is
/// refused (`Closed`), the routing table empties, the shared-read lanes
/// retire and both pools close. Idle connections close now, checked-out
/// ones when they come back; checkouts still waiting fail with `Closed`.
/// The pools' reapers and the replica monitor end at their next tick,
/// once they see their pool closed. Synchronous, for `Drop`s; idempotent.
pub(crate) fn close_now<'a>(
    routes: &Routes,
    pools: impl IntoIterator<Item = &'a Arc<PoolContext>>,
) {
    routes.close();
    routes.clear();
    for ctx in pools {
        if let Some(lanes) = &ctx.shared {
            lanes.close();
        }
        if let Some(replicas) = &ctx.replica {
            replicas.close();
        }
        ctx.pool.pool.close();
    }
}

/// Shut the adapter down: new operations and transactions are refused at
/// once; running operations and open transactions get `grace` to finish;
/// then the supervisor stops, which ends the transactions still open (their
/// connections are closed, so the server rolls them back) and closes the
/// pools.
pub(crate) async fn shutdown(
    routes: &Routes,
    in_flight: &InFlight,
    write: &ConnectionPool,
    supervisor: &ActorRef<DbMsg>,
    grace: Duration,
) {
    routes.close();
    let settled = || in_flight.count() == 0 && write.counters.open_transactions() == 0;
    let drained = tokio::time::timeout(grace, async {
        // Polled: both counts change in many places, and shutdown is rare.
        while !settled() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .is_ok();
    if !drained {
        tracing::warn!(
            target: "pgactor",
            operations = in_flight.count(),
            transactions = write.counters.open_transactions(),
            "shutdown grace of {grace:?} elapsed; rolling back what is still open"
        );
    }
    let _ = supervisor
        .stop_and_wait(Some("shut down".into()), None)
        .await;
    tracing::info!(target: "pgactor", "pgactor closed");
}

/// The statistics of the pools, the replicas and the listener now.
pub(crate) fn gather_stats(
    write: &ConnectionPool,
    read: &PoolContext,
    listener: &ListenerContext,
) -> Stats {
    let (replica, replicas) = match &read.replica {
        Some(set) => {
            let (summary, each) = set.stats();
            (Some(summary), each)
        }
        None => (None, Vec::new()),
    };
    let read = match replicas.split_first() {
        Some((first, others)) => others
            .iter()
            .fold(first.pool.clone(), |all, r| all.plus(&r.pool)),
        None => read.pool.stats(),
    };
    Stats {
        write: write.stats(),
        read,
        open_transactions: write.counters.open_transactions(),
        replica,
        replicas,
        listener: listener.stats(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{PoolConfig, SessionConfig};
    use crate::listener::tests::sink;
    use crate::pool::ConnectionPool;
    use crate::schema::Registry;
    use crate::sql::Catalog;
    use crate::wire::Dsn;
    use std::time::Duration;

    /// Pools are lazy, so a supervisor over an unreachable server starts fine.
    fn contexts() -> Vec<Arc<PoolContext>> {
        let session = Arc::new(SessionConfig::default().resolve().unwrap());
        let catalog = Arc::new(Catalog::new(
            &Registry::new(),
            "public",
            crate::sql::Statements::Unnamed,
        ));
        [Role::Write, Role::Read]
            .into_iter()
            .map(|role| {
                let dsn = Dsn::parse("postgres://nobody@127.0.0.1:1/none", role).unwrap();
                let settings = PoolConfig::default().resolve(role).unwrap();
                Arc::new(PoolContext {
                    pool: ConnectionPool::build(
                        role,
                        &dsn,
                        settings,
                        session.clone(),
                        crate::pool::DEFAULT_STATEMENT_CACHE_SIZE,
                        Default::default(),
                    )
                    .unwrap(),
                    catalog: catalog.clone(),
                    session: session.clone(),
                    replica: None,
                    in_flight: Arc::default(),
                    shared: None,
                    observed: Arc::default(),
                })
            })
            .collect()
    }

    /// A listener whose server is unreachable, like the pools'.
    fn listener_context() -> ListenerContext {
        let session = SessionConfig::default().resolve().unwrap();
        let dsn = Dsn::parse("postgres://nobody@127.0.0.1:1/none", Role::Write).unwrap();
        ListenerContext::new(
            &dsn,
            dsn.tls.connector().unwrap(),
            &session,
            Duration::from_secs(1),
        )
    }

    fn args(routes: &Arc<Routes>, listener: ListenerContext) -> SupervisorArgs {
        SupervisorArgs {
            pools: contexts(),
            routes: routes.clone(),
            deadline: None,
            listener: Arc::new(listener),
            spares: Arc::default(),
        }
    }

    /// The supervisor's children that are not pool actors.
    fn others(supervisor: &ActorRef<DbMsg>, routes: &Routes) -> Vec<ractor::ActorCell> {
        let pools: Vec<_> = [Role::Write, Role::Read]
            .iter()
            .filter_map(|r| routes.get(*r).map(|a| a.get_id()))
            .collect();
        supervisor
            .get_children()
            .into_iter()
            .filter(|c| !pools.contains(&c.get_id()))
            .collect()
    }

    async fn eventually_true(what: &str, mut check: impl FnMut() -> bool) {
        for _ in 0..500 {
            if check() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("never happened: {what}");
    }

    #[tokio::test]
    async fn the_listener_starts_on_subscribe_and_its_exit_is_routine() {
        let routes = Arc::new(Routes::default());
        let (supervisor, _) = Actor::spawn(None, Supervisor, args(&routes, listener_context()))
            .await
            .unwrap();
        assert!(
            others(&supervisor, &routes).is_empty(),
            "no listener before a subscribe"
        );
        let sub = sink().await;
        let refused = ractor::call!(supervisor, DbMsg::Subscribe, "c".into(), sub.clone()).unwrap();
        assert_eq!(
            refused.unwrap_err().kind(),
            crate::error::ErrorKind::Unavailable
        );
        let listener = others(&supervisor, &routes);
        assert_eq!(listener.len(), 1, "one listener");

        // Killed with nothing subscribed: forgotten, and the supervisor stays.
        listener[0].kill();
        eventually_true("the listener is gone", || {
            others(&supervisor, &routes).is_empty()
        })
        .await;
        assert_eq!(supervisor.get_status(), ractor::ActorStatus::Running);

        // The next subscribe starts a new one.
        let _ = ractor::call!(supervisor, DbMsg::Subscribe, "c".into(), sub).unwrap();
        assert_eq!(others(&supervisor, &routes).len(), 1);
        supervisor.stop_and_wait(None, None).await.unwrap();
    }

    #[tokio::test]
    async fn a_listener_with_subscriptions_is_restarted() {
        let routes = Arc::new(Routes::default());
        let ctx = listener_context();
        ctx.keep_for_test("c", sink().await);
        let (supervisor, _) = Actor::spawn(None, Supervisor, args(&routes, ctx))
            .await
            .unwrap();
        let sub = sink().await;
        let _ = ractor::call!(supervisor, DbMsg::Subscribe, "c".into(), sub).unwrap();
        let first = others(&supervisor, &routes);
        assert_eq!(first.len(), 1);
        first[0].kill();
        eventually_true("a new listener runs", || {
            others(&supervisor, &routes)
                .iter()
                .any(|c| c.get_id() != first[0].get_id())
        })
        .await;
        assert_eq!(supervisor.get_status(), ractor::ActorStatus::Running);
        supervisor.stop_and_wait(None, None).await.unwrap();
    }

    #[tokio::test]
    async fn behind_a_pooler_subscribe_is_refused_and_starts_nothing() {
        let routes = Arc::new(Routes::default());
        let mut ctx = listener_context();
        ctx.listen_allowed = false;
        let (supervisor, _) = Actor::spawn(None, Supervisor, args(&routes, ctx))
            .await
            .unwrap();
        let sub = sink().await;
        let refused = ractor::call!(supervisor, DbMsg::Subscribe, "c".into(), sub).unwrap();
        assert_eq!(refused.unwrap_err().kind(), crate::error::ErrorKind::Config);
        assert!(others(&supervisor, &routes).is_empty());
        supervisor.stop_and_wait(None, None).await.unwrap();
    }

    #[tokio::test]
    async fn a_killed_pool_actor_is_replaced_and_the_supervisor_stays() {
        let routes = Arc::new(Routes::default());
        let args = args(&routes, listener_context());
        let (supervisor, _) = Actor::spawn(None, Supervisor, args).await.unwrap();
        let first = routes.get(Role::Read).unwrap();
        first.kill();
        let mut replaced = None;
        for _ in 0..500 {
            match routes.get(Role::Read) {
                Some(now) if now.get_id() != first.get_id() => {
                    replaced = Some(now);
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
        let replaced = replaced.expect("the read pool actor was not restarted");
        assert_eq!(replaced.get_status(), ractor::ActorStatus::Running);
        assert_eq!(supervisor.get_status(), ractor::ActorStatus::Running);
        assert_eq!(
            routes.get(Role::Write).unwrap().get_status(),
            ractor::ActorStatus::Running
        );

        supervisor.stop_and_wait(None, None).await.unwrap();
        assert!(
            routes.get(Role::Read).is_none(),
            "a stopped adapter routes nowhere"
        );
    }
}
