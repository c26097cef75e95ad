//! A deep page: page 1,000 (rows 99,901 to 100,000, 100 a page) of the
//! 100,000-row table of `examples/support/workload.rs`, reached by offset
//! (`.offset(99_900)`) and by cursor (`.after(cursor)`, the cursor of page
//! 999), each with the total count and without it (`.without_total()`).
//! Two sorts: by `id` (the primary key) and by `qty` (an index on `qty`
//! alone; ten rows share each value, `id` breaks the ties).
//! docs/performance.md has the figures.
//!
//! Needs a server: `DATABASE_URL` or `PGACTOR_PRIMARY_URL` (scripts/test.sh
//! sets the latter). Works in a fresh schema and drops it at the end.
//! `cargo bench --bench pages` measures; `cargo test --bench pages` runs
//! each once.

#[path = "../examples/support/workload.rs"]
mod workload;

use criterion::{criterion_group, criterion_main, Criterion};
use pgactor::{Db, OpenOptions, Query, SessionConfig};
use tokio::runtime::Runtime;
use workload::{Bench, MODEL};

const PAGE: u64 = 100;
/// Page 1,000 starts after this many rows.
const OFFSET: u64 = 99_900;

fn server_url() -> String {
    std::env::var("DATABASE_URL")
        .or_else(|_| std::env::var("PGACTOR_PRIMARY_URL"))
        .expect("the pages bench needs a server: set DATABASE_URL or PGACTOR_PRIMARY_URL")
}

async fn fixture(url: &str) -> Result<Bench, workload::OpError> {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let session = SessionConfig {
        schema: Some(format!("bench_{}", &suffix[..12])),
        application_name: Some("pgactor-bench-pages".into()),
        ..SessionConfig::default()
    };
    let options = workload::configure(OpenOptions::new(url).session(session), 2)?;
    let bench = Bench::new(options.open().await?, url, 2)?;
    bench.fill().await?;
    Ok(bench)
}

/// Page 1,000 of `sorted`: by offset, and by the cursor page 999 answers.
async fn deep_pages(db: &Db, sorted: &Query) -> (Query, Query) {
    let by_offset = sorted.clone().limit(PAGE).offset(OFFSET);
    let page_999 = sorted.clone().limit(PAGE).offset(OFFSET - PAGE);
    let cursor = db
        .list(MODEL, page_999)
        .await
        .expect("page 999")
        .next
        .expect("page 999 is full");
    (by_offset, sorted.clone().limit(PAGE).after(cursor))
}

fn pages(c: &mut Criterion) {
    let rt = Runtime::new().expect("a tokio runtime");
    let bench = rt
        .block_on(fixture(&server_url()))
        .expect("the bench fixture");
    let db = &bench.db;
    for (name, sorted) in [
        ("deep_page_by_id", Query::new()),
        ("deep_page_by_qty", Query::new().sort_asc("qty")),
    ] {
        let (by_offset, by_cursor) = rt.block_on(deep_pages(db, &sorted));
        let mut group = c.benchmark_group(name);
        group.sample_size(20);
        for (variant, query) in [
            ("offset+count", by_offset.clone()),
            ("offset", by_offset.without_total()),
            ("cursor+count", by_cursor.clone()),
            ("cursor", by_cursor.without_total()),
        ] {
            group.bench_function(variant, |b| {
                b.to_async(&rt).iter(|| async {
                    let page = db.list(MODEL, query.clone()).await.expect("page 1,000");
                    assert_eq!(page.rows.len() as u64, PAGE);
                    page
                })
            });
        }
        group.finish();
    }
    rt.block_on(async {
        bench.close().await;
        let drop = format!("DROP SCHEMA \"{}\" CASCADE", bench.db.session().schema);
        bench.execute(&drop).await.expect("dropping the schema");
    });
}

criterion_group!(benches, pages);
criterion_main!(benches);
