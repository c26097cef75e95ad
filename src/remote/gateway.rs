//! The gateway: an actor on the pgactor node that runs what other nodes
//! ask for ([`RemoteMsg`]) on its [`Db`], and holds their transactions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ractor::pg::GroupChangeMessage;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use crate::db::Db;
use crate::error::{Error, Result};
use crate::tx::{Tx, TxOptions};

use super::msg::{RemoteMsg, TxId};

/// How many transactions a gateway holds open at once unless
/// [`Gateway::max_transactions`] says otherwise: each holds a connection of
/// the primary pool while open.
pub const DEFAULT_MAX_REMOTE_TRANSACTIONS: usize = 64;

/// A gateway to start on the pgactor node: other nodes of the
/// `ractor_cluster` find it in the process group it joins, and send it
/// [`RemoteMsg`]s.
///
/// ```no_run
/// # async fn demo(db: pgactor::Db) -> pgactor::Result<()> {
/// use pgactor::remote::Gateway;
/// let gateway = Gateway::new("pgactor").max_transactions(16).spawn(&db).await?;
/// # let _ = gateway; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Gateway {
    group: String,
    max_transactions: usize,
}

impl Gateway {
    /// A gateway joining the process group `group` (what
    /// [`super::RemoteDb::lookup`] looks for), holding at most
    /// [`DEFAULT_MAX_REMOTE_TRANSACTIONS`] transactions.
    pub fn new(group: impl Into<String>) -> Gateway {
        Gateway {
            group: group.into(),
            max_transactions: DEFAULT_MAX_REMOTE_TRANSACTIONS,
        }
    }

    /// Hold at most `n` open transactions; a `Begin` beyond is refused
    /// with [`crate::ErrorKind::Unavailable`].
    pub fn max_transactions(mut self, n: usize) -> Gateway {
        self.max_transactions = n;
        self
    }

    /// Start the gateway, unsupervised. Stopping it rolls back the
    /// transactions it holds.
    pub async fn spawn(self, db: &Db) -> Result<ActorRef<RemoteMsg>> {
        let args = (self, db.clone());
        let (actor, _) = Actor::spawn(None, GatewayActor, args)
            .await
            .map_err(|e| Error::closed(format!("the gateway did not start: {e}")))?;
        Ok(actor)
    }

    /// Start the gateway under `supervisor` (an application's supervisor
    /// actor), which hears when it stops.
    pub async fn spawn_linked(self, db: &Db, supervisor: ActorCell) -> Result<ActorRef<RemoteMsg>> {
        let args = (self, db.clone());
        let (actor, _) = Actor::spawn_linked(None, GatewayActor, args, supervisor)
            .await
            .map_err(|e| Error::closed(format!("the gateway did not start: {e}")))?;
        Ok(actor)
    }
}

struct GatewayActor;

/// The transactions a gateway holds, by id. Shared with the tasks that
/// begin them; never locked across an await.
type Open = Arc<Mutex<HashMap<TxId, Slot>>>;

/// One transaction the gateway holds.
struct Slot {
    /// `None` while BEGIN is on its way.
    tx: Option<Tx>,
    /// Its lease was on another node when it began: only members on
    /// another node keep it (the lease's own actor, should it run in this
    /// process too, does not).
    remote_lease: bool,
}

/// The members of `group` that keep a transaction alive.
fn lease_holders(group: &str, remote_lease: bool) -> usize {
    ractor::pg::get_members(&group.to_owned())
        .iter()
        .filter(|member| !remote_lease || !member.get_id().is_local())
        .count()
}

struct GatewayState {
    db: Db,
    max_transactions: usize,
    open: Open,
}

/// The open transactions, whatever a panicking holder left.
fn lock(open: &Open) -> std::sync::MutexGuard<'_, HashMap<TxId, Slot>> {
    open.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Run `work` on its own task and answer `reply` with it: the gateway
/// takes its next message meanwhile.
fn answer<T, F>(reply: RpcReplyPort<Result<T>>, work: F)
where
    T: Send + 'static,
    F: std::future::Future<Output = Result<T>> + Send + 'static,
{
    tokio::spawn(async move {
        let _ = reply.send(work.await);
    });
}

/// The answer to a message for a transaction the gateway does not hold.
fn no_such_tx() -> Error {
    Error::tx_closed().prefixed("no open remote transaction has this id")
}

impl GatewayState {
    /// The transaction `id`, if open.
    fn tx(&self, id: TxId) -> Result<Tx> {
        lock(&self.open)
            .get(&id)
            .and_then(|slot| slot.tx.clone())
            .ok_or_else(no_such_tx)
    }

    /// Take the transaction `id` out, to end it; stop watching its lease.
    fn take(&self, id: TxId, myself: &ActorCell) -> Option<Tx> {
        ractor::pg::demonitor(id.lease_group(), myself.get_id());
        lock(&self.open).remove(&id).and_then(|slot| slot.tx)
    }

    /// Begin the transaction `id` for a remote node holding its lease.
    fn begin(
        &self,
        id: TxId,
        options: TxOptions,
        reply: RpcReplyPort<Result<()>>,
        myself: &ActorCell,
    ) {
        {
            let mut open = lock(&self.open);
            if open.contains_key(&id) {
                let _ = reply.send(Err(Error::invalid_input(
                    "a remote transaction with this id is open",
                )));
                return;
            }
            if open.len() >= self.max_transactions {
                let _ = reply.send(Err(Error::unavailable(format!(
                    "the gateway holds its most open transactions ({})",
                    self.max_transactions
                ))));
                return;
            }
            // Watch first, then look: a lease leaving in between is seen.
            ractor::pg::monitor(id.lease_group(), myself.clone());
            let members = ractor::pg::get_members(&id.lease_group());
            if members.is_empty() {
                ractor::pg::demonitor(id.lease_group(), myself.get_id());
                let _ = reply.send(Err(Error::invalid_input(
                    "no lease actor is in the transaction's lease group",
                )));
                return;
            }
            let remote_lease = members.iter().any(|m| !m.get_id().is_local());
            open.insert(
                id,
                Slot {
                    tx: None,
                    remote_lease,
                },
            );
        }
        let db = self.db.clone();
        let open = self.open.clone();
        answer(reply, async move {
            let begun = db.begin(options).await;
            let mut slots = lock(&open);
            match (begun, slots.get_mut(&id)) {
                (Ok(tx), Some(slot)) => {
                    slot.tx = Some(tx);
                    Ok(())
                }
                // The lease ended while BEGIN ran: the `Tx` dropped here
                // rolls back.
                (Ok(_), None) => Err(no_such_tx()),
                (Err(e), _) => {
                    slots.remove(&id);
                    Err(e)
                }
            }
        });
    }
}

#[cfg_attr(feature = "async-trait", ractor::async_trait)]
impl Actor for GatewayActor {
    type Msg = RemoteMsg;
    type State = GatewayState;
    type Arguments = (Gateway, Db);

    async fn pre_start(
        &self,
        myself: ActorRef<RemoteMsg>,
        (gateway, db): (Gateway, Db),
    ) -> std::result::Result<GatewayState, ActorProcessingErr> {
        ractor::pg::join(gateway.group, vec![myself.get_cell()]);
        Ok(GatewayState {
            db,
            max_transactions: gateway.max_transactions,
            open: Arc::default(),
        })
    }

    async fn post_stop(
        &self,
        _: ActorRef<RemoteMsg>,
        state: &mut GatewayState,
    ) -> std::result::Result<(), ActorProcessingErr> {
        // Each `Tx` dropped rolls back.
        lock(&state.open).clear();
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<RemoteMsg>,
        msg: RemoteMsg,
        state: &mut GatewayState,
    ) -> std::result::Result<(), ActorProcessingErr> {
        let db = state.db.clone();
        match msg {
            RemoteMsg::Read(r, reply) => {
                answer(reply, async move { db.read(&r.model, r.id).await })
            }
            RemoteMsg::List(r, reply) => {
                answer(reply, async move { db.list(&r.model, r.query).await })
            }
            RemoteMsg::Write(r, reply) => {
                answer(reply, async move { db.write(&r.model, r.op).await })
            }
            RemoteMsg::Begin(id, options, reply) => {
                state.begin(id, options, reply, &myself.get_cell())
            }
            RemoteMsg::TxRead(id, r, reply) => {
                let tx = state.tx(id);
                answer(reply, async move { tx?.read(&r.model, r.id).await });
            }
            RemoteMsg::TxList(id, r, reply) => {
                let tx = state.tx(id);
                answer(reply, async move { tx?.list(&r.model, r.query).await });
            }
            RemoteMsg::TxWrite(id, r, reply) => {
                let tx = state.tx(id);
                answer(reply, async move { tx?.write(&r.model, r.op).await });
            }
            RemoteMsg::LockForUpdate(id, r, reply) => {
                let tx = state.tx(id);
                answer(
                    reply,
                    async move { tx?.lock_for_update(&r.model, r.id).await },
                );
            }
            RemoteMsg::Commit(id, reply) => {
                let tx = state.take(id, &myself.get_cell()).ok_or_else(no_such_tx);
                answer(reply, async move { tx?.commit().await });
            }
            RemoteMsg::Rollback(id, reply) => {
                let tx = state.take(id, &myself.get_cell()).ok_or_else(no_such_tx);
                answer(reply, async move { tx?.rollback().await });
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<RemoteMsg>,
        event: SupervisionEvent,
        state: &mut GatewayState,
    ) -> std::result::Result<(), ActorProcessingErr> {
        // A lease left: when its group is empty, its node or its holder
        // is gone, and the transaction is rolled back.
        if let SupervisionEvent::ProcessGroupChanged(GroupChangeMessage::Leave(_, group, _)) = event
        {
            let Some(id) = TxId::of_lease_group(&group) else {
                return Ok(());
            };
            let remote_lease = lock(&state.open).get(&id).map(|slot| slot.remote_lease);
            if remote_lease.is_some_and(|remote| lease_holders(&group, remote) == 0) {
                if let Some(tx) = state.take(id, &myself.get_cell()) {
                    tracing::warn!(
                        "a remote transaction's lease ended before it did; rolling it back"
                    );
                    tokio::spawn(async move {
                        let _ = tx.rollback().await;
                    });
                }
            }
        }
        Ok(())
    }
}
