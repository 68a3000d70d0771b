//! Receiver health against the real service on both engines, reached by real traffic: real
//! signed fixture payloads, wrong signatures, repositories not registered, a rate limit, a
//! handler that fails. Each diagnosis is checked with its counts and its sentence, as
//! `GetReceiverHealth` and `ListReceivers` with the health view give them.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{Engine, TestApp, TestDatabase, fixture, host_headers, json_body};
use hookgate::admin::proto::{
    CodeHostKind, DeliveryState, Diagnosis, GetReceiverHealthRequest, ListDeliveriesRequest,
    ListReceiversRequest, ReceiverHealth, ReceiverOptions, ReceiverView,
};
use hookgate::deliveries::{ClaimedDelivery, Handler, HandlerError, Outcome};
use hookgate::hosts::Classified;
use hookgate::receivers::Receiver;
use sea_orm::{ConnectionTrait, Database, DatabaseTransaction};
use tonic::Code;

on_both_engines!(
    a_fresh_receiver_is_never_received_and_says_its_url,
    processed_deliveries_and_a_duplicate_are_counted_and_healthy,
    wrong_signatures_make_it_signature_failing_until_a_right_one_comes,
    deliveries_of_unregistered_repositories_are_ignoring_with_how_to_register,
    requests_over_the_rate_limit_make_it_rate_limited,
    a_handler_that_fails_makes_it_failing_with_the_last_error,
    traffic_that_stopped_a_day_ago_is_silent,
    the_health_view_of_list_receivers_gives_each_its_health_and_the_basic_view_none,
    health_of_a_bad_or_unknown_id_is_refused_with_a_clear_message,
);

const GITHUB: &str = "https://github.com";

/// `GetReceiverHealth` of `id`.
async fn health(app: &TestApp, id: &str) -> ReceiverHealth {
    app.receivers()
        .await
        .get_receiver_health(app.req(GetReceiverHealthRequest { id: id.to_owned() }))
        .await
        .expect("the receiver's health")
        .into_inner()
}

/// Posts the real `pull_request.opened` fixture to `receiver` under `key`, signed with
/// `secret`; returns the HTTP status and the answer.
async fn post_pull_request(
    app: &TestApp,
    receiver: &str,
    key: &str,
    secret: &str,
) -> (u16, serde_json::Value) {
    let body = fixture("github/pull_request.opened.json");
    let headers = host_headers(
        CodeHostKind::Github,
        "pull_request",
        key,
        Some(secret),
        &body,
    );
    let answer = app.post(receiver, &headers, body).await;
    let status = answer.status().as_u16();
    (status, json_body(answer).await)
}

/// Posts a signed `pull_request.opened` under a fresh key, expects it accepted, and waits until
/// the worker is done with it.
async fn deliver_pull_request(
    app: &TestApp,
    receiver: &(String, String),
) -> hookgate::admin::proto::Delivery {
    let key = uuid::Uuid::new_v4().to_string();
    let (status, answer) = post_pull_request(app, &receiver.0, &key, &receiver.1).await;
    assert_eq!(status, 202, "{answer}");
    app.wait_until_done(answer["delivery_id"].as_str().expect("a delivery id"))
        .await
}

/// A time as microseconds since the epoch, to compare.
fn micros(t: &Option<prost_types::Timestamp>) -> i64 {
    let t = t.expect("a time");
    t.seconds * 1_000_000 + i64::from(t.nanos / 1000)
}

fn diagnosis(h: &ReceiverHealth) -> Diagnosis {
    Diagnosis::try_from(h.diagnosis).expect("a known diagnosis")
}

async fn a_fresh_receiver_is_never_received_and_says_its_url(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, _) = app
        .create_receiver("fresh", CodeHostKind::Github, GITHUB)
        .await;
    let h = health(&app, &id).await;
    assert_eq!(h.receiver_id, id);
    assert_eq!(diagnosis(&h), Diagnosis::NeverReceived, "{h:?}");
    let url = format!("{}/.api/webhooks/{id}", app.public_url);
    assert!(
        h.diagnosis_message.contains(&url),
        "the sentence names the URL to paste: {}",
        h.diagnosis_message
    );
    assert!(
        h.last_delivery_time.is_none() && h.last_error.is_none(),
        "{h:?}"
    );
    assert_eq!(h.last_day, Some(Default::default()));
    assert!(h.compute_time.is_some());
    app.stop().await;
}

async fn processed_deliveries_and_a_duplicate_are_counted_and_healthy(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let github = app
        .create_receiver("github", CodeHostKind::Github, GITHUB)
        .await;
    let key = uuid::Uuid::new_v4().to_string();
    let (status, first) = post_pull_request(&app, &github.0, &key, &github.1).await;
    assert_eq!(status, 202, "{first}");
    let done = app
        .wait_until_done(first["delivery_id"].as_str().unwrap())
        .await;
    assert_eq!(done.state, DeliveryState::Processed as i32, "{done:?}");
    // The host sends it again: answered as the duplicate it is, counted from memory.
    let (status, again) = post_pull_request(&app, &github.0, &key, &github.1).await;
    assert_eq!(status, 200, "{again}");
    let ping = app
        .deliver(
            CodeHostKind::Github,
            &github,
            "ping",
            &serde_json::from_slice(&fixture("github/ping.json")).unwrap(),
        )
        .await;
    assert_eq!(ping.state, DeliveryState::Processed as i32);

    let h = health(&app, &github.0).await;
    assert_eq!(diagnosis(&h), Diagnosis::Healthy, "{h:?}");
    for counts in [h.last_hour.unwrap(), h.last_day.unwrap()] {
        assert_eq!(counts.accepted, 2, "{h:?}");
        assert_eq!(counts.processed, 2, "{h:?}");
        assert_eq!(counts.duplicate, 1, "{h:?}");
        assert_eq!(
            (
                counts.rejected,
                counts.failed,
                counts.ignored,
                counts.rate_limited
            ),
            (0, 0, 0, 0)
        );
    }
    assert!(
        h.diagnosis_message.contains("2 accepted in the last hour"),
        "{}",
        h.diagnosis_message
    );
    assert_eq!(h.last_accepted_time, ping.receive_time, "{h:?}");
    assert!(micros(&h.last_delivery_time) >= micros(&h.last_accepted_time));
    assert!(h.last_rejected_time.is_none() && h.last_failed_time.is_none());
    assert!(h.last_error.is_none());
    app.stop().await;
}

async fn wrong_signatures_make_it_signature_failing_until_a_right_one_comes(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let github = app
        .create_receiver("github", CodeHostKind::Github, GITHUB)
        .await;
    deliver_pull_request(&app, &github).await;
    for _ in 0..3 {
        let key = uuid::Uuid::new_v4().to_string();
        let (status, answer) =
            post_pull_request(&app, &github.0, &key, "the-secret-of-another-hook").await;
        assert_eq!(status, 401, "{answer}");
    }
    let h = health(&app, &github.0).await;
    assert_eq!(diagnosis(&h), Diagnosis::SignatureFailing, "{h:?}");
    assert!(
        h.diagnosis_message
            .starts_with("The last 3 requests had a wrong or missing signature or token"),
        "{}",
        h.diagnosis_message
    );
    assert!(
        h.diagnosis_message
            .contains(&format!("hookgate receiver rotate {}", github.0)),
        "{}",
        h.diagnosis_message
    );
    let day = h.last_day.unwrap();
    assert_eq!((day.rejected, day.accepted, day.processed), (3, 1, 1));
    // The last error is the newest rejected delivery, with its reason.
    let rejected = app
        .deliveries()
        .await
        .list_deliveries(app.req(ListDeliveriesRequest {
            receiver_id: github.0.clone(),
            states: vec![DeliveryState::Rejected as i32],
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .deliveries;
    assert_eq!(rejected.len(), 3);
    let error = h.last_error.clone().expect("a last error");
    assert_eq!(error.delivery_id, rejected[0].id, "the newest: {h:?}");
    assert_eq!(error.time, rejected[0].receive_time);
    assert_eq!(error.message, rejected[0].last_error);
    assert!(!error.message.is_empty());
    assert_eq!(h.last_rejected_time, rejected[0].receive_time);

    // The secret is pasted again: the next delivery verifies, and the diagnosis moves on.
    deliver_pull_request(&app, &github).await;
    let h = health(&app, &github.0).await;
    assert_eq!(diagnosis(&h), Diagnosis::Healthy, "{h:?}");
    assert_eq!(
        h.last_error.map(|e| e.delivery_id),
        Some(rejected[0].id.clone()),
        "the last error stays until a newer one"
    );
    app.stop().await;
}

async fn deliveries_of_unregistered_repositories_are_ignoring_with_how_to_register(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let strict = app
        .create_receiver_with(
            "strict",
            CodeHostKind::Github,
            GITHUB,
            ReceiverOptions {
                ignore_unmatched: true,
                ..Default::default()
            },
        )
        .await;
    for _ in 0..2 {
        let d = deliver_pull_request(&app, &strict).await;
        assert_eq!(d.state, DeliveryState::Ignored as i32, "{d:?}");
    }
    let h = health(&app, &strict.0).await;
    assert_eq!(diagnosis(&h), Diagnosis::Ignoring, "{h:?}");
    let message = &h.diagnosis_message;
    assert!(
        message.contains(
            "(2 ignored; the latest: repository Codertocat/Hello-World is not registered"
        ),
        "{message}"
    );
    assert!(
        message.contains(
            "hookgate repository register --code-host-urn https://github.com/ --name <owner/name>"
        ),
        "{message}"
    );
    let day = h.last_day.unwrap();
    assert_eq!((day.accepted, day.ignored, day.processed), (2, 2, 0));
    assert!(h.last_error.is_none(), "an ignored delivery is no error");
    app.stop().await;
}

async fn requests_over_the_rate_limit_make_it_rate_limited(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let limited = app
        .create_receiver_with(
            "limited",
            CodeHostKind::Github,
            GITHUB,
            ReceiverOptions {
                rate_limit_per_minute: 1,
                ..Default::default()
            },
        )
        .await;
    deliver_pull_request(&app, &limited).await;
    for _ in 0..2 {
        let key = uuid::Uuid::new_v4().to_string();
        let (status, answer) = post_pull_request(&app, &limited.0, &key, &limited.1).await;
        assert_eq!(status, 429, "{answer}");
    }
    let h = health(&app, &limited.0).await;
    assert_eq!(diagnosis(&h), Diagnosis::RateLimited, "{h:?}");
    assert!(
        h.diagnosis_message.starts_with(
            "2 requests in the last hour were refused with 429 by its limit of 1 a minute"
        ),
        "{}",
        h.diagnosis_message
    );
    assert!(
        h.diagnosis_message
            .contains(&format!("hookgate receiver update {}", limited.0)),
        "{}",
        h.diagnosis_message
    );
    let hour = h.last_hour.unwrap();
    assert_eq!(
        (hour.rate_limited, hour.accepted, hour.processed),
        (2, 1, 1)
    );
    assert!(
        micros(&h.last_delivery_time) > micros(&h.last_accepted_time),
        "a 429 is a request too"
    );
    app.stop().await;
}

/// The real handler, except while `broken` is set: then every delivery fails for good.
struct FailsWhileBroken {
    broken: Arc<AtomicBool>,
    real: Arc<dyn Handler>,
}

#[tonic::async_trait]
impl Handler for FailsWhileBroken {
    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        receiver: &Receiver,
        delivery: &ClaimedDelivery,
        event: &Classified,
    ) -> Result<Outcome, HandlerError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(HandlerError::permanent(
                "the test's handler is broken: downstream unavailable",
            ));
        }
        self.real.handle(txn, receiver, delivery, event).await
    }

    fn lock_order(&self, receiver: &Receiver, event: &Classified) -> Option<String> {
        self.real.lock_order(receiver, event)
    }
}

/// Starts the service with a handler that fails every delivery while the flag it returns is set.
async fn spawn_with_breakable_handler(engine: Engine) -> (TestApp, Arc<AtomicBool>) {
    let broken = Arc::new(AtomicBool::new(false));
    let switch = broken.clone();
    let app = TestApp::start_built(
        TestDatabase::new(engine).await,
        |_| {},
        move |app| {
            app.wrap_handler(|real| {
                Arc::new(FailsWhileBroken {
                    broken: switch,
                    real,
                })
            })
        },
    )
    .await;
    (app, broken)
}

async fn a_handler_that_fails_makes_it_failing_with_the_last_error(engine: Engine) {
    let (app, broken) = spawn_with_breakable_handler(engine).await;
    let github = app
        .create_receiver("github", CodeHostKind::Github, GITHUB)
        .await;
    deliver_pull_request(&app, &github).await;
    broken.store(true, Ordering::SeqCst);
    deliver_pull_request(&app, &github).await;
    let failed = deliver_pull_request(&app, &github).await;
    assert_eq!(failed.state, DeliveryState::Failed as i32, "{failed:?}");

    let h = health(&app, &github.0).await;
    assert_eq!(diagnosis(&h), Diagnosis::Failing, "{h:?}");
    assert!(
        h.diagnosis_message.starts_with(
            "Deliveries verify but processing them fails (2 failures in the last 24 hours, the latest at"
        ),
        "{}",
        h.diagnosis_message
    );
    assert!(
        h.diagnosis_message
            .contains("the test's handler is broken: downstream unavailable"),
        "{}",
        h.diagnosis_message
    );
    assert!(
        h.diagnosis_message.contains(&format!(
            "hookgate delivery redeliver-all --receiver {}",
            github.0
        )),
        "{}",
        h.diagnosis_message
    );
    let day = h.last_day.unwrap();
    assert_eq!((day.accepted, day.processed, day.failed), (3, 1, 2));
    let error = h.last_error.expect("a last error");
    assert_eq!(error.delivery_id, failed.id);
    assert_eq!(error.time, failed.process_time, "when it failed");
    assert_eq!(error.message, failed.last_error);
    assert_eq!(h.last_failed_time, failed.receive_time);
    app.stop().await;
}

async fn traffic_that_stopped_a_day_ago_is_silent(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let github = app
        .create_receiver("github", CodeHostKind::Github, GITHUB)
        .await;
    deliver_pull_request(&app, &github).await;
    assert_eq!(
        diagnosis(&health(&app, &github.0).await),
        Diagnosis::Healthy
    );
    // A day and an hour pass (written into the log, as no test waits a day).
    let db = Database::connect(&app.db.url).await.expect("the database");
    let day_and_hour: i64 = 25 * 3600 * 1_000_000;
    for sql in [
        format!("UPDATE deliveries SET receive_time = receive_time - {day_and_hour}"),
        format!("UPDATE receivers SET last_delivery_time = last_delivery_time - {day_and_hour}"),
    ] {
        db.execute_unprepared(&sql).await.expect("the log is aged");
    }
    db.close().await.ok();

    let h = health(&app, &github.0).await;
    assert_eq!(diagnosis(&h), Diagnosis::Silent, "{h:?}");
    assert!(
        h.diagnosis_message
            .starts_with("No request in the last 24 hours; the last came at "),
        "{}",
        h.diagnosis_message
    );
    assert!(
        h.diagnosis_message
            .contains(&format!("{}/.api/webhooks/{}", app.public_url, github.0)),
        "{}",
        h.diagnosis_message
    );
    assert_eq!(
        h.last_day,
        Some(Default::default()),
        "nothing in the window"
    );
    assert!(h.last_accepted_time.is_some(), "the last times stay");
    app.stop().await;
}

async fn the_health_view_of_list_receivers_gives_each_its_health_and_the_basic_view_none(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let busy = app
        .create_receiver("busy", CodeHostKind::Github, GITHUB)
        .await;
    let quiet = app
        .create_receiver("quiet", CodeHostKind::Gitlab, "https://gitlab.example.com")
        .await;
    deliver_pull_request(&app, &busy).await;
    let mut client = app.receivers().await;
    let list = |view: ReceiverView, page_size: i32, page_token: String| {
        app.req(ListReceiversRequest {
            view: view as i32,
            page_size,
            page_token,
            ..Default::default()
        })
    };

    let basic = client
        .list_receivers(list(ReceiverView::Unspecified, 0, String::new()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(basic.receivers.len(), 2);
    assert!(basic.receivers.iter().all(|r| r.health.is_none()));
    let basic = client
        .list_receivers(list(ReceiverView::Basic, 0, String::new()))
        .await
        .unwrap()
        .into_inner();
    assert!(basic.receivers.iter().all(|r| r.health.is_none()));

    let with_health = client
        .list_receivers(list(ReceiverView::Health, 0, String::new()))
        .await
        .unwrap()
        .into_inner();
    let diagnoses: Vec<(String, Diagnosis)> = with_health
        .receivers
        .iter()
        .map(|r| {
            let h = r.health.as_ref().expect("health in the health view");
            assert_eq!(h.receiver_id, r.id);
            (r.name.clone(), diagnosis(h))
        })
        .collect();
    assert_eq!(
        diagnoses,
        vec![
            ("busy".to_owned(), Diagnosis::Healthy),
            ("quiet".to_owned(), Diagnosis::NeverReceived)
        ]
    );
    // The same health as GetReceiverHealth gives, but for the time it was computed.
    let mut listed = with_health.receivers[0].health.clone().unwrap();
    let mut got = health(&app, &busy.0).await;
    listed.compute_time = None;
    got.compute_time = None;
    assert_eq!(listed, got);

    // Page by page too.
    let first = client
        .list_receivers(list(ReceiverView::Health, 1, String::new()))
        .await
        .unwrap()
        .into_inner();
    let second = client
        .list_receivers(list(ReceiverView::Health, 1, first.next_page_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.receivers[0].id, quiet.0);
    assert_eq!(
        diagnosis(second.receivers[0].health.as_ref().unwrap()),
        Diagnosis::NeverReceived
    );

    let bad = client
        .list_receivers(app.req(ListReceiversRequest {
            view: 7,
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("RECEIVER_VIEW_HEALTH"), "{bad:?}");
    app.stop().await;
}

async fn health_of_a_bad_or_unknown_id_is_refused_with_a_clear_message(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let mut client = app.receivers().await;
    let ask = |id: &str| app.req(GetReceiverHealthRequest { id: id.to_owned() });
    let empty = client.get_receiver_health(ask("")).await.unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument);
    assert_eq!(empty.message(), "id is required");
    let malformed = client
        .get_receiver_health(ask("not-a-uuid"))
        .await
        .unwrap_err();
    assert_eq!(malformed.code(), Code::InvalidArgument);
    assert!(
        malformed.message().contains("is not a UUID"),
        "{malformed:?}"
    );
    let unknown = uuid::Uuid::new_v4().to_string();
    let missing = client.get_receiver_health(ask(&unknown)).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(missing.message(), format!("receiver {unknown} not found"));
    app.stop().await;
}
