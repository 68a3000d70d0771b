//! What a timeline entry is: the host's own key for what happened (`external_id`), not its time
//! and words. Real comment payloads of each host, edited into two comments by one person in the
//! same second, posted signed over HTTP, processed by the worker and read back over gRPC, on
//! SQLite and PostgreSQL; and an entry of an older hookgate, kept by the migration with a key
//! derived from what it stored; and facts of one host time, listed and applied in the order they
//! arrived; and GitHub's review threads, resolved and unresolved, keyed by the thread.

mod common;

use common::{Engine, TestApp, TestDatabase, fixture};
use hookgate::admin::proto::{
    ChangesetEvent, CodeHostKind, DeliveryState, ListChangesetEventsRequest, ListChangesetsRequest,
    changeset_service_client::ChangesetServiceClient,
};
use serde_json::{Value, json};

fn load(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).expect("fixtures are JSON")
}

/// One host's comments on one pull request: `comment(id, text, time)` makes a real comment
/// payload of that host say it.
struct Comments {
    kind: CodeHostKind,
    urn: &'static str,
    /// The event header value.
    event: &'static str,
    repository: &'static str,
    number: i64,
    /// Two ids the host gave two comments, and a third.
    ids: [&'static str; 3],
    /// One instant as the host writes it, and an earlier one.
    same_second: &'static str,
    earlier: &'static str,
    comment: fn(&str, &str, &str) -> Value,
}

fn github() -> Comments {
    Comments {
        kind: CodeHostKind::Github,
        urn: "https://github.com",
        event: "issue_comment",
        repository: "Codertocat/Hello-World",
        number: 1,
        // The case: two comments by Codertocat in the same second.
        ids: ["618478455", "618478456", "618478400"],
        same_second: "2019-05-15T15:20:21Z",
        earlier: "2019-05-15T15:19:00Z",
        comment: github_comment,
    }
}

/// The fixture `file` with the comment object at `at` made comment `id`, saying `body` (at the
/// pointer `body_at` in it), with `time` in each of `time_fields`.
fn comment_payload(
    file: &str,
    at: &str,
    id: &str,
    (body_at, body): (&str, &str),
    (time_fields, time): (&[&str], Value),
) -> Value {
    let mut payload = load(file);
    let comment = payload
        .pointer_mut(at)
        .expect("the fixture has the comment");
    comment["id"] = json!(id.parse::<i64>().expect("a numeric id"));
    *comment
        .pointer_mut(body_at)
        .expect("the fixture's comment has a body") = json!(body);
    for field in time_fields {
        comment[*field] = time.clone();
    }
    payload
}

fn github_comment(id: &str, body: &str, time: &str) -> Value {
    let times: &[&str] = &["created_at", "updated_at"];
    let mut payload = comment_payload(
        "github/issue_comment.created.json",
        "/comment",
        id,
        ("/body", body),
        (times, json!(time)),
    );
    // The published example comments on an issue; this one is a pull request's conversation.
    payload["issue"]["pull_request"] = json!({
        "url": "https://api.github.com/repos/Codertocat/Hello-World/pulls/1",
        "html_url": "https://github.com/Codertocat/Hello-World/pull/1",
        "merged_at": null
    });
    payload
}

fn gitlab() -> Comments {
    Comments {
        kind: CodeHostKind::Gitlab,
        urn: "http://example.com",
        event: "Note Hook",
        repository: "gitlab-org/gitlab-test",
        number: 1,
        ids: ["1244", "1245", "1200"],
        same_second: "2015-05-17 18:21:36 UTC",
        earlier: "2015-05-17 18:20:00 UTC",
        comment: |id, body, time| {
            comment_payload(
                "gitlab/note.merge_request.json",
                "/object_attributes",
                id,
                ("/note", body),
                (&["created_at", "updated_at"], json!(time)),
            )
        },
    }
}

fn bitbucket_server() -> Comments {
    Comments {
        kind: CodeHostKind::BitbucketServer,
        urn: "https://server.bitbucket.local",
        event: "pr:comment:added",
        repository: "~gopher/webhook-test",
        number: 2,
        ids: ["167", "168", "150"],
        same_second: "2019-03-01T10:08:35+0100",
        earlier: "2019-03-01T10:07:00+0100",
        comment: |id, body, time| {
            // The comment's own dates (epoch milliseconds) agree with the event's `date`.
            let ms = chrono::DateTime::parse_from_str(time, "%Y-%m-%dT%H:%M:%S%z")
                .expect("the test's own time")
                .timestamp_millis();
            let mut payload = comment_payload(
                "bitbucket-server/pr_comment_added.json",
                "/comment",
                id,
                ("/text", body),
                (&["createdDate", "updatedDate"], json!(ms)),
            );
            payload["date"] = json!(time);
            payload
        },
    }
}

fn bitbucket_cloud() -> Comments {
    Comments {
        kind: CodeHostKind::BitbucketCloud,
        urn: "https://bitbucket.org",
        event: "pullrequest:comment_created",
        repository: "rutvijmehta-harness/spring-cloud-alibaba",
        number: 1,
        ids: ["311512047", "311512048", "311512000"],
        same_second: "2022-06-23T22:10:09.939978+00:00",
        earlier: "2022-06-23T22:09:00.000000+00:00",
        comment: |id, body, time| {
            comment_payload(
                "bitbucket-cloud/pullrequest_comment_created.json",
                "/comment",
                id,
                ("/content/raw", body),
                (&["created_on", "updated_on"], json!(time)),
            )
        },
    }
}

fn gitea() -> Comments {
    Comments {
        kind: CodeHostKind::Gitea,
        urn: "http://localhost:3000",
        event: "pull_request_comment",
        repository: "example/example",
        number: 2,
        ids: ["6", "7", "3"],
        same_second: "2022-03-09T16:31:34+09:00",
        earlier: "2022-03-09T16:30:00+09:00",
        comment: |id, body, time| {
            comment_payload(
                "gitea/pull_request_comment.created.json",
                "/comment",
                id,
                ("/body", body),
                (&["created_at", "updated_at"], json!(time)),
            )
        },
    }
}

fn azure_devops() -> Comments {
    Comments {
        kind: CodeHostKind::AzureDevops,
        urn: "https://dev.azure.com/fabrikam/",
        event: "ms.vss-code.git-pullrequest-comment-event",
        repository: "Fabrikam/Fabrikam",
        number: 1,
        // Comment ids count within a thread: the key is `<thread>/<comment>`.
        ids: ["5/2", "5/3", "4/1"],
        same_second: "2014-06-17T16:58:33Z",
        earlier: "2014-06-17T16:57:00Z",
        comment: azure_devops_comment,
    }
}

/// The resource version 2.0 comment fixture made comment `<thread>/<comment>` of `id`, saying
/// `body`, last updated at `time`, as a delivery of its own (a fresh `id`, no subscription /
/// notification ids: Azure DevOps keys a delivery by its body).
fn azure_devops_comment(id: &str, body: &str, time: &str) -> Value {
    let (thread, comment) = id.split_once('/').expect("<thread>/<comment>");
    let mut payload = load("azure-devops/ms.vss-code.git-pullrequest-comment-event.json");
    let envelope = payload.as_object_mut().expect("an object");
    envelope.remove("subscriptionId");
    envelope.remove("notificationId");
    envelope.insert("id".into(), json!(uuid::Uuid::new_v4().to_string()));
    let c = &mut payload["resource"]["comment"];
    c["id"] = json!(comment.parse::<i64>().expect("a numeric id"));
    c["content"] = json!(body);
    c["publishedDate"] = json!(time);
    c["lastUpdatedDate"] = json!(time);
    c["_links"]["self"]["href"] = json!(format!(
        "https://fabrikam.visualstudio.com/DefaultCollection/_apis/git/repositories/4bc14d40-c903-45e2-872e-0462c7748079/pullRequests/1/threads/{thread}/comments/{comment}"
    ));
    payload
}

/// The timeline of the one changeset of `repository` #`number`, oldest first.
async fn timeline(app: &TestApp, repository: &str, number: i64) -> Vec<ChangesetEvent> {
    let mut client = ChangesetServiceClient::new(app.channel().await);
    let list = client
        .list_changesets(app.req(ListChangesetsRequest {
            repository: repository.into(),
            number,
            ..Default::default()
        }))
        .await
        .expect("changesets are listed")
        .into_inner();
    assert_eq!(list.total_size, 1, "{list:?}");
    client
        .list_changeset_events(app.req(ListChangesetEventsRequest {
            changeset_id: list.changesets[0].id.clone(),
            ..Default::default()
        }))
        .await
        .expect("the timeline is listed")
        .into_inner()
        .events
}

fn keys(events: &[ChangesetEvent]) -> Vec<&str> {
    events.iter().map(|e| e.external_id.as_str()).collect()
}

/// Posts `body` signed under a fresh delivery id and expects it processed.
async fn deliver(app: &TestApp, host: &Comments, receiver: &(String, String), body: &Value) {
    let d = app.deliver(host.kind, receiver, host.event, body).await;
    assert_eq!(
        d.state,
        DeliveryState::Processed as i32,
        "{}: {}",
        d.event,
        d.last_error
    );
}

async fn two_comments_in_one_second_are_two_entries(engine: Engine, host: Comments) {
    let app = TestApp::spawn(engine).await;
    let receiver = app.create_receiver("comments", host.kind, host.urn).await;
    let [first, second, third] = host.ids;
    let comment = |id, body, time| (host.comment)(id, body, time);
    let same = host.same_second;

    deliver(&app, &host, &receiver, &comment(first, "Comment", same)).await;
    deliver(
        &app,
        &host,
        &receiver,
        &comment(second, "Another comment", same),
    )
    .await;
    let events = timeline(&app, host.repository, host.number).await;
    assert_eq!(keys(&events), [first, second], "{events:?}");
    // By one person, at one time, told the same way: only the host's key tells them apart.
    assert_eq!(events[0].summary, events[1].summary);
    assert_eq!(events[0].occur_time, events[1].occur_time);
    assert_eq!(events[0].actor, events[1].actor);

    // Each sent again, as a host that resends under a new delivery id.
    deliver(
        &app,
        &host,
        &receiver,
        &comment(second, "Another comment", same),
    )
    .await;
    deliver(&app, &host, &receiver, &comment(first, "Comment", same)).await;
    let again = timeline(&app, host.repository, host.number).await;
    assert_eq!(keys(&again), [first, second], "{again:?}");
    assert_eq!(again, events, "a resend changes no entry");

    // An earlier comment arriving last takes its place by the host's time; the two of the same
    // second stay in their order of arrival.
    deliver(
        &app,
        &host,
        &receiver,
        &comment(third, "Earlier", host.earlier),
    )
    .await;
    let events = timeline(&app, host.repository, host.number).await;
    assert_eq!(keys(&events), [third, first, second], "{events:?}");
    let times: Vec<_> = events
        .iter()
        .map(|e| e.occur_time.map(|t| (t.seconds, t.nanos)))
        .collect();
    assert!(times[0] < times[1] && times[1] == times[2], "{times:?}");
    app.stop().await;
}

on_both_engines!(
    two_github_comments_in_one_second_are_two_entries,
    two_gitlab_notes_in_one_second_are_two_entries,
    two_bitbucket_server_comments_in_one_second_are_two_entries,
    two_bitbucket_cloud_comments_in_one_second_are_two_entries,
    two_gitea_comments_in_one_second_are_two_entries,
    two_azure_devops_comments_in_one_second_are_two_entries,
    an_edited_comment_updates_its_entry_and_a_deleted_one_is_recorded,
    an_entry_of_an_older_hookgate_is_kept_with_a_key_derived_from_what_it_stored,
    a_resolved_and_unresolved_review_thread_are_entries_keyed_by_the_thread,
);

async fn two_github_comments_in_one_second_are_two_entries(engine: Engine) {
    two_comments_in_one_second_are_two_entries(engine, github()).await;
}

async fn two_gitlab_notes_in_one_second_are_two_entries(engine: Engine) {
    two_comments_in_one_second_are_two_entries(engine, gitlab()).await;
}

async fn two_bitbucket_server_comments_in_one_second_are_two_entries(engine: Engine) {
    two_comments_in_one_second_are_two_entries(engine, bitbucket_server()).await;
}

async fn two_bitbucket_cloud_comments_in_one_second_are_two_entries(engine: Engine) {
    two_comments_in_one_second_are_two_entries(engine, bitbucket_cloud()).await;
}

async fn two_gitea_comments_in_one_second_are_two_entries(engine: Engine) {
    two_comments_in_one_second_are_two_entries(engine, gitea()).await;
}

async fn two_azure_devops_comments_in_one_second_are_two_entries(engine: Engine) {
    two_comments_in_one_second_are_two_entries(engine, azure_devops()).await;
}

async fn an_edited_comment_updates_its_entry_and_a_deleted_one_is_recorded(engine: Engine) {
    let host = github();
    let app = TestApp::spawn(engine).await;
    let receiver = app.create_receiver("comments", host.kind, host.urn).await;
    let same = host.same_second;
    let first = github_comment("618478455", "Comment", same);
    let second = github_comment("618478456", "Another comment", same);
    deliver(&app, &host, &receiver, &first).await;
    deliver(&app, &host, &receiver, &second).await;

    // The first edited a minute later: its entry says so, and keeps its place and time.
    let mut edited = first.clone();
    edited["action"] = json!("edited");
    edited["comment"]["body"] = json!("Comment, edited");
    edited["comment"]["updated_at"] = json!("2019-05-15T15:21:21Z");
    edited["changes"] = json!({"body": {"from": "Comment"}});
    deliver(&app, &host, &receiver, &edited).await;
    // The original, resent after the edit, does not undo it.
    deliver(&app, &host, &receiver, &first).await;
    let events = timeline(&app, host.repository, host.number).await;
    assert_eq!(keys(&events), ["618478455", "618478456"], "{events:?}");
    assert_eq!(events[0].summary, "Codertocat edited a comment on #1");
    assert_eq!(events[0].occur_time, events[1].occur_time);
    assert_eq!(events[1].summary, "Codertocat commented on #1");

    // The second deleted: an entry of its own, once however often it is sent.
    let mut deleted = second.clone();
    deleted["action"] = json!("deleted");
    deleted["issue"]["updated_at"] = json!("2019-05-15T15:22:00Z");
    deliver(&app, &host, &receiver, &deleted).await;
    deliver(&app, &host, &receiver, &deleted).await;
    let events = timeline(&app, host.repository, host.number).await;
    assert_eq!(
        keys(&events),
        ["618478455", "618478456", "618478456/deleted"],
        "{events:?}"
    );
    assert_eq!(events[2].summary, "Codertocat deleted a comment on #1");
    app.stop().await;
}

/// GitHub's `pull_request_review_thread` resolved and unresolved (the real fixtures, one
/// thread of Hello-World #2): one entry of each kind keyed by the thread's id, a resend changing
/// neither, a later resolution updating the resolved entry rather than adding one.
async fn a_resolved_and_unresolved_review_thread_are_entries_keyed_by_the_thread(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let receiver = app
        .create_receiver("threads", CodeHostKind::Github, "https://github.com")
        .await;
    let host = Comments {
        event: "pull_request_review_thread",
        ..github()
    };
    let resolved = load("github/pull_request_review_thread.resolved.json");
    let mut unresolved = load("github/pull_request_review_thread.unresolved.json");
    unresolved["pull_request"]["updated_at"] = json!("2019-05-15T15:21:00Z");
    deliver(&app, &host, &receiver, &resolved).await;
    deliver(&app, &host, &receiver, &unresolved).await;
    deliver(&app, &host, &receiver, &resolved).await;
    let events = timeline(&app, "Codertocat/Hello-World", 2).await;
    let threads: Vec<_> = events
        .iter()
        .filter(|e| e.kind.starts_with("thread_"))
        .map(|e| (e.kind.as_str(), e.external_id.as_str(), e.summary.as_str()))
        .collect();
    assert_eq!(
        threads,
        [
            (
                "thread_resolved",
                "PRRT_kwDOFd42Pc4rQOUv",
                "Codertocat resolved a review thread on #2"
            ),
            (
                "thread_unresolved",
                "PRRT_kwDOFd42Pc4rQOUv",
                "Codertocat unresolved a review thread on #2"
            ),
        ],
        "{events:?}"
    );

    // Resolved again later: the resolved entry tells the latest resolution, still one entry.
    let mut again = resolved.clone();
    again["pull_request"]["updated_at"] = json!("2019-05-15T15:22:00Z");
    again["sender"]["login"] = json!("octocat");
    deliver(&app, &host, &receiver, &again).await;
    let after = timeline(&app, "Codertocat/Hello-World", 2).await;
    let resolved_entries: Vec<_> = after
        .iter()
        .filter(|e| e.kind == "thread_resolved")
        .collect();
    assert_eq!(resolved_entries.len(), 1, "{after:?}");
    assert_eq!(resolved_entries[0].actor, "octocat");
    assert_eq!(after.len(), events.len(), "{after:?}");
    app.stop().await;
}

async fn an_entry_of_an_older_hookgate_is_kept_with_a_key_derived_from_what_it_stored(
    engine: Engine,
) {
    use migration::MigratorTrait;
    let db = TestDatabase::new(engine).await;
    // The schema as the first release made it (every migration up to the timeline's), with
    // the row it stored for GitHub's pull_request/opened example.
    let conn = hookgate::db::connect(&db.url).await.expect("connects");
    migration::Migrator::up(conn.pool(), Some(3))
        .await
        .expect("the first release's schema");
    let opened = load("github/pull_request.opened.json");
    let time = chrono::DateTime::parse_from_rfc3339(
        opened["pull_request"]["updated_at"]
            .as_str()
            .expect("a time"),
    )
    .expect("an RFC 3339 time")
    .timestamp_micros();
    let summary = "Codertocat opened #2 \"Update the README with new information.\"";
    let (repository, changeset, entry) = (
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
    );
    for statement in [
        format!(
            "INSERT INTO repositories (id, code_host_urn, name, external_id, url, clone_urls, \
             registered, create_time, update_time) VALUES ('{repository}', 'https://github.com/', \
             'Codertocat/Hello-World', '186853002', 'https://github.com/Codertocat/Hello-World', \
             '[]', FALSE, 1, 1)"
        ),
        format!(
            "INSERT INTO changesets (id, repository_id, number, title, url, author, state, \
             review_state, check_state, head_ref, base_ref, head_sha, labels, host_update_time, \
             field_times, reviews, checks, create_time, update_time) VALUES ('{changeset}', \
             '{repository}', 2, 'Update the README with new information.', '', 'Codertocat', \
             'OPEN', 'PENDING', 'UNKNOWN', 'changes', 'master', \
             'ec26c3e57ca3a959ca5aad62de7213c562f8c821', '[]', {time}, '{{}}', '{{}}', '{{}}', 1, 1)"
        ),
        format!(
            "INSERT INTO changeset_events (id, changeset_id, kind, actor, occur_time, \
             delivery_id, summary, create_time) VALUES ('{entry}', '{changeset}', 'opened', \
             'Codertocat', {time}, '{}', '{summary}', 1)",
            uuid::Uuid::new_v4()
        ),
    ] {
        sea_orm::ConnectionTrait::execute_unprepared(&conn, &statement)
            .await
            .expect("an old-shaped row");
    }
    conn.close().await.ok();

    // This version migrates it at start-up.
    let app = TestApp::start(db, |_| {}).await;
    let events = timeline(&app, "Codertocat/Hello-World", 2).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].external_id, format!("{time} {summary}"));
    assert_eq!(events[0].summary, summary);
    assert_eq!(events[0].kind, "opened");

    // The same state change delivered again after the upgrade is the same entry; a comment is
    // one more.
    let receiver = app
        .create_receiver("after-upgrade", CodeHostKind::Github, "https://github.com")
        .await;
    let d = app
        .deliver(CodeHostKind::Github, &receiver, "pull_request", &opened)
        .await;
    assert_eq!(d.state, DeliveryState::Processed as i32, "{}", d.last_error);
    let mut comment = github_comment("492700400", "A comment", "2019-05-15T15:20:21Z");
    comment["issue"]["number"] = json!(2);
    let d = app
        .deliver(CodeHostKind::Github, &receiver, "issue_comment", &comment)
        .await;
    assert_eq!(d.state, DeliveryState::Processed as i32, "{}", d.last_error);
    let events = timeline(&app, "Codertocat/Hello-World", 2).await;
    let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["comment", "opened"], "{events:?}");
    assert_eq!(events[0].external_id, "492700400");
    app.stop().await;
}

on_both_engines!(facts_of_the_same_host_time_are_listed_and_applied_in_arrival_order,);

/// Issue 18: entries with the same host time read in the order their deliveries arrived, and the
/// later arrival's state wins, however late each is processed. Here the earlier arrivals are
/// processed last: their receiver acts only on registered repositories, so they are ignored
/// until the repository is registered and an admin redelivers them.
async fn facts_of_the_same_host_time_are_listed_and_applied_in_arrival_order(engine: Engine) {
    use hookgate::admin::proto::{
        ChangesetState, ReceiverOptions, RedeliverDeliveryRequest, RegisterRepositoryRequest,
        repository_service_client::RepositoryServiceClient,
    };
    let app = TestApp::spawn(engine).await;
    let receiver = app
        .create_receiver_with(
            "arrivals",
            CodeHostKind::Github,
            "https://github.com",
            ReceiverOptions {
                ignore_unmatched: true,
                ..Default::default()
            },
        )
        .await;
    // Real pull request events, each pair stamped by the host with one time.
    let at = |name: &str, time: &str| {
        let mut payload = load(&format!("github/pull_request.{name}.json"));
        payload["pull_request"]["updated_at"] = json!(time);
        payload
    };
    let (opened, reopened) = (
        at("opened", "2019-05-15T15:20:33Z"),
        at("reopened", "2019-05-15T15:20:33Z"),
    );
    let (to_draft, closed) = (
        at("converted_to_draft", "2019-05-15T15:21:18Z"),
        at("closed", "2019-05-15T15:21:18Z"),
    );
    let send = |body: Value| {
        let (app, receiver) = (&app, &receiver);
        async move {
            app.deliver(CodeHostKind::Github, receiver, "pull_request", &body)
                .await
        }
    };

    // Arrive first, and are not acted on yet.
    let early = [send(opened).await, send(to_draft).await];
    for d in &early {
        assert_eq!(d.state, DeliveryState::Ignored as i32, "{d:?}");
    }
    RepositoryServiceClient::new(app.channel().await)
        .register_repository(app.req(RegisterRepositoryRequest {
            code_host_urn: "https://github.com".into(),
            name: "Codertocat/Hello-World".into(),
            ..Default::default()
        }))
        .await
        .expect("the repository is registered");
    // Arrive later, and are processed first.
    for body in [reopened, closed] {
        let d = send(body).await;
        assert_eq!(d.state, DeliveryState::Processed as i32, "{d:?}");
    }
    for d in &early {
        app.deliveries()
            .await
            .redeliver_delivery(app.req(RedeliverDeliveryRequest { id: d.id.clone() }))
            .await
            .expect("redelivered");
        let d = app.wait_for_state(&d.id, DeliveryState::Processed).await;
        assert_eq!(d.state, DeliveryState::Processed as i32, "{d:?}");
    }

    let events = timeline(&app, "Codertocat/Hello-World", 2).await;
    let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["opened", "reopened", "converted_to_draft", "closed"],
        "{events:?}"
    );
    let changeset = app.changeset("Codertocat/Hello-World", 2).await;
    assert_eq!(
        changeset.state,
        ChangesetState::Closed as i32,
        "the close arrived after the conversion to a draft: {changeset:?}"
    );
    app.stop().await;
}
