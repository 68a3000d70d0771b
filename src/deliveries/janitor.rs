//! Retention: deliveries older than the retention period are deleted, and with them what is kept
//! exactly as long as they are (the event feed's entries), at start-up and every hour.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::DeliveryStore;
use crate::store::StoreError;
use crate::time::Timestamp;

/// How often the janitor runs.
pub const JANITOR_INTERVAL: Duration = Duration::from_secs(3600);

/// Rows kept exactly as long as deliveries, which the janitor deletes with them: the event feed's
/// entries (`sync/feed.rs`). A trait, because the feed sits above this module (`sync/` builds on
/// deliveries), so it comes in from outside rather than being named here.
#[tonic::async_trait]
pub trait KeptWithDeliveries: Send + Sync + 'static {
    /// What the rows are, for the log ("feed entries").
    fn what(&self) -> &'static str;

    /// Deletes the rows written before `cutoff`; returns how many.
    async fn purge_before(&self, cutoff: Timestamp) -> Result<u64, StoreError>;
}

/// Deletes deliveries received more than `retention` ago, and the rows of `kept_with` written
/// before then, now and every hour (`JANITOR_INTERVAL`), until `stop`.
pub async fn run_janitor(
    store: DeliveryStore,
    kept_with: impl KeptWithDeliveries,
    retention: Duration,
    stop: CancellationToken,
) {
    loop {
        let cutoff = Timestamp::now().minus(retention);
        match store.purge_received_before(cutoff).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(deleted = n, retention = %humantime::format_duration(retention), "old deliveries deleted")
            }
            Err(e) => tracing::warn!(error = %e, "retention: could not delete old deliveries"),
        }
        if let Err(e) = kept_with.purge_before(cutoff).await {
            tracing::warn!(error = %e, "retention: could not delete old {}", kept_with.what());
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(JANITOR_INTERVAL) => {},
        }
    }
}
