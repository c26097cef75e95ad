//! One error type whose kind a web layer can map to an HTTP status without guessing.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use tokio_postgres::error::SqlState;

/// The result type of every fallible pgactor call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in pgactor.
///
/// Match on [`Error::kind`] to decide what to do; use [`Error::http_status`] and
/// [`Error::code`] to answer an HTTP client. The message never contains a password.
///
/// ```
/// use pgactor::{Error, ErrorKind};
///
/// let err = Error::invalid_input("unknown model \"Nope\"");
/// assert_eq!(err.kind(), ErrorKind::InvalidInput);
/// assert_eq!(err.http_status(), 400);
/// assert_eq!(err.code(), "INVALID_INPUT");
/// ```
pub struct Error(Box<Inner>);

/// Boxed so `Result<T, Error>` stays one pointer wide on the happy path.
struct Inner {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn StdError + Send + Sync>>,
    /// A pool (or a share of one) had no room: the server behind it may
    /// be healthy.
    exhausted: bool,
    /// For [`ErrorKind::Constraint`]: the constraint a write broke.
    violation: Option<ConstraintViolation>,
}

/// What kind of failure an [`Error`] is.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The row does not exist (HTTP 404).
    NotFound,
    /// A unique, foreign-key, not-null or check constraint refused the write
    /// (HTTP 409 for unique, 422 for the others).
    Constraint(ConstraintKind),
    /// A serialization failure (SQLSTATE 40001) or a deadlock (40P01): retry
    /// the whole transaction (HTTP 409).
    Conflict,
    /// A statement ran past `statement_timeout`, waited past `lock_timeout`,
    /// or a caller-side deadline passed (HTTP 504).
    Timeout,
    /// The request itself is wrong: unknown model or field, wrong value type,
    /// a NUL byte in text, too many parameters (HTTP 400). No SQL was sent
    /// (but for an aggregate that answers more groups than its bound, known
    /// only from its statement, a read: see [`crate::Aggregate`]).
    InvalidInput,
    /// No connection could be had: the pool is exhausted, the server is down
    /// or the connection broke before the statement was sent (HTTP 503).
    Unavailable,
    /// A write was sent but its answer was lost (connection broke, reply
    /// dropped): it may or may not have been applied (HTTP 500). Never retried
    /// automatically.
    OutcomeUnknown,
    /// A stored value could not be turned into the Rust type asked for (HTTP 500).
    Decode,
    /// The configuration or a DSN is invalid, or the server does not match
    /// it: the session settings refused, TLS required but not offered, a
    /// certificate that fails verification (HTTP 500).
    Config,
    /// Any other database error; see [`Error::sqlstate`] (HTTP 500).
    Database,
    /// The adapter's actors are gone (shut down or crashed) (HTTP 503).
    Closed,
    /// The transaction failed earlier (a statement error, its connection
    /// lost, the server's idle-in-transaction timeout): nothing in it can be
    /// committed any more; roll back and start again (HTTP 500).
    TxAborted,
    /// The transaction is finished (committed, rolled back or abandoned):
    /// messages sent to it are refused (HTTP 500).
    TxClosed,
}

/// Which constraint a write broke, on which table and columns. Its `Debug`
/// shows the length of `detail`, not its text (it quotes row values).
#[derive(serde::Serialize, serde::Deserialize, Clone, PartialEq, Eq)]
pub struct ConstraintViolation {
    /// The kind of constraint.
    pub kind: ConstraintKind,
    /// The table the constraint belongs to, when the server named it.
    pub table: Option<String>,
    /// The constrained columns; every column of a composite unique index.
    pub columns: Vec<String>,
    /// The constraint (or unique index) name, when the server named it.
    pub constraint: Option<String>,
    /// The server's detail line. It may contain the offending values, so it
    /// is kept out of `Display`; show it to end users only if that is safe.
    pub detail: Option<String>,
}

impl fmt::Debug for ConstraintViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let detail = self
            .detail
            .as_ref()
            .map(|d| format!("<{} bytes, row values: read the field>", d.len()));
        f.debug_struct("ConstraintViolation")
            .field("kind", &self.kind)
            .field("table", &self.table)
            .field("columns", &self.columns)
            .field("constraint", &self.constraint)
            .field("detail", &detail)
            .finish()
    }
}

/// The server's error as the source of an [`Error`]: its message and
/// SQLSTATE, never its detail, hint or context lines, which can quote row
/// values (a unique violation's `Key (email)=(…)`), so that printing the
/// error chain (`anyhow`'s `{:?}`, say) shows no value.
struct ServerError(tokio_postgres::Error);

impl ServerError {
    fn db(&self) -> Option<&tokio_postgres::error::DbError> {
        self.0.as_db_error()
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.db() {
            Some(db) => write!(
                f,
                "db error: {}: {} (SQLSTATE {})",
                db.severity(),
                db.message(),
                db.code().code()
            ),
            None => f.write_str("db error"),
        }
    }
}

impl fmt::Debug for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerError({self})")
    }
}

impl StdError for ServerError {}

/// The four constraint kinds the adapter tells apart.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConstraintKind {
    /// SQLSTATE 23505.
    Unique,
    /// SQLSTATE 23503.
    ForeignKey,
    /// SQLSTATE 23502.
    NotNull,
    /// SQLSTATE 23514.
    Check,
}

impl ConstraintKind {
    fn code(self) -> &'static str {
        match self {
            ConstraintKind::Unique => "UNIQUE_VIOLATION",
            ConstraintKind::ForeignKey => "FOREIGN_KEY_VIOLATION",
            ConstraintKind::NotNull => "NOT_NULL_VIOLATION",
            ConstraintKind::Check => "CHECK_VIOLATION",
        }
    }
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error(Box::new(Inner {
            kind,
            message: message.into(),
            source: None,
            exhausted: false,
            violation: None,
        }))
    }

    /// An error of `kind` carrying the constraint a write broke: one
    /// rebuilt from its parts (the `remote` feature's answer from another
    /// node).
    #[cfg(feature = "remote")]
    pub(crate) fn with_violation(
        kind: ErrorKind,
        message: String,
        violation: Option<ConstraintViolation>,
    ) -> Error {
        let mut err = Error::new(kind, message);
        err.0.violation = violation;
        err
    }

    pub(crate) fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Error {
        self.0.source = Some(Box::new(source));
        self
    }

    /// The same error, marked as a pool with no room rather than a server
    /// that cannot be reached.
    pub(crate) fn exhausted(mut self) -> Error {
        self.0.exhausted = true;
        self
    }

    /// True when a pool had no room (see [`Error::exhausted`]): not a sign
    /// that its server is down.
    pub(crate) fn is_exhausted(&self) -> bool {
        self.0.exhausted
    }

    /// The same error (message, source, SQLSTATE) as another kind.
    pub(crate) fn reclassified(mut self, kind: ErrorKind) -> Error {
        self.0.kind = kind;
        self
    }

    /// The same error, its message prefixed with where it happened.
    pub(crate) fn prefixed(mut self, prefix: &str) -> Error {
        self.0.message = format!("{prefix}: {}", self.0.message);
        self
    }

    /// An [`ErrorKind::InvalidInput`] error with the given message.
    pub fn invalid_input(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidInput, message)
    }

    pub(crate) fn not_found(model: &str) -> Error {
        Error::new(ErrorKind::NotFound, format!("{model} not found"))
    }

    pub(crate) fn config(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Config, message)
    }

    pub(crate) fn decode(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Decode, message)
    }

    pub(crate) fn unavailable(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Unavailable, message)
    }

    pub(crate) fn closed(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Closed, message)
    }

    /// The answer to a message the adapter's actors will not run: it is
    /// shut down (or shutting down); `what` names what was not delivered.
    pub(crate) fn shut_down(what: &str) -> Error {
        Error::closed(format!("the adapter is shut down ({what} not delivered)"))
    }

    /// A field the model does not declare.
    pub(crate) fn unknown_field(model: &str, field: &str) -> Error {
        Error::invalid_input(format!(
            "model \"{model}\" has no field {}",
            quoted_name(field)
        ))
    }

    /// A statement past its client-side deadline whose end was not seen:
    /// a write's outcome is unknown, a read timed out; `what_then` says
    /// what became of it.
    /// A statement past its query timeout whose cancel the server
    /// confirmed: it did not complete.
    pub(crate) fn cancelled_past(limit: Duration) -> Error {
        Error::new(
            ErrorKind::Timeout,
            format!("the statement ran past the {limit:?} query timeout and was cancelled on the server"),
        )
    }

    pub(crate) fn overran(limit: Duration, write: bool, what_then: &str) -> Error {
        if write {
            Error::new(
                ErrorKind::OutcomeUnknown,
                format!("the write ran past the {limit:?} query timeout and {what_then}; it may or may not have been applied"),
            )
        } else {
            Error::new(
                ErrorKind::Timeout,
                format!("the statement ran past the {limit:?} query timeout and {what_then}"),
            )
        }
    }

    /// The answer to a caller whose transaction's actor stopped before the
    /// statement ended: nothing of the transaction was committed.
    pub(crate) fn tx_stopped_while_answering() -> Error {
        Error::new(
            ErrorKind::TxAborted,
            "the transaction stopped while answering and was rolled back",
        )
    }

    /// The answer to a commit whose transaction's actor stopped after it
    /// sent COMMIT.
    pub(crate) fn tx_in_doubt() -> Error {
        Error::new(
            ErrorKind::OutcomeUnknown,
            "the transaction stopped while committing; the commit may or may not have happened",
        )
    }

    /// The answer to a message for a transaction that has ended.
    pub(crate) fn tx_closed() -> Error {
        Error::new(ErrorKind::TxClosed, "the transaction is finished")
    }

    /// The answer to a statement of a transaction that failed earlier.
    pub(crate) fn tx_aborted(reason: &str) -> Error {
        Error::new(
            ErrorKind::TxAborted,
            format!("the transaction cannot continue: {reason}"),
        )
    }

    /// The answer to a message that finds the transaction gone: a statement
    /// of it never ended, and its connection was closed with it.
    pub(crate) fn tx_lost() -> Error {
        Error::tx_aborted("a statement of it never ended, and its connection was closed")
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The constraint a write broke, if this is a constraint error.
    pub fn constraint(&self) -> Option<&ConstraintViolation> {
        self.0.violation.as_ref()
    }

    /// The HTTP status a web layer should answer with.
    pub fn http_status(&self) -> u16 {
        match &self.0.kind {
            ErrorKind::NotFound => 404,
            ErrorKind::Constraint(ConstraintKind::Unique) => 409,
            ErrorKind::Constraint(_) => 422,
            ErrorKind::Conflict => 409,
            ErrorKind::Timeout => 504,
            ErrorKind::InvalidInput => 400,
            ErrorKind::Unavailable | ErrorKind::Closed => 503,
            ErrorKind::OutcomeUnknown
            | ErrorKind::Decode
            | ErrorKind::Config
            | ErrorKind::Database
            | ErrorKind::TxAborted
            | ErrorKind::TxClosed => 500,
        }
    }

    /// A stable, upper-case code string for API responses and metrics.
    pub fn code(&self) -> &'static str {
        match &self.0.kind {
            ErrorKind::NotFound => "NOT_FOUND",
            ErrorKind::Constraint(kind) => kind.code(),
            ErrorKind::Conflict => "CONFLICT",
            ErrorKind::Timeout => "TIMEOUT",
            ErrorKind::InvalidInput => "INVALID_INPUT",
            ErrorKind::Unavailable => "UNAVAILABLE",
            ErrorKind::OutcomeUnknown => "OUTCOME_UNKNOWN",
            ErrorKind::Decode => "DECODE",
            ErrorKind::Config => "CONFIG",
            ErrorKind::Database => "DATABASE",
            ErrorKind::Closed => "CLOSED",
            ErrorKind::TxAborted => "TX_ABORTED",
            ErrorKind::TxClosed => "TX_CLOSED",
        }
    }

    /// The server's SQLSTATE, when the error came from the server.
    pub fn sqlstate(&self) -> Option<&SqlState> {
        self.db_error().map(|db| db.code())
    }

    /// True for errors where nothing was applied and running the work
    /// again (a whole transaction) may succeed: an [`ErrorKind::Conflict`]
    /// that is the server's serialization failure or deadlock (SQLSTATE
    /// 40001, 40P01), and [`ErrorKind::Unavailable`] (no connection, or the
    /// connection lost before anything was committed). Not a `Conflict`
    /// the data decided (an increment whose guard failed: running it again
    /// finds the same row), never [`ErrorKind::OutcomeUnknown`]. What
    /// [`crate::RetryPolicy`] re-runs.
    pub fn is_retryable(&self) -> bool {
        match self.0.kind {
            ErrorKind::Conflict => self.sqlstate().is_some_and(|code| {
                matches!(
                    *code,
                    SqlState::T_R_SERIALIZATION_FAILURE | SqlState::T_R_DEADLOCK_DETECTED
                )
            }),
            ErrorKind::Unavailable => true,
            _ => false,
        }
    }

    /// True when the server answered "canceling statement due to user
    /// request": a CancelRequest of ours was consumed by this statement.
    pub(crate) fn is_user_cancel(&self) -> bool {
        self.db_error().is_some_and(|db| {
            db.code() == &SqlState::QUERY_CANCELED && db.message().contains("user request")
        })
    }

    /// True for SQLSTATE 25006: the connection's server takes no writes
    /// (after a failover, a demoted primary). Such a connection is not reused.
    pub(crate) fn is_read_only_server(&self) -> bool {
        self.sqlstate() == Some(&SqlState::READ_ONLY_SQL_TRANSACTION)
    }

    /// True when the server ended the session with this error (a
    /// terminated backend, a shutdown): the connection closes right after,
    /// so it must not go back to the pool, where the next checkout could
    /// take it before the driver has seen it close.
    pub(crate) fn ended_session(&self) -> bool {
        self.sqlstate().is_some_and(ends_session)
    }

    /// True when the server sent this error: the statement reached it (and,
    /// inside a transaction, aborted it).
    pub(crate) fn is_server_error(&self) -> bool {
        self.db_error().is_some()
    }

    fn db_error(&self) -> Option<&tokio_postgres::error::DbError> {
        let source = self.0.source.as_deref()?;
        match source.downcast_ref::<ServerError>() {
            Some(server) => server.db(),
            None => source
                .downcast_ref::<tokio_postgres::Error>()
                .and_then(|e| e.as_db_error()),
        }
    }

    /// Map a driver error from a statement that had been sent to the server.
    ///
    /// `write` says whether the statement could have changed data: a broken
    /// connection then means the outcome is unknown rather than "unavailable".
    pub(crate) fn from_statement(err: tokio_postgres::Error, write: bool) -> Error {
        let Some(db) = err.as_db_error() else {
            let (kind, what) = if write {
                (
                    ErrorKind::OutcomeUnknown,
                    "connection lost during a write; it may or may not have been applied",
                )
            } else {
                (ErrorKind::Unavailable, "connection lost during the query")
            };
            return Error::new(kind, format!("{what}: {}", describe(&err))).with_source(err);
        };
        let code = db.code();
        let violation = constraint_kind(code)
            .filter(|_| !(write && ends_session(code)))
            .map(|kind| ConstraintViolation {
                kind,
                table: db.table().map(str::to_owned),
                columns: constraint_columns(db.column(), db.detail()),
                constraint: db.constraint().map(str::to_owned),
                detail: db.detail().map(str::to_owned),
            });
        let (kind, message) = match &violation {
            // The server ended the session while the write ran: whether it
            // committed cannot be known from here.
            _ if write && ends_session(code) => (
                ErrorKind::OutcomeUnknown,
                format!("{} (SQLSTATE {})", db.message(), code.code()),
            ),
            Some(v) => (
                ErrorKind::Constraint(v.kind),
                format!(
                    "{} on {}{}{}",
                    v.kind.code().to_ascii_lowercase().replace('_', " "),
                    v.table.as_deref().unwrap_or("?"),
                    if v.columns.is_empty() {
                        ""
                    } else {
                        " columns "
                    },
                    v.columns.join(", ")
                ),
            ),
            None => (
                kind_of_sqlstate(code),
                format!("{} (SQLSTATE {})", db.message(), code.code()),
            ),
        };
        let mut err = Error::new(kind, message).with_source(ServerError(err));
        err.0.violation = violation;
        err
    }
}

fn constraint_kind(code: &SqlState) -> Option<ConstraintKind> {
    Some(match *code {
        SqlState::UNIQUE_VIOLATION => ConstraintKind::Unique,
        SqlState::FOREIGN_KEY_VIOLATION => ConstraintKind::ForeignKey,
        SqlState::NOT_NULL_VIOLATION => ConstraintKind::NotNull,
        SqlState::CHECK_VIOLATION => ConstraintKind::Check,
        _ => return None,
    })
}

/// An error with its whole cause chain ("error connecting to server:
/// Connection refused"): the driver's own `Display` names only the first
/// link ("db error"). A cause whose text is already shown (OpenSSL's errors
/// repeat their source's) is not repeated. Driver errors never carry the
/// DSN's password.
pub(crate) fn describe(err: &(dyn StdError + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(next) = cause {
        let next_text = next.to_string().replace('\n', " ");
        if !text.contains(&next_text) {
            text.push_str(": ");
            text.push_str(&next_text);
        }
        cause = next.source();
    }
    text
}

/// A value from the caller's configuration, for an error message that
/// must say which value is wrong without showing it: at most its first
/// three characters (never more than half of it), then its length, e.g.
/// `"ver…" (11 bytes)`. Such a value may be part of a password that a
/// malformed DSN put in the wrong place.
pub(crate) fn redacted(value: &str) -> String {
    let shown = value.chars().count().min(6) / 2;
    let prefix: String = value.chars().take(shown).collect();
    format!("\"{prefix}…\" ({} bytes)", value.len())
}

/// A name the caller passed (a model, a field, an identifier), quoted for
/// an error message: whole up to 64 bytes, else its first 60 bytes (to a
/// character boundary) and its length, so a name of any size (caller input,
/// maybe an end user's) makes a message of bounded size.
pub(crate) fn quoted_name(name: &str) -> String {
    if name.len() <= 64 {
        return format!("{name:?}");
    }
    let mut end = 60;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}… ({} bytes)", &name[..end], name.len())
}

/// SQLSTATEs with which the server ends the session (admin or crash
/// shutdown, a terminated backend, connection exceptions).
fn ends_session(code: &SqlState) -> bool {
    matches!(code.code(), "57P01" | "57P02" | "57P03") || code.code().starts_with("08")
}

fn kind_of_sqlstate(code: &SqlState) -> ErrorKind {
    match code.code() {
        "40001" | "40P01" => ErrorKind::Conflict,
        // query_canceled is what statement_timeout raises; lock_not_available is lock_timeout's.
        "57014" | "55P03" => ErrorKind::Timeout,
        // admin shutdown, crash shutdown, cannot connect now, too many
        // connections; read_only_sql_transaction: a write reached a server
        // that takes no writes (a demoted primary, a replica): not applied.
        "57P01" | "57P02" | "57P03" | "53300" | "25006" => ErrorKind::Unavailable,
        c if c.starts_with("08") => ErrorKind::Unavailable,
        // data exceptions: the value was wrong for the column.
        c if c.starts_with("22") => ErrorKind::InvalidInput,
        _ => ErrorKind::Database,
    }
}

/// The constrained columns: the server's column field (not-null), else the
/// `Key (a, b)=(…)` list of the detail line (unique, foreign key).
fn constraint_columns(column: Option<&str>, detail: Option<&str>) -> Vec<String> {
    if let Some(column) = column {
        return vec![column.to_owned()];
    }
    let Some(rest) = detail.and_then(|d| d.strip_prefix("Key (")) else {
        return Vec::new();
    };
    let Some(end) = rest.find(")=(") else {
        return Vec::new();
    };
    rest[..end]
        .split(", ")
        .map(|c| c.trim_matches('"').to_owned())
        .collect()
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.0.kind)
            .field("message", &self.0.message)
            .field("sqlstate", &self.sqlstate().map(SqlState::code))
            .finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_unique_detail_names_every_column() {
        let cols = constraint_columns(None, Some("Key (tenant, sku)=(1, A-1) already exists."));
        assert_eq!(cols, vec!["tenant", "sku"]);
    }

    #[test]
    fn redacted_values_show_at_most_three_characters_and_half_the_value() {
        assert_eq!(redacted("verify-fool"), "\"ver…\" (11 bytes)");
        assert_eq!(redacted("abcd"), "\"ab…\" (4 bytes)");
        assert_eq!(redacted("x"), "\"…\" (1 bytes)");
        assert_eq!(redacted(""), "\"…\" (0 bytes)");
        assert_eq!(redacted("éèê"), "\"é…\" (6 bytes)");
    }

    #[test]
    fn long_names_are_quoted_in_part() {
        assert_eq!(quoted_name("sku"), "\"sku\"");
        let long = "é".repeat(40);
        assert_eq!(
            quoted_name(&long),
            format!("{:?}… (80 bytes)", "é".repeat(30))
        );
    }

    #[test]
    fn not_null_uses_the_column_field() {
        assert_eq!(constraint_columns(Some("qty"), None), vec!["qty"]);
    }

    #[test]
    fn statuses_follow_the_documented_table() {
        let cases = [
            (ErrorKind::NotFound, 404, "NOT_FOUND"),
            (
                ErrorKind::Constraint(ConstraintKind::Unique),
                409,
                "UNIQUE_VIOLATION",
            ),
            (
                ErrorKind::Constraint(ConstraintKind::Check),
                422,
                "CHECK_VIOLATION",
            ),
            (ErrorKind::Conflict, 409, "CONFLICT"),
            (ErrorKind::Timeout, 504, "TIMEOUT"),
            (ErrorKind::InvalidInput, 400, "INVALID_INPUT"),
            (ErrorKind::Unavailable, 503, "UNAVAILABLE"),
            (ErrorKind::Database, 500, "DATABASE"),
        ];
        for (kind, status, code) in cases {
            let err = Error::new(kind, "x");
            assert_eq!((err.http_status(), err.code()), (status, code));
        }
    }

    #[test]
    fn only_the_servers_conflicts_and_unavailability_are_retried() {
        assert!(!Error::new(ErrorKind::Conflict, "a guard failed").is_retryable());
        assert!(Error::new(ErrorKind::Unavailable, "no connection").is_retryable());
        assert!(!Error::new(ErrorKind::OutcomeUnknown, "lost").is_retryable());
    }

    #[test]
    fn sqlstates_map_to_kinds() {
        assert_eq!(
            kind_of_sqlstate(&SqlState::T_R_SERIALIZATION_FAILURE),
            ErrorKind::Conflict
        );
        assert_eq!(
            kind_of_sqlstate(&SqlState::T_R_DEADLOCK_DETECTED),
            ErrorKind::Conflict
        );
        assert_eq!(
            kind_of_sqlstate(&SqlState::QUERY_CANCELED),
            ErrorKind::Timeout
        );
        assert_eq!(
            kind_of_sqlstate(&SqlState::LOCK_NOT_AVAILABLE),
            ErrorKind::Timeout
        );
        assert_eq!(
            kind_of_sqlstate(&SqlState::ADMIN_SHUTDOWN),
            ErrorKind::Unavailable
        );
        assert_eq!(
            kind_of_sqlstate(&SqlState::UNDEFINED_TABLE),
            ErrorKind::Database
        );
    }
}
