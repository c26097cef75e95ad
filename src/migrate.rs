//! AutoMigrate: create missing tables, columns and indexes; never drop or
//! rewrite; warn about drift.

use std::collections::HashMap;

use tokio_postgres::types::Type;
use tokio_postgres::Client;

use crate::config::SessionSettings;
use crate::pooler::in_transaction;

use crate::error::{describe, Error, ErrorKind, Result};
use crate::model::{fnv1a, quote_ident, ColumnDefault, Field, Model, PrimaryKey, Registry};
use crate::value::{FieldType, Value};

/// What one AutoMigrate run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// Every DDL statement executed, in order. Empty when the schema was up to date.
    pub statements: Vec<String>,
    /// Drift found and left alone: columns the models no longer have, types
    /// that differ. Each is also logged as a `tracing` warning.
    pub warnings: Vec<String>,
}

/// The columns of each table: column name → type as `format_type` spells it.
type Columns = HashMap<String, HashMap<String, String>>;
/// The indexes of the schema: index name → its table.
type Indexes = HashMap<String, String>;

/// Bring `schema` up to the registry's models in one transaction, under an
/// advisory lock so processes starting together migrate one after another
/// (the later ones find nothing to do).
pub(crate) async fn auto_migrate(
    client: &mut Client,
    session: &SessionSettings,
    registry: &Registry,
) -> Result<MigrationReport> {
    let schema = session.schema.as_str();
    let ddl_error = |e: tokio_postgres::Error| {
        let msg = format!(
            "AutoMigrate failed in schema \"{schema}\": {}",
            describe(&e)
        );
        Error::new(ErrorKind::Database, msg).with_source(e)
    };
    let tx = client.transaction().await.map_err(ddl_error)?;
    // In pooler mode the session has no timeouts: the transaction sets them.
    in_transaction(tx.client(), session)
        .await
        .map_err(ddl_error)?;
    let lock_key = fnv1a(format!("pgactor.migrate:{schema}").as_bytes()) as i64;
    tx.query_typed(
        "SELECT pg_advisory_xact_lock($1)",
        &[(&lock_key, Type::INT8)],
    )
    .await
    .map_err(ddl_error)?;

    let mut columns = Columns::new();
    for row in tx
        .query_typed(
            "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod) \
             FROM pg_catalog.pg_attribute a \
             JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped",
            &[(&schema, Type::TEXT)],
        )
        .await
        .map_err(ddl_error)?
    {
        columns.entry(row.get(0)).or_default().insert(row.get(1), row.get(2));
    }
    let indexes: Indexes = tx
        .query_typed(
            "SELECT indexname::text, tablename::text FROM pg_catalog.pg_indexes WHERE schemaname = $1",
            &[(&schema, Type::TEXT)],
        )
        .await
        .map_err(ddl_error)?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();

    let mut report = MigrationReport::default();
    for model in registry.models() {
        let existing = columns.get(model.table());
        plan_model(schema, model, existing, &indexes, &mut report)?;
    }
    for sql in &report.statements {
        tx.batch_execute(sql).await.map_err(ddl_error)?;
    }
    tx.commit().await.map_err(ddl_error)?;
    for warning in &report.warnings {
        tracing::warn!(target: "pgactor.migrate", schema, "{warning}");
    }
    if !report.statements.is_empty() {
        tracing::info!(target: "pgactor.migrate", schema, statements = report.statements.len(), "schema migrated");
    }
    Ok(report)
}

/// The DDL a model needs and the drift it shows, given what exists.
fn plan_model(
    schema: &str,
    model: &Model,
    existing: Option<&HashMap<String, String>>,
    indexes: &Indexes,
    report: &mut MigrationReport,
) -> Result<()> {
    let table = format!("{}.{}", quote_ident(schema), quote_ident(model.table()));
    match existing {
        None => {
            let mut defs = vec![primary_key_column(model.key())];
            for field in model.fields() {
                defs.push(column_definition(field)?);
            }
            defs.push("\"created_at\" timestamptz NOT NULL DEFAULT now()".into());
            defs.push("\"updated_at\" timestamptz NOT NULL DEFAULT now()".into());
            report.statements.push(format!(
                "CREATE TABLE IF NOT EXISTS {table} ({})",
                defs.join(", ")
            ));
        }
        Some(existing) => {
            for name in model.column_names() {
                let expected = model.column_type(name).unwrap_or(FieldType::Text);
                match (existing.get(name), model.declared(name)) {
                    (None, Some(field)) => report.statements.push(format!(
                        "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {}",
                        column_definition(field)?
                    )),
                    (None, None) => report.warnings.push(format!(
                        "table \"{}\" has no column \"{name}\", which pgactor keeps; add it by hand",
                        model.table()
                    )),
                    (Some(found), _) if *found != expected.catalog_name() => report.warnings.push(format!(
                        "column \"{}\".\"{name}\" is {found} but model {} declares {}; left unchanged",
                        model.table(),
                        model.name(),
                        expected.catalog_name()
                    )),
                    (Some(_), _) => {}
                }
            }
            let mut extra: Vec<&String> = existing
                .keys()
                .filter(|c| model.column_type(c).is_none())
                .collect();
            extra.sort();
            for column in extra {
                report.warnings.push(format!(
                    "column \"{}\".\"{column}\" is not in model {}; left in place",
                    model.table(),
                    model.name()
                ));
            }
        }
    }
    for index in model.indexes() {
        let name = index.name(model.table());
        match indexes.get(&name) {
            Some(table) if table == model.table() => continue,
            Some(table) => {
                return Err(Error::config(format!(
                    "model {}: its index \"{name}\" would clash with the index of that name on table \"{table}\"",
                    model.name()
                )))
            }
            None => {}
        }
        let unique = if index.is_unique() { "UNIQUE " } else { "" };
        let columns: Vec<String> = index.columns().iter().map(|c| quote_ident(c)).collect();
        report.statements.push(format!(
            "CREATE {unique}INDEX IF NOT EXISTS {} ON {table} ({})",
            quote_ident(&name),
            columns.join(", ")
        ));
    }
    Ok(())
}

fn primary_key_column(key: PrimaryKey) -> String {
    match key {
        PrimaryKey::Uuid => "\"id\" uuid PRIMARY KEY DEFAULT gen_random_uuid()".into(),
        PrimaryKey::Identity => "\"id\" bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY".into(),
    }
}

fn column_definition(field: &Field) -> Result<String> {
    let mut def = format!("{} {}", quote_ident(field.name()), field.ty().sql());
    if !field.is_nullable() {
        def.push_str(" NOT NULL");
    }
    match field.default() {
        Some(ColumnDefault::Now) => def.push_str(" DEFAULT now()"),
        Some(ColumnDefault::Value(value)) => {
            let value = field.ty().coerce(field.name(), value.clone())?;
            def.push_str(&format!(" DEFAULT {}", literal(&value, field.ty())));
        }
        None => {}
    }
    Ok(def)
}

/// A typed constant as an SQL literal, for DDL defaults only (DDL takes no
/// bind parameters). Text is quoted with doubled quotes; the value was
/// checked for NUL bytes by `coerce`, and standard_conforming_strings (on
/// since PostgreSQL 9.1) keeps backslashes literal.
fn literal(value: &Value, ty: FieldType) -> String {
    let quoted = |s: &str| format!("'{}'::{}", s.replace('\'', "''"), ty.sql());
    match value {
        Value::Null => "NULL".into(),
        Value::Bool(b) => b.to_string(),
        Value::I16(n) => n.to_string(),
        Value::I32(n) => n.to_string(),
        Value::I64(n) => n.to_string(),
        Value::F32(f) => quoted(&f.to_string()),
        Value::F64(f) => quoted(&f.to_string()),
        Value::Numeric(d) => quoted(&d.to_string()),
        Value::Text(s) => quoted(s),
        Value::Bytes(b) => quoted(&format!(
            "\\x{}",
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        )),
        Value::Uuid(u) => quoted(&u.to_string()),
        Value::Timestamptz(t) => quoted(&t.to_rfc3339()),
        Value::Date(d) => quoted(&d.to_string()),
        Value::Json(j) => quoted(&j.to_string()),
        Value::JsonText(text) => quoted(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Index;

    fn model() -> Model {
        Model::new("Stock")
            .field(Field::new("sku", FieldType::Varchar(32)).unique())
            .field(Field::new("quantity", FieldType::I64).default_value(0_i64))
            .field(Field::new("label", FieldType::Text).default_value("it's"))
            .field(Field::new("note", FieldType::Text).nullable())
            .index(Index::on(["quantity", "sku"]))
    }

    #[test]
    fn a_missing_table_is_created_with_its_indexes() {
        let mut report = MigrationReport::default();
        plan_model("shop", &model(), None, &Indexes::new(), &mut report).unwrap();
        assert_eq!(
            report.statements,
            vec![
                "CREATE TABLE IF NOT EXISTS \"shop\".\"stock\" (\"id\" uuid PRIMARY KEY DEFAULT gen_random_uuid(), \
                 \"sku\" varchar(32) NOT NULL, \"quantity\" bigint NOT NULL DEFAULT 0, \
                 \"label\" text NOT NULL DEFAULT 'it''s'::text, \"note\" text, \
                 \"created_at\" timestamptz NOT NULL DEFAULT now(), \"updated_at\" timestamptz NOT NULL DEFAULT now())",
                "CREATE UNIQUE INDEX IF NOT EXISTS \"stock_sku_key\" ON \"shop\".\"stock\" (\"sku\")",
                "CREATE INDEX IF NOT EXISTS \"stock_quantity_sku_idx\" ON \"shop\".\"stock\" (\"quantity\", \"sku\")",
            ]
        );
    }

    #[test]
    fn drift_is_reported_and_never_dropped() {
        let existing: HashMap<String, String> = [
            ("id", "uuid"),
            ("sku", "character varying(16)"),
            ("label", "text"),
            ("note", "text"),
            ("legacy", "integer"),
            ("created_at", "timestamp with time zone"),
            ("updated_at", "timestamp with time zone"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let indexes: Indexes = ["stock_sku_key", "stock_quantity_sku_idx"]
            .into_iter()
            .map(|name| (name.to_owned(), "stock".to_owned()))
            .collect();
        let mut report = MigrationReport::default();
        plan_model("shop", &model(), Some(&existing), &indexes, &mut report).unwrap();
        assert_eq!(
            report.statements,
            vec!["ALTER TABLE \"shop\".\"stock\" ADD COLUMN IF NOT EXISTS \"quantity\" bigint NOT NULL DEFAULT 0"]
        );
        assert_eq!(report.warnings.len(), 2, "{:?}", report.warnings);
        assert!(report.warnings[0].contains(
            "\"sku\" is character varying(16) but model Stock declares character varying(32)"
        ));
        assert!(report.warnings[1].contains("\"legacy\" is not in model"));
        assert!(report.statements.iter().all(|s| !s.contains("DROP")));
    }
}
