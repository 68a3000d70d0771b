//! Receiver health against the real service on both engines, reached by real traffic: real
//! signed fixture payloads, wrong signatures, repositories not registered, a rate limit, a
//! handler that fails. Each diagnosis is checked with its counts and its sentence, as
//! `GetReceiverHealth` and `ListReceivers` with the health view give them.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::binary::{grpcurl, grpcurl_available, grpcurl_json};
use common::{Engine, TestApp, TestDatabase, fixture, host_headers, json_body};
use hookgate::admin::proto::{
    CodeHostKind, DeliveryState, Diagnosis, GetReceiverHealthRequest, ListDeliveriesRequest,
    ListReceiversRequest, ListUnmatchedRequest, ReceiverHealth, ReceiverOptions, ReceiverView,
    RedeliverDeliveriesRequest, RedeliverDeliveriesResponse,
};
use hookgate::deliveries::{ClaimedDelivery, Event, Handler, HandlerError, Outcome};
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
    redeliver_deliveries_counts_first_then_queues_the_failed_ones_which_get_processed,
    redeliver_deliveries_pages_with_a_token_and_never_queues_a_delivery_twice,
    redeliver_deliveries_refuses_bad_arguments_with_clear_messages_and_changes_nothing,
    list_deliveries_filters_by_event_exactly,
    an_admin_asks_for_health_and_redelivers_what_failed_with_grpcurl,
    requests_to_unknown_receiver_ids_are_listed_most_recent_first_and_bounded_to_100,
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
        event: &Event,
    ) -> Result<Outcome, HandlerError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(HandlerError::permanent(
                "the test's handler is broken: downstream unavailable",
            ));
        }
        self.real.handle(txn, receiver, delivery, event).await
    }

    fn lock_order(&self, receiver: &Receiver, event: &Event) -> Option<String> {
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

/// `RedeliverDeliveries` as `actor` calls it.
async fn redeliver(
    app: &TestApp,
    actor: &str,
    request: RedeliverDeliveriesRequest,
) -> Result<RedeliverDeliveriesResponse, tonic::Status> {
    let mut request = app.req(request);
    request
        .metadata_mut()
        .insert("x-hookgate-actor", actor.parse().expect("an ASCII actor"));
    app.deliveries()
        .await
        .redeliver_deliveries(request)
        .await
        .map(tonic::Response::into_inner)
}

/// The deliveries of `receiver` in `state`, newest first.
async fn in_state(
    app: &TestApp,
    receiver: &str,
    state: DeliveryState,
) -> Vec<hookgate::admin::proto::Delivery> {
    app.deliveries()
        .await
        .list_deliveries(app.req(ListDeliveriesRequest {
            receiver_id: receiver.to_owned(),
            states: vec![state as i32],
            page_size: 500,
            ..Default::default()
        }))
        .await
        .expect("deliveries are listed")
        .into_inner()
        .deliveries
}

async fn redeliver_deliveries_counts_first_then_queues_the_failed_ones_which_get_processed(
    engine: Engine,
) {
    let (app, broken) = spawn_with_breakable_handler(engine).await;
    let github = app
        .create_receiver("github", CodeHostKind::Github, GITHUB)
        .await;
    let fine = deliver_pull_request(&app, &github).await;
    broken.store(true, Ordering::SeqCst);
    for _ in 0..3 {
        let d = deliver_pull_request(&app, &github).await;
        assert_eq!(d.state, DeliveryState::Failed as i32, "{d:?}");
    }
    // The outage is over.
    broken.store(false, Ordering::SeqCst);

    let all_failed = RedeliverDeliveriesRequest {
        receiver_id: github.0.clone(),
        ..Default::default()
    };
    let counted = redeliver(
        &app,
        "alice",
        RedeliverDeliveriesRequest {
            validate_only: true,
            ..all_failed.clone()
        },
    )
    .await
    .expect("validate_only answers");
    assert_eq!(
        counted,
        RedeliverDeliveriesResponse {
            matched: 3,
            ..Default::default()
        }
    );
    let failed = in_state(&app, &github.0, DeliveryState::Failed).await;
    assert_eq!(failed.len(), 3, "validate_only changes nothing");
    assert!(failed.iter().all(|d| d.redelivered_by.is_empty()));
    // PROCESSED ones only when asked for.
    let processed_too = redeliver(
        &app,
        "alice",
        RedeliverDeliveriesRequest {
            states: vec![
                DeliveryState::Failed as i32,
                DeliveryState::Processed as i32,
            ],
            validate_only: true,
            ..all_failed.clone()
        },
    )
    .await
    .unwrap();
    assert_eq!(processed_too.matched, 4);
    // And only in the time range asked for.
    let since_the_second = redeliver(
        &app,
        "alice",
        RedeliverDeliveriesRequest {
            since: failed[1].receive_time,
            validate_only: true,
            ..all_failed.clone()
        },
    )
    .await
    .unwrap();
    assert_eq!(since_the_second.matched, 2, "the newest two");

    let done = redeliver(&app, "alice", all_failed.clone()).await.unwrap();
    assert_eq!(
        done,
        RedeliverDeliveriesResponse {
            matched: 3,
            queued: 3,
            already_queued: 0,
            next_page_token: String::new(),
        }
    );
    for d in &failed {
        let again = app.wait_until_done(&d.id).await;
        assert_eq!(again.state, DeliveryState::Processed as i32, "{again:?}");
        assert_eq!(again.redelivered_by, "alice", "recorded as the caller's");
        assert!(again.redeliver_time.is_some());
        assert_eq!(again.attempts, 1, "its tries counted afresh");
    }
    assert!(
        app.get_delivery(&fine.id).await.redelivered_by.is_empty(),
        "a processed delivery was not asked for"
    );
    let h = health(&app, &github.0).await;
    assert_eq!(diagnosis(&h), Diagnosis::Healthy, "{h:?}");
    assert_eq!(h.last_day.unwrap().failed, 0);
    app.stop().await;
}

async fn redeliver_deliveries_pages_with_a_token_and_never_queues_a_delivery_twice(engine: Engine) {
    let (app, broken) = spawn_with_breakable_handler(engine).await;
    broken.store(true, Ordering::SeqCst);
    let paged = app
        .create_receiver("paged", CodeHostKind::Github, GITHUB)
        .await;
    let raced = app
        .create_receiver("raced", CodeHostKind::Github, GITHUB)
        .await;
    for receiver in [&paged, &raced] {
        for _ in 0..5 {
            deliver_pull_request(&app, receiver).await;
        }
    }
    // Started again without a worker, so what is queued stays in the queue to be looked at.
    let db = app.shut_down().await;
    let app = TestApp::start(db, |config| config.ingress_only = true).await;

    let mut request = RedeliverDeliveriesRequest {
        receiver_id: paged.0.clone(),
        page_size: 2,
        ..Default::default()
    };
    let mut answers = Vec::new();
    loop {
        let answer = redeliver(&app, "bob", request.clone()).await.unwrap();
        let token = answer.next_page_token.clone();
        answers.push(answer);
        if token.is_empty() {
            break;
        }
        request.page_token = token;
    }
    let seen: Vec<(i64, i64, i64, bool)> = answers
        .iter()
        .map(|a| {
            (
                a.matched,
                a.queued,
                a.already_queued,
                a.next_page_token.is_empty(),
            )
        })
        .collect();
    // Each call counts what still matches, queues two, and says where to go on.
    assert_eq!(
        seen,
        vec![(5, 2, 0, false), (3, 2, 0, false), (1, 1, 0, true)]
    );
    let pending = in_state(&app, &paged.0, DeliveryState::Pending).await;
    assert_eq!(pending.len(), 5);
    assert!(
        pending
            .iter()
            .all(|d| d.redelivered_by == "bob" && d.attempts == 0)
    );
    // Asked again, nothing matches: what is queued is not queued a second time.
    let again = redeliver(
        &app,
        "bob",
        RedeliverDeliveriesRequest {
            receiver_id: paged.0.clone(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!((again.matched, again.queued), (0, 0));
    // A token is good only for the request it was made for.
    let misused = redeliver(
        &app,
        "bob",
        RedeliverDeliveriesRequest {
            receiver_id: paged.0.clone(),
            states: vec![DeliveryState::Ignored as i32],
            page_token: answers[0].next_page_token.clone(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(misused.code(), Code::InvalidArgument);
    assert!(misused.message().contains("page_token"), "{misused:?}");

    // Four admins at once: between them every delivery is queued once.
    let all = RedeliverDeliveriesRequest {
        receiver_id: raced.0.clone(),
        ..Default::default()
    };
    let admins = ["carol", "dave", "erin", "frank"];
    let answers: Vec<RedeliverDeliveriesResponse> = futures_util::future::join_all(
        admins
            .iter()
            .map(|admin| redeliver(&app, admin, all.clone())),
    )
    .await
    .into_iter()
    .map(|a| a.expect("each call answers"))
    .collect();
    let queued: i64 = answers.iter().map(|a| a.queued).sum();
    assert_eq!(queued, 5, "{answers:?}");
    for a in &answers {
        // What one call found but another queued first is reported, not queued again.
        assert!(a.queued + a.already_queued <= a.matched, "{answers:?}");
    }
    let pending = in_state(&app, &raced.0, DeliveryState::Pending).await;
    assert_eq!(pending.len(), 5);
    for (admin, answer) in admins.iter().zip(&answers) {
        let by = pending
            .iter()
            .filter(|d| d.redelivered_by == *admin)
            .count();
        assert_eq!(by as i64, answer.queued, "each recorded by who queued it");
    }
    app.stop().await;
}

async fn redeliver_deliveries_refuses_bad_arguments_with_clear_messages_and_changes_nothing(
    engine: Engine,
) {
    let (app, broken) = spawn_with_breakable_handler(engine).await;
    let github = app
        .create_receiver("github", CodeHostKind::Github, GITHUB)
        .await;
    broken.store(true, Ordering::SeqCst);
    deliver_pull_request(&app, &github).await;
    let (trigger, _) = app
        .create_receiver("cron", CodeHostKind::Generic, GITHUB)
        .await;
    let valid = RedeliverDeliveriesRequest {
        receiver_id: github.0.clone(),
        ..Default::default()
    };
    let unknown = uuid::Uuid::new_v4().to_string();
    let t = |seconds| Some(prost_types::Timestamp { seconds, nanos: 0 });
    let cases: Vec<(RedeliverDeliveriesRequest, Code, String)> = vec![
        (
            RedeliverDeliveriesRequest::default(),
            Code::InvalidArgument,
            "receiver_id is required".into(),
        ),
        (
            RedeliverDeliveriesRequest {
                receiver_id: "github".into(),
                ..Default::default()
            },
            Code::InvalidArgument,
            "receiver_id \"github\" is not a UUID".into(),
        ),
        (
            RedeliverDeliveriesRequest {
                receiver_id: unknown.clone(),
                ..Default::default()
            },
            Code::NotFound,
            format!("receiver {unknown} not found"),
        ),
        (
            RedeliverDeliveriesRequest {
                states: vec![DeliveryState::Pending as i32],
                ..valid.clone()
            },
            Code::InvalidArgument,
            "states has DELIVERY_STATE_PENDING, which cannot be redelivered (such a delivery is in the queue already)".into(),
        ),
        (
            RedeliverDeliveriesRequest {
                states: vec![
                    DeliveryState::Failed as i32,
                    DeliveryState::Rejected as i32,
                ],
                ..valid.clone()
            },
            Code::InvalidArgument,
            "states has DELIVERY_STATE_REJECTED, which cannot be redelivered (a rejected delivery was kept without its body)".into(),
        ),
        (
            RedeliverDeliveriesRequest {
                states: vec![42],
                ..valid.clone()
            },
            Code::InvalidArgument,
            "states has 42, which is not a delivery state".into(),
        ),
        (
            RedeliverDeliveriesRequest {
                since: t(2_000_000_000),
                until: t(1_900_000_000),
                ..valid.clone()
            },
            Code::InvalidArgument,
            "since must be before until".into(),
        ),
        (
            RedeliverDeliveriesRequest {
                page_size: 10_001,
                ..valid.clone()
            },
            Code::InvalidArgument,
            "page_size 10001 is over the maximum of 10000".into(),
        ),
        (
            RedeliverDeliveriesRequest {
                page_size: -1,
                ..valid.clone()
            },
            Code::InvalidArgument,
            "page_size must not be negative".into(),
        ),
        (
            RedeliverDeliveriesRequest {
                page_token: "not-a-token".into(),
                ..valid.clone()
            },
            Code::InvalidArgument,
            "page_token is not one this listing returned".into(),
        ),
        (
            RedeliverDeliveriesRequest {
                receiver_id: trigger.clone(),
                ..Default::default()
            },
            Code::FailedPrecondition,
            format!("receiver {trigger} is a generic trigger"),
        ),
    ];
    for (request, code, message) in cases {
        let refused = redeliver(&app, "mallory", request.clone())
            .await
            .expect_err("refused");
        assert_eq!(refused.code(), code, "{request:?}: {refused:?}");
        assert!(
            refused.message().starts_with(&message),
            "{request:?}: {:?} does not start with {message:?}",
            refused.message()
        );
    }
    let failed = in_state(&app, &github.0, DeliveryState::Failed).await;
    assert_eq!(failed.len(), 1, "nothing was queued");
    assert!(failed[0].redelivered_by.is_empty());
    app.stop().await;
}

async fn list_deliveries_filters_by_event_exactly(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let github = app
        .create_receiver("github", CodeHostKind::Github, GITHUB)
        .await;
    let opened = deliver_pull_request(&app, &github).await;
    deliver_pull_request(&app, &github).await;
    let ping = app
        .deliver(
            CodeHostKind::Github,
            &github,
            "ping",
            &serde_json::from_slice(&fixture("github/ping.json")).unwrap(),
        )
        .await;
    let client = app.deliveries().await;
    let list = |event: &str, page_size: i32, page_token: String| {
        let request = app.req(ListDeliveriesRequest {
            event: event.to_owned(),
            page_size,
            page_token,
            ..Default::default()
        });
        let mut client = client.clone();
        async move {
            client
                .list_deliveries(request)
                .await
                .map(tonic::Response::into_inner)
        }
    };
    let pings = list("ping", 0, String::new()).await.unwrap();
    assert_eq!(pings.total_size, 1);
    assert_eq!(pings.deliveries[0].id, ping.id);
    let first = list("pull_request/opened", 1, String::new()).await.unwrap();
    assert_eq!(first.total_size, 2);
    let second = list("pull_request/opened", 1, first.next_page_token.clone())
        .await
        .unwrap();
    assert_eq!(second.deliveries[0].id, opened.id, "the older one, second");
    assert!(second.next_page_token.is_empty());
    // Exactly: the event's name without its action is another event.
    let none = list("pull_request", 0, String::new()).await.unwrap();
    assert_eq!(none.total_size, 0);
    let everything = list("", 0, String::new()).await.unwrap();
    assert_eq!(everything.total_size, 3);
    // A token made under one event is refused under another.
    let misused = list("ping", 1, first.next_page_token).await.unwrap_err();
    assert_eq!(misused.code(), Code::InvalidArgument);
    app.stop().await;
}

async fn an_admin_asks_for_health_and_redelivers_what_failed_with_grpcurl(engine: Engine) {
    if !grpcurl_available() {
        return;
    }
    let (app, broken) = spawn_with_breakable_handler(engine).await;
    let addr = app.grpc_addr.to_string();
    let github = app
        .create_receiver("github", CodeHostKind::Github, GITHUB)
        .await;
    broken.store(true, Ordering::SeqCst);
    let failed = [
        deliver_pull_request(&app, &github).await,
        deliver_pull_request(&app, &github).await,
    ];
    broken.store(false, Ordering::SeqCst);

    let health = grpcurl_json(&[
        "-plaintext",
        "-d",
        &format!(r#"{{"id": "{}"}}"#, github.0),
        &addr,
        "hookgate.v1.ReceiverService/GetReceiverHealth",
    ]);
    assert_eq!(health["diagnosis"], "DIAGNOSIS_FAILING", "{health}");
    assert_eq!(health["lastDay"]["failed"], "2", "{health}");
    assert_eq!(health["lastError"]["deliveryId"], failed[1].id.as_str());

    let counted = grpcurl_json(&[
        "-plaintext",
        "-H",
        "x-hookgate-actor: ops-oncall",
        "-d",
        &format!(
            r#"{{"receiver_id": "{}", "states": ["DELIVERY_STATE_FAILED"], "validate_only": true}}"#,
            github.0
        ),
        &addr,
        "hookgate.v1.DeliveryService/RedeliverDeliveries",
    ]);
    assert_eq!(counted, serde_json::json!({"matched": "2"}));
    let queued = grpcurl_json(&[
        "-plaintext",
        "-H",
        "x-hookgate-actor: ops-oncall",
        "-d",
        &format!(r#"{{"receiver_id": "{}"}}"#, github.0),
        &addr,
        "hookgate.v1.DeliveryService/RedeliverDeliveries",
    ]);
    assert_eq!(queued, serde_json::json!({"matched": "2", "queued": "2"}));
    for d in &failed {
        let again = app.wait_until_done(&d.id).await;
        assert_eq!(again.state, DeliveryState::Processed as i32);
        assert_eq!(again.redelivered_by, "ops-oncall");
    }
    let (ok, _, stderr) = grpcurl(&[
        "-plaintext",
        "-d",
        &format!(
            r#"{{"receiver_id": "{}", "states": ["DELIVERY_STATE_PENDING"]}}"#,
            github.0
        ),
        &addr,
        "hookgate.v1.DeliveryService/RedeliverDeliveries",
    ]);
    assert!(!ok);
    assert!(stderr.contains("Code: InvalidArgument"), "{stderr}");
    assert!(stderr.contains("cannot be redelivered"), "{stderr}");
    app.stop().await;
}

async fn requests_to_unknown_receiver_ids_are_listed_most_recent_first_and_bounded_to_100(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let github = app
        .create_receiver("github", CodeHostKind::Github, GITHUB)
        .await;
    deliver_pull_request(&app, &github).await;
    let client = reqwest::Client::new();
    let post = |path: String| {
        let client = client.clone();
        let url = format!("http://{}/.api/webhooks/{path}", app.http_addr);
        async move {
            client
                .post(url)
                .body("{}")
                .send()
                .await
                .expect("the ingress answers")
                .status()
                .as_u16()
        }
    };
    let ids: Vec<String> = (0..105).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    for id in &ids {
        assert_eq!(post(id.clone()).await, 404);
    }
    // Not a UUID: 400, and not kept.
    assert_eq!(post("not-a-receiver-id".into()).await, 400);
    // A generic trigger's form of URL: the id is kept, never the secret.
    let with_secret = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        post(format!("{with_secret}/the-secret-pasted-in-the-url")).await,
        404
    );
    // An old URL still set at a code host sends again, upper-case this time.
    assert_eq!(post(ids[10].to_uppercase()).await, 404);

    let listed = app
        .deliveries()
        .await
        .list_unmatched(app.req(ListUnmatchedRequest {}))
        .await
        .expect("ListUnmatched answers")
        .into_inner()
        .receivers;
    assert_eq!(listed.len(), 100, "the most recent 100 distinct ids");
    let order: Vec<(&str, i64)> = listed
        .iter()
        .map(|u| (u.receiver_id.as_str(), u.count))
        .take(3)
        .collect();
    assert_eq!(
        order,
        vec![
            (ids[10].as_str(), 2),
            (with_secret.as_str(), 1),
            (ids[104].as_str(), 1)
        ]
    );
    assert_eq!(
        listed.last().unwrap().receiver_id,
        ids[6],
        "the six heard from longest ago went"
    );
    let times: Vec<i64> = listed.iter().map(|u| micros(&u.last_time)).collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "most recent first: {times:?}"
    );
    assert!(listed.iter().all(|u| u.receiver_id != github.0));
    assert!(
        !format!("{listed:?}").contains("secret") && !format!("{listed:?}").contains("not-a"),
        "nothing but ids is kept"
    );
    app.stop().await;
}
