//! The messages a transaction actor takes: [`TxMsg`] from ractor code, and
//! the jobs of [`super::Tx`] methods.

use ractor::RpcReplyPort;

use crate::error::Result;
use crate::messages::{
    AggregateRequest, BulkWriteRequest, ConsistencyToken, CountMany, CountRequest,
    CreateManyRequest, ExistsRequest, IncrementRequest, ListRequest, ReadFieldsRequest,
    ReadRequest, UpsertRequest, Upserted, WriteRequest,
};
use crate::pool::{Answer, AsType, Decoded, Plan, RawRequest, Request};
use crate::raw::{FromRow, Row, Sql};
use crate::schema::{Page, Record};

use super::handoff::Starter;
use super::state::TxState;
use super::steps::{HandOff, Planned, TypedTxRequest};

/// The messages a transaction actor takes. Each runs on the transaction's
/// one connection to the primary, in order, so a transaction reads its own
/// writes even when reads outside it go to a replica.
#[derive(Debug)]
pub enum TxMsg {
    /// Read one row by id.
    Read(ReadRequest, RpcReplyPort<Result<Record>>),
    /// List a page of rows.
    List(ListRequest, RpcReplyPort<Result<Page>>),
    /// Create, update, delete, restore or hard-delete a row.
    Write(WriteRequest, RpcReplyPort<Result<Record>>),
    /// `SELECT … FOR UPDATE`: read the row and lock it until the transaction
    /// ends; [`crate::ErrorKind::NotFound`] when absent.
    LockForUpdate(ReadRequest, RpcReplyPort<Result<Record>>),
    /// Run a statement written by hand and answer its rows (see
    /// [`crate::Tx::query`]).
    Query(Sql, RpcReplyPort<Result<Vec<Row>>>),
    /// Run a statement written by hand and answer how many rows it changed
    /// (see [`crate::Tx::execute`]).
    Execute(Sql, RpcReplyPort<Result<u64>>),
    /// Commit and end the transaction.
    Commit(RpcReplyPort<Result<()>>),
    /// Commit, end the transaction, and answer the primary's WAL position
    /// after the commit (see [`crate::ConsistencyToken`]).
    CommitWithToken(RpcReplyPort<Result<ConsistencyToken>>),
    /// Roll back and end the transaction.
    Rollback(RpcReplyPort<Result<()>>),
    /// An operation whose answer has a type of its own: a typed entity's,
    /// built by `TxMsg::read_as`, `lock_for_update_as`, `list_as`,
    /// `create_as`, `update_as`, `delete_as`, `update_where_as`,
    /// `delete_where_as`, `increment_as`, `restore_as`, `hard_delete_as` and
    /// `hard_delete_where_as`, and the writes by filter and
    /// increments, built by [`TxMsg::bulk_write`] and [`TxMsg::increment`],
    /// the next unlocked rows, by [`TxMsg::lock_next`] and
    /// `lock_next_as`, and the aggregate reads, by [`TxMsg::count`],
    /// [`TxMsg::exists`], [`TxMsg::aggregate`] and [`TxMsg::aggregate_as`]
    /// (for `call!`).
    Typed(TypedTxRequest),
}

/// The writes by filter and the increment as messages to a transaction's
/// actor, for `call!`.
///
/// ```no_run
/// # async fn demo(tx: pgactor::Tx, id: uuid::Uuid) -> Result<(), Box<dyn std::error::Error>> {
/// use pgactor::{Filter, IncrementRequest, TxMsg};
/// let req = IncrementRequest {
///     model: "StockBalance".into(),
///     id: id.into(),
///     field: "quantity".into(),
///     by: (-1_i64).into(),
///     guard: Some(Filter::ge("quantity", 1_i64)),
/// };
/// let row = ractor::call!(tx.actor(), TxMsg::increment, req)??;
/// # let _ = row; Ok(()) }
/// ```
impl TxMsg {
    /// [`crate::Tx::update_where`], [`crate::Tx::delete_where`] or
    /// [`crate::Tx::hard_delete_where`] as a message; answers how many rows
    /// changed.
    pub fn bulk_write(req: BulkWriteRequest, reply: RpcReplyPort<Result<u64>>) -> TxMsg {
        TxMsg::Typed(TypedTxRequest::new(req, reply))
    }

    /// [`crate::Tx::increment`] as a message; answers the row as updated.
    pub fn increment(req: IncrementRequest, reply: RpcReplyPort<Result<Record>>) -> TxMsg {
        TxMsg::Typed(TypedTxRequest::new(req, reply))
    }
}

/// The batch writes as messages to a transaction's actor, for `call!`.
///
/// ```no_run
/// # async fn demo(tx: pgactor::Tx) -> Result<(), Box<dyn std::error::Error>> {
/// use pgactor::{OnConflict, Record, TxMsg, UpsertRequest};
/// let req = UpsertRequest {
///     model: "StockBalance".into(),
///     rows: vec![Record::new().with("sku", "A-1").with("quantity", 3_i64)],
///     on: vec!["sku".into()],
///     action: OnConflict::Update,
/// };
/// let upserted = ractor::call!(tx.actor(), TxMsg::upsert, req)??;
/// # let _ = upserted; Ok(()) }
/// ```
impl TxMsg {
    /// [`crate::Tx::create_many`] as a message; answers the rows as stored.
    pub fn create_many(req: CreateManyRequest, reply: RpcReplyPort<Result<Vec<Record>>>) -> TxMsg {
        TxMsg::Typed(TypedTxRequest::new(req, reply))
    }

    /// [`crate::Tx::create_many_count`] as a message; answers how many rows
    /// were inserted.
    pub fn create_many_count(req: CreateManyRequest, reply: RpcReplyPort<Result<u64>>) -> TxMsg {
        let req = CountMany {
            req,
            in_transaction: true,
        };
        TxMsg::Typed(TypedTxRequest::new(req, reply))
    }

    /// [`crate::Tx::upsert_many`] as a message; answers one [`Upserted`]
    /// per row.
    pub fn upsert(req: UpsertRequest, reply: RpcReplyPort<Result<Vec<Upserted>>>) -> TxMsg {
        TxMsg::Typed(TypedTxRequest::new(req, reply))
    }
}

/// The aggregate reads as messages to a transaction's actor, for `call!`:
/// they see the transaction's own writes.
///
/// ```no_run
/// # async fn demo(tx: pgactor::Tx) -> Result<(), Box<dyn std::error::Error>> {
/// use pgactor::{ExistsRequest, Filter, TxMsg};
/// let req = ExistsRequest { model: "StockBalance".into(), filter: Filter::eq("sku", "A-1") };
/// let taken = ractor::call!(tx.actor(), TxMsg::exists, req)??;
/// # let _ = taken; Ok(()) }
/// ```
impl TxMsg {
    /// [`crate::Tx::count`] as a message.
    pub fn count(req: CountRequest, reply: RpcReplyPort<Result<u64>>) -> TxMsg {
        TxMsg::Typed(TypedTxRequest::new(req, reply))
    }

    /// [`crate::Tx::exists`] as a message.
    pub fn exists(req: ExistsRequest, reply: RpcReplyPort<Result<bool>>) -> TxMsg {
        TxMsg::Typed(TypedTxRequest::new(req, reply))
    }

    /// [`crate::Tx::aggregate`] as a message.
    pub fn aggregate(req: AggregateRequest, reply: RpcReplyPort<Result<Vec<Record>>>) -> TxMsg {
        TxMsg::Typed(TypedTxRequest::new(req, reply))
    }

    /// [`crate::Tx::aggregate_as`] as a message.
    pub fn aggregate_as<R: FromRow + Send + 'static>(
        req: AggregateRequest,
        reply: RpcReplyPort<Result<Vec<R>>>,
    ) -> TxMsg {
        let req = Decoded::<_, AsType<R>>::new(req);
        TxMsg::Typed(TypedTxRequest::new(req, reply))
    }
}

/// A read of some fields as a message to a transaction's actor, for
/// `call!`.
///
/// ```no_run
/// # async fn demo(tx: pgactor::Tx, id: uuid::Uuid) -> Result<(), Box<dyn std::error::Error>> {
/// use pgactor::{ReadFieldsRequest, TxMsg};
/// let req = ReadFieldsRequest::new("StockBalance", id, ["quantity"]);
/// let row = ractor::call!(tx.actor(), TxMsg::read_fields, req)??;
/// # let _ = row; Ok(()) }
/// ```
impl TxMsg {
    /// [`crate::Tx::read_fields`] as a message.
    pub fn read_fields(req: ReadFieldsRequest, reply: RpcReplyPort<Result<Record>>) -> TxMsg {
        TxMsg::Typed(TypedTxRequest::new(req, reply))
    }
}

/// What a transaction actor takes: a [`TxMsg`] from ractor code (sent
/// through the [`ractor::DerivedActorRef`] that [`crate::Tx::actor`]
/// answers), and what only the adapter sends.
pub(crate) enum Inbox {
    /// A ractor caller's message: the actor drives its statement to the
    /// end in the caller's place and answers the reply port.
    Message(TxMsg),
    /// A statement of a [`crate::Tx`] method, whose caller takes the
    /// answer itself (see [`super::handoff`]).
    Drive(Job),
    /// A new transaction for a spare actor.
    Adopt(Box<TxState>),
    /// The actor's periodic look at its transaction: one idle past the
    /// session's `idle_in_transaction_timeout`, or whose connection the
    /// server closed, is ended.
    Watch,
}

impl From<TxMsg> for Inbox {
    fn from(msg: TxMsg) -> Inbox {
        Inbox::Message(msg)
    }
}

/// The way back for a [`TxMsg`] the actor's mailbox refused (ractor hands
/// it back to the sender).
impl TryFrom<Inbox> for TxMsg {
    type Error = Inbox;
    fn try_from(inbox: Inbox) -> std::result::Result<TxMsg, Inbox> {
        match inbox {
            Inbox::Message(msg) => Ok(msg),
            other => Err(other),
        }
    }
}

/// A statement (or the COMMIT or ROLLBACK that ends the transaction),
/// with the actor's end of its answer.
#[derive(Debug)]
pub(crate) enum Job {
    /// A statement of any request (see [`HandOff`]).
    Statement(Box<dyn HandOff>),
    Commit(Starter<()>),
    CommitWithToken(Starter<ConsistencyToken>),
    Rollback(Starter<()>),
    /// `ROLLBACK TO SAVEPOINT` this savepoint.
    RollbackTo(String, Starter<()>),
}

impl Job {
    /// The statement of `req`.
    pub(crate) fn statement<R: Request>(req: R, answer: Starter<<R::Plan as Plan>::Output>) -> Job {
        Job::Statement(Box::new(Planned::new(req, answer)))
    }

    /// A statement written by hand, answering `A`. It runs where data may
    /// change: as the transaction's first statement it waits for BEGIN's
    /// answer, and a lost answer is an unknown outcome.
    pub(crate) fn raw<A: Answer>(sql: Sql, answer: Starter<A>) -> Job {
        Job::statement(RawRequest::<A>::new(sql, true), answer)
    }
}
