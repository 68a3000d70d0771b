//! What the ingress reads of a request: the parts both handlers take, the body under its cap
//! (refused before it is read when it says it is too long), and the headers as the log keeps
//! them (tokens and secrets never).

use std::collections::BTreeMap;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, OriginalUri, Request};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;

use super::limits::BodyLimit;
use super::reply;

/// Headers whose values are never stored: tokens and secrets.
const REDACTED_HEADERS: [&str; 5] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-gitlab-token",
    "x-hook-secret",
];

/// A request to a receiver, as its handler takes it.
pub struct Arrival {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    /// Not read yet: [`read_capped`] reads it.
    pub body: Body,
    /// When it arrived.
    pub receive_time: crate::time::Timestamp,
}

/// The request as it arrived: taken last by a route's handler, after the path.
impl<S: Send + Sync> FromRequest<S> for Arrival {
    type Rejection = std::convert::Infallible;

    async fn from_request(request: Request, _: &S) -> Result<Self, Self::Rejection> {
        let receive_time = crate::time::Timestamp::now();
        // The path as the client sent it, before any nesting stripped a prefix.
        let uri = match request.extensions().get::<OriginalUri>() {
            Some(OriginalUri(uri)) => uri.clone(),
            None => request.uri().clone(),
        };
        let (parts, body) = request.into_parts();
        Ok(Arrival {
            method: parts.method,
            uri,
            headers: parts.headers,
            body,
            receive_time,
        })
    }
}

/// Reads the body, refusing (413) one over `max` bytes before reading it when it says its
/// length, and as soon as it passes `max` when it does not. A body the limits cut off is
/// answered as the limit says (408 or 503).
pub async fn read_capped(headers: &HeaderMap, body: Body, max: usize) -> Result<Bytes, Response> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        return Err(reply::too_large(max));
    }
    axum::body::to_bytes(body, max).await.map_err(|e| {
        match BodyLimit::find(&e) {
            Some(BodyLimit::TimedOut) => return reply::body_timed_out(),
            Some(limit @ (BodyLimit::OverBudget | BodyLimit::OverAddressBudget)) => {
                return reply::overloaded(&limit);
            }
            None => {}
        }
        let over = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            || e.to_string().contains("length limit");
        if over {
            reply::too_large(max)
        } else {
            reply::error(
                StatusCode::BAD_REQUEST,
                format!("could not read the body: {e}"),
            )
        }
    })
}

/// The request headers as the log keeps them: lower-case names, repeated headers joined with
/// ", ", tokens and secrets replaced by `[REDACTED]`.
pub fn redacted_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let kept = out.entry(name.as_str().to_owned()).or_default();
        if REDACTED_HEADERS.contains(&name.as_str()) {
            *kept = "[REDACTED]".to_owned();
            continue;
        }
        if !kept.is_empty() {
            kept.push_str(", ");
        }
        kept.push_str(&String::from_utf8_lossy(value.as_bytes()));
    }
    out
}
