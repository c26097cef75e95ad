//! Column subsets and includes: the fields a `List`'s rows hold
//! ([`Query::select`]), and the related rows it loads beside its page
//! ([`Query::include`], answered in [`Included`]).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use tokio_postgres::Row;

use super::query::Query;
use super::record::{Columns, Record};
use super::value::Value;
use crate::error::{quoted_name, Error, Result};

impl Query {
    /// Select only `fields` (and `id`, always): the page's rows hold these
    /// fields and no other, and only their columns are read and decoded.
    /// A field the model does not have is refused with
    /// [`crate::ErrorKind::InvalidInput`] before any SQL; reading a field
    /// left out of a row ([`Record::get`]) is a
    /// [`crate::ErrorKind::Decode`] error naming it, never a silent NULL.
    /// A field named twice is selected once. At most
    /// [`crate::QueryBounds::max_selected_fields`] fields.
    ///
    /// The sort fields are read too, for the page's cursor, but rows do
    /// not hold them unless selected; a belongs-to [`Query::include`]
    /// adds the foreign key it follows to the rows, so
    /// [`Included::of`] finds each row's related row.
    ///
    /// ```no_run
    /// # async fn demo(db: pgactor::Db) -> pgactor::Result<()> {
    /// use pgactor::Query;
    /// let page = db.list("StockBalance", Query::new().select(["sku", "quantity"])).await?;
    /// for row in &page.rows {
    ///     let (sku, quantity): (String, i64) = (row.get("sku")?, row.get("quantity")?);
    ///     assert!(row.get::<Option<String>>("note").is_err()); // not selected
    /// #   let _ = (sku, quantity);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn select<I, S>(mut self, fields: I) -> Query
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.shape.get_or_insert_default().select =
            Some(fields.into_iter().map(Into::into).collect());
        self
    }

    /// Load the rows related to the page's rows by `path`, beside the page
    /// ([`crate::Page::included`]): one statement per relation, whatever
    /// the number of rows (`WHERE key = ANY($1)`, bound with the page's
    /// keys once each), never one per row.
    ///
    /// A relation is named from the model listed:
    ///
    /// - **belongs-to**: a field of the model that
    ///   [`crate::Field::references`] another model, named as the field
    ///   without its `_id` suffix (`customer_id` is `"customer"`; a field
    ///   without the suffix by its own name). Loads the referenced rows.
    /// - **has-many**: a model with a field that references this one,
    ///   named as that model (`"OrderLine"`); when it has several such
    ///   fields, as `"OrderLine(order_id)"`, the field in parentheses (the
    ///   form is always accepted). Loads the rows that reference the
    ///   page's rows.
    ///
    /// A path goes on from the related rows with `.`: `"OrderLine.product"`
    /// loads the lines of the page's rows, then the products of those
    /// lines (and includes `"OrderLine"` too). An unknown or ambiguous
    /// relation is refused with [`crate::ErrorKind::InvalidInput`] before
    /// any SQL, naming the relations the model has. Related rows of a
    /// soft-delete model are its live rows only.
    ///
    /// Bounds ([`crate::QueryBounds`]): at most `max_includes` relations
    /// (each path's prefixes counted once), `max_include_depth` steps in a
    /// path, both checked before any SQL; and at most
    /// `max_included_rows` related rows per relation for the page: a
    /// relation with more is refused with
    /// [`crate::ErrorKind::InvalidInput`] once it is read (ask for a
    /// smaller page, or list the related model with a filter instead).
    ///
    /// ```no_run
    /// # async fn demo(db: pgactor::Db) -> pgactor::Result<()> {
    /// use pgactor::Query;
    /// let page = db.list("Order", Query::new().include("customer").include("OrderLine")).await?;
    /// for order in &page.rows {
    ///     let customer = page.included.of("customer", order)?; // at most one
    ///     let lines = page.included.of("OrderLine", order)?;
    /// #   let _ = (customer, lines);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn include(mut self, path: impl Into<String>) -> Query {
        self.shape.get_or_insert_default().include.push(path.into());
        self
    }

    /// The fields its rows hold ([`Query::select`]); `None`: every field.
    pub(crate) fn selected(&self) -> Option<&[String]> {
        self.shape.as_ref()?.select.as_deref()
    }

    /// The relation paths it includes, as given ([`Query::include`]).
    pub(crate) fn includes(&self) -> &[String] {
        self.shape.as_ref().map_or(&[], |s| &s.include)
    }
}

/// Every relation path a query's includes load, each once, a path's
/// prefixes before it (`"a.b"` loads `"a"` first): the statements an
/// include costs, in an order where each relation's parent comes first.
/// A path with an empty step is refused.
pub(crate) fn include_paths(query: &Query) -> Result<Vec<String>> {
    let mut paths: Vec<String> = Vec::new();
    for path in query.includes() {
        if path.split('.').any(str::is_empty) {
            return Err(Error::invalid_input(format!(
                "the include {} has an empty step: name relations joined by '.'",
                quoted_name(path)
            )));
        }
        let mut end = 0;
        for step in path.split('.') {
            end += step.len();
            let prefix = &path[..end];
            if !paths.iter().any(|p| p == prefix) {
                paths.push(prefix.to_owned());
            }
            end += 1;
        }
    }
    Ok(paths)
}

/// The key a related row is matched by: an `id`, or a foreign key holding
/// one (a `uuid` or a `bigint`, the only key types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    Uuid(uuid::Uuid),
    I64(i64),
}

impl Key {
    /// The key `value` holds; `None` for NULL (a foreign key left empty).
    pub(crate) fn of(value: &Value) -> Option<Key> {
        match value {
            Value::Uuid(id) => Some(Key::Uuid(*id)),
            Value::I64(n) => Some(Key::I64(*n)),
            Value::I32(n) => Some(Key::I64(i64::from(*n))),
            Value::I16(n) => Some(Key::I64(i64::from(*n))),
            _ => None,
        }
    }
}

/// The related rows a page's [`Query::include`]s loaded, by relation path
/// (`"customer"`, `"OrderLine.product"`): read them as [`Record`]s, or,
/// through [`Included::related_as`], as a type of your own.
///
/// Each relation holds every related row of the page once, however many
/// of the page's rows share it, in the order of the key they are matched
/// by (then `id`). [`Included::of`] answers the related rows of one
/// parent row (a page row, or for a nested path a row of the relation
/// before it); [`Included::related`] those of one key.
#[derive(Clone, Default)]
pub struct Included {
    pub(crate) relations: Vec<Related>,
}

/// The rows of one relation.
#[derive(Clone)]
pub(crate) struct Related {
    /// The relation's path, as included.
    pub(crate) path: String,
    /// The related model's name.
    pub(crate) model: String,
    /// The field of a parent row holding the key its related rows are
    /// matched by: the foreign key (belongs-to) or `id` (has-many).
    pub(crate) parent_field: String,
    /// The rows as the driver answered them, in the order of their key.
    pub(crate) rows: Arc<[Row]>,
    /// The related table's columns, to decode a row as a record.
    pub(crate) columns: Arc<Columns>,
    /// The rows of each key, contiguous in `rows`.
    pub(crate) groups: Arc<HashMap<Key, Range<usize>>>,
}

impl Related {
    /// The rows matched by `key` (none for NULL or a key no row has).
    pub(crate) fn rows_of(&self, key: &Value) -> &[Row] {
        let range = Key::of(key).and_then(|k| self.groups.get(&k)).cloned();
        range.map_or(&[], |range| &self.rows[range])
    }

    /// The rows of the parent row `parent`, by its field `parent_field`.
    fn rows_of_parent(&self, parent: &Record) -> Result<&[Row]> {
        let key = parent.value(&self.parent_field).ok_or_else(|| {
            Error::decode(format!(
                "the row has no field \"{}\", which relation \"{}\" is matched by",
                self.parent_field, self.path
            ))
        })?;
        Ok(self.rows_of(key))
    }

    fn records(&self, rows: &[Row]) -> Result<Vec<Record>> {
        rows.iter()
            .map(|row| record_of(&self.columns, row))
            .collect()
    }
}

/// A row of a table's statement as a record of `columns`.
pub(crate) fn record_of(columns: &Arc<Columns>, row: &Row) -> Result<Record> {
    Record::from_row(columns, |i| {
        row.try_get::<_, Value>(i)
            .map_err(|e| Error::decode(format!("column \"{}\": {e}", row.columns()[i].name())))
    })
}

impl Included {
    /// Whether no relation was included.
    pub fn is_empty(&self) -> bool {
        self.relations.is_empty()
    }

    /// The paths of the relations loaded, parents before their children.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.relations.iter().map(|r| r.path.as_str())
    }

    /// The relation `path`, or InvalidInput naming the ones loaded.
    pub(crate) fn relation(&self, path: &str) -> Result<&Related> {
        self.relations
            .iter()
            .find(|r| r.path == path)
            .ok_or_else(|| {
                let loaded: Vec<&str> = self.paths().collect();
                Error::invalid_input(format!(
                    "the relation {} was not included (included: {})",
                    quoted_name(path),
                    if loaded.is_empty() {
                        "none".to_owned()
                    } else {
                        loaded.join(", ")
                    }
                ))
            })
    }

    /// Every row of relation `path`, as records.
    pub fn records(&self, path: &str) -> Result<Vec<Record>> {
        let relation = self.relation(path)?;
        relation.records(&relation.rows)
    }

    /// The rows of relation `path` related to `parent`: a row of the page
    /// (or, for a nested path, of the relation before it). For a
    /// belongs-to relation, the row its foreign key references (none when
    /// it is NULL or the row is soft-deleted); for a has-many relation,
    /// the rows referencing it.
    ///
    /// [`crate::ErrorKind::InvalidInput`] when `path` was not included;
    /// [`crate::ErrorKind::Decode`] when `parent` lacks the field the
    /// relation is matched by.
    pub fn of(&self, path: &str, parent: &Record) -> Result<Vec<Record>> {
        let relation = self.relation(path)?;
        relation.records(relation.rows_of_parent(parent)?)
    }

    /// The rows of relation `path` matched by `key`: for a belongs-to
    /// relation the parent's foreign key (the row with that id), for a
    /// has-many relation the parent's `id` (the rows referencing it).
    pub fn related(&self, path: &str, key: impl Into<Value>) -> Result<Vec<Record>> {
        let relation = self.relation(path)?;
        relation.records(relation.rows_of(&key.into()))
    }
}

impl PartialEq for Included {
    /// The same relations holding the same rows (decoded as records).
    fn eq(&self, other: &Included) -> bool {
        self.relations.len() == other.relations.len()
            && self.relations.iter().zip(&other.relations).all(|(a, b)| {
                a.path == b.path
                    && a.model == b.model
                    && matches!(
                        (a.records(&a.rows), b.records(&b.rows)),
                        (Ok(x), Ok(y)) if x == y
                    )
            })
    }
}

impl std::fmt::Debug for Included {
    /// Each relation's path and how many rows it holds.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.relations.iter().map(|r| (&r.path, r.rows.len())))
            .finish()
    }
}

impl serde::Serialize for Included {
    /// A map of relation path to its rows, each a record.
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeMap};
        let mut map = s.serialize_map(Some(self.relations.len()))?;
        for relation in &self.relations {
            let records = relation.records(&relation.rows).map_err(S::Error::custom)?;
            map.serialize_entry(&relation.path, &records)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_load_their_prefixes_first_and_each_once() {
        let query = Query::new()
            .include("OrderLine.product.maker")
            .include("customer")
            .include("OrderLine");
        assert_eq!(
            include_paths(&query).unwrap(),
            [
                "OrderLine",
                "OrderLine.product",
                "OrderLine.product.maker",
                "customer"
            ]
        );
        for bad in ["", "a..b", ".a", "a."] {
            let err = include_paths(&Query::new().include(bad)).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidInput, "{bad}");
        }
    }

    #[test]
    fn keys_are_ids_and_null_is_none() {
        let id = uuid::Uuid::now_v7();
        assert_eq!(Key::of(&Value::Uuid(id)), Some(Key::Uuid(id)));
        assert_eq!(Key::of(&Value::I64(7)), Some(Key::I64(7)));
        assert_eq!(Key::of(&Value::Null), None);
    }

    #[test]
    fn an_empty_included_answers_no_relation() {
        let none = Included::default();
        assert!(none.is_empty());
        let err = none.records("customer").unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("included: none"), "{err}");
    }
}
