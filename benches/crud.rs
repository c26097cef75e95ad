//! pgactor next to the raw driver, one criterion group per operation:
//! `read_by_id`, `list_page`, `insert`, `update` and `tx_lock`
//! (LockForUpdate + update + commit), each with `pgactor` (default:
//! prepared-statement cache), `raw-prepared` (deadpool-postgres,
//! `prepare_cached`), `pgactor-shared` (`shared_reads(1)`: reads
//! pipelined on shared connections), `pgactor-unnamed`
//! (`statement_cache(false)`) and `raw-unnamed` (`query_typed`), so the
//! HTML report puts them side by side. One caller at a time: this is
//! the latency of one operation; `examples/loadtest.rs` adds concurrency.
//! The table and the operations are `examples/support/workload.rs`, shared
//! with the load test; docs/performance.md says what each measures.
//!
//! Needs a server: `DATABASE_URL` or `PGACTOR_PRIMARY_URL` (scripts/test.sh
//! sets the latter). It works in a fresh schema with 100,000 rows and drops
//! it at the end. `cargo bench --bench crud` measures (a few minutes; the
//! report is in target/criterion); `cargo test --bench crud`, as
//! scripts/test.sh runs it, runs each operation once.

#[path = "../examples/support/workload.rs"]
mod workload;

use criterion::{criterion_group, criterion_main, Criterion};
use pgactor::{OpenOptions, SessionConfig};
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
    let url = server_url();
    let bench = rt.block_on(fixture(&url)).expect("the bench fixture");
    for workload in Workload::ALL {
        let mut group = c.benchmark_group(group_name(workload));
        for imp in Impl::ALL {
            // The same ids for every implementation.
            let mut rng = Rng::new(1);
            group.bench_function(imp.name(), |b| {
                b.to_async(&rt).iter(|| {
                    let random = rng.next();
                    let bench = &bench;
                    async move {
                        let done = bench.run(imp, workload, random).await;
                        let (w, i) = (workload.name(), imp.name());
                        done.unwrap_or_else(|e| panic!("{w} {i}: {}", workload::describe(&e)))
                    }
                })
            });
            // bench_function has run by now: restore the table, so the next
            // implementation starts from the same one.
            if workload.writes() {
                rt.block_on(bench.reset()).expect("restoring the table");
            }
        }
        group.finish();
    }
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

criterion_group!(benches, crud);
criterion_main!(benches);
