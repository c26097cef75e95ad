//! pgactor next to the raw driver, one criterion group per operation:
//! `read_by_id`, `list_page`, `insert`, `update` and `tx_lock`
//! (LockForUpdate + update + commit), each with `pgactor` (default:
//! prepared-statement cache), `raw-prepared` (deadpool-postgres,
//! `prepare_cached`), `pgactor-shared` (`shared_reads(1)`: reads
//! pipelined on shared connections), `pgactor-single`
//! (`coalesce_reads(false)`: one statement per read), `pgactor-unnamed`
//! (`statement_cache(false)`) and `raw-unnamed` (`query_typed`), so the
//! HTML report puts them side by side. One caller at a time: this is
//! the latency of one operation; `examples/loadtest.rs` adds concurrency.
//! The table and the operations are `examples/support/workload.rs`, shared
//! with the load test; docs/performance.md says what each measures.
//!
//! Those groups need a server: `DATABASE_URL` or `PGACTOR_PRIMARY_URL`
//! (scripts/test.sh sets the latter). They work in a fresh schema with
//! 100,000 rows and drop it at the end; the schema is made by the first of
//! them the filter selects, so `cargo bench --bench crud -- record_serde`
//! runs without a server. `cargo bench --bench crud` measures (a few
//! minutes; the report is in target/criterion); `cargo test --bench crud`,
//! as scripts/test.sh runs it, runs each operation once.
//!
//! `message_hop` is what a message to the adapter's supervisor costs by
//! itself: `Db::stats` called (`stats_handle`) next to the same answer
//! asked for with `call!(db.actor(), DbMsg::Stats)` (`stats_message`),
//! which the supervisor answers in its `handle` without a statement. The
//! difference is one round trip through an actor's mailbox and a reply
//! port, the least any message adds over the handle.
//!
//! One more group, `record_serde`, needs no server: converting a row
//! between a five-field struct and a [`Record`] with serde
//! (`Record::to_serde`, `Record::from_serde`) next to doing it by hand
//! (five `Record::get` calls, five `Record::with` calls).

#[path = "../examples/support/workload.rs"]
mod workload;

use std::cell::OnceCell;
use std::hint::black_box;
use std::time::Instant;

use chrono::{DateTime, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use pgactor::{DbMsg, Field, FieldType, Model, OpenOptions, Record, SessionConfig};
use ractor::call;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;
use workload::{Bench, Impl, OpError, Rng, Workload};

/// Connections per pool: one caller at a time needs one, and a few more
/// keep a checkout from ever waiting on a reconnect.
const POOL: usize = 4;

fn server_url() -> String {
    std::env::var("DATABASE_URL")
        .or_else(|_| std::env::var("PGACTOR_PRIMARY_URL"))
        .expect("the crud bench needs a server: set DATABASE_URL or PGACTOR_PRIMARY_URL (scripts/test.sh does)")
}

/// pgactor on `url` in a fresh schema, the raw pools, the table filled.
async fn fixture(url: &str) -> Result<Bench, OpError> {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let session = SessionConfig {
        schema: Some(format!("bench_{}", &suffix[..12])),
        application_name: Some("pgactor-bench".into()),
        ..SessionConfig::default()
    };
    let options = workload::configure(OpenOptions::new(url).session(session), POOL)?;
    let mut bench = Bench::new(options.open().await?, url, POOL)?;
    bench.open_variant(Impl::PgactorUnnamed, url, POOL).await?;
    bench.open_variant(Impl::PgactorShared, url, POOL).await?;
    bench.open_variant(Impl::PgactorSingle, url, POOL).await?;
    bench.fill().await?;
    Ok(bench)
}

/// The group of a workload: the load test's names, but for `read_by_id`.
fn group_name(workload: Workload) -> &'static str {
    match workload {
        Workload::ReadPk => "read_by_id",
        other => other.name(),
    }
}

fn crud(c: &mut Criterion) {
    let rt = Runtime::new().expect("a tokio runtime");
    // Made when the filter first selects one of these benchmarks.
    let fixture = OnceCell::new();
    for workload in Workload::ALL {
        let mut group = c.benchmark_group(group_name(workload));
        for imp in Impl::ALL {
            // The same ids for every implementation.
            let mut rng = Rng::new(1);
            group.bench_function(imp.name(), |b| {
                let bench = fixture.get_or_init(|| {
                    rt.block_on(self::fixture(&server_url()))
                        .expect("the bench fixture")
                });
                b.to_async(&rt).iter(|| {
                    let random = rng.next();
                    async move {
                        let done = bench.run(imp, workload, random).await;
                        let (w, i) = (workload.name(), imp.name());
                        done.unwrap_or_else(|e| panic!("{w} {i}: {}", workload::describe(&e)))
                    }
                })
            });
            // bench_function has run by now: restore the table, so the next
            // implementation starts from the same one.
            if let (true, Some(bench)) = (workload.writes(), fixture.get()) {
                rt.block_on(bench.reset()).expect("restoring the table");
            }
        }
        group.finish();
    }
    let mut group = c.benchmark_group("message_hop");
    group.bench_function("stats_handle", |b| {
        let bench = fixture.get_or_init(|| {
            rt.block_on(self::fixture(&server_url()))
                .expect("the bench fixture")
        });
        b.iter(|| black_box(bench.db.stats()))
    });
    group.bench_function("stats_message", |b| {
        let bench = fixture.get_or_init(|| {
            rt.block_on(self::fixture(&server_url()))
                .expect("the bench fixture")
        });
        // Called from a task of the runtime, as an actor calls: the
        // benchmark's own thread is not one of the runtime's workers, and
        // every answer would wake it from another thread.
        b.iter_custom(|iters| {
            let supervisor = bench.db.actor();
            rt.block_on(async move {
                tokio::spawn(async move {
                    let start = Instant::now();
                    for _ in 0..iters {
                        black_box(call!(supervisor, DbMsg::Stats).expect("the supervisor answers"));
                    }
                    start.elapsed()
                })
                .await
                .expect("the calling task")
            })
        })
    });
    group.finish();
    let Some(bench) = fixture.get() else {
        return;
    };
    rt.block_on(async {
        bench.close().await;
        let schema = &bench.db.session().schema;
        let drop = format!("DROP SCHEMA \"{schema}\" CASCADE");
        bench
            .execute(&drop)
            .await
            .expect("dropping the bench schema");
    });
}

/// The row `record_serde` converts: five fields, three of them types
/// serde writes as strings.
#[derive(Serialize, Deserialize)]
struct Row {
    id: uuid::Uuid,
    sku: String,
    qty: i64,
    price: Decimal,
    created_at: DateTime<Utc>,
}

/// Converting one row between [`Row`] and a [`Record`], with serde and by
/// hand. No server.
fn record_serde(c: &mut Criterion) {
    let model = Model::new("Row")
        .field(Field::new("sku", FieldType::Text))
        .field(Field::new("qty", FieldType::I64))
        .field(Field::new("price", FieldType::Numeric))
        .field(Field::new("created_at", FieldType::Timestamptz));
    let row = Row {
        id: uuid::Uuid::new_v4(),
        sku: "SKU-000042".into(),
        qty: 42,
        price: "1234.50".parse().expect("a decimal"),
        created_at: Utc::now(),
    };
    let by_hand = |row: &Row| {
        Record::new()
            .with("id", row.id)
            .with("sku", row.sku.as_str())
            .with("qty", row.qty)
            .with("price", row.price)
            .with("created_at", row.created_at)
    };
    let record = by_hand(&row);
    assert_eq!(
        Record::from_serde(&model, &row).expect("from_serde"),
        record
    );
    let mut group = c.benchmark_group("record_serde");
    group.bench_function("to_serde", |b| {
        b.iter(|| black_box(&record).to_serde::<Row>().expect("to_serde"))
    });
    group.bench_function("get", |b| {
        b.iter(|| {
            let record = black_box(&record);
            let get = || -> pgactor::Result<Row> {
                Ok(Row {
                    id: record.get("id")?,
                    sku: record.get("sku")?,
                    qty: record.get("qty")?,
                    price: record.get("price")?,
                    created_at: record.get("created_at")?,
                })
            };
            get().expect("get")
        })
    });
    group.bench_function("from_serde", |b| {
        b.iter(|| Record::from_serde(&model, black_box(&row)).expect("from_serde"))
    });
    group.bench_function("with", |b| b.iter(|| by_hand(black_box(&row))));
    group.finish();
}

criterion_group!(benches, crud, record_serde);
criterion_main!(benches);
