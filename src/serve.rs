//! The HTTP server loop of the ingress. `axum::serve` does not let a slow client be cut off, so
//! connections are served here with hyper's HTTP/1.1 connection directly (code hosts deliver
//! over HTTP/1.1): a request's head must arrive within `--header-read-timeout` (an idle
//! keep-alive connection is closed after the same time), a head over `--max-header-bytes` or
//! with more than [`crate::head::MAX_HEADERS`] header fields is answered 431 (400 for a
//! `Content-Length` past any body) with a body that says which (`head`), and past
//! `--max-connections` open connections a new one is closed at once.
//!
//! Shutdown: when `stop` is cancelled the listener is closed (no new connections), idle
//! connections are closed, and each busy one finishes the request in hand, answers it and
//! closes. [`serve`] returns when every connection is gone; the caller bounds that wait with
//! `--shutdown-timeout`.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The connection-level limits.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// How long a request's head may take to arrive; also how long a connection may sit idle.
    pub header_read_timeout: Duration,
    /// The largest request head in bytes.
    pub max_header_bytes: usize,
    /// Open connections at most.
    pub max_connections: usize,
}

impl From<&crate::config::Operations> for ServerLimits {
    fn from(operations: &crate::config::Operations) -> Self {
        Self {
            header_read_timeout: operations.header_read_timeout.into(),
            max_header_bytes: operations.max_header_bytes,
            max_connections: operations.max_connections,
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
        .max_headers(crate::head::MAX_HEADERS)
        // hyper's read buffer: a head that does not fit is answered 431 without being read
        // further. It cannot be under 8 KiB.
        .max_buf_size(limits.max_header_bytes.max(8192));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    loop {
        let (stream, _peer) = tokio::select! {
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
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            crate::metrics::http_connection_refused();
            drop(stream);
            continue;
        };
        stream.set_nodelay(true).ok();
        let connection = http.serve_connection(
            TokioIo::new(crate::head::HeadCheck::new(stream, limits.max_header_bytes)),
            TowerToHyperService::new(router.clone()),
        );
        let stop = stop.clone();
        connections.spawn(async move {
            let _slot = slot;
            crate::metrics::http_connection(true);
            let mut connection = std::pin::pin!(connection);
            let mut stopping = false;
            loop {
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(e) = result {
                            // Slow or broken clients; nothing an operator must act on.
                            tracing::debug!(error = %e, "an ingress connection ended with an error");
                        }
                        break;
                    }
                    () = stop.cancelled(), if !stopping => {
                        stopping = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
            crate::metrics::http_connection(false);
        });
    }
    // No new connections from here on.
    drop(listener);
    connections.close();
    connections.wait().await;
}
