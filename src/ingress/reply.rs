//! Every answer the ingress gives, one function each, so that a status code, its message and its
//! headers are decided in one place (the table is the README's "Status codes at the ingress").
//! Every answer is JSON: `{"error": ...}` for a failure, the delivery id (and a note) for the
//! rest.

use std::fmt::Display;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use uuid::Uuid;

use super::observe;
use crate::metrics::IngressOutcome;
use crate::store::StoreError;

/// A JSON answer with `status`.
pub fn reply(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// A failure: `status` with `{"error": message}`.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    reply(status, json!({ "error": message.into() }))
}

/// 405 with the methods the receiver takes in `Allow`.
pub fn method_not_allowed(message: impl Into<String>, allow: &'static str) -> Response {
    let mut response = error(StatusCode::METHOD_NOT_ALLOWED, message);
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// 413: the body is over `max` bytes.
pub fn too_large(max: usize) -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the body is over the {max}-byte limit"),
    )
}

/// 200 with the original delivery's id: the receiver already has a delivery with this key, so
/// nothing is stored or processed again.
pub fn duplicate(original: Uuid) -> Response {
    observe::duplicate(original);
    reply(
        StatusCode::OK,
        json!({ "delivery_id": original, "message": "duplicate delivery: already received" }),
    )
}

/// 429 with `Retry-After`: the receiver takes at most `limit` deliveries a minute, and the next
/// one is due in `wait`.
pub fn rate_limited(limit: u32, wait: std::time::Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = error(
        StatusCode::TOO_MANY_REQUESTS,
        format!("this receiver takes at most {limit} deliveries a minute; retry in {seconds} s"),
    );
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_str(&seconds.to_string()).expect("digits are a valid header value"),
    );
    response
}

/// The answer when the store failed: 503 with `Retry-After` when it may work later (the
/// database is unavailable, or this replica cannot open receivers' secrets until it is given the
/// right key), so the host retries; 500 when retrying the same request cannot help (the database
/// refused a value of this delivery, or failed for good).
pub fn store_failed(err: &StoreError) -> Response {
    match err {
        StoreError::Unavailable(_) | StoreError::SecretKey { .. } => {
            tracing::warn!(error = %err, "ingress: the store cannot answer now");
            let mut response = error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the delivery could not be stored right now; retry later",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            response
        }
        StoreError::Refused(e) => {
            tracing::error!(error = %e, "ingress: the database refused a delivery");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the database refused this delivery, so it was not stored: {e}"),
            )
        }
        _ => {
            tracing::error!(error = %err, "ingress: the store failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the delivery could not be stored (see the server log)",
            )
        }
    }
}

/// 503 with `Retry-After: 1`, at once: the ingress is at one of its limits
/// (`--max-inflight-requests`, `--max-buffered-body-bytes`, or their per-address shares); `why`
/// (a limit of `limits`) says which.
pub fn overloaded(why: &dyn Display) -> Response {
    observe::outcome(IngressOutcome::Overloaded);
    let mut response = error(StatusCode::SERVICE_UNAVAILABLE, why.to_string());
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// 408: the body did not arrive within `--body-read-timeout`. The rest of it is not read, so the
/// connection is closed.
pub fn body_timed_out() -> Response {
    let mut response = error(
        StatusCode::REQUEST_TIMEOUT,
        "the body did not arrive in time; send it again",
    );
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
