//! A plain session outside the adapter, and what it sees of the adapter's
//! work on the server: its sessions (pg_stat_activity), its statements
//! (pg_stat_statements), its schemas, tables and rows.

use super::topology::primary_url;
use super::wait::{eventually, ready};

/// A plain tokio-postgres connection to `url`, outside the adapter, for
/// checking from outside what the adapter did.
pub async fn observer(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("observer connection");
    tokio::spawn(connection);
    client
}

/// Statements completed on the server (pg_stat_statements) whose text
/// contains `needle`: how a test proves that refused input sent no SQL.
pub async fn statements_containing(obs: &tokio_postgres::Client, needle: &str) -> i64 {
    obs.query_one(
        "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements \
         WHERE strpos(query, $1) > 0",
        &[&needle],
    )
    .await
    .expect("pg_stat_statements")
    .get(0)
}

/// Every statement `pg_stat_statements` has seen whose text contains `needle`.
pub async fn statements_mentioning(client: &tokio_postgres::Client, needle: &str) -> Vec<String> {
    client
        .query(
            "SELECT query FROM pg_stat_statements WHERE strpos(query, $1) > 0",
            &[&needle],
        )
        .await
        .expect("pg_stat_statements")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// Every session named `app` on `client`'s server: its backend pid and its
/// last (or current) statement.
pub async fn sessions_named(client: &tokio_postgres::Client, app: &str) -> Vec<(i32, String)> {
    client
        .query(
            "SELECT pid, query FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .await
        .expect("pg_stat_activity")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

/// The state and wait event of every session named `app` on `client`'s
/// server (`active` and `ClientWrite`: it waits for the client to read).
pub async fn session_states(
    client: &tokio_postgres::Client,
    app: &str,
) -> Vec<(String, Option<String>)> {
    client
        .query(
            "SELECT state, wait_event FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .await
        .expect("pg_stat_activity")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

/// The backend pids of every session named `app` on `client`'s server, in order.
pub async fn session_pids(client: &tokio_postgres::Client, app: &str) -> Vec<i32> {
    let mut pids: Vec<i32> = sessions_named(client, app)
        .await
        .iter()
        .map(|s| s.0)
        .collect();
    pids.sort();
    pids
}

/// (pid, start of the last statement) of each session tagged `app`: it
/// changes when any of them runs a statement, even one not counted yet.
pub async fn last_statement_starts(obs: &tokio_postgres::Client, app: &str) -> Vec<(i32, String)> {
    obs.query(
        "SELECT pid, coalesce(query_start::text, '') FROM pg_stat_activity \
         WHERE application_name = $1 ORDER BY pid",
        &[&app],
    )
    .await
    .expect("pg_stat_activity")
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

/// Wait until the primary shows no session named `app` (bounded).
pub async fn no_session_left(app: &str) {
    let admin = observer(&primary_url()).await;
    eventually("no session of the adapter is left", || async {
        let left = session_pids(&admin, app).await;
        ready(left.is_empty(), left)
    })
    .await;
}

/// Whether a schema named `schema` exists (compared as text: a name past
/// PostgreSQL's 63 bytes is not an error, it just exists nowhere).
pub async fn schema_exists(client: &tokio_postgres::Client, schema: &str) -> bool {
    client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname::text = $1)",
            &[&schema],
        )
        .await
        .expect("pg_namespace")
        .get(0)
}

/// A table `canary` in `schema` (created too if missing), which no input
/// given to the adapter may drop: see [`tables_in`].
pub async fn canary_table(obs: &tokio_postgres::Client, schema: &str) {
    obs.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS \"{schema}\"; CREATE TABLE \"{schema}\".canary (x int)"
    ))
    .await
    .expect("canary");
}

/// The tables of `schema`, sorted.
pub async fn tables_in(obs: &tokio_postgres::Client, schema: &str) -> Vec<String> {
    obs.query(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = $1 ORDER BY 1",
        &[&schema],
    )
    .await
    .expect("pg_tables")
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// How many rows `schema`.`table` holds.
pub async fn rows_in(client: &tokio_postgres::Client, schema: &str, table: &str) -> i64 {
    let sql = format!("SELECT count(*) FROM \"{schema}\".{table}");
    client.query_one(&sql, &[]).await.expect(&sql).get(0)
}
