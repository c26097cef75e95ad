//! Connection lifetimes: `max_lifetime`, `max_idle_time` and `max_idle`
//! enforced on a pool, each closing counted by its reason.
//!
//! Two places enforce them. At checkout, a pre-recycle hook refuses a
//! connection that is too old, idle too long or broken, so nobody is handed
//! one. Between checkouts, a reaper task closes idle connections past their
//! lifetime or idle time and trims the idle set to `max_idle`, so an idle
//! process gives its server slots back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::{ClientWrapper, HookError, Metrics};

use super::conn::{Conn, Hook, Pool};

use super::counters::{Counters, Reason};
use crate::config::{PoolSettings, Role};

/// A connection's lifetime is shortened by up to this fraction, differently
/// for each connection, so a pool opened at once does not reconnect at once.
const LIFETIME_JITTER: f64 = 0.1;

/// The lifetime rules of one pool.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lifetimes {
    role: Role,
    max_lifetime: Duration,
    /// The shortest lifetime the jitter gives: a connection younger than
    /// this is within its own, which is then not derived (a float
    /// multiplication on every checkout).
    shortest_lifetime: Duration,
    max_idle_time: Duration,
    max_idle: usize,
    /// When the pool was built: connection creation instants are measured
    /// from it to derive each one's jitter.
    epoch: Instant,
}

impl Lifetimes {
    pub(crate) fn new(role: Role, settings: &PoolSettings) -> Lifetimes {
        Lifetimes {
            role,
            max_lifetime: settings.max_lifetime,
            shortest_lifetime: settings.max_lifetime.mul_f64(1.0 - LIFETIME_JITTER),
            max_idle_time: settings.max_idle_time,
            max_idle: settings.max_idle,
            epoch: Instant::now(),
        }
    }

    /// This connection's lifetime: `max_lifetime` less a jitter fixed per
    /// connection, derived from the nanoseconds of its creation instant
    /// (which differ from connection to connection at random).
    fn lifetime_of(&self, metrics: &Metrics) -> Duration {
        const STEPS: u32 = 10_007;
        let nanos = metrics
            .created
            .saturating_duration_since(self.epoch)
            .subsec_nanos();
        let fraction = f64::from(nanos % STEPS) / f64::from(STEPS);
        self.max_lifetime.mul_f64(1.0 - LIFETIME_JITTER * fraction)
    }

    /// Why an idle connection must go, if it must. Runs on every checkout:
    /// one clock read.
    fn expired(&self, client: &ClientWrapper, metrics: &Metrics) -> Option<Reason> {
        let now = Instant::now();
        let since = |instant: Instant| now.saturating_duration_since(instant);
        let age = since(metrics.created);
        if client.is_closed() {
            Some(Reason::Broken)
        } else if age >= self.shortest_lifetime && age >= self.lifetime_of(metrics) {
            Some(Reason::MaxLifetime)
        } else if since(metrics.recycled.unwrap_or(metrics.created)) >= self.max_idle_time {
            Some(Reason::MaxIdleTime)
        } else {
            None
        }
    }

    /// The checkout-time check: an expired connection is refused (deadpool
    /// then closes it and tries another or opens a new one).
    pub(crate) fn pre_recycle_hook(self, counters: Arc<Counters>) -> Hook {
        Hook::sync_fn(move |client: &mut Box<Conn>, metrics: &Metrics| {
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
        let reaping = Reaping {
            role: self.role,
            pool,
            counters,
        };
        reaping.counters.reaper_started();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(self.tick());
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if reaping.pool.is_closed() {
                    break;
                }
                self.reap(&reaping.pool, &reaping.counters);
            }
        });
    }
}

/// The reaper task's state; dropped when the task ends, however it ends.
struct Reaping {
    role: Role,
    pool: Pool,
    counters: Arc<Counters>,
}

impl Drop for Reaping {
    fn drop(&mut self) {
        if !self.pool.is_closed() {
            // A panic, or the runtime shutting down: from now on idle
            // connections are closed only when a checkout finds them expired.
            tracing::error!(
                target: "pgactor.pool",
                role = self.role.as_str(),
                "the pool's reaper stopped; idle connections past their lifetime or beyond max_idle stay open until a checkout finds them"
            );
            self.counters.reaper_stopped();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PoolConfig;

    #[tokio::test]
    async fn a_reaper_that_stops_while_its_pool_is_open_says_so_in_stats() {
        let session = Arc::new(crate::config::SessionConfig::default().resolve().unwrap());
        let dsn =
            crate::wire::Dsn::parse("postgres://app@127.0.0.1:1/db?sslmode=disable", Role::Write)
                .unwrap();
        let settings = PoolConfig::default().resolve(Role::Write).unwrap();
        let pool = crate::pool::ConnectionPool::build(
            Role::Write,
            &dsn,
            settings,
            session,
            1,
            Default::default(),
        )
        .unwrap();
        // Building the pool started its reaper.
        assert!(pool.stats().reaper_running);
        // The reaper's task ends while its pool is open (a panic, an abort).
        drop(Reaping {
            role: Role::Write,
            pool: pool.pool.clone(),
            counters: pool.counters.clone(),
        });
        assert!(!pool.stats().reaper_running);
        // Once the pool is closed, a reaper ending is the normal end.
        let counters = Arc::new(Counters::default());
        counters.reaper_started();
        pool.pool.close();
        drop(Reaping {
            role: Role::Write,
            pool: pool.pool.clone(),
            counters: counters.clone(),
        });
        assert!(counters.snapshot(pool.pool.status()).reaper_running);
    }

    #[test]
    fn each_connection_lives_up_to_a_tenth_less_than_max_lifetime() {
        let settings = PoolConfig::default().resolve(Role::Write).unwrap();
        let lifetimes = Lifetimes::new(Role::Write, &settings);
        let born = |nanos: u64| Metrics {
            created: lifetimes.epoch + Duration::from_nanos(nanos),
            recycled: None,
            recycle_count: 0,
        };
        // The early-out of `expired` rests on no lifetime being shorter.
        let shortest = lifetimes.shortest_lifetime;
        assert_eq!(
            shortest,
            settings.max_lifetime.mul_f64(1.0 - LIFETIME_JITTER)
        );
        let spans: Vec<Duration> = (0..200u64)
            .map(|i| lifetimes.lifetime_of(&born(i * 7_919_133)))
            .collect();
        for span in &spans {
            assert!(
                (shortest..=settings.max_lifetime).contains(span),
                "{span:?}"
            );
        }
        // Fixed per connection, and spread over the range.
        assert_eq!(
            lifetimes.lifetime_of(&born(123_456_789)),
            lifetimes.lifetime_of(&born(123_456_789))
        );
        let (min, max) = (spans.iter().min().unwrap(), spans.iter().max().unwrap());
        assert!(
            *max - *min > (settings.max_lifetime - shortest) / 2,
            "{min:?}..{max:?}"
        );
    }
}
