//! The console end to end in a real headless Chromium, driven over WebDriver (Debian's `chromium`
//! and `chromium-driver`; `.ci/run` installs them): log in with the admin token, create a
//! receiver, send it signed real payloads over HTTP and watch them appear without a reload, fix
//! the receiver, open a delivery and redeliver it, and see the diagnosis turn to
//! `SIGNATURE_FAILING` after wrongly signed deliveries.
//!
//! The tests are built `#[ignore]`d unless `cfg(hookgate_browser)` is set (build.rs: a
//! chromedriver at /usr/bin/chromedriver, `HOOKGATE_BROWSER`, or CI). With
//! `HOOKGATE_UPDATE_SCREENSHOT=1` the SQLite run also writes `docs/console-receiver.png`.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Engine, TestApp, fixture, host_headers};
use fantoccini::{Client, ClientBuilder, Locator};
use hookgate::admin::proto::{CodeHostKind, DeliveryState};

const TOKEN: &str = "browser-test-admin-token-0123456789";
/// How long any one thing may take to show in the browser.
const DEADLINE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(hookgate_browser),
    ignore = "install chromium and chromium-driver (or set HOOKGATE_BROWSER) to run the browser tests"
)]
async fn a_person_follows_a_receiver_live_in_a_real_browser_sqlite() {
    a_person_follows_a_receiver_live_in_a_real_browser(Engine::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    any(not(hookgate_browser), not(hookgate_postgres)),
    ignore = "needs chromium and chromium-driver, and HOOKGATE_TEST_DATABASE_URL"
)]
async fn a_person_follows_a_receiver_live_in_a_real_browser_postgres() {
    a_person_follows_a_receiver_live_in_a_real_browser(Engine::Postgres).await
}

/// A chromedriver this test started, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Self {
        let driver = "/usr/bin/chromedriver";
        assert!(
            std::path::Path::new(driver).exists(),
            "{driver} is missing: install Debian's chromium and chromium-driver (.ci/run does)"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// A headless Chromium session, once the driver answers.
    async fn session(&self) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": "/usr/bin/chromium",
                // Root in a container: no sandbox; no GPU; /dev/shm may be small.
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1800"],
            }),
        );
        let started = Instant::now();
        loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&self.url)
                .await
            {
                Ok(client) => return client,
                Err(e) if started.elapsed() < DEADLINE => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("no WebDriver session within {DEADLINE:?}: {e}"),
            }
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `check` gives `Some`, looking every 100 ms, and fails after [`DEADLINE`] with
/// `what` and the page's source.
async fn until<T, F, Fut>(browser: &Client, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(found) = check().await {
            return found;
        }
        if started.elapsed() > DEADLINE {
            let source = browser.source().await.unwrap_or_default();
            panic!("{what}: not seen within {DEADLINE:?}. The page:\n{source}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The text of the element `css`, if there is one.
async fn text(browser: &Client, css: &str) -> Option<String> {
    match browser.find(Locator::Css(css)).await {
        Ok(element) => element.text().await.ok(),
        Err(_) => None,
    }
}

/// Types `value` into the field `css`, replacing what it held.
async fn fill(browser: &Client, css: &str, value: &str) {
    let field = browser.find(Locator::Css(css)).await.expect(css);
    field.clear().await.expect("a field can be cleared");
    field.send_keys(value).await.expect("a field takes keys");
}

/// Clicks the element `css`. Live parts of a page are replaced when they are re-fetched, so an
/// element found a moment ago may be gone: it is looked up again until the click lands.
async fn click(browser: &Client, css: &str) {
    until(browser, &format!("a click on {css}"), || async {
        browser
            .find(Locator::Css(css))
            .await
            .ok()?
            .click()
            .await
            .ok()
    })
    .await;
}

/// Posts `body` as GitHub would for `event`, signed with `secret`; returns the HTTP status.
async fn deliver(app: &TestApp, id: &str, secret: &str, event: &str, body: &[u8]) -> u16 {
    let key = uuid::Uuid::new_v4().to_string();
    let headers = host_headers(CodeHostKind::Github, event, &key, Some(secret), body);
    app.post(id, &headers, body.to_vec())
        .await
        .status()
        .as_u16()
}

async fn a_person_follows_a_receiver_live_in_a_real_browser(engine: Engine) {
    let screenshot = engine == Engine::Sqlite
        && std::env::var("HOOKGATE_UPDATE_SCREENSHOT").is_ok_and(|v| v == "1");
    let app = TestApp::spawn_with(engine, |c| {
        c.admin_token = Some(TOKEN.into());
        // What code hosts would be told; nothing here calls it (deliveries go to the ingress
        // directly), so the page shows what an operator's would.
        c.public_url = Some("https://hooks.example.com".into());
    })
    .await;
    let console = format!("http://{}", app.console_addr.expect("the console is on"));
    let driver = Driver::start();
    let browser = driver.session().await;

    // Log in with the token.
    browser.goto(&format!("{console}/receivers")).await.unwrap();
    until(&browser, "the login form", || async {
        browser.find(Locator::Css("input[name=token]")).await.ok()
    })
    .await;
    fill(&browser, "input[name=token]", "not-the-token").await;
    click(&browser, "form button[type=submit]").await;
    until(&browser, "the refusal", || async {
        text(&browser, "p.notice.error")
            .await
            .filter(|t| t.contains("not the admin token"))
    })
    .await;
    fill(&browser, "input[name=token]", TOKEN).await;
    click(&browser, "form button[type=submit]").await;
    until(&browser, "the receivers page", || async {
        text(&browser, "h1").await.filter(|t| t == "Receivers")
    })
    .await;

    // Create a receiver, on the wrong host at first.
    click(&browser, "a[href='/receivers/new']").await;
    until(&browser, "the new receiver form", || async {
        browser.find(Locator::Css("#name")).await.ok()
    })
    .await;
    fill(&browser, "#name", "github-main").await;
    browser
        .find(Locator::Css("#kind"))
        .await
        .unwrap()
        .select_by_value("GITHUB")
        .await
        .unwrap();
    fill(&browser, "#urn", "https://github.example.com").await;
    click(&browser, "form.stack button[type=submit]").await;
    let secret = until(&browser, "the secret, shown once", || async {
        text(&browser, "#new-secret").await
    })
    .await;
    let url = text(&browser, "#new-url").await.unwrap();
    let id = url.rsplit('/').next().unwrap().to_owned();
    assert!(
        url.starts_with("https://hooks.example.com/.api/webhooks/"),
        "{url}"
    );
    click(&browser, "a.button[href^='/receivers/']").await;
    until(&browser, "the receiver page", || async {
        text(&browser, "h1").await.filter(|t| t == "github-main")
    })
    .await;
    let health = text(&browser, "#health").await.unwrap_or_default();
    assert!(health.contains("NEVER_RECEIVED"), "{health}");

    // The page is marked, then must not be reloaded from here on; the live stream is open.
    browser
        .execute("window.hookgateMarker = 'same page';", vec![])
        .await
        .unwrap();
    until(&browser, "the live stream", || async {
        browser.find(Locator::Css("body.live-on")).await.ok()
    })
    .await;
    let same_page = || async {
        browser
            .execute("return window.hookgateMarker || null;", vec![])
            .await
            .unwrap()
            == serde_json::json!("same page")
    };

    // Signed real payloads, sent over HTTP to the ingress, appear without a reload.
    let mut push: serde_json::Value =
        serde_json::from_slice(&fixture("github/push.branch-updated.json")).unwrap();
    let opened: serde_json::Value =
        serde_json::from_slice(&fixture("github/pull_request.opened.json")).unwrap();
    push["repository"]["id"] = opened["repository"]["id"].clone();
    let push = serde_json::to_vec(&push).unwrap();
    assert_eq!(deliver(&app, &id, &secret, "push", &push).await, 202);
    let row = until(&browser, "the push in the delivery log", || async {
        let rows = browser
            .find_all(Locator::Css("#deliveries tr.delivery"))
            .await
            .ok()?;
        let first = rows.first()?;
        let shown = first.text().await.ok()?;
        (rows.len() == 1 && shown.contains("push") && shown.contains("IGNORED")).then_some(shown)
    })
    .await;
    assert!(same_page().await, "the page was reloaded");
    assert!(row.contains("202"), "{row}");
    assert_eq!(
        deliver(
            &app,
            &id,
            &secret,
            "pull_request",
            &fixture("github/pull_request.opened.json")
        )
        .await,
        202
    );
    until(&browser, "the pull request in the delivery log", || async {
        let rows = browser
            .find_all(Locator::Css("#deliveries tr.delivery"))
            .await
            .ok()?;
        (rows.len() == 2).then_some(())
    })
    .await;
    let health = until(&browser, "the diagnosis IGNORING", || async {
        text(&browser, "#health")
            .await
            .filter(|t| t.contains("IGNORING"))
    })
    .await;
    assert!(health.contains("github.example.com"), "{health}");
    assert!(same_page().await, "the page was reloaded");

    // Fix the receiver's host, open the push and redeliver it: it is processed now.
    browser
        .goto(&format!("{console}/receivers/{id}/edit"))
        .await
        .unwrap();
    fill(&browser, "#urn", "https://github.com").await;
    click(&browser, "form.stack button[type=submit]").await;
    until(&browser, "the notice of the change", || async {
        text(&browser, "p.notice.ok")
            .await
            .filter(|t| t.contains("Saved"))
    })
    .await;
    // Open the push: click its link (looked up again if the live list was just re-fetched).
    until(&browser, "a click on the push's link", || async {
        let rows = browser
            .find_all(Locator::Css("#deliveries tr.delivery"))
            .await
            .ok()?;
        for row in rows {
            if row.text().await.ok()?.contains("push") {
                return row.find(Locator::Css("a")).await.ok()?.click().await.ok();
            }
        }
        None
    })
    .await;
    until(&browser, "the delivery page", || async {
        text(&browser, "#state").await.filter(|t| t == "IGNORED")
    })
    .await;
    let body = text(&browser, "#request-body").await.unwrap();
    assert!(
        body.contains("\"ref\": \"refs/heads/master\""),
        "pretty JSON: {body}"
    );
    browser
        .execute("window.hookgateMarker = 'same page';", vec![])
        .await
        .unwrap();
    click(&browser, "#redeliver").await;
    until(&browser, "the redelivery notice", || async {
        text(&browser, "p.notice.ok")
            .await
            .filter(|t| t.contains("Queued again"))
    })
    .await;
    until(&browser, "the state PROCESSED", || async {
        text(&browser, "#state").await.filter(|t| t == "PROCESSED")
    })
    .await;
    let delivery_id = browser
        .current_url()
        .await
        .unwrap()
        .path()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.get_delivery(&delivery_id).await.state,
        DeliveryState::Processed as i32
    );

    // Wrongly signed deliveries: the diagnosis turns to SIGNATURE_FAILING, live.
    browser
        .goto(&format!("{console}/receivers/{id}"))
        .await
        .unwrap();
    until(&browser, "the live stream", || async {
        browser.find(Locator::Css("body.live-on")).await.ok()
    })
    .await;
    browser
        .execute("window.hookgateMarker = 'same page';", vec![])
        .await
        .unwrap();
    for _ in 0..3 {
        assert_eq!(
            deliver(&app, &id, "a-secret-the-host-got-wrong", "push", &push).await,
            401
        );
    }
    let health = until(&browser, "the diagnosis SIGNATURE_FAILING", || async {
        text(&browser, "#health")
            .await
            .filter(|t| t.contains("SIGNATURE_FAILING"))
    })
    .await;
    assert!(health.contains("secret"), "{health}");
    until(&browser, "the rejected deliveries in the log", || async {
        let rows = browser
            .find_all(Locator::Css("#deliveries tr.delivery"))
            .await
            .ok()?;
        let mut rejected = 0;
        for row in &rows {
            rejected += usize::from(row.text().await.ok()?.contains("REJECTED"));
        }
        (rejected == 3).then_some(())
    })
    .await;
    assert!(same_page().await, "the page was reloaded");

    if screenshot {
        let png = browser.screenshot().await.expect("a screenshot");
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/console-receiver.png");
        std::fs::write(&path, png).expect("the screenshot is written");
    }
    browser.close().await.ok();
    drop(driver);
    app.stop().await;
}
