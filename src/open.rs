//! Opening the adapter: the open functions and [`OpenOptions`], which
//! build the pools, check the servers, run AutoMigrate and start the
//! supervisor.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorCell};

use crate::config::{PoolConfig, PoolSettings, PoolerMode, Role, SessionConfig, SessionSettings};
use crate::db::{Db, DbInner};
use crate::error::{Error, ErrorKind, Result};
use crate::listener::ListenerContext;
use crate::migrate::{auto_migrate, unreplayed_schema};
use crate::pool::{
    Coalescer, ConnectionPool, InFlight, PoolContext, ProbeLink, Replica, ReplicaConfig,
    ReplicaSet, ReplicaWatch, RunOptions, SharedReads, MAX_REPLICAS,
};
use crate::schema::{QueryBounds, Registry};
use crate::sql::{citext_schema, Catalog, Statements};
use crate::supervisor::{Routes, Supervisor, SupervisorArgs};
use crate::telemetry::{Observed, DEFAULT_SLOW_OPERATION};
use crate::tx::SpareActors;
use crate::wire::{
    check_server_defaults, client_config, ensure_schema, ConnectHook, Dsn, HookFuture,
    NewConnection,
};

/// Open the adapter with the production defaults.
///
/// `write_dsn` is required; pass `""` as `read_dsn` to read from the primary.
/// Both take libpq URLs (`postgres://user:pass@host:5432/db?sslmode=disable`)
/// or key=value strings (`host=… user=… dbname=…`). A `read_dsn` naming
/// several hosts (`postgres://app@r1:5432,r2:5432/db`) reads from each of
/// them as a replica ([`OpenOptions::read_dsns`]). Opening connects once
/// on each pool, creates the schema if needed and runs AutoMigrate.
///
/// ```no_run
/// # async fn demo(registry: pgactor::Registry) -> pgactor::Result<()> {
/// let db = pgactor::open(
///     &std::env::var("DB_WRITE_URL").unwrap(),
///     &std::env::var("DB_READ_URL").unwrap_or_default(),
///     registry,
/// ).await?;
/// # let _ = db; Ok(()) }
/// ```
pub async fn open(write_dsn: &str, read_dsn: &str, registry: Registry) -> Result<Db> {
    OpenOptions::new(write_dsn)
        .read_dsn(read_dsn)
        .registry(registry)
        .open()
        .await
}

/// [`open`] with a [`PoolConfig`] for each pool and one [`SessionConfig`].
/// Every unset field takes the default [`open`] uses.
///
/// ```no_run
/// # async fn demo(write: &str, read: &str, registry: pgactor::Registry) -> pgactor::Result<()> {
/// use std::time::Duration;
/// use pgactor::{PoolConfig, SessionConfig};
/// let db = pgactor::open_with_config(
///     write, read, registry,
///     PoolConfig { max_open: Some(20), ..Default::default() },
///     PoolConfig { max_open: Some(60), ..Default::default() },
///     SessionConfig {
///         statement_timeout: Some(Duration::from_secs(10)),
///         application_name: Some("orders-api".into()),
///         schema: Some("orders".into()),
///         ..Default::default()
///     },
/// ).await?;
/// # let _ = db; Ok(()) }
/// ```
pub async fn open_with_config(
    write_dsn: &str,
    read_dsn: &str,
    registry: Registry,
    write_pool: PoolConfig,
    read_pool: PoolConfig,
    session: SessionConfig,
) -> Result<Db> {
    OpenOptions::new(write_dsn)
        .read_dsn(read_dsn)
        .registry(registry)
        .write_pool(write_pool)
        .read_pool(read_pool)
        .session(session)
        .open()
        .await
}

/// [`open`], panicking on error: a one-liner for start-up code where a
/// database that cannot be opened means the process cannot run.
pub async fn must_open(write_dsn: &str, read_dsn: &str, registry: Registry) -> Db {
    match open(write_dsn, read_dsn, registry).await {
        Ok(db) => db,
        Err(err) => panic!("pgactor: cannot open the database: {err}"),
    }
}

/// Every option of opening the adapter, builder style. [`open`] and
/// [`open_with_config`] are shorthands for it.
///
/// ```no_run
/// # async fn demo(registry: pgactor::Registry) -> pgactor::Result<()> {
/// let db = pgactor::OpenOptions::new("postgres://app@db/shop")
///     .registry(registry)
///     .auto_migrate(false)
///     .open()
///     .await?;
/// # let _ = db; Ok(()) }
/// ```
#[derive(Clone)]
pub struct OpenOptions {
    write_dsn: String,
    /// One per replica, or several hosts in one; none: reads on the primary.
    read_dsns: Vec<String>,
    registry: Registry,
    write_pool: PoolConfig,
    read_pool: PoolConfig,
    session: SessionConfig,
    replica: ReplicaConfig,
    auto_migrate: bool,
    pooler: PoolerMode,
    /// `None`: prepared in direct mode, unnamed in pooler mode.
    statement_cache: Option<bool>,
    /// Connections reads outside transactions share; 0: none.
    shared_reads: usize,
    /// Whether concurrent reads by id of one model share one statement.
    coalesce_reads: bool,
    /// The largest page a `List` answers.
    max_page: u64,
    /// Prepared statements kept per connection.
    statement_cache_size: usize,
    /// Notifications a subscription may have sent and not yet taken.
    notification_buffer: usize,
    /// Channels the listener LISTENs on at most.
    max_channels: usize,
    /// The actor the adapter's supervisor is linked under, if any.
    linked_to: Option<ActorCell>,
    /// Run on every new pooled connection after its session settings.
    on_connect: ConnectHook,
    /// The bounds on every query's shape.
    query_bounds: QueryBounds,
    /// The bounds of models that have their own.
    model_bounds: Vec<(String, QueryBounds)>,
    /// The slow-operation event's threshold; zero: no event.
    slow_operation: Duration,
}

impl std::fmt::Debug for OpenOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // DSNs may hold passwords: show only what parses, and never the string.
        let target = |dsn: &str, role| Dsn::parse(dsn, role).map(|d| d.target).unwrap_or_default();
        let reads: Vec<String> = self
            .read_dsns
            .iter()
            .map(|dsn| target(dsn, Role::Read))
            .collect();
        f.debug_struct("OpenOptions")
            .field("write", &target(&self.write_dsn, Role::Write))
            .field("read", &reads)
            .field("write_pool", &self.write_pool)
            .field("read_pool", &self.read_pool)
            .field("session", &self.session)
            .field("replica", &self.replica)
            .field("auto_migrate", &self.auto_migrate)
            .field("pooler", &self.pooler)
            .field("statement_cache", &self.statement_cache)
            .field("shared_reads", &self.shared_reads)
            .field("coalesce_reads", &self.coalesce_reads)
            .field("max_page", &self.max_page)
            .field("statement_cache_size", &self.statement_cache_size)
            .field("notification_buffer", &self.notification_buffer)
            .field("max_channels", &self.max_channels)
            .field("linked_to", &self.linked_to.as_ref().map(ActorCell::get_id))
            .field("on_connect", &self.on_connect)
            .field("query_bounds", &self.query_bounds)
            .field("model_bounds", &self.model_bounds)
            .field("slow_operation", &self.slow_operation)
            .finish()
    }
}

impl OpenOptions {
    /// Options for the primary at `write_dsn`, with every default.
    pub fn new(write_dsn: impl Into<String>) -> OpenOptions {
        OpenOptions {
            write_dsn: write_dsn.into(),
            read_dsns: Vec::new(),
            registry: Registry::new(),
            write_pool: PoolConfig::default(),
            read_pool: PoolConfig::default(),
            session: SessionConfig::default(),
            replica: ReplicaConfig::default(),
            auto_migrate: true,
            pooler: PoolerMode::Direct,
            statement_cache: None,
            shared_reads: 0,
            coalesce_reads: true,
            max_page: crate::schema::MAX_PAGE,
            statement_cache_size: crate::pool::DEFAULT_STATEMENT_CACHE_SIZE,
            notification_buffer: crate::listener::DEFAULT_NOTIFICATION_BUFFER,
            max_channels: crate::listener::DEFAULT_MAX_CHANNELS,
            linked_to: None,
            on_connect: ConnectHook::default(),
            query_bounds: QueryBounds::default(),
            model_bounds: Vec::new(),
            slow_operation: DEFAULT_SLOW_OPERATION,
        }
    }

    /// The replica to read from; `""` (the default) reads from the primary.
    /// A DSN naming several hosts reads from each of them as a replica, as
    /// [`OpenOptions::read_dsns`] does. Replaces the read DSNs given before.
    pub fn read_dsn(mut self, dsn: impl Into<String>) -> OpenOptions {
        let dsn = dsn.into();
        self.read_dsns = match dsn.trim().is_empty() {
            true => Vec::new(),
            false => vec![dsn],
        };
        self
    }

    /// The replicas to read from, one DSN each (a DSN naming several
    /// hosts, `host=r1,r2 port=5432,5433` or `postgres://app@r1,r2/db`,
    /// gives one replica per host, each with the DSN's other options); none
    /// (the default) reads from the primary. Replaces the read DSNs given
    /// before. At most [`crate::MAX_REPLICAS`] replicas in all, each named
    /// once (`host:port`): `open` refuses more, or one named twice, with
    /// [`ErrorKind::Config`].
    ///
    /// Each replica gets a pool of its own with the read pool's settings
    /// ([`OpenOptions::read_pool`]: `max_open` connections to each
    /// replica), a watch of its own ([`OpenOptions::replica`]: the same
    /// settings for each) and its own [`OpenOptions::shared_reads`] lanes.
    /// A read outside a transaction goes to the replica with the fewest
    /// operations in flight among those up, not promoted and within
    /// `max_lag` (ties in turn), and to the primary when there is none;
    /// `open` connects once to each replica, and fails when one cannot
    /// be reached.
    ///
    /// ```no_run
    /// # async fn demo(registry: pgactor::Registry) -> pgactor::Result<()> {
    /// let db = pgactor::OpenOptions::new("postgres://app@primary/shop")
    ///     .read_dsns(["postgres://app@replica-1/shop", "postgres://app@replica-2/shop"])
    ///     .registry(registry)
    ///     .open()
    ///     .await?;
    /// # let _ = db; Ok(()) }
    /// ```
    pub fn read_dsns<I>(mut self, dsns: I) -> OpenOptions
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.read_dsns = dsns
            .into_iter()
            .map(Into::into)
            .filter(|dsn: &String| !dsn.trim().is_empty())
            .collect();
        self
    }

    /// The models.
    pub fn registry(mut self, registry: Registry) -> OpenOptions {
        self.registry = registry;
        self
    }

    /// The write pool's settings.
    pub fn write_pool(mut self, config: PoolConfig) -> OpenOptions {
        self.write_pool = config;
        self
    }

    /// The read pool's settings.
    pub fn read_pool(mut self, config: PoolConfig) -> OpenOptions {
        self.read_pool = config;
        self
    }

    /// The session settings of every connection.
    pub fn session(mut self, config: SessionConfig) -> OpenOptions {
        self.session = config;
        self
    }

    /// How reads treat the replicas (fallback, maximum lag, probe
    /// interval), each replica alike; used only with a read DSN.
    pub fn replica(mut self, config: ReplicaConfig) -> OpenOptions {
        self.replica = config;
        self
    }

    /// Prepare each statement once per connection and reuse it: about half
    /// the server work of sending it unnamed each time. On by default, off
    /// by default in [`PoolerMode::Transaction`]: a pooler that keeps no
    /// prepared statements across transactions (PgBouncer in transaction
    /// mode before 1.21) needs statements sent unnamed, parsed on every
    /// execution. An explicit call wins over the mode's default, e.g.
    /// `true` behind PgBouncer 1.21 or later with `max_prepared_statements`.
    pub fn statement_cache(mut self, enabled: bool) -> OpenOptions {
        self.statement_cache = Some(enabled);
        self
    }

    /// Log each operation that takes `threshold` or longer (default
    /// [`crate::DEFAULT_SLOW_OPERATION`], 1 s; `Duration::ZERO`: never) in
    /// one WARN event, target `pgactor.slow`, with its operation, table,
    /// duration and statement text (placeholders, never the values bound;
    /// raw SQL as written), in the operation's span. The time counted is
    /// the caller's: the wait for a connection, the statement, and for a
    /// stream, until its last row is taken.
    ///
    /// ```no_run
    /// # async fn demo(url: &str) -> pgactor::Result<()> {
    /// use std::time::Duration;
    /// let db = pgactor::OpenOptions::new(url)
    ///     .slow_operation(Duration::from_millis(250))
    ///     .open()
    ///     .await?;
    /// # let _ = db; Ok(()) }
    /// ```
    pub fn slow_operation(mut self, threshold: Duration) -> OpenOptions {
        self.slow_operation = threshold;
        self
    }

    /// How many prepared statements each connection keeps (default
    /// [`crate::DEFAULT_STATEMENT_CACHE_SIZE`] = 256; at least 1), when
    /// statements are prepared ([`OpenOptions::statement_cache`]). Every
    /// `List` filter shape and `update` patch shape is a statement text of
    /// its own, and each prepared statement costs its server backend memory
    /// (measured: about 18 KiB each for list statements); past this size
    /// the least recently used one is closed on the server, counted in
    /// [`crate::PoolStats::statements_evicted`], and prepared again when
    /// next used. A statement text longer than 16 KiB (a filter of
    /// thousands of terms) is never kept: it is sent unnamed.
    pub fn statement_cache_size(mut self, statements: usize) -> OpenOptions {
        self.statement_cache_size = statements;
        self
    }

    /// How many notifications each subscription ([`Db::subscribe`]) may
    /// have been sent and not yet taken (default
    /// [`crate::DEFAULT_NOTIFICATION_BUFFER`] = 1,024; at least 1). A
    /// subscriber that falls this far behind on a channel gets a
    /// [`crate::Notification::Gap`] and no notification of that channel until it
    /// has taken every one sent before and the `Gap`: re-read on the `Gap`.
    /// So a slow subscriber's mailbox holds at most this many notifications
    /// (each at most 8,000 bytes of payload) and one `Gap`, however fast
    /// they come.
    /// It is also how many notifications may wait for the listener itself
    /// before it stops reading its connection and lets the server queue them.
    pub fn notification_buffer(mut self, notifications: usize) -> OpenOptions {
        self.notification_buffer = notifications;
        self
    }

    /// How many channels the listener may LISTEN on at once (default
    /// [`crate::DEFAULT_MAX_CHANNELS`] = 10,000; at least 1). A
    /// [`Db::subscribe`] to one more channel (after forgetting stopped
    /// subscribers) answers [`ErrorKind::Unavailable`]: unsubscribe from one
    /// first. Channel names usually come from callers (one per order, per
    /// user), and each costs the server: PostgreSQL's LISTEN slows with the
    /// channels a session already listens on, and after a reconnection the
    /// listener LISTENs on all of them again, 500 per round trip.
    pub fn max_channels(mut self, channels: usize) -> OpenOptions {
        self.max_channels = channels;
        self
    }

    /// Start the adapter's supervisor linked under `parent`, an actor of
    /// your supervision tree, which then gets its supervision events: the
    /// supervisor's stop when the adapter closes (`ActorTerminated`), its
    /// failure should it panic (`ActorFailed`). By default it is started
    /// unlinked. The adapter's own children (pool actors, transaction
    /// actors, the listener) stay under its supervisor, which restarts what
    /// fails; `parent` sees only the supervisor.
    ///
    /// ```no_run
    /// # async fn demo(parent: ractor::ActorCell) -> pgactor::Result<()> {
    /// let db = pgactor::OpenOptions::new("postgres://app@db/shop")
    ///     .linked_to(parent)
    ///     .open()
    ///     .await?;
    /// # let _ = db; Ok(()) }
    /// ```
    pub fn linked_to(mut self, parent: ActorCell) -> OpenOptions {
        self.linked_to = Some(parent);
        self
    }

    /// Run `hook` on every new connection of both pools, after its session
    /// settings and before anything else runs on it: to set settings of
    /// your own, register types or prepare statements. A hook that fails
    /// fails that connection, which is closed and never used: the
    /// operation that wanted it answers [`crate::ErrorKind::Unavailable`]
    /// with the hook's error in its message (and so does `open`, which
    /// connects each pool once). Bound it: it runs inside the pool's
    /// `connect_timeout`. The listener's and the replica watch's own
    /// connections do not run it. Behind a transaction-pooling PgBouncer
    /// ([`crate::PoolerMode::Transaction`]) a session `SET` here would reach
    /// server sessions other clients share: set nothing there.
    ///
    /// ```no_run
    /// # async fn demo(registry: pgactor::Registry) -> pgactor::Result<()> {
    /// let db = pgactor::OpenOptions::new("postgres://app@db/shop")
    ///     .registry(registry)
    ///     .on_connect(|conn| {
    ///         Box::pin(async move {
    ///             conn.client().batch_execute("SET work_mem = '64MB'").await?;
    ///             Ok(())
    ///         })
    ///     })
    ///     .open()
    ///     .await?;
    /// # let _ = db; Ok(()) }
    /// ```
    pub fn on_connect<F>(mut self, hook: F) -> OpenOptions
    where
        F: for<'a> Fn(NewConnection<'a>) -> HookFuture<'a> + Send + Sync + 'static,
    {
        self.on_connect = ConnectHook::new(hook);
        self
    }

    /// Let reads by id outside transactions ([`Db::read`]) share `lanes`
    /// read-pool connections, taking turns in order, instead of taking one
    /// connection each (default 0: off). tokio-postgres pipelines the
    /// statements of one connection, so under many concurrent reads the
    /// server works through a few streams instead of waking a backend per
    /// statement: on a 2-core machine, primary-key reads at 64 callers
    /// went well past a pool of one connection per read (docs/performance.md).
    /// Each lane is one server backend working through its stream in
    /// order, so `lanes` is how many server cores these reads may use at
    /// once; on a 2-core machine whose cores the server shares with the
    /// application, one lane measured best. Lists, writes and
    /// transactions still get a connection each: a list's cost grows with
    /// the rows it scans, and on a lane every read behind it would wait.
    ///
    /// The trade-off: a slow read delays the reads behind it on its lane.
    /// A read by id waits only for a table lock (an ALTER, TRUNCATE or
    /// LOCK TABLE holding ACCESS EXCLUSIVE); on a lane it waits at most
    /// 50 ms for one (the lane's `lock_timeout`, or the session's when
    /// shorter), then runs again on a connection of its own, where it
    /// waits as the session's `lock_timeout` says and its query timeout
    /// starts again: one blocked read holds up the reads behind it for at
    /// most those 50 ms. A read past its query timeout is cancelled on the
    /// server only when it is alone on its lane (a CancelRequest would
    /// stop whatever the backend runs); otherwise the server's
    /// `statement_timeout` ends it. Either way that lane's connection is
    /// closed and replaced. A read whose lane breaks runs again once on a
    /// connection of its own. A lane that can serve no more gives its
    /// connection back before its replacement is checked out, and a read
    /// waiting for a lane to be (re)opened waits as a checkout does: at
    /// most the read pool's `wait_timeout` in all, counted in `max_queued`.
    ///
    /// The lanes count in the read pool's `in_use` and in
    /// [`crate::PoolStats::shared`]; `lanes` must be below the read pool's
    /// `max_open` (lists and a lane's replacement need a connection of
    /// their own), and shared reads need [`PoolerMode::Direct`] (a lane
    /// sets its session's `lock_timeout`, which behind a
    /// transaction-pooling bouncer would reach other clients); otherwise
    /// `open` answers [`ErrorKind::Config`].
    ///
    /// ```no_run
    /// # async fn demo(url: &str, registry: pgactor::Registry) -> pgactor::Result<()> {
    /// let db = pgactor::OpenOptions::new(url)
    ///     .registry(registry)
    ///     .shared_reads(4)
    ///     .open()
    ///     .await?;
    /// # let _ = db; Ok(()) }
    /// ```
    pub fn shared_reads(mut self, lanes: usize) -> OpenOptions {
        self.shared_reads = lanes;
        self
    }

    /// Whether reads by id of one model that wait at the same moment are
    /// answered by one statement (default `true`): `Db::read`, typed
    /// reads and `DbMsg::Read`/`read_as`, outside transactions and without
    /// a consistency token ([`Db::after`] reads run on their own).
    ///
    /// At most [`crate::BATCHES_IN_FLIGHT`] statements of one model's reads
    /// by id run at once. A read that finds one free and no read of its
    /// model waiting runs its own `WHERE id = $1` at once; otherwise it
    /// waits for the next batch of its model, which takes up to
    /// [`crate::MAX_READ_BATCH`] waiting reads into one
    /// `WHERE id = ANY($1)` as soon as a slot is free (no timer: nothing
    /// waits for more reads to come). At most [`crate::MAX_QUEUED_READS`]
    /// reads of a model wait; past that a read runs its own statement.
    /// A queued read waits for a connection at most the read pool's
    /// `wait_timeout` from when it was sent, its batch's turn included,
    /// then fails with [`ErrorKind::Unavailable`] as a read of its own
    /// would (a batch whose first read has waited that long for a slot
    /// goes out without one).
    /// Each caller gets its own row, `NotFound`, or its own decode error;
    /// a failure of the whole statement is every caller's. A batch runs on
    /// the read path as a read does (replica, fallback, shared lanes),
    /// within its most patient caller's query timeout; each caller waits
    /// at most its own. Batches are per model: a lock on one table holds
    /// only that table's reads. Counted in [`crate::PoolStats`]
    /// `read_batches_total` and `batched_reads_total`.
    ///
    /// ```no_run
    /// # async fn demo(url: &str, registry: pgactor::Registry) -> pgactor::Result<()> {
    /// let db = pgactor::OpenOptions::new(url)
    ///     .registry(registry)
    ///     .coalesce_reads(false) // one statement per read
    ///     .open()
    ///     .await?;
    /// # let _ = db; Ok(()) }
    /// ```
    pub fn coalesce_reads(mut self, on: bool) -> OpenOptions {
        self.coalesce_reads = on;
        self
    }

    /// The largest page a `List` answers, in rows (default
    /// [`crate::MAX_PAGE`] = 10,000; at least 1). A [`crate::Query::limit`] above
    /// it is refused with [`ErrorKind::InvalidInput`] before any SQL is
    /// sent, and a query without a limit gets [`crate::DEFAULT_LIMIT`] rows
    /// or `rows`, whichever is less. A page is held whole in memory, so
    /// this bounds what one `List` can take: about 700 bytes a row of a few
    /// short columns, more with wide ones.
    pub fn max_page(mut self, rows: u64) -> OpenOptions {
        self.max_page = rows;
        self
    }

    /// Bound the shape of every query: conditions, OR groups and their
    /// branches, IN list values and sort fields (defaults in
    /// [`crate::QueryBounds`]). A `List`, `lock_next`, `update_where`,
    /// `delete_where`, increment guard, `count`, `exists` or aggregate past
    /// a bound is refused with
    /// [`ErrorKind::InvalidInput`] naming it, before any SQL.
    ///
    /// ```no_run
    /// # async fn demo(registry: pgactor::Registry) -> pgactor::Result<()> {
    /// use pgactor::QueryBounds;
    /// let db = pgactor::OpenOptions::new("postgres://app@db/shop")
    ///     .registry(registry)
    ///     .query_bounds(QueryBounds { max_or_branches: 16, ..QueryBounds::default() })
    ///     .open()
    ///     .await?;
    /// # let _ = db; Ok(()) }
    /// ```
    pub fn query_bounds(mut self, bounds: QueryBounds) -> OpenOptions {
        self.query_bounds = bounds;
        self
    }

    /// Bound the shape of the queries of one model otherwise than the
    /// others' ([`OpenOptions::query_bounds`]); a model named twice takes
    /// the last bounds. An unknown model fails `open` with
    /// [`ErrorKind::Config`].
    pub fn model_query_bounds(
        mut self,
        model: impl Into<String>,
        bounds: QueryBounds,
    ) -> OpenOptions {
        let model = model.into();
        self.model_bounds.retain(|(name, _)| *name != model);
        self.model_bounds.push((model, bounds));
        self
    }

    /// Run AutoMigrate at open (default `true`). Turn it off when a
    /// migration tool owns the schema; [`Db::migrate`] still runs it on demand.
    pub fn auto_migrate(mut self, enabled: bool) -> OpenOptions {
        self.auto_migrate = enabled;
        self
    }

    /// What sits between the adapter and PostgreSQL (default
    /// [`PoolerMode::Direct`]). Behind PgBouncer in transaction pooling mode
    /// use [`PoolerMode::Transaction`]: no session setting is ever sent, each
    /// transaction sets its own in the same round trip as its `BEGIN`, and
    /// statements outside transactions run with the server's defaults for the
    /// role, which `open` compares with the [`SessionConfig`] (a `tracing`
    /// warning per difference). Statements are sent unnamed unless
    /// [`OpenOptions::statement_cache`] says otherwise, and
    /// [`Db::subscribe`] answers [`ErrorKind::Config`]: LISTEN needs a
    /// session of its own. Applies to both pools.
    pub fn pooler(mut self, mode: PoolerMode) -> OpenOptions {
        self.pooler = mode;
        self
    }

    /// Every setting checked before anything is parsed or connects: the
    /// first one out of bounds is a [`ErrorKind::Config`] error naming it.
    /// A new option adds its check here.
    fn settings(&self) -> Result<(SessionSettings, PoolSettings, PoolSettings)> {
        if self.max_page == 0 {
            return Err(Error::config("max_page must be at least 1 row"));
        }
        if let Some((model, _)) = self
            .model_bounds
            .iter()
            .find(|(m, _)| self.registry.model(m).is_err())
        {
            return Err(Error::config(format!(
                "model_query_bounds names {}, which is not in the registry",
                crate::error::quoted_name(model)
            )));
        }
        if self.notification_buffer == 0 {
            return Err(Error::config(
                "notification_buffer must be at least 1 notification",
            ));
        }
        if self.max_channels == 0 {
            return Err(Error::config("max_channels must be at least 1 channel"));
        }
        if self.statement_cache_size == 0 {
            return Err(Error::config(
                "statement_cache_size must be at least 1 (statement_cache(false) prepares none)",
            ));
        }
        let session = SessionSettings {
            pooler: self.pooler,
            ..self.session.resolve()?
        };
        let write = self.write_pool.resolve(Role::Write)?;
        let read = self.read_pool.resolve(Role::Read)?;
        self.replica.validate()?;
        self.registry.validate()?;
        // Lanes hold their connections for as long as they serve: lists,
        // retries and replacement lanes need one more.
        if self.shared_reads > 0 && self.shared_reads >= read.max_open {
            return Err(Error::config(format!(
                "shared_reads ({}) must be below the read pool's max_open ({}): the lanes hold their connections, and lists need one of their own",
                self.shared_reads, read.max_open
            )));
        }
        // A lane bounds its lock waits with a session setting, which must
        // not reach a server session a transaction-pooling bouncer shares.
        if self.shared_reads > 0 && self.pooler == PoolerMode::Transaction {
            return Err(Error::config(
                "shared_reads needs PoolerMode::Direct: a shared connection sets its own lock_timeout, \
                 which behind a transaction-pooling bouncer would reach other clients' sessions",
            ));
        }
        Ok((session, write, read))
    }

    /// The replicas' DSNs, one per host, each checked: at most
    /// [`MAX_REPLICAS`], none named twice. Each DSN's ignored options are
    /// warned about once.
    fn replica_dsns(&self) -> Result<Vec<Dsn>> {
        let mut replicas: Vec<Dsn> = Vec::new();
        for dsn in &self.read_dsns {
            let dsn = Dsn::parse(dsn, Role::Read)?;
            warn_ignored(&dsn, Role::Read);
            replicas.extend(dsn.per_host());
        }
        if replicas.len() > MAX_REPLICAS {
            return Err(Error::config(format!(
                "the read DSNs name {} replicas; at most {MAX_REPLICAS}",
                replicas.len()
            )));
        }
        for (i, dsn) in replicas.iter().enumerate() {
            let name = dsn.endpoint();
            if replicas[..i].iter().any(|other| other.endpoint() == name) {
                return Err(Error::config(format!(
                    "the read DSNs name the replica {name} twice"
                )));
            }
        }
        Ok(replicas)
    }

    /// Check everything, connect each pool once, prepare the schema, start the actors.
    pub async fn open(self) -> Result<Db> {
        let (mut session, write_settings, read_settings) = self.settings()?;
        let write_dsn = Dsn::parse(&self.write_dsn, Role::Write)?;
        let replica_dsns = self.replica_dsns()?;
        if self.session.application_name.is_none() {
            if let Some(name) = dsn_application_name(&write_dsn)? {
                session.application_name = name;
            }
        }
        warn_ignored(&write_dsn, Role::Write);
        let session = Arc::new(session);
        let pool = |role, dsn: &Dsn, settings| {
            ConnectionPool::build(
                role,
                dsn,
                settings,
                session.clone(),
                self.statement_cache_size,
                self.on_connect.clone(),
            )
        };
        let write = pool(Role::Write, &write_dsn, write_settings)?;
        // Until open succeeds, a failure closes what was built (its reaper
        // tasks and connections would otherwise outlive the failed open).
        let mut built = CloseUnlessOpened(vec![write.pool.clone()]);
        // One read pool per replica; without one, a read pool on the primary.
        let mut reads = Vec::with_capacity(replica_dsns.len().max(1));
        for dsn in replica_dsns
            .iter()
            .chain(replica_dsns.is_empty().then_some(&write_dsn))
        {
            let read = pool(Role::Read, dsn, read_settings.clone())?;
            built.0.push(read.pool.clone());
            reads.push(read);
        }
        let has_replica = !replica_dsns.is_empty();

        // Every pool must connect before anything is created on the server.
        let mut client = write.check().await?;
        let mut read_clients = Vec::with_capacity(reads.len());
        for read in &reads {
            read_clients.push(read.check().await?);
        }
        if session.pooler == PoolerMode::Transaction {
            check_server_defaults(&client, Role::Write, &session, Some(false)).await?;
            // Without a read DSN the read pool has the write pool's server and role.
            for read_client in read_clients.iter().filter(|_| has_replica) {
                check_server_defaults(read_client, Role::Read, &session, Some(true)).await?;
            }
        }
        drop(read_clients);
        // Behind a transaction-pooling bouncer a client connection takes no
        // server slot: the bouncer's pool size is what counts.
        if session.pooler == PoolerMode::Direct {
            warn_on_capacity(&client, &write, &reads[0]).await;
        }
        ensure_schema(&client, &session.schema).await?;
        // Per replica, the primary's position after the DDL AutoMigrate ran
        // when it had not replayed it within SCHEMA_REPLAY_WAIT (all waited
        // for at once).
        let schema_changed = if self.auto_migrate {
            let report = auto_migrate(&mut client, &session, &self.registry).await?;
            let replicas = reads.iter().filter(|_| has_replica);
            unreplayed_schema(&client, &report, replicas).await?
        } else {
            Vec::new()
        };
        // Casts to citext name the schema its extension is in.
        let citext = match self.registry.uses_citext() {
            true => citext_schema(&client).await?,
            false => None,
        };
        drop(client);

        let registry = Arc::new(self.registry);
        let statements = if self
            .statement_cache
            .unwrap_or(session.pooler == PoolerMode::Direct)
        {
            Statements::Prepared
        } else {
            Statements::Unnamed
        };
        let lanes = || {
            (self.shared_reads > 0)
                .then(|| SharedReads::new(self.shared_reads, session.lock_timeout))
        };
        // With replicas, each read pool is watched: reads go to the replica
        // with the fewest operations in flight among those up, within
        // max_lag and at a read's consistency token, else to the primary.
        // Each watch probes on connections of its own, never the pools'.
        let replica = has_replica.then(|| {
            let link = |dsn: &Dsn, pool: &ConnectionPool| {
                let timeout = pool.settings.connect_timeout;
                let config = client_config(dsn, &session, timeout);
                ProbeLink::new(config, pool.connector.clone(), timeout)
            };
            let replicas = replica_dsns
                .iter()
                .zip(&reads)
                .zip(
                    schema_changed
                        .iter()
                        .copied()
                        .chain(std::iter::repeat(None)),
                )
                .map(|((dsn, read), unreplayed)| {
                    let watch = Arc::new(ReplicaWatch::new(
                        self.replica,
                        dsn.endpoint().into(),
                        read.settings.connect_timeout,
                    ));
                    let (to_replica, to_primary) = (link(dsn, read), link(&write_dsn, &write));
                    watch
                        .clone()
                        .spawn_monitor(read.clone(), to_replica, to_primary);
                    if let Some(token) = unreplayed {
                        watch.schema_changed(token);
                    }
                    Replica::new(read.clone(), watch, lanes())
                })
                .collect();
            Arc::new(ReplicaSet::new(replicas, write.clone(), &self.replica))
        });
        let mut catalog = Catalog::new(&registry, &session.schema, statements)
            .with_citext_schema(citext.as_deref());
        catalog.max_page = self.max_page;
        catalog.bounds = self.query_bounds;
        catalog.model_bounds = self.model_bounds.clone();
        let catalog = Arc::new(catalog);
        let routes = Arc::new(Routes::default());
        // The listener connects on the first subscribe, to the primary.
        let mut listener = ListenerContext::new(
            &write_dsn,
            write.connector.clone(),
            &session,
            write.settings.connect_timeout,
        );
        listener.buffer = self.notification_buffer;
        listener.max_channels = self.max_channels;
        let listener = Arc::new(listener);
        let in_flight = Arc::new(InFlight::default());
        // At most one spare per write connection: each open transaction holds one.
        let spares = Arc::new(SpareActors::new(write.settings.max_open));
        let config = &write_dsn.config;
        let observed = Arc::new(Observed::new(
            config
                .get_dbname()
                .or(config.get_user())
                .unwrap_or_default(),
            &session.schema,
            Some(self.slow_operation).filter(|d| !d.is_zero()),
        ));
        #[cfg(feature = "metrics")]
        let namespace = observed.namespace.clone();
        let read_targets: Vec<&str> = reads.iter().map(|r| &*r.target).collect();
        let read_targets = read_targets.join(" ");
        let pools = vec![
            Arc::new(PoolContext {
                pool: write.clone(),
                catalog: catalog.clone(),
                session: session.clone(),
                replica: None,
                in_flight: in_flight.clone(),
                shared: None,
                coalesce: None,
                observed: observed.clone(),
            }),
            Arc::new(PoolContext {
                // The first replica's (each replica's is in the set).
                pool: reads.swap_remove(0),
                catalog,
                session: session.clone(),
                in_flight: in_flight.clone(),
                shared: match has_replica {
                    true => None,
                    false => lanes(),
                },
                coalesce: self
                    .coalesce_reads
                    .then(|| Coalescer::new(registry.models().map(|m| m.name().to_owned()))),
                replica: replica.clone(),
                observed,
            }),
        ];
        let args = SupervisorArgs {
            pools: pools.clone(),
            routes: routes.clone(),
            deadline: session.query_deadline(),
            listener: listener.clone(),
            spares: spares.clone(),
        };
        let started = match self.linked_to {
            Some(parent) => Actor::spawn_linked(None, Supervisor, args, parent).await,
            None => Actor::spawn(None, Supervisor, args).await,
        };
        let (supervisor, _) = started.map_err(|e| {
            Error::new(
                ErrorKind::Closed,
                format!("cannot start the adapter's actors: {e}"),
            )
        })?;
        tracing::info!(
            target: "pgactor",
            write = %write_dsn,
            read = %read_targets,
            schema = %session.schema,
            pooler = ?session.pooler,
            "pgactor open"
        );
        built.0.clear();
        let db = Db::new(
            RunOptions {
                deadline: session.query_deadline(),
                ..RunOptions::default()
            },
            DbInner {
                in_flight,
                supervisor,
                routes,
                registry,
                session,
                pools: [pools[0].clone(), pools[1].clone()],
                listener,
                spares,
            },
        );
        #[cfg(feature = "metrics")]
        crate::meter::spawn_publisher(namespace, db.stats_while_open());
        Ok(db)
    }
}

/// Log a warning when the two pools together may open more than half of
/// the server's `max_connections`: several instances (or a restart storm)
/// would then exhaust it. Never fails the open.
async fn warn_on_capacity(
    client: &tokio_postgres::Client,
    write: &ConnectionPool,
    read: &ConnectionPool,
) {
    // current_setting rather than SHOW: it also answers through a pooler.
    let max: Option<i32> = client
        .query_typed("SELECT current_setting('max_connections')::int", &[])
        .await
        .ok()
        .and_then(|rows| rows.first().map(|r| r.get(0)));
    let claimed = write.settings.max_open + read.settings.max_open;
    if let Some(max) = max.filter(|max| claimed > (*max as usize) / 2) {
        tracing::warn!(
            target: "pgactor",
            write_max_open = write.settings.max_open,
            read_max_open = read.settings.max_open,
            max_connections = max,
            "the pools may open {claimed} connections, more than half of the server's max_connections ({max}); \
             keep the sum over all instances under max_connections"
        );
    }
}

/// Closes the pools it holds when dropped; emptied once `open` succeeds.
struct CloseUnlessOpened(Vec<crate::pool::Pool>);

impl Drop for CloseUnlessOpened {
    fn drop(&mut self) {
        for pool in &self.0 {
            pool.close();
        }
    }
}

/// The write DSN's `application_name` (or `PGAPPNAME`, or
/// `fallback_application_name`), held to the session setting's bounds.
fn dsn_application_name(dsn: &Dsn) -> Result<Option<String>> {
    match dsn.application_name.as_deref() {
        None | Some("") => Ok(None),
        Some(name) if name.len() > 63 => Err(Error::config(format!(
            "the write DSN's application_name must be at most 63 bytes, got {}",
            name.len()
        ))),
        Some(name) => Ok(Some(name.to_owned())),
    }
}

/// One warning for each libpq option `dsn` set that is ignored.
fn warn_ignored(dsn: &Dsn, role: Role) {
    for ignored in &dsn.ignored {
        tracing::warn!(
            target: "pgactor",
            %role,
            option = %ignored.option,
            "{} is ignored: {}",
            ignored.option,
            ignored.why
        );
    }
}
