//! Tracing spans with the OpenTelemetry database conventions' fields: one
//! per operation, one per transaction around its operations; the
//! slow-operation event; and each operation's duration for the `metrics`
//! feature.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use smol_str::SmolStr;
use tracing::field::Empty;
use tracing::{Id, Span};

use crate::error::{Error, Result};

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

/// Default threshold of the slow-operation event
/// ([`crate::OpenOptions::slow_operation`]).
pub const DEFAULT_SLOW_OPERATION: Duration = Duration::from_secs(1);

/// What every operation's telemetry says besides the operation itself,
/// the same for both pools: set at open.
#[derive(Debug, Clone, Default)]
pub(crate) struct Observed {
    /// `db.namespace`: `{database}|{schema}`.
    pub(crate) namespace: Arc<str>,
    /// The slow-operation event's threshold; `None`: no event.
    pub(crate) slow: Option<Duration>,
}

impl Observed {
    /// `database` (the DSN's) and `schema` (the session's), as the
    /// OpenTelemetry conventions for PostgreSQL join them.
    pub(crate) fn new(database: &str, schema: &str, slow: Option<Duration>) -> Observed {
        Observed {
            namespace: format!("{database}|{schema}").into(),
            slow,
        }
    }
}

/// The server a pool's connections reach: `server.address` (the DSN's
/// hosts, comma-separated when several) and `server.port` (when one).
#[derive(Debug, Clone, Default)]
pub(crate) struct Server {
    pub(crate) address: Arc<str>,
    pub(crate) port: Option<u16>,
}

impl Server {
    /// The server of `config`'s hosts and ports.
    pub(crate) fn of(config: &tokio_postgres::Config) -> Server {
        use tokio_postgres::config::Host;
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .map(|host| match host {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            })
            .collect();
        Server {
            address: hosts.join(",").into(),
            port: match config.get_ports() {
                [port] if hosts.len() <= 1 => Some(*port),
                _ => None,
            },
        }
    }
}

/// One operation under way: its span, and what its end reports besides
/// (the slow-operation event; with the `metrics` feature, its duration).
pub(crate) struct Operation {
    pub(crate) span: Span,
    name: &'static str,
    table: SmolStr,
    role: &'static str,
    /// Whether its end is recorded on `span` (an operation's own span),
    /// or only timed in it (a transaction's span, whose outcome is the
    /// transaction's).
    records: bool,
    started: Instant,
    slow: Option<Duration>,
    #[cfg(feature = "metrics")]
    namespace: Arc<str>,
}

impl Operation {
    /// Start operation `name` on `model`'s table in a span of its own.
    /// `role` is `read`, `write` or `tx`; `parent` is the caller's span (a
    /// `Db` method's caller, a `DbMsg`'s `Call`), the transaction's, or
    /// `None` (a root span).
    pub(crate) fn start(
        parent: Option<Id>,
        name: &'static str,
        role: &'static str,
        model: &str,
        observed: &Observed,
    ) -> Operation {
        let table = bounded(model, MAX_MODEL_FIELD);
        let span = tracing::info_span!(
            target: "pgactor.query",
            parent: parent,
            "db",
            db.system.name = SYSTEM,
            db.namespace = &*observed.namespace,
            db.operation.name = name,
            db.collection.name = Empty,
            server.address = Empty,
            server.port = Empty,
            pgactor.role = role,
            db.response.returned_rows = Empty,
            pgactor.outcome = Empty,
            error.type = Empty,
            db.response.status_code = Empty,
        );
        if !table.is_empty() {
            span.record("db.collection.name", table);
        }
        Operation {
            role,
            records: true,
            ..Operation::within(span, name, table, observed)
        }
    }

    /// Operation `name` of a transaction itself (`begin`, `commit`,
    /// `rollback`): timed, its slow-operation event in the transaction's
    /// `span`, its outcome left to the caller to record there.
    pub(crate) fn within(
        span: Span,
        name: &'static str,
        model: &str,
        observed: &Observed,
    ) -> Operation {
        Operation {
            span,
            name,
            table: SmolStr::new(model),
            role: "tx",
            records: false,
            started: Instant::now(),
            slow: observed.slow,
            #[cfg(feature = "metrics")]
            namespace: observed.namespace.clone(),
        }
    }

    /// Name the server the operation runs on.
    pub(crate) fn runs_on(&self, server: &Server) {
        self.span.record("server.address", &*server.address);
        if let Some(port) = server.port {
            self.span.record("server.port", port);
        }
    }

    /// Record how the operation ended, with `statement`, its SQL text (the
    /// first statement of several): on its own span, and its duration (in the
    /// slow-operation event past the threshold; with the `metrics`
    /// feature, in the histogram). The answer goes on unchanged.
    pub(crate) fn end<T>(
        &self,
        result: Result<T>,
        rows: impl FnOnce(&T) -> u64,
        statement: &str,
    ) -> Result<T> {
        if self.records {
            record(&self.span, &result, rows);
        }
        let took = self.started.elapsed();
        if self.slow.is_some_and(|slow| took >= slow) {
            tracing::event!(
                target: "pgactor.slow",
                parent: &self.span,
                tracing::Level::WARN,
                {
                    db.system.name = SYSTEM,
                    db.operation.name = self.name,
                    db.collection.name = (!self.table.is_empty()).then_some(self.table.as_str()),
                    pgactor.role = self.role,
                    db.query.text = bounded(statement, MAX_STATEMENT_FIELD),
                    pgactor.duration_ms = took.as_millis() as u64,
                    error.type = result.as_ref().err().map(Error::code),
                },
                "slow operation"
            );
        }
        #[cfg(feature = "metrics")]
        crate::meter::operation(
            self.name,
            &self.table,
            self.role,
            &self.namespace,
            took,
            result.as_ref().err(),
        );
        result
    }
}

/// `db.system.name` of every span.
const SYSTEM: &str = "postgresql";

/// Most bytes of a model name in a span: every registered name is an
/// identifier of at most 63.
const MAX_MODEL_FIELD: usize = 64;

/// Most bytes of a statement's text in the slow-operation event.
pub(crate) const MAX_STATEMENT_FIELD: usize = 2048;

/// `text` as a field: whole up to `max` bytes, else its first `max - 4`
/// (at a character boundary), so a caller passing anything as a model name,
/// or a statement of thousands of terms, cannot put it all in the logs.
fn bounded(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max - 4;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The span of one transaction, from BEGIN to its end.
pub(crate) fn transaction(
    parent: Option<Id>,
    isolation: &'static str,
    read_only: bool,
    observed: &Observed,
) -> Span {
    tracing::info_span!(
        target: "pgactor.tx",
        parent: parent,
        "tx",
        db.system.name = SYSTEM,
        db.namespace = &*observed.namespace,
        server.address = Empty,
        server.port = Empty,
        pgactor.tx.isolation = isolation,
        pgactor.tx.read_only = read_only,
        pgactor.outcome = Empty,
        error.type = Empty,
        db.response.status_code = Empty,
    )
}

/// Record on `span` how an operation ended, and how many rows it answered.
pub(crate) fn record<T>(span: &Span, result: &Result<T>, rows: impl FnOnce(&T) -> u64) {
    match result {
        Ok(value) => {
            span.record("pgactor.outcome", "ok");
            span.record("db.response.returned_rows", rows(value));
        }
        Err(err) => {
            span.record("pgactor.outcome", "error");
            span.record("error.type", err.code());
            if let Some(state) = err.sqlstate() {
                span.record("db.response.status_code", state.code());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_field_is_cut_at_a_character_boundary_below_its_bound() {
        assert_eq!(bounded("StockBalance", MAX_MODEL_FIELD), "StockBalance");
        let long = "é".repeat(MAX_STATEMENT_FIELD);
        let cut = bounded(&long, MAX_STATEMENT_FIELD);
        assert!(cut.len() <= MAX_STATEMENT_FIELD - 4, "{}", cut.len());
        assert!(cut.len() >= MAX_STATEMENT_FIELD - 5);
        assert!(long.starts_with(cut));
    }

    #[test]
    fn the_namespace_joins_database_and_schema_and_the_server_names_its_hosts() {
        assert_eq!(
            &*Observed::new("shop", "orders", None).namespace,
            "shop|orders"
        );
        let one: tokio_postgres::Config = "host=db port=5433".parse().unwrap();
        let server = Server::of(&one);
        assert_eq!((&*server.address, server.port), ("db", Some(5433)));
        let two: tokio_postgres::Config = "host=a,b port=5432".parse().unwrap();
        let server = Server::of(&two);
        assert_eq!((&*server.address, server.port), ("a,b", None));
    }
}
