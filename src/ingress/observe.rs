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
use crate::metrics::IngressOutcome;
use crate::receivers::{CodeHostKind, Receiver};

/// The response header that carries hookgate's request id. Not `X-Request-Id`: Bitbucket Server
/// sends that as its delivery key.
pub const REQUEST_ID_HEADER: &str = "x-hookgate-request-id";

/// The path prefix of every delivery route.
const WEBHOOK_PREFIX: &str = "/.api/webhooks/";

/// What the ingress reported about the request in hand.
#[derive(Debug, Default)]
struct Record {
    /// The receiver, once it is known to exist.
    receiver: Option<(Uuid, CodeHostKind)>,
    /// How a verified delivery is stored (pending, a ping, ignored).
    stored_as: Option<DeliveryState>,
    /// An outcome the status alone cannot tell.
    outcome: Option<IngressOutcome>,
}

impl Record {
    /// How the request ended: what the ingress said, else what its status says.
    fn outcome(&self, status: StatusCode) -> IngressOutcome {
        if let Some(outcome) = self.outcome {
            return outcome;
        }
        match status.as_u16() {
            202 => IngressOutcome::Accepted,
            200 => match self.stored_as {
                Some(DeliveryState::Ignored) => IngressOutcome::Ignored,
                Some(DeliveryState::Processed) => IngressOutcome::Ping,
                // A delivery that would be queued but is answered 200 is a duplicate.
                Some(_) => IngressOutcome::Duplicate,
                None => IngressOutcome::Other,
            },
            400 => IngressOutcome::BadRequest,
            401 => IngressOutcome::Rejected,
            404 if self.receiver.is_none() => IngressOutcome::UnknownReceiver,
            404 => IngressOutcome::NotFound,
            405 => IngressOutcome::MethodNotAllowed,
            408 => IngressOutcome::TimedOut,
            413 => IngressOutcome::TooLarge,
            429 => IngressOutcome::RateLimited,
            500 => IngressOutcome::StoreFailed,
            503 => IngressOutcome::Unavailable,
            _ => IngressOutcome::Other,
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
    span.record("kind", receiver.code_host_kind.to_string());
    with_record(|r| r.receiver = Some((receiver.id, receiver.code_host_kind)));
}

/// The verified delivery is the event `event`.
pub fn event(event: &str) {
    tracing::Span::current().record("event", event);
}

/// The verified delivery is to be stored as `state` (pending, a ping, ignored).
pub fn stored_as(state: DeliveryState) {
    with_record(|r| r.stored_as = Some(state));
}

/// The delivery is stored, with the id `id`. Said only once it is: a delivery that turned out
/// to be a duplicate names the stored one instead ([`duplicate`]), so a request's log line
/// carries one `delivery` id, and one that is stored.
pub fn delivery(id: Uuid) {
    tracing::Span::current().record("delivery", tracing::field::display(id));
}

/// The delivery was answered with the id of the one already stored under its key.
pub fn duplicate(original: Uuid) {
    tracing::Span::current().record("delivery", tracing::field::display(original));
    with_record(|r| r.outcome = Some(IngressOutcome::Duplicate));
}

/// The request ends with `outcome`, whatever its status says (for the limits).
pub fn outcome(outcome: IngressOutcome) {
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
        Err(_) => (None, IngressOutcome::Other),
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
        assert_eq!(
            r.outcome(StatusCode::NOT_FOUND),
            IngressOutcome::UnknownReceiver
        );
        assert_eq!(
            r.outcome(StatusCode::BAD_REQUEST),
            IngressOutcome::BadRequest
        );
        r.receiver = Some((Uuid::new_v4(), CodeHostKind::GitHub));
        assert_eq!(r.outcome(StatusCode::NOT_FOUND), IngressOutcome::NotFound);
        r.stored_as = Some(DeliveryState::Pending);
        assert_eq!(r.outcome(StatusCode::ACCEPTED), IngressOutcome::Accepted);
        assert_eq!(r.outcome(StatusCode::OK), IngressOutcome::Duplicate);
        r.stored_as = Some(DeliveryState::Processed);
        assert_eq!(r.outcome(StatusCode::OK), IngressOutcome::Ping);
        r.stored_as = Some(DeliveryState::Ignored);
        assert_eq!(r.outcome(StatusCode::OK), IngressOutcome::Ignored);
        r.outcome = Some(IngressOutcome::Overloaded);
        assert_eq!(
            r.outcome(StatusCode::SERVICE_UNAVAILABLE),
            IngressOutcome::Overloaded
        );
    }
}
