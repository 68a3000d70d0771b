//! A repository is the host's repository, not its name: real fixtures from every host, posted
//! over HTTP with signatures computed here, renamed on the way (the test edits the name in the
//! JSON, the host's id stays), and read back over gRPC, on SQLite and PostgreSQL.

mod common;

use common::{Engine, TestApp, TestDatabase, fixture};
use hookgate::admin::proto::{
    Changeset, CodeHostKind, DeliveryState, EventKind, GetRepositoryRequest, ListChangesetsRequest,
    ListRepositoriesRequest, ListSyncRequestsRequest, ReceiverOptions, RegisterRepositoryRequest,
    Repository, RequestSyncRequest, WatchRequest, changeset_service_client::ChangesetServiceClient,
    event::Subject, event_service_client::EventServiceClient,
    repository_service_client::RepositoryServiceClient,
};
use serde_json::{Value, json};
use tonic::transport::Channel;

fn load(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).expect("fixtures are JSON")
}

/// `payload` with `from` replaced by `to` in every string it holds: a repository renamed or
/// moved on its host is renamed in its names, web pages and clone URLs alike.
fn replaced(mut payload: Value, from: &str, to: &str) -> Value {
    fn walk(value: &mut Value, from: &str, to: &str) {
        match value {
            Value::String(s) if s.contains(from) => *s = s.replace(from, to),
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, from, to)),
            Value::Object(map) => map.values_mut().for_each(|v| walk(v, from, to)),
            _ => {}
        }
    }
    walk(&mut payload, from, to);
    payload
}

/// One host's repository renamed between two pull request events, then pushed to.
struct Rename {
    kind: CodeHostKind,
    urn: &'static str,
    /// As hookgate normalises it.
    normalized_urn: &'static str,
    pull_request_event: &'static str,
    /// The first pull request event, and the second (of the same pull request), sent renamed.
    first: &'static str,
    second: &'static str,
    push_event: &'static str,
    push: &'static str,
    /// The text the push fixture names its own repository by, where it is another repository
    /// than the pull request's (it is made the same one: this text becomes `text_before`).
    push_names: Option<&'static str>,
    /// Other text of the push fixture made the pull request's (`(from, to)`, before
    /// `push_names`): where the push fixture is of another organization, its name.
    push_also: &'static [(&'static str, &'static str)],
    /// Where the pull request fixture holds the repository's id, and where the push fixture
    /// gets it (when they are different repositories in the fixtures).
    id_at: &'static str,
    push_id_at: &'static [&'static str],
    /// The repository's name as hookgate reads it, before and after.
    before: &'static str,
    after: &'static str,
    /// The text renamed in the payloads (the repository's path in names and URLs).
    text_before: &'static str,
    text_after: &'static str,
}

fn github() -> Rename {
    Rename {
        kind: CodeHostKind::Github,
        urn: "https://github.com",
        normalized_urn: "https://github.com/",
        pull_request_event: "pull_request",
        first: "github/pull_request.opened.json",
        second: "github/pull_request.closed.json",
        push_event: "push",
        push: "github/push.branch-created.json",
        push_names: None,
        push_also: &[],
        id_at: "/repository/id",
        push_id_at: &[],
        before: "Codertocat/Hello-World",
        after: "Codertocat/Hello-Universe",
        text_before: "Codertocat/Hello-World",
        text_after: "Codertocat/Hello-Universe",
    }
}

fn gitlab() -> Rename {
    Rename {
        kind: CodeHostKind::Gitlab,
        urn: "http://example.com",
        normalized_urn: "http://example.com/",
        pull_request_event: "Merge Request Hook",
        first: "gitlab/merge_request.open.json",
        second: "gitlab/merge_request.open.json",
        push_event: "Push Hook",
        push: "gitlab/push.json",
        push_names: Some("mike/diaspora"),
        push_also: &[],
        id_at: "/project/id",
        push_id_at: &["/project/id", "/project_id"],
        before: "gitlabhq/gitlab-test",
        after: "gitlabhq/gitlab-renamed",
        text_before: "gitlabhq/gitlab-test",
        text_after: "gitlabhq/gitlab-renamed",
    }
}

fn bitbucket_server() -> Rename {
    Rename {
        kind: CodeHostKind::BitbucketServer,
        urn: "https://server.bitbucket.local",
        normalized_urn: "https://server.bitbucket.local/",
        pull_request_event: "pr:opened",
        first: "bitbucket-server/pr_opened.json",
        second: "bitbucket-server/pr_opened.json",
        push_event: "repo:refs_changed",
        push: "bitbucket-server/repo_refs_changed.json",
        push_names: None,
        push_also: &[],
        id_at: "/pullRequest/toRef/repository/id",
        push_id_at: &[],
        before: "~gopher/webhook-test",
        after: "~gopher/webhook-renamed",
        text_before: "webhook-test",
        text_after: "webhook-renamed",
    }
}

fn bitbucket_cloud() -> Rename {
    Rename {
        kind: CodeHostKind::BitbucketCloud,
        urn: "https://bitbucket.org",
        normalized_urn: "https://bitbucket.org/",
        pull_request_event: "pullrequest:created",
        first: "bitbucket-cloud/pullrequest_created.json",
        second: "bitbucket-cloud/pullrequest_created.json",
        push_event: "repo:push",
        push: "bitbucket-cloud/repo_push.json",
        push_names: Some("cloudbeers/temp"),
        push_also: &[],
        id_at: "/repository/uuid",
        push_id_at: &["/repository/uuid"],
        before: "amuniz/test-repos",
        after: "amuniz/renamed-repos",
        text_before: "amuniz/test-repos",
        text_after: "amuniz/renamed-repos",
    }
}

/// A project and repository both named `Fabrikam` (Microsoft's samples), renamed; the push is
/// the real delivery of another organization's repository, made this one.
fn azure_devops() -> Rename {
    Rename {
        kind: CodeHostKind::AzureDevops,
        urn: "https://dev.azure.com/fabrikam",
        normalized_urn: "https://dev.azure.com/fabrikam/",
        pull_request_event: "git.pullrequest.created",
        first: "azure-devops/git.pullrequest.created.json",
        // Another delivery (Azure DevOps keys a delivery by its body) of the same pull request.
        second: "azure-devops/git.pullrequest.updated.json",
        push_event: "git.push",
        push: "azure-devops/git.push.json",
        push_names: Some("alex-test"),
        push_also: &[("alexander0053", "fabrikam")],
        id_at: "/resource/repository/id",
        push_id_at: &["/resource/repository/id"],
        before: "Fabrikam/Fabrikam",
        after: "Renamed/Renamed",
        text_before: "Fabrikam",
        text_after: "Renamed",
    }
}

fn gitea() -> Rename {
    Rename {
        kind: CodeHostKind::Gitea,
        urn: "http://localhost:3000",
        normalized_urn: "http://localhost:3000/",
        pull_request_event: "pull_request",
        first: "gitea/pull_request.opened.json",
        second: "gitea/pull_request.opened.json",
        push_event: "push",
        push: "gitea/push.branch-created.json",
        push_names: None,
        push_also: &[],
        id_at: "/repository/id",
        push_id_at: &[],
        before: "example/example",
        after: "example/renamed",
        text_before: "example/example",
        text_after: "example/renamed",
    }
}

async fn repositories(app: &TestApp) -> RepositoryServiceClient<Channel> {
    RepositoryServiceClient::new(app.channel().await)
}

/// The one repository the service knows; fails when there are more or none.
async fn only_repository(app: &TestApp) -> Repository {
    let listed = repositories(app)
        .await
        .list_repositories(app.req(ListRepositoriesRequest::default()))
        .await
        .expect("repositories are listed")
        .into_inner();
    assert_eq!(listed.total_size, 1, "one repository: {listed:#?}");
    listed.repositories.into_iter().next().expect("one")
}

/// The one changeset the service knows; fails when there are more or none.
async fn only_changeset(app: &TestApp) -> Changeset {
    let listed = ChangesetServiceClient::new(app.channel().await)
        .list_changesets(app.req(ListChangesetsRequest::default()))
        .await
        .expect("changesets are listed")
        .into_inner();
    assert_eq!(listed.total_size, 1, "one changeset: {listed:#?}");
    listed.changesets.into_iter().next().expect("one")
}

async fn get_by_name(app: &TestApp, urn: &str, name: &str) -> Repository {
    repositories(app)
        .await
        .get_repository(app.req(GetRepositoryRequest {
            code_host_urn: urn.to_owned(),
            name: name.to_owned(),
            ..Default::default()
        }))
        .await
        .unwrap_or_else(|e| panic!("GetRepository {name}: {e}"))
        .into_inner()
}

/// Delivers `body` and asserts the worker ended it in `state`; returns the delivery.
async fn deliver_expecting(
    app: &TestApp,
    kind: CodeHostKind,
    receiver: &(String, String),
    event: &str,
    body: &Value,
    state: DeliveryState,
) -> hookgate::admin::proto::Delivery {
    let delivery = app.deliver(kind, receiver, event, body).await;
    assert_eq!(
        delivery.state,
        state as i32,
        "{event}: {:?} ({})",
        DeliveryState::try_from(delivery.state),
        delivery.last_error
    );
    delivery
}

async fn a_rename_keeps_one_repository_and_one_changeset_and_the_next_push_syncs_it_by_its_new_name(
    engine: Engine,
    host: Rename,
) {
    let app = TestApp::spawn(engine).await;
    let receiver = app.create_receiver("rename", host.kind, host.urn).await;
    let processed = DeliveryState::Processed;

    let first = load(host.first);
    deliver_expecting(
        &app,
        host.kind,
        &receiver,
        host.pull_request_event,
        &first,
        processed,
    )
    .await;
    let before = only_repository(&app).await;
    assert_eq!(before.name, host.before);
    assert!(!before.external_id.is_empty(), "{before:?}");
    let changeset = only_changeset(&app).await;

    let second = replaced(load(host.second), host.text_before, host.text_after);
    deliver_expecting(
        &app,
        host.kind,
        &receiver,
        host.pull_request_event,
        &second,
        processed,
    )
    .await;
    let after = only_repository(&app).await;
    assert_eq!(after.id, before.id, "the same repository");
    assert_eq!(after.name, host.after);
    assert_eq!(after.external_id, before.external_id);
    assert_eq!(after.former_names, [host.before]);
    let renamed_changeset = only_changeset(&app).await;
    assert_eq!(renamed_changeset.id, changeset.id, "the same changeset");
    assert_eq!(renamed_changeset.repository, host.after);
    assert_eq!(renamed_changeset.repository_id, before.id);

    // A push after the rename, of the same repository (by its id) under its new name.
    let mut push = load(host.push);
    for (from, to) in host.push_also {
        push = replaced(push, from, to);
    }
    if let Some(names) = host.push_names {
        push = replaced(push, names, host.text_before);
    }
    let id = first
        .pointer(host.id_at)
        .expect("the fixture has the id")
        .clone();
    for at in host.push_id_at {
        *push
            .pointer_mut(at)
            .expect("the push fixture has an id there") = id.clone();
    }
    let push = replaced(push, host.text_before, host.text_after);
    deliver_expecting(
        &app,
        host.kind,
        &receiver,
        host.push_event,
        &push,
        processed,
    )
    .await;
    assert_eq!(
        only_repository(&app).await.id,
        before.id,
        "still one repository"
    );
    let requests = repositories(&app)
        .await
        .list_sync_requests(app.req(ListSyncRequestsRequest::default()))
        .await
        .expect("sync requests are listed")
        .into_inner()
        .sync_requests;
    assert_eq!(requests.len(), 1, "{requests:#?}");
    let request = &requests[0];
    assert_eq!(request.repository_id, before.id);
    assert_eq!(request.repository, host.after);
    assert!(!request.clone_urls.is_empty(), "{request:?}");
    for url in &request.clone_urls {
        assert!(
            url.contains(host.text_after) && !url.contains(host.text_before),
            "clone URL {url} of the renamed repository"
        );
    }

    // The old name still finds it.
    let by_old_name = get_by_name(&app, host.normalized_urn, host.before).await;
    assert_eq!(by_old_name.id, before.id);
    assert_eq!(by_old_name.name, host.after, "it says where it went");
    let synced = repositories(&app)
        .await
        .request_sync(app.req(RequestSyncRequest {
            code_host_urn: host.urn.to_owned(),
            name: host.before.to_owned(),
            ..Default::default()
        }))
        .await
        .expect("a sync is requested by the old name")
        .into_inner()
        .sync_requests;
    assert_eq!(synced.len(), 1, "{synced:#?}");
    assert_eq!(synced[0].repository_id, before.id);
    assert_eq!(synced[0].repository, host.after);
    app.stop().await;
}

async fn a_github_rename_keeps_one_repository_and_one_changeset_and_the_next_push_syncs_it_by_its_new_name(
    engine: Engine,
) {
    a_rename_keeps_one_repository_and_one_changeset_and_the_next_push_syncs_it_by_its_new_name(
        engine,
        github(),
    )
    .await
}

async fn a_gitlab_rename_keeps_one_repository_and_one_changeset_and_the_next_push_syncs_it_by_its_new_name(
    engine: Engine,
) {
    a_rename_keeps_one_repository_and_one_changeset_and_the_next_push_syncs_it_by_its_new_name(
        engine,
        gitlab(),
    )
    .await
}

async fn a_bitbucket_server_rename_keeps_one_repository_and_one_changeset_and_the_next_push_syncs_it_by_its_new_name(
    engine: Engine,
) {
    a_rename_keeps_one_repository_and_one_changeset_and_the_next_push_syncs_it_by_its_new_name(
        engine,
        bitbucket_server(),
    )
    .await
}

async fn a_gitea_rename_keeps_one_repository_and_one_changeset_and_the_next_push_syncs_it_by_its_new_name(
    engine: Engine,
) {
    a_rename_keeps_one_repository_and_one_changeset_and_the_next_push_syncs_it_by_its_new_name(
        engine,
        gitea(),
    )
    .await;
}

async fn an_azure_devops_rename_keeps_one_repository_and_one_changeset_and_the_next_push_syncs_it_by_its_new_name(
    engine: Engine,
) {
    a_rename_keeps_one_repository_and_one_changeset_and_the_next_push_syncs_it_by_its_new_name(
        engine,
        azure_devops(),
    )
    .await;
}

async fn a_bitbucket_cloud_rename_keeps_one_repository_and_one_changeset_and_the_next_push_syncs_it_by_its_new_name(
    engine: Engine,
) {
    a_rename_keeps_one_repository_and_one_changeset_and_the_next_push_syncs_it_by_its_new_name(
        engine,
        bitbucket_cloud(),
    )
    .await
}

/// The id of GitHub's pull request fixtures' repository (Codertocat/Hello-World).
const HELLO_WORLD_ID: i64 = 186_853_002;

async fn github_repository_renamed_and_transferred_events_rename_the_one_repository_and_are_in_the_feed(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let kind = CodeHostKind::Github;
    let receiver = app
        .create_receiver("moves", kind, "https://github.com")
        .await;
    let processed = DeliveryState::Processed;
    let opened = load("github/pull_request.opened.json");
    deliver_expecting(&app, kind, &receiver, "pull_request", &opened, processed).await;
    let original = only_repository(&app).await;

    // Moved to the Octocoders organisation (the fixture's repository, with our repository's id).
    let mut transferred = load("github/repository.transferred.json");
    transferred["repository"]["id"] = json!(HELLO_WORLD_ID);
    deliver_expecting(&app, kind, &receiver, "repository", &transferred, processed).await;
    let moved = only_repository(&app).await;
    assert_eq!(moved.id, original.id);
    assert_eq!(moved.name, "Octocoders/Hello-World");
    assert_eq!(moved.former_names, ["Codertocat/Hello-World"]);

    // Then renamed there.
    let mut renamed = replaced(
        load("github/repository.renamed.json"),
        "Octocoders/Hello-World",
        "Octocoders/Hello-Universe",
    );
    renamed["repository"]["id"] = json!(HELLO_WORLD_ID);
    deliver_expecting(&app, kind, &receiver, "repository", &renamed, processed).await;
    let now = only_repository(&app).await;
    assert_eq!(now.id, original.id);
    assert_eq!(now.name, "Octocoders/Hello-Universe");
    assert_eq!(
        now.clone_urls,
        [
            "https://github.com/Octocoders/Hello-Universe.git",
            "git@github.com:Octocoders/Hello-Universe.git"
        ]
    );
    assert_eq!(
        now.former_names,
        ["Octocoders/Hello-World", "Codertocat/Hello-World"],
        "newest first"
    );
    let changeset = only_changeset(&app).await;
    assert_eq!(changeset.repository, "Octocoders/Hello-Universe");
    assert_eq!(changeset.repository_id, original.id);
    for old in ["Codertocat/Hello-World", "Octocoders/Hello-World"] {
        assert_eq!(
            get_by_name(&app, "https://github.com", old).await.id,
            original.id
        );
    }

    // Each is an entry of the feed, about the repository.
    let mut feed = EventServiceClient::new(app.channel().await)
        .watch(app.req(WatchRequest {
            after_cursor: 0,
            kinds: vec![EventKind::RepositoryRenamed as i32],
            ..Default::default()
        }))
        .await
        .expect("the feed opens")
        .into_inner();
    for _ in 0..2 {
        let event = tokio::time::timeout(std::time::Duration::from_secs(20), feed.message())
            .await
            .expect("a renamed entry within 20 s")
            .expect("the feed answers")
            .expect("the feed goes on");
        assert_eq!(event.kind, EventKind::RepositoryRenamed as i32);
        let Some(Subject::Repository(subject)) = event.subject else {
            panic!("the entry is about a repository: {event:?}");
        };
        assert_eq!(subject.id, original.id);
        assert_eq!(subject.name, "Octocoders/Hello-Universe", "as it is now");
    }

    // A rename of a repository nobody has seen creates nothing, and says why.
    let unknown = load("github/repository.renamed.json");
    let ignored = deliver_expecting(
        &app,
        kind,
        &receiver,
        "repository",
        &unknown,
        DeliveryState::Ignored,
    )
    .await;
    assert!(
        ignored.last_error.contains("186853261") && ignored.last_error.contains("not known"),
        "{}",
        ignored.last_error
    );
    assert_eq!(only_repository(&app).await.id, original.id);
    app.stop().await;
}

/// A GitHub receiver that acts only on registered repositories.
async fn strict_receiver(app: &TestApp) -> (String, String) {
    let options = ReceiverOptions {
        ignore_unmatched: true,
        ..Default::default()
    };
    app.create_receiver_with(
        "strict",
        CodeHostKind::Github,
        "https://github.com",
        options,
    )
    .await
}

async fn register(app: &TestApp, name: &str, external_id: &str) -> Repository {
    repositories(app)
        .await
        .register_repository(app.req(RegisterRepositoryRequest {
            code_host_urn: "https://github.com".to_owned(),
            name: name.to_owned(),
            external_id: external_id.to_owned(),
        }))
        .await
        .expect("the repository is registered")
        .into_inner()
}

async fn a_repository_registered_by_id_is_matched_under_a_new_name_with_ignore_unmatched(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let receiver = strict_receiver(&app).await;
    let registered = register(&app, "Codertocat/Hello-World", &HELLO_WORLD_ID.to_string()).await;

    let renamed = replaced(
        load("github/pull_request.opened.json"),
        "Codertocat/Hello-World",
        "Codertocat/Hello-Universe",
    );
    let kind = CodeHostKind::Github;
    deliver_expecting(
        &app,
        kind,
        &receiver,
        "pull_request",
        &renamed,
        DeliveryState::Processed,
    )
    .await;
    let repository = only_repository(&app).await;
    assert_eq!(repository.id, registered.id);
    assert_eq!(repository.name, "Codertocat/Hello-Universe");
    assert!(repository.registered);
    assert_eq!(only_changeset(&app).await.repository_id, registered.id);

    // Another id under another name is still not registered.
    let mut other = replaced(
        load("github/pull_request.opened.json"),
        "Codertocat/Hello-World",
        "Codertocat/Other",
    );
    other["repository"]["id"] = json!(42);
    let ignored = deliver_expecting(
        &app,
        kind,
        &receiver,
        "pull_request",
        &other,
        DeliveryState::Ignored,
    )
    .await;
    assert!(
        ignored.last_error.contains("not registered"),
        "{}",
        ignored.last_error
    );
    assert_eq!(only_repository(&app).await.id, registered.id);

    // Registering the same id under another name is the same repository, renamed.
    let again = register(&app, "Codertocat/Hello-Again", &HELLO_WORLD_ID.to_string()).await;
    assert_eq!(again.id, registered.id);
    assert_eq!(again.name, "Codertocat/Hello-Again");
    // A name held by a repository with another id is refused, and changes nothing.
    let refused = repositories(&app)
        .await
        .register_repository(app.req(RegisterRepositoryRequest {
            code_host_urn: "https://github.com".to_owned(),
            name: "Codertocat/Hello-Again".to_owned(),
            external_id: "7".to_owned(),
        }))
        .await
        .expect_err("another id");
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    assert!(
        refused.message().contains("186853002"),
        "{}",
        refused.message()
    );
    assert_eq!(only_repository(&app).await.name, "Codertocat/Hello-Again");
    app.stop().await;
}

async fn an_event_naming_its_repository_only_by_id_is_applied_to_the_one_with_that_id_or_ignored_saying_so(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let kind = CodeHostKind::Github;
    let receiver = app
        .create_receiver("by-id", kind, "https://github.com")
        .await;
    let registered = register(&app, "Codertocat/Hello-World", &HELLO_WORLD_ID.to_string()).await;

    let mut by_id = load("github/pull_request.opened.json");
    by_id["repository"]
        .as_object_mut()
        .expect("an object")
        .remove("full_name");
    deliver_expecting(
        &app,
        kind,
        &receiver,
        "pull_request",
        &by_id,
        DeliveryState::Processed,
    )
    .await;
    let changeset = only_changeset(&app).await;
    assert_eq!(changeset.repository_id, registered.id);
    assert_eq!(
        changeset.repository, "Codertocat/Hello-World",
        "the name stays"
    );

    by_id["repository"]["id"] = json!(424_242);
    let ignored = deliver_expecting(
        &app,
        kind,
        &receiver,
        "pull_request",
        &by_id,
        DeliveryState::Ignored,
    )
    .await;
    assert!(
        ignored.last_error.contains("only by its id 424242"),
        "{}",
        ignored.last_error
    );
    assert_eq!(
        only_repository(&app).await.id,
        registered.id,
        "nothing created"
    );
    app.stop().await;
}

async fn repositories_of_an_older_hookgate_are_carried_over_and_two_rows_with_one_host_id_keep_their_history(
    engine: Engine,
) {
    use migration::MigratorTrait;
    use sea_orm::ConnectionTrait;
    let db = TestDatabase::new(engine).await;
    // The schema of the version before repository identity, with what it could leave: a renamed
    // repository that became two rows with one host id, and a repository with no id.
    let conn = hookgate::db::connect(&db.url)
        .await
        .expect("the database opens");
    let identity = migration::Migrator::migrations()
        .iter()
        .position(|m| m.name() == "m20261202_000016_repository_identity")
        .expect("the repository identity migration is registered");
    migration::Migrator::up(
        conn.pool(),
        Some(u32::try_from(identity).expect("few migrations")),
    )
    .await
    .expect("the older schema is made");
    let (old, new, no_id) = (
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
    );
    for (id, name, external_id, updated) in [
        (old, "Codertocat/Hello-World", "186853002", 1),
        (new, "Codertocat/Hello-Universe", "186853002", 2),
        (no_id, "octo/no-id", "", 1),
    ] {
        conn.execute_unprepared(&format!(
            "INSERT INTO repositories (id, code_host_urn, name, external_id, url, clone_urls, \
             registered, create_time, update_time) \
             VALUES ('{id}', 'https://github.com/', '{name}', '{external_id}', '', '[]', FALSE, 1, {updated})"
        ))
        .await
        .expect("an old row is stored");
    }
    conn.execute_unprepared(&format!(
        "INSERT INTO changesets (id, repository_id, number, title, url, author, state, review_state, \
         check_state, head_ref, base_ref, head_sha, labels, host_update_time, field_times, reviews, \
         checks, create_time, update_time) \
         VALUES ('{}', '{old}', 1, 'old history', '', '', 'OPEN', 'PENDING', 'UNKNOWN', '', '', '', \
         '[]', NULL, '{{}}', '{{}}', '{{}}', 1, 1)",
        uuid::Uuid::new_v4()
    ))
    .await
    .expect("an old changeset is stored");
    conn.close().await.ok();

    let app = TestApp::start(db, |_| {}).await;
    let listed = repositories(&app)
        .await
        .list_repositories(app.req(ListRepositoriesRequest::default()))
        .await
        .expect("repositories are listed")
        .into_inner()
        .repositories;
    let row = |id: uuid::Uuid| {
        listed
            .iter()
            .find(|r| r.id == id.to_string())
            .unwrap_or_else(|| panic!("repository {id} is kept: {listed:#?}"))
    };
    assert_eq!(listed.len(), 3, "{listed:#?}");
    assert_eq!(
        (row(new).name.as_str(), row(new).external_id.as_str()),
        ("Codertocat/Hello-Universe", "186853002"),
        "the row updated last keeps the id"
    );
    assert_eq!(
        (row(old).name.as_str(), row(old).external_id.as_str()),
        ("Codertocat/Hello-World", ""),
        "the other keeps its name, known by name only"
    );
    assert_eq!(row(no_id).name, "octo/no-id");

    // The id is the newer row's now, and the older row's history is still there.
    let receiver = app
        .create_receiver("after", CodeHostKind::Github, "https://github.com")
        .await;
    let renamed = replaced(
        load("github/pull_request.opened.json"),
        "Codertocat/Hello-World",
        "Codertocat/Hello-Universe",
    );
    let kind = CodeHostKind::Github;
    deliver_expecting(
        &app,
        kind,
        &receiver,
        "pull_request",
        &renamed,
        DeliveryState::Processed,
    )
    .await;
    let changesets = ChangesetServiceClient::new(app.channel().await)
        .list_changesets(app.req(ListChangesetsRequest::default()))
        .await
        .expect("changesets are listed")
        .into_inner()
        .changesets;
    let of = |id: uuid::Uuid| {
        changesets
            .iter()
            .filter(|c| c.repository_id == id.to_string())
            .count()
    };
    assert_eq!((of(old), of(new)), (1, 1), "{changesets:#?}");
    app.stop().await;
}

on_both_engines!(
    a_github_rename_keeps_one_repository_and_one_changeset_and_the_next_push_syncs_it_by_its_new_name,
    a_gitlab_rename_keeps_one_repository_and_one_changeset_and_the_next_push_syncs_it_by_its_new_name,
    a_bitbucket_server_rename_keeps_one_repository_and_one_changeset_and_the_next_push_syncs_it_by_its_new_name,
    a_bitbucket_cloud_rename_keeps_one_repository_and_one_changeset_and_the_next_push_syncs_it_by_its_new_name,
    a_gitea_rename_keeps_one_repository_and_one_changeset_and_the_next_push_syncs_it_by_its_new_name,
    an_azure_devops_rename_keeps_one_repository_and_one_changeset_and_the_next_push_syncs_it_by_its_new_name,
    github_repository_renamed_and_transferred_events_rename_the_one_repository_and_are_in_the_feed,
    a_repository_registered_by_id_is_matched_under_a_new_name_with_ignore_unmatched,
    an_event_naming_its_repository_only_by_id_is_applied_to_the_one_with_that_id_or_ignored_saying_so,
    repositories_of_an_older_hookgate_are_carried_over_and_two_rows_with_one_host_id_keep_their_history,
);
