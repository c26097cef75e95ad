//! Full-text search: the stored `tsvector` AutoMigrate makes of a model's
//! searchable fields, and the match and rank of a search text against it.

use tokio_postgres::types::Type;

use crate::error::{Error, Result};
use crate::schema::{push_ident, push_literal, quote_ident, Model, Value, SEARCH_VECTOR};

use super::statement::{Param, Statement};
use super::table::Table;

/// The weight of each searchable field's words, in declared order: the
/// first weighs most; from the fourth on, all weigh the least.
const WEIGHTS: [char; 4] = ['A', 'B', 'C', 'D'];

/// `'<language>'::regconfig`: the model's text search configuration as a
/// constant, so the planner matches the GIN index (a lower-case plain
/// identifier, checked by the registry, and quoted all the same).
fn regconfig(model: &Model) -> String {
    let mut sql = String::new();
    push_literal(&mut sql, model.search_language_name());
    sql.push_str("::regconfig");
    sql
}

/// The generation expression of a searchable model's [`SEARCH_VECTOR`]:
/// each searchable field's words, weighted by its place, in one
/// `tsvector` (a NULL field adds none).
pub(crate) fn search_vector_expression(model: &Model) -> String {
    let config = regconfig(model);
    let parts: Vec<String> = model
        .searchable_fields()
        .enumerate()
        .map(|(at, field)| {
            let weight = WEIGHTS[at.min(WEIGHTS.len() - 1)];
            format!(
                "setweight(to_tsvector({config}, coalesce({}, '')), '{weight}')",
                quote_ident(field.name())
            )
        })
        .collect();
    parts.join(" || ")
}

/// The column definition AutoMigrate gives [`SEARCH_VECTOR`].
pub(crate) fn search_vector_column(model: &Model) -> String {
    let mut def = String::new();
    push_ident(&mut def, SEARCH_VECTOR);
    def.push_str(" tsvector GENERATED ALWAYS AS (");
    def.push_str(&search_vector_expression(model));
    def.push_str(") STORED");
    def
}

/// What a search adds to a statement: its condition, and the rank of a
/// row (for an `ORDER BY`), the text bound once for both.
pub(super) struct SearchTerms {
    pub(super) condition: String,
    pub(super) rank: String,
}

impl Table {
    /// `"search_vector" @@ websearch_to_tsquery('<language>'::regconfig,
    /// $n)` and `ts_rank("search_vector", …)`, `text` bound as `$n`.
    /// Refused before any SQL on a model without searchable fields and for
    /// an empty (or white space) text.
    pub(super) fn search(&self, text: &str, stmt: &mut Statement) -> Result<SearchTerms> {
        let model = &self.model;
        if !model.is_searchable() {
            return Err(Error::invalid_input(format!(
                "a search needs searchable fields and {} has none \
                 (Field::searchable, #[pgactor(searchable)])",
                model.name()
            )));
        }
        if text.trim().is_empty() {
            return Err(Error::invalid_input(
                "the search text is empty: leave the search out to list every row",
            ));
        }
        if text.contains('\0') {
            return Err(Error::invalid_input(
                "the search text cannot contain a NUL byte",
            ));
        }
        let ph = stmt.bind(Param::One(Value::Text(text.to_owned())), Type::TEXT);
        let query = format!("websearch_to_tsquery({}, {ph})", regconfig(model));
        let column = quote_ident(SEARCH_VECTOR);
        Ok(SearchTerms {
            condition: format!("{column} @@ {query}"),
            rank: format!("ts_rank({column}, {query})"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Field, FieldType, Filter, Query, Registry};
    use crate::sql::statement::Statements;
    use crate::sql::table::Catalog;

    fn catalog(model: Model) -> Catalog {
        Catalog::new(
            &Registry::new().with(model).unwrap(),
            "shop",
            Statements::Unnamed,
        )
    }

    fn product() -> Model {
        Model::new("Product")
            .field(Field::new("name", FieldType::Varchar(80)).searchable())
            .field(Field::new("price", FieldType::I64))
            .field(Field::new("body", FieldType::Text).nullable().searchable())
            .field(Field::new("tags", FieldType::Text).searchable())
            .field(Field::new("more", FieldType::Text).searchable())
            .field(Field::new("rest", FieldType::Text).searchable())
            .search_language("simple")
    }

    #[test]
    fn the_vector_weighs_fields_by_their_place() {
        assert_eq!(
            search_vector_column(&product()),
            "\"search_vector\" tsvector GENERATED ALWAYS AS (\
             setweight(to_tsvector('simple'::regconfig, coalesce(\"name\", '')), 'A') || \
             setweight(to_tsvector('simple'::regconfig, coalesce(\"body\", '')), 'B') || \
             setweight(to_tsvector('simple'::regconfig, coalesce(\"tags\", '')), 'C') || \
             setweight(to_tsvector('simple'::regconfig, coalesce(\"more\", '')), 'D') || \
             setweight(to_tsvector('simple'::regconfig, coalesce(\"rest\", '')), 'D')) STORED"
        );
    }

    #[test]
    fn a_search_binds_its_text_once_and_ranks_unless_sorted() {
        let catalog = catalog(product());
        let table = catalog.table("Product").unwrap();
        let nasty = "x'); DROP TABLE product; --";
        let listing = table
            .list(
                &Query::new()
                    .search(nasty)
                    .filter(Filter::gt("price", 1_i64)),
            )
            .unwrap();
        let matched = "\"search_vector\" @@ websearch_to_tsquery('simple'::regconfig, $2)";
        assert_eq!(
            &*listing.page.sql,
            format!(
                "SELECT \"id\", \"name\", \"price\", \"body\", \"tags\", \"more\", \"rest\", \
                 \"created_at\", \"updated_at\" FROM \"shop\".\"product\" WHERE \"price\" > $1 \
                 AND {matched} ORDER BY ts_rank(\"search_vector\", \
                 websearch_to_tsquery('simple'::regconfig, $2)) DESC, \"id\" ASC LIMIT $3 OFFSET $4"
            )
        );
        assert!(!listing.page.sql.contains("DROP"));
        assert!(listing.keyset.is_none(), "no cursor follows a rank");
        let count = listing.count.unwrap();
        assert!(count
            .sql
            .ends_with(&format!("WHERE \"price\" > $1 AND {matched}")));
        assert_eq!(count.params.len(), 2);
        // A sort given replaces the rank, and a cursor may follow it.
        let sorted = table
            .list(&Query::new().search("shoe").sort_desc("price"))
            .unwrap();
        assert!(sorted
            .page
            .sql
            .contains("ORDER BY \"price\" DESC, \"id\" ASC"));
        assert!(sorted.keyset.is_some());
        // The same match as a filter, wherever a filter goes.
        let counted = table.count(&Filter::search("shoe")).unwrap();
        assert_eq!(
            &*counted.sql,
            "SELECT count(*) FROM \"shop\".\"product\" WHERE \"search_vector\" @@ \
             websearch_to_tsquery('simple'::regconfig, $1)"
        );
    }

    #[test]
    fn searches_are_refused_before_any_sql() {
        let catalog = catalog(product());
        let table = catalog.table("Product").unwrap();
        let plain = self::catalog(Model::new("Plain").field(Field::new("a", FieldType::Text)));
        let plain = plain.table("Plain").unwrap();
        let cursor = {
            let sorted = table.list(&Query::new().sort_asc("name")).unwrap();
            let keyset = sorted.keyset.unwrap();
            keyset
                .cursor(|at| {
                    Ok(match at {
                        0 => Value::Uuid(uuid::Uuid::nil()),
                        _ => Value::Text("a".into()),
                    })
                })
                .unwrap()
                .unwrap()
        };
        let cases = [
            (table.list(&Query::new().search("")).err(), "empty"),
            (table.list(&Query::new().search(" \t\n")).err(), "empty"),
            (table.list(&Query::new().search("a\0b")).err(), "NUL"),
            (table.count(&Filter::search("  ")).err(), "empty"),
            (
                plain.list(&Query::new().search("shoe")).err(),
                "Plain has none",
            ),
            (
                plain.exists(&Filter::search("shoe")).err(),
                "Plain has none",
            ),
            (
                table.list(&Query::new().search("shoe").after(cursor)).err(),
                "by rank",
            ),
        ];
        for (err, says) in cases {
            let err = err.expect("refused");
            assert_eq!(err.kind(), crate::ErrorKind::InvalidInput, "{err}");
            assert!(err.to_string().contains(says), "{err}");
        }
    }
}
