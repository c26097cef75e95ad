//! The requests callers make outside and inside transactions: read a row,
//! list a page, write a row. [`crate::DbMsg`] and [`crate::TxMsg`] carry them.

use std::time::Duration;

use tokio_postgres::types::PgLsn;

use crate::schema::{Filter, Query, Record, Value};

/// Read one row by id. Answers the row, or [`crate::ErrorKind::NotFound`].
#[derive(Debug, Clone, PartialEq)]
pub struct ReadRequest {
    /// The model's name in the registry.
    pub model: String,
    /// The row's id.
    pub id: Value,
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
/// delete: as it was), or [`crate::ErrorKind::NotFound`].
#[derive(Debug, Clone, PartialEq)]
pub struct WriteRequest {
    /// The model's name in the registry.
    pub model: String,
    /// What to do.
    pub op: WriteOp,
}

/// The three writes.
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
    /// Delete a row.
    Delete {
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

/// The two writes by filter.
#[derive(Debug, Clone, PartialEq)]
pub enum BulkOp {
    /// Change only the fields in the patch; `updated_at` is set to `now()`.
    Update(Record),
    /// Delete the rows.
    Delete,
}

impl BulkOp {
    /// `update_where` or `delete_where`, as spans name the operation.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            BulkOp::Update(_) => "update_where",
            BulkOp::Delete => "delete_where",
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

        #[doc = concat!("Delete a row", $place, "; answers it as it was.")]
        pub async fn delete(&self, model: &str, id: impl Into<Value>) -> Result<Record> {
            self.write(model, WriteOp::Delete { id: id.into() }).await
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
            ", in one statement; answers how many rows were deleted.\n\n",
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
