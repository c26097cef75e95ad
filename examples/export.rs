//! Export a large result with flat memory: fill a table with rows by raw
//! SQL, then stream them all (`Db::stream_as`), writing each as a CSV line
//! to a sink, and print the process's peak memory before and after.
//!
//! `EXPORT_ROWS` sets how many rows (default 1,000,000). With
//! `DATABASE_URL` set it works there, in a fresh schema dropped at the end;
//! otherwise on a throwaway local cluster (see `examples/support/cluster.rs`).
//! `cargo run --release --example export`; to print the lines instead of
//! dropping them, `EXPORT_PRINT=1`; to compare with holding every row at
//! once (`Db::query_as`), `EXPORT_COLLECT=1`.

#[path = "support/cluster.rs"]
mod cluster;

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use cluster::{BoxError, Target};
use pgactor::{Db, Field, FieldType, Model, Registry, Sql};

fn registry() -> pgactor::Result<Registry> {
    let mut registry = Registry::new();
    registry.register(
        Model::new("Reading")
            .field(Field::new("sensor", FieldType::Text))
            .field(Field::new("value", FieldType::F64)),
    )?;
    Ok(registry)
}

#[tokio::main]
async fn main() -> ExitCode {
    cluster::main("export", registry, run).await
}

/// The process's peak resident memory so far (Linux's `VmHWM`), in KiB.
fn peak_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn run(db: Db, _target: Target) -> Result<(), BoxError> {
    let rows: i64 = std::env::var("EXPORT_ROWS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let print = std::env::var("EXPORT_PRINT").is_ok_and(|v| v == "1");
    let collect = std::env::var("EXPORT_COLLECT").is_ok_and(|v| v == "1");

    let started = Instant::now();
    let filled = db
        .execute(
            Sql::new(
                "INSERT INTO reading (id, sensor, value, created_at, updated_at) \
                 SELECT gen_random_uuid(), 'sensor-' || (g % 100), g / 7.0, now(), now() \
                 FROM generate_series(1, $1) AS g",
            )
            .bind(rows),
        )
        .await?;
    println!("filled {filled} rows in {:?}", started.elapsed());
    let before = peak_kib();

    let started = Instant::now();
    let select = "SELECT sensor, value FROM reading";
    if collect {
        let all: Vec<(String, f64)> = db.query_as(select).await?;
        println!("collected {} rows in {:?}", all.len(), started.elapsed());
        if let (Some(before), Some(after)) = (before, peak_kib()) {
            println!(
                "peak memory: {} MiB before, {} MiB after",
                before / 1024,
                after / 1024
            );
        }
        return Ok(());
    }
    let mut stream = db.stream_as::<(String, f64)>(select).await?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut sink = std::io::sink();
    let (mut lines, mut bytes) = (0_u64, 0_usize);
    while let Some(row) = stream.next().await {
        let (sensor, value) = row?;
        let line = format!("{sensor},{value}\n");
        bytes += line.len();
        lines += 1;
        if print {
            out.write_all(line.as_bytes())?;
        } else {
            sink.write_all(line.as_bytes())?;
        }
    }
    out.flush()?;
    drop(out);
    let elapsed = started.elapsed();
    println!(
        "streamed {lines} rows ({} MiB of CSV) in {elapsed:?}: {:.0} rows/s",
        bytes / (1024 * 1024),
        lines as f64 / elapsed.as_secs_f64()
    );
    if let (Some(before), Some(after)) = (before, peak_kib()) {
        println!(
            "peak memory: {} MiB before, {} MiB after",
            before / 1024,
            after / 1024
        );
    }
    Ok(())
}
