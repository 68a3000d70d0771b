//! The built binary as an operator watches it: `/metrics` counts known deliveries exactly, by
//! receiver, kind and outcome; `--log-format json` logs JSON lines with a request id and never
//! a secret, token, trigger path secret or body; SIGTERM lets an in-flight delivery finish and
//! exits 0, and `--shutdown-timeout` bounds how long a request that never ends can hold it up.
//! A fresh service shows every series the README's Metrics section lists, at 0, for every label
//! value it names; a duplicate's log line names the one stored delivery.

mod common;

use std::time::{Duration, Instant};

use clap::Parser;
use common::binary::Served;
use common::prometheus::{self, Exposition};
use common::{Engine, TestDatabase, fixture, host_headers, raw_http};
use hookgate::admin::proto::CodeHostKind::{Generic, Github as Gh, Gitlab as Gl};
use sea_orm::{ConnectionTrait, Database};

/// POSTs to `path` on the served binary; returns the status and the request id header.
async fn post(
    served: &Served,
    path: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .post(format!("http://{}{path}", served.http_addr))
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.expect("the ingress answers");
    let request_id = response
        .headers()
        .get("x-hookgate-request-id")
        .expect("every delivery answer has a request id")
        .to_str()
        .unwrap()
        .to_owned();
    (response.status().as_u16(), request_id)
}

fn key() -> String {
    uuid::Uuid::new_v4().to_string()
}

on_both_engines!(
    metrics_count_known_deliveries_by_receiver_kind_and_outcome,
    metrics_are_served_on_their_own_listener_and_on_the_ingress_only_when_asked,
    a_fresh_service_shows_every_series_the_readme_documents_at_zero,
    a_duplicate_deliverys_log_line_names_only_the_stored_delivery,
    a_steady_stream_is_claimed_in_batches_after_the_linger,
);

/// Scrapes until the worker has processed `processed` deliveries and the queue is empty (up to
/// 30 s); returns that exposition.
async fn once_processed(served: &Served, processed: f64) -> Exposition {
    for _ in 0..300 {
        let metrics = prometheus::scrape(&served.metrics_addr).await;
        let done = metrics.count(
            "hookgate_delivery_processing_duration_seconds_count",
            &[("outcome", "processed")],
        );
        if done >= processed && metrics.get("hookgate_delivery_queue_depth", &[]) == Some(0.0) {
            return metrics;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{processed} deliveries were not processed within 30 s:\n{}",
        served.log()
    );
}

/// The worker's claims so far and the deliveries they took, from `hookgate_worker_claim_size`.
fn claims(metrics: &Exposition) -> (f64, f64) {
    (
        metrics.count("hookgate_worker_claim_size_count", &[]),
        metrics.count("hookgate_worker_claim_size_sum", &[]),
    )
}

/// `--worker-linger`: after a claim that found deliveries but not a full batch, the worker
/// waits until the linger since that claim has passed before it claims again, so what arrives
/// meanwhile is claimed as one batch. The first push, after a quiet spell, is claimed alone; the
/// ten posted once it was processed (well within the 5 s linger) are claimed together, and
/// `hookgate_worker_claim_size` counts two claims, of 1 and 10. Without the linger the worker,
/// woken by each commit, would claim the ten a few at a time.
async fn a_steady_stream_is_claimed_in_batches_after_the_linger(engine: Engine) {
    let db = TestDatabase::new(engine).await;
    let served = Served::start_with(&db, &["--worker-linger", "5s"]);
    let (gh, secret) = served
        .create_receiver("github", Gh, "https://github.com", 0)
        .await;
    let path = format!("/.api/webhooks/{gh}");
    let push = fixture("github/push.branch-updated.json");
    let send = |k: String| {
        let headers = host_headers(Gh, "push", &k, Some(&secret), &push);
        let (served, path, body) = (&served, &path, push.clone());
        async move { post(served, path, &headers, body).await }
    };

    assert_eq!(send(key()).await.0, 202);
    let metrics = once_processed(&served, 1.0).await;
    assert_eq!(
        claims(&metrics),
        (1.0, 1.0),
        "the first push is claimed alone"
    );

    for _ in 0..10 {
        assert_eq!(send(key()).await.0, 202);
    }
    let metrics = once_processed(&served, 11.0).await;
    assert_eq!(
        claims(&metrics),
        (2.0, 11.0),
        "the ten pushes that arrived during the linger are one claim"
    );
    // The ten were one group-commit or more, each of at least one delivery.
    let commits = metrics.count("hookgate_intake_batch_size_count", &[]);
    assert!((2.0..=11.0).contains(&commits), "{commits} intake commits");
    assert_eq!(metrics.count("hookgate_intake_batch_size_sum", &[]), 11.0);
}

async fn metrics_count_known_deliveries_by_receiver_kind_and_outcome(engine: Engine) {
    let db = TestDatabase::new(engine).await;
    let served = Served::start(&db);
    let (gh, gh_secret) = served
        .create_receiver("github", Gh, "https://github.com", 0)
        .await;
    let (gl, gl_token) = served
        .create_receiver("gitlab", Gl, "http://example.com", 1)
        .await;
    let gh_path = format!("/.api/webhooks/{gh}");
    let gl_path = format!("/.api/webhooks/{gl}");

    let push = fixture("github/push.branch-updated.json");
    let repeated = key();
    for (k, want) in [(repeated.clone(), 202), (key(), 202), (repeated, 200)] {
        let headers = host_headers(Gh, "push", &k, Some(&gh_secret), &push);
        assert_eq!(
            post(&served, &gh_path, &headers, push.clone()).await.0,
            want
        );
    }
    let ping = fixture("github/ping.json");
    let headers = host_headers(Gh, "ping", &key(), Some(&gh_secret), &ping);
    assert_eq!(post(&served, &gh_path, &headers, ping).await.0, 200);
    let watch = br#"{"action": "started"}"#.to_vec();
    let headers = host_headers(Gh, "watch", &key(), Some(&gh_secret), &watch);
    assert_eq!(post(&served, &gh_path, &headers, watch).await.0, 200);
    let headers = host_headers(Gh, "push", &key(), Some("wrong-secret"), &push);
    assert_eq!(post(&served, &gh_path, &headers, push.clone()).await.0, 401);

    let gl_push = fixture("gitlab/push.json");
    for want in [202, 429] {
        let headers = host_headers(Gl, "Push Hook", &key(), Some(&gl_token), &gl_push);
        assert_eq!(
            post(&served, &gl_path, &headers, gl_push.clone()).await.0,
            want
        );
    }
    let stranger = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        post(
            &served,
            &format!("/.api/webhooks/{stranger}"),
            &[],
            b"{}".to_vec()
        )
        .await
        .0,
        404
    );
    assert_eq!(
        post(&served, "/.api/webhooks/not-a-uuid", &[], b"{}".to_vec())
            .await
            .0,
        400
    );

    // The three accepted pushes are processed; then every count is final.
    let mut metrics = Exposition::default();
    for _ in 0..200 {
        metrics = prometheus::scrape(&served.metrics_addr).await;
        let processed = metrics.count(
            "hookgate_delivery_processing_duration_seconds_count",
            &[("outcome", "processed")],
        );
        if processed >= 3.0 && metrics.get("hookgate_delivery_queue_depth", &[]) == Some(0.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let by = |receiver: &str, kind: &str, outcome: &str| {
        metrics.count(
            "hookgate_deliveries_total",
            &[("receiver", receiver), ("kind", kind), ("outcome", outcome)],
        )
    };
    assert_eq!(by(&gh, "GITHUB", "accepted"), 2.0);
    assert_eq!(by(&gh, "GITHUB", "duplicate"), 1.0);
    assert_eq!(by(&gh, "GITHUB", "ping"), 1.0);
    assert_eq!(by(&gh, "GITHUB", "ignored"), 1.0);
    assert_eq!(by(&gh, "GITHUB", "rejected"), 1.0);
    assert_eq!(by(&gl, "GITLAB", "accepted"), 1.0);
    assert_eq!(by(&gl, "GITLAB", "rate_limited"), 1.0);
    assert_eq!(metrics.sum("hookgate_deliveries_total", &[]), 8.0);
    assert_eq!(
        metrics.count(
            "hookgate_deliveries_rejected_total",
            &[("receiver", &gh), ("kind", "GITHUB")]
        ),
        1.0
    );
    assert_eq!(
        metrics.count(
            "hookgate_deliveries_rate_limited_total",
            &[("receiver", &gl), ("kind", "GITLAB")]
        ),
        1.0
    );
    assert_eq!(
        metrics.count("hookgate_deliveries_unknown_receiver_total", &[]),
        1.0
    );
    let requests =
        |outcome: &str| metrics.count("hookgate_ingress_requests_total", &[("outcome", outcome)]);
    assert_eq!(requests("accepted"), 3.0);
    assert_eq!(requests("unknown_receiver"), 1.0);
    assert_eq!(requests("bad_request"), 1.0);
    assert_eq!(metrics.sum("hookgate_ingress_requests_total", &[]), 10.0);

    // Latency is a histogram with millisecond-scale buckets.
    assert_eq!(
        metrics.count(
            "hookgate_ingress_request_duration_seconds_count",
            &[("outcome", "accepted")]
        ),
        3.0
    );
    for le in ["0.001", "0.005", "0.05", "+Inf"] {
        assert!(
            metrics
                .get(
                    "hookgate_ingress_request_duration_seconds_bucket",
                    &[("outcome", "accepted"), ("le", le)]
                )
                .is_some(),
            "bucket le={le}"
        );
    }
    assert_eq!(
        metrics.count(
            "hookgate_delivery_processing_duration_seconds_count",
            &[("outcome", "processed")]
        ),
        3.0
    );
    assert_eq!(metrics.get("hookgate_delivery_queue_depth", &[]), Some(0.0));
    assert_eq!(
        metrics.get("hookgate_delivery_queue_oldest_age_seconds", &[]),
        Some(0.0)
    );
    // The GitHub pushes were coalesced into one sync request; the GitLab push made another.
    assert_eq!(
        metrics.get("hookgate_sync_requests_pending", &[]),
        Some(2.0)
    );
    assert_eq!(metrics.get("hookgate_database_up", &[]), Some(1.0));
    assert_eq!(
        metrics.get("hookgate_ingress_inflight_requests", &[]),
        Some(0.0)
    );
    assert_eq!(
        metrics.get("hookgate_ingress_buffered_body_bytes", &[]),
        Some(0.0)
    );

    // Every name is hookgate's, and nothing a stranger sent became a label.
    for sample in &metrics.samples {
        assert!(sample.name.starts_with("hookgate_"), "{}", sample.name);
        for value in sample.labels.values() {
            assert!(value != &stranger && value != "not-a-uuid", "{sample:?}");
        }
    }
    for name in metrics.types.keys() {
        assert!(name.starts_with("hookgate_"), "{name}");
    }
    let (status, log) = served.terminate();
    assert!(status.success(), "{log}");
    db.drop_database().await;
}

/// One row of the README's metrics table: the name, the type and the label names.
struct Documented {
    name: String,
    kind: String,
    labels: Vec<String>,
}

/// The words in backticks in `text`.
fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The README's Metrics section: every metric of its table, the ingress outcomes it lists, and
/// the worker's outcomes (listed in the processing-duration row).
fn documented_metrics() -> (Vec<Documented>, Vec<String>, Vec<String>) {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("the README");
    let section = readme
        .split("\n## Metrics\n")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("the README has a Metrics section");
    let mut metrics = Vec::new();
    let mut worker_outcomes = Vec::new();
    for row in section.lines().filter(|l| l.starts_with("| `hookgate_")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let name = backticked(cells[1]).remove(0);
        if name == "hookgate_delivery_processing_duration_seconds" {
            worker_outcomes = backticked(cells[4]);
        }
        metrics.push(Documented {
            name,
            kind: cells[2].to_owned(),
            labels: backticked(cells[3]),
        });
    }
    let ingress_outcomes = section
        .split("The ingress outcomes:")
        .nth(1)
        .and_then(|s| s.split("\nA 431").next())
        .map(backticked)
        .expect("the README lists the ingress outcomes");
    (metrics, ingress_outcomes, worker_outcomes)
}

async fn a_fresh_service_shows_every_series_the_readme_documents_at_zero(engine: Engine) {
    let (documented, ingress_outcomes, worker_outcomes) = documented_metrics();
    // A README that could not be read this way would prove nothing.
    assert!(documented.len() >= 19, "{} metrics", documented.len());
    assert!(ingress_outcomes.len() >= 16, "{ingress_outcomes:?}");
    assert_eq!(
        worker_outcomes,
        ["processed", "ignored", "retry", "failed", "lost"]
    );

    let db = TestDatabase::new(engine).await;
    let served = Served::start(&db);
    let (receiver, _) = served
        .create_receiver("quiet", Gl, "https://gitlab.com", 0)
        .await;
    let metrics = prometheus::scrape(&served.metrics_addr).await;
    let mut missing = Vec::new();
    for metric in &documented {
        let outcomes = if metric.name.starts_with("hookgate_delivery_processing_") {
            &worker_outcomes
        } else {
            &ingress_outcomes
        };
        // Every combination of the label values a fresh service knows.
        let mut series: Vec<Vec<(&str, &str)>> = vec![Vec::new()];
        for label in &metric.labels {
            let values: Vec<&str> = match label.as_str() {
                "outcome" => outcomes.iter().map(String::as_str).collect(),
                "receiver" => vec![receiver.as_str()],
                "kind" => vec!["GITLAB"],
                "version" => vec![env!("CARGO_PKG_VERSION")],
                other => panic!("the test does not know the label {other:?}: teach it"),
            };
            series = series
                .into_iter()
                .flat_map(|s| {
                    values.iter().map(move |v| {
                        let mut s = s.clone();
                        s.push((label.as_str(), *v));
                        s
                    })
                })
                .collect();
        }
        let (sample, at_zero) = match metric.kind.as_str() {
            "histogram" => (format!("{}_count", metric.name), true),
            "counter" => (metric.name.clone(), true),
            // Gauges say what is now (an open connection, the database up), not 0.
            _ => (metric.name.clone(), false),
        };
        for labels in series {
            match metrics.get(&sample, &labels) {
                None => missing.push(format!("{sample} {labels:?}")),
                Some(value) if at_zero && value != 0.0 => {
                    missing.push(format!("{sample} {labels:?} is {value}, not 0"))
                }
                Some(_) => {}
            }
        }
    }
    assert!(
        missing.is_empty(),
        "series the README documents that a fresh service does not show at 0:\n{}",
        missing.join("\n")
    );
    drop(served);
    db.drop_database().await;
}

/// POSTs a signed GitHub push with delivery key `key` to `receiver`; returns the status, the
/// request id and the delivery id answered.
async fn deliver_push(
    served: &Served,
    receiver: &str,
    secret: &str,
    key: &str,
) -> (u16, String, String) {
    let push = fixture("github/push.branch-updated.json");
    let mut request = reqwest::Client::new()
        .post(format!(
            "http://{}/.api/webhooks/{receiver}",
            served.http_addr
        ))
        .body(push.clone());
    for (name, value) in host_headers(Gh, "push", key, Some(secret), &push) {
        request = request.header(name, value);
    }
    let response = request.send().await.expect("the ingress answers");
    let status = response.status().as_u16();
    let request_id = response.headers()["x-hookgate-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: serde_json::Value = response.json().await.expect("a JSON answer");
    let delivery = body["delivery_id"]
        .as_str()
        .expect("a delivery id")
        .to_owned();
    (status, request_id, delivery)
}

async fn a_duplicate_deliverys_log_line_names_only_the_stored_delivery(engine: Engine) {
    let db = TestDatabase::new(engine).await;
    let served = Served::start(&db);
    let (gh, secret) = served
        .create_receiver("github", Gh, "https://github.com", 0)
        .await;
    let key = key();
    let (status, first_request, stored) = deliver_push(&served, &gh, &secret, &key).await;
    assert_eq!(status, 202);
    let (status, second_request, answered) = deliver_push(&served, &gh, &secret, &key).await;
    assert_eq!(status, 200);
    assert_eq!(
        answered, stored,
        "a duplicate is answered with the stored delivery's id"
    );

    let (status, log) = served.terminate();
    assert!(status.success(), "{log}");
    for request_id in [&first_request, &second_request] {
        let line = log
            .lines()
            .find(|l| l.contains(request_id.as_str()) && l.contains("delivery answered"))
            .unwrap_or_else(|| panic!("a line for request {request_id}:\n{log}"));
        let named: Vec<&str> = line
            .split_whitespace()
            .filter_map(|word| word.strip_prefix("delivery="))
            .map(|id| id.trim_end_matches(['}', ':', ',']))
            .collect();
        assert_eq!(named, [stored.as_str()], "{line}");
    }
    db.drop_database().await;
}

/// `GET /metrics` on the ingress: the status and the body.
async fn metrics_on_the_ingress(served: &Served) -> (u16, String) {
    let response = reqwest::get(format!("http://{}/metrics", served.http_addr))
        .await
        .expect("the ingress answers");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

async fn metrics_are_served_on_their_own_listener_and_on_the_ingress_only_when_asked(
    engine: Engine,
) {
    let db = TestDatabase::new(engine).await;
    let served = Served::start(&db);
    let (id, _) = served
        .create_receiver("listed", Gh, "https://github.com", 0)
        .await;
    let push = fixture("github/push.branch-updated.json");
    let headers = host_headers(Gh, "push", &key(), Some("wrong-secret"), &push);
    let path = format!("/.api/webhooks/{id}");
    assert_eq!(post(&served, &path, &headers, push).await.0, 401);

    // The metrics listener names the receiver (and is on loopback, as by default)...
    assert!(
        served.metrics_addr.starts_with("127.0.0.1:"),
        "{}",
        served.metrics_addr
    );
    let metrics = prometheus::scrape(&served.metrics_addr).await;
    assert_eq!(
        metrics.count(
            "hookgate_deliveries_rejected_total",
            &[("receiver", id.as_str()), ("kind", "GITHUB")]
        ),
        1.0
    );
    // ...and whoever reaches the ingress learns nothing of it.
    let (status, body) = metrics_on_the_ingress(&served).await;
    assert_eq!(status, 404, "{body}");
    assert!(!body.contains(&id), "{body}");
    drop(served);

    // Asked for, the ingress serves it too.
    let served = Served::start_with(&db, &["--metrics-on-ingress"]);
    let (status, body) = metrics_on_the_ingress(&served).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("hookgate_build_info"), "{body}");
    drop(served);
    db.drop_database().await;
}

#[test]
fn the_default_metrics_address_is_on_loopback() {
    let cli = hookgate::config::Cli::try_parse_from(["hookgate"]).expect("no flags parse");
    if std::env::var_os("HOOKGATE_METRICS_ADDR").is_none() {
        assert!(cli.config.metrics_addr.ip().is_loopback(), "{cli:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_a_request_id_and_never_a_secret_token_or_body() {
    let db = TestDatabase::new(Engine::Sqlite).await;
    let served = Served::start_with(&db, &["--log-format", "json"]);
    let (gh, gh_secret) = served
        .create_receiver("github", Gh, "https://github.com", 0)
        .await;
    let (gl, gl_token) = served
        .create_receiver("gitlab", Gl, "https://gitlab.com", 0)
        .await;
    let (trigger, trigger_secret) = served
        .create_receiver("trigger", Generic, "https://git.example.com", 0)
        .await;
    let marker = format!("BODY-MARKER-{}", key());
    let wrong = format!("WRONG-SECRET-{}", key());

    let mut push: serde_json::Value =
        serde_json::from_slice(&fixture("github/push.branch-updated.json")).unwrap();
    push["marker"] = marker.clone().into();
    let push = serde_json::to_vec(&push).unwrap();
    let headers = host_headers(Gh, "push", &key(), Some(&gh_secret), &push);
    let (status, accepted_id) = post(
        &served,
        &format!("/.api/webhooks/{gh}"),
        &headers,
        push.clone(),
    )
    .await;
    assert_eq!(status, 202);
    let mut headers = host_headers(Gh, "push", &key(), Some(&wrong), &push);
    headers.push(("authorization", format!("Bearer {wrong}")));
    assert_eq!(
        post(&served, &format!("/.api/webhooks/{gh}"), &headers, push)
            .await
            .0,
        401
    );

    let mut gl_push: serde_json::Value =
        serde_json::from_slice(&fixture("gitlab/push.json")).unwrap();
    gl_push["marker"] = marker.clone().into();
    let gl_push = serde_json::to_vec(&gl_push).unwrap();
    for (token, want) in [(&gl_token, 202), (&wrong, 401)] {
        let headers = host_headers(Gl, "Push Hook", &key(), Some(token), &gl_push);
        assert_eq!(
            post(
                &served,
                &format!("/.api/webhooks/{gl}"),
                &headers,
                gl_push.clone()
            )
            .await
            .0,
            want
        );
    }

    // The repository named in the query is unknown: 404, its name only in the answer's body.
    for (secret, named, all) in [(&trigger_secret, 404, 202), (&wrong, 401, 401)] {
        let path = format!("/.api/webhooks/{trigger}/{secret}?repository=octo/{marker}");
        assert_eq!(post(&served, &path, &[], Vec::new()).await.0, named);
        let headers = [("x-hook-secret", secret.clone())];
        let path = format!("/.api/webhooks/{trigger}");
        assert_eq!(post(&served, &path, &headers, Vec::new()).await.0, all);
    }

    let (status, log) = served.terminate();
    assert!(status.success(), "{log}");
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"))
        })
        .collect();
    let answered = lines
        .iter()
        .find(|l| l["span"]["request_id"] == accepted_id.as_str())
        .unwrap_or_else(|| panic!("a line with request id {accepted_id}:\n{log}"));
    assert_eq!(answered["fields"]["message"], "delivery answered");
    assert_eq!(answered["fields"]["status"], 202);
    assert_eq!(answered["fields"]["outcome"], "accepted");
    assert_eq!(answered["span"]["receiver"], gh.as_str());
    assert_eq!(answered["span"]["event"], "push");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l["fields"]["message"] == "delivery answered")
            .count(),
        8,
        "one line per delivery:\n{log}"
    );
    for secret in [&gh_secret, &gl_token, &trigger_secret, &wrong, &marker] {
        assert!(
            !log.contains(secret.as_str()),
            "{secret} is in the log:\n{log}"
        );
    }
    db.drop_database().await;
}

/// A signed GitHub push to `id`, for the raw client: the head and the body.
fn signed_push(id: &str, secret: &str) -> (Vec<u8>, Vec<u8>) {
    let body = fixture("github/push.branch-updated.json");
    let headers = host_headers(Gh, "push", &key(), Some(secret), &body);
    (
        raw_http::post_head(&format!("/.api/webhooks/{id}"), &headers, body.len()),
        body,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_in_flight_delivery_finish_and_exits_0() {
    let db = TestDatabase::new(Engine::Sqlite).await;
    let mut served = Served::start(&db);
    let (id, secret) = served
        .create_receiver("github", Gh, "https://github.com", 0)
        .await;
    let (head, body) = signed_push(&id, &secret);
    let mut stream = raw_http::connect(&served.http_addr).await;
    assert!(raw_http::send(&mut stream, &head).await);
    assert!(raw_http::send(&mut stream, &body[..body.len() / 2]).await);
    tokio::time::sleep(Duration::from_millis(300)).await;

    served.send_sigterm();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        tokio::net::TcpStream::connect(&served.http_addr)
            .await
            .is_err(),
        "no new connection is taken after SIGTERM"
    );
    assert!(raw_http::send(&mut stream, &body[body.len() / 2..]).await);
    let (status, head) = raw_http::read_status(&mut stream, Duration::from_secs(10))
        .await
        .expect("the in-flight delivery is answered");
    assert_eq!(status, 202, "{head}");
    let exit = tokio::task::block_in_place(|| served.wait_for_exit(Duration::from_secs(20)))
        .unwrap_or_else(|| panic!("hookgate did not exit:\n{}", served.log()));
    assert_eq!(exit.code(), Some(0), "{}", served.log());

    let conn = Database::connect(db.url.as_str()).await.unwrap();
    let row = conn
        .query_one_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            "SELECT COUNT(*) AS n FROM deliveries",
        ))
        .await
        .unwrap()
        .unwrap();
    let n: i64 = row.try_get("", "n").unwrap();
    assert_eq!(n, 1, "the delivery answered 202 is stored");
    conn.close().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_never_ends_holds_up_shutdown_only_until_the_shutdown_timeout() {
    let db = TestDatabase::new(Engine::Sqlite).await;
    let mut served = Served::start_with(
        &db,
        &["--shutdown-timeout", "2s", "--body-read-timeout", "60s"],
    );
    let (id, secret) = served
        .create_receiver("github", Gh, "https://github.com", 0)
        .await;
    let (head, body) = signed_push(&id, &secret);
    let mut stream = raw_http::connect(&served.http_addr).await;
    assert!(raw_http::send(&mut stream, &head).await);
    assert!(raw_http::send(&mut stream, &body[..10]).await);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let start = Instant::now();
    served.send_sigterm();
    let exit = tokio::task::block_in_place(|| served.wait_for_exit(Duration::from_secs(15)))
        .unwrap_or_else(|| panic!("hookgate did not exit:\n{}", served.log()));
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(1800) && took < Duration::from_secs(6),
        "exited after {took:?}"
    );
    assert_eq!(exit.code(), Some(0), "{}", served.log());
    assert!(
        served.log().contains("shutdown timeout passed"),
        "{}",
        served.log()
    );
    let (_, closed) = raw_http::read_until_closed(&mut stream, Duration::from_secs(2)).await;
    assert!(closed, "the unfinished request's connection is gone");
}
