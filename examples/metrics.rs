//! Pool statistics as Prometheus metrics, served on `/metrics`.
//!
//! `cargo run --example metrics` opens the adapter (on `DATABASE_URL`, or a
//! throwaway cluster like the quickstart), runs a little traffic with a
//! transaction held open, serves `db.stats().to_prometheus()` on
//! `127.0.0.1:9187/metrics` (port from `METRICS_PORT`), scrapes it once
//! itself, prints what it got, and stops. Set `METRICS_SERVE_SECONDS` to keep
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
    println!("serving http://{address}/metrics");
    println!("{}", scrape(&address.to_string()).await?);

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

/// A minimal HTTP/1.0 answer: the metrics for `/metrics`, 404 otherwise.
async fn answer(mut socket: TcpStream, db: Db) {
    let mut request = [0_u8; 1024];
    let n = socket.read(&mut request).await.unwrap_or(0);
    let wanted = String::from_utf8_lossy(&request[..n]).starts_with("GET /metrics ");
    let (status, body) = if wanted {
        ("200 OK", db.stats().to_prometheus())
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

/// GET /metrics from `address`, as a scraper would.
async fn scrape(address: &str) -> Result<String, BoxError> {
    let mut socket = TcpStream::connect(address).await?;
    socket.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").await?;
    let mut response = String::new();
    socket.read_to_string(&mut response).await?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
    body.ok_or_else(|| "no HTTP body".into())
}
