//! GitHub's merge queue and auto-merge end to end: `pull_request` `enqueued` / `dequeued` and
//! `auto_merge_enabled` / `auto_merge_disabled` (fixtures derived from the real
//! `pull_request.opened` payload, see `tests/fixtures/README.md`) posted signed over real HTTP,
//! processed by the worker and read back over gRPC, on SQLite and PostgreSQL: the timeline
//! entries, the changeset's `in_merge_queue` and `auto_merge` set and cleared, and out-of-order
//! delivery leaving what the later host time says.

mod common;

use common::{Engine, TestApp, fixture};
use hookgate::admin::proto::{
    Changeset, ChangesetEvent, CodeHostKind, DeliveryState, ListChangesetEventsRequest,
    ListChangesetsRequest, changeset_service_client::ChangesetServiceClient,
};
use serde_json::{Value, json};

fn load(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).expect("fixtures are JSON")
}

/// The fixture `pull_request.<action>.json` as of `updated_at`.
fn pull_request(action: &str, updated_at: &str) -> Value {
    let mut body = load(&format!("github/pull_request.{action}.json"));
    body["pull_request"]["updated_at"] = json!(updated_at);
    body
}

async fn receiver(app: &TestApp) -> (String, String) {
    app.create_receiver("gh", CodeHostKind::Github, "https://github.com")
        .await
}

async fn deliver(app: &TestApp, receiver: &(String, String), event: &str, body: &Value) {
    let d = app
        .deliver(CodeHostKind::Github, receiver, event, body)
        .await;
    assert_eq!(
        d.state,
        DeliveryState::Processed as i32,
        "{}: {}",
        d.event,
        d.last_error
    );
}

/// Hello-World #2, read over gRPC.
async fn the_changeset(app: &TestApp) -> Changeset {
    let list = ChangesetServiceClient::new(app.channel().await)
        .list_changesets(app.req(ListChangesetsRequest {
            repository: "Codertocat/Hello-World".into(),
            number: 2,
            ..Default::default()
        }))
        .await
        .expect("changesets are listed")
        .into_inner();
    assert_eq!(list.total_size, 1, "{list:?}");
    list.changesets.into_iter().next().unwrap()
}

async fn timeline(app: &TestApp, c: &Changeset) -> Vec<ChangesetEvent> {
    ChangesetServiceClient::new(app.channel().await)
        .list_changeset_events(app.req(ListChangesetEventsRequest {
            changeset_id: c.id.clone(),
            ..Default::default()
        }))
        .await
        .expect("the timeline is listed")
        .into_inner()
        .events
}

fn kinds_and_summaries(events: &[ChangesetEvent]) -> Vec<(&str, &str)> {
    events
        .iter()
        .map(|e| (e.kind.as_str(), e.summary.as_str()))
        .collect()
}

on_both_engines!(
    enqueued_dequeued_and_auto_merge_set_and_clear_their_fields_with_timeline_entries,
    a_dequeue_delivered_before_an_older_enqueue_leaves_it_out_of_the_queue,
);

async fn enqueued_dequeued_and_auto_merge_set_and_clear_their_fields_with_timeline_entries(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let r = receiver(&app).await;
    deliver(
        &app,
        &r,
        "pull_request",
        &load("github/pull_request.opened.json"),
    )
    .await;
    let c = the_changeset(&app).await;
    assert!(!c.in_merge_queue && !c.auto_merge, "{c:?}");

    deliver(
        &app,
        &r,
        "pull_request",
        &pull_request("auto_merge_enabled", "2019-05-15T15:21:00Z"),
    )
    .await;
    let c = the_changeset(&app).await;
    assert!(c.auto_merge && !c.in_merge_queue, "{c:?}");

    deliver(
        &app,
        &r,
        "pull_request",
        &pull_request("enqueued", "2019-05-15T15:22:00Z"),
    )
    .await;
    let c = the_changeset(&app).await;
    assert!(c.auto_merge && c.in_merge_queue, "{c:?}");

    deliver(
        &app,
        &r,
        "pull_request",
        &pull_request("dequeued", "2019-05-15T15:23:00Z"),
    )
    .await;
    deliver(
        &app,
        &r,
        "pull_request",
        &pull_request("auto_merge_disabled", "2019-05-15T15:24:00Z"),
    )
    .await;
    let c = the_changeset(&app).await;
    assert!(!c.in_merge_queue && !c.auto_merge, "{c:?}");

    let events = timeline(&app, &c).await;
    assert_eq!(
        kinds_and_summaries(&events),
        [
            (
                "opened",
                "Codertocat opened #2 \"Update the README with new information.\""
            ),
            ("auto_merge_enabled", "Codertocat enabled auto-merge on #2"),
            ("enqueued", "Codertocat added #2 to the merge queue"),
            (
                "dequeued",
                "Codertocat removed #2 from the merge queue (MANUAL)"
            ),
            (
                "auto_merge_disabled",
                "Codertocat disabled auto-merge on #2"
            ),
        ],
        "{events:?}"
    );
    app.stop().await;
}

async fn a_dequeue_delivered_before_an_older_enqueue_leaves_it_out_of_the_queue(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let r = receiver(&app).await;
    // Enqueued at 15:22, dequeued at 15:23; the dequeue arrives first.
    deliver(
        &app,
        &r,
        "pull_request",
        &pull_request("dequeued", "2019-05-15T15:23:00Z"),
    )
    .await;
    deliver(
        &app,
        &r,
        "pull_request",
        &pull_request("enqueued", "2019-05-15T15:22:00Z"),
    )
    .await;
    let c = the_changeset(&app).await;
    assert!(!c.in_merge_queue, "the later dequeue wins: {c:?}");
    // The same for auto-merge: disabled at 15:25 arriving before enabled at 15:24.
    deliver(
        &app,
        &r,
        "pull_request",
        &pull_request("auto_merge_disabled", "2019-05-15T15:25:00Z"),
    )
    .await;
    deliver(
        &app,
        &r,
        "pull_request",
        &pull_request("auto_merge_enabled", "2019-05-15T15:24:00Z"),
    )
    .await;
    let c = the_changeset(&app).await;
    assert!(!c.auto_merge, "the later disable wins: {c:?}");
    // Both facts are in the timeline, by the host's time.
    let kinds: Vec<_> = timeline(&app, &c)
        .await
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "enqueued",
            "dequeued",
            "auto_merge_enabled",
            "auto_merge_disabled"
        ]
    );
    // And a newer enqueue does set it again.
    deliver(
        &app,
        &r,
        "pull_request",
        &pull_request("enqueued", "2019-05-15T15:26:00Z"),
    )
    .await;
    assert!(the_changeset(&app).await.in_merge_queue);
    app.stop().await;
}
