//! What every ingress request reports about itself: a request id (returned in the
//! `x-hookgate-request-id` header), a span that carries it with the receiver, the event and the
//! outcome, one `info` line when it is answered, and its metrics.
//!
//! The middleware in this module wraps the webhook routes and decides the outcome from the status
//! the ingress answered with. The ingress tells it the few things a status cannot say (which
//! receiver, which event, a ping or an ignored event, a duplicate) through one-line calls such as
//! [`receiver`] and [`duplicate`], which write to the request's own record (a task-local); outside
//! a request they do nothing. Nothing here logs a header, a path or a body: the path of a generic
//! trigger holds its secret.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;
use tracing::field::Empty;
use uuid::Uuid;

use crate::deliveries::DeliveryState;
use crate::receivers::{CodeHostKind, Receiver};

/// The response header that carries hookgate's request id. Not `X-Request-Id`: Bitbucket Server
/// sends that as its delivery key.
pub const REQUEST_ID_HEADER: &str = "x-hookgate-request-id";

/// The path prefix of every delivery route.
const WEBHOOK_PREFIX: &str = "/.api/webhooks/";

/// How an ingress request ended, as metrics and logs name it. Derived from the status answered,
/// refined by what the ingress reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
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

impl Outcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Ping => "ping",
            Outcome::Ignored => "ignored",
            Outcome::Duplicate => "duplicate",
            Outcome::BadRequest => "bad_request",
            Outcome::Rejected => "rejected",
            Outcome::UnknownReceiver => "unknown_receiver",
            Outcome::NotFound => "not_found",
            Outcome::MethodNotAllowed => "method_not_allowed",
            Outcome::TimedOut => "timed_out",
            Outcome::TooLarge => "too_large",
            Outcome::RateLimited => "rate_limited",
            Outcome::Overloaded => "overloaded",
            Outcome::Unavailable => "unavailable",
            Outcome::StoreFailed => "store_failed",
            Outcome::Other => "other",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the ingress reported about the request in hand.
#[derive(Debug, Default)]
struct Record {
    /// The receiver, once it is known to exist.
    receiver: Option<(Uuid, CodeHostKind)>,
    /// How a verified delivery is stored (pending, a ping, ignored).
    stored_as: Option<DeliveryState>,
    /// An outcome the status alone cannot tell.
    outcome: Option<Outcome>,
}

impl Record {
    fn outcome(&self, status: StatusCode) -> Outcome {
        if let Some(outcome) = self.outcome {
            return outcome;
        }
        match status.as_u16() {
            202 => Outcome::Accepted,
            200 => match self.stored_as {
                Some(DeliveryState::Ignored) => Outcome::Ignored,
                Some(DeliveryState::Processed) => Outcome::Ping,
                // A delivery that would be queued but is answered 200 is a duplicate.
                Some(_) => Outcome::Duplicate,
                None => Outcome::Other,
            },
            400 => Outcome::BadRequest,
            401 => Outcome::Rejected,
            404 if self.receiver.is_none() => Outcome::UnknownReceiver,
            404 => Outcome::NotFound,
            405 => Outcome::MethodNotAllowed,
            408 => Outcome::TimedOut,
            413 => Outcome::TooLarge,
            429 => Outcome::RateLimited,
            500 => Outcome::StoreFailed,
            503 => Outcome::Unavailable,
            _ => Outcome::Other,
        }
    }
}

tokio::task_local! {
    static CURRENT: Arc<Mutex<Record>>;
}

fn with_record(f: impl FnOnce(&mut Record)) {
    let _ = CURRENT.try_with(|record| {
        if let Ok(mut record) = record.lock() {
            f(&mut record);
        }
    });
}

/// The request is for `receiver`, which exists.
pub fn receiver(receiver: &Receiver) {
    let span = tracing::Span::current();
    span.record("receiver", tracing::field::display(receiver.id));
    span.record("kind", receiver.code_host_kind.as_str());
    with_record(|r| r.receiver = Some((receiver.id, receiver.code_host_kind)));
}

/// The verified delivery is the event `event`.
pub fn event(event: &str) {
    tracing::Span::current().record("event", event);
}

/// The verified delivery gets the id `id` and is stored as `state` if it is stored.
pub fn stored_as(id: Uuid, state: DeliveryState) {
    tracing::Span::current().record("delivery", tracing::field::display(id));
    with_record(|r| r.stored_as = Some(state));
}

/// The delivery was answered with the id of the one already stored under its key.
pub fn duplicate(original: Uuid) {
    tracing::Span::current().record("delivery", tracing::field::display(original));
    with_record(|r| r.outcome = Some(Outcome::Duplicate));
}

/// The request ends with `outcome`, whatever its status says (for the limits).
pub fn outcome(outcome: Outcome) {
    with_record(|r| r.outcome = Some(outcome));
}

/// The middleware around the webhook routes: a request id, a span, one log line, metrics.
/// Other routes (`/healthz`, `/metrics`) pass through untouched.
pub async fn track(request: Request, next: Next) -> Response {
    if !request.uri().path().starts_with(WEBHOOK_PREFIX) {
        return next.run(request).await;
    }
    let request_id = Uuid::new_v4();
    let span = tracing::info_span!(
        "delivery",
        request_id = %request_id,
        method = %request.method(),
        receiver = Empty,
        kind = Empty,
        event = Empty,
        delivery = Empty,
    );
    let started = Instant::now();
    let record = Arc::new(Mutex::new(Record::default()));
    let mut response = CURRENT
        .scope(record.clone(), next.run(request))
        .instrument(span.clone())
        .await;
    let status = response.status();
    let (receiver, outcome) = match record.lock() {
        Ok(r) => (r.receiver, r.outcome(status)),
        Err(_) => (None, Outcome::Other),
    };
    let took = started.elapsed();
    crate::metrics::ingress_answered(receiver, outcome, took);
    span.in_scope(|| {
        tracing::info!(
            status = status.as_u16(),
            %outcome,
            elapsed_ms = took.as_secs_f64() * 1000.0,
            "delivery answered"
        )
    });
    response.headers_mut().insert(
        REQUEST_ID_HEADER,
        HeaderValue::from_str(&request_id.to_string()).expect("a UUID is a valid header value"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outcome_follows_the_status_unless_the_ingress_said_more() {
        let mut r = Record::default();
        assert_eq!(r.outcome(StatusCode::NOT_FOUND), Outcome::UnknownReceiver);
        assert_eq!(r.outcome(StatusCode::BAD_REQUEST), Outcome::BadRequest);
        r.receiver = Some((Uuid::new_v4(), CodeHostKind::GitHub));
        assert_eq!(r.outcome(StatusCode::NOT_FOUND), Outcome::NotFound);
        r.stored_as = Some(DeliveryState::Pending);
        assert_eq!(r.outcome(StatusCode::ACCEPTED), Outcome::Accepted);
        assert_eq!(r.outcome(StatusCode::OK), Outcome::Duplicate);
        r.stored_as = Some(DeliveryState::Processed);
        assert_eq!(r.outcome(StatusCode::OK), Outcome::Ping);
        r.stored_as = Some(DeliveryState::Ignored);
        assert_eq!(r.outcome(StatusCode::OK), Outcome::Ignored);
        r.outcome = Some(Outcome::Overloaded);
        assert_eq!(
            r.outcome(StatusCode::SERVICE_UNAVAILABLE),
            Outcome::Overloaded
        );
    }
}
