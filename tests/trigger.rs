//! The generic trigger receiver over real HTTP, on SQLite and PostgreSQL: its methods and where
//! its secret goes, what a rejected call leaves in the log (never the secret), and what each kind
//! of call syncs (every repository, a named one, or the repository of a GitHub or GitLab push).

mod common;

use common::{Engine, TestApp, fixture, json_body};
use hookgate::admin::proto::{
    CodeHostKind, CreateReceiverRequest, Delivery, DeliveryState, GetDeliveryRequest,
    ListDeliveriesRequest, ListRepositoriesRequest, ListSyncRequestsRequest, ReceiverOptions,
    RefUpdate, RegisterRepositoryRequest, Repository, SyncRequest, SyncRequestState,
    repository_service_client::RepositoryServiceClient,
};
use reqwest::Method;
use serde_json::{Value, json};

/// The code host the trigger receivers of these tests stand for, as given and as stored.
const URN: &str = "https://git.example.com";
const NORMALISED_URN: &str = "https://git.example.com/";

/// The refs of the GitHub and GitLab push fixtures: (ref, before, after).
const GITHUB_PUSH: (&str, &str, &str) = (
    "refs/heads/master",
    "a10867b14bb761a232cd80139fbd4c0d33264240",
    "199eddf46df50de8d02e99bf1c5fdb4101338224",
);
const GITLAB_PUSH: (&str, &str, &str) = (
    "refs/heads/master",
    "95790bf891e76fee5e1747ab589903a6a1f80f22",
    "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
);

/// A generic trigger receiver on [`URN`]; returns (id, secret).
async fn trigger_receiver(app: &TestApp) -> (String, String) {
    app.create_receiver("trigger", CodeHostKind::Generic, URN)
        .await
}

async fn repositories(app: &TestApp) -> RepositoryServiceClient<tonic::transport::Channel> {
    RepositoryServiceClient::new(app.channel().await)
}

/// Registers repository `name` of [`URN`].
async fn register(app: &TestApp, name: &str) -> Repository {
    repositories(app)
        .await
        .register_repository(app.req(RegisterRepositoryRequest {
            code_host_urn: URN.into(),
            name: name.into(),
            external_id: String::new(),
        }))
        .await
        .expect("the repository is registered")
        .into_inner()
}

/// The repository `name` of [`URN`], as listed.
async fn repository(app: &TestApp, name: &str) -> Repository {
    let listed = repositories(app)
        .await
        .list_repositories(app.req(ListRepositoriesRequest {
            code_host_urn: URN.into(),
            ..Default::default()
        }))
        .await
        .expect("repositories are listed")
        .into_inner();
    listed
        .repositories
        .into_iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("repository {name} is not known"))
}

/// Every sync request of [`URN`] (newest first).
async fn sync_requests(app: &TestApp) -> Vec<SyncRequest> {
    let listed = repositories(app)
        .await
        .list_sync_requests(app.req(ListSyncRequestsRequest {
            code_host_urn: URN.into(),
            page_size: 500,
            ..Default::default()
        }))
        .await
        .expect("sync requests are listed")
        .into_inner();
    assert_eq!(listed.total_size as usize, listed.sync_requests.len());
    listed.sync_requests
}

/// The pending sync requests of [`URN`], sorted by repository name.
async fn pending(app: &TestApp) -> Vec<SyncRequest> {
    let mut pending: Vec<_> = sync_requests(app)
        .await
        .into_iter()
        .filter(|r| r.state == SyncRequestState::Pending as i32)
        .collect();
    pending.sort_by(|a, b| a.repository.cmp(&b.repository));
    pending
}

fn names(requests: &[SyncRequest]) -> Vec<&str> {
    requests.iter().map(|r| r.repository.as_str()).collect()
}

/// Calls `path` (after `/.api/webhooks/`) with `method`, `headers` and `body` over real HTTP.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .request(
            method,
            format!("http://{}/.api/webhooks/{path}", app.http_addr),
        )
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("the ingress answers")
}

/// Asserts a 202 `{"delivery_id", "sync_requests": n}` answer; returns the delivery id.
async fn accepted(response: reqwest::Response, n: u64) -> String {
    let status = response.status();
    let answer = json_body(response).await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["delivery_id"]
        .as_str()
        .unwrap_or_else(|| panic!("a delivery id: {answer}"))
        .to_owned();
    uuid::Uuid::parse_str(&id).expect("the delivery id is a UUID");
    assert_eq!(answer, json!({ "delivery_id": id, "sync_requests": n }));
    id
}

/// Asserts a `status` answer `{"error": message}`.
async fn refused(response: reqwest::Response, status: u16, message: &str) {
    let got = response.status();
    let answer = json_body(response).await;
    assert_eq!(got, status, "{answer}");
    assert_eq!(answer, json!({ "error": message }));
}

async fn delivery(app: &TestApp, id: &str) -> Delivery {
    app.deliveries()
        .await
        .get_delivery(app.req(GetDeliveryRequest { id: id.to_owned() }))
        .await
        .expect("the delivery is logged")
        .into_inner()
}

/// Every delivery the log holds for `receiver` (the first page).
async fn logged(app: &TestApp, receiver: &str) -> hookgate::admin::proto::ListDeliveriesResponse {
    app.deliveries()
        .await
        .list_deliveries(app.req(ListDeliveriesRequest {
            receiver_id: receiver.to_owned(),
            ..Default::default()
        }))
        .await
        .expect("the delivery log is listed")
        .into_inner()
}

/// The receiver's deliveries in `state`, newest first, with their bodies.
async fn deliveries_in(app: &TestApp, receiver: &str, state: DeliveryState) -> Vec<Delivery> {
    let listed = app
        .deliveries()
        .await
        .list_deliveries(app.req(ListDeliveriesRequest {
            receiver_id: receiver.to_owned(),
            states: vec![state as i32],
            ..Default::default()
        }))
        .await
        .expect("deliveries are listed")
        .into_inner();
    let mut full = Vec::new();
    for d in listed.deliveries {
        full.push(delivery(app, &d.id).await);
    }
    full
}

fn refs(expected: (&str, &str, &str)) -> Vec<RefUpdate> {
    vec![RefUpdate {
        name: expected.0.into(),
        old_sha: expected.1.into(),
        new_sha: expected.2.into(),
    }]
}

/// The GitHub push fixture with its repository moved to [`URN`]'s host.
fn github_push_on_git_example_com() -> Vec<u8> {
    String::from_utf8(fixture("github/push.branch-updated.json"))
        .expect("fixtures are UTF-8")
        .replace("github.com", "git.example.com")
        .into_bytes()
}

/// The GitLab push fixture with its project moved from http://example.com to [`URN`]'s host.
fn gitlab_push_on_git_example_com() -> Vec<u8> {
    String::from_utf8(fixture("gitlab/push.json"))
        .expect("fixtures are UTF-8")
        .replace("http://example.com/", "https://git.example.com/")
        .replace("git@example.com:", "git@git.example.com:")
        .into_bytes()
}

on_both_engines!(
    get_post_and_put_with_the_secret_in_the_path_or_the_header_are_accepted,
    delete_head_and_patch_answer_405_with_the_methods_allowed,
    a_wrong_or_missing_secret_is_401_changes_nothing_and_is_logged_without_the_secret,
    an_accepted_call_is_logged_with_the_path_secret_redacted,
    an_accepted_call_is_logged_with_the_answer_it_was_given,
    an_empty_body_syncs_every_repository_of_the_code_host,
    the_repository_parameter_syncs_only_that_repository,
    an_unknown_repository_name_is_answered_404_and_creates_nothing,
    a_github_push_payload_syncs_only_its_repository_with_its_refs,
    a_gitlab_push_payload_syncs_only_its_repository_with_its_refs,
    a_push_payload_of_another_code_host_does_not_rewrite_the_repository_urls,
    a_push_payload_of_only_branches_outside_the_branch_filter_syncs_nothing,
    a_body_that_is_not_a_push_payload_is_400_and_syncs_nothing,
    a_second_call_while_a_request_is_pending_joins_it,
    a_repeated_idempotency_key_is_200_with_the_original_delivery_id,
    a_secret_header_sent_twice_is_401_whichever_comes_first,
    a_repeated_idempotency_key_does_not_count_against_the_rate_limit,
);

async fn get_post_and_put_with_the_secret_in_the_path_or_the_header_are_accepted(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = trigger_receiver(&app).await;
    register(&app, "octo/one").await;
    register(&app, "octo/two").await;
    let mut seen = Vec::new();
    for method in [Method::GET, Method::POST, Method::PUT] {
        let in_path = call(
            &app,
            method.clone(),
            &format!("{id}/{secret}"),
            &[],
            Vec::new(),
        )
        .await;
        let delivery_id = accepted(in_path, 2).await;
        let d = delivery(&app, &delivery_id).await;
        assert_eq!(d.method, method.as_str());
        assert_eq!(d.state, DeliveryState::Processed as i32, "{d:?}");
        assert_eq!(d.event, "trigger");
        assert_eq!(d.response_status, 202);
        seen.push(delivery_id);

        let in_header = call(
            &app,
            method.clone(),
            &id,
            &[("X-Hook-Secret", secret.as_str())],
            Vec::new(),
        )
        .await;
        let delivery_id = accepted(in_header, 2).await;
        let d = delivery(&app, &delivery_id).await;
        assert_eq!(d.method, method.as_str());
        assert_eq!(d.path, format!("/.api/webhooks/{id}"));
        assert_eq!(d.request_headers["x-hook-secret"], "[REDACTED]");
        seen.push(delivery_id);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 6, "every call is a delivery of its own");
    // The calls after the first joined the two requests it made.
    assert_eq!(names(&pending(&app).await), ["octo/one", "octo/two"]);
    app.stop().await;
}

async fn delete_head_and_patch_answer_405_with_the_methods_allowed(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = trigger_receiver(&app).await;
    register(&app, "octo/one").await;
    for method in [Method::DELETE, Method::HEAD, Method::PATCH] {
        for (path, headers) in [
            (format!("{id}/{secret}"), vec![]),
            (id.clone(), vec![("x-hook-secret", secret.as_str())]),
        ] {
            let r = call(&app, method.clone(), &path, &headers, Vec::new()).await;
            assert_eq!(r.status(), 405, "{method} /{path}");
            assert_eq!(r.headers()["allow"], "GET, POST, PUT", "{method} /{path}");
            if method != Method::HEAD {
                assert_eq!(
                    json_body(r).await,
                    json!({ "error": "generic trigger receivers take GET, POST or PUT" })
                );
            }
        }
    }
    assert_eq!(sync_requests(&app).await, []);
    let logged = app
        .deliveries()
        .await
        .list_deliveries(app.req(ListDeliveriesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(logged.total_size, 0, "{logged:?}");
    app.stop().await;
}

async fn a_wrong_or_missing_secret_is_401_changes_nothing_and_is_logged_without_the_secret(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = trigger_receiver(&app).await;
    register(&app, "octo/one").await;
    let wrong = "wrong-secret-0123456789abcdefghijklmnopq";
    assert_ne!(wrong, secret);

    let r = call(
        &app,
        Method::POST,
        &format!("{id}/{wrong}"),
        &[],
        Vec::new(),
    )
    .await;
    refused(r, 401, "secret does not match").await;
    let r = call(
        &app,
        Method::POST,
        &id,
        &[("x-hook-secret", wrong)],
        Vec::new(),
    )
    .await;
    refused(r, 401, "secret does not match").await;
    let r = call(&app, Method::POST, &id, &[], Vec::new()).await;
    refused(
        r,
        401,
        "missing secret: put it in the URL (/.api/webhooks/<id>/<secret>) or in the X-Hook-Secret header",
    )
    .await;
    // A body does not help a caller without the secret.
    let r = call(
        &app,
        Method::PUT,
        &format!("{id}/{wrong}"),
        &[("content-type", "application/json")],
        github_push_on_git_example_com(),
    )
    .await;
    assert_eq!(r.status(), 401);

    assert_eq!(sync_requests(&app).await, [], "nothing was synced");
    let rejected = deliveries_in(&app, &id, DeliveryState::Rejected).await;
    assert_eq!(rejected.len(), 4, "{rejected:?}");
    let accepted = logged(&app, &id).await;
    assert_eq!(
        accepted.total_size, 4,
        "only the rejected attempts are logged"
    );

    // Newest first: the PUT with a body, the missing secret, the header, the path.
    let paths: Vec<(&str, &str)> = rejected
        .iter()
        .map(|d| (d.method.as_str(), d.path.as_str()))
        .collect();
    let redacted = format!("/.api/webhooks/{id}/[REDACTED]");
    let plain = format!("/.api/webhooks/{id}");
    assert_eq!(
        paths,
        [
            ("PUT", redacted.as_str()),
            ("POST", plain.as_str()),
            ("POST", plain.as_str()),
            ("POST", redacted.as_str()),
        ]
    );
    assert_eq!(rejected[2].request_headers["x-hook-secret"], "[REDACTED]");
    assert!(!rejected[1].request_headers.contains_key("x-hook-secret"));
    for d in &rejected {
        assert_eq!(d.response_status, 401, "{d:?}");
        assert_eq!(d.delivery_key, "", "{d:?}");
        assert!(d.request_body.is_empty(), "a rejected call keeps no body");
        for (name, value) in &d.request_headers {
            assert!(!value.contains(wrong), "{name}: {value}");
        }
        assert!(!d.path.contains(wrong), "{}", d.path);
        let answer = String::from_utf8_lossy(&d.response_body);
        assert!(!answer.contains(wrong), "{answer}");
        assert!(!d.last_error.contains(wrong), "{}", d.last_error);
    }
    assert_eq!(
        rejected[1].last_error,
        "missing secret: put it in the URL (/.api/webhooks/<id>/<secret>) or in the X-Hook-Secret header"
    );
    assert_eq!(rejected[3].last_error, "secret does not match");
    app.stop().await;
}

async fn an_accepted_call_is_logged_with_the_path_secret_redacted(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = trigger_receiver(&app).await;
    register(&app, "octo/one").await;
    let r = call(
        &app,
        Method::GET,
        &format!("{id}/{secret}"),
        &[],
        Vec::new(),
    )
    .await;
    let plain = delivery(&app, &accepted(r, 1).await).await;
    assert_eq!(plain.path, format!("/.api/webhooks/{id}/[REDACTED]"));
    let r = call(
        &app,
        Method::POST,
        &format!("{id}/{secret}?repository=octo/one"),
        &[],
        Vec::new(),
    )
    .await;
    let with_query = delivery(&app, &accepted(r, 1).await).await;
    assert_eq!(
        with_query.path,
        format!("/.api/webhooks/{id}/[REDACTED]?repository=octo/one")
    );
    for d in [plain, with_query] {
        assert_eq!(d.state, DeliveryState::Processed as i32);
        assert!(!d.path.contains(&secret), "{}", d.path);
        for (name, value) in &d.request_headers {
            assert!(!value.contains(&secret), "{name}: {value}");
        }
        assert!(!String::from_utf8_lossy(&d.response_body).contains(&secret));
    }
    app.stop().await;
}

async fn an_accepted_call_is_logged_with_the_answer_it_was_given(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = trigger_receiver(&app).await;
    register(&app, "octo/one").await;
    let r = call(
        &app,
        Method::POST,
        &format!("{id}/{secret}"),
        &[],
        Vec::new(),
    )
    .await;
    let delivery_id = accepted(r, 1).await;
    let d = delivery(&app, &delivery_id).await;
    assert_eq!(d.response_status, 202);
    let logged: Value = serde_json::from_slice(&d.response_body).unwrap_or_else(|e| {
        panic!(
            "the logged answer is the JSON the caller got ({e}): {:?}",
            String::from_utf8_lossy(&d.response_body)
        )
    });
    assert_eq!(
        logged,
        json!({ "delivery_id": delivery_id, "sync_requests": 1 })
    );
    app.stop().await;
}

async fn an_empty_body_syncs_every_repository_of_the_code_host(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = trigger_receiver(&app).await;
    let registered = [
        register(&app, "octo/alpha").await,
        register(&app, "octo/beta").await,
        register(&app, "octo/gamma").await,
    ];
    // A repository of another code host is not this receiver's.
    repositories(&app)
        .await
        .register_repository(app.req(RegisterRepositoryRequest {
            code_host_urn: "https://other.example.com".into(),
            name: "octo/alpha".into(),
            external_id: String::new(),
        }))
        .await
        .unwrap();

    let r = call(
        &app,
        Method::POST,
        &format!("{id}/{secret}"),
        &[],
        Vec::new(),
    )
    .await;
    accepted(r, 3).await;
    let pending = pending(&app).await;
    assert_eq!(names(&pending), ["octo/alpha", "octo/beta", "octo/gamma"]);
    for (request, repo) in pending.iter().zip(&registered) {
        assert_eq!(request.repository_id, repo.id);
        assert_eq!(request.code_host_urn, NORMALISED_URN);
        assert_eq!(request.reason, "trigger");
        assert_eq!(request.push_count, 0);
        assert_eq!(request.refs, []);
    }
    assert_eq!(sync_requests(&app).await.len(), 3, "and nothing else");
    let other = repositories(&app)
        .await
        .list_sync_requests(app.req(ListSyncRequestsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        other.total_size, 3,
        "the other host's repository is not synced"
    );

    // Whitespace is an empty body too.
    let r = call(
        &app,
        Method::PUT,
        &id,
        &[("x-hook-secret", secret.as_str())],
        b" \n".to_vec(),
    )
    .await;
    accepted(r, 3).await;
    app.stop().await;
}

async fn the_repository_parameter_syncs_only_that_repository(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = trigger_receiver(&app).await;
    register(&app, "octo/alpha").await;
    let beta = register(&app, "octo/beta").await;
    let r = call(
        &app,
        Method::GET,
        &format!("{id}/{secret}?repository=octo/beta"),
        &[],
        Vec::new(),
    )
    .await;
    accepted(r, 1).await;
    let pending = pending(&app).await;
    assert_eq!(names(&pending), ["octo/beta"]);
    assert_eq!(pending[0].repository_id, beta.id);
    assert_eq!(pending[0].reason, "trigger");
    assert_eq!(pending[0].push_count, 0);
    assert_eq!(pending[0].refs, []);
    app.stop().await;
}

async fn an_unknown_repository_name_is_answered_404_and_creates_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = trigger_receiver(&app).await;
    register(&app, "octo/known").await;
    let r = call(
        &app,
        Method::POST,
        &format!("{id}/{secret}?repository=octo/knwon"),
        &[],
        Vec::new(),
    )
    .await;
    refused(
        r,
        404,
        &format!(
            "no repository \"octo/knwon\" is known for {URN}/: check the name, or register it first (RepositoryService/RegisterRepository, `hookgate repository register`)"
        ),
    )
    .await;
    assert!(pending(&app).await.is_empty(), "no sync request is made");
    let listed = repositories(&app)
        .await
        .list_repositories(app.req(ListRepositoriesRequest {
            code_host_urn: URN.into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size, 1, "octo/knwon was not created");
    let stored = logged(&app, &id).await;
    assert!(
        stored.deliveries.is_empty(),
        "nothing is stored: {stored:?}"
    );

    // The name it knows is synced as before.
    let r = call(
        &app,
        Method::POST,
        &format!("{id}/{secret}?repository=octo/known"),
        &[],
        Vec::new(),
    )
    .await;
    accepted(r, 1).await;
    assert_eq!(names(&pending(&app).await), ["octo/known"]);
    app.stop().await;
}

async fn a_github_push_payload_syncs_only_its_repository_with_its_refs(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = trigger_receiver(&app).await;
    register(&app, "octo/alpha").await;
    let hello = register(&app, "Codertocat/Hello-World").await;
    let r = call(
        &app,
        Method::POST,
        &format!("{id}/{secret}"),
        &[("content-type", "application/json")],
        github_push_on_git_example_com(),
    )
    .await;
    let delivery_id = accepted(r, 1).await;
    assert_eq!(delivery(&app, &delivery_id).await.event, "trigger/push");
    let pending = pending(&app).await;
    assert_eq!(names(&pending), ["Codertocat/Hello-World"]);
    let request = &pending[0];
    assert_eq!(request.repository_id, hello.id);
    assert_eq!(request.reason, "push");
    assert_eq!(request.push_count, 1);
    assert_eq!(request.refs, refs(GITHUB_PUSH));
    assert_eq!(
        request.clone_urls,
        [
            "https://git.example.com/Codertocat/Hello-World.git",
            "git@git.example.com:Codertocat/Hello-World.git",
        ]
    );
    let repo = repository(&app, "Codertocat/Hello-World").await;
    assert_eq!(repo.url, "https://git.example.com/Codertocat/Hello-World");
    assert_eq!(repo.external_id, "135493233");
    assert!(repo.registered);
    app.stop().await;
}

async fn a_gitlab_push_payload_syncs_only_its_repository_with_its_refs(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = trigger_receiver(&app).await;
    register(&app, "octo/alpha").await;
    let diaspora = register(&app, "mike/diaspora").await;
    let r = call(
        &app,
        Method::PUT,
        &id,
        &[
            ("x-hook-secret", secret.as_str()),
            ("content-type", "application/json"),
        ],
        gitlab_push_on_git_example_com(),
    )
    .await;
    let delivery_id = accepted(r, 1).await;
    assert_eq!(delivery(&app, &delivery_id).await.event, "trigger/push");
    let pending = pending(&app).await;
    assert_eq!(names(&pending), ["mike/diaspora"]);
    let request = &pending[0];
    assert_eq!(request.repository_id, diaspora.id);
    assert_eq!(request.reason, "push");
    assert_eq!(request.push_count, 1);
    assert_eq!(request.refs, refs(GITLAB_PUSH));
    assert_eq!(
        request.clone_urls,
        [
            "https://git.example.com/mike/diaspora.git",
            "git@git.example.com:mike/diaspora.git",
        ]
    );
    app.stop().await;
}

async fn a_push_payload_of_another_code_host_does_not_rewrite_the_repository_urls(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = trigger_receiver(&app).await;
    register(&app, "Codertocat/Hello-World").await;
    // The published fixture: a repository on github.com, not on git.example.com.
    let r = call(
        &app,
        Method::POST,
        &format!("{id}/{secret}"),
        &[("content-type", "application/json")],
        fixture("github/push.branch-updated.json"),
    )
    .await;
    let status = r.status();
    let answer = json_body(r).await;
    assert!(status == 202 || status == 400, "{status} {answer}");
    let repo = repository(&app, "Codertocat/Hello-World").await;
    assert_eq!(repo.url, "", "{repo:?}");
    assert_eq!(repo.external_id, "", "{repo:?}");
    assert_eq!(repo.clone_urls, Vec::<String>::new(), "{repo:?}");
    assert_eq!(
        pending(&app).await,
        [],
        "a push of github.com's Codertocat/Hello-World is not one of git.example.com's"
    );
    app.stop().await;
}

async fn a_push_payload_of_only_branches_outside_the_branch_filter_syncs_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let created = app
        .receivers()
        .await
        .create_receiver(app.req(CreateReceiverRequest {
            name: "filtered".into(),
            code_host_kind: CodeHostKind::Generic as i32,
            code_host_urn: URN.into(),
            options: Some(ReceiverOptions {
                push_branch_filter: vec!["release/*".into()],
                ..Default::default()
            }),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let (id, secret) = (created.receiver.unwrap().id, created.secret);
    register(&app, "Codertocat/Hello-World").await;
    // The push is of `master`, which the filter leaves out: as a code host's push event would be.
    let r = call(
        &app,
        Method::POST,
        &format!("{id}/{secret}"),
        &[("content-type", "application/json")],
        github_push_on_git_example_com(),
    )
    .await;
    let delivery_id = accepted(r, 0).await;
    assert_eq!(delivery(&app, &delivery_id).await.event, "trigger/push");
    assert_eq!(sync_requests(&app).await, [], "nothing was synced");
    app.stop().await;
}

async fn a_body_that_is_not_a_push_payload_is_400_and_syncs_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = trigger_receiver(&app).await;
    register(&app, "Codertocat/Hello-World").await;
    let not_push = "the body must be empty, or a GitHub or GitLab push payload";
    for body in [
        b"sync please".to_vec(),
        b"{\"ref\": ".to_vec(),
        b"{}".to_vec(),
        b"[]".to_vec(),
        br#"{"hello": "world"}"#.to_vec(),
        fixture("github/pull_request.opened.json"),
        fixture("gitlab/merge_request.open.json"),
    ] {
        let r = call(
            &app,
            Method::POST,
            &format!("{id}/{secret}"),
            &[("content-type", "application/json")],
            body,
        )
        .await;
        refused(r, 400, not_push).await;
    }
    assert_eq!(sync_requests(&app).await, []);
    app.stop().await;
}

async fn a_second_call_while_a_request_is_pending_joins_it(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = trigger_receiver(&app).await;
    register(&app, "octo/alpha").await;
    register(&app, "Codertocat/Hello-World").await;
    let url = format!("{id}/{secret}");
    accepted(call(&app, Method::POST, &url, &[], Vec::new()).await, 2).await;
    let first = pending(&app).await;
    assert_eq!(names(&first), ["Codertocat/Hello-World", "octo/alpha"]);

    accepted(call(&app, Method::GET, &url, &[], Vec::new()).await, 2).await;
    let second = pending(&app).await;
    assert_eq!(second, first, "the second call joined the pending requests");

    // A push joins too: it counts as a push and brings its refs.
    accepted(
        call(
            &app,
            Method::POST,
            &url,
            &[],
            github_push_on_git_example_com(),
        )
        .await,
        1,
    )
    .await;
    let third = pending(&app).await;
    assert_eq!(
        third.iter().map(|r| &r.id).collect::<Vec<_>>(),
        first.iter().map(|r| &r.id).collect::<Vec<_>>()
    );
    assert_eq!(third[0].push_count, 1);
    assert_eq!(third[0].refs, refs(GITHUB_PUSH));
    assert_eq!(
        third[0].reason, "trigger",
        "it keeps the reason it was made for"
    );
    assert_eq!(third[1], first[1]);
    assert_eq!(sync_requests(&app).await.len(), 2, "no request was added");
    app.stop().await;
}

async fn a_repeated_idempotency_key_is_200_with_the_original_delivery_id(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = trigger_receiver(&app).await;
    register(&app, "octo/alpha").await;
    let key = [("idempotency-key", "nightly-2026-01-01")];
    let url = format!("{id}/{secret}");
    let original = accepted(call(&app, Method::POST, &url, &key, Vec::new()).await, 1).await;
    assert_eq!(
        delivery(&app, &original).await.delivery_key,
        "nightly-2026-01-01"
    );
    let before = sync_requests(&app).await;

    let again = call(&app, Method::PUT, &url, &key, Vec::new()).await;
    assert_eq!(again.status(), 200);
    assert_eq!(
        json_body(again).await,
        json!({ "delivery_id": original, "message": "duplicate delivery: already received" })
    );
    // The key does not stand in for the secret.
    let forged = call(
        &app,
        Method::POST,
        &format!("{id}/not-the-secret"),
        &key,
        Vec::new(),
    )
    .await;
    refused(forged, 401, "secret does not match").await;

    assert_eq!(sync_requests(&app).await, before);
    let processed = deliveries_in(&app, &id, DeliveryState::Processed).await;
    assert_eq!(
        processed.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        [original.as_str()]
    );
    // Another key is another delivery.
    let other = call(
        &app,
        Method::POST,
        &url,
        &[("idempotency-key", "nightly-2026-01-02")],
        Vec::new(),
    )
    .await;
    assert_ne!(accepted(other, 1).await, original);
    app.stop().await;
}

async fn a_secret_header_sent_twice_is_401_whichever_comes_first(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = trigger_receiver(&app).await;
    register(&app, "octo/one").await;
    let wrong = "wrong-secret-0123456789abcdefghijklmnopq";
    for pair in [[secret.as_str(), wrong], [wrong, secret.as_str()]] {
        let r = call(
            &app,
            Method::POST,
            &id,
            &[("x-hook-secret", pair[0]), ("x-hook-secret", pair[1])],
            Vec::new(),
        )
        .await;
        refused(r, 401, "malformed X-Hook-Secret: expected one token").await;
    }
    // The same secret twice is no better: a credential header is one value.
    let r = call(
        &app,
        Method::POST,
        &id,
        &[("x-hook-secret", &secret), ("x-hook-secret", &secret)],
        Vec::new(),
    )
    .await;
    refused(r, 401, "malformed X-Hook-Secret: expected one token").await;

    assert_eq!(sync_requests(&app).await, [], "nothing was synced");
    let rejected = deliveries_in(&app, &id, DeliveryState::Rejected).await;
    assert_eq!(rejected.len(), 3, "{rejected:?}");
    assert!(
        deliveries_in(&app, &id, DeliveryState::Processed)
            .await
            .is_empty()
    );
    // One header still works.
    let r = call(
        &app,
        Method::POST,
        &id,
        &[("x-hook-secret", &secret)],
        Vec::new(),
    )
    .await;
    accepted(r, 1).await;
    app.stop().await;
}

async fn a_repeated_idempotency_key_does_not_count_against_the_rate_limit(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let created = app
        .receivers()
        .await
        .create_receiver(app.req(CreateReceiverRequest {
            name: "limited".into(),
            code_host_kind: CodeHostKind::Generic as i32,
            code_host_urn: URN.into(),
            options: Some(ReceiverOptions {
                rate_limit_per_minute: 2,
                ..Default::default()
            }),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let (id, secret) = (created.receiver.unwrap().id, created.secret);
    register(&app, "octo/alpha").await;
    let url = format!("{id}/{secret}");
    let key = [("idempotency-key", "nightly-2026-01-01")];
    let original = accepted(call(&app, Method::POST, &url, &key, Vec::new()).await, 1).await;
    // A caller that retries what was stored, more often than the limit allows, is told so...
    for _ in 0..4 {
        let again = call(&app, Method::POST, &url, &key, Vec::new()).await;
        assert_eq!(again.status(), 200);
        assert_eq!(json_body(again).await["delivery_id"], original);
    }
    // ...and the limit's second place is still there for a new call; the third is refused.
    let other = [("idempotency-key", "nightly-2026-01-02")];
    accepted(call(&app, Method::POST, &url, &other, Vec::new()).await, 1).await;
    let third = [("idempotency-key", "nightly-2026-01-03")];
    let r = call(&app, Method::POST, &url, &third, Vec::new()).await;
    assert_eq!(r.status(), 429);
    app.stop().await;
}
