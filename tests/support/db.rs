//! The adapter under test: fresh schema and application names, models,
//! registries, session settings and open options to open it with, a stock
//! row to work on, and values to give it.

use std::time::Duration;

use pgactor::{Db, Field, FieldType, Index, Model, Record, Registry, ReplicaConfig, SessionConfig};

use super::topology::{primary_url, TempDatabase};

/// A schema name no other test (or earlier run) uses.
pub fn unique_schema(prefix: &str) -> String {
    format!("t_{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// An `application_name` no other test uses (at most 63 bytes).
pub fn unique_app_name(prefix: &str) -> String {
    format!(
        "pga_{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// The seed's stock example as a model.
pub fn stock_model() -> Model {
    Model::new("StockBalance")
        .field(Field::new("sku", FieldType::Text).unique())
        .field(Field::new("quantity", FieldType::I64).default_value(0_i64))
        .field(Field::new("note", FieldType::Text).nullable())
        .index(Index::on(["quantity"]))
}

/// A registry holding `models`.
pub fn registry(models: impl IntoIterator<Item = Model>) -> Registry {
    let mut registry = Registry::new();
    for model in models {
        registry.register(model).expect("valid model");
    }
    registry
}

/// Session settings that put everything in `schema`.
pub fn in_schema(schema: &str) -> SessionConfig {
    SessionConfig {
        schema: Some(schema.into()),
        ..SessionConfig::default()
    }
}

/// Session settings that name every session `app` (for pg_stat_activity
/// checks), defaults otherwise.
pub fn named_session(app: &str) -> SessionConfig {
    SessionConfig {
        application_name: Some(app.to_owned()),
        ..SessionConfig::default()
    }
}

/// Session settings that put everything in `schema` and name every
/// session `app`.
pub fn tagged_session(schema: &str, app: &str) -> SessionConfig {
    SessionConfig {
        schema: Some(schema.to_owned()),
        ..named_session(app)
    }
}

/// Open on the primary only, in a fresh schema, with `models`.
pub async fn open_primary(prefix: &str, models: impl IntoIterator<Item = Model>) -> (Db, String) {
    let schema = unique_schema(prefix);
    let db = pgactor::OpenOptions::new(primary_url())
        .registry(registry(models))
        .session(in_schema(&schema))
        .open()
        .await
        .expect("open");
    (db, schema)
}

/// Open on two databases of the test's own on the primary, each with the
/// stock table: writes land in the first, reads come from the second
/// (AutoMigrate runs on the write side only, so the read side is migrated
/// first). [`TempDatabase::remove`] drops them.
pub async fn open_split(prefix: &str) -> (Db, TempDatabase, TempDatabase) {
    let write = TempDatabase::create(&format!("{prefix}_w")).await;
    let read = TempDatabase::create(&format!("{prefix}_r")).await;
    pgactor::open(&read.url, "", registry([stock_model()]))
        .await
        .expect("migrate the read database")
        .close()
        .await;
    let db = pgactor::open(&write.url, &read.url, registry([stock_model()]))
        .await
        .expect("open");
    (db, write, read)
}

/// Open on the primary in a fresh schema (`<prefix>_…`) whose name is also
/// the sessions' application_name, so a test can find them; both pools use
/// `pool`.
pub async fn open_tagged(prefix: &str, pool: pgactor::PoolConfig) -> (Db, String) {
    open_tagged_at(&primary_url(), prefix, pool).await
}

/// [`open_tagged`] on the server at `url` (e.g. a proxy in front of the primary).
pub async fn open_tagged_at(url: &str, prefix: &str, pool: pgactor::PoolConfig) -> (Db, String) {
    let schema = unique_schema(prefix);
    let db = tagged_options(url, [stock_model()], pool, &schema, &schema)
        .open()
        .await
        .expect("open");
    (db, schema)
}

/// Options for `url` with `models`, both pools `pool`, everything in
/// `schema` and every session named `app` (for pg_stat_activity checks).
pub fn tagged_options(
    url: &str,
    models: impl IntoIterator<Item = Model>,
    pool: pgactor::PoolConfig,
    schema: &str,
    app: &str,
) -> pgactor::OpenOptions {
    pgactor::OpenOptions::new(url)
        .registry(registry(models))
        .write_pool(pool.clone())
        .read_pool(pool)
        .session(tagged_session(schema, app))
}

/// Create a `StockBalance` row with `sku`; answer its id.
pub async fn create_stock(db: &Db, sku: &str) -> uuid::Uuid {
    db.create("StockBalance", Record::new().with("sku", sku))
        .await
        .expect("create a stock row")
        .get("id")
        .expect("id")
}

/// A LIKE pattern matching `s` literally (backslash is LIKE's escape).
pub fn like_literal(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// The adapter on `write` with its reads on `read` (`""`: none), watching
/// the replica as `replica` says, its stock model in `schema`.
pub async fn open_with_replica(
    write: &str,
    read: &str,
    replica: ReplicaConfig,
    schema: &str,
) -> Db {
    open_with_replicas(write, &[read], replica, schema).await
}

/// The adapter on `write` reading from the replicas of `reads` (`""`s
/// left out), each watched as `replica` says, its stock model in `schema`.
pub async fn open_with_replicas(
    write: &str,
    reads: &[&str],
    replica: ReplicaConfig,
    schema: &str,
) -> Db {
    pgactor::OpenOptions::new(write)
        .read_dsns(reads.iter().copied())
        .registry(registry([stock_model()]))
        .replica(replica)
        .session(in_schema(schema))
        .open()
        .await
        .expect("open")
}

/// A replica watch that probes every 100 ms, so tests see a change soon.
pub fn fast_probe() -> ReplicaConfig {
    ReplicaConfig {
        poll_interval: Duration::from_millis(100),
        ..ReplicaConfig::default()
    }
}

/// The seed's stock balance as a typed entity: the same model as
/// [`stock_model`], so dynamic and typed calls share a table.
#[derive(Debug, Clone, PartialEq, Default, pgactor::Entity)]
#[pgactor(index(quantity))]
pub struct StockBalance {
    pub id: uuid::Uuid,
    #[pgactor(unique)]
    pub sku: String,
    #[pgactor(default = 0)]
    pub quantity: i64,
    pub note: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl StockBalance {
    /// A row to create: `sku` with `quantity` units.
    pub fn new(sku: &str, quantity: i64) -> StockBalance {
        StockBalance {
            sku: sku.into(),
            quantity,
            ..StockBalance::default()
        }
    }
}

/// The ids of `model`'s rows matching `filter`, in id order (UUIDv7 ids:
/// creation order), listed as records.
pub async fn ids_matching(db: &Db, model: &str, filter: pgactor::Filter) -> Vec<uuid::Uuid> {
    let page = db
        .list(model, pgactor::Query::new().filter(filter).sort_asc("id"))
        .await
        .expect("list");
    page.rows.iter().map(|r| r.get("id").expect("id")).collect()
}

/// [`ids_matching`], listed as the entity `T` whose id `id` reads.
pub async fn typed_ids_matching<T: pgactor::Entity>(
    db: &Db,
    filter: pgactor::Filter,
    id: fn(&T) -> uuid::Uuid,
) -> Vec<uuid::Uuid> {
    let page = db
        .typed::<T>()
        .list(pgactor::Query::new().filter(filter).sort_asc("id"))
        .await
        .expect("list");
    page.rows.iter().map(id).collect()
}
