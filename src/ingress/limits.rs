//! What a client can make hookgate hold, bounded: deliveries handled at once
//! (`--max-inflight-requests`, and `--max-inflight-requests-per-address` for one client), bytes
//! of bodies in memory across them (`--max-buffered-body-bytes`, and
//! `--max-buffered-body-bytes-per-address`), the time a body may take to arrive
//! (`--body-read-timeout`), and the size of an admin API message (`--max-admin-message-bytes`).
//! Connection-level limits (header read time, header size, open connections) are the server
//! loop's, in `serve` and `connections`.
//!
//! The ingress limits are a middleware around the webhook routes that refuses at once rather than
//! queueing. A client is its peer address, or the address a trusted proxy names for it (see
//! `peer`): one client reaching its share leaves the rest to the others. Body bytes are counted
//! as they arrive, never on a declared `Content-Length`, so a request that declares much and
//! sends nothing holds nothing but its in-flight slot. A limit met is an error value here
//! ([`InflightLimit`], or [`BodyLimit`] failing the body); `reply` turns it into its status code
//! (408 or 503), as it does every other.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::peer::{PeerAddr, TrustedProxies};
use super::reply;
use crate::config::Operations;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a request was refused before it was handled: too many are being handled at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InflightLimit {
    #[error("too many deliveries are being handled at once; retry shortly")]
    Service,
    #[error(
        "too many deliveries from this client address are being handled at once (--max-inflight-requests-per-address); retry shortly"
    )]
    Address,
}

/// Why a delivery body was cut off before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyLimit {
    #[error("the body did not arrive within the body read timeout")]
    TimedOut,
    #[error("too many delivery bytes are held in memory right now")]
    OverBudget,
    #[error(
        "too many delivery bytes from this client address are held in memory right now (--max-buffered-body-bytes-per-address)"
    )]
    OverAddressBudget,
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

/// Amounts that client addresses hold, each address under the same cap. An address holding
/// nothing has no entry, so the map is as large as the clients being served right now.
#[derive(Debug)]
struct PerAddress {
    max: u64,
    held: Mutex<HashMap<IpAddr, u64>>,
}

impl PerAddress {
    fn new(max: u64) -> Self {
        Self {
            max,
            held: Mutex::new(HashMap::new()),
        }
    }

    /// Takes `n` more for `client`; `false` when that would pass the cap.
    fn take(&self, client: IpAddr, n: u64) -> bool {
        let Ok(mut held) = self.held.lock() else {
            return false;
        };
        let now = held.entry(client).or_insert(0);
        if now.saturating_add(n) > self.max {
            if *now == 0 {
                held.remove(&client);
            }
            return false;
        }
        *now += n;
        true
    }

    /// Gives back `n` that `client` took.
    fn give_back(&self, client: IpAddr, n: u64) {
        let Ok(mut held) = self.held.lock() else {
            return;
        };
        if let Some(now) = held.get_mut(&client) {
            *now = now.saturating_sub(n);
            if *now == 0 {
                held.remove(&client);
            }
        }
    }
}

/// The ingress's shared limits: one per service, cloned into the middleware.
#[derive(Debug)]
pub struct IngressLimits {
    /// One permit per delivery being handled.
    inflight: Arc<Semaphore>,
    /// Deliveries being handled, per client.
    inflight_per_address: PerAddress,
    /// One permit per body byte held in memory.
    budget: Arc<Semaphore>,
    /// Body bytes held in memory, per client.
    budget_per_address: PerAddress,
    /// How long a whole body may take to arrive.
    body_read_timeout: Duration,
    /// Whose `X-Forwarded-For` names the client.
    trusted_proxies: TrustedProxies,
}

impl IngressLimits {
    pub fn new(operations: &Operations) -> Arc<Self> {
        Arc::new(Self {
            inflight: Arc::new(Semaphore::new(operations.max_inflight_requests)),
            inflight_per_address: PerAddress::new(
                operations.max_inflight_requests_per_address as u64,
            ),
            budget: Arc::new(Semaphore::new(
                operations
                    .max_buffered_body_bytes
                    .min(Semaphore::MAX_PERMITS),
            )),
            budget_per_address: PerAddress::new(
                operations.max_buffered_body_bytes_per_address as u64,
            ),
            body_read_timeout: operations.body_read_timeout.into(),
            trusted_proxies: TrustedProxies::new(&operations.trusted_proxies),
        })
    }
}

/// The middleware around the webhook routes: a slot among the client's
/// `--max-inflight-requests-per-address` and among `--max-inflight-requests`, or 503 at once;
/// body bytes taken from the client's and the service's byte budgets as they arrive (or 503);
/// and a deadline for the whole body. Other routes pass through.
pub async fn enforce(
    State(limits): State<Arc<IngressLimits>>,
    request: Request,
    next: Next,
) -> Response {
    if !request.uri().path().starts_with("/.api/webhooks/") {
        return next.run(request).await;
    }
    // Every connection of the server loop carries its peer; without one (a router served some
    // other way) all requests are one client.
    let peer = request
        .extensions()
        .get::<PeerAddr>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.0.ip());
    let client = limits.trusted_proxies.client(peer, request.headers());
    let _slot = match InflightSlot::take(&limits, client) {
        Ok(slot) => slot,
        Err(limit) => return reply::overloaded(&limit),
    };
    let held = Arc::new(Held::new(limits.clone(), client));
    let deadline = tokio::time::sleep(limits.body_read_timeout);
    let request = request.map(|inner| {
        Body::new(GuardedBody {
            inner,
            held: held.clone(),
            deadline: Box::pin(deadline),
        })
    });
    // `held` lives until the answer is made: the body's bytes stay in memory that long.
    next.run(request).await
}

/// An in-flight slot, the service's and the client's, counted in the in-flight gauge while held.
struct InflightSlot {
    limits: Arc<IngressLimits>,
    client: IpAddr,
    _permit: OwnedSemaphorePermit,
}

impl InflightSlot {
    /// The client's slot first, so a client at its own cap never takes one of the service's.
    fn take(limits: &Arc<IngressLimits>, client: IpAddr) -> Result<Self, InflightLimit> {
        if !limits.inflight_per_address.take(client, 1) {
            return Err(InflightLimit::Address);
        }
        let Ok(permit) = limits.inflight.clone().try_acquire_owned() else {
            limits.inflight_per_address.give_back(client, 1);
            return Err(InflightLimit::Service);
        };
        crate::metrics::ingress_inflight(true);
        Ok(Self {
            limits: limits.clone(),
            client,
            _permit: permit,
        })
    }
}

impl Drop for InflightSlot {
    fn drop(&mut self) {
        self.limits.inflight_per_address.give_back(self.client, 1);
        crate::metrics::ingress_inflight(false);
    }
}

/// The byte budget one request holds, the service's and its client's; given back when the
/// request is answered.
#[derive(Debug)]
struct Held {
    limits: Arc<IngressLimits>,
    client: IpAddr,
    /// The permits taken so far, merged into one; and how many bytes they are.
    permits: Mutex<(Option<OwnedSemaphorePermit>, u64)>,
}

impl Held {
    fn new(limits: Arc<IngressLimits>, client: IpAddr) -> Self {
        Self {
            limits,
            client,
            permits: Mutex::new((None, 0)),
        }
    }

    /// Takes `bytes` more from the client's budget and the service's at once.
    fn take(&self, bytes: u64) -> Result<(), BodyLimit> {
        let n = u32::try_from(bytes).map_err(|_| BodyLimit::OverBudget)?;
        let Ok(mut held) = self.permits.lock() else {
            return Err(BodyLimit::OverBudget);
        };
        if !self.limits.budget_per_address.take(self.client, bytes) {
            return Err(BodyLimit::OverAddressBudget);
        }
        let Ok(permit) = self.limits.budget.clone().try_acquire_many_owned(n) else {
            self.limits.budget_per_address.give_back(self.client, bytes);
            return Err(BodyLimit::OverBudget);
        };
        match &mut held.0 {
            Some(all) => all.merge(permit),
            none => *none = Some(permit),
        }
        held.1 += bytes;
        crate::metrics::ingress_buffered(bytes as f64);
        Ok(())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let bytes = self.permits.get_mut().map(|h| h.1).unwrap_or(0);
        self.limits.budget_per_address.give_back(self.client, bytes);
        crate::metrics::ingress_buffered(-(bytes as f64));
    }
}

/// A delivery body that fails with [`BodyLimit`] when it outlives its deadline or its bytes
/// pass what the budgets can give.
struct GuardedBody {
    inner: Body,
    held: Arc<Held>,
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
                if let Some(data) = frame.data_ref()
                    && !data.is_empty()
                    && let Err(limit) = this.held.take(data.len() as u64)
                {
                    return Poll::Ready(Some(Err(Box::new(limit))));
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
