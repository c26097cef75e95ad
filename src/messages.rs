//! The requests callers make outside and inside transactions: read a row,
//! list a page, write a row. [`crate::DbMsg`] and [`crate::TxMsg`] carry them.

use std::time::Duration;

use tokio_postgres::types::PgLsn;

use crate::schema::{Aggregate, Filter, Query, Record, Value};
use crate::sql::OnConflict;

/// Read one row by id. Answers the row, or [`crate::ErrorKind::NotFound`].
#[derive(Debug, Clone, PartialEq)]
pub struct ReadRequest {
    /// The model's name in the registry.
    pub model: String,
    /// The row's id.
    pub id: Value,
}

/// Read some fields of one row by id: the row holds `id` and `fields` only,
/// and only their columns are read ([`crate::Db::read_fields`]). Answers
/// the row, or [`crate::ErrorKind::NotFound`]; a field the model does not
/// have is [`crate::ErrorKind::InvalidInput`], before any SQL.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadFieldsRequest {
    /// The model's name in the registry.
    pub model: String,
    /// The row's id.
    pub id: Value,
    /// The fields to read (besides `id`), at most
    /// [`crate::QueryBounds::max_selected_fields`].
    pub fields: Vec<String>,
}

impl ReadFieldsRequest {
    /// The read of `fields` of the row `id` of `model`.
    ///
    /// ```
    /// let req = pgactor::ReadFieldsRequest::new("StockBalance", uuid::Uuid::nil(), ["sku"]);
    /// assert_eq!(req.fields, ["sku"]);
    /// ```
    pub fn new<I, S>(model: &str, id: impl Into<Value>, fields: I) -> ReadFieldsRequest
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ReadFieldsRequest {
            model: model.into(),
            id: id.into(),
            fields: fields.into_iter().map(Into::into).collect(),
        }
    }
}

/// List one page of rows matching a query, with the total count.
#[derive(Debug, Clone, PartialEq)]
pub struct ListRequest {
    /// The model's name in the registry.
    pub model: String,
    /// Filter, sort and page window.
    pub query: Query,
}

/// Change data. Every write answers the row as it is after the write (for a
/// delete that removes it: as it was), or [`crate::ErrorKind::NotFound`].
#[derive(Debug, Clone, PartialEq)]
pub struct WriteRequest {
    /// The model's name in the registry.
    pub model: String,
    /// What to do.
    pub op: WriteOp,
}

/// The writes of one row.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    /// Insert a row. Fields left out take their defaults; `id` is generated
    /// when absent (see [`crate::PrimaryKey`]).
    Create(Record),
    /// Change only the fields in `patch`; `updated_at` is set to `now()`.
    Update {
        /// The row's id.
        id: Value,
        /// The fields to change.
        patch: Record,
    },
    /// Delete a row: on a soft-delete model ([`crate::Model::soft_delete`])
    /// set its `deleted_at`, answering it as it is now (a row deleted
    /// already is [`crate::ErrorKind::NotFound`]); on any other, remove it.
    Delete {
        /// The row's id.
        id: Value,
    },
    /// Clear the `deleted_at` of a soft-deleted row, `updated_at` set to
    /// `now()`; [`crate::ErrorKind::NotFound`] when no deleted row has the
    /// id, [`crate::ErrorKind::InvalidInput`] (before any SQL) on a model
    /// without soft delete.
    Restore {
        /// The row's id.
        id: Value,
    },
    /// Remove a row for good (`DELETE`), deleted or live: on a soft-delete
    /// model the explicit way out; on any other the same as `Delete`.
    HardDelete {
        /// The row's id.
        id: Value,
    },
}

/// Change or delete every row matching a filter, in one statement.
/// Answers how many rows it changed (no row matching is `0`, not an error).
///
/// The filter is required, validated and bound as a `List`'s: a write to
/// every row must be spelled out by the caller (an empty
/// [`Filter::And`] matches every row).
#[derive(Debug, Clone, PartialEq)]
pub struct BulkWriteRequest {
    /// The model's name in the registry.
    pub model: String,
    /// Which rows.
    pub filter: Filter,
    /// What to do to them.
    pub op: BulkOp,
}

/// The writes by filter.
#[derive(Debug, Clone, PartialEq)]
pub enum BulkOp {
    /// Change only the fields in the patch; `updated_at` is set to `now()`.
    Update(Record),
    /// Delete the rows (on a soft-delete model, set the `deleted_at` of
    /// the live ones).
    Delete,
    /// Remove the rows for good (`DELETE`), deleted or live.
    HardDelete,
}

impl BulkOp {
    /// `update_where` or `delete_where`, as spans name the operation.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            BulkOp::Update(_) => "update_where",
            BulkOp::Delete => "delete_where",
            BulkOp::HardDelete => "hard_delete_where",
        }
    }
}

/// Add `by` to a numeric field of one row in one statement
/// (`SET field = field + by`), no lock held between reading and writing,
/// when the row also matches `guard`. Answers the row as updated;
/// [`crate::ErrorKind::Conflict`] when the row exists but fails the guard
/// (nothing changed), [`crate::ErrorKind::NotFound`] when no row has the
/// id. A field holding NULL stays NULL.
#[derive(Debug, Clone, PartialEq)]
pub struct IncrementRequest {
    /// The model's name in the registry.
    pub model: String,
    /// The row's id.
    pub id: Value,
    /// A numeric field of the model (integer, `numeric` or floating point).
    pub field: String,
    /// What to add (negative to subtract), of the field's type.
    pub by: Value,
    /// A condition the row must meet, checked in the same statement
    /// (`quantity >= 1` before taking one).
    pub guard: Option<Filter>,
}

/// The write shorthands `create`, `update` and `delete`, over the `write`
/// method of the handle they are expanded in (`Db` and `Tx` share them);
/// `$place` says where the write runs, for the docs.
macro_rules! write_shorthands {
    ($place:literal) => {
        #[doc = concat!("Insert a row", $place, "; answers it as stored (with `id`, defaults, timestamps).")]
        pub async fn create(&self, model: &str, record: Record) -> Result<Record> {
            self.write(model, WriteOp::Create(record)).await
        }

        #[doc = concat!("Change only the fields in `patch`", $place, "; answers the row as updated.\n\n",
            "On a versioned model ([`crate::Model::versioned`]) a `patch` that carries the version changes ",
            "the row only while it is still at that version ([`crate::ErrorKind::Conflict`] otherwise, nothing changed; ",
            "[`crate::ErrorKind::NotFound`] when no row has the id); every update adds 1 to the version.")]
        pub async fn update(&self, model: &str, id: impl Into<Value>, patch: Record) -> Result<Record> {
            self.write(model, WriteOp::Update { id: id.into(), patch }).await
        }

        #[doc = concat!("Delete a row", $place, "; answers it as it was. On a soft-delete model ",
            "([`crate::Model::soft_delete`]) it sets the row's `deleted_at` and answers it so; a row deleted ",
            "already is [`crate::ErrorKind::NotFound`].")]
        pub async fn delete(&self, model: &str, id: impl Into<Value>) -> Result<Record> {
            self.write(model, WriteOp::Delete { id: id.into() }).await
        }

        #[doc = concat!("Restore a soft-deleted row", $place, " (clear its `deleted_at`); answers it as restored. ",
            "[`crate::ErrorKind::NotFound`] when no deleted row has the id; [`crate::ErrorKind::InvalidInput`] ",
            "on a model without soft delete; [`crate::ErrorKind::Constraint`] when a live row took its unique key since.")]
        pub async fn restore(&self, model: &str, id: impl Into<Value>) -> Result<Record> {
            self.write(model, WriteOp::Restore { id: id.into() }).await
        }

        #[doc = concat!("Remove a row for good", $place, " (`DELETE`), soft-deleted or live; answers it as it was. ",
            "On a model without soft delete it is [`Self::delete`].")]
        pub async fn hard_delete(&self, model: &str, id: impl Into<Value>) -> Result<Record> {
            self.write(model, WriteOp::HardDelete { id: id.into() }).await
        }
    };
}
pub(crate) use write_shorthands;

/// The writes by filter and the increment, `update_where`, `delete_where`
/// and `increment`, over the `run_write` method of the handle they are
/// expanded in (`Db` and `Tx` share them); `$place` says where they run
/// and `$handle` names the handle's type, for the docs.
macro_rules! filter_writes {
    ($place:literal, $handle:literal) => {
        #[doc = concat!(
            "Change only the fields in `patch` of every row matching `filter`", $place,
            ", in one statement, `updated_at` set to `now()`; answers how many rows changed.\n\n",
            "The filter is validated and bound as a `List`'s (the same refusals and bounds, before any SQL). ",
            "It is required: to change every row, say so with an empty `Filter::And(vec![])`.\n\n",
            "```no_run\n# async fn demo(h: ", $handle, ") -> pgactor::Result<()> {\n",
            "use pgactor::{Filter, Record};\n",
            "let zeroed = h\n",
            "    .update_where(\"StockBalance\", Filter::starts_with(\"sku\", \"OLD-\"), Record::new().with(\"quantity\", 0_i64))\n",
            "    .await?;\n",
            "# let _ = zeroed; Ok(()) }\n```"
        )]
        pub async fn update_where(&self, model: &str, filter: Filter, patch: Record) -> Result<u64> {
            let op = BulkOp::Update(patch);
            self.run_write(BulkWriteRequest { model: model.into(), filter, op }).await
        }

        #[doc = concat!(
            "Delete every row matching `filter`", $place,
            ", in one statement; answers how many rows were deleted (on a soft-delete model, ",
            "how many live rows it marked deleted).\n\n",
            "The filter is validated and bound as a `List`'s, and required: to delete every row, ",
            "say so with an empty `Filter::And(vec![])`.\n\n",
            "```no_run\n# async fn demo(h: ", $handle, ") -> pgactor::Result<()> {\n",
            "use pgactor::Filter;\n",
            "let gone = h.delete_where(\"StockBalance\", Filter::eq(\"quantity\", 0_i64)).await?;\n",
            "# let _ = gone; Ok(()) }\n```"
        )]
        pub async fn delete_where(&self, model: &str, filter: Filter) -> Result<u64> {
            let op = BulkOp::Delete;
            self.run_write(BulkWriteRequest { model: model.into(), filter, op }).await
        }

        #[doc = concat!(
            "Remove every row matching `filter` for good", $place,
            " (`DELETE`), soft-deleted or live, in one statement; answers how many were removed. ",
            "The filter is checked as [`Self::delete_where`]'s.\n\n",
            "```no_run\n# async fn demo(h: ", $handle, ", cutoff: chrono::DateTime<chrono::Utc>) -> pgactor::Result<()> {\n",
            "use pgactor::Filter;\n",
            "// Purge what was soft-deleted before the cutoff.\n",
            "let purged = h.hard_delete_where(\"Doc\", Filter::lt(\"deleted_at\", cutoff)).await?;\n",
            "# let _ = purged; Ok(()) }\n```"
        )]
        pub async fn hard_delete_where(&self, model: &str, filter: Filter) -> Result<u64> {
            let op = BulkOp::HardDelete;
            self.run_write(BulkWriteRequest { model: model.into(), filter, op }).await
        }

        #[doc = concat!(
            "Add `by` to the numeric `field` of the row `id`", $place,
            ", in one statement (`SET field = field + by`, `updated_at` set to `now()`), ",
            "when the row also matches `guard`; answers the row as updated.\n\n",
            "A row that exists but fails the guard answers [`crate::ErrorKind::Conflict`] and is left unchanged; ",
            "no row with the id answers [`crate::ErrorKind::NotFound`]. A field that is not numeric ",
            "(integer, `numeric`, floating point) or a `by` not of its type is ",
            "[`crate::ErrorKind::InvalidInput`], before any SQL. See [`crate::IncrementRequest`].\n\n",
            "```no_run\n# async fn demo(h: ", $handle, ", id: uuid::Uuid) -> pgactor::Result<()> {\n",
            "use pgactor::Filter;\n",
            "// Reserve one unit, never below zero, without a lock.\n",
            "let stock = h.increment(\"StockBalance\", id, \"quantity\", -1_i64, Some(Filter::ge(\"quantity\", 1_i64))).await?;\n",
            "# let _ = stock; Ok(()) }\n```"
        )]
        pub async fn increment(
            &self,
            model: &str,
            id: impl Into<Value>,
            field: &str,
            by: impl Into<Value>,
            guard: Option<Filter>,
        ) -> Result<Record> {
            let req = IncrementRequest {
                model: model.into(),
                id: id.into(),
                field: field.into(),
                by: by.into(),
                guard,
            };
            self.run_write(req).await
        }
    };
}
pub(crate) use filter_writes;

impl WriteOp {
    /// `create`, `update` or `delete`, as spans name the operation.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            WriteOp::Create(_) => "create",
            WriteOp::Update { .. } => "update",
            WriteOp::Delete { .. } => "delete",
            WriteOp::Restore { .. } => "restore",
            WriteOp::HardDelete { .. } => "hard_delete",
        }
    }
}

/// A position in the primary's write-ahead log, returned by writes that ask
/// for it ([`crate::Db::write_with_token`], [`crate::Tx::commit_with_token`]).
/// A read made with [`crate::Db::after`] that carries it is served by the
/// replica only once the replica has replayed that far, else by the primary:
/// it always sees the write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConsistencyToken(pub(crate) u64);

impl ConsistencyToken {
    /// The later of two tokens.
    pub fn max(self, other: ConsistencyToken) -> ConsistencyToken {
        ConsistencyToken(self.0.max(other.0))
    }
}

impl std::fmt::Display for ConsistencyToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", PgLsn::from(self.0))
    }
}

/// How one message outside a transaction runs, besides what it asks for:
/// the [`ConsistencyToken`] its reads must see, its own query timeout, and
/// the span its operation's span nests under. `Call::here()` takes the
/// sender's current span; `Call::default()` none (a root span).
///
/// ```no_run
/// # async fn demo(db: pgactor::Db, token: pgactor::ConsistencyToken) -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use pgactor::{Call, DbMsg, ReadRequest};
/// let req = ReadRequest { model: "StockBalance".into(), id: uuid::Uuid::nil().into() };
/// let call = Call::here().after(token).query_timeout(Duration::from_millis(500));
/// let row = ractor::call!(db.actor(), DbMsg::Read, req, call)?;
/// # let _ = row; Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Call {
    /// Reads see every write up to this token, on the replica once it has
    /// replayed that far, else on the primary (as [`crate::Db::after`]).
    pub after: Option<ConsistencyToken>,
    /// This call's client-side query timeout: `None` takes the adapter's
    /// (`SessionConfig::query_timeout`), `Some(Duration::ZERO)` means none
    /// (as [`crate::Db::with_query_timeout`]).
    pub query_timeout: Option<Duration>,
    /// The span the operation's span is a child of (kept open until then).
    pub parent: Option<tracing::Span>,
    /// A raw query (`DbMsg::Query`, `DbMsg::Execute`) runs on the read
    /// pool, as through [`crate::Db::replica`]; other messages go where
    /// they always go.
    pub replica: bool,
}

impl Call {
    /// A call whose operation's span nests under the current span.
    pub fn here() -> Call {
        Call {
            parent: Some(tracing::Span::current()),
            ..Call::default()
        }
    }

    /// Reads see every write up to `token`.
    pub fn after(mut self, token: ConsistencyToken) -> Call {
        self.after = Some(token);
        self
    }

    /// This call's own query timeout (`Duration::ZERO`: none).
    pub fn query_timeout(mut self, timeout: Duration) -> Call {
        self.query_timeout = Some(timeout);
        self
    }

    /// A raw query runs on the read pool (see [`Call::replica`](field@Call::replica)).
    pub fn on_replica(mut self) -> Call {
        self.replica = true;
        self
    }
}

/// Insert many rows of one model in one call ([`crate::Db::create_many`],
/// [`crate::Db::create_many_count`]). All or nothing: one statement (inside
/// a transaction, part of it).
///
/// Every row sets the same fields (a row that sets others is refused,
/// named by its index, before any SQL); fields left out take their
/// defaults; a uuid `id` is generated (UUIDv7) for each row without one.
/// At most [`crate::MAX_BATCH_ROWS`] rows; none is an empty answer, no SQL.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateManyRequest {
    /// The model's name in the registry.
    pub model: String,
    /// The rows to insert.
    pub rows: Vec<Record>,
}

/// Insert rows, or update the rows that already hold their key
/// ([`crate::Db::upsert_many`]): `INSERT … ON CONFLICT (<on>) DO UPDATE SET
/// <the rows' fields> = EXCLUDED.…, updated_at = now()` or `DO NOTHING`, in
/// one statement. Answers one [`Upserted`] per row, in the rows' order.
///
/// `on`, the conflict target, is the primary key (`["id"]`) or the fields
/// of one unique field or unique index of the model (in any order); any
/// other is refused before any SQL, as are rows that do not set its
/// fields. The rows are checked as a [`CreateManyRequest`]'s. Two rows of
/// one batch with the same key are refused by the server when the action
/// is [`OnConflict::Update`] (a row is not updated twice by one
/// statement); with [`OnConflict::Nothing`] the second is skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct UpsertRequest {
    /// The model's name in the registry.
    pub model: String,
    /// The rows to insert or update.
    pub rows: Vec<Record>,
    /// The conflict target: `id`, or the fields of a unique field or index.
    pub on: Vec<String>,
    /// What to do to a row whose key is taken.
    pub action: OnConflict,
}

/// What an upsert did with one row of its batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Upserted<T = Record> {
    /// The row was new: inserted, answered as stored.
    Inserted(T),
    /// A row held its key: updated ([`OnConflict::Update`]), answered as
    /// stored now (its id is the stored row's).
    Updated(T),
    /// A row held its key and was left as it is ([`OnConflict::Nothing`]):
    /// PostgreSQL answers nothing for it.
    Skipped,
}

impl<T> Upserted<T> {
    /// The row as stored, unless skipped.
    pub fn row(&self) -> Option<&T> {
        match self {
            Upserted::Inserted(row) | Upserted::Updated(row) => Some(row),
            Upserted::Skipped => None,
        }
    }

    /// The row as stored, unless skipped.
    pub fn into_row(self) -> Option<T> {
        match self {
            Upserted::Inserted(row) | Upserted::Updated(row) => Some(row),
            Upserted::Skipped => None,
        }
    }

    /// Whether the row was inserted.
    pub fn is_inserted(&self) -> bool {
        matches!(self, Upserted::Inserted(_))
    }
}

/// [`CreateManyRequest`] answering only how many rows it inserted: copied
/// in (binary `COPY`) from [`crate::COPY_MIN_ROWS`] rows on. Outside a
/// transaction behind a transaction-pooling PgBouncer, the COPY runs in a
/// transaction of its own, so its statement stays on one server session.
#[derive(Debug)]
pub(crate) struct CountMany {
    pub(crate) req: CreateManyRequest,
    /// Whether it runs inside the caller's transaction.
    pub(crate) in_transaction: bool,
}

/// The batch writes `create_many`, `create_many_count`, `upsert` and
/// `upsert_many`, over the `run_write` method of the handle they are
/// expanded in (`Db` and `Tx` share them); `$place` says where they run,
/// `$handle` names the handle's type, for the docs, and `$in_transaction`
/// whether the handle is a transaction's.
macro_rules! batch_writes {
    ($place:literal, $handle:literal, $in_transaction:literal) => {
        #[doc = concat!(
            "Insert `rows` of one model", $place, " in one statement and answer them as stored, ",
            "in the order given (with ids, defaults and timestamps). All or nothing: a row that breaks a ",
            "constraint stores none ([`crate::ErrorKind::Constraint`]). See [`crate::CreateManyRequest`] ",
            "for the checks and bounds.\n\n",
            "Each field is bound as one array (`unnest`), so the batch is not bound by PostgreSQL's ",
            "65,535 parameters; a batch that sets an array field binds every value and is (see ",
            "[`crate::MAX_BATCH_ROWS`]).\n\n",
            "```no_run\n# async fn demo(h: ", $handle, ") -> pgactor::Result<()> {\n",
            "use pgactor::Record;\n",
            "let rows = (0..500).map(|n| Record::new().with(\"sku\", format!(\"SKU-{n}\")).with(\"quantity\", 1_i64)).collect();\n",
            "let stored = h.create_many(\"StockBalance\", rows).await?;\n",
            "assert_eq!(stored.len(), 500);\n",
            "# Ok(()) }\n```"
        )]
        pub async fn create_many(&self, model: &str, rows: Vec<Record>) -> Result<Vec<Record>> {
            self.run_write(CreateManyRequest { model: model.into(), rows }).await
        }

        #[doc = concat!(
            "Insert `rows` of one model", $place, " and answer only how many were inserted: from ",
            "[`crate::COPY_MIN_ROWS`] rows on by a binary `COPY … FROM STDIN`, the fastest way in, else in one ",
            "INSERT. Checked, bounded and all or nothing as [`Self::create_many`].\n\n",
            "```no_run\n# async fn demo(h: ", $handle, ") -> pgactor::Result<()> {\n",
            "use pgactor::Record;\n",
            "let rows = (0..50_000).map(|n| Record::new().with(\"sku\", format!(\"SKU-{n}\"))).collect();\n",
            "assert_eq!(h.create_many_count(\"StockBalance\", rows).await?, 50_000);\n",
            "# Ok(()) }\n```"
        )]
        pub async fn create_many_count(&self, model: &str, rows: Vec<Record>) -> Result<u64> {
            let req = CreateManyRequest { model: model.into(), rows };
            self.run_write(CountMany { req, in_transaction: $in_transaction }).await
        }

        #[doc = concat!(
            "Insert `row`", $place, ", or, when a row holds its key `on` already (the primary key or a ",
            "unique field or index), update that row with `row`'s fields ([`crate::OnConflict::Update`]) ",
            "or leave it ([`crate::OnConflict::Nothing`]); answers which it did. See [`crate::UpsertRequest`].\n\n",
            "```no_run\n# async fn demo(h: ", $handle, ") -> pgactor::Result<()> {\n",
            "use pgactor::{OnConflict, Record, Upserted};\n",
            "let row = Record::new().with(\"sku\", \"A-1\").with(\"quantity\", 5_i64);\n",
            "match h.upsert(\"StockBalance\", row, &[\"sku\"], OnConflict::Update).await? {\n",
            "    Upserted::Inserted(row) | Upserted::Updated(row) => { let _ = row; }\n",
            "    Upserted::Skipped => {}\n",
            "}\n",
            "# Ok(()) }\n```"
        )]
        pub async fn upsert(
            &self,
            model: &str,
            row: Record,
            on: &[&str],
            action: OnConflict,
        ) -> Result<Upserted> {
            let answer = self.upsert_many(model, vec![row], on, action).await?;
            answer
                .into_iter()
                .next()
                .ok_or_else(|| crate::Error::decode("the upsert answered nothing for its row"))
        }

        #[doc = concat!(
            "[`Self::upsert`] of many rows", $place, ", in one statement: answers one ",
            "[`crate::Upserted`] per row, in the order given."
        )]
        pub async fn upsert_many(
            &self,
            model: &str,
            rows: Vec<Record>,
            on: &[&str],
            action: OnConflict,
        ) -> Result<Vec<Upserted>> {
            let on = on.iter().map(|&f| f.to_owned()).collect();
            self.run_write(UpsertRequest { model: model.into(), rows, on, action }).await
        }
    };
}
pub(crate) use batch_writes;

/// Count the rows matching a filter in one statement (`SELECT count(*)
/// … WHERE <filter>`): a `List`'s total without its rows
/// ([`crate::Db::count`]). The filter is validated and bound as a `List`'s;
/// an empty [`Filter::And`] counts every row.
#[derive(Debug, Clone, PartialEq)]
pub struct CountRequest {
    /// The model's name in the registry.
    pub model: String,
    /// Which rows.
    pub filter: Filter,
}

/// Whether any row matches a filter, in one statement (`SELECT EXISTS
/// (SELECT 1 … WHERE <filter>)`, which stops at the first match;
/// [`crate::Db::exists`]). The filter is validated and bound as a `List`'s.
#[derive(Debug, Clone, PartialEq)]
pub struct ExistsRequest {
    /// The model's name in the registry.
    pub model: String,
    /// Which rows.
    pub filter: Filter,
}

/// Aggregate the rows matching a filter, grouped by fields, in one
/// statement ([`crate::Db::aggregate`]): one answer row per group, its
/// group fields then its outputs. See [`Aggregate`] for the names, the
/// answer types and the bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateRequest {
    /// The model's name in the registry.
    pub model: String,
    /// The filter, groups, outputs, order and limit.
    pub aggregate: Aggregate,
}

/// The aggregate reads `count`, `exists`, `aggregate` and `aggregate_as`,
/// over the `run_read` method of the handle they are expanded in (`Db`
/// and `Tx` share them); `$place` says where they run and `$handle` names
/// the handle's type, for the docs.
macro_rules! aggregate_reads {
    ($place:literal, $handle:literal) => {
        #[doc = concat!(
            "How many rows of `model` match `filter`", $place, ", in one statement ",
            "(`SELECT count(*) … WHERE`): a page's total without its rows. It reads every matching row ",
            "(or index entry), as the total of a `List` does. The filter is validated and bound as a ",
            "`List`'s; an empty `Filter::And(vec![])` counts every row. See [`crate::CountRequest`].\n\n",
            "```no_run\n# async fn demo(h: ", $handle, ") -> pgactor::Result<()> {\n",
            "use pgactor::Filter;\n",
            "let empty = h.count(\"StockBalance\", Filter::eq(\"quantity\", 0_i64)).await?;\n",
            "# let _ = empty; Ok(()) }\n```"
        )]
        pub async fn count(&self, model: &str, filter: Filter) -> Result<u64> {
            let req = crate::messages::CountRequest { model: model.into(), filter };
            self.run_read(req).await
        }

        #[doc = concat!(
            "Whether any row of `model` matches `filter`", $place, ", in one statement ",
            "(`SELECT EXISTS (SELECT 1 … WHERE …)`), which stops at the first matching row: cheaper ",
            "than a count to ask \"is there one\". See [`crate::ExistsRequest`].\n\n",
            "```no_run\n# async fn demo(h: ", $handle, ") -> pgactor::Result<()> {\n",
            "use pgactor::Filter;\n",
            "if h.exists(\"StockBalance\", Filter::eq(\"sku\", \"A-1\")).await? { /* taken */ }\n",
            "# Ok(()) }\n```"
        )]
        pub async fn exists(&self, model: &str, filter: Filter) -> Result<bool> {
            let req = crate::messages::ExistsRequest { model: model.into(), filter };
            self.run_read(req).await
        }

        #[doc = concat!(
            "Aggregate the rows of `model`", $place, ", in one statement: `count`, `sum`, `avg`, `min` ",
            "and `max` over the rows matching the filter, one record per group of the group fields, ",
            "each holding the group fields and the outputs by name. See [`crate::Aggregate`] for the ",
            "output names, the answer types, the order and the bound on groups (refused before any SQL ",
            "when it asks for nothing, names an unknown field, or sums text).\n\n",
            "```no_run\n# async fn demo(h: ", $handle, ") -> pgactor::Result<()> {\n",
            "use pgactor::Aggregate;\n",
            "let groups = h.aggregate(\"StockBalance\", Aggregate::new().group_by(\"sku\").count().sum(\"quantity\")).await?;\n",
            "for group in &groups {\n",
            "    let (sku, rows, total): (String, i64, Option<i64>) = (group.get(\"sku\")?, group.get(\"count\")?, group.get(\"sum_quantity\")?);\n",
            "#   let _ = (sku, rows, total);\n",
            "}\n",
            "# Ok(()) }\n```"
        )]
        pub async fn aggregate(&self, model: &str, aggregate: crate::schema::Aggregate) -> Result<Vec<Record>> {
            let req = crate::messages::AggregateRequest { model: model.into(), aggregate };
            self.run_read(req).await
        }

        #[doc = concat!(
            "[`Self::aggregate`], each group decoded into an `R` (a tuple of the group fields then the ",
            "outputs, by position, or a [`crate::FromRow`] type of your own, by name).\n\n",
            "```no_run\n# async fn demo(h: ", $handle, ") -> pgactor::Result<()> {\n",
            "use pgactor::{Aggregate, Filter};\n",
            "let (rows, total): (i64, Option<i64>) = h\n",
            "    .aggregate_as(\"StockBalance\", Aggregate::new().filter(Filter::gt(\"quantity\", 0_i64)).count().sum(\"quantity\"))\n",
            "    .await?\n",
            "    .remove(0);\n",
            "# let _ = (rows, total); Ok(()) }\n```"
        )]
        pub async fn aggregate_as<R: FromRow + Send + 'static>(
            &self,
            model: &str,
            aggregate: crate::schema::Aggregate,
        ) -> Result<Vec<R>> {
            let req = crate::messages::AggregateRequest { model: model.into(), aggregate };
            self.run_read(crate::pool::Decoded::<_, crate::pool::AsType<R>>::new(req)).await
        }
    };
}
pub(crate) use aggregate_reads;

/// The read of some fields, `read_fields`, over the `run_read` method of
/// the handle it is expanded in (`Db` and `Tx` share it); `$place` says
/// where it runs and `$handle` names the handle's type, for the docs.
macro_rules! field_reads {
    ($place:literal, $handle:literal) => {
        #[doc = concat!(
            "Read only `fields` (and `id`) of one row by id", $place, ": the record holds those ",
            "fields and no other, and only their columns are read; [`crate::ErrorKind::NotFound`] ",
            "when absent, a field the model lacks [`crate::ErrorKind::InvalidInput`] before any SQL. ",
            "See [`crate::ReadFieldsRequest`].\n\n",
            "```no_run\n# async fn demo(h: ", $handle, ", id: uuid::Uuid) -> pgactor::Result<()> {\n",
            "let row = h.read_fields(\"StockBalance\", id, [\"quantity\"]).await?;\n",
            "let quantity: i64 = row.get(\"quantity\")?;\n",
            "assert_eq!(row.len(), 2); // id and quantity\n",
            "# let _ = quantity; Ok(()) }\n```"
        )]
        pub async fn read_fields<I, S>(&self, model: &str, id: impl Into<Value>, fields: I) -> Result<Record>
        where
            I: IntoIterator<Item = S>,
            S: Into<String>,
        {
            self.run_read(crate::messages::ReadFieldsRequest::new(model, id, fields)).await
        }
    };
}
pub(crate) use field_reads;
