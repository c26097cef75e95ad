//! The session every connection gets: the settings the adapter manages
//! (applied on each new connection before first use), the driver
//! configuration of every connection it opens, reading settings back, and
//! the schema.

use std::time::Duration;

use deadpool_postgres::ClientWrapper;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;

use crate::config::{PoolerMode, Role, SessionSettings, DEFAULT_SCHEMA};
use crate::error::{describe, Error, ErrorKind, Result};
use crate::schema::quote_ident;

use super::dsn::Dsn;

/// The statement that applies the session settings: one round trip, every
/// value bound (never spliced), so no setting can inject SQL.
const APPLY_SESSION: &str = "SELECT set_config('statement_timeout', $1, false), \
     set_config('lock_timeout', $2, false), \
     set_config('idle_in_transaction_session_timeout', $3, false), \
     set_config('TimeZone', $4, false), \
     set_config('application_name', $5, false), \
     set_config('search_path', $6, false), \
     set_config('default_transaction_read_only', $7, false)";

/// The settings the adapter manages on every connection, as `SHOW` names them.
pub(crate) const MANAGED_SETTINGS: [&str; 7] = [
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "TimeZone",
    "application_name",
    "search_path",
    "default_transaction_read_only",
];

/// The value the adapter gives each of [`MANAGED_SETTINGS`] (same order) on
/// a connection of `role`, as `set_config` takes it.
///
/// Read-pool sessions are read-only by default, so a write that reaches the
/// read pool by mistake fails (SQLSTATE 25006) instead of landing on a
/// server that was promoted.
pub(crate) fn session_values(role: Role, session: &SessionSettings) -> [String; 7] {
    let ms = timeout_setting;
    [
        ms(session.statement_timeout),
        ms(session.lock_timeout),
        ms(session.idle_in_transaction_timeout),
        session.time_zone.clone(),
        session.application_name.clone(),
        quote_ident(&session.schema),
        if role == Role::Read { "on" } else { "off" }.to_owned(),
    ]
}

/// `d` as `set_config` takes a timeout: whole milliseconds, rounded up, so
/// a positive timeout however short never becomes 0 (which the server
/// reads as "no timeout").
pub(crate) fn timeout_setting(d: Duration) -> String {
    format!("{}ms", d.as_nanos().div_ceil(1_000_000))
}

/// Apply the session settings on a fresh connection.
///
/// This is the hook point on connection creation: deadpool runs it for
/// every new physical connection before handing it out, and a connection
/// whose settings fail is discarded, never used. In
/// [`PoolerMode::Transaction`] it sends nothing: a session setting would
/// stay on a server session other clients share (see `crate::pooler`).
pub(crate) async fn apply_session(
    client: &ClientWrapper,
    role: Role,
    session: &SessionSettings,
) -> Result<(), tokio_postgres::Error> {
    if session.pooler == PoolerMode::Transaction {
        return Ok(());
    }
    let values = session_values(role, session);
    let params: Vec<_> = values
        .iter()
        .map(|v| (v as &(dyn tokio_postgres::types::ToSql + Sync), Type::TEXT))
        .collect();
    client.query_typed(APPLY_SESSION, &params).await.map(drop)
}

/// The driver configuration of every connection the adapter opens to
/// `dsn`, pooled or not: the DSN's, with the session's `application_name`
/// (visible in pg_stat_activity from the first packet, before any
/// statement) and `connect_timeout` unless the DSN sets one.
pub(crate) fn client_config(
    dsn: &Dsn,
    session: &SessionSettings,
    connect_timeout: Duration,
) -> tokio_postgres::Config {
    let mut config = dsn.config.clone();
    config.application_name(&session.application_name);
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(connect_timeout);
    }
    config
}

/// The settings `names` as in force on `client` now (`current_setting`,
/// e.g. `30s`), name by name; one unnamed statement, safe behind a pooler.
pub(crate) async fn read_settings(
    client: &tokio_postgres::Client,
    names: &[&str],
) -> Result<Vec<(String, String)>> {
    let rows = client
        .query_typed(
            "SELECT n, current_setting(n) FROM unnest($1::text[]) AS n",
            &[(&names, Type::TEXT_ARRAY)],
        )
        .await
        .map_err(|e| Error::from_statement(e, false))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Create the schema when it does not exist; leave an existing one alone, so
/// a role with USAGE but not CREATE on it still connects. `public` is never
/// created.
pub(crate) async fn ensure_schema(client: &tokio_postgres::Client, schema: &str) -> Result<()> {
    if schema == DEFAULT_SCHEMA {
        return Ok(());
    }
    let exists: bool = client
        .query_typed_one(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)",
            &[(&schema, Type::TEXT)],
        )
        .await
        .map_err(|e| Error::from_statement(e, false))?
        .get(0);
    if exists {
        return Ok(());
    }
    // The only identifier that reaches SQL as text; validated at resolve().
    let created = client
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {}",
            quote_ident(schema)
        ))
        .await;
    match created {
        Ok(()) => Ok(()),
        // Another session created it between our check and our CREATE: IF
        // NOT EXISTS does not cover that race (unique_violation on the catalog).
        Err(e)
            if e.code() == Some(&SqlState::UNIQUE_VIOLATION)
                || e.code() == Some(&SqlState::DUPLICATE_SCHEMA) =>
        {
            Ok(())
        }
        Err(e) => {
            let msg = format!("cannot create schema \"{schema}\": {}", describe(&e));
            Err(Error::new(ErrorKind::Config, msg).with_source(e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_positive_timeout_however_short_is_at_least_one_millisecond() {
        let setting = |nanos| timeout_setting(Duration::from_nanos(nanos));
        assert_eq!(setting(0), "0ms");
        assert_eq!(setting(1), "1ms");
        assert_eq!(setting(999), "1ms");
        assert_eq!(setting(1_000_000), "1ms");
        assert_eq!(setting(1_500_000), "2ms");
        assert_eq!(timeout_setting(Duration::from_secs(30)), "30000ms");
    }
}
