//! The plans of batch writes: many rows in one INSERT answered in the
//! batch's order, a count-only batch (one INSERT, or a binary COPY from
//! [`COPY_MIN_ROWS`] rows on), and upserts.

use std::marker::PhantomData;
use std::pin::pin;
use std::sync::Arc;

use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

use super::conn::Conn;
use super::plan::{count, query, start, AsRecord, Decode, Plan, Request, Retype};

use crate::error::{Error, Result};
use crate::messages::{CountMany, CreateManyRequest, UpsertRequest, Upserted};
use crate::schema::{Columns, Value};
use crate::sql::{Catalog, Statement, Statements, COPY_MIN_ROWS};

impl Request for CreateManyRequest {
    type Plan = ManyPlan;
    fn operation(&self) -> &'static str {
        "create_many"
    }
    fn model(&self) -> &str {
        &self.model
    }
    fn plan(self, catalog: &Catalog) -> Result<ManyPlan> {
        let table = catalog.table(&self.model)?;
        let batch = table.batch(self.rows)?;
        let stmt = match batch.len() {
            0 => None,
            _ => Some(table.insert_many(batch)?),
        };
        Ok(ManyPlan {
            many: ManyStatement {
                stmt,
                columns: table.columns.clone(),
                mode: catalog.statements,
            },
            decode: PhantomData,
        })
    }
}

/// `create_many`: one INSERT answering the rows in the batch's order, each
/// decoded by `D`; no statement for an empty batch.
pub(crate) struct ManyPlan<D = AsRecord> {
    many: ManyStatement,
    decode: PhantomData<D>,
}

/// What a [`ManyPlan`] or an [`UpsertPlan`] runs, whatever it decodes into.
struct ManyStatement {
    stmt: Option<Statement>,
    columns: Arc<Columns>,
    mode: Statements,
}

impl ManyStatement {
    /// Its text; empty without a statement.
    fn text(&self) -> &str {
        self.stmt.as_ref().map_or("", |stmt| &*stmt.sql)
    }

    /// The statement's rows; none without a statement.
    async fn rows(&self, client: &Conn) -> Result<Vec<tokio_postgres::Row>> {
        match &self.stmt {
            Some(stmt) => query(client, stmt, true, self.mode).await,
            None => Ok(Vec::new()),
        }
    }
}

impl Retype for ManyPlan {
    type As<D: Decode> = ManyPlan<D>;
    fn retype<D: Decode>(self) -> ManyPlan<D> {
        ManyPlan {
            many: self.many,
            decode: PhantomData,
        }
    }
}

impl<D: Decode> Plan for ManyPlan<D> {
    type Output = Vec<D::Row>;
    fn statement(&self) -> &str {
        self.many.text()
    }
    fn rows(rows: &Vec<D::Row>) -> u64 {
        rows.len() as u64
    }
    fn writes(&self) -> bool {
        true
    }
    async fn fetch(&self, client: &Conn) -> Result<Vec<D::Row>> {
        let rows = self.many.rows(client).await?;
        D::decode_all(&self.many.columns, &rows)
    }
}

impl Request for CountMany {
    type Plan = CountManyPlan;
    fn operation(&self) -> &'static str {
        "create_many_count"
    }
    fn model(&self) -> &str {
        &self.req.model
    }
    /// A COPY from [`COPY_MIN_ROWS`] rows on (unless a column is of a
    /// custom type), else one INSERT.
    fn plan(self, catalog: &Catalog) -> Result<CountManyPlan> {
        let table = catalog.table(&self.req.model)?;
        let batch = table.batch(self.req.rows)?;
        Ok(match batch.len() {
            0 => CountManyPlan::Nothing,
            n if n >= COPY_MIN_ROWS && table.copies(&batch) => {
                let (sql, types, rows) = table.copy_in(batch);
                CountManyPlan::Copy(CopyIn {
                    sql,
                    types,
                    rows,
                    own_transaction: !self.in_transaction
                        && catalog.statements == Statements::Unnamed,
                })
            }
            _ => CountManyPlan::Insert(table.insert_many_count(batch)?, catalog.statements),
        })
    }
}

/// `create_many_count`: nothing to do, one INSERT, or a COPY.
pub(crate) enum CountManyPlan {
    Nothing,
    Insert(Statement, Statements),
    Copy(CopyIn),
}

/// A binary `COPY … FROM STDIN` of a batch.
pub(crate) struct CopyIn {
    sql: String,
    /// Each column's wire type.
    types: Vec<Type>,
    rows: Vec<Vec<Value>>,
    /// Run it in a transaction of its own: outside a transaction behind a
    /// transaction-pooling PgBouncer, where the COPY's statement (prepared,
    /// then run) must stay on one server session.
    own_transaction: bool,
}

impl CopyIn {
    /// The COPY, in a transaction of its own when it needs one (rolled
    /// back when the COPY fails).
    async fn run(&self, client: &Conn) -> Result<u64> {
        if !self.own_transaction {
            return self.copy(client).await;
        }
        simple(client, "BEGIN", false).await?;
        match self.copy(client).await {
            Ok(copied) => simple(client, "COMMIT", true).await.map(|()| copied),
            Err(err) => {
                // A connection that cannot roll back is broken: the
                // transaction goes with it.
                let _ = client.batch_execute("ROLLBACK").await;
                Err(err)
            }
        }
    }

    async fn copy(&self, client: &Conn) -> Result<u64> {
        let failed = |e| Error::from_statement(e, true);
        let statement = client
            .prepare_typed(&self.sql, &[])
            .await
            .map_err(|e| Error::from_statement(e, false))?;
        let sink = client.copy_in(&statement).await.map_err(failed)?;
        let mut writer = pin!(BinaryCopyInWriter::new(sink, &self.types));
        for row in &self.rows {
            writer.as_mut().write_raw(row).await.map_err(failed)?;
        }
        let copied = writer.finish().await.map_err(failed)?;
        // Closed now, on this session (before a COMMIT hands it back to
        // the pooler).
        drop(statement);
        Ok(copied)
    }
}

/// Run `sql` (no parameters, no rows) on `client`.
async fn simple(client: &Conn, sql: &str, write: bool) -> Result<()> {
    client
        .batch_execute(sql)
        .await
        .map_err(|e| Error::from_statement(e, write))
}

impl Plan for CountManyPlan {
    type Output = u64;
    fn statement(&self) -> &str {
        match self {
            CountManyPlan::Nothing => "",
            CountManyPlan::Insert(stmt, _) => &stmt.sql,
            CountManyPlan::Copy(copy) => &copy.sql,
        }
    }
    fn rows(inserted: &u64) -> u64 {
        *inserted
    }
    fn writes(&self) -> bool {
        true
    }
    async fn fetch(&self, client: &Conn) -> Result<u64> {
        match self {
            CountManyPlan::Nothing => Ok(0),
            CountManyPlan::Insert(stmt, mode) => {
                count(start(client, stmt, true, *mode).await?, true).await
            }
            CountManyPlan::Copy(copy) => copy.run(client).await,
        }
    }
}

impl Request for UpsertRequest {
    type Plan = UpsertPlan;
    fn operation(&self) -> &'static str {
        "upsert"
    }
    fn model(&self) -> &str {
        &self.model
    }
    fn plan(self, catalog: &Catalog) -> Result<UpsertPlan> {
        let table = catalog.table(&self.model)?;
        // The target is checked even for an empty batch.
        let target = table.conflict_target(&self.on)?;
        let batch = table.batch(self.rows)?;
        let len = batch.len();
        let stmt = match len {
            0 => None,
            _ => Some(table.upsert_many(batch, &target, self.action)?),
        };
        Ok(UpsertPlan {
            many: ManyStatement {
                stmt,
                columns: table.columns.clone(),
                mode: catalog.statements,
            },
            len,
            decode: PhantomData,
        })
    }
}

/// `upsert_many`: one statement answering each row it inserted or updated
/// with its flag and its place in the batch; the rows it answers nothing
/// for were skipped.
pub(crate) struct UpsertPlan<D = AsRecord> {
    many: ManyStatement,
    /// The batch's rows.
    len: usize,
    decode: PhantomData<D>,
}

impl Retype for UpsertPlan {
    type As<D: Decode> = UpsertPlan<D>;
    fn retype<D: Decode>(self) -> UpsertPlan<D> {
        UpsertPlan {
            many: self.many,
            len: self.len,
            decode: PhantomData,
        }
    }
}

impl<D: Decode> Plan for UpsertPlan<D> {
    type Output = Vec<Upserted<D::Row>>;
    fn statement(&self) -> &str {
        self.many.text()
    }
    fn rows(rows: &Self::Output) -> u64 {
        rows.iter().filter(|r| r.row().is_some()).count() as u64
    }
    fn writes(&self) -> bool {
        true
    }
    async fn fetch(&self, client: &Conn) -> Result<Self::Output> {
        let rows = self.many.rows(client).await?;
        let mut answer: Vec<Upserted<D::Row>> = (0..self.len).map(|_| Upserted::Skipped).collect();
        // The flag and the ordinal follow the model's columns.
        let flag = self.many.columns.len();
        for row in &rows {
            let inserted: bool = row
                .try_get(flag)
                .map_err(|e| Error::decode(format!("the upsert's inserted flag: {e}")))?;
            let ordinal: i64 = row
                .try_get(flag + 1)
                .map_err(|e| Error::decode(format!("the upsert's row number: {e}")))?;
            let slot = usize::try_from(ordinal - 1)
                .ok()
                .and_then(|at| answer.get_mut(at))
                .ok_or_else(|| Error::decode(format!("the upsert answered row {ordinal}")))?;
            let decoded = D::decode(&self.many.columns, row)?;
            *slot = if inserted {
                Upserted::Inserted(decoded)
            } else {
                Upserted::Updated(decoded)
            };
        }
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Field, FieldType, Model, Record, Registry};

    fn catalog() -> Catalog {
        let registry = Registry::new()
            .with(Model::new("Stock").field(Field::new("sku", FieldType::Text).unique()))
            .unwrap();
        Catalog::new(&registry, "shop", Statements::Unnamed)
    }

    fn count_plan(rows: usize, in_transaction: bool) -> CountManyPlan {
        let rows = (0..rows)
            .map(|n| Record::new().with("sku", n.to_string()))
            .collect();
        let req = CreateManyRequest {
            model: "Stock".into(),
            rows,
        };
        CountMany {
            req,
            in_transaction,
        }
        .plan(&catalog())
        .unwrap()
    }

    #[test]
    fn a_count_only_batch_is_copied_in_from_the_threshold_on() {
        assert!(matches!(count_plan(0, false), CountManyPlan::Nothing));
        assert!(matches!(count_plan(1, false), CountManyPlan::Insert(..)));
        assert!(matches!(
            count_plan(COPY_MIN_ROWS - 1, false),
            CountManyPlan::Insert(..)
        ));
        let CountManyPlan::Copy(copy) = count_plan(COPY_MIN_ROWS, false) else {
            panic!("a batch of COPY_MIN_ROWS rows is copied in");
        };
        assert_eq!(
            copy.sql,
            "COPY \"shop\".\"stock\" (\"id\", \"sku\") FROM STDIN (FORMAT binary)"
        );
        assert_eq!(copy.types, [Type::UUID, Type::TEXT]);
        assert_eq!(copy.rows.len(), COPY_MIN_ROWS);
        // Behind a pooler (unnamed statements) it takes a transaction of
        // its own, unless it runs in the caller's.
        assert!(copy.own_transaction);
        let CountManyPlan::Copy(copy) = count_plan(COPY_MIN_ROWS, true) else {
            panic!("a batch of COPY_MIN_ROWS rows is copied in");
        };
        assert!(!copy.own_transaction);
    }
}
