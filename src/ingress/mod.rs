//! The HTTP side of hookgate: the routes code hosts deliver to and `/healthz`, and everything
//! between a connection and a stored delivery. Which status code each answer has is decided in
//! `reply` (see the README's "Status codes at the ingress").
//!
//! A request goes: the server loop (`serve`, admitting connections fairly per peer address in
//! `connections`, with the answers to refused heads in `head`) → the limits on what one client
//! can make the service hold (`limits`, per client as `peer` names it) → its observation (`observe`:
//! request id, span, log line, metrics) → the route here, which finds the receiver (cached) and
//! hands the request to the delivery handler (`delivery`) or, for a `GENERIC` receiver, to the
//! generic trigger (`trigger`). Both read the request alike (`request`), share the rate limit and
//! the bounded log of unauthenticated requests (`state`, `rate_limit`), and answer through
//! `reply`. Nothing is acknowledged with a 2xx before it is committed.

pub mod connections;
pub mod delivery;
pub mod head;
pub mod limits;
pub mod observe;
pub mod peer;
pub mod rate_limit;
pub mod reply;
pub mod request;
pub mod serve;
pub mod state;
pub mod trigger;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{any, get};
use uuid::Uuid;

pub use state::{IngressState, REJECTED_LOGGED_PER_MINUTE};

use request::Arrival;

/// The HTTP router.
pub fn router(state: IngressState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/.api/webhooks/{id}", any(to_receiver))
        .route(
            "/.api/webhooks/{id}/{secret}",
            any(to_receiver_with_path_secret),
        )
        .with_state(state)
}

/// 200 when the database answers and (unless `--ingress-only`) the delivery worker runs; 503
/// with the reason when not.
async fn healthz(State(state): State<IngressState>) -> (StatusCode, &'static str) {
    if let Err(err) = state.db.ping().await {
        tracing::warn!(error = %err, "health check: the database does not answer");
        return (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n");
    }
    if state.worker.as_ref().is_some_and(|w| !w.is_running()) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "no delivery worker is running (it stopped and is being restarted; see the log)\n",
        );
    }
    (StatusCode::OK, "ok\n")
}

/// `POST /.api/webhooks/{id}` (and `GET`/`PUT` for generic triggers).
async fn to_receiver(
    State(state): State<IngressState>,
    Path(raw_id): Path<String>,
    arrival: Arrival,
) -> Response {
    route(state, raw_id, None, arrival).await
}

/// `/.api/webhooks/{id}/{secret}`: a generic trigger with its secret in the path.
async fn to_receiver_with_path_secret(
    State(state): State<IngressState>,
    Path((raw_id, secret)): Path<(String, String)>,
    arrival: Arrival,
) -> Response {
    route(state, raw_id, Some(secret), arrival).await
}

/// Finds the receiver the path names (400 for a malformed id, 404 for none) and hands the
/// request to its handler: the generic trigger for a `GENERIC` receiver, the delivery handler
/// for a code host's.
async fn route(
    state: IngressState,
    raw_id: String,
    path_secret: Option<String>,
    arrival: Arrival,
) -> Response {
    let Ok(receiver_id) = Uuid::parse_str(&raw_id) else {
        return reply::error(
            StatusCode::BAD_REQUEST,
            "malformed receiver id in the URL: expected /.api/webhooks/<uuid>",
        );
    };
    let entry = match state.receivers.lookup(receiver_id).await {
        Ok(Some(entry)) => entry,
        Ok(None) => {
            state.unmatched.record(receiver_id, arrival.receive_time);
            return reply::error(StatusCode::NOT_FOUND, "no receiver has this id");
        }
        Err(e) => return reply::store_failed(&e),
    };
    observe::receiver(&entry.receiver);
    let kind = entry.receiver.code_host_kind;
    match kind.host() {
        None => trigger::call(state, &entry, path_secret, arrival).await,
        Some(_) if path_secret.is_some() => reply::error(
            StatusCode::NOT_FOUND,
            format!("{kind} receivers take deliveries at /.api/webhooks/<id> only"),
        ),
        Some(host) => delivery::deliver(state, &entry, host, arrival).await,
    }
}
