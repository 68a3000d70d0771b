//! What hookgate counts, and `GET /metrics`, which shows it in Prometheus' text format. Every
//! metric name is a constant here, starts with `hookgate_`, and is recorded through one small
//! function of this module, so the README's list and the code cannot drift apart.
//!
//! Labels are bounded: a receiver id only once the receiver is known to exist (receivers are
//! created by admins), a code host kind, or an outcome from a fixed list. Nothing a stranger puts
//! in a request becomes a label. Every series is shown from the start, at 0, for every label value
//! it can have (each outcome; each receiver that exists), so an alert on its increase has a first
//! value.
//!
//! This module only counts and renders: it reads no store. Gauges that need the database (the
//! queue, sync requests) and the receivers that exist come from a [`ScrapeSource`] that whoever
//! builds the service supplies (`app`), read when `/metrics` is scraped, with a short timeout;
//! when the database does not answer its gauges are left out and `hookgate_database_up` is 0,
//! and the rest is served as usual.

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::future::BoxFuture;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::receivers::CodeHostKind;
use crate::time::Timestamp;

/// Every ingress request to `/.api/webhooks/...`, by outcome (whether or not the receiver exists).
pub const INGRESS_REQUESTS: &str = "hookgate_ingress_requests_total";
/// How long the ingress took to answer, by outcome.
pub const INGRESS_DURATION: &str = "hookgate_ingress_request_duration_seconds";
/// Ingress requests being handled now.
pub const INGRESS_INFLIGHT: &str = "hookgate_ingress_inflight_requests";
/// Bytes of delivery bodies held in memory now, across requests.
pub const INGRESS_BUFFERED_BYTES: &str = "hookgate_ingress_buffered_body_bytes";
/// Open HTTP connections.
pub const HTTP_CONNECTIONS: &str = "hookgate_http_connections";
/// Connections closed at once because --max-connections were open.
pub const HTTP_CONNECTIONS_REFUSED: &str = "hookgate_http_connections_refused_total";
/// Idle connections closed to make room for a new one.
pub const HTTP_CONNECTIONS_CLOSED_IDLE: &str = "hookgate_http_connections_closed_idle_total";
/// Requests to an existing receiver, by receiver, code host kind and outcome.
pub const DELIVERIES: &str = "hookgate_deliveries_total";
/// Deliveries refused for a missing or wrong signature, token or secret (401).
pub const DELIVERIES_REJECTED: &str = "hookgate_deliveries_rejected_total";
/// Deliveries refused for the receiver's `rate_limit_per_minute` (429).
pub const DELIVERIES_RATE_LIMITED: &str = "hookgate_deliveries_rate_limited_total";
/// Requests to a receiver id that does not exist (404); not labelled by the id.
pub const DELIVERIES_UNKNOWN_RECEIVER: &str = "hookgate_deliveries_unknown_receiver_total";
/// How long the worker took over one delivery, by outcome.
pub const PROCESSING_DURATION: &str = "hookgate_delivery_processing_duration_seconds";
/// From a delivery's receipt to the worker's outcome for it, by outcome.
pub const PROCESSING_LAG: &str = "hookgate_delivery_processing_lag_seconds";
/// Deliveries waiting for the worker (pending or being processed), read at scrape time.
pub const QUEUE_DEPTH: &str = "hookgate_delivery_queue_depth";
/// Age of the oldest delivery waiting for the worker (0 when none), read at scrape time.
pub const QUEUE_OLDEST_AGE: &str = "hookgate_delivery_queue_oldest_age_seconds";
/// Sync requests waiting to be claimed, read at scrape time.
pub const SYNC_REQUESTS_PENDING: &str = "hookgate_sync_requests_pending";
/// Times the delivery worker's task ended while the service ran and was restarted.
pub const WORKER_RESTARTS: &str = "hookgate_worker_restarts_total";
/// Deliveries a claim of the worker took (claims that found none are not counted).
pub const WORKER_CLAIM_SIZE: &str = "hookgate_worker_claim_size";
/// Deliveries one commit of the intake (group commit) stored.
pub const INTAKE_BATCH_SIZE: &str = "hookgate_intake_batch_size";
/// 1 when the scrape-time reads of the database answered, else 0.
pub const DATABASE_UP: &str = "hookgate_database_up";
/// Always 1, labelled with the version running.
pub const BUILD_INFO: &str = "hookgate_build_info";

/// Bucket bounds for request and processing times: half a millisecond to half a minute.
const LATENCY_BUCKETS: [f64; 15] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Bucket bounds from receipt to outcome, which includes waiting in the queue and retries.
const LAG_BUCKETS: [f64; 14] = [
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];
/// Bucket bounds for counts of deliveries taken together (a claim, a group commit).
const SIZE_BUCKETS: [f64; 12] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 10000.0,
];
/// How long a scrape waits for the database before leaving its gauges out.
const SCRAPE_DATABASE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often histogram samples are folded into their buckets between scrapes, so memory does not
/// grow when nobody scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (once; later calls return the same handle) and
/// describes every metric.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(PROCESSING_LAG.into()), &LAG_BUCKETS)
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(WORKER_CLAIM_SIZE.into()), &SIZE_BUCKETS)
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(INTAKE_BATCH_SIZE.into()), &SIZE_BUCKETS)
                })
                .expect("the bucket lists are not empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!(
                    "another metrics recorder is installed: /metrics shows only the database gauges"
                );
            }
            describe();
            start_at_zero();
            metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        INGRESS_REQUESTS,
        "Every request to /.api/webhooks/..., by outcome."
    );
    describe_histogram!(
        INGRESS_DURATION,
        metrics::Unit::Seconds,
        "How long the ingress took to answer, by outcome."
    );
    describe_gauge!(INGRESS_INFLIGHT, "Ingress requests being handled now.");
    describe_gauge!(
        INGRESS_BUFFERED_BYTES,
        metrics::Unit::Bytes,
        "Bytes of delivery bodies held in memory now."
    );
    describe_gauge!(HTTP_CONNECTIONS, "Open HTTP connections.");
    describe_counter!(
        HTTP_CONNECTIONS_REFUSED,
        "Connections closed at once: --max-connections (or --max-connections-per-address) were open and none was idle."
    );
    describe_counter!(
        HTTP_CONNECTIONS_CLOSED_IDLE,
        "Idle connections closed to make room for a new one at --max-connections or --max-connections-per-address."
    );
    describe_counter!(
        DELIVERIES,
        "Requests to an existing receiver, by receiver, code host kind and outcome."
    );
    describe_counter!(
        DELIVERIES_REJECTED,
        "Deliveries refused for a missing or wrong signature, token or secret (401)."
    );
    describe_counter!(
        DELIVERIES_RATE_LIMITED,
        "Deliveries refused for the receiver's rate_limit_per_minute (429)."
    );
    describe_counter!(
        DELIVERIES_UNKNOWN_RECEIVER,
        "Requests to a receiver id that does not exist (404)."
    );
    describe_histogram!(
        PROCESSING_DURATION,
        metrics::Unit::Seconds,
        "How long the worker took over one delivery, by outcome."
    );
    describe_histogram!(
        PROCESSING_LAG,
        metrics::Unit::Seconds,
        "From a delivery's receipt to the worker's outcome for it, by outcome."
    );
    describe_histogram!(
        WORKER_CLAIM_SIZE,
        "Deliveries one claim of the worker took (a claim that found none is not counted)."
    );
    describe_histogram!(
        INTAKE_BATCH_SIZE,
        "Deliveries one commit of the intake stored (requests that arrived together share one)."
    );
    describe_counter!(
        WORKER_RESTARTS,
        "Times the delivery worker's task ended while the service ran and was restarted."
    );
    describe_gauge!(BUILD_INFO, "Always 1, labelled with the version running.");
}

/// Makes every series that is not a receiver's exist at 0, for each of its label values.
fn start_at_zero() {
    for counter in [
        DELIVERIES_UNKNOWN_RECEIVER,
        HTTP_CONNECTIONS_REFUSED,
        HTTP_CONNECTIONS_CLOSED_IDLE,
        WORKER_RESTARTS,
    ] {
        metrics::counter!(counter).increment(0);
    }
    for gauge in [INGRESS_INFLIGHT, INGRESS_BUFFERED_BYTES, HTTP_CONNECTIONS] {
        metrics::gauge!(gauge).increment(0.0);
    }
    for outcome in IngressOutcome::ALL.map(IngressOutcome::as_str) {
        metrics::counter!(INGRESS_REQUESTS, "outcome" => outcome).increment(0);
        let _ = metrics::histogram!(INGRESS_DURATION, "outcome" => outcome);
    }
    let _ = metrics::histogram!(WORKER_CLAIM_SIZE);
    let _ = metrics::histogram!(INTAKE_BATCH_SIZE);
    for outcome in WorkerOutcome::ALL.map(WorkerOutcome::as_str) {
        let _ = metrics::histogram!(PROCESSING_DURATION, "outcome" => outcome);
        let _ = metrics::histogram!(PROCESSING_LAG, "outcome" => outcome);
    }
}

/// Makes the series of receiver `id` (of `kind`) exist at 0, for each outcome. Called for every
/// receiver that exists when `/metrics` is scraped; a series that exists already is left as it is.
fn receiver_at_zero(id: Uuid, kind: CodeHostKind) {
    let (id, kind) = (id.to_string(), kind.to_string());
    for outcome in IngressOutcome::ALL.map(IngressOutcome::as_str) {
        metrics::counter!(DELIVERIES, "receiver" => id.clone(), "kind" => kind.clone(), "outcome" => outcome)
            .increment(0);
    }
    metrics::counter!(DELIVERIES_REJECTED, "receiver" => id.clone(), "kind" => kind.clone())
        .increment(0);
    metrics::counter!(DELIVERIES_RATE_LIMITED, "receiver" => id, "kind" => kind).increment(0);
}

/// How an ingress request ended, as the `outcome` label and the log's `outcome` field name it.
/// The ingress derives it from the status it answered with (`ingress::observe`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngressOutcome {
    /// 202: stored and queued.
    Accepted,
    /// 200: a ping.
    Ping,
    /// 200: stored as `IGNORED`.
    Ignored,
    /// 200: a delivery key the receiver already has.
    Duplicate,
    /// 400: a malformed id, a missing event header, a body that is not what its event must be.
    BadRequest,
    /// 401: a missing or wrong signature, token or secret.
    Rejected,
    /// 404 with no receiver: the id names none.
    UnknownReceiver,
    /// 404 for an existing receiver: a path it does not take.
    NotFound,
    /// 405.
    MethodNotAllowed,
    /// 408: the body did not arrive within --body-read-timeout.
    TimedOut,
    /// 413.
    TooLarge,
    /// 429.
    RateLimited,
    /// 503 before the request was handled: --max-inflight-requests or the body budget.
    Overloaded,
    /// 503: the database could not answer or commit.
    Unavailable,
    /// 500: the database refused the delivery, or failed in a way retrying will not cure.
    StoreFailed,
    /// Anything else.
    Other,
}

impl IngressOutcome {
    /// Every outcome, in the README's order.
    pub const ALL: [IngressOutcome; 16] = [
        IngressOutcome::Accepted,
        IngressOutcome::Ping,
        IngressOutcome::Ignored,
        IngressOutcome::Duplicate,
        IngressOutcome::BadRequest,
        IngressOutcome::Rejected,
        IngressOutcome::UnknownReceiver,
        IngressOutcome::NotFound,
        IngressOutcome::MethodNotAllowed,
        IngressOutcome::TimedOut,
        IngressOutcome::TooLarge,
        IngressOutcome::RateLimited,
        IngressOutcome::Overloaded,
        IngressOutcome::Unavailable,
        IngressOutcome::StoreFailed,
        IngressOutcome::Other,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            IngressOutcome::Accepted => "accepted",
            IngressOutcome::Ping => "ping",
            IngressOutcome::Ignored => "ignored",
            IngressOutcome::Duplicate => "duplicate",
            IngressOutcome::BadRequest => "bad_request",
            IngressOutcome::Rejected => "rejected",
            IngressOutcome::UnknownReceiver => "unknown_receiver",
            IngressOutcome::NotFound => "not_found",
            IngressOutcome::MethodNotAllowed => "method_not_allowed",
            IngressOutcome::TimedOut => "timed_out",
            IngressOutcome::TooLarge => "too_large",
            IngressOutcome::RateLimited => "rate_limited",
            IngressOutcome::Overloaded => "overloaded",
            IngressOutcome::Unavailable => "unavailable",
            IngressOutcome::StoreFailed => "store_failed",
            IngressOutcome::Other => "other",
        }
    }
}

impl std::fmt::Display for IngressOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counts one answered ingress request: always by outcome, and by receiver and kind when the
/// receiver exists.
pub fn ingress_answered(
    receiver: Option<(Uuid, CodeHostKind)>,
    outcome: IngressOutcome,
    took: Duration,
) {
    let outcome_label = outcome.as_str();
    metrics::counter!(INGRESS_REQUESTS, "outcome" => outcome_label).increment(1);
    metrics::histogram!(INGRESS_DURATION, "outcome" => outcome_label).record(took.as_secs_f64());
    match receiver {
        Some((id, kind)) => {
            let (id, kind) = (id.to_string(), kind.to_string());
            metrics::counter!(DELIVERIES, "receiver" => id.clone(), "kind" => kind.clone(), "outcome" => outcome_label)
                .increment(1);
            match outcome {
                IngressOutcome::Rejected => {
                    metrics::counter!(DELIVERIES_REJECTED, "receiver" => id, "kind" => kind)
                        .increment(1)
                }
                IngressOutcome::RateLimited => {
                    metrics::counter!(DELIVERIES_RATE_LIMITED, "receiver" => id, "kind" => kind)
                        .increment(1)
                }
                _ => {}
            }
        }
        None if outcome == IngressOutcome::UnknownReceiver => {
            metrics::counter!(DELIVERIES_UNKNOWN_RECEIVER).increment(1)
        }
        None => {}
    }
}

/// An ingress request started (`true`) or ended (`false`) holding an in-flight slot.
pub fn ingress_inflight(started: bool) {
    let gauge = metrics::gauge!(INGRESS_INFLIGHT);
    if started {
        gauge.increment(1.0)
    } else {
        gauge.decrement(1.0)
    }
}

/// `bytes` more (positive) or fewer (negative) body bytes are held in memory.
pub fn ingress_buffered(bytes: f64) {
    metrics::gauge!(INGRESS_BUFFERED_BYTES).increment(bytes);
}

/// A connection opened (`true`) or closed (`false`).
pub fn http_connection(opened: bool) {
    let gauge = metrics::gauge!(HTTP_CONNECTIONS);
    if opened {
        gauge.increment(1.0)
    } else {
        gauge.decrement(1.0)
    }
}

/// A connection was closed at once: too many were open.
pub fn http_connection_refused() {
    metrics::counter!(HTTP_CONNECTIONS_REFUSED).increment(1);
}

/// The delivery worker's task ended and is restarted.
pub fn worker_restarted() {
    metrics::counter!(WORKER_RESTARTS).increment(1);
}

/// An idle connection was closed to make room for a new one.
pub fn http_connection_closed_idle() {
    metrics::counter!(HTTP_CONNECTIONS_CLOSED_IDLE).increment(1);
}

/// What the worker made of one try of a delivery, as the `outcome` label names it (the worker
/// maps a delivery's new state onto it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerOutcome {
    /// Its effects are written.
    Processed,
    /// Nothing to do.
    Ignored,
    /// It failed and will be tried again.
    Retry,
    /// It failed for good.
    Failed,
    /// The claim ran out before the outcome was written; another worker has it.
    Lost,
}

impl WorkerOutcome {
    /// Every outcome, in the README's order.
    pub const ALL: [WorkerOutcome; 5] = [
        WorkerOutcome::Processed,
        WorkerOutcome::Ignored,
        WorkerOutcome::Retry,
        WorkerOutcome::Failed,
        WorkerOutcome::Lost,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerOutcome::Processed => "processed",
            WorkerOutcome::Ignored => "ignored",
            WorkerOutcome::Retry => "retry",
            WorkerOutcome::Failed => "failed",
            WorkerOutcome::Lost => "lost",
        }
    }
}

/// Records one try of a delivery by the worker: how long it took since `started`, and how long
/// since the delivery was received.
pub fn delivery_processed(outcome: WorkerOutcome, started: Instant, receive_time: Timestamp) {
    let outcome = outcome.as_str();
    metrics::histogram!(PROCESSING_DURATION, "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
    let lag = Timestamp::now().since(receive_time).as_secs_f64();
    metrics::histogram!(PROCESSING_LAG, "outcome" => outcome).record(lag);
}

/// The gauges kept in the database, as a scrape reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatabaseGauges {
    /// Deliveries pending or being processed.
    pub queue_depth: u64,
    /// When the oldest of them was received; `None` when none.
    pub queue_oldest_receive_time: Option<Timestamp>,
    /// Sync requests waiting to be claimed.
    pub sync_requests_pending: u64,
}

/// What a scrape reads from outside this module: the stores, which `app` hands in, so that
/// metrics depends on none of them.
pub trait ScrapeSource: Send + Sync + 'static {
    /// Every receiver that exists now, with its code host kind (from memory).
    fn receivers(&self) -> Vec<(Uuid, CodeHostKind)>;
    /// The gauges kept in the database; an error when it does not answer.
    fn database_gauges(&self) -> BoxFuture<'_, anyhow::Result<DatabaseGauges>>;
}

/// What `GET /metrics` reads.
#[derive(Clone)]
pub struct MetricsState {
    pub handle: PrometheusHandle,
    pub source: std::sync::Arc<dyn ScrapeSource>,
}

/// `GET /metrics`.
pub fn router(state: MetricsState) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(state)
}

/// Folds histogram samples into buckets every few seconds until `stop`.
pub async fn run_upkeep(handle: PrometheusHandle, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(UPKEEP_INTERVAL) => handle.run_upkeep(),
        }
    }
}

async fn scrape(State(state): State<MetricsState>) -> Response {
    for (id, kind) in state.source.receivers() {
        receiver_at_zero(id, kind);
    }
    let mut text = state.handle.render();
    let read = tokio::time::timeout(SCRAPE_DATABASE_TIMEOUT, state.source.database_gauges()).await;
    let up = match read {
        Ok(Ok(DatabaseGauges {
            queue_depth: depth,
            queue_oldest_receive_time: oldest,
            sync_requests_pending: sync_pending,
        })) => {
            let age = oldest.map_or(0.0, |t| Timestamp::now().since(t).as_secs_f64());
            gauge_text(
                &mut text,
                QUEUE_DEPTH,
                "Deliveries waiting for the worker (pending or being processed).",
                depth as f64,
            );
            gauge_text(
                &mut text,
                QUEUE_OLDEST_AGE,
                "Age of the oldest delivery waiting for the worker, 0 when none.",
                age,
            );
            gauge_text(
                &mut text,
                SYNC_REQUESTS_PENDING,
                "Sync requests waiting to be claimed.",
                sync_pending as f64,
            );
            1.0
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "/metrics: the database did not answer; its gauges are left out");
            0.0
        }
        Err(_) => {
            tracing::warn!(
                "/metrics: the database did not answer within 2 s; its gauges are left out"
            );
            0.0
        }
    };
    gauge_text(
        &mut text,
        DATABASE_UP,
        "1 when the scrape-time reads of the database answered, else 0.",
        up,
    );
    let mut response = (StatusCode::OK, text).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// Appends one unlabelled gauge in the text format.
fn gauge_text(out: &mut String, name: &str, help: &str, value: f64) {
    let _ = write!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n\n"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source with one receiver whose database answers `gauges`, or not at all.
    struct Fake {
        receiver: Uuid,
        gauges: Option<DatabaseGauges>,
    }

    impl ScrapeSource for Fake {
        fn receivers(&self) -> Vec<(Uuid, CodeHostKind)> {
            vec![(self.receiver, CodeHostKind::GitLab)]
        }

        fn database_gauges(&self) -> BoxFuture<'_, anyhow::Result<DatabaseGauges>> {
            Box::pin(async move {
                self.gauges
                    .ok_or_else(|| anyhow::anyhow!("the database is closed"))
            })
        }
    }

    async fn scrape_text(source: Fake) -> (StatusCode, String) {
        use tower::ServiceExt;
        let state = MetricsState {
            handle: install(),
            source: std::sync::Arc::new(source),
        };
        let response = router(state)
            .oneshot(
                axum::http::Request::get("/metrics")
                    .body(axum::body::Body::empty())
                    .expect("a valid request"),
            )
            .await
            .expect("the router answers");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("a body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn a_database_that_does_not_answer_leaves_its_gauges_out_and_the_rest_is_served() {
        let receiver = Uuid::new_v4();
        let gauges = DatabaseGauges {
            queue_depth: 0,
            queue_oldest_receive_time: None,
            sync_requests_pending: 3,
        };
        let (status, text) = scrape_text(Fake {
            receiver,
            gauges: Some(gauges),
        })
        .await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            text.contains("\nhookgate_delivery_queue_depth 0\n"),
            "{text}"
        );
        assert!(
            text.contains("\nhookgate_sync_requests_pending 3\n"),
            "{text}"
        );
        assert!(text.contains("\nhookgate_database_up 1\n"), "{text}");

        let (status, text) = scrape_text(Fake {
            receiver,
            gauges: None,
        })
        .await;
        assert_eq!(status, StatusCode::OK);
        assert!(text.contains("\nhookgate_database_up 0\n"), "{text}");
        assert!(!text.contains(QUEUE_DEPTH), "{text}");
        assert!(
            text.contains(BUILD_INFO),
            "the process's own metrics are still served"
        );
    }

    #[tokio::test]
    async fn a_receiver_that_exists_has_its_series_at_zero_before_its_first_request() {
        let receiver = Uuid::new_v4();
        let (_, text) = scrape_text(Fake {
            receiver,
            gauges: None,
        })
        .await;
        for outcome in IngressOutcome::ALL {
            let series = format!(
                "hookgate_deliveries_total{{receiver=\"{receiver}\",kind=\"GITLAB\",outcome=\"{outcome}\"}} 0\n"
            );
            assert!(text.contains(&series), "{series} in:\n{text}");
        }
        let series = format!(
            "hookgate_deliveries_rejected_total{{receiver=\"{receiver}\",kind=\"GITLAB\"}} 0\n"
        );
        assert!(text.contains(&series), "{series} in:\n{text}");
    }
}
