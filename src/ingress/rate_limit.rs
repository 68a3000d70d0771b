//! Rate limits a minute per key, on `governor`'s keyed limiters (GCRA): receivers'
//! `rate_limit_per_minute`, and how many `REJECTED` rows a receiver's log gains. A limit of 60 a
//! minute takes a burst of 60 and then one a second. Limits differ by receiver, so there is one
//! keyed limiter per limit in use; a receiver whose limit changes is counted afresh under the new
//! one.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter as Governor};
use uuid::Uuid;

/// One limit's keyed limiter.
type Keyed<C> = Governor<Uuid, DashMapStateStore<Uuid>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// The rate limits of this process, by key; `C` is the clock (a fake one in unit tests).
#[derive(Debug)]
pub struct RateLimiter<C: Clock = DefaultClock> {
    clock: C,
    /// One keyed limiter per limit a minute in use.
    by_limit: Mutex<HashMap<NonZeroU32, Arc<Keyed<C>>>>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::with_clock(DefaultClock::default())
    }
}

impl<C: Clock + Clone> RateLimiter<C> {
    pub fn with_clock(clock: C) -> Self {
        Self {
            clock,
            by_limit: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one for `key` under a limit of `per_minute` (0: unlimited). `Err` carries how long
    /// until the next one would be taken.
    pub fn check(&self, key: Uuid, per_minute: u32) -> Result<(), Duration> {
        let Some(per_minute) = NonZeroU32::new(per_minute) else {
            return Ok(());
        };
        let limiter = {
            let mut by_limit = self.by_limit.lock().expect("rate limiter lock");
            by_limit
                .entry(per_minute)
                .or_insert_with(|| {
                    Arc::new(Governor::dashmap_with_clock(
                        Quota::per_minute(per_minute),
                        self.clock.clone(),
                    ))
                })
                .clone()
        };
        limiter
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    #[test]
    fn a_burst_of_the_limit_is_taken_then_one_per_interval() {
        let clock = FakeRelativeClock::default();
        let limiter = RateLimiter::with_clock(clock.clone());
        let id = Uuid::new_v4();
        for _ in 0..60 {
            assert!(limiter.check(id, 60).is_ok());
        }
        let wait = limiter.check(id, 60).unwrap_err();
        assert!(
            wait > Duration::from_millis(990) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        clock.advance(Duration::from_millis(500));
        assert!(limiter.check(id, 60).is_err());
        clock.advance(Duration::from_millis(500));
        assert!(limiter.check(id, 60).is_ok());
    }

    #[test]
    fn zero_means_unlimited_and_receivers_have_their_own_buckets() {
        let limiter = RateLimiter::with_clock(FakeRelativeClock::default());
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        for _ in 0..1000 {
            assert!(limiter.check(a, 0).is_ok());
        }
        assert!(limiter.check(b, 1).is_ok());
        assert!(limiter.check(b, 1).is_err());
        assert!(limiter.check(a, 1).is_ok(), "a's bucket is not b's");
    }

    #[test]
    fn a_changed_limit_counts_afresh() {
        let limiter = RateLimiter::with_clock(FakeRelativeClock::default());
        let id = Uuid::new_v4();
        assert!(limiter.check(id, 1).is_ok());
        assert!(limiter.check(id, 1).is_err());
        assert!(limiter.check(id, 2).is_ok(), "a new limit, a new allowance");
    }
}
