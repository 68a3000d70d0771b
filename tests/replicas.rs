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

on_both_engines!(a_watch_on_one_replica_sees_events_made_on_another);

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
