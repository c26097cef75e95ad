//! The pool actor: one per role. It routes; it never awaits I/O in `handle`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use postgres_openssl::MakeTlsConnector;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio_postgres::Client;
use tracing::Instrument;

use crate::connection::ConnectionPool;
use crate::deadline::Fate;
use crate::error::{Error, Result};
use crate::exec::{PagePlan, RowPlan};
use crate::messages::{ListRequest, ReadRequest, WriteRequest};
use crate::sql::Catalog;

/// The client-side deadline of a statement; `None`: none.
pub(crate) type Deadline = Option<Duration>;

/// The operations a pool actor runs, each on a connection of its own pool.
#[derive(Debug)]
pub(crate) enum PoolMsg {
    Read(ReadRequest, Deadline, RpcReplyPort<Result<crate::Record>>),
    List(ListRequest, Deadline, RpcReplyPort<Result<crate::Page>>),
    Write(WriteRequest, Deadline, RpcReplyPort<Result<crate::Record>>),
}

/// What a pool actor needs; shared with the tasks it spawns.
pub(crate) struct PoolContext {
    pub(crate) pool: ConnectionPool,
    pub(crate) catalog: Arc<Catalog>,
}

pub(crate) struct PoolActor;

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
        let role = ctx.pool.role.as_str();
        match msg {
            PoolMsg::Read(req, deadline, reply) => {
                let span =
                    tracing::debug_span!(target: "pgactor.pool", "read", role, model = %req.model);
                spawn_plan(ctx, RowPlan::read(&ctx.catalog, req), deadline, reply, span);
            }
            PoolMsg::List(req, deadline, reply) => {
                let span =
                    tracing::debug_span!(target: "pgactor.pool", "list", role, model = %req.model);
                spawn_plan(ctx, PagePlan::new(&ctx.catalog, req), deadline, reply, span);
            }
            PoolMsg::Write(req, deadline, reply) => {
                let span =
                    tracing::debug_span!(target: "pgactor.pool", "write", role, model = %req.model);
                spawn_plan(
                    ctx,
                    RowPlan::write(&ctx.catalog, req),
                    deadline,
                    reply,
                    span,
                );
            }
        }
        Ok(())
    }
}

/// Run a plan on a connection of this pool in a task of its own, and answer.
fn spawn_plan<P: Plan>(
    ctx: &Arc<PoolContext>,
    plan: Result<P>,
    deadline: Deadline,
    reply: RpcReplyPort<Result<P::Output>>,
    span: tracing::Span,
) {
    let ctx = ctx.clone();
    let task = async move {
        let result = async {
            let plan = plan?;
            // Bounded by the pool's wait timeout.
            let client = ctx.pool.get().await?;
            if reply.is_closed() {
                // The caller gave up while we waited: do not start work whose
                // answer nobody will read (a write's outcome would be unknown).
                return Err(Error::closed("the caller stopped waiting"));
            }
            // Bounded by the deadline (cancelled on the server past it) and
            // by the session's statement_timeout.
            let (result, fate) = plan.run(&client, &ctx.pool.connector, deadline).await;
            if fate == Fate::Discard {
                ctx.pool.discard(client);
            }
            result
        }
        .await;
        if let Err(err) = &result {
            tracing::debug!(target: "pgactor.pool", code = err.code(), error = %err, "operation failed");
        }
        // A caller that has gone is not the pool's failure: ignore the send error.
        let _ = reply.send(result);
    };
    tokio::spawn(task.instrument(span));
}

/// A statement plan a pool task can run on a checked-out connection.
pub(crate) trait Plan: Send + 'static {
    type Output: Send + 'static;
    fn run(
        &self,
        client: &Client,
        tls: &MakeTlsConnector,
        deadline: Deadline,
    ) -> impl Future<Output = (Result<Self::Output>, Fate)> + Send;
}

impl Plan for RowPlan {
    type Output = crate::Record;
    fn run(
        &self,
        client: &Client,
        tls: &MakeTlsConnector,
        deadline: Deadline,
    ) -> impl Future<Output = (Result<crate::Record>, Fate)> + Send {
        RowPlan::run(self, client, tls, deadline)
    }
}

impl Plan for PagePlan {
    type Output = crate::Page;
    fn run(
        &self,
        client: &Client,
        tls: &MakeTlsConnector,
        deadline: Deadline,
    ) -> impl Future<Output = (Result<crate::Page>, Fate)> + Send {
        PagePlan::run(self, client, tls, deadline)
    }
}

/// The answer a caller gets when the actor it sent to is gone.
pub(crate) fn gone(what: &str) -> Error {
    Error::closed(format!("the adapter is shut down ({what} not delivered)"))
}
