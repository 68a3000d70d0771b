//! The delivery handler: a code host's `POST` to one of its receivers, in DESIGN.md's order:
//! method → body cap → verification on the raw bytes → event and delivery key → rate limit →
//! stored and committed → answered. Nothing is acknowledged with a 2xx before it is committed.

use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use serde_json::json;
use uuid::Uuid;

use super::observe;
use super::reply;
use super::request::{Arrival, read_capped, redacted_headers};
use super::state::IngressState;
use crate::deliveries::{DeliveryKey, DeliveryState, NewDelivery, Stored};
use crate::hosts::{self, ClassifyError, Disposition, Host, Verified};
use crate::receivers::ReceiverEntry;

/// Everything a delivery from `host` to the receiver of `entry` goes through.
pub async fn deliver(
    state: IngressState,
    entry: &ReceiverEntry,
    host: Host,
    arrival: Arrival,
) -> Response {
    let Arrival {
        method,
        uri,
        headers,
        body,
        receive_time,
    } = arrival;
    let receiver_id = entry.receiver.id;
    let kind = entry.receiver.code_host_kind;
    if method != Method::POST {
        return reply::method_not_allowed(format!("{kind} receivers take POST only"), "POST");
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
    let signing_keys = entry.secrets.signing_keys_at(receive_time);
    let checked = if host == Host::GitLab && !signing_keys.is_empty() {
        // A GitLab receiver with a signing token: the Standard Webhooks signature too.
        let keys: Vec<&[u8]> = signing_keys.iter().map(|k| k.as_slice()).collect();
        let check = hosts::standard_webhooks::SignatureCheck {
            keys: &keys,
            now: receive_time.micros().div_euclid(1_000_000),
            tolerance: entry.receiver.options.signature_tolerance,
        };
        let required = entry.receiver.options.require_signature;
        hosts::verify_gitlab_signed(&headers, &body, &secrets, &check, required)
    } else {
        hosts::verify(host, &headers, &body, &secrets)
    };
    let verified = match checked {
        Ok(verified) => verified,
        Err(why) => {
            let reason = why.to_string();
            tracing::info!(receiver = %receiver_id, %reason, "delivery rejected");
            // What the attempt claimed to be, for the log: from its headers, never its body.
            let claimed = hosts::claimed(host, &headers);
            let attempt = NewDelivery {
                delivery_key: claimed.delivery_key.as_deref().and_then(DeliveryKey::parse),
                event: claimed.event,
                ..base
            };
            return state.rejected(attempt, reason).await;
        }
    };
    if verified == Verified::UnsignedPing {
        return unsigned_ping(&state, host, &headers, base).await;
    }
    let classified = match hosts::classify_outline(host, &headers, &body) {
        Ok(c) => c,
        Err(
            e @ (ClassifyError::MissingEventHeader(_)
            | ClassifyError::BadBody(_)
            | ClassifyError::WrongHost(_)),
        ) => {
            return reply::error(StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    let delivery_key = classified
        .delivery_key
        .as_deref()
        .and_then(DeliveryKey::parse);
    // After the signature: what a stranger sends cannot use up the host's allowance.
    if let Some(response) = state.admit(&entry.receiver, delivery_key.as_ref()).await {
        return response;
    }
    observe::event(&classified.event);
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
    observe::stored_as(delivery_state);
    let response_body = match &note {
        None => json!({ "delivery_id": id }),
        Some(note) => json!({ "delivery_id": id, "message": note }),
    };
    let new = NewDelivery {
        delivery_key,
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
            observe::delivery(id);
            if delivery_state == DeliveryState::Pending {
                state.worker_wake.notify_one();
            }
            reply::reply(status, response_body)
        }
        Ok(Stored::Duplicate(original)) => state.duplicate(receiver_id, original),
        Err(e) => reply::store_failed(&e),
    }
}

/// A Bitbucket Server `diagnostics:ping` with no signature: the "Test connection" button of a
/// hook that has no secret, or anyone who knows the URL. It is only a ping: answered 200
/// `pong`, logged like a `REJECTED` attempt (headers only, capped a minute), with no body and
/// no delivery key, so it changes nothing, never counts against the rate limit and never makes
/// a later delivery with its key a duplicate.
async fn unsigned_ping(
    state: &IngressState,
    host: Host,
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
    let id = ping.id;
    observe::event(&ping.event);
    observe::stored_as(DeliveryState::Processed);
    if state.log_unauthenticated(ping).await {
        observe::delivery(id);
    }
    reply::reply(StatusCode::OK, response_body)
}
