//! GitHub's merge queue and auto-merge end to end: `pull_request` `enqueued` / `dequeued` and
//! `auto_merge_enabled` / `auto_merge_disabled` (fixtures derived from the real
//! `pull_request.opened` payload, see `tests/fixtures/README.md`) posted signed over real HTTP,
//! processed by the worker and read back over gRPC, on SQLite and PostgreSQL: the timeline
//! entries, the changeset's `in_merge_queue` and `auto_merge` set and cleared, and out-of-order
//! delivery leaving what the later host time says. And `merge_group` (the real
//! `checks_requested` capture, and `destroyed` derived from it): recorded on the pull request its
//! head ref names when hookgate has it, else `IGNORED` with the reason; and checks of the merge
//! group's commit leaving the pull request's own check state alone.

mod common;

use common::{Engine, TestApp, fixture};
use hookgate::admin::proto::{
    Changeset, ChangesetEvent, CheckState, CodeHostKind, DeliveryState, ListChangesetEventsRequest,
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
    a_merge_group_is_recorded_on_the_pull_request_its_head_ref_names,
    a_merge_group_for_no_known_pull_request_is_ignored_with_the_reason,
    checks_of_a_merge_groups_commit_leave_the_pull_requests_check_state_alone,
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

/// The merge group's head commit in the fixture.
const GROUP_SHA: &str = "2ffea6db159f6b6c47a24e778fb9ef40cf6b1c7d";
/// A merge queue branch for Hello-World #2 into master.
const GROUP_REF_2: &str =
    "refs/heads/gh-readonly-queue/master/pr-2-ec26c3e57ca3a959ca5aad62de7213c562f8c821";

/// The merge group fixture `merge_group.<action>.json` made Hello-World's group for #2.
fn hello_world_group(action: &str) -> Value {
    let mut body = load(&format!("github/merge_group.{action}.json"));
    body["repository"] = load("github/pull_request.opened.json")["repository"].clone();
    body["merge_group"]["head_ref"] = json!(GROUP_REF_2);
    body["merge_group"]["base_ref"] = json!("refs/heads/master");
    body
}

async fn delivered(
    app: &TestApp,
    receiver: &(String, String),
    event: &str,
    body: &Value,
) -> hookgate::admin::proto::Delivery {
    app.deliver(CodeHostKind::Github, receiver, event, body)
        .await
}

async fn a_merge_group_is_recorded_on_the_pull_request_its_head_ref_names(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let r = receiver(&app).await;
    deliver(
        &app,
        &r,
        "pull_request",
        &load("github/pull_request.opened.json"),
    )
    .await;
    let before = the_changeset(&app).await;
    deliver(
        &app,
        &r,
        "merge_group",
        &hello_world_group("checks_requested"),
    )
    .await;
    deliver(&app, &r, "merge_group", &hello_world_group("destroyed")).await;
    // A resend adds nothing.
    deliver(
        &app,
        &r,
        "merge_group",
        &hello_world_group("checks_requested"),
    )
    .await;
    let after = the_changeset(&app).await;
    assert_eq!(
        after, before,
        "a merge group says nothing of the pull request's fields"
    );
    let events = timeline(&app, &after).await;
    let groups: Vec<_> = events
        .iter()
        .filter(|e| e.kind.starts_with("merge_group"))
        .map(|e| (e.kind.as_str(), e.external_id.as_str(), e.summary.as_str()))
        .collect();
    let destroyed_key = format!("{GROUP_SHA}/destroyed");
    assert_eq!(
        groups,
        [
            (
                "merge_group_checks_requested",
                GROUP_SHA,
                "the merge group 2ffea6d of #2 into master requested checks"
            ),
            (
                "merge_group_destroyed",
                destroyed_key.as_str(),
                "the merge group 2ffea6d of #2 into master was destroyed (merged)"
            ),
        ],
        "{events:?}"
    );
    app.stop().await;
}

async fn a_merge_group_for_no_known_pull_request_is_ignored_with_the_reason(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let r = receiver(&app).await;
    // The real capture: octo-org/octo-repo's group for #104, which hookgate has never seen.
    let d = delivered(
        &app,
        &r,
        "merge_group",
        &load("github/merge_group.checks_requested.json"),
    )
    .await;
    assert_eq!(d.state, DeliveryState::Ignored as i32, "{d:?}");
    assert_eq!(
        d.last_error,
        "merge group refs/heads/gh-readonly-queue/main/pr-104-929f8209d40f77f4abc622a499c93a83babdbe64 \
         is for #104, and no changeset of octo-org/octo-repo is #104"
    );
    // A head ref that is no merge queue branch names no pull request.
    let mut body = hello_world_group("destroyed");
    body["merge_group"]["head_ref"] = json!("refs/heads/changes");
    deliver(
        &app,
        &r,
        "pull_request",
        &load("github/pull_request.opened.json"),
    )
    .await;
    let d = delivered(&app, &r, "merge_group", &body).await;
    assert_eq!(d.state, DeliveryState::Ignored as i32, "{d:?}");
    assert!(
        d.last_error
            .starts_with("merge group head ref refs/heads/changes names no pull request"),
        "{}",
        d.last_error
    );
    // Neither created a changeset nor touched #2's timeline.
    let c = the_changeset(&app).await;
    assert!(
        timeline(&app, &c)
            .await
            .iter()
            .all(|e| !e.kind.starts_with("merge_group"))
    );
    let all = ChangesetServiceClient::new(app.channel().await)
        .list_changesets(app.req(ListChangesetsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.total_size, 1, "{all:?}");
    app.stop().await;
}

async fn checks_of_a_merge_groups_commit_leave_the_pull_requests_check_state_alone(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let r = receiver(&app).await;
    deliver(
        &app,
        &r,
        "pull_request",
        &load("github/pull_request.opened.json"),
    )
    .await;
    deliver(
        &app,
        &r,
        "check_run",
        &load("github/check_run.completed.json"),
    )
    .await;
    let before = the_changeset(&app).await;
    assert_eq!(before.check_state, CheckState::Passed as i32, "{before:?}");
    deliver(
        &app,
        &r,
        "merge_group",
        &hello_world_group("checks_requested"),
    )
    .await;

    // The same linter failing on the group's commit, on its queue branch; GitHub's listing of
    // the pull request is not taken as the pull request's head.
    let mut run = load("github/check_run.completed.json");
    run["check_run"]["head_sha"] = json!(GROUP_SHA);
    run["check_run"]["conclusion"] = json!("failure");
    run["check_run"]["completed_at"] = json!("2019-05-15T15:30:00Z");
    run["check_run"]["id"] = json!(128620999);
    run["check_run"]["check_suite"]["head_branch"] =
        json!(GROUP_REF_2.trim_start_matches("refs/heads/"));
    run["check_run"]["check_suite"]["head_sha"] = json!(GROUP_SHA);
    run["check_run"]["pull_requests"][0]["head"]["sha"] = json!(GROUP_SHA);
    run["check_run"]["pull_requests"][0]["head"]["ref"] =
        json!(GROUP_REF_2.trim_start_matches("refs/heads/"));
    delivered(&app, &r, "check_run", &run).await;
    // And a failing commit status on the group's commit.
    let mut status = load("github/status.json");
    status["sha"] = json!(GROUP_SHA);
    status["state"] = json!("failure");
    delivered(&app, &r, "status", &status).await;

    let after = the_changeset(&app).await;
    assert_eq!(after.check_state, CheckState::Passed as i32, "{after:?}");
    assert_eq!(after.head_sha, before.head_sha);
    assert_eq!(after.head_ref, before.head_ref);
    app.stop().await;
}
