//! Tracing spans with OpenTelemetry-style fields: one per operation, one
//! per transaction around its operations.

use tracing::field::Empty;
use tracing::{Id, Span};

use crate::error::Result;

/// The span of one operation. `role` is `read`, `write` or `tx`; `parent`
/// is the caller's span (carried across the actor hop) or the transaction's.
pub(crate) fn operation(
    parent: Option<Id>,
    operation: &'static str,
    role: &'static str,
    model: &str,
) -> Span {
    tracing::info_span!(
        target: "pgactor.query",
        parent: parent,
        "db",
        db.system = "postgresql",
        db.operation = operation,
        db.collection.name = model,
        pgactor.role = role,
        db.response.rows = Empty,
        outcome = Empty,
        error.code = Empty,
    )
}

/// The span of one transaction, from BEGIN to its end.
pub(crate) fn transaction(parent: Option<Id>, isolation: &'static str, read_only: bool) -> Span {
    tracing::info_span!(
        target: "pgactor.tx",
        parent: parent,
        "tx",
        db.system = "postgresql",
        db.transaction.isolation = isolation,
        db.transaction.read_only = read_only,
        outcome = Empty,
        error.code = Empty,
    )
}

/// Record on `span` how an operation ended, and how many rows it answered.
pub(crate) fn record<T>(span: &Span, result: &Result<T>, rows: impl FnOnce(&T) -> u64) {
    match result {
        Ok(value) => {
            span.record("outcome", "ok");
            span.record("db.response.rows", rows(value));
        }
        Err(err) => {
            span.record("outcome", "error");
            span.record("error.code", err.code());
        }
    }
}
