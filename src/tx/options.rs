//! How a transaction starts: its isolation level, read-only or not, its
//! statement deadline and its re-runs.

use std::time::Duration;

use crate::retry::RetryPolicy;

/// The isolation level a transaction runs at.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsolationLevel {
    /// PostgreSQL's default: each statement sees what was committed before it began.
    #[default]
    ReadCommitted,
    /// The whole transaction sees one snapshot; concurrent updates of the
    /// same rows fail with [`crate::ErrorKind::Conflict`].
    RepeatableRead,
    /// Like running one at a time; anomalies fail with [`crate::ErrorKind::Conflict`].
    Serializable,
}

impl IsolationLevel {
    /// `read_committed`, `repeatable_read` or `serializable`, for spans.
    pub(crate) fn name(self) -> &'static str {
        match self {
            IsolationLevel::ReadCommitted => "read_committed",
            IsolationLevel::RepeatableRead => "repeatable_read",
            IsolationLevel::Serializable => "serializable",
        }
    }
}

/// How a transaction starts.
///
/// ```
/// use pgactor::{IsolationLevel, RetryPolicy, TxOptions};
/// let opts = TxOptions {
///     isolation: IsolationLevel::Serializable,
///     retry: RetryPolicy::attempts(5),
///     ..TxOptions::default()
/// };
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TxOptions {
    /// Isolation level (default read committed).
    pub isolation: IsolationLevel,
    /// `READ ONLY`: writes fail on the server.
    pub read_only: bool,
    /// Per-statement client deadline for this transaction: `None` takes the
    /// deadline of the handle that begins it (the session's `query_timeout`
    /// unless [`crate::Db::with_query_timeout`] changed it), `Duration::ZERO`
    /// means none.
    pub query_timeout: Option<Duration>,
    /// Re-runs of [`crate::Db::with_transaction`] (ignored by [`crate::Db::begin`]).
    pub retry: RetryPolicy,
}

impl TxOptions {
    /// `BEGIN ISOLATION LEVEL … READ WRITE` or `READ ONLY`.
    pub(crate) fn begin_sql(&self) -> &'static str {
        use IsolationLevel::*;
        match (self.isolation, self.read_only) {
            (ReadCommitted, false) => "BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE",
            (ReadCommitted, true) => "BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY",
            (RepeatableRead, false) => "BEGIN ISOLATION LEVEL REPEATABLE READ READ WRITE",
            (RepeatableRead, true) => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            (Serializable, false) => "BEGIN ISOLATION LEVEL SERIALIZABLE READ WRITE",
            (Serializable, true) => "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY",
        }
    }
}
