//! The typed messages callers send to the adapter's actors.

use ractor::{ActorRef, RpcReplyPort};

use crate::error::Result;
use crate::listener::Notification;
use crate::schema::Record;
use crate::schema::Value;
use crate::schema::{Page, Query};
use crate::stats::Stats;
use crate::transaction::{Tx, TxOptions};

/// Read one row by id. Answers the row, or [`crate::ErrorKind::NotFound`].
#[derive(Debug, Clone, PartialEq)]
pub struct ReadRequest {
    /// The model's name in the registry.
    pub model: String,
    /// The row's id.
    pub id: Value,
}

/// List one page of rows matching a query, with the total count.
#[derive(Debug, Clone, PartialEq)]
pub struct ListRequest {
    /// The model's name in the registry.
    pub model: String,
    /// Filter, sort and page window.
    pub query: Query,
}

/// Change data. Every write answers the row as it is after the write (for a
/// delete: as it was), or [`crate::ErrorKind::NotFound`].
#[derive(Debug, Clone, PartialEq)]
pub struct WriteRequest {
    /// The model's name in the registry.
    pub model: String,
    /// What to do.
    pub op: WriteOp,
}

/// The three writes.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    /// Insert a row. Fields left out take their defaults; `id` is generated
    /// when absent (see [`crate::PrimaryKey`]).
    Create(Record),
    /// Change only the fields in `patch`; `updated_at` is set to `now()`.
    Update {
        /// The row's id.
        id: Value,
        /// The fields to change.
        patch: Record,
    },
    /// Delete a row.
    Delete {
        /// The row's id.
        id: Value,
    },
}

/// The write shorthands `create`, `update` and `delete`, over the `write`
/// method of the handle they are expanded in (`Db` and `Tx` share them);
/// `$place` says where the write runs, for the docs.
macro_rules! write_shorthands {
    ($place:literal) => {
        #[doc = concat!("Insert a row", $place, "; answers it as stored (with `id`, defaults, timestamps).")]
        pub async fn create(&self, model: &str, record: Record) -> Result<Record> {
            self.write(model, WriteOp::Create(record)).await
        }

        #[doc = concat!("Change only the fields in `patch`", $place, "; answers the row as updated.")]
        pub async fn update(&self, model: &str, id: impl Into<Value>, patch: Record) -> Result<Record> {
            self.write(model, WriteOp::Update { id: id.into(), patch }).await
        }

        #[doc = concat!("Delete a row", $place, "; answers it as it was.")]
        pub async fn delete(&self, model: &str, id: impl Into<Value>) -> Result<Record> {
            self.write(model, WriteOp::Delete { id: id.into() }).await
        }
    };
}
pub(crate) use write_shorthands;

impl WriteOp {
    /// `create`, `update` or `delete`, as spans name the operation.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            WriteOp::Create(_) => "create",
            WriteOp::Update { .. } => "update",
            WriteOp::Delete { .. } => "delete",
        }
    }
}

/// The messages the adapter's supervisor takes. Send them from any ractor
/// actor with `call!`, or use the [`crate::Db`] handle, which does the same.
///
/// `Read` and `List` run on the read pool (the replica when one is
/// configured); `Write` runs on the write pool.
///
/// ```no_run
/// # async fn demo(db: pgactor::Db) -> Result<(), Box<dyn std::error::Error>> {
/// use pgactor::{DbMsg, ReadRequest};
/// let req = ReadRequest { model: "StockBalance".into(), id: uuid::Uuid::nil().into() };
/// let row = ractor::call!(db.actor(), DbMsg::Read, req)?;
/// # let _ = row; Ok(()) }
/// ```
#[derive(Debug)]
pub enum DbMsg {
    /// See [`ReadRequest`].
    Read(ReadRequest, RpcReplyPort<Result<Record>>),
    /// See [`ListRequest`].
    List(ListRequest, RpcReplyPort<Result<Page>>),
    /// See [`WriteRequest`].
    Write(WriteRequest, RpcReplyPort<Result<Record>>),
    /// Start a transaction: answers a [`Tx`] whose actor holds one write
    /// connection until commit or rollback.
    Begin(TxOptions, RpcReplyPort<Result<Tx>>),
    /// The pools' statistics now (answered at once, no I/O).
    Stats(RpcReplyPort<Stats>),
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
