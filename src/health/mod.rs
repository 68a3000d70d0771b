//! Receiver health: what a receiver's recent traffic says, for an admin asking "is my hook
//! working?". The last time of a delivery in each outcome, counts by outcome over the last hour
//! and day, the last error, and a [`Diagnosis`] in one sentence a person can act on.
//!
//! It is separate from the delivery log because it reads two sources: the log itself
//! ([`HealthStore`], the same for every replica, so stored outcomes are counted right behind a
//! load balancer), and what the ingress answers without storing anything, which only the
//! answering process knows ([`Tally`]: duplicates, rate-limited requests, unauthenticated
//! requests past the log's cap). [`Unmatched`] keeps, in memory too, the requests to receiver
//! ids that do not exist, the usual sign of an old URL pasted at the code host.

mod diagnosis;
mod store;
mod tally;
mod unmatched;

pub use diagnosis::{
    Diagnosis, Evidence, LastByState, Latest, RATE_LIMITED_WITHIN, SILENT_AFTER, diagnose,
};
pub use store::HealthStore;
pub use tally::{Remembered, Tally, Unstored, UnstoredCounts};
pub use unmatched::{KEPT as UNMATCHED_KEPT, Unmatched, UnmatchedReceiver};

use uuid::Uuid;

use crate::time::Timestamp;

/// Requests to a receiver by outcome over a window. Stored outcomes (all but `duplicate` and
/// `rate_limited`) are counted from the delivery log by receive time and the state the delivery
/// is in now; `duplicate`, `rate_limited`, and the part of `rejected` that was not logged, from
/// this process's [`Tally`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutcomeCounts {
    /// Stored and acknowledged with a 2xx (every state but `REJECTED`).
    pub accepted: u64,
    pub duplicate: u64,
    pub ignored: u64,
    pub rejected: u64,
    pub rate_limited: u64,
    pub processed: u64,
    pub failed: u64,
}

/// The most recent delivery that failed or was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverError {
    pub delivery_id: Uuid,
    /// When it failed (its last try) or was rejected (received).
    pub time: Timestamp,
    pub message: String,
}

/// A receiver's health as [`HealthStore::of`] computes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverHealth {
    pub receiver_id: Uuid,
    /// The last request of any outcome (stored, or answered from memory by this process, or
    /// recorded on the receiver before older deliveries were purged).
    pub last_delivery_time: Option<Timestamp>,
    /// The receive time of the newest delivery stored and acknowledged (any state but
    /// `REJECTED`).
    pub last_accepted_time: Option<Timestamp>,
    /// The receive time of the newest rejected request, logged or not.
    pub last_rejected_time: Option<Timestamp>,
    /// The receive time of the newest delivery that is `FAILED` now.
    pub last_failed_time: Option<Timestamp>,
    pub last_hour: OutcomeCounts,
    pub last_day: OutcomeCounts,
    pub last_error: Option<ReceiverError>,
    pub diagnosis: Diagnosis,
    pub diagnosis_message: String,
    pub compute_time: Timestamp,
}
