//! Connection lifetimes: `max_lifetime`, `max_idle_time` and `max_idle`
//! enforced on a pool, each closing counted by its reason.
//!
//! Two places enforce them. At checkout, a pre-recycle hook refuses a
//! connection that is too old, idle too long or broken, so nobody is handed
//! one. Between checkouts, a reaper task closes idle connections past their
//! lifetime or idle time and trims the idle set to `max_idle`, so an idle
//! process gives its server slots back.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{ClientWrapper, Hook, HookError, Metrics, Pool};

use crate::config::{PoolSettings, Role};
use crate::stats::{Counters, Reason};

/// A connection's lifetime is shortened by up to this fraction, differently
/// for each connection, so a pool opened at once does not reconnect at once.
const LIFETIME_JITTER: f64 = 0.1;

/// The lifetime rules of one pool.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lifetimes {
    role: Role,
    max_lifetime: Duration,
    max_idle_time: Duration,
    max_idle: usize,
}

impl Lifetimes {
    pub(crate) fn new(role: Role, settings: &PoolSettings) -> Lifetimes {
        Lifetimes {
            role,
            max_lifetime: settings.max_lifetime,
            max_idle_time: settings.max_idle_time,
            max_idle: settings.max_idle,
        }
    }

    /// This connection's lifetime: `max_lifetime` less a jitter fixed per
    /// connection (derived from its creation instant).
    fn lifetime_of(&self, metrics: &Metrics) -> Duration {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        metrics.created.hash(&mut hasher);
        let fraction = (hasher.finish() % 10_000) as f64 / 10_000.0;
        self.max_lifetime.mul_f64(1.0 - LIFETIME_JITTER * fraction)
    }

    /// Why an idle connection must go, if it must.
    fn expired(&self, client: &ClientWrapper, metrics: &Metrics) -> Option<Reason> {
        if client.is_closed() {
            Some(Reason::Broken)
        } else if metrics.age() >= self.lifetime_of(metrics) {
            Some(Reason::MaxLifetime)
        } else if metrics.last_used() >= self.max_idle_time {
            Some(Reason::MaxIdleTime)
        } else {
            None
        }
    }

    /// The checkout-time check: an expired connection is refused (deadpool
    /// then closes it and tries another or opens a new one).
    pub(crate) fn pre_recycle_hook(self, counters: Arc<Counters>) -> Hook {
        Hook::sync_fn(move |client: &mut ClientWrapper, metrics: &Metrics| {
            match self.expired(client, metrics) {
                Some(reason) => {
                    counters.closed(self.role, reason);
                    Err(HookError::Message(reason.as_str().into()))
                }
                None => Ok(()),
            }
        })
    }

    /// How often the reaper looks at the idle connections: a quarter of the
    /// shortest limit, at least every second (for `max_idle`), at most ten
    /// times a second. A pass locks the pool's idle list briefly; no I/O.
    fn tick(&self) -> Duration {
        (self.max_lifetime.min(self.max_idle_time) / 4)
            .clamp(Duration::from_millis(100), Duration::from_secs(1))
    }

    /// One pass over the idle connections: close the expired ones, then the
    /// ones beyond `max_idle`.
    fn reap(&self, pool: &Pool, counters: &Counters) {
        let mut kept = 0;
        let removed = pool.retain(|client, metrics| {
            let reason = match self.expired(client, &metrics) {
                None if kept >= self.max_idle => Some(Reason::MaxIdleCount),
                other => other,
            };
            match reason {
                Some(reason) => {
                    counters.closed(self.role, reason);
                    false
                }
                None => {
                    kept += 1;
                    true
                }
            }
        });
        // Dropping the clients closes their connections.
        drop(removed);
    }

    /// Run the reaper until the pool is closed.
    pub(crate) fn spawn_reaper(self, pool: Pool, counters: Arc<Counters>) {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(self.tick());
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if pool.is_closed() {
                    break;
                }
                self.reap(&pool, &counters);
            }
        });
    }
}
