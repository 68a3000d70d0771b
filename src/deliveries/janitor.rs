//! Retention: deliveries (and feed events) older than the retention period are deleted, at
//! start-up and every hour.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::DeliveryStore;
use crate::sync::feed::EventStore;
use crate::time::Timestamp;

/// How often the janitor runs.
pub const JANITOR_INTERVAL: Duration = Duration::from_secs(3600);

/// Deletes deliveries received more than `retention` ago, now and every [`JANITOR_INTERVAL`],
/// until `stop`.
pub async fn run_janitor(
    store: DeliveryStore,
    events: EventStore,
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
        // Events are kept as long as deliveries.
        if let Err(e) = events.purge_before(cutoff.micros()).await {
            tracing::warn!(error = %e, "retention: could not delete old events");
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(JANITOR_INTERVAL) => {},
        }
    }
}
