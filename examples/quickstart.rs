//! pgactor end to end: declare a model, open the adapter, write, read back
//! through the replica, list, update and delete, printing each step.
//!
//! With `DATABASE_URL` set (and optionally `DATABASE_READ_URL`, a replica) it
//! works there, in a fresh schema it drops at the end. Otherwise it starts a
//! throwaway primary + streaming replica with `scripts/cluster.sh` and always
//! tears it down again. `RUST_LOG` sets the library's log level (default info).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use pgactor::{
    Db, ErrorKind, Field, FieldType, Filter, Index, Model, OpenOptions, Query, Record, Registry,
    SessionConfig,
};
use serde::Deserialize;
use tokio_postgres::error::SqlState;
use tracing_subscriber::EnvFilter;
use uuid::Uuid;

type BoxError = Box<dyn std::error::Error>;

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

/// Where to connect, and in which schema (`None`: `public`).
struct Target {
    write: String,
    read: String,
    schema: Option<String>,
}

impl Target {
    /// `DATABASE_URL` and `DATABASE_READ_URL`, in a schema of our own so
    /// nothing already there is touched.
    fn from_env() -> Option<Target> {
        let write = std::env::var("DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())?;
        let read = std::env::var("DATABASE_READ_URL").unwrap_or_default();
        let schema = format!("quickstart_{}", &Uuid::new_v4().simple().to_string()[..12]);
        println!("using DATABASE_URL, in a fresh schema {schema} (dropped at the end)");
        let schema = Some(schema);
        Some(Target {
            write,
            read,
            schema,
        })
    }
}

/// A throwaway cluster. Dropping it tears the cluster down, so that happens
/// on success, on error and on panic alike.
struct Cluster(PathBuf);

impl Cluster {
    fn up() -> Result<(Target, Cluster), BoxError> {
        // Short on purpose: DIR/s/.s.PGSQL.NNNNN must fit a 107-byte socket path.
        let cluster = Cluster(format!("/tmp/pgaq.{}", std::process::id()).into());
        let dir = &cluster.0;
        println!(
            "no DATABASE_URL: starting a throwaway cluster in {}",
            dir.display()
        );
        // The guard exists before the script runs: a half-started cluster goes too.
        let status = cluster_sh("up", dir)?;
        if !status.success() {
            return Err(format!("scripts/cluster.sh up failed ({status})").into());
        }
        let env = std::fs::read_to_string(dir.join("env"))?;
        let var = |key: &str| {
            env.lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
                .map(str::to_owned)
                .ok_or_else(|| format!("{key} is missing from {}/env", dir.display()))
        };
        let (write, read) = (var("PGACTOR_PRIMARY_URL")?, var("PGACTOR_REPLICA_URL")?);
        Ok((
            Target {
                write,
                read,
                schema: None,
            },
            cluster,
        ))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        println!("tearing down the throwaway cluster");
        if !matches!(cluster_sh("down", &self.0), Ok(s) if s.success()) {
            let dir = self.0.display();
            eprintln!("warning: teardown failed; run scripts/cluster.sh down {dir}");
        }
    }
}

/// `scripts/cluster.sh CMD DIR`. Its progress goes to our stderr; `up` also
/// prints the env file on stdout, which we read from DIR/env instead.
fn cluster_sh(cmd: &str, dir: &Path) -> std::io::Result<ExitStatus> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/cluster.sh");
    let mut command = Command::new(script);
    command.arg(cmd).arg(dir).stdout(Stdio::null()).status()
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    // Catch Ctrl-C from the start, so an interrupted run still drops (and
    // tears down) its cluster instead of dying with the servers running.
    let interrupted = tokio::spawn(tokio::signal::ctrl_c());
    let outcome: Result<(), BoxError> = async {
        let (target, _cluster) = match Target::from_env() {
            Some(target) => (target, None),
            None => Cluster::up().map(|(target, cluster)| (target, Some(cluster)))?,
        };
        tokio::select! {
            result = run(&target) => result,
            Ok(Ok(())) = interrupted => Err("interrupted".into()),
        }
    }
    .await;
    if let Err(err) = outcome {
        eprintln!("quickstart failed: {err}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

async fn run(target: &Target) -> Result<(), BoxError> {
    let mut registry = Registry::new();
    registry.register(stock_balance())?;
    let session = SessionConfig {
        schema: target.schema.clone(),
        application_name: Some("pgactor-quickstart".into()),
        ..SessionConfig::default()
    };
    // Connects each pool once, creates the schema if needed, runs AutoMigrate.
    let db = OpenOptions::new(target.write.as_str())
        .read_dsn(target.read.as_str())
        .registry(registry)
        .session(session)
        .open()
        .await?;
    let schema = &db.session().schema;
    println!("opened; AutoMigrate created table stock_balance in schema {schema}");
    let result = steps(&db, !target.read.trim().is_empty()).await;
    db.close().await; // stop the actors and close the pools, whatever happened
    if let Some(schema) = &target.schema {
        drop_schema(&target.write, schema).await;
    }
    result
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
    println!("listed quantity > 0, largest first: {} rows", page.total);
    for row in &page.rows {
        let stock: StockBalance = row.to_serde()?;
        println!("  {} {}", stock.sku, stock.quantity);
    }

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

/// The schema is ours alone (a random name): drop it to leave nothing
/// behind. pgactor has no raw-SQL call, so the driver runs this one statement.
async fn drop_schema(url: &str, schema: &str) {
    let dropped = async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        // Quietly: the NOTICE listing what cascades is noise here.
        let sql = format!("SET client_min_messages = warning; DROP SCHEMA \"{schema}\" CASCADE");
        client.batch_execute(&sql).await
    };
    match dropped.await {
        Ok(()) => println!("dropped schema {schema}"),
        Err(e) => eprintln!("warning: could not drop schema {schema}: {e}"),
    }
}
