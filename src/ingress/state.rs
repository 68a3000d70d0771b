//! What the ingress handlers share: the state every request is handled with, and the two steps
//! that the delivery handler and the generic trigger both take with it: the receiver's rate
//! limit (after a look for a duplicate), and the bounded log of requests that were not
//! authenticated. Answers given without storing a delivery (a duplicate, a 429, a 401 past the
//! log's cap) are counted in the health tally here too.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;
use tokio::sync::Notify;
use uuid::Uuid;

use super::rate_limit::RateLimiter;
use super::reply;
use crate::db::Db;
use crate::deliveries::{
    DeliveryKey, DeliveryState, DeliveryStore, Intake, NewDelivery, Stored, WorkerStatus,
};
use crate::health::{Tally, Unmatched, Unstored};
use crate::receivers::{Receiver, ReceiverStore};
use crate::text::{Cap, bounded};
use crate::time::Timestamp;

/// The most rows of requests that were not authenticated (`REJECTED` 401s and unsigned pings)
/// a receiver's log gains a minute (a burst of as many, then one a second). Past it such a
/// request is answered and counted all the same, and logged at `info`, but not stored: a
/// stranger who knows a receiver's URL cannot fill the database with attempts.
pub const REJECTED_LOGGED_PER_MINUTE: u32 = 60;

/// The most headers kept of a request that was not authenticated (the first, by name).
const UNAUTHENTICATED_HEADERS: usize = 32;

/// What the HTTP handlers share.
#[derive(Clone)]
pub struct IngressState {
    pub db: Db,
    pub receivers: ReceiverStore,
    pub deliveries: DeliveryStore,
    /// Group commit: where deliveries are handed to be stored.
    pub intake: Intake,
    /// The largest body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Woken after a pending delivery is committed.
    pub worker_wake: Arc<Notify>,
    /// Receivers' `rate_limit_per_minute`, which only authentic deliveries count against.
    pub rate_limiter: Arc<RateLimiter>,
    /// How many 401s a receiver's log keeps a `REJECTED` row of ([`REJECTED_LOGGED_PER_MINUTE`]).
    pub rejected_log: Arc<RateLimiter>,
    /// Whether this process's delivery worker runs; `None` with `--ingress-only` (no worker).
    pub worker: Option<WorkerStatus>,
    /// Counts what is answered without storing a delivery, for receiver health.
    pub tally: Arc<Tally>,
    /// The receiver ids requests named that no receiver has (`ListUnmatched`).
    pub unmatched: Arc<Unmatched>,
}

impl IngressState {
    /// 401 with `reason` for a request that was not authenticated; `attempt` (what it claimed
    /// to be, from its headers only) is logged as `REJECTED` with the same reason.
    pub(super) async fn rejected(&self, attempt: NewDelivery, reason: String) -> Response {
        let response_body = json!({ "error": reason });
        let row = NewDelivery {
            state: DeliveryState::Rejected,
            response_status: StatusCode::UNAUTHORIZED.as_u16(),
            response_body: response_body.to_string().into_bytes(),
            last_error: Some(reason),
            ..attempt
        };
        let (receiver, at) = (row.receiver_id, row.receive_time);
        if !self.log_unauthenticated(row).await {
            // Not in the log, so health counts it from memory.
            self.tally.count(receiver, Unstored::Rejected, at);
        }
        reply::reply(StatusCode::UNAUTHORIZED, response_body)
    }

    /// Stores the row of a request that was not authenticated, unless the receiver's log has
    /// had [`REJECTED_LOGGED_PER_MINUTE`] of them this minute; `true` when it was stored. Only
    /// what its headers and path say is kept, each value cut to `Cap::UNAUTHENTICATED`, at
    /// most [`UNAUTHENTICATED_HEADERS`] headers, and never its body: nothing a stranger chose
    /// beyond a few bytes.
    pub(super) async fn log_unauthenticated(&self, row: NewDelivery) -> bool {
        let receiver = row.receiver_id;
        if self
            .rejected_log
            .check(receiver, REJECTED_LOGGED_PER_MINUTE)
            .is_err()
        {
            tracing::info!(%receiver, "unauthenticated request not stored: over {REJECTED_LOGGED_PER_MINUTE} a minute");
            return false;
        }
        let cut = |value: String| bounded(value, Cap::UNAUTHENTICATED);
        let row = NewDelivery {
            delivery_key: row
                .delivery_key
                .and_then(|k| DeliveryKey::parse(&cut(k.into()))),
            event: cut(row.event),
            path: cut(row.path),
            request_headers: row
                .request_headers
                .into_iter()
                .take(UNAUTHENTICATED_HEADERS)
                .map(|(name, value)| (cut(name), cut(value)))
                .collect(),
            request_body: None,
            ..row
        };
        match self.intake.record(row).await {
            Ok(Stored::New) => true,
            Ok(Stored::Duplicate(_)) => false,
            Err(e) => {
                tracing::warn!(error = %e, "could not log an unauthenticated request");
                false
            }
        }
    }

    /// Takes one delivery from the receiver's `rate_limit_per_minute`, or answers it now. A
    /// delivery key the receiver already has is answered as the duplicate it is without taking
    /// from the limit (a host retrying what was stored must not crowd out new deliveries), so a
    /// limited receiver pays one indexed read per keyed delivery; an unlimited one pays nothing.
    pub(super) async fn admit(
        &self,
        receiver: &Receiver,
        key: Option<&DeliveryKey>,
    ) -> Option<Response> {
        let limit = receiver.options.rate_limit_per_minute;
        if limit == 0 {
            return None;
        }
        if let Some(key) = key {
            match self.deliveries.find_by_key(receiver.id, key).await {
                Ok(Some(original)) => return Some(self.duplicate(receiver.id, original)),
                Ok(None) => {}
                Err(e) => return Some(reply::store_failed(&e)),
            }
        }
        let wait = self.rate_limiter.check(receiver.id, limit).err()?;
        self.tally
            .count(receiver.id, Unstored::RateLimited, Timestamp::now());
        Some(reply::rate_limited(limit, wait))
    }

    /// 200 for a delivery `receiver` already has (`original`), counted for its health.
    pub(super) fn duplicate(&self, receiver: Uuid, original: Uuid) -> Response {
        self.tally
            .count(receiver, Unstored::Duplicate, Timestamp::now());
        reply::duplicate(original)
    }
}
