//! The pool actor: one per role. It routes; it never awaits I/O in `handle`.

use std::borrow::Borrow;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;

use super::conn::Object;
use ractor::{Actor, ActorProcessingErr, ActorRef, DerivedActorRef, RpcReplyPort};
use tokio_postgres::error::SqlState;
use tracing::{Instrument, Span};

use super::coalesce::{Coalescer, Entry, IdsPlan, ReadPath};
use super::connections::ConnectionPool;
use super::counters::{Counters, InFlight};
use super::deadline::{self, Fate, Overrun, Timer};
use super::lanes::SharedReads;
use super::plan::{Plan, Request, WriteWithToken};
use super::raw::RawRequest;
use super::replica::replay_position;
use super::replicas::{ReplicaSet, Tries};
use super::stream::{spawn_feed, RowsMsg};
use crate::config::{Role, SessionSettings};
use crate::error::{Error, ErrorKind, Result};
use crate::messages::{ConsistencyToken, ListRequest, ReadRequest, WriteRequest};
use crate::raw::{Row, Sql};
use crate::schema::{Page, Record};
use crate::sql::Catalog;
use crate::telemetry::{Observed, Operation};

/// The client-side deadline of a statement; `None`: none.
pub(crate) type Deadline = Option<Duration>;

/// How one operation is run, besides what it does.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunOptions {
    /// The statement's client-side deadline.
    pub(crate) deadline: Deadline,
    /// A read must see the writes up to this token.
    pub(crate) after: Option<ConsistencyToken>,
    /// The caller's span, parent of the operation's span (`None`: a root
    /// span). Held, not just named by its id: a span whose last handle is
    /// gone closes, and a child made under a closed span's id is an error
    /// of the subscriber.
    pub(crate) parent: Option<Span>,
}

/// The operations a pool actor runs, each on a connection of its own pool.
#[derive(Debug)]
pub(crate) enum PoolMsg {
    Read(ReadRequest, RunOptions, RpcReplyPort<Result<Record>>),
    List(ListRequest, RunOptions, RpcReplyPort<Result<Page>>),
    Write(WriteRequest, RunOptions, RpcReplyPort<Result<Record>>),
    WriteWithToken(
        WriteRequest,
        RunOptions,
        RpcReplyPort<Result<(Record, ConsistencyToken)>>,
    ),
    Query(Sql, RunOptions, RpcReplyPort<Result<Vec<Row>>>),
    Execute(Sql, RunOptions, RpcReplyPort<Result<u64>>),
    Stream(Sql, RunOptions, DerivedActorRef<RowsMsg>),
    Typed(TypedRequest, RunOptions),
}

/// A request of any type with its reply port: one message variant for
/// every request whose answer has a type of its own (a typed entity's).
/// Built by `DbMsg::read_as` and its kin.
pub struct TypedRequest {
    pub(crate) role: Role,
    request: Box<dyn Replying>,
}

impl TypedRequest {
    /// `req`, run on the pool of `role`, answered on `reply`.
    pub(crate) fn new<R: Request>(
        role: Role,
        req: R,
        reply: RpcReplyPort<Result<<R::Plan as Plan>::Output>>,
    ) -> TypedRequest {
        TypedRequest {
            role,
            request: Box::new(WithReply { req, reply }),
        }
    }
}

impl std::fmt::Debug for TypedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TypedRequest({} {} on the {} pool)",
            self.request.operation(),
            self.request.model(),
            self.role
        )
    }
}

/// A request and its reply port, the answer's type erased.
trait Replying: Send {
    fn spawn(self: Box<Self>, ctx: &Arc<PoolContext>, call: RunOptions);
    fn refuse(self: Box<Self>, err: Error);
    fn operation(&self) -> &'static str;
    fn model(&self) -> &str;
}

struct WithReply<R: Request> {
    req: R,
    reply: RpcReplyPort<Result<<R::Plan as Plan>::Output>>,
}

impl<R: Request> Replying for WithReply<R> {
    fn spawn(self: Box<Self>, ctx: &Arc<PoolContext>, call: RunOptions) {
        spawn_request(ctx, self.req, call, self.reply);
    }
    fn refuse(self: Box<Self>, err: Error) {
        let _ = self.reply.send(Err(err));
    }
    fn operation(&self) -> &'static str {
        self.req.operation()
    }
    fn model(&self) -> &str {
        self.req.model()
    }
}

impl PoolMsg {
    /// Answer `err` without running the operation.
    pub(crate) fn refuse(self, err: Error) {
        match self {
            PoolMsg::Read(_, _, reply) => drop(reply.send(Err(err))),
            PoolMsg::List(_, _, reply) => drop(reply.send(Err(err))),
            PoolMsg::Write(_, _, reply) => drop(reply.send(Err(err))),
            PoolMsg::WriteWithToken(_, _, reply) => drop(reply.send(Err(err))),
            PoolMsg::Query(_, _, reply) => drop(reply.send(Err(err))),
            PoolMsg::Execute(_, _, reply) => drop(reply.send(Err(err))),
            PoolMsg::Stream(_, _, to) => drop(to.send_message(RowsMsg::End(Err(err)))),
            PoolMsg::Typed(typed, _) => typed.request.refuse(err),
        }
    }
}

/// What a pool actor needs; shared with the tasks it spawns.
pub(crate) struct PoolContext {
    pub(crate) pool: ConnectionPool,
    pub(crate) catalog: Arc<Catalog>,
    /// The settings, and how they reach the server (transactions need it).
    pub(crate) session: Arc<SessionSettings>,
    /// For the read pool with read DSNs: the replicas reads choose from
    /// (`pool` is the first one's), and the primary to read from instead.
    pub(crate) replica: Option<Arc<ReplicaSet>>,
    /// Operations running now, across both pools (for graceful shutdown).
    pub(crate) in_flight: Arc<InFlight>,
    /// For the read pool on the primary with
    /// [`crate::OpenOptions::shared_reads`]: the connections reads share
    /// (each replica has its own).
    pub(crate) shared: Option<SharedReads>,
    /// For the read pool with [`crate::OpenOptions::coalesce_reads`]: the
    /// batchers of its reads by id.
    pub(crate) coalesce: Option<Coalescer>,
    /// What every operation's telemetry says besides the operation.
    pub(crate) observed: Arc<Observed>,
}

impl ReadPath for PoolContext {
    fn catalog(&self) -> &Catalog {
        &self.catalog
    }
    fn counters(&self) -> &Counters {
        &self.pool.counters
    }
    fn wait_timeout(&self) -> Duration {
        self.pool.settings.wait_timeout
    }
    fn wait_timed_out(&self) -> Error {
        self.pool.wait_timed_out()
    }
    /// The batch is an operation of its own (`read_batch`, a root span),
    /// served as any read by id is: `sending` is its `gone`, which
    /// [`take`] and [`run_shared`] ask once they have a connection.
    async fn run_batch(
        self: Arc<Self>,
        model: Arc<str>,
        plan: IdsPlan,
        deadline: Deadline,
        sending: Box<dyn Fn() -> bool + Send + Sync>,
    ) -> Result<Vec<tokio_postgres::Row>> {
        let call = RunOptions {
            deadline,
            ..RunOptions::default()
        };
        let op = self.operation(&call, "read_batch", &model);
        let span = op.span.clone();
        let _running = self.in_flight.start();
        serve(&self, &op, Ok(plan), &call, &*sending)
            .instrument(span)
            .await
    }
}

impl PoolContext {
    /// Start operation `name` on `model` on this pool, in a span whose
    /// parent is `call`'s.
    pub(crate) fn operation(
        &self,
        call: &RunOptions,
        name: &'static str,
        model: &str,
    ) -> Operation {
        Operation::start(
            call.parent.as_ref().and_then(Span::id),
            name,
            self.pool.role.as_str(),
            model,
            &self.observed,
        )
    }
}

pub(crate) struct PoolActor;

#[cfg_attr(feature = "async-trait", ractor::async_trait)]
impl Actor for PoolActor {
    type Msg = PoolMsg;
    type State = Arc<PoolContext>;
    type Arguments = Arc<PoolContext>;

    async fn pre_start(
        &self,
        _: ActorRef<PoolMsg>,
        ctx: Arc<PoolContext>,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(ctx)
    }

    /// Hand the operation to a task of its own and return at once: a pool
    /// actor that awaited a checkout or a query would serialise every caller
    /// behind one statement. The task always answers through the reply port.
    async fn handle(
        &self,
        _: ActorRef<PoolMsg>,
        msg: PoolMsg,
        ctx: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            PoolMsg::Read(req, call, reply) => spawn_request(ctx, req, call, reply),
            PoolMsg::List(req, call, reply) => spawn_request(ctx, req, call, reply),
            PoolMsg::Write(req, call, reply) => spawn_request(ctx, req, call, reply),
            PoolMsg::WriteWithToken(req, call, reply) => {
                spawn_request(ctx, WriteWithToken(req), call, reply)
            }
            PoolMsg::Query(sql, call, reply) => spawn_request(
                ctx,
                RawRequest::new(sql, ctx.pool.role == Role::Write),
                call,
                reply,
            ),
            PoolMsg::Execute(sql, call, reply) => spawn_request(
                ctx,
                RawRequest::new(sql, ctx.pool.role == Role::Write),
                call,
                reply,
            ),
            PoolMsg::Stream(sql, call, to) => spawn_feed(ctx, sql, call, to),
            PoolMsg::Typed(typed, call) => typed.request.spawn(ctx, call),
        }
        Ok(())
    }
}

/// How often a pool task checks whether its actor caller still waits
/// (ractor's reply port can be asked, not awaited).
pub(crate) const GONE_CHECK: Duration = Duration::from_millis(100);

/// Run a request in a task of its own, in its span, and answer. A caller
/// that stops waiting (its `call_t!` timed out, or it stopped) is seen
/// within [`GONE_CHECK`]: the operation is dropped, its statement
/// cancelled on the server (see [`Busy`]).
fn spawn_request<R: Request>(
    ctx: &Arc<PoolContext>,
    req: R,
    call: RunOptions,
    reply: RpcReplyPort<Result<<R::Plan as Plan>::Output>>,
) {
    let op = ctx.operation(&call, req.operation(), req.model());
    let span = op.span.clone();
    let plan = req.plan(&ctx.catalog);
    let ctx = ctx.clone();
    let running = ctx.in_flight.start();
    let task = async move {
        let _running = running;
        let answer = {
            let gone = || reply.is_closed();
            let mut work = pin!(serve(&ctx, &op, plan, &call, &gone));
            let mut checks = tokio::time::interval_at(Instant::now() + GONE_CHECK, GONE_CHECK);
            poll_fn(|cx| {
                if let Poll::Ready(answer) = work.as_mut().poll(cx) {
                    return Poll::Ready(Some(answer));
                }
                while checks.poll_tick(cx).is_ready() {
                    if gone() {
                        return Poll::Ready(None);
                    }
                }
                Poll::Pending
            })
            .await
        };
        // A caller that has gone is not the pool's failure: ignore the send error.
        if let Some(answer) = answer {
            let _ = reply.send(answer);
        }
    };
    // Boxed where it is made: a request's future is several KiB, and
    // tokio would copy it by value on its way into the task.
    tokio::spawn(Box::pin(task).instrument(span));
}

/// Run one operation on `ctx`'s pool and record how it ended on `op`:
/// by a pool actor's task, and by [`crate::Db`] in the caller's own
/// task. A read goes to the replica the replica set chooses (see
/// [`on_replicas`]). `gone` says whether the caller has stopped waiting.
pub(crate) async fn serve<P: Plan>(
    ctx: &Arc<PoolContext>,
    op: &Operation,
    plan: Result<P>,
    call: &RunOptions,
    gone: &(dyn Fn() -> bool + Sync),
) -> Result<P::Output> {
    let plan = match plan {
        Ok(plan) => plan,
        Err(err) => return op.end(Err(failed(err)), P::rows, ""),
    };
    // A read by id without a consistency token may be answered by a
    // coalesced batch of its model's reads (a token's reads bypass it);
    // one that runs alone holds its model's slot while it runs.
    let slot = match (&ctx.coalesce, plan.by_id()) {
        (Some(coalescer), Some(read)) if call.after.is_none() => {
            match coalescer.enter(ctx, &read, call.deadline) {
                Entry::Queued(queued) => {
                    let answer = queued.answer(&read, call.deadline).await.map_err(failed);
                    return op.end(answer, P::rows, plan.statement());
                }
                Entry::Alone(slot) => slot,
            }
        }
        _ => None,
    };
    let result = routed(ctx, op, &plan, call, gone).await.map_err(failed);
    drop(slot);
    op.end(result, P::rows, plan.statement())
}

/// Run `plan` where it goes: on the replicas (see [`on_replicas`]), or
/// on the read pool's server.
async fn routed<P: Plan>(
    ctx: &PoolContext,
    op: &Operation,
    plan: &P,
    call: &RunOptions,
    gone: &(dyn Fn() -> bool + Sync),
) -> Result<P::Output> {
    match &ctx.replica {
        Some(set) => on_replicas(set, op, plan, call, gone).await,
        None => {
            op.runs_on(&ctx.pool.server);
            run_maybe_shared(&ctx.pool, ctx.shared.as_ref(), plan, call.deadline, gone).await
        }
    }
}

/// Run a read on a replica: the one `set` chooses, another one when it
/// turns out unreachable (marked down), else on the primary (with
/// fallback on, or when no replica was known to be at the read's token),
/// within the places reads have there, so they cannot take every write
/// connection. A replica asked whether it has replayed the read's token
/// serves it only if it has; else the read runs on the primary.
async fn on_replicas<P: Plan>(
    set: &ReplicaSet,
    op: &Operation,
    plan: &P,
    call: &RunOptions,
    gone: &(dyn Fn() -> bool + Sync),
) -> Result<P::Output> {
    let mut tries = Tries::default();
    while let Some(placed) = set.place(call.after, true, &tries) {
        let replica = placed.replica;
        op.runs_on(&replica.pool.server);
        let answer = match placed.ask {
            None => {
                let shared = replica.shared.as_ref();
                run_maybe_shared(&replica.pool, shared, plan, call.deadline, gone).await
            }
            Some(need) => match run_replayed(replica, plan, call.deadline, gone, need).await {
                Ok(Some(output)) => return Ok(output),
                // Behind the read's token, or it could not say how far it
                // has replayed: the primary.
                other => {
                    set.not_at_token(&mut tries, &placed, other.err());
                    break;
                }
            },
        };
        match answer {
            Ok(output) => return Ok(output),
            Err(err) => set.failed(&mut tries, &placed, err)?,
        }
    }
    op.runs_on(&set.primary.server);
    let _spilled = set.instead(tries).await?;
    run_on(&set.primary, plan, call.deadline, gone).await
}

/// Run `plan` on `pool`, on one of the `shared` connections when it may
/// take turns on one.
async fn run_maybe_shared<P: Plan>(
    pool: &ConnectionPool,
    shared: Option<&SharedReads>,
    plan: &P,
    deadline: Deadline,
    gone: &(dyn Fn() -> bool + Sync),
) -> Result<P::Output> {
    match shared.filter(|_| plan.shares_connection()) {
        Some(lanes) => run_shared(lanes, pool, plan, deadline, gone).await,
        None => run_on(pool, plan, deadline, gone).await,
    }
}

/// `err`, logged at DEBUG as the failure of an operation.
fn failed(err: Error) -> Error {
    tracing::debug!(target: "pgactor.pool", code = err.code(), error = %err, "operation failed");
    err
}

/// Run `plan` on a connection of `pool`.
async fn run_on<P: Plan>(
    pool: &ConnectionPool,
    plan: &P,
    deadline: Deadline,
    gone: &(dyn Fn() -> bool + Sync),
) -> Result<P::Output> {
    // One timer bounds the wait (by the pool's wait timeout), then the statement.
    let mut timer = Timer::default();
    let client = take(pool, &mut timer, gone).await?;
    // Bounded by the deadline (cancelled on the server past it) and by the
    // session's statement_timeout.
    let (result, fate) = plan
        .run(&client, Overrun::Cancel(&pool.cancel), deadline, &mut timer)
        .await;
    settle(client, &result, fate);
    result
}

/// Run `plan` on a connection of `replica` whose server has replayed the
/// primary's WAL up to `need`: the position is asked on the same
/// connection, sent ahead of the plan's statements (one round trip), so
/// the plan's snapshot is taken after it. `Ok(None)` when the replica is
/// behind `need` (or no standby): the plan's answer, whatever it was, is
/// dropped. A position learnt is kept by the replica's watch.
async fn run_replayed<P: Plan>(
    replica: &super::replicas::Replica,
    plan: &P,
    deadline: Deadline,
    gone: &(dyn Fn() -> bool + Sync),
    need: u64,
) -> Result<Option<P::Output>> {
    let pool = &replica.pool;
    let mut timer = Timer::default();
    let client = take(pool, &mut timer, gone).await?;
    let (replayed, (result, fate)) = tokio::join!(
        replay_position(&client),
        plan.run(&client, Overrun::Cancel(&pool.cancel), deadline, &mut timer)
    );
    settle(client, &result, fate);
    match replayed? {
        Some(position) if position >= need => {
            replica.watch.replayed_to(position);
            result.map(Some)
        }
        _ => Ok(None),
    }
}

/// A connection of `pool` for one operation, within the pool's wait
/// timeout on `timer`; refused when the caller stopped waiting meanwhile.
/// `gone` is asked once the connection is in hand (a coalesced batch
/// learns so that it has one).
async fn take<'a>(
    pool: &'a ConnectionPool,
    timer: &mut Timer,
    gone: &(dyn Fn() -> bool + Sync),
) -> Result<Busy<&'a ConnectionPool>> {
    let client = Busy::new(pool, pool.checkout(timer).await?);
    if gone() {
        // The caller gave up while we waited: do not start work whose
        // answer nobody will read (a write's outcome would be unknown).
        client.release(false);
        return Err(Error::closed("the caller stopped waiting"));
    }
    Ok(client)
}

/// Give `client` back after an operation that answered `result`, or close
/// it when its state is unknown (`fate`) or its session is unusable.
fn settle<T>(client: Busy<&ConnectionPool>, result: &Result<T>, fate: Fate) {
    let broken = fate == Fate::Discard
        || result
            .as_ref()
            .is_err_and(|e| e.is_read_only_server() || e.ended_session());
    client.release(broken);
}

/// A connection running a statement, and the pool it came from (borrowed
/// for one operation, owned by a [`super::stream::Rows`]). Dropped before
/// its answer came (the caller's future was dropped, the pool task's caller
/// stopped waiting, a stream was dropped mid-way), it is never given back
/// with the statement still running on it: a task cancels the statement on
/// the server and waits for the connection to answer an empty query sent
/// behind it, then gives it back or closes it ([`deadline::abandon`] says
/// which): within [`CANCEL_GRACE`](crate::wire::CANCEL_GRACE) for the
/// cancel and as long for the empty query, twice at most.
pub(crate) struct Busy<P: Borrow<ConnectionPool>> {
    pool: P,
    conn: Option<Object>,
}

impl<P: Borrow<ConnectionPool>> Busy<P> {
    pub(crate) fn new(pool: P, conn: Object) -> Busy<P> {
        Busy {
            pool,
            conn: Some(conn),
        }
    }

    /// The answer came: give the connection back, or close it if `broken`.
    pub(crate) fn release(mut self, broken: bool) {
        if let Some(conn) = self.conn.take() {
            if broken {
                self.pool.borrow().discard(conn);
            }
        }
    }
}

impl<P: Borrow<ConnectionPool>> std::ops::Deref for Busy<P> {
    type Target = super::conn::Conn;
    fn deref(&self) -> &Self::Target {
        self.conn
            .as_ref()
            .expect("a busy connection until released")
    }
}

impl<P: Borrow<ConnectionPool>> Drop for Busy<P> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        let pool = self.pool.borrow();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return pool.discard(conn);
        };
        let pool = pool.clone();
        runtime.spawn(async move {
            match deadline::abandon(&conn, &pool.cancel).await {
                Fate::Reusable => drop(conn),
                Fate::Discard => pool.discard(conn),
            }
        });
    }
}

/// Run a read on one of the shared connections of `pool`. A lane whose
/// connection turns out broken is retired, and the read (which changes
/// nothing) runs again once, on a connection of its own; so does a read
/// that waited for a lock past the lane's bound
/// ([`super::lanes::LANE_LOCK_TIMEOUT`]), its deadline starting again.
async fn run_shared<P: Plan>(
    lanes: &SharedReads,
    pool: &ConnectionPool,
    plan: &P,
    deadline: Deadline,
    gone: &(dyn Fn() -> bool + Sync),
) -> Result<P::Output> {
    let ride = lanes.lane(pool).await?;
    if gone() {
        return Err(Error::closed("the caller stopped waiting"));
    }
    let last = || ride.abandon();
    let overrun = Overrun::Shared(&pool.cancel, &last);
    let (result, fate) = plan
        .run(ride.client(), overrun, deadline, &mut Timer::default())
        .await;
    match result {
        Err(err) if err.kind() == ErrorKind::Unavailable && fate == Fate::Reusable => {
            ride.failed();
            lanes.evict(ride);
            run_on(pool, plan, deadline, gone).await
        }
        // It waited for a lock past the lane's bound (the reads behind it
        // waited too): the lane is fine, and the read waits for its lock on
        // a connection of its own, as long as the session says.
        Err(err)
            if fate == Fate::Reusable && err.sqlstate() == Some(&SqlState::LOCK_NOT_AVAILABLE) =>
        {
            drop(ride);
            run_on(pool, plan, deadline, gone).await
        }
        other => {
            if fate == Fate::Discard {
                ride.failed();
                lanes.evict(ride);
            }
            other
        }
    }
}
