//! pgactor next to the raw driver, one criterion group per operation.
//!
//! Needs a server: `DATABASE_URL` or `PGACTOR_PRIMARY_URL` (scripts/test.sh
//! sets the latter). `cargo bench --bench crud`; the HTML report puts each
//! group's pgactor and raw lines side by side.

use criterion::{criterion_group, criterion_main, Criterion};
use deadpool_postgres::{Manager, Pool};
use pgactor::{Db, Field, FieldType, Model, Record, Registry, SessionConfig};
use tokio::runtime::Runtime;
use tokio_postgres::types::Type;

fn server_url() -> String {
    std::env::var("DATABASE_URL")
        .or_else(|_| std::env::var("PGACTOR_PRIMARY_URL"))
        .expect("set DATABASE_URL or PGACTOR_PRIMARY_URL (scripts/test.sh does)")
}

struct Fixture {
    db: Db,
    raw: Pool,
    id: uuid::Uuid,
    read_sql: String,
}

async fn fixture() -> Fixture {
    let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
    let mut registry = Registry::new();
    registry
        .register(Model::new("Item").field(Field::new("qty", FieldType::I64)))
        .expect("model");
    let db = pgactor::OpenOptions::new(server_url())
        .registry(registry)
        .session(SessionConfig {
            schema: Some(schema.clone()),
            ..SessionConfig::default()
        })
        .open()
        .await
        .expect("open");
    let row = db
        .create("Item", Record::new().with("qty", 1_i64))
        .await
        .expect("seed row");
    let raw = Pool::builder(Manager::new(
        server_url().parse().expect("dsn"),
        tokio_postgres::NoTls,
    ))
    .max_size(4)
    .build()
    .expect("raw pool");
    Fixture {
        db,
        raw,
        id: row.get("id").expect("id"),
        read_sql: format!(
            "SELECT id, qty, created_at, updated_at FROM \"{schema}\".item WHERE id = $1"
        ),
    }
}

fn read_by_id(c: &mut Criterion) {
    let rt = Runtime::new().expect("runtime");
    let f = rt.block_on(fixture());
    let mut group = c.benchmark_group("read_by_id");
    group.bench_function("pgactor", |b| {
        b.to_async(&rt)
            .iter(|| async { f.db.read("Item", f.id).await.expect("read") })
    });
    group.bench_function("raw-unnamed", |b| {
        b.to_async(&rt).iter(|| async {
            let client = f.raw.get().await.expect("checkout");
            client
                .query_typed(&f.read_sql, &[(&f.id, Type::UUID)])
                .await
                .expect("query")
        })
    });
    group.finish();
    rt.block_on(f.db.close());
}

criterion_group!(benches, read_by_id);
criterion_main!(benches);
