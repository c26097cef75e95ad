//! Batch inserts, criterion group `batch_insert`: 10,000 rows stored by
//! 10,000 single `create` calls one after the other (`single_create_c1`),
//! by one `create_many` that answers the rows (`create_many_rows`), by one
//! `create_many_count` (`create_many_count_copy`, a binary COPY), and by a
//! binary `COPY … FROM STDIN` written by hand with tokio-postgres's
//! `BinaryCopyInWriter` on a plain connection (`raw_copy_binary`), into
//! the same table. Each iteration starts from an empty table (emptied
//! outside the timing); the rows' values are built outside it too, and
//! consumed (dropped) inside it, their ids made inside (pgactor generates
//! them).
//!
//! Needs a server: `DATABASE_URL` or `PGACTOR_PRIMARY_URL`. Works in a
//! fresh schema and drops it at the end. `cargo bench --bench batch`
//! measures; `cargo test --bench batch` runs each once.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pgactor::{Db, Field, FieldType, Model, OpenOptions, Record, Registry, SessionConfig};
use tokio::runtime::Runtime;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::NoTls;

/// Rows per iteration.
const ROWS: usize = 10_000;

fn server_url() -> String {
    std::env::var("DATABASE_URL")
        .or_else(|_| std::env::var("PGACTOR_PRIMARY_URL"))
        .expect("the batch bench needs a server: set DATABASE_URL or PGACTOR_PRIMARY_URL")
}

/// The rows, as records (pgactor) and as values (the raw COPY).
fn rows() -> (Vec<Record>, Vec<(String, i64)>) {
    let values: Vec<(String, i64)> = (0..ROWS)
        .map(|i| (format!("SKU-{i:06}"), i as i64))
        .collect();
    let records = values
        .iter()
        .map(|(sku, quantity)| {
            Record::new()
                .with("sku", sku.as_str())
                .with("quantity", *quantity)
        })
        .collect();
    (records, values)
}

struct Fixture {
    db: Db,
    raw: tokio_postgres::Client,
    schema: String,
}

impl Fixture {
    async fn open(url: &str) -> Fixture {
        let schema = format!(
            "bench_batch_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let registry = Registry::new()
            .with(
                Model::new("BatchRow")
                    .field(Field::new("sku", FieldType::Text))
                    .field(Field::new("quantity", FieldType::I64)),
            )
            .expect("model");
        let db = OpenOptions::new(url)
            .registry(registry)
            .session(SessionConfig {
                schema: Some(schema.clone()),
                application_name: Some("pgactor-bench".into()),
                ..SessionConfig::default()
            })
            .open()
            .await
            .expect("open");
        let (raw, connection) = tokio_postgres::connect(url, NoTls).await.expect("connect");
        tokio::spawn(connection);
        Fixture { db, raw, schema }
    }

    async fn empty(&self) {
        let sql = format!("TRUNCATE \"{}\".\"batch_row\"", self.schema);
        self.raw.batch_execute(&sql).await.expect("truncate");
    }

    /// The hand-written COPY: what a caller of tokio-postgres writes.
    async fn raw_copy(&self, values: Vec<(String, i64)>) -> u64 {
        let sql = format!(
            "COPY \"{}\".\"batch_row\" (\"id\", \"sku\", \"quantity\") FROM STDIN (FORMAT binary)",
            self.schema
        );
        let sink = self.raw.copy_in(&sql).await.expect("copy");
        let writer = BinaryCopyInWriter::new(sink, &[Type::UUID, Type::TEXT, Type::INT8]);
        let mut writer = std::pin::pin!(writer);
        for (sku, quantity) in &values {
            let id = uuid::Uuid::now_v7();
            let row: [&(dyn ToSql + Sync); 3] = [&id, sku, quantity];
            writer.as_mut().write(&row).await.expect("row");
        }
        writer.finish().await.expect("finish")
    }
}

fn batch_insert(c: &mut Criterion) {
    let rt = Runtime::new().expect("a tokio runtime");
    let fixture = rt.block_on(Fixture::open(&server_url()));
    let (records, values) = rows();
    let mut group = c.benchmark_group("batch_insert");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .throughput(Throughput::Elements(ROWS as u64));
    // Each iteration: empty the table and copy the input (untimed), then
    // time the insert of ROWS rows, the input consumed (and dropped) by it.
    fn timed<I>(
        b: &mut criterion::Bencher,
        rt: &Runtime,
        fixture: &Fixture,
        input: impl Fn() -> I,
        run: impl Fn(I) -> u64,
    ) {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                rt.block_on(fixture.empty());
                let input = input();
                let started = Instant::now();
                assert_eq!(run(input), ROWS as u64);
                total += started.elapsed();
            }
            total
        })
    }
    let f = &fixture;
    group.bench_function("single_create_c1", |b| {
        timed(
            b,
            &rt,
            f,
            || records.clone(),
            |input| {
                rt.block_on(async {
                    for row in input {
                        f.db.create("BatchRow", row).await.expect("create");
                    }
                });
                ROWS as u64
            },
        )
    });
    group.bench_function("create_many_rows", |b| {
        timed(
            b,
            &rt,
            f,
            || records.clone(),
            |input| {
                let stored = rt.block_on(f.db.create_many("BatchRow", input));
                stored.expect("create_many").len() as u64
            },
        )
    });
    group.bench_function("create_many_count_copy", |b| {
        timed(
            b,
            &rt,
            f,
            || records.clone(),
            |input| {
                rt.block_on(f.db.create_many_count("BatchRow", input))
                    .expect("create_many_count")
            },
        )
    });
    group.bench_function("raw_copy_binary", |b| {
        timed(
            b,
            &rt,
            f,
            || values.clone(),
            |input| rt.block_on(f.raw_copy(input)),
        )
    });
    group.finish();
    let drop = format!("DROP SCHEMA \"{}\" CASCADE", fixture.schema);
    rt.block_on(fixture.raw.batch_execute(&drop))
        .expect("drop the schema");
}

criterion_group!(benches, batch_insert);
criterion_main!(benches);
