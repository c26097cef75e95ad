//! Transaction pooling ([`PoolerMode::Transaction`]): no session state, the
//! settings that matter applied inside every transaction, and the check at
//! open of what statements outside transactions run with.
//!
//! Behind PgBouncer in `pool_mode = transaction`, one client connection's
//! transactions (and autocommit statements) run on whichever server session
//! is free. A session `SET` stays on the server session that ran it and
//! reaches the next client there, while our next statement may run on
//! another one. So in this mode nothing is set on the session:
//!
//! - each transaction sets its own settings with `SET LOCAL`, in the same
//!   simple-query message as its `BEGIN`: one round trip, and they end with
//!   the transaction;
//! - a statement outside a transaction runs with the server's defaults for
//!   the role; [`check_server_defaults`] compares them with the configuration
//!   at open and logs a warning for each that differs.

use std::borrow::Cow;

use tokio_postgres::Client;

use super::session::{read_settings, session_values, MANAGED_SETTINGS};
use crate::config::{PoolerMode, Role, SessionSettings};
use crate::error::{describe, Error, Result};
use crate::schema::{push_ident, push_literal, quote_ident};

/// What a transaction sets locally in pooler mode: the settings that act
/// inside a transaction and reach the server no other way.
///
/// The rest of [`MANAGED_SETTINGS`] need nothing: `application_name` travels
/// in the startup packet (PgBouncer restores it on the server session for
/// each client), every statement the adapter sends names its schema (a
/// transaction also sets `search_path` locally, for raw SQL; raw SQL
/// outside one finds tables by the role's `search_path`), and `BEGIN` says
/// `READ WRITE` or `READ ONLY`.
pub(crate) const TRANSACTION_SETTINGS: [&str; 4] = [
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "TimeZone",
];

/// [`TRANSACTION_SETTINGS`] and `search_path` as `SET LOCAL` statements,
/// for the rest of the transaction they run in: the adapter's statements
/// name their schema, but raw SQL in a transaction ([`crate::Tx::query`])
/// finds its tables by `search_path`. Names are fixed; values are quoted
/// literals (a time zone with a quote or a backslash in it stays one
/// literal), the schema a quoted identifier.
fn set_local_sql(session: &SessionSettings) -> String {
    let mut sql = String::new();
    for (name, value) in MANAGED_SETTINGS
        .into_iter()
        .zip(session_values(Role::Write, session))
        .filter(|(name, _)| TRANSACTION_SETTINGS.contains(name) || *name == "search_path")
    {
        if !sql.is_empty() {
            sql.push_str("; ");
        }
        sql.push_str("SET LOCAL ");
        push_ident(&mut sql, name);
        sql.push_str(" = ");
        // A quoted string would be one schema name, quotes and all.
        match name {
            "search_path" => push_ident(&mut sql, &session.schema),
            _ => push_literal(&mut sql, &value),
        }
    }
    sql
}

/// In pooler mode, set the transaction's settings on `client`, which must
/// have just begun a transaction (AutoMigrate's); nothing in direct mode,
/// where the session has them.
pub(crate) async fn in_transaction(
    client: &Client,
    session: &SessionSettings,
) -> Result<(), tokio_postgres::Error> {
    match session.pooler {
        PoolerMode::Direct => Ok(()),
        PoolerMode::Transaction => client.batch_execute(&set_local_sql(session)).await,
    }
}

/// What starts a transaction: `begin_sql`, and in pooler mode the
/// transaction's settings behind it in the same simple-query message, which
/// the server runs in order inside the new transaction: one message, one
/// round trip, no statement to parse and plan. Sent with
/// `batch_execute`; if it fails the caller discards the connection.
pub(crate) fn begin_sql(begin_sql: &'static str, session: &SessionSettings) -> Cow<'static, str> {
    match session.pooler {
        PoolerMode::Direct => Cow::Borrowed(begin_sql),
        PoolerMode::Transaction => format!("{begin_sql}; {}", set_local_sql(session)).into(),
    }
}

/// Pooler mode, at open, on a connection of the pool of `role`: compare
/// what statements outside transactions run with (the server's defaults for
/// the role, or whatever the pooler's server session carries) with the
/// configuration, and log one warning per setting that differs, naming the
/// `ALTER ROLE` that fixes it. Also checks, in a transaction rolled back at
/// once, that the server accepts the transaction settings (a refused value
/// fails the open with [`crate::ErrorKind::Config`], as in direct mode).
///
/// `read_only` is what `transaction_read_only` should be: `Some(true)` for
/// a read pool with a read DSN of its own, `Some(false)` for the write pool.
///
/// It warns rather than fails: role defaults belong to the operator, they
/// only lack on statements outside transactions (transactions carry their
/// own), and a server session another client polluted with a leaked `SET`
/// must not stop a deploy.
pub(crate) async fn check_server_defaults(
    client: &Client,
    role: Role,
    session: &SessionSettings,
    read_only: Option<bool>,
) -> Result<()> {
    let mut names = TRANSACTION_SETTINGS.to_vec();
    names.extend(["transaction_read_only", "session_authorization"]);
    let server = read_settings(client, &names).await?;
    let get = |name: &str| {
        server
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    };

    // The configured values as the server spells them (`30s`, `UTC`).
    let begin = begin_sql("BEGIN", session);
    client.batch_execute(&begin).await.map_err(|e| {
        if e.as_db_error().is_some() {
            Error::config(format!(
                "{role} pool: the server refused the transaction settings: {}",
                describe(&e)
            ))
            .with_source(e)
        } else {
            Error::from_statement(e, false)
        }
    })?;
    let wanted = read_settings(client, &TRANSACTION_SETTINGS).await;
    let rolled_back = client.batch_execute("ROLLBACK").await;
    let mut wanted = wanted?;
    rolled_back.map_err(|e| Error::from_statement(e, false))?;
    if let Some(read_only) = read_only {
        let on = if read_only { "on" } else { "off" };
        wanted.push(("transaction_read_only".into(), on.into()));
    }

    let user = quote_ident(get("session_authorization"));
    for (name, want) in &wanted {
        let found = get(name);
        if found.eq_ignore_ascii_case(want) {
            continue;
        }
        // The role default behind transaction_read_only is default_transaction_read_only.
        let (setting, value) = match name.as_str() {
            "transaction_read_only" => ("default_transaction_read_only", want.clone()),
            _ => (name.as_str(), format!("'{want}'")),
        };
        tracing::warn!(
            target: "pgactor",
            pool = %role,
            setting = %name,
            server = %found,
            configured = %want,
            "pooler mode: statements outside transactions run with {name} = {found}, not {want}; \
             make it the role's default: ALTER ROLE {user} SET {setting} = {value}"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SessionConfig;

    #[test]
    fn pooler_mode_begins_with_the_transaction_settings_in_the_same_message() {
        let mut session = SessionConfig::default().resolve().unwrap();
        let begin = |session: &SessionSettings| {
            begin_sql("BEGIN ISOLATION LEVEL SERIALIZABLE READ WRITE", session)
        };
        assert_eq!(
            begin(&session),
            "BEGIN ISOLATION LEVEL SERIALIZABLE READ WRITE"
        );
        session.pooler = PoolerMode::Transaction;
        session.time_zone = "Asia/Kathmandu".into();
        assert_eq!(
            begin(&session),
            "BEGIN ISOLATION LEVEL SERIALIZABLE READ WRITE; \
             SET LOCAL \"statement_timeout\" = '30000ms'; \
             SET LOCAL \"lock_timeout\" = '5000ms'; \
             SET LOCAL \"idle_in_transaction_session_timeout\" = '60000ms'; \
             SET LOCAL \"TimeZone\" = 'Asia/Kathmandu'; \
             SET LOCAL \"search_path\" = \"public\""
        );
    }
}
