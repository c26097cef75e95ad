//! The statements of batch writes: many rows inserted in one statement
//! (each column bound as one array and unnested), the same as an upsert,
//! and the binary COPY of a large batch.
//!
//! A statement that answers rows joins them back to the batch by id, so it
//! answers them in the batch's order: an INSERT's RETURNING has no order
//! PostgreSQL promises. Every row therefore has its id before the INSERT:
//! given, generated here (a uuid key), or taken from the identity sequence
//! by the statement itself, ahead of the INSERT.

use tokio_postgres::types::Type;

use crate::error::{Error, Result};
use crate::schema::{push_ident, FieldType, PrimaryKey, Record, Value, ID};

use super::statement::{Param, Sql, Statement, MAX_PARAMS};
use super::table::{push_read_columns, Settable, Table, LIVE};

/// The most rows one batch write takes (`create_many`, `create_many_count`,
/// `upsert_many`); more are refused with
/// [`crate::ErrorKind::InvalidInput`] before any SQL. Memory is then bounded
/// by the caller's own batch: split larger inputs into batches of this size
/// (each its own statement, atomic on its own; inside a transaction, all
/// together).
pub const MAX_BATCH_ROWS: usize = 100_000;

/// From this many rows on, `create_many_count` copies the batch in with a
/// binary `COPY … FROM STDIN` (the fastest way into a table); smaller
/// batches are one `INSERT`, which costs less for a few rows.
pub const COPY_MIN_ROWS: usize = 1_000;

/// What an upsert does to a row whose conflict target is taken already.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnConflict {
    /// `DO UPDATE`: write the row's fields (but its id and the conflict
    /// target's fields) to the row that holds the key, its version (on a
    /// versioned model) plus 1, `updated_at` set to
    /// `now()`.
    #[default]
    Update,
    /// `DO NOTHING`: leave the row that holds the key as it is; the batch's
    /// row is answered as [`crate::Upserted::Skipped`].
    Nothing,
}

/// A batch checked against its model: every row sets the same fields, each
/// value of its field's type, every row has an id unless the identity
/// sequence gives them.
#[derive(Debug)]
pub(crate) struct Batch {
    /// The columns set, in the rows' (name) order.
    columns: Vec<(Settable, FieldType)>,
    /// Each row's values, in the order of `columns`.
    rows: Vec<Vec<Value>>,
    /// An identity key and no ids given: the statement takes them from the
    /// sequence.
    sequence_ids: bool,
}

impl Batch {
    /// How many rows it holds.
    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }
}

/// `"#input"`: the batch as a relation, its ordinal in `"#"`.
const INPUT: &str = "\"#input\"";
/// `"#done"`: the rows the INSERT answered.
const DONE: &str = "\"#done\"";

impl Table {
    /// Check `rows` as one batch (see [`Batch`]): refused before any SQL
    /// when it holds more than [`MAX_BATCH_ROWS`] rows, when a row sets
    /// other fields than the first, misses a required field or holds a
    /// value its field refuses (the row named by its index).
    pub(crate) fn batch(&self, rows: Vec<Record>) -> Result<Batch> {
        if rows.len() > MAX_BATCH_ROWS {
            return Err(Error::invalid_input(format!(
                "a batch of {} rows is above the maximum of {MAX_BATCH_ROWS} rows a batch write takes: split it",
                rows.len()
            )));
        }
        let uuid_key = self.model.key() == PrimaryKey::Uuid;
        let Some(first) = rows.first() else {
            return Ok(Batch {
                columns: Vec::new(),
                rows: Vec::new(),
                sequence_ids: false,
            });
        };
        let names: Vec<String> = first.iter().map(|(name, _)| name.to_owned()).collect();
        let mut columns = Vec::with_capacity(names.len() + 1);
        let mut nullable = Vec::with_capacity(names.len() + 1);
        for name in &names {
            let (settable, ty, takes_null) = self.settable_field(name)?;
            columns.push((settable, ty));
            nullable.push(takes_null);
        }
        // The id, where a uuid key is generated: in name order, as if the
        // rows had held it (as `insert` puts it).
        let generated_id = (uuid_key && !names.iter().any(|n| n == ID))
            .then(|| names.partition_point(|n| n.as_str() < ID));
        if let Some(at) = generated_id {
            columns.insert(at, (Settable::Id, FieldType::Uuid));
            nullable.insert(at, false);
        }
        if let Some(Settable::Declared(at)) = self
            .required
            .iter()
            .find(|r| !columns.iter().any(|(c, _)| c == *r))
        {
            return Err(Error::invalid_input(format!(
                "field \"{}\" of {} is required (the batch's rows do not set it)",
                self.model.fields()[*at].name(),
                self.model.name()
            )));
        }
        // Collected in place: the rows' own allocation holds the values.
        let values = rows
            .into_iter()
            .enumerate()
            .map(|(index, row)| {
                if row.len() != names.len() || row.iter().zip(&names).any(|((n, _), m)| n != m) {
                    let fields: Vec<&str> = row.iter().map(|(n, _)| n).collect();
                    return Err(Error::invalid_input(format!(
                        "row {index} of the batch sets the fields ({}) where row 0 sets ({}): \
                         every row of a batch sets the same fields",
                        fields.join(", "),
                        names.join(", ")
                    )));
                }
                // The row's own values, checked in place (no copy of the batch).
                let mut row = row.into_values();
                if let Some(at) = generated_id {
                    row.insert(at, Value::Uuid(uuid::Uuid::now_v7()));
                }
                for (at, slot) in row.iter_mut().enumerate() {
                    let (settable, ty) = columns[at];
                    *slot = match std::mem::replace(slot, Value::Null) {
                        // A null id is no id: the key is generated.
                        Value::Null if uuid_key && settable == Settable::Id => {
                            Value::Uuid(uuid::Uuid::now_v7())
                        }
                        Value::Null if !nullable[at] => {
                            return Err(Error::invalid_input(format!(
                                "row {index} of the batch: field \"{}\" of {} cannot be null",
                                self.settable_name(settable),
                                self.model.name()
                            )))
                        }
                        value => ty
                            .coerce(self.settable_name(settable), value)
                            .map_err(|err| {
                                Error::invalid_input(format!("row {index} of the batch: {err}"))
                            })?,
                    };
                }
                Ok(row)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Batch {
            sequence_ids: !columns.iter().any(|(c, _)| *c == Settable::Id),
            columns,
            rows: values,
        })
    }

    /// `WITH "#input" AS (…) INSERT … SELECT … FROM "#input"`: the batch in
    /// one statement, answering only how many rows it inserted.
    pub(crate) fn insert_many_count(&self, batch: Batch) -> Result<Statement> {
        let (mut stmt, mut sql, columns) = self.with_input(batch, false)?;
        self.push_insert_from_input(&mut sql, &columns);
        stmt.sql = Sql::Written(sql);
        stmt.checked()
    }

    /// The batch in one statement, answering every row as stored, in the
    /// batch's order: the INSERT's rows joined back to the batch by id.
    pub(crate) fn insert_many(&self, batch: Batch) -> Result<Statement> {
        let (mut stmt, mut sql, columns) = self.with_input(batch, true)?;
        sql.push_str(", ");
        sql.push_str(DONE);
        sql.push_str(" AS (");
        self.push_insert_from_input(&mut sql, &columns);
        sql.push_str(" RETURNING ");
        sql.push_str(&self.stored_list);
        sql.push_str(") SELECT ");
        self.push_done_columns(&mut sql);
        sql.push_str(" FROM \"#done\" JOIN \"#input\" USING (\"id\") ORDER BY \"#input\".\"#\"");
        stmt.sql = Sql::Written(sql);
        stmt.checked()
    }

    /// `INSERT … ON CONFLICT (<on>) DO UPDATE SET … | DO NOTHING`, answering
    /// each row it inserted or updated with `"#inserted"` and the batch's
    /// ordinal `"#"` after the model's columns. A row it inserted is joined
    /// back to the batch by id, one it updated by the conflict target
    /// (whose fields the row holds: they are what conflicted). `on` must be
    /// the primary key or the fields of a unique field or unique index
    /// (see [`Table::conflict_target`]).
    ///
    /// On a soft-delete model it sees live rows only: a unique target
    /// names the partial index's predicate (`ON CONFLICT (…) WHERE
    /// "deleted_at" IS NULL`), and `DO UPDATE` changes a live row only (a
    /// deleted one holding the id is skipped).
    pub(crate) fn upsert_many(
        &self,
        batch: Batch,
        target: &[String],
        action: OnConflict,
    ) -> Result<Statement> {
        let set = |field: &str| {
            field == ID
                || batch
                    .columns
                    .iter()
                    .any(|&(c, _)| self.settable_name(c) == field)
        };
        if let Some(missing) = target.iter().find(|f| !set(f)) {
            return Err(Error::invalid_input(format!(
                "an upsert on ({}) needs \"{missing}\" in every row of the batch",
                target.join(", ")
            )));
        }
        let (mut stmt, mut sql, columns) = self.with_input(batch, true)?;
        sql.push_str(", ");
        sql.push_str(DONE);
        sql.push_str(" AS (");
        self.push_insert_from_input(&mut sql, &columns);
        sql.push_str(" ON CONFLICT (");
        push_list(&mut sql, target.iter().map(String::as_str), "");
        sql.push_str(") ");
        let soft = self.model.has_soft_delete();
        if soft && target != [ID] {
            sql.push_str("WHERE ");
            sql.push_str(LIVE);
            sql.push(' ');
        }
        match action {
            OnConflict::Nothing => sql.push_str("DO NOTHING"),
            OnConflict::Update => {
                sql.push_str("DO UPDATE SET ");
                for name in &columns {
                    if name != ID && !target.iter().any(|t| t == name) {
                        push_ident(&mut sql, name);
                        sql.push_str(" = EXCLUDED.");
                        push_ident(&mut sql, name);
                        sql.push_str(", ");
                    }
                }
                self.push_kept_assignments(&mut sql, true);
                if soft {
                    sql.push_str(" WHERE ");
                    sql.push_str(&self.qualified);
                    sql.push('.');
                    sql.push_str(LIVE);
                }
            }
        }
        sql.push_str(" RETURNING ");
        // As stored: the join back compares the conflict target's values
        // with the batch's in their type (a citext's case-insensitively).
        sql.push_str(&self.stored_list);
        // How the server marks a row an INSERT … ON CONFLICT inserted: no
        // transaction had deleted or locked it before (xmax is 0).
        sql.push_str(", (\"xmax\" = 0) AS \"#inserted\")");
        let answer = |sql: &mut String| {
            sql.push_str("SELECT ");
            self.push_done_columns(sql);
            sql.push_str(
                ", \"#done\".\"#inserted\", \"#input\".\"#\" FROM \"#done\" JOIN \"#input\" ",
            );
        };
        sql.push(' ');
        answer(&mut sql);
        sql.push_str("USING (\"id\") WHERE \"#done\".\"#inserted\" UNION ALL ");
        answer(&mut sql);
        sql.push_str("ON ");
        for (n, field) in target.iter().enumerate() {
            if n > 0 {
                sql.push_str(" AND ");
            }
            // The key's own equality: a citext's ignores case.
            let ty = self.column_type(field)?;
            for (m, side) in [DONE, INPUT].into_iter().enumerate() {
                if m > 0 {
                    sql.push(' ');
                    sql.push_str(&self.types.op(ty, "="));
                    sql.push(' ');
                }
                sql.push_str(side);
                sql.push('.');
                push_ident(&mut sql, field);
            }
        }
        sql.push_str(" WHERE NOT \"#done\".\"#inserted\"");
        stmt.sql = Sql::Written(sql);
        stmt.checked()
    }

    /// Whether the batch can be copied in: a custom type's binary form
    /// is its own, and a batch of one is inserted instead.
    pub(crate) fn copies(&self, batch: &Batch) -> bool {
        !batch
            .columns
            .iter()
            .any(|(_, ty)| matches!(ty, FieldType::Custom(_)))
    }

    /// `COPY "schema"."table" (…) FROM STDIN (FORMAT binary)`, the wire
    /// type of each column, and the rows to copy. An enum's or a
    /// `citext`'s binary form is its text.
    pub(crate) fn copy_in(&self, batch: Batch) -> (String, Vec<Type>, Vec<Vec<Value>>) {
        let mut sql = String::from("COPY ");
        sql.push_str(&self.qualified);
        sql.push_str(" (");
        let names = batch.columns.iter().map(|&(c, _)| self.settable_name(c));
        push_list(&mut sql, names, "");
        sql.push_str(") FROM STDIN (FORMAT binary)");
        let types = batch.columns.iter().map(|(_, ty)| ty.pg_type()).collect();
        (sql, types, batch.rows)
    }

    /// The conflict target `on`, sorted: the primary key (`id`) or the
    /// fields of one of the model's unique fields or unique indexes.
    pub(crate) fn conflict_target(&self, on: &[String]) -> Result<Vec<String>> {
        let mut target = on.to_vec();
        target.sort();
        target.dedup();
        let unique = |columns: &[String]| {
            let mut columns = columns.to_vec();
            columns.sort();
            columns == target
        };
        let is_key = target == [ID];
        if is_key
            || self
                .model
                .indexes()
                .any(|index| index.is_unique() && unique(index.columns()))
        {
            return Ok(target);
        }
        Err(Error::invalid_input(format!(
            "an upsert of {} on ({}) needs a conflict target that is the primary key (\"id\") \
             or the fields of a unique field or unique index of the model (Field::unique, Index::unique)",
            self.model.name(),
            on.join(", ")
        )))
    }

    /// `WITH "#input" AS (SELECT … FROM <the batch> AS "#u"(…, "#"))`, its
    /// values bound, and the names of the columns to insert. With `ids`,
    /// `"#input"` holds every row's id: taken from the identity sequence
    /// when the rows have none.
    fn with_input(&self, batch: Batch, ids: bool) -> Result<(Statement, String, Vec<String>)> {
        let Batch {
            columns,
            rows,
            sequence_ids,
        } = batch;
        let mut names: Vec<String> = columns
            .iter()
            .map(|&(c, _)| self.settable_name(c).to_owned())
            .collect();
        let mut stmt = Statement::new();
        let mut sql = String::with_capacity(256 + 4 * self.select_list.len());
        sql.push_str("WITH \"#input\" AS (SELECT ");
        if ids && sequence_ids {
            // One sequence lookup (an uncorrelated subquery runs once),
            // then one value per row, in this CTE, which runs once.
            sql.push_str("nextval((SELECT pg_get_serial_sequence(");
            let table = Param::One(Value::Text(self.qualified.clone()));
            stmt.push_bound(&mut sql, table, Type::TEXT);
            sql.push_str(", 'id'))::regclass) AS \"id\", ");
        }
        sql.push_str("\"#u\".* FROM ");
        let arrays: Option<Vec<Type>> = columns.iter().map(|(_, ty)| ty.pg_array_type()).collect();
        match arrays {
            // No field set (every one has a default): one row per ordinal.
            Some(_) if columns.is_empty() => {
                sql.push_str("generate_series(1, ");
                let count = Value::I64(rows.len() as i64);
                stmt.push_bound(&mut sql, Param::One(count), Type::INT8);
                sql.push(')');
            }
            // One array per column, whatever the number of rows.
            Some(array_types) => {
                let mut by_column: Vec<Vec<Value>> = (0..columns.len())
                    .map(|_| Vec::with_capacity(rows.len()))
                    .collect();
                for row in rows {
                    for (column, value) in by_column.iter_mut().zip(row) {
                        column.push(value);
                    }
                }
                sql.push_str("unnest(");
                let columns = by_column.into_iter().zip(array_types).zip(&columns);
                for (n, ((values, ty), (_, field_type))) in columns.enumerate() {
                    if n > 0 {
                        sql.push_str(", ");
                    }
                    stmt.push_bound(&mut sql, Param::List(values), ty);
                    sql.extend(self.types.cast(*field_type, true));
                }
                sql.push_str(") WITH ORDINALITY");
            }
            // An array field cannot be unnested (an array of arrays is one
            // multidimensional array): one placeholder per value.
            None => {
                let needed = rows.len() * columns.len() + stmt.params.len();
                if needed > MAX_PARAMS {
                    return Err(Error::invalid_input(format!(
                        "a batch that sets an array field binds every value on its own: {} rows of {} fields \
                         need {needed} bind parameters and PostgreSQL allows {MAX_PARAMS}; split the batch \
                         (create_many_count copies batches of {COPY_MIN_ROWS} rows or more instead)",
                        rows.len(),
                        columns.len()
                    )));
                }
                sql.push_str("(VALUES ");
                for (n, row) in rows.into_iter().enumerate() {
                    sql.push_str(if n > 0 { ", (" } else { "(" });
                    for ((value, (_, ty)), m) in row.into_iter().zip(&columns).zip(0..) {
                        if m > 0 {
                            sql.push_str(", ");
                        }
                        self.push_value(&mut stmt, &mut sql, value, *ty);
                    }
                    // The ordinal is the adapter's own counter, as the
                    // placeholders' numbers are: no value of the caller's.
                    sql.push_str(", ");
                    sql.push_str(&(n + 1).to_string());
                    sql.push_str("::int8)");
                }
                sql.push(')');
            }
        }
        sql.push_str(" AS \"#u\"(");
        push_list(&mut sql, names.iter().map(String::as_str), "");
        sql.push_str(if names.is_empty() {
            "\"#\"))"
        } else {
            ", \"#\"))"
        });
        if ids && sequence_ids {
            let at = names.partition_point(|n| n.as_str() < ID);
            names.insert(at, ID.to_owned());
        }
        Ok((stmt, sql, names))
    }

    /// ` INSERT INTO … (<columns>) SELECT <columns> FROM "#input"`
    fn push_insert_from_input(&self, sql: &mut String, columns: &[String]) {
        sql.push_str(" INSERT INTO ");
        sql.push_str(&self.qualified);
        let names = || columns.iter().map(String::as_str);
        if columns.is_empty() {
            // Every field left to its default, one row per batch row.
            sql.push_str(" SELECT FROM \"#input\"");
            return;
        }
        sql.push_str(" (");
        push_list(sql, names(), "");
        sql.push_str(") SELECT ");
        push_list(sql, names(), "");
        sql.push_str(" FROM \"#input\"");
    }

    /// The model's columns of `"#done"`: `"#done"."id", …`, read as a
    /// single statement's are.
    fn push_done_columns(&self, sql: &mut String) {
        push_read_columns(sql, &self.model, self.model.column_names(), "\"#done\".");
    }
}

/// `<prefix>"a", <prefix>"b", …`
fn push_list<'a>(sql: &mut String, names: impl Iterator<Item = &'a str>, prefix: &str) {
    for (n, name) in names.enumerate() {
        if n > 0 {
            sql.push_str(", ");
        }
        sql.push_str(prefix);
        push_ident(sql, name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::schema::{Elem, Field, Index, Model, Registry};
    use crate::sql::{Catalog, Statements};

    fn catalog() -> Catalog {
        let registry = Registry::new()
            .with(
                Model::new("Stock")
                    .field(Field::new("sku", FieldType::Text).unique())
                    .field(Field::new("quantity", FieldType::I64).default_value(0_i64))
                    .field(Field::new("tags", FieldType::Array(Elem::I64)).nullable())
                    .index(Index::on(["quantity"])),
            )
            .unwrap()
            .with(
                Model::new("Ticket")
                    .primary_key(PrimaryKey::Identity)
                    .field(Field::new("label", FieldType::Text)),
            )
            .unwrap();
        Catalog::new(&registry, "shop", Statements::Unnamed)
    }

    fn rows(n: usize) -> Vec<Record> {
        (0..n)
            .map(|i| {
                Record::new()
                    .with("sku", i.to_string())
                    .with("quantity", 1_i64)
            })
            .collect()
    }

    #[test]
    fn a_batch_binds_one_array_per_column_and_answers_in_its_order() {
        let catalog = catalog();
        let t = catalog.table("Stock").unwrap();
        let stmt = t.insert_many(t.batch(rows(70_000)).unwrap()).unwrap();
        assert_eq!(
            &*stmt.sql,
            "WITH \"#input\" AS (SELECT \"#u\".* FROM unnest($1, $2, $3) WITH ORDINALITY \
             AS \"#u\"(\"id\", \"quantity\", \"sku\", \"#\")), \"#done\" AS ( INSERT INTO \
             \"shop\".\"stock\" (\"id\", \"quantity\", \"sku\") SELECT \"id\", \"quantity\", \"sku\" \
             FROM \"#input\" RETURNING \"id\", \"sku\", \"quantity\", \"tags\", \"created_at\", \
             \"updated_at\") SELECT \"#done\".\"id\", \"#done\".\"sku\", \"#done\".\"quantity\", \
             \"#done\".\"tags\", \"#done\".\"created_at\", \"#done\".\"updated_at\" FROM \"#done\" \
             JOIN \"#input\" USING (\"id\") ORDER BY \"#input\".\"#\""
        );
        assert!(matches!(&stmt.params[0], (Param::List(ids), ty)
            if ids.len() == 70_000 && *ty == Type::UUID_ARRAY));
        // An identity key takes its ids from the sequence, ahead of the INSERT.
        let t = catalog.table("Ticket").unwrap();
        let batch = t.batch(vec![Record::new().with("label", "a")]).unwrap();
        let stmt = t.insert_many(batch).unwrap();
        assert!(
            stmt.sql.starts_with(
                "WITH \"#input\" AS (SELECT nextval((SELECT pg_get_serial_sequence($1, 'id'))::regclass) \
                 AS \"id\", \"#u\".* FROM unnest($2) WITH ORDINALITY AS \"#u\"(\"label\", \"#\")), \
                 \"#done\" AS ( INSERT INTO \"shop\".\"ticket\" (\"id\", \"label\")"
            ),
            "{}",
            &*stmt.sql
        );
    }

    #[test]
    fn an_array_field_binds_every_value_within_the_parameter_limit() {
        let catalog = catalog();
        let t = catalog.table("Stock").unwrap();
        let tagged = |n: usize| {
            rows(n)
                .into_iter()
                .map(|r| r.with("tags", vec![1_i64]))
                .collect::<Vec<_>>()
        };
        let stmt = t.insert_many_count(t.batch(tagged(2)).unwrap()).unwrap();
        assert!(stmt.sql.contains(
            "FROM (VALUES ($1, $2, $3, $4, 1::int8), ($5, $6, $7, $8, 2::int8)) AS \"#u\""
        ));
        let err = t.insert_many(t.batch(tagged(20_000)).unwrap()).unwrap_err();
        assert!(err.to_string().contains("65535"), "{err}");
    }

    #[test]
    fn an_upsert_updates_the_fields_given_and_joins_back_by_id_or_key() {
        let catalog = catalog();
        let t = catalog.table("Stock").unwrap();
        let target = t.conflict_target(&["sku".into()]).unwrap();
        let stmt = t
            .upsert_many(t.batch(rows(2)).unwrap(), &target, OnConflict::Update)
            .unwrap();
        for part in [
            "ON CONFLICT (\"sku\") DO UPDATE SET \"quantity\" = EXCLUDED.\"quantity\", \"updated_at\" = now() \
             RETURNING \"id\", \"sku\", \"quantity\", \"tags\", \"created_at\", \"updated_at\", (\"xmax\" = 0) AS \"#inserted\")",
            "USING (\"id\") WHERE \"#done\".\"#inserted\" UNION ALL",
            "ON \"#done\".\"sku\" = \"#input\".\"sku\" WHERE NOT \"#done\".\"#inserted\"",
        ] {
            assert!(stmt.sql.contains(part), "{part} in {}", &*stmt.sql);
        }
        let stmt = t
            .upsert_many(t.batch(rows(2)).unwrap(), &target, OnConflict::Nothing)
            .unwrap();
        assert!(stmt
            .sql
            .contains("ON CONFLICT (\"sku\") DO NOTHING RETURNING"));
        for on in [&["quantity"][..], &["tags"], &[], &["sku", "id"], &["nope"]] {
            let on: Vec<String> = on.iter().map(|&f| f.to_owned()).collect();
            let err = t.conflict_target(&on).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{on:?}");
        }
        assert_eq!(t.conflict_target(&["id".into()]).unwrap(), ["id"]);
    }

    #[test]
    fn a_soft_delete_model_s_upsert_matches_live_rows_only() {
        let registry = Registry::new()
            .with(
                Model::new("Doc")
                    .field(Field::new("slug", FieldType::Text).unique())
                    .field(Field::new("hits", FieldType::I64))
                    .soft_delete(),
            )
            .unwrap();
        let catalog = Catalog::new(&registry, "shop", Statements::Unnamed);
        let t = catalog.table("Doc").unwrap();
        let rows = || {
            t.batch(vec![Record::new().with("slug", "a").with("hits", 1_i64)])
                .unwrap()
        };
        let on_slug = t.conflict_target(&["slug".into()]).unwrap();
        let stmt = t.upsert_many(rows(), &on_slug, OnConflict::Update).unwrap();
        assert!(
            stmt.sql.contains(
                "ON CONFLICT (\"slug\") WHERE \"deleted_at\" IS NULL DO UPDATE SET \"hits\" = EXCLUDED.\"hits\", \
                 \"updated_at\" = now() WHERE \"shop\".\"doc\".\"deleted_at\" IS NULL RETURNING"
            ),
            "{}",
            &*stmt.sql
        );
        let stmt = t
            .upsert_many(rows(), &on_slug, OnConflict::Nothing)
            .unwrap();
        assert!(stmt
            .sql
            .contains("ON CONFLICT (\"slug\") WHERE \"deleted_at\" IS NULL DO NOTHING RETURNING"));
        // On the primary key (no partial index) only the update is scoped.
        let on_id = t.conflict_target(&["id".into()]).unwrap();
        let stmt = t.upsert_many(rows(), &on_id, OnConflict::Update).unwrap();
        assert!(stmt.sql.contains("ON CONFLICT (\"id\") DO UPDATE SET"));
        assert!(stmt
            .sql
            .contains("WHERE \"shop\".\"doc\".\"deleted_at\" IS NULL RETURNING"));
        // deleted_at is the adapter's: no batch sets it.
        let err = t
            .batch(vec![Record::new()
                .with("slug", "a")
                .with("hits", 1_i64)
                .with("deleted_at", Value::Null)])
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn bad_batches_are_refused_naming_the_row() {
        let catalog = catalog();
        let refused = |model: &str, rows: Vec<Record>, needle: &str| {
            let err = catalog.table(model).unwrap().batch(rows).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            assert!(err.to_string().contains(needle), "{needle} in {err}");
        };
        let mut mixed = rows(3);
        mixed[1].remove("quantity");
        refused("Stock", mixed, "row 1");
        refused(
            "Stock",
            vec![Record::new().with("quantity", 1_i64)],
            "\"sku\"",
        );
        let mut null = rows(3);
        null[2].set("sku", Value::Null);
        refused("Stock", null, "row 2");
        let too_many = vec![Record::new().with("sku", "a"); MAX_BATCH_ROWS + 1];
        refused("Stock", too_many, "100000");
        let null_identity = vec![Record::new().with("label", "a").with("id", Value::Null)];
        refused("Ticket", null_identity, "row 0");
        // A null uuid id is generated, as one left out is.
        let stock = catalog.table("Stock").unwrap();
        let batch = stock
            .batch(vec![Record::new().with("sku", "a").with("id", Value::Null)])
            .unwrap();
        assert!(matches!(batch.rows[0][0], Value::Uuid(_)));
        assert_eq!(stock.batch(Vec::new()).unwrap().len(), 0);
    }
}
