//! GitLab signing tokens (Standard Webhooks) end to end: the real service on port 0, on SQLite and
//! PostgreSQL, taking real GitLab fixtures signed in the test with tokens made through the admin
//! API: what passes, what is refused 401 and why the log says so, the `require_signature` option,
//! rotation with overlap, the test delivery, and that the token is shown once and sealed at rest.

mod common;

use std::time::Duration;

use common::{Engine, TestApp, fixture, host_headers, json_body};
use hookgate::admin::proto::{
    CodeHostKind, CreateReceiverRequest, DeliveryState, GetReceiverRequest, ListDeliveriesRequest,
    ListReceiversRequest, ReceiverOptions, RotateReceiverSigningTokenRequest,
    SendTestDeliveryRequest, UpdateReceiverRequest,
};
use hookgate::hosts::standard_webhooks::sign;
use hookgate::receivers::SigningToken;
use prost::Message;
use sea_orm::{ConnectionTrait, Database, Statement};
use tonic::Code;

use CodeHostKind::{Github as Gh, Gitlab as Gl};

on_both_engines!(
    a_signed_delivery_is_accepted_and_keyed_by_its_webhook_id,
    wrong_missing_or_stale_signatures_are_refused_with_the_reason_in_the_log,
    by_default_both_the_token_and_the_signature_are_required,
    without_require_signature_either_credential_is_enough_and_each_given_must_match,
    a_rotation_with_overlap_accepts_the_old_and_new_token_and_without_it_only_the_new,
    the_token_is_shown_once_never_read_back_and_sealed_at_rest,
    tokens_on_other_kinds_and_malformed_tokens_are_refused_and_change_nothing,
    the_test_delivery_of_a_receiver_with_a_signing_token_is_signed_and_passes,
    the_signature_options_are_kept_and_updated,
);

const URN: &str = "https://gitlab.example.com";

/// A store over the test service's database, with the key the service made.
async fn store(app: &TestApp) -> hookgate::receivers::ReceiverStore {
    let db = hookgate::db::connect(&app.db.url)
        .await
        .expect("the test database opens");
    let secrets = hookgate::secret_key::prepare(&db, None, app.db.dir.path())
        .await
        .expect("the service's key opens the test database");
    hookgate::receivers::ReceiverStore::new(db, secrets)
}

/// Now, in Unix seconds.
fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// A GitLab receiver with a generated signing token and `options`: (id, secret, token).
async fn signed_receiver(
    app: &TestApp,
    name: &str,
    options: ReceiverOptions,
) -> (String, String, String) {
    let created = app
        .receivers()
        .await
        .create_receiver(app.req(CreateReceiverRequest {
            name: name.to_owned(),
            code_host_kind: Gl as i32,
            code_host_urn: URN.to_owned(),
            generate_signing_token: true,
            options: Some(options),
            ..Default::default()
        }))
        .await
        .expect("the receiver is created")
        .into_inner();
    let receiver = created.receiver.expect("a receiver");
    assert!(receiver.has_signing_token);
    (receiver.id, created.secret, created.signing_token)
}

/// The Standard Webhooks headers for `body` signed with `token` at `timestamp`.
fn signature_headers(
    token: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let key = SigningToken::parse(token).expect("a valid token").key();
    vec![
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", sign(&key, id, timestamp, body)),
    ]
}

/// A GitLab merge request delivery carrying the token (when given) and signed with the signing
/// token (when given), `webhook-id` being `id`.
fn delivery(
    secret: Option<&str>,
    token: Option<&str>,
    id: &str,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let mut headers = host_headers(Gl, "Merge Request Hook", &uuid(), secret, body);
    if let Some(token) = token {
        headers.extend(signature_headers(token, id, now(), body));
    }
    headers
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn replace(headers: &mut Vec<(&'static str, String)>, name: &str, value: String) {
    for (n, v) in headers.iter_mut() {
        if *n == name {
            *v = value.clone();
        }
    }
}

/// POSTs and returns the status and the answer's `error` (empty when none).
async fn post(app: &TestApp, id: &str, headers: &[(&str, String)], body: &[u8]) -> (u16, String) {
    let r = app.post(id, headers, body.to_vec()).await;
    let status = r.status().as_u16();
    let answer = json_body(r).await;
    (
        status,
        answer["error"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn a_signed_delivery_is_accepted_and_keyed_by_its_webhook_id(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, secret, token) = signed_receiver(&app, "gl", ReceiverOptions::default()).await;
    let body = fixture("gitlab/merge_request.open.json");
    let webhook_id = format!("msg_{}", uuid());
    let headers = delivery(Some(&secret), Some(&token), &webhook_id, &body);
    let r = app.post(&id, &headers, body.clone()).await;
    assert_eq!(r.status(), 202);
    let delivery_id = json_body(r).await["delivery_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let stored = app.get_delivery(&delivery_id).await;
    assert_eq!(stored.delivery_key, webhook_id);
    assert_eq!(stored.event, "Merge Request Hook/open");
    // The same webhook-id again (GitLab's retry) is the same delivery.
    let again = delivery(Some(&secret), Some(&token), &webhook_id, &body);
    let r = app.post(&id, &again, body.clone()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(json_body(r).await["delivery_id"], delivery_id.as_str());

    // Several signatures, one of them valid (GitLab during its own key rotation).
    let push = fixture("gitlab/push.json");
    let mut headers = host_headers(Gl, "Push Hook", &uuid(), Some(&secret), &push);
    let ts = now();
    let other = SigningToken::generate();
    let wrong = sign(&other.key(), "msg_several", ts, &push);
    let right = sign(
        &SigningToken::parse(&token).unwrap().key(),
        "msg_several",
        ts,
        &push,
    );
    headers.extend([
        ("webhook-id", "msg_several".to_owned()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", format!("{wrong} {right}")),
    ]);
    assert_eq!(post(&app, &id, &headers, &push).await.0, 202);
    app.stop().await;
}

async fn wrong_missing_or_stale_signatures_are_refused_with_the_reason_in_the_log(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, secret, token) = signed_receiver(&app, "gl", ReceiverOptions::default()).await;
    let body = fixture("gitlab/note.merge_request.json");

    // Signed with another token.
    let other = SigningToken::generate();
    let forged = delivery(Some(&secret), Some(other.expose()), "msg_forged", &body);
    assert_eq!(
        post(&app, &id, &forged, &body).await,
        (401, "signature does not match".to_owned())
    );
    let rejected = app
        .deliveries()
        .await
        .list_deliveries(app.req(ListDeliveriesRequest {
            states: vec![DeliveryState::Rejected as i32],
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .deliveries;
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].last_error, "signature does not match");
    assert_eq!(rejected[0].delivery_key, "msg_forged");

    // The body changed after signing.
    let mut tampered = delivery(Some(&secret), Some(&token), "msg_t", &body);
    let mut other_body = body.clone();
    other_body.push(b' ');
    replace(&mut tampered, "webhook-id", "msg_t".into());
    assert_eq!(post(&app, &id, &tampered, &other_body).await.0, 401);

    // Each header missing in turn.
    for missing in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let mut headers = delivery(Some(&secret), Some(&token), "msg_m", &body);
        headers.retain(|(n, _)| *n != missing);
        assert_eq!(
            post(&app, &id, &headers, &body).await,
            (401, format!("missing {missing}"))
        );
    }

    // Older and newer than the tolerance (5 minutes), correctly signed.
    for skew in [-301i64, 301] {
        let mut headers = host_headers(Gl, "Note Hook", &uuid(), Some(&secret), &body);
        headers.extend(signature_headers(&token, "msg_s", now() + skew, &body));
        let (status, error) = post(&app, &id, &headers, &body).await;
        assert_eq!(status, 401, "skew {skew}");
        assert!(
            error.starts_with("webhook-timestamp is") && error.contains("at most 300s"),
            "{error}"
        );
    }
    // Within it: accepted.
    let mut headers = host_headers(Gl, "Note Hook", &uuid(), Some(&secret), &body);
    headers.extend(signature_headers(&token, "msg_ok", now() - 120, &body));
    assert_eq!(post(&app, &id, &headers, &body).await.0, 202);

    // Not a timestamp; not a v1 signature.
    let mut headers = delivery(Some(&secret), Some(&token), "msg_x", &body);
    replace(&mut headers, "webhook-timestamp", "yesterday".into());
    let (status, error) = post(&app, &id, &headers, &body).await;
    assert_eq!(status, 401);
    assert!(error.starts_with("malformed webhook-timestamp"), "{error}");
    let mut headers = delivery(Some(&secret), Some(&token), "msg_y", &body);
    replace(
        &mut headers,
        "webhook-signature",
        format!("sha256={}", "ab".repeat(32)),
    );
    let (status, error) = post(&app, &id, &headers, &body).await;
    assert_eq!(status, 401);
    assert!(error.starts_with("malformed webhook-signature"), "{error}");
    app.stop().await;
}

async fn by_default_both_the_token_and_the_signature_are_required(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, secret, token) = signed_receiver(&app, "gl", ReceiverOptions::default()).await;
    let body = fixture("gitlab/push.json");
    // The token alone: the signature is missing.
    let token_only = delivery(Some(&secret), None, "", &body);
    assert_eq!(
        post(&app, &id, &token_only, &body).await,
        (401, "missing webhook-id".to_owned())
    );
    // The signature alone: the token is missing.
    let signed_only = delivery(None, Some(&token), "msg_1", &body);
    assert_eq!(
        post(&app, &id, &signed_only, &body).await,
        (401, "missing X-Gitlab-Token".to_owned())
    );
    // Signed, with a wrong token.
    let wrong_token = delivery(Some("not-the-secret"), Some(&token), "msg_2", &body);
    assert_eq!(
        post(&app, &id, &wrong_token, &body).await,
        (401, "token does not match".to_owned())
    );
    // Both.
    let both = delivery(Some(&secret), Some(&token), "msg_3", &body);
    assert_eq!(post(&app, &id, &both, &body).await.0, 202);
    // A GitLab receiver without a signing token is as before: the token alone.
    let (plain, plain_secret) = app.create_receiver("gl-plain", Gl, URN).await;
    let token_only = delivery(Some(&plain_secret), None, "", &body);
    assert_eq!(post(&app, &plain, &token_only, &body).await.0, 202);
    app.stop().await;
}

async fn without_require_signature_either_credential_is_enough_and_each_given_must_match(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let options = ReceiverOptions {
        require_signature: Some(false),
        ..Default::default()
    };
    let (id, secret, token) = signed_receiver(&app, "gl", options).await;
    let body = fixture("gitlab/pipeline.json");
    let token_only = delivery(Some(&secret), None, "", &body);
    assert_eq!(post(&app, &id, &token_only, &body).await.0, 202);
    let signed_only = delivery(None, Some(&token), "msg_1", &body);
    assert_eq!(post(&app, &id, &signed_only, &body).await.0, 202);
    let both = delivery(Some(&secret), Some(&token), "msg_2", &body);
    assert_eq!(post(&app, &id, &both, &body).await.0, 202);
    // A credential that is there must match.
    let other = SigningToken::generate();
    let bad_signature = delivery(Some(&secret), Some(other.expose()), "msg_3", &body);
    assert_eq!(
        post(&app, &id, &bad_signature, &body).await,
        (401, "signature does not match".to_owned())
    );
    let bad_token = delivery(Some("not-the-secret"), Some(&token), "msg_4", &body);
    assert_eq!(
        post(&app, &id, &bad_token, &body).await,
        (401, "token does not match".to_owned())
    );
    // Neither.
    let neither = delivery(None, None, "", &body);
    assert_eq!(
        post(&app, &id, &neither, &body).await,
        (401, "missing X-Gitlab-Token".to_owned())
    );
    app.stop().await;
}

async fn a_rotation_with_overlap_accepts_the_old_and_new_token_and_without_it_only_the_new(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let (id, secret, old) = signed_receiver(&app, "gl", ReceiverOptions::default()).await;
    let body = fixture("gitlab/merge_request.update.json");
    let given = SigningToken::generate();
    let before = now();
    let rotated = app
        .receivers()
        .await
        .rotate_receiver_signing_token(app.req(RotateReceiverSigningTokenRequest {
            id: id.clone(),
            signing_token: given.expose().to_owned(),
            overlap: Some(prost_types::Duration {
                seconds: 3600,
                nanos: 0,
            }),
        }))
        .await
        .expect("rotated")
        .into_inner();
    assert_eq!(rotated.signing_token, given.expose());
    let expire_time = rotated
        .previous_signing_token_expire_time
        .expect("an overlap");
    let expires = expire_time.seconds;
    assert!(
        (before + 3600..=now() + 3600).contains(&expires),
        "{expires}"
    );
    for (n, token) in [old.as_str(), given.expose()].into_iter().enumerate() {
        let headers = delivery(Some(&secret), Some(token), &format!("msg_o{n}"), &body);
        assert_eq!(post(&app, &id, &headers, &body).await.0, 202, "token {n}");
    }
    // Up to its expiry, and no longer: the keys the ingress checks at either side of it.
    let secrets = store(&app)
        .await
        .secrets(uuid::Uuid::parse_str(&id).unwrap())
        .await
        .unwrap();
    let key_of = |t: &str| SigningToken::parse(t).unwrap().key().to_vec();
    let expire = hookgate::time::Timestamp::from_proto(&expire_time);
    let keys = |at| -> Vec<Vec<u8>> {
        secrets
            .signing_keys_at(at)
            .iter()
            .map(|k| k.to_vec())
            .collect()
    };
    assert_eq!(
        keys(expire.minus(Duration::from_secs(1))),
        vec![key_of(given.expose()), key_of(&old)]
    );
    assert_eq!(keys(expire), vec![key_of(given.expose())], "expired");
    // Rotated again without overlap: only the newest one.
    let newest = app
        .receivers()
        .await
        .rotate_receiver_signing_token(app.req(RotateReceiverSigningTokenRequest {
            id: id.clone(),
            ..Default::default()
        }))
        .await
        .expect("rotated")
        .into_inner();
    assert!(newest.previous_signing_token_expire_time.is_none());
    SigningToken::parse(&newest.signing_token).expect("a generated token is valid");
    for (n, token) in [old.as_str(), given.expose()].into_iter().enumerate() {
        let headers = delivery(Some(&secret), Some(token), &format!("msg_n{n}"), &body);
        assert_eq!(
            post(&app, &id, &headers, &body).await,
            (401, "signature does not match".to_owned()),
            "token {n}"
        );
    }
    let headers = delivery(Some(&secret), Some(&newest.signing_token), "msg_new", &body);
    assert_eq!(post(&app, &id, &headers, &body).await.0, 202);

    // A GitLab receiver without a token gets its first one by rotation.
    let (plain, plain_secret) = app.create_receiver("gl-plain", Gl, URN).await;
    let first = app
        .receivers()
        .await
        .rotate_receiver_signing_token(app.req(RotateReceiverSigningTokenRequest {
            id: plain.clone(),
            overlap: Some(prost_types::Duration {
                seconds: 60,
                nanos: 0,
            }),
            ..Default::default()
        }))
        .await
        .expect("a first token")
        .into_inner();
    assert!(first.receiver.unwrap().has_signing_token);
    assert!(first.previous_signing_token_expire_time.is_none());
    let token_only = delivery(Some(&plain_secret), None, "", &body);
    assert_eq!(post(&app, &plain, &token_only, &body).await.0, 401);
    let both = delivery(Some(&plain_secret), Some(&first.signing_token), "m", &body);
    assert_eq!(post(&app, &plain, &both, &body).await.0, 202);
    app.stop().await;
}

/// The receivers' signing token columns, as stored.
async fn raw_tokens(url: &str) -> Vec<(Option<String>, Option<String>)> {
    let db = Database::connect(url).await.expect("the database opens");
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT signing_token, previous_signing_token FROM receivers ORDER BY create_time, id",
        ))
        .await
        .expect("the receivers are read");
    let raw = rows
        .iter()
        .map(|r| {
            (
                r.try_get("", "signing_token").unwrap(),
                r.try_get("", "previous_signing_token").unwrap(),
            )
        })
        .collect();
    db.close().await.ok();
    raw
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

async fn the_token_is_shown_once_never_read_back_and_sealed_at_rest(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let given = SigningToken::generate();
    let created = app
        .receivers()
        .await
        .create_receiver(app.req(CreateReceiverRequest {
            name: "gl".to_owned(),
            code_host_kind: Gl as i32,
            code_host_urn: URN.to_owned(),
            signing_token: given.expose().to_owned(),
            ..Default::default()
        }))
        .await
        .expect("created")
        .into_inner();
    assert_eq!(created.signing_token, given.expose());
    let id = created.receiver.unwrap().id;
    let rotated = app
        .receivers()
        .await
        .rotate_receiver_signing_token(app.req(RotateReceiverSigningTokenRequest {
            id: id.clone(),
            overlap: Some(prost_types::Duration {
                seconds: 600,
                nanos: 0,
            }),
            ..Default::default()
        }))
        .await
        .expect("rotated")
        .into_inner();
    let tokens = [given.expose().to_owned(), rotated.signing_token.clone()];

    let got = app
        .receivers()
        .await
        .get_receiver(app.req(GetReceiverRequest { id: id.clone() }))
        .await
        .unwrap()
        .into_inner();
    assert!(got.has_signing_token);
    let listed = app
        .receivers()
        .await
        .list_receivers(app.req(ListReceiversRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let got_bytes = got.encode_to_vec();
    let listed_bytes = listed.encode_to_vec();
    for token in &tokens {
        let base64 = token.strip_prefix("whsec_").unwrap();
        for bytes in [&got_bytes, &listed_bytes] {
            assert!(!contains(bytes, base64), "a token is read back");
        }
    }
    // A GitLab receiver without one says so.
    let (plain, _) = app.create_receiver("gl-plain", Gl, URN).await;
    let plain = app
        .receivers()
        .await
        .get_receiver(app.req(GetReceiverRequest { id: plain }))
        .await
        .unwrap()
        .into_inner();
    assert!(!plain.has_signing_token);

    let db = app.shut_down().await;
    let raw = raw_tokens(&db.url).await;
    let (current, previous) = &raw[0];
    let (current, previous) = (current.as_deref().unwrap(), previous.as_deref().unwrap());
    assert_eq!(raw[1], (None, None));
    for token in &tokens {
        let base64 = token.strip_prefix("whsec_").unwrap();
        for stored in [current, previous] {
            assert!(!stored.contains(base64), "a token is stored as it is");
        }
    }
    assert_ne!(current, previous);
    // Still opens after a restart: the newest token verifies.
    let app = TestApp::start(db, |_| {}).await;
    let body = fixture("gitlab/push.json");
    let headers = delivery(Some(&created.secret), Some(&tokens[1]), "msg_r", &body);
    assert_eq!(post(&app, &id, &headers, &body).await.0, 202);
    app.stop().await;
}

async fn tokens_on_other_kinds_and_malformed_tokens_are_refused_and_change_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let mut client = app.receivers().await;
    let create = |kind: CodeHostKind, token: &str, generate: bool| CreateReceiverRequest {
        name: "r".to_owned(),
        code_host_kind: kind as i32,
        code_host_urn: if kind == Gl {
            URN
        } else {
            "https://github.com"
        }
        .to_owned(),
        signing_token: token.to_owned(),
        generate_signing_token: generate,
        ..Default::default()
    };
    let good = SigningToken::generate();
    for (request, expected) in [
        (
            create(Gh, "", true),
            "only GITLAB receivers hold a signing token",
        ),
        (
            create(Gh, good.expose(), false),
            "only GITLAB receivers hold a signing token",
        ),
        (
            create(Gl, "secret-token-value", false),
            "must start with \"whsec_\"",
        ),
        (
            create(Gl, "whsec_c2hvcnQ=", false),
            "this one holds 5 bytes",
        ),
        (create(Gl, "whsec_%%%", false), "standard base64"),
        (create(Gl, good.expose(), true), "not both"),
    ] {
        let e = client.create_receiver(app.req(request)).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{}", e.message());
        assert!(e.message().contains(expected), "{}", e.message());
    }
    let listed = client
        .list_receivers(app.req(ListReceiversRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size, 0, "nothing was created");

    let (github, _) = app.create_receiver("gh", Gh, "https://github.com").await;
    let e = client
        .rotate_receiver_signing_token(app.req(RotateReceiverSigningTokenRequest {
            id: github.clone(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message()
            .contains("GITHUB receiver; only GITLAB receivers"),
        "{}",
        e.message()
    );
    let (gitlab, _) = app.create_receiver("gl", Gl, URN).await;
    let e = client
        .rotate_receiver_signing_token(app.req(RotateReceiverSigningTokenRequest {
            id: gitlab.clone(),
            signing_token: "whsec_".to_owned(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("holds 0 bytes"), "{}", e.message());
    for id in [github, gitlab] {
        let r = client
            .get_receiver(app.req(GetReceiverRequest { id }))
            .await
            .unwrap()
            .into_inner();
        assert!(!r.has_signing_token, "{r:?}");
    }
    app.stop().await;
}

async fn the_test_delivery_of_a_receiver_with_a_signing_token_is_signed_and_passes(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    for (name, require) in [("strict", true), ("lenient", false)] {
        let options = ReceiverOptions {
            require_signature: Some(require),
            ..Default::default()
        };
        let (id, _, _) = signed_receiver(&app, name, options).await;
        let sent = app
            .receivers()
            .await
            .send_test_delivery(app.req(SendTestDeliveryRequest { id }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(sent.http_status, 200, "{}", sent.message);
        let d = app.get_delivery(&sent.delivery_id).await;
        assert!(d.request_headers.contains_key("webhook-signature"), "{d:?}");
        assert_eq!(d.event, "Push Hook (test delivery)");
    }
    app.stop().await;
}

async fn the_signature_options_are_kept_and_updated(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, secret, token) = signed_receiver(&app, "gl", ReceiverOptions::default()).await;
    let mut client = app.receivers().await;
    let got = client
        .get_receiver(app.req(GetReceiverRequest { id: id.clone() }))
        .await
        .unwrap()
        .into_inner();
    let options = got.options.clone().unwrap();
    assert_eq!(options.signature_tolerance.unwrap().seconds, 300);
    assert_eq!(options.require_signature, Some(true));

    // A tolerance of 10 minutes: a delivery 8 minutes old passes.
    let mut receiver = got.clone();
    receiver.options = Some(ReceiverOptions {
        signature_tolerance: Some(prost_types::Duration {
            seconds: 600,
            nanos: 0,
        }),
        require_signature: Some(false),
        ..Default::default()
    });
    let updated = client
        .update_receiver(app.req(UpdateReceiverRequest {
            receiver: Some(receiver.clone()),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["options.signature_tolerance".into()],
            }),
        }))
        .await
        .unwrap()
        .into_inner();
    let options = updated.options.unwrap();
    assert_eq!(options.signature_tolerance.unwrap().seconds, 600);
    assert_eq!(options.require_signature, Some(true), "not in the mask");
    let body = fixture("gitlab/push.json");
    let mut headers = host_headers(Gl, "Push Hook", &uuid(), Some(&secret), &body);
    headers.extend(signature_headers(&token, "msg_old", now() - 480, &body));
    assert_eq!(post(&app, &id, &headers, &body).await.0, 202);

    let updated = client
        .update_receiver(app.req(UpdateReceiverRequest {
            receiver: Some(receiver.clone()),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["options.require_signature".into()],
            }),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.options.unwrap().require_signature, Some(false));
    let token_only = delivery(Some(&secret), None, "", &body);
    assert_eq!(post(&app, &id, &token_only, &body).await.0, 202);

    // Bad tolerances are refused with what is allowed.
    for (seconds, nanos, expected) in [
        (2 * 24 * 3600, 0, "longer than the maximum of 1day"),
        (10, 500_000_000, "whole seconds"),
        (-1, 0, "non-negative duration"),
    ] {
        let mut bad = receiver.clone();
        bad.options = Some(ReceiverOptions {
            signature_tolerance: Some(prost_types::Duration { seconds, nanos }),
            ..Default::default()
        });
        let e = client
            .update_receiver(app.req(UpdateReceiverRequest {
                receiver: Some(bad),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["options.signature_tolerance".into()],
                }),
            }))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().contains(expected), "{}", e.message());
    }
    app.stop().await;
}
