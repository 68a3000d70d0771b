//! Sending the load. One keep-alive HTTP/1.1 connection per concurrency slot (as wrk does),
//! each its own task on a multi-thread tokio runtime, spread round-robin over the target URLs.
//! Two shapes:
//!
//! - closed loop (`--concurrency N`): every connection sends its next request as soon as the
//!   last one is answered; this measures the most the server answers;
//! - open loop (`--rate R`): request `i` is due at `start + i / R`, whichever connection is free
//!   takes it, and when it is late because every connection was still busy its latency counts
//!   from when it was due, not from when it went out, so a server that stalls shows the wait it
//!   caused (no coordinated omission).
//!
//! A run stops at `--duration` or after `--requests`, whichever comes first. Requests sent during
//! `--warmup` go out but are not recorded or counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::HOST;
use http::uri::PathAndQuery;
use http::{HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::bodies::Deliveries;
use crate::stats::{Recorder, Report, Shape};

/// How long a connection waits after failing to connect before it tries again, so that a server
/// that is down is not hammered in a tight loop.
const RECONNECT_PAUSE: Duration = Duration::from_millis(10);

/// Why a URL cannot be a target.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// Not a URL at all.
    #[error("{url:?} is not a URL: {source}")]
    Invalid {
        /// The URL as given.
        url: String,
        /// What the parser said.
        source: http::uri::InvalidUri,
    },
    /// Only plain http is spoken: load runs target 127.0.0.1.
    #[error("{0:?} is not an http:// URL with a host (https is not supported)")]
    Unsupported(String),
}

/// One URL deliveries are posted to, taken apart once.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL as given, for the report.
    pub url: String,
    /// `host:port` to connect to.
    address: String,
    /// The `Host` header.
    host_header: HeaderValue,
    /// The request target (path and query).
    path: Uri,
}

impl Target {
    /// Parses an `http://host[:port]/path` URL.
    pub fn parse(url: &str) -> Result<Self, TargetError> {
        let uri: Uri = url.parse().map_err(|source| TargetError::Invalid {
            url: url.to_owned(),
            source,
        })?;
        let unsupported = || TargetError::Unsupported(url.to_owned());
        if uri.scheme_str() != Some("http") {
            return Err(unsupported());
        }
        let authority = uri.authority().ok_or_else(unsupported)?;
        let address = format!(
            "{}:{}",
            authority.host(),
            authority.port_u16().unwrap_or(80)
        );
        let host_header = HeaderValue::from_str(authority.as_str()).map_err(|_| unsupported())?;
        let path = uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        Ok(Self {
            url: url.to_owned(),
            address,
            host_header,
            path: Uri::from(path),
        })
    }
}

/// Everything a run needs, decided before the first request.
#[derive(Debug, Clone)]
pub struct Plan {
    /// At least one; connection `i` goes to `targets[i % targets.len()]`.
    pub targets: Vec<Target>,
    /// The pre-signed bodies, cycled in order over all connections, or the mix.
    pub deliveries: Deliveries,
    /// Connections (at least 1).
    pub concurrency: u32,
    /// `Some(r)`: open loop at `r` requests a second; `None`: closed loop.
    pub rate: Option<f64>,
    /// How long the measured period lasts; `None`: until `requests` are sent.
    pub duration: Option<Duration>,
    /// Stop after this many measured requests; `None`: until `duration` is over.
    pub requests: Option<u64>,
    /// Load sent before the measured period, not recorded.
    pub warmup: Duration,
    /// How long a request may wait for its answer before it counts as a timeout.
    pub timeout: Duration,
}

/// What every connection's task reads; the counters are the only shared writes.
struct Shared {
    /// The plan.
    plan: Plan,
    /// When the load (warmup included) began; open-loop slots are scheduled from here.
    start: Instant,
    /// When recording begins (`start + warmup`).
    measure_start: Instant,
    /// When no new request is sent any more; `None`: only `requests` stops the run.
    deadline: Option<Instant>,
    /// Open loop: how many slots fall into the warmup.
    warmup_slots: u64,
    /// Requests sent so far over all connections: picks the body, and in the open loop
    /// numbers the slots.
    sequence: AtomicU64,
    /// Closed loop: measured requests started so far, against `requests`.
    tickets: AtomicU64,
}

/// A request a connection is to send now (or at `due`).
struct Turn {
    /// When the request is due: now for the closed loop, its slot for the open loop.
    due: Instant,
    /// Whether it falls in the measured period.
    measured: bool,
    /// The request's number in the run (warmup included): picks the body.
    sequence: u64,
}

impl Shared {
    /// The next request this connection sends, or `None` when the run is over.
    fn next_turn(&self) -> Option<Turn> {
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        match self.plan.rate {
            None => {
                let now = Instant::now();
                if self.deadline.is_some_and(|deadline| now >= deadline) {
                    return None;
                }
                let measured = now >= self.measure_start;
                if measured
                    && let Some(limit) = self.plan.requests
                    && self.tickets.fetch_add(1, Ordering::Relaxed) >= limit
                {
                    return None;
                }
                Some(Turn {
                    due: now,
                    measured,
                    sequence: n,
                })
            }
            Some(rate) => {
                let due = self.start + Duration::from_secs_f64(n as f64 / rate);
                if self.deadline.is_some_and(|deadline| due >= deadline) {
                    return None;
                }
                let measured = n >= self.warmup_slots;
                if measured
                    && let Some(limit) = self.plan.requests
                    && n - self.warmup_slots >= limit
                {
                    return None;
                }
                Some(Turn {
                    due,
                    measured,
                    sequence: n,
                })
            }
        }
    }
}

/// Runs `plan` to the end and reports on the measured period.
pub async fn run(plan: Plan) -> Report {
    let concurrency = plan.concurrency.max(1);
    let start = Instant::now();
    let measure_start = start + plan.warmup;
    let shape = match plan.rate {
        None => Shape::Closed { concurrency },
        Some(rate) => Shape::Open { rate, concurrency },
    };
    let urls = plan.targets.iter().map(|t| t.url.clone()).collect();
    let shared = Arc::new(Shared {
        deadline: plan.duration.map(|d| measure_start + d),
        warmup_slots: plan
            .rate
            .map_or(0, |rate| (plan.warmup.as_secs_f64() * rate).ceil() as u64),
        plan,
        start,
        measure_start,
        sequence: AtomicU64::new(0),
        tickets: AtomicU64::new(0),
    });
    let tasks: Vec<_> = (0..concurrency as usize)
        .map(|slot| tokio::spawn(connection(shared.clone(), slot)))
        .collect();
    let mut recorder = Recorder::new();
    let mut last_answer = measure_start;
    for task in tasks {
        // A connection task only ends by returning; a panic in one is a bug worth seeing.
        let (part, last) = task.await.expect("a connection task does not panic");
        recorder.merge(&part);
        last_answer = last_answer.max(last);
    }
    Report::new(
        shape,
        urls,
        &recorder,
        last_answer.saturating_duration_since(measure_start),
    )
}

/// How one request ended.
enum Outcome {
    /// Answered with this status, body read to the end.
    Answered(u16),
    /// The connection could not be made or broke.
    ConnectionError,
    /// No answer within the plan's timeout.
    Timeout,
}

/// One connection's loop: take a turn, send, record. Returns what it recorded and when its last
/// measured answer came.
async fn connection(shared: Arc<Shared>, slot: usize) -> (Recorder, Instant) {
    let target = &shared.plan.targets[slot % shared.plan.targets.len()];
    let mut ids = DeliveryIds::new();
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    let mut recorder = Recorder::new();
    let mut last_answer = shared.measure_start;
    while let Some(turn) = shared.next_turn() {
        // Latency counts from `turn.due` when the slot was already due as this connection came
        // free (the server kept it busy: that wait is the server's). When the connection was
        // idle and waited for its slot, it counts from the moment the timer woke it, because
        // tokio's timer fires up to a millisecond late and that delay is this tool's own.
        let sent_at = if shared.plan.rate.is_some() && turn.due > Instant::now() {
            tokio::time::sleep_until(turn.due).await;
            Instant::now()
        } else {
            turn.due
        };
        let request = build_request(&shared.plan.deliveries, turn.sequence, target, ids.next());
        let outcome =
            match tokio::time::timeout(shared.plan.timeout, send(&mut sender, target, request))
                .await
            {
                Ok(outcome) => outcome,
                Err(_) => {
                    // The answer may still come on this connection: start over on a new one.
                    sender = None;
                    Outcome::Timeout
                }
            };
        let done = Instant::now();
        if turn.measured {
            match outcome {
                Outcome::Answered(status) => recorder.answered(status, done - sent_at),
                Outcome::ConnectionError => recorder.connection_error(),
                Outcome::Timeout => recorder.timeout(),
            }
            last_answer = last_answer.max(done);
        }
        if matches!(outcome, Outcome::ConnectionError) && shared.plan.rate.is_none() {
            tokio::time::sleep(RECONNECT_PAUSE).await;
        }
    }
    (recorder, last_answer)
}

/// The request for the run's `sequence`-th body to `target` under delivery id `id`.
fn build_request(
    deliveries: &Deliveries,
    sequence: u64,
    target: &Target,
    id: HeaderValue,
) -> Request<Full<Bytes>> {
    let signed = deliveries.signed(sequence).into_owned();
    let mut request = Request::new(Full::new(signed.body));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = target.path.clone();
    let headers = request.headers_mut();
    *headers = signed.headers;
    headers.insert(HOST, target.host_header.clone());
    for name in &deliveries.id_headers {
        headers.insert(name.clone(), id.clone());
    }
    request
}

/// Sends `request` on the connection in `sender`, opening one first when there is none (or the
/// server closed it). A broken connection is dropped, to be opened again on the next turn.
async fn send(
    sender: &mut Option<SendRequest<Full<Bytes>>>,
    target: &Target,
    request: Request<Full<Bytes>>,
) -> Outcome {
    if sender.as_ref().is_none_or(SendRequest::is_closed) {
        match connect(target).await {
            Ok(opened) => *sender = Some(opened),
            Err(_) => {
                *sender = None;
                return Outcome::ConnectionError;
            }
        }
    }
    let Some(open) = sender.as_mut() else {
        return Outcome::ConnectionError;
    };
    let answered = async {
        open.ready().await?;
        let response = open.send_request(request).await?;
        let status = response.status().as_u16();
        response.into_body().collect().await?;
        Ok::<_, hyper::Error>(status)
    }
    .await;
    match answered {
        Ok(status) => Outcome::Answered(status),
        Err(_) => {
            *sender = None;
            Outcome::ConnectionError
        }
    }
}

/// Opens a keep-alive HTTP/1.1 connection to `target`, its driver on its own task.
async fn connect(target: &Target) -> Result<SendRequest<Full<Bytes>>, Box<dyn std::error::Error>> {
    let stream = TcpStream::connect(&target.address).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // The connection ends when the server closes it or the sender is dropped; either way
        // the next turn sees `is_closed` and opens another.
        let _ = connection.await;
    });
    Ok(sender)
}

/// Fresh, random version-4 delivery ids, cheaply: a SplitMix64 stream seeded once from the
/// operating system, so a request costs no system call.
struct DeliveryIds {
    /// The generator's state.
    state: u64,
}

impl DeliveryIds {
    /// A stream seeded from a random UUID.
    fn new() -> Self {
        let seed = uuid::Uuid::new_v4().as_u128();
        Self {
            state: (seed as u64) ^ ((seed >> 64) as u64),
        }
    }

    /// The next 64 random bits (SplitMix64).
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The next id, as the header value `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`.
    fn next(&mut self) -> HeaderValue {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        bytes[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        HeaderValue::from_str(id.hyphenated().encode_lower(&mut text))
            .expect("a UUID is a valid header value")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_is_taken_apart_into_address_host_and_path() {
        let t = Target::parse("http://127.0.0.1:8080/.api/webhooks/abc?x=1").expect("valid");
        assert_eq!(t.address, "127.0.0.1:8080");
        assert_eq!(t.host_header, "127.0.0.1:8080");
        assert_eq!(t.path, "/.api/webhooks/abc?x=1");
        let t = Target::parse("http://localhost").expect("valid");
        assert_eq!((t.address.as_str(), t.path.path()), ("localhost:80", "/"));
    }

    #[test]
    fn https_and_relative_urls_are_refused() {
        assert!(Target::parse("https://127.0.0.1/").is_err());
        assert!(Target::parse("/.api/webhooks/x").is_err());
        assert!(Target::parse("not a url").is_err());
    }

    #[test]
    fn delivery_ids_are_distinct_version_4_uuids() {
        let mut ids = DeliveryIds::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let value = ids.next();
            let id = uuid::Uuid::parse_str(value.to_str().expect("ASCII")).expect("a UUID");
            assert_eq!(id.get_version_num(), 4);
            assert!(seen.insert(id), "ids repeat");
        }
    }
}
