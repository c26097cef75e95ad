//! pgactor end to end: declare a model, open the adapter, write, read back
//! through the replica, list, a raw SQL aggregate, update and delete,
//! printing each step.
//!
//! With `DATABASE_URL` set (and optionally `DATABASE_READ_URL`, a replica) it
//! works there, in a fresh schema it drops at the end. Otherwise it starts a
//! throwaway primary + streaming replica with `scripts/cluster.sh` and always
//! tears it down again (`examples/support/cluster.rs`, shared with the other
//! examples). `RUST_LOG` sets the library's log level (default info).

#[path = "support/cluster.rs"]
mod cluster;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use cluster::{BoxError, Target};
use pgactor::{
    Db, ErrorKind, Field, FieldType, Filter, Index, Model, Query, Record, Registry, Sql,
};
use serde::Deserialize;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

/// The seed's stock example.
fn stock_balance() -> Model {
    Model::new("StockBalance")
        .field(Field::new("sku", FieldType::Text).unique())
        .field(Field::new("quantity", FieldType::I64).default_value(0_i64))
        .field(Field::new("note", FieldType::Text).nullable())
        .index(Index::on(["quantity"]))
}

/// A row as a plain struct; `Record::to_serde` skips the columns it lacks.
#[derive(Debug, Deserialize)]
struct StockBalance {
    sku: String,
    quantity: i64,
    note: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    cluster::main("quickstart", registry, run).await
}

fn registry() -> pgactor::Result<Registry> {
    let mut registry = Registry::new();
    registry.register(stock_balance())?;
    Ok(registry)
}

async fn run(db: Db, target: Target) -> Result<(), BoxError> {
    let schema = &db.session().schema;
    println!("opened; AutoMigrate created table stock_balance in schema {schema}");
    steps(&db, !target.read.trim().is_empty()).await
}

async fn steps(db: &Db, replica: bool) -> Result<(), BoxError> {
    let again = db.migrate().await?.statements.len();
    println!("AutoMigrate again: {again} statements (nothing to do)");

    let mut ids = Vec::new();
    for (sku, quantity) in [("A-1", Some(5_i64)), ("B-2", None), ("C-3", Some(12))] {
        let mut record = Record::new().with("sku", sku);
        if let Some(quantity) = quantity {
            record.set("quantity", quantity); // B-2 leaves it out: default 0
        }
        let row = db.create("StockBalance", record).await?;
        let id: Uuid = row.get("id")?; // a UUIDv7 the adapter generated
        let quantity: i64 = row.get("quantity")?;
        println!("created {sku}: quantity {quantity}, id {id}");
        ids.push(id);
    }

    // Reads go to the read pool. A replica replays the primary's WAL a moment
    // later (just after AutoMigrate, even the table): poll for the last row
    // written, since the earlier ones replay before it.
    let started = Instant::now();
    let row = loop {
        let err = match db.read("StockBalance", ids[2]).await {
            Ok(row) => break row,
            Err(err) => err,
        };
        let lagging = matches!(err.kind(), ErrorKind::NotFound)
            || err.sqlstate() == Some(&SqlState::UNDEFINED_TABLE);
        if !replica || !lagging || started.elapsed() > Duration::from_secs(10) {
            return Err(err.into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let sku: String = row.get("sku")?;
    if replica {
        println!(
            "read {sku} back from the replica after {:?}",
            started.elapsed()
        );
    } else {
        println!("read {sku} back (no read DSN: reads use the primary)");
    }

    let query = Query::new()
        .filter(Filter::gt("quantity", 0_i64))
        .sort_desc("quantity");
    let page = db.list("StockBalance", query).await?;
    // Counted: the query did not say `without_total`.
    let total = page.total.unwrap_or_default();
    println!("listed quantity > 0, largest first: {total} rows");
    for row in &page.rows {
        let stock: StockBalance = row.to_serde()?;
        println!("  {} {}", stock.sku, stock.quantity);
    }

    // What models do not cover is raw SQL, values bound, rows typed.
    let (skus, units): (i64, Option<i64>) = db
        .query_one_as(
            Sql::new(
                "SELECT count(*), sum(quantity)::int8 FROM stock_balance WHERE quantity >= $1",
            )
            .bind(0_i64),
        )
        .await?;
    println!(
        "raw SQL: {skus} skus, {} units in stock",
        units.unwrap_or(0)
    );

    let patch = Record::new()
        .with("quantity", 4_i64)
        .with("note", "recounted");
    let stock: StockBalance = db.update("StockBalance", ids[0], patch).await?.to_serde()?;
    println!(
        "updated {}: quantity {}, note {:?}",
        stock.sku, stock.quantity, stock.note
    );

    let duplicate = Record::new().with("sku", "A-1");
    let err = db.create("StockBalance", duplicate).await.err();
    let err = err.ok_or("a duplicate sku was accepted")?;
    println!(
        "creating A-1 again fails: {err} ({} {})",
        err.http_status(),
        err.code()
    );

    let row = db.delete("StockBalance", ids[1]).await?;
    println!("deleted {}", row.get::<String>("sku")?);
    Ok(())
}
