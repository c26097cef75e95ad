//! Pool statistics as Prometheus metrics, served on `/metrics`, and a
//! health check on `/health`.
//!
//! `cargo run --example metrics` opens the adapter (on `DATABASE_URL`, or a
//! throwaway cluster like the quickstart), runs a little traffic with a
//! transaction held open, serves `db.stats().to_prometheus()` on
//! `127.0.0.1:9187/metrics` (port from `METRICS_PORT`) and `db.ping(…)` on
//! `/health` (200 when every pool answers within a second, else 503),
//! requests each once itself, prints what it got, and stops. Set `METRICS_SERVE_SECONDS` to keep
//! serving that long for a real scraper.

#[path = "support/cluster.rs"]
mod cluster;

use std::process::ExitCode;
use std::time::Duration;

use cluster::{BoxError, Target};
use pgactor::{Db, Field, FieldType, Model, Record, Registry, TxOptions, WriteOp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn registry() -> pgactor::Result<Registry> {
    Registry::new().with(Model::new("Item").field(Field::new("name", FieldType::Text)))
}

#[tokio::main]
async fn main() -> ExitCode {
    cluster::main("metrics", registry, serve).await
}

async fn serve(db: Db, _: Target) -> Result<(), BoxError> {
    for i in 0..20 {
        let create = WriteOp::Create(Record::new().with("name", format!("item {i}")));
        let (item, token) = db.write_with_token("Item", create).await?;
        // Read-your-writes: the replica serves it once it has replayed the
        // write, the primary until then (counted as a primary read).
        db.after(token)
            .read("Item", item.get::<uuid::Uuid>("id")?)
            .await?;
    }
    let held = db.begin(TxOptions::default()).await?; // shows as in use / open

    let port = std::env::var("METRICS_PORT").unwrap_or_else(|_| "9187".into());
    let listener = TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    let address = listener.local_addr()?;
    let server = tokio::spawn({
        let db = db.clone();
        async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(answer(socket, db.clone()));
            }
        }
    });
    println!("serving http://{address}/metrics and /health");
    println!("{}", get(&address.to_string(), "/metrics").await?);
    println!("{}", get(&address.to_string(), "/health").await?);

    let linger = std::env::var("METRICS_SERVE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok());
    if let Some(seconds) = linger {
        tokio::time::sleep(Duration::from_secs(seconds)).await;
    }
    server.abort();
    held.rollback().await?;
    Ok(())
}

/// A minimal HTTP/1.0 answer: the metrics for `/metrics`, the pools'
/// health for `/health`, 404 otherwise.
async fn answer(mut socket: TcpStream, db: Db) {
    let mut request = [0_u8; 1024];
    let n = socket.read(&mut request).await.unwrap_or(0);
    let request = String::from_utf8_lossy(&request[..n]);
    let (status, body) = if request.starts_with("GET /metrics ") {
        ("200 OK", db.stats().to_prometheus())
    } else if request.starts_with("GET /health ") {
        let health = db.ping(Duration::from_secs(1)).await;
        let status = if health.is_up() {
            "200 OK"
        } else {
            "503 Service Unavailable"
        };
        let line = |pool: &pgactor::PoolHealth| match &pool.error {
            None => format!("{} {} up {:?}\n", pool.role, pool.target, pool.latency),
            Some(err) => format!(
                "{} {} down {:?}: {err}\n",
                pool.role, pool.target, pool.latency
            ),
        };
        let reads: String = health.read_pools().map(line).collect();
        (status, line(&health.write) + &reads)
    } else {
        ("404 Not Found", String::new())
    };
    let head = format!(
        "HTTP/1.0 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let _ = socket.write_all(head.as_bytes()).await;
    let _ = socket.write_all(body.as_bytes()).await;
}

/// GET `path` from `address`, as a scraper or a health checker would.
async fn get(address: &str, path: &str) -> Result<String, BoxError> {
    let mut socket = TcpStream::connect(address).await?;
    let request = format!("GET {path} HTTP/1.0\r\n\r\n");
    socket.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    socket.read_to_string(&mut response).await?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
    body.ok_or_else(|| "no HTTP body".into())
}
