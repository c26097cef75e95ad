//! Loading a page's includes on its connection: one statement per
//! relation, the relations of one depth sent together (one round trip per
//! depth), and reading the related rows as a type of the caller's own.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use futures_util::future::try_join_all;
use tokio_postgres::Row;

use super::conn::Conn;
use super::plan::query;

use crate::error::{quoted_name, Error, Result};
use crate::raw::FromRow;
use crate::schema::{Included, Key, Related, Value};
use crate::sql::{Includes, Statements, Step};

/// The related rows of `page`'s rows for every step of `includes`, each
/// relation in one statement: the parents' keys bound once each as an
/// array; a relation whose parents hold no key sends nothing.
pub(super) async fn load(
    client: &Conn,
    includes: &Includes,
    page: &[Row],
    mode: Statements,
) -> Result<Included> {
    // By step: a step's parent is loaded at the depth before its own.
    let mut loaded: Vec<Option<Related>> = vec![None; includes.steps.len()];
    let deepest = includes.steps.iter().map(|s| s.depth).max().unwrap_or(0);
    for depth in 1..=deepest {
        let level: Vec<usize> = (0..includes.steps.len())
            .filter(|&at| includes.steps[at].depth == depth)
            .collect();
        let mut statements = Vec::with_capacity(level.len());
        for &at in &level {
            let step = &includes.steps[at];
            let parents: &[Row] = match step.parent {
                Some(parent) => loaded[parent].as_ref().map_or(&[], |r| &r.rows[..]),
                None => page,
            };
            let keys = keys_of(parents, &step.parent_field)?;
            statements.push((!keys.is_empty()).then(|| step.statement(keys)));
        }
        let answers = try_join_all(statements.iter().map(|stmt| async move {
            match stmt {
                Some(stmt) => query(client, stmt, false, mode).await,
                None => Ok(Vec::new()),
            }
        }))
        .await?;
        for (at, rows) in level.into_iter().zip(answers) {
            loaded[at] = Some(related(&includes.steps[at], rows)?);
        }
    }
    let relations = loaded.into_iter().flatten().collect();
    Ok(Included { relations })
}

/// The keys `rows` hold in `field`, each once, NULLs left out.
fn keys_of(rows: &[Row], field: &str) -> Result<Vec<Value>> {
    let mut seen = HashSet::with_capacity(rows.len());
    let mut keys = Vec::with_capacity(rows.len());
    for row in rows {
        let value = key_in(row, field)?;
        if Key::of(&value).is_some_and(|key| seen.insert(key)) {
            keys.push(value);
        }
    }
    Ok(keys)
}

/// The value of the key column `field` of `row`.
fn key_in(row: &Row, field: &str) -> Result<Value> {
    row.try_get::<_, Value>(field)
        .map_err(|e| Error::decode(format!("the key column {}: {e}", quoted_name(field))))
}

/// The rows of `step` as its relation: refused past the bound, grouped by
/// the key they are matched by (they come ordered by it).
fn related(step: &Step, rows: Vec<Row>) -> Result<Related> {
    if rows.len() > step.max_rows {
        return Err(Error::invalid_input(format!(
            "the relation \"{}\" has more than {} rows for this page (the bound \
             QueryBounds::max_included_rows): ask for a smaller page, or list {} by a filter",
            step.path, step.max_rows, step.model
        )));
    }
    let mut groups: HashMap<Key, Range<usize>> = HashMap::new();
    for (at, row) in rows.iter().enumerate() {
        if let Some(key) = Key::of(&key_in(row, &step.match_field)?) {
            groups.entry(key).or_insert(at..at).end = at + 1;
        }
    }
    Ok(Related {
        path: step.path.clone(),
        model: step.model.clone(),
        parent_field: step.parent_field.clone(),
        rows: rows.into(),
        columns: step.columns.clone(),
        groups: Arc::new(groups),
    })
}

/// Reading included rows as a type of your own: a typed entity, or any
/// [`FromRow`] type, decoded by column name straight from the rows the
/// server answered (as a typed list's rows are).
impl Included {
    /// Every row of relation `path`, each decoded into a `U`.
    ///
    /// ```no_run
    /// # #[derive(pgactor::Entity)] struct Customer { id: uuid::Uuid, name: String }
    /// # #[derive(pgactor::Entity)] struct Order { id: uuid::Uuid, #[pgactor(references = "Customer")] customer_id: uuid::Uuid }
    /// # async fn demo(db: pgactor::Db) -> pgactor::Result<()> {
    /// use pgactor::Query;
    /// let page = db.typed::<Order>().list(Query::new().include("customer")).await?;
    /// let customers: Vec<Customer> = page.included.all_as("customer")?;
    /// # let _ = customers; Ok(()) }
    /// ```
    pub fn all_as<U: FromRow>(&self, path: &str) -> Result<Vec<U>> {
        U::from_rows(&self.relation(path)?.rows)
    }

    /// The rows of relation `path` matched by `key`, each decoded into a
    /// `U`: for a belongs-to relation pass the parent's foreign key (at
    /// most one row answers), for a has-many relation the parent's `id`.
    ///
    /// ```no_run
    /// # #[derive(pgactor::Entity)] struct Customer { id: uuid::Uuid, name: String }
    /// # #[derive(pgactor::Entity)] struct Order { id: uuid::Uuid, #[pgactor(references = "Customer")] customer_id: uuid::Uuid }
    /// # async fn demo(db: pgactor::Db) -> pgactor::Result<()> {
    /// use pgactor::Query;
    /// let page = db.typed::<Customer>().list(Query::new().include("Order")).await?;
    /// for customer in &page.rows {
    ///     let orders: Vec<Order> = page.included.related_as("Order", customer.id)?;
    /// #   let _ = orders;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn related_as<U: FromRow>(&self, path: &str, key: impl Into<Value>) -> Result<Vec<U>> {
        let relation = self.relation(path)?;
        relation
            .rows_of(&key.into())
            .iter()
            .map(U::from_row)
            .collect()
    }
}
