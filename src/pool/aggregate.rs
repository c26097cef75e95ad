//! The plans of aggregate reads: `count` and `exists`, each one value of
//! one row, and an aggregate's groups, decoded as records or as the
//! caller's type, refused past their bound.

use std::marker::PhantomData;
use std::sync::Arc;

use tokio_postgres::Row;

use super::conn::Conn;
use super::plan::{query, AsRecord, Decode, Plan, Request, Retype};

use crate::error::{Error, Result};
use crate::messages::{AggregateRequest, CountRequest, ExistsRequest};
use crate::schema::Columns;
use crate::sql::{Aggregation, Catalog, Statement, Statements};

impl Request for CountRequest {
    type Plan = ValuePlan<u64>;
    fn operation(&self) -> &'static str {
        "count"
    }
    fn model(&self) -> &str {
        &self.model
    }
    fn plan(self, catalog: &Catalog) -> Result<ValuePlan<u64>> {
        let table = catalog.table(&self.model)?;
        catalog.bounds_of(&self.model).check_filter(&self.filter)?;
        let stmt = table.count(&self.filter)?;
        Ok(ValuePlan::new(stmt, catalog, |row| {
            let count: i64 = first(row, "count(*)")?;
            Ok(count.max(0) as u64)
        }))
    }
}

impl Request for ExistsRequest {
    type Plan = ValuePlan<bool>;
    fn operation(&self) -> &'static str {
        "exists"
    }
    fn model(&self) -> &str {
        &self.model
    }
    fn plan(self, catalog: &Catalog) -> Result<ValuePlan<bool>> {
        let table = catalog.table(&self.model)?;
        catalog.bounds_of(&self.model).check_filter(&self.filter)?;
        let stmt = table.exists(&self.filter)?;
        Ok(ValuePlan::new(stmt, catalog, |row| first(row, "EXISTS")))
    }
}

/// The first column of `row`, which `what` names in an error.
fn first<T: for<'a> tokio_postgres::types::FromSql<'a>>(row: &Row, what: &str) -> Result<T> {
    row.try_get(0)
        .map_err(|e| Error::decode(format!("{what}: {e}")))
}

/// A read answering one row, made into one value by `value`.
pub(crate) struct ValuePlan<T> {
    stmt: Statement,
    mode: Statements,
    value: fn(&Row) -> Result<T>,
}

impl<T> ValuePlan<T> {
    fn new(stmt: Statement, catalog: &Catalog, value: fn(&Row) -> Result<T>) -> ValuePlan<T> {
        ValuePlan {
            stmt,
            mode: catalog.statements,
            value,
        }
    }
}

impl<T: Send + Sync + 'static> Plan for ValuePlan<T> {
    type Output = T;
    fn rows(_: &T) -> u64 {
        1
    }
    fn statement(&self) -> &str {
        &self.stmt.sql
    }
    fn writes(&self) -> bool {
        false
    }
    async fn fetch(&self, client: &Conn) -> Result<T> {
        let rows = query(client, &self.stmt, false, self.mode).await?;
        let row = rows
            .first()
            .ok_or_else(|| Error::decode("the statement answered no row"))?;
        (self.value)(row)
    }
}

impl Request for AggregateRequest {
    type Plan = AggregatePlan;
    fn operation(&self) -> &'static str {
        "aggregate"
    }
    fn model(&self) -> &str {
        &self.model
    }
    /// At most the catalog's `max_page` groups.
    fn plan(self, catalog: &Catalog) -> Result<AggregatePlan> {
        let table = catalog.table(&self.model)?;
        if let Some(filter) = &self.aggregate.filter {
            catalog.bounds_of(&self.model).check_filter(filter)?;
        }
        let Aggregation { stmt, names, most } =
            table.aggregate(&self.aggregate, catalog.max_page)?;
        Ok(AggregatePlan {
            groups: Groups {
                stmt,
                columns: Arc::new(Columns::new(names.iter().map(String::as_str))),
                most,
                mode: catalog.statements,
                model: self.model,
            },
            decode: PhantomData,
        })
    }
}

/// An aggregate: its groups, each decoded by `D`.
pub(crate) struct AggregatePlan<D = AsRecord> {
    groups: Groups,
    decode: PhantomData<D>,
}

/// What an [`AggregatePlan`] runs, whatever it decodes into.
struct Groups {
    stmt: Statement,
    /// The answer's columns (group fields, then outputs).
    columns: Arc<Columns>,
    /// Without a limit, the most groups answered (the statement fetches
    /// one more).
    most: Option<u64>,
    mode: Statements,
    /// Named when there are too many groups.
    model: String,
}

impl Retype for AggregatePlan {
    type As<D: Decode> = AggregatePlan<D>;
    fn retype<D: Decode>(self) -> AggregatePlan<D> {
        AggregatePlan {
            groups: self.groups,
            decode: PhantomData,
        }
    }
}

impl<D: Decode> Plan for AggregatePlan<D> {
    type Output = Vec<D::Row>;
    fn rows(groups: &Vec<D::Row>) -> u64 {
        groups.len() as u64
    }
    fn statement(&self) -> &str {
        &self.groups.stmt.sql
    }
    fn writes(&self) -> bool {
        false
    }
    async fn fetch(&self, client: &Conn) -> Result<Vec<D::Row>> {
        let groups = &self.groups;
        let rows = query(client, &groups.stmt, false, groups.mode).await?;
        if let Some(most) = groups.most.filter(|&most| rows.len() as u64 > most) {
            return Err(Error::invalid_input(format!(
                "the aggregate of {} answers more than {most} groups (OpenOptions::max_page): \
                 narrow its filter, group by fewer fields, or set a limit to take the first groups",
                groups.model
            )));
        }
        D::decode_all(&groups.columns, &rows)
    }
}
