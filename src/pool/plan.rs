//! Running one operation on one connection: shared by the pool tasks and,
//! inside transactions, by the transaction actor.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{PgLsn, ToSql, Type};
use tokio_postgres::{Client, Row, RowStream};

use super::conn::Conn;
use super::deadline::{abandon, bounded, Fate, Overrun, Timer};
use super::include::load;
use super::prepared::MAX_PREPARED_TEXT;

use crate::error::{Error, ErrorKind, Result};
use crate::messages::{
    BulkOp, BulkWriteRequest, ConsistencyToken, IncrementRequest, ListRequest, ReadFieldsRequest,
    ReadRequest, WriteOp, WriteRequest,
};
use crate::raw::{unspecified, BindError, FromRow};
use crate::schema::{
    record_of, Columns, Included, Model, Page, Query, Record, Value, DEFAULT_LIMIT,
};
use crate::sql::{Catalog, Includes, Listing, Param, Statement, Statements, Table};

/// Turn a row of a table's statement into a record, column by column.
/// A statement may answer columns of its own after the model's (an
/// upsert's flag), which are not the record's.
fn record(columns: &Arc<Columns>, row: &Row) -> Result<Record> {
    if row.len() < columns.len() {
        return Err(Error::decode(format!(
            "the row has {} columns where the model has {}",
            row.len(),
            columns.len()
        )));
    }
    record_of(columns, row)
}

pub(super) async fn query(
    client: &Conn,
    stmt: &Statement,
    write: bool,
    mode: Statements,
) -> Result<Vec<Row>> {
    collect(start(client, stmt, write, mode).await?, write).await
}

/// Send one of a table's statements; its rows come on the stream.
pub(super) async fn start(
    client: &Conn,
    stmt: &Statement,
    write: bool,
    mode: Statements,
) -> Result<RowStream> {
    send(client, &stmt.sql, Binds::Paired(&stmt.params), mode, write).await
}

/// How many rows the statement of `stream` inserted, updated, deleted or
/// answered; rows it answers are read and dropped as they come.
pub(crate) async fn count(stream: RowStream, write: bool) -> Result<u64> {
    let mut stream = pin!(stream);
    while stream
        .try_next()
        .await
        .map_err(|e| Error::from_statement(e, write))?
        .is_some()
    {}
    Ok(stream.rows_affected().unwrap_or(0))
}

/// Every row of `stream`.
pub(crate) async fn collect(stream: RowStream, write: bool) -> Result<Vec<Row>> {
    stream
        .try_collect()
        .await
        .map_err(|e| Error::from_statement(e, write))
}

/// Whether [`send`] puts `stmt` on the wire at its first poll, without
/// waiting for a prepare first: sent unnamed, or prepared on `client`
/// already.
fn sent_at_once(client: &Conn, stmt: &Statement, mode: Statements) -> bool {
    let binds = Binds::Paired(&stmt.params);
    let long = stmt.sql.len() > MAX_PREPARED_TEXT;
    mode == Statements::Unnamed
        || (long && binds.all_typed())
        || (!long && client.prepared.get(&stmt.sql, binds.types()).is_some())
}

/// A statement's parameter types and values as [`send`] reads them: in
/// place, so a statement its connection has prepared already is bound
/// with no copy of either (only a statement prepared now, or sent
/// unnamed, takes a list of its types).
#[derive(Clone, Copy)]
pub(crate) enum Binds<'a> {
    /// A table's statement: each value beside its type.
    Paired(&'a [(Param, Type)]),
    /// Types and values apart (a raw statement's).
    Apart(&'a [Type], &'a [&'a (dyn ToSql + Sync)]),
}

impl<'a> Binds<'a> {
    /// The parameters' types, in order.
    fn types(self) -> impl ExactSizeIterator<Item = &'a Type> + Clone {
        let len = match self {
            Binds::Paired(params) => params.len(),
            Binds::Apart(types, _) => types.len(),
        };
        (0..len).map(move |at| match self {
            Binds::Paired(params) => &params[at].1,
            Binds::Apart(types, _) => &types[at],
        })
    }

    /// The values, in order.
    fn values(self) -> impl ExactSizeIterator<Item = &'a (dyn ToSql + Sync)> {
        let len = match self {
            Binds::Paired(params) => params.len(),
            Binds::Apart(_, values) => values.len(),
        };
        (0..len).map(move |at| match self {
            Binds::Paired(params) => &params[at].0 as &(dyn ToSql + Sync),
            Binds::Apart(_, values) => values[at],
        })
    }

    /// Whether every type is known (none is left for the server to infer).
    fn all_typed(self) -> bool {
        let unknown = unspecified();
        self.types().all(|ty| *ty != unknown)
    }
}

/// Send `text` with its parameters `binds` on `client` the way `mode`
/// says, and answer its rows as they come. Nothing is sent when a value
/// does not convert to its type or their numbers differ
/// ([`ErrorKind::InvalidInput`]). `write` says whether the statement may
/// change data (a lost answer is then [`ErrorKind::OutcomeUnknown`]).
pub(crate) async fn send(
    client: &Conn,
    text: &str,
    binds: Binds<'_>,
    mode: Statements,
    write: bool,
) -> Result<RowStream> {
    // A text too long to keep (a filter of thousands of terms) is not
    // kept: sent unnamed when every type is known, else prepared for this
    // one run (closed when it ends).
    let long = text.len() > MAX_PREPARED_TEXT;
    let unnamed = mode == Statements::Unnamed || (long && binds.all_typed());
    let answer = if unnamed {
        let typed = binds.values().zip(binds.types().cloned());
        client
            .query_typed_raw(text, typed)
            .await
            .map_err(Failed::from)
    } else if long {
        let types: Vec<Type> = binds.types().cloned().collect();
        match client.prepare_typed(text, &types).await {
            Ok(prepared) => bind(client, &prepared, binds).await,
            Err(e) => Err(e.into()),
        }
    } else {
        match prepared(client, text, binds).await {
            // A schema change (ALTER TABLE … TYPE, DROP and re-CREATE)
            // made the cached statement stale: prepare it afresh and run
            // it once more. Inside a transaction the failure has aborted
            // it, so the second run answers 25P02: report the first
            // failure then.
            Err(Failed::Driver(stale)) if is_stale(&stale) => {
                client.prepared.remove(text);
                match prepared(client, text, binds).await {
                    Err(Failed::Driver(e))
                        if e.code() == Some(&SqlState::IN_FAILED_SQL_TRANSACTION) =>
                    {
                        Err(Failed::Driver(stale))
                    }
                    other => other,
                }
            }
            other => other,
        }
    };
    answer.map_err(|failed| match failed {
        Failed::Refused(err) => err,
        Failed::Driver(e) => match BindError::behind(&e) {
            Some(refused) => Error::invalid_input(refused.to_string()),
            None => Error::from_statement(e, write),
        },
    })
}

/// Why [`send`] got no rows: the driver's error, or a refusal before
/// anything was sent.
enum Failed {
    Driver(tokio_postgres::Error),
    Refused(Error),
}

impl From<tokio_postgres::Error> for Failed {
    fn from(e: tokio_postgres::Error) -> Failed {
        Failed::Driver(e)
    }
}

/// Run `text` as a statement prepared on this connection: taken from its
/// bounded cache, or prepared now and kept there.
async fn prepared(
    client: &Conn,
    text: &str,
    binds: Binds<'_>,
) -> std::result::Result<RowStream, Failed> {
    let prepared = match client.prepared.get(text, binds.types()) {
        Some(prepared) => prepared,
        None => {
            let types: Vec<Type> = binds.types().cloned().collect();
            let fresh = client.prepare_typed(text, &types).await?;
            client.keep(text, &types, fresh)
        }
    };
    bind(client, &prepared, binds).await
}

/// Bind the values of `binds` to a prepared statement and run it; refused
/// when their number is not the statement's.
async fn bind(
    client: &Conn,
    prepared: &tokio_postgres::Statement,
    binds: Binds<'_>,
) -> std::result::Result<RowStream, Failed> {
    let values = binds.values();
    let wanted = prepared.params().len();
    if wanted != values.len() {
        return Err(Failed::Refused(Error::invalid_input(format!(
            "the statement takes {wanted} parameters and {} are bound",
            values.len()
        ))));
    }
    Ok(client.query_raw(prepared, values).await?)
}

/// Whether a prepared statement failed because it no longer matches the
/// schema ("cached plan must not change result type", raised by the
/// server's plan revalidation) or no longer exists on the server. Known by
/// SQLSTATE and routine, never by the (localised) message.
fn is_stale(err: &tokio_postgres::Error) -> bool {
    let revalidation = err.code() == Some(&SqlState::FEATURE_NOT_SUPPORTED)
        && err
            .as_db_error()
            .and_then(|db| db.routine())
            .is_some_and(|routine| routine == "RevalidateCachedQuery");
    revalidation || err.code() == Some(&SqlState::INVALID_SQL_STATEMENT_NAME)
}

/// How a plan turns a row of a table's statement into a row of its answer.
pub(crate) trait Decode: Send + Sync + 'static {
    type Row: Send + 'static;
    fn decode(columns: &Arc<Columns>, row: &Row) -> Result<Self::Row>;
    /// Every row of one answer, in order.
    fn decode_all(columns: &Arc<Columns>, rows: &[Row]) -> Result<Vec<Self::Row>> {
        rows.iter().map(|row| Self::decode(columns, row)).collect()
    }
}

/// Rows as [`Record`]s, column by column.
pub(crate) struct AsRecord;

impl Decode for AsRecord {
    type Row = Record;
    fn decode(columns: &Arc<Columns>, row: &Row) -> Result<Record> {
        record(columns, row)
    }
}

/// Rows as the caller's own type, straight from the driver's row (for a
/// typed entity, by column name).
pub(crate) struct AsType<T>(PhantomData<fn() -> T>);

impl<T: FromRow + Send + 'static> Decode for AsType<T> {
    type Row = T;
    fn decode(_: &Arc<Columns>, row: &Row) -> Result<T> {
        T::from_row(row)
    }
    fn decode_all(_: &Arc<Columns>, rows: &[Row]) -> Result<Vec<T>> {
        T::from_rows(rows)
    }
}

/// A plan that may answer its rows decoded another way: the same
/// statements, another [`Decode`].
pub(crate) trait Retype {
    type As<D: Decode>: Plan;
    fn retype<D: Decode>(self) -> Self::As<D>;
}

/// A request whose rows are decoded by `D` instead of as records.
pub(crate) struct Decoded<R, D>(pub(crate) R, PhantomData<fn() -> D>);

impl<R, D> Decoded<R, D> {
    pub(crate) fn new(request: R) -> Decoded<R, D> {
        Decoded(request, PhantomData)
    }
}

impl<R: Request, D: Decode> Request for Decoded<R, D>
where
    R::Plan: Retype,
{
    type Plan = <R::Plan as Retype>::As<D>;
    fn operation(&self) -> &'static str {
        self.0.operation()
    }
    fn model(&self) -> &str {
        self.0.model()
    }
    fn plan(self, catalog: &Catalog) -> Result<Self::Plan> {
        self.0.plan(catalog).map(Retype::retype)
    }
}

/// A statement that answers one row by id: `Read` and every `Write`,
/// its rows decoded by `D`.
///
/// Plans are built before a connection is taken, so bad input costs no
/// checkout and sends no SQL.
pub(crate) struct RowPlan<D = AsRecord> {
    row: RowStatement,
    decode: PhantomData<D>,
}

/// What a [`RowPlan`] runs, whatever it decodes into.
struct RowStatement {
    stmt: Statement,
    columns: Arc<Columns>,
    /// The table's model, named when the row is not found.
    model: Arc<Model>,
    write: bool,
    mode: Statements,
    /// A `NOWAIT` lock: a row another transaction holds is a
    /// [`ErrorKind::Conflict`], not the lock timeout's `Timeout`.
    nowait: bool,
    /// A conditional write's refusal: when it changed no row, a read by
    /// id tells a row that failed the condition from no row.
    refusal: Option<Refusal>,
    /// A plain read by id (`Read`): a coalesced batch may answer it.
    coalesces: bool,
}

/// What a conditional write (an increment's guard, a versioned update's
/// expected version) answers when the row exists but failed the condition.
struct Refusal {
    /// `SELECT … WHERE id = $1`, run only when the write changed nothing.
    exists: Statement,
    /// The [`ErrorKind::Conflict`] error's message.
    message: String,
}

impl RowPlan {
    fn new(catalog: &Catalog, table: &Table, write: bool, stmt: Statement) -> RowPlan {
        RowPlan {
            row: RowStatement {
                stmt,
                columns: table.columns.clone(),
                model: table.model.clone(),
                write,
                mode: catalog.statements,
                nowait: false,
                refusal: None,
                coalesces: false,
            },
            decode: PhantomData,
        }
    }

    /// The same write, conditional: when it changes no row of an existing
    /// id, [`ErrorKind::Conflict`] with `message` (nothing changed).
    fn refused_as(mut self, exists: Statement, message: String) -> RowPlan {
        self.row.refusal = Some(Refusal { exists, message });
        self
    }
}

impl Retype for RowPlan {
    type As<D: Decode> = RowPlan<D>;
    fn retype<D: Decode>(self) -> RowPlan<D> {
        RowPlan {
            row: self.row,
            decode: PhantomData,
        }
    }
}

/// A request a plan runs, in one place for both doors and transactions:
/// what spans call it, its model, and the plan the catalog makes of it.
pub(crate) trait Request: Send + 'static {
    type Plan: Plan;
    /// The operation, as spans name it.
    fn operation(&self) -> &'static str;
    /// The model's name in the registry.
    fn model(&self) -> &str;
    /// Its plan; refused (before any SQL is sent) when the catalog cannot
    /// make one.
    fn plan(self, catalog: &Catalog) -> Result<Self::Plan>;
}

/// `LockForUpdate`: the row of a model with this id, locked until the
/// transaction ends.
#[derive(Debug)]
pub(crate) struct LockForUpdate(pub(crate) ReadRequest);

impl Request for ReadRequest {
    type Plan = RowPlan;
    fn operation(&self) -> &'static str {
        "read"
    }
    fn model(&self) -> &str {
        &self.model
    }
    fn plan(self, catalog: &Catalog) -> Result<RowPlan> {
        let table = catalog.table(&self.model)?;
        let stmt = table.read(self.id)?;
        let mut plan = RowPlan::new(catalog, table, false, stmt);
        plan.row.coalesces = true;
        Ok(plan)
    }
}

impl Request for ReadFieldsRequest {
    type Plan = RowPlan;
    fn operation(&self) -> &'static str {
        "read"
    }
    fn model(&self) -> &str {
        &self.model
    }
    /// The fields are held to the model's
    /// [`crate::QueryBounds::max_selected_fields`].
    fn plan(self, catalog: &Catalog) -> Result<RowPlan> {
        let table = catalog.table(&self.model)?;
        catalog
            .bounds_of(&self.model)
            .check_selected(self.fields.len())?;
        let (stmt, columns) = table.read_fields(self.id, &self.fields)?;
        let mut plan = RowPlan::new(catalog, table, false, stmt);
        plan.row.columns = columns;
        Ok(plan)
    }
}

/// `LockForUpdate` that does not wait: refused at once with
/// [`ErrorKind::Conflict`] when another transaction holds the row.
#[derive(Debug)]
pub(crate) struct LockNowait(pub(crate) ReadRequest);

impl Request for LockNowait {
    type Plan = RowPlan;
    fn operation(&self) -> &'static str {
        "lock_for_update_nowait"
    }
    fn model(&self) -> &str {
        &self.0.model
    }
    fn plan(self, catalog: &Catalog) -> Result<RowPlan> {
        let table = catalog.table(&self.0.model)?;
        let stmt = table.lock_for_update_nowait(self.0.id)?;
        let mut plan = RowPlan::new(catalog, table, false, stmt);
        plan.row.nowait = true;
        Ok(plan)
    }
}

impl Request for LockForUpdate {
    type Plan = RowPlan;
    fn operation(&self) -> &'static str {
        "lock_for_update"
    }
    fn model(&self) -> &str {
        &self.0.model
    }
    fn plan(self, catalog: &Catalog) -> Result<RowPlan> {
        let table = catalog.table(&self.0.model)?;
        let stmt = table.lock_for_update(self.0.id)?;
        Ok(RowPlan::new(catalog, table, false, stmt))
    }
}

impl Request for WriteRequest {
    type Plan = RowPlan;
    fn operation(&self) -> &'static str {
        self.op.name()
    }
    fn model(&self) -> &str {
        &self.model
    }
    fn plan(self, catalog: &Catalog) -> Result<RowPlan> {
        let table = catalog.table(&self.model)?;
        let plan = |stmt| RowPlan::new(catalog, table, true, stmt);
        Ok(match self.op {
            WriteOp::Create(record) => plan(table.insert(record)?),
            WriteOp::Update { id, patch } => match table.update(id.clone(), patch)? {
                (stmt, None) => plan(stmt),
                (stmt, Some(expected)) => plan(stmt).refused_as(
                    table.read(id)?,
                    format!(
                        "the update of {} was refused: the row is no longer at version {expected} \
                         (another write changed it since it was read; nothing changed)",
                        self.model
                    ),
                ),
            },
            WriteOp::Delete { id } => plan(table.delete(id)?),
            WriteOp::Restore { id } => plan(table.restore(id)?),
            WriteOp::HardDelete { id } => plan(table.hard_delete(id)?),
        })
    }
}

impl Request for BulkWriteRequest {
    type Plan = CountPlan;
    fn operation(&self) -> &'static str {
        self.op.name()
    }
    fn model(&self) -> &str {
        &self.model
    }
    /// The filter is held to the model's [`crate::QueryBounds`].
    fn plan(self, catalog: &Catalog) -> Result<CountPlan> {
        let table = catalog.table(&self.model)?;
        catalog.bounds_of(&self.model).check_filter(&self.filter)?;
        let stmt = match self.op {
            BulkOp::Update(patch) => table.update_where(&self.filter, patch)?,
            BulkOp::Delete => table.delete_where(&self.filter)?,
            BulkOp::HardDelete => table.hard_delete_where(&self.filter)?,
        };
        Ok(CountPlan {
            stmt,
            mode: catalog.statements,
        })
    }
}

impl Request for IncrementRequest {
    type Plan = RowPlan;
    fn operation(&self) -> &'static str {
        "increment"
    }
    fn model(&self) -> &str {
        &self.model
    }
    /// With a guard (held to the model's [`crate::QueryBounds`]), a row
    /// that fails it is an [`ErrorKind::Conflict`].
    fn plan(self, catalog: &Catalog) -> Result<RowPlan> {
        let table = catalog.table(&self.model)?;
        if let Some(guard) = &self.guard {
            catalog.bounds_of(&self.model).check_filter(guard)?;
        }
        let stmt = table.increment(self.id.clone(), &self.field, self.by, self.guard.as_ref())?;
        let plan = RowPlan::new(catalog, table, true, stmt);
        if self.guard.is_none() {
            return Ok(plan);
        }
        Ok(plan.refused_as(
            table.read(self.id)?,
            format!(
                "the increment of \"{}\" of {} was refused: the row does not meet its guard (nothing changed)",
                self.field, self.model
            ),
        ))
    }
}

/// A write that also answers the primary's WAL position after it
/// committed ([`crate::Db::write_with_token`]).
#[derive(Debug)]
pub(crate) struct WriteWithToken(pub(crate) WriteRequest);

impl Request for WriteWithToken {
    type Plan = WithToken;
    fn operation(&self) -> &'static str {
        self.0.operation()
    }
    fn model(&self) -> &str {
        self.0.model()
    }
    fn plan(self, catalog: &Catalog) -> Result<WithToken> {
        self.0.plan(catalog).map(WithToken)
    }
}

impl Request for ListRequest {
    type Plan = PagePlan;
    fn operation(&self) -> &'static str {
        "list"
    }
    fn model(&self) -> &str {
        &self.model
    }
    /// Refuses a query past the bounds (see [`bounded_query`]).
    fn plan(mut self, catalog: &Catalog) -> Result<PagePlan> {
        let table = catalog.table(&self.model)?;
        bounded_query(&mut self.query, &self.model, catalog)?;
        let includes = Includes::plan(catalog, table, &self.query)?;
        Ok(PagePlan {
            list: ListStatements {
                listing: table.list_keeping(&self.query, &includes.page_fields())?,
                includes,
                offset: self.query.offset,
                mode: catalog.statements,
            },
            decode: PhantomData,
        })
    }
}

/// Refuse a query of `model` past its [`crate::QueryBounds`] or a page
/// larger than the catalog's `max_page`; a query without a limit gets
/// [`DEFAULT_LIMIT`] rows, or `max_page` when less.
fn bounded_query(query: &mut Query, model: &str, catalog: &Catalog) -> Result<()> {
    catalog.bounds_of(model).check(query)?;
    match query.limit {
        Some(limit) if limit > catalog.max_page => Err(Error::invalid_input(format!(
            "limit {limit} is above the maximum page of {} rows (OpenOptions::max_page): \
             read page by page",
            catalog.max_page
        ))),
        Some(_) => Ok(()),
        None => {
            query.limit = Some(DEFAULT_LIMIT.min(catalog.max_page));
            Ok(())
        }
    }
}

/// `LockNext`: the next rows of a `List` that no other transaction holds,
/// locked until the transaction ends (`FOR UPDATE SKIP LOCKED`).
#[derive(Debug)]
pub(crate) struct LockNext(pub(crate) ListRequest);

impl Request for LockNext {
    type Plan = RowsPlan;
    fn operation(&self) -> &'static str {
        "lock_next"
    }
    fn model(&self) -> &str {
        &self.0.model
    }
    /// Bounded as a `List`'s page; it loads no includes.
    fn plan(mut self, catalog: &Catalog) -> Result<RowsPlan> {
        let table = catalog.table(&self.0.model)?;
        bounded_query(&mut self.0.query, &self.0.model, catalog)?;
        if !self.0.query.includes().is_empty() {
            return Err(Error::invalid_input(
                "lock_next loads no includes: list the related rows after taking the rows",
            ));
        }
        let (stmt, columns) = table.lock_next(&self.0.query)?;
        Ok(RowsPlan {
            rows: RowsStatement {
                stmt,
                columns,
                mode: catalog.statements,
            },
            decode: PhantomData,
        })
    }
}

/// A statement answering rows of a table, each decoded by `D`.
pub(crate) struct RowsPlan<D = AsRecord> {
    rows: RowsStatement,
    decode: PhantomData<D>,
}

/// What a [`RowsPlan`] runs, whatever it decodes into.
struct RowsStatement {
    stmt: Statement,
    columns: Arc<Columns>,
    mode: Statements,
}

impl Retype for RowsPlan {
    type As<D: Decode> = RowsPlan<D>;
    fn retype<D: Decode>(self) -> RowsPlan<D> {
        RowsPlan {
            rows: self.rows,
            decode: PhantomData,
        }
    }
}

impl<D: Decode> Plan for RowsPlan<D> {
    type Output = Vec<D::Row>;
    fn statement(&self) -> &str {
        &self.rows.stmt.sql
    }
    fn rows(rows: &Vec<D::Row>) -> u64 {
        rows.len() as u64
    }
    /// It locks rows, but changes none: as the first statement of a
    /// transaction it goes out in BEGIN's round trip, as a read does.
    fn writes(&self) -> bool {
        false
    }
    async fn fetch(&self, client: &Conn) -> Result<Vec<D::Row>> {
        let rows = query(client, &self.rows.stmt, false, self.rows.mode).await?;
        D::decode_all(&self.rows.columns, &rows)
    }
}

/// The primary's current WAL insert position: after a commit on this
/// connection, at or past the end of its commit record. (Not
/// `pg_current_wal_lsn()`, the *write* position: with asynchronous commit
/// the commit record may still sit in the WAL buffers, before it.)
pub(crate) async fn wal_position(client: &Client) -> Result<ConsistencyToken> {
    let row = client
        .query_typed_one("SELECT pg_current_wal_insert_lsn()", &[])
        .await
        .map_err(|e| Error::from_statement(e, false))?;
    let lsn: PgLsn = row.get(0);
    Ok(ConsistencyToken(u64::from(lsn)))
}

/// `List`: a page statement and, unless the query is `without_total`, a
/// count statement; the page's rows decoded by `D`, and a cursor made from
/// the driver's last row (before decoding, so typed pages have one too).
pub(crate) struct PagePlan<D = AsRecord> {
    list: ListStatements,
    decode: PhantomData<D>,
}

/// What a [`PagePlan`] runs, whatever it decodes into.
struct ListStatements {
    listing: Listing,
    /// The relations loaded after the page, from its rows.
    includes: Includes,
    offset: u64,
    mode: Statements,
}

impl Retype for PagePlan {
    type As<D: Decode> = PagePlan<D>;
    fn retype<D: Decode>(self) -> PagePlan<D> {
        PagePlan {
            list: self.list,
            decode: PhantomData,
        }
    }
}

/// A plan a pool task or a transaction runs on a checked-out connection.
pub(crate) trait Plan: Send + Sync + 'static {
    type Output: Send + 'static;
    /// How many rows an answer holds, for its span.
    fn rows(output: &Self::Output) -> u64;
    /// The text of its statement (of its first, when it sends several),
    /// for the slow-operation event: placeholders, never the values bound.
    fn statement(&self) -> &str;
    /// Whether it may change data: a write whose answer was lost has an
    /// unknown outcome. One that only reads goes out, as a transaction's
    /// first statement, in the same round trip as BEGIN.
    fn writes(&self) -> bool;
    /// Whether, outside a transaction, it may take turns on a shared read
    /// connection: only a read of small, bounded cost (one row by its
    /// primary key), so no statement on a lane waits long behind it.
    fn shares_connection(&self) -> bool {
        false
    }
    /// Whether it sends several statements at once (pipelined): when the
    /// first fails, the ones behind it may still run.
    fn pipelines(&self) -> bool {
        false
    }
    /// For a plain read of one row by its primary key: what a coalesced
    /// batch of such reads needs to answer it (see `super::coalesce`).
    fn by_id(&self) -> Option<ById<'_, Self::Output>> {
        None
    }
    /// Its statements on `client`, unbounded: [`Plan::run`] bounds them.
    fn fetch<'a>(
        &'a self,
        client: &'a Conn,
    ) -> impl Future<Output = Result<Self::Output>> + Send + 'a;
    /// Run on `client` within `deadline` on `timer` (past it, handled as
    /// `overrun` says).
    fn run(
        &self,
        client: &Conn,
        overrun: Overrun<'_>,
        deadline: Option<Duration>,
        timer: &mut Timer,
    ) -> impl Future<Output = (Result<Self::Output>, Fate)> + Send {
        async move {
            let statement = pin!(self.fetch(client));
            let (result, fate) =
                bounded(client, overrun, deadline, self.writes(), statement, timer).await;
            // A pipelined statement timed out (at our deadline, or the
            // server's statement or lock timeout): the one behind it may
            // now wait as long (a page's count behind a locked table), on
            // a connection that would look idle. Cancel and drain it first.
            let timed_out = result
                .as_ref()
                .is_err_and(|e| e.kind() == ErrorKind::Timeout);
            match overrun {
                Overrun::Cancel(target)
                    if timed_out && self.pipelines() && fate == Fate::Reusable =>
                {
                    (result, abandon(client, target).await)
                }
                _ => (result, fate),
            }
        }
    }
}

impl<D: Decode> Plan for RowPlan<D> {
    type Output = D::Row;
    fn statement(&self) -> &str {
        &self.row.stmt.sql
    }
    fn rows(_: &D::Row) -> u64 {
        1
    }
    fn writes(&self) -> bool {
        self.row.write
    }
    fn shares_connection(&self) -> bool {
        !self.row.write
    }
    fn by_id(&self) -> Option<ById<'_, D::Row>> {
        if !self.row.coalesces {
            return None;
        }
        Some(ById {
            model: self.row.model.name(),
            id: self.row.stmt.first_value()?,
            columns: &self.row.columns,
            decode: D::decode,
        })
    }
    async fn fetch(&self, client: &Conn) -> Result<D::Row> {
        let rows = query(client, &self.row.stmt, self.row.write, self.row.mode)
            .await
            .map_err(|err| match err.sqlstate() {
                Some(&SqlState::LOCK_NOT_AVAILABLE) if self.row.nowait => {
                    err.reclassified(ErrorKind::Conflict)
                }
                _ => err,
            })?;
        match rows.first() {
            Some(row) => D::decode(&self.row.columns, row),
            None => Err(self.row.unchanged(client).await),
        }
    }
}

/// A read of one row by its primary key, as a coalesced batch answers
/// it: its model, its id (of the key's type), and how its row decodes.
pub(crate) struct ById<'a, O> {
    pub(crate) model: &'a str,
    pub(crate) id: &'a Value,
    columns: &'a Arc<Columns>,
    decode: fn(&Arc<Columns>, &Row) -> Result<O>,
}

impl<O> ById<'_, O> {
    /// Its answer from the batch: its row decoded, or
    /// [`ErrorKind::NotFound`] when the batch had no row of its id.
    pub(crate) fn answer(&self, row: Option<&Row>) -> Result<O> {
        match row {
            Some(row) => (self.decode)(self.columns, row),
            None => Err(Error::not_found(self.model)),
        }
    }
}

impl RowStatement {
    /// The error of a statement that answered no row: [`ErrorKind::NotFound`],
    /// or for a conditional write whose row exists, its refusal.
    async fn unchanged(&self, client: &Conn) -> Error {
        let missing = Error::not_found(self.model.name());
        let Some(refusal) = &self.refusal else {
            return missing;
        };
        match query(client, &refusal.exists, false, self.mode).await {
            Ok(rows) if rows.is_empty() => missing,
            Ok(_) => Error::new(ErrorKind::Conflict, refusal.message.clone()),
            Err(err) => err,
        }
    }
}

/// A write of many rows that answers how many it changed: `UpdateWhere`
/// and `DeleteWhere`.
pub(crate) struct CountPlan {
    stmt: Statement,
    mode: Statements,
}

impl Plan for CountPlan {
    type Output = u64;
    fn statement(&self) -> &str {
        &self.stmt.sql
    }
    fn rows(changed: &u64) -> u64 {
        *changed
    }
    fn writes(&self) -> bool {
        true
    }
    async fn fetch(&self, client: &Conn) -> Result<u64> {
        count(start(client, &self.stmt, true, self.mode).await?, true).await
    }
}

/// A write that also reads the primary's WAL position after its commit:
/// the SELECT goes out right behind the autocommitted write, so both take
/// one round trip.
pub(crate) struct WithToken(pub(crate) RowPlan);

impl Plan for WithToken {
    type Output = (Record, ConsistencyToken);
    fn statement(&self) -> &str {
        self.0.statement()
    }
    fn rows(_: &Self::Output) -> u64 {
        1
    }
    fn writes(&self) -> bool {
        true
    }
    fn pipelines(&self) -> bool {
        true
    }
    /// The position must be read after the write: pipelined only when the
    /// write goes out at once (its statement prepared on this connection,
    /// or sent unnamed); a write that first waits for its prepare would let
    /// the position's query reach the server before it, and the token
    /// would not cover the write. Else one after the other.
    async fn fetch(&self, client: &Conn) -> Result<Self::Output> {
        let row = &self.0.row;
        if sent_at_once(client, &row.stmt, row.mode) {
            let (record, token) = tokio::join!(self.0.fetch(client), wal_position(client));
            return Ok((record?, token?));
        }
        let record = self.0.fetch(client).await?;
        Ok((record, wal_position(client).await?))
    }
}

impl<D: Decode> Plan for PagePlan<D> {
    type Output = Page<D::Row>;
    fn statement(&self) -> &str {
        &self.list.listing.page.sql
    }
    fn rows(page: &Page<D::Row>) -> u64 {
        page.rows.len() as u64
    }
    fn writes(&self) -> bool {
        false
    }
    fn pipelines(&self) -> bool {
        self.list.listing.count.is_some()
    }
    /// With a count, both statements go out together and tokio-postgres
    /// pipelines them on the connection: one round trip.
    async fn fetch(&self, client: &Conn) -> Result<Page<D::Row>> {
        let Listing {
            page,
            count,
            limit,
            keyset,
            columns,
        } = &self.list.listing;
        let mode = self.list.mode;
        let (rows, total) = match count {
            Some(count) => {
                let (rows, total) = tokio::try_join!(
                    query(client, page, false, mode),
                    query(client, count, false, mode)
                )?;
                let total: i64 = total
                    .first()
                    .ok_or_else(|| Error::decode("count(*) returned no row"))?
                    .try_get(0)
                    .map_err(|e| Error::decode(format!("count(*): {e}")))?;
                (rows, Some(total.max(0) as u64))
            }
            None => (query(client, page, false, mode).await?, None),
        };
        let next = match (rows.last(), keyset) {
            (Some(last), Some(keyset)) if rows.len() as u64 == *limit => keyset.cursor(|at| {
                last.try_get::<_, Value>(at)
                    .map_err(|e| Error::decode(format!("the cursor's column {at}: {e}")))
            })?,
            _ => None,
        };
        let included = match &self.list.includes {
            includes if includes.is_empty() => Included::default(),
            includes => load(client, includes, &rows, mode).await?,
        };
        Ok(Page {
            rows: D::decode_all(columns, &rows)?,
            total,
            limit: *limit,
            offset: self.list.offset,
            next,
            included,
        })
    }
}
