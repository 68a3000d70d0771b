//! Several `hookgate serve` replicas on one database: a client watching the event feed on one
//! replica sees what happened on another.

mod common;

use std::time::Duration;

use common::{Engine, TestApp, fixture};
use hookgate::admin::proto::{
    CodeHostKind, EventKind, WatchRequest, event_service_client::EventServiceClient,
};
use hookgate::app::Application;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;

on_both_engines!(
    a_watch_on_one_replica_sees_events_made_on_another,
    an_ingress_only_replica_stores_deliveries_and_leaves_them_to_another_replicas_worker,
    a_receiver_made_rotated_or_deleted_on_one_replica_is_honoured_by_another_within_a_second,
);

async fn a_watch_on_one_replica_sees_events_made_on_another(engine: Engine) {
    let a = TestApp::spawn(engine).await;
    // A second replica on the same database.
    let b = Application::build(&common::test_config(&a.db))
        .await
        .expect("a second replica starts");
    let b_grpc = b.grpc_addr();
    let stop_b = CancellationToken::new();
    let b_task = tokio::spawn(b.run_until(stop_b.clone().cancelled_owned()));

    let channel = tonic::transport::Channel::from_shared(format!("http://{b_grpc}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut watch = EventServiceClient::new(channel)
        .watch(WatchRequest::default())
        .await
        .unwrap()
        .into_inner();

    // On replica A: a pull request delivery (a changeset update) and a trigger call (a sync
    // request).
    let github = a
        .create_receiver("github", CodeHostKind::Github, "https://github.com")
        .await;
    let body: serde_json::Value =
        serde_json::from_slice(&fixture("github/pull_request.opened.json")).unwrap();
    a.deliver(CodeHostKind::Github, &github, "pull_request", &body)
        .await;
    let push: serde_json::Value =
        serde_json::from_slice(&fixture("github/push.branch-updated.json")).unwrap();
    a.deliver(CodeHostKind::Github, &github, "push", &push)
        .await;

    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        let event = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .expect("replica B streams replica A's events")
            .expect("the stream stays open")
            .expect("an event");
        kinds.push(event.kind);
    }
    assert_eq!(
        kinds,
        [
            EventKind::ChangesetUpdated as i32,
            EventKind::SyncRequested as i32
        ]
    );
    stop_b.cancel();
    b_task.await.unwrap().unwrap();
    a.stop().await;
}

async fn an_ingress_only_replica_stores_deliveries_and_leaves_them_to_another_replicas_worker(
    engine: Engine,
) {
    use hookgate::admin::proto::DeliveryState;
    let ingress = TestApp::spawn_with(engine, |c| c.ingress_only = true).await;
    let github = ingress
        .create_receiver("github", CodeHostKind::Github, "https://github.com")
        .await;
    let body = fixture("github/pull_request.opened.json");
    let headers = common::host_headers(
        CodeHostKind::Github,
        "pull_request",
        "ingress-only-1",
        Some(&github.1),
        &body,
    );
    let response = ingress.post(&github.0, &headers, body).await;
    assert_eq!(response.status(), 202);
    let id = common::json_body(response).await["delivery_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Longer than the worker's poll interval: an ingress-only replica never takes it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        ingress.get_delivery(&id).await.state,
        DeliveryState::Pending as i32
    );

    // A replica with a worker on the same database processes it.
    let worker = Application::build(&common::test_config(&ingress.db))
        .await
        .expect("a second replica starts");
    let stop_worker = CancellationToken::new();
    let worker_task = tokio::spawn(worker.run_until(stop_worker.clone().cancelled_owned()));
    ingress.wait_for_state(&id, DeliveryState::Processed).await;
    stop_worker.cancel();
    worker_task.await.unwrap().unwrap();
    ingress.stop().await;
}

async fn a_receiver_made_rotated_or_deleted_on_one_replica_is_honoured_by_another_within_a_second(
    engine: Engine,
) {
    use hookgate::admin::proto::{DeleteReceiverRequest, RotateReceiverSecretRequest};
    let a = TestApp::spawn(engine).await;
    let b = Application::build(&common::test_config(&a.db))
        .await
        .expect("a second replica starts");
    let b_http = b.http_addr();
    let stop_b = CancellationToken::new();
    let b_task = tokio::spawn(b.run_until(stop_b.clone().cancelled_owned()));
    let second = Duration::from_secs(1);

    // Made on A after B started: B takes its deliveries.
    let (id, secret) = a
        .create_receiver("made-on-a", CodeHostKind::Github, "https://github.com")
        .await;
    let took = common::until_answered(b_http, &id, &secret, 200, second).await;
    eprintln!("B honoured a receiver made on A after {took:?}");

    // Rotated on A with no overlap: B refuses the old secret and takes the new one.
    let rotated = a
        .receivers()
        .await
        .rotate_receiver_secret(a.req(RotateReceiverSecretRequest {
            id: id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let took = common::until_answered(b_http, &id, &secret, 401, second).await;
    eprintln!("B refused the old secret after {took:?}");
    common::until_answered(b_http, &id, &rotated.secret, 200, second).await;

    // Deleted on A: B no longer knows it.
    a.receivers()
        .await
        .delete_receiver(a.req(DeleteReceiverRequest { id: id.clone() }))
        .await
        .unwrap();
    let took = common::until_answered(b_http, &id, &rotated.secret, 404, second).await;
    eprintln!("B forgot a receiver deleted on A after {took:?}");

    stop_b.cancel();
    b_task.await.unwrap().unwrap();
    a.stop().await;
}
