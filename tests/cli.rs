//! The built `hookgate` binary, driven as an operator would: `serve`, `migrate`, signals, and the
//! admin API through grpcurl.

mod common;

use std::process::Command;
use std::time::Duration;

use common::binary::{Served, grpcurl, grpcurl_available, grpcurl_json};
use common::{Engine, TestDatabase};

async fn an_admin_manages_receivers_with_grpcurl(engine: Engine) {
    if !grpcurl_available() {
        return;
    }
    let db = TestDatabase::new(engine).await;
    let served = Served::start(&db);
    let addr = served.grpc_addr.as_str();

    let (ok, listed, stderr) = grpcurl(&["-plaintext", addr, "list"]);
    assert!(ok, "{stderr}");
    assert!(
        listed.lines().any(|l| l == "hookgate.v1.ReceiverService"),
        "{listed}"
    );
    assert!(
        listed.lines().any(|l| l == "grpc.health.v1.Health"),
        "{listed}"
    );

    let (ok, described, stderr) = grpcurl(&[
        "-plaintext",
        addr,
        "describe",
        "hookgate.v1.ReceiverService",
    ]);
    assert!(ok, "{stderr}");
    for rpc in [
        "CreateReceiver",
        "GetReceiver",
        "ListReceivers",
        "UpdateReceiver",
        "DeleteReceiver",
        "RotateReceiverSecret",
    ] {
        assert!(described.contains(&format!("rpc {rpc}")), "{described}");
    }

    let created = grpcurl_json(&[
        "-plaintext",
        "-d",
        r#"{"name": "github-main", "code_host_kind": "CODE_HOST_KIND_GITHUB", "code_host_urn": "https://GitHub.com"}"#,
        addr,
        "hookgate.v1.ReceiverService/CreateReceiver",
    ]);
    let id = created["receiver"]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    assert_eq!(
        created["receiver"]["url"],
        format!("http://{}/.api/webhooks/{id}", served.http_addr)
    );
    assert_eq!(created["receiver"]["codeHostUrn"], "https://github.com/");
    assert_eq!(created["secret"].as_str().map(str::len), Some(40));

    let got = grpcurl_json(&[
        "-plaintext",
        "-d",
        &format!(r#"{{"id": "{id}"}}"#),
        addr,
        "hookgate.v1.ReceiverService/GetReceiver",
    ]);
    assert_eq!(got["name"], "github-main");
    assert!(got.get("secret").is_none());

    let listed = grpcurl_json(&[
        "-plaintext",
        addr,
        "hookgate.v1.ReceiverService/ListReceivers",
    ]);
    assert_eq!(listed["totalSize"], 1);
    assert_eq!(listed["receivers"][0]["id"], id.as_str());

    let updated = grpcurl_json(&[
        "-plaintext",
        "-d",
        &format!(
            r#"{{"receiver": {{"id": "{id}", "name": "github-renamed", "options": {{"min_sync_interval": "60s"}}}}, "update_mask": {{"paths": ["name", "options.min_sync_interval"]}}}}"#
        ),
        addr,
        "hookgate.v1.ReceiverService/UpdateReceiver",
    ]);
    assert_eq!(updated["name"], "github-renamed");
    assert_eq!(updated["options"]["minSyncInterval"], "60s");

    // The README's session: a single option path, then a rotation with an overlap.
    let filtered = grpcurl_json(&[
        "-plaintext",
        "-d",
        &format!(
            r#"{{"receiver": {{"id": "{id}", "options": {{"push_branch_filter": ["main", "release/*"]}}}}, "update_mask": {{"paths": ["options.push_branch_filter"]}}}}"#
        ),
        addr,
        "hookgate.v1.ReceiverService/UpdateReceiver",
    ]);
    assert_eq!(
        filtered["options"]["pushBranchFilter"],
        serde_json::json!(["main", "release/*"])
    );
    assert_eq!(
        filtered["options"]["minSyncInterval"], "60s",
        "other options are kept"
    );
    let rotated = grpcurl_json(&[
        "-plaintext",
        "-d",
        &format!(r#"{{"id": "{id}", "overlap": "3600s"}}"#),
        addr,
        "hookgate.v1.ReceiverService/RotateReceiverSecret",
    ]);
    assert_eq!(rotated["secret"].as_str().map(str::len), Some(40));
    assert_ne!(rotated["secret"], created["secret"]);
    assert!(rotated["previousSecretExpireTime"].is_string(), "{rotated}");

    let deleted = grpcurl_json(&[
        "-plaintext",
        "-d",
        &format!(r#"{{"id": "{id}"}}"#),
        addr,
        "hookgate.v1.ReceiverService/DeleteReceiver",
    ]);
    assert_eq!(deleted, serde_json::json!({}));

    let (ok, _, stderr) = grpcurl(&[
        "-plaintext",
        "-d",
        &format!(r#"{{"id": "{id}"}}"#),
        addr,
        "hookgate.v1.ReceiverService/GetReceiver",
    ]);
    assert!(!ok);
    assert!(stderr.contains("NotFound"), "{stderr}");

    let (status, log) = served.terminate();
    assert!(status.success(), "{log}");
    db.drop_database().await;
}

on_both_engines!(
    an_admin_manages_receivers_with_grpcurl,
    an_admin_reads_and_redelivers_deliveries_with_grpcurl
);

async fn an_admin_reads_and_redelivers_deliveries_with_grpcurl(engine: Engine) {
    if !grpcurl_available() {
        return;
    }
    let db = TestDatabase::new(engine).await;
    let served = Served::start(&db);
    let addr = served.grpc_addr.as_str();
    let created = grpcurl_json(&[
        "-plaintext",
        "-d",
        r#"{"name": "gitlab", "code_host_kind": "CODE_HOST_KIND_GITLAB", "code_host_urn": "http://example.com"}"#,
        addr,
        "hookgate.v1.ReceiverService/CreateReceiver",
    ]);
    let id = created["receiver"]["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();

    // The test delivery proves URL and secret; then a real push and a forged one.
    let sent = grpcurl_json(&[
        "-plaintext",
        "-d",
        &format!(r#"{{"id": "{id}"}}"#),
        addr,
        "hookgate.v1.ReceiverService/SendTestDelivery",
    ]);
    // A test delivery is recorded as a test: answered 200, nothing applied.
    assert_eq!(sent["httpStatus"], 200, "{sent}");
    let client = reqwest::Client::new();
    let url = format!("http://{}/.api/webhooks/{id}", served.http_addr);
    let push = common::fixture("gitlab/merge_request.open.json");
    for token in [secret.as_str(), "forged-token"] {
        client
            .post(&url)
            .header("x-gitlab-event", "Merge Request Hook")
            .header("x-gitlab-token", token)
            .header("content-type", "application/json")
            .body(push.clone())
            .send()
            .await
            .unwrap();
    }

    let listed = grpcurl_json(&[
        "-plaintext",
        "-d",
        &format!(r#"{{"receiver_id": "{id}"}}"#),
        addr,
        "hookgate.v1.DeliveryService/ListDeliveries",
    ]);
    assert_eq!(listed["totalSize"], 3, "{listed}");
    let rejected = grpcurl_json(&[
        "-plaintext",
        "-d",
        r#"{"states": ["DELIVERY_STATE_REJECTED"]}"#,
        addr,
        "hookgate.v1.DeliveryService/ListDeliveries",
    ]);
    assert_eq!(rejected["totalSize"], 1, "{rejected}");
    assert_eq!(
        rejected["deliveries"][0]["requestHeaders"]["x-gitlab-token"],
        "[REDACTED]"
    );
    let errors = grpcurl_json(&[
        "-plaintext",
        "-d",
        r#"{"only_errors": true}"#,
        addr,
        "hookgate.v1.DeliveryService/ListDeliveries",
    ]);
    assert_eq!(errors["totalSize"], 1, "{errors}");

    let newest = listed["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| {
            d["state"] != "DELIVERY_STATE_REJECTED" && d["event"] == "Merge Request Hook/open"
        })
        .unwrap_or_else(|| panic!("{listed}"));
    let delivery_id = newest["id"].as_str().unwrap().to_owned();
    let mut got = serde_json::Value::Null;
    for _ in 0..100 {
        got = grpcurl_json(&[
            "-plaintext",
            "-d",
            &format!(r#"{{"id": "{delivery_id}"}}"#),
            addr,
            "hookgate.v1.DeliveryService/GetDelivery",
        ]);
        if got["state"] == "DELIVERY_STATE_PROCESSED" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(got["state"], "DELIVERY_STATE_PROCESSED", "{got}");
    // Bodies are bytes: grpcurl shows them base64.
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD
        .decode(got["requestBody"].as_str().unwrap())
        .unwrap();
    assert_eq!(body, push);

    let again = grpcurl_json(&[
        "-plaintext",
        "-d",
        &format!(r#"{{"id": "{delivery_id}"}}"#),
        addr,
        "hookgate.v1.DeliveryService/RedeliverDelivery",
    ]);
    assert_eq!(again["id"], delivery_id.as_str());
    let (status, log) = served.terminate();
    assert!(status.success(), "{log}");
    db.drop_database().await;
}

#[tokio::test]
async fn sigterm_stops_the_service_gracefully_with_exit_code_0() {
    let db = TestDatabase::new(Engine::Sqlite).await;
    let served = Served::start(&db);
    let health = reqwest::get(format!("http://{}/healthz", served.http_addr))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let (status, log) = served.terminate();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("stopped"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_is_not_held_up_by_a_client_watching_the_event_feed() {
    use hookgate::admin::proto::{WatchRequest, event_service_client::EventServiceClient};
    let db = TestDatabase::new(Engine::Sqlite).await;
    let served = Served::start(&db);
    let mut client = EventServiceClient::connect(format!("http://{}", served.grpc_addr))
        .await
        .unwrap();
    let mut stream = client
        .watch(WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    // The client keeps reading, as a real watcher does, while the service is told to stop.
    let reader = tokio::spawn(async move { while let Ok(Some(_)) = stream.message().await {} });
    let (status, log) = tokio::task::spawn_blocking(move || served.terminate())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0), "{log}");
    reader.await.unwrap();
}

#[test]
fn migrate_creates_the_schema_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .arg("migrate")
        .arg("--data-dir")
        .arg(dir.path().join("new-dir"))
        .env_remove("HOOKGATE_DATABASE_URL")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("migrations applied"), "{log}");
    assert!(
        dir.path().join("new-dir/hookgate.db").exists(),
        "the data directory and database are made"
    );
}

#[test]
fn serve_without_a_token_on_a_public_admin_address_exits_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args([
            "serve",
            "--http-addr",
            "127.0.0.1:0",
            "--grpc-addr",
            "0.0.0.0:0",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("HOOKGATE_ADMIN_TOKEN")
        .env_remove("HOOKGATE_DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("set --admin-token"), "{log}");
}

#[test]
fn serve_without_a_token_on_a_public_console_address_exits_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args([
            "serve",
            "--http-addr",
            "127.0.0.1:0",
            "--grpc-addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
            "--console-addr",
            "0.0.0.0:0",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("HOOKGATE_ADMIN_TOKEN")
        .env_remove("HOOKGATE_DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("the console would listen on 0.0.0.0:0 with no admin token")
            && log.contains("set --admin-token")
            && log.contains("--console-addr off"),
        "{log}"
    );
}

#[test]
fn help_shows_every_flag_with_its_environment_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for (flag, env) in [
        ("--http-addr", "HOOKGATE_HTTP_ADDR"),
        ("--grpc-addr", "HOOKGATE_GRPC_ADDR"),
        ("--metrics-addr", "HOOKGATE_METRICS_ADDR"),
        ("--console-addr", "HOOKGATE_CONSOLE_ADDR"),
        ("--metrics-on-ingress", "HOOKGATE_METRICS_ON_INGRESS"),
        ("--public-url", "HOOKGATE_PUBLIC_URL"),
        ("--data-dir", "HOOKGATE_DATA_DIR"),
        ("--database-url", "HOOKGATE_DATABASE_URL"),
        ("--admin-token", "HOOKGATE_ADMIN_TOKEN"),
        ("--log-format", "HOOKGATE_LOG_FORMAT"),
        ("--shutdown-timeout", "HOOKGATE_SHUTDOWN_TIMEOUT"),
        ("--header-read-timeout", "HOOKGATE_HEADER_READ_TIMEOUT"),
        ("--body-read-timeout", "HOOKGATE_BODY_READ_TIMEOUT"),
        ("--max-header-bytes", "HOOKGATE_MAX_HEADER_BYTES"),
        ("--max-connections", "HOOKGATE_MAX_CONNECTIONS"),
        ("--max-inflight-requests", "HOOKGATE_MAX_INFLIGHT_REQUESTS"),
        (
            "--max-buffered-body-bytes",
            "HOOKGATE_MAX_BUFFERED_BODY_BYTES",
        ),
        (
            "--max-admin-message-bytes",
            "HOOKGATE_MAX_ADMIN_MESSAGE_BYTES",
        ),
        ("--secret-key-file", "HOOKGATE_SECRET_KEY_FILE"),
        ("--sqlite-synchronous", "HOOKGATE_SQLITE_SYNCHRONOUS"),
        (
            "--database-max-connections",
            "HOOKGATE_DATABASE_MAX_CONNECTIONS",
        ),
        ("--ingress-only", "HOOKGATE_INGRESS_ONLY"),
        ("--worker-batch", "HOOKGATE_WORKER_BATCH"),
        ("--worker-batch-bytes", "HOOKGATE_WORKER_BATCH_BYTES"),
        ("--worker-chunk", "HOOKGATE_WORKER_CHUNK"),
        ("--worker-chunk-time", "HOOKGATE_WORKER_CHUNK_TIME"),
        ("--worker-yield-after", "HOOKGATE_WORKER_YIELD_AFTER"),
        ("--worker-linger", "HOOKGATE_WORKER_LINGER"),
        ("--worker-retry-backoff", "HOOKGATE_WORKER_RETRY_BACKOFF"),
    ] {
        assert!(
            help.contains(flag) && help.contains(env),
            "{flag} / {env} missing:\n{help}"
        );
    }
}
