//! Hostile input against the built binary, on SQLite and PostgreSQL: thousands of bad requests
//! from concurrent clients (wrong and truncated signatures, non-JSON and deeply nested JSON, wrong
//! content types, huge heads, unknown and malformed ids, oversized bodies, invalid UTF-8, methods
//! that are not allowed, garbage that is not HTTP), slow clients that never finish a head or a
//! body, and valid deliveries mixed in. Afterwards: the service is up, every request got its
//! documented status, every valid delivery was accepted, the log holds exactly the valid
//! deliveries and one bodiless `REJECTED` row per 401 (up to the log's limit per receiver), and
//! memory stayed bounded.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::binary::Served;
use common::{Engine, TestDatabase, fixture, host_headers, raw_http, sha256_signature};
use hookgate::admin::proto::CodeHostKind::{
    AzureDevops as Az, BitbucketCloud as Bbc, BitbucketServer as Bbs, Generic, Gitea as Gt,
    Github as Gh, Gitlab as Gl,
};
use reqwest::Method;
use sea_orm::{ConnectionTrait, Database};

/// Requests sent by the concurrent clients.
const REQUESTS: usize = 3000;
/// Concurrent clients.
const CLIENTS: usize = 16;
/// Slow clients of each kind (a head sent byte by byte, a body that never ends).
const SLOW_CLIENTS: usize = 6;
/// The service's limits in this test (small, so that the test stays quick).
const MAX_BODY: usize = 1024 * 1024;
/// The high-water mark of resident memory the service must stay under.
const MAX_RSS_KIB: u64 = 128 * 1024;

/// The receivers under attack: (id, secret) of each.
struct Receivers {
    github: (String, String),
    gitlab: (String, String),
    bitbucket_server: (String, String),
    bitbucket_cloud: (String, String),
    gitea: (String, String),
    azure_devops: (String, String),
    trigger: (String, String),
    limited: (String, String),
}

/// One request to send, and the statuses its kind may be answered with.
struct Attempt {
    case: &'static str,
    method: Method,
    path: String,
    headers: Vec<(&'static str, Vec<u8>)>,
    body: Vec<u8>,
    allowed: &'static [u16],
    /// A valid delivery, which must be stored.
    valid: bool,
}

/// What one request got.
struct Answer {
    case: &'static str,
    status: u16,
    allowed: &'static [u16],
    valid: bool,
    retry_after: bool,
    allow: bool,
    delivery_id: Option<String>,
    /// The id in the path, whether or not such a receiver exists.
    receiver: String,
}

fn text_headers(headers: Vec<(&'static str, String)>) -> Vec<(&'static str, Vec<u8>)> {
    headers
        .into_iter()
        .map(|(name, value)| (name, value.into_bytes()))
        .collect()
}

fn key() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The `i`-th request of the stream.
fn attempt(i: usize, r: &Receivers) -> Attempt {
    let marker = format!("HOSTILE-MARKER-{i}");
    let hostile_body =
        format!(r#"{{"marker": "{marker}", "ref": "refs/heads/main"}}"#).into_bytes();
    let push = fixture("github/push.branch-updated.json");
    let gh = format!("/.api/webhooks/{}", r.github.0);
    let post = |case, path: &str, headers, body, allowed, valid| Attempt {
        case,
        method: Method::POST,
        path: path.to_owned(),
        headers,
        body,
        allowed,
        valid,
    };
    let signed = |event: &str, body: &[u8]| {
        text_headers(host_headers(Gh, event, &key(), Some(&r.github.1), body))
    };
    match i % 24 {
        0 | 12 => post(
            "valid GitHub push",
            &gh,
            signed("push", &push),
            push,
            &[202],
            true,
        ),
        1 => {
            let body = fixture("gitlab/push.json");
            let headers = host_headers(Gl, "Push Hook", &key(), Some(&r.gitlab.1), &body);
            let path = format!("/.api/webhooks/{}", r.gitlab.0);
            post(
                "valid GitLab push",
                &path,
                text_headers(headers),
                body,
                &[202],
                true,
            )
        }
        2 => {
            let path = format!(
                "/.api/webhooks/{}/{}?repository=hostile/repo",
                r.trigger.0, r.trigger.1
            );
            post("valid trigger", &path, Vec::new(), Vec::new(), &[202], true)
        }
        3 => {
            let headers = host_headers(Gh, "push", &key(), Some("wrong-secret"), &hostile_body);
            post(
                "wrong signature",
                &gh,
                text_headers(headers),
                hostile_body,
                &[401],
                false,
            )
        }
        4 => {
            let mut headers = host_headers(Gh, "push", &key(), None, &hostile_body);
            let full = sha256_signature(&r.github.1, &hostile_body);
            headers.push(("x-hub-signature-256", full[..20].to_owned()));
            post(
                "truncated signature",
                &gh,
                text_headers(headers),
                hostile_body,
                &[401],
                false,
            )
        }
        5 => {
            let headers = host_headers(Gh, "push", &key(), None, &hostile_body);
            post(
                "no signature",
                &gh,
                text_headers(headers),
                hostile_body,
                &[401],
                false,
            )
        }
        6 => {
            let headers = host_headers(Gl, "Push Hook", &key(), Some("wrong-token"), &hostile_body);
            let path = format!("/.api/webhooks/{}", r.gitlab.0);
            post(
                "wrong GitLab token",
                &path,
                text_headers(headers),
                hostile_body,
                &[401],
                false,
            )
        }
        // Every other round, an Azure DevOps delivery with a wrong secret (as Basic password and
        // X-Hook-Secret) instead.
        7 if i / 24 % 2 == 1 => {
            let headers = host_headers(Az, "git.push", &key(), Some("wrong-secret"), &hostile_body);
            let path = format!("/.api/webhooks/{}", r.azure_devops.0);
            post(
                "wrong Azure DevOps secret",
                &path,
                text_headers(headers),
                hostile_body,
                &[401],
                false,
            )
        }
        7 => {
            let headers = host_headers(
                Bbs,
                "repo:refs_changed",
                &key(),
                Some("wrong-secret"),
                &hostile_body,
            );
            let path = format!("/.api/webhooks/{}", r.bitbucket_server.0);
            post(
                "wrong Bitbucket Server signature",
                &path,
                text_headers(headers),
                hostile_body,
                &[401],
                false,
            )
        }
        // Every other round, a Gitea delivery signed with a wrong secret instead, with the
        // GitHub-compatible headers Gitea sends alongside.
        8 if i / 24 % 2 == 1 => {
            let headers = host_headers(Gt, "push", &key(), Some("wrong-secret"), &hostile_body);
            let path = format!("/.api/webhooks/{}", r.gitea.0);
            post(
                "wrong Gitea signature",
                &path,
                text_headers(headers),
                hostile_body,
                &[401],
                false,
            )
        }
        8 => {
            let headers = host_headers(Bbc, "repo:push", &key(), None, &hostile_body);
            let path = format!("/.api/webhooks/{}", r.bitbucket_cloud.0);
            post(
                "unsigned Bitbucket Cloud",
                &path,
                text_headers(headers),
                hostile_body,
                &[401],
                false,
            )
        }
        9 => {
            let body = format!("not json {marker} <xml/>").into_bytes();
            post(
                "signed, not JSON",
                &gh,
                signed("push", &body),
                body,
                &[400],
                false,
            )
        }
        10 => {
            let depth = 5000;
            let body = format!(
                r#"{{"marker": "{marker}", "deep": {}1{}}}"#,
                "[".repeat(depth),
                "]".repeat(depth)
            )
            .into_bytes();
            post(
                "signed, deeply nested JSON",
                &gh,
                signed("push", &body),
                body,
                &[400],
                false,
            )
        }
        11 => {
            let mut body = b"\xff\xfe\xfd".to_vec();
            body.extend_from_slice(&hostile_body);
            post(
                "signed, invalid UTF-8",
                &gh,
                signed("push", &body),
                body,
                &[400],
                false,
            )
        }
        13 => {
            let mut headers = signed("push", &hostile_body);
            headers.retain(|(name, _)| *name != "content-type");
            headers.push((
                "content-type",
                b"application/x-www-form-urlencoded".to_vec(),
            ));
            post(
                "signed JSON labelled as a form",
                &gh,
                headers,
                hostile_body,
                &[400],
                false,
            )
        }
        14 => {
            let body = format!("<push>{marker}</push>").into_bytes();
            let mut headers = text_headers(host_headers(Gh, "push", &key(), None, &body));
            headers.retain(|(name, _)| *name != "content-type");
            headers.push(("content-type", b"application/xml".to_vec()));
            post("unsigned XML", &gh, headers, body, &[401], false)
        }
        15 => {
            // No body: what a server does not read of a request it refuses may reset the
            // connection before the client reads the answer.
            let mut headers = signed("push", b"");
            headers.push(("x-padding", vec![b'a'; 20 * 1024]));
            post("huge head", &gh, headers, Vec::new(), &[431], false)
        }
        16 => {
            let path = format!("/.api/webhooks/{}", key());
            let headers = signed("push", &hostile_body);
            post(
                "unknown receiver",
                &path,
                headers,
                hostile_body,
                &[404],
                false,
            )
        }
        17 => {
            let ids = [
                "not-a-uuid",
                "12345",
                "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz",
                "%00%ff",
            ];
            let path = format!("/.api/webhooks/{}", ids[i / 24 % ids.len()]);
            post(
                "malformed id",
                &path,
                signed("push", &hostile_body),
                hostile_body,
                &[400],
                false,
            )
        }
        18 => {
            let methods = [Method::GET, Method::PUT, Method::DELETE, Method::PATCH];
            Attempt {
                method: methods[i / 24 % methods.len()].clone(),
                ..post(
                    "method not allowed",
                    &gh,
                    signed("push", &hostile_body),
                    hostile_body,
                    &[405],
                    false,
                )
            }
        }
        19 => {
            let mut headers = signed("push", &push);
            headers.retain(|(name, _)| *name != "x-github-event");
            headers.push(("x-github-event", b"\xc3\x28push\xff".to_vec()));
            post(
                "event header of invalid UTF-8",
                &gh,
                headers,
                push,
                &[400],
                false,
            )
        }
        20 => {
            let path = format!("/.api/webhooks/{}/wrong-secret-{i}", r.trigger.0);
            post(
                "wrong trigger secret",
                &path,
                Vec::new(),
                hostile_body,
                &[401],
                false,
            )
        }
        21 => {
            let path = format!("/.api/webhooks/{}", r.trigger.0);
            Attempt {
                method: Method::DELETE,
                ..post(
                    "trigger method not allowed",
                    &path,
                    Vec::new(),
                    Vec::new(),
                    &[405],
                    false,
                )
            }
        }
        22 => {
            let path = format!("/.api/webhooks/{}", r.limited.0);
            let body = fixture("github/push.branch-created.json");
            let headers = text_headers(host_headers(Gh, "push", &key(), Some(&r.limited.1), &body));
            post(
                "rate-limited receiver",
                &path,
                headers,
                body,
                &[202, 429],
                true,
            )
        }
        _ => {
            let path = format!("/.api/webhooks/{}/{}", r.github.0, r.github.1);
            post(
                "GitHub receiver with a path secret",
                &path,
                signed("push", &push),
                push,
                &[404],
                false,
            )
        }
    }
}

async fn send(client: &reqwest::Client, base: &str, a: Attempt) -> Answer {
    let mut request = client
        .request(a.method.clone(), format!("{base}{}", a.path))
        .body(a.body);
    for (name, value) in &a.headers {
        request = request.header(
            *name,
            reqwest::header::HeaderValue::from_bytes(value).unwrap(),
        );
    }
    let receiver = a
        .path
        .strip_prefix("/.api/webhooks/")
        .unwrap_or_default()
        .split(['/', '?'])
        .next()
        .unwrap_or_default()
        .to_owned();
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => panic!("{}: no answer: {e}", a.case),
    };
    let status = response.status().as_u16();
    let retry_after = response.headers().contains_key("retry-after");
    let allow = response.headers().contains_key("allow");
    let text = response.text().await.unwrap_or_default();
    let delivery_id = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["delivery_id"].as_str().map(str::to_owned));
    Answer {
        case: a.case,
        status,
        allowed: a.allowed,
        valid: a.valid,
        retry_after,
        allow,
        delivery_id,
        receiver,
    }
}

/// A client that declares a body over the cap and waits: 413 without the body being read.
async fn oversized_declared(addr: &str, path: &str) -> Option<u16> {
    let mut stream = raw_http::connect(addr).await;
    let head = raw_http::post_head(path, &[("x-github-event", "push".into())], MAX_BODY + 1);
    raw_http::send(&mut stream, &head).await;
    raw_http::read_status(&mut stream, Duration::from_secs(10))
        .await
        .map(|(status, _)| status)
}

/// A client that sends a chunked body past the cap. The answer is 413; a client still writing
/// when the service closes may see the connection reset instead (`None`).
async fn oversized_chunked(addr: &str, path: &str) -> Option<u16> {
    let mut stream = raw_http::connect(addr).await;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nX-GitHub-Event: push\r\n\r\n"
    );
    raw_http::send(&mut stream, head.as_bytes()).await;
    let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "a".repeat(64 * 1024));
    for _ in 0..(MAX_BODY / (64 * 1024) + 1) {
        if !raw_http::send(&mut stream, chunk.as_bytes()).await {
            break;
        }
    }
    raw_http::read_status(&mut stream, Duration::from_secs(10))
        .await
        .map(|(status, _)| status)
}

/// Bytes that are not HTTP at all: hyper answers 400.
async fn garbage(addr: &str) -> Option<u16> {
    let mut stream = raw_http::connect(addr).await;
    raw_http::send(
        &mut stream,
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 hello\r\n\r\n",
    )
    .await;
    raw_http::read_status(&mut stream, Duration::from_secs(10))
        .await
        .map(|(status, _)| status)
}

/// A head sent one byte every 100 ms: cut off by --header-read-timeout. Returns how long it
/// took to be closed.
async fn slowloris(addr: &str, path: &str) -> Option<Duration> {
    let mut stream = raw_http::connect(addr).await;
    let start = Instant::now();
    let head = format!("POST {path} HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    for byte in head.bytes().chain(std::iter::repeat(b'a')).take(150) {
        if !raw_http::send(&mut stream, &[byte]).await {
            return Some(start.elapsed());
        }
        let (_, closed) =
            raw_http::read_until_closed(&mut stream, Duration::from_millis(100)).await;
        if closed {
            return Some(start.elapsed());
        }
    }
    None
}

/// A body that stops halfway and never ends: 408 after --body-read-timeout.
async fn stalled_body(addr: &str, path: &str, headers: &[(&str, String)]) -> Option<u16> {
    let mut stream = raw_http::connect(addr).await;
    raw_http::send(&mut stream, &raw_http::post_head(path, headers, 1000)).await;
    raw_http::send(&mut stream, b"{\"half\": ").await;
    raw_http::read_status(&mut stream, Duration::from_secs(15))
        .await
        .map(|(status, _)| status)
}

on_both_engines!(a_mixed_stream_of_hostile_requests_leaves_the_service_up_bounded_and_clean);

async fn a_mixed_stream_of_hostile_requests_leaves_the_service_up_bounded_and_clean(
    engine: Engine,
) {
    let db = TestDatabase::new(engine).await;
    let served = Served::start_with(
        &db,
        &[
            "--max-body-bytes",
            &MAX_BODY.to_string(),
            "--max-buffered-body-bytes",
            &(32 * MAX_BODY).to_string(),
            "--max-header-bytes",
            "16384",
            "--header-read-timeout",
            "2s",
            "--body-read-timeout",
            "2s",
        ],
    );
    let receivers = Arc::new(Receivers {
        github: served
            .create_receiver("github", Gh, "https://github.com", 0)
            .await,
        gitlab: served
            .create_receiver("gitlab", Gl, "https://gitlab.com", 0)
            .await,
        bitbucket_server: served
            .create_receiver("bbs", Bbs, "https://bitbucket.example.com", 0)
            .await,
        bitbucket_cloud: served
            .create_receiver("bbc", Bbc, "https://bitbucket.org", 0)
            .await,
        gitea: served
            .create_receiver("gitea", Gt, "https://gitea.example.com", 0)
            .await,
        azure_devops: served
            .create_receiver("azure", Az, "https://dev.azure.com/example", 0)
            .await,
        trigger: served
            .create_receiver("trigger", Generic, "https://git.example.com", 0)
            .await,
        limited: served
            .create_receiver("limited", Gh, "https://github.com", 1)
            .await,
    });
    served
        .register_repository("https://git.example.com", "hostile/repo")
        .await;
    let addr = served.http_addr.clone();
    let base = format!("http://{addr}");
    let gh_path = format!("/.api/webhooks/{}", receivers.github.0);
    let started = Instant::now();

    // Slow clients first, so they are held while the stream runs.
    let mut slow = Vec::new();
    for _ in 0..SLOW_CLIENTS {
        let (addr, path) = (addr.clone(), gh_path.clone());
        slow.push(tokio::spawn(async move { slowloris(&addr, &path).await }));
    }
    let mut stalled = Vec::new();
    for _ in 0..SLOW_CLIENTS {
        let (addr, path) = (addr.clone(), gh_path.clone());
        let headers = host_headers(Gh, "push", &key(), None, b"");
        stalled.push(tokio::spawn(async move {
            stalled_body(&addr, &path, &headers).await
        }));
    }

    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let (receivers, base, addr, path) = (
            receivers.clone(),
            base.clone(),
            addr.clone(),
            gh_path.clone(),
        );
        clients.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut answers = Vec::new();
            let mut raw = Vec::new();
            for i in (c..REQUESTS).step_by(CLIENTS) {
                answers.push(send(&client, &base, attempt(i, &receivers)).await);
                match i % 50 {
                    7 => raw.push((
                        "oversized, declared",
                        oversized_declared(&addr, &path).await,
                    )),
                    19 => raw.push(("oversized, chunked", oversized_chunked(&addr, &path).await)),
                    33 => raw.push(("not HTTP", garbage(&addr).await)),
                    _ => {}
                }
            }
            (answers, raw)
        }));
    }
    let mut answers = Vec::new();
    let mut raw = Vec::new();
    for client in clients {
        let (a, r) = client.await.expect("a client does not panic");
        answers.extend(a);
        raw.extend(r);
    }
    let elapsed = started.elapsed();

    // Every request got its documented status.
    let mut wrong: BTreeMap<(&str, u16), usize> = BTreeMap::new();
    for a in &answers {
        if !a.allowed.contains(&a.status) {
            *wrong.entry((a.case, a.status)).or_default() += 1;
        }
        if matches!(a.status, 429 | 503) {
            assert!(
                a.retry_after,
                "{}: {} without Retry-After",
                a.case, a.status
            );
        }
        if a.status == 405 {
            assert!(a.allow, "{}: 405 without Allow", a.case);
        }
    }
    assert!(
        wrong.is_empty(),
        "answers outside the documented statuses: {wrong:?}"
    );
    assert_eq!(answers.len(), REQUESTS);
    let mut chunked_413 = 0;
    for (case, status) in &raw {
        match (*case, status) {
            ("oversized, declared", Some(413)) | ("not HTTP", Some(400)) => {}
            ("oversized, chunked", Some(413)) => chunked_413 += 1,
            ("oversized, chunked", None) => {}
            other => panic!("raw client {other:?}"),
        }
    }
    assert!(
        chunked_413 > 0,
        "some chunked oversized bodies see their 413: {raw:?}"
    );
    for closed in slow {
        let after = closed.await.unwrap().expect("a slow head is cut off");
        assert!(
            after < Duration::from_secs(6),
            "a slow head was held for {after:?}"
        );
    }
    for status in stalled {
        assert_eq!(status.await.unwrap(), Some(408), "a stalled body gets 408");
    }

    // Valid deliveries were accepted (the rate-limited receiver's beyond its limit aside).
    let limited_accepted = answers
        .iter()
        .filter(|a| a.case == "rate-limited receiver" && a.status == 202)
        .count();
    let allowed_by_limit = 1 + elapsed.as_secs() as usize / 60 + 1;
    assert!(
        (1..=allowed_by_limit).contains(&limited_accepted),
        "{limited_accepted} accepted past a limit of 1 a minute in {elapsed:?}"
    );
    let accepted: BTreeSet<String> = answers
        .iter()
        .filter(|a| a.valid && a.status == 202)
        .map(|a| {
            a.delivery_id
                .clone()
                .expect("an accepted delivery has an id")
        })
        .collect();
    let mut rejected: BTreeMap<&str, usize> = BTreeMap::new();
    for a in answers.iter().filter(|a| a.status == 401) {
        *rejected.entry(a.receiver.as_str()).or_default() += 1;
    }

    // The service is up, and stayed within its memory bound.
    let health = reqwest::get(format!("{base}/healthz"))
        .await
        .expect("the service is up");
    assert_eq!(health.status(), 200);
    let high_water = served.memory_kib("VmHWM");
    eprintln!(
        "{REQUESTS} requests in {elapsed:?}; VmRSS {} KiB, VmHWM {high_water} KiB",
        served.memory_kib("VmRSS")
    );
    assert!(high_water < MAX_RSS_KIB, "VmHWM {high_water} KiB");

    // The log holds the valid deliveries, and a bodiless REJECTED row per 401 up to the log's
    // limit for each receiver; nothing else.
    let conn = Database::connect(db.url.as_str()).await.unwrap();
    let rows = conn
        .query_all_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            "SELECT id, receiver_id, state, CASE WHEN NOT EXISTS (SELECT 1 FROM delivery_bodies b WHERE b.delivery_id = deliveries.id) THEN 1 ELSE 0 END AS no_body FROM deliveries",
        ))
        .await
        .unwrap();
    let mut stored = BTreeSet::new();
    let mut rejected_rows: BTreeMap<String, usize> = BTreeMap::new();
    for row in rows {
        let id: String = row.try_get("", "id").unwrap();
        let receiver: String = row.try_get("", "receiver_id").unwrap();
        let state: String = row.try_get("", "state").unwrap();
        let no_body: i32 = row.try_get("", "no_body").unwrap();
        if state == "REJECTED" {
            assert_eq!(no_body, 1, "rejected delivery {id} has a body");
            *rejected_rows.entry(receiver).or_default() += 1;
        } else {
            stored.insert(id);
        }
    }
    conn.close().await.ok();
    assert_eq!(
        stored, accepted,
        "exactly the valid deliveries are stored with bodies"
    );
    // Each receiver's log takes a burst of REJECTED_LOGGED_PER_MINUTE, then one a second.
    let cap = hookgate::ingress::REJECTED_LOGGED_PER_MINUTE as usize;
    let total_401: usize = rejected.values().sum();
    assert!(total_401 > 0);
    for (receiver, &answered) in &rejected {
        let stored = rejected_rows.get(*receiver).copied().unwrap_or(0);
        let (least, most) = (
            answered.min(cap),
            answered.min(cap + elapsed.as_secs() as usize + 1),
        );
        assert!(
            (least..=most).contains(&stored),
            "receiver {receiver}: {answered} answered 401, {stored} REJECTED rows stored (expected {least} to {most})"
        );
    }
    for receiver in rejected_rows.keys() {
        assert!(
            rejected.contains_key(receiver.as_str()),
            "REJECTED rows for {receiver}, which got no 401"
        );
    }

    let (status, log) = served.terminate();
    assert!(status.success(), "{log}");
    db.drop_database().await;
}
