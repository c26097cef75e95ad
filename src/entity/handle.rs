//! The typed operations on an entity: [`Typed`] on a [`Db`], [`TypedTx`]
//! inside a transaction. Each runs the model operation of the same name
//! and decodes the rows straight from the driver's into the entity.

use std::marker::PhantomData;

use ractor::RpcReplyPort;

use crate::config::Role;
use crate::db::Db;
use crate::error::Result;
use crate::messages::{
    AggregateRequest, BulkOp, BulkWriteRequest, Call, CountMany, CountRequest, CreateManyRequest,
    ExistsRequest, IncrementRequest, ListRequest, ReadFieldsRequest, ReadRequest, UpsertRequest,
    Upserted, WriteOp, WriteRequest,
};
use crate::pool::{
    AsType, Decoded, LockForUpdate, LockNext, LockNowait, Plan, Request, TypedRequest,
};
use crate::raw::FromRow;
use crate::schema::{Aggregate, Filter, Page, Query, Record, Value};
use crate::sql::OnConflict;
use crate::supervisor::DbMsg;
use crate::tx::{Tx, TxMsg, TypedTxRequest};

use super::{Column, Entity, Partial};

/// `req` answered as `T` rather than as records.
fn typed<T: Entity, R>(req: R) -> Decoded<R, AsType<T>> {
    Decoded::new(req)
}

fn read<T: Entity>(id: Value) -> ReadRequest {
    ReadRequest {
        model: T::MODEL.into(),
        id,
    }
}

fn list<T: Entity>(query: Query) -> ListRequest {
    ListRequest {
        model: T::MODEL.into(),
        query,
    }
}

/// The read of the row `id`'s fields of `P`, answered as a `P`.
fn partial_read<P: Partial>(id: Value) -> Decoded<ReadFieldsRequest, AsType<P>> {
    let model = <P::Of as Entity>::MODEL;
    Decoded::new(ReadFieldsRequest::new(model, id, P::FIELDS.iter().copied()))
}

/// The list of `query` selecting the fields of `P`, answered as `P`s.
fn partial_list<P: Partial>(query: Query) -> Decoded<ListRequest, AsType<P>> {
    Decoded::new(list::<P::Of>(query.select(P::FIELDS.iter().copied())))
}

fn write<T: Entity>(op: WriteOp) -> WriteRequest {
    WriteRequest {
        model: T::MODEL.into(),
        op,
    }
}

/// The create of `row`.
fn create<T: Entity>(row: &T) -> WriteRequest {
    write::<T>(WriteOp::Create(inserted(row)))
}

/// What an insert of `row` writes: its record without the version, which
/// starts at the column's default (and which an upsert's update adds 1 to).
fn inserted<T: Entity>(row: &T) -> Record {
    let mut record = row.to_record();
    if let Some(version) = T::VERSION {
        record.remove(version);
    }
    record
}

fn aggregation<T: Entity>(aggregate: Aggregate) -> AggregateRequest {
    AggregateRequest {
        model: T::MODEL.into(),
        aggregate,
    }
}

fn bulk<T: Entity>(filter: Filter, op: BulkOp) -> BulkWriteRequest {
    BulkWriteRequest {
        model: T::MODEL.into(),
        filter,
        op,
    }
}

fn increment<T: Entity, V: Into<Value>>(
    id: Value,
    column: Column<T, V>,
    by: V,
    guard: Option<Filter>,
) -> IncrementRequest {
    IncrementRequest {
        model: T::MODEL.into(),
        id,
        field: column.name().into(),
        by: by.into(),
        guard,
    }
}

fn many<'a, T: Entity>(rows: impl IntoIterator<Item = &'a T>) -> CreateManyRequest {
    CreateManyRequest {
        model: T::MODEL.into(),
        rows: rows.into_iter().map(inserted).collect(),
    }
}

fn upsert<'a, T: Entity>(
    rows: impl IntoIterator<Item = &'a T>,
    on: &[&str],
    action: OnConflict,
) -> UpsertRequest {
    UpsertRequest {
        model: T::MODEL.into(),
        rows: rows.into_iter().map(inserted).collect(),
        on: on.iter().map(|&f| f.to_owned()).collect(),
        action,
    }
}

/// The typed batch writes [`Typed`] and [`TypedTx`] share, over the `run`
/// method of the handle they are expanded in; `$place` says where they run
/// and `$in_transaction` whether the handle is a transaction's.
macro_rules! typed_batch_writes {
    ($place:literal, $in_transaction:literal) => {
        #[doc = concat!("Insert `rows` ", $place, " in one statement and answer them as stored, in the order given (as [`Db::create_many`]).")]
        ///
        /// ```no_run
        /// # #[derive(Default, pgactor::Entity)] struct StockBalance { id: uuid::Uuid, sku: String, quantity: i64 }
        /// # async fn demo(db: pgactor::Db) -> pgactor::Result<()> {
        /// let rows: Vec<StockBalance> = (0..100)
        ///     .map(|n| StockBalance { sku: format!("SKU-{n}"), quantity: n, ..Default::default() })
        ///     .collect();
        /// let stored = db.typed::<StockBalance>().create_many(&rows).await?;
        /// # let _ = stored; Ok(()) }
        /// ```
        pub async fn create_many(&self, rows: &[T]) -> Result<Vec<T>> {
            self.run(Role::Write, typed::<T, _>(many::<T>(rows))).await
        }

        #[doc = concat!("Insert `rows` ", $place, " and answer how many were inserted: copied in from [`crate::COPY_MIN_ROWS`] rows on (as [`Db::create_many_count`]).")]
        pub async fn create_many_count(&self, rows: &[T]) -> Result<u64> {
            let req = CountMany {
                req: many::<T>(rows),
                in_transaction: $in_transaction,
            };
            self.run(Role::Write, req).await
        }

        #[doc = concat!("Insert `row` ", $place, ", or update (or leave) the row that holds its key `on` already; answers which it did (as [`Db::upsert`]).")]
        ///
        /// ```no_run
        /// # #[derive(Default, pgactor::Entity)] struct StockBalance { id: uuid::Uuid, #[pgactor(unique)] sku: String, quantity: i64 }
        /// # async fn demo(db: pgactor::Db) -> pgactor::Result<()> {
        /// use pgactor::{OnConflict, Upserted};
        /// let row = StockBalance { sku: "A-1".into(), quantity: 5, ..Default::default() };
        /// let done = db.typed::<StockBalance>().upsert(&row, &["sku"], OnConflict::Update).await?;
        /// assert!(matches!(done, Upserted::Inserted(_) | Upserted::Updated(_)));
        /// # Ok(()) }
        /// ```
        pub async fn upsert(&self, row: &T, on: &[&str], action: OnConflict) -> Result<Upserted<T>> {
            let answer = self
                .run(Role::Write, typed::<T, _>(upsert::<T>([row], on, action)))
                .await?;
            answer
                .into_iter()
                .next()
                .ok_or_else(|| crate::Error::decode("the upsert answered nothing for its row"))
        }

        #[doc = concat!("Upsert `rows` ", $place, " in one statement; answers one [`Upserted`] per row, in the order given (as [`Db::upsert_many`]).")]
        pub async fn upsert_many(
            &self,
            rows: &[T],
            on: &[&str],
            action: OnConflict,
        ) -> Result<Vec<Upserted<T>>> {
            self.run(Role::Write, typed::<T, _>(upsert::<T>(rows, on, action)))
                .await
        }
    };
}

/// The typed operations [`Typed`] and [`TypedTx`] share, over the `run`
/// method of the handle they are expanded in; `$place` says where they
/// run and `$on` names the handle's owner in the examples.
macro_rules! typed_operations {
    ($place:literal, $on:literal, $owner:literal) => {
        #[doc = concat!("Read one row by id ", $place, "; [`crate::ErrorKind::NotFound`] when absent.")]
        pub async fn read(&self, id: impl Into<Value>) -> Result<T> {
            self.run(Role::Read, typed::<T, _>(read::<T>(id.into()))).await
        }

        #[doc = concat!("List a page of rows ", $place, ".")]
        pub async fn list(&self, query: Query) -> Result<Page<T>> {
            self.run(Role::Read, typed::<T, _>(list::<T>(query))).await
        }

        #[doc = concat!("Read only the fields of the partial `P` of the row `id` ", $place, ", decoded into a `P` (as [`Db::read_fields`]: only those columns and `id` are read); [`crate::ErrorKind::NotFound`] when absent.")]
        pub async fn read_as<P: Partial<Of = T>>(&self, id: impl Into<Value>) -> Result<P> {
            self.run(Role::Read, partial_read::<P>(id.into())).await
        }

        #[doc = concat!("List a page of rows ", $place, ", selecting only the fields of the partial `P` (and `id`), each row decoded into a `P` (the query's own [`Query::select`] is replaced; its includes are loaded as [`Self::list`]'s).")]
        ///
        /// ```no_run
        /// # #[derive(pgactor::Entity)] struct StockBalance { id: uuid::Uuid, sku: String, quantity: i64, note: Option<String> }
        /// # #[derive(pgactor::Partial)] #[pgactor(of = StockBalance)] struct SkuQty { sku: String, quantity: i64 }
        #[doc = concat!("# async fn demo(", $on, ": pgactor::", $owner, ") -> pgactor::Result<()> {")]
        /// use pgactor::Query;
        #[doc = concat!("let page = ", $on, ".typed::<StockBalance>().list_as::<SkuQty>(Query::new().sort_desc(StockBalance::QUANTITY)).await?;")]
        /// # let _ = page; Ok(()) }
        /// ```
        pub async fn list_as<P: Partial<Of = T>>(&self, query: Query) -> Result<Page<P>> {
            self.run(Role::Read, partial_list::<P>(query)).await
        }

        #[doc = concat!("How many rows match `filter` ", $place, " (as [`Db::count`]).")]
        pub async fn count(&self, filter: Filter) -> Result<u64> {
            let req = CountRequest { model: T::MODEL.into(), filter };
            self.run(Role::Read, req).await
        }

        #[doc = concat!("Whether any row matches `filter` ", $place, " (as [`Db::exists`]).")]
        pub async fn exists(&self, filter: Filter) -> Result<bool> {
            let req = ExistsRequest { model: T::MODEL.into(), filter };
            self.run(Role::Read, req).await
        }

        #[doc = concat!("Aggregate the rows ", $place, ", one record per group (as [`Db::aggregate`]).")]
        pub async fn aggregate(&self, aggregate: Aggregate) -> Result<Vec<Record>> {
            self.run(Role::Read, aggregation::<T>(aggregate)).await
        }

        #[doc = concat!("Aggregate the rows ", $place, ", each group decoded into an `R` (as [`Db::aggregate_as`]).")]
        ///
        /// ```no_run
        /// # #[derive(pgactor::Entity)] struct StockBalance { id: uuid::Uuid, sku: String, quantity: i64 }
        #[doc = concat!("# async fn demo(", $on, ": pgactor::", $owner, ") -> pgactor::Result<()> {")]
        /// use pgactor::Aggregate;
        /// let by_sku = Aggregate::new().group_by(StockBalance::SKU.name()).sum_as("total", "quantity");
        #[doc = concat!("let totals: Vec<(String, Option<i64>)> = ", $on, ".typed::<StockBalance>().aggregate_as(by_sku).await?;")]
        /// # let _ = totals; Ok(()) }
        /// ```
        pub async fn aggregate_as<R: FromRow + Send + 'static>(&self, aggregate: Aggregate) -> Result<Vec<R>> {
            let req = Decoded::<_, AsType<R>>::new(aggregation::<T>(aggregate));
            self.run(Role::Read, req).await
        }

        #[doc = concat!("Insert `row` ", $place, " (its `id`, timestamps and version are the adapter's) and answer the stored row.")]
        pub async fn create(&self, row: &T) -> Result<T> {
            self.run(Role::Write, typed::<T, _>(create(row))).await
        }

        #[doc = concat!("Write every field of `row` to the row `id` ", $place, " and answer the stored row; [`crate::ErrorKind::NotFound`] when absent. On a versioned entity the row must still be at `row`'s version, or nothing changes and the answer is [`crate::ErrorKind::Conflict`].")]
        pub async fn update(&self, id: impl Into<Value>, row: &T) -> Result<T> {
            self.patch(id, row.to_record()).await
        }

        #[doc = concat!("Write only the fields of `patch` to the row `id` ", $place, " (the others stay as they are) and answer the stored row; [`crate::ErrorKind::NotFound`] when absent.")]
        ///
        /// ```no_run
        /// # #[derive(pgactor::Entity)] struct StockBalance { id: uuid::Uuid, quantity: i64 }
        #[doc = concat!("# async fn demo(", $on, ": pgactor::", $owner, ", id: uuid::Uuid) -> pgactor::Result<()> {")]
        /// use pgactor::Record;
        #[doc = concat!("let stock = ", $on, ".typed::<StockBalance>().patch(id, Record::new().with(\"quantity\", 0_i64)).await?;")]
        /// # let _ = stock; Ok(()) }
        /// ```
        pub async fn patch(&self, id: impl Into<Value>, patch: Record) -> Result<T> {
            let op = WriteOp::Update {
                id: id.into(),
                patch,
            };
            self.run(Role::Write, typed::<T, _>(write::<T>(op))).await
        }

        #[doc = concat!("Delete the row `id` ", $place, " and answer it as it was; [`crate::ErrorKind::NotFound`] when absent. On a soft-delete entity (`#[pgactor(soft_delete)]`) it sets `deleted_at` (as [`Db::delete`]).")]
        pub async fn delete(&self, id: impl Into<Value>) -> Result<T> {
            let op = WriteOp::Delete { id: id.into() };
            self.run(Role::Write, typed::<T, _>(write::<T>(op))).await
        }

        #[doc = concat!("Restore the soft-deleted row `id` ", $place, " and answer it as restored (as [`Db::restore`]).")]
        pub async fn restore(&self, id: impl Into<Value>) -> Result<T> {
            let op = WriteOp::Restore { id: id.into() };
            self.run(Role::Write, typed::<T, _>(write::<T>(op))).await
        }

        #[doc = concat!("Remove the row `id` for good ", $place, ", soft-deleted or live, and answer it as it was (as [`Db::hard_delete`]).")]
        pub async fn hard_delete(&self, id: impl Into<Value>) -> Result<T> {
            let op = WriteOp::HardDelete { id: id.into() };
            self.run(Role::Write, typed::<T, _>(write::<T>(op))).await
        }

        #[doc = concat!("Write the fields of `patch` to every row matching `filter` ", $place, " and answer how many changed (as [`Db::update_where`]).")]
        pub async fn update_where(&self, filter: Filter, patch: Record) -> Result<u64> {
            self.run(Role::Write, bulk::<T>(filter, BulkOp::Update(patch))).await
        }

        #[doc = concat!("Delete every row matching `filter` ", $place, " and answer how many were deleted (as [`Db::delete_where`]).")]
        pub async fn delete_where(&self, filter: Filter) -> Result<u64> {
            self.run(Role::Write, bulk::<T>(filter, BulkOp::Delete)).await
        }

        #[doc = concat!("Remove every row matching `filter` for good ", $place, ", soft-deleted or live, and answer how many were removed (as [`Db::hard_delete_where`]).")]
        pub async fn hard_delete_where(&self, filter: Filter) -> Result<u64> {
            self.run(Role::Write, bulk::<T>(filter, BulkOp::HardDelete)).await
        }

        #[doc = concat!("Add `by` to `column` of the row `id` when the row matches `guard`, in one statement ", $place, ", and answer the row as updated (as [`Db::increment`]: [`crate::ErrorKind::Conflict`] when the guard fails, [`crate::ErrorKind::NotFound`] when no row has the id).")]
        pub async fn increment<V: Into<Value>>(
            &self,
            id: impl Into<Value>,
            column: Column<T, V>,
            by: V,
            guard: Option<Filter>,
        ) -> Result<T> {
            let req = typed::<T, _>(increment(id.into(), column, by, guard));
            self.run(Role::Write, req).await
        }
    };
}

/// The typed operations on entity `T` through a [`Db`]
/// ([`Db::typed`]): the same routing, deadlines, tokens and errors as the
/// `Db` methods of the same names, the rows decoded into `T`.
///
/// ```no_run
/// # async fn demo(db: pgactor::Db) -> pgactor::Result<()> {
/// use pgactor::Query;
///
/// #[derive(Debug, Default, pgactor::Entity)]
/// struct StockBalance {
///     id: uuid::Uuid,
///     #[pgactor(unique)]
///     sku: String,
///     quantity: i64,
/// }
///
/// let stock = db.typed::<StockBalance>();
/// let created = stock.create(&StockBalance { sku: "A-1".into(), quantity: 5, ..Default::default() }).await?;
/// let low = stock.list(Query::new().filter(StockBalance::QUANTITY.lt(10))).await?;
/// # let _ = (created, low); Ok(()) }
/// ```
pub struct Typed<T> {
    db: Db,
    entity: PhantomData<fn() -> T>,
}

impl<T> Clone for Typed<T> {
    fn clone(&self) -> Self {
        Typed {
            db: self.db.clone(),
            entity: PhantomData,
        }
    }
}

impl<T: Entity> std::fmt::Debug for Typed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Typed({})", T::MODEL)
    }
}

impl Db {
    /// The typed operations on entity `T`, with this handle's query
    /// timeout and consistency token.
    pub fn typed<T: Entity>(&self) -> Typed<T> {
        Typed {
            db: self.clone(),
            entity: PhantomData,
        }
    }
}

impl<T: Entity> Typed<T> {
    /// Run `req` on the pool of `role`, with this handle's timeout and token.
    async fn run<R: Request>(&self, role: Role, req: R) -> Result<<R::Plan as Plan>::Output> {
        self.db.run(role, req).await
    }

    typed_operations!(
        "through the `Db` (reads on the read pool, writes on the primary)",
        "db",
        "Db"
    );

    typed_batch_writes!("on the primary", false);
}

/// The typed operations on entity `T` inside a transaction
/// ([`Tx::typed`]), on its connection, in order with its other statements.
pub struct TypedTx<T> {
    tx: Tx,
    entity: PhantomData<fn() -> T>,
}

impl<T> Clone for TypedTx<T> {
    fn clone(&self) -> Self {
        TypedTx {
            tx: self.tx.clone(),
            entity: PhantomData,
        }
    }
}

impl<T: Entity> std::fmt::Debug for TypedTx<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TypedTx({})", T::MODEL)
    }
}

impl Tx {
    /// The typed operations on entity `T` inside this transaction.
    pub fn typed<T: Entity>(&self) -> TypedTx<T> {
        TypedTx {
            tx: self.clone(),
            entity: PhantomData,
        }
    }
}

impl<T: Entity> TypedTx<T> {
    /// Run `req` on the transaction's connection (every role's).
    async fn run<R: Request>(&self, _: Role, req: R) -> Result<<R::Plan as Plan>::Output> {
        self.tx.run(req).await
    }

    typed_operations!("inside the transaction", "tx", "Tx");

    typed_batch_writes!("inside the transaction", true);

    /// Read one row and lock it until the transaction ends
    /// ([`Tx::lock_for_update`]).
    pub async fn lock_for_update(&self, id: impl Into<Value>) -> Result<T> {
        let req = typed::<T, _>(LockForUpdate(read::<T>(id.into())));
        self.run(Role::Write, req).await
    }

    /// Read one row and lock it, or [`crate::ErrorKind::Conflict`] at once
    /// when another transaction holds it ([`Tx::lock_for_update_nowait`]).
    pub async fn lock_for_update_nowait(&self, id: impl Into<Value>) -> Result<T> {
        let req = typed::<T, _>(LockNowait(read::<T>(id.into())));
        self.run(Role::Write, req).await
    }

    /// Take and lock the next rows no other transaction holds
    /// ([`Tx::lock_next`]).
    pub async fn lock_next(&self, query: Query) -> Result<Vec<T>> {
        let req = typed::<T, _>(LockNext(list::<T>(query)));
        self.run(Role::Write, req).await
    }
}

/// The typed operations as messages to the supervisor, for `call!` from
/// ractor code: the same as [`Typed`]'s methods, routed and bounded as
/// [`DbMsg::Read`], [`DbMsg::List`] and [`DbMsg::Write`].
///
/// ```no_run
/// # #[derive(pgactor::Entity)] struct StockBalance { id: uuid::Uuid, quantity: i64 }
/// # async fn demo(db: pgactor::Db, id: uuid::Uuid) -> Result<(), Box<dyn std::error::Error>> {
/// use pgactor::{Call, DbMsg};
/// let stock = ractor::call!(db.actor(), DbMsg::read_as::<StockBalance>, id.into(), Call::here())??;
/// # let _ = stock; Ok(()) }
/// ```
impl DbMsg {
    /// [`Typed::read`] as a message.
    pub fn read_as<T: Entity>(id: Value, call: Call, reply: RpcReplyPort<Result<T>>) -> DbMsg {
        let req = typed::<T, _>(read::<T>(id));
        DbMsg::Typed(TypedRequest::new(Role::Read, req, reply), call)
    }

    /// [`Typed::list`] as a message.
    pub fn list_as<T: Entity>(
        query: Query,
        call: Call,
        reply: RpcReplyPort<Result<Page<T>>>,
    ) -> DbMsg {
        let req = typed::<T, _>(list::<T>(query));
        DbMsg::Typed(TypedRequest::new(Role::Read, req, reply), call)
    }

    /// [`Typed::read_as`] as a message: some fields of a row, as the
    /// partial `P`.
    pub fn read_partial<P: Partial>(
        id: Value,
        call: Call,
        reply: RpcReplyPort<Result<P>>,
    ) -> DbMsg {
        DbMsg::Typed(
            TypedRequest::new(Role::Read, partial_read::<P>(id), reply),
            call,
        )
    }

    /// [`Typed::list_as`] as a message: a page of the partial `P`.
    pub fn list_partial<P: Partial>(
        query: Query,
        call: Call,
        reply: RpcReplyPort<Result<Page<P>>>,
    ) -> DbMsg {
        DbMsg::Typed(
            TypedRequest::new(Role::Read, partial_list::<P>(query), reply),
            call,
        )
    }

    /// [`Typed::create`] as a message.
    pub fn create_as<T: Entity>(row: T, call: Call, reply: RpcReplyPort<Result<T>>) -> DbMsg {
        let req = typed::<T, _>(create(&row));
        DbMsg::Typed(TypedRequest::new(Role::Write, req, reply), call)
    }

    /// [`Typed::update`] as a message.
    pub fn update_as<T: Entity>(
        id: Value,
        row: T,
        call: Call,
        reply: RpcReplyPort<Result<T>>,
    ) -> DbMsg {
        let patch = row.to_record();
        let req = typed::<T, _>(write::<T>(WriteOp::Update { id, patch }));
        DbMsg::Typed(TypedRequest::new(Role::Write, req, reply), call)
    }

    /// [`Typed::delete`] as a message.
    pub fn delete_as<T: Entity>(id: Value, call: Call, reply: RpcReplyPort<Result<T>>) -> DbMsg {
        let req = typed::<T, _>(write::<T>(WriteOp::Delete { id }));
        DbMsg::Typed(TypedRequest::new(Role::Write, req, reply), call)
    }

    /// [`Typed::restore`] as a message.
    pub fn restore_as<T: Entity>(id: Value, call: Call, reply: RpcReplyPort<Result<T>>) -> DbMsg {
        let req = typed::<T, _>(write::<T>(WriteOp::Restore { id }));
        DbMsg::Typed(TypedRequest::new(Role::Write, req, reply), call)
    }

    /// [`Typed::hard_delete`] as a message.
    pub fn hard_delete_as<T: Entity>(
        id: Value,
        call: Call,
        reply: RpcReplyPort<Result<T>>,
    ) -> DbMsg {
        let req = typed::<T, _>(write::<T>(WriteOp::HardDelete { id }));
        DbMsg::Typed(TypedRequest::new(Role::Write, req, reply), call)
    }

    /// [`Typed::update_where`] as a message.
    pub fn update_where_as<T: Entity>(
        filter: Filter,
        patch: Record,
        call: Call,
        reply: RpcReplyPort<Result<u64>>,
    ) -> DbMsg {
        DbMsg::bulk_write(bulk::<T>(filter, BulkOp::Update(patch)), call, reply)
    }

    /// [`Typed::delete_where`] as a message.
    pub fn delete_where_as<T: Entity>(
        filter: Filter,
        call: Call,
        reply: RpcReplyPort<Result<u64>>,
    ) -> DbMsg {
        DbMsg::bulk_write(bulk::<T>(filter, BulkOp::Delete), call, reply)
    }

    /// [`Typed::hard_delete_where`] as a message.
    pub fn hard_delete_where_as<T: Entity>(
        filter: Filter,
        call: Call,
        reply: RpcReplyPort<Result<u64>>,
    ) -> DbMsg {
        DbMsg::bulk_write(bulk::<T>(filter, BulkOp::HardDelete), call, reply)
    }

    /// [`Typed::increment`] as a message.
    pub fn increment_as<T: Entity, V: Into<Value>>(
        id: Value,
        column: Column<T, V>,
        by: V,
        guard: Option<Filter>,
        call: Call,
        reply: RpcReplyPort<Result<T>>,
    ) -> DbMsg {
        let req = typed::<T, _>(increment(id, column, by, guard));
        DbMsg::Typed(TypedRequest::new(Role::Write, req, reply), call)
    }

    /// [`Typed::create_many`] as a message.
    pub fn create_many_as<T: Entity>(
        rows: Vec<T>,
        call: Call,
        reply: RpcReplyPort<Result<Vec<T>>>,
    ) -> DbMsg {
        let req = typed::<T, _>(many::<T>(&rows));
        DbMsg::Typed(TypedRequest::new(Role::Write, req, reply), call)
    }

    /// [`Typed::create_many_count`] as a message.
    pub fn create_many_count_as<T: Entity>(
        rows: Vec<T>,
        call: Call,
        reply: RpcReplyPort<Result<u64>>,
    ) -> DbMsg {
        DbMsg::create_many_count(many::<T>(&rows), call, reply)
    }

    /// [`Typed::upsert_many`] as a message.
    pub fn upsert_as<T: Entity>(
        rows: Vec<T>,
        on: Vec<String>,
        action: OnConflict,
        call: Call,
        reply: RpcReplyPort<Result<Vec<Upserted<T>>>>,
    ) -> DbMsg {
        let on: Vec<&str> = on.iter().map(String::as_str).collect();
        let req = typed::<T, _>(upsert::<T>(&rows, &on, action));
        DbMsg::Typed(TypedRequest::new(Role::Write, req, reply), call)
    }
}

/// The typed operations as messages to a transaction's actor
/// ([`Tx::actor`]), for `call!` from ractor code: the same as
/// [`TypedTx`]'s methods.
impl TxMsg {
    /// [`TypedTx::read`] as a message.
    pub fn read_as<T: Entity>(id: Value, reply: RpcReplyPort<Result<T>>) -> TxMsg {
        TxMsg::Typed(TypedTxRequest::new(typed::<T, _>(read::<T>(id)), reply))
    }

    /// [`TypedTx::lock_for_update`] as a message.
    pub fn lock_for_update_as<T: Entity>(id: Value, reply: RpcReplyPort<Result<T>>) -> TxMsg {
        let req = typed::<T, _>(LockForUpdate(read::<T>(id)));
        TxMsg::Typed(TypedTxRequest::new(req, reply))
    }

    /// [`TypedTx::lock_next`] as a message.
    pub fn lock_next_as<T: Entity>(query: Query, reply: RpcReplyPort<Result<Vec<T>>>) -> TxMsg {
        let req = typed::<T, _>(LockNext(list::<T>(query)));
        TxMsg::Typed(TypedTxRequest::new(req, reply))
    }

    /// [`Tx::lock_next`] as a message.
    pub fn lock_next(
        model: String,
        query: Query,
        reply: RpcReplyPort<Result<Vec<Record>>>,
    ) -> TxMsg {
        let req = LockNext(ListRequest { model, query });
        TxMsg::Typed(TypedTxRequest::new(req, reply))
    }

    /// [`TypedTx::list`] as a message.
    pub fn list_as<T: Entity>(query: Query, reply: RpcReplyPort<Result<Page<T>>>) -> TxMsg {
        TxMsg::Typed(TypedTxRequest::new(typed::<T, _>(list::<T>(query)), reply))
    }

    /// [`TypedTx::read_as`] as a message: some fields of a row, as the
    /// partial `P`.
    pub fn read_partial<P: Partial>(id: Value, reply: RpcReplyPort<Result<P>>) -> TxMsg {
        TxMsg::Typed(TypedTxRequest::new(partial_read::<P>(id), reply))
    }

    /// [`TypedTx::list_as`] as a message: a page of the partial `P`.
    pub fn list_partial<P: Partial>(query: Query, reply: RpcReplyPort<Result<Page<P>>>) -> TxMsg {
        TxMsg::Typed(TypedTxRequest::new(partial_list::<P>(query), reply))
    }

    /// [`TypedTx::create`] as a message.
    pub fn create_as<T: Entity>(row: T, reply: RpcReplyPort<Result<T>>) -> TxMsg {
        let req = typed::<T, _>(create(&row));
        TxMsg::Typed(TypedTxRequest::new(req, reply))
    }

    /// [`TypedTx::update`] as a message.
    pub fn update_as<T: Entity>(id: Value, row: T, reply: RpcReplyPort<Result<T>>) -> TxMsg {
        let patch = row.to_record();
        let req = typed::<T, _>(write::<T>(WriteOp::Update { id, patch }));
        TxMsg::Typed(TypedTxRequest::new(req, reply))
    }

    /// [`TypedTx::delete`] as a message.
    pub fn delete_as<T: Entity>(id: Value, reply: RpcReplyPort<Result<T>>) -> TxMsg {
        let req = typed::<T, _>(write::<T>(WriteOp::Delete { id }));
        TxMsg::Typed(TypedTxRequest::new(req, reply))
    }

    /// [`TypedTx::restore`] as a message.
    pub fn restore_as<T: Entity>(id: Value, reply: RpcReplyPort<Result<T>>) -> TxMsg {
        let req = typed::<T, _>(write::<T>(WriteOp::Restore { id }));
        TxMsg::Typed(TypedTxRequest::new(req, reply))
    }

    /// [`TypedTx::hard_delete`] as a message.
    pub fn hard_delete_as<T: Entity>(id: Value, reply: RpcReplyPort<Result<T>>) -> TxMsg {
        let req = typed::<T, _>(write::<T>(WriteOp::HardDelete { id }));
        TxMsg::Typed(TypedTxRequest::new(req, reply))
    }

    /// [`TypedTx::update_where`] as a message.
    pub fn update_where_as<T: Entity>(
        filter: Filter,
        patch: Record,
        reply: RpcReplyPort<Result<u64>>,
    ) -> TxMsg {
        TxMsg::bulk_write(bulk::<T>(filter, BulkOp::Update(patch)), reply)
    }

    /// [`TypedTx::delete_where`] as a message.
    pub fn delete_where_as<T: Entity>(filter: Filter, reply: RpcReplyPort<Result<u64>>) -> TxMsg {
        TxMsg::bulk_write(bulk::<T>(filter, BulkOp::Delete), reply)
    }

    /// [`TypedTx::hard_delete_where`] as a message.
    pub fn hard_delete_where_as<T: Entity>(
        filter: Filter,
        reply: RpcReplyPort<Result<u64>>,
    ) -> TxMsg {
        TxMsg::bulk_write(bulk::<T>(filter, BulkOp::HardDelete), reply)
    }

    /// [`TypedTx::increment`] as a message.
    pub fn increment_as<T: Entity, V: Into<Value>>(
        id: Value,
        column: Column<T, V>,
        by: V,
        guard: Option<Filter>,
        reply: RpcReplyPort<Result<T>>,
    ) -> TxMsg {
        let req = typed::<T, _>(increment(id, column, by, guard));
        TxMsg::Typed(TypedTxRequest::new(req, reply))
    }

    /// [`TypedTx::create_many`] as a message.
    pub fn create_many_as<T: Entity>(rows: Vec<T>, reply: RpcReplyPort<Result<Vec<T>>>) -> TxMsg {
        TxMsg::Typed(TypedTxRequest::new(typed::<T, _>(many::<T>(&rows)), reply))
    }

    /// [`TypedTx::create_many_count`] as a message.
    pub fn create_many_count_as<T: Entity>(
        rows: Vec<T>,
        reply: RpcReplyPort<Result<u64>>,
    ) -> TxMsg {
        TxMsg::create_many_count(many::<T>(&rows), reply)
    }

    /// [`TypedTx::upsert_many`] as a message.
    pub fn upsert_as<T: Entity>(
        rows: Vec<T>,
        on: Vec<String>,
        action: OnConflict,
        reply: RpcReplyPort<Result<Vec<Upserted<T>>>>,
    ) -> TxMsg {
        let on: Vec<&str> = on.iter().map(String::as_str).collect();
        let req = typed::<T, _>(upsert::<T>(&rows, &on, action));
        TxMsg::Typed(TypedTxRequest::new(req, reply))
    }
}
