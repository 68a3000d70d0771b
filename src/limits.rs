//! What a client can make hookgate hold, bounded: deliveries handled at once
//! (`--max-inflight-requests`), bytes of bodies in memory across them
//! (`--max-buffered-body-bytes`), the time a body may take to arrive (`--body-read-timeout`), and
//! the size of an admin API message (`--max-admin-message-bytes`). Connection-level limits (header
//! read time, header size, open connections) are the server loop's, in `serve`.
//!
//! The ingress limits are a middleware around the webhook routes that refuses at once rather than
//! queueing. The body limits fail the body with a [`BodyLimit`] error; `ingress` turns that into
//! its status code (408 or 503), as it does every other.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::Operations;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a delivery body was cut off before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyLimit {
    #[error("the body did not arrive within the body read timeout")]
    TimedOut,
    #[error("too many delivery bytes are held in memory right now")]
    OverBudget,
}

impl BodyLimit {
    /// The limit behind a body error, if one is anywhere in its chain of causes.
    pub fn find(err: &(dyn std::error::Error + 'static)) -> Option<BodyLimit> {
        let mut next = Some(err);
        while let Some(err) = next {
            if let Some(limit) = err.downcast_ref::<BodyLimit>() {
                return Some(*limit);
            }
            next = err.source();
        }
        None
    }
}

/// The ingress's shared limits: one per service, cloned into the middleware.
#[derive(Debug)]
pub struct IngressLimits {
    /// One permit per delivery being handled.
    inflight: Arc<Semaphore>,
    /// One permit per body byte held in memory.
    budget: Arc<Semaphore>,
    /// How long a whole body may take to arrive.
    body_read_timeout: Duration,
    /// Bodies declared larger than this are left to the ingress to refuse (413), unreserved.
    max_body_bytes: usize,
}

impl IngressLimits {
    pub fn new(operations: &Operations, max_body_bytes: usize) -> Arc<Self> {
        Arc::new(Self {
            inflight: Arc::new(Semaphore::new(operations.max_inflight_requests)),
            budget: Arc::new(Semaphore::new(
                operations
                    .max_buffered_body_bytes
                    .min(Semaphore::MAX_PERMITS),
            )),
            body_read_timeout: operations.body_read_timeout.into(),
            max_body_bytes,
        })
    }
}

/// The middleware around the webhook routes: a slot among `--max-inflight-requests` or 503 at
/// once; the declared body length reserved from the byte budget up front (or 503 at once), and
/// any further bytes as they arrive; and a deadline for the whole body. Other routes pass
/// through.
pub async fn enforce(
    State(limits): State<Arc<IngressLimits>>,
    request: Request,
    next: Next,
) -> Response {
    if !request.uri().path().starts_with("/.api/webhooks/") {
        return next.run(request).await;
    }
    let Ok(slot) = limits.inflight.clone().try_acquire_owned() else {
        return crate::ingress::overloaded(
            "too many deliveries are being handled at once; retry shortly",
        );
    };
    let _slot = InflightSlot::new(slot);
    let held = Arc::new(Held::new(limits.budget.clone()));
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&n| n <= limits.max_body_bytes as u64)
        .unwrap_or(0);
    if declared > 0 && !held.take(declared) {
        return crate::ingress::overloaded(&BodyLimit::OverBudget.to_string());
    }
    let deadline = tokio::time::sleep(limits.body_read_timeout);
    let request = request.map(|inner| {
        Body::new(GuardedBody {
            inner,
            held: held.clone(),
            paid: declared,
            seen: 0,
            deadline: Box::pin(deadline),
        })
    });
    // `held` lives until the answer is made: the body's bytes stay in memory that long.
    next.run(request).await
}

/// An in-flight slot, counted in the in-flight gauge while held.
struct InflightSlot(#[allow(dead_code)] OwnedSemaphorePermit);

impl InflightSlot {
    fn new(permit: OwnedSemaphorePermit) -> Self {
        crate::metrics::ingress_inflight(true);
        Self(permit)
    }
}

impl Drop for InflightSlot {
    fn drop(&mut self) {
        crate::metrics::ingress_inflight(false);
    }
}

/// The byte budget one request holds; given back when the request is answered.
#[derive(Debug)]
struct Held {
    budget: Arc<Semaphore>,
    /// The permits taken so far, merged into one; and how many bytes they are.
    permits: Mutex<(Option<OwnedSemaphorePermit>, u64)>,
}

impl Held {
    fn new(budget: Arc<Semaphore>) -> Self {
        Self {
            budget,
            permits: Mutex::new((None, 0)),
        }
    }

    /// Takes `bytes` more from the budget at once; `false` when it has not that many left.
    fn take(&self, bytes: u64) -> bool {
        let Ok(n) = u32::try_from(bytes) else {
            return false;
        };
        let Ok(permit) = self.budget.clone().try_acquire_many_owned(n) else {
            return false;
        };
        let Ok(mut held) = self.permits.lock() else {
            return false;
        };
        match &mut held.0 {
            Some(all) => all.merge(permit),
            none => *none = Some(permit),
        }
        held.1 += bytes;
        crate::metrics::ingress_buffered(bytes as f64);
        true
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let bytes = self.permits.get_mut().map(|h| h.1).unwrap_or(0);
        crate::metrics::ingress_buffered(-(bytes as f64));
    }
}

/// A delivery body that fails with [`BodyLimit`] when it outlives its deadline or its bytes
/// pass what the budget can give.
struct GuardedBody {
    inner: Body,
    held: Arc<Held>,
    /// Bytes reserved for this body so far.
    paid: u64,
    /// Bytes read so far.
    seen: u64,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyLimit::TimedOut))));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.seen += data.len() as u64;
                    if this.seen > this.paid {
                        if !this.held.take(this.seen - this.paid) {
                            return Poll::Ready(Some(Err(Box::new(BodyLimit::OverBudget))));
                        }
                        this.paid = this.seen;
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The admin API's layer that refuses a request message over `max` bytes with
/// `INVALID_ARGUMENT`, as soon as its length prefix is read (tonic answers a body error that is a
/// `Status` with that status).
pub fn admin_message_limit(
    max: usize,
) -> tower::util::MapRequestLayer<
    impl Fn(http::Request<tonic::body::Body>) -> http::Request<tonic::body::Body> + Clone,
> {
    tower::util::MapRequestLayer::new(move |request: http::Request<tonic::body::Body>| {
        request.map(|inner| tonic::body::Body::new(MessageLimitBody::new(inner, max)))
    })
}

/// A gRPC request body that reads the 5-byte prefix of each message (a compression flag, then
/// the length, big-endian) and fails once a message says it is longer than `max`.
struct MessageLimitBody {
    inner: tonic::body::Body,
    max: usize,
    /// The prefix of the next message, as far as it has arrived.
    prefix: [u8; 5],
    prefix_len: usize,
    /// Bytes of the current message still to come.
    remaining: u64,
}

impl MessageLimitBody {
    fn new(inner: tonic::body::Body, max: usize) -> Self {
        Self {
            inner,
            max,
            prefix: [0; 5],
            prefix_len: 0,
            remaining: 0,
        }
    }

    /// Follows the framing through `data`; `Err` with the length of a message over the limit.
    fn scan(&mut self, mut data: &[u8]) -> Result<(), u64> {
        while !data.is_empty() {
            if self.remaining > 0 {
                let n = (self.remaining.min(data.len() as u64)) as usize;
                self.remaining -= n as u64;
                data = &data[n..];
                continue;
            }
            let n = (5 - self.prefix_len).min(data.len());
            self.prefix[self.prefix_len..self.prefix_len + n].copy_from_slice(&data[..n]);
            self.prefix_len += n;
            data = &data[n..];
            if self.prefix_len == 5 {
                self.prefix_len = 0;
                let len = u64::from(u32::from_be_bytes([
                    self.prefix[1],
                    self.prefix[2],
                    self.prefix[3],
                    self.prefix[4],
                ]));
                if len > self.max as u64 {
                    return Err(len);
                }
                self.remaining = len;
            }
        }
        Ok(())
    }
}

impl http_body::Body for MessageLimitBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let this = self.get_mut();
        let frame = std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx));
        if let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
            && let Err(len) = this.scan(data)
        {
            return Poll::Ready(Some(Err(tonic::Status::invalid_argument(format!(
                "the request message is {len} bytes, over the admin API's limit of {} bytes (--max-admin-message-bytes): send less in one call",
                this.max
            )))));
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(len: u32) -> Vec<u8> {
        let mut v = vec![0u8];
        v.extend_from_slice(&len.to_be_bytes());
        v.extend(std::iter::repeat_n(7u8, len as usize));
        v
    }

    #[test]
    fn messages_up_to_the_limit_pass_in_any_split() {
        let mut stream = framed(10);
        stream.extend(framed(3));
        for split in 0..stream.len() {
            let mut body = MessageLimitBody::new(tonic::body::Body::empty(), 10);
            assert_eq!(body.scan(&stream[..split]), Ok(()));
            assert_eq!(body.scan(&stream[split..]), Ok(()));
        }
    }

    #[test]
    fn a_message_over_the_limit_fails_on_its_length_prefix() {
        let stream = framed(11);
        let mut body = MessageLimitBody::new(tonic::body::Body::empty(), 10);
        assert_eq!(body.scan(&stream[..3]), Ok(()));
        assert_eq!(body.scan(&stream[3..5]), Err(11));
    }

    #[test]
    fn a_body_limit_is_found_behind_the_errors_that_wrap_it() {
        let wrapped = axum::Error::new(BoxError::from(BodyLimit::TimedOut));
        assert_eq!(BodyLimit::find(&wrapped), Some(BodyLimit::TimedOut));
        let other = axum::Error::new(BoxError::from("connection reset"));
        assert_eq!(BodyLimit::find(&other), None);
    }
}
