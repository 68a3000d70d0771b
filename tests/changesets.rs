//! Batch-change sync end to end: real GitHub deliveries posted over HTTP, processed by the worker,
//! and the changeset read back over gRPC, on SQLite and PostgreSQL. The fixtures are edited (and
//! re-signed) where a story needs a later time, another head commit or a verdict the published
//! example does not have.

mod common;

use common::{Engine, TestApp, fixture};
use hookgate::admin::proto::{
    ChangesetState, CheckState, CodeHostKind, CreateReceiverRequest, DeliveryState,
    GetChangesetRequest, ListChangesetEventsRequest, ListChangesetsRequest,
    ListRepositoriesRequest, ReceiverOptions, RegisterRepositoryRequest, ReviewState,
    changeset_service_client::ChangesetServiceClient,
    repository_service_client::RepositoryServiceClient,
};
use serde_json::{Value, json};

const OLD_HEAD: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
const NEW_HEAD: &str = "1111111111111111111111111111111111111111";

fn load(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).expect("fixtures are JSON")
}

/// One delivery of a story: the event header and the (edited) body.
struct Step {
    name: &'static str,
    event: &'static str,
    body: Value,
}

/// Codertocat/Hello-World#2: opened → approved → check failed → new commit → check passed →
/// merged, each with the host's time of that change.
fn github_story() -> Vec<Step> {
    let opened = load("github/pull_request.opened.json");

    let mut approved = load("github/pull_request_review.submitted.json");
    approved["review"]["state"] = json!("approved");
    approved["review"]["user"]["login"] = json!("reviewer-1");

    let mut failed = load("github/check_run.completed.json");
    failed["check_run"]["conclusion"] = json!("failure");
    failed["check_run"]["completed_at"] = json!("2019-05-15T15:21:00Z");

    let mut synchronize = load("github/pull_request.synchronize.json");
    synchronize["pull_request"]["head"]["sha"] = json!(NEW_HEAD);
    synchronize["pull_request"]["updated_at"] = json!("2019-05-15T15:22:00Z");

    let mut passed = load("github/check_run.completed.json");
    passed["check_run"]["head_sha"] = json!(NEW_HEAD);
    passed["check_run"]["pull_requests"][0]["head"]["sha"] = json!(NEW_HEAD);
    passed["check_run"]["completed_at"] = json!("2019-05-15T15:23:00Z");
    // The new commit's run is another run than the first (128620228).
    passed["check_run"]["id"] = json!(128620229);

    let mut merged = load("github/pull_request.closed.json");
    merged["pull_request"]["merged"] = json!(true);
    merged["pull_request"]["merged_at"] = json!("2019-05-15T15:24:00Z");
    merged["pull_request"]["updated_at"] = json!("2019-05-15T15:24:00Z");
    merged["pull_request"]["head"]["sha"] = json!(NEW_HEAD);

    vec![
        Step {
            name: "opened",
            event: "pull_request",
            body: opened,
        },
        Step {
            name: "approved",
            event: "pull_request_review",
            body: approved,
        },
        Step {
            name: "check failed",
            event: "check_run",
            body: failed,
        },
        Step {
            name: "new commit",
            event: "pull_request",
            body: synchronize,
        },
        Step {
            name: "check passed",
            event: "check_run",
            body: passed,
        },
        Step {
            name: "merged",
            event: "pull_request",
            body: merged,
        },
    ]
}

async fn github_receiver(app: &TestApp, options: Option<ReceiverOptions>) -> (String, String) {
    let created = app
        .receivers()
        .await
        .create_receiver(app.req(CreateReceiverRequest {
            name: "github".into(),
            code_host_kind: CodeHostKind::Github as i32,
            code_host_urn: "https://github.com".into(),
            options,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    (created.receiver.unwrap().id, created.secret)
}

async fn changesets(app: &TestApp) -> ChangesetServiceClient<tonic::transport::Channel> {
    ChangesetServiceClient::new(app.channel().await)
}

/// The one changeset of Codertocat/Hello-World#2, read over gRPC.
/// How many entries a changeset's timeline has.
async fn timeline_len(app: &TestApp, changeset_id: String) -> usize {
    changesets(app)
        .await
        .list_changeset_events(app.req(ListChangesetEventsRequest {
            changeset_id,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .events
        .len()
}

async fn hello_world_2(app: &TestApp) -> hookgate::admin::proto::Changeset {
    let list = changesets(app)
        .await
        .list_changesets(app.req(ListChangesetsRequest {
            repository: "Codertocat/Hello-World".into(),
            number: 2,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.total_size, 1, "{list:?}");
    list.changesets.into_iter().next().unwrap()
}

/// What a person reads on the pull request's page at the end of the story.
fn assert_end_of_story(c: &hookgate::admin::proto::Changeset) {
    assert_eq!(c.state, ChangesetState::Merged as i32, "{c:?}");
    assert_eq!(c.review_state, ReviewState::Approved as i32, "{c:?}");
    assert_eq!(c.check_state, CheckState::Passed as i32, "{c:?}");
    assert_eq!(c.head_sha, NEW_HEAD);
    assert_eq!(c.title, "Update the README with new information.");
    assert_eq!(c.number, 2);
    assert_eq!(c.repository, "Codertocat/Hello-World");
    assert_eq!(c.code_host_urn, "https://github.com/");
    assert_eq!(c.url, "https://github.com/Codertocat/Hello-World/pull/2");
    assert_eq!(c.author, "Codertocat");
    assert_eq!(c.head_ref, "changes");
    assert_eq!(c.base_ref, "master");
}

on_both_engines!(
    a_github_pull_request_is_followed_from_opened_to_merged,
    any_order_of_the_github_story_ends_in_the_same_state,
    a_reopen_older_than_the_close_leaves_it_closed_and_the_timeline_keeps_both,
    a_duplicate_or_redelivered_event_changes_nothing,
    a_status_is_matched_to_the_changeset_by_its_head_commit_even_when_it_comes_first,
    events_of_another_code_host_or_unregistered_repositories_are_ignored_with_a_reason,
    repositories_are_registered_listed_and_deleted,
);

async fn a_github_pull_request_is_followed_from_opened_to_merged(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let receiver = github_receiver(&app, None).await;
    let expected = [
        (
            ChangesetState::Open,
            ReviewState::Pending,
            CheckState::Unknown,
            OLD_HEAD,
        ),
        (
            ChangesetState::Open,
            ReviewState::Approved,
            CheckState::Unknown,
            OLD_HEAD,
        ),
        (
            ChangesetState::Open,
            ReviewState::Approved,
            CheckState::Failed,
            OLD_HEAD,
        ),
        (
            ChangesetState::Open,
            ReviewState::Approved,
            CheckState::Unknown,
            NEW_HEAD,
        ),
        (
            ChangesetState::Open,
            ReviewState::Approved,
            CheckState::Passed,
            NEW_HEAD,
        ),
        (
            ChangesetState::Merged,
            ReviewState::Approved,
            CheckState::Passed,
            NEW_HEAD,
        ),
    ];
    for (step, (state, review, check, head)) in github_story().iter().zip(expected) {
        let d = app
            .deliver(CodeHostKind::Github, &receiver, step.event, &step.body)
            .await;
        assert_eq!(
            d.state,
            DeliveryState::Processed as i32,
            "{}: {d:?}",
            step.name
        );
        let c = hello_world_2(&app).await;
        assert_eq!(
            (c.state, c.review_state, c.check_state, c.head_sha.as_str()),
            (state as i32, review as i32, check as i32, head),
            "after {}",
            step.name
        );
    }
    let c = hello_world_2(&app).await;
    assert_end_of_story(&c);

    // The timeline has one entry per event, oldest first by the host's time.
    let timeline = changesets(&app)
        .await
        .list_changeset_events(app.req(ListChangesetEventsRequest {
            changeset_id: c.id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(timeline.events.len(), 6, "{timeline:?}");
    let times: Vec<_> = timeline
        .events
        .iter()
        .map(|e| e.occur_time.map(|t| (t.seconds, t.nanos)))
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert!(
        timeline
            .events
            .iter()
            .all(|e| !e.delivery_id.is_empty() && !e.summary.is_empty())
    );

    let got = changesets(&app)
        .await
        .get_changeset(app.req(GetChangesetRequest { id: c.id.clone() }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, c);

    // The listing's filters.
    let count = |req: ListChangesetsRequest| {
        let req = app.req(req);
        let app = &app;
        async move {
            changesets(app)
                .await
                .list_changesets(req)
                .await
                .unwrap()
                .into_inner()
                .total_size
        }
    };
    let merged = ChangesetState::Merged as i32;
    let open = ChangesetState::Open as i32;
    assert_eq!(
        count(ListChangesetsRequest {
            states: vec![merged],
            ..Default::default()
        })
        .await,
        1
    );
    assert_eq!(
        count(ListChangesetsRequest {
            states: vec![open],
            ..Default::default()
        })
        .await,
        0
    );
    assert_eq!(
        count(ListChangesetsRequest {
            receiver_id: receiver.0.clone(),
            ..Default::default()
        })
        .await,
        1
    );
    assert_eq!(
        count(ListChangesetsRequest {
            code_host_urn: "https://gitlab.com".into(),
            ..Default::default()
        })
        .await,
        0
    );
    assert_eq!(
        count(ListChangesetsRequest {
            repository: "Codertocat/Hello-World".into(),
            number: 3,
            ..Default::default()
        })
        .await,
        0
    );
    app.stop().await;
}

async fn any_order_of_the_github_story_ends_in_the_same_state(engine: Engine) {
    // In order, reversed, and two interleavings that put late news first.
    let orders: [[usize; 6]; 3] = [[5, 4, 3, 2, 1, 0], [3, 0, 5, 1, 4, 2], [2, 4, 1, 5, 0, 3]];
    for order in orders {
        let app = TestApp::spawn(engine).await;
        let receiver = github_receiver(&app, None).await;
        let story = github_story();
        for &i in &order {
            let step = &story[i];
            let d = app
                .deliver(CodeHostKind::Github, &receiver, step.event, &step.body)
                .await;
            assert_eq!(
                d.state,
                DeliveryState::Processed as i32,
                "{}: {d:?}",
                step.name
            );
        }
        let c = hello_world_2(&app).await;
        assert_end_of_story(&c);
        app.stop().await;
    }
}

async fn a_reopen_older_than_the_close_leaves_it_closed_and_the_timeline_keeps_both(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let receiver = github_receiver(&app, None).await;
    let mut closed = load("github/pull_request.closed.json");
    closed["pull_request"]["updated_at"] = json!("2019-05-15T10:05:00Z");
    let mut reopened = load("github/pull_request.reopened.json");
    reopened["pull_request"]["updated_at"] = json!("2019-05-15T10:00:00Z");
    app.deliver(CodeHostKind::Github, &receiver, "pull_request", &closed)
        .await;
    app.deliver(CodeHostKind::Github, &receiver, "pull_request", &reopened)
        .await;
    let c = hello_world_2(&app).await;
    assert_eq!(c.state, ChangesetState::Closed as i32);

    let timeline = changesets(&app)
        .await
        .list_changeset_events(app.req(ListChangesetEventsRequest {
            changeset_id: c.id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let kinds: Vec<_> = timeline.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["reopened", "closed"], "ordered by the host's time");

    // News that is really newer does change it.
    let mut later = load("github/pull_request.reopened.json");
    later["pull_request"]["updated_at"] = json!("2019-05-15T10:10:00Z");
    app.deliver(CodeHostKind::Github, &receiver, "pull_request", &later)
        .await;
    assert_eq!(hello_world_2(&app).await.state, ChangesetState::Open as i32);
    app.stop().await;
}

async fn a_duplicate_or_redelivered_event_changes_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let receiver = github_receiver(&app, None).await;
    let story = github_story();
    for step in &story[..3] {
        app.deliver(CodeHostKind::Github, &receiver, step.event, &step.body)
            .await;
    }
    let before = hello_world_2(&app).await;
    assert_eq!(timeline_len(&app, before.id.clone()).await, 3);

    // The same delivery again (same key): acknowledged, not processed.
    let body = serde_json::to_vec(&story[1].body).unwrap();
    let headers = common::host_headers(
        CodeHostKind::Github,
        "pull_request_review",
        "dup-1",
        Some(&receiver.1),
        &body,
    );
    let first = app.post(&receiver.0, &headers, body.clone()).await;
    let first_id = common::json_body(first).await["delivery_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.wait_until_done(&first_id).await;
    let again = app.post(&receiver.0, &headers, body).await;
    assert_eq!(again.status(), 200);
    // An admin redelivers a processed delivery: processed again, nothing changes.
    app.deliveries()
        .await
        .redeliver_delivery(app.req(hookgate::admin::proto::RedeliverDeliveryRequest {
            id: first_id.clone(),
        }))
        .await
        .unwrap();
    let d = app
        .wait_for_state(&first_id, DeliveryState::Processed)
        .await;
    assert_eq!(d.attempts, 1, "attempts restart with a redelivery");

    // The same event under another delivery key (a host that resends with a new id).
    app.deliver(
        CodeHostKind::Github,
        &receiver,
        "pull_request_review",
        &story[1].body,
    )
    .await;

    let after = hello_world_2(&app).await;
    assert_eq!(after, before);
    assert_eq!(timeline_len(&app, after.id).await, 3);
    app.stop().await;
}

async fn a_status_is_matched_to_the_changeset_by_its_head_commit_even_when_it_comes_first(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let receiver = github_receiver(&app, None).await;
    app.deliver(
        CodeHostKind::Github,
        &receiver,
        "pull_request",
        &load("github/pull_request.opened.json"),
    )
    .await;
    let mut status = load("github/status.json");
    status["sha"] = json!(OLD_HEAD);
    status["state"] = json!("failure");
    let d = app
        .deliver(CodeHostKind::Github, &receiver, "status", &status)
        .await;
    assert_eq!(d.state, DeliveryState::Processed as i32, "{d:?}");
    assert_eq!(
        hello_world_2(&app).await.check_state,
        CheckState::Failed as i32
    );

    // A status for a commit no changeset has as its head yet is kept, and counts once a
    // pull request event moves the head there (statuses often beat the push's PR event).
    let early = load("github/status.json");
    let d = app
        .deliver(CodeHostKind::Github, &receiver, "status", &early)
        .await;
    assert_eq!(d.state, DeliveryState::Processed as i32, "{d:?}");
    assert_eq!(
        hello_world_2(&app).await.check_state,
        CheckState::Failed as i32
    );
    let mut moved = load("github/pull_request.synchronize.json");
    moved["pull_request"]["head"]["sha"] = json!("6113728f27ae82c7b1a177c8d03f9e96e0adf246");
    moved["pull_request"]["updated_at"] = json!("2019-05-15T15:30:00Z");
    app.deliver(CodeHostKind::Github, &receiver, "pull_request", &moved)
        .await;
    let c = hello_world_2(&app).await;
    assert_eq!(c.head_sha, "6113728f27ae82c7b1a177c8d03f9e96e0adf246");
    assert_eq!(
        c.check_state,
        CheckState::Passed as i32,
        "the early success counts"
    );

    // A head given abbreviated is the kept results of every commit that starts with it, and of
    // no other: not those of the commit whose hash starts with the abbreviation's successor.
    let abbreviated = "5e7b3a9c0d1f";
    let mut success = load("github/status.json");
    success["sha"] = json!(format!("{abbreviated}2468ace02468ace02468ace02468"));
    success["state"] = json!("success");
    let mut failure = load("github/status.json");
    failure["sha"] = json!("5e7b3a9c0d202468ace02468ace02468ace02468");
    failure["state"] = json!("failure");
    for status in [&success, &failure] {
        let d = app
            .deliver(CodeHostKind::Github, &receiver, "status", status)
            .await;
        assert_eq!(d.state, DeliveryState::Processed as i32, "{d:?}");
    }
    let mut moved = load("github/pull_request.synchronize.json");
    moved["pull_request"]["head"]["sha"] = json!(abbreviated);
    moved["pull_request"]["updated_at"] = json!("2019-05-15T15:40:00Z");
    app.deliver(CodeHostKind::Github, &receiver, "pull_request", &moved)
        .await;
    let c = hello_world_2(&app).await;
    assert_eq!(c.head_sha, abbreviated);
    assert_eq!(
        c.check_state,
        CheckState::Passed as i32,
        "only the success on a commit starting with the abbreviated head counts: {c:?}"
    );
    app.stop().await;
}

async fn events_of_another_code_host_or_unregistered_repositories_are_ignored_with_a_reason(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    // A receiver for another host than the payload's repository.
    let created = app
        .receivers()
        .await
        .create_receiver(app.req(CreateReceiverRequest {
            name: "ghe".into(),
            code_host_kind: CodeHostKind::Github as i32,
            code_host_urn: "https://ghe.example.com".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let ghe = (created.receiver.unwrap().id, created.secret);
    let opened = load("github/pull_request.opened.json");
    let d = app
        .deliver(CodeHostKind::Github, &ghe, "pull_request", &opened)
        .await;
    assert_eq!(d.state, DeliveryState::Ignored as i32);
    assert!(
        d.last_error.contains("not on this receiver's code host"),
        "{}",
        d.last_error
    );

    // ignore_unmatched: only registered repositories are acted on.
    let strict = github_receiver(
        &app,
        Some(ReceiverOptions {
            ignore_unmatched: true,
            ..Default::default()
        }),
    )
    .await;
    let d = app
        .deliver(CodeHostKind::Github, &strict, "pull_request", &opened)
        .await;
    assert_eq!(d.state, DeliveryState::Ignored as i32);
    assert!(d.last_error.contains("not registered"), "{}", d.last_error);
    let none = changesets(&app)
        .await
        .list_changesets(app.req(ListChangesetsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(none.total_size, 0, "ignored events create nothing");

    RepositoryServiceClient::new(app.channel().await)
        .register_repository(app.req(RegisterRepositoryRequest {
            code_host_urn: "https://github.com".into(),
            name: "Codertocat/Hello-World".into(),
            external_id: "186853002".into(),
        }))
        .await
        .unwrap();
    let d = app
        .deliver(CodeHostKind::Github, &strict, "pull_request", &opened)
        .await;
    assert_eq!(d.state, DeliveryState::Processed as i32, "{d:?}");
    assert_eq!(hello_world_2(&app).await.state, ChangesetState::Open as i32);

    // An issue comment that is not on a pull request says nothing to sync.
    let comment = load("github/issue_comment.created.json");
    let d = app
        .deliver(CodeHostKind::Github, &strict, "issue_comment", &comment)
        .await;
    assert_eq!(d.state, DeliveryState::Ignored as i32, "{d:?}");
    app.stop().await;
}

async fn repositories_are_registered_listed_and_deleted(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let mut repos = RepositoryServiceClient::new(app.channel().await);
    let registered = repos
        .register_repository(app.req(RegisterRepositoryRequest {
            code_host_urn: "HTTPS://GitHub.com".into(),
            name: " octo-org/hello-world ".into(),
            external_id: "42".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(registered.code_host_urn, "https://github.com/");
    assert_eq!(registered.name, "octo-org/hello-world");
    assert!(registered.registered);
    // Registering again keeps the same repository.
    let again = repos
        .register_repository(app.req(RegisterRepositoryRequest {
            code_host_urn: "https://github.com/".into(),
            name: "octo-org/hello-world".into(),
            external_id: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.id, registered.id);
    assert_eq!(again.external_id, "42");

    // The first event that names a repository creates it, unregistered, with its URLs.
    let receiver = github_receiver(&app, None).await;
    app.deliver(
        CodeHostKind::Github,
        &receiver,
        "pull_request",
        &load("github/pull_request.opened.json"),
    )
    .await;
    let listed = repos
        .list_repositories(app.req(ListRepositoriesRequest {
            code_host_urn: "https://github.com".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size, 2);
    let seen = listed
        .repositories
        .iter()
        .find(|r| r.name == "Codertocat/Hello-World")
        .unwrap();
    assert!(!seen.registered);
    assert_eq!(seen.url, "https://github.com/Codertocat/Hello-World");
    assert!(
        seen.clone_urls
            .contains(&"https://github.com/Codertocat/Hello-World.git".to_owned()),
        "{seen:?}"
    );

    for bad in [
        RegisterRepositoryRequest {
            code_host_urn: "github.com".into(),
            name: "a/b".into(),
            ..Default::default()
        },
        RegisterRepositoryRequest {
            code_host_urn: "https://github.com".into(),
            name: "  ".into(),
            ..Default::default()
        },
    ] {
        assert_eq!(
            repos
                .register_repository(app.req(bad))
                .await
                .unwrap_err()
                .code(),
            tonic::Code::InvalidArgument
        );
    }

    // Deleting a repository deletes its changesets.
    repos
        .delete_repository(app.req(hookgate::admin::proto::DeleteRepositoryRequest {
            id: seen.id.clone(),
        }))
        .await
        .unwrap();
    let none = changesets(&app)
        .await
        .list_changesets(app.req(ListChangesetsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(none.total_size, 0);
    let err = repos
        .get_repository(app.req(hookgate::admin::proto::GetRepositoryRequest {
            id: seen.id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    app.stop().await;
}
