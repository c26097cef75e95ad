//! The `metrics` feature against a real server: each operation's duration
//! in the `db.client.operation.duration` histogram, labelled by operation,
//! table and outcome, and the pool statistics as gauges and counters.
//! Run with `cargo test --features metrics --test metrics`.

#[path = "support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::MetricKind;
use pgactor::{Db, ErrorKind, PoolConfig, Record, TxOptions};

use support::db::{in_schema, registry, stock_model, unique_schema};
use support::topology::primary_url;

/// One recorded value: its kind, name, labels and value (a histogram's
/// samples each on their own).
#[derive(Debug, Clone)]
struct Seen {
    kind: MetricKind,
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

impl Seen {
    fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The process's recorder (installed once; the tests share it), and every
/// value taken from it so far: a snapshot drains what it reads, so the
/// tests keep what each took for all of them and tell theirs apart by
/// `db.namespace`.
fn recorded() -> Vec<Seen> {
    static RECORDER: OnceLock<(Snapshotter, Mutex<Vec<Seen>>)> = OnceLock::new();
    let (snapshotter, seen) = RECORDER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("no other recorder in this test binary");
        (snapshotter, Mutex::new(Vec::new()))
    });
    let mut seen = seen.lock().unwrap();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let (kind, key) = key.into_parts();
        let labels: Vec<(String, String)> = key
            .labels()
            .map(|l| (l.key().to_string(), l.value().to_string()))
            .collect();
        let values = match value {
            DebugValue::Counter(n) => vec![n as f64],
            DebugValue::Gauge(v) => vec![v.into_inner()],
            DebugValue::Histogram(vs) => vs.into_iter().map(|v| v.into_inner()).collect(),
        };
        for value in values {
            seen.push(Seen {
                kind,
                name: key.name().to_string(),
                labels: labels.clone(),
                value,
            });
        }
    }
    seen.clone()
}

/// Everything recorded for the adapter on `schema`.
fn recorded_for(schema: &str) -> Vec<Seen> {
    let namespace = format!("postgres|{schema}");
    recorded()
        .into_iter()
        .filter(|s| s.label("db.namespace") == Some(namespace.as_str()))
        .collect()
}

async fn open(schema: &str, write_max_open: usize) -> Db {
    pgactor::OpenOptions::new(primary_url())
        .registry(registry([stock_model()]))
        .session(in_schema(schema))
        .write_pool(PoolConfig {
            max_open: Some(write_max_open),
            ..PoolConfig::default()
        })
        .open()
        .await
        .unwrap()
}

#[tokio::test]
async fn each_operation_records_its_duration_labelled_by_operation_table_and_outcome() {
    let schema = unique_schema("metrics_ops");
    let db = open(&schema, 4).await;
    recorded(); // the recorder is installed before the operations
    let id: uuid::Uuid = db
        .create("StockBalance", Record::new().with("sku", "m"))
        .await
        .unwrap()
        .get("id")
        .unwrap();
    db.read("StockBalance", id).await.unwrap();
    let missing = db.read("StockBalance", uuid::Uuid::new_v4()).await;
    assert_eq!(missing.unwrap_err().kind(), ErrorKind::NotFound);
    let timed_out = db
        .with_query_timeout(Duration::from_millis(100))
        .query("SELECT pg_sleep(5)")
        .await;
    assert_eq!(timed_out.unwrap_err().kind(), ErrorKind::Timeout);
    let tx = db.begin(TxOptions::default()).await.unwrap();
    tx.update("StockBalance", id, Record::new().with("quantity", 3_i64))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    db.close().await;

    let seen = recorded_for(&schema);
    let durations: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.kind == MetricKind::Histogram && s.name == "db.client.operation.duration")
        .collect();
    let samples = |operation: &str, role: &str, error: Option<&str>| -> Vec<f64> {
        durations
            .iter()
            .filter(|s| {
                s.label("db.operation.name") == Some(operation)
                    && s.label("pgactor.role") == Some(role)
                    && s.label("error.type") == error
                    && s.label("db.system.name") == Some("postgresql")
            })
            .map(|s| s.value)
            .collect()
    };
    for (operation, role) in [("create", "write"), ("read", "read"), ("update", "tx")] {
        let ok = samples(operation, role, None);
        assert_eq!(ok.len(), 1, "{operation} on {role}: {durations:#?}");
        assert!(ok[0] > 0.0);
    }
    let read = durations
        .iter()
        .find(|s| s.label("db.operation.name") == Some("read"))
        .unwrap();
    assert_eq!(read.label("db.collection.name"), Some("StockBalance"));
    assert_eq!(
        samples("read", "read", Some("NOT_FOUND")).len(),
        1,
        "{durations:#?}"
    );
    // Raw SQL names no table; its timeout counts from the caller's start.
    let timeout = samples("query", "write", Some("TIMEOUT"));
    assert_eq!(timeout.len(), 1, "{durations:#?}");
    assert!(timeout[0] >= 0.1, "{timeout:?}");
    let query = durations
        .iter()
        .find(|s| s.label("db.operation.name") == Some("query"))
        .unwrap();
    assert_eq!(query.label("db.collection.name"), None);
    assert_eq!(query.label("db.response.status_code"), None);
    for operation in ["begin", "commit"] {
        assert_eq!(
            samples(operation, "tx", None).len(),
            1,
            "{operation}: {durations:#?}"
        );
    }
}

#[tokio::test]
async fn the_pool_statistics_are_published_as_gauges_and_counters() {
    let schema = unique_schema("metrics_pool");
    let db = open(&schema, 3).await;
    // One checkout that waits: every write connection held by a transaction.
    let txs = [
        db.begin(TxOptions::default()).await.unwrap(),
        db.begin(TxOptions::default()).await.unwrap(),
        db.begin(TxOptions::default()).await.unwrap(),
    ];
    let waiting = db.create("StockBalance", Record::new().with("sku", "w"));
    let release = async {
        support::wait::until("the create waits for a connection", || async {
            db.stats().write.waiting == 1
        })
        .await;
        for tx in txs {
            tx.rollback().await.unwrap();
        }
    };
    let (created, ()) = tokio::join!(waiting, release);
    created.unwrap();
    assert_eq!(db.stats().write.waits_total, 1);

    let found = |seen: &[Seen], kind: MetricKind, name: &str, role: &str| {
        seen.iter()
            .filter(|s| s.kind == kind && s.name == name && s.label("role") == Some(role))
            .map(|s| s.value)
            .fold(None, |max: Option<f64>, v| {
                Some(max.map_or(v, |m| m.max(v)))
            })
    };
    support::wait::until("the wait is published", || async {
        let seen = recorded_for(&schema);
        found(&seen, MetricKind::Counter, "pgactor.pool.waits", "write") == Some(1.0)
    })
    .await;
    let seen = recorded_for(&schema);
    assert_eq!(
        found(&seen, MetricKind::Gauge, "pgactor.pool.max_open", "write"),
        Some(3.0)
    );
    assert!(
        found(&seen, MetricKind::Gauge, "pgactor.pool.open", "write").is_some_and(|n| n >= 1.0)
    );
    assert!(found(
        &seen,
        MetricKind::Gauge,
        "pgactor.pool.wait_seconds",
        "write"
    )
    .is_some());
    for reason in ["max_lifetime", "max_idle_time", "max_idle_count", "broken"] {
        assert!(
            seen.iter().any(|s| s.kind == MetricKind::Counter
                && s.name == "pgactor.pool.closed"
                && s.label("reason") == Some(reason)),
            "no closings counted for {reason}: {seen:#?}"
        );
    }
    assert!(seen
        .iter()
        .any(|s| s.kind == MetricKind::Gauge && s.name == "pgactor.open_transactions"));
    db.close().await;
}
