//! Includes: the relations a `List` names, resolved against the catalog
//! before any SQL, and the one statement that loads each relation's rows
//! for a whole page (`WHERE key = ANY($1)`).

use std::sync::Arc;

use tokio_postgres::types::Type;

use crate::error::{quoted_name, Error, Result};
use crate::schema::{include_paths, quote_ident, Columns, Field, Model, Query, Value, ID};

use super::statement::{Param, Sql, Statement};
use super::table::{Catalog, Table};

/// The relations one `List` loads, each parent before its children.
#[derive(Debug, Default)]
pub(crate) struct Includes {
    pub(crate) steps: Vec<Step>,
}

/// One relation of a `List`'s includes.
#[derive(Debug)]
pub(crate) struct Step {
    /// Its path, as the caller names it (`"OrderLine.product"`).
    pub(crate) path: String,
    /// The step whose rows are its parents; `None`: the page's rows.
    pub(crate) parent: Option<usize>,
    /// How many steps its path has: steps of one depth run together.
    pub(crate) depth: usize,
    /// The related model's name.
    pub(crate) model: String,
    /// The field of a parent row holding the key: the foreign key
    /// (belongs-to) or `id` (has-many).
    pub(crate) parent_field: String,
    /// The field of a related row matched against it: `id` (belongs-to)
    /// or the foreign key (has-many).
    pub(crate) match_field: String,
    /// The related table's columns: what each related row holds.
    pub(crate) columns: Arc<Columns>,
    /// The most related rows the relation may load for one page.
    pub(crate) max_rows: usize,
    /// `SELECT … WHERE "match" = ANY($1) … ORDER BY "match", "id" LIMIT $2`.
    sql: Arc<str>,
    /// The type of `$1`: an array of the key's type.
    keys_type: Type,
}

impl Step {
    /// The statement loading the related rows of `keys` (the parents' keys,
    /// each once): at most one row past the bound, to tell a relation past
    /// it.
    pub(crate) fn statement(&self, keys: Vec<Value>) -> Statement {
        let limit = i64::try_from(self.max_rows.saturating_add(1)).unwrap_or(i64::MAX);
        Statement {
            sql: Sql::Kept(self.sql.clone()),
            params: vec![
                (Param::List(keys), self.keys_type.clone()),
                (Param::One(Value::I64(limit)), Type::INT8),
            ],
        }
    }
}

/// One relation a model has, found by name.
enum Relation<'a> {
    /// `field` of the model references `to`.
    BelongsTo { field: &'a Field, to: &'a Table },
    /// `field` of `from` references the model.
    HasMany { from: &'a Table, field: &'a Field },
}

impl Relation<'_> {
    /// The related table, the parent's key field and the related rows'.
    fn ends(&self) -> (&Table, &str, &str) {
        match self {
            Relation::BelongsTo { field, to } => (to, field.name(), ID),
            Relation::HasMany { from, field } => (from, ID, field.name()),
        }
    }
}

impl Includes {
    /// The includes of `query`, a list of `table`: each path resolved step
    /// by step (InvalidInput naming an unknown or ambiguous relation and
    /// the relations the model has), each relation's statement written.
    /// The shape's bounds are the caller's to check first.
    pub(crate) fn plan(catalog: &Catalog, table: &Table, query: &Query) -> Result<Includes> {
        if query.includes().is_empty() {
            return Ok(Includes::default());
        }
        let max_rows = catalog.bounds_of(table.model.name()).max_included_rows;
        let mut steps: Vec<Step> = Vec::new();
        for path in include_paths(query)? {
            let (parent, name) = match path.rsplit_once('.') {
                Some((before, name)) => (steps.iter().position(|s| s.path == before), name),
                None => (None, path.as_str()),
            };
            let from = match parent {
                Some(at) => catalog.table(&steps[at].model)?,
                None => table,
            };
            let relation = find(catalog, &from.model, name)?;
            let (to, parent_field, match_field) = relation.ends();
            let keys_type = to
                .column_type(match_field)?
                .pg_array_type()
                .ok_or_else(|| Error::invalid_input("a relation's key has no array type"))?;
            let key = quote_ident(match_field);
            let order = if match_field == ID {
                String::new()
            } else {
                format!("{key}, ")
            };
            let mut sql = format!(
                "SELECT {} FROM {} WHERE {key} = ANY($1)",
                to.select_list, to.qualified
            );
            to.push_live(&mut sql);
            sql.push_str(&format!(" ORDER BY {order}\"id\" LIMIT $2"));
            steps.push(Step {
                depth: path.split('.').count(),
                parent,
                model: to.model.name().to_owned(),
                parent_field: parent_field.to_owned(),
                match_field: match_field.to_owned(),
                columns: to.columns.clone(),
                max_rows,
                sql: sql.into(),
                keys_type,
                path,
            });
        }
        Ok(Includes { steps })
    }

    /// Whether the list loads no relation.
    pub(crate) fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The fields of the page's rows the first steps read their keys from
    /// (a subset must hold them).
    pub(crate) fn page_fields(&self) -> Vec<&str> {
        self.steps
            .iter()
            .filter(|s| s.parent.is_none())
            .map(|s| s.parent_field.as_str())
            .collect()
    }
}

/// The name a belongs-to relation has: its field without `_id`.
fn belongs_to_name(field: &str) -> &str {
    match field.strip_suffix("_id") {
        Some(name) if !name.is_empty() => name,
        _ => field,
    }
}

/// The relation of `model` named `name`; InvalidInput when it has none by
/// that name, or several.
fn find<'a>(catalog: &'a Catalog, model: &'a Model, name: &str) -> Result<Relation<'a>> {
    let mut found = Vec::new();
    let mut names = Vec::new();
    for field in model.fields() {
        let Some(reference) = field.reference() else {
            continue;
        };
        let relation = belongs_to_name(field.name());
        names.push(relation.to_owned());
        if relation == name {
            let to = catalog.table(reference.model())?;
            found.push(Relation::BelongsTo { field, to });
        }
    }
    for from in catalog.tables() {
        let referencing: Vec<&Field> = from
            .model
            .fields()
            .iter()
            .filter(|f| f.reference().is_some_and(|r| r.model() == model.name()))
            .collect();
        for &field in &referencing {
            let full = format!("{}({})", from.model.name(), field.name());
            if name == from.model.name() || name == full {
                found.push(Relation::HasMany { from, field });
            }
            names.push(match referencing.len() {
                1 => from.model.name().to_owned(),
                _ => full,
            });
        }
    }
    if found.len() == 1 {
        return Ok(found.remove(0));
    }
    let known = if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    };
    let why = if found.is_empty() {
        "no"
    } else {
        "more than one"
    };
    Err(Error::invalid_input(format!(
        "model \"{}\" has {why} relation {} (its relations: {known})",
        model.name(),
        quoted_name(name)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{FieldType, OnDelete, Registry};
    use crate::sql::Statements;

    fn catalog() -> Catalog {
        let registry = Registry::new()
            .with(Model::new("Customer").field(Field::new("name", FieldType::Text)))
            .unwrap()
            .with(
                Model::new("Order")
                    .field(
                        Field::new("customer_id", FieldType::Uuid)
                            .references("Customer", OnDelete::Cascade),
                    )
                    .soft_delete(),
            )
            .unwrap()
            .with(
                Model::new("Transfer")
                    .field(
                        Field::new("from_id", FieldType::Uuid)
                            .references("Order", OnDelete::NoAction),
                    )
                    .field(
                        Field::new("to_id", FieldType::Uuid)
                            .references("Order", OnDelete::NoAction),
                    ),
            )
            .unwrap();
        Catalog::new(&registry, "s", Statements::Prepared)
    }

    fn plan(model: &str, query: Query) -> Result<Includes> {
        let catalog = catalog();
        let table = catalog.table(model)?;
        Includes::plan(&catalog, table, &query)
    }

    #[test]
    fn each_relation_is_one_statement_by_an_array_of_keys() {
        let includes = plan("Customer", Query::new().include("Order.Transfer(to_id)")).unwrap();
        let [orders, transfers] = &includes.steps[..] else {
            panic!("two steps: {includes:?}")
        };
        assert_eq!((orders.parent, transfers.parent), (None, Some(0)));
        assert_eq!(
            &*orders.sql,
            "SELECT \"id\", \"customer_id\", \"created_at\", \"updated_at\", \"deleted_at\" \
             FROM \"s\".\"order\" WHERE \"customer_id\" = ANY($1) AND \"deleted_at\" IS NULL \
             ORDER BY \"customer_id\", \"id\" LIMIT $2"
        );
        assert_eq!(
            (&*orders.parent_field, &*orders.match_field),
            ("id", "customer_id")
        );
        assert_eq!(
            (&*transfers.parent_field, &*transfers.match_field),
            ("id", "to_id")
        );
        let back = plan("Order", Query::new().include("customer")).unwrap();
        let step = &back.steps[0];
        assert!(step
            .sql
            .ends_with("WHERE \"id\" = ANY($1) ORDER BY \"id\" LIMIT $2"));
        assert_eq!(back.page_fields(), ["customer_id"]);
        let stmt = step.statement(vec![Value::Uuid(uuid::Uuid::nil())]);
        assert_eq!(stmt.params[0].1, Type::UUID_ARRAY);
        assert!(matches!(stmt.params[1].0, Param::One(Value::I64(10_001))));
    }

    #[test]
    fn unknown_and_ambiguous_relations_are_refused_naming_the_known_ones() {
        let err = plan("Order", Query::new().include("customers")).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
        let text = err.to_string();
        assert!(
            text.contains("no relation \"customers\"")
                && text.contains("customer, Transfer(from_id), Transfer(to_id)"),
            "{text}"
        );
        let err = plan("Order", Query::new().include("Transfer")).unwrap_err();
        assert!(err.to_string().contains("more than one relation"), "{err}");
        let err = plan("Customer", Query::new().include("Order.nothing")).unwrap_err();
        assert!(err.to_string().contains("model \"Order\" has no"), "{err}");
    }
}
