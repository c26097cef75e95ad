//! How SQL names the types whose OIDs differ from one database to the
//! next (an enum type, `citext`, a custom type): values of them are bound
//! as text with a cast to the type, and read back as text, so that no
//! statement makes the driver look a type up (a named statement, which a
//! transaction-pooling bouncer forbids). An extension's operators are
//! named with its schema (`OPERATOR("public".=)`): the session's search
//! path holds the adapter's schema only, and an operator it does not find
//! is not an error for `citext` but the `text` one, which minds case.

use tokio_postgres::types::Type;
use tokio_postgres::Client;

use crate::error::{Error, Result};
use crate::schema::{quote_ident, FieldType};

/// The names of the types pgactor casts to, in one adapter's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TypeNames {
    /// `"schema"`: the adapter's, where AutoMigrate makes enum types.
    schema: String,
    /// `"schema"."citext"`, in the schema its extension is in; plain
    /// `citext` (found by the search path) until that is known.
    citext: String,
    /// `"schema"`, the citext extension's, once known.
    citext_schema: Option<String>,
}

impl TypeNames {
    /// The names in the adapter's `schema`, `citext` unqualified.
    pub(crate) fn new(schema: &str) -> TypeNames {
        TypeNames {
            schema: quote_ident(schema),
            citext: "citext".into(),
            citext_schema: None,
        }
    }

    /// `citext` qualified with the schema its extension is in
    /// ([`citext_schema`]); unqualified without one.
    pub(crate) fn with_citext_schema(mut self, schema: Option<&str>) -> TypeNames {
        self.citext_schema = schema.map(quote_ident);
        self.citext = match &self.citext_schema {
            Some(schema) => format!("{schema}.\"citext\""),
            None => "citext".into(),
        };
        self
    }

    /// The schema whose operators and functions a type's values take: the
    /// citext extension's, a schema-qualified custom type's; none for the
    /// rest (theirs are in `pg_catalog`, always searched).
    fn operator_schema(&self, ty: FieldType) -> Option<String> {
        match ty {
            FieldType::Citext => self.citext_schema.clone(),
            FieldType::Custom(name) => name.split_once('.').map(|(schema, _)| quote_ident(schema)),
            _ => None,
        }
    }

    /// Operator `op` (`=`, `<`, …) for values of `ty`: `OPERATOR("s".=)`
    /// for a type whose operators are in a schema of their own.
    pub(crate) fn op(&self, ty: FieldType, op: &str) -> String {
        match self.operator_schema(ty) {
            Some(schema) => format!("OPERATOR({schema}.{op})"),
            None => op.to_owned(),
        }
    }

    /// Function `name` (`min`, `max`) of values of `ty`, qualified as
    /// [`TypeNames::op`] qualifies operators.
    pub(crate) fn function(&self, ty: FieldType, name: &str) -> String {
        match self.operator_schema(ty) {
            Some(schema) => format!("{schema}.{name}"),
            None => name.to_owned(),
        }
    }

    /// Whether `ty`'s operators are named with a schema ([`TypeNames::op`]).
    pub(crate) fn qualifies(&self, ty: FieldType) -> bool {
        self.operator_schema(ty).is_some()
    }

    /// The type as DDL and casts name it: an enum type qualified with the
    /// adapter's schema, `citext` with its extension's.
    pub(crate) fn sql(&self, ty: FieldType) -> String {
        match ty {
            FieldType::Enum(_) => format!("{}.{}", self.schema, ty.sql()),
            FieldType::Citext => self.citext.clone(),
            other => other.sql(),
        }
    }

    /// The cast a placeholder of a value of `ty` (of a list of them, as one
    /// array, with `list`) needs: `::"schema"."mood"` for a type that
    /// travels as text ([`FieldType::travels_as_text`]), else none.
    pub(crate) fn cast(&self, ty: FieldType, list: bool) -> Option<String> {
        ty.travels_as_text()
            .then(|| format!("::{}{}", self.sql(ty), if list { "[]" } else { "" }))
    }
}

/// The schema the `citext` extension is installed in, if it is.
pub(crate) async fn citext_schema(client: &Client) -> Result<Option<String>> {
    let row = client
        .query_typed(
            "SELECT n.nspname::text FROM pg_catalog.pg_extension e \
             JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace \
             WHERE e.extname = $1",
            &[(&"citext", Type::TEXT)],
        )
        .await
        .map_err(|e| Error::from_statement(e, false))?;
    Ok(row.first().map(|row| row.get(0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{EnumType, Field, Filter, Model, Query, Record, Registry, Value};
    use crate::sql::{Catalog, Statements};

    static MOOD: EnumType = EnumType::new("mood", &["sad", "ok"]);

    #[test]
    fn types_that_travel_as_text_are_cast_and_qualified() {
        let names = TypeNames::new("shop");
        assert_eq!(names.sql(FieldType::Enum(&MOOD)), "\"shop\".\"mood\"");
        assert_eq!(
            names.cast(FieldType::Enum(&MOOD), true).unwrap(),
            "::\"shop\".\"mood\"[]"
        );
        assert_eq!(names.cast(FieldType::Citext, false).unwrap(), "::citext");
        let names = names.with_citext_schema(Some("ext"));
        assert_eq!(
            names.cast(FieldType::Citext, false).unwrap(),
            "::\"ext\".\"citext\""
        );
        assert_eq!(
            names
                .cast(FieldType::Custom("public.ltree"), false)
                .unwrap(),
            "::\"public\".\"ltree\""
        );
        assert_eq!(names.cast(FieldType::Text, false), None);
        assert_eq!(names.cast(FieldType::Interval, true), None);
        assert_eq!(names.sql(FieldType::Interval), "interval");
        assert_eq!(names.op(FieldType::Citext, "="), "OPERATOR(\"ext\".=)");
        assert_eq!(names.function(FieldType::Citext, "min"), "\"ext\".min");
        assert_eq!(
            names.op(FieldType::Custom("public.ltree"), "<"),
            "OPERATOR(\"public\".<)"
        );
        assert_eq!(names.op(FieldType::Custom("ltree"), "<"), "<");
        assert_eq!(names.op(FieldType::Enum(&MOOD), "<>"), "<>");
        assert!(!names.qualifies(FieldType::Text));
    }

    #[test]
    fn statements_cast_named_types_read_them_as_text_and_sort_them_in_their_order() {
        let registry = Registry::new()
            .with(
                Model::new("Entry")
                    .field(Field::new("mood", FieldType::Enum(&MOOD)))
                    .field(Field::new("nick", FieldType::Citext))
                    .field(Field::new("path", FieldType::Custom("public.ltree")).nullable()),
            )
            .unwrap();
        let catalog =
            Catalog::new(&registry, "shop", Statements::Unnamed).with_citext_schema(Some("ext"));
        let table = catalog.table("Entry").unwrap();
        let read = table.read(Value::Uuid(uuid::Uuid::nil())).unwrap();
        assert!(read.sql.starts_with(
            "SELECT \"id\", \"mood\"::text AS \"mood\", \"nick\"::text AS \"nick\", \
             \"path\"::text AS \"path\", \"created_at\""
        ));
        let insert = table
            .insert(Record::new().with("mood", "ok").with("nick", "Bob"))
            .unwrap();
        assert!(
            insert
                .sql
                .contains("VALUES ($1, $2::\"shop\".\"mood\", $3::\"ext\".\"citext\")"),
            "{}",
            &*insert.sql
        );
        assert_eq!(insert.params[1].1, Type::TEXT);
        let err = table
            .insert(Record::new().with("mood", "glad").with("nick", "Bob"))
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
        let query = Query::new()
            .filter(Filter::and(
                Filter::eq("nick", "BOB"),
                Filter::is_in("mood", ["ok", "sad"]),
            ))
            .sort_asc("mood");
        let page = table.list(&query).unwrap().page;
        for part in [
            "\"nick\" OPERATOR(\"ext\".=) $1::\"ext\".\"citext\"",
            "\"mood\" = ANY($2::\"shop\".\"mood\"[])",
            "ORDER BY \"shop\".\"entry\".\"mood\" ASC",
        ] {
            assert!(page.sql.contains(part), "{part} in {}", &*page.sql);
        }
        // A cursor's condition compares citext with its own operators.
        let keyset = table
            .list(&Query::new().sort_asc("nick"))
            .unwrap()
            .keyset
            .unwrap();
        let cursor = keyset
            .cursor(|column| {
                Ok(match column {
                    0 => Value::Uuid(uuid::Uuid::nil()),
                    _ => Value::Text("bob".into()),
                })
            })
            .unwrap()
            .unwrap();
        let after = table
            .list(&Query::new().sort_asc("nick").after(cursor))
            .unwrap();
        assert!(
            after
                .page
                .sql
                .contains("\"nick\" OPERATOR(\"ext\".>) $1::\"ext\".\"citext\""),
            "{}",
            &*after.page.sql
        );
    }
}
