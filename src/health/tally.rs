//! What a receiver's health needs that the delivery log does not hold: the answers the ingress
//! gives without storing a delivery. A duplicate (200, the original's id), a refusal by the
//! receiver's rate limit (429), and a 401 past the log's cap of unauthenticated requests a
//! minute are answered from memory and never written, so this process counts them here, per
//! receiver and per minute, for the last 24 hours. It is this replica's count only (another
//! replica behind the same load balancer has its own), and it starts empty at each start.
//!
//! Memory is bounded: a receiver has at most one entry a minute it had such an answer in (1,440
//! at most), entries older than a day are dropped as new ones come, and a receiver with none in
//! the last day is forgotten by a sweep that runs at most once a minute.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use uuid::Uuid;

use crate::time::Timestamp;

/// An answer the ingress gave without storing a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unstored {
    /// 200: the receiver already has a delivery with this key.
    Duplicate,
    /// 429: over the receiver's `rate_limit_per_minute`.
    RateLimited,
    /// 401, not logged: over `REJECTED_LOGGED_PER_MINUTE`, or the log could not be written.
    Rejected,
}

impl Unstored {
    const ALL: [Unstored; 3] = [
        Unstored::Duplicate,
        Unstored::RateLimited,
        Unstored::Rejected,
    ];

    fn index(self) -> usize {
        match self {
            Unstored::Duplicate => 0,
            Unstored::RateLimited => 1,
            Unstored::Rejected => 2,
        }
    }
}

/// How far back the tally remembers: the longest window health reports.
pub const REMEMBERED: Duration = Duration::from_secs(24 * 3600);

/// Microseconds in a minute, the tally's resolution.
const MINUTE: i64 = 60_000_000;

/// Minutes in [`REMEMBERED`].
const MINUTES_REMEMBERED: i64 = 24 * 60;

/// One receiver's unstored answers, as [`Tally::of`] reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Remembered {
    /// In the last hour, by [`Unstored`] (to the minute).
    pub last_hour: UnstoredCounts,
    /// In the last 24 hours (to the minute).
    pub last_day: UnstoredCounts,
    /// The last time of each, since this process started.
    pub last_duplicate_time: Option<Timestamp>,
    pub last_rate_limited_time: Option<Timestamp>,
    pub last_rejected_time: Option<Timestamp>,
}

impl Remembered {
    /// The last time of any of them.
    pub fn last_time(&self) -> Option<Timestamp> {
        [
            self.last_duplicate_time,
            self.last_rate_limited_time,
            self.last_rejected_time,
        ]
        .into_iter()
        .flatten()
        .max()
    }
}

/// Counts by [`Unstored`] over a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnstoredCounts {
    pub duplicate: u64,
    pub rate_limited: u64,
    pub rejected: u64,
}

/// This process's unstored answers, per receiver. Shared by the ingress (which counts) and the
/// admin API (which reads).
#[derive(Debug, Default)]
pub struct Tally {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    by_receiver: HashMap<Uuid, ReceiverTally>,
    /// The minute of the last sweep of forgotten receivers.
    swept: i64,
}

#[derive(Debug, Default)]
struct ReceiverTally {
    /// Oldest first: (minute since the epoch, counts by [`Unstored::index`]).
    minutes: VecDeque<(i64, [u32; 3])>,
    /// The last time of each, by [`Unstored::index`].
    last: [Option<Timestamp>; 3],
}

impl Tally {
    /// Counts one `answer` to `receiver` at `at`.
    pub fn count(&self, receiver: Uuid, answer: Unstored, at: Timestamp) {
        let minute = at.micros().div_euclid(MINUTE);
        let mut inner = self.inner.lock().expect("tally lock");
        if minute > inner.swept {
            inner.swept = minute;
            inner
                .by_receiver
                .retain(|_, t| t.minutes.back().is_some_and(|(m, _)| recent(*m, minute)));
        }
        let tally = inner.by_receiver.entry(receiver).or_default();
        match tally.minutes.back_mut() {
            Some((m, counts)) if *m == minute => counts[answer.index()] += 1,
            // A time earlier than the newest minute (clocks are not monotonic) joins the newest.
            Some((m, counts)) if *m > minute => counts[answer.index()] += 1,
            _ => {
                let mut counts = [0; 3];
                counts[answer.index()] = 1;
                tally.minutes.push_back((minute, counts));
            }
        }
        while tally
            .minutes
            .front()
            .is_some_and(|(m, _)| !recent(*m, minute))
        {
            tally.minutes.pop_front();
        }
        let last = &mut tally.last[answer.index()];
        *last = Some(last.map_or(at, |t| t.max(at)));
    }

    /// What `receiver` was answered without a delivery being stored, as of `now`.
    pub fn of(&self, receiver: Uuid, now: Timestamp) -> Remembered {
        let minute = now.micros().div_euclid(MINUTE);
        let inner = self.inner.lock().expect("tally lock");
        let Some(tally) = inner.by_receiver.get(&receiver) else {
            return Remembered::default();
        };
        let mut remembered = Remembered {
            last_duplicate_time: tally.last[Unstored::Duplicate.index()],
            last_rate_limited_time: tally.last[Unstored::RateLimited.index()],
            last_rejected_time: tally.last[Unstored::Rejected.index()],
            ..Remembered::default()
        };
        for (m, counts) in &tally.minutes {
            let age = minute - m;
            for answer in Unstored::ALL {
                let n = u64::from(counts[answer.index()]);
                if age < MINUTES_REMEMBERED {
                    add(&mut remembered.last_day, answer, n);
                }
                if age < 60 {
                    add(&mut remembered.last_hour, answer, n);
                }
            }
        }
        remembered
    }

    /// How many receivers the tally holds (for tests of its bound).
    pub fn receivers(&self) -> usize {
        self.inner.lock().expect("tally lock").by_receiver.len()
    }
}

/// Whether `minute` is within the last day as of `now` (both minutes since the epoch).
fn recent(minute: i64, now: i64) -> bool {
    now - minute < MINUTES_REMEMBERED
}

fn add(counts: &mut UnstoredCounts, answer: Unstored, n: u64) {
    match answer {
        Unstored::Duplicate => counts.duplicate += n,
        Unstored::RateLimited => counts.rate_limited += n,
        Unstored::Rejected => counts.rejected += n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000_000_000;

    fn at(minutes: i64) -> Timestamp {
        Timestamp::from_micros(T0 + minutes * MINUTE)
    }

    #[test]
    fn answers_are_counted_over_the_last_hour_and_day_per_receiver() {
        let tally = Tally::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        tally.count(a, Unstored::Duplicate, at(0));
        tally.count(a, Unstored::RateLimited, at(100));
        tally.count(a, Unstored::RateLimited, at(100));
        tally.count(a, Unstored::Rejected, at(150));
        tally.count(b, Unstored::Duplicate, at(150));

        let now = tally.of(a, at(150));
        assert_eq!(
            now.last_hour,
            UnstoredCounts {
                duplicate: 0,
                rate_limited: 2,
                rejected: 1
            }
        );
        assert_eq!(
            now.last_day,
            UnstoredCounts {
                duplicate: 1,
                rate_limited: 2,
                rejected: 1
            }
        );
        assert_eq!(now.last_duplicate_time, Some(at(0)));
        assert_eq!(now.last_rate_limited_time, Some(at(100)));
        assert_eq!(now.last_time(), Some(at(150)));
        assert_eq!(tally.of(b, at(150)).last_hour.duplicate, 1);
        assert_eq!(tally.of(Uuid::new_v4(), at(150)), Remembered::default());
    }

    #[test]
    fn a_day_later_the_counts_are_gone_but_the_last_times_stay() {
        let tally = Tally::default();
        let a = Uuid::new_v4();
        tally.count(a, Unstored::RateLimited, at(0));
        let later = tally.of(a, at(MINUTES_REMEMBERED));
        assert_eq!(later.last_day, UnstoredCounts::default());
        assert_eq!(later.last_rate_limited_time, Some(at(0)));
        assert_eq!(tally.of(a, at(59)).last_hour.rate_limited, 1);
        assert_eq!(tally.of(a, at(60)).last_hour.rate_limited, 0);
    }

    #[test]
    fn memory_is_bounded_by_minutes_and_forgotten_receivers_are_swept() {
        let tally = Tally::default();
        let a = Uuid::new_v4();
        for minute in 0..3 * MINUTES_REMEMBERED {
            tally.count(a, Unstored::Duplicate, at(minute));
            tally.count(a, Unstored::Duplicate, at(minute));
        }
        let kept = tally.inner.lock().unwrap().by_receiver[&a].minutes.len();
        assert_eq!(
            kept as i64, MINUTES_REMEMBERED,
            "one entry a minute, a day's worth"
        );
        assert_eq!(
            tally
                .of(a, at(3 * MINUTES_REMEMBERED - 1))
                .last_day
                .duplicate,
            2 * MINUTES_REMEMBERED as u64
        );

        let tally = Tally::default();
        for _ in 0..1000 {
            tally.count(Uuid::new_v4(), Unstored::Rejected, at(0));
        }
        tally.count(a, Unstored::Duplicate, at(MINUTES_REMEMBERED - 1));
        assert_eq!(tally.receivers(), 1001);
        tally.count(a, Unstored::Duplicate, at(MINUTES_REMEMBERED));
        assert_eq!(
            tally.receivers(),
            1,
            "receivers with nothing in a day are forgotten"
        );
    }
}
