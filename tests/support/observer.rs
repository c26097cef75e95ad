//! A plain session outside the adapter, and what it sees of the adapter's
//! work on the server: its sessions (pg_stat_activity), its statements
//! (pg_stat_statements) and the tables in its schema.

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
        let n: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                &[&app],
            )
            .await
            .unwrap()
            .get(0);
        ready(n == 0, ())
    })
    .await;
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
