//! Physical connections: building a pool, the session settings every new
//! connection gets before its first use, checkout, and the schema.

use std::future::{poll_fn, Future};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use deadpool_postgres::{
    HookError, Manager, ManagerConfig, PoolError, RecyclingMethod, Runtime, Timeouts,
};
use postgres_openssl::MakeTlsConnector;

use super::conn::{Conn, Connector, Hook, Object, Pool};
use super::counters::{Counters, Queued, Reason};
use super::deadline::Timer;
use super::lifetime::Lifetimes;
use crate::config::{PoolSettings, Role, SessionSettings};
use crate::error::{describe, Error, Result};
use crate::stats::PoolStats;
use crate::telemetry::Server;
use crate::wire::{
    apply_session, client_config, read_settings, CancelTarget, ConnectHook, Dsn, Tls,
    MANAGED_SETTINGS,
};

/// One role's pool, with what its error messages need to say.
#[derive(Clone)]
pub(crate) struct ConnectionPool {
    pub(crate) role: Role,
    pub(crate) pool: Pool,
    /// `user@host:port/db` of the DSN, never its password.
    pub(crate) target: Arc<str>,
    /// The server its connections reach, as spans name it.
    pub(crate) server: Server,
    pub(crate) settings: PoolSettings,
    /// What the pool has done: closings by reason, waits.
    pub(crate) counters: Arc<Counters>,
    /// The DSN's TLS settings, for explaining refused connections.
    tls: Arc<Tls>,
    /// The connector of every connection, and of every cancel request sent
    /// to them: a server that wants TLS wants it for cancels too.
    pub(crate) connector: MakeTlsConnector,
    /// Where its connections' CancelRequests go (over `connector`).
    pub(crate) cancel: CancelTarget,
}

impl ConnectionPool {
    /// Build the pool of `role`, reading the DSN's certificate files, with
    /// at most `statements` prepared statements per connection, and `hook`
    /// run on each new connection after its session settings. Connections
    /// open lazily; see [`ConnectionPool::check`].
    pub(crate) fn build(
        role: Role,
        dsn: &Dsn,
        settings: PoolSettings,
        session: Arc<SessionSettings>,
        statements: usize,
        hook: ConnectHook,
    ) -> Result<Self> {
        let connector = dsn
            .tls
            .connector()
            .map_err(|e| e.prefixed(&format!("{role} DSN")))?;
        let config = client_config(dsn, &session, settings.connect_timeout);
        let cancel = CancelTarget::new(&config, connector.clone());
        let manager = Manager::from_config(
            config,
            connector.clone(),
            ManagerConfig {
                // Fast: connections come back from autocommit statements only;
                // transactions (which could leave one dirty) never return theirs.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let counters = Arc::new(Counters::default());
        let manager = Connector::new(manager, statements, counters.clone());
        let hook = Hook::async_fn(move |client: &mut Box<Conn>, _| {
            let (session, hook) = (session.clone(), hook.clone());
            Box::pin(async move {
                apply_session(client, role, &session)
                    .await
                    .map_err(HookError::Backend)?;
                // The connection is dropped, never used, when the hook fails.
                hook.run(role, client).await.map_err(|e| {
                    let why = match e.downcast_ref::<tokio_postgres::Error>() {
                        Some(e) => describe(e),
                        None => e.to_string(),
                    };
                    HookError::message(format!("the connection hook failed: {why}"))
                })?;
                tracing::debug!(target: "pgactor.pool", role = role.as_str(), "connection opened");
                Ok(())
            })
        });
        let lifetimes = Lifetimes::new(role, &settings);
        let pool = Pool::builder(manager)
            .max_size(settings.max_open)
            .runtime(Runtime::Tokio1)
            // No wait timeout: `checkout` bounds the wait on the
            // operation's own timer.
            .create_timeout(Some(settings.connect_timeout))
            // No recycle timeout: `Fast` recycling sends nothing, and a
            // timeout would cost a clock read on every checkout.
            .post_create(hook)
            .pre_recycle(lifetimes.pre_recycle_hook(counters.clone()))
            .build()
            .map_err(|e| Error::config(format!("cannot build the {role} pool: {e}")))?;
        lifetimes.spawn_reaper(pool.clone(), counters.clone());
        Ok(ConnectionPool {
            role,
            pool,
            target: dsn.target.as_str().into(),
            server: Server::of(&dsn.config),
            settings,
            counters,
            tls: Arc::new(dsn.tls.clone()),
            connector,
            cancel,
        })
    }

    /// Take a connection, waiting at most the pool's wait timeout.
    pub(crate) async fn get(&self) -> Result<Object> {
        self.checkout(&mut Timer::default()).await
    }

    /// Take a connection, waiting at most the pool's wait timeout on
    /// `timer` (the operation's one timer, see [`Timer`]). A checkout that
    /// finds every connection busy and no room for a new one is counted as
    /// a wait; one that finds `max_queued` checkouts already in progress is
    /// refused at once, so a saturated pool's queue (and the memory it
    /// holds) stays bounded.
    pub(crate) async fn checkout(&self, timer: &mut Timer) -> Result<Object> {
        let _queued = self.enqueue()?;
        self.take(timer, self.settings.wait_timeout).await
    }

    /// Count one operation waiting for this pool against `max_queued`
    /// until the answer is dropped; refused at once when the queue is full.
    pub(crate) fn enqueue(&self) -> Result<Queued<'_>> {
        let max_queued = self.settings.max_queued;
        self.counters.enqueue(max_queued).ok_or_else(|| {
            Error::unavailable(format!(
                "{} pool: {max_queued} operations already waiting for a connection (max_queued); refused without waiting",
                self.role
            ))
            .exhausted()
        })
    }

    /// Take a connection within `wait` on `timer`, for an operation the
    /// caller has counted in the queue ([`ConnectionPool::enqueue`]).
    pub(crate) async fn take(&self, timer: &mut Timer, wait: Duration) -> Result<Object> {
        // Bounded on the operation's timer, not on one of deadpool's, and
        // pinned here: moved into `within`, the (large) future would be copied.
        let unbounded = Timeouts {
            wait: None,
            ..self.pool.timeouts()
        };
        let mut get = std::pin::pin!(self.pool.timeout_get(&unbounded));
        // A free connection is taken at the first poll, with no clock read,
        // no timer and no pool-wide lock.
        let first = poll_fn(|cx| Poll::Ready(get.as_mut().poll(cx))).await;
        let got = match first {
            Poll::Ready(got) => got,
            Poll::Pending => {
                // Opening a new connection, or waiting: a wait when every
                // connection is busy and there is no room for another
                // (deadpool counts holders and waiters, us among them, as users).
                let status = self.pool.status();
                let waits = status.available == 0 && status.size + status.waiting > status.max_size;
                let started = std::time::Instant::now();
                let got = timer.within(wait, get).await;
                if waits {
                    self.counters.waited(started.elapsed());
                }
                got.unwrap_or(Err(PoolError::Timeout(
                    deadpool_postgres::TimeoutType::Wait,
                )))
            }
        };
        got.map_err(|e| self.checkout_error(e))
    }

    /// The answer to an operation that found no free connection within
    /// the pool's wait timeout.
    pub(crate) fn wait_timed_out(&self) -> Error {
        self.checkout_error(PoolError::Timeout(deadpool_postgres::TimeoutType::Wait))
    }

    /// Close a checked-out connection whose state is unknown instead of
    /// giving it back.
    pub(crate) fn discard(&self, conn: Object) {
        drop(Object::take(conn));
        self.counters.closed(self.role, Reason::Broken);
    }

    /// The managed settings as they are in force on a connection of this
    /// pool (`SHOW` values, e.g. `30s`), name by name.
    pub(crate) async fn settings_in_force(&self) -> Result<Vec<(String, String)>> {
        let client = self.get().await?;
        read_settings(&client, &MANAGED_SETTINGS).await
    }

    /// This pool's numbers now.
    pub(crate) fn stats(&self) -> PoolStats {
        self.counters.snapshot(self.pool.status())
    }

    /// Open one connection now, so a bad DSN, an unreachable server or a
    /// refused session setting fails `open` instead of the first request.
    pub(crate) async fn check(&self) -> Result<Object> {
        self.get()
            .await
            .map_err(|e| e.prefixed("cannot open the adapter"))
    }

    fn checkout_error(&self, err: PoolError) -> Error {
        let (role, target) = (self.role, &self.target);
        match err {
            PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => {
                Error::unavailable(format!(
                    "{role} pool: no free connection within {:?} ({} open)",
                    self.settings.wait_timeout,
                    self.pool.status().size
                ))
                .exhausted()
            }
            PoolError::Timeout(_) => Error::unavailable(format!(
                "{role} pool: connecting to {target} took longer than {:?}",
                self.settings.connect_timeout
            )),
            // A server without TLS, or a certificate that fails verification,
            // is a mismatch between the DSN and the server that retrying
            // cannot fix: Config, as a refused session setting is.
            PoolError::Backend(e) => match self.tls.refusal(&e) {
                Some(why) => Error::config(format!(
                    "{role} pool: cannot connect to {target}: {why}: {}",
                    describe(&e)
                )),
                None => Error::unavailable(format!(
                    "{role} pool: cannot connect to {target}: {}",
                    describe(&e)
                )),
            }
            .with_source(e),
            PoolError::PostCreateHook(HookError::Backend(e)) if e.as_db_error().is_some() => {
                Error::config(format!(
                    "{role} pool: {target} refused the session settings: {}",
                    describe(&e)
                ))
                .with_source(e)
            }
            PoolError::PostCreateHook(e) => Error::unavailable(format!(
                "{role} pool: setting up a connection to {target} failed: {}",
                describe(&e)
            )),
            PoolError::Closed | PoolError::NoRuntimeSpecified => {
                Error::closed(format!("the {role} pool is closed"))
            }
        }
    }
}
