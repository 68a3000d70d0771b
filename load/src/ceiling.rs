//! The ceiling: the least a GitHub webhook receiver can do and still be one. `POST
//! /.api/webhooks/{id}` reads the body, checks `X-Hub-Signature-256` (HMAC-SHA256 over the raw
//! bytes, compared in constant time by `hmac`'s `verify_slice`), and answers 202
//! `{"delivery_id": "<uuid>"}`, or 401 when the signature is missing or wrong. It stores
//! nothing. Served by `hookgate-load ceiling` on the same machine in the same sitting as the
//! real service, it is the figure hookgate's throughput is a fraction of.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::net::TcpListener;

/// The largest body the ceiling reads: hookgate's default `--max-body-bytes` (25 MiB).
const MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

/// What the ceiling's handler shares: the secret, and a count of what it accepted (for tests
/// that check where load went).
#[derive(Debug, Clone)]
pub struct Ceiling {
    /// The HMAC key deliveries must be signed with.
    secret: Arc<[u8]>,
    /// Deliveries answered 202 so far.
    accepted: Arc<AtomicU64>,
}

impl Ceiling {
    /// A ceiling that accepts deliveries signed with `secret`.
    pub fn new(secret: &str) -> Self {
        Self {
            secret: Arc::from(secret.as_bytes()),
            accepted: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Deliveries answered 202 so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// The router: the webhook route and nothing else.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/.api/webhooks/{id}", post(receive))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(self.clone())
    }

    /// Serves on `listener` until `shutdown` completes.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }
}

/// The handler: verify, then 202 with a fresh id.
async fn receive(State(ceiling): State<Ceiling>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(digest) = headers
        .get("x-hub-signature-256")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().strip_prefix("sha256="))
        .and_then(|digits| hex::decode(digits).ok())
    else {
        return unauthorized("missing or malformed X-Hub-Signature-256");
    };
    let mut mac =
        Hmac::<Sha256>::new_from_slice(&ceiling.secret).expect("HMAC takes a key of any length");
    mac.update(&body);
    if mac.verify_slice(&digest).is_err() {
        return unauthorized("signature does not match");
    }
    ceiling.accepted.fetch_add(1, Ordering::Relaxed);
    let answer = format!("{{\"delivery_id\":\"{}\"}}", uuid::Uuid::new_v4());
    (
        StatusCode::ACCEPTED,
        [(header::CONTENT_TYPE, "application/json")],
        answer,
    )
        .into_response()
}

/// A 401 with a JSON error, as hookgate answers one.
fn unauthorized(message: &'static str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{{\"error\":\"{message}\"}}"),
    )
        .into_response()
}
