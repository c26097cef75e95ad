//! Routing: `read` and `list` run on the read pool, `create`, `update` and
//! `delete` on the write pool.
//!
//! Observed from outside the adapter:
//! - with two databases as the two DSNs, by which database holds (or
//!   answers) a row;
//! - with the real replica, by `pg_is_in_recovery()`, by the last statement
//!   of each adapter session in `pg_stat_activity` (sessions found by a
//!   unique `application_name`), and by `pg_stat_statements` on the primary
//!   (a read that never reached the primary left no statement there).
//!
use pgactor::{Db, ErrorKind, Query};
use tokio_postgres::Client;
use uuid::Uuid;

use crate::support::db::{
    create_stock, open_split, registry, stock_model, tagged_session, unique_app_name, unique_schema,
};
use crate::support::observer::{observer, sessions_named, statements_mentioning};
use crate::support::topology::{primary_url, replica_url};
use crate::support::wait::read_when_replicated;

/// The `sku`s in `public.stock_balance` of the database `client` is on.
async fn skus(client: &Client) -> Vec<String> {
    client
        .query("SELECT sku FROM public.stock_balance ORDER BY sku", &[])
        .await
        .expect("skus")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// The last statement of every session named `app` on `client`'s server.
async fn last_statements(client: &Client, app: &str) -> Vec<String> {
    let sessions = sessions_named(client, app).await;
    sessions.into_iter().map(|(_, query)| query).collect()
}

async fn in_recovery(client: &Client) -> bool {
    client
        .query_one("SELECT pg_is_in_recovery()", &[])
        .await
        .expect("pg_is_in_recovery")
        .get(0)
}

/// Whether `sql` is the adapter's read of a `StockBalance` in `schema`.
fn is_stock_read(sql: &str, schema: &str) -> bool {
    sql.starts_with("SELECT ") && sql.contains(&format!("FROM \"{schema}\".\"stock_balance\""))
}

/// Open on the primary with `read_dsn`, in a fresh schema, sessions named `app`.
async fn open_named(read_dsn: &str, app: &str) -> (Db, String) {
    let schema = unique_schema("routing");
    let db = pgactor::OpenOptions::new(primary_url())
        .read_dsn(read_dsn)
        .registry(registry([stock_model()]))
        .session(tagged_session(&schema, app))
        .open()
        .await
        .expect("open");
    (db, schema)
}

#[tokio::test]
async fn reads_use_the_read_dsn_and_writes_use_the_write_dsn() {
    let (db, write_db, read_db) = open_split("db").await;
    let (on_write, on_read) = (observer(&write_db.url).await, observer(&read_db.url).await);

    let written = create_stock(&db, "W-1").await;
    assert_eq!(skus(&on_write).await, ["W-1"], "the write went to db_w");
    assert!(skus(&on_read).await.is_empty(), "and not to db_r");

    let only_in_read_db = Uuid::new_v4();
    on_read
        .execute(
            "INSERT INTO public.stock_balance (id, sku) VALUES ($1, 'R-1')",
            &[&only_in_read_db],
        )
        .await
        .unwrap();
    let read = db.read("StockBalance", only_in_read_db).await.unwrap();
    assert_eq!(read.get::<String>("sku").unwrap(), "R-1");
    let page = db.list("StockBalance", Query::new()).await.unwrap();
    let listed: Vec<Uuid> = page.rows.iter().map(|r| r.get("id").unwrap()).collect();
    assert_eq!((page.total, listed), (Some(1), vec![only_in_read_db]));
    let err = db.read("StockBalance", written).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

    db.close().await;
    drop((on_write, on_read));
    write_db.remove().await;
    read_db.remove().await;
}

#[tokio::test]
async fn with_a_replica_as_read_dsn_reads_run_on_the_replica() {
    let app = unique_app_name("routing_replica");
    let (db, schema) = open_named(&replica_url(), &app).await;
    let id = create_stock(&db, "REP-1").await;
    let row = read_when_replicated(&db, "StockBalance", id).await;
    assert_eq!(row.get::<String>("sku").unwrap(), "REP-1");

    let (primary, replica) = (
        observer(&primary_url()).await,
        observer(&replica_url()).await,
    );
    assert!(in_recovery(&replica).await && !in_recovery(&primary).await);
    let on_replica = last_statements(&replica, &app).await;
    assert!(
        on_replica.iter().any(|q| is_stock_read(q, &schema)),
        "a read pool session on the replica ran the read: {on_replica:?}"
    );
    let on_primary = last_statements(&primary, &app).await;
    assert!(
        !on_primary.is_empty(),
        "the write pool's session is on the primary"
    );
    let reads_on_primary: Vec<String> = statements_mentioning(&primary, &schema)
        .await
        .into_iter()
        .filter(|q| is_stock_read(q, &schema))
        .collect();
    assert!(
        reads_on_primary.is_empty(),
        "no read ran on the primary: {reads_on_primary:?}"
    );
    db.close().await;
}

#[tokio::test]
async fn with_an_empty_read_dsn_reads_run_on_the_primary() {
    let app = unique_app_name("routing_primary");
    let (db, schema) = open_named("", &app).await;
    let id = create_stock(&db, "PRI-1").await;
    let row = db.read("StockBalance", id).await.expect("read-your-write");
    assert_eq!(row.get::<String>("sku").unwrap(), "PRI-1");

    let on_primary = last_statements(&observer(&primary_url()).await, &app).await;
    assert!(
        on_primary.len() >= 2,
        "both pools have sessions on the primary: {on_primary:?}"
    );
    assert!(
        on_primary.iter().any(|q| is_stock_read(q, &schema)),
        "the read ran on the primary: {on_primary:?}"
    );
    let on_replica = last_statements(&observer(&replica_url()).await, &app).await;
    assert!(
        on_replica.is_empty(),
        "nothing on the replica: {on_replica:?}"
    );
    db.close().await;
}
