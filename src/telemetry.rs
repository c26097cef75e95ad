//! Tracing spans with OpenTelemetry-style fields: one per operation, one
//! per transaction around its operations.

use std::sync::atomic::{AtomicBool, Ordering};

use tracing::field::Empty;
use tracing::{Id, Span};

use crate::error::Result;

/// Whether the values pgactor binds show in `Debug`, and so in logs.
static LOG_BOUND_VALUES: AtomicBool = AtomicBool::new(false);

/// Let the values pgactor binds to statements appear in logs (`true`), or
/// keep them out (`false`, the default in every build).
///
/// The driver (tokio-postgres, through the `log` crate) logs each prepared
/// statement it runs at DEBUG with its parameters' `Debug`; pgactor's
/// parameters print as their type (`<text>`, `NULL`, `[3 values]`) unless
/// this is on, so no log level and no subscriber sees a value. Values are
/// user data (emails, tokens, whatever a row holds), and DEBUG is what gets
/// turned on in production to chase a problem, so the default is off in
/// debug and release builds alike. Turn it on while debugging locally. It
/// applies to the whole process, as the logger it feeds does.
pub fn log_bound_values(enabled: bool) {
    LOG_BOUND_VALUES.store(enabled, Ordering::Relaxed);
}

/// Whether [`log_bound_values`] is on.
pub(crate) fn bound_values_logged() -> bool {
    LOG_BOUND_VALUES.load(Ordering::Relaxed)
}

/// The span of one operation. `role` is `read`, `write` or `tx`; `parent`
/// is the caller's span (a `Db` method's caller, a `DbMsg`'s `Call`), the
/// transaction's, or `None` (a root span).
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
        db.collection.name = bounded(model),
        pgactor.role = role,
        db.response.rows = Empty,
        outcome = Empty,
        error.code = Empty,
    )
}

/// A model name as a span field: whole up to 64 bytes (every registered
/// name is an identifier of at most 63), else its first 60 bytes, so a
/// caller passing anything as a model name cannot put it all in the logs.
fn bounded(model: &str) -> &str {
    if model.len() <= 64 {
        return model;
    }
    let mut end = 60;
    while !model.is_char_boundary(end) {
        end -= 1;
    }
    &model[..end]
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
