//! Per-receiver rate limits: a token bucket per receiver, refilled evenly over the minute, so a
//! receiver with `rate_limit_per_minute = 60` takes a burst of 60 and then one a second.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

/// One receiver's bucket.
#[derive(Debug)]
struct Bucket {
    /// The limit the bucket was made for; a changed limit starts a fresh bucket.
    per_minute: u32,
    /// Deliveries that may be taken now (fractions accumulate between requests).
    tokens: f64,
    /// When `tokens` was last brought up to date.
    updated: Instant,
}

/// The buckets of every rate-limited receiver in this process.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<Uuid, Bucket>>,
}

impl RateLimiter {
    /// Takes one delivery for `receiver` under a limit of `per_minute` (0: unlimited). `Err`
    /// carries how long until the next one would be taken.
    pub fn check(&self, receiver: Uuid, per_minute: u32, now: Instant) -> Result<(), Duration> {
        if per_minute == 0 {
            return Ok(());
        }
        let rate = f64::from(per_minute) / 60.0;
        let mut buckets = self.buckets.lock().expect("rate limiter lock");
        let bucket = buckets.entry(receiver).or_insert(Bucket {
            per_minute,
            tokens: f64::from(per_minute),
            updated: now,
        });
        if bucket.per_minute != per_minute {
            *bucket = Bucket {
                per_minute,
                tokens: f64::from(per_minute),
                updated: now,
            };
        }
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(f64::from(per_minute));
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_the_limit_is_taken_then_one_per_interval() {
        let limiter = RateLimiter::default();
        let id = Uuid::new_v4();
        let t0 = Instant::now();
        for _ in 0..60 {
            assert!(limiter.check(id, 60, t0).is_ok());
        }
        let wait = limiter.check(id, 60, t0).unwrap_err();
        assert!(
            wait > Duration::from_millis(990) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(
            limiter
                .check(id, 60, t0 + Duration::from_millis(500))
                .is_err()
        );
        assert!(limiter.check(id, 60, t0 + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn zero_means_unlimited_and_receivers_have_their_own_buckets() {
        let limiter = RateLimiter::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let t0 = Instant::now();
        for _ in 0..1000 {
            assert!(limiter.check(a, 0, t0).is_ok());
        }
        assert!(limiter.check(b, 1, t0).is_ok());
        assert!(limiter.check(b, 1, t0).is_err());
        assert!(limiter.check(a, 1, t0).is_ok(), "a's bucket is not b's");
    }
}
