//! The other node's side: [`RemoteDb`] and [`RemoteTx`] send
//! [`RemoteMsg`]s to a gateway and wait for the answers.

use std::time::Duration;

use ractor::message::{BoxedDowncastErr, SerializedMessage};
use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::error::{Error, Result};
use crate::messages::{write_shorthands, ListRequest, ReadRequest, WriteOp, WriteRequest};
use crate::schema::{Page, Query, Record, Value};
use crate::tx::TxOptions;

use super::msg::{RemoteMsg, TxId};

/// How long a [`RemoteDb`] waits for a gateway's answer unless
/// [`RemoteDb::with_call_timeout`] says otherwise.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A gateway on another node (or this one), with the calls of a `Db`:
/// each a message there and its answer back.
///
/// ```no_run
/// # async fn demo() -> pgactor::Result<()> {
/// use pgactor::remote::RemoteDb;
/// use pgactor::Record;
/// let db = RemoteDb::lookup("pgactor")?;
/// let row = db.create("StockBalance", Record::new().with("sku", "A-1").with("quantity", 3_i64)).await?;
/// # let _ = row; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RemoteDb {
    gateway: ActorRef<RemoteMsg>,
    timeout: Duration,
}

impl RemoteDb {
    /// The gateway in the process group `group` (the name it was started
    /// with, [`super::Gateway::new`]), as `ractor_cluster` shows it once
    /// the nodes are connected. [`crate::ErrorKind::Unavailable`] when the
    /// group has no member (yet: the groups are synchronized shortly after
    /// a node connects).
    pub fn lookup(group: &str) -> Result<RemoteDb> {
        let members = ractor::pg::get_members(&group.to_owned());
        let gateway = members
            .into_iter()
            .next()
            .ok_or_else(|| Error::unavailable(format!("no gateway is in the group \"{group}\"")))?;
        Ok(RemoteDb::new(gateway.into()))
    }

    /// A handle on a gateway already found.
    pub fn new(gateway: ActorRef<RemoteMsg>) -> RemoteDb {
        RemoteDb {
            gateway,
            timeout: DEFAULT_CALL_TIMEOUT,
        }
    }

    /// Wait at most `timeout` for each answer (a write past it is
    /// [`crate::ErrorKind::OutcomeUnknown`], anything else
    /// [`crate::ErrorKind::Timeout`]).
    pub fn with_call_timeout(mut self, timeout: Duration) -> RemoteDb {
        self.timeout = timeout;
        self
    }

    /// The gateway's actor.
    pub fn gateway(&self) -> &ActorRef<RemoteMsg> {
        &self.gateway
    }

    /// Send a message and wait for its answer. `write` says whether a
    /// lost answer leaves the outcome unknown.
    async fn call<T: Send + 'static>(
        &self,
        write: bool,
        msg: impl FnOnce(RpcReplyPort<Result<T>>) -> RemoteMsg,
    ) -> Result<T> {
        match self.gateway.call(msg, Some(self.timeout)).await {
            Ok(CallResult::Success(answer)) => answer,
            Ok(CallResult::Timeout) if write => Err(Error::new(
                crate::ErrorKind::OutcomeUnknown,
                format!(
                    "the gateway did not answer within {:?}; the write may or may not have been applied",
                    self.timeout
                ),
            )),
            Ok(CallResult::Timeout) => Err(Error::new(
                crate::ErrorKind::Timeout,
                format!("the gateway did not answer within {:?}", self.timeout),
            )),
            Ok(CallResult::SenderError) if write => Err(Error::new(
                crate::ErrorKind::OutcomeUnknown,
                "the gateway went away before answering; the write may or may not have been applied",
            )),
            Ok(CallResult::SenderError) => {
                Err(Error::unavailable("the gateway went away before answering"))
            }
            Err(e) => Err(Error::unavailable(format!("the gateway cannot be reached: {e}"))),
        }
    }

    /// [`crate::Db::read`] on the gateway's node.
    pub async fn read(&self, model: &str, id: impl Into<Value>) -> Result<Record> {
        let req = ReadRequest {
            model: model.into(),
            id: id.into(),
        };
        self.call(false, |reply| RemoteMsg::Read(req, reply)).await
    }

    /// [`crate::Db::list`] on the gateway's node.
    pub async fn list(&self, model: &str, query: Query) -> Result<Page> {
        let req = ListRequest {
            model: model.into(),
            query,
        };
        self.call(false, |reply| RemoteMsg::List(req, reply)).await
    }

    /// [`crate::Db::write`] on the gateway's node.
    pub async fn write(&self, model: &str, op: WriteOp) -> Result<Record> {
        let req = WriteRequest {
            model: model.into(),
            op,
        };
        self.call(true, |reply| RemoteMsg::Write(req, reply)).await
    }

    write_shorthands!(" on the gateway's node");

    /// Begin a transaction the gateway holds. A lease actor of this node
    /// stands for it there: when the `RemoteTx` is dropped before
    /// [`RemoteTx::commit`] or [`RemoteTx::rollback`], or this node
    /// disconnects, the lease ends and the gateway rolls the transaction
    /// back.
    pub async fn begin(&self, options: TxOptions) -> Result<RemoteTx> {
        let id = TxId::new();
        let (lease, _) = Actor::spawn(None, Lease, ())
            .await
            .map_err(|e| Error::closed(format!("the transaction's lease did not start: {e}")))?;
        ractor::pg::join(id.lease_group(), vec![lease.get_cell()]);
        let tx = RemoteTx {
            db: self.clone(),
            id,
            lease,
        };
        // Dropped on an error: the lease stops.
        self.call(false, |reply| RemoteMsg::Begin(id, options, reply))
            .await?;
        Ok(tx)
    }
}

/// A transaction a gateway holds for this node, with the calls of a `Tx`.
/// Dropped before [`RemoteTx::commit`] or [`RemoteTx::rollback`], it is
/// rolled back.
#[derive(Debug)]
pub struct RemoteTx {
    db: RemoteDb,
    id: TxId,
    lease: ActorRef<LeaseMsg>,
}

impl RemoteTx {
    /// The id the gateway holds it under.
    pub fn id(&self) -> TxId {
        self.id
    }

    /// [`crate::Tx::read`] on the gateway's node.
    pub async fn read(&self, model: &str, id: impl Into<Value>) -> Result<Record> {
        let req = ReadRequest {
            model: model.into(),
            id: id.into(),
        };
        self.db
            .call(false, |reply| RemoteMsg::TxRead(self.id, req, reply))
            .await
    }

    /// [`crate::Tx::list`] on the gateway's node.
    pub async fn list(&self, model: &str, query: Query) -> Result<Page> {
        let req = ListRequest {
            model: model.into(),
            query,
        };
        self.db
            .call(false, |reply| RemoteMsg::TxList(self.id, req, reply))
            .await
    }

    /// [`crate::Tx::lock_for_update`] on the gateway's node.
    pub async fn lock_for_update(&self, model: &str, id: impl Into<Value>) -> Result<Record> {
        let req = ReadRequest {
            model: model.into(),
            id: id.into(),
        };
        self.db
            .call(false, |reply| RemoteMsg::LockForUpdate(self.id, req, reply))
            .await
    }

    /// [`crate::Tx::write`] on the gateway's node.
    pub async fn write(&self, model: &str, op: WriteOp) -> Result<Record> {
        let req = WriteRequest {
            model: model.into(),
            op,
        };
        self.db
            .call(true, |reply| RemoteMsg::TxWrite(self.id, req, reply))
            .await
    }

    write_shorthands!(" in the transaction");

    /// [`crate::Tx::commit`].
    pub async fn commit(self) -> Result<()> {
        self.db
            .call(true, |reply| RemoteMsg::Commit(self.id, reply))
            .await
    }

    /// [`crate::Tx::rollback`].
    pub async fn rollback(self) -> Result<()> {
        self.db
            .call(false, |reply| RemoteMsg::Rollback(self.id, reply))
            .await
    }
}

impl Drop for RemoteTx {
    fn drop(&mut self) {
        self.lease.stop(None);
    }
}

/// The lease actor's message: it takes none, but a `ractor_cluster` node
/// shows other nodes only actors whose message type could cross.
#[derive(Debug)]
pub struct LeaseMsg;

impl ractor::Message for LeaseMsg {
    fn serializable() -> bool {
        true
    }

    fn serialize(self) -> std::result::Result<SerializedMessage, BoxedDowncastErr> {
        Err(BoxedDowncastErr)
    }

    fn deserialize(_: SerializedMessage) -> std::result::Result<LeaseMsg, BoxedDowncastErr> {
        Err(BoxedDowncastErr)
    }
}

/// Stands for a [`RemoteTx`] in its lease group while it lives.
struct Lease;

#[cfg_attr(feature = "async-trait", ractor::async_trait)]
impl Actor for Lease {
    type Msg = LeaseMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(
        &self,
        _: ActorRef<LeaseMsg>,
        _: (),
    ) -> std::result::Result<(), ActorProcessingErr> {
        Ok(())
    }
}
