//! The admin CLI (`hookgate receiver|delivery|changeset|repository|sync|watch`) driven as an admin
//! types it, against the real `hookgate serve` on both engines: what it prints for people, the
//! JSON it prints for scripts, and the exit codes scripts test.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use base64::Engine as _;
use common::binary::{Served, run_to_exit};
use common::{Engine, TestDatabase, fixture, host_headers};
use hookgate::admin::proto::CodeHostKind;
use serde_json::Value;

/// The actor every command here is run as.
const ACTOR: &str = "cli-tester";

/// `hookgate --grpc-addr <served> <args>` with no token, address or log filter from the
/// environment.
fn hookgate(grpc_addr: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookgate"));
    command
        .env_remove("HOOKGATE_ADMIN_TOKEN")
        .env_remove("HOOKGATE_GRPC_ADDR")
        .env_remove("RUST_LOG")
        .args(["--grpc-addr", grpc_addr])
        .args(args)
        .args(["--actor", ACTOR])
        .stdin(Stdio::null());
    command
}

/// Runs a client subcommand to its end.
fn run(served: &Served, args: &[&str]) -> Output {
    run_to_exit(hookgate(&served.grpc_addr, args))
}

/// Runs a client subcommand that must succeed; returns its stdout.
fn ok(served: &Served, args: &[&str]) -> String {
    let out = run(served, args);
    assert!(
        out.status.success(),
        "hookgate {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("stdout is UTF-8")
}

/// Runs a client subcommand with `--output json` that must succeed; returns what it printed.
fn json(served: &Served, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    let stdout = ok(served, &all);
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("hookgate {args:?} printed JSON ({e}): {stdout}"))
}

/// Asserts that a command failed with `exit_code` and `error: <code name>: ...` on stderr.
fn assert_fails(out: &Output, exit_code: i32, code_name: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(exit_code), "{stderr}");
    assert!(
        stderr.starts_with(&format!("error: {code_name}: ")),
        "{stderr}"
    );
}

/// Creates a receiver with the CLI; returns (id, secret).
fn create_receiver(served: &Served, name: &str, kind: &str, urn: &str) -> (String, String) {
    let created = json(
        served,
        &[
            "receiver",
            "create",
            "--name",
            name,
            "--kind",
            kind,
            "--code-host-urn",
            urn,
        ],
    );
    (
        created["receiver"]["id"]
            .as_str()
            .expect("an id")
            .to_owned(),
        created["secret"].as_str().expect("a secret").to_owned(),
    )
}

/// Posts a signed GitHub delivery of `event` to the receiver; returns the delivery id.
async fn deliver_github(
    served: &Served,
    receiver: &(String, String),
    event: &str,
    body: Vec<u8>,
) -> String {
    let key = uuid::Uuid::new_v4().to_string();
    let mut request = reqwest::Client::new()
        .post(format!(
            "http://{}/.api/webhooks/{}",
            served.http_addr, receiver.0
        ))
        .body(body.clone());
    for (name, value) in host_headers(CodeHostKind::Github, event, &key, Some(&receiver.1), &body) {
        request = request.header(name, value);
    }
    let response = request.send().await.expect("the ingress answers");
    assert!(response.status().is_success(), "{}", response.status());
    let answer: Value = response.json().await.expect("a JSON answer");
    answer["delivery_id"]
        .as_str()
        .expect("a delivery id")
        .to_owned()
}

/// Waits (up to 20 s) until the worker is done with a delivery; returns it as `delivery show
/// --output json` prints it.
fn wait_until_done(served: &Served, id: &str) -> Value {
    for _ in 0..100 {
        let delivery = json(served, &["delivery", "show", id]);
        let state = delivery["state"].as_str().unwrap_or_default();
        if state != "DELIVERY_STATE_PENDING" && state != "DELIVERY_STATE_PROCESSING" {
            return delivery;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("delivery {id} was never processed");
}

/// Starts `hookgate <args>` (a watch), returns the first line it prints, and stops it; fails if it
/// prints nothing within 30 s or exits instead of following the feed.
fn first_watch_line(served: &Served, args: &[&str]) -> String {
    let mut watch = hookgate(&served.grpc_addr, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hookgate watch starts");
    let stdout = watch.stdout.take().expect("stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(30));
    let still_running = watch.try_wait().expect("watch can be polled").is_none();
    watch.kill().expect("watch can be stopped");
    let output = watch.wait_with_output().expect("watch is reaped");
    let first = first.unwrap_or_else(|_| {
        panic!(
            "watch printed nothing: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert!(still_running, "watch follows the feed instead of exiting");
    first
}

async fn an_admin_manages_a_receiver_from_create_to_delete(engine: Engine) {
    let db = TestDatabase::new(engine).await;
    let served = Served::start(&db);

    let created = ok(
        &served,
        &[
            "receiver",
            "create",
            "--name",
            "github-main",
            "--kind",
            "github",
            "--code-host-urn",
            "https://GitHub.com",
            "--min-sync-interval",
            "1m",
        ],
    );
    assert!(
        created.contains("code host urn:      https://github.com/"),
        "{created}"
    );
    assert!(created.contains("min sync interval:  1m"), "{created}");
    let secret_line = created
        .lines()
        .find(|l| l.starts_with("secret:"))
        .unwrap_or_else(|| panic!("the secret is shown on create: {created}"));
    assert_eq!(
        secret_line.split_whitespace().nth(1).map(str::len),
        Some(40)
    );

    let listed = json(&served, &["receiver", "list"]);
    assert_eq!(listed["totalSize"], 1, "{listed}");
    assert_eq!(listed["nextPageToken"], "");
    let receiver = &listed["receivers"][0];
    let id = receiver["id"].as_str().expect("an id").to_owned();
    assert_eq!(receiver["codeHostKind"], "CODE_HOST_KIND_GITHUB");
    assert_eq!(receiver["options"]["minSyncInterval"], "60s");
    assert_eq!(receiver["createdBy"], ACTOR);
    assert!(receiver.get("secret").is_none(), "{receiver}");
    assert_eq!(
        receiver["url"],
        format!("http://{}/.api/webhooks/{id}", served.http_addr)
    );
    let table = ok(&served, &["receiver", "list", "--kind", "github"]);
    assert!(table.starts_with("ID "), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&id) && l.contains("github-main")),
        "{table}"
    );
    let gitlab_only = json(&served, &["receiver", "list", "--kind", "gitlab"]);
    assert_eq!(gitlab_only["totalSize"], 0, "{gitlab_only}");

    let shown = ok(&served, &["receiver", "show", &id]);
    assert!(shown.contains("name:               github-main"), "{shown}");
    assert!(
        !shown.lines().any(|l| l.starts_with("secret:")),
        "the secret is never shown again: {shown}"
    );

    // Only the flags given change: the interval set on create stays.
    let updated = json(
        &served,
        &[
            "receiver",
            "update",
            &id,
            "--name",
            "github-renamed",
            "--push-branch-filter",
            "main,release/*",
        ],
    );
    assert_eq!(updated["name"], "github-renamed");
    assert_eq!(
        updated["options"]["pushBranchFilter"],
        serde_json::json!(["main", "release/*"])
    );
    assert_eq!(updated["options"]["minSyncInterval"], "60s", "{updated}");
    let nothing = run(&served, &["receiver", "update", &id]);
    assert_eq!(nothing.status.code(), Some(2), "an update with no flag");

    let rotated = json(&served, &["receiver", "rotate", &id, "--overlap", "1h"]);
    assert_eq!(rotated["secret"].as_str().map(str::len), Some(40));
    assert!(rotated["previousSecretExpireTime"].is_string(), "{rotated}");
    assert_eq!(rotated["receiver"]["updatedBy"], ACTOR);

    let tested = ok(&served, &["receiver", "test", &id]);
    assert!(tested.contains("http status: 200"), "{tested}");
    assert!(
        tested.contains("message:     test delivery: verified with the receiver's secret"),
        "{tested}"
    );

    let deleted = ok(&served, &["receiver", "delete", &id]);
    assert_eq!(deleted.trim(), format!("deleted receiver {id}"));
    assert_fails(&run(&served, &["receiver", "show", &id]), 15, "NOT_FOUND");

    drop(served);
    db.drop_database().await;
}

async fn an_admin_reads_a_signed_delivery_decoded_and_redelivers_it(engine: Engine) {
    let db = TestDatabase::new(engine).await;
    let served = Served::start(&db);
    let receiver = create_receiver(&served, "github", "github", "https://github.com");

    let opened = fixture("github/pull_request.opened.json");
    let id = deliver_github(&served, &receiver, "pull_request", opened.clone()).await;
    let delivery = wait_until_done(&served, &id);
    assert_eq!(delivery["state"], "DELIVERY_STATE_PROCESSED", "{delivery}");
    assert_eq!(delivery["event"], "pull_request/opened");
    let body = base64::engine::general_purpose::STANDARD
        .decode(delivery["requestBody"].as_str().expect("a base64 body"))
        .expect("the body is base64");
    assert_eq!(body, opened, "--output json gives the body as received");

    let listed = ok(&served, &["delivery", "list", "--receiver", &receiver.0]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&id) && l.contains("pull_request/opened")),
        "{listed}"
    );
    let failed_only = json(&served, &["delivery", "list", "--state", "failed"]);
    assert_eq!(failed_only["totalSize"], 0, "{failed_only}");

    // For people: the headers, and the body decoded and pretty-printed.
    let shown = ok(&served, &["delivery", "show", &id]);
    assert!(shown.contains("  x-github-event: pull_request"), "{shown}");
    assert!(shown.contains("\n  \"action\": \"opened\",\n"), "{shown}");
    assert!(
        shown.contains(&format!("request body ({} bytes):", opened.len())),
        "{shown}"
    );

    let redelivered = json(&served, &["delivery", "redeliver", &id]);
    assert_eq!(redelivered["id"], id.as_str());
    assert_eq!(
        redelivered["state"], "DELIVERY_STATE_PENDING",
        "{redelivered}"
    );
    wait_until_done(&served, &id);

    // A body larger than GetDelivery gives in full comes whole, through StreamDeliveryBody.
    let mut ping: Value = serde_json::from_slice(&fixture("github/ping.json")).unwrap();
    ping["padding"] = Value::from("x".repeat(900 * 1024));
    let large = serde_json::to_vec(&ping).unwrap();
    let large_id = deliver_github(&served, &receiver, "ping", large.clone()).await;
    let whole = wait_until_done(&served, &large_id);
    assert_eq!(
        whole["requestBodyTruncated"], false,
        "the whole body is fetched"
    );
    assert_eq!(whole["requestBodySize"], large.len().to_string());
    let body = base64::engine::general_purpose::STANDARD
        .decode(whole["requestBody"].as_str().expect("a base64 body"))
        .unwrap();
    assert_eq!(body.len(), large.len());
    let shown = ok(&served, &["delivery", "show", &large_id]);
    assert!(
        shown.contains(&format!("request body ({} bytes):", large.len())),
        "the table shows the whole body too"
    );

    // The pull request is now a changeset with a timeline.
    let changesets = json(
        &served,
        &[
            "changeset",
            "list",
            "--repository",
            "Codertocat/Hello-World",
        ],
    );
    assert_eq!(changesets["totalSize"], 1, "{changesets}");
    let changeset = &changesets["changesets"][0];
    assert_eq!(changeset["number"], "2", "int64 is a string in proto3 JSON");
    assert_eq!(changeset["state"], "CHANGESET_STATE_OPEN");
    let changeset_id = changeset["id"].as_str().unwrap().to_owned();
    let table = ok(&served, &["changeset", "list", "--state", "open"]);
    assert!(table.contains("Codertocat/Hello-World  #2"), "{table}");
    let merged = json(&served, &["changeset", "list", "--state", "merged"]);
    assert_eq!(merged["totalSize"], 0);
    let shown = ok(&served, &["changeset", "show", &changeset_id]);
    assert!(
        shown.contains("title:         Update the README with new information."),
        "{shown}"
    );
    assert!(shown.contains("state:         OPEN"), "{shown}");
    assert!(shown.contains("merge queue:   no"), "{shown}");
    assert!(shown.contains("auto-merge:    no"), "{shown}");
    assert_eq!(changeset["inMergeQueue"], false, "{changeset}");
    assert_eq!(changeset["autoMerge"], false, "{changeset}");
    let events = json(&served, &["changeset", "events", &changeset_id]);
    assert_eq!(events["events"][0]["kind"], "opened", "{events}");
    assert_eq!(events["events"][0]["deliveryId"], id.as_str());
    let timeline = ok(&served, &["changeset", "events", &changeset_id]);
    assert!(timeline.contains("opened  Codertocat"), "{timeline}");
    // Put in the merge queue and set to auto-merge (later than the opening): show says so.
    for action in ["enqueued", "auto_merge_enabled"] {
        let mut body: Value =
            serde_json::from_slice(&fixture(&format!("github/pull_request.{action}.json")))
                .unwrap();
        body["pull_request"]["updated_at"] = Value::from("2019-05-15T15:30:00Z");
        let id = deliver_github(
            &served,
            &receiver,
            "pull_request",
            serde_json::to_vec(&body).unwrap(),
        )
        .await;
        wait_until_done(&served, &id);
    }
    let shown = ok(&served, &["changeset", "show", &changeset_id]);
    assert!(shown.contains("merge queue:   yes"), "{shown}");
    assert!(shown.contains("auto-merge:    yes"), "{shown}");
    let shown = json(&served, &["changeset", "show", &changeset_id]);
    assert_eq!(shown["inMergeQueue"], true, "{shown}");
    assert_eq!(shown["autoMerge"], true, "{shown}");

    // watch prints the feed, one line an entry (JSON: one object a line), from --cursor on.
    let line = first_watch_line(&served, &["watch"]);
    assert!(
        line.starts_with("1  ") && line.contains("CHANGESET_UPDATED"),
        "{line}"
    );
    assert!(line.contains("Codertocat/Hello-World#2 OPEN"), "{line}");
    let entry: Value =
        serde_json::from_str(&first_watch_line(&served, &["watch", "--output", "json"]))
            .expect("one JSON object a line");
    assert_eq!(entry["kind"], "EVENT_KIND_CHANGESET_UPDATED", "{entry}");
    assert_eq!(entry["cursor"], "1");
    assert_eq!(entry["changeset"]["id"], changeset_id.as_str());

    drop(served);
    db.drop_database().await;
}

async fn a_sync_worker_claims_and_completes_a_requested_sync(engine: Engine) {
    let db = TestDatabase::new(engine).await;
    let served = Served::start(&db);

    let registered = json(
        &served,
        &[
            "repository",
            "register",
            "--code-host-urn",
            "https://github.com",
            "--name",
            "octo-org/hello-world",
            "--external-id",
            "1296269",
        ],
    );
    assert_eq!(registered["registered"], true, "{registered}");
    assert_eq!(registered["codeHostUrn"], "https://github.com/");
    let repository_id = registered["id"].as_str().unwrap().to_owned();
    let listed = ok(&served, &["repository", "list"]);
    assert!(
        listed.lines().any(|l| l.starts_with(&repository_id)
            && l.contains("octo-org/hello-world")
            && l.contains("yes")),
        "{listed}"
    );

    let requested = json(
        &served,
        &[
            "repository",
            "sync",
            "--code-host-urn",
            "https://github.com",
            "--name",
            "octo-org/hello-world",
        ],
    );
    let request = &requested["syncRequests"][0];
    assert_eq!(
        request["state"], "SYNC_REQUEST_STATE_PENDING",
        "{requested}"
    );
    assert_eq!(request["reason"], "manual");
    let request_id = request["id"].as_str().unwrap().to_owned();
    let by_id = json(&served, &["repository", "sync", &repository_id]);
    assert_eq!(
        by_id["syncRequests"][0]["id"],
        request_id.as_str(),
        "a second request joins the pending one"
    );
    assert_eq!(
        run(&served, &["repository", "sync"]).status.code(),
        Some(2),
        "sync needs to know which repositories"
    );

    let pending = ok(&served, &["sync", "list", "--state", "pending"]);
    assert!(
        pending
            .lines()
            .any(|l| l.starts_with(&request_id) && l.contains("PENDING")),
        "{pending}"
    );
    let claimed = json(
        &served,
        &["sync", "claim", "--worker", "worker-1", "--lease", "10m"],
    );
    assert_eq!(
        claimed["syncRequests"][0]["id"],
        request_id.as_str(),
        "{claimed}"
    );
    assert_eq!(claimed["syncRequests"][0]["worker"], "worker-1");
    assert_eq!(
        claimed["syncRequests"][0]["state"],
        "SYNC_REQUEST_STATE_CLAIMED"
    );
    let none_left = json(&served, &["sync", "claim", "--worker", "worker-2"]);
    assert_eq!(none_left["syncRequests"], serde_json::json!([]));

    let completed = ok(&served, &["sync", "complete", &request_id]);
    assert!(
        completed
            .lines()
            .any(|l| l.starts_with(&request_id) && l.contains("COMPLETED")),
        "{completed}"
    );
    let done = json(&served, &["sync", "list", "--state", "completed"]);
    assert_eq!(done["totalSize"], 1, "{done}");
    assert_eq!(done["syncRequests"][0]["id"], request_id.as_str());

    drop(served);
    db.drop_database().await;
}

async fn failures_exit_with_the_grpc_code_and_its_message(engine: Engine) {
    let db = TestDatabase::new(engine).await;
    let served = Served::start_with(&db, &["--admin-token", "the-admin-token-of-this-test"]);
    let with_token = |args: &[&str], token: &str| {
        let mut command = hookgate(&served.grpc_addr, args);
        command.env("HOOKGATE_ADMIN_TOKEN", token);
        run_to_exit(command)
    };

    assert_fails(&run(&served, &["receiver", "list"]), 26, "UNAUTHENTICATED");
    assert_fails(
        &with_token(&["receiver", "list"], "a-wrong-token"),
        26,
        "UNAUTHENTICATED",
    );
    let listed = with_token(
        &["receiver", "list", "--output", "json"],
        "the-admin-token-of-this-test",
    );
    assert!(listed.status.success(), "{listed:?}");

    let unknown = uuid::Uuid::new_v4().to_string();
    let not_found = with_token(
        &["receiver", "show", &unknown],
        "the-admin-token-of-this-test",
    );
    assert_fails(&not_found, 15, "NOT_FOUND");
    let invalid = with_token(
        &[
            "receiver",
            "create",
            "--name",
            "no-scheme",
            "--kind",
            "github",
            "--code-host-urn",
            "github.com",
        ],
        "the-admin-token-of-this-test",
    );
    assert_fails(&invalid, 13, "INVALID_ARGUMENT");
    assert!(
        String::from_utf8_lossy(&invalid.stderr).contains("code_host_urn"),
        "the server's message is passed on"
    );

    // A watch whose server stops fails with the cursor to resume from.
    let mut watch = hookgate(&served.grpc_addr, &["watch"])
        .env("HOOKGATE_ADMIN_TOKEN", "the-admin-token-of-this-test")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hookgate watch starts");
    std::thread::sleep(Duration::from_millis(500));
    let grpc_addr = served.grpc_addr.clone();
    let (status, log) = served.terminate();
    assert!(status.success(), "{log}");
    let stopped = wait_with_timeout(&mut watch, Duration::from_secs(30));
    let stderr = std::io::read_to_string(watch.stderr.take().unwrap()).unwrap();
    assert_eq!(stopped.code(), Some(24), "{stderr}");
    assert!(stderr.starts_with("error: UNAVAILABLE: "), "{stderr}");
    assert!(stderr.contains("--cursor 0"), "{stderr}");

    // Nothing listens there any more.
    let unavailable = run_to_exit(hookgate(&grpc_addr, &["receiver", "list"]));
    assert_fails(&unavailable, 24, "UNAVAILABLE");
    assert!(
        String::from_utf8_lossy(&unavailable.stderr).contains("hookgate serve"),
        "the message says what to check"
    );

    db.drop_database().await;
}

async fn an_admin_reads_a_receivers_health_and_the_diagnosis_of_each(engine: Engine) {
    let db = TestDatabase::new(engine).await;
    let served = Served::start(&db);
    let receiver = create_receiver(&served, "github", "github", "https://github.com");

    // Nothing has come yet: the sentence says which URL to paste, and the exit code says
    // "not healthy" to a script.
    let fresh = run(&served, &["receiver", "health", &receiver.0]);
    assert_eq!(fresh.status.code(), Some(1), "{fresh:?}");
    let stdout = String::from_utf8_lossy(&fresh.stdout);
    assert!(stdout.contains("diagnosis:     NEVER_RECEIVED"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "http://{}/.api/webhooks/{}",
            served.http_addr, receiver.0
        )),
        "{stdout}"
    );
    assert!(
        String::from_utf8_lossy(&fresh.stderr).starts_with("error: the receiver is NEVER_RECEIVED"),
        "{fresh:?}"
    );

    let id = deliver_github(
        &served,
        &receiver,
        "pull_request",
        fixture("github/pull_request.opened.json"),
    )
    .await;
    wait_until_done(&served, &id);
    let shown = ok(&served, &["receiver", "health", &receiver.0]);
    assert!(shown.contains("diagnosis:     HEALTHY"), "{shown}");
    assert!(
        shown
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["processed", "1", "1"]),
        "{shown}"
    );
    let health = json(&served, &["receiver", "health", &receiver.0]);
    assert_eq!(health["diagnosis"], "DIAGNOSIS_HEALTHY", "{health}");
    assert_eq!(health["lastHour"]["accepted"], "1", "int64 as a string");
    assert_eq!(health["lastDay"]["rateLimited"], "0");
    assert!(health["lastAcceptedTime"].is_string(), "{health}");
    assert!(
        health.get("lastError").is_none(),
        "unset messages are left out"
    );

    let other = create_receiver(&served, "gitlab", "gitlab", "https://gitlab.example.com");
    let table = ok(&served, &["receiver", "list", "--health"]);
    assert!(
        table.lines().next().unwrap().ends_with("DIAGNOSIS"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&receiver.0) && l.ends_with("HEALTHY")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&other.0) && l.ends_with("NEVER_RECEIVED")),
        "{table}"
    );
    let listed = json(&served, &["receiver", "list", "--health"]);
    assert_eq!(
        listed["receivers"][1]["health"]["diagnosis"], "DIAGNOSIS_NEVER_RECEIVED",
        "{listed}"
    );
    let plain = json(&served, &["receiver", "list"]);
    assert!(
        plain["receivers"][0].get("health").is_none(),
        "the plain list has no health: {plain}"
    );
    assert_fails(
        &run(&served, &["receiver", "health", "not-a-uuid"]),
        13,
        "INVALID_ARGUMENT",
    );

    drop(served);
    db.drop_database().await;
}

async fn an_admin_redelivers_every_match_page_by_page_and_lists_by_event_and_unmatched(
    engine: Engine,
) {
    let db = TestDatabase::new(engine).await;
    let served = Served::start(&db);
    let receiver = create_receiver(&served, "github", "github", "https://github.com");
    let opened = fixture("github/pull_request.opened.json");
    let mut ids = Vec::new();
    for _ in 0..2 {
        let id = deliver_github(&served, &receiver, "pull_request", opened.clone()).await;
        wait_until_done(&served, &id);
        ids.push(id);
    }
    let ping = deliver_github(&served, &receiver, "ping", fixture("github/ping.json")).await;
    wait_until_done(&served, &ping);

    let by_event = json(
        &served,
        &["delivery", "list", "--event", "pull_request/opened"],
    );
    assert_eq!(by_event["totalSize"], 2, "{by_event}");
    let pings = ok(&served, &["delivery", "list", "--event", "ping"]);
    assert_eq!(pings.lines().count(), 2, "the titles and one row: {pings}");
    assert!(pings.lines().nth(1).unwrap().starts_with(&ping), "{pings}");

    // Nothing failed: the default (failed) matches none.
    let none = json(
        &served,
        &["delivery", "redeliver-all", "--receiver", &receiver.0],
    );
    assert_eq!(none["matched"], "0", "{none}");
    let dry = ok(
        &served,
        &[
            "delivery",
            "redeliver-all",
            "--receiver",
            &receiver.0,
            "--state",
            "processed",
            "--dry-run",
        ],
    );
    assert!(dry.contains("matched: 3"), "{dry}");
    assert!(
        dry.contains("queued:  0 (dry run: nothing changed)"),
        "{dry}"
    );
    let shown = json(&served, &["delivery", "show", &ids[0]]);
    assert_eq!(shown["redeliveredBy"], "", "a dry run changes nothing");

    // One a call: the command follows the tokens until every match is queued.
    let since = json(&served, &["delivery", "show", &ids[0]])["receiveTime"]
        .as_str()
        .unwrap()
        .to_owned();
    let all = json(
        &served,
        &[
            "delivery",
            "redeliver-all",
            "--receiver",
            &receiver.0,
            "--state",
            "processed",
            "--since",
            &since,
            "--page-size",
            "1",
        ],
    );
    assert_eq!(all["matched"], "3", "{all}");
    assert_eq!(all["queued"], "3", "{all}");
    assert_eq!(all["alreadyQueued"], "0", "{all}");
    assert_eq!(all["calls"], 3, "{all}");
    for id in ids.iter().chain([&ping]) {
        let done = wait_until_done(&served, id);
        assert_eq!(done["redeliveredBy"], ACTOR, "{done}");
        assert_eq!(done["state"], "DELIVERY_STATE_PROCESSED", "{done}");
    }
    let table = ok(&served, &["delivery", "show", &ids[1]]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("redelivered:") && l.ends_with(&format!("by {ACTOR}"))),
        "{table}"
    );

    let refused = run(
        &served,
        &[
            "delivery",
            "redeliver-all",
            "--receiver",
            &receiver.0,
            "--state",
            "pending",
        ],
    );
    assert_fails(&refused, 13, "INVALID_ARGUMENT");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("cannot be redelivered"),
        "{refused:?}"
    );
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_fails(
        &run(
            &served,
            &["delivery", "redeliver-all", "--receiver", &unknown],
        ),
        15,
        "NOT_FOUND",
    );

    // An old URL still set at a code host.
    for _ in 0..2 {
        let answer = reqwest::Client::new()
            .post(format!(
                "http://{}/.api/webhooks/{unknown}",
                served.http_addr
            ))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 404);
    }
    let unmatched = ok(&served, &["delivery", "unmatched"]);
    assert!(unmatched.starts_with("RECEIVER ID"), "{unmatched}");
    let row: Vec<&str> = unmatched
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(&row[..2], [unknown.as_str(), "2"], "{unmatched}");
    let unmatched = json(&served, &["delivery", "unmatched"]);
    assert_eq!(unmatched["receivers"][0]["receiverId"], unknown.as_str());
    assert_eq!(unmatched["receivers"][0]["count"], "2", "{unmatched}");
    assert!(unmatched["receivers"][0]["lastTime"].is_string());

    drop(served);
    db.drop_database().await;
}

/// Waits up to `limit` for a child to exit; kills it and fails the test past that.
fn wait_with_timeout(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().expect("the child can be polled") {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().ok();
    panic!("the command did not exit within {limit:?}");
}

on_both_engines!(
    an_admin_manages_a_receiver_from_create_to_delete,
    an_admin_reads_a_signed_delivery_decoded_and_redelivers_it,
    a_sync_worker_claims_and_completes_a_requested_sync,
    failures_exit_with_the_grpc_code_and_its_message,
    an_admin_reads_a_receivers_health_and_the_diagnosis_of_each,
    an_admin_redelivers_every_match_page_by_page_and_lists_by_event_and_unmatched,
    an_admin_gives_a_gitlab_receiver_a_signing_token_and_rotates_it,
    an_admin_makes_a_gitea_receiver_with_kind_gitea,
    an_admin_makes_an_azure_devops_receiver_of_an_organization_url_only,
);

async fn an_admin_gives_a_gitlab_receiver_a_signing_token_and_rotates_it(engine: Engine) {
    let db = TestDatabase::new(engine).await;
    let served = Served::start(&db);
    let created = json(
        &served,
        &[
            "receiver",
            "create",
            "--name",
            "gitlab",
            "--kind",
            "gitlab",
            "--code-host-urn",
            "https://gitlab.example.com",
            "--generate-signing-token",
            "--signature-tolerance",
            "10m",
        ],
    );
    let first = created["signingToken"]
        .as_str()
        .expect("a token")
        .to_owned();
    hookgate::receivers::SigningToken::parse(&first).expect("a valid token");
    assert_eq!(created["receiver"]["hasSigningToken"], true, "{created}");
    assert_eq!(
        created["receiver"]["options"]["signatureTolerance"], "600s",
        "{created}"
    );
    let id = created["receiver"]["id"].as_str().unwrap().to_owned();

    let shown = ok(&served, &["receiver", "show", &id]);
    let line = |name: &str| {
        shown
            .lines()
            .find(|l| l.starts_with(&format!("{name}:")))
            .map(|l| l.split_once(':').unwrap().1.trim().to_owned())
    };
    assert_eq!(line("signing token").as_deref(), Some("yes"), "{shown}");
    assert_eq!(line("require signature").as_deref(), Some("yes"), "{shown}");
    assert!(!shown.contains(&first[6..]), "the token is shown again");

    let updated = json(
        &served,
        &["receiver", "update", &id, "--require-signature", "false"],
    );
    assert_eq!(updated["options"]["requireSignature"], false, "{updated}");

    let rotated = json(
        &served,
        &["receiver", "rotate-signing-token", &id, "--overlap", "1h"],
    );
    let second = rotated["signingToken"].as_str().unwrap();
    assert_ne!(second, first);
    assert!(
        rotated["previousSigningTokenExpireTime"].is_string(),
        "{rotated}"
    );
    let given = hookgate::receivers::SigningToken::generate();
    let rotated = json(
        &served,
        &[
            "receiver",
            "rotate-signing-token",
            &id,
            "--signing-token",
            given.expose(),
        ],
    );
    assert_eq!(rotated["signingToken"], given.expose());
    assert!(rotated.get("previousSigningTokenExpireTime").is_none());

    // Not on another kind; not a malformed token.
    let (github, _) = create_receiver(&served, "github", "github", "https://github.com");
    let refused = run(&served, &["receiver", "rotate-signing-token", &github]);
    assert_fails(&refused, 13, "INVALID_ARGUMENT");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("only GITLAB receivers"),
        "{refused:?}"
    );
    let refused = run(
        &served,
        &[
            "receiver",
            "rotate-signing-token",
            &id,
            "--signing-token",
            "not-a-token",
        ],
    );
    assert_fails(&refused, 13, "INVALID_ARGUMENT");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("whsec_"),
        "{refused:?}"
    );
    drop(served);
    db.drop_database().await;
}

/// `--kind gitea` makes a Gitea (and Forgejo) receiver, and lists by it.
async fn an_admin_makes_a_gitea_receiver_with_kind_gitea(engine: Engine) {
    let db = TestDatabase::new(engine).await;
    let served = Served::start(&db);
    let created = json(
        &served,
        &[
            "receiver",
            "create",
            "--name",
            "codeberg",
            "--kind",
            "gitea",
            "--code-host-urn",
            "https://codeberg.org",
        ],
    );
    assert_eq!(
        created["receiver"]["codeHostKind"], "CODE_HOST_KIND_GITEA",
        "{created}"
    );
    let gitea = json(&served, &["receiver", "list", "--kind", "gitea"]);
    assert_eq!(gitea["totalSize"], 1, "{gitea}");
    let github = json(&served, &["receiver", "list", "--kind", "github"]);
    assert_eq!(github["totalSize"], 0, "{github}");
}

/// `--kind azure-devops` makes an Azure DevOps receiver of an organization URL; a URL that
/// names no organization, the old visualstudio.com address or plain http is INVALID_ARGUMENT
/// with the server's message, and so is changing the URN to one.
async fn an_admin_makes_an_azure_devops_receiver_of_an_organization_url_only(engine: Engine) {
    let db = TestDatabase::new(engine).await;
    let served = Served::start(&db);
    let created = json(
        &served,
        &[
            "receiver",
            "create",
            "--name",
            "fabrikam",
            "--kind",
            "azure-devops",
            "--code-host-urn",
            "https://dev.azure.com/fabrikam",
        ],
    );
    assert_eq!(
        created["receiver"]["codeHostKind"], "CODE_HOST_KIND_AZURE_DEVOPS",
        "{created}"
    );
    assert_eq!(
        created["receiver"]["codeHostUrn"], "https://dev.azure.com/fabrikam/",
        "{created}"
    );
    let azure = json(&served, &["receiver", "list", "--kind", "azure_devops"]);
    assert_eq!(azure["totalSize"], 1, "{azure}");

    for (urn, says) in [
        (
            "https://dev.azure.com/",
            "must name exactly the organization",
        ),
        (
            "https://fabrikam.visualstudio.com/",
            "give https://dev.azure.com/fabrikam/",
        ),
        ("http://dev.azure.com/fabrikam/", "must use https"),
    ] {
        let refused = run(
            &served,
            &[
                "receiver",
                "create",
                "--name",
                "refused",
                "--kind",
                "azure-devops",
                "--code-host-urn",
                urn,
            ],
        );
        assert_fails(&refused, 13, "INVALID_ARGUMENT");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            stderr.contains("code_host_urn") && stderr.contains(says),
            "{urn}: {stderr}"
        );
    }
    // Nor can the receiver's URN be changed to one.
    let id = created["receiver"]["id"].as_str().expect("an id");
    let refused = run(
        &served,
        &[
            "receiver",
            "update",
            id,
            "--code-host-urn",
            "https://dev.azure.com/",
        ],
    );
    assert_fails(&refused, 13, "INVALID_ARGUMENT");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("must name exactly the organization"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let moved = json(
        &served,
        &[
            "receiver",
            "update",
            id,
            "--code-host-urn",
            "https://dev.azure.com/contoso",
        ],
    );
    assert_eq!(
        moved["codeHostUrn"], "https://dev.azure.com/contoso/",
        "{moved}"
    );

    // The same URN is fine for a kind that is not Azure DevOps.
    let github = json(
        &served,
        &[
            "receiver",
            "create",
            "--name",
            "not-azure",
            "--kind",
            "github",
            "--code-host-urn",
            "https://dev.azure.com/",
        ],
    );
    assert_eq!(github["receiver"]["codeHostKind"], "CODE_HOST_KIND_GITHUB");
    drop(served);
    db.drop_database().await;
}
