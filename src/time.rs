//! Time as hookgate stores it: [`Timestamp`], microseconds since the Unix epoch, UTC, in an `i64`
//! (a column of type `BIGINT` on both engines). One type for every stored time, so a duration is
//! never mistaken for an instant and no caller multiplies by a million by hand.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sea_orm::DeriveValueType;
use serde::{Deserialize, Serialize};

/// An instant: microseconds since the Unix epoch, UTC. Stored as its `i64` (in JSON too).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    DeriveValueType,
    Serialize,
    Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The Unix epoch (also the value of a time that was never set where a column needs one).
    pub const EPOCH: Timestamp = Timestamp(0);

    /// Now.
    pub fn now() -> Self {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("the system clock is after 1970");
        Self(
            i64::try_from(since.as_micros())
                .expect("microseconds since 1970 fit an i64 until year 294247"),
        )
    }

    /// A stored time, as its microseconds since the epoch.
    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// Microseconds since the epoch, as stored.
    pub const fn micros(self) -> i64 {
        self.0
    }

    /// This instant plus `d` (saturating).
    pub fn plus(self, d: Duration) -> Self {
        Self(self.0.saturating_add(duration_micros(d)))
    }

    /// This instant minus `d` (saturating).
    pub fn minus(self, d: Duration) -> Self {
        Self(self.0.saturating_sub(duration_micros(d)))
    }

    /// How long after `earlier` this is; zero when it is not after it.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_micros(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }

    /// As a protobuf `Timestamp`.
    pub fn to_proto(self) -> prost_types::Timestamp {
        prost_types::Timestamp {
            seconds: self.0.div_euclid(1_000_000),
            nanos: (self.0.rem_euclid(1_000_000) * 1_000) as i32,
        }
    }

    /// From a protobuf `Timestamp` (nanoseconds below a microsecond are dropped).
    pub fn from_proto(ts: &prost_types::Timestamp) -> Self {
        Self(
            ts.seconds
                .saturating_mul(1_000_000)
                .saturating_add(i64::from(ts.nanos) / 1_000),
        )
    }
}

impl From<Timestamp> for i64 {
    fn from(t: Timestamp) -> i64 {
        t.0
    }
}

/// A duration in whole microseconds, saturating at `i64::MAX`.
fn duration_micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_split_seconds_and_nanos() {
        let ts = Timestamp::from_micros(1_700_000_000_123_456).to_proto();
        assert_eq!(ts.seconds, 1_700_000_000);
        assert_eq!(ts.nanos, 123_456_000);
    }

    #[test]
    fn timestamps_round_trip_through_proto_and_saturate() {
        let t = Timestamp::from_micros(-1_500_000);
        assert_eq!(Timestamp::from_proto(&t.to_proto()), t);
        assert_eq!(
            Timestamp::from_micros(i64::MAX)
                .plus(Duration::from_secs(1))
                .micros(),
            i64::MAX
        );
        let later = t.plus(Duration::from_millis(250));
        assert_eq!(later.since(t), Duration::from_millis(250));
        assert_eq!(t.since(later), Duration::ZERO);
        assert_eq!(later.minus(Duration::from_millis(250)), t);
    }
}
