//! The worker: claims pending deliveries, hands each to the handler of its receiver's code host,
//! and writes the outcome together with the handler's effects in one transaction. A failed try
//! is retried with backoff, then the delivery is `FAILED`. A claim is a lease: a worker that dies
//! holding one loses it when the lease runs out, and another worker takes the delivery again.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{DatabaseConnection, DatabaseTransaction};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{ClaimedDelivery, DeliveryState, DeliveryStore};
use crate::hosts::{self, Classified, Disposition};
use crate::receivers::{Receiver, ReceiverStore};
use crate::store::StoreError;
use crate::time::now_micros;

/// How long to wait before each retry of a failed delivery; after the last, it is `FAILED`.
pub const RETRY_BACKOFF: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(120),
    Duration::from_secs(600),
];

/// How the worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// How long a claim lasts before another worker may take the delivery.
    pub lease: Duration,
    /// The most deliveries claimed at once.
    pub batch: u64,
    /// How often to look for due deliveries when nothing wakes the worker (retries, deliveries
    /// taken by another replica).
    pub poll_interval: Duration,
    /// The wait before each retry; its length is the number of retries.
    pub backoff: Vec<Duration>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(60),
            batch: 64,
            poll_interval: Duration::from_secs(1),
            backoff: RETRY_BACKOFF.to_vec(),
        }
    }
}

/// What a handler made of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Its effects are written.
    Processed,
    /// Nothing to do, and why (kept as the delivery's note).
    Ignored(String),
}

/// A handler's failure; the delivery is tried again later unless `permanent`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    pub message: String,
    /// Trying again cannot help (the payload itself is wrong): fail at once.
    pub permanent: bool,
}

impl HandlerError {
    pub fn retry(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: false,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: true,
        }
    }
}

/// Turns a verified, recognised event into effects, written on `txn`.
#[tonic::async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        receiver: &Receiver,
        delivery: &ClaimedDelivery,
        event: &Classified,
    ) -> Result<Outcome, HandlerError>;
}

/// The delivery worker of one process.
pub struct Worker {
    db: DatabaseConnection,
    deliveries: DeliveryStore,
    receivers: ReceiverStore,
    handler: Arc<dyn Handler>,
    config: WorkerConfig,
    /// Notified by the ingress after it commits a delivery, so the worker need not wait for its
    /// next poll.
    wake: Arc<Notify>,
}

impl Worker {
    pub fn new(
        db: DatabaseConnection,
        receivers: ReceiverStore,
        handler: Arc<dyn Handler>,
        config: WorkerConfig,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            deliveries: DeliveryStore::new(db.clone()),
            db,
            receivers,
            handler,
            config,
            wake,
        }
    }

    /// Processes due deliveries until `stop`; the batch in hand is finished first.
    pub async fn run(self, stop: CancellationToken) {
        let mut failures = 0u32;
        loop {
            if stop.is_cancelled() {
                break;
            }
            match self.process_due(now_micros()).await {
                Ok(n) if n as u64 == self.config.batch => {
                    failures = 0;
                    continue;
                }
                Ok(_) => failures = 0,
                Err(err) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(error = %err, "delivery worker could not claim deliveries");
                }
            }
            // Back off while the database is failing, up to 30 s.
            let wait = if failures == 0 {
                self.config.poll_interval
            } else {
                (self.config.poll_interval * failures.min(30)).min(Duration::from_secs(30))
            };
            tokio::select! {
                () = stop.cancelled() => break,
                () = self.wake.notified() => {},
                () = tokio::time::sleep(wait) => {},
            }
        }
        tracing::info!("delivery worker stopped");
    }

    /// Claims one batch of deliveries due at `now` and processes each; returns how many.
    pub async fn process_due(&self, now: i64) -> Result<usize, StoreError> {
        let claimed = self
            .deliveries
            .claim(self.config.batch, self.config.lease, now)
            .await?;
        let count = claimed.len();
        for delivery in claimed {
            self.process(delivery, now).await;
        }
        Ok(count)
    }

    async fn process(&self, delivery: ClaimedDelivery, now: i64) {
        let id = delivery.id;
        let started = std::time::Instant::now();
        let result = self.apply(&delivery, now).await;
        let error = match result {
            Ok(Some(state)) => {
                crate::metrics::delivery_processed(state, started, delivery.receive_time);
                tracing::debug!(delivery = %id, %state, "delivery processed");
                return;
            }
            Ok(None) => {
                crate::metrics::delivery_processed(
                    crate::metrics::WorkerOutcome::Lost,
                    started,
                    delivery.receive_time,
                );
                tracing::warn!(delivery = %id, "lost the claim on a delivery (lease ran out); another worker has it");
                return;
            }
            Err(e) => e,
        };
        let tries = usize::try_from(delivery.attempts.max(1)).unwrap_or(usize::MAX);
        let retry_after = if error.permanent {
            None
        } else {
            self.config.backoff.get(tries - 1).copied()
        };
        match self
            .deliveries
            .fail(&delivery, &error.message, retry_after, now)
            .await
        {
            Ok(Some(DeliveryState::Failed)) => {
                crate::metrics::delivery_processed(
                    DeliveryState::Failed,
                    started,
                    delivery.receive_time,
                );
                tracing::error!(delivery = %id, attempts = delivery.attempts, error = %error, "delivery failed for good");
            }
            Ok(Some(_)) => {
                crate::metrics::delivery_processed(
                    crate::metrics::WorkerOutcome::Retry,
                    started,
                    delivery.receive_time,
                );
                tracing::warn!(delivery = %id, attempts = delivery.attempts, error = %error, retry_in = ?retry_after, "delivery failed; will retry");
            }
            Ok(None) => {}
            Err(e) => {
                // The lease will run out and the delivery will be tried again.
                tracing::warn!(delivery = %id, error = %e, "could not record a failed try");
            }
        }
    }

    /// Handles one delivery and writes its effects and outcome in one transaction. `Ok(None)`:
    /// the claim was lost, nothing written.
    async fn apply(
        &self,
        delivery: &ClaimedDelivery,
        now: i64,
    ) -> Result<Option<DeliveryState>, HandlerError> {
        let db_error = |e: &dyn std::fmt::Display| HandlerError::retry(format!("database: {e}"));
        let Some(entry) = self
            .receivers
            .lookup_or_read(delivery.receiver_id)
            .await
            .map_err(|e| db_error(&e))?
        else {
            // The receiver was deleted, and its deliveries with it.
            return Ok(None);
        };
        let receiver = &entry.receiver;
        let Some(host) = receiver.code_host_kind.host() else {
            return Err(HandlerError::permanent(format!(
                "receivers of kind {} have no handler yet",
                receiver.code_host_kind
            )));
        };
        let headers = header_map(&delivery.request_headers);
        let classified = hosts::classify(host, &headers, &delivery.request_body)
            .map_err(|e| HandlerError::permanent(e.to_string()))?;

        let txn = crate::db::begin_write(&self.db)
            .await
            .map_err(|e| db_error(&e))?;
        let (state, note) = match classified.disposition {
            Disposition::Ping => (DeliveryState::Processed, None),
            Disposition::Ignored => (
                DeliveryState::Ignored,
                Some(format!("no handler takes {} events", classified.event)),
            ),
            Disposition::Handled => {
                match self
                    .handler
                    .handle(&txn, receiver, delivery, &classified)
                    .await?
                {
                    Outcome::Processed => (DeliveryState::Processed, None),
                    Outcome::Ignored(why) => (DeliveryState::Ignored, Some(why)),
                }
            }
        };
        let held = DeliveryStore::finish(&txn, delivery, state, note.as_deref(), now)
            .await
            .map_err(|e| db_error(&e))?;
        if !held {
            txn.rollback().await.ok();
            return Ok(None);
        }
        txn.commit().await.map_err(|e| db_error(&e))?;
        Ok(Some(state))
    }
}

/// Rebuilds the request's headers from the log (values that are not valid headers are skipped).
fn header_map(headers: &std::collections::BTreeMap<String, String>) -> http::HeaderMap {
    let mut map = http::HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(value),
        ) {
            map.insert(name, value);
        }
    }
    map
}

/// The handler until batch-change and push sync land: a verified, recognised event is processed
/// with no effects.
pub struct NoEffects;

#[tonic::async_trait]
impl Handler for NoEffects {
    async fn handle(
        &self,
        _txn: &DatabaseTransaction,
        _receiver: &Receiver,
        _delivery: &ClaimedDelivery,
        _event: &Classified,
    ) -> Result<Outcome, HandlerError> {
        Ok(Outcome::Processed)
    }
}
