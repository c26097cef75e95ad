//! Each model's SQL, built once at open from the registry (identifiers
//! come from there only), and the statements of each request.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use tokio_postgres::types::Type;

use crate::error::{quoted_name, Error, Result};
use crate::schema::{
    push_ident, quote_ident, Field, FromValue, Model, PrimaryKey, Registry, CREATED_AT, DELETED_AT,
    ID, UPDATED_AT,
};
use crate::schema::{
    Columns, DeletedRows, Direction, FieldType, Filter, Keyset, Query, QueryBounds, Record, Value,
    DEFAULT_LIMIT,
};

use super::statement::{push_placeholder, Param, Sql, Statement, Statements};
use super::types::TypeNames;

/// How deeply AND/OR filters may nest; deeper trees are refused, not recursed.
const MAX_FILTER_DEPTH: usize = 32;
/// How many INSERT texts a table keeps, one per set of fields inserted.
const MAX_CACHED_INSERTS: usize = 16;
/// The rows of a soft-delete model its reads and writes see.
pub(super) const LIVE: &str = "\"deleted_at\" IS NULL";
/// The rows of a soft-delete model a restore sees.
const DELETED: &str = "\"deleted_at\" IS NOT NULL";

/// The SQL fragments of one model in one schema, computed once at open.
#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) model: Arc<Model>,
    /// `"schema"."table"`
    pub(crate) qualified: String,
    /// `"id", "a", …, "updated_at"`, a column of a type that travels as
    /// text read as text (`"mood"::text AS "mood"`).
    pub(super) select_list: String,
    /// `"id", "a", …, "updated_at"`, as stored: what a statement whose
    /// rows another one reads answers (a CTE's RETURNING).
    pub(super) stored_list: String,
    /// How SQL names the types that travel as text.
    pub(super) types: TypeNames,
    /// The columns of `select_list`: what every row statement answers.
    pub(crate) columns: Arc<Columns>,
    /// `SELECT … WHERE "id" = $1` (`AND "deleted_at" IS NULL` on a
    /// soft-delete model): the statement that runs most, built once.
    by_id: Arc<str>,
    /// `SELECT … WHERE "id" = ANY($1)` (and live rows only, as `by_id`):
    /// a coalesced batch of reads by id.
    by_ids: Arc<str>,
    /// The same, `FOR UPDATE`.
    by_id_for_update: Arc<str>,
    /// The same, `FOR UPDATE NOWAIT`.
    by_id_for_update_nowait: Arc<str>,
    /// The declared fields an insert must set: not nullable, no default.
    pub(super) required: Vec<Settable>,
    /// The version field ([`crate::Field::version`]), by position.
    version: Option<usize>,
    /// INSERT texts already written, by the fields they set: a record's
    /// fields come sorted by name, so one set of fields is one text.
    inserts: [OnceLock<KeptInsert>; MAX_CACHED_INSERTS],
}

/// An INSERT text a table keeps, and the fields it sets.
#[derive(Debug)]
struct KeptInsert {
    fields: Box<[Settable]>,
    text: Arc<str>,
}

/// A field a caller may set: the id, or a declared field by position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Settable {
    Id,
    Declared(usize),
}

/// Every model's [`Table`], by model name.
#[derive(Debug)]
pub(crate) struct Catalog {
    /// Sorted by model name: every statement looks its table up, and a
    /// binary search over a few names costs less than hashing one.
    tables: Box<[Table]>,
    /// How this adapter's statements reach the server.
    pub(crate) statements: Statements,
    /// The largest page a `List` may ask for ([`crate::OpenOptions::max_page`]).
    pub(crate) max_page: u64,
    /// The bounds on a query's shape ([`crate::OpenOptions::query_bounds`]).
    pub(crate) bounds: QueryBounds,
    /// The bounds of the models that have their own, by model name
    /// ([`crate::OpenOptions::model_query_bounds`]).
    pub(crate) model_bounds: Vec<(String, QueryBounds)>,
}

impl Catalog {
    pub(crate) fn new(registry: &Registry, schema: &str, statements: Statements) -> Catalog {
        // The registry yields its models in name order.
        let tables = registry
            .models()
            .map(|model| Table::new(model, schema))
            .collect();
        Catalog {
            tables,
            statements,
            max_page: crate::schema::MAX_PAGE,
            bounds: QueryBounds::default(),
            model_bounds: Vec::new(),
        }
    }

    /// The bounds on the shape of a query of `model`.
    pub(crate) fn bounds_of(&self, model: &str) -> &QueryBounds {
        self.model_bounds
            .iter()
            .find(|(name, _)| name == model)
            .map_or(&self.bounds, |(_, bounds)| bounds)
    }

    /// Every model's table, in model name order.
    pub(crate) fn tables(&self) -> impl Iterator<Item = &Table> {
        self.tables.iter()
    }

    /// The table of a model, or InvalidInput for an unknown model.
    /// The catalog with `citext` named in the schema its extension is in
    /// (see [`super::citext_schema`]): its casts find it whatever the
    /// search path.
    pub(crate) fn with_citext_schema(mut self, schema: Option<&str>) -> Catalog {
        for table in self.tables.iter_mut() {
            table.types = table.types.clone().with_citext_schema(schema);
        }
        self
    }

    pub(crate) fn table(&self, model: &str) -> Result<&Table> {
        self.tables
            .binary_search_by(|table| table.model.name().cmp(model))
            .map(|at| &self.tables[at])
            .map_err(|_| Error::invalid_input(format!("unknown model {}", quoted_name(model))))
    }
}

impl Table {
    fn new(model: &Arc<Model>, schema: &str) -> Table {
        let qualified = format!("{}.{}", quote_ident(schema), quote_ident(model.table()));
        let stored_list = model
            .column_names()
            .map(quote_ident)
            .collect::<Vec<_>>()
            .join(", ");
        let select_list = select_of(model, &model.column_names().collect::<Vec<_>>());
        let live = if model.has_soft_delete() {
            format!(" AND {LIVE}")
        } else {
            String::new()
        };
        let by_id = format!("SELECT {select_list} FROM {qualified} WHERE \"id\" = $1{live}");
        let by_ids = format!("SELECT {select_list} FROM {qualified} WHERE \"id\" = ANY($1){live}");
        let required = model
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.is_nullable() && f.default().is_none())
            .map(|(at, _)| Settable::Declared(at))
            .collect();
        Table {
            version: model.fields().iter().position(|f| f.is_version()),
            by_id_for_update: format!("{by_id} FOR UPDATE").into(),
            by_ids: by_ids.into(),
            by_id_for_update_nowait: format!("{by_id} FOR UPDATE NOWAIT").into(),
            required,
            inserts: Default::default(),
            by_id: by_id.into(),
            qualified,
            select_list,
            stored_list,
            types: TypeNames::new(schema),
            columns: Arc::new(Columns::new(model.column_names())),
            model: model.clone(),
        }
    }

    pub(super) fn column_type(&self, field: &str) -> Result<FieldType> {
        self.model
            .column_type(field)
            .ok_or_else(|| Error::unknown_field(self.model.name(), field))
    }

    /// Bind `value`, of a field of type `ty`, and answer its placeholder:
    /// cast to the column's type when the type travels as text
    /// (`$1::"shop"."mood"`).
    pub(super) fn bind_value(&self, stmt: &mut Statement, value: Value, ty: FieldType) -> String {
        let mut placeholder = stmt.bind(Param::One(value), ty.pg_type());
        placeholder.extend(self.types.cast(ty, false));
        placeholder
    }

    /// [`Table::bind_value`], appended to `sql`.
    pub(super) fn push_value(
        &self,
        stmt: &mut Statement,
        sql: &mut String,
        value: Value,
        ty: FieldType,
    ) {
        stmt.push_bound(sql, Param::One(value), ty.pg_type());
        sql.extend(self.types.cast(ty, false));
    }

    /// The type of a field a caller may set.
    pub(super) fn settable_type(&self, field: Settable) -> FieldType {
        match field {
            Settable::Id => self.model.key().field_type(),
            Settable::Declared(at) => self.model.fields()[at].ty(),
        }
    }

    /// `id` as the bound parameter of the primary key.
    fn id_param(&self, id: Value) -> Result<(Param, Type)> {
        let ty = self.model.key().field_type();
        let id = ty.coerce(ID, id)?;
        if id.is_null() {
            return Err(Error::invalid_input("id cannot be null"));
        }
        Ok((Param::One(id), ty.pg_type()))
    }

    /// `SELECT … WHERE id = $1`
    pub(crate) fn read(&self, id: Value) -> Result<Statement> {
        self.select_by_id(id, &self.by_id)
    }

    /// `SELECT … WHERE id = ANY($1)`: the rows of `ids` (each already of
    /// the key's type, as [`Table::read`]'s statement binds it), in one
    /// statement; an id without a row answers none.
    pub(crate) fn read_many(&self, ids: Vec<Value>) -> Result<Statement> {
        let ty = self.model.key().field_type();
        let list_type = ty.pg_array_type().ok_or_else(|| {
            Error::invalid_input(format!(
                "the key of {} has no array type",
                self.model.name()
            ))
        })?;
        Ok(Statement {
            sql: Sql::Kept(self.by_ids.clone()),
            params: vec![(Param::List(ids), list_type)],
        })
    }

    /// The type the key is bound as.
    pub(crate) fn key_type(&self) -> Type {
        self.model.key().field_type().pg_type()
    }

    /// `SELECT … WHERE id = $1 FOR UPDATE`: the row lock is held until the
    /// enclosing transaction ends.
    pub(crate) fn lock_for_update(&self, id: Value) -> Result<Statement> {
        self.select_by_id(id, &self.by_id_for_update)
    }

    /// `SELECT … WHERE id = $1 FOR UPDATE NOWAIT`: the same lock, refused
    /// at once (SQLSTATE 55P03) when another transaction holds the row.
    pub(crate) fn lock_for_update_nowait(&self, id: Value) -> Result<Statement> {
        self.select_by_id(id, &self.by_id_for_update_nowait)
    }

    /// `SELECT <id and fields> … WHERE id = $1` (live rows only on a
    /// soft-delete model), and the columns its row holds.
    pub(crate) fn read_fields(
        &self,
        id: Value,
        fields: &[String],
    ) -> Result<(Statement, Arc<Columns>)> {
        let names = self.subset(fields.iter().map(String::as_str))?;
        let mut sql = format!(
            "SELECT {} FROM {} WHERE \"id\" = $1",
            select_of(&self.model, &names),
            self.qualified
        );
        self.push_live(&mut sql);
        let stmt = Statement {
            sql: Sql::Written(sql),
            params: vec![self.id_param(id)?],
        };
        Ok((stmt, Arc::new(Columns::new(names))))
    }

    /// `id`, then each of `fields` once, each checked to be a column of
    /// the model (InvalidInput naming the first that is not).
    fn subset<'a>(&self, fields: impl IntoIterator<Item = &'a str>) -> Result<Vec<&'a str>> {
        let mut names = vec![ID];
        for field in fields {
            self.column_type(field)?;
            if !names.contains(&field) {
                names.push(field);
            }
        }
        Ok(names)
    }

    /// A `List` page's select list and the columns its rows hold: every
    /// column, or for a [`Query::select`] `id`, its fields and `keep` (the
    /// rows hold these), then the sort fields not among them (read for the
    /// cursor only). With a subset, the cursor's keys are found in it.
    fn page_columns(
        &self,
        query: &Query,
        keep: &[&str],
        keyset: Option<&mut Keyset>,
    ) -> Result<(Cow<'_, str>, Arc<Columns>)> {
        let Some(fields) = query.selected() else {
            return Ok((Cow::Borrowed(&self.select_list), self.columns.clone()));
        };
        let mut names = self.subset(
            fields
                .iter()
                .map(String::as_str)
                .chain(keep.iter().copied()),
        )?;
        let held = names.len();
        for sort in &query.sort {
            if !names.contains(&sort.field.as_str()) {
                names.push(&sort.field);
            }
        }
        if let Some(keyset) = keyset {
            for key in &mut keyset.keys {
                key.column = names.iter().position(|n| *n == key.field).unwrap_or(0);
            }
        }
        let columns = Columns::new(names[..held].iter().copied());
        Ok((
            Cow::Owned(select_of(&self.model, &names)),
            Arc::new(columns),
        ))
    }

    /// `sql`, whose one parameter `$1` is the id.
    fn select_by_id(&self, id: Value, sql: &Arc<str>) -> Result<Statement> {
        Ok(Statement {
            sql: Sql::Kept(sql.clone()),
            params: vec![self.id_param(id)?],
        })
    }

    /// `INSERT … RETURNING …`; generates a UUIDv7 id when the model's key is
    /// a uuid and the record has none.
    pub(crate) fn insert(&self, record: Record) -> Result<Statement> {
        let mut fields = Vec::with_capacity(record.len() + 1);
        let mut params = Vec::with_capacity(record.len() + 1);
        for (field, value) in record.into_fields() {
            // A null id is no id: the key is generated.
            if &*field == ID && value.is_null() {
                continue;
            }
            let (settable, ty) = self.settable(&field, &value)?;
            fields.push(settable);
            params.push((Param::One(ty.coerce(&field, value)?), ty.pg_type()));
        }
        if self.model.key() == PrimaryKey::Uuid && !fields.contains(&Settable::Id) {
            // In name order, as if the record had held it.
            let at = fields.partition_point(|&f| self.settable_name(f) < ID);
            fields.insert(at, Settable::Id);
            let id = Value::Uuid(uuid::Uuid::now_v7());
            params.insert(at, (Param::One(id), FieldType::Uuid.pg_type()));
        }
        if let Some(Settable::Declared(at)) = self.required.iter().find(|r| !fields.contains(r)) {
            return Err(Error::invalid_input(format!(
                "field \"{}\" of {} is required",
                self.model.fields()[*at].name(),
                self.model.name()
            )));
        }
        Statement {
            sql: Sql::Kept(self.insert_text(&fields)),
            params,
        }
        .checked()
    }

    /// The INSERT text that sets `fields`, written once per list of fields
    /// (up to [`MAX_CACHED_INSERTS`] lists; more are written every time).
    /// Finding a kept text takes no lock: each slot is set once.
    fn insert_text(&self, fields: &[Settable]) -> Arc<str> {
        let mut text: Option<Arc<str>> = None;
        for slot in &self.inserts {
            let kept = match slot.get() {
                Some(kept) => kept,
                None => {
                    let text = text.get_or_insert_with(|| Arc::from(self.render_insert(fields)));
                    // Another caller may fill the slot first, with these
                    // fields or others: then it is looked at like the rest.
                    slot.get_or_init(|| KeptInsert {
                        fields: fields.into(),
                        text: text.clone(),
                    })
                }
            };
            if *kept.fields == *fields {
                return kept.text.clone();
            }
        }
        text.unwrap_or_else(|| self.render_insert(fields).into())
    }

    fn render_insert(&self, fields: &[Settable]) -> String {
        let mut sql = String::with_capacity(64 + self.qualified.len() + 2 * self.select_list.len());
        sql.push_str("INSERT INTO ");
        sql.push_str(&self.qualified);
        if fields.is_empty() {
            sql.push_str(" DEFAULT VALUES");
        } else {
            let mut placeholders = String::with_capacity(4 * fields.len());
            sql.push_str(" (");
            for (n, &settable) in fields.iter().enumerate() {
                if n > 0 {
                    sql.push_str(", ");
                    placeholders.push_str(", ");
                }
                push_ident(&mut sql, self.settable_name(settable));
                push_placeholder(&mut placeholders, n + 1);
                placeholders.extend(self.types.cast(self.settable_type(settable), false));
            }
            sql.push_str(") VALUES (");
            sql.push_str(&placeholders);
            sql.push(')');
        }
        sql.push_str(" RETURNING ");
        sql.push_str(&self.select_list);
        sql
    }

    pub(super) fn settable_name(&self, field: Settable) -> &str {
        match field {
            Settable::Id => ID,
            Settable::Declared(at) => self.model.fields()[at].name(),
        }
    }

    /// `UPDATE … SET <only the patch's fields>, updated_at = now() WHERE id = $n RETURNING …`.
    ///
    /// On a versioned model a patch that carries the version is
    /// conditional, `… AND "version" = $expected`: answered with the
    /// expected version, a row that changes nothing is stale (or missing).
    pub(crate) fn update(&self, id: Value, patch: Record) -> Result<(Statement, Option<i64>)> {
        let (mut stmt, mut sql, expected) = self.update_set(patch)?;
        self.push_by_id(&mut stmt, &mut sql, id)?;
        self.push_live(&mut sql);
        if let (Some(expected), Some(field)) = (&expected, self.version_field()) {
            sql.push_str(" AND ");
            push_ident(&mut sql, field.name());
            sql.push_str(" = ");
            let ty = field.ty();
            stmt.push_bound(&mut sql, Param::One(expected.clone()), ty.pg_type());
        }
        self.push_returning(&mut sql);
        stmt.sql = Sql::Written(sql);
        Ok((stmt.checked()?, expected.as_ref().and_then(i64::from_value)))
    }

    /// `UPDATE … SET <only the patch's fields>, updated_at = now() WHERE <filter>`:
    /// the filter validated and bound as a `List`'s. A patch cannot carry
    /// the version: filter on it instead.
    pub(crate) fn update_where(&self, filter: &Filter, patch: Record) -> Result<Statement> {
        let (mut stmt, mut sql, expected) = self.update_set(patch)?;
        if let (Some(_), Some(field)) = (expected, self.version_field()) {
            return Err(Error::invalid_input(format!(
                "\"{}\" is the version of {}: an update by filter adds 1 to it; \
                 to update rows at a version, filter on it",
                field.name(),
                self.model.name()
            )));
        }
        sql.push_str(&self.condition(filter, &mut stmt, 0)?);
        self.push_live(&mut sql);
        stmt.sql = Sql::Written(sql);
        stmt.checked()
    }

    /// `UPDATE … SET "field" = "field" + $1, updated_at = now() WHERE id = $2
    /// [AND <guard>] RETURNING …`; `field` must be a numeric field of the
    /// model and `by` of its type.
    pub(crate) fn increment(
        &self,
        id: Value,
        field: &str,
        by: Value,
        guard: Option<&Filter>,
    ) -> Result<Statement> {
        let ty = self.column_type(field)?;
        if field == ID {
            return Err(Error::invalid_input("the id of a row cannot be changed"));
        }
        if self.version_field().is_some_and(|v| v.name() == field) {
            return Err(Error::invalid_input(format!(
                "\"{field}\" is the version of {}: every update adds 1 to it",
                self.model.name()
            )));
        }
        if !ty.is_numeric() {
            return Err(Error::invalid_input(format!(
                "an increment needs a numeric field and \"{field}\" of {} is {}",
                self.model.name(),
                ty.sql()
            )));
        }
        if by.is_null() {
            return Err(Error::invalid_input(format!(
                "an increment of \"{field}\" cannot add NULL"
            )));
        }
        let by = ty.coerce(field, by)?;
        let mut stmt = Statement::new();
        let mut sql = self.update_head();
        push_ident(&mut sql, field);
        sql.push_str(" = ");
        push_ident(&mut sql, field);
        sql.push_str(" + ");
        stmt.push_bound(&mut sql, Param::One(by), ty.pg_type());
        sql.push_str(", ");
        self.push_kept_sets(&mut sql);
        self.push_by_id(&mut stmt, &mut sql, id)?;
        self.push_live(&mut sql);
        if let Some(guard) = guard {
            sql.push_str(" AND ");
            sql.push_str(&self.condition(guard, &mut stmt, 0)?);
        }
        self.push_returning(&mut sql);
        stmt.sql = Sql::Written(sql);
        stmt.checked()
    }

    /// `UPDATE … SET <the patch's fields>, "updated_at" = now() WHERE `, its
    /// values bound, and the version the patch carries (checked against
    /// the field), which is no assignment.
    fn update_set(&self, patch: Record) -> Result<(Statement, String, Option<Value>)> {
        let mut stmt = Statement::new();
        let mut sql = self.update_head();
        let mut expected = None;
        for (field, value) in patch.into_fields() {
            if &*field == ID {
                return Err(Error::invalid_input("the id of a row cannot be changed"));
            }
            if let Some(version) = self.version_field().filter(|v| v.name() == &*field) {
                if value.is_null() {
                    return Err(Error::invalid_input(format!(
                        "the expected version \"{field}\" of {} cannot be null",
                        self.model.name()
                    )));
                }
                expected = Some(version.ty().coerce(&field, value)?);
                continue;
            }
            let (_, ty) = self.settable(&field, &value)?;
            push_ident(&mut sql, &field);
            sql.push_str(" = ");
            let value = ty.coerce(&field, value)?;
            self.push_value(&mut stmt, &mut sql, value, ty);
            sql.push_str(", ");
        }
        self.push_kept_sets(&mut sql);
        Ok((stmt, sql, expected))
    }

    /// `UPDATE "schema"."table" SET `, with room for the rest.
    fn update_head(&self) -> String {
        let mut sql = String::with_capacity(64 + self.qualified.len() + 2 * self.select_list.len());
        sql.push_str("UPDATE ");
        sql.push_str(&self.qualified);
        sql.push_str(" SET ");
        sql
    }

    /// The last assignments of every UPDATE, the adapter's: the version
    /// plus 1 on a versioned model, `updated_at`; and its WHERE.
    fn push_kept_sets(&self, sql: &mut String) {
        self.push_kept_assignments(sql, false);
        sql.push_str(" WHERE ");
    }

    /// The adapter's assignments of every update of a row (an upsert's
    /// too): the version plus 1 on a versioned model, then `updated_at`.
    /// `qualified`: the stored version is named with its table, as an
    /// upsert's `DO UPDATE` needs (`EXCLUDED` has a version too).
    pub(super) fn push_kept_assignments(&self, sql: &mut String, qualified: bool) {
        if let Some(version) = self.version_field() {
            push_ident(sql, version.name());
            sql.push_str(" = ");
            if qualified {
                sql.push_str(&self.qualified);
                sql.push('.');
            }
            push_ident(sql, version.name());
            sql.push_str(" + 1, ");
        }
        sql.push_str("\"updated_at\" = now()");
    }

    /// The model's version field, if it has one.
    fn version_field(&self) -> Option<&Field> {
        self.version.map(|at| &self.model.fields()[at])
    }

    /// `"id" = $n`, the id bound.
    fn push_by_id(&self, stmt: &mut Statement, sql: &mut String, id: Value) -> Result<()> {
        sql.push_str("\"id\" = ");
        let (id, ty) = self.id_param(id)?;
        stmt.push_bound(sql, id, ty);
        Ok(())
    }

    /// ` RETURNING <every column>`
    fn push_returning(&self, sql: &mut String) {
        sql.push_str(" RETURNING ");
        sql.push_str(&self.select_list);
    }

    /// ` AND "deleted_at" IS NULL` on a soft-delete model: its reads and
    /// writes see live rows only.
    pub(super) fn push_live(&self, sql: &mut String) {
        if self.model.has_soft_delete() {
            sql.push_str(" AND ");
            sql.push_str(LIVE);
        }
    }

    /// InvalidInput unless the model soft-deletes: `what` needs it.
    fn needs_soft_delete(&self, what: &str) -> Result<()> {
        if self.model.has_soft_delete() {
            return Ok(());
        }
        Err(Error::invalid_input(format!(
            "{what} needs a soft-delete model and {} is none \
             (Model::soft_delete, #[pgactor(soft_delete)])",
            self.model.name()
        )))
    }

    /// The delete of a row: on a soft-delete model `UPDATE … SET
    /// "deleted_at" = now(), "updated_at" = now() WHERE "id" = $1 AND
    /// "deleted_at" IS NULL RETURNING …`, else [`Table::hard_delete`].
    pub(crate) fn delete(&self, id: Value) -> Result<Statement> {
        if !self.model.has_soft_delete() {
            return self.hard_delete(id);
        }
        self.set_deleted_at(id, "now()", LIVE)
    }

    /// `UPDATE … SET "deleted_at" = NULL, "updated_at" = now() WHERE "id" =
    /// $1 AND "deleted_at" IS NOT NULL RETURNING …`; refused on a model
    /// without soft delete.
    pub(crate) fn restore(&self, id: Value) -> Result<Statement> {
        self.needs_soft_delete("a restore")?;
        self.set_deleted_at(id, "NULL", DELETED)
    }

    /// `UPDATE … SET "deleted_at" = <to>, <the adapter's sets> WHERE "id" =
    /// $1 AND <from> RETURNING …`.
    fn set_deleted_at(&self, id: Value, to: &str, from: &str) -> Result<Statement> {
        let mut stmt = Statement::new();
        let mut sql = self.update_head();
        push_ident(&mut sql, DELETED_AT);
        sql.push_str(" = ");
        sql.push_str(to);
        sql.push_str(", ");
        self.push_kept_sets(&mut sql);
        self.push_by_id(&mut stmt, &mut sql, id)?;
        sql.push_str(" AND ");
        sql.push_str(from);
        self.push_returning(&mut sql);
        stmt.sql = Sql::Written(sql);
        stmt.checked()
    }

    /// `DELETE … WHERE id = $1 RETURNING …`: the row removed, deleted or not.
    pub(crate) fn hard_delete(&self, id: Value) -> Result<Statement> {
        Ok(Statement {
            sql: Sql::Written(format!(
                "DELETE FROM {} WHERE \"id\" = $1 RETURNING {}",
                self.qualified, self.select_list
            )),
            params: vec![self.id_param(id)?],
        })
    }

    /// The delete of every row matching a filter, validated and bound as a
    /// `List`'s: on a soft-delete model `UPDATE … SET "deleted_at" = now(),
    /// "updated_at" = now() WHERE <filter> AND "deleted_at" IS NULL`, else
    /// [`Table::hard_delete_where`].
    pub(crate) fn delete_where(&self, filter: &Filter) -> Result<Statement> {
        if !self.model.has_soft_delete() {
            return self.hard_delete_where(filter);
        }
        let mut stmt = Statement::new();
        let mut sql = self.update_head();
        push_ident(&mut sql, DELETED_AT);
        sql.push_str(" = now(), ");
        self.push_kept_sets(&mut sql);
        sql.push_str(&self.condition(filter, &mut stmt, 0)?);
        self.push_live(&mut sql);
        stmt.sql = Sql::Written(sql);
        stmt.checked()
    }

    /// `DELETE … WHERE <filter>`: every row matching it removed, deleted or
    /// not; the filter validated and bound as a `List`'s.
    pub(crate) fn hard_delete_where(&self, filter: &Filter) -> Result<Statement> {
        let mut stmt = Statement::new();
        let condition = self.condition(filter, &mut stmt, 0)?;
        stmt.sql = Sql::Written(format!("DELETE FROM {} WHERE {condition}", self.qualified));
        stmt.checked()
    }

    /// The condition a query's [`DeletedRows`] adds: on a soft-delete model
    /// live rows only unless it says otherwise; refused on another model
    /// when it asks for deleted rows.
    fn scope(&self, deleted: DeletedRows) -> Result<Option<&'static str>> {
        if deleted != DeletedRows::Hidden {
            self.needs_soft_delete("Query::with_deleted or Query::only_deleted")?;
        }
        Ok(match deleted {
            DeletedRows::Hidden if self.model.has_soft_delete() => Some(LIVE),
            DeletedRows::Hidden | DeletedRows::Included => None,
            DeletedRows::Only => Some(DELETED),
        })
    }

    /// The statements of a `List`: its page, its count unless the query
    /// says `without_total`, and the sort key its cursors hold.
    pub(crate) fn list(&self, query: &Query) -> Result<Listing> {
        self.list_keeping(query, &[])
    }

    /// [`Table::list`], whose rows also hold the fields `keep` when the
    /// query selects a subset (the foreign keys its includes follow).
    pub(crate) fn list_keeping(&self, query: &Query, keep: &[&str]) -> Result<Listing> {
        let mut page = Statement::new();
        // The conditions ANDed: the soft-delete scope, the filter, the
        // search, the cursor.
        let mut conditions = Vec::with_capacity(4);
        conditions.extend(self.scope(query.deleted)?.map(str::to_owned));
        if let Some(filter) = &query.filter {
            conditions.push(self.condition(filter, &mut page, 0)?);
        }
        // A search matches; without a sort, its rank orders the rows.
        let mut rank = None;
        if let Some(text) = &query.search {
            let search = self.search(text, &mut page)?;
            conditions.push(search.condition);
            rank = query.sort.is_empty().then_some(search.rank);
        }
        let count = (!query.without_total).then(|| {
            let mut sql = String::with_capacity(64 + self.qualified.len());
            sql.push_str("SELECT count(*) FROM ");
            sql.push_str(&self.qualified);
            push_where(&mut sql, &conditions);
            Statement {
                sql: Sql::Written(sql),
                params: page
                    .params
                    .iter()
                    .map(|(p, t)| (p.duplicate(), t.clone()))
                    .collect(),
            }
        });
        // The ORDER BY list: the sort, the rank, the id that makes it total.
        let mut order = String::new();
        for sort in &query.sort {
            let dir = match sort.direction {
                Direction::Asc => " ASC",
                Direction::Desc => " DESC",
            };
            push_listed(&mut order, &self.sort_column(&sort.field)?);
            order.push_str(dir);
        }
        let ranked = rank.is_some();
        if let Some(rank) = rank {
            push_listed(&mut order, &rank);
            order.push_str(" DESC");
        }
        if !query.sort.iter().any(|s| s.field == ID) {
            push_listed(&mut order, "\"id\" ASC");
        }
        // A sort no cursor can follow makes none, and is refused a cursor;
        // so is a search's rank.
        let mut keyset = match (Keyset::new(&self.model, &query.sort), &query.after) {
            (_, Some(_)) if ranked => {
                return Err(Error::invalid_input(
                    "a search ordered by rank pages by offset, not after a cursor: \
                     sort it by fields to page by cursor",
                ))
            }
            (_, None) if ranked => None,
            (Err(refused), Some(_)) => return Err(refused),
            (keyset, _) => keyset.ok(),
        };
        let (select_list, columns) = self.page_columns(query, keep, keyset.as_mut())?;
        if let (Some(cursor), Some(keyset)) = (&query.after, &keyset) {
            if query.offset > 0 {
                return Err(Error::invalid_input(
                    "a page starts after a cursor or at an offset, not both: offset must be 0",
                ));
            }
            conditions.push(after_key(
                keyset,
                keyset.values(cursor)?,
                &mut page,
                &self.types,
            ));
        }
        let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
        let as_i64 = |n: u64, what: &str| {
            i64::try_from(n).map_err(|_| Error::invalid_input(format!("{what} {n} is too large")))
        };
        let (size, skip) = (as_i64(limit, "limit")?, as_i64(query.offset, "offset")?);
        let conditions_len: usize = conditions.iter().map(|c| c.len() + 5).sum();
        let mut sql = String::with_capacity(
            64 + select_list.len() + self.qualified.len() + order.len() + conditions_len,
        );
        sql.push_str("SELECT ");
        sql.push_str(&select_list);
        sql.push_str(" FROM ");
        sql.push_str(&self.qualified);
        push_where(&mut sql, &conditions);
        sql.push_str(" ORDER BY ");
        sql.push_str(&order);
        sql.push_str(" LIMIT ");
        page.push_bound(&mut sql, Param::One(Value::I64(size)), Type::INT8);
        sql.push_str(" OFFSET ");
        page.push_bound(&mut sql, Param::One(Value::I64(skip)), Type::INT8);
        page.sql = Sql::Written(sql);
        Ok(Listing {
            page: page.checked()?,
            count: count.map(Statement::checked).transpose()?,
            limit,
            keyset,
            columns,
        })
    }

    /// `SELECT … WHERE <filter> ORDER BY … LIMIT $n OFFSET $m FOR UPDATE
    /// SKIP LOCKED`: the next rows a `List` would answer, less those other
    /// transactions hold, locked until this one ends (a work queue's take).
    pub(crate) fn lock_next(&self, query: &Query) -> Result<(Statement, Arc<Columns>)> {
        let Listing {
            mut page, columns, ..
        } = self.list(query)?;
        let text = format!("{} FOR UPDATE SKIP LOCKED", &*page.sql);
        page.sql = Sql::Written(text);
        Ok((page, columns))
    }

    pub(super) fn condition(
        &self,
        filter: &Filter,
        stmt: &mut Statement,
        depth: usize,
    ) -> Result<String> {
        if depth > MAX_FILTER_DEPTH {
            return Err(Error::invalid_input(format!(
                "filters nest deeper than {MAX_FILTER_DEPTH} levels"
            )));
        }
        Ok(match filter {
            Filter::Compare { field, op, value } => {
                let ty = self.column_type(field)?;
                if value.is_null() {
                    return Err(Error::invalid_input(format!(
                        "comparing \"{field}\" with NULL matches nothing; use Filter::is_null"
                    )));
                }
                let ph = self.bind_value(stmt, ty.coerce(field, value.clone())?, ty);
                format!(
                    "{} {} {ph}",
                    quote_ident(field),
                    self.types.op(ty, op.sql())
                )
            }
            Filter::In { field, values } => {
                let ty = self.column_type(field)?;
                if values.is_empty() {
                    return Ok("FALSE".into());
                }
                let ph = self.bind_list(stmt, field, ty, values, "an IN list")?;
                format!(
                    "{} {} ANY({ph})",
                    quote_ident(field),
                    self.types.op(ty, "=")
                )
            }
            Filter::NotIn { field, values } => {
                let ty = self.column_type(field)?;
                if values.is_empty() {
                    // Differs from each of no values: every row, NULL or not.
                    return Ok("TRUE".into());
                }
                let ph = self.bind_list(stmt, field, ty, values, "a NOT IN list")?;
                format!(
                    "{} {} ALL({ph})",
                    quote_ident(field),
                    self.types.op(ty, "<>")
                )
            }
            Filter::Between { field, low, high } => {
                let ty = self.column_type(field)?;
                if low.is_null() || high.is_null() {
                    return Err(Error::invalid_input(format!(
                        "a BETWEEN on \"{field}\" cannot have a NULL bound"
                    )));
                }
                let low = ty.coerce(field, low.clone())?;
                let high = ty.coerce(field, high.clone())?;
                let low = self.bind_value(stmt, low, ty);
                let high = self.bind_value(stmt, high, ty);
                let column = quote_ident(field);
                if self.types.qualifies(ty) {
                    // BETWEEN takes no OPERATOR(…): its two comparisons.
                    let (ge, le) = (self.types.op(ty, ">="), self.types.op(ty, "<="));
                    format!("({column} {ge} {low} AND {column} {le} {high})")
                } else {
                    format!("{column} BETWEEN {low} AND {high}")
                }
            }
            Filter::Text { field, text, mode } => {
                self.text_field(field, "a text match")?;
                let pattern = Value::Text(mode.pattern(text));
                let pattern = FieldType::Text.coerce(field, pattern)?;
                let ph = stmt.bind(Param::One(pattern), Type::TEXT);
                // E'' spells the backslash the same whatever the session's
                // standard_conforming_strings says.
                format!("{} ILIKE {ph} ESCAPE E'\\\\'", quote_ident(field))
            }
            Filter::CompareFields { field, op, other } => {
                let left = self.column_type(field)?;
                let right = self.column_type(other)?;
                if !comparable(left, right) {
                    return Err(Error::invalid_input(format!(
                        "\"{field}\" ({}) and \"{other}\" ({}) do not hold the same kind of value",
                        left.sql(),
                        right.sql()
                    )));
                }
                let op = self.types.op(left, op.sql());
                format!("{} {op} {}", quote_ident(field), quote_ident(other))
            }
            Filter::Like {
                field,
                pattern,
                case_insensitive,
            } => {
                self.text_field(field, "LIKE")?;
                let pattern = FieldType::Text.coerce(field, Value::Text(pattern.clone()))?;
                let ph = stmt.bind(Param::One(pattern), Type::TEXT);
                let ty = self.column_type(field)?;
                let op = match (*case_insensitive, self.types.qualifies(ty)) {
                    (true, false) => "ILIKE".into(),
                    (false, false) => "LIKE".into(),
                    // citext's own LIKE, which ignores case.
                    (true, true) => self.types.op(ty, "~~*"),
                    (false, true) => self.types.op(ty, "~~"),
                };
                format!("{} {op} {ph}", quote_ident(field))
            }
            Filter::Has { field, value } => {
                let FieldType::Array(elem) = self.column_type(field)? else {
                    return Err(Error::invalid_input(format!(
                        "\"has\" needs an array field and \"{field}\" is not one"
                    )));
                };
                if value.is_null() {
                    return Err(Error::invalid_input(format!(
                        "\"has\" on \"{field}\" cannot look for NULL"
                    )));
                }
                let ty = elem.field_type();
                let ph = stmt.bind(Param::One(ty.coerce(field, value.clone())?), ty.pg_type());
                format!("{ph} = ANY({})", quote_ident(field))
            }
            Filter::Search { text } => self.search(text, stmt)?.condition,
            Filter::IsNull { field, negated } => {
                self.column_type(field)?;
                let not = if *negated { " NOT" } else { "" };
                format!("{} IS{not} NULL", quote_ident(field))
            }
            Filter::And(parts) | Filter::Or(parts) => {
                let (joiner, empty) = match filter {
                    Filter::And(_) => (" AND ", "TRUE"),
                    _ => (" OR ", "FALSE"),
                };
                if parts.is_empty() {
                    return Ok(empty.into());
                }
                let mut rendered = Vec::with_capacity(parts.len());
                for part in parts {
                    rendered.push(self.condition(part, stmt, depth + 1)?);
                }
                format!("({})", rendered.join(joiner))
            }
        })
    }

    /// The values of an IN / NOT IN list, each checked against the field's
    /// type, bound as one array; NULL is refused (it would match nothing,
    /// or make NOT IN match nothing).
    fn bind_list(
        &self,
        stmt: &mut Statement,
        field: &str,
        ty: FieldType,
        values: &[Value],
        what: &str,
    ) -> Result<String> {
        let list_type = ty.pg_array_type().ok_or_else(|| {
            Error::invalid_input(format!(
                "{what} on \"{field}\" ({}) is not supported: compare whole arrays with eq",
                ty.sql()
            ))
        })?;
        let mut list = Vec::with_capacity(values.len());
        for value in values {
            if value.is_null() {
                return Err(Error::invalid_input(format!(
                    "{what} on \"{field}\" cannot hold NULL; use Filter::is_null"
                )));
            }
            list.push(ty.coerce(field, value.clone())?);
        }
        let mut placeholder = stmt.bind(Param::List(list), list_type);
        placeholder.extend(self.types.cast(ty, true));
        Ok(placeholder)
    }

    /// A sort's column: its name, or for a type read as text (whose name
    /// in ORDER BY would be the text the select list answers) the table's
    /// column, so it sorts in the type's order (an enum's labels').
    pub(super) fn sort_column(&self, field: &str) -> Result<String> {
        let ty = self.column_type(field)?;
        Ok(if ty.travels_as_text() {
            format!("{}.{}", self.qualified, quote_ident(field))
        } else {
            quote_ident(field)
        })
    }

    /// Checks that `field` is a text field of the model (`citext` too),
    /// for `what`.
    fn text_field(&self, field: &str, what: &str) -> Result<()> {
        let ty = self.column_type(field)?;
        if !ty.is_text() && ty != FieldType::Citext {
            return Err(Error::invalid_input(format!(
                "{what} needs a text field and \"{field}\" is {}",
                ty.sql()
            )));
        }
        Ok(())
    }

    /// A field a caller may set, and its type; the adapter keeps the
    /// timestamps, and only nullable fields take a null.
    fn settable(&self, field: &str, value: &Value) -> Result<(Settable, FieldType)> {
        let (settable, ty, nullable) = self.settable_field(field)?;
        if value.is_null() && !nullable {
            return Err(Error::invalid_input(format!(
                "field \"{field}\" of {} cannot be null",
                self.model.name()
            )));
        }
        Ok((settable, ty))
    }

    /// A field a caller may set, its type, and whether it takes a null.
    pub(super) fn settable_field(&self, field: &str) -> Result<(Settable, FieldType, bool)> {
        Ok(match field {
            CREATED_AT | UPDATED_AT => {
                return Err(Error::invalid_input(format!(
                    "\"{field}\" is kept by the adapter"
                )))
            }
            DELETED_AT if self.model.has_soft_delete() => {
                return Err(Error::invalid_input(format!(
                    "\"{field}\" is kept by the adapter: a delete sets it, a restore clears it"
                )))
            }
            ID => (Settable::Id, self.model.key().field_type(), false),
            _ => {
                let at = self
                    .model
                    .fields()
                    .iter()
                    .position(|f| f.name() == field)
                    .ok_or_else(|| Error::unknown_field(self.model.name(), field))?;
                let declared = &self.model.fields()[at];
                if declared.is_version() {
                    return Err(Error::invalid_input(format!(
                        "\"{field}\" is the version of {}, kept by the adapter: a create \
                         starts it at its default; an update carries it as the version it expects",
                        self.model.name()
                    )));
                }
                (
                    Settable::Declared(at),
                    declared.ty(),
                    declared.is_nullable(),
                )
            }
        })
    }
}

/// The statements of a `List` ([`Table::list`]).
#[derive(Debug)]
pub(crate) struct Listing {
    pub(crate) page: Statement,
    /// `SELECT count(*)` of the filter; `None` for a query `without_total`.
    pub(crate) count: Option<Statement>,
    /// The page size.
    pub(crate) limit: u64,
    /// The sort key a cursor after the page's last row holds; `None` when
    /// no cursor can follow the sort.
    pub(crate) keyset: Option<Keyset>,
    /// The columns the page's rows hold: every column, or the query's subset.
    pub(crate) columns: Arc<Columns>,
}

/// Columns `names` of `model` quoted and joined: a select list (see
/// [`push_read_columns`]).
pub(super) fn select_of(model: &Model, names: &[&str]) -> String {
    let mut sql = String::with_capacity(names.len() * 16);
    push_read_columns(&mut sql, model, names.iter().copied(), "");
    sql
}

/// Columns `names` of `model` as a statement answers them, each named
/// `prefix` and its name (`"#done"."id", …`), a column of a type that
/// travels as text read as text under its own name (`"mood"::text AS
/// "mood"`).
pub(super) fn push_read_columns<'a>(
    sql: &mut String,
    model: &Model,
    names: impl Iterator<Item = &'a str>,
    prefix: &str,
) {
    for (n, name) in names.enumerate() {
        if n > 0 {
            sql.push_str(", ");
        }
        sql.push_str(prefix);
        push_ident(sql, name);
        if model
            .column_type(name)
            .is_some_and(FieldType::travels_as_text)
        {
            sql.push_str("::text AS ");
            push_ident(sql, name);
        }
    }
}

/// Append ` WHERE ` and `conditions` joined by AND (`TRUE` when there
/// are none). Each is one term (a comparison, or a parenthesised AND/OR).
fn push_where(sql: &mut String, conditions: &[String]) {
    sql.push_str(" WHERE ");
    match conditions {
        [] => sql.push_str("TRUE"),
        [first, rest @ ..] => {
            sql.push_str(first);
            for condition in rest {
                sql.push_str(" AND ");
                sql.push_str(condition);
            }
        }
    }
}

/// Append `item` to the comma-separated list in `list`.
fn push_listed(list: &mut String, item: &str) {
    if !list.is_empty() {
        list.push_str(", ");
    }
    list.push_str(item);
}

/// The condition "after the row whose key is `values`" in the order of
/// `keyset`, each value bound once. All directions alike and no nullable
/// field: a row-value comparison, `("a", "id") > ($1, $2)`. Otherwise the
/// expanded form `a > $1 OR (a = $1 AND id > $2)`, led by `a >= $1` so an
/// index on the first field bounds the scan. NULL sorts last ascending and
/// first descending (PostgreSQL's default, which the ORDER BY uses): it is
/// above every value.
fn after_key(
    keyset: &Keyset,
    values: Vec<Value>,
    stmt: &mut Statement,
    types: &TypeNames,
) -> String {
    let keys = &keyset.keys;
    let bound: Vec<Option<String>> = keys
        .iter()
        .zip(values)
        .map(|(key, value)| {
            (!value.is_null()).then(|| {
                let mut placeholder = stmt.bind(Param::One(value), key.ty.pg_type());
                placeholder.extend(types.cast(key.ty, false));
                placeholder
            })
        })
        .collect();
    let direction = keys[0].direction;
    let op = |ty: FieldType, op: &str| types.op(ty, op);
    // A row comparison takes no OPERATOR(…): a key of such a type is
    // compared in the expanded form.
    let plain = keys.iter().all(|k| !types.qualifies(k.ty));
    if plain && keys.iter().all(|k| k.direction == direction && !k.nullable) {
        let op = if direction == Direction::Asc {
            ">"
        } else {
            "<"
        };
        let fields: Vec<String> = keys.iter().map(|k| quote_ident(&k.field)).collect();
        let values: Vec<&str> = bound.iter().flatten().map(String::as_str).collect();
        return match keys.len() {
            1 => format!("{} {op} {}", fields[0], values[0]),
            _ => format!("({}) {op} ({})", fields.join(", "), values.join(", ")),
        };
    }
    let mut equal = Vec::with_capacity(keys.len());
    let mut any = Vec::with_capacity(keys.len());
    for (key, value) in keys.iter().zip(&bound) {
        let field = quote_ident(&key.field);
        let (gt, lt) = (op(key.ty, ">"), op(key.ty, "<"));
        let beyond = match (key.direction, value) {
            (Direction::Asc, None) => None,
            (Direction::Asc, Some(v)) if key.nullable => {
                Some(format!("({field} {gt} {v} OR {field} IS NULL)"))
            }
            (Direction::Asc, Some(v)) => Some(format!("{field} {gt} {v}")),
            (Direction::Desc, None) => Some(format!("{field} IS NOT NULL")),
            (Direction::Desc, Some(v)) => Some(format!("{field} {lt} {v}")),
        };
        match beyond {
            Some(beyond) if equal.is_empty() => any.push(beyond),
            Some(beyond) => any.push(format!("({} AND {beyond})", equal.join(" AND "))),
            None => {}
        }
        equal.push(match value {
            Some(v) => format!("{field} {} {v}", op(key.ty, "=")),
            None => format!("{field} IS NULL"),
        });
    }
    let any = match &any[..] {
        [one] => one.clone(),
        _ => format!("({})", any.join(" OR ")),
    };
    match (&keys[0], &bound[0]) {
        (first, Some(v)) if !first.nullable => {
            let bound = if first.direction == Direction::Asc {
                op(first.ty, ">=")
            } else {
                op(first.ty, "<=")
            };
            format!("({} {bound} {v} AND {any})", quote_ident(&first.field))
        }
        _ => any,
    }
}

/// Whether two columns hold the same kind of value, so comparing them
/// means what it says: exact numbers with exact numbers (integers and
/// `numeric`), floating point with floating point, text with text (any
/// `varchar` length), and any other type only with itself. A float against
/// an exact number would compare in double precision (inexact), and a
/// `date` against a `timestamptz` through the session's time zone: both are
/// refused.
fn comparable(a: FieldType, b: FieldType) -> bool {
    use FieldType::*;
    let exact = |t| matches!(t, I16 | I32 | I64 | Numeric);
    let float = |t| matches!(t, F32 | F64);
    (exact(a) && exact(b)) || (float(a) && float(b)) || (a.is_text() && b.is_text()) || a == b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::statement::MAX_PARAMS;
    use crate::{Field, Index};

    fn table() -> Table {
        let registry = Registry::new()
            .with(
                Model::new("Stock")
                    .field(Field::new("sku", FieldType::Text).unique())
                    .field(Field::new("quantity", FieldType::I64).default_value(0_i64))
                    .field(Field::new("note", FieldType::Text).nullable())
                    .index(Index::on(["quantity"])),
            )
            .unwrap();
        only_table(&registry)
    }

    /// The table of a registry's one model.
    fn only_table(registry: &Registry) -> Table {
        let catalog = Catalog::new(registry, "shop", Statements::Unnamed);
        let [table] = <[Table; 1]>::try_from(catalog.tables.into_vec()).unwrap();
        table
    }

    #[test]
    fn every_model_is_found_by_name_and_no_other() {
        // Registered out of order: the lookup must not depend on it.
        let names = ["Order", "Account", "Zone", "Item", "Basket"];
        let registry = names.iter().fold(Registry::new(), |registry, name| {
            registry.with(Model::new(*name)).unwrap()
        });
        let catalog = Catalog::new(&registry, "shop", Statements::Unnamed);
        for name in names {
            assert_eq!(catalog.table(name).unwrap().model.name(), name);
        }
        for unknown in ["", "A", "Items", "item", "Zzz"] {
            let err = catalog.table(unknown).unwrap_err();
            assert!(err.to_string().contains("unknown model"), "{err}");
        }
    }

    #[test]
    fn placeholders_are_written_in_decimal() {
        for (n, text) in [(1, "$1"), (9, "$9"), (10, "$10"), (65_535, "$65535")] {
            let mut sql = String::from("x");
            push_placeholder(&mut sql, n);
            assert_eq!(sql, format!("x{text}"));
        }
    }

    #[test]
    fn insert_binds_every_value_and_generates_the_id() {
        let stmt = table()
            .insert(Record::new().with("sku", "x'); DROP TABLE stock; --"))
            .unwrap();
        assert_eq!(
            &*stmt.sql,
            "INSERT INTO \"shop\".\"stock\" (\"id\", \"sku\") VALUES ($1, $2) RETURNING \
             \"id\", \"sku\", \"quantity\", \"note\", \"created_at\", \"updated_at\""
        );
        assert!(matches!(stmt.params[0].0, Param::One(Value::Uuid(_))));
        assert!(!stmt.sql.contains("DROP"));
    }

    #[test]
    fn each_set_of_inserted_fields_has_its_own_text_and_a_missing_one_is_named() {
        let t = table();
        let with_note = || Record::new().with("sku", "a").with("note", "n");
        let first = t.insert(with_note()).unwrap();
        let again = t.insert(with_note()).unwrap();
        assert_eq!(*first.sql, *again.sql);
        assert_eq!(
            &*first.sql,
            "INSERT INTO \"shop\".\"stock\" (\"id\", \"note\", \"sku\") VALUES ($1, $2, $3) RETURNING \
             \"id\", \"sku\", \"quantity\", \"note\", \"created_at\", \"updated_at\""
        );
        let with_quantity = t
            .insert(Record::new().with("sku", "b").with("quantity", 2_i64))
            .unwrap();
        assert_eq!(
            &*with_quantity.sql,
            "INSERT INTO \"shop\".\"stock\" (\"id\", \"quantity\", \"sku\") VALUES ($1, $2, $3) RETURNING \
             \"id\", \"sku\", \"quantity\", \"note\", \"created_at\", \"updated_at\""
        );
        // More sets than are kept: each is still written right.
        let registry = Registry::new()
            .with((0..6).fold(Model::new("Wide"), |model, n| {
                model.field(Field::new(format!("f{n}"), FieldType::I64).nullable())
            }))
            .unwrap();
        let wide = only_table(&registry);
        for set in 1..=2 * MAX_CACHED_INSERTS {
            let names: Vec<String> = (0..6)
                .filter(|n| set & (1 << n) != 0)
                .map(|n| format!("f{n}"))
                .collect();
            let record = names
                .iter()
                .fold(Record::new(), |r, name| r.with(name.as_str(), 1_i64));
            let stmt = wide.insert(record).unwrap();
            // In the record's order: by name.
            let mut columns: Vec<String> = std::iter::once("\"id\"".to_owned())
                .chain(names.iter().map(|n| format!("\"{n}\"")))
                .collect();
            columns.sort();
            let expected = format!(
                "INSERT INTO \"shop\".\"wide\" ({}) VALUES",
                columns.join(", ")
            );
            assert!(stmt.sql.starts_with(&expected), "{}", &*stmt.sql);
            assert_eq!(stmt.params.len(), columns.len());
        }
        let missing = t.insert(Record::new().with("note", "n")).unwrap_err();
        assert_eq!(missing.to_string(), "field \"sku\" of Stock is required");
    }

    #[test]
    fn update_sets_only_the_patch() {
        let stmt = table()
            .update(
                Value::from(uuid::Uuid::nil()),
                Record::new().with("quantity", 3_i64),
            )
            .unwrap()
            .0;
        assert_eq!(
            &*stmt.sql,
            "UPDATE \"shop\".\"stock\" SET \"quantity\" = $1, \"updated_at\" = now() WHERE \"id\" = $2 \
             RETURNING \"id\", \"sku\", \"quantity\", \"note\", \"created_at\", \"updated_at\""
        );
    }

    #[test]
    fn a_versioned_update_bumps_the_version_and_is_conditional_when_the_patch_carries_it() {
        let registry = Registry::new()
            .with(
                Model::new("Doc")
                    .field(Field::new("title", FieldType::Text))
                    .versioned(),
            )
            .unwrap();
        let t = only_table(&registry);
        let id = || Value::from(uuid::Uuid::nil());
        let returning = "RETURNING \"id\", \"title\", \"version\", \"created_at\", \"updated_at\"";
        let (stmt, expected) = t
            .update(
                id(),
                Record::new().with("title", "b").with("version", 3_i32),
            )
            .unwrap();
        assert_eq!(expected, Some(3));
        assert_eq!(
            &*stmt.sql,
            format!(
                "UPDATE \"shop\".\"doc\" SET \"title\" = $1, \"version\" = \"version\" + 1, \
                 \"updated_at\" = now() WHERE \"id\" = $2 AND \"version\" = $3 {returning}"
            )
        );
        assert!(matches!(stmt.params[2], (Param::One(Value::I64(3)), _)));
        let (stmt, expected) = t.update(id(), Record::new().with("title", "b")).unwrap();
        assert_eq!(expected, None);
        assert_eq!(
            &*stmt.sql,
            format!(
                "UPDATE \"shop\".\"doc\" SET \"title\" = $1, \"version\" = \"version\" + 1, \
                 \"updated_at\" = now() WHERE \"id\" = $2 {returning}"
            )
        );
        let every = t
            .update_where(&Filter::eq("title", "a"), Record::new().with("title", "b"))
            .unwrap();
        assert!(
            every.sql.contains("\"version\" = \"version\" + 1"),
            "{}",
            &*every.sql
        );
        let refused = [
            t.insert(Record::new().with("title", "a").with("version", 1_i64)),
            t.update(id(), Record::new().with("version", Value::Null))
                .map(|x| x.0),
            t.update(id(), Record::new().with("version", "3"))
                .map(|x| x.0),
            t.update_where(
                &Filter::eq("title", "a"),
                Record::new().with("version", 2_i64),
            ),
            t.increment(id(), "version", Value::from(1_i64), None),
        ];
        for (i, case) in refused.into_iter().enumerate() {
            let err = case.expect_err(&format!("case {i} should be refused"));
            assert_eq!(
                err.kind(),
                crate::error::ErrorKind::InvalidInput,
                "case {i}: {err}"
            );
        }
    }

    #[test]
    fn update_and_delete_where_bind_the_filter_after_the_patch() {
        let t = table();
        let filter = Filter::ge("quantity", 1_i64).and(Filter::is_null("note"));
        let stmt = t
            .update_where(&filter, Record::new().with("note", "n"))
            .unwrap();
        assert_eq!(
            &*stmt.sql,
            "UPDATE \"shop\".\"stock\" SET \"note\" = $1, \"updated_at\" = now() WHERE \
             (\"quantity\" >= $2 AND \"note\" IS NULL)"
        );
        assert!(matches!(
            &stmt.params[..],
            [
                (Param::One(Value::Text(_)), _),
                (Param::One(Value::I64(1)), _)
            ]
        ));
        let stmt = t.delete_where(&filter).unwrap();
        assert_eq!(
            &*stmt.sql,
            "DELETE FROM \"shop\".\"stock\" WHERE (\"quantity\" >= $1 AND \"note\" IS NULL)"
        );
        assert_eq!(stmt.params.len(), 1);
        // Every row only when asked for.
        let every = t.delete_where(&Filter::And(vec![])).unwrap();
        assert_eq!(&*every.sql, "DELETE FROM \"shop\".\"stock\" WHERE TRUE");
    }

    #[test]
    fn increment_adds_in_place_under_its_guard() {
        let t = table();
        let id = || Value::from(uuid::Uuid::nil());
        let guard = Filter::ge("quantity", 1_i64);
        let stmt = t
            .increment(id(), "quantity", Value::from(-1_i32), Some(&guard))
            .unwrap();
        assert_eq!(
            &*stmt.sql,
            "UPDATE \"shop\".\"stock\" SET \"quantity\" = \"quantity\" + $1, \"updated_at\" = now() \
             WHERE \"id\" = $2 AND \"quantity\" >= $3 \
             RETURNING \"id\", \"sku\", \"quantity\", \"note\", \"created_at\", \"updated_at\""
        );
        // `by` takes the field's type.
        assert!(matches!(stmt.params[0], (Param::One(Value::I64(-1)), _)));
        let bare = t
            .increment(id(), "quantity", Value::from(2_i64), None)
            .unwrap();
        assert!(
            bare.sql.contains("WHERE \"id\" = $2 RETURNING"),
            "{}",
            &*bare.sql
        );
        assert_eq!(bare.params.len(), 2);
    }

    #[test]
    fn list_renders_filters_sort_and_page() {
        let q = Query::new()
            .filter(
                Filter::ge("quantity", 1_i64)
                    .and(Filter::ilike("sku", "a%").or(Filter::is_null("note")))
                    .and(Filter::is_in("sku", ["a", "b"])),
            )
            .sort_desc("quantity")
            .limit(10)
            .offset(20);
        let Listing {
            page, count, limit, ..
        } = table().list(&q).unwrap();
        let count = count.expect("a count");
        let cond =
            "(\"quantity\" >= $1 AND (\"sku\" ILIKE $2 OR \"note\" IS NULL) AND \"sku\" = ANY($3))";
        assert_eq!(
            &*page.sql,
            format!(
                "SELECT \"id\", \"sku\", \"quantity\", \"note\", \"created_at\", \"updated_at\" FROM \
                 \"shop\".\"stock\" WHERE {cond} ORDER BY \"quantity\" DESC, \"id\" ASC LIMIT $4 OFFSET $5"
            )
        );
        assert_eq!(
            &*count.sql,
            format!("SELECT count(*) FROM \"shop\".\"stock\" WHERE {cond}")
        );
        assert_eq!((page.params.len(), count.params.len(), limit), (5, 3, 10));
    }

    /// The cursor a page of `query` would answer after a row whose key
    /// (by key order) is `values`.
    #[test]
    fn a_subset_selects_its_fields_the_id_and_the_sort_keys_its_rows_do_not_hold() {
        let t = table();
        let q = Query::new()
            .select(["sku", "sku", "note"])
            .sort_desc("quantity");
        let listing = t.list_keeping(&q, &["quantity"]).unwrap();
        assert!(
            listing
                .page
                .sql
                .starts_with("SELECT \"id\", \"sku\", \"note\", \"quantity\" FROM"),
            "{}",
            &*listing.page.sql
        );
        // `quantity` is kept: the rows hold it.
        assert_eq!(listing.columns.len(), 4);
        let sorted_only = t.list(&q).unwrap();
        assert_eq!(sorted_only.columns.len(), 3);
        // The cursor reads its keys where the subset puts them.
        let keys: Vec<usize> = sorted_only
            .keyset
            .unwrap()
            .keys
            .iter()
            .map(|k| k.column)
            .collect();
        assert_eq!(keys, [3, 0]);
        let err = t.list(&Query::new().select(["sku", "price"])).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("no field \"price\""), "{err}");
        let (read, columns) = t
            .read_fields(Value::Uuid(uuid::Uuid::nil()), &["quantity".into()])
            .unwrap();
        assert_eq!(
            &*read.sql,
            "SELECT \"id\", \"quantity\" FROM \"shop\".\"stock\" WHERE \"id\" = $1"
        );
        assert_eq!(columns.len(), 2);
    }

    fn cursor_after(t: &Table, query: &Query, values: Vec<Value>) -> crate::Cursor {
        let keyset = t.list(query).unwrap().keyset.expect("a keyset");
        let columns: Vec<usize> = keyset.keys.iter().map(|k| k.column).collect();
        let read = |at| Ok(values[columns.iter().position(|c| *c == at).unwrap()].clone());
        keyset.cursor(read).unwrap().expect("a short key")
    }

    /// The page text of `query` continued after `values`, from `WHERE`
    /// to `ORDER BY`, and its parameters.
    fn after(query: Query, values: Vec<Value>) -> (String, Vec<Param>) {
        let t = table();
        let cursor = cursor_after(&t, &query, values);
        let listing = t.list(&query.after(cursor)).unwrap();
        let sql = &*listing.page.sql;
        let from = sql.find(" WHERE ").unwrap() + 7;
        let to = sql.find(" ORDER BY").unwrap();
        let params = listing.page.params.into_iter().map(|(p, _)| p).collect();
        (sql[from..to].to_owned(), params)
    }

    #[test]
    fn a_page_after_a_cursor_seeks_past_its_key() {
        let id = || Value::from(uuid::Uuid::nil());
        // One direction, no nullable field: a row-value comparison, bound once each.
        let (cond, params) = after(Query::new().sort_asc("sku"), vec!["k".into(), id()]);
        assert_eq!(cond, "(\"sku\", \"id\") > ($1, $2)");
        assert_eq!(params.len(), 4, "the key, then limit and offset");
        let (cond, _) = after(Query::new(), vec![id()]);
        assert_eq!(cond, "\"id\" > $1");
        let (cond, _) = after(Query::new().sort_desc("id"), vec![id()]);
        assert_eq!(cond, "\"id\" < $1");
        // Mixed directions: the expanded form, led by the first field's bound.
        let (cond, params) = after(
            Query::new()
                .filter(Filter::eq("sku", "a"))
                .sort_desc("quantity"),
            vec![5_i64.into(), id()],
        );
        assert_eq!(
            cond,
            "\"sku\" = $1 AND (\"quantity\" <= $2 AND (\"quantity\" < $2 OR \
             (\"quantity\" = $2 AND \"id\" > $3)))"
        );
        assert_eq!(params.len(), 5);
        // A nullable field: NULL is above every value (last ascending).
        let (cond, _) = after(Query::new().sort_asc("note"), vec!["n".into(), id()]);
        assert_eq!(
            cond,
            "((\"note\" > $1 OR \"note\" IS NULL) OR (\"note\" = $1 AND \"id\" > $2))"
        );
        // After a NULL ascending, only the NULLs with a larger id remain.
        let (cond, params) = after(Query::new().sort_asc("note"), vec![Value::Null, id()]);
        assert_eq!(cond, "(\"note\" IS NULL AND \"id\" > $1)");
        assert_eq!(params.len(), 3);
        // Descending, NULLs come first: after one, every non-NULL remains.
        let (cond, _) = after(Query::new().sort_desc("note"), vec![Value::Null, id()]);
        assert_eq!(
            cond,
            "(\"note\" IS NOT NULL OR (\"note\" IS NULL AND \"id\" > $1))"
        );
        let (cond, _) = after(Query::new().sort_desc("note"), vec!["n".into(), id()]);
        assert_eq!(cond, "(\"note\" < $1 OR (\"note\" = $1 AND \"id\" > $2))");
    }

    fn soft_table() -> Table {
        let registry = Registry::new()
            .with(
                Model::new("Doc")
                    .field(Field::new("slug", FieldType::Text).unique())
                    .field(Field::new("hits", FieldType::I64).default_value(0_i64))
                    .soft_delete(),
            )
            .unwrap();
        only_table(&registry)
    }

    #[test]
    fn a_soft_delete_model_sees_live_rows_only_and_deletes_by_marking() {
        let t = soft_table();
        let id = || Value::from(uuid::Uuid::nil());
        let columns = "\"id\", \"slug\", \"hits\", \"created_at\", \"updated_at\", \"deleted_at\"";
        let live = "\"deleted_at\" IS NULL";
        assert_eq!(
            &*t.read(id()).unwrap().sql,
            format!("SELECT {columns} FROM \"shop\".\"doc\" WHERE \"id\" = $1 AND {live}")
        );
        for locked in [
            t.lock_for_update(id()).unwrap(),
            t.lock_for_update_nowait(id()).unwrap(),
        ] {
            assert!(locked.sql.contains(&format!("$1 AND {live} FOR UPDATE")));
        }
        let update = t.update(id(), Record::new().with("hits", 1_i64)).unwrap().0;
        assert!(update
            .sql
            .contains(&format!("WHERE \"id\" = $2 AND {live} RETURNING")));
        let increment = t
            .increment(id(), "hits", 1_i64.into(), Some(&Filter::ge("hits", 0_i64)))
            .unwrap();
        assert!(increment.sql.contains(&format!(
            "WHERE \"id\" = $2 AND {live} AND \"hits\" >= $3 RETURNING"
        )));
        let update_where = t
            .update_where(&Filter::eq("slug", "a"), Record::new().with("hits", 0_i64))
            .unwrap();
        assert!(update_where
            .sql
            .ends_with(&format!("WHERE \"slug\" = $2 AND {live}")));
        assert_eq!(
            &*t.delete(id()).unwrap().sql,
            format!(
                "UPDATE \"shop\".\"doc\" SET \"deleted_at\" = now(), \"updated_at\" = now() \
                 WHERE \"id\" = $1 AND {live} RETURNING {columns}"
            )
        );
        assert_eq!(
            &*t.delete_where(&Filter::eq("slug", "a")).unwrap().sql,
            format!(
                "UPDATE \"shop\".\"doc\" SET \"deleted_at\" = now(), \"updated_at\" = now() \
                 WHERE \"slug\" = $1 AND {live}"
            )
        );
        assert_eq!(
            &*t.restore(id()).unwrap().sql,
            format!(
                "UPDATE \"shop\".\"doc\" SET \"deleted_at\" = NULL, \"updated_at\" = now() \
                 WHERE \"id\" = $1 AND \"deleted_at\" IS NOT NULL RETURNING {columns}"
            )
        );
        // A hard delete sees every row.
        assert_eq!(
            &*t.hard_delete(id()).unwrap().sql,
            format!("DELETE FROM \"shop\".\"doc\" WHERE \"id\" = $1 RETURNING {columns}")
        );
        assert_eq!(
            &*t.hard_delete_where(&Filter::is_not_null("deleted_at"))
                .unwrap()
                .sql,
            "DELETE FROM \"shop\".\"doc\" WHERE \"deleted_at\" IS NOT NULL"
        );
    }

    #[test]
    fn a_list_of_a_soft_delete_model_is_scoped_by_its_query() {
        let t = soft_table();
        let counted = |query: Query| -> String {
            let count = t.list(&query).unwrap().count.expect("a count");
            count.sql.rsplit(" WHERE ").next().unwrap().to_owned()
        };
        assert_eq!(counted(Query::new()), "\"deleted_at\" IS NULL");
        assert_eq!(
            counted(Query::new().filter(Filter::eq("slug", "a").or(Filter::eq("hits", 1_i64)))),
            "\"deleted_at\" IS NULL AND (\"slug\" = $1 OR \"hits\" = $2)"
        );
        assert_eq!(counted(Query::new().with_deleted()), "TRUE");
        assert_eq!(
            counted(Query::new().only_deleted().filter(Filter::eq("slug", "a"))),
            "\"deleted_at\" IS NOT NULL AND \"slug\" = $1"
        );
        // The cursor's condition follows the scope, on the page only.
        let by_slug = Query::new().sort_asc("slug");
        let cursor = cursor_after(&t, &by_slug, vec!["k".into(), uuid::Uuid::nil().into()]);
        let page = t.list(&by_slug.after(cursor)).unwrap().page;
        assert!(
            page.sql.contains(
                "WHERE \"deleted_at\" IS NULL AND (\"slug\", \"id\") > ($1, $2) ORDER BY"
            ),
            "{}",
            &*page.sql
        );
        // deleted_at sorts as the nullable column it is.
        let by_deleted = Query::new().sort_desc("deleted_at");
        let cursor = cursor_after(&t, &by_deleted, vec![Value::Null, uuid::Uuid::nil().into()]);
        assert!(t.list(&by_deleted.with_deleted().after(cursor)).is_ok());
    }

    #[test]
    fn soft_delete_operations_on_another_model_and_setting_deleted_at_are_refused() {
        let plain = table();
        let soft = soft_table();
        let id = || Value::from(uuid::Uuid::nil());
        let refused = [
            plain.restore(id()),
            plain.list(&Query::new().with_deleted()).map(|l| l.page),
            plain.list(&Query::new().only_deleted()).map(|l| l.page),
            plain.lock_next(&Query::new().with_deleted()).map(|l| l.0),
            soft.insert(
                Record::new()
                    .with("slug", "a")
                    .with("deleted_at", chrono::Utc::now()),
            ),
            soft.update(id(), Record::new().with("deleted_at", Value::Null))
                .map(|u| u.0),
            soft.update_where(
                &Filter::eq("slug", "a"),
                Record::new().with("deleted_at", Value::Null),
            ),
            soft.increment(id(), "deleted_at", 1_i64.into(), None),
        ];
        for (i, case) in refused.into_iter().enumerate() {
            let err = case.expect_err(&format!("case {i} should be refused"));
            assert_eq!(
                err.kind(),
                crate::error::ErrorKind::InvalidInput,
                "case {i}: {err}"
            );
        }
        let err = plain.restore(id()).unwrap_err();
        assert!(err.to_string().contains("Stock is none"), "{err}");
        // On a model without soft delete a delete is a DELETE, and
        // deleted_at no column of it.
        assert!(plain.delete(id()).unwrap().sql.starts_with("DELETE FROM"));
        assert!(plain
            .list(&Query::new().filter(Filter::is_null("deleted_at")))
            .is_err());
    }

    #[test]
    fn without_total_no_count_is_written() {
        let listing = table().list(&Query::new().without_total()).unwrap();
        assert!(listing.count.is_none());
        assert!(table().list(&Query::new()).unwrap().count.is_some());
    }

    #[test]
    fn a_cursor_with_an_offset_or_another_sort_is_refused() {
        let t = table();
        let by_sku = Query::new().sort_asc("sku");
        let cursor = cursor_after(&t, &by_sku, vec!["k".into(), uuid::Uuid::nil().into()]);
        for query in [
            by_sku.clone().offset(1).after(cursor.clone()),
            Query::new().sort_desc("sku").after(cursor.clone()),
            Query::new().sort_asc("note").after(cursor.clone()),
            Query::new().after(cursor.clone()),
        ] {
            let err = t.list(&query).unwrap_err();
            assert_eq!(err.kind(), crate::error::ErrorKind::InvalidInput, "{err}");
        }
        assert!(t.list(&by_sku.after(cursor)).is_ok());
    }

    /// The WHERE condition a filter renders to, and its bound parameters
    /// (before the page's limit and offset).
    fn rendered(t: &Table, filter: Filter) -> (String, Vec<Param>) {
        let Listing { page, count, .. } = t.list(&Query::new().filter(filter)).unwrap();
        let count = count.expect("a count");
        let cond = count
            .sql
            .strip_prefix("SELECT count(*) FROM \"shop\".\"stock\" WHERE ")
            .unwrap()
            .to_owned();
        assert!(page.sql.contains(&format!(" WHERE {cond} ORDER BY")));
        (cond, count.params.into_iter().map(|(p, _)| p).collect())
    }

    fn text_param(params: &[Param]) -> &str {
        match params {
            [Param::One(Value::Text(s))] => s,
            other => panic!("one text parameter expected, got {other:?}"),
        }
    }

    #[test]
    fn not_in_binds_one_array_and_an_empty_list_is_every_row() {
        let t = table();
        let (cond, params) = rendered(&t, Filter::not_in("sku", ["a", "b"]));
        assert_eq!(cond, "\"sku\" <> ALL($1)");
        assert!(
            matches!(&params[..], [Param::List(l)] if l == &[Value::from("a"), Value::from("b")])
        );
        let (cond, params) = rendered(&t, Filter::not_in("quantity", 0..70_000_i64));
        assert_eq!(
            (cond.as_str(), params.len()),
            ("\"quantity\" <> ALL($1)", 1)
        );
        let (cond, params) = rendered(&t, Filter::not_in("sku", Vec::<String>::new()));
        assert_eq!((cond.as_str(), params.len()), ("TRUE", 0));
        // Beside it, an empty IN is still no row.
        let (cond, _) = rendered(&t, Filter::is_in("sku", Vec::<String>::new()));
        assert_eq!(cond, "FALSE");
    }

    #[test]
    fn between_binds_both_bounds() {
        let (cond, params) = rendered(&table(), Filter::between("quantity", 2_i64, 9_i64));
        assert_eq!(cond, "\"quantity\" BETWEEN $1 AND $2");
        assert!(matches!(
            &params[..],
            [Param::One(Value::I64(2)), Param::One(Value::I64(9))]
        ));
    }

    #[test]
    fn text_matches_bind_the_escaped_literal_and_splice_nothing() {
        let t = table();
        let nasty = r"50%_off\'; DROP TABLE stock; --";
        let escaped = r"50\%\_off\\'; DROP TABLE stock; --";
        for (filter, pattern) in [
            (Filter::contains("sku", nasty), format!("%{escaped}%")),
            (Filter::starts_with("sku", nasty), format!("{escaped}%")),
            (Filter::ends_with("note", nasty), format!("%{escaped}")),
        ] {
            let field = match &filter {
                Filter::Text { field, .. } => field.clone(),
                _ => unreachable!(),
            };
            let (cond, params) = rendered(&t, filter);
            assert_eq!(cond, format!("\"{field}\" ILIKE $1 ESCAPE E'\\\\'"));
            assert_eq!(text_param(&params), pattern);
            assert!(!cond.contains("DROP") && !cond.contains("50"), "{cond}");
        }
        assert_eq!(
            text_param(&rendered(&t, Filter::contains("sku", "")).1),
            "%%"
        );
        // like/ilike stay raw patterns, with no ESCAPE clause.
        let (cond, params) = rendered(&t, Filter::ilike("sku", r"a\_%"));
        assert_eq!(cond, "\"sku\" ILIKE $1");
        assert_eq!(text_param(&params), r"a\_%");
    }

    #[test]
    fn filters_of_one_shape_are_one_text() {
        let t = table();
        let shape = |sku: &str, low: i64, n: usize| {
            Filter::contains("sku", sku)
                .and(Filter::between("quantity", low, low + 10))
                .and(Filter::not_in("note", (0..n).map(|i| i.to_string())))
                .and(Filter::ge_field("quantity", "quantity"))
        };
        let (a, _) = rendered(&t, shape("x%", 1, 3));
        let (b, _) = rendered(&t, shape("other_", 50, 300));
        assert_eq!(a, b);
        assert_eq!(
            a,
            "(\"sku\" ILIKE $1 ESCAPE E'\\\\' AND \"quantity\" BETWEEN $2 AND $3 AND \
             \"note\" <> ALL($4) AND \"quantity\" >= \"quantity\")"
        );
    }

    #[test]
    fn field_comparisons_name_two_columns_of_the_same_kind() {
        let registry = Registry::new()
            .with(
                Model::new("Bill")
                    .field(Field::new("due", FieldType::Numeric))
                    .field(Field::new("paid", FieldType::I64).nullable())
                    .field(Field::new("small", FieldType::I16))
                    .field(Field::new("ratio", FieldType::F64))
                    .field(Field::new("ratio32", FieldType::F32))
                    .field(Field::new("title", FieldType::Text))
                    .field(Field::new("code", FieldType::Varchar(8)))
                    .field(Field::new("day", FieldType::Date))
                    .field(Field::new("flag", FieldType::Bool)),
            )
            .unwrap();
        let t = only_table(&registry);
        let cond = |f: Filter| {
            t.list(&Query::new().filter(f)).map(|listing| {
                let count = listing.count.expect("a count");
                assert!(count.params.is_empty());
                count.sql.rsplit(" WHERE ").next().unwrap().to_owned()
            })
        };
        for (f, sql) in [
            (Filter::ge_field("paid", "due"), "\"paid\" >= \"due\""),
            (Filter::eq_field("small", "paid"), "\"small\" = \"paid\""),
            (
                Filter::ne_field("ratio", "ratio32"),
                "\"ratio\" <> \"ratio32\"",
            ),
            (Filter::lt_field("title", "code"), "\"title\" < \"code\""),
            (Filter::le_field("day", "day"), "\"day\" <= \"day\""),
            (
                Filter::gt_field("created_at", "updated_at"),
                "\"created_at\" > \"updated_at\"",
            ),
            (Filter::eq_field("id", "id"), "\"id\" = \"id\""),
        ] {
            assert_eq!(cond(f).unwrap(), sql);
        }
        for f in [
            Filter::eq_field("paid", "ratio"),     // exact against float
            Filter::eq_field("title", "paid"),     // text against number
            Filter::lt_field("day", "created_at"), // date against timestamptz
            Filter::eq_field("flag", "small"),     // bool against number
            Filter::eq_field("paid", "missing"),   // unknown field
            Filter::eq_field("missing", "paid"),   // unknown field
            Filter::eq_field("paid", "due\"; --"), // not a field name
        ] {
            let err = cond(f.clone()).expect_err(&format!("{f:?} should be refused"));
            assert_eq!(err.kind(), crate::error::ErrorKind::InvalidInput, "{err}");
        }
    }

    #[test]
    fn operator_names_parse_exactly_or_fail_closed() {
        use crate::schema::CmpOp;
        for (name, op) in [
            ("eq", CmpOp::Eq),
            ("ne", CmpOp::Ne),
            ("neq", CmpOp::Ne),
            ("lt", CmpOp::Lt),
            ("le", CmpOp::Le),
            ("lte", CmpOp::Le),
            ("gt", CmpOp::Gt),
            ("ge", CmpOp::Ge),
            ("gte", CmpOp::Ge),
        ] {
            assert_eq!(name.parse::<CmpOp>().unwrap(), op);
        }
        for bad in [
            "", "equals", "EQ", "eq ", " gt", "=", "1=1", "between", "in",
        ] {
            let err = bad.parse::<CmpOp>().unwrap_err();
            assert_eq!(err.kind(), crate::error::ErrorKind::InvalidInput, "{bad:?}");
        }
    }

    #[test]
    fn bad_input_is_refused_before_any_sql() {
        let t = table();
        let id = || Value::from(uuid::Uuid::nil());
        let cases: Vec<Result<Statement>> = vec![
            t.insert(Record::new()), // sku required
            t.insert(Record::new().with("sku", "a").with("colour", "red")), // unknown field
            t.insert(Record::new().with("sku", 5_i64)), // wrong type
            t.insert(Record::new().with("sku", "a\0b")), // NUL
            t.insert(Record::new().with("sku", Value::Null)), // null in NOT NULL
            t.insert(
                Record::new()
                    .with("sku", "a")
                    .with("created_at", chrono::Utc::now()),
            ),
            t.update(id(), Record::new().with("id", uuid::Uuid::nil()))
                .map(|x| x.0),
            t.update(id(), Record::new().with("\"quantity\"", 1_i64)) // quoted name
                .map(|x| x.0),
            t.read(Value::from(1_i64)), // wrong id type
            t.read(Value::Null),
            t.list(&Query::new().filter(Filter::eq("sku; DROP TABLE x", "a")))
                .map(|x| x.page),
            t.list(&Query::new().sort_asc("sku DESC")).map(|x| x.page),
            t.list(&Query::new().filter(Filter::like("quantity", "1%")))
                .map(|x| x.page),
            t.list(&Query::new().filter(Filter::eq("sku", Value::Null)))
                .map(|x| x.page),
            t.list(&Query::new().limit(u64::MAX)).map(|x| x.page),
            t.list(&Query::new().filter(Filter::not_in("sku", [Value::from("a"), Value::Null])))
                .map(|x| x.page),
            t.list(&Query::new().filter(Filter::not_in("quantity", ["a"])))
                .map(|x| x.page),
            t.list(&Query::new().filter(Filter::not_in("colour", ["a"])))
                .map(|x| x.page),
            t.list(&Query::new().filter(Filter::between("quantity", Value::Null, 3_i64)))
                .map(|x| x.page),
            t.list(&Query::new().filter(Filter::between("quantity", 1_i64, Value::Null)))
                .map(|x| x.page),
            t.list(&Query::new().filter(Filter::between("quantity", "a", "b")))
                .map(|x| x.page),
            t.list(&Query::new().filter(Filter::contains("quantity", "1")))
                .map(|x| x.page),
            t.list(&Query::new().filter(Filter::starts_with("colour", "1")))
                .map(|x| x.page),
            t.list(&Query::new().filter(Filter::ends_with("sku", "a\0b")))
                .map(|x| x.page),
            t.list(&Query::new().filter(Filter::ge_field("quantity", "sku")))
                .map(|x| x.page),
            t.update_where(&Filter::eq("colour", "red"), Record::new()), // unknown field
            t.update_where(
                &Filter::eq("sku", "a"),
                Record::new().with("id", uuid::Uuid::nil()),
            ),
            t.delete_where(&Filter::eq("sku", Value::Null)),
            t.delete_where(&(0..100).fold(Filter::is_null("note"), |f, _| Filter::Or(vec![f]))),
            t.increment(id(), "colour", Value::from(1_i64), None), // unknown field
            t.increment(id(), "sku", Value::from(1_i64), None),    // not numeric
            t.increment(id(), "created_at", Value::from(1_i64), None),
            t.increment(id(), "id", Value::from(1_i64), None),
            t.increment(id(), "quantity", Value::from("1"), None), // wrong type
            t.increment(id(), "quantity", Value::Null, None),
            t.increment(Value::Null, "quantity", Value::from(1_i64), None),
            t.increment(
                id(),
                "quantity",
                Value::from(1_i64),
                Some(&Filter::like("quantity", "1%")),
            ),
        ];
        for (i, case) in cases.into_iter().enumerate() {
            let err = case.expect_err(&format!("case {i} should be refused"));
            assert_eq!(
                err.kind(),
                crate::error::ErrorKind::InvalidInput,
                "case {i}: {err}"
            );
        }
    }

    #[test]
    fn too_many_parameters_are_refused() {
        let many = (0..MAX_PARAMS).fold(Filter::And(vec![]), |f, i| {
            f.and(Filter::eq("sku", i.to_string()))
        });
        let err = table().list(&Query::new().filter(many)).unwrap_err();
        assert!(err.to_string().contains("bind parameters"), "{err}");
    }

    #[test]
    fn huge_in_lists_bind_as_one_array() {
        let page = table()
            .list(&Query::new().filter(Filter::is_in("quantity", 0..70_000_i64)))
            .unwrap()
            .page;
        assert_eq!(page.params.len(), 3);
    }

    #[test]
    fn deep_filters_are_refused() {
        let deep = (0..100).fold(Filter::is_null("note"), |f, _| Filter::Or(vec![f]));
        assert!(table().list(&Query::new().filter(deep)).is_err());
    }
}
