//! The webhook ingress over real HTTP: every real fixture of every host, each status code of
//! DESIGN.md's table, de-duplication, redaction and the delivery log, on SQLite and PostgreSQL.

mod common;

use common::{Engine, TestApp, fixture, host_headers, json_body};
use hookgate::admin::proto::{
    CodeHostKind, DeliveryState, GetReceiverRequest, ListDeliveriesRequest,
    ListRepositoriesRequest, ListSyncRequestsRequest, RedeliverDeliveryRequest,
    RotateReceiverSecretRequest, SendTestDeliveryRequest,
    repository_service_client::RepositoryServiceClient,
};
use prost::Message;
use sea_orm::{ConnectionTrait, Database};
use tonic::Code;

/// One fixture: the host kind, the file, the event header, the event name hookgate must give
/// it, and the status it must be answered with.
struct Case {
    kind: CodeHostKind,
    file: &'static str,
    header: &'static str,
    event: &'static str,
    status: u16,
}

const fn case(
    kind: CodeHostKind,
    file: &'static str,
    header: &'static str,
    event: &'static str,
    status: u16,
) -> Case {
    Case {
        kind,
        file,
        header,
        event,
        status,
    }
}

use CodeHostKind::{
    AzureDevops as Az, BitbucketCloud as Bbc, BitbucketServer as Bbs, Gitea as Gt, Github as Gh,
    Gitlab as Gl,
};

/// Every fixture a handler will meet, with what the ingress must make of it.
const CASES: &[Case] = &[
    case(
        Gh,
        "github/check_run.completed.json",
        "check_run",
        "check_run/completed",
        202,
    ),
    case(
        Gh,
        "github/check_suite.completed.json",
        "check_suite",
        "check_suite/completed",
        202,
    ),
    case(
        Gh,
        "github/issue_comment.created.json",
        "issue_comment",
        "issue_comment/created",
        202,
    ),
    case(Gh, "github/ping.json", "ping", "ping", 200),
    case(
        Gh,
        "github/pull_request.closed.json",
        "pull_request",
        "pull_request/closed",
        202,
    ),
    case(
        Gh,
        "github/pull_request.closed.merged.json",
        "pull_request",
        "pull_request/closed",
        202,
    ),
    case(
        Gh,
        "github/pull_request.converted_to_draft.json",
        "pull_request",
        "pull_request/converted_to_draft",
        202,
    ),
    case(
        Gh,
        "github/pull_request.edited.json",
        "pull_request",
        "pull_request/edited",
        202,
    ),
    case(
        Gh,
        "github/pull_request.labeled.json",
        "pull_request",
        "pull_request/labeled",
        202,
    ),
    case(
        Gh,
        "github/pull_request.opened.json",
        "pull_request",
        "pull_request/opened",
        202,
    ),
    case(
        Gh,
        "github/pull_request.ready_for_review.json",
        "pull_request",
        "pull_request/ready_for_review",
        202,
    ),
    case(
        Gh,
        "github/pull_request.reopened.json",
        "pull_request",
        "pull_request/reopened",
        202,
    ),
    case(
        Gh,
        "github/pull_request.synchronize.json",
        "pull_request",
        "pull_request/synchronize",
        202,
    ),
    case(
        Gh,
        "github/pull_request_review.dismissed.json",
        "pull_request_review",
        "pull_request_review/dismissed",
        202,
    ),
    case(
        Gh,
        "github/pull_request_review.submitted.json",
        "pull_request_review",
        "pull_request_review/submitted",
        202,
    ),
    case(
        Gh,
        "github/pull_request_review_comment.created.json",
        "pull_request_review_comment",
        "pull_request_review_comment/created",
        202,
    ),
    case(
        Gh,
        "github/pull_request.enqueued.json",
        "pull_request",
        "pull_request/enqueued",
        202,
    ),
    case(
        Gh,
        "github/pull_request.dequeued.json",
        "pull_request",
        "pull_request/dequeued",
        202,
    ),
    case(
        Gh,
        "github/pull_request.auto_merge_enabled.json",
        "pull_request",
        "pull_request/auto_merge_enabled",
        202,
    ),
    case(
        Gh,
        "github/pull_request.auto_merge_disabled.json",
        "pull_request",
        "pull_request/auto_merge_disabled",
        202,
    ),
    case(
        Gh,
        "github/pull_request_review_thread.resolved.json",
        "pull_request_review_thread",
        "pull_request_review_thread/resolved",
        202,
    ),
    case(
        Gh,
        "github/pull_request_review_thread.unresolved.json",
        "pull_request_review_thread",
        "pull_request_review_thread/unresolved",
        202,
    ),
    case(
        Gh,
        "github/merge_group.checks_requested.json",
        "merge_group",
        "merge_group/checks_requested",
        202,
    ),
    case(
        Gh,
        "github/merge_group.destroyed.json",
        "merge_group",
        "merge_group/destroyed",
        202,
    ),
    case(Gh, "github/push.branch-created.json", "push", "push", 202),
    case(Gh, "github/push.branch-updated.json", "push", "push", 202),
    case(Gh, "github/push.tag-deleted.json", "push", "push", 202),
    case(Gh, "github/status.json", "status", "status", 202),
    case(
        Gl,
        "gitlab/issue.open.json",
        "Issue Hook",
        "Issue Hook/open",
        200,
    ),
    case(Gl, "gitlab/job.json", "Job Hook", "Job Hook", 200),
    case(
        Gl,
        "gitlab/merge_request.close.json",
        "Merge Request Hook",
        "Merge Request Hook/close",
        202,
    ),
    case(
        Gl,
        "gitlab/merge_request.merge.json",
        "Merge Request Hook",
        "Merge Request Hook/merge",
        202,
    ),
    case(
        Gl,
        "gitlab/merge_request.open.json",
        "Merge Request Hook",
        "Merge Request Hook/open",
        202,
    ),
    case(
        Gl,
        "gitlab/merge_request.update.json",
        "Merge Request Hook",
        "Merge Request Hook/update",
        202,
    ),
    case(
        Gl,
        "gitlab/note.commit.json",
        "Note Hook",
        "Note Hook/create",
        202,
    ),
    case(
        Gl,
        "gitlab/note.issue.json",
        "Note Hook",
        "Note Hook/create",
        202,
    ),
    case(
        Gl,
        "gitlab/note.merge_request.json",
        "Note Hook",
        "Note Hook/create",
        202,
    ),
    case(
        Gl,
        "gitlab/pipeline.json",
        "Pipeline Hook",
        "Pipeline Hook",
        202,
    ),
    case(Gl, "gitlab/push.json", "Push Hook", "Push Hook", 202),
    case(
        Gl,
        "gitlab/tag_push.json",
        "Tag Push Hook",
        "Tag Push Hook",
        202,
    ),
    case(
        Bbs,
        "bitbucket-server/diagnostics_ping.json",
        "diagnostics:ping",
        "diagnostics:ping",
        200,
    ),
    case(
        Bbs,
        "bitbucket-server/pr_comment_added.json",
        "pr:comment:added",
        "pr:comment:added",
        202,
    ),
    case(
        Bbs,
        "bitbucket-server/pr_declined.json",
        "pr:declined",
        "pr:declined",
        202,
    ),
    case(
        Bbs,
        "bitbucket-server/pr_from_ref_updated.json",
        "pr:from_ref_updated",
        "pr:from_ref_updated",
        202,
    ),
    case(
        Bbs,
        "bitbucket-server/pr_merged.json",
        "pr:merged",
        "pr:merged",
        202,
    ),
    case(
        Bbs,
        "bitbucket-server/pr_modified.json",
        "pr:modified",
        "pr:modified",
        202,
    ),
    case(
        Bbs,
        "bitbucket-server/pr_opened.json",
        "pr:opened",
        "pr:opened",
        202,
    ),
    case(
        Bbs,
        "bitbucket-server/pr_opened.sourcegraph-plugin.json",
        "pr:opened",
        "pr:opened",
        202,
    ),
    case(
        Bbs,
        "bitbucket-server/pr_reviewer_approved.json",
        "pr:reviewer:approved",
        "pr:reviewer:approved",
        202,
    ),
    case(
        Bbs,
        "bitbucket-server/pr_reviewer_needs_work.json",
        "pr:reviewer:needs_work",
        "pr:reviewer:needs_work",
        202,
    ),
    case(
        Bbs,
        "bitbucket-server/repo_refs_changed.json",
        "repo:refs_changed",
        "repo:refs_changed",
        202,
    ),
    case(
        Bbs,
        "bitbucket-server/repo_refs_changed.signed.json",
        "repo:refs_changed",
        "repo:refs_changed",
        202,
    ),
    case(
        Bbs,
        "bitbucket-server/repo_refs_changed.signed-go-scm.json",
        "repo:refs_changed",
        "repo:refs_changed",
        202,
    ),
    case(
        Bbc,
        "bitbucket-cloud/pullrequest_approved.json",
        "pullrequest:approved",
        "pullrequest:approved",
        202,
    ),
    case(
        Bbc,
        "bitbucket-cloud/pullrequest_comment_created.json",
        "pullrequest:comment_created",
        "pullrequest:comment_created",
        202,
    ),
    case(
        Bbc,
        "bitbucket-cloud/pullrequest_created.json",
        "pullrequest:created",
        "pullrequest:created",
        202,
    ),
    case(
        Bbc,
        "bitbucket-cloud/pullrequest_fulfilled.json",
        "pullrequest:fulfilled",
        "pullrequest:fulfilled",
        202,
    ),
    case(
        Bbc,
        "bitbucket-cloud/pullrequest_rejected.json",
        "pullrequest:rejected",
        "pullrequest:rejected",
        202,
    ),
    case(
        Bbc,
        "bitbucket-cloud/pullrequest_updated.json",
        "pullrequest:updated",
        "pullrequest:updated",
        202,
    ),
    case(
        Bbc,
        "bitbucket-cloud/repo_commit_status_created.json",
        "repo:commit_status_created",
        "repo:commit_status_created",
        202,
    ),
    case(
        Bbc,
        "bitbucket-cloud/repo_commit_status_updated.json",
        "repo:commit_status_updated",
        "repo:commit_status_updated",
        202,
    ),
    case(
        Bbc,
        "bitbucket-cloud/repo_push.json",
        "repo:push",
        "repo:push",
        202,
    ),
    case(
        Bbc,
        "bitbucket-cloud/repo_push.signed.json",
        "repo:push",
        "repo:push",
        202,
    ),
    case(Gt, "gitea/create.branch.json", "create", "create", 202),
    case(Gt, "gitea/delete.branch.json", "delete", "delete", 202),
    case(
        Gt,
        "gitea/issue_comment.created.json",
        "issue_comment",
        "issue_comment/created",
        202,
    ),
    case(
        Gt,
        "gitea/pull_request.closed.json",
        "pull_request",
        "pull_request/closed",
        202,
    ),
    case(
        Gt,
        "gitea/pull_request.closed.merged.json",
        "pull_request",
        "pull_request/closed",
        202,
    ),
    case(
        Gt,
        "gitea/pull_request.edited.json",
        "pull_request",
        "pull_request/edited",
        202,
    ),
    case(
        Gt,
        "gitea/pull_request.opened.json",
        "pull_request",
        "pull_request/opened",
        202,
    ),
    case(
        Gt,
        "gitea/pull_request.reopened.forgejo-codeberg.json",
        "pull_request",
        "pull_request/reopened",
        202,
    ),
    case(
        Gt,
        "gitea/pull_request_comment.created.json",
        "pull_request_comment",
        "pull_request_comment/created",
        202,
    ),
    case(
        Gt,
        "gitea/pull_request_comment.reviewed.json",
        "pull_request_comment",
        "pull_request_comment/reviewed",
        202,
    ),
    case(
        Gt,
        "gitea/pull_request_review_approved.reviewed.json",
        "pull_request_review_approved",
        "pull_request_review_approved/reviewed",
        202,
    ),
    case(
        Gt,
        "gitea/pull_request_review_comment.reviewed.json",
        "pull_request_review_comment",
        "pull_request_review_comment/reviewed",
        202,
    ),
    case(
        Gt,
        "gitea/pull_request_review_rejected.reviewed.json",
        "pull_request_review_rejected",
        "pull_request_review_rejected/reviewed",
        202,
    ),
    case(
        Gt,
        "gitea/pull_request_review_request.review_requested.json",
        "pull_request_review_request",
        "pull_request_review_request/review_requested",
        202,
    ),
    case(
        Gt,
        "gitea/pull_request_sync.synchronized.json",
        "pull_request_sync",
        "pull_request_sync/synchronized",
        202,
    ),
    case(
        Gt,
        "gitea/push.branch-created-no-commits.json",
        "push",
        "push",
        202,
    ),
    case(Gt, "gitea/push.branch-created.json", "push", "push", 202),
    case(Gt, "gitea/push.branch-updated.json", "push", "push", 202),
];

fn urn(kind: CodeHostKind) -> &'static str {
    match kind {
        Gh => "https://github.com",
        Gl => "https://gitlab.example.com",
        Bbs => "https://bitbucket.example.com",
        Gt => "https://gitea.example.com",
        Az => "https://dev.azure.com/fabrikam",
        _ => "https://bitbucket.org",
    }
}

fn key() -> String {
    uuid::Uuid::new_v4().to_string()
}

on_both_engines!(
    every_fixture_is_accepted_signed_and_rejected_with_a_wrong_or_missing_signature,
    an_accepted_delivery_is_stored_before_the_answer_and_processed_by_the_worker,
    a_malformed_receiver_id_is_400_and_an_unknown_one_404,
    a_method_other_than_post_is_405_with_allow,
    a_body_over_the_cap_is_413_with_or_without_a_content_length,
    a_missing_event_header_or_a_signed_body_that_is_not_json_is_400_and_not_stored,
    a_duplicate_delivery_key_is_200_with_the_original_id_and_stored_once,
    a_forged_delivery_does_not_block_the_real_one_with_the_same_key,
    a_store_that_fails_for_good_answers_500_and_a_resend_after_the_repair_is_accepted,
    tokens_and_secrets_are_redacted_in_the_log,
    github_form_encoded_deliveries_are_accepted,
    github_accepts_sha256_in_the_legacy_header_and_sha1_only_without_sha256,
    the_previous_secret_is_accepted_only_during_the_rotation_overlap,
    deliveries_are_listed_newest_first_with_filters_and_pages,
    a_processed_delivery_can_be_redelivered_but_a_rejected_one_cannot,
    send_test_delivery_proves_the_url_and_secret_for_every_host,
    deleting_a_receiver_deletes_its_deliveries,
    gitea_and_github_deliveries_are_not_taken_for_one_another,
    a_forgejo_delivery_is_accepted_with_x_forgejo_signature,
    azure_devops_deliveries_pass_by_basic_password_or_x_hook_secret,
);

async fn every_fixture_is_accepted_signed_and_rejected_with_a_wrong_or_missing_signature(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let mut receivers = std::collections::HashMap::new();
    for kind in [Gh, Gl, Bbs, Bbc, Gt] {
        receivers.insert(
            kind as i32,
            app.create_receiver(&format!("{kind:?}"), kind, urn(kind))
                .await,
        );
    }
    for c in CASES {
        let (id, secret) = &receivers[&(c.kind as i32)];
        let body = fixture(c.file);

        let k = key();
        let response = app
            .post(
                id,
                &host_headers(c.kind, c.header, &k, Some(secret), &body),
                body.clone(),
            )
            .await;
        assert_eq!(response.status(), c.status, "{}", c.file);
        let answer = json_body(response).await;
        let delivery_id = answer["delivery_id"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: {answer}", c.file));
        let stored = app.get_delivery(delivery_id).await;
        assert_eq!(stored.event, c.event, "{}", c.file);
        assert_eq!(stored.delivery_key, k, "{}", c.file);
        assert_eq!(
            stored.request_body, body,
            "{}: the body is stored as received",
            c.file
        );
        assert_eq!(stored.response_status, i32::from(c.status));

        for (how, signing_secret) in [("wrong", Some("not-the-secret")), ("missing", None)] {
            // Bitbucket Server's diagnostics:ping may arrive unsigned.
            if c.header == "diagnostics:ping" && signing_secret.is_none() {
                let r = app
                    .post(
                        id,
                        &host_headers(c.kind, c.header, &key(), None, &body),
                        body.clone(),
                    )
                    .await;
                assert_eq!(r.status(), 200, "an unsigned diagnostics:ping is answered");
                continue;
            }
            let response = app
                .post(
                    id,
                    &host_headers(c.kind, c.header, &key(), signing_secret, &body),
                    body.clone(),
                )
                .await;
            assert_eq!(response.status(), 401, "{} with a {how} signature", c.file);
            let answer = json_body(response).await;
            assert!(
                answer["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{answer}"
            );
        }
    }
    // Every rejected attempt is in the log, without its body.
    let rejected = app
        .deliveries()
        .await
        .list_deliveries(app.req(ListDeliveriesRequest {
            states: vec![DeliveryState::Rejected as i32],
            page_size: 500,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rejected.total_size as usize, CASES.len() * 2 - 1);
    for d in rejected.deliveries {
        let full = app.get_delivery(&d.id).await;
        assert!(
            full.request_body.is_empty(),
            "a rejected delivery keeps no body"
        );
        assert_eq!(full.response_status, 401);
        assert!(!full.last_error.is_empty());
    }
    app.stop().await;
}

async fn an_accepted_delivery_is_stored_before_the_answer_and_processed_by_the_worker(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = app.create_receiver("gh", Gh, "https://github.com").await;
    let body = fixture("github/pull_request.opened.json");
    let response = app
        .post(
            &id,
            &host_headers(Gh, "pull_request", &key(), Some(&secret), &body),
            body,
        )
        .await;
    assert_eq!(response.status(), 202);
    let answer = json_body(response).await;
    let delivery_id = answer["delivery_id"].as_str().unwrap().to_owned();
    assert_eq!(answer, serde_json::json!({ "delivery_id": delivery_id }));

    let done = app
        .wait_for_state(&delivery_id, DeliveryState::Processed)
        .await;
    assert_eq!(done.attempts, 1);
    assert!(done.process_time.is_some());
    assert_eq!(done.method, "POST");
    assert_eq!(done.path, format!("/.api/webhooks/{id}"));

    let receiver = app
        .receivers()
        .await
        .get_receiver(app.req(GetReceiverRequest { id: id.clone() }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(receiver.last_delivery_time, done.receive_time);
    app.stop().await;
}

async fn a_malformed_receiver_id_is_400_and_an_unknown_one_404(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let body = fixture("github/ping.json");
    let r = app
        .post(
            "not-a-uuid",
            &[("x-github-event", "ping".into())],
            body.clone(),
        )
        .await;
    assert_eq!(r.status(), 400);
    let r = app
        .post(
            &uuid::Uuid::new_v4().to_string(),
            &[("x-github-event", "ping".into())],
            body,
        )
        .await;
    assert_eq!(r.status(), 404);
    let all = app
        .deliveries()
        .await
        .list_deliveries(app.req(ListDeliveriesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.total_size, 0, "nothing is stored for unknown receivers");
    app.stop().await;
}

async fn a_method_other_than_post_is_405_with_allow(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, _) = app.create_receiver("gh", Gh, "https://github.com").await;
    let url = format!("http://{}/.api/webhooks/{id}", app.http_addr);
    let client = reqwest::Client::new();
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let r = client.request(method.clone(), &url).send().await.unwrap();
        assert_eq!(r.status(), 405, "{method}");
        assert_eq!(r.headers()["allow"], "POST");
    }
    app.stop().await;
}

async fn a_body_over_the_cap_is_413_with_or_without_a_content_length(engine: Engine) {
    let app = TestApp::spawn_with(engine, |c| c.max_body_bytes = 8192).await;
    let (id, secret) = app.create_receiver("gh", Gh, "https://github.com").await;
    let body = fixture("github/pull_request.opened.json");
    assert!(body.len() > 8192);
    let headers = host_headers(Gh, "pull_request", &key(), Some(&secret), &body);
    let r = app.post(&id, &headers, body.clone()).await;
    assert_eq!(r.status(), 413);

    // Chunked, with no Content-Length: refused as soon as it passes the cap. The server may
    // answer before the client has written everything, so this client ignores write errors and
    // reads the answer.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.http_addr).await.unwrap();
    let mut head = format!(
        "POST /.api/webhooks/{id} HTTP/1.1\r\nhost: {}\r\ntransfer-encoding: chunked\r\n",
        app.http_addr
    );
    for (name, value) in &headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(1000) {
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
        if stream.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // At the cap exactly, it is taken.
    let small = fixture("github/ping.json");
    assert!(small.len() <= 8192);
    let r = app
        .post(
            &id,
            &host_headers(Gh, "ping", &key(), Some(&secret), &small),
            small,
        )
        .await;
    assert_eq!(r.status(), 200);
    app.stop().await;
}

async fn a_missing_event_header_or_a_signed_body_that_is_not_json_is_400_and_not_stored(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = app.create_receiver("gh", Gh, "https://github.com").await;
    let body = fixture("github/pull_request.opened.json");
    let mut headers = host_headers(Gh, "pull_request", &key(), Some(&secret), &body);
    headers.retain(|(n, _)| *n != "x-github-event");
    let r = app.post(&id, &headers, body).await;
    assert_eq!(r.status(), 400);
    assert!(
        json_body(r).await["error"]
            .as_str()
            .unwrap()
            .contains("X-GitHub-Event")
    );

    let not_json = b"this is not json".to_vec();
    let r = app
        .post(
            &id,
            &host_headers(Gh, "pull_request", &key(), Some(&secret), &not_json),
            not_json,
        )
        .await;
    assert_eq!(r.status(), 400);
    let all = app
        .deliveries()
        .await
        .list_deliveries(app.req(ListDeliveriesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.total_size, 0);
    app.stop().await;
}

async fn a_duplicate_delivery_key_is_200_with_the_original_id_and_stored_once(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = app
        .create_receiver("gl", Gl, "https://gitlab.example.com")
        .await;
    let body = fixture("gitlab/merge_request.open.json");
    let headers = host_headers(Gl, "Merge Request Hook", "same-key-1", Some(&secret), &body);
    let first = app.post(&id, &headers, body.clone()).await;
    assert_eq!(first.status(), 202);
    let original = json_body(first).await["delivery_id"].clone();
    for _ in 0..3 {
        let again = app.post(&id, &headers, body.clone()).await;
        assert_eq!(again.status(), 200);
        assert_eq!(json_body(again).await["delivery_id"], original);
    }
    // GitLab's older header is a key too.
    let mut old_style = headers.clone();
    old_style.retain(|(n, _)| *n != "idempotency-key");
    old_style.push(("x-gitlab-event-uuid", "old-style-key".into()));
    assert_eq!(app.post(&id, &old_style, body.clone()).await.status(), 202);
    assert_eq!(app.post(&id, &old_style, body.clone()).await.status(), 200);

    let all = app
        .deliveries()
        .await
        .list_deliveries(app.req(ListDeliveriesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.total_size, 2);
    // The same key on another receiver is another delivery.
    let (other, other_secret) = app
        .create_receiver("gl2", Gl, "https://gitlab.example.com")
        .await;
    let headers = host_headers(
        Gl,
        "Merge Request Hook",
        "same-key-1",
        Some(&other_secret),
        &body,
    );
    assert_eq!(app.post(&other, &headers, body).await.status(), 202);
    app.stop().await;
}

async fn a_forged_delivery_does_not_block_the_real_one_with_the_same_key(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = app
        .create_receiver("bbc", Bbc, "https://bitbucket.org")
        .await;
    let body = fixture("bitbucket-cloud/repo_push.json");
    let forged = host_headers(Bbc, "repo:push", "k-1", Some("forged-secret"), &body);
    assert_eq!(app.post(&id, &forged, body.clone()).await.status(), 401);
    let real = host_headers(Bbc, "repo:push", "k-1", Some(&secret), &body);
    assert_eq!(app.post(&id, &real, body).await.status(), 202);
    app.stop().await;
}

async fn a_store_that_fails_for_good_answers_500_and_a_resend_after_the_repair_is_accepted(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = app
        .create_receiver("bbs", Bbs, "https://bitbucket.example.com")
        .await;
    // Warm the receiver cache, then take the delivery log away from under the service.
    let ping = fixture("bitbucket-server/diagnostics_ping.json");
    assert_eq!(
        app.post(
            &id,
            &host_headers(Bbs, "diagnostics:ping", &key(), None, &ping),
            ping
        )
        .await
        .status(),
        200
    );
    let db = Database::connect(app.db.url.as_str()).await.unwrap();
    db.execute_unprepared("ALTER TABLE deliveries RENAME TO deliveries_away")
        .await
        .unwrap();

    let body = fixture("bitbucket-server/pr_opened.json");
    let headers = host_headers(Bbs, "pr:opened", "retry-me", Some(&secret), &body);
    // A missing table is no passing fault: 500, with no `Retry-After`. (A database that cannot be
    // reached answers 503: tests/outage.rs stops a real server for that.)
    let r = app.post(&id, &headers, body.clone()).await;
    assert_eq!(r.status(), 500);
    assert!(!r.headers().contains_key("retry-after"));

    db.execute_unprepared("ALTER TABLE deliveries_away RENAME TO deliveries")
        .await
        .unwrap();
    db.close().await.ok();
    let r = app.post(&id, &headers, body).await;
    assert_eq!(
        r.status(),
        202,
        "a resend is taken once the store is repaired"
    );
    app.stop().await;
}

async fn tokens_and_secrets_are_redacted_in_the_log(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = app
        .create_receiver("gl", Gl, "https://gitlab.example.com")
        .await;
    let body = fixture("gitlab/push.json");
    let mut headers = host_headers(Gl, "Push Hook", &key(), Some(&secret), &body);
    headers.push(("authorization", "Bearer abcdefgh-token".into()));
    headers.push(("x-hook-secret", "hook-secret-value".into()));
    headers.push(("x-custom", "one".into()));
    headers.push(("x-custom", "two".into()));
    let r = app.post(&id, &headers, body).await;
    assert_eq!(r.status(), 202);
    let delivery_id = json_body(r).await["delivery_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let d = app.get_delivery(&delivery_id).await;
    assert_eq!(d.request_headers["x-gitlab-token"], "[REDACTED]");
    assert_eq!(d.request_headers["authorization"], "[REDACTED]");
    assert_eq!(d.request_headers["x-hook-secret"], "[REDACTED]");
    assert_eq!(d.request_headers["x-custom"], "one, two");
    assert_eq!(d.request_headers["x-gitlab-event"], "Push Hook");
    let encoded = d.encode_to_vec();
    for needle in [secret.as_str(), "abcdefgh-token", "hook-secret-value"] {
        assert!(
            !encoded
                .windows(needle.len())
                .any(|w| w == needle.as_bytes()),
            "{needle} is in the log"
        );
    }
    // A rejected GitLab attempt does not keep the wrong token either.
    let body = fixture("gitlab/push.json");
    let r = app
        .post(
            &id,
            &host_headers(Gl, "Push Hook", &key(), Some("guessed-token"), &body),
            body,
        )
        .await;
    assert_eq!(r.status(), 401);
    let rejected = app
        .deliveries()
        .await
        .list_deliveries(app.req(ListDeliveriesRequest {
            states: vec![DeliveryState::Rejected as i32],
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        rejected.deliveries[0].request_headers["x-gitlab-token"],
        "[REDACTED]"
    );
    app.stop().await;
}

async fn github_form_encoded_deliveries_are_accepted(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = app.create_receiver("gh", Gh, "https://github.com").await;
    let json = String::from_utf8(fixture("github/pull_request.opened.json")).unwrap();
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &json)
        .finish();
    let mut headers = host_headers(Gh, "pull_request", &key(), Some(&secret), body.as_bytes());
    headers[0] = ("content-type", "application/x-www-form-urlencoded".into());
    let r = app.post(&id, &headers, body.into_bytes()).await;
    assert_eq!(r.status(), 202);
    let delivery_id = json_body(r).await["delivery_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let d = app
        .wait_for_state(&delivery_id, DeliveryState::Processed)
        .await;
    assert_eq!(d.event, "pull_request/opened");
    app.stop().await;
}

/// `HMAC-SHA1(secret, body)` as GitHub writes it in `X-Hub-Signature`.
fn sha1_signature(secret: &str, body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha1={}", hex::encode(mac.finalize().into_bytes()))
}

/// `X-Hub-Signature: sha256=<hex>` (some GitHub-compatible senders) is the same HMAC-SHA256; a
/// `sha1=` signature counts only when no SHA-256 one was sent.
async fn github_accepts_sha256_in_the_legacy_header_and_sha1_only_without_sha256(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = app.create_receiver("gh", Gh, "https://github.com").await;
    let body = fixture("github/pull_request.opened.json");
    let sha256 = |s: &str| format!("sha256={}", hookgate::hosts::sign_hmac_sha256_hex(s, &body));
    let post = |signatures: Vec<(&'static str, String)>| {
        let mut h = vec![
            ("content-type", "application/json".to_owned()),
            ("X-GitHub-Event", "pull_request".to_owned()),
            ("X-GitHub-Delivery", key()),
        ];
        h.extend(signatures);
        let app = &app;
        let id = &id;
        let body = body.clone();
        async move { app.post(id, &h, body).await.status() }
    };
    assert_eq!(
        post(vec![("X-Hub-Signature", sha256(&secret))]).await,
        202,
        "sha256= in X-Hub-Signature is accepted"
    );
    assert_eq!(
        post(vec![("X-Hub-Signature", sha256("not-the-secret"))]).await,
        401,
        "a wrong sha256= in X-Hub-Signature is refused"
    );
    assert_eq!(
        post(vec![
            ("X-Hub-Signature", sha1_signature(&secret, &body)),
            ("X-Hub-Signature-256", sha256("not-the-secret")),
        ])
        .await,
        401,
        "a right sha1= does not rescue a wrong SHA-256 signature"
    );
    assert_eq!(
        post(vec![("X-Hub-Signature", sha1_signature(&secret, &body))]).await,
        202,
        "sha1= alone is still accepted"
    );
    assert_eq!(
        post(vec![(
            "X-Hub-Signature",
            sha1_signature("not-the-secret", &body)
        )])
        .await,
        401,
        "a wrong sha1= alone is refused"
    );
    app.stop().await;
}

async fn the_previous_secret_is_accepted_only_during_the_rotation_overlap(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, old) = app.create_receiver("gh", Gh, "https://github.com").await;
    let body = fixture("github/push.branch-updated.json");
    let rotated = app
        .receivers()
        .await
        .rotate_receiver_secret(app.req(RotateReceiverSecretRequest {
            id: id.clone(),
            secret: String::new(),
            overlap: Some(prost_types::Duration {
                seconds: 600,
                nanos: 0,
            }),
        }))
        .await
        .unwrap()
        .into_inner();
    for secret in [&old, &rotated.secret] {
        let r = app
            .post(
                &id,
                &host_headers(Gh, "push", &key(), Some(secret), &body),
                body.clone(),
            )
            .await;
        assert_eq!(r.status(), 202);
    }
    // A rotation with no overlap ends both the old secrets at once.
    let again = app
        .receivers()
        .await
        .rotate_receiver_secret(app.req(RotateReceiverSecretRequest {
            id: id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    for secret in [&old, &rotated.secret] {
        let r = app
            .post(
                &id,
                &host_headers(Gh, "push", &key(), Some(secret), &body),
                body.clone(),
            )
            .await;
        assert_eq!(r.status(), 401);
    }
    let r = app
        .post(
            &id,
            &host_headers(Gh, "push", &key(), Some(&again.secret), &body),
            body,
        )
        .await;
    assert_eq!(r.status(), 202);
    app.stop().await;
}

async fn deliveries_are_listed_newest_first_with_filters_and_pages(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (gh, gh_secret) = app.create_receiver("gh", Gh, "https://github.com").await;
    let (gl, gl_secret) = app
        .create_receiver("gl", Gl, "https://gitlab.example.com")
        .await;
    let push = fixture("github/push.branch-updated.json");
    let mut gh_ids = Vec::new();
    for _ in 0..5 {
        let r = app
            .post(
                &gh,
                &host_headers(Gh, "push", &key(), Some(&gh_secret), &push),
                push.clone(),
            )
            .await;
        gh_ids.push(
            json_body(r).await["delivery_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let middle = app.get_delivery(&gh_ids[2]).await.receive_time;
    let job = fixture("gitlab/job.json");
    let r = app
        .post(
            &gl,
            &host_headers(Gl, "Job Hook", &key(), Some(&gl_secret), &job),
            job.clone(),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .post(
            &gl,
            &host_headers(Gl, "Job Hook", &key(), Some("wrong-token"), &job),
            job,
        )
        .await;
    assert_eq!(r.status(), 401);

    let client = app.deliveries().await;
    let list = |req: ListDeliveriesRequest| {
        let mut client = client.clone();
        let req = app.req(req);
        async move { client.list_deliveries(req).await.map(|r| r.into_inner()) }
    };
    let all = list(ListDeliveriesRequest::default()).await.unwrap();
    assert_eq!(all.total_size, 7);
    assert!(
        all.deliveries.iter().all(|d| d.request_body.is_empty()),
        "listings carry no bodies"
    );
    let times: Vec<_> = all
        .deliveries
        .iter()
        .map(|d| d.receive_time.unwrap())
        .collect();
    assert!(
        times
            .windows(2)
            .all(|w| (w[0].seconds, w[0].nanos) >= (w[1].seconds, w[1].nanos)),
        "newest first"
    );

    let only_gh = list(ListDeliveriesRequest {
        receiver_id: gh.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(only_gh.total_size, 5);
    let mut expected = gh_ids.clone();
    expected.reverse();
    assert_eq!(
        only_gh
            .deliveries
            .iter()
            .map(|d| d.id.clone())
            .collect::<Vec<_>>(),
        expected
    );

    // Filters combine: GitLab's ignored deliveries (its rejected attempt is not one).
    let ignored = list(ListDeliveriesRequest {
        receiver_id: gl.clone(),
        states: vec![DeliveryState::Ignored as i32],
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(ignored.total_size, 1);
    assert_eq!(ignored.deliveries[0].event, "Job Hook");
    let errors = list(ListDeliveriesRequest {
        only_errors: true,
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(errors.total_size, 1);
    assert_eq!(errors.deliveries[0].response_status, 401);

    let since = list(ListDeliveriesRequest {
        receiver_id: gh.clone(),
        since: middle,
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(since.total_size, 3);
    let until = list(ListDeliveriesRequest {
        receiver_id: gh.clone(),
        until: middle,
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(until.total_size, 2);

    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = list(ListDeliveriesRequest {
            receiver_id: gh.clone(),
            page_size: 2,
            page_token: token.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
        seen.extend(page.deliveries.into_iter().map(|d| d.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, expected);

    for bad in [
        ListDeliveriesRequest {
            page_size: 501,
            ..Default::default()
        },
        ListDeliveriesRequest {
            receiver_id: "nope".into(),
            ..Default::default()
        },
        ListDeliveriesRequest {
            states: vec![42],
            ..Default::default()
        },
        ListDeliveriesRequest {
            page_token: "garbage".into(),
            ..Default::default()
        },
    ] {
        assert_eq!(list(bad).await.unwrap_err().code(), Code::InvalidArgument);
    }
    app.stop().await;
}

async fn a_processed_delivery_can_be_redelivered_but_a_rejected_one_cannot(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = app
        .create_receiver("bbc", Bbc, "https://bitbucket.org")
        .await;
    let body = fixture("bitbucket-cloud/pullrequest_created.json");
    let r = app
        .post(
            &id,
            &host_headers(Bbc, "pullrequest:created", &key(), Some(&secret), &body),
            body.clone(),
        )
        .await;
    let delivery_id = json_body(r).await["delivery_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = app
        .wait_for_state(&delivery_id, DeliveryState::Processed)
        .await;

    let mut client = app.deliveries().await;
    let queued = client
        .redeliver_delivery(app.req(RedeliverDeliveryRequest {
            id: delivery_id.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(
        queued.state == DeliveryState::Pending as i32
            || queued.state == DeliveryState::Processing as i32
            || queued.state == DeliveryState::Processed as i32
    );
    let again = app
        .wait_for_state(&delivery_id, DeliveryState::Processed)
        .await;
    let at = |t: Option<prost_types::Timestamp>| t.map(|t| (t.seconds, t.nanos));
    assert!(
        at(again.process_time) > at(first.process_time),
        "processed a second time"
    );

    let r = app
        .post(
            &id,
            &host_headers(
                Bbc,
                "pullrequest:created",
                &key(),
                Some("bad-secret"),
                &body,
            ),
            body,
        )
        .await;
    assert_eq!(r.status(), 401);
    let rejected = client
        .list_deliveries(app.req(ListDeliveriesRequest {
            states: vec![DeliveryState::Rejected as i32],
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let err = client
        .redeliver_delivery(app.req(RedeliverDeliveryRequest {
            id: rejected.deliveries[0].id.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("rejected"), "{}", err.message());
    let err = client
        .redeliver_delivery(app.req(RedeliverDeliveryRequest {
            id: uuid::Uuid::new_v4().to_string(),
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // A generic trigger's call made its sync requests when it came: it is not redelivered.
    let (trigger, secret) = app
        .create_receiver("trigger", CodeHostKind::Generic, "https://git.example.com")
        .await;
    let r = reqwest::Client::new()
        .post(format!(
            "http://{}/.api/webhooks/{trigger}/{secret}",
            app.http_addr
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let call = json_body(r).await["delivery_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let err = client
        .redeliver_delivery(app.req(RedeliverDeliveryRequest { id: call }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("trigger URL"), "{}", err.message());
    app.stop().await;
}

async fn send_test_delivery_proves_the_url_and_secret_for_every_host(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    for (kind, event) in [
        (Gh, "ping"),
        (Gl, "Push Hook"),
        (Bbs, "diagnostics:ping"),
        (Bbc, "repo:push"),
        (Gt, "push"),
        (Az, "git.push"),
    ] {
        let (id, _) = app
            .create_receiver(&format!("{kind:?}"), kind, urn(kind))
            .await;
        let sent = app
            .receivers()
            .await
            .send_test_delivery(app.req(SendTestDeliveryRequest { id: id.clone() }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(sent.http_status, 200, "{kind:?}: {sent:?}");
        assert_eq!(
            sent.message,
            "test delivery: verified with the receiver's secret and stored; nothing applied",
            "{kind:?}"
        );
        // A test is recorded as a successful test of the event it imitates, whatever that
        // event would otherwise do, and stays one when an admin redelivers it.
        let stored = app.get_delivery(&sent.delivery_id).await;
        assert_eq!(stored.receiver_id, id);
        assert_test_outcome(&stored, event, kind);
        let redelivered = app
            .deliveries()
            .await
            .redeliver_delivery(app.req(RedeliverDeliveryRequest {
                id: sent.delivery_id.clone(),
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(redelivered.id, sent.delivery_id);
        let done = app.wait_until_done(&sent.delivery_id).await;
        assert_test_outcome(&done, event, kind);
    }
    // Nothing a test delivery imitates (pushes of a placeholder repository) reached the store.
    let mut repositories = RepositoryServiceClient::new(app.channel().await);
    let listed = repositories
        .list_repositories(app.req(ListRepositoriesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size, 0, "{listed:#?}");
    let requests = repositories
        .list_sync_requests(app.req(ListSyncRequestsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(requests.total_size, 0, "{requests:#?}");

    let (generic, _) = app
        .create_receiver("trigger", CodeHostKind::Generic, "https://git.example.com")
        .await;
    let err = app
        .receivers()
        .await
        .send_test_delivery(app.req(SendTestDeliveryRequest { id: generic }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    app.stop().await;
}

/// What a stored test delivery of a `kind` receiver shows: the host's `event`, marked as a
/// test, processed, with no error.
fn assert_test_outcome(stored: &hookgate::admin::proto::Delivery, event: &str, kind: CodeHostKind) {
    assert_eq!(stored.event, format!("{event} (test delivery)"), "{kind:?}");
    assert_eq!(
        stored.state,
        DeliveryState::Processed as i32,
        "{kind:?}: {stored:?}"
    );
    assert_eq!(stored.last_error, "", "{kind:?}");
    assert_eq!(stored.response_status, 200, "{kind:?}");
}

/// Gitea sends GitHub's headers too (`X-GitHub-Event`, `X-Hub-Signature-256`, with the same
/// digest): a GitHub receiver refuses such a delivery with 400 saying what it is, and a Gitea
/// receiver reads only Gitea's headers, so GitHub's alone are 401 (no `X-Gitea-Signature`).
async fn gitea_and_github_deliveries_are_not_taken_for_one_another(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (github, gh_secret) = app.create_receiver("gh", Gh, urn(Gh)).await;
    let body = fixture("gitea/push.branch-created.json");
    let as_gitea_sends = host_headers(Gt, "push", &key(), Some(&gh_secret), &body);
    let response = app.post(&github, &as_gitea_sends, body.clone()).await;
    assert_eq!(response.status(), 400);
    let answer = json_body(response).await;
    let error = answer["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("Gitea") && error.contains("CODE_HOST_KIND_GITEA"),
        "{answer}"
    );

    let (gitea, gt_secret) = app.create_receiver("gt", Gt, urn(Gt)).await;
    let github_body = fixture("github/push.branch-updated.json");
    let as_github_sends = host_headers(Gh, "push", &key(), Some(&gt_secret), &github_body);
    let response = app.post(&gitea, &as_github_sends, github_body).await;
    assert_eq!(response.status(), 401);
    let answer = json_body(response).await;
    assert_eq!(answer["error"], "missing X-Gitea-Signature", "{answer}");

    // A wrong Gitea signature is 401 even next to a right GitHub-compatible one.
    let mut forged = host_headers(Gt, "push", &key(), Some(&gt_secret), &body);
    for (name, value) in &mut forged {
        if *name == "x-gitea-signature" {
            *value = hookgate::hosts::sign_hmac_sha256_hex("not-the-secret", &body);
        }
    }
    let response = app.post(&gitea, &forged, body.clone()).await;
    assert_eq!(response.status(), 401);

    // Nothing of these was stored but the rejected attempts.
    let listed = app
        .deliveries()
        .await
        .list_deliveries(app.req(ListDeliveriesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed
            .deliveries
            .iter()
            .all(|d| d.state == DeliveryState::Rejected as i32),
        "{listed:?}"
    );
    assert_eq!(listed.total_size, 2, "{listed:?}");
    app.stop().await;
}

/// Forgejo's capture, with the headers Forgejo sends (its own names and Gitea's, one digest).
async fn a_forgejo_delivery_is_accepted_with_x_forgejo_signature(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = app
        .create_receiver("forgejo", Gt, "https://codeberg.org")
        .await;
    let body = fixture("gitea/pull_request.reopened.forgejo-codeberg.json");
    let digits = hookgate::hosts::sign_hmac_sha256_hex(&secret, &body);
    let k = key();
    let forgejo_only = vec![
        ("content-type", "application/json".to_owned()),
        ("x-forgejo-event", "pull_request".to_owned()),
        ("x-forgejo-event-type", "pull_request".to_owned()),
        ("x-forgejo-delivery", k.clone()),
        ("x-forgejo-signature", digits.clone()),
    ];
    let response = app.post(&id, &forgejo_only, body.clone()).await;
    assert_eq!(response.status(), 202);
    let answer = json_body(response).await;
    let stored = app
        .wait_until_done(answer["delivery_id"].as_str().unwrap())
        .await;
    assert_eq!(stored.event, "pull_request/reopened");
    assert_eq!(stored.delivery_key, k);
    assert_eq!(stored.state, DeliveryState::Processed as i32, "{stored:?}");

    let wrong = vec![
        ("content-type", "application/json".to_owned()),
        ("x-forgejo-event-type", "pull_request".to_owned()),
        ("x-forgejo-delivery", key()),
        (
            "x-forgejo-signature",
            hookgate::hosts::sign_hmac_sha256_hex("not-the-secret", &body),
        ),
    ];
    let response = app.post(&id, &wrong, body).await;
    assert_eq!(response.status(), 401);
    app.stop().await;
}

async fn deleting_a_receiver_deletes_its_deliveries(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = app.create_receiver("gh", Gh, "https://github.com").await;
    let body = fixture("github/status.json");
    let r = app
        .post(
            &id,
            &host_headers(Gh, "status", &key(), Some(&secret), &body),
            body.clone(),
        )
        .await;
    let delivery_id = json_body(r).await["delivery_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.receivers()
        .await
        .delete_receiver(app.req(hookgate::admin::proto::DeleteReceiverRequest { id: id.clone() }))
        .await
        .unwrap();
    let err = app
        .deliveries()
        .await
        .get_delivery(app.req(hookgate::admin::proto::GetDeliveryRequest { id: delivery_id }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    // And the deleted receiver's URL is 404 at once.
    let r = app
        .post(
            &id,
            &host_headers(Gh, "status", &key(), Some(&secret), &body),
            body,
        )
        .await;
    assert_eq!(r.status(), 404);
    app.stop().await;
}

on_both_engines!(
    a_receiver_over_its_rate_limit_gets_429_with_retry_after_and_nothing_is_stored,
    a_duplicate_delivery_does_not_count_against_the_rate_limit,
);

/// A GitHub receiver `name` taking at most `per_minute` deliveries a minute; returns (id, secret).
async fn limited_receiver(app: &TestApp, name: &str, per_minute: u32) -> (String, String) {
    let created = app
        .receivers()
        .await
        .create_receiver(app.req(hookgate::admin::proto::CreateReceiverRequest {
            name: name.into(),
            code_host_kind: Gh as i32,
            code_host_urn: "https://github.com".into(),
            options: Some(hookgate::admin::proto::ReceiverOptions {
                rate_limit_per_minute: per_minute,
                ..Default::default()
            }),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    (created.receiver.unwrap().id, created.secret)
}

async fn a_receiver_over_its_rate_limit_gets_429_with_retry_after_and_nothing_is_stored(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = limited_receiver(&app, "limited", 3).await;
    let body = fixture("github/push.branch-updated.json");
    for _ in 0..3 {
        let r = app
            .post(
                &id,
                &host_headers(Gh, "push", &key(), Some(&secret), &body),
                body.clone(),
            )
            .await;
        assert_eq!(r.status(), 202);
    }
    let r = app
        .post(
            &id,
            &host_headers(Gh, "push", &key(), Some(&secret), &body),
            body,
        )
        .await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
    let all = app
        .deliveries()
        .await
        .list_deliveries(app.req(ListDeliveriesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.total_size, 3, "the limited delivery was not stored");
    app.stop().await;
}

async fn a_duplicate_delivery_does_not_count_against_the_rate_limit(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = limited_receiver(&app, "limited", 2).await;
    let body = fixture("github/push.branch-updated.json");
    let post = |key: String| {
        let headers = host_headers(Gh, "push", &key, Some(&secret), &body);
        let (app, id, body) = (&app, &id, body.clone());
        async move { app.post(id, &headers, body).await }
    };
    let repeated = key();
    let first = post(repeated.clone()).await;
    assert_eq!(first.status(), 202);
    let original = json_body(first).await["delivery_id"].clone();
    // GitHub redelivering what was stored, more often than the limit allows: each is the
    // duplicate it is, not a 429.
    for _ in 0..4 {
        let again = post(repeated.clone()).await;
        assert_eq!(again.status(), 200);
        assert_eq!(json_body(again).await["delivery_id"], original);
    }
    // The limit's second place is still there for a new delivery, and the limit still holds.
    assert_eq!(post(key()).await.status(), 202);
    assert_eq!(post(key()).await.status(), 429);
    let all = app
        .deliveries()
        .await
        .list_deliveries(app.req(ListDeliveriesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.total_size, 2, "each delivery is stored once");
    app.stop().await;
}

on_both_engines!(
    a_strangers_flood_of_bad_signatures_neither_uses_up_the_rate_limit_nor_fills_the_log
);

/// Someone who knows a receiver's URL but not its secret: their 401s do not count against the
/// receiver's rate limit (the host's own deliveries are still taken), and past
/// `REJECTED_LOGGED_PER_MINUTE` a minute they are answered without being stored.
async fn a_strangers_flood_of_bad_signatures_neither_uses_up_the_rate_limit_nor_fills_the_log(
    engine: Engine,
) {
    use hookgate::ingress::REJECTED_LOGGED_PER_MINUTE;
    let app = TestApp::spawn(engine).await;
    let (id, secret) = limited_receiver(&app, "flooded", 3).await;
    let body = fixture("github/push.branch-updated.json");
    let started = std::time::Instant::now();
    let flood = 2 * REJECTED_LOGGED_PER_MINUTE as usize;
    for _ in 0..flood {
        let r = app
            .post(
                &id,
                &host_headers(Gh, "push", &key(), Some("not-the-secret"), &body),
                body.clone(),
            )
            .await;
        assert_eq!(
            r.status(),
            401,
            "every bad signature is refused, none is rate-limited"
        );
    }
    let flooding = started.elapsed();
    // The host's deliveries, up to its limit of 3, are taken.
    for _ in 0..3 {
        let r = app
            .post(
                &id,
                &host_headers(Gh, "push", &key(), Some(&secret), &body),
                body.clone(),
            )
            .await;
        assert_eq!(
            r.status(),
            202,
            "the stranger used up none of the host's allowance"
        );
    }
    let r = app
        .post(
            &id,
            &host_headers(Gh, "push", &key(), Some(&secret), &body),
            body,
        )
        .await;
    assert_eq!(r.status(), 429);

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
        .total_size as usize;
    // A burst of the limit, then one a second.
    let most = REJECTED_LOGGED_PER_MINUTE as usize + flooding.as_secs() as usize + 1;
    assert!(
        (REJECTED_LOGGED_PER_MINUTE as usize..=most).contains(&rejected),
        "{rejected} of {flood} rejected attempts (sent in {flooding:?}) were stored; expected \
         {REJECTED_LOGGED_PER_MINUTE} to {most}"
    );
    app.stop().await;
}

on_both_engines!(
    concurrent_deliveries_with_one_key_store_one_and_answer_every_one_with_its_id,
    many_concurrent_deliveries_are_each_stored_once_and_answered_after_commit,
    a_large_body_is_stored_compressed_and_read_back_byte_for_byte,
);

/// Group commit puts concurrent requests in one transaction: copies of one delivery sent at the
/// same moment can land in the same batch, and still exactly one is stored.
async fn concurrent_deliveries_with_one_key_store_one_and_answer_every_one_with_its_id(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = app.create_receiver("gh", Gh, "https://github.com").await;
    let body = fixture("github/pull_request.opened.json");
    let headers = host_headers(Gh, "pull_request", "one-key", Some(&secret), &body);
    let sends = (0..32).map(|_| {
        let (headers, body) = (headers.clone(), body.clone());
        let app = &app;
        let id = &id;
        async move {
            let response = app.post(id, &headers, body).await;
            let status = response.status().as_u16();
            (status, json_body(response).await["delivery_id"].clone())
        }
    });
    let answers = futures::future::join_all(sends).await;
    let created: Vec<_> = answers.iter().filter(|(s, _)| *s == 202).collect();
    assert_eq!(created.len(), 1, "{answers:?}");
    let original = &created[0].1;
    for (status, delivery_id) in &answers {
        assert!(*status == 202 || *status == 200, "{answers:?}");
        assert_eq!(delivery_id, original, "every copy names the stored one");
    }
    let all = app
        .deliveries()
        .await
        .list_deliveries(app.req(ListDeliveriesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.total_size, 1);
    app.stop().await;
}

async fn many_concurrent_deliveries_are_each_stored_once_and_answered_after_commit(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = app.create_receiver("gh", Gh, "https://github.com").await;
    let body = fixture("github/push.branch-updated.json");
    let sends = (0..200).map(|n| {
        let headers = host_headers(Gh, "push", &format!("key-{n}"), Some(&secret), &body);
        let (app, id, body) = (&app, &id, body.clone());
        async move {
            let response = app.post(id, &headers, body).await;
            assert_eq!(response.status(), 202);
            json_body(response).await["delivery_id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    });
    let ids = futures::future::join_all(sends).await;
    // Every id answered is stored, under its own key: the answer came after the commit.
    let mut keys = std::collections::HashSet::new();
    for delivery_id in &ids {
        let stored = app.get_delivery(delivery_id).await;
        assert_eq!(stored.request_body, body);
        assert!(keys.insert(stored.delivery_key.clone()), "{stored:?}");
    }
    assert_eq!(keys.len(), 200);
    app.stop().await;
}

async fn a_large_body_is_stored_compressed_and_read_back_byte_for_byte(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = app.create_receiver("gh", Gh, "https://github.com").await;
    let body = fixture("github/pull_request.opened.json");
    let headers = host_headers(Gh, "pull_request", "big", Some(&secret), &body);
    let response = app.post(&id, &headers, body.clone()).await;
    assert_eq!(response.status(), 202);
    let delivery_id = json_body(response).await["delivery_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.get_delivery(&delivery_id).await.request_body, body);

    // In the database it is a zstd frame a fraction of the size.
    let db = Database::connect(app.db.url.as_str()).await.unwrap();
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT body, encoding FROM delivery_bodies WHERE delivery_id = '{delivery_id}'"
            ),
        ))
        .await
        .unwrap()
        .unwrap();
    let stored: Vec<u8> = row.try_get("", "body").unwrap();
    let encoding: Option<String> = row.try_get("", "encoding").unwrap();
    assert_eq!(encoding.as_deref(), Some("zstd"));
    assert!(
        stored.len() * 4 < body.len(),
        "{} of {}",
        stored.len(),
        body.len()
    );
    db.close().await.ok();
    app.stop().await;
}

/// The key Azure DevOps keys a body by: `<subscriptionId>.<notificationId>`, else its `id`.
fn azure_key(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).expect("JSON");
    let text = |name: &str| match &v[name] {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match (text("subscriptionId"), text("notificationId")) {
        (Some(s), Some(n)) => format!("{s}.{n}"),
        _ => text("id").expect("an id"),
    }
}

/// A refused request: how it was sent, its headers, and the error it is answered with.
type Refused<'a> = (&'a str, Vec<(&'static str, String)>, &'a str);

/// `Basic base64(<user>:<password>)`.
fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

/// Azure DevOps signs nothing: every fixture is accepted with the secret as the Basic password
/// of any user, as `X-Hook-Secret`, or both; named by its `eventType` and keyed by
/// `<subscriptionId>.<notificationId>` (else its `id`). A wrong one of them, neither, a
/// malformed `Authorization` or another host's signature is 401 and stored only as a rejected
/// attempt (no body, no event, no key); the same key again is a duplicate.
async fn azure_devops_deliveries_pass_by_basic_password_or_x_hook_secret(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = app.create_receiver("azure", Az, urn(Az)).await;
    let files = [
        "azure-devops/build.complete.json",
        "azure-devops/git.pullrequest.created.json",
        "azure-devops/git.pullrequest.merged.json",
        "azure-devops/git.pullrequest.updated.json",
        "azure-devops/git.push.json",
        "azure-devops/ms.vss-code.git-pullrequest-comment-event.json",
        "azure-devops/ms.vss-code.git-pullrequest-comment-event.resource-v1.json",
    ];
    let json = ("content-type", "application/json".to_owned());
    for (i, file) in files.iter().enumerate() {
        let body = fixture(file);
        let headers = match i % 3 {
            0 => vec![json.clone(), ("authorization", basic("any-user", &secret))],
            1 => vec![json.clone(), ("x-hook-secret", secret.clone())],
            _ => vec![
                json.clone(),
                ("authorization", basic("", &secret)),
                ("x-hook-secret", secret.clone()),
            ],
        };
        let response = app.post(&id, &headers, body.clone()).await;
        assert_eq!(response.status(), 202, "{file}");
        let answer = json_body(response).await;
        let stored = app
            .get_delivery(answer["delivery_id"].as_str().expect("an id"))
            .await;
        let event: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(stored.event, event["eventType"].as_str().unwrap(), "{file}");
        assert_eq!(stored.delivery_key, azure_key(&body), "{file}");
        assert_eq!(stored.request_body, body, "{file}");
        // The same notification again (Azure DevOps' retry) is a duplicate.
        let again = app.post(&id, &headers, body.clone()).await;
        assert_eq!(again.status(), 200, "{file}");
        assert_eq!(json_body(again).await["delivery_id"], answer["delivery_id"]);
    }

    // Derived from git.push.json: a notification of its own, so nothing below is a duplicate.
    let mut push: serde_json::Value =
        serde_json::from_slice(&fixture("azure-devops/git.push.json")).expect("JSON");
    push["notificationId"] = serde_json::json!(3);
    let body = serde_json::to_vec(&push).expect("serialises");
    let github = host_headers(Gh, "push", &key(), Some(&secret), &body);
    let gitea = host_headers(Gt, "push", &key(), Some(&secret), &body);
    let refused: [Refused<'_>; 8] = [
        (
            "neither",
            vec![json.clone()],
            "missing Authorization (Basic) or X-Hook-Secret",
        ),
        (
            "a wrong X-Hook-Secret",
            vec![json.clone(), ("x-hook-secret", "not-the-secret".into())],
            "X-Hook-Secret does not match",
        ),
        (
            "a wrong Basic password",
            vec![
                json.clone(),
                ("authorization", basic("u", "not-the-secret")),
            ],
            "the Basic authentication password does not match",
        ),
        (
            "a right Basic password beside a wrong X-Hook-Secret",
            vec![
                json.clone(),
                ("authorization", basic("u", &secret)),
                ("x-hook-secret", "not-the-secret".into()),
            ],
            "X-Hook-Secret does not match",
        ),
        (
            "Basic that is not base64",
            vec![json.clone(), ("authorization", "Basic %%%".into())],
            "malformed Authorization: expected Basic base64(<any user name>:<the receiver's secret>)",
        ),
        (
            "Basic without a colon",
            vec![
                json.clone(),
                ("authorization", {
                    use base64::Engine as _;
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(&secret)
                    )
                }),
            ],
            "malformed Authorization: expected Basic base64(<any user name>:<the receiver's secret>)",
        ),
        (
            "a GitHub signature",
            github,
            "missing Authorization (Basic) or X-Hook-Secret",
        ),
        (
            "a Gitea signature",
            gitea,
            "missing Authorization (Basic) or X-Hook-Secret",
        ),
    ];
    for (how, headers, error) in &refused {
        let response = app.post(&id, headers, body.clone()).await;
        assert_eq!(response.status(), 401, "{how}");
        assert_eq!(json_body(response).await["error"], *error, "{how}");
    }
    let rejected = app
        .deliveries()
        .await
        .list_deliveries(app.req(ListDeliveriesRequest {
            states: vec![DeliveryState::Rejected as i32],
            page_size: 100,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rejected.total_size as usize, refused.len());
    for d in &rejected.deliveries {
        let full = app.get_delivery(&d.id).await;
        assert!(full.request_body.is_empty(), "{full:?}");
        assert_eq!((full.event.as_str(), full.delivery_key.as_str()), ("", ""));
    }
    let all = app
        .deliveries()
        .await
        .list_deliveries(app.req(ListDeliveriesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.total_size as usize, files.len() + refused.len());

    // A body without a string eventType is 400, saying so.
    let headers = vec![json.clone(), ("x-hook-secret", secret.clone())];
    let response = app
        .post(&id, &headers, br#"{"id":"x","eventType":7}"#.to_vec())
        .await;
    assert_eq!(response.status(), 400);
    let answer = json_body(response).await;
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("with a string eventType")),
        "{answer}"
    );
    app.stop().await;
}
