//! PostgreSQL going away under a running hookgate, and coming back: while it is gone the ingress
//! answers 503 with `Retry-After` (so hosts retry), the admin API `UNAVAILABLE` and `/healthz`
//! 503, each promptly; once it is back everything works again without a restart, and the
//! worker finishes what it had in hand and in its queue. The test runs a PostgreSQL server of its
//! own (`common::postgres_server`) and stops it for real.

mod common;

use std::time::{Duration, Instant};

use common::postgres_server::PostgresServer;
use common::{TestApp, TestDatabase, fixture, host_headers, json_body};
use hookgate::admin::proto::{
    CodeHostKind, DeliveryState, GetDeliveryRequest, ListChangesetEventsRequest,
    ListDeliveriesRequest, ListReceiversRequest, changeset_service_client::ChangesetServiceClient,
};
use sea_orm::{ConnectionTrait, Database, TransactionTrait};
use serde_json::Value;

/// How fast an answer must come while the database is gone: well inside the 10 s a code host
/// such as GitHub waits before it gives up on a delivery.
const PROMPT: Duration = Duration::from_secs(5);
/// How long recovery may take once the database is back.
const RECOVERY: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_going_away_is_answered_503_and_unavailable_and_everything_recovers_when_it_returns()
 {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    let db = TestDatabase::on_postgres(&server.url()).await;
    let url = db.url.clone();
    // A short lease: the claim the worker holds when the database goes away runs out soon after
    // it is back.
    let app = TestApp::start(db, |c| {
        c.delivery_lease = "2s".parse().expect("a duration");
    })
    .await;
    let github = app
        .create_receiver("outage", CodeHostKind::Github, "https://github.com")
        .await;

    // Before: a delivery is accepted and processed.
    let before = pull_request(&github.1, "before-outage", 1);
    let before_id = accepted(&app, &github.0, &before, 202).await;
    app.wait_for_state(&before_id, DeliveryState::Processed)
        .await;

    // The worker is held in the middle of its transaction for the next pull request (another
    // session locks the changesets against writes), and a third waits in the queue behind it:
    // both are stored and acknowledged, neither is processed when the database goes away.
    let locker = Database::connect(url.as_str())
        .await
        .expect("a second session");
    let lock = locker.begin().await.expect("a transaction");
    lock.execute_unprepared("LOCK TABLE changesets IN EXCLUSIVE MODE")
        .await
        .expect("the changesets can be locked");
    let in_hand = pull_request(&github.1, "in-hand", 2);
    let in_hand_id = accepted(&app, &github.0, &in_hand, 202).await;
    app.wait_for_state(&in_hand_id, DeliveryState::Processing)
        .await;
    let queued = pull_request(&github.1, "queued", 3);
    let queued_id = accepted(&app, &github.0, &queued, 202).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for id in [&in_hand_id, &queued_id] {
        let state = app.get_delivery(id).await.state;
        assert!(
            state == DeliveryState::Pending as i32 || state == DeliveryState::Processing as i32,
            "{id} is {:?} before the outage: the lock did not hold the worker",
            DeliveryState::try_from(state)
        );
    }

    server.stop();
    let outage = Instant::now();
    drop(lock);
    drop(locker);

    // While it is gone: a signed delivery is refused with 503 and Retry-After.
    let refused = pull_request(&github.1, "refused", 4);
    let (answer, took) = timed(app.post(&github.0, &refused.headers, refused.body.clone())).await;
    let status = answer.status();
    let retry_after = answer.headers().get("retry-after").cloned();
    eprintln!("outage: ingress answered {status} in {took:?}");
    assert_eq!(status, 503, "{}", json_body(answer).await);
    assert!(retry_after.is_some(), "a 503 says when to retry");
    assert!(took < PROMPT, "the ingress took {took:?} to answer 503");

    // The admin API is UNAVAILABLE.
    let (listed, took) = timed(async {
        app.receivers()
            .await
            .list_receivers(app.req(ListReceiversRequest::default()))
            .await
    })
    .await;
    eprintln!("outage: ListReceivers answered in {took:?}");
    let status = listed.expect_err("no receivers can be listed without the database");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(took < PROMPT, "ListReceivers took {took:?} to fail");
    let (got, took) = timed(async {
        app.deliveries()
            .await
            .get_delivery(app.req(GetDeliveryRequest {
                id: before_id.clone(),
            }))
            .await
    })
    .await;
    eprintln!("outage: GetDelivery answered in {took:?}");
    let status = got.expect_err("no delivery can be read without the database");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(took < PROMPT, "GetDelivery took {took:?} to fail");

    // Health says so.
    let (health, took) = timed(healthz(&app)).await;
    eprintln!("outage: /healthz answered {health} in {took:?}");
    assert_eq!(health, 503);
    assert!(took < PROMPT, "/healthz took {took:?} to answer 503");

    // The database comes back (same data, same port); hookgate is not restarted.
    server.start_again();
    let back = Instant::now();
    eprintln!("outage: PostgreSQL was gone for {:?}", outage.elapsed());
    loop {
        if healthz(&app).await == 200 {
            break;
        }
        assert!(
            back.elapsed() < RECOVERY,
            "/healthz still fails {RECOVERY:?} after the database is back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "recovery: /healthz is 200 {:?} after the database is back",
        back.elapsed()
    );
    app.receivers()
        .await
        .list_receivers(app.req(ListReceiversRequest::default()))
        .await
        .expect("receivers can be listed again");

    // The worker recovers on its own (no new delivery wakes it): what it had in hand when the
    // database went away, and what was queued behind it, are processed.
    for id in [&in_hand_id, &queued_id] {
        wait_until_processed(&app, id, back).await;
    }
    eprintln!(
        "recovery: the deliveries stored before the outage are processed {:?} after the database is back",
        back.elapsed()
    );
    let attempts = app.get_delivery(&in_hand_id).await.attempts;
    assert!(
        attempts >= 2,
        "the delivery in hand was claimed again after its transaction was cut (attempts: {attempts})"
    );

    // The refused delivery, sent again, is stored and processed; sent once more, it is a
    // duplicate of it.
    let refused_id = accepted(&app, &github.0, &refused, 202).await;
    assert_eq!(accepted(&app, &github.0, &refused, 200).await, refused_id);
    wait_until_processed(&app, &refused_id, back).await;

    // Each delivery is stored once, and its pull request has one changeset whose timeline holds
    // one entry, from it.
    let listed = app
        .deliveries()
        .await
        .list_deliveries(app.req(ListDeliveriesRequest {
            receiver_id: github.0.clone(),
            page_size: 500,
            ..Default::default()
        }))
        .await
        .expect("deliveries can be listed")
        .into_inner()
        .deliveries;
    let mut keys: Vec<&str> = listed.iter().map(|d| d.delivery_key.as_str()).collect();
    keys.sort();
    assert_eq!(keys, ["before-outage", "in-hand", "queued", "refused"]);
    for (number, id) in [
        (1, &before_id),
        (2, &in_hand_id),
        (3, &queued_id),
        (4, &refused_id),
    ] {
        let changeset = app.changeset("Codertocat/Hello-World", number).await;
        let timeline = ChangesetServiceClient::new(app.channel().await)
            .list_changeset_events(app.req(ListChangesetEventsRequest {
                changeset_id: changeset.id.clone(),
                ..Default::default()
            }))
            .await
            .expect("the timeline can be read")
            .into_inner()
            .events;
        let from: Vec<&str> = timeline.iter().map(|e| e.delivery_id.as_str()).collect();
        assert_eq!(from, [id.as_str()], "the timeline of #{number}");
    }
    app.stop().await;
}

/// A signed GitHub `pull_request` delivery opening pull request `number`.
struct Signed {
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

fn pull_request(secret: &str, key: &str, number: i64) -> Signed {
    let mut body: Value = serde_json::from_slice(&fixture("github/pull_request.opened.json"))
        .expect("the fixture is JSON");
    body["number"] = number.into();
    body["pull_request"]["number"] = number.into();
    let body = serde_json::to_vec(&body).expect("JSON serialises");
    Signed {
        headers: host_headers(
            CodeHostKind::Github,
            "pull_request",
            key,
            Some(secret),
            &body,
        ),
        body,
    }
}

/// Posts `delivery`, expects `status`, and returns the delivery id of the answer.
async fn accepted(app: &TestApp, receiver: &str, delivery: &Signed, status: u16) -> String {
    let answer = app
        .post(receiver, &delivery.headers, delivery.body.clone())
        .await;
    let got = answer.status();
    let body = json_body(answer).await;
    assert_eq!(got, status, "{body}");
    body["delivery_id"]
        .as_str()
        .expect("a delivery id")
        .to_owned()
}

async fn healthz(app: &TestApp) -> u16 {
    reqwest::get(format!("http://{}/healthz", app.http_addr))
        .await
        .expect("the ingress answers")
        .status()
        .as_u16()
}

async fn timed<T>(work: impl Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    let out = work.await;
    (out, start.elapsed())
}

async fn wait_until_processed(app: &TestApp, id: &str, since: Instant) {
    loop {
        let d = app.get_delivery(id).await;
        if d.state == DeliveryState::Processed as i32 {
            return;
        }
        assert!(
            since.elapsed() < RECOVERY,
            "{id} is still {:?} {RECOVERY:?} after the database is back: {d:?}",
            DeliveryState::try_from(d.state)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
