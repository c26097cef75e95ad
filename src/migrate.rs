//! AutoMigrate: create missing tables, columns and indexes; never drop or
//! rewrite; warn about drift.

use std::collections::HashMap;

use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::Client;

use crate::config::SessionSettings;
use crate::wire::in_transaction;

use crate::error::{describe, Error, ErrorKind, Result};
use crate::messages::ConsistencyToken;
use crate::pool::{replayed_within, wal_position, ConnectionPool, SCHEMA_REPLAY_WAIT};
use crate::schema::{
    fnv1a, push_literal, quote_ident, ColumnDefault, EnumType, Field, FieldType, Index, Model,
    PrimaryKey, Registry, Value, DELETED_AT, ID, SEARCH_VECTOR,
};
use crate::sql::{citext_schema, search_vector_column, TypeNames};

/// The column a soft-delete model adds ([`Model::soft_delete`]).
const DELETED_AT_COLUMN: &str = "\"deleted_at\" timestamptz";
/// The predicate of a soft-delete model's unique indexes, as DDL writes it.
const LIVE_ROWS: &str = "\"deleted_at\" IS NULL";
/// The same, as `pg_get_expr` answers it.
const LIVE_ROWS_CATALOG: &str = "(deleted_at IS NULL)";

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
/// Every relation of the schema (tables, indexes, sequences, views, …) by name.
type Relations = HashMap<String, Relation>;

/// One constraint on a table of the schema, as `pg_constraint` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Constraint {
    name: String,
    table: String,
    /// For a foreign key, what it is.
    foreign_key: Option<ForeignKeyShape>,
}

/// What an existing foreign key is, for comparing it with a declared one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ForeignKeyShape {
    columns: Vec<String>,
    /// The referenced table, when it is in the same schema.
    references: Option<String>,
    referenced_columns: Vec<String>,
    /// `pg_constraint.confdeltype`.
    on_delete: char,
}

impl ForeignKeyShape {
    /// Whether it is the foreign key `column` → `target`(`id`), whatever
    /// its ON DELETE.
    fn is(&self, column: &str, target: &str) -> bool {
        self.columns == [column]
            && self.references.as_deref() == Some(target)
            && self.referenced_columns == [ID]
    }
}

/// One relation of the schema, as `pg_class` and `pg_index` describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Relation {
    /// `pg_class.relkind`: `r` table, `p` partitioned table, `i` index, …
    kind: char,
    /// For an index, what it indexes.
    index: Option<IndexShape>,
}

/// What an existing index is, for comparing it with a declared [`Index`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct IndexShape {
    table: String,
    /// The key columns in order (an expression shows as an empty name).
    columns: Vec<String>,
    unique: bool,
    /// Valid, immediate, btree, with no expression: an index AutoMigrate
    /// could have made.
    plain: bool,
    /// Valid, GIN, with no expression: a search index AutoMigrate could
    /// have made.
    gin: bool,
    /// A partial index's predicate, as `pg_get_expr` spells it.
    predicate: Option<String>,
}

impl IndexShape {
    /// Whether it is `index` on `table`, partial on `predicate` (as
    /// `pg_get_expr` spells it) or not partial.
    fn is(&self, table: &str, index: &Index, predicate: Option<&str>) -> bool {
        self.plain
            && self.table == table
            && self.unique == index.is_unique()
            && self.columns == index.columns()
            && self.predicate.as_deref() == predicate
    }
}

/// What `relkind` means, for messages.
fn relkind_name(kind: char) -> &'static str {
    match kind {
        'r' => "table",
        'p' => "partitioned table",
        'i' | 'I' => "index",
        'S' => "sequence",
        'v' => "view",
        'm' => "materialized view",
        'c' => "composite type",
        'f' => "foreign table",
        _ => "relation",
    }
}

/// A relation for messages: `an index on table "order" (id)`, `a sequence`.
fn describe_relation(relation: &Relation) -> String {
    let kind = relkind_name(relation.kind);
    let what = match &relation.index {
        Some(shape) => format!(
            "{}{kind} on table \"{}\" ({}){}",
            if shape.unique { "unique " } else { "" },
            shape.table,
            shape.columns.join(", "),
            shape
                .predicate
                .as_ref()
                .map_or(String::new(), |p| format!(" WHERE {p}"))
        ),
        None => kind.to_owned(),
    };
    let article = if what.starts_with("index") { "an" } else { "a" };
    format!("{article} {what}")
}

/// Bring `schema` up to the registry's models in one transaction (after
/// the types they need, in one of their own: see `migrate_types`), under
/// an advisory lock so processes starting together migrate one after
/// another (the later ones find nothing to do).
pub(crate) async fn auto_migrate(
    client: &mut Client,
    session: &SessionSettings,
    registry: &Registry,
) -> Result<MigrationReport> {
    let schema = session.schema.as_str();
    let ddl_error = |e: tokio_postgres::Error| {
        // The server's message and code, not its DETAIL: a unique index
        // that existing rows break is detailed with their key values.
        let why = match e.as_db_error() {
            Some(db) if db.code() == &SqlState::FOREIGN_KEY_VIOLATION => format!(
                "{} (SQLSTATE {}): rows already in the table reference rows that do not exist; \
                 fix or delete them, then open again",
                db.message(),
                db.code().code()
            ),
            Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
            None => describe(&e),
        };
        let msg = format!("AutoMigrate failed in schema \"{schema}\": {why}");
        Error::new(ErrorKind::Database, msg).with_source(e)
    };
    let mut report = MigrationReport::default();
    let types = migrate_types(client, session, registry, &mut report, ddl_error).await?;
    let tx = client.transaction().await.map_err(ddl_error)?;
    lock(&tx, session).await.map_err(ddl_error)?;

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
    let mut relations = Relations::new();
    for row in tx
        .query_typed(
            "SELECT c.relname::text, c.relkind::text, t.relname::text, i.indisunique, \
                    i.indisvalid AND i.indimmediate AND i.indexprs IS NULL AND am.amname = 'btree', \
                    i.indisvalid AND i.indexprs IS NULL AND am.amname = 'gin', \
                    ARRAY(SELECT coalesce(a.attname::text, '') \
                          FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, n) \
                          LEFT JOIN pg_catalog.pg_attribute a \
                            ON a.attrelid = i.indrelid AND a.attnum = k.attnum AND k.attnum > 0 \
                          WHERE k.n <= i.indnkeyatts ORDER BY k.n), \
                    pg_get_expr(i.indpred, i.indrelid) \
             FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid \
             LEFT JOIN pg_catalog.pg_class t ON t.oid = i.indrelid \
             LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam \
             WHERE n.nspname = $1",
            &[(&schema, Type::TEXT)],
        )
        .await
        .map_err(ddl_error)?
    {
        let kind: String = row.get(1);
        let index = row.get::<_, Option<String>>(2).map(|table| IndexShape {
            table,
            unique: row.get(3),
            plain: row.get::<_, Option<bool>>(4).unwrap_or(false),
            gin: row.get::<_, Option<bool>>(5).unwrap_or(false),
            columns: row.get(6),
            predicate: row.get(7),
        });
        let kind = kind.chars().next().unwrap_or('?');
        relations.insert(row.get(0), Relation { kind, index });
    }

    let mut constraints = Vec::new();
    for row in tx
        .query_typed(
            "SELECT c.conname::text, t.relname::text, c.contype = 'f', \
                    CASE WHEN rn.nspname = $1 THEN r.relname::text END, c.confdeltype::text, \
                    ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(attnum, n) \
                          JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum \
                          ORDER BY k.n), \
                    ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(attnum, n) \
                          JOIN pg_catalog.pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum \
                          ORDER BY k.n) \
             FROM pg_catalog.pg_constraint c \
             JOIN pg_catalog.pg_class t ON t.oid = c.conrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace \
             LEFT JOIN pg_catalog.pg_class r ON r.oid = c.confrelid \
             LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace \
             WHERE n.nspname = $1",
            &[(&schema, Type::TEXT)],
        )
        .await
        .map_err(ddl_error)?
    {
        let foreign_key = row.get::<_, bool>(2).then(|| ForeignKeyShape {
            references: row.get(3),
            on_delete: row.get::<_, String>(4).chars().next().unwrap_or('?'),
            columns: row.get(5),
            referenced_columns: row.get(6),
        });
        constraints.push(Constraint {
            name: row.get(0),
            table: row.get(1),
            foreign_key,
        });
    }

    let search_columns = search_columns(&tx, schema, registry, ddl_error).await?;

    let typed = report.statements.len();
    for model in registry.models() {
        let existing = columns.get(model.table());
        plan_model(&types, schema, model, existing, &relations, &mut report)?;
        let made_for = search_columns.get(model.table());
        plan_search(schema, model, existing, made_for, &relations, &mut report)?;
    }
    // Every table exists before any foreign key is added, so references
    // in any order, cycles included, need no ordering of the models.
    for model in registry.models() {
        plan_foreign_keys(
            schema,
            model,
            registry,
            &relations,
            &constraints,
            &mut report,
        )?;
    }
    for sql in &report.statements[typed..] {
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

/// Take the migration's advisory lock, for the rest of transaction `tx`,
/// with the session's timeouts set (in pooler mode the session has none:
/// the transaction sets them).
async fn lock(
    tx: &tokio_postgres::Transaction<'_>,
    session: &SessionSettings,
) -> std::result::Result<(), tokio_postgres::Error> {
    in_transaction(tx.client(), session).await?;
    let lock_key = fnv1a(format!("pgactor.migrate:{}", session.schema).as_bytes()) as i64;
    tx.query_typed(
        "SELECT pg_advisory_xact_lock($1)",
        &[(&lock_key, Type::INT8)],
    )
    .await?;
    Ok(())
}

/// The types the models' fields need, made in a transaction of their own
/// committed before the tables' (a label `ALTER TYPE … ADD VALUE` adds
/// cannot be used in the transaction that added it, by a column default
/// say): the `citext` extension, created if a field is `citext`, and each
/// enum type, created or given the labels it lacks. Their DDL goes into
/// `report`; the names the tables' DDL gives the types are answered.
async fn migrate_types(
    client: &mut Client,
    session: &SessionSettings,
    registry: &Registry,
    report: &mut MigrationReport,
    ddl_error: impl Fn(tokio_postgres::Error) -> Error,
) -> Result<TypeNames> {
    let schema = session.schema.as_str();
    let types = TypeNames::new(schema);
    let enums = registry.enum_types();
    let citext = registry.uses_citext();
    if enums.is_empty() && !citext {
        return Ok(types);
    }
    let tx = client.transaction().await.map_err(&ddl_error)?;
    lock(&tx, session).await.map_err(&ddl_error)?;
    let mut installed = None;
    if citext {
        // Extensions are the database's, not the schema's: adapters of
        // other schemas migrating at once take turns here.
        let lock_key = fnv1a(b"pgactor.migrate.extension:citext") as i64;
        tx.query_typed(
            "SELECT pg_advisory_xact_lock($1)",
            &[(&lock_key, Type::INT8)],
        )
        .await
        .map_err(&ddl_error)?;
        installed = citext_schema(tx.client()).await?;
        if installed.is_none() {
            tx.batch_execute("CREATE EXTENSION IF NOT EXISTS citext")
                .await
                .map_err(|e| {
                    Error::config(format!(
                        "AutoMigrate cannot create the extension citext, which a citext field \
                         needs: {}; have a superuser or the database owner run \
                         CREATE EXTENSION citext",
                        describe(&e)
                    ))
                    .with_source(e)
                })?;
            report
                .statements
                .push("CREATE EXTENSION IF NOT EXISTS citext".into());
            installed = citext_schema(tx.client()).await?;
        }
    }
    let types = types.with_citext_schema(installed.as_deref());
    let mut existing: HashMap<String, Option<Vec<String>>> = HashMap::new();
    let names: Vec<&str> = enums.iter().map(|ty| ty.name()).collect();
    for row in tx
        .query_typed(
            "SELECT t.typname::text, CASE WHEN t.typtype = 'e' THEN ARRAY( \
                 SELECT e.enumlabel::text FROM pg_catalog.pg_enum e \
                 WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder) END \
             FROM pg_catalog.pg_type t \
             JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace \
             WHERE n.nspname = $1 AND t.typname::text = ANY($2)",
            &[(&schema, Type::TEXT), (&names, Type::TEXT_ARRAY)],
        )
        .await
        .map_err(&ddl_error)?
    {
        existing.insert(row.get(0), row.get(1));
    }
    let before = report.statements.len();
    for ty in enums {
        plan_enum(&types, ty, existing.get(ty.name()), report)?;
    }
    for sql in &report.statements[before..] {
        tx.batch_execute(sql).await.map_err(&ddl_error)?;
    }
    tx.commit().await.map_err(&ddl_error)?;
    Ok(types)
}

/// The DDL enum type `ty` needs, given the labels the schema's type of
/// that name has (`Some(None)`: a type of that name that is no enum, a
/// `Config` error). A missing type is created; the labels it lacks are
/// added, each after the declared label before it (before the first
/// existing one when it leads). Labels it has and `ty` does not declare,
/// or declared labels in another order, are drift: reported, left alone.
fn plan_enum(
    types: &TypeNames,
    ty: &'static EnumType,
    existing: Option<&Option<Vec<String>>>,
    report: &mut MigrationReport,
) -> Result<()> {
    let name = types.sql(FieldType::Enum(ty));
    let quoted = |label: &str| {
        let mut sql = String::new();
        push_literal(&mut sql, label);
        sql
    };
    let labels = match existing {
        None => {
            let labels: Vec<String> = ty.labels().iter().map(|l| quoted(l)).collect();
            report.statements.push(format!(
                "CREATE TYPE {name} AS ENUM ({})",
                labels.join(", ")
            ));
            return Ok(());
        }
        Some(None) => {
            return Err(Error::config(format!(
                "enum type \"{}\" cannot be made: the schema has a type of that name that is \
                 no enum (a table's row type, say); rename one of them",
                ty.name()
            )))
        }
        Some(Some(labels)) => labels,
    };
    let mut present: Vec<&str> = labels.iter().map(String::as_str).collect();
    for (at, label) in ty.labels().iter().enumerate() {
        if present.contains(label) {
            continue;
        }
        let place = match at.checked_sub(1).map(|before| ty.labels()[before]) {
            Some(before) => format!(" AFTER {}", quoted(before)),
            None => match present.first() {
                Some(first) => format!(" BEFORE {}", quoted(first)),
                None => String::new(),
            },
        };
        report.statements.push(format!(
            "ALTER TYPE {name} ADD VALUE IF NOT EXISTS {}{place}",
            quoted(label)
        ));
        let position = match at {
            0 => 0,
            _ => present
                .iter()
                .position(|p| *p == ty.labels()[at - 1])
                .map_or(present.len(), |p| p + 1),
        };
        present.insert(position, label);
    }
    let extra: Vec<&str> = labels
        .iter()
        .map(String::as_str)
        .filter(|l| !ty.has(l))
        .collect();
    if !extra.is_empty() {
        report.warnings.push(format!(
            "enum type \"{}\" has labels the model no longer declares ({}); left in place \
             (PostgreSQL cannot drop a label)",
            ty.name(),
            extra.join(", ")
        ));
    }
    let order: Vec<&str> = present.iter().copied().filter(|l| ty.has(l)).collect();
    if order != ty.labels() {
        report.warnings.push(format!(
            "enum type \"{}\" orders its labels {} where the model declares {}; sorts follow \
             the database's order; left unchanged",
            ty.name(),
            order.join(", "),
            ty.labels().join(", ")
        ));
    }
    Ok(())
}

/// The DDL a model needs and the drift it shows, given what exists.
///
/// An object that holds the name of the model's table or of one of its
/// indexes but is not that table or index is a `Config` error: AutoMigrate
/// never leaves a declared table or unique index missing. A view,
/// materialized view or foreign table of the table's name is the model's
/// relation, made by hand and left alone; its declared indexes must exist.
/// A declared index that exists under another name (one an earlier pgactor
/// gave it, or one made by hand) is recognised by what it indexes and gets
/// no DDL. The DDL has no `IF NOT EXISTS`: whatever the catalog read under
/// the lock did not show makes the migration fail instead of being skipped.
fn plan_model(
    types: &TypeNames,
    schema: &str,
    model: &Model,
    existing: Option<&HashMap<String, String>>,
    relations: &Relations,
    report: &mut MigrationReport,
) -> Result<()> {
    let table = format!("{}.{}", quote_ident(schema), quote_ident(model.table()));
    let taken = |name: &str, what: String, relation: &Relation| {
        Error::config(format!(
            "model {}: {what} \"{name}\" cannot be made: schema \"{schema}\" already has {} \
             of that name; rename or drop it, or give the model another table name",
            model.name(),
            describe_relation(relation),
        ))
    };
    // A view, materialized view or foreign table under the table's name is
    // taken as the model's relation, made and kept by hand.
    let by_hand = relations
        .get(model.table())
        .filter(|r| matches!(r.kind, 'v' | 'm' | 'f'));
    match existing {
        None if by_hand.is_some() => {}
        None => {
            if let Some(relation) = relations.get(model.table()) {
                return Err(taken(model.table(), "its table".into(), relation));
            }
            let mut defs = vec![primary_key_column(model.key())];
            for field in model.fields() {
                defs.push(column_definition(field, types)?);
            }
            defs.push("\"created_at\" timestamptz NOT NULL DEFAULT now()".into());
            defs.push("\"updated_at\" timestamptz NOT NULL DEFAULT now()".into());
            if model.has_soft_delete() {
                defs.push(DELETED_AT_COLUMN.into());
            }
            report
                .statements
                .push(format!("CREATE TABLE {table} ({})", defs.join(", ")));
        }
        Some(existing) => {
            for name in model.column_names() {
                let expected = model.column_type(name).unwrap_or(FieldType::Text);
                match (existing.get(name), model.declared(name)) {
                    (None, Some(field)) => report.statements.push(format!(
                        "ALTER TABLE {table} ADD COLUMN {}",
                        column_definition(field, types)?
                    )),
                    // A model that turned soft delete on: every row is live.
                    (None, None) if name == DELETED_AT => report
                        .statements
                        .push(format!("ALTER TABLE {table} ADD COLUMN {DELETED_AT_COLUMN}")),
                    (None, None) => report.warnings.push(format!(
                        "table \"{}\" has no column \"{name}\", which pgactor keeps; add it by hand",
                        model.table()
                    )),
                    (Some(found), _) if !expected.catalog_matches(found) => report.warnings.push(format!(
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
                .filter(|c| !(model.is_searchable() && *c == SEARCH_VECTOR))
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
        let unique = if index.is_unique() { "UNIQUE " } else { "" };
        let what = format!(
            "its {}index on ({})",
            unique.to_lowercase(),
            index.columns().join(", ")
        );
        // A soft-delete model's unique indexes hold live rows only.
        let partial = model.has_soft_delete() && index.is_unique();
        let predicate = partial.then_some(LIVE_ROWS_CATALOG);
        let is_it = |shape: &IndexShape| shape.is(model.table(), &index, predicate);
        // Made before the model turned soft delete on: it still works
        // (stricter), but a deleted row keeps its key taken.
        let is_full = |shape: &IndexShape| partial && shape.is(model.table(), &index, None);
        let full_warning = |found: &str| {
            format!(
                "model {} soft-deletes, but its unique index on \"{}\" ({}) exists as \"{found}\" \
                 without WHERE {LIVE_ROWS}: a deleted row keeps its key taken; drop that index and \
                 AutoMigrate makes it partial",
                model.name(),
                model.table(),
                index.columns().join(", ")
            )
        };
        match relations.get(&name).map(|r| (r, r.index.as_ref())) {
            Some((_, Some(shape))) if is_it(shape) => continue,
            Some((_, Some(shape))) if is_full(shape) => {
                report.warnings.push(full_warning(&name));
                continue;
            }
            Some((found, _)) => return Err(taken(&name, what, found)),
            None => {}
        }
        let shapes = || {
            relations
                .iter()
                .filter_map(|(n, r)| Some((n, r.index.as_ref()?)))
        };
        if shapes().any(|(_, shape)| is_it(shape)) {
            continue;
        }
        if let Some((found, _)) = shapes().find(|(_, shape)| is_full(shape)) {
            report.warnings.push(full_warning(found));
            continue;
        }
        if let Some(relation) = by_hand {
            return Err(Error::config(format!(
                "model {}: {what} is missing, and \"{}\" is {}: \
                 AutoMigrate makes indexes on its own tables only; make the index by hand",
                model.name(),
                model.table(),
                describe_relation(relation),
            )));
        }
        let columns: Vec<String> = index.columns().iter().map(|c| quote_ident(c)).collect();
        let only_live = if partial {
            format!(" WHERE {LIVE_ROWS}")
        } else {
            String::new()
        };
        report.statements.push(format!(
            "CREATE {unique}INDEX {} ON {table} ({}){only_live}",
            quote_ident(&name),
            columns.join(", ")
        ));
    }
    Ok(())
}

/// The comment AutoMigrate puts on a [`SEARCH_VECTOR`] column it makes:
/// what the column is made of, to tell when the model's search changed.
fn search_comment(model: &Model) -> String {
    format!("pgactor search: {}", search_vector_column(model))
}

/// The comment on each table's [`SEARCH_VECTOR`] column, by table; a
/// `Config` error when a model's search language is no text search
/// configuration the server has.
async fn search_columns(
    tx: &tokio_postgres::Transaction<'_>,
    schema: &str,
    registry: &Registry,
    ddl_error: impl Fn(tokio_postgres::Error) -> Error,
) -> Result<HashMap<String, Option<String>>> {
    let searchable: Vec<&Model> = registry
        .models()
        .map(|m| &**m)
        .filter(|m| m.is_searchable())
        .collect();
    if searchable.is_empty() {
        return Ok(HashMap::new());
    }
    let languages: Vec<&str> = searchable
        .iter()
        .map(|m| m.search_language_name())
        .collect();
    let known: Vec<String> = tx
        .query_typed(
            "SELECT cfgname::text FROM pg_catalog.pg_ts_config \
             WHERE cfgname::text = ANY($1) AND pg_catalog.pg_ts_config_is_visible(oid)",
            &[(&languages, Type::TEXT_ARRAY)],
        )
        .await
        .map_err(&ddl_error)?
        .iter()
        .map(|row| row.get(0))
        .collect();
    if let Some(model) = searchable
        .iter()
        .find(|m| !known.iter().any(|k| k == m.search_language_name()))
    {
        return Err(Error::config(format!(
            "model {}: its search language \"{}\" is no text search configuration of the \
             server (SELECT cfgname FROM pg_ts_config lists them)",
            model.name(),
            model.search_language_name()
        )));
    }
    let rows = tx
        .query_typed(
            "SELECT c.relname::text, pg_catalog.col_description(c.oid, a.attnum) \
             FROM pg_catalog.pg_attribute a \
             JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND a.attname = $2 AND c.relkind IN ('r', 'p') \
               AND NOT a.attisdropped",
            &[(&schema, Type::TEXT), (&SEARCH_VECTOR, Type::TEXT)],
        )
        .await
        .map_err(ddl_error)?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

/// The search column and index a model with searchable fields needs, given
/// what exists: [`SEARCH_VECTOR`] added (to a new table right after its
/// CREATE TABLE, to an existing one rewriting it) with a comment saying
/// what it is made of, and a GIN index on it, recognised under any name.
/// A column of another type under that name is a `Config` error; one made
/// of other fields or in another language (its comment differs) is
/// reported as drift and left alone. A view, materialized view or foreign
/// table made by hand under the table's name provides the column itself:
/// nothing is made.
fn plan_search(
    schema: &str,
    model: &Model,
    existing: Option<&HashMap<String, String>>,
    made_for: Option<&Option<String>>,
    relations: &Relations,
    report: &mut MigrationReport,
) -> Result<()> {
    let by_hand = relations
        .get(model.table())
        .is_some_and(|r| matches!(r.kind, 'v' | 'm' | 'f'));
    if !model.is_searchable() || (existing.is_none() && by_hand) {
        return Ok(());
    }
    let table = format!("{}.{}", quote_ident(schema), quote_ident(model.table()));
    let column = quote_ident(SEARCH_VECTOR);
    let comment = search_comment(model);
    match existing.and_then(|columns| columns.get(SEARCH_VECTOR)) {
        None => {
            report.statements.push(format!(
                "ALTER TABLE {table} ADD COLUMN {}",
                search_vector_column(model)
            ));
            let mut sql = format!("COMMENT ON COLUMN {table}.{column} IS ");
            push_literal(&mut sql, &comment);
            report.statements.push(sql);
        }
        Some(found) if found != "tsvector" => {
            return Err(Error::config(format!(
                "model {}: table \"{}\" has a column \"{SEARCH_VECTOR}\" of type {found}, where \
                 its searchable fields need the search column (tsvector) of that name; \
                 rename or drop it",
                model.name(),
                model.table()
            )))
        }
        Some(_) if made_for.and_then(Option::as_deref) == Some(comment.as_str()) => {}
        Some(_) => report.warnings.push(format!(
            "column \"{}\".\"{SEARCH_VECTOR}\" is not made of the searchable fields and \
             language model {} declares ({}: {}); searches match what it holds; drop the \
             column and AutoMigrate makes it anew",
            model.table(),
            model.name(),
            model.search_language_name(),
            model
                .searchable_fields()
                .map(Field::name)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
    let name = model.search_index_name();
    let is_it = |shape: &IndexShape| {
        shape.gin && shape.table == model.table() && shape.columns == [SEARCH_VECTOR]
    };
    match relations.get(&name) {
        Some(Relation {
            index: Some(shape), ..
        }) if is_it(shape) => return Ok(()),
        Some(found) => {
            return Err(Error::config(format!(
                "model {}: its search index \"{name}\" cannot be made: schema \"{schema}\" \
                 already has {} of that name; rename or drop it",
                model.name(),
                describe_relation(found)
            )))
        }
        None => {}
    }
    if relations
        .values()
        .filter_map(|r| r.index.as_ref())
        .any(is_it)
    {
        return Ok(());
    }
    report.statements.push(format!(
        "CREATE INDEX {} ON {table} USING gin ({column})",
        quote_ident(&name)
    ));
    Ok(())
}

/// The foreign keys a model's fields declare and its table lacks, as
/// `ALTER TABLE … ADD CONSTRAINT … FOREIGN KEY`, run after every table
/// exists. A foreign key is recognised by what it is (its column, the
/// referenced table and `id`) under any name; one whose ON DELETE differs
/// from the model's is reported as drift and left alone. A constraint that
/// holds the declared name but is not that foreign key is a `Config` error.
fn plan_foreign_keys(
    schema: &str,
    model: &Model,
    registry: &Registry,
    relations: &Relations,
    constraints: &[Constraint],
    report: &mut MigrationReport,
) -> Result<()> {
    let table = model.table();
    for field in model.fields() {
        let Some(reference) = field.reference() else {
            continue;
        };
        let target = registry.model(reference.model())?.table();
        let name = field.foreign_key_name(table);
        let what = format!(
            "model {}: its foreign key \"{name}\" ({} → \"{target}\".id)",
            model.name(),
            field.name()
        );
        let on_table = || constraints.iter().filter(|c| c.table == table);
        let found = match on_table().find(|c| c.name == name) {
            Some(c) => match &c.foreign_key {
                Some(shape) if shape.is(field.name(), target) => Some(shape),
                _ => {
                    return Err(Error::config(format!(
                        "{what} cannot be made: table \"{table}\" already has another \
                         constraint of that name; rename or drop it"
                    )))
                }
            },
            None => on_table()
                .filter_map(|c| c.foreign_key.as_ref())
                .find(|shape| shape.is(field.name(), target)),
        };
        let declared = reference.on_delete();
        let add = format!(
            "ALTER TABLE {}.{} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {}.{} (\"id\") \
             ON DELETE {}",
            quote_ident(schema),
            quote_ident(table),
            quote_ident(&name),
            quote_ident(field.name()),
            quote_ident(schema),
            quote_ident(target),
            declared.sql()
        );
        match found {
            Some(shape) if shape.on_delete != declared.catalog_code() => {
                report.warnings.push(format!(
                    "{what} exists with another ON DELETE than the declared {}; left unchanged",
                    declared.sql()
                ));
            }
            Some(_) => {}
            None => match relations.get(table) {
                Some(by_hand) if matches!(by_hand.kind, 'v' | 'm' | 'f') => {
                    return Err(Error::config(format!(
                        "{what} is missing, and \"{table}\" is {}, which holds no foreign key: \
                         a model made by hand declares no reference",
                        describe_relation(by_hand)
                    )));
                }
                _ => report.statements.push(add),
            },
        }
    }
    Ok(())
}

fn primary_key_column(key: PrimaryKey) -> String {
    match key {
        PrimaryKey::Uuid => "\"id\" uuid PRIMARY KEY DEFAULT gen_random_uuid()".into(),
        PrimaryKey::Identity => "\"id\" bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY".into(),
    }
}

fn column_definition(field: &Field, types: &TypeNames) -> Result<String> {
    let mut def = format!("{} {}", quote_ident(field.name()), types.sql(field.ty()));
    if !field.is_nullable() {
        def.push_str(" NOT NULL");
    }
    match field.default() {
        Some(ColumnDefault::Now) => def.push_str(" DEFAULT now()"),
        Some(ColumnDefault::Value(value)) => {
            let value = field.ty().coerce(field.name(), value.clone())?;
            def.push_str(&format!(" DEFAULT {}", literal(&value, field.ty(), types)));
        }
        None => {}
    }
    Ok(def)
}

/// A typed constant as an SQL literal, for DDL defaults only (DDL takes no
/// bind parameters). Text is quoted with doubled quotes; the value was
/// checked for NUL bytes by `coerce`, and standard_conforming_strings (on
/// since PostgreSQL 9.1) keeps backslashes literal.
fn literal(value: &Value, ty: FieldType, types: &TypeNames) -> String {
    let quoted = |s: &str| format!("'{}'::{}", s.replace('\'', "''"), types.sql(ty));
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
        Value::Timestamp(_) | Value::Time(_) | Value::Inet(_) | Value::Interval(_) => {
            quoted(&value.serde_str().unwrap_or_default())
        }
        Value::Json(j) => quoted(&j.to_string()),
        Value::JsonText(text) => quoted(text),
        Value::Array(items) => {
            let elem = match ty {
                FieldType::Array(elem) => elem.field_type(),
                other => other,
            };
            let items: Vec<String> = items
                .iter()
                .map(|item| literal(item, elem, types))
                .collect();
            format!("ARRAY[{}]::{}", items.join(", "), ty.sql())
        }
    }
}

/// After a migration that ran DDL, wait up to [`SCHEMA_REPLAY_WAIT`]
/// (for all at once) for each of the `replicas` (a connection of its
/// pool) to replay it: answers, per replica, the primary's position if it
/// has not, so its reads go elsewhere until it has; `None` when it caught
/// up. All `None` when nothing changed.
pub(crate) async fn unreplayed_schema<'a>(
    primary: &tokio_postgres::Client,
    report: &MigrationReport,
    replicas: impl IntoIterator<Item = &'a ConnectionPool>,
) -> Result<Vec<Option<ConsistencyToken>>> {
    let replicas: Vec<&ConnectionPool> = replicas.into_iter().collect();
    if report.statements.is_empty() {
        return Ok(vec![None; replicas.len()]);
    }
    let token = wal_position(primary).await?;
    let waits = replicas.into_iter().map(|replica| async move {
        let Ok(conn) = replica.get().await else {
            return Some(token);
        };
        let caught_up = replayed_within(&conn, token, SCHEMA_REPLAY_WAIT).await;
        (!caught_up).then_some(token)
    });
    Ok(futures_util::future::join_all(waits).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Model {
        Model::new("Stock")
            .field(Field::new("sku", FieldType::Varchar(32)).unique())
            .field(Field::new("quantity", FieldType::I64).default_value(0_i64))
            .field(Field::new("label", FieldType::Text).default_value("it's"))
            .field(Field::new("note", FieldType::Text).nullable())
            .index(Index::on(["quantity", "sku"]))
    }

    fn relation(kind: char, index: Option<IndexShape>) -> Relation {
        Relation { kind, index }
    }

    fn index(table: &str, columns: &[&str], unique: bool) -> Relation {
        let shape = IndexShape {
            table: table.into(),
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            unique,
            plain: true,
            gin: false,
            predicate: None,
        };
        relation('i', Some(shape))
    }

    /// What AutoMigrate plans for `model` in schema `shop`, given its
    /// table's columns (`None`: no table) and the schema's relations.
    fn planned(
        model: &Model,
        existing: Option<&HashMap<String, String>>,
        relations: &Relations,
    ) -> Result<MigrationReport> {
        let mut report = MigrationReport::default();
        let types = TypeNames::new("shop");
        plan_model(&types, "shop", model, existing, relations, &mut report)?;
        Ok(report)
    }

    #[test]
    fn a_missing_table_is_created_with_its_indexes() {
        let report = planned(&model(), None, &Relations::new()).unwrap();
        assert_eq!(
            report.statements,
            vec![
                "CREATE TABLE \"shop\".\"stock\" (\"id\" uuid PRIMARY KEY DEFAULT gen_random_uuid(), \
                 \"sku\" varchar(32) NOT NULL, \"quantity\" bigint NOT NULL DEFAULT 0, \
                 \"label\" text NOT NULL DEFAULT 'it''s'::text, \"note\" text, \
                 \"created_at\" timestamptz NOT NULL DEFAULT now(), \"updated_at\" timestamptz NOT NULL DEFAULT now())",
                "CREATE UNIQUE INDEX \"stock_key(sku)\" ON \"shop\".\"stock\" (\"sku\")",
                "CREATE INDEX \"stock_idx(quantity,sku)\" ON \"shop\".\"stock\" (\"quantity\", \"sku\")",
            ]
        );
    }

    #[test]
    fn a_soft_delete_model_gets_its_column_and_partial_unique_indexes() {
        let doc = || {
            Model::new("Doc")
                .field(Field::new("slug", FieldType::Text).unique())
                .index(Index::on(["slug", "deleted_at"]))
                .soft_delete()
        };
        let report = planned(&doc(), None, &Relations::new()).unwrap();
        assert_eq!(
            report.statements,
            vec![
                "CREATE TABLE \"shop\".\"doc\" (\"id\" uuid PRIMARY KEY DEFAULT gen_random_uuid(), \
                 \"slug\" text NOT NULL, \"created_at\" timestamptz NOT NULL DEFAULT now(), \
                 \"updated_at\" timestamptz NOT NULL DEFAULT now(), \"deleted_at\" timestamptz)",
                "CREATE UNIQUE INDEX \"doc_key(slug)\" ON \"shop\".\"doc\" (\"slug\") \
                 WHERE \"deleted_at\" IS NULL",
                "CREATE INDEX \"doc_idx(slug,deleted_at)\" ON \"shop\".\"doc\" (\"slug\", \"deleted_at\")",
            ]
        );
        // The table made before soft delete: the column is added, the full
        // unique index left alone and named in a warning.
        let existing: HashMap<String, String> = [
            ("id", "uuid"),
            ("slug", "text"),
            ("created_at", "timestamp with time zone"),
            ("updated_at", "timestamp with time zone"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let mut relations: Relations = [
            ("doc".to_owned(), relation('r', None)),
            ("doc_key(slug)".to_owned(), index("doc", &["slug"], true)),
            (
                "doc_idx(slug,deleted_at)".to_owned(),
                index("doc", &["slug", "deleted_at"], false),
            ),
        ]
        .into_iter()
        .collect();
        let report = planned(&doc(), Some(&existing), &relations).unwrap();
        assert_eq!(
            report.statements,
            vec!["ALTER TABLE \"shop\".\"doc\" ADD COLUMN \"deleted_at\" timestamptz"]
        );
        assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
        assert!(
            report.warnings[0].contains("\"doc_key(slug)\" without WHERE \"deleted_at\" IS NULL"),
            "{}",
            report.warnings[0]
        );
        // Once partial, under any name, it is recognised.
        let mut partial = index("doc", &["slug"], true);
        partial.index.as_mut().unwrap().predicate = Some(LIVE_ROWS_CATALOG.into());
        relations.remove("doc_key(slug)");
        relations.insert("by_hand".into(), partial);
        let mut with_column = existing.clone();
        with_column.insert("deleted_at".into(), "timestamp with time zone".into());
        let report = planned(&doc(), Some(&with_column), &relations).unwrap();
        assert_eq!(report, MigrationReport::default());
    }

    fn warehouses() -> Registry {
        let item = Model::new("Item").field(
            Field::new("warehouse_id", FieldType::Uuid)
                .references("Warehouse", crate::OnDelete::Cascade),
        );
        Registry::new()
            .with(item)
            .unwrap()
            .with(Model::new("Warehouse"))
            .unwrap()
    }

    fn foreign_key(name: &str, column: &str, target: &str, on_delete: char) -> Constraint {
        Constraint {
            name: name.into(),
            table: "item".into(),
            foreign_key: Some(ForeignKeyShape {
                columns: vec![column.into()],
                references: Some(target.into()),
                referenced_columns: vec!["id".into()],
                on_delete,
            }),
        }
    }

    fn plan_references(
        constraints: &[Constraint],
        relations: &Relations,
    ) -> Result<MigrationReport> {
        let registry = warehouses();
        let mut report = MigrationReport::default();
        let item = registry.model("Item").unwrap();
        plan_foreign_keys("shop", item, &registry, relations, constraints, &mut report)?;
        Ok(report)
    }

    #[test]
    fn a_missing_foreign_key_is_added_once_and_recognised_under_any_name() {
        let report = plan_references(&[], &Relations::new()).unwrap();
        assert_eq!(
            report.statements,
            vec![
                "ALTER TABLE \"shop\".\"item\" ADD CONSTRAINT \"item_warehouse_id_fkey\" \
                 FOREIGN KEY (\"warehouse_id\") REFERENCES \"shop\".\"warehouse\" (\"id\") ON DELETE CASCADE"
            ]
        );
        for name in ["item_warehouse_id_fkey", "by_hand"] {
            let found = [foreign_key(name, "warehouse_id", "warehouse", 'c')];
            assert_eq!(
                plan_references(&found, &Relations::new()).unwrap(),
                MigrationReport::default()
            );
        }
        // Another ON DELETE is drift, reported and left alone.
        let restrict = [foreign_key(
            "item_warehouse_id_fkey",
            "warehouse_id",
            "warehouse",
            'r',
        )];
        let report = plan_references(&restrict, &Relations::new()).unwrap();
        assert!(report.statements.is_empty());
        assert!(report.warnings[0].contains("another ON DELETE than the declared CASCADE"));
        // A foreign key of that shape to another schema's table is not it.
        let mut elsewhere = foreign_key("by_hand", "warehouse_id", "warehouse", 'c');
        elsewhere.foreign_key.as_mut().unwrap().references = None;
        assert_eq!(
            plan_references(&[elsewhere], &Relations::new())
                .unwrap()
                .statements
                .len(),
            1
        );
    }

    #[test]
    fn a_constraint_holding_the_foreign_key_s_name_must_be_it() {
        for impostor in [
            foreign_key("item_warehouse_id_fkey", "other_id", "warehouse", 'c'),
            foreign_key("item_warehouse_id_fkey", "warehouse_id", "item", 'c'),
            Constraint {
                name: "item_warehouse_id_fkey".into(),
                table: "item".into(),
                foreign_key: None,
            },
        ] {
            let err = plan_references(&[impostor], &Relations::new()).unwrap_err();
            assert_eq!(err.kind(), crate::error::ErrorKind::Config);
            assert!(
                err.to_string().contains("already has another constraint"),
                "{err}"
            );
        }
        let view: Relations = [("item".to_owned(), relation('v', None))]
            .into_iter()
            .collect();
        let err = plan_references(&[], &view).unwrap_err();
        assert!(
            err.to_string()
                .contains("is a view, which holds no foreign key"),
            "{err}"
        );
    }

    #[test]
    fn timestamp_time_and_inet_defaults_are_typed_literals() {
        let at = chrono::NaiveDate::from_ymd_opt(2025, 7, 1)
            .and_then(|d| d.and_hms_milli_opt(12, 30, 5, 250))
            .unwrap();
        let ip: std::net::IpAddr = "2001:db8::1".parse().unwrap();
        let def = |field: Field| column_definition(&field, &TypeNames::new("shop")).unwrap();
        assert_eq!(
            def(Field::new("at", FieldType::Timestamp).default_value(at)),
            "\"at\" timestamp NOT NULL DEFAULT '2025-07-01T12:30:05.250'::timestamp"
        );
        assert_eq!(
            def(Field::new("opens", FieldType::Time).default_value(at.time())),
            "\"opens\" time NOT NULL DEFAULT '12:30:05.250'::time"
        );
        assert_eq!(
            def(Field::new("from", FieldType::Inet).default_value(ip)),
            "\"from\" inet NOT NULL DEFAULT '2001:db8::1'::inet"
        );
    }

    #[test]
    fn array_defaults_are_typed_array_literals() {
        let def = |field: Field| column_definition(&field, &TypeNames::new("shop")).unwrap();
        let tags = FieldType::Array(crate::Elem::Text);
        assert_eq!(
            def(Field::new("tags", tags).default_value(vec![Some("it's".to_owned()), None])),
            "\"tags\" text[] NOT NULL DEFAULT ARRAY['it''s'::text, NULL]::text[]"
        );
        let counts = FieldType::Array(crate::Elem::I64);
        assert_eq!(
            def(Field::new("counts", counts).default_value(Vec::<i64>::new())),
            "\"counts\" bigint[] NOT NULL DEFAULT ARRAY[]::bigint[]"
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
        let relations: Relations = [
            ("stock", relation('r', None)),
            ("stock_key(sku)", index("stock", &["sku"], true)),
            (
                "stock_quantity_sku_idx",
                index("stock", &["quantity", "sku"], false),
            ),
        ]
        .into_iter()
        .map(|(name, relation)| (name.to_owned(), relation))
        .collect();
        let report = planned(&model(), Some(&existing), &relations).unwrap();
        assert_eq!(
            report.statements,
            vec![
                "ALTER TABLE \"shop\".\"stock\" ADD COLUMN \"quantity\" bigint NOT NULL DEFAULT 0"
            ]
        );
        assert_eq!(report.warnings.len(), 2, "{:?}", report.warnings);
        assert!(report.warnings[0].contains(
            "\"sku\" is character varying(16) but model Stock declares character varying(32)"
        ));
        assert!(report.warnings[1].contains("\"legacy\" is not in model"));
        assert!(report.statements.iter().all(|s| !s.contains("DROP")));
    }

    #[test]
    fn an_object_holding_a_declared_name_must_be_the_declared_object() {
        let ok = |relations: Relations| planned(&model(), None, &relations);
        let with = |name: &str, relation: Relation| -> Relations {
            [(name.to_owned(), relation)].into_iter().collect()
        };
        let impostors = [
            ("stock", relation('S', None), "a sequence"),
            ("stock", relation('c', None), "a composite type"),
            (
                "stock",
                index("other", &["x"], false),
                "an index on table \"other\" (x)",
            ),
            (
                "stock_key(sku)",
                index("stock", &["sku"], false),
                "an index on table \"stock\" (sku)",
            ),
            (
                "stock_key(sku)",
                index("stock", &["quantity"], true),
                "a unique index on table \"stock\" (quantity)",
            ),
            (
                "stock_key(sku)",
                index("other", &["sku"], true),
                "on table \"other\"",
            ),
            ("stock_key(sku)", relation('v', None), "a view"),
        ];
        for (name, found, says) in impostors {
            let err = ok(with(name, found)).unwrap_err();
            assert_eq!(err.kind(), crate::error::ErrorKind::Config, "{name}: {err}");
            let text = err.to_string();
            assert!(
                text.contains(&format!("\"{name}\"")) && text.contains(says),
                "{text}"
            );
        }
        // A view as the model's relation is left alone, but a declared
        // index it lacks is an error, never skipped.
        let view = with("stock", relation('v', None));
        let err = ok(view).unwrap_err();
        assert!(err.to_string().contains("is a view"), "{err}");
        let bare = Model::new("Stock").field(Field::new("sku", FieldType::Text));
        let report = planned(&bare, None, &with("stock", relation('v', None)))
            .expect("a view without declared indexes");
        assert_eq!(report, MigrationReport::default());
        let mut partial = index("stock", &["sku"], true);
        partial.index.as_mut().unwrap().predicate = Some(LIVE_ROWS_CATALOG.into());
        let err = ok(with("stock_key(sku)", partial)).unwrap_err();
        assert!(
            err.to_string().contains("WHERE (deleted_at IS NULL)"),
            "a partial index is not it: {err}"
        );
    }

    #[test]
    fn a_searchable_model_gets_its_column_comment_and_gin_index_once() {
        let note = |language: &str| {
            Model::new("Note")
                .field(Field::new("title", FieldType::Text).searchable())
                .field(Field::new("body", FieldType::Text).nullable().searchable())
                .search_language(language)
        };
        let plan = |model: &Model,
                    existing: Option<&HashMap<String, String>>,
                    made_for: Option<&Option<String>>,
                    relations: &Relations| {
            let mut report = MigrationReport::default();
            plan_search("shop", model, existing, made_for, relations, &mut report).map(|()| report)
        };
        let vector =
            "setweight(to_tsvector('simple'::regconfig, coalesce(\"title\", '')), 'A') || \
                      setweight(to_tsvector('simple'::regconfig, coalesce(\"body\", '')), 'B')";
        let report = plan(&note("simple"), None, None, &Relations::new()).unwrap();
        assert_eq!(
            report.statements,
            [
                format!(
                    "ALTER TABLE \"shop\".\"note\" ADD COLUMN \"search_vector\" tsvector \
                     GENERATED ALWAYS AS ({vector}) STORED"
                ),
                format!(
                    "COMMENT ON COLUMN \"shop\".\"note\".\"search_vector\" IS 'pgactor search: \
                     \"search_vector\" tsvector GENERATED ALWAYS AS ({}) STORED'",
                    vector.replace('\'', "''")
                ),
                "CREATE INDEX \"note_gin(search_vector)\" ON \"shop\".\"note\" USING gin (\"search_vector\")"
                    .to_owned(),
            ]
        );
        // Made already, under any index name: nothing to do.
        let columns: HashMap<String, String> = [("search_vector", "tsvector")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let mut gin = index("note", &["search_vector"], false);
        let shape = gin.index.as_mut().unwrap();
        (shape.plain, shape.gin) = (false, true);
        let relations: Relations = [("by_hand".to_owned(), gin)].into_iter().collect();
        let made_for = Some(search_comment(&note("simple")));
        let report = plan(&note("simple"), Some(&columns), Some(&made_for), &relations).unwrap();
        assert_eq!(report, MigrationReport::default());
        // Another language is drift, named and left alone.
        let report = plan(
            &note("english"),
            Some(&columns),
            Some(&made_for),
            &relations,
        )
        .unwrap();
        assert!(report.statements.is_empty(), "{report:?}");
        assert!(
            report.warnings[0].contains("(english: title, body)"),
            "{report:?}"
        );
        // A column of another type under the name, or another relation
        // under the index's name, is an error.
        let text: HashMap<String, String> = [("search_vector".to_owned(), "text".to_owned())]
            .into_iter()
            .collect();
        let err = plan(&note("simple"), Some(&text), None, &Relations::new()).unwrap_err();
        assert!(err.to_string().contains("of type text"), "{err}");
        let taken: Relations = [("note_gin(search_vector)".to_owned(), relation('r', None))]
            .into_iter()
            .collect();
        let err = plan(&note("simple"), None, None, &taken).unwrap_err();
        assert!(err.to_string().contains("already has a table"), "{err}");
        // A model without searchable fields, or a view made by hand: nothing.
        let plain = Model::new("Note").field(Field::new("title", FieldType::Text));
        assert_eq!(
            plan(&plain, None, None, &Relations::new()).unwrap(),
            MigrationReport::default()
        );
        let view: Relations = [("note".to_owned(), relation('v', None))]
            .into_iter()
            .collect();
        assert_eq!(
            plan(&note("simple"), None, None, &view).unwrap(),
            MigrationReport::default()
        );
    }

    static MOOD: EnumType = EnumType::new("mood", &["sad", "meh", "ok", "happy"]);

    fn enum_plan(existing: Option<Option<&[&str]>>) -> Result<MigrationReport> {
        let existing = existing.map(|labels| {
            labels.map(|labels| labels.iter().map(|l| (*l).to_owned()).collect::<Vec<_>>())
        });
        let mut report = MigrationReport::default();
        plan_enum(
            &TypeNames::new("shop"),
            &MOOD,
            existing.as_ref(),
            &mut report,
        )?;
        Ok(report)
    }

    #[test]
    fn an_enum_type_is_created_then_given_its_new_labels_in_place() {
        let made = enum_plan(None).unwrap();
        assert_eq!(
            made.statements,
            ["CREATE TYPE \"shop\".\"mood\" AS ENUM ('sad', 'meh', 'ok', 'happy')"]
        );
        assert_eq!(
            enum_plan(Some(Some(&["sad", "meh", "ok", "happy"]))).unwrap(),
            MigrationReport::default()
        );
        let grown = enum_plan(Some(Some(&["ok"]))).unwrap();
        assert_eq!(
            grown.statements,
            [
                "ALTER TYPE \"shop\".\"mood\" ADD VALUE IF NOT EXISTS 'sad' BEFORE 'ok'",
                "ALTER TYPE \"shop\".\"mood\" ADD VALUE IF NOT EXISTS 'meh' AFTER 'sad'",
                "ALTER TYPE \"shop\".\"mood\" ADD VALUE IF NOT EXISTS 'happy' AFTER 'ok'",
            ]
        );
        assert!(grown.warnings.is_empty(), "{:?}", grown.warnings);
    }

    #[test]
    fn removed_and_reordered_labels_are_reported_never_dropped() {
        let report = enum_plan(Some(Some(&["happy", "sad", "meh", "ok", "gone"]))).unwrap();
        assert!(report.statements.is_empty());
        assert_eq!(report.warnings.len(), 2, "{:?}", report.warnings);
        assert!(
            report.warnings[0].contains("(gone)"),
            "{}",
            report.warnings[0]
        );
        assert!(
            report.warnings[1].contains("happy, sad, meh, ok"),
            "{}",
            report.warnings[1]
        );
        let err = enum_plan(Some(None)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("no enum"), "{err}");
    }

    #[test]
    fn named_and_interval_columns_are_qualified_and_match_the_catalog_in_any_schema() {
        let types = TypeNames::new("shop").with_citext_schema(Some("ext"));
        let def = |field: Field| column_definition(&field, &types).unwrap();
        assert_eq!(
            def(Field::new("mood", FieldType::Enum(&MOOD)).default_value("ok")),
            "\"mood\" \"shop\".\"mood\" NOT NULL DEFAULT 'ok'::\"shop\".\"mood\""
        );
        assert_eq!(
            def(Field::new("nick", FieldType::Citext)),
            "\"nick\" \"ext\".\"citext\" NOT NULL"
        );
        assert_eq!(
            def(Field::new("wait", FieldType::Interval)
                .default_value(crate::Interval::new(0, 1, 0))),
            "\"wait\" interval NOT NULL DEFAULT 'P1D'::interval"
        );
        assert_eq!(
            def(Field::new("path", FieldType::Custom("public.ltree")).nullable()),
            "\"path\" \"public\".\"ltree\""
        );
        assert_eq!(
            def(Field::new("at", FieldType::Time).default_now()),
            "\"at\" time NOT NULL DEFAULT now()"
        );
        assert!(FieldType::Enum(&MOOD).catalog_matches("shop.mood"));
        assert!(FieldType::Enum(&MOOD).catalog_matches("mood"));
        assert!(FieldType::Citext.catalog_matches("ext.citext"));
        assert!(FieldType::Custom("public.ltree").catalog_matches("ltree"));
        assert!(!FieldType::Citext.catalog_matches("text"));
        assert!(FieldType::Interval.catalog_matches("interval"));
    }
}
