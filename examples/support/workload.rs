//! The table, the fixture and the operations that the load test
//! (`examples/loadtest.rs`) and the criterion bench (`benches/crud.rs`)
//! share, so both measure the same thing. Each includes this file with
//! `#[path]`.
//!
//! Every operation has several implementations ([`Impl`]): pgactor in its
//! two statement modes (the default per-connection prepared-statement
//! cache, and unnamed statements for poolers), with shared reads, typed
//! (rows decoded into a struct) and by message, and two raw baselines
//! written the way a careful user writes them by hand on deadpool-postgres
//! and tokio-postgres: `prepare_cached` statements, and unnamed
//! `query_typed` statements (the PgBouncer-safe way). The raw baselines
//! send the SQL pgactor sends (same columns, same `RETURNING`, the list's
//! two statements pipelined on one connection) and decode every column
//! into a struct, so a ratio measures the adapter, not a different query.

// Two crates include this file, and each uses only part of it.
#![allow(dead_code)]

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, StatementCache};
use pgactor::{
    Call, Db, DbMsg, Filter, ListRequest, OpenOptions, PoolConfig, Query, ReadRequest, Record,
    Registry, SessionConfig, TxMsg, TxOptions, WriteOp, WriteRequest,
};
use ractor::call;
use tokio_postgres::config::SslMode;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, NoTls, Row};

/// Errors of an operation; `Send` because operations run in spawned tasks.
pub type OpError = Box<dyn std::error::Error + Send + Sync>;

/// `err` with its sources: tokio-postgres says only "db error" and keeps
/// the server's message in its source.
pub fn describe(err: &OpError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// The model every workload works on (table `item`).
pub const MODEL: &str = "Item";
/// Rows the fixture holds: ids 1..=ROWS.
pub const ROWS: i64 = 100_000;
/// tx_lock picks one of the rows 1..=HOT_ROWS, so callers contend for locks.
pub const HOT_ROWS: i64 = 100;
/// list_page's page size.
pub const PAGE: u64 = 50;
/// `qty` takes the values 0..QTY_RANGE, each in ROWS / QTY_RANGE rows
/// scattered over the table.
const QTY_RANGE: i64 = 10_000;
/// list_page's lower bound on `qty` is one of the top LIST_BAND values, so
/// 0.01% to 1% of the rows match (10 to 1,000, about 500 on average): the
/// count stays a few hundred index entries, not a scan of the table.
const LIST_BAND: i64 = 100;

/// The `Item` model: id bigint identity, sku text unique, qty bigint
/// indexed, price float8, note text nullable, and the timestamps pgactor keeps.
pub fn registry() -> pgactor::Result<Registry> {
    Registry::new().with_entity::<Item>()
}

/// pgactor's options for a measurement: the model, reads from the primary
/// (the read pool is then a second pool on the same server), and both
/// pools `size` connections, like each raw baseline's pool. `max_idle` is
/// `size` too: deadpool keeps every idle connection, and pgactor trimming
/// its idle set between cells would make it reconnect inside the next one.
pub fn configure(options: OpenOptions, size: usize) -> pgactor::Result<OpenOptions> {
    let pool = PoolConfig {
        max_open: Some(size),
        max_idle: Some(size),
        ..PoolConfig::default()
    };
    Ok(options
        .registry(registry()?)
        .read_dsn("")
        .write_pool(pool.clone())
        .read_pool(pool))
}

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Read one row by a random id.
    ReadPk,
    /// `WHERE qty >= $1 ORDER BY id LIMIT 50`, plus the total count.
    ListPage,
    /// Insert a row, `RETURNING` every column.
    Insert,
    /// Set `qty` of a random row, `RETURNING` every column.
    Update,
    /// BEGIN; `SELECT … FOR UPDATE` one of the hot rows; set its qty one
    /// lower; COMMIT.
    TxLock,
}

impl Workload {
    /// Every workload, in the order they run.
    pub const ALL: [Workload; 5] = [
        Workload::ReadPk,
        Workload::ListPage,
        Workload::Insert,
        Workload::Update,
        Workload::TxLock,
    ];

    /// Whether it changes the table, which [`Bench::reset`] then restores.
    pub fn writes(self) -> bool {
        !matches!(self, Workload::ReadPk | Workload::ListPage)
    }

    pub fn name(self) -> &'static str {
        match self {
            Workload::ReadPk => "read_pk",
            Workload::ListPage => "list_page",
            Workload::Insert => "insert",
            Workload::Update => "update",
            Workload::TxLock => "tx_lock",
        }
    }
}

/// The connections [`Impl::PgactorShared`]'s reads by id share: one lane
/// is one server backend, and on the 2-core test machine, whose cores the
/// server shares with the load generator, one measured best (two gave the
/// same throughput with a longer p99, three a longer p99 still).
pub const SHARED_LANES: usize = 1;

/// Who runs the operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impl {
    /// pgactor's `Db` and `Tx`, default path (prepared-statement cache).
    Pgactor,
    /// pgactor's typed path: `db.typed::<Item>()`, rows decoded straight
    /// into `Item` (as the raw baselines do by hand).
    PgactorTyped,
    /// pgactor's message path, as an actor calls it: `DbMsg`s to the
    /// supervisor and `TxMsg`s to the transaction's actor, with `call!`.
    PgactorMsg,
    /// deadpool-postgres, `prepare_cached` statements.
    RawPrepared,
    /// pgactor opened with `statement_cache(false)`: unnamed statements,
    /// as behind PgBouncer in transaction mode.
    PgactorUnnamed,
    /// pgactor opened with `shared_reads(SHARED_LANES)`: reads by id
    /// pipelined on shared connections (lists, writes and transactions as
    /// `Pgactor`).
    PgactorShared,
    /// deadpool-postgres, unnamed `query_typed` statements.
    RawUnnamed,
    /// pgactor opened with `coalesce_reads(false)`: one statement per read
    /// by id, however many wait at once (everything else as `Pgactor`).
    PgactorSingle,
}

impl Impl {
    /// Each pgactor mode next to the raw baseline that sends its statements
    /// the same way.
    pub const ALL: [Impl; 8] = [
        Impl::Pgactor,
        Impl::PgactorTyped,
        Impl::PgactorMsg,
        Impl::RawPrepared,
        Impl::PgactorSingle,
        Impl::PgactorShared,
        Impl::PgactorUnnamed,
        Impl::RawUnnamed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Impl::Pgactor => "pgactor",
            Impl::PgactorTyped => "pgactor-typed",
            Impl::PgactorMsg => "pgactor-msg",
            Impl::RawPrepared => "raw-prepared",
            Impl::PgactorUnnamed => "pgactor-unnamed",
            Impl::PgactorShared => "pgactor-shared",
            Impl::RawUnnamed => "raw-unnamed",
            Impl::PgactorSingle => "pgactor-single",
        }
    }

    /// The raw baseline this pgactor mode is held against.
    pub fn baseline(self) -> Option<Impl> {
        match self {
            Impl::Pgactor
            | Impl::PgactorTyped
            | Impl::PgactorMsg
            | Impl::PgactorShared
            | Impl::PgactorSingle => Some(Impl::RawPrepared),
            Impl::PgactorUnnamed => Some(Impl::RawUnnamed),
            Impl::RawPrepared | Impl::RawUnnamed => None,
        }
    }
}

/// The member of `all` called `name`.
pub fn by_name<T: Copy>(all: &[T], name_of: fn(T) -> &'static str, name: &str) -> Option<T> {
    all.iter().copied().find(|t| name_of(*t) == name)
}

/// SplitMix64: a fast, seedable generator for ids and values, so every
/// implementation can be fed the same sequence. (No dependency for this.)
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The inputs of one operation, each from its own bits of one random number.
struct Draw(u64);

impl Draw {
    /// A row of the fixture.
    fn id(&self) -> i64 {
        1 + (self.0 % ROWS as u64) as i64
    }
    /// One of the hot rows.
    fn hot(&self) -> i64 {
        1 + ((self.0 >> 32) % HOT_ROWS as u64) as i64
    }
    /// A qty as the fixture's rows have them.
    fn qty(&self) -> i64 {
        ((self.0 >> 17) % QTY_RANGE as u64) as i64
    }
    /// list_page's lower bound.
    fn floor(&self) -> i64 {
        QTY_RANGE - 1 - ((self.0 >> 40) % LIST_BAND as u64) as i64
    }
    fn price(&self) -> f64 {
        ((self.0 >> 44) % 100_000) as f64 / 100.0
    }
}

/// A row, every column typed: the model ([`registry`]), what the typed
/// implementation answers, and what the raw baselines decode by hand
/// (the record implementations answer a `Record` instead).
#[derive(Debug, Default, pgactor::Entity)]
#[pgactor(index(qty))]
pub struct Item {
    pub id: i64,
    #[pgactor(unique)]
    pub sku: String,
    pub qty: i64,
    pub price: f64,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Item {
    fn decode(row: &Row) -> Result<Item, tokio_postgres::Error> {
        Ok(Item {
            id: row.try_get(0)?,
            sku: row.try_get(1)?,
            qty: row.try_get(2)?,
            price: row.try_get(3)?,
            note: row.try_get(4)?,
            created_at: row.try_get(5)?,
            updated_at: row.try_get(6)?,
        })
    }

    /// The one row an operation by id answers.
    fn one(rows: Vec<Row>) -> Result<Item, OpError> {
        match rows.first() {
            Some(row) => Ok(Item::decode(row)?),
            None => Err("no such row".into()),
        }
    }
}

/// The statements, as pgactor renders them for this model: quoted names,
/// every column listed, the insert's columns in a `Record`'s (name) order.
struct Sql {
    table: String,
    read: String,
    lock: String,
    insert: String,
    update: String,
    page: String,
    count: String,
}

impl Sql {
    fn new(schema: &str) -> Sql {
        let table = format!("\"{schema}\".\"item\"");
        let columns =
            "\"id\", \"sku\", \"qty\", \"price\", \"note\", \"created_at\", \"updated_at\"";
        let by_id = format!("SELECT {columns} FROM {table} WHERE \"id\" = $1");
        Sql {
            lock: format!("{by_id} FOR UPDATE"),
            read: by_id,
            insert: format!(
                "INSERT INTO {table} (\"note\", \"price\", \"qty\", \"sku\") \
                 VALUES ($1, $2, $3, $4) RETURNING {columns}"
            ),
            update: format!(
                "UPDATE {table} SET \"qty\" = $1, \"updated_at\" = now() \
                 WHERE \"id\" = $2 RETURNING {columns}"
            ),
            page: format!(
                "SELECT {columns} FROM {table} WHERE \"qty\" >= $1 \
                 ORDER BY \"id\" ASC LIMIT $2 OFFSET $3"
            ),
            count: format!("SELECT count(*) FROM {table} WHERE \"qty\" >= $1"),
            table,
        }
    }
}

/// How a raw baseline sends its statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Prepared,
    Unnamed,
}

/// A connection as the raw baselines use it: a pooled connection or the
/// connection of an open transaction, with its statement cache (what
/// deadpool's `prepare_cached` uses on both).
#[derive(Clone, Copy)]
struct Conn<'a> {
    client: &'a Client,
    cache: &'a StatementCache,
    mode: Mode,
}

type Params<'a> = [(&'a (dyn ToSql + Sync), Type)];

impl Conn<'_> {
    async fn query(
        &self,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        match self.mode {
            Mode::Prepared => {
                let statement = self.cache.prepare(self.client, sql).await?;
                let values: Vec<_> = params.iter().map(|(value, _)| *value).collect();
                self.client.query(&statement, &values).await
            }
            Mode::Unnamed => self.client.query_typed(sql, params).await,
        }
    }
}

/// A deadpool pool as a careful user builds it: `Fast` recycling (no query
/// per checkout), like pgactor's pools.
fn raw_pool(url: &str, size: usize, application_name: &str) -> Result<Pool, OpError> {
    let mut config: tokio_postgres::Config = url.parse()?;
    // The raw pools connect in plain text; where pgactor might use TLS
    // (`prefer`, libpq's default, or stricter) the comparison would not be
    // like for like.
    if config.get_ssl_mode() != SslMode::Disable {
        let why = "the raw baselines connect without TLS: give a URL with sslmode=disable";
        return Err(why.into());
    }
    config.application_name(application_name);
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Ok(Pool::builder(manager).max_size(size).build()?)
}

/// The fixture: pgactor opened on the table (in each statement mode), and
/// one raw pool per baseline on the same server, each as large as each of
/// pgactor's pools.
pub struct Bench {
    /// pgactor, default options: the one that made the table.
    pub db: Db,
    /// pgactor in its other modes, once [`Bench::open_variant`] ran.
    variants: Vec<(Impl, Db)>,
    prepared: Pool,
    unnamed: Pool,
    sql: Sql,
    /// Makes inserted skus unique across runs on one schema.
    nonce: String,
    inserted: AtomicU64,
}

impl Bench {
    /// `db` must have been opened with [`configure`]; `url` is the server
    /// it writes to.
    pub fn new(db: Db, url: &str, size: usize) -> Result<Bench, OpError> {
        let sql = Sql::new(&db.session().schema);
        let nonce = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        Ok(Bench {
            prepared: raw_pool(url, size, "pgactor-bench-raw-prepared")?,
            unnamed: raw_pool(url, size, "pgactor-bench-raw-unnamed")?,
            db,
            variants: Vec::new(),
            sql,
            nonce,
            inserted: AtomicU64::new(0),
        })
    }

    /// Open pgactor again on the same server and schema in the mode of
    /// `imp` ([`Impl::PgactorUnnamed`], [`Impl::PgactorShared`] or
    /// [`Impl::PgactorSingle`]): its
    /// own pools of `size`, like every implementation.
    pub async fn open_variant(&mut self, imp: Impl, url: &str, size: usize) -> Result<(), OpError> {
        let session = SessionConfig {
            schema: Some(self.db.session().schema.clone()),
            application_name: Some(format!("pgactor-bench-{}", imp.name())),
            ..SessionConfig::default()
        };
        let options = configure(OpenOptions::new(url).session(session), size)?.auto_migrate(false);
        let options = match imp {
            Impl::PgactorUnnamed => options.statement_cache(false),
            Impl::PgactorShared => options.shared_reads(SHARED_LANES),
            Impl::PgactorSingle => options.coalesce_reads(false),
            other => return Err(format!("{} is not a pgactor variant", other.name()).into()),
        };
        self.variants.push((imp, options.open().await?));
        Ok(())
    }

    /// Close every pgactor handle (closing one twice is harmless).
    pub async fn close(&self) {
        self.db.close().await;
        for (_, db) in &self.variants {
            db.close().await;
        }
    }

    /// Run SQL on the server, outside any measurement.
    pub async fn execute(&self, sql: &str) -> Result<(), OpError> {
        Ok(self.unnamed.get().await?.batch_execute(sql).await?)
    }

    /// The server's version, e.g. `15.4 (Debian 15.4-1)`.
    pub async fn server_version(&self) -> Result<String, OpError> {
        let client = self.unnamed.get().await?;
        let sql = "SELECT current_setting('server_version')";
        Ok(client.query_one(sql, &[]).await?.try_get(0)?)
    }

    /// Fill the (empty) table with ROWS rows in one statement, then VACUUM
    /// ANALYZE it so the planner knows it and the visibility map is set.
    pub async fn fill(&self) -> Result<(), OpError> {
        let table = &self.sql.table;
        // (g * 7919) % 10000 walks every qty value once per 10,000 rows, in
        // an order unrelated to the id; a quarter of the notes are NULL.
        self.execute(&format!(
            "INSERT INTO {table} (\"sku\", \"qty\", \"price\", \"note\") \
             SELECT 'sku-' || g, (g * 7919) % {QTY_RANGE}, ((g * 104729) % 100000) / 100.0, \
                    CASE WHEN g % 4 = 0 THEN NULL ELSE 'note ' || g END \
             FROM generate_series(1, {ROWS}::bigint) AS g"
        ))
        .await?;
        self.execute(&format!("VACUUM ANALYZE {table}")).await
    }

    /// Delete the rows inserts added and vacuum, so every measurement
    /// starts from the same table: each update (in `update` and `tx_lock`)
    /// leaves a dead row version and, `qty` being indexed, dead entries in
    /// every index; left there, the hot rows' lookups in later cells would
    /// wade through more and more of them.
    pub async fn reset(&self) -> Result<(), OpError> {
        let table = &self.sql.table;
        self.execute(&format!("DELETE FROM {table} WHERE \"id\" > {ROWS}"))
            .await?;
        // Separately: VACUUM cannot run inside the implicit transaction of
        // a multi-statement query.
        self.execute(&format!("VACUUM {table}")).await
    }

    /// One operation of `workload` by `imp`, its inputs drawn from `random`.
    pub async fn run(&self, imp: Impl, workload: Workload, random: u64) -> Result<(), OpError> {
        let draw = Draw(random);
        match imp {
            Impl::Pgactor => self.pgactor(&self.db, workload, draw).await,
            Impl::PgactorTyped => self.pgactor_typed(&self.db, workload, draw).await,
            Impl::PgactorMsg => self.pgactor_msg(&self.db, workload, draw).await,
            Impl::PgactorUnnamed | Impl::PgactorShared | Impl::PgactorSingle => {
                match self.variants.iter().find(|(i, _)| *i == imp) {
                    Some((_, db)) => self.pgactor(db, workload, draw).await,
                    None => Err(format!("{} needs Bench::open_variant first", imp.name()).into()),
                }
            }
            Impl::RawPrepared => {
                self.raw(&self.prepared, Mode::Prepared, workload, draw)
                    .await
            }
            Impl::RawUnnamed => self.raw(&self.unnamed, Mode::Unnamed, workload, draw).await,
        }
    }

    /// A new row's sku: unique.
    fn sku(&self) -> String {
        let n = self.inserted.fetch_add(1, Ordering::Relaxed);
        format!("new-{}-{n}", self.nonce)
    }

    async fn raw(
        &self,
        pool: &Pool,
        mode: Mode,
        workload: Workload,
        draw: Draw,
    ) -> Result<(), OpError> {
        let sql = &self.sql;
        let mut client = pool.get().await?;
        let conn = Conn {
            client: &client,
            cache: &client.statement_cache,
            mode,
        };
        match workload {
            Workload::ReadPk => {
                let rows = conn.query(&sql.read, &[(&draw.id(), Type::INT8)]).await?;
                black_box(Item::one(rows)?);
            }
            Workload::ListPage => {
                let floor = draw.floor();
                let (limit, offset) = (PAGE as i64, 0_i64);
                let page: &Params = &[
                    (&floor, Type::INT8),
                    (&limit, Type::INT8),
                    (&offset, Type::INT8),
                ];
                let count: &Params = &[(&floor, Type::INT8)];
                // Both go out before either answer is read: one round trip.
                let (rows, count) =
                    tokio::try_join!(conn.query(&sql.page, page), conn.query(&sql.count, count))?;
                let rows: Vec<Item> = rows.iter().map(Item::decode).collect::<Result<_, _>>()?;
                let total: i64 = count
                    .first()
                    .ok_or("count(*) answered no row")?
                    .try_get(0)?;
                black_box((rows, total));
            }
            Workload::Insert => {
                let (sku, qty, price) = (self.sku(), draw.qty(), draw.price());
                let params: &Params = &[
                    (&"inserted", Type::TEXT),
                    (&price, Type::FLOAT8),
                    (&qty, Type::INT8),
                    (&sku, Type::TEXT),
                ];
                black_box(Item::one(conn.query(&sql.insert, params).await?)?);
            }
            Workload::Update => {
                let params: &Params = &[(&draw.qty(), Type::INT8), (&draw.id(), Type::INT8)];
                black_box(Item::one(conn.query(&sql.update, params).await?)?);
            }
            Workload::TxLock => {
                let id = draw.hot();
                // Rolls back if dropped before commit, like pgactor's Tx.
                let tx = client.transaction().await?;
                let conn = Conn {
                    client: tx.client(),
                    cache: &tx.statement_cache,
                    mode,
                };
                let locked = Item::one(conn.query(&sql.lock, &[(&id, Type::INT8)]).await?)?;
                let params: &Params = &[(&(locked.qty - 1), Type::INT8), (&id, Type::INT8)];
                black_box(Item::one(conn.query(&sql.update, params).await?)?);
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// One operation through pgactor (either statement mode).
    async fn pgactor(&self, db: &Db, workload: Workload, draw: Draw) -> Result<(), OpError> {
        match workload {
            Workload::ReadPk => drop(db.read(MODEL, draw.id()).await?),
            Workload::ListPage => {
                let query = Query::new()
                    .filter(Filter::ge("qty", draw.floor()))
                    .limit(PAGE);
                drop(db.list(MODEL, query).await?);
            }
            Workload::Insert => {
                let row = Record::new()
                    .with("sku", self.sku())
                    .with("qty", draw.qty())
                    .with("price", draw.price())
                    .with("note", "inserted");
                drop(db.create(MODEL, row).await?);
            }
            Workload::Update => {
                let patch = Record::new().with("qty", draw.qty());
                drop(db.update(MODEL, draw.id(), patch).await?);
            }
            Workload::TxLock => {
                let id = draw.hot();
                let tx = db.begin(TxOptions::default()).await?;
                let qty: i64 = tx.lock_for_update(MODEL, id).await?.get("qty")?;
                let patch = Record::new().with("qty", qty - 1);
                drop(tx.update(MODEL, id, patch).await?);
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// [`Bench::pgactor`]'s operations on the typed path.
    async fn pgactor_typed(&self, db: &Db, workload: Workload, draw: Draw) -> Result<(), OpError> {
        let items = db.typed::<Item>();
        match workload {
            Workload::ReadPk => drop(items.read(draw.id()).await?),
            Workload::ListPage => {
                let query = Query::new().filter(Item::QTY.ge(draw.floor())).limit(PAGE);
                drop(items.list(query).await?);
            }
            Workload::Insert => {
                let row = Item {
                    sku: self.sku(),
                    qty: draw.qty(),
                    price: draw.price(),
                    note: Some("inserted".into()),
                    ..Item::default()
                };
                drop(items.create(&row).await?);
            }
            Workload::Update => {
                let patch = Record::new().with("qty", draw.qty());
                drop(items.patch(draw.id(), patch).await?);
            }
            Workload::TxLock => {
                let id = draw.hot();
                let tx = db.begin(TxOptions::default()).await?;
                let in_tx = tx.typed::<Item>();
                let qty = in_tx.lock_for_update(id).await?.qty;
                drop(in_tx.patch(id, Record::new().with("qty", qty - 1)).await?);
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// [`Bench::pgactor`]'s operations as messages, the way an actor sends
    /// them.
    async fn pgactor_msg(&self, db: &Db, workload: Workload, draw: Draw) -> Result<(), OpError> {
        let supervisor = db.actor();
        let read = |id: i64| ReadRequest {
            model: MODEL.into(),
            id: id.into(),
        };
        let write = |op: WriteOp| WriteRequest {
            model: MODEL.into(),
            op,
        };
        match workload {
            Workload::ReadPk => {
                let req = read(draw.id());
                drop(call!(supervisor, DbMsg::Read, req, Call::default()).map_err(gone)??);
            }
            Workload::ListPage => {
                let req = ListRequest {
                    model: MODEL.into(),
                    query: Query::new()
                        .filter(Filter::ge("qty", draw.floor()))
                        .limit(PAGE),
                };
                drop(call!(supervisor, DbMsg::List, req, Call::default()).map_err(gone)??);
            }
            Workload::Insert => {
                let row = Record::new()
                    .with("sku", self.sku())
                    .with("qty", draw.qty())
                    .with("price", draw.price())
                    .with("note", "inserted");
                let req = write(WriteOp::Create(row));
                drop(call!(supervisor, DbMsg::Write, req, Call::default()).map_err(gone)??);
            }
            Workload::Update => {
                let patch = Record::new().with("qty", draw.qty());
                let req = write(WriteOp::Update {
                    id: draw.id().into(),
                    patch,
                });
                drop(call!(supervisor, DbMsg::Write, req, Call::default()).map_err(gone)??);
            }
            Workload::TxLock => {
                let id = draw.hot();
                // Kept until the commit: dropping the last `Tx` rolls back.
                let tx = call!(
                    supervisor,
                    DbMsg::Begin,
                    TxOptions::default(),
                    Call::default()
                )
                .map_err(gone)??;
                let actor = tx.actor();
                let row = call!(actor, TxMsg::LockForUpdate, read(id)).map_err(gone)??;
                let qty: i64 = row.get("qty")?;
                let patch = Record::new().with("qty", qty - 1);
                let req = write(WriteOp::Update {
                    id: id.into(),
                    patch,
                });
                drop(call!(actor, TxMsg::Write, req).map_err(gone)??);
                call!(actor, TxMsg::Commit).map_err(gone)??;
            }
        }
        Ok(())
    }
}

/// A message the adapter's actors did not answer (they are gone).
fn gone<E: std::fmt::Display>(err: E) -> OpError {
    err.to_string().into()
}
