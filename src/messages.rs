//! The requests callers make outside and inside transactions: read a row,
//! list a page, write a row. [`crate::DbMsg`] and [`crate::TxMsg`] carry them.

use crate::schema::{Query, Record, Value};

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

/// The write shorthands `create`, `update` and `delete`, over the `write`
/// method of the handle they are expanded in (`Db` and `Tx` share them);
/// `$place` says where the write runs, for the docs.
macro_rules! write_shorthands {
    ($place:literal) => {
        #[doc = concat!("Insert a row", $place, "; answers it as stored (with `id`, defaults, timestamps).")]
        pub async fn create(&self, model: &str, record: Record) -> Result<Record> {
            self.write(model, WriteOp::Create(record)).await
        }

        #[doc = concat!("Change only the fields in `patch`", $place, "; answers the row as updated.")]
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
