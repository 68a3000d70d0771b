//! Push sync: push deliveries of all four hosts become sync requests that workers claim over
//! gRPC; coalescing, the minimum interval (with an explicit clock), pushes during a claim, lease
//! expiry, the branch filter, ignore_unmatched, and concurrent claimers; on SQLite and
//! PostgreSQL.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{Engine, TestApp, TestDatabase, fixture};
use hookgate::admin::proto::{
    ClaimSyncRequestsRequest, CodeHostKind, CompleteSyncRequestRequest, CreateReceiverRequest,
    DeliveryState, ListSyncRequestsRequest, ReceiverOptions, RegisterRepositoryRequest,
    RequestSyncRequest, SyncRequestState, repository_service_client::RepositoryServiceClient,
};
use hookgate::hosts::effects::RefUpdate;
use hookgate::receivers::CodeHostUrn;
use hookgate::sync::requests::{self, Reason};
use hookgate::sync::{RepositoryStore, SyncRequestState as State, SyncRequestStore};
use hookgate::time::Timestamp;
use serde_json::{Value, json};
use tonic::Code;

const SECOND: i64 = 1_000_000;

fn load(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).expect("fixtures are JSON")
}

async fn receiver(
    app: &TestApp,
    kind: CodeHostKind,
    urn: &str,
    options: ReceiverOptions,
) -> (String, String) {
    let created = app
        .receivers()
        .await
        .create_receiver(app.req(CreateReceiverRequest {
            name: format!("{kind:?}-{}", uuid::Uuid::new_v4()),
            code_host_kind: kind as i32,
            code_host_urn: urn.into(),
            options: Some(options),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    (created.receiver.unwrap().id, created.secret)
}

async fn sync_requests(app: &TestApp) -> Vec<hookgate::admin::proto::SyncRequest> {
    RepositoryServiceClient::new(app.channel().await)
        .list_sync_requests(app.req(ListSyncRequestsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .sync_requests
}

on_both_engines!(
    every_hosts_push_becomes_a_sync_request_with_its_refs,
    pushes_to_a_pending_request_are_coalesced,
    a_gitea_branch_deletion_and_a_test_button_push_become_sync_requests,
    an_azure_devops_push_of_a_created_tag_and_a_deleted_branch_is_one_request_and_another_organizations_is_ignored,
    a_worker_claims_and_completes_over_grpc_and_a_push_during_the_claim_is_not_lost,
    the_branch_filter_ignores_pushes_to_other_branches_but_not_tags,
    ignore_unmatched_acts_only_on_registered_repositories,
    the_minimum_interval_delays_the_next_sync,
    a_claim_whose_lease_runs_out_returns_to_pending,
    concurrent_claimers_never_share_a_sync_request,
    request_sync_and_complete_refuse_bad_input,
    a_sync_request_is_stored_as_text_and_an_older_row_loads,
);

async fn every_hosts_push_becomes_a_sync_request_with_its_refs(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let cases = [
        (
            CodeHostKind::Github,
            "https://github.com",
            "push",
            "github/push.branch-updated.json",
            "Codertocat/Hello-World",
            "refs/heads/master",
            "a10867b14bb761a232cd80139fbd4c0d33264240",
            "199eddf46df50de8d02e99bf1c5fdb4101338224",
        ),
        (
            CodeHostKind::Gitlab,
            "http://example.com",
            "Push Hook",
            "gitlab/push.json",
            "mike/diaspora",
            "refs/heads/master",
            "95790bf891e76fee5e1747ab589903a6a1f80f22",
            "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        ),
        (
            CodeHostKind::Gitlab,
            "http://example.com",
            "Tag Push Hook",
            "gitlab/tag_push.json",
            "jsmith/example",
            "refs/tags/v1.0.0",
            "0000000000000000000000000000000000000000",
            "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7",
        ),
        (
            CodeHostKind::BitbucketServer,
            "https://server.bitbucket.local",
            "repo:refs_changed",
            "bitbucket-server/repo_refs_changed.json",
            "~gopher/webhook-test",
            "refs/heads/feature/wip",
            "32a0b8a740c2963c6f56bd8baf3dc05683d299e0",
            "0000000000000000000000000000000000000000",
        ),
        (
            CodeHostKind::BitbucketCloud,
            "https://bitbucket.org",
            "repo:push",
            "bitbucket-cloud/repo_push.json",
            "cloudbeers/temp",
            "refs/heads/main",
            "501bf5b99365d1d870882254b9360c17172bda0e",
            "e42fac24456e4a56f1b7f9358afc3070e3b7ddec",
        ),
        (
            CodeHostKind::Gitea,
            "http://127.0.0.1:3000",
            "push",
            "gitea/push.branch-updated.json",
            "Test-CI/multi-line-secrets",
            "refs/heads/main",
            "6efcf5b7c98f3e7a491675164b7a2e7acac27941",
            "29be01c073851cf0db0c6a466e396b725a670453",
        ),
        (
            CodeHostKind::Gitea,
            "https://codeberg.org",
            "push",
            "gitea/push.branch-created-no-commits.json",
            "meisam/woodpecktester",
            "refs/heads/fdsafdsa",
            "0000000000000000000000000000000000000000",
            "28c3613ae62640216bea5e7dc71aa65356e4298b",
        ),
        // Gitea's `create` names the branch by its short name.
        (
            CodeHostKind::Gitea,
            "http://localhost:3000",
            "create",
            "gitea/create.branch.json",
            "example/example",
            "refs/heads/master",
            "0000000000000000000000000000000000000000",
            "67b56589a45103f891bdee7c0546e5d40bc02001",
        ),
        // Azure DevOps: the real delivery of a push, repository `<project>/<repo>`.
        (
            CodeHostKind::AzureDevops,
            "https://dev.azure.com/alexander0053",
            "git.push",
            "azure-devops/git.push.json",
            "alex-test/alex-test",
            "refs/heads/master",
            "fa51eeb1e50b98293ce281e6d5492b9decae613b",
            "298a79aa1552799a70718a0ee914d153d5a1a76b",
        ),
    ];
    for (kind, urn, event, file, repo, name, old, new) in cases {
        let r = receiver(&app, kind, urn, ReceiverOptions::default()).await;
        let d = app.deliver(kind, &r, event, &load(file)).await;
        assert_eq!(d.state, DeliveryState::Processed as i32, "{file}: {d:?}");
        let all = sync_requests(&app).await;
        let req = all
            .iter()
            .find(|s| s.repository == repo)
            .unwrap_or_else(|| panic!("{file}: no sync request for {repo}: {all:?}"));
        assert_eq!(req.state, SyncRequestState::Pending as i32);
        assert_eq!(req.push_count, 1);
        assert_eq!(req.reason, "push");
        assert_eq!(req.refs.len(), 1, "{file}");
        assert_eq!(
            (
                req.refs[0].name.as_str(),
                req.refs[0].old_sha.as_str(),
                req.refs[0].new_sha.as_str()
            ),
            (name, old, new),
            "{file}"
        );
        assert_eq!(req.code_host_urn, CodeHostUrn::parse(urn).unwrap().as_str());
    }
    // Bitbucket Server's clone links come along for the worker.
    let bbs = sync_requests(&app)
        .await
        .into_iter()
        .find(|s| s.repository == "~gopher/webhook-test")
        .unwrap();
    assert!(
        bbs.clone_urls
            .contains(&"https://server.bitbucket.local/scm/~gopher/webhook-test.git".to_owned()),
        "{bbs:?}"
    );
    app.stop().await;
}

/// Gitea's `delete` of a branch (which names it by its short name and says nothing of where it
/// was) is a sync request for the deleted ref; a `push` whose before equals its after (what
/// Gitea's Test Delivery button sends) is one too, as any push is.
async fn a_gitea_branch_deletion_and_a_test_button_push_become_sync_requests(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let r = receiver(
        &app,
        CodeHostKind::Gitea,
        "http://localhost:3000",
        ReceiverOptions::default(),
    )
    .await;
    let d = app
        .deliver(
            CodeHostKind::Gitea,
            &r,
            "delete",
            &load("gitea/delete.branch.json"),
        )
        .await;
    assert_eq!(d.state, DeliveryState::Processed as i32, "{d:?}");
    let all = sync_requests(&app).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].repository, "example/example");
    let refs: Vec<_> = all[0]
        .refs
        .iter()
        .map(|r| (r.name.as_str(), r.old_sha.as_str(), r.new_sha.as_str()))
        .collect();
    assert_eq!(
        refs,
        [(
            "refs/heads/example3",
            "",
            "0000000000000000000000000000000000000000"
        )]
    );

    let mut test_button = load("gitea/push.branch-created.json");
    test_button["before"] = test_button["after"].clone();
    let d = app
        .deliver(CodeHostKind::Gitea, &r, "push", &test_button)
        .await;
    assert_eq!(d.state, DeliveryState::Processed as i32, "{d:?}");
    let all = sync_requests(&app).await;
    assert_eq!(all.len(), 1, "the same repository's request: {all:?}");
    assert_eq!(all[0].push_count, 2);
    let sha = "67b56589a45103f891bdee7c0546e5d40bc02001";
    assert!(
        all[0]
            .refs
            .iter()
            .any(|r| r.name == "refs/heads/master" && r.old_sha == sha && r.new_sha == sha),
        "{all:?}"
    );
    app.stop().await;
}

/// An Azure DevOps `git.push` carries every ref it changed (`resource.refUpdates`): here, derived
/// from the real delivery by the test, a created tag and a deleted branch beside the branch
/// update, all in one sync request. The same push at a receiver of another organization is
/// ignored, naming it.
async fn an_azure_devops_push_of_a_created_tag_and_a_deleted_branch_is_one_request_and_another_organizations_is_ignored(
    engine: Engine,
) {
    const ZERO: &str = "0000000000000000000000000000000000000000";
    let app = TestApp::spawn(engine).await;
    let r = receiver(
        &app,
        CodeHostKind::AzureDevops,
        "https://dev.azure.com/alexander0053/",
        ReceiverOptions::default(),
    )
    .await;
    let mut push = load("azure-devops/git.push.json");
    push["resource"]["refUpdates"]
        .as_array_mut()
        .expect("refUpdates")
        .extend([
            json!({"name": "refs/tags/v1.0", "oldObjectId": ZERO, "newObjectId": "298a79aa1552799a70718a0ee914d153d5a1a76b"}),
            json!({"name": "refs/heads/old", "oldObjectId": "fa51eeb1e50b98293ce281e6d5492b9decae613b", "newObjectId": ZERO}),
        ]);
    let d = app
        .deliver(CodeHostKind::AzureDevops, &r, "git.push", &push)
        .await;
    assert_eq!(d.state, DeliveryState::Processed as i32, "{d:?}");
    assert_eq!(
        d.delivery_key, "8fd412f1-9873-4b45-8854-655b1b8a2eff.2",
        "<subscriptionId>.<notificationId>"
    );
    let all = sync_requests(&app).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].repository, "alex-test/alex-test");
    let mut refs: Vec<_> = all[0]
        .refs
        .iter()
        .map(|r| (r.name.as_str(), r.old_sha.as_str(), r.new_sha.as_str()))
        .collect();
    refs.sort();
    assert_eq!(
        refs,
        [
            (
                "refs/heads/master",
                "fa51eeb1e50b98293ce281e6d5492b9decae613b",
                "298a79aa1552799a70718a0ee914d153d5a1a76b"
            ),
            (
                "refs/heads/old",
                "fa51eeb1e50b98293ce281e6d5492b9decae613b",
                ZERO
            ),
            (
                "refs/tags/v1.0",
                ZERO,
                "298a79aa1552799a70718a0ee914d153d5a1a76b"
            ),
        ]
    );

    let elsewhere = receiver(
        &app,
        CodeHostKind::AzureDevops,
        "https://dev.azure.com/fabrikam/",
        ReceiverOptions::default(),
    )
    .await;
    let d = app
        .deliver(
            CodeHostKind::AzureDevops,
            &elsewhere,
            "git.push",
            &load("azure-devops/git.push.json"),
        )
        .await;
    assert_eq!(d.state, DeliveryState::Ignored as i32, "{d:?}");
    assert!(
        d.last_error
            .contains("https://dev.azure.com/alexander0053/alex-test/_git/alex-test")
            && d.last_error.contains("not on this receiver's code host"),
        "{d:?}"
    );
    assert_eq!(sync_requests(&app).await.len(), 1);
    app.stop().await;
}

async fn pushes_to_a_pending_request_are_coalesced(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let r = receiver(
        &app,
        CodeHostKind::Github,
        "https://github.com",
        ReceiverOptions::default(),
    )
    .await;
    let first = load("github/push.branch-updated.json");
    let mut second = first.clone();
    second["before"] = first["after"].clone();
    second["after"] = json!("2222222222222222222222222222222222222222");
    let mut tag = first.clone();
    tag["ref"] = json!("refs/tags/v2");
    tag["before"] = json!("0000000000000000000000000000000000000000");
    tag["after"] = json!("3333333333333333333333333333333333333333");
    for body in [&first, &second, &tag] {
        app.deliver(CodeHostKind::Github, &r, "push", body).await;
    }
    let all = sync_requests(&app).await;
    assert_eq!(
        all.len(),
        1,
        "one outstanding request per repository: {all:?}"
    );
    let req = &all[0];
    assert_eq!(req.push_count, 3);
    let refs: Vec<_> = req
        .refs
        .iter()
        .map(|r| (r.name.as_str(), r.old_sha.as_str(), r.new_sha.as_str()))
        .collect();
    assert_eq!(
        refs,
        [
            (
                "refs/heads/master",
                "a10867b14bb761a232cd80139fbd4c0d33264240",
                "2222222222222222222222222222222222222222"
            ),
            (
                "refs/tags/v2",
                "0000000000000000000000000000000000000000",
                "3333333333333333333333333333333333333333"
            ),
        ]
    );
    app.stop().await;
}

async fn a_worker_claims_and_completes_over_grpc_and_a_push_during_the_claim_is_not_lost(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let r = receiver(
        &app,
        CodeHostKind::Github,
        "https://github.com",
        ReceiverOptions::default(),
    )
    .await;
    let push = load("github/push.branch-updated.json");
    app.deliver(CodeHostKind::Github, &r, "push", &push).await;
    let mut repos = RepositoryServiceClient::new(app.channel().await);
    let claimed = repos
        .claim_sync_requests(app.req(ClaimSyncRequestsRequest {
            worker: "mirror-1".into(),
            max: 10,
            lease: Some(prost_types::Duration {
                seconds: 60,
                nanos: 0,
            }),
        }))
        .await
        .unwrap()
        .into_inner()
        .sync_requests;
    assert_eq!(claimed.len(), 1);
    let c = &claimed[0];
    assert_eq!(c.state, SyncRequestState::Claimed as i32);
    assert_eq!(c.worker, "mirror-1");
    let listed = repos
        .list_sync_requests(app.req(ListSyncRequestsRequest {
            code_host_urn: "https://github.com".into(),
            states: vec![SyncRequestState::Claimed as i32],
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size, 1);
    let elsewhere = repos
        .list_sync_requests(app.req(ListSyncRequestsRequest {
            code_host_urn: "https://gitlab.com".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(elsewhere.total_size, 0);
    assert!(
        c.clone_urls
            .contains(&"https://github.com/Codertocat/Hello-World.git".to_owned()),
        "{c:?}"
    );
    assert!(c.lease_expire_time.is_some());
    // Nothing more to claim for another worker.
    let none = repos
        .claim_sync_requests(app.req(ClaimSyncRequestsRequest {
            worker: "mirror-2".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .sync_requests;
    assert!(none.is_empty());

    // A push lands while mirror-1 syncs.
    let mut during = push.clone();
    during["after"] = json!("4444444444444444444444444444444444444444");
    app.deliver(CodeHostKind::Github, &r, "push", &during).await;

    let done = repos
        .complete_sync_request(app.req(CompleteSyncRequestRequest {
            id: c.id.clone(),
            success: true,
            error: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.state, SyncRequestState::Completed as i32);
    let all = sync_requests(&app).await;
    let next = all
        .iter()
        .find(|s| s.state == SyncRequestState::Pending as i32)
        .expect("the push during the sync queued another");
    assert_eq!(next.push_count, 1);
    assert_eq!(
        next.refs[0].new_sha,
        "4444444444444444444444444444444444444444"
    );
    // Completing twice is refused.
    let err = repos
        .complete_sync_request(app.req(CompleteSyncRequestRequest {
            id: c.id.clone(),
            success: true,
            error: String::new(),
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    app.stop().await;
}

async fn the_branch_filter_ignores_pushes_to_other_branches_but_not_tags(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let options = ReceiverOptions {
        push_branch_filter: vec!["main".into(), "release/*".into()],
        ..Default::default()
    };
    let r = receiver(&app, CodeHostKind::Github, "https://github.com", options).await;
    let push = load("github/push.branch-updated.json"); // refs/heads/master
    let d = app.deliver(CodeHostKind::Github, &r, "push", &push).await;
    assert_eq!(d.state, DeliveryState::Ignored as i32);
    assert!(
        d.last_error.contains("push_branch_filter"),
        "{}",
        d.last_error
    );
    assert!(sync_requests(&app).await.is_empty());

    let mut release = push.clone();
    release["ref"] = json!("refs/heads/release/1.2");
    let d = app
        .deliver(CodeHostKind::Github, &r, "push", &release)
        .await;
    assert_eq!(d.state, DeliveryState::Processed as i32);
    // The same repository: the two fixtures share its name, not its host id.
    let mut tag = load("github/push.tag-deleted.json");
    tag["repository"]["id"] = push["repository"]["id"].clone();
    let d = app.deliver(CodeHostKind::Github, &r, "push", &tag).await;
    assert_eq!(
        d.state,
        DeliveryState::Processed as i32,
        "tags are not filtered: {d:?}"
    );
    let all = sync_requests(&app).await;
    assert_eq!(all.len(), 1);
    let names: Vec<_> = all[0].refs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"refs/heads/release/1.2"));
    app.stop().await;
}

async fn ignore_unmatched_acts_only_on_registered_repositories(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let r = receiver(
        &app,
        CodeHostKind::Gitlab,
        "http://example.com",
        ReceiverOptions {
            ignore_unmatched: true,
            ..Default::default()
        },
    )
    .await;
    let push = load("gitlab/push.json");
    let d = app
        .deliver(CodeHostKind::Gitlab, &r, "Push Hook", &push)
        .await;
    assert_eq!(d.state, DeliveryState::Ignored as i32);
    assert!(d.last_error.contains("not registered"), "{}", d.last_error);
    assert!(sync_requests(&app).await.is_empty());
    RepositoryServiceClient::new(app.channel().await)
        .register_repository(app.req(RegisterRepositoryRequest {
            code_host_urn: "http://example.com".into(),
            name: "mike/diaspora".into(),
            external_id: String::new(),
        }))
        .await
        .unwrap();
    let d = app
        .deliver(CodeHostKind::Gitlab, &r, "Push Hook", &push)
        .await;
    assert_eq!(d.state, DeliveryState::Processed as i32);
    assert_eq!(sync_requests(&app).await.len(), 1);
    app.stop().await;
}

/// A fresh database with one repository row, for store-level tests with an explicit clock.
async fn store_setup(
    engine: Engine,
) -> (
    TestDatabase,
    hookgate::db::Db,
    SyncRequestStore,
    hookgate::entity::repository::Model,
) {
    let test_db = TestDatabase::new(engine).await;
    let db = hookgate::db::connect(&test_db.url).await.unwrap();
    hookgate::db::migrate(&db).await.unwrap();
    let repos = RepositoryStore::new(db.clone());
    let repo = repos
        .register(
            &CodeHostUrn::parse("https://github.com").unwrap(),
            "octo/app",
            "",
        )
        .await
        .unwrap();
    let row = repos.rows_by_id(repo.id).await.unwrap();
    (test_db, db.clone(), SyncRequestStore::new(db), row)
}

fn refs(new_sha: &str) -> Vec<RefUpdate> {
    vec![RefUpdate {
        name: "refs/heads/main".into(),
        old_sha: "0".repeat(40),
        new_sha: new_sha.into(),
    }]
}

async fn the_minimum_interval_delays_the_next_sync(engine: Engine) {
    let (test_db, db, store, repo) = store_setup(engine).await;
    let interval = Duration::from_secs(60);
    let t0 = Timestamp::from_micros(1_000_000 * SECOND);
    requests::request(
        &db,
        &repo,
        Default::default(),
        &refs("a"),
        interval,
        Reason::Push,
        t0,
    )
    .await
    .unwrap();
    // Never synced: due at once.
    let claimed = store
        .claim("w", 10, Duration::from_secs(30), t0)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    store
        .complete(claimed[0].id, true, "", t0.plus(Duration::from_secs(1)))
        .await
        .unwrap();

    // A push 2 s after the sync completed is due 60 s after it.
    let repo = RepositoryStore::new(db.clone())
        .rows_by_id(repo.id.uuid())
        .await
        .unwrap();
    let id = requests::request(
        &db,
        &repo,
        Default::default(),
        &refs("b"),
        interval,
        Reason::Push,
        t0.plus(Duration::from_secs(3)),
    )
    .await
    .unwrap();
    let pending = store.get(id).await.unwrap();
    assert_eq!(pending.due_time, t0.plus(Duration::from_secs(61)));
    assert!(
        store
            .claim(
                "w",
                10,
                Duration::from_secs(30),
                t0.plus(Duration::from_secs(60))
            )
            .await
            .unwrap()
            .is_empty()
    );
    // More pushes meanwhile join it and do not move it.
    requests::request(
        &db,
        &repo,
        Default::default(),
        &refs("c"),
        interval,
        Reason::Push,
        t0.plus(Duration::from_secs(30)),
    )
    .await
    .unwrap();
    let claimed = store
        .claim(
            "w",
            10,
            Duration::from_secs(30),
            t0.plus(Duration::from_secs(61)),
        )
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].push_count, 2);
    assert_eq!(claimed[0].refs[0].new_sha, "c");
    test_db.drop_database().await;
}

async fn a_claim_whose_lease_runs_out_returns_to_pending(engine: Engine) {
    let (test_db, db, store, repo) = store_setup(engine).await;
    let t0 = Timestamp::from_micros(2_000_000 * SECOND);
    requests::request(
        &db,
        &repo,
        Default::default(),
        &refs("a"),
        Duration::ZERO,
        Reason::Push,
        t0,
    )
    .await
    .unwrap();
    let first = store
        .claim("dies", 10, Duration::from_secs(30), t0)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert!(
        store
            .claim(
                "other",
                10,
                Duration::from_secs(30),
                t0.plus(Duration::from_secs(29))
            )
            .await
            .unwrap()
            .is_empty()
    );
    let listed = store
        .list(None, &[], None, 10, t0.plus(Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(
        listed.sync_requests[0].state,
        State::Pending,
        "the lease ran out"
    );
    let again = store
        .claim(
            "other",
            10,
            Duration::from_secs(30),
            t0.plus(Duration::from_secs(30)),
        )
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, first[0].id);
    assert_eq!(again[0].worker, "other");
    test_db.drop_database().await;
}

async fn concurrent_claimers_never_share_a_sync_request(engine: Engine) {
    let (test_db, db, store, _) = store_setup(engine).await;
    let repos = RepositoryStore::new(db.clone());
    let t0 = Timestamp::from_micros(3_000_000 * SECOND);
    let mut all = HashSet::new();
    for i in 0..60 {
        let repo = repos
            .register(
                &CodeHostUrn::parse("https://github.com").unwrap(),
                &format!("octo/r{i}"),
                "",
            )
            .await
            .unwrap();
        let row = repos.rows_by_id(repo.id).await.unwrap();
        all.insert(
            requests::request(
                &db,
                &row,
                Default::default(),
                &[],
                Duration::ZERO,
                Reason::Manual,
                t0,
            )
            .await
            .unwrap(),
        );
    }
    let mut tasks = Vec::new();
    for w in 0..6 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                match store
                    .claim(&format!("w{w}"), 4, Duration::from_secs(60), t0)
                    .await
                {
                    Ok(batch) if batch.is_empty() => break,
                    Ok(batch) => mine.extend(batch.into_iter().map(|r| r.id)),
                    Err(hookgate::store::StoreError::Unavailable(_)) => {}
                    Err(e) => panic!("claim failed: {e}"),
                }
            }
            mine
        }));
    }
    let mut claimed = Vec::new();
    for t in tasks {
        claimed.extend(t.await.unwrap());
    }
    let unique: HashSet<_> = claimed.iter().copied().collect();
    assert_eq!(
        unique.len(),
        claimed.len(),
        "a sync request was handed to two workers"
    );
    assert_eq!(unique, all);
    test_db.drop_database().await;
}

async fn request_sync_and_complete_refuse_bad_input(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let mut repos = RepositoryServiceClient::new(app.channel().await);
    let registered = repos
        .register_repository(app.req(RegisterRepositoryRequest {
            code_host_urn: "https://github.com".into(),
            name: "octo/app".into(),
            external_id: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    // By id, by name, and all of a receiver's: made or joined, never two.
    let by_id = repos
        .request_sync(app.req(RequestSyncRequest {
            repository_id: registered.id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let by_name = repos
        .request_sync(app.req(RequestSyncRequest {
            code_host_urn: "https://github.com".into(),
            name: "octo/app".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_id.sync_requests[0].id, by_name.sync_requests[0].id);
    assert_eq!(by_id.sync_requests[0].reason, "manual");
    let r = receiver(
        &app,
        CodeHostKind::Github,
        "https://github.com",
        ReceiverOptions::default(),
    )
    .await;
    let all = repos
        .request_sync(app.req(RequestSyncRequest {
            receiver_id: r.0.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.sync_requests.len(), 1);

    for bad in [
        RequestSyncRequest::default(),
        RequestSyncRequest {
            repository_id: registered.id.clone(),
            receiver_id: r.0.clone(),
            ..Default::default()
        },
        RequestSyncRequest {
            repository_id: "nope".into(),
            ..Default::default()
        },
    ] {
        assert_eq!(
            repos.request_sync(app.req(bad)).await.unwrap_err().code(),
            Code::InvalidArgument
        );
    }
    let unknown = repos
        .request_sync(app.req(RequestSyncRequest {
            code_host_urn: "https://github.com".into(),
            name: "octo/unknown".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    for bad in [
        ClaimSyncRequestsRequest {
            worker: String::new(),
            ..Default::default()
        },
        ClaimSyncRequestsRequest {
            worker: "w".into(),
            max: 501,
            ..Default::default()
        },
        ClaimSyncRequestsRequest {
            worker: "w".into(),
            lease: Some(prost_types::Duration {
                seconds: -1,
                nanos: 0,
            }),
            ..Default::default()
        },
    ] {
        assert_eq!(
            repos
                .claim_sync_requests(app.req(bad))
                .await
                .unwrap_err()
                .code(),
            Code::InvalidArgument
        );
    }
    let err = repos
        .complete_sync_request(app.req(CompleteSyncRequestRequest {
            id: by_id.sync_requests[0].id.clone(),
            success: true,
            error: String::new(),
        }))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::FailedPrecondition,
        "a pending request cannot be completed"
    );
    app.stop().await;
}

/// The stored form is what it always was (ids as hyphenated text, refs as JSON text, states and
/// reasons as their words, an admin's request with an empty receiver), so a row an older
/// hookgate wrote loads, and a row written now reads the same way.
async fn a_sync_request_is_stored_as_text_and_an_older_row_loads(engine: Engine) {
    use sea_orm::{ConnectionTrait, Statement};
    let (test_db, db, store, repo) = store_setup(engine).await;
    let t0 = Timestamp::from_micros(4_000_000 * SECOND);
    let made = requests::request(
        &db,
        &repo,
        Default::default(),
        &refs("a"),
        Duration::ZERO,
        Reason::Push,
        t0,
    )
    .await
    .unwrap();
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT id, repository_id, receiver_id, state, refs, reason, rerun_refs \
             FROM sync_requests",
        ))
        .await
        .unwrap()
        .expect("one row");
    let text = |column: &str| row.try_get::<String>("", column).unwrap();
    assert_eq!(text("id"), made.to_string());
    assert_eq!(text("repository_id"), repo.id.to_string());
    assert_eq!(text("receiver_id"), "");
    assert_eq!(text("state"), "PENDING");
    assert_eq!(text("reason"), "push");
    assert_eq!(
        text("refs"),
        format!(
            r#"[{{"name":"refs/heads/main","old_sha":"{}","new_sha":"a"}}]"#,
            "0".repeat(40)
        )
    );
    assert_eq!(text("rerun_refs"), "[]");

    // A completed rerun, as an older hookgate wrote it.
    let old = uuid::Uuid::new_v4();
    db.execute_unprepared(&format!(
        "INSERT INTO sync_requests (id, repository_id, receiver_id, state, push_count, refs, \
         request_time, due_time, lease_expire_time, worker, reason, min_sync_interval_ms, rerun, \
         rerun_refs, rerun_count, complete_time, error) VALUES ('{old}', '{}', '', 'COMPLETED', \
         2, '[{{\"name\":\"refs/heads/x\",\"old_sha\":\"1\",\"new_sha\":\"2\"}}]', 5, 6, NULL, \
         'w', 'pushed during a sync', 0, FALSE, '[]', 0, 7, NULL)",
        repo.id
    ))
    .await
    .unwrap();
    let loaded = store.get(old).await.expect("an older row loads");
    assert_eq!(loaded.state, State::Completed);
    assert_eq!(loaded.reason, Reason::PushedDuringSync);
    assert_eq!(loaded.receiver_id, None);
    assert_eq!(loaded.refs[0].name, "refs/heads/x");
    assert_eq!(loaded.request_time, Timestamp::from_micros(5));
    test_db.drop_database().await;
}
