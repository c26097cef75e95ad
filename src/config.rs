//! Pool and session configuration, with production defaults.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::schema::validate_identifier;

/// Which pool an operation runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The primary: writes, and everything inside a transaction.
    Write,
    /// The replica (or the primary when no read DSN is given): reads outside transactions.
    Read,
}

impl Role {
    /// `"write"` or `"read"`, as used in logs and errors.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Write => "write",
            Role::Read => "read",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Default maximum open connections of the write pool.
pub const DEFAULT_WRITE_MAX_OPEN: usize = 20;
/// Default maximum open connections of the read pool.
pub const DEFAULT_READ_MAX_OPEN: usize = 40;
/// Default maximum lifetime of a connection.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// Default maximum idle time of a connection.
pub const DEFAULT_MAX_IDLE_TIME: Duration = Duration::from_secs(5 * 60);
/// Default bound on waiting for a free connection.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long [`crate::Db::close`] lets running operations and open
/// transactions finish before it rolls the transactions back.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Default bound on opening one new connection (TCP, TLS, startup, session settings).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default bound on operations waiting for a connection of one pool at once.
/// A waiting operation costs at most 6 KiB (its request and its wait, the
/// caller's own task included; measured by the reliability suite,
/// docs/reliability.md: 4–5 KiB), so this caps
/// a saturated pool's queue under 60 MiB however many callers pile up.
pub const DEFAULT_MAX_QUEUED: usize = 10_000;

/// Largest `max_open` (and so `max_idle`) a pool accepts: PostgreSQL caps
/// `max_connections` lower than any pool needs above this, and the pool
/// reserves a slot per connection at open.
pub const MAX_POOL_SIZE: usize = 10_000;
/// Largest `max_queued` a pool accepts: at the measured cost of a waiting
/// operation (under 6 KiB) about 6 GiB of callers.
pub const MAX_QUEUED_LIMIT: usize = 1_000_000;
/// Longest client-side duration a setting accepts (timeouts, lifetimes,
/// intervals, lags): 365 days, "never" for any process, and far from the
/// overflow of a clock instant.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 60 * 60);
/// Longest server-side timeout (`statement_timeout`, `lock_timeout`,
/// `idle_in_transaction_timeout`): PostgreSQL's own limit, `i32::MAX`
/// milliseconds (about 24.8 days).
pub const MAX_SERVER_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);

/// A count setting: `value` or `default`, within `min..=max`, else a
/// `Config` error naming `what` (with its owner, e.g. "write pool: ").
pub(crate) fn count(
    owner: &str,
    what: &str,
    value: Option<usize>,
    default: usize,
    min: usize,
    max: usize,
) -> Result<usize> {
    let value = value.unwrap_or(default);
    if !(min..=max).contains(&value) {
        return Err(Error::config(format!(
            "{owner}{what} must be {min} to {max}, got {value}"
        )));
    }
    Ok(value)
}

/// A duration setting: `value` or `default`, positive (or zero when
/// `zero_allowed`: "none"/"disabled") and at most `max`, else a `Config`
/// error naming `what`.
pub(crate) fn duration(
    owner: &str,
    what: &str,
    value: Option<Duration>,
    default: Duration,
    zero_allowed: bool,
    max: Duration,
) -> Result<Duration> {
    let value = value.unwrap_or(default);
    if value.is_zero() && !zero_allowed {
        return Err(Error::config(format!("{owner}{what} must be positive")));
    }
    if value > max {
        return Err(Error::config(format!(
            "{owner}{what} must be at most {max:?}, got {value:?}"
        )));
    }
    Ok(value)
}

/// Settings of one pool. Every `None` takes the default that [`crate::open()`] uses.
///
/// | field | default (write / read) |
/// |---|---|
/// | `max_open` | 20 / 40 ([`DEFAULT_WRITE_MAX_OPEN`], [`DEFAULT_READ_MAX_OPEN`]) |
/// | `max_idle` | half of `max_open`, at least 1 |
/// | `max_lifetime` | 30 min ([`DEFAULT_MAX_LIFETIME`]) |
/// | `max_idle_time` | 5 min ([`DEFAULT_MAX_IDLE_TIME`]) |
/// | `wait_timeout` | 30 s ([`DEFAULT_WAIT_TIMEOUT`]) |
/// | `connect_timeout` | 10 s ([`DEFAULT_CONNECT_TIMEOUT`]) |
/// | `max_queued` | 10,000 ([`DEFAULT_MAX_QUEUED`]) |
///
/// [`PoolConfig::resolve`] (and so `open`) refuses with
/// [`crate::ErrorKind::Config`], naming the setting: `max_open` outside
/// 1 to [`MAX_POOL_SIZE`], `max_idle` above `max_open`, `max_queued`
/// outside 1 to [`MAX_QUEUED_LIMIT`], and a zero duration or one above
/// [`MAX_DURATION`].
///
/// ```
/// use pgactor::PoolConfig;
/// let write = PoolConfig { max_open: Some(10), ..PoolConfig::default() };
/// # let _ = write;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolConfig {
    /// Most connections open at once, 1 to [`MAX_POOL_SIZE`]. Keep write +
    /// read of every instance under the server's `max_connections`.
    pub max_open: Option<usize>,
    /// Most idle connections kept open, at most `max_open` (default: half
    /// of `max_open`, at least 1, so a pool of one keeps its connection).
    pub max_idle: Option<usize>,
    /// Close a connection this long after it opened, to pick up failovers and DNS changes.
    pub max_lifetime: Option<Duration>,
    /// Close a connection idle this long.
    pub max_idle_time: Option<Duration>,
    /// Give up waiting for a free connection after this long ([`crate::ErrorKind::Unavailable`]).
    pub wait_timeout: Option<Duration>,
    /// Give up opening a new connection after this long.
    pub connect_timeout: Option<Duration>,
    /// Most operations waiting for a connection at once. One more is
    /// refused at once with [`crate::ErrorKind::Unavailable`] (and counted
    /// in [`crate::PoolStats::refused_total`]) instead of queueing without
    /// bound while the pool is saturated. 1 to [`MAX_QUEUED_LIMIT`].
    pub max_queued: Option<usize>,
}

/// A [`PoolConfig`] with every default filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSettings {
    /// Most connections open at once.
    pub max_open: usize,
    /// Most idle connections kept open.
    pub max_idle: usize,
    /// Maximum connection lifetime.
    pub max_lifetime: Duration,
    /// Maximum connection idle time.
    pub max_idle_time: Duration,
    /// Bound on waiting for a free connection.
    pub wait_timeout: Duration,
    /// Bound on opening one connection.
    pub connect_timeout: Duration,
    /// Most operations waiting for a connection at once.
    pub max_queued: usize,
}

impl PoolConfig {
    /// Fill in the defaults of `role` and check every value (see the
    /// bounds above): a [`crate::ErrorKind::Config`] error naming the first
    /// one out of bounds.
    pub fn resolve(&self, role: Role) -> Result<PoolSettings> {
        let owner = format!("{role} pool: ");
        let default_open = match role {
            Role::Write => DEFAULT_WRITE_MAX_OPEN,
            Role::Read => DEFAULT_READ_MAX_OPEN,
        };
        let max_open = count(
            &owner,
            "max_open",
            self.max_open,
            default_open,
            1,
            MAX_POOL_SIZE,
        )?;
        let idle_default = (max_open / 2).max(1);
        let pool_duration =
            |what, value, default| duration(&owner, what, value, default, false, MAX_DURATION);
        Ok(PoolSettings {
            max_open,
            max_idle: count(&owner, "max_idle", self.max_idle, idle_default, 0, max_open)?,
            max_lifetime: pool_duration("max_lifetime", self.max_lifetime, DEFAULT_MAX_LIFETIME)?,
            max_idle_time: pool_duration(
                "max_idle_time",
                self.max_idle_time,
                DEFAULT_MAX_IDLE_TIME,
            )?,
            wait_timeout: pool_duration("wait_timeout", self.wait_timeout, DEFAULT_WAIT_TIMEOUT)?,
            connect_timeout: pool_duration(
                "connect_timeout",
                self.connect_timeout,
                DEFAULT_CONNECT_TIMEOUT,
            )?,
            max_queued: count(
                &owner,
                "max_queued",
                self.max_queued,
                DEFAULT_MAX_QUEUED,
                1,
                MAX_QUEUED_LIMIT,
            )?,
        })
    }
}

/// What sits between the adapter and PostgreSQL, which decides how the
/// session settings reach the server. Set with [`crate::OpenOptions::pooler`];
/// it applies to both pools.
///
/// | mode | session settings | statements outside transactions |
/// |---|---|---|
/// | [`PoolerMode::Direct`] (default) | set once per physical connection (`set_config(…, false)`) | run with the configured settings |
/// | [`PoolerMode::Transaction`] | never set on the session; applied with `SET LOCAL` in the same message as every `BEGIN` | run with the server's defaults for the role, checked at open |
///
/// ```no_run
/// # async fn demo(bouncer_url: &str, registry: pgactor::Registry) -> pgactor::Result<()> {
/// use pgactor::PoolerMode;
/// let db = pgactor::OpenOptions::new(bouncer_url)
///     .registry(registry)
///     .pooler(PoolerMode::Transaction)
///     .open()
///     .await?;
/// # let _ = db; Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PoolerMode {
    /// Connections go straight to PostgreSQL (or through a pooler in
    /// session mode): a physical connection is one server session for its
    /// whole life, so the settings are applied to it once.
    #[default]
    Direct,
    /// Connections go through a pooler in transaction pooling mode
    /// (PgBouncer `pool_mode = transaction`): consecutive transactions of one
    /// connection may run on different server sessions, and a session `SET`
    /// would stay on a server session other clients use next. No session
    /// setting is ever sent; each transaction sets its own (statement_timeout,
    /// lock_timeout, idle_in_transaction_session_timeout, TimeZone) locally.
    /// Statements go unnamed unless [`crate::OpenOptions::statement_cache`]
    /// asks for prepared ones, and LISTEN/NOTIFY is refused.
    Transaction,
}

/// Default `statement_timeout`.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default `lock_timeout`.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);
/// Default `idle_in_transaction_session_timeout`.
pub const DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);
/// Default `application_name`.
pub const DEFAULT_APPLICATION_NAME: &str = "pgactor";
/// Default `TimeZone`.
pub const DEFAULT_TIME_ZONE: &str = "UTC";
/// Default schema (`search_path`).
pub const DEFAULT_SCHEMA: &str = "public";
/// Default client-side deadline of one statement: a backstop a little above
/// the default `statement_timeout`, so the server's own (more precise) timeout
/// normally fires first while a stalled network still frees the caller.
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(35);

/// Session settings applied to every new physical connection before its
/// first use (in [`PoolerMode::Transaction`]: to every transaction, see
/// there). Every `None` takes the default that [`crate::open()`] uses;
/// `Some(Duration::ZERO)` for a timeout means "disabled" (the server's 0).
/// The three server timeouts go up to [`MAX_SERVER_TIMEOUT`] (PostgreSQL's
/// limit), `query_timeout` up to [`MAX_DURATION`]; past that, `open`
/// answers [`crate::ErrorKind::Config`] naming the setting.
///
/// | field | default | effect |
/// |---|---|---|
/// | `statement_timeout` | 30 s | cancels any statement that runs longer |
/// | `lock_timeout` | 5 s | aborts a statement that waits too long for a lock |
/// | `idle_in_transaction_timeout` | 60 s | ends sessions left idle inside a transaction |
/// | `application_name` | `pgactor` | shown in `pg_stat_activity` and server logs |
/// | `time_zone` | `UTC` | session time zone |
/// | `schema` | `public` | `search_path`; created at open when missing |
/// | `query_timeout` | 35 s | client-side deadline of one statement; past it the statement is cancelled on the server |
///
/// ```
/// use std::time::Duration;
/// use pgactor::SessionConfig;
/// let session = SessionConfig {
///     statement_timeout: Some(Duration::from_secs(10)),
///     application_name: Some("orders-api".into()),
///     schema: Some("orders".into()),
///     ..SessionConfig::default()
/// };
/// # let _ = session;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionConfig {
    /// `statement_timeout`.
    pub statement_timeout: Option<Duration>,
    /// `lock_timeout`.
    pub lock_timeout: Option<Duration>,
    /// `idle_in_transaction_session_timeout`.
    pub idle_in_transaction_timeout: Option<Duration>,
    /// `application_name`.
    pub application_name: Option<String>,
    /// `TimeZone`, any name the server knows (`UTC`, `Europe/Paris`).
    pub time_zone: Option<String>,
    /// The schema every table lives in and `search_path` points at. A plain
    /// identifier (`[A-Za-z_][A-Za-z0-9_$]*`), case-sensitive.
    pub schema: Option<String>,
    /// Client-side deadline of one statement. Past it the caller gets
    /// [`crate::ErrorKind::Timeout`] and the statement is cancelled on the
    /// server (a CancelRequest), not merely abandoned. Override per call with
    /// [`crate::Db::with_query_timeout`] or [`crate::TxOptions::query_timeout`].
    pub query_timeout: Option<Duration>,
}

/// A [`SessionConfig`] with every default filled in and every value checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSettings {
    /// `statement_timeout` (zero: disabled).
    pub statement_timeout: Duration,
    /// `lock_timeout` (zero: disabled).
    pub lock_timeout: Duration,
    /// `idle_in_transaction_session_timeout` (zero: disabled).
    pub idle_in_transaction_timeout: Duration,
    /// `application_name`.
    pub application_name: String,
    /// `TimeZone`.
    pub time_zone: String,
    /// The schema.
    pub schema: String,
    /// Client-side statement deadline (zero: none).
    pub query_timeout: Duration,
    /// How the settings reach the server ([`crate::OpenOptions::pooler`]).
    pub pooler: PoolerMode,
}

impl SessionSettings {
    /// The client-side statement deadline, `None` when disabled.
    pub(crate) fn query_deadline(&self) -> Option<Duration> {
        Some(self.query_timeout).filter(|d| !d.is_zero())
    }
}

impl SessionConfig {
    /// Fill in the defaults and validate: the schema name against the
    /// identifier pattern, text settings against NUL bytes and length, the
    /// server-side timeouts up to [`MAX_SERVER_TIMEOUT`] and
    /// `query_timeout` up to [`MAX_DURATION`] (zero: disabled, for each).
    pub fn resolve(&self) -> Result<SessionSettings> {
        let schema = self.schema.clone().unwrap_or_else(|| DEFAULT_SCHEMA.into());
        validate_identifier(&schema).map_err(|e| Error::config(format!("schema: {e}")))?;
        let text = |value: &Option<String>, default: &str, what: &str| {
            let value = value.clone().unwrap_or_else(|| default.into());
            if value.contains('\0') || value.len() > 63 || value.is_empty() {
                // The length only: the value is the caller's, of any size.
                return Err(Error::config(format!(
                    "{what} must be 1 to 63 bytes without NUL, got {} bytes{}",
                    value.len(),
                    if value.contains('\0') {
                        " with a NUL"
                    } else {
                        ""
                    }
                )));
            }
            Ok(value)
        };
        let server = |what, value, default| {
            duration("session: ", what, value, default, true, MAX_SERVER_TIMEOUT)
        };
        Ok(SessionSettings {
            statement_timeout: server(
                "statement_timeout",
                self.statement_timeout,
                DEFAULT_STATEMENT_TIMEOUT,
            )?,
            lock_timeout: server("lock_timeout", self.lock_timeout, DEFAULT_LOCK_TIMEOUT)?,
            idle_in_transaction_timeout: server(
                "idle_in_transaction_timeout",
                self.idle_in_transaction_timeout,
                DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT,
            )?,
            application_name: text(
                &self.application_name,
                DEFAULT_APPLICATION_NAME,
                "application_name",
            )?,
            time_zone: text(&self.time_zone, DEFAULT_TIME_ZONE, "time_zone")?,
            schema,
            query_timeout: duration(
                "session: ",
                "query_timeout",
                self.query_timeout,
                DEFAULT_QUERY_TIMEOUT,
                true,
                MAX_DURATION,
            )?,
            pooler: PoolerMode::Direct,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_defaults_are_the_documented_ones() {
        let write = PoolConfig::default().resolve(Role::Write).unwrap();
        let read = PoolConfig::default().resolve(Role::Read).unwrap();
        assert_eq!((write.max_open, write.max_idle), (20, 10));
        assert_eq!((read.max_open, read.max_idle), (40, 20));
        assert_eq!(write.max_lifetime, Duration::from_secs(1800));
        assert_eq!(write.max_idle_time, Duration::from_secs(300));
        assert_eq!((write.max_queued, read.max_queued), (10_000, 10_000));
        let custom = PoolConfig {
            max_open: Some(7),
            ..PoolConfig::default()
        };
        assert_eq!(custom.resolve(Role::Read).unwrap().max_idle, 3);
    }

    #[test]
    fn session_defaults_are_the_documented_ones() {
        let s = SessionConfig::default().resolve().unwrap();
        assert_eq!(s.statement_timeout, Duration::from_secs(30));
        assert_eq!(s.lock_timeout, Duration::from_secs(5));
        assert_eq!(s.idle_in_transaction_timeout, Duration::from_secs(60));
        assert_eq!(
            (
                s.application_name.as_str(),
                s.time_zone.as_str(),
                s.schema.as_str()
            ),
            ("pgactor", "UTC", "public")
        );
    }

    #[test]
    fn bad_values_are_refused() {
        for schema in ["", "1x", "a-b", "x\"; DROP SCHEMA public; --", "sch ema"] {
            let cfg = SessionConfig {
                schema: Some(schema.into()),
                ..SessionConfig::default()
            };
            assert!(cfg.resolve().is_err(), "{schema}");
        }
        let nul = SessionConfig {
            application_name: Some("a\0b".into()),
            ..SessionConfig::default()
        };
        assert!(nul.resolve().is_err());
        let zero = PoolConfig {
            max_open: Some(0),
            ..PoolConfig::default()
        };
        assert!(zero.resolve(Role::Write).is_err());
        let no_queue = PoolConfig {
            max_queued: Some(0),
            ..PoolConfig::default()
        };
        assert!(no_queue.resolve(Role::Read).is_err());
    }
}
