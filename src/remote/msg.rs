//! [`RemoteMsg`]: what a gateway takes, and how it crosses the wire.
//!
//! The requests go as JSON of [`Request`], every value tagged with its
//! variant (`crate::schema::tagged`); the answers as JSON of a result whose
//! error keeps its [`ErrorKind`], message and constraint. Nothing here
//! panics on bytes a peer sent: an unreadable request is answered with
//! [`ErrorKind::InvalidInput`], an unreadable answer becomes
//! [`ErrorKind::Decode`].

use std::time::Duration;

use ractor::message::{BoxedDowncastErr, SerializedMessage};
use ractor::RpcReplyPort;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{ConstraintViolation, Error, ErrorKind, Result};
use crate::messages::{ListRequest, ReadRequest, WriteOp, WriteRequest};
use crate::schema::{tagged, Cursor, Page, Query, Record, Value};
use crate::tx::{IsolationLevel, TxOptions};

/// Which remote transaction a message is for: chosen by the node that
/// begins it, unique per gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TxId(pub(crate) Uuid);

impl TxId {
    /// A new, random id.
    pub fn new() -> TxId {
        TxId(Uuid::new_v4())
    }

    /// The process group a transaction's lease actor joins (see
    /// [`RemoteMsg::Begin`]).
    pub fn lease_group(&self) -> String {
        format!("{LEASE_PREFIX}{}", self.0)
    }

    /// The id whose lease group this is, if it is one.
    pub(crate) fn of_lease_group(group: &str) -> Option<TxId> {
        let id = group.strip_prefix(LEASE_PREFIX)?;
        Uuid::parse_str(id).ok().map(TxId)
    }
}

impl Default for TxId {
    fn default() -> TxId {
        TxId::new()
    }
}

/// What every lease group's name begins with.
const LEASE_PREFIX: &str = "pgactor.remote.lease.";

/// The messages a gateway ([`super::Gateway`]) takes, from its own node or
/// from another over `ractor_cluster`: each answers through its reply
/// port, with the error an `Db` or `Tx` call would give (its
/// [`crate::Error::kind`], message and [`crate::Error::constraint`] kept
/// across the wire; its source and SQLSTATE are not).
///
/// [`super::RemoteDb`] and [`super::RemoteTx`] send them for you; ractor
/// code can send them itself with `ractor::call!`.
#[derive(Debug)]
pub enum RemoteMsg {
    /// [`crate::Db::read`].
    Read(ReadRequest, RpcReplyPort<Result<Record>>),
    /// [`crate::Db::list`].
    List(ListRequest, RpcReplyPort<Result<Page>>),
    /// [`crate::Db::write`].
    Write(WriteRequest, RpcReplyPort<Result<Record>>),
    /// Begin a transaction the gateway holds under the given id. The
    /// sender first joins an actor of its own node (its lease) to the
    /// process group [`TxId::lease_group`] names: when that group empties
    /// (the actor stops, its node disconnects) the transaction is rolled
    /// back. Refused with [`ErrorKind::InvalidInput`] without a lease or
    /// with an id in use, with [`ErrorKind::Unavailable`] when the gateway
    /// holds its most open transactions already.
    Begin(TxId, TxOptions, RpcReplyPort<Result<()>>),
    /// [`crate::Tx::read`] in a transaction the gateway holds.
    TxRead(TxId, ReadRequest, RpcReplyPort<Result<Record>>),
    /// [`crate::Tx::list`] in a transaction the gateway holds.
    TxList(TxId, ListRequest, RpcReplyPort<Result<Page>>),
    /// [`crate::Tx::write`] in a transaction the gateway holds.
    TxWrite(TxId, WriteRequest, RpcReplyPort<Result<Record>>),
    /// [`crate::Tx::lock_for_update`] in a transaction the gateway holds.
    LockForUpdate(TxId, ReadRequest, RpcReplyPort<Result<Record>>),
    /// [`crate::Tx::commit`]: the transaction ends, its id is free.
    Commit(TxId, RpcReplyPort<Result<()>>),
    /// [`crate::Tx::rollback`]: the transaction ends, its id is free.
    Rollback(TxId, RpcReplyPort<Result<()>>),
}

/// A [`RemoteMsg`] without its reply port, as JSON carries it.
#[derive(Serialize, Deserialize)]
enum Request {
    Read(WireRead),
    List(WireList),
    Write(WireWrite),
    Begin(Uuid, WireOptions),
    TxRead(Uuid, WireRead),
    TxList(Uuid, WireList),
    TxWrite(Uuid, WireWrite),
    LockForUpdate(Uuid, WireRead),
    Commit(Uuid),
    Rollback(Uuid),
}

#[derive(Serialize, Deserialize)]
struct WireRead {
    model: String,
    #[serde(with = "tagged::value")]
    id: Value,
}

#[derive(Serialize, Deserialize)]
struct WireList {
    model: String,
    query: Query,
}

#[derive(Serialize, Deserialize)]
struct WireWrite {
    model: String,
    op: WireOp,
}

/// [`WriteOp`] with tagged values.
#[derive(Serialize, Deserialize)]
enum WireOp {
    Create(#[serde(with = "tagged::record")] Record),
    Update {
        #[serde(with = "tagged::value")]
        id: Value,
        #[serde(with = "tagged::record")]
        patch: Record,
    },
    Delete(#[serde(with = "tagged::value")] Value),
    Restore(#[serde(with = "tagged::value")] Value),
    HardDelete(#[serde(with = "tagged::value")] Value),
}

/// What of [`TxOptions`] crosses: not its retry policy, which is for
/// `Db::with_transaction` on the caller's side.
#[derive(Serialize, Deserialize)]
struct WireOptions {
    isolation: IsolationLevel,
    read_only: bool,
    query_timeout: Option<Duration>,
}

impl From<ReadRequest> for WireRead {
    fn from(r: ReadRequest) -> WireRead {
        WireRead {
            model: r.model,
            id: r.id,
        }
    }
}

impl From<WireRead> for ReadRequest {
    fn from(r: WireRead) -> ReadRequest {
        ReadRequest {
            model: r.model,
            id: r.id,
        }
    }
}

impl From<ListRequest> for WireList {
    fn from(r: ListRequest) -> WireList {
        WireList {
            model: r.model,
            query: r.query,
        }
    }
}

impl From<WireList> for ListRequest {
    fn from(r: WireList) -> ListRequest {
        ListRequest {
            model: r.model,
            query: r.query,
        }
    }
}

impl From<WriteRequest> for WireWrite {
    fn from(r: WriteRequest) -> WireWrite {
        let op = match r.op {
            WriteOp::Create(record) => WireOp::Create(record),
            WriteOp::Update { id, patch } => WireOp::Update { id, patch },
            WriteOp::Delete { id } => WireOp::Delete(id),
            WriteOp::Restore { id } => WireOp::Restore(id),
            WriteOp::HardDelete { id } => WireOp::HardDelete(id),
        };
        WireWrite { model: r.model, op }
    }
}

impl From<WireWrite> for WriteRequest {
    fn from(r: WireWrite) -> WriteRequest {
        let op = match r.op {
            WireOp::Create(record) => WriteOp::Create(record),
            WireOp::Update { id, patch } => WriteOp::Update { id, patch },
            WireOp::Delete(id) => WriteOp::Delete { id },
            WireOp::Restore(id) => WriteOp::Restore { id },
            WireOp::HardDelete(id) => WriteOp::HardDelete { id },
        };
        WriteRequest { model: r.model, op }
    }
}

impl From<TxOptions> for WireOptions {
    fn from(o: TxOptions) -> WireOptions {
        WireOptions {
            isolation: o.isolation,
            read_only: o.read_only,
            query_timeout: o.query_timeout,
        }
    }
}

impl From<WireOptions> for TxOptions {
    fn from(o: WireOptions) -> TxOptions {
        TxOptions {
            isolation: o.isolation,
            read_only: o.read_only,
            query_timeout: o.query_timeout,
            ..TxOptions::default()
        }
    }
}

/// An error as it crosses: its kind, message and constraint.
#[derive(Serialize, Deserialize)]
struct WireError {
    kind: ErrorKind,
    message: String,
    violation: Option<ConstraintViolation>,
}

/// [`Page`] with tagged rows.
#[derive(Serialize, Deserialize)]
struct WirePage {
    #[serde(with = "tagged::records")]
    rows: Vec<Record>,
    total: Option<u64>,
    limit: u64,
    offset: u64,
    next: Option<Cursor>,
}

/// A record alone, tagged.
#[derive(Serialize, Deserialize)]
struct WireRecord(#[serde(with = "tagged::record")] Record);

/// An answer a gateway sends back: its form on the wire.
trait Answer: Sized + Send + 'static {
    /// The serde form.
    type Wire: Serialize + DeserializeOwned;
    fn to_wire(self) -> Self::Wire;
    fn from_wire(wire: Self::Wire) -> Self;
}

impl Answer for Record {
    type Wire = WireRecord;
    fn to_wire(self) -> WireRecord {
        WireRecord(self)
    }
    fn from_wire(wire: WireRecord) -> Record {
        wire.0
    }
}

impl Answer for Page {
    type Wire = WirePage;
    fn to_wire(self) -> WirePage {
        let Page {
            rows,
            total,
            limit,
            offset,
            next,
        } = self;
        WirePage {
            rows,
            total,
            limit,
            offset,
            next,
        }
    }
    fn from_wire(w: WirePage) -> Page {
        let WirePage {
            rows,
            total,
            limit,
            offset,
            next,
        } = w;
        Page {
            rows,
            total,
            limit,
            offset,
            next,
        }
    }
}

impl Answer for () {
    type Wire = ();
    fn to_wire(self) {}
    fn from_wire(_: ()) {}
}

/// The bytes of an answer. An answer serde cannot write (it always can:
/// no map has keys other than strings) goes as a [`ErrorKind::Decode`]
/// error instead.
fn encode<T: Answer>(answer: Result<T>) -> Vec<u8> {
    let wire: std::result::Result<T::Wire, WireError> = match answer {
        Ok(value) => Ok(value.to_wire()),
        Err(err) => Err(WireError {
            kind: err.kind(),
            message: err.to_string(),
            violation: err.constraint().cloned(),
        }),
    };
    serde_json::to_vec(&wire).unwrap_or_else(|e| {
        let err: std::result::Result<(), WireError> = Err(WireError {
            kind: ErrorKind::Decode,
            message: format!("the gateway could not write its answer: {e}"),
            violation: None,
        });
        serde_json::to_vec(&err).unwrap_or_default()
    })
}

/// An answer from its bytes.
fn decode<T: Answer>(bytes: &[u8]) -> Result<T> {
    match serde_json::from_slice::<std::result::Result<T::Wire, WireError>>(bytes) {
        Ok(Ok(wire)) => Ok(T::from_wire(wire)),
        Ok(Err(e)) => Err(Error::with_violation(e.kind, e.message, e.violation)),
        Err(e) => Err(Error::decode(format!(
            "the gateway's answer could not be read: {e}"
        ))),
    }
}

/// The bytes reply port that stands for a typed one on the sending node:
/// the answer's bytes are read back into the typed port. When the other
/// node goes before answering, the typed port gets
/// [`ErrorKind::Unavailable`].
fn outbound<T: Answer>(port: RpcReplyPort<Result<T>>) -> RpcReplyPort<Vec<u8>> {
    let (tx, rx) = ractor::concurrency::oneshot::<Vec<u8>>();
    let limit = port.get_timeout();
    tokio::spawn(async move {
        let bytes = match limit {
            Some(limit) => tokio::time::timeout(limit, rx).await.ok(),
            None => Some(rx.await),
        };
        let answer = match bytes {
            Some(Ok(bytes)) => decode(&bytes),
            Some(Err(_)) => Err(Error::unavailable(
                "the gateway's node went away before answering",
            )),
            // The caller's own timeout answers it.
            None => return,
        };
        let _ = port.send(answer);
    });
    match limit {
        Some(limit) => RpcReplyPort::from((tx, limit)),
        None => RpcReplyPort::from(tx),
    }
}

/// The typed reply port that stands for a bytes one on the gateway's node:
/// the answer is sent back as bytes.
fn inbound<T: Answer>(port: RpcReplyPort<Vec<u8>>) -> RpcReplyPort<Result<T>> {
    let (tx, rx) = ractor::concurrency::oneshot::<Result<T>>();
    let limit = port.get_timeout();
    tokio::spawn(async move {
        if let Ok(answer) = rx.await {
            let _ = port.send(encode(answer));
        }
    });
    match limit {
        Some(limit) => RpcReplyPort::from((tx, limit)),
        None => RpcReplyPort::from(tx),
    }
}

impl RemoteMsg {
    /// The request and its bytes reply port, for the wire.
    fn split(self) -> (Request, RpcReplyPort<Vec<u8>>) {
        use RemoteMsg as M;
        match self {
            M::Read(r, p) => (Request::Read(r.into()), outbound(p)),
            M::List(r, p) => (Request::List(r.into()), outbound(p)),
            M::Write(r, p) => (Request::Write(r.into()), outbound(p)),
            M::Begin(id, o, p) => (Request::Begin(id.0, o.into()), outbound(p)),
            M::TxRead(id, r, p) => (Request::TxRead(id.0, r.into()), outbound(p)),
            M::TxList(id, r, p) => (Request::TxList(id.0, r.into()), outbound(p)),
            M::TxWrite(id, r, p) => (Request::TxWrite(id.0, r.into()), outbound(p)),
            M::LockForUpdate(id, r, p) => (Request::LockForUpdate(id.0, r.into()), outbound(p)),
            M::Commit(id, p) => (Request::Commit(id.0), outbound(p)),
            M::Rollback(id, p) => (Request::Rollback(id.0), outbound(p)),
        }
    }

    /// The message a request and its bytes reply port stand for.
    fn join(request: Request, port: RpcReplyPort<Vec<u8>>) -> RemoteMsg {
        use Request as R;
        match request {
            R::Read(r) => RemoteMsg::Read(r.into(), inbound(port)),
            R::List(r) => RemoteMsg::List(r.into(), inbound(port)),
            R::Write(r) => RemoteMsg::Write(r.into(), inbound(port)),
            R::Begin(id, o) => RemoteMsg::Begin(TxId(id), o.into(), inbound(port)),
            R::TxRead(id, r) => RemoteMsg::TxRead(TxId(id), r.into(), inbound(port)),
            R::TxList(id, r) => RemoteMsg::TxList(TxId(id), r.into(), inbound(port)),
            R::TxWrite(id, r) => RemoteMsg::TxWrite(TxId(id), r.into(), inbound(port)),
            R::LockForUpdate(id, r) => RemoteMsg::LockForUpdate(TxId(id), r.into(), inbound(port)),
            R::Commit(id) => RemoteMsg::Commit(TxId(id), inbound(port)),
            R::Rollback(id) => RemoteMsg::Rollback(TxId(id), inbound(port)),
        }
    }
}

/// Serializable: a remote node's `ActorRef<RemoteMsg>` sends these as
/// bytes to the gateway.
impl ractor::Message for RemoteMsg {
    fn serializable() -> bool {
        true
    }

    fn serialize(self) -> std::result::Result<SerializedMessage, BoxedDowncastErr> {
        let (request, reply) = self.split();
        let args = serde_json::to_vec(&request).map_err(|_| BoxedDowncastErr)?;
        Ok(SerializedMessage::Call {
            variant: String::new(),
            args,
            reply,
            metadata: None,
        })
    }

    fn deserialize(bytes: SerializedMessage) -> std::result::Result<RemoteMsg, BoxedDowncastErr> {
        let SerializedMessage::Call { args, reply, .. } = bytes else {
            return Err(BoxedDowncastErr);
        };
        match serde_json::from_slice::<Request>(&args) {
            Ok(request) => Ok(RemoteMsg::join(request, reply)),
            Err(e) => {
                let refused: Result<()> = Err(Error::invalid_input(format!(
                    "a remote request could not be read: {e}"
                )));
                let _ = reply.send(encode(refused));
                Err(BoxedDowncastErr)
            }
        }
    }
}
