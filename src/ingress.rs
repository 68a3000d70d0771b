//! The HTTP side of hookgate: the route code hosts deliver to, and `/healthz`. Every status code
//! the ingress answers is decided in this file (see DESIGN.md, "Status codes at the ingress").
//!
//! A delivery goes: receiver lookup (cached) → method → body cap → verification on the raw bytes
//! → event and delivery key → stored and committed → answered. Nothing is acknowledged with a 2xx
//! before it is committed.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use sea_orm::DatabaseConnection;
use serde_json::json;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::deliveries::{DeliveryState, DeliveryStore, Intake, NewDelivery, Stored, WorkerStatus};
use crate::hosts::{self, ClassifyError, Disposition, Verified};
use crate::rate_limit::RateLimiter;
use crate::receivers::{Receiver, ReceiverEntry, ReceiverStore};
use crate::store::StoreError;
use crate::text::{Cap, bounded};
use crate::time::now_micros;

/// The default cap on a delivery's body: 25 MiB, GitHub's own cap.
pub const DEFAULT_MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

/// Headers whose values are never stored: tokens and secrets.
const REDACTED_HEADERS: [&str; 5] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-gitlab-token",
    "x-hook-secret",
];

/// What the HTTP handlers share.
#[derive(Clone)]
pub struct IngressState {
    pub db: DatabaseConnection,
    pub receivers: ReceiverStore,
    pub deliveries: DeliveryStore,
    /// Group commit: where deliveries are handed to be stored.
    pub intake: Intake,
    /// The largest body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Woken after a pending delivery is committed.
    pub worker_wake: Arc<Notify>,
    /// Receivers' `rate_limit_per_minute`, which only authentic deliveries count against.
    pub rate_limiter: Arc<RateLimiter>,
    /// How many 401s a receiver's log keeps a `REJECTED` row of ([`REJECTED_LOGGED_PER_MINUTE`]).
    pub rejected_log: Arc<RateLimiter>,
    /// Whether this process's delivery worker runs; `None` with `--ingress-only` (no worker).
    pub worker: Option<WorkerStatus>,
}

/// The HTTP router.
pub fn router(state: IngressState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/.api/webhooks/{id}", any(deliver))
        .route(
            "/.api/webhooks/{id}/{secret}",
            any(deliver_with_path_secret),
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

/// A JSON answer: `{"error": ...}` for failures, the delivery id and a note for the rest.
fn reply(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    reply(status, json!({ "error": message.into() }))
}

/// The answer when the store failed: 503 with `Retry-After` when it may work later (the
/// database is unavailable, or this replica cannot open receivers' secrets until it is given the
/// right key), so the host retries; 500 when retrying the same request cannot help (the database
/// refused a value of this delivery, or failed for good).
fn store_failed(err: &StoreError) -> Response {
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

/// `POST /.api/webhooks/{id}` (and `GET`/`PUT` for generic triggers).
async fn deliver(
    State(state): State<IngressState>,
    Path(raw_id): Path<String>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    intake(state, raw_id, None, method, uri, headers, body).await
}

/// `/.api/webhooks/{id}/{secret}`: a generic trigger with its secret in the path.
async fn deliver_with_path_secret(
    State(state): State<IngressState>,
    Path((raw_id, secret)): Path<(String, String)>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    intake(state, raw_id, Some(secret), method, uri, headers, body).await
}

/// Everything a delivery goes through, in DESIGN.md's order.
async fn intake(
    state: IngressState,
    raw_id: String,
    path_secret: Option<String>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let receive_time = now_micros();
    let Ok(receiver_id) = Uuid::parse_str(&raw_id) else {
        return error(
            StatusCode::BAD_REQUEST,
            "malformed receiver id in the URL: expected /.api/webhooks/<uuid>",
        );
    };
    let entry = match state.receivers.lookup(receiver_id).await {
        Ok(Some(entry)) => entry,
        Ok(None) => return error(StatusCode::NOT_FOUND, "no receiver has this id"),
        Err(e) => return store_failed(&e),
    };
    crate::observe::receiver(&entry.receiver);
    let kind = entry.receiver.code_host_kind;
    let Some(host) = kind.host() else {
        return trigger(
            state,
            &entry,
            path_secret,
            method,
            uri,
            headers,
            body,
            receive_time,
        )
        .await;
    };
    if path_secret.is_some() {
        return error(
            StatusCode::NOT_FOUND,
            format!("{kind} receivers take deliveries at /.api/webhooks/<id> only"),
        );
    }
    if method != Method::POST {
        let mut response = error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{kind} receivers take POST only"),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let body = match read_capped(&headers, body, state.max_body_bytes).await {
        Ok(body) => body,
        Err(response) => return response,
    };

    let base = NewDelivery {
        id: Uuid::now_v7(),
        receiver_id,
        delivery_key: None,
        event: String::new(),
        state: DeliveryState::Pending,
        receive_time,
        method: method.to_string(),
        path: uri.path().to_owned(),
        request_headers: redacted_headers(&headers),
        request_body: None,
        response_status: 0,
        response_body: Vec::new(),
        last_error: None,
    };

    let secrets = entry.secrets.accepted_at(receive_time);
    let verified = match hosts::verify(host, &headers, &body, &secrets) {
        Ok(verified) => verified,
        Err(why) => {
            let reason = why.to_string();
            tracing::info!(receiver = %receiver_id, %reason, "delivery rejected");
            // What the attempt claimed to be, for the log: from its headers, never its body.
            let claimed = hosts::claimed(host, &headers);
            let attempt = NewDelivery {
                delivery_key: claimed.delivery_key,
                event: claimed.event,
                ..base
            };
            return rejected(&state, attempt, reason).await;
        }
    };
    if verified == Verified::UnsignedPing {
        return unsigned_ping(&state, host, &headers, base).await;
    }
    let classified = match hosts::classify_outline(host, &headers, &body) {
        Ok(c) => c,
        Err(e @ ClassifyError::MissingEventHeader(_)) | Err(e @ ClassifyError::BadBody(_)) => {
            return error(StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    // After the signature: what a stranger sends cannot use up the host's allowance.
    if let Some(response) = admit(&state, &entry.receiver, classified.delivery_key.as_deref()).await
    {
        return response;
    }
    crate::observe::event(&classified.event);
    let (delivery_state, status, note) = match classified.disposition {
        Disposition::Handled => (DeliveryState::Pending, StatusCode::ACCEPTED, None),
        Disposition::Ping => (
            DeliveryState::Processed,
            StatusCode::OK,
            Some("pong".to_owned()),
        ),
        Disposition::Test => (
            DeliveryState::Processed,
            StatusCode::OK,
            Some(
                "test delivery: verified with the receiver's secret and stored; nothing applied"
                    .to_owned(),
            ),
        ),
        Disposition::Ignored => (
            DeliveryState::Ignored,
            StatusCode::OK,
            Some(format!(
                "ignored: no handler takes {} events",
                classified.event
            )),
        ),
    };
    let id = base.id;
    crate::observe::stored_as(id, delivery_state);
    let response_body = match &note {
        None => json!({ "delivery_id": id }),
        Some(note) => json!({ "delivery_id": id, "message": note }),
    };
    let new = NewDelivery {
        delivery_key: classified.delivery_key,
        event: classified.event,
        state: delivery_state,
        request_body: Some(body.to_vec()),
        response_status: status.as_u16(),
        response_body: response_body.to_string().into_bytes(),
        last_error: (delivery_state == DeliveryState::Ignored).then(|| note.unwrap_or_default()),
        ..base
    };
    match state.intake.record(new).await {
        Ok(Stored::New) => {
            if delivery_state == DeliveryState::Pending {
                state.worker_wake.notify_one();
            }
            reply(status, response_body)
        }
        Ok(Stored::Duplicate(original)) => duplicate(original),
        Err(e) => store_failed(&e),
    }
}

/// The most rows of requests that were not authenticated (`REJECTED` 401s and unsigned pings)
/// a receiver's log gains a minute (a burst of as many, then one a second). Past it such a
/// request is answered and counted all the same, and logged at `info`, but not stored: a
/// stranger who knows a receiver's URL cannot fill the database with attempts.
pub const REJECTED_LOGGED_PER_MINUTE: u32 = 60;

/// The most headers kept of a request that was not authenticated (the first, by name).
const UNAUTHENTICATED_HEADERS: usize = 32;

/// 401 with `reason` for a request that was not authenticated; `attempt` (what it claimed to
/// be, from its headers only) is logged as `REJECTED` with the same reason.
async fn rejected(state: &IngressState, attempt: NewDelivery, reason: String) -> Response {
    let response_body = json!({ "error": reason });
    let row = NewDelivery {
        state: DeliveryState::Rejected,
        response_status: StatusCode::UNAUTHORIZED.as_u16(),
        response_body: response_body.to_string().into_bytes(),
        last_error: Some(reason),
        ..attempt
    };
    log_unauthenticated(state, row).await;
    reply(StatusCode::UNAUTHORIZED, response_body)
}

/// Stores the row of a request that was not authenticated, unless the receiver's log has had
/// [`REJECTED_LOGGED_PER_MINUTE`] of them this minute. Only what its headers and path say is
/// kept, each value cut to [`Cap::UNAUTHENTICATED`], at most [`UNAUTHENTICATED_HEADERS`]
/// headers, and never its body: nothing a stranger chose beyond a few bytes.
async fn log_unauthenticated(state: &IngressState, row: NewDelivery) {
    let receiver = row.receiver_id;
    if state
        .rejected_log
        .check(receiver, REJECTED_LOGGED_PER_MINUTE)
        .is_err()
    {
        tracing::info!(%receiver, "unauthenticated request not stored: over {REJECTED_LOGGED_PER_MINUTE} a minute");
        return;
    }
    let cut = |value: String| bounded(value, Cap::UNAUTHENTICATED);
    let row = NewDelivery {
        delivery_key: row.delivery_key.map(cut),
        event: cut(row.event),
        path: cut(row.path),
        request_headers: row
            .request_headers
            .into_iter()
            .take(UNAUTHENTICATED_HEADERS)
            .map(|(name, value)| (cut(name), cut(value)))
            .collect(),
        request_body: None,
        ..row
    };
    if let Err(e) = state.intake.record(row).await {
        tracing::warn!(error = %e, "could not log an unauthenticated request");
    }
}

/// 200 with the original delivery's id: the receiver already has a delivery with this key, so
/// nothing is stored or processed again.
fn duplicate(original: Uuid) -> Response {
    crate::observe::duplicate(original);
    reply(
        StatusCode::OK,
        json!({ "delivery_id": original, "message": "duplicate delivery: already received" }),
    )
}

/// Takes one delivery from the receiver's `rate_limit_per_minute`, or answers it now. A delivery
/// key the receiver already has is answered as the duplicate it is without taking from the limit
/// (a host retrying what was stored must not crowd out new deliveries), so a limited receiver
/// pays one indexed read per keyed delivery; an unlimited one pays nothing.
async fn admit(state: &IngressState, receiver: &Receiver, key: Option<&str>) -> Option<Response> {
    if receiver.options.rate_limit_per_minute == 0 {
        return None;
    }
    if let Some(key) = key {
        match state.deliveries.find_by_key(receiver.id, key).await {
            Ok(Some(original)) => return Some(duplicate(original)),
            Ok(None) => {}
            Err(e) => return Some(store_failed(&e)),
        }
    }
    rate_limited(state, receiver)
}

/// A Bitbucket Server `diagnostics:ping` with no signature: the "Test connection" button of a
/// hook that has no secret, or anyone who knows the URL. It is only a ping: answered 200
/// `pong`, logged like a `REJECTED` attempt (headers only, capped a minute), with no body and
/// no delivery key, so it changes nothing, never counts against the rate limit and never makes
/// a later delivery with its key a duplicate.
async fn unsigned_ping(
    state: &IngressState,
    host: hosts::Host,
    headers: &HeaderMap,
    base: NewDelivery,
) -> Response {
    let response_body = json!({ "message": "pong" });
    let ping = NewDelivery {
        event: hosts::claimed(host, headers).event,
        state: DeliveryState::Processed,
        response_status: StatusCode::OK.as_u16(),
        response_body: response_body.to_string().into_bytes(),
        ..base
    };
    crate::observe::event(&ping.event);
    crate::observe::stored_as(ping.id, DeliveryState::Processed);
    log_unauthenticated(state, ping).await;
    reply(StatusCode::OK, response_body)
}

/// 429 with `Retry-After` when the receiver is over its `rate_limit_per_minute`.
fn rate_limited(state: &IngressState, receiver: &Receiver) -> Option<Response> {
    let limit = receiver.options.rate_limit_per_minute;
    let wait = state.rate_limiter.check(receiver.id, limit).err()?;
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = error(
        StatusCode::TOO_MANY_REQUESTS,
        format!("this receiver takes at most {limit} deliveries a minute; retry in {seconds} s"),
    );
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_str(&seconds.to_string()).expect("digits are a valid header value"),
    );
    Some(response)
}

/// A generic trigger call: `GET`, `POST` or `PUT`, the secret in the path or in `X-Hook-Secret`;
/// its sync requests are made in the same transaction as its delivery is stored, and the answer
/// says how many.
#[allow(clippy::too_many_arguments)]
async fn trigger(
    state: IngressState,
    entry: &ReceiverEntry,
    path_secret: Option<String>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
    receive_time: i64,
) -> Response {
    let receiver = &entry.receiver;
    if !matches!(method, Method::GET | Method::POST | Method::PUT) {
        let mut response = error(
            StatusCode::METHOD_NOT_ALLOWED,
            "generic trigger receivers take GET, POST or PUT",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, POST, PUT"));
        return response;
    }
    // The path as logged: never the secret.
    let mut path = match &path_secret {
        Some(_) => format!("/.api/webhooks/{}/[REDACTED]", receiver.id),
        None => uri.path().to_owned(),
    };
    if let Some(query) = uri.query() {
        path.push('?');
        path.push_str(query);
    }
    let base = NewDelivery {
        id: Uuid::now_v7(),
        receiver_id: receiver.id,
        delivery_key: headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_owned),
        event: "trigger".to_owned(),
        state: DeliveryState::Processed,
        receive_time,
        method: method.to_string(),
        path,
        request_headers: redacted_headers(&headers),
        request_body: None,
        response_status: 0,
        response_body: Vec::new(),
        last_error: None,
    };
    let secrets = entry.secrets.accepted_at(receive_time);
    // The header is read as GitLab's token is: one value, or refused (never "the first wins").
    let checked = match &path_secret {
        Some(s) if hosts::token_matches(s, &secrets) => Ok(()),
        Some(_) => Err(hosts::VerifyError::TokenMismatch),
        None => hosts::check_token(&headers, "X-Hook-Secret", &secrets),
    };
    if let Err(why) = checked {
        let reason = match why {
            hosts::VerifyError::Missing { .. } => "missing secret: put it in the URL (/.api/webhooks/<id>/<secret>) or in the X-Hook-Secret header".to_owned(),
            hosts::VerifyError::TokenMismatch | hosts::VerifyError::Mismatch => "secret does not match".to_owned(),
            malformed @ hosts::VerifyError::Malformed { .. } => malformed.to_string(),
        };
        let attempt = NewDelivery {
            delivery_key: None,
            ..base
        };
        return rejected(&state, attempt, reason).await;
    }
    if let Some(response) = admit(&state, receiver, base.delivery_key.as_deref()).await {
        return response;
    }
    let body = match read_capped(&headers, body, state.max_body_bytes).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let repository_param = uri.query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "repository")
            .map(|(_, v)| v.into_owned())
    });
    let target = match crate::trigger::target(&body, repository_param.as_deref()) {
        Ok(t) => t,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    if let crate::trigger::Target::Push { repository, .. } = &target
        && !repository.url.is_empty()
        && !crate::sync::on_code_host(&repository.url, &receiver.code_host_urn)
    {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "the push is of {} ({}), which is not on this receiver's code host {}",
                repository.name,
                repository.url,
                receiver.code_host_urn.as_str()
            ),
        );
    }
    let id = base.id;
    crate::observe::stored_as(id, DeliveryState::Processed);
    let event = match target {
        crate::trigger::Target::Push { .. } => "trigger/push",
        _ => "trigger",
    };
    let counted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let new = NewDelivery {
        event: event.to_owned(),
        request_body: Some(body.to_vec()),
        response_status: StatusCode::ACCEPTED.as_u16(),
        ..base
    };
    let receiver_for_txn = receiver.clone();
    let count_in_txn = counted.clone();
    let stored = state
        .deliveries
        .record_with(new, move |txn| {
            Box::pin(async move {
                let n = crate::trigger::request_syncs(txn, &receiver_for_txn, &target).await?;
                count_in_txn.store(n, std::sync::atomic::Ordering::SeqCst);
                // The log keeps the answer given, which only now says how many.
                let answer = json!({ "delivery_id": id, "sync_requests": n });
                DeliveryStore::set_response_body(txn, id, answer.to_string().into_bytes()).await
            })
        })
        .await;
    match stored {
        Ok(Stored::New) => {
            let n = counted.load(std::sync::atomic::Ordering::SeqCst);
            reply(
                StatusCode::ACCEPTED,
                json!({ "delivery_id": id, "sync_requests": n }),
            )
        }
        Ok(Stored::Duplicate(original)) => duplicate(original),
        Err(e) => store_failed(&e),
    }
}

/// Reads the body, refusing (413) one over `max` bytes before reading it when it says its
/// length, and as soon as it passes `max` when it does not.
async fn read_capped(headers: &HeaderMap, body: Body, max: usize) -> Result<Bytes, Response> {
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is over the {max}-byte limit"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, max).await.map_err(|e| {
        match crate::limits::BodyLimit::find(&e) {
            Some(crate::limits::BodyLimit::TimedOut) => return body_timed_out(),
            Some(
                limit @ (crate::limits::BodyLimit::OverBudget
                | crate::limits::BodyLimit::OverAddressBudget),
            ) => return overloaded(&limit.to_string()),
            None => {}
        }
        let over = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            || e.to_string().contains("length limit");
        if over {
            too_large()
        } else {
            error(
                StatusCode::BAD_REQUEST,
                format!("could not read the body: {e}"),
            )
        }
    })
}

/// 503 with `Retry-After: 1`, at once: the ingress is at one of its limits (`--max-inflight-requests`,
/// `--max-buffered-body-bytes`, or their per-address shares); `why` says which.
pub fn overloaded(why: &str) -> Response {
    crate::observe::outcome(crate::observe::Outcome::Overloaded);
    let mut response = error(StatusCode::SERVICE_UNAVAILABLE, why);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// 408: the body did not arrive within `--body-read-timeout`. The rest of it is not read, so the
/// connection is closed.
fn body_timed_out() -> Response {
    let mut response = error(
        StatusCode::REQUEST_TIMEOUT,
        "the body did not arrive in time; send it again",
    );
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
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
