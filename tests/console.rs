//! The web console over plain HTTP, as a browser without JavaScript sees it: the login behind the
//! admin token, the refusals at start-up, the security headers, CSRF, the forms that change
//! receivers (the secret shown once), escaping of everything a delivery carries, the delivery
//! page, filters and paging, bulk redelivery, the test delivery, and the pages of changesets,
//! timelines and sync requests filled by real signed fixture payloads.

mod common;

use common::console::{Answer, ConsoleClient};
use common::{Engine, TestApp, fixture, host_headers, json_body};
use hookgate::admin::proto::{
    self, CodeHostKind, DeliveryState, GetReceiverRequest, ListReceiversRequest,
    UpdateReceiverRequest,
};
use reqwest::StatusCode;

const TOKEN: &str = "console-test-admin-token-0123456789";
const SCRIPT: &str = "<script>alert(1)</script>";
const SCRIPT_ESCAPED: &str = "&lt;script&gt;alert(1)&lt;/script&gt;";
const IMG: &str = "\"><img src=x onerror=alert(1)>";
const IMG_ESCAPED: &str = "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;";

on_both_engines!(
    the_console_asks_for_the_admin_token_once,
    every_answer_carries_the_security_headers,
    forms_without_the_sessions_csrf_token_change_nothing,
    receivers_are_created_renamed_rotated_and_deleted_through_forms_with_the_secret_shown_once,
    every_value_from_a_delivery_is_escaped_on_every_page,
    the_delivery_page_shows_pretty_json_and_redacted_headers,
    the_delivery_log_filters_and_pages,
    bulk_redelivery_counts_first_and_queues_on_confirmation,
    send_test_delivery_shows_the_answer,
    changesets_timelines_and_sync_requests_show_what_real_deliveries_did,
    bad_ids_and_unknown_paths_get_a_page_with_the_reason,
    the_live_stream_tells_of_arrivals_and_ends_at_shutdown,
    requests_to_unknown_receiver_ids_are_listed_with_the_receivers,
    wrong_tokens_from_one_address_stop_its_logins_for_a_minute_and_no_other,
    a_gitlab_receivers_page_says_whether_it_has_a_signing_token_and_never_shows_it,
);

async fn console(app: &TestApp) -> ConsoleClient {
    ConsoleClient::new(app)
}

/// Creates a GitHub receiver on `urn` over gRPC; returns (id, secret).
async fn github(app: &TestApp, name: &str, urn: &str) -> (String, String) {
    app.create_receiver(name, CodeHostKind::Github, urn).await
}

/// Posts a GitHub delivery of `event` with `body`, signed with `secret` (or wrongly), plus
/// `extra` headers (which replace those of the same name); returns the status and the delivery
/// id, if one came back.
async fn post_github(
    app: &TestApp,
    receiver: &(String, String),
    event: &str,
    body: &[u8],
    sign_right: bool,
    extra: &[(&'static str, String)],
) -> (u16, String) {
    let key = uuid::Uuid::new_v4().to_string();
    let secret = if sign_right {
        receiver.1.clone()
    } else {
        "not-the-secret-at-all".to_owned()
    };
    let mut headers = host_headers(CodeHostKind::Github, event, &key, Some(&secret), body);
    // An extra header replaces the host's own of that name (the content type).
    headers.retain(|(name, _)| !extra.iter().any(|(e, _)| e == name));
    headers.extend_from_slice(extra);
    let response = app.post(&receiver.0, &headers, body.to_vec()).await;
    let status = response.status().as_u16();
    let answer = json_body(response).await;
    (
        status,
        answer["delivery_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// GitHub's ping fixture form-encoded (`payload=<JSON>`), with `extra` appended as it is.
fn form_encoded_ping(extra: &[u8]) -> Vec<u8> {
    let json = String::from_utf8(fixture("github/ping.json")).unwrap();
    let mut body = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &json)
        .finish()
        .into_bytes();
    body.push(b'&');
    body.extend_from_slice(extra);
    body
}

fn assert_absent(page: &Answer, raw: &str, what: &str) {
    assert!(
        !page.body.contains(raw),
        "{what}: the raw {raw:?} is on the page:\n{}",
        page.body
    );
}

async fn the_console_asks_for_the_admin_token_once(engine: Engine) {
    let app = TestApp::spawn_with(engine, |c| c.admin_token = Some(TOKEN.into())).await;
    let mut browser = console(&app).await;

    // Any page sends a browser without a session to the login form, with a session cookie.
    let first = browser.get("/receivers").await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    assert_eq!(first.location(), "/login");
    let anonymous = browser.cookie.clone().expect("a session cookie");
    let login = browser.get("/login").await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.body.contains("type=\"password\""), "{}", login.body);

    // A login form without the session's CSRF token is refused.
    let forged = browser.post_raw("/login", &[("token", TOKEN)]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);

    // The wrong token is refused with a message, and logs nobody in.
    let wrong = browser.post("/login", &[("token", "not-the-token")]).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong.body.contains("That is not the admin token"),
        "{}",
        wrong.body
    );
    assert_eq!(browser.get("/receivers").await.location(), "/login");

    // The right one gives a new session in an HttpOnly, SameSite=Strict cookie.
    browser.get("/login").await;
    let right = browser.post("/login", &[("token", TOKEN)]).await;
    assert_eq!(right.status, StatusCode::SEE_OTHER, "{}", right.body);
    assert_eq!(right.location(), "/receivers");
    let cookie = right
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("hookgate_console="))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    let session = browser.cookie.clone().unwrap();
    assert_ne!(session, anonymous, "a login gets a new session id");
    let page = browser.get("/receivers").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Log out"), "{}", page.body);

    // The session id from before the login is worth nothing.
    let mut stale = console(&app).await;
    stale.cookie = Some(anonymous);
    assert_eq!(stale.get("/receivers").await.location(), "/login");

    // Logging out ends the session.
    let out = browser.post("/logout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(
        out.set_cookies().iter().any(|c| c.contains("Max-Age=0")),
        "{:?}",
        out.set_cookies()
    );
    let mut after = console(&app).await;
    after.cookie = Some(session);
    assert_eq!(after.get("/receivers").await.location(), "/login");
    app.stop().await;
}

async fn wrong_tokens_from_one_address_stop_its_logins_for_a_minute_and_no_other(engine: Engine) {
    let app = TestApp::spawn_with(engine, |c| c.admin_token = Some(TOKEN.into())).await;
    let mut guesser = console(&app).await;
    guesser.get("/login").await;
    for _ in 0..hookgate::console::WRONG_TOKENS_PER_MINUTE {
        let wrong = guesser.post("/login", &[("token", "a-guess")]).await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.body);
    }
    // Past the limit the form is not checked at all: even the right token is refused, with
    // how long to wait.
    let refused = guesser.post("/login", &[("token", TOKEN)]).await;
    assert_eq!(
        refused.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        refused.body
    );
    assert!(
        refused
            .body
            .contains("Too many wrong tokens from this address"),
        "{}",
        refused.body
    );
    let retry: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(guesser.get("/receivers").await.location(), "/login");

    // Another client address is not held back by the first one's guesses.
    let mut admin = ConsoleClient::from_address(&app, "127.0.0.2".parse().unwrap());
    admin.get("/login").await;
    let right = admin.post("/login", &[("token", TOKEN)]).await;
    assert_eq!(right.status, StatusCode::SEE_OTHER, "{}", right.body);
    assert_eq!(admin.get("/receivers").await.status, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn without_a_token_the_console_refuses_a_public_address() {
    let db = common::TestDatabase::new(Engine::Sqlite).await;
    let mut config = common::test_config(&db);
    config.console_addr = hookgate::config::ConsoleAddr::On("0.0.0.0:0".parse().unwrap());
    let err = match hookgate::app::Application::build(&config).await {
        Ok(_) => panic!("a console on 0.0.0.0 without a token must not start"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("the console would listen on 0.0.0.0:0 with no admin token")
            && err.contains("set --admin-token"),
        "{err}"
    );
    // With a token it starts there.
    config.admin_token = Some(TOKEN.into());
    let app = hookgate::app::Application::build(&config)
        .await
        .expect("with a token the console may listen on any address");
    assert!(app.console_addr().unwrap().ip().is_unspecified());
}

#[tokio::test]
async fn console_addr_off_serves_no_console() {
    let app = TestApp::spawn_with(Engine::Sqlite, |c| {
        c.console_addr = hookgate::config::ConsoleAddr::Off;
    })
    .await;
    assert_eq!(app.console_addr, None);
    // The rest of the service runs as before.
    let (id, _) = github(&app, "still-here", "https://github.com").await;
    assert!(!id.is_empty());
    app.stop().await;
    // The flag's own spelling.
    let cli = <hookgate::config::Cli as clap::Parser>::try_parse_from([
        "hookgate",
        "--console-addr",
        "off",
    ])
    .unwrap();
    assert_eq!(cli.config.console_addr, hookgate::config::ConsoleAddr::Off);
    let bad = <hookgate::config::Cli as clap::Parser>::try_parse_from([
        "hookgate",
        "--console-addr",
        "nowhere",
    ])
    .unwrap_err()
    .to_string();
    assert!(bad.contains("or `off` for no console"), "{bad}");
}

async fn every_answer_carries_the_security_headers(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let receiver = github(&app, "headers", "https://github.com").await;
    let (_, delivery) = post_github(
        &app,
        &receiver,
        "ping",
        &fixture("github/ping.json"),
        true,
        &[],
    )
    .await;
    let mut browser = console(&app).await;
    let pages = [
        "/receivers".to_owned(),
        "/receivers/new".to_owned(),
        format!("/receivers/{}", receiver.0),
        format!("/receivers/{}/edit", receiver.0),
        format!("/receivers/{}/delete", receiver.0),
        format!("/deliveries/{delivery}"),
        "/repositories".to_owned(),
        "/sync-requests".to_owned(),
        "/no/such/page".to_owned(),
        "/deliveries/not-a-uuid".to_owned(),
    ];
    for path in &pages {
        let page = browser.get(path).await;
        let header = |name: &str| {
            page.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(
            header("content-security-policy"),
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            "{path}"
        );
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
        assert_eq!(header("cache-control"), "no-store", "{path}");
        assert!(
            header("content-type").starts_with("text/html"),
            "{path}: {}",
            header("content-type")
        );
        // No inline script or style: every script has a src, and nothing has a style attribute.
        assert!(!page.body.contains("<script>"), "{path}: {}", page.body);
        assert!(!page.body.contains(" style="), "{path}");
        assert!(!page.body.contains("<style"), "{path}");
    }
    // The assets come from the binary, with cache headers and the same policy.
    for (path, kind) in [
        ("/assets/console.css", "text/css"),
        ("/assets/console.js", "text/javascript"),
    ] {
        let asset = browser.get(path).await;
        assert_eq!(asset.status, StatusCode::OK, "{path}");
        let value = |n: &str| asset.headers.get(n).unwrap().to_str().unwrap().to_owned();
        assert!(value("content-type").starts_with(kind), "{path}");
        assert_eq!(value("cache-control"), "public, max-age=3600", "{path}");
        assert!(asset.headers.contains_key("content-security-policy"));
        assert!(!asset.body.contains("http://") && !asset.body.contains("https://"));
    }
    // Without an admin token only loopback names are answered (DNS rebinding).
    let rebound = reqwest::Client::new()
        .get(format!("{}/receivers", browser.base))
        .header("host", "evil.example:8081")
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), StatusCode::FORBIDDEN);
    assert!(rebound.text().await.unwrap().contains("loopback"));
    app.stop().await;
}

async fn forms_without_the_sessions_csrf_token_change_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let keep = github(&app, "keep-me", "https://github.com").await;
    let mut browser = console(&app).await;
    browser.get("/receivers/new").await;
    let form = [
        ("name", "forged"),
        ("kind", "GITHUB"),
        ("code_host_urn", "https://github.com"),
    ];
    // No token.
    let missing = browser.post_raw("/receivers", &form).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    assert!(missing.body.contains("CSRF token"), "{}", missing.body);
    // Another value.
    let mut wrong = form.to_vec();
    wrong.push(("csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
    assert_eq!(
        browser.post_raw("/receivers", &wrong).await.status,
        StatusCode::FORBIDDEN
    );
    // Another session's token.
    let mut other = console(&app).await;
    other.get("/receivers/new").await;
    let theirs = other.csrf.clone().unwrap();
    let mut stolen = form.to_vec();
    stolen.push(("csrf", theirs.as_str()));
    assert_eq!(
        browser.post_raw("/receivers", &stolen).await.status,
        StatusCode::FORBIDDEN
    );
    // Nor can a delete or a rotation be forged.
    for path in ["delete", "rotate", "test", "edit"] {
        let answer = browser
            .post_raw(&format!("/receivers/{}/{path}", keep.0), &[("name", "x")])
            .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{path}");
    }
    // Nothing changed: one receiver, as it was, and its secret still works.
    let list = app
        .receivers()
        .await
        .list_receivers(app.req(ListReceiversRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.total_size, 1);
    assert_eq!(list.receivers[0].name, "keep-me");
    let (status, _) =
        post_github(&app, &keep, "ping", &fixture("github/ping.json"), true, &[]).await;
    assert_eq!(status, 200);
    // With the token the same form works.
    let made = browser.post("/receivers", &form).await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    app.stop().await;
}

async fn receivers_are_created_renamed_rotated_and_deleted_through_forms_with_the_secret_shown_once(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let mut browser = console(&app).await;
    browser.get("/receivers/new").await;

    // A value the admin API refuses shows the form again, with its message and what was typed.
    let bad = browser
        .post(
            "/receivers",
            &[
                ("name", "from-the-console"),
                ("kind", "GITHUB"),
                ("code_host_urn", "github.com"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("is not an absolute URL"), "{}", bad.body);
    assert!(
        bad.body.contains("value=\"from-the-console\""),
        "{}",
        bad.body
    );

    // Created: the answer shows the URL and the secret, once.
    let made = browser
        .post(
            "/receivers",
            &[
                ("name", "from-the-console"),
                ("kind", "GITHUB"),
                ("code_host_urn", "https://github.com"),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    let secret = made.text_of("new-secret").expect("the secret is shown");
    let url = made.text_of("new-url").expect("the URL is shown");
    let id = url.rsplit('/').next().unwrap().to_owned();
    assert!(secret.len() >= 20, "{secret}");
    let stored = app
        .receivers()
        .await
        .get_receiver(app.req(GetReceiverRequest { id: id.clone() }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.name, "from-the-console");
    assert_eq!(stored.created_by, "console");
    // The secret shown is the receiver's.
    let receiver = (id.clone(), secret.clone());
    let (status, _) = post_github(
        &app,
        &receiver,
        "ping",
        &fixture("github/ping.json"),
        true,
        &[],
    )
    .await;
    assert_eq!(status, 200);

    // The same name again is refused (409) with the API's message.
    browser.get("/receivers/new").await;
    let twice = browser
        .post(
            "/receivers",
            &[
                ("name", "from-the-console"),
                ("kind", "GITLAB"),
                ("code_host_urn", "https://gitlab.com"),
            ],
        )
        .await;
    assert_eq!(twice.status, StatusCode::CONFLICT, "{}", twice.body);
    assert!(twice.body.contains("from-the-console"), "{}", twice.body);

    // Renamed.
    let edit = browser.get(&format!("/receivers/{id}/edit")).await;
    assert_eq!(edit.status, StatusCode::OK);
    let renamed = browser
        .post(
            &format!("/receivers/{id}/edit"),
            &[
                ("name", "renamed-in-the-console"),
                ("code_host_urn", "https://github.com/"),
            ],
        )
        .await;
    assert_eq!(renamed.status, StatusCode::SEE_OTHER, "{}", renamed.body);
    assert_eq!(renamed.location(), format!("/receivers/{id}"));
    let page = browser.get(&format!("/receivers/{id}")).await;
    assert!(
        page.body.contains("renamed-in-the-console"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Saved"), "the notice is shown");
    let again = browser.get(&format!("/receivers/{id}")).await;
    assert!(!again.body.contains("Saved"), "a notice is shown once");
    let stored = app
        .receivers()
        .await
        .get_receiver(app.req(GetReceiverRequest { id: id.clone() }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.name, "renamed-in-the-console");
    assert_eq!(stored.updated_by, "console");
    // An empty name is refused, the form shown again.
    browser.get(&format!("/receivers/{id}/edit")).await;
    let empty = browser
        .post(
            &format!("/receivers/{id}/edit"),
            &[("name", " "), ("code_host_urn", "https://github.com/")],
        )
        .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST, "{}", empty.body);
    assert!(empty.body.contains("name"), "{}", empty.body);

    // Rotated: a new secret, shown once; the old one stops working (no overlap).
    browser.get(&format!("/receivers/{id}")).await;
    let rotated = browser
        .post(&format!("/receivers/{id}/rotate"), &[("overlap", "")])
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let new_secret = rotated
        .text_of("new-secret")
        .expect("the new secret is shown");
    assert_ne!(new_secret, secret);
    let (old_status, _) = post_github(
        &app,
        &receiver,
        "ping",
        &fixture("github/ping.json"),
        true,
        &[],
    )
    .await;
    assert_eq!(old_status, 401);
    let (new_status, _) = post_github(
        &app,
        &(id.clone(), new_secret.clone()),
        "ping",
        &fixture("github/ping.json"),
        true,
        &[],
    )
    .await;
    assert_eq!(new_status, 200);

    // No page reached by GET shows either secret again.
    let delivery_ids: Vec<String> = app
        .deliveries()
        .await
        .list_deliveries(app.req(proto::ListDeliveriesRequest {
            receiver_id: id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .deliveries
        .into_iter()
        .map(|d| d.id)
        .collect();
    let mut paths = vec![
        "/receivers".to_owned(),
        format!("/receivers/{id}"),
        format!("/receivers/{id}/edit"),
        format!("/receivers/{id}/delete"),
        format!("/receivers/{id}/deliveries"),
        format!("/receivers/{id}/health"),
        "/receivers/table".to_owned(),
    ];
    paths.extend(delivery_ids.iter().map(|d| format!("/deliveries/{d}")));
    for path in &paths {
        let page = browser.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        assert_absent(&page, &secret, path);
        assert_absent(&page, &new_secret, path);
    }

    // Deleted, after a confirmation page.
    let confirm = browser.get(&format!("/receivers/{id}/delete")).await;
    assert!(
        confirm.body.contains("cannot be undone"),
        "{}",
        confirm.body
    );
    let deleted = browser.post(&format!("/receivers/{id}/delete"), &[]).await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert_eq!(deleted.location(), "/receivers");
    let list = browser.get("/receivers").await;
    assert!(
        list.body
            .contains("Receiver renamed-in-the-console deleted"),
        "{}",
        list.body
    );
    let gone = app
        .receivers()
        .await
        .get_receiver(app.req(GetReceiverRequest { id: id.clone() }))
        .await
        .unwrap_err();
    assert_eq!(gone.code(), tonic::Code::NotFound);
    assert_eq!(
        browser.get(&format!("/receivers/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

async fn every_value_from_a_delivery_is_escaped_on_every_page(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let receiver = github(&app, "escaping", "https://github.com").await;
    // A receiver name is an admin's, but escaped all the same.
    let named = app
        .create_receiver(
            &format!("n{IMG}"),
            CodeHostKind::Gitlab,
            "https://gitlab.com",
        )
        .await;
    // A pull request whose repository, title, author and branch hold markup, and a push of the
    // same repository.
    let mut pr: serde_json::Value =
        serde_json::from_slice(&fixture("github/pull_request.opened.json")).unwrap();
    let repo_name = format!("octo/{SCRIPT}{IMG}");
    pr["repository"]["full_name"] = repo_name.clone().into();
    pr["pull_request"]["title"] = format!("title {SCRIPT} {IMG}").into();
    pr["pull_request"]["user"]["login"] = format!("u{IMG}").into();
    pr["pull_request"]["head"]["ref"] = format!("b{SCRIPT}").into();
    let body = serde_json::to_vec(&pr).unwrap();
    let evil_headers = [
        ("x-evil-script", SCRIPT.to_owned()),
        ("x-evil-img", IMG.to_owned()),
    ];
    let (status, pr_delivery) =
        post_github(&app, &receiver, "pull_request", &body, true, &evil_headers).await;
    assert_eq!(status, 202);
    let d = app.wait_until_done(&pr_delivery).await;
    assert_eq!(d.state, DeliveryState::Processed as i32, "{d:?}");
    let mut push: serde_json::Value =
        serde_json::from_slice(&fixture("github/push.branch-updated.json")).unwrap();
    push["repository"]["full_name"] = repo_name.clone().into();
    push["repository"]["id"] = pr["repository"]["id"].clone();
    let (status, push_delivery) = post_github(
        &app,
        &receiver,
        "push",
        &serde_json::to_vec(&push).unwrap(),
        true,
        &evil_headers,
    )
    .await;
    assert_eq!(status, 202);
    app.wait_until_done(&push_delivery).await;
    // A body that is not JSON: GitHub's form encoding, with markup in a field of its own.
    let form_body = form_encoded_ping(format!("note={SCRIPT}{IMG}").as_bytes());
    let form_headers = [(
        "content-type",
        "application/x-www-form-urlencoded".to_owned(),
    )];
    let (status, form_delivery) =
        post_github(&app, &receiver, "ping", &form_body, true, &form_headers).await;
    assert_eq!(status, 200, "a form-encoded ping is taken");
    assert!(!form_delivery.is_empty());

    let mut browser = console(&app).await;
    let changeset = app.changeset(&repo_name, 2).await;
    let repositories = browser.get("/repositories").await;
    let repository_id = common::console::field_value(&repositories.body, "href=\"/repositories/")
        .expect("the repository is listed");
    let mut pages = vec![
        "/receivers".to_owned(),
        format!("/receivers/{}", receiver.0),
        format!("/receivers/{}/deliveries", receiver.0),
        format!("/receivers/{}", named.0),
        format!("/deliveries/{pr_delivery}"),
        format!("/deliveries/{push_delivery}"),
        "/repositories".to_owned(),
        format!("/repositories/{repository_id}"),
        format!("/changesets/{}", changeset.id),
        "/sync-requests".to_owned(),
    ];
    pages.push(format!("/deliveries/{form_delivery}"));
    let mut seen_script = 0;
    let mut seen_img = 0;
    for path in &pages {
        let page = browser.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        assert_absent(&page, SCRIPT, path);
        assert_absent(&page, "<img", path);
        assert_absent(&page, "onerror=alert(1)>", path);
        seen_script += usize::from(page.body.contains(SCRIPT_ESCAPED));
        seen_img += usize::from(page.body.contains("&lt;img src=x onerror=alert(1)&gt;"));
    }
    // Each value is there, escaped, where it is shown.
    let delivery = browser.get(&format!("/deliveries/{pr_delivery}")).await;
    assert!(delivery.body.contains(SCRIPT_ESCAPED), "header and body");
    assert!(delivery.body.contains(IMG_ESCAPED), "the header as sent");
    let list = browser.get("/repositories").await;
    assert!(
        list.body
            .contains(&format!("octo/{SCRIPT_ESCAPED}{IMG_ESCAPED}")),
        "{}",
        list.body
    );
    let cs = browser.get(&format!("/changesets/{}", changeset.id)).await;
    assert!(
        cs.body
            .contains(&format!("title {SCRIPT_ESCAPED} {IMG_ESCAPED}")),
        "{}",
        cs.body
    );
    let receivers = browser.get("/receivers").await;
    assert!(
        receivers.body.contains(&format!("n{IMG_ESCAPED}")),
        "{}",
        receivers.body
    );
    assert!(
        seen_script >= 6 && seen_img >= 6,
        "{seen_script} {seen_img}"
    );
    let page = browser.get(&format!("/deliveries/{form_delivery}")).await;
    assert!(
        page.body
            .contains(&format!("note={SCRIPT_ESCAPED}{IMG_ESCAPED}")),
        "{}",
        page.body
    );
    assert!(page.body.contains("data-kind=\"text\""), "{}", page.body);
    app.stop().await;
}

async fn the_delivery_page_shows_pretty_json_and_redacted_headers(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = app
        .create_receiver("gitlab", CodeHostKind::Gitlab, "http://example.com")
        .await;
    let body = fixture("gitlab/push.json");
    let key = uuid::Uuid::new_v4().to_string();
    let mut headers = host_headers(
        CodeHostKind::Gitlab,
        "Push Hook",
        &key,
        Some(&secret),
        &body,
    );
    headers.push((
        "authorization",
        "Bearer a-bearer-token-never-shown".to_owned(),
    ));
    let answer = app.post(&id, &headers, body.clone()).await;
    assert_eq!(answer.status().as_u16(), 202);
    let delivery = json_body(answer).await["delivery_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.wait_until_done(&delivery).await;
    let mut browser = console(&app).await;
    let page = browser.get(&format!("/deliveries/{delivery}")).await;
    assert_eq!(page.status, StatusCode::OK);
    // The token and the bearer are stored redacted, and shown so.
    assert_absent(&page, &secret, "the GitLab token");
    assert_absent(
        &page,
        "a-bearer-token-never-shown",
        "the authorization header",
    );
    assert!(page.body.contains("x-gitlab-token"), "{}", page.body);
    assert!(page.body.contains("[REDACTED]"), "{}", page.body);
    assert!(page.body.contains(&key), "the delivery key");
    // The body, pretty-printed: the parsed JSON printed with two-space indents.
    let pretty =
        serde_json::to_string_pretty(&serde_json::from_slice::<serde_json::Value>(&body).unwrap())
            .unwrap();
    assert!(pretty.contains("\n  \"object_kind\": \"push\""));
    let shown = page.text_of("request-body").expect("the body is shown");
    assert_eq!(shown, pretty.replace('"', "&quot;"));
    assert!(page.body.contains("data-kind=\"json\""));
    // The answer hookgate gave, and where processing stands.
    assert!(page.body.contains("delivery_id"), "the answer body");
    assert!(page.body.contains("PROCESSED"), "{}", page.body);
    assert!(
        page.body.contains("id=\"redeliver\""),
        "a processed delivery can be redelivered"
    );
    // What it did: the sync request of the pushed project, linked.
    assert!(page.body.contains("id=\"effect-syncs\""), "{}", page.body);
    assert!(page.body.contains("mike/diaspora"), "{}", page.body);
    // A body that is not text is counted, not shown: a form-encoded GitHub ping with bytes
    // that are not UTF-8 in a field of its own.
    let github = app
        .create_receiver("github", CodeHostKind::Github, "https://github.com")
        .await;
    let binary = form_encoded_ping(b"junk=\xff\xfe");
    let size = binary.len();
    let form_headers = [(
        "content-type",
        "application/x-www-form-urlencoded".to_owned(),
    )];
    let (status, id) = post_github(&app, &github, "ping", &binary, true, &form_headers).await;
    assert_eq!(status, 200);
    let page = browser.get(&format!("/deliveries/{id}")).await;
    assert!(
        page.body.contains(&format!("binary, {size} bytes")),
        "{}",
        page.body
    );
    // A generic trigger's call: its secret header redacted, and no Redeliver (its sync requests
    // were made when it came).
    let (trigger, trigger_secret) = app
        .create_receiver("trigger", CodeHostKind::Generic, "https://github.com")
        .await;
    let answer = app
        .post(
            &trigger,
            &[("x-hook-secret", trigger_secret.clone())],
            Vec::new(),
        )
        .await;
    assert_eq!(answer.status().as_u16(), 202);
    let called = json_body(answer).await["delivery_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let page = browser.get(&format!("/deliveries/{called}")).await;
    assert!(page.body.contains("[REDACTED]"), "x-hook-secret");
    assert_absent(&page, &trigger_secret, "x-hook-secret");
    assert!(!page.body.contains("id=\"redeliver\""), "{}", page.body);
    app.stop().await;
}

async fn the_delivery_log_filters_and_pages(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let receiver = github(&app, "log", "https://github.com").await;
    let ping = fixture("github/ping.json");
    for _ in 0..26 {
        let (status, _) = post_github(&app, &receiver, "ping", &ping, true, &[]).await;
        assert_eq!(status, 200);
    }
    for _ in 0..2 {
        let (status, _) = post_github(&app, &receiver, "ping", &ping, false, &[]).await;
        assert_eq!(status, 401);
    }
    let (status, push) = post_github(
        &app,
        &receiver,
        "push",
        &fixture("github/push.branch-updated.json"),
        true,
        &[],
    )
    .await;
    assert_eq!(status, 202);
    app.wait_until_done(&push).await;
    let rows = |page: &Answer| page.body.matches("<tr class=\"delivery\"").count();
    let mut browser = console(&app).await;
    let base = format!("/receivers/{}", receiver.0);

    // 29 in all: a first page of 25 and a link to the next.
    let first = browser.get(&base).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(rows(&first), 25);
    assert!(first.body.contains("29 deliveries match"), "{}", first.body);
    let next = common::console::field_value(&first.body, "page_token=").expect("a next page link");
    let second = browser.get(&format!("{base}?page_token={next}")).await;
    assert_eq!(rows(&second), 4, "{}", second.body);
    assert!(second.body.contains("← Newest"));
    // The fragment the live page re-fetches is the same list.
    let fragment = browser
        .get(&format!("{base}/deliveries?page_token={next}"))
        .await;
    assert_eq!(rows(&fragment), 4);
    assert!(!fragment.body.contains("<html"), "a fragment, not a page");

    // Errors only: the two wrongly signed.
    let errors = browser.get(&format!("{base}?errors=1")).await;
    assert_eq!(rows(&errors), 2, "{}", errors.body);
    assert!(errors.body.contains("REJECTED"));
    // By state.
    let rejected = browser.get(&format!("{base}?state=REJECTED")).await;
    assert_eq!(rows(&rejected), 2);
    // By event.
    let pushes = browser.get(&format!("{base}?event=push")).await;
    assert_eq!(rows(&pushes), 1, "{}", pushes.body);
    assert!(pushes.body.contains(&push));
    // A state that does not exist, and a token that is not one, are refused with the reason.
    let bad = browser.get(&format!("{base}?state=BROKEN")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("is not a delivery state"), "{}", bad.body);
    let bad = browser.get(&format!("{base}?page_token=garbage")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("page_token"), "{}", bad.body);
    app.stop().await;
}

async fn bulk_redelivery_counts_first_and_queues_on_confirmation(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    // The receiver names the wrong host: pushes of github.com repositories are ignored.
    let receiver = github(&app, "bulk", "https://github.example.com").await;
    let mut ignored = Vec::new();
    for _ in 0..3 {
        let (status, id) = post_github(
            &app,
            &receiver,
            "push",
            &fixture("github/push.branch-updated.json"),
            true,
            &[],
        )
        .await;
        assert_eq!(status, 202);
        let d = app.wait_until_done(&id).await;
        assert_eq!(d.state, DeliveryState::Ignored as i32, "{d:?}");
        ignored.push(id);
    }
    // The host is corrected; the ignored pushes are what to redeliver.
    app.receivers()
        .await
        .update_receiver(app.req(UpdateReceiverRequest {
            receiver: Some(proto::Receiver {
                id: receiver.0.clone(),
                code_host_urn: "https://github.com".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["code_host_urn".into()],
            }),
        }))
        .await
        .unwrap();
    let mut browser = console(&app).await;
    let base = format!("/receivers/{}/redeliver", receiver.0);
    let since = (chrono::Utc::now() - chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M")
        .to_string();

    // A time that is not one is refused, the form shown again.
    let bad = browser
        .get(&format!("{base}?since=yesterday&state=IGNORED&count=1"))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("is not a time"), "{}", bad.body);

    // First the count; nothing changes.
    let counted = browser
        .get(&format!("{base}?since={since}&state=IGNORED&count=1"))
        .await;
    assert_eq!(counted.status, StatusCode::OK, "{}", counted.body);
    assert!(
        counted.body.contains("<strong>3</strong> deliveries match"),
        "{}",
        counted.body
    );
    assert!(counted.body.contains("Redeliver 3 deliveries"));
    for id in &ignored {
        assert_eq!(
            app.get_delivery(id).await.state,
            DeliveryState::Ignored as i32
        );
    }
    // Only failed ones (the default): none.
    let none = browser.get(&format!("{base}?since={since}&count=1")).await;
    assert!(none.body.contains("No delivery matches"), "{}", none.body);

    // Then the confirmation queues them: they are processed again, now on the right host.
    browser
        .get(&format!("{base}?since={since}&state=IGNORED&count=1"))
        .await;
    let confirmed = browser
        .post(
            &base,
            &[
                ("since", since.as_str()),
                ("until", ""),
                ("state", "IGNORED"),
            ],
        )
        .await;
    assert_eq!(
        confirmed.status,
        StatusCode::SEE_OTHER,
        "{}",
        confirmed.body
    );
    let page = browser.get(&format!("/receivers/{}", receiver.0)).await;
    assert!(
        page.body.contains("Queued 3 deliveries again"),
        "{}",
        page.body
    );
    for id in &ignored {
        let d = app.wait_for_state(id, DeliveryState::Processed).await;
        assert_eq!(d.attempts, 1);
    }
    // A forged confirmation does nothing.
    let forged = browser
        .post_raw(&base, &[("since", since.as_str()), ("state", "PROCESSED")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    for id in &ignored {
        assert_eq!(
            app.get_delivery(id).await.state,
            DeliveryState::Processed as i32
        );
    }
    app.stop().await;
}

async fn send_test_delivery_shows_the_answer(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let receiver = github(&app, "tested", "https://github.com").await;
    let mut browser = console(&app).await;
    let page = browser.get(&format!("/receivers/{}", receiver.0)).await;
    assert!(page.body.contains("Send test delivery"));
    let sent = browser
        .post(&format!("/receivers/{}/test", receiver.0), &[])
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER);
    let page = browser.get(&format!("/receivers/{}", receiver.0)).await;
    // The answer as the ingress gave it, and the delivery it was stored as, linked.
    assert!(
        page.body
            .contains("Test delivery answered HTTP 200: test delivery: verified"),
        "{}",
        page.body
    );
    let delivery = common::console::field_value(&page.body, "role=\"status\">")
        .and_then(|_| common::console::field_value(&page.body, "<a href=\"/deliveries/"))
        .expect("a link to the test delivery");
    let stored = app.get_delivery(&delivery).await;
    assert_eq!(stored.receiver_id, receiver.0);
    assert!(stored.event.contains("(test delivery)"), "{stored:?}");
    assert!(page.body.contains("See the delivery"), "{}", page.body);
    // A generic trigger has no test event: the API's reason, as a page.
    let (generic, _) = app
        .create_receiver("cron", CodeHostKind::Generic, "https://github.com")
        .await;
    let refused = browser
        .post(&format!("/receivers/{generic}/test"), &[])
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(
        refused.body.contains("have no test event"),
        "{}",
        refused.body
    );
    app.stop().await;
}

async fn changesets_timelines_and_sync_requests_show_what_real_deliveries_did(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let receiver = github(&app, "real", "https://github.com").await;
    // The push fixture was captured from another copy of the repository: it is given the
    // pull request's repository id, so both name the same repository.
    let mut push: serde_json::Value =
        serde_json::from_slice(&fixture("github/push.branch-updated.json")).unwrap();
    let opened = fixture("github/pull_request.opened.json");
    let opened_json: serde_json::Value = serde_json::from_slice(&opened).unwrap();
    push["repository"]["id"] = opened_json["repository"]["id"].clone();
    let mut delivered = Vec::new();
    for (event, body) in [
        ("pull_request", opened),
        (
            "pull_request_review",
            fixture("github/pull_request_review.submitted.json"),
        ),
        ("push", serde_json::to_vec(&push).unwrap()),
    ] {
        let (status, id) = post_github(&app, &receiver, event, &body, true, &[]).await;
        assert_eq!(status, 202, "{event}");
        let d = app.wait_until_done(&id).await;
        assert_eq!(d.state, DeliveryState::Processed as i32, "{event}: {d:?}");
        delivered.push(id);
    }
    let changeset = app.changeset("Codertocat/Hello-World", 2).await;
    let mut browser = console(&app).await;

    let repositories = browser.get("/repositories").await;
    assert!(
        repositories.body.contains("Codertocat/Hello-World"),
        "{}",
        repositories.body
    );
    let repo = browser
        .get(&format!("/repositories/{}", changeset.repository_id))
        .await;
    assert_eq!(repo.status, StatusCode::OK, "{}", repo.body);
    assert!(
        repo.body
            .contains("Update the README with new information."),
        "{}",
        repo.body
    );
    assert!(
        repo.body.contains("OPEN")
            || repo.body.contains("DRAFT")
            || repo.body.contains("CLOSED")
            || repo.body.contains("MERGED")
    );
    assert!(repo.body.contains(&format!("/changesets/{}", changeset.id)));
    let filtered = browser
        .get(&format!(
            "/repositories/{}?state=MERGED",
            changeset.repository_id
        ))
        .await;
    assert!(
        filtered.body.contains("No changesets match"),
        "{}",
        filtered.body
    );

    let page = browser.get(&format!("/changesets/{}", changeset.id)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"timeline\""), "{}", page.body);
    assert!(page.body.contains("opened"), "{}", page.body);
    assert!(
        page.body.contains("<dd id=\"in-merge-queue\">no</dd>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("<dd id=\"auto-merge\">not set</dd>"),
        "{}",
        page.body
    );
    assert!(page.body.contains(&format!("/deliveries/{}", delivered[0])));
    assert!(page.body.contains(&format!("/deliveries/{}", delivered[1])));
    assert!(page.body.contains("Codertocat"));

    // Each delivery says what it did, linked.
    let opened = browser.get(&format!("/deliveries/{}", delivered[0])).await;
    assert!(
        opened.body.contains("id=\"effect-changesets\""),
        "{}",
        opened.body
    );
    assert!(
        opened
            .body
            .contains(&format!("/changesets/{}", changeset.id))
    );
    let pushed = browser.get(&format!("/deliveries/{}", delivered[2])).await;
    assert!(
        pushed.body.contains("id=\"effect-syncs\""),
        "{}",
        pushed.body
    );
    let sync_id = common::console::field_value(&pushed.body, "href=\"/sync-requests/")
        .expect("the sync request is linked");

    let queue = browser.get("/sync-requests").await;
    assert!(
        queue.body.contains("Codertocat/Hello-World"),
        "{}",
        queue.body
    );
    assert!(queue.body.contains("PENDING"));
    assert!(queue.body.contains("refs/heads/master"), "{}", queue.body);
    let pending = browser.get("/sync-requests?state=COMPLETED").await;
    assert!(pending.body.contains("No sync requests match"));
    let one = browser.get(&format!("/sync-requests/{sync_id}")).await;
    assert_eq!(one.status, StatusCode::OK);
    assert!(one.body.contains("refs/heads/master") && one.body.contains("push"));
    // A ping did nothing, and says so.
    let (_, ping) = post_github(
        &app,
        &receiver,
        "ping",
        &fixture("github/ping.json"),
        true,
        &[],
    )
    .await;
    let nothing = browser.get(&format!("/deliveries/{ping}")).await;
    assert!(
        nothing.body.contains("id=\"no-effects\""),
        "{}",
        nothing.body
    );

    // Put in the merge queue and set to auto-merge, later than the opening: the page says so.
    for action in ["enqueued", "auto_merge_enabled"] {
        let mut body: serde_json::Value =
            serde_json::from_slice(&fixture(&format!("github/pull_request.{action}.json")))
                .unwrap();
        body["pull_request"]["updated_at"] = serde_json::json!("2019-05-15T15:30:00Z");
        let body = serde_json::to_vec(&body).unwrap();
        let (status, id) = post_github(&app, &receiver, "pull_request", &body, true, &[]).await;
        assert_eq!(status, 202, "{action}");
        app.wait_until_done(&id).await;
    }
    let page = browser.get(&format!("/changesets/{}", changeset.id)).await;
    assert!(
        page.body.contains("<dd id=\"in-merge-queue\">yes</dd>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("<dd id=\"auto-merge\">set</dd>"),
        "{}",
        page.body
    );
    app.stop().await;
}

async fn bad_ids_and_unknown_paths_get_a_page_with_the_reason(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let mut browser = console(&app).await;
    let unknown = uuid::Uuid::new_v4();
    for (path, status, says) in [
        (
            "/nowhere".to_owned(),
            StatusCode::NOT_FOUND,
            "there is no console page at /nowhere",
        ),
        (
            "/deliveries/nope".to_owned(),
            StatusCode::BAD_REQUEST,
            "is not a UUID",
        ),
        (
            format!("/deliveries/{unknown}"),
            StatusCode::NOT_FOUND,
            "not found",
        ),
        (
            format!("/receivers/{unknown}"),
            StatusCode::NOT_FOUND,
            "not found",
        ),
        (
            "/receivers/nope".to_owned(),
            StatusCode::BAD_REQUEST,
            "is not a UUID",
        ),
        (
            format!("/changesets/{unknown}"),
            StatusCode::NOT_FOUND,
            "not found",
        ),
        (
            format!("/repositories/{unknown}"),
            StatusCode::NOT_FOUND,
            "not found",
        ),
        (
            "/sync-requests/nope".to_owned(),
            StatusCode::BAD_REQUEST,
            "is not a sync request id",
        ),
        (
            format!("/sync-requests/{unknown}"),
            StatusCode::NOT_FOUND,
            "not found",
        ),
        (
            "/sync-requests?state=LOST".to_owned(),
            StatusCode::BAD_REQUEST,
            "is not a sync request state",
        ),
        (
            "/live?receiver=nope".to_owned(),
            StatusCode::BAD_REQUEST,
            "is not a receiver id",
        ),
        (
            "/assets/other.js".to_owned(),
            StatusCode::NOT_FOUND,
            "no asset",
        ),
    ] {
        let page = browser.get(&path).await;
        assert_eq!(page.status, status, "{path}: {}", page.body);
        assert!(page.body.contains(says), "{path}: {}", page.body);
    }
    // A redelivery the API refuses (a rejected delivery has no body) is a page with its reason.
    let receiver = github(&app, "refusals", "https://github.com").await;
    let (status, rejected) = post_github(
        &app,
        &receiver,
        "ping",
        &fixture("github/ping.json"),
        false,
        &[],
    )
    .await;
    assert_eq!(status, 401);
    let rejected = if rejected.is_empty() {
        app.deliveries()
            .await
            .list_deliveries(app.req(proto::ListDeliveriesRequest {
                receiver_id: receiver.0.clone(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner()
            .deliveries[0]
            .id
            .clone()
    } else {
        rejected
    };
    let page = browser.get(&format!("/deliveries/{rejected}")).await;
    browser.get("/receivers/new").await;
    assert!(
        !page.body.contains("id=\"redeliver\""),
        "no button for a rejected delivery"
    );
    let refused = browser
        .post(&format!("/deliveries/{rejected}/redeliver"), &[])
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert!(
        refused.body.contains("has no body to process"),
        "{}",
        refused.body
    );
    app.stop().await;
}

async fn the_live_stream_tells_of_arrivals_and_ends_at_shutdown(engine: Engine) {
    use futures::StreamExt;
    let app = TestApp::spawn_with(engine, |c| {
        // Shutdown must not wait for open streams: a long timeout would show it.
        c.operations.shutdown_timeout = std::time::Duration::from_secs(3600).into();
    })
    .await;
    let receiver = github(&app, "live", "https://github.com").await;
    let mut browser = console(&app).await;
    browser.get("/receivers").await;
    let cookie = browser.cookie.clone().unwrap();
    let response = reqwest::Client::new()
        .get(format!("{}/live?receiver={}", browser.base, receiver.0))
        .header("cookie", format!("hookgate_console={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut stream = response.bytes_stream();
    // A delivery arrives: the stream says so.
    let (status, _) = post_github(
        &app,
        &receiver,
        "ping",
        &fixture("github/ping.json"),
        true,
        &[],
    )
    .await;
    assert_eq!(status, 200);
    let mut seen = String::new();
    let told = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(chunk) = stream.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if seen.contains("event: changed") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(told, Ok(true), "{seen}");
    // The service stops with the stream open, and the stream ends.
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(60), app.stop()).await;
    assert!(stopped.is_ok(), "shutdown waited for the open stream");
    let ended = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(chunk) = stream.next().await {
            if chunk.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream ends at shutdown");
}

async fn requests_to_unknown_receiver_ids_are_listed_with_the_receivers(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let mut browser = console(&app).await;
    let before = browser.get("/receivers").await;
    assert!(
        before.body.contains("None since this replica started"),
        "{}",
        before.body
    );
    // An old URL still pasted at a code host: its id names no receiver.
    let old = uuid::Uuid::new_v4().to_string();
    for _ in 0..2 {
        let answer = app
            .post(
                &old,
                &[("x-github-event", "push".to_owned())],
                b"{}".to_vec(),
            )
            .await;
        assert_eq!(answer.status().as_u16(), 404);
    }
    let page = browser.get("/receivers").await;
    let row_start = page
        .body
        .find(&format!("<code>{old}</code>"))
        .unwrap_or_else(|| panic!("the unknown id is listed: {}", page.body));
    let row = &page.body[row_start..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("<td class=\"num\">2</td>"), "{row}");
    app.stop().await;
}

async fn a_gitlab_receivers_page_says_whether_it_has_a_signing_token_and_never_shows_it(
    engine: Engine,
) {
    let app = TestApp::spawn_with(engine, |c| c.admin_token = Some(TOKEN.into())).await;
    let created = app
        .receivers()
        .await
        .create_receiver(app.req(proto::CreateReceiverRequest {
            name: "gl-signed".to_owned(),
            code_host_kind: CodeHostKind::Gitlab as i32,
            code_host_urn: "https://gitlab.example.com".to_owned(),
            generate_signing_token: true,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let signed = created.receiver.unwrap().id;
    let (plain, _) = app
        .create_receiver(
            "gl-plain",
            CodeHostKind::Gitlab,
            "https://gitlab.example.com",
        )
        .await;
    let (gh, _) = github(&app, "gh", "https://github.com").await;
    let mut browser = console(&app).await;
    browser.log_in(TOKEN).await;

    let page = browser.get(&format!("/receivers/{signed}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.text_of("signing-token").as_deref(), Some("set"));
    let base64 = created.signing_token.strip_prefix("whsec_").unwrap();
    assert!(!page.body.contains(base64), "the token is on the page");
    let page = browser.get(&format!("/receivers/{plain}")).await;
    assert_eq!(page.text_of("signing-token").as_deref(), Some("not set"));
    let page = browser.get(&format!("/receivers/{gh}")).await;
    assert_eq!(page.text_of("signing-token"), None, "GitHub has none");
    app.stop().await;
}
