//! The HTTP server loop of the ingress. `axum::serve` does not let a slow client be cut off, so
//! connections are served here with hyper's HTTP/1.1 connection directly (code hosts deliver
//! over HTTP/1.1): a request's head must arrive within `--header-read-timeout` (an idle
//! keep-alive connection is closed after the same time), and a head over `--max-header-bytes` or
//! with more than [`super::head::MAX_HEADERS`] header fields is answered 431 (400 for a
//! `Content-Length` past any body) with a body that says which (`head`). Which connections are
//! let in is [`crate::ingress::connections`]'s: fair per peer address, idle ones closed first to make
//! room. Every request carries its connection's [`PeerAddr`] for the limits kept per client.
//!
//! Shutdown: when `stop` is cancelled the listener is closed (no new connections), idle
//! connections are closed, and each busy one finishes the request in hand, answers it and
//! closes. [`serve`] returns when every connection is gone; the caller bounds that wait with
//! `--shutdown-timeout`.

use std::time::Duration;

use http_body_util::BodyExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::connections::Connections;
use super::peer::{PeerAddr, TrustedProxies};

/// The connection-level limits.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// How long a request's head may take to arrive; also how long a connection may sit idle.
    pub header_read_timeout: Duration,
    /// The largest request head in bytes.
    pub max_header_bytes: usize,
    /// Open connections at most.
    pub max_connections: usize,
    /// Open connections from one peer address at most (trusted proxies excepted).
    pub max_connections_per_address: usize,
    /// Whose connections carry many clients.
    pub trusted_proxies: TrustedProxies,
}

impl From<&crate::config::Operations> for ServerLimits {
    fn from(operations: &crate::config::Operations) -> Self {
        Self {
            header_read_timeout: operations.header_read_timeout.into(),
            max_header_bytes: operations.max_header_bytes,
            max_connections: operations.max_connections,
            max_connections_per_address: operations.max_connections_per_address,
            trusted_proxies: TrustedProxies::new(&operations.trusted_proxies),
        }
    }
}

/// Serves `router` on `listener` until `stop`, then lets open connections finish their request
/// in hand and returns when all are closed.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: ServerLimits,
    stop: CancellationToken,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes)
        .max_headers(super::head::MAX_HEADERS)
        // hyper's read buffer: a head that does not fit is answered 431 without being read
        // further. It cannot be under 8 KiB.
        .max_buf_size(limits.max_header_bytes.max(8192));
    let admission = Connections::new(
        limits.max_connections,
        limits.max_connections_per_address,
        limits.trusted_proxies,
    );
    let connections = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "the ingress could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Some(admitted) = admission.admit(peer.ip(), &stop) else {
            crate::metrics::http_connection_refused();
            drop(stream);
            continue;
        };
        stream.set_nodelay(true).ok();
        let activity = admitted.activity.clone();
        let router = router.clone();
        // Each request: its peer's address, and its connection marked busy until answered.
        let service = hyper::service::service_fn(move |mut request: http::Request<_>| {
            request.extensions_mut().insert(PeerAddr(peer));
            let busy = activity.busy();
            let router = router.clone();
            async move {
                let response = router.oneshot(request.map(axum::body::Body::new)).await?;
                // Busy until the answer's last byte is handed over, when hyper drops its body.
                Ok::<_, std::convert::Infallible>(response.map(|body| {
                    axum::body::Body::new(body.map_frame(move |frame| {
                        let _ = &busy;
                        frame
                    }))
                }))
            }
        });
        let connection = http.serve_connection(
            TokioIo::new(super::head::HeadCheck::new(stream, limits.max_header_bytes)),
            service,
        );
        connections.spawn(async move {
            crate::metrics::http_connection(true);
            let mut connection = std::pin::pin!(connection);
            let mut closing = false;
            loop {
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(e) = result {
                            // Slow or broken clients; nothing an operator must act on.
                            tracing::debug!(error = %e, "an ingress connection ended with an error");
                        }
                        break;
                    }
                    () = admitted.close.cancelled(), if !closing => {
                        // Idle (even halfway through a head that may never end): closed now.
                        // Busy: the request in hand is answered first.
                        if admitted.activity.is_idle() {
                            break;
                        }
                        closing = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(admitted);
            crate::metrics::http_connection(false);
        });
    }
    // No new connections from here on.
    drop(listener);
    connections.close();
    connections.wait().await;
}
