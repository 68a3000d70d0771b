//! What a client can make the service hold is bounded: slow heads and idle connections are cut
//! off, a stalled body gets 408, a head over the limit 431 saying which limit (400 for a
//! `Content-Length` that overflows), past the in-flight cap or the body budget 503 with
//! `Retry-After` at once, past the connection cap an idle connection is closed to make room or
//! else the new one is, and an oversized admin message is `INVALID_ARGUMENT`.
//! The caps are fair: one client address reaching its share (127.0.0.1 here) leaves another
//! (127.0.0.2, also loopback) served, and a client is named by `X-Forwarded-For` only when its
//! peer is a trusted proxy.

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::{Engine, TestApp, host_headers, raw_http};
use hookgate::admin::proto::CodeHostKind::Github as Gh;
use hookgate::admin::proto::{CreateReceiverRequest, ListDeliveriesRequest};

/// The client most tests are: what the service holds for it.
const LOCAL: &str = "127.0.0.1";
/// Another client, on another loopback address.
const OTHER: &str = "127.0.0.2";

fn ip(s: &str) -> IpAddr {
    s.parse().expect("an address")
}

fn secs(s: &str) -> humantime::Duration {
    s.parse().expect("a duration")
}

async fn stored(app: &TestApp) -> i64 {
    app.deliveries()
        .await
        .list_deliveries(app.req(ListDeliveriesRequest::default()))
        .await
        .expect("the log is listed")
        .into_inner()
        .total_size as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_connection_is_closed_after_the_header_read_timeout() {
    let app = TestApp::spawn_with(Engine::Sqlite, |c| {
        c.operations.header_read_timeout = secs("1s");
    })
    .await;
    let mut stream = raw_http::connect(&app.http_addr.to_string()).await;
    let start = Instant::now();
    let head =
        b"POST /.api/webhooks/4f2c1c3e-8a6b-4d2e-9f4a-0b1c2d3e4f5a HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    let mut closed_after = None;
    // One byte every 100 ms, for up to 10 s: the head never ends.
    for byte in head.iter().chain(std::iter::repeat(&b'a')).take(100) {
        if !raw_http::send(&mut stream, &[*byte]).await {
            closed_after = Some(start.elapsed());
            break;
        }
        let (_, closed) =
            raw_http::read_until_closed(&mut stream, Duration::from_millis(100)).await;
        if closed {
            closed_after = Some(start.elapsed());
            break;
        }
    }
    let closed_after = closed_after.expect("the slow connection is closed");
    assert!(
        closed_after >= Duration::from_millis(900) && closed_after < Duration::from_secs(4),
        "closed after {closed_after:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_read_timeout() {
    let app = TestApp::spawn_with(Engine::Sqlite, |c| {
        c.operations.header_read_timeout = secs("1s");
    })
    .await;
    let mut stream = raw_http::connect(&app.http_addr.to_string()).await;
    assert!(raw_http::send(&mut stream, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await);
    let (status, _) = raw_http::read_status(&mut stream, Duration::from_secs(5))
        .await
        .expect("an answer");
    assert_eq!(status, 200);
    let start = Instant::now();
    let (_, closed) = raw_http::read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(closed, "the idle connection is closed");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stalls_gets_408_and_nothing_is_stored() {
    let app = TestApp::spawn_with(Engine::Sqlite, |c| {
        c.operations.body_read_timeout = secs("1s");
    })
    .await;
    let (id, secret) = app.create_receiver("stall", Gh, "https://github.com").await;
    let body = br#"{"zen": "Keep it logically awesome.", "hook_id": 1}"#;
    let headers = host_headers(Gh, "ping", "k-1", Some(&secret), body);
    let mut stream = raw_http::connect(&app.http_addr.to_string()).await;
    let start = Instant::now();
    assert!(
        raw_http::send(
            &mut stream,
            &raw_http::post_head(&format!("/.api/webhooks/{id}"), &headers, body.len()),
        )
        .await
    );
    assert!(raw_http::send(&mut stream, &body[..10]).await);
    let (status, head) = raw_http::read_status(&mut stream, Duration::from_secs(10))
        .await
        .expect("an answer");
    assert_eq!(status, 408, "{head}");
    assert!(start.elapsed() >= Duration::from_millis(900));
    assert!(
        head.to_ascii_lowercase().contains("x-hookgate-request-id"),
        "{head}"
    );
    assert_eq!(
        stored(&app).await,
        0,
        "a body that never arrived is not stored"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_over_the_header_limit_gets_431() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let (id, _) = app
        .create_receiver("big-head", Gh, "https://github.com")
        .await;
    let response = app
        .post(
            &id,
            &[("x-padding", "a".repeat(100 * 1024))],
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(response.status(), 431);
    let answer = response.text().await.expect("a body");
    assert!(
        answer.contains("over 65536 bytes") && answer.contains("--max-header-bytes"),
        "{answer}"
    );
    assert_eq!(stored(&app).await, 0);
    app.stop().await;
}

/// Sends `head` (and a two-byte body) on a new connection; returns the status and the body of
/// the answer, which must close the connection.
async fn answer_to_head(app: &TestApp, head: Vec<u8>) -> (u16, serde_json::Value) {
    let mut stream = raw_http::connect(&app.http_addr.to_string()).await;
    assert!(raw_http::send(&mut stream, &[head, b"{}".to_vec()].concat()).await);
    let (answer, closed) = raw_http::read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(closed, "the connection is closed after a refused head");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("an HTTP answer: {answer:?}"));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok());
    let body =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("a JSON body ({e}): {answer:?}"));
    (
        status.unwrap_or_else(|| panic!("a status: {answer:?}")),
        body,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_header_fields_than_the_limit_get_431_saying_which_limit() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let (id, _) = app
        .create_receiver("many-fields", Gh, "https://github.com")
        .await;
    // 120 short fields: a head of 2 KiB, far under --max-header-bytes.
    let fields: Vec<(String, String)> = (0..120)
        .map(|i| (format!("x-field-{i}"), "v".to_owned()))
        .collect();
    let fields: Vec<(&str, String)> = fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.clone()))
        .collect();
    let head = raw_http::post_head(&format!("/.api/webhooks/{id}"), &fields, 2);
    assert!(head.len() < 4096, "{}", head.len());
    let (status, body) = answer_to_head(&app, head).await;
    assert_eq!(status, 431, "{body}");
    assert_eq!(
        body["error"],
        "the request has more than 100 header fields, the limit on header fields: send fewer"
    );
    assert_eq!(stored(&app).await, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_length_that_overflows_gets_400() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let (id, _) = app
        .create_receiver("overflow", Gh, "https://github.com")
        .await;
    // u64::MAX, and one past it: no body has either length.
    for length in ["18446744073709551615", "18446744073709551616"] {
        let head = format!(
            "POST /.api/webhooks/{id} HTTP/1.1\r\nHost: hookgate.test\r\nContent-Length: {length}\r\n\r\n"
        );
        let (status, body) = answer_to_head(&app, head.into_bytes()).await;
        assert_eq!(status, 400, "{length}: {body}");
        assert_eq!(
            body["error"],
            format!("Content-Length {length} is not a length a body can have"),
            "{length}"
        );
    }
    assert_eq!(stored(&app).await, 0);
    app.stop().await;
}

/// Starts a request to `id` from `from`, with `extra` headers, that sends its head (declaring a
/// body of `length` bytes) and `sent` of its body, then stalls; returns its connection.
async fn stalled_request(
    app: &TestApp,
    id: &str,
    from: &str,
    extra: &[(&'static str, String)],
    length: usize,
    sent: &[u8],
) -> tokio::net::TcpStream {
    let mut stream = raw_http::connect_from(ip(from), &app.http_addr.to_string())
        .await
        .expect("the ingress accepts the connection");
    let mut headers = host_headers(Gh, "push", &uuid::Uuid::new_v4().to_string(), None, b"");
    headers.extend_from_slice(extra);
    assert!(
        raw_http::send(
            &mut stream,
            &raw_http::post_head(&format!("/.api/webhooks/{id}"), &headers, length),
        )
        .await
    );
    assert!(raw_http::send(&mut stream, sent).await);
    stream
}

/// Starts `n` requests to `id` from [`LOCAL`] that send their head and part of their body, then
/// stall; returns their connections once the service is holding them.
async fn stalled_requests(
    app: &TestApp,
    id: &str,
    n: usize,
    length: usize,
) -> Vec<tokio::net::TcpStream> {
    let mut streams = Vec::new();
    for _ in 0..n {
        streams.push(stalled_request(app, id, LOCAL, &[], length, b"{").await);
    }
    // Let the service take them in.
    tokio::time::sleep(Duration::from_millis(500)).await;
    streams
}

/// The status of an unsigned delivery `{}` to `id` from `from` with `extra` headers, on a new
/// connection; `None` when the connection is closed without an answer.
async fn status_from(
    app: &TestApp,
    id: &str,
    from: &str,
    extra: &[(&'static str, String)],
) -> Option<u16> {
    let mut stream = raw_http::connect_from(ip(from), &app.http_addr.to_string())
        .await
        .ok()?;
    let mut headers = host_headers(Gh, "push", &uuid::Uuid::new_v4().to_string(), None, b"{}");
    headers.extend_from_slice(extra);
    let mut request = raw_http::post_head(&format!("/.api/webhooks/{id}"), &headers, 2);
    request.extend_from_slice(b"{}");
    if !raw_http::send(&mut stream, &request).await {
        return None;
    }
    raw_http::read_status(&mut stream, Duration::from_secs(5))
        .await
        .map(|(status, _)| status)
}

/// The status of `GET /healthz` from `from` on a new connection; `None` when the connection is
/// closed without an answer.
async fn health_from(app: &TestApp, from: &str) -> Option<u16> {
    let mut stream = raw_http::connect_from(ip(from), &app.http_addr.to_string())
        .await
        .ok()?;
    if !raw_http::send(&mut stream, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await {
        return None;
    }
    raw_http::read_status(&mut stream, Duration::from_secs(5))
        .await
        .map(|(status, _)| status)
}

fn forwarded_for(client: &str) -> [(&'static str, String); 1] {
    [("x-forwarded-for", client.to_owned())]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_inflight_cap_a_delivery_gets_503_with_retry_after_at_once() {
    let app = TestApp::spawn_with(Engine::Sqlite, |c| {
        c.operations.max_inflight_requests = 2;
    })
    .await;
    let (id, _) = app.create_receiver("busy", Gh, "https://github.com").await;
    let mut held = stalled_requests(&app, &id, 2, 100).await;

    let start = Instant::now();
    let response = app.post(&id, &[], b"{}".to_vec()).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    // At once: the held requests would keep it waiting for their whole body read timeout.
    assert!(start.elapsed() < Duration::from_secs(3), "answered at once");
    assert!(response.headers().contains_key("x-hookgate-request-id"));

    // The held requests end (unsigned: 401), and their slots are free again.
    for stream in &mut held {
        assert!(raw_http::send(stream, &[b' '; 99]).await);
        let (status, _) = raw_http::read_status(stream, Duration::from_secs(5))
            .await
            .expect("an answer");
        assert_eq!(status, 401);
    }
    let response = app.post(&id, &[], b"{}".to_vec()).await;
    assert_eq!(response.status(), 401);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_body_budget_a_delivery_gets_503_with_retry_after() {
    let app = TestApp::spawn_with(Engine::Sqlite, |c| {
        c.max_body_bytes = 1000;
        c.operations.max_buffered_body_bytes = 1000;
    })
    .await;
    let (id, _) = app
        .create_receiver("budget", Gh, "https://github.com")
        .await;
    // One request holds all but one byte of the budget: bytes that arrived.
    let mut held = stalled_requests(&app, &id, 1, 1000).await;
    assert!(raw_http::send(&mut held[0], &[b' '; 998]).await);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let response = app.post(&id, &[], b"{}".to_vec()).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");

    // A chunked body (no declared length) is refused as its bytes arrive.
    let chunked = reqwest::Client::new()
        .post(format!("http://{}/.api/webhooks/{id}", app.http_addr))
        .body(reqwest::Body::wrap_stream(futures_stream(b"{}".to_vec())))
        .send()
        .await
        .expect("an answer");
    assert_eq!(chunked.status(), 503);

    assert!(raw_http::send(&mut held[0], b" ").await);
    let (status, _) = raw_http::read_status(&mut held[0], Duration::from_secs(5))
        .await
        .expect("an answer");
    assert_eq!(status, 401);
    let response = app.post(&id, &[], b"{}".to_vec()).await;
    assert_eq!(response.status(), 401, "the budget is given back");
    app.stop().await;
}

/// A body of unknown length (sent chunked).
fn futures_stream(
    bytes: Vec<u8>,
) -> impl tokio_stream::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    tokio_stream::iter([Ok(bytes)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_length_that_never_arrives_holds_no_body_budget() {
    let app = TestApp::spawn_with(Engine::Sqlite, |c| {
        c.max_body_bytes = 1000;
        c.operations.max_buffered_body_bytes = 1000;
    })
    .await;
    let (id, secret) = app
        .create_receiver("declared", Gh, "https://github.com")
        .await;
    // Two requests declare the whole budget each, and send one byte.
    let _held = stalled_requests(&app, &id, 2, 1000).await;
    let body = br#"{"zen": "Keep it logically awesome.", "hook_id": 1}"#.to_vec();
    let headers = host_headers(Gh, "ping", "k-declared", Some(&secret), &body);
    let response = app.post(&id, &headers, body).await;
    assert_eq!(
        response.status(),
        200,
        "a ping is answered: nothing was reserved"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_over_its_body_budget_gets_503_while_another_is_served() {
    let app = TestApp::spawn_with(Engine::Sqlite, |c| {
        c.max_body_bytes = 1000;
        c.operations.max_buffered_body_bytes = 100_000;
        c.operations.max_buffered_body_bytes_per_address = 1000;
    })
    .await;
    let (id, _) = app
        .create_receiver("budget-per-address", Gh, "https://github.com")
        .await;
    let _held = stalled_request(&app, &id, LOCAL, &[], 1000, &[b' '; 999]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let response = app.post(&id, &[], b"{}".to_vec()).await;
    assert_refused_by(response, "--max-buffered-body-bytes-per-address").await;
    assert_eq!(status_from(&app, &id, OTHER, &[]).await, Some(401));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_at_its_inflight_cap_gets_503_while_another_is_served() {
    let app = TestApp::spawn_with(Engine::Sqlite, |c| {
        c.operations.max_inflight_requests_per_address = 2;
    })
    .await;
    let (id, _) = app
        .create_receiver("inflight-per-address", Gh, "https://github.com")
        .await;
    let _held = stalled_requests(&app, &id, 2, 100).await;

    let response = app.post(&id, &[], b"{}".to_vec()).await;
    assert_refused_by(response, "--max-inflight-requests-per-address").await;
    assert_eq!(status_from(&app, &id, OTHER, &[]).await, Some(401));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_forwarded_for_from_a_peer_that_is_not_a_trusted_proxy_is_ignored() {
    let app = TestApp::spawn_with(Engine::Sqlite, |c| {
        c.operations.max_inflight_requests_per_address = 1;
    })
    .await;
    let (id, _) = app.create_receiver("xff", Gh, "https://github.com").await;
    let _held = stalled_request(&app, &id, LOCAL, &forwarded_for("203.0.113.1"), 100, b"{").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Claiming to be someone else does not leave the peer's own share.
    assert_eq!(
        status_from(&app, &id, LOCAL, &forwarded_for("203.0.113.2")).await,
        Some(503)
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_share() {
    let app = TestApp::spawn_with(Engine::Sqlite, |c| {
        c.operations.max_inflight_requests_per_address = 1;
        c.operations.trusted_proxies = vec![LOCAL.parse().expect("an address")];
    })
    .await;
    let (id, _) = app
        .create_receiver("proxied", Gh, "https://github.com")
        .await;
    let _held = stalled_request(&app, &id, LOCAL, &forwarded_for("203.0.113.1"), 100, b"{").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        status_from(&app, &id, LOCAL, &forwarded_for("203.0.113.1")).await,
        Some(503),
        "the same client through the proxy is at its cap"
    );
    assert_eq!(
        status_from(&app, &id, LOCAL, &forwarded_for("203.0.113.2")).await,
        Some(401),
        "another client through the proxy is served"
    );
    assert_eq!(
        status_from(&app, &id, OTHER, &forwarded_for("203.0.113.1")).await,
        Some(401),
        "a peer that is not the proxy is itself, whatever it claims"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_an_idle_connection_is_closed_to_let_a_new_one_in() {
    let app = TestApp::spawn_with(Engine::Sqlite, |c| {
        c.operations.max_connections = 3;
        c.operations.max_connections_per_address = 3;
    })
    .await;
    let addr = app.http_addr.to_string();
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(
            raw_http::connect_from(ip(LOCAL), &addr)
                .await
                .expect("connects"),
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(health_from(&app, OTHER).await, Some(200));
    let mut closed = 0;
    for stream in &mut idle {
        let (_, was_closed) = raw_http::read_until_closed(stream, Duration::from_millis(300)).await;
        closed += usize::from(was_closed);
    }
    assert_eq!(
        closed, 1,
        "one idle connection made room, the others stay open"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_with_none_idle_a_new_connection_is_closed_at_once() {
    let app = TestApp::spawn_with(Engine::Sqlite, |c| {
        c.operations.max_connections = 2;
    })
    .await;
    let (id, _) = app.create_receiver("busy", Gh, "https://github.com").await;
    let held = stalled_requests(&app, &id, 2, 100).await;
    let mut third = raw_http::connect_from(ip(OTHER), &app.http_addr.to_string())
        .await
        .expect("connects");
    raw_http::send(&mut third, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let (answer, closed) = raw_http::read_until_closed(&mut third, Duration::from_secs(2)).await;
    assert!(
        closed && answer.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        health_from(&app, OTHER).await,
        Some(200),
        "closed connections free their room"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_at_its_connection_cap_cannot_open_more_but_another_can() {
    let app = TestApp::spawn_with(Engine::Sqlite, |c| {
        c.operations.max_connections_per_address = 2;
    })
    .await;
    let (id, _) = app
        .create_receiver("connections-per-address", Gh, "https://github.com")
        .await;
    let _held = stalled_requests(&app, &id, 2, 100).await;
    assert_eq!(health_from(&app, LOCAL).await, None, "closed at once");
    assert_eq!(health_from(&app, OTHER).await, Some(200));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_message_over_the_limit_is_invalid_argument() {
    let app = TestApp::spawn_with(Engine::Sqlite, |c| {
        c.operations.max_admin_message_bytes = 1024;
    })
    .await;
    let err = app
        .receivers()
        .await
        .create_receiver(app.req(CreateReceiverRequest {
            name: "n".repeat(5000),
            code_host_kind: Gh as i32,
            code_host_urn: "https://github.com".into(),
            ..Default::default()
        }))
        .await
        .expect_err("the message is refused");
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(
        err.message().contains("--max-admin-message-bytes"),
        "{}",
        err.message()
    );
    // A message under the limit is served as usual.
    app.create_receiver("small", Gh, "https://github.com").await;
    app.stop().await;
}

/// `response` is a 503 with `Retry-After: 1` whose message names `flag`, the limit it met.
async fn assert_refused_by(response: reqwest::Response, flag: &str) {
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let answer = common::json_body(response).await;
    assert!(
        answer["error"].as_str().is_some_and(|e| e.contains(flag)),
        "the 503 names {flag}: {answer}"
    );
}
