//! The generic trigger: a plain "sync now" URL for systems that cannot sign (cron, a CI step, an
//! old code host), as Git Integration for Jira offers it. Its handler takes `GET`, `POST` or
//! `PUT` with the secret in the path or in `X-Hook-Secret`, and stores the call as a delivery in
//! the same transaction as the sync requests it makes.
//!
//! A call syncs one repository when its body is a GitHub or GitLab push payload (that push's
//! repository, with its refs) or when `?repository=<name>` names one; otherwise every repository
//! known for the receiver's code host ([`TriggerScope`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::{Method, StatusCode};
use axum::response::Response;
use sea_orm::{ConnectionTrait, DbErr};
use serde_json::{Value, json};
use uuid::Uuid;

use super::observe;
use super::reply;
use super::request::{Arrival, read_capped, redacted_headers};
use super::state::IngressState;
use crate::deliveries::{DeliveryKey, DeliveryState, DeliveryStore, NewDelivery, Stored};

use crate::hosts::effects::{Effect, RefUpdate, RepositoryRef};
use crate::hosts::{self, Host};
use crate::receivers::{Receiver, ReceiverEntry};
use crate::sync::Reason;
use crate::sync::requests;
use crate::text::{Cap, bounded};
use crate::time::Timestamp;

/// Which repositories a trigger call syncs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerScope {
    /// Every repository known for the receiver's code host.
    All,
    /// One repository, by name (`?repository=`).
    Named(String),
    /// The repository of a push payload, with the refs it changed.
    Push {
        repository: RepositoryRef,
        refs: Vec<RefUpdate>,
    },
}

/// A generic trigger call to the receiver of `entry`, its secret in the path (`path_secret`) or
/// in `X-Hook-Secret`; its sync requests are made in the same transaction as its delivery is
/// stored, and the answer says how many.
pub async fn call(
    state: IngressState,
    entry: &ReceiverEntry,
    path_secret: Option<String>,
    arrival: Arrival,
) -> Response {
    let Arrival {
        method,
        uri,
        headers,
        body,
        receive_time,
    } = arrival;
    let receiver = &entry.receiver;
    if !matches!(method, Method::GET | Method::POST | Method::PUT) {
        return reply::method_not_allowed(
            "generic trigger receivers take GET, POST or PUT",
            "GET, POST, PUT",
        );
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
            .and_then(DeliveryKey::parse),
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
            hosts::VerifyError::TokenMismatch | hosts::VerifyError::Mismatch | hosts::VerifyError::CredentialMismatch { .. } => "secret does not match".to_owned(),
            malformed @ hosts::VerifyError::Malformed { .. } => malformed.to_string(),
            stale @ hosts::VerifyError::StaleTimestamp { .. } => stale.to_string(),
        };
        let attempt = NewDelivery {
            delivery_key: None,
            ..base
        };
        return state.rejected(attempt, reason).await;
    }
    if let Some(response) = state.admit(receiver, base.delivery_key.as_ref()).await {
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
    let scope = match scope(&body, repository_param.as_deref()) {
        Ok(s) => s,
        Err(message) => return reply::error(StatusCode::BAD_REQUEST, message),
    };
    if let TriggerScope::Push { repository, .. } = &scope
        && !repository.url.is_empty()
        && !crate::sync::on_code_host(&repository.url, &receiver.code_host_urn)
    {
        return reply::error(
            StatusCode::BAD_REQUEST,
            format!(
                "the push is of {} ({}), which is not on this receiver's code host {}",
                repository.name,
                repository.url,
                receiver.code_host_urn.as_str()
            ),
        );
    }
    // A name is only ever one hookgate knows: a typo must not make a repository with no URL and
    // a sync request no worker can clone.
    if let TriggerScope::Named(name) = &scope {
        let urn = receiver.code_host_urn.as_str();
        match crate::sync::repositories::known(&state.db, urn, name).await {
            Ok(true) => {}
            Ok(false) => {
                return reply::error(
                    StatusCode::NOT_FOUND,
                    format!(
                        "no repository {name:?} is known for {urn}: check the name, or register it first (RepositoryService/RegisterRepository, `hookgate repository register`)"
                    ),
                );
            }
            Err(e) => return reply::store_failed(&e.into()),
        }
    }
    let id = base.id;
    observe::stored_as(DeliveryState::Processed);
    let event = match scope {
        TriggerScope::Push { .. } => "trigger/push",
        _ => "trigger",
    };
    let counted = Arc::new(AtomicUsize::new(0));
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
                let n = request_syncs(txn, &receiver_for_txn, id, &scope).await?;
                count_in_txn.store(n, Ordering::SeqCst);
                // The log keeps the answer given, which only now says how many.
                let answer = json!({ "delivery_id": id, "sync_requests": n });
                DeliveryStore::set_response_body(txn, id, answer.to_string().into_bytes()).await
            })
        })
        .await;
    match stored {
        Ok(Stored::New) => {
            observe::delivery(id);
            let n = counted.load(Ordering::SeqCst);
            reply::reply(
                StatusCode::ACCEPTED,
                json!({ "delivery_id": id, "sync_requests": n }),
            )
        }
        Ok(Stored::Duplicate(original)) => state.duplicate(receiver.id, original),
        Err(e) => reply::store_failed(&e),
    }
}

/// Reads what a call asks for; `Err` with a message for a 400.
pub fn scope(body: &[u8], repository_param: Option<&str>) -> Result<TriggerScope, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(match repository_param.map(str::trim) {
            Some(name) if !name.is_empty() => {
                TriggerScope::Named(bounded(name.trim_matches('/'), Cap::NAME))
            }
            _ => TriggerScope::All,
        });
    }
    let not_push = "the body must be empty, or a GitHub or GitLab push payload";
    let payload: Value = serde_json::from_slice(body).map_err(|_| not_push.to_owned())?;
    let (host, event) = match payload.get("object_kind").and_then(Value::as_str) {
        Some("push") => (Host::GitLab, "Push Hook"),
        Some("tag_push") => (Host::GitLab, "Tag Push Hook"),
        _ if payload.pointer("/repository/full_name").is_some() && payload.get("ref").is_some() => {
            (Host::GitHub, "push")
        }
        _ => return Err(not_push.to_owned()),
    };
    let effects = hosts::effects(host, event, &payload).map_err(|e| e.to_string())?;
    match effects.into_iter().next() {
        Some(Effect::Push(push)) => Ok(TriggerScope::Push {
            repository: push.repository,
            refs: push.refs,
        }),
        _ => Err(not_push.to_owned()),
    }
}

/// Requests the syncs `scope` asks for (by the trigger call stored as delivery `delivery_id`), on
/// `conn`; returns how many requests were made or joined. Repositories the receiver does not act
/// on (`ignore_unmatched`) are left out; a push is synced as a code host's push event is
/// ([`crate::sync::request_push_sync`]).
pub async fn request_syncs<C: ConnectionTrait>(
    conn: &C,
    receiver: &Receiver,
    delivery_id: uuid::Uuid,
    scope: &TriggerScope,
) -> Result<usize, DbErr> {
    let urn = receiver.code_host_urn.as_str();
    let strict = receiver.options.ignore_unmatched;
    let now = Timestamp::now();
    let rows = match scope {
        TriggerScope::All => {
            let rows = crate::sync::repositories::all_of(conn, urn).await?;
            rows.into_iter()
                .filter(|r| !strict || r.registered)
                .collect::<Vec<_>>()
        }
        TriggerScope::Named(name) => {
            let seen = RepositoryRef {
                name: name.clone(),
                external_id: String::new(),
                url: String::new(),
                clone_urls: Vec::new(),
            };
            // Known (checked before the delivery was stored), so never created here.
            let row =
                crate::sync::repositories::seen(conn, urn, &seen, false, Some(receiver.id), now)
                    .await?;
            row.into_iter()
                .filter(|r| !strict || r.registered)
                .collect()
        }
        TriggerScope::Push { repository, refs } => {
            // A push the receiver's rules skip makes no request; the answer's count says so.
            let made =
                crate::sync::request_push_sync(conn, receiver, repository, refs, delivery_id, now)
                    .await?;
            return Ok(usize::from(made.is_ok()));
        }
    };
    for row in &rows {
        requests::request(
            conn,
            row,
            crate::sync::feed::Source::delivery(receiver.id, delivery_id),
            &[],
            receiver.options.min_sync_interval,
            Reason::Trigger,
            now,
        )
        .await?;
    }
    Ok(rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_body_syncs_all_or_the_named_repository() {
        assert_eq!(scope(b"", None), Ok(TriggerScope::All));
        assert_eq!(scope(b"  \n", Some("")), Ok(TriggerScope::All));
        assert_eq!(
            scope(b"", Some("group/app")),
            Ok(TriggerScope::Named("group/app".into()))
        );
    }

    #[test]
    fn a_github_or_gitlab_push_payload_names_its_repository_and_refs() {
        let github = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/github/push.branch-updated.json"),
        )
        .unwrap();
        let Ok(TriggerScope::Push { repository, refs }) = scope(&github, None) else {
            panic!("a GitHub push is a push scope");
        };
        assert_eq!(repository.name, "Codertocat/Hello-World");
        assert_eq!(refs[0].name, "refs/heads/master");

        let gitlab = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/gitlab/push.json"),
        )
        .unwrap();
        let Ok(TriggerScope::Push { repository, .. }) = scope(&gitlab, None) else {
            panic!("a GitLab push is a push scope");
        };
        assert_eq!(repository.name, "mike/diaspora");
    }

    #[test]
    fn any_other_body_is_refused() {
        assert!(scope(b"not json", None).is_err());
        assert!(scope(br#"{"hello": "world"}"#, None).is_err());
    }
}
