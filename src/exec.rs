//! Running one operation on one connection: shared by the pool tasks and,
//! inside transactions, by the transaction actor.

use std::time::Duration;

use tokio_postgres::types::PgLsn;
use tokio_postgres::{Client, Row};

use crate::deadline::{bounded, Fate};
use crate::replica::ConsistencyToken;

use crate::error::{Error, Result};
use crate::messages::{ListRequest, ReadRequest, WriteOp, WriteRequest};
use crate::query::Page;
use crate::record::Record;
use crate::sql::{Catalog, Statement};
use crate::value::Value;

/// Turn a row into a record, column by column.
fn record(row: &Row) -> Result<Record> {
    let mut record = Record::new();
    for (i, column) in row.columns().iter().enumerate() {
        let value: Value = row
            .try_get(i)
            .map_err(|e| Error::decode(format!("column \"{}\": {e}", column.name())))?;
        record.set(column.name(), value);
    }
    Ok(record)
}

async fn query(client: &Client, stmt: &Statement, write: bool) -> Result<Vec<Row>> {
    client
        .query_typed(&stmt.sql, &stmt.bound())
        .await
        .map_err(|e| Error::from_statement(e, write))
}

/// A statement that answers one row by id: `Read` and every `Write`.
///
/// Plans are built before a connection is taken, so bad input costs no
/// checkout and sends no SQL.
pub(crate) struct RowPlan {
    stmt: Statement,
    model: String,
    write: bool,
}

impl RowPlan {
    /// `Read`: the row with this id.
    pub(crate) fn read(catalog: &Catalog, req: ReadRequest) -> Result<RowPlan> {
        let table = catalog.table(&req.model)?;
        Ok(RowPlan {
            stmt: table.read(req.id)?,
            model: req.model,
            write: false,
        })
    }

    /// `LockForUpdate`: the row with this id, locked until the transaction ends.
    pub(crate) fn lock_for_update(catalog: &Catalog, req: ReadRequest) -> Result<RowPlan> {
        let table = catalog.table(&req.model)?;
        Ok(RowPlan {
            stmt: table.lock_for_update(req.id)?,
            model: req.model,
            write: false,
        })
    }

    /// `Write`: create, update or delete, answering the row.
    pub(crate) fn write(catalog: &Catalog, req: WriteRequest) -> Result<RowPlan> {
        let table = catalog.table(&req.model)?;
        let stmt = match req.op {
            WriteOp::Create(record) => table.insert(record)?,
            WriteOp::Update { id, patch } => table.update(id, patch)?,
            WriteOp::Delete { id } => table.delete(id)?,
        };
        Ok(RowPlan {
            stmt,
            model: req.model,
            write: true,
        })
    }

    /// Run on `client` within `limit`; NotFound when no row came back.
    pub(crate) async fn run(
        &self,
        client: &Client,
        limit: Option<Duration>,
    ) -> (Result<Record>, Fate) {
        bounded(client, limit, self.write, self.fetch(client)).await
    }

    /// [`RowPlan::run`], then the primary's WAL position after the commit:
    /// the SELECT goes out right behind the autocommitted write, so both take
    /// one round trip.
    pub(crate) async fn run_with_token(
        &self,
        client: &Client,
        limit: Option<Duration>,
    ) -> (Result<(Record, ConsistencyToken)>, Fate) {
        let both = async {
            let (record, token) = tokio::join!(self.fetch(client), wal_position(client));
            Ok((record?, token?))
        };
        bounded(client, limit, self.write, both).await
    }

    async fn fetch(&self, client: &Client) -> Result<Record> {
        let rows = query(client, &self.stmt, self.write).await?;
        rows.first()
            .map(record)
            .unwrap_or_else(|| Err(Error::not_found(&self.model)))
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

/// `List`: a page statement and a count statement.
pub(crate) struct PagePlan {
    page: Statement,
    count: Statement,
    limit: u64,
    offset: u64,
}

impl PagePlan {
    pub(crate) fn new(catalog: &Catalog, req: ListRequest) -> Result<PagePlan> {
        let (page, count, limit) = catalog.table(&req.model)?.list(&req.query)?;
        Ok(PagePlan {
            page,
            count,
            limit,
            offset: req.query.offset,
        })
    }

    /// Run on `client` within `limit`. Both statements go out together and
    /// tokio-postgres pipelines them on the connection: one round trip.
    pub(crate) async fn run(
        &self,
        client: &Client,
        limit: Option<Duration>,
    ) -> (Result<Page>, Fate) {
        bounded(client, limit, false, self.fetch(client)).await
    }

    async fn fetch(&self, client: &Client) -> Result<Page> {
        let (rows, total) = tokio::try_join!(
            query(client, &self.page, false),
            query(client, &self.count, false)
        )?;
        let total: i64 = total
            .first()
            .ok_or_else(|| Error::decode("count(*) returned no row"))?
            .try_get(0)
            .map_err(|e| Error::decode(format!("count(*): {e}")))?;
        Ok(Page {
            rows: rows.iter().map(record).collect::<Result<_>>()?,
            total: total.max(0) as u64,
            limit: self.limit,
            offset: self.offset,
        })
    }
}
