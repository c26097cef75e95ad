//! How often, and after what wait, work that failed with an error where
//! nothing was applied is run again.

use std::time::Duration;

use crate::error::Error;

/// How [`crate::Db::with_transaction`] re-runs a transaction that failed
/// with [`crate::ErrorKind::Conflict`] (or [`crate::ErrorKind::Unavailable`], where
/// nothing was committed). Off by default: `max_attempts` 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Runs in all, the first included (1: no retry).
    pub max_attempts: u32,
    /// The wait before the first retry; doubled each time, with jitter.
    pub base_backoff: Duration,
    /// The longest wait between two runs.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 1,
            base_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(500),
        }
    }
}

impl RetryPolicy {
    /// Up to `max_attempts` runs with the default backoff.
    pub fn attempts(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            ..RetryPolicy::default()
        }
    }

    /// Whether run number `attempt` (from 1) that failed with `err` is re-run.
    /// Only errors where nothing was committed qualify; OutcomeUnknown never does.
    pub(crate) fn retries(&self, err: &Error, attempt: u32) -> bool {
        attempt < self.max_attempts && err.is_retryable()
    }

    /// The wait after run number `attempt`: exponential, capped, full jitter.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .base_backoff
            .saturating_mul(1 << attempt.saturating_sub(1).min(16))
            .min(self.max_backoff);
        ceiling.mul_f64(jitter())
    }
}

/// A number in [0, 1), different on every call; good enough for backoff jitter.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}
