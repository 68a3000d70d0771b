//! What a stranger can make hookgate keep (issue 12, §1 and §2), through the real service on port
//! 0, on both engines: an unsigned Bitbucket Server `diagnostics:ping` is only a ping (no body,
//! no delivery key, no rate-limit count); a `REJECTED` row holds a few header bytes and nothing
//! of its body; whatever is stored, a list page stays under a client's 4 MiB limit, and a 25 MiB
//! delivery can be read with grpcurl as an admin types it.

mod common;

use common::{Engine, TestApp, fixture, host_headers, json_body, sha256_signature};
use hookgate::admin::proto::{
    CodeHostKind, DeliveryState, ListChangesetsRequest, ListDeliveriesRequest, ReceiverOptions,
    changeset_service_client::ChangesetServiceClient,
};
use sea_orm::{ConnectionTrait, Database};

use CodeHostKind::{BitbucketServer as Bbs, Github as Gh};

const MIB: usize = 1024 * 1024;

fn key() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `len` random letters and digits (xorshift): no compressor shrinks them much, and they can sit
/// in a JSON string as they are.
fn incompressible(len: usize) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ALPHABET[(state % ALPHABET.len() as u64) as usize]
        })
        .collect()
}

/// The bytes the database takes on disk: the SQLite files (database and write-ahead log, after a
/// checkpoint has moved the log's pages into the database), or PostgreSQL's `pg_database_size`.
async fn database_bytes(app: &TestApp, engine: Engine) -> u64 {
    match engine {
        Engine::Sqlite => {
            let db = Database::connect(app.db.url.as_str()).await.unwrap();
            db.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
                .await
                .unwrap();
            db.close().await.ok();
            sqlite_file_bytes(app)
        }
        Engine::Postgres => {
            let db = Database::connect(app.db.url.as_str()).await.unwrap();
            let row = db
                .query_one_raw(sea_orm::Statement::from_string(
                    db.get_database_backend(),
                    "SELECT pg_database_size(current_database()) AS size",
                ))
                .await
                .unwrap()
                .expect("one row");
            let size: i64 = row.try_get("", "size").unwrap();
            db.close().await.ok();
            u64::try_from(size).unwrap_or(0)
        }
    }
}

/// The sizes of the SQLite database's files.
fn sqlite_file_bytes(app: &TestApp) -> u64 {
    std::fs::read_dir(app.db.dir.path())
        .expect("the data directory can be read")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("hookgate.db"))
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum()
}

/// A receiver of `kind` taking at most `per_minute` deliveries a minute (0: no limit).
async fn receiver(app: &TestApp, kind: CodeHostKind, per_minute: u32) -> (String, String) {
    let urn = match kind {
        Gh => "https://github.com",
        // Where the Bitbucket Server fixtures' repository lives.
        _ => "https://server.bitbucket.local",
    };
    let options = ReceiverOptions {
        rate_limit_per_minute: per_minute,
        ..Default::default()
    };
    app.create_receiver_with(&format!("r-{}", key()), kind, urn, options)
        .await
}

/// Every delivery of a receiver, newest first, read page by page as a default tonic client does
/// (4 MiB limit).
async fn all_deliveries(app: &TestApp, receiver: &str) -> Vec<hookgate::admin::proto::Delivery> {
    let mut client = app.deliveries().await;
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_deliveries(app.req(ListDeliveriesRequest {
                receiver_id: receiver.to_owned(),
                page_size: 500,
                page_token: page_token.clone(),
                ..Default::default()
            }))
            .await
            .expect("a page of the delivery log fits a default client")
            .into_inner();
        all.extend(page.deliveries);
        if page.next_page_token.is_empty() {
            return all;
        }
        page_token = page.next_page_token;
    }
}

/// An unsigned ping's headers: Bitbucket Server's, without `X-Hub-Signature`.
fn unsigned_ping(request_id: &str) -> Vec<(&'static str, String)> {
    host_headers(Bbs, "diagnostics:ping", request_id, None, b"")
}

async fn an_unsigned_ping_with_a_10_mib_body_grows_the_database_by_less_than_64_kib(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let (id, _) = receiver(&app, Bbs, 0).await;
    // A first small ping, so the tables have their first pages before measuring.
    let r = app.post(&id, &unsigned_ping(&key()), b"{}".to_vec()).await;
    assert_eq!(r.status(), 200);

    let before = database_bytes(&app, engine).await;
    let r = app
        .post(&id, &unsigned_ping(&key()), incompressible(10 * MIB))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(json_body(r).await["message"], "pong");
    let after = database_bytes(&app, engine).await;
    let growth = after.saturating_sub(before);
    eprintln!(
        "{engine:?}: an unsigned 10 MiB diagnostics:ping grew the database by {growth} bytes ({before} -> {after})"
    );
    assert!(
        growth < 64 * 1024,
        "an unsigned ping grew the database by {growth} bytes"
    );

    // What is kept of it: a row of its own, with neither its body nor its delivery key.
    let rows = all_deliveries(&app, &id).await;
    assert_eq!(rows.len(), 2);
    for row in &rows {
        let full = app.get_delivery(&row.id).await;
        assert_eq!(full.event, "diagnostics:ping");
        assert_eq!(full.state, DeliveryState::Processed as i32);
        assert!(
            full.request_body.is_empty(),
            "an unsigned ping's body is kept"
        );
        assert_eq!(full.request_body_size, 0);
        assert_eq!(
            full.delivery_key, "",
            "an unsigned ping takes a delivery key"
        );
    }
    app.stop().await;
}

async fn unsigned_pings_never_count_against_the_rate_limit(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = receiver(&app, Bbs, 10).await;
    for i in 0..15 {
        let r = app.post(&id, &unsigned_ping(&key()), b"{}".to_vec()).await;
        assert_eq!(r.status(), 200, "unsigned ping {i}");
    }
    let body = fixture("bitbucket-server/pr_opened.json");
    let headers = host_headers(Bbs, "pr:opened", &key(), Some(&secret), &body);
    let r = app.post(&id, &headers, body).await;
    assert_eq!(
        r.status(),
        202,
        "a signed delivery after 15 unsigned pings on a receiver limited to 10 a minute"
    );
    app.stop().await;
}

async fn an_unsigned_ping_never_makes_a_later_signed_delivery_with_its_key_a_duplicate(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = receiver(&app, Bbs, 0).await;
    let shared_key = key();
    let r = app
        .post(&id, &unsigned_ping(&shared_key), b"{}".to_vec())
        .await;
    assert_eq!(r.status(), 200);

    let body = fixture("bitbucket-server/pr_opened.json");
    let headers = host_headers(Bbs, "pr:opened", &shared_key, Some(&secret), &body);
    let r = app.post(&id, &headers, body).await;
    assert_eq!(r.status(), 202, "the real event is taken, not a duplicate");
    let delivery_id = json_body(r).await["delivery_id"]
        .as_str()
        .expect("a delivery id")
        .to_owned();
    let done = app.wait_until_done(&delivery_id).await;
    assert_eq!(
        done.state,
        DeliveryState::Processed as i32,
        "{}",
        done.last_error
    );
    let changesets = ChangesetServiceClient::new(app.channel().await)
        .list_changesets(app.req(ListChangesetsRequest {
            receiver_id: id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .changesets;
    assert_eq!(changesets.len(), 1, "the pr:opened made its changeset");
    app.stop().await;
}

async fn a_rejected_delivery_keeps_only_a_few_header_bytes_and_nothing_of_its_body(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, _) = receiver(&app, Gh, 0).await;
    // What the attack did: an `action` of 5 MiB, unauthenticated, and long header values.
    let action = String::from_utf8(incompressible(5 * MIB)).unwrap();
    let body = serde_json::to_vec(&serde_json::json!({ "action": action })).unwrap();
    let long = "é".repeat(2000);
    let before = database_bytes(&app, engine).await;
    for _ in 0..20 {
        let mut headers = host_headers(Gh, "pull_request", &long, Some("not-the-secret"), &body);
        headers.push(("x-custom", long.clone()));
        let r = app.post(&id, &headers, body.clone()).await;
        assert_eq!(r.status(), 401);
    }
    let after = database_bytes(&app, engine).await;
    let growth = after.saturating_sub(before);
    eprintln!(
        "{engine:?}: 20 rejected deliveries with a 5 MiB action grew the database by {growth} bytes ({before} -> {after})"
    );
    assert!(growth < 1024 * 1024, "grew by {growth} bytes");

    let rows = all_deliveries(&app, &id).await;
    assert_eq!(rows.len(), 20);
    for row in rows {
        let full = app.get_delivery(&row.id).await;
        assert_eq!(full.state, DeliveryState::Rejected as i32);
        assert_eq!(
            full.event, "pull_request",
            "the event is the header's, nothing from the body"
        );
        assert!(full.request_body.is_empty());
        assert!(
            full.delivery_key.len() <= 200,
            "{}",
            full.delivery_key.len()
        );
        assert!(full.delivery_key.starts_with("éé"));
        for (name, value) in &full.request_headers {
            assert!(value.len() <= 200, "{name}: {} bytes", value.len());
        }
        assert!(full.request_headers["x-custom"].ends_with("é…"));
    }
    app.stop().await;
}

async fn a_list_page_stays_under_4_mib_and_ends_early_with_a_next_page_token(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (id, secret) = receiver(&app, Gh, 0).await;
    // 80 signed deliveries, each with 60 KB of headers (under --max-header-bytes): 4.8 MB of
    // listing, more than a default client takes in one message.
    let body = fixture("github/ping.json");
    let padding = "p".repeat(60_000);
    for _ in 0..80 {
        let mut headers = host_headers(Gh, "ping", &key(), Some(&secret), &body);
        headers.push(("x-padding", padding.clone()));
        let r = app.post(&id, &headers, body.clone()).await;
        assert_eq!(r.status(), 200);
    }
    let first = app
        .deliveries()
        .await
        .list_deliveries(app.req(ListDeliveriesRequest {
            receiver_id: id.clone(),
            page_size: 500,
            ..Default::default()
        }))
        .await
        .expect("the first page fits a default client's 4 MiB")
        .into_inner();
    assert!(first.deliveries.len() < 80, "the page ended early by bytes");
    assert!(!first.next_page_token.is_empty(), "and says more follow");
    assert_eq!(first.total_size, 80);
    let all = all_deliveries(&app, &id).await;
    assert_eq!(all.len(), 80, "paging reaches every delivery");
    let mut ids: Vec<_> = all.iter().map(|d| d.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 80, "no delivery twice");
    app.stop().await;
}

async fn grpcurl_reads_a_25_mib_delivery_with_get_and_the_whole_body_with_the_stream(
    engine: Engine,
) {
    if !common::binary::grpcurl_available() {
        return;
    }
    let app = TestApp::spawn(engine).await;
    let (id, secret) = receiver(&app, Gh, 0).await;
    // A signed GitHub ping of exactly 25 MiB (--max-body-bytes' default).
    let prefix = br#"{"zen": ""#;
    let suffix = br#"", "hook_id": 1}"#;
    let mut body = prefix.to_vec();
    body.extend(incompressible(25 * MIB - prefix.len() - suffix.len()));
    body.extend_from_slice(suffix);
    assert_eq!(body.len(), 25 * MIB);
    let r = reqwest::Client::new()
        .post(format!("http://{}/.api/webhooks/{id}", app.http_addr))
        .header("content-type", "application/json")
        .header("x-github-event", "ping")
        .header("x-github-delivery", key())
        .header("x-hub-signature-256", sha256_signature(&secret, &body))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let delivery_id = json_body(r).await["delivery_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let addr = app.grpc_addr.to_string();
    let request = format!(r#"{{"id": "{delivery_id}"}}"#);
    let got = common::binary::grpcurl_json(&[
        "-plaintext",
        "-d",
        &request,
        &addr,
        "hookgate.v1.DeliveryService/GetDelivery",
    ]);
    assert_eq!(got["id"], delivery_id.as_str());
    assert_eq!(
        got["requestBodyTruncated"], true,
        "{}",
        got["requestBodySize"]
    );
    assert_eq!(got["requestBodySize"], (25 * MIB).to_string());
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let start = b64
        .decode(got["requestBody"].as_str().expect("the start of the body"))
        .unwrap();
    let chunk = 768 * 1024;
    assert_eq!(start.len(), chunk);
    assert!(
        start == body[..chunk],
        "GetDelivery gives the start of the body"
    );

    let (ok, stdout, stderr) = common::binary::grpcurl(&[
        "-plaintext",
        "-d",
        &request,
        &addr,
        "hookgate.v1.DeliveryService/StreamDeliveryBody",
    ]);
    assert!(ok, "StreamDeliveryBody: {stderr}");
    let mut whole = Vec::new();
    let mut chunks = 0;
    for chunk in serde_json::Deserializer::from_str(&stdout).into_iter::<serde_json::Value>() {
        let chunk = chunk.expect("grpcurl prints one JSON object per chunk");
        let offset: usize = chunk["offset"]
            .as_str()
            .map_or(0, |o| o.parse().expect("an offset"));
        assert_eq!(offset, whole.len(), "chunks come in order");
        assert_eq!(chunk["totalSize"], (25 * MIB).to_string());
        whole.extend(b64.decode(chunk["data"].as_str().unwrap()).unwrap());
        chunks += 1;
    }
    assert_eq!(chunks, (25 * MIB).div_ceil(chunk));
    assert!(whole == body, "the streamed body is the body received");
    app.stop().await;
}

on_both_engines!(
    an_unsigned_ping_with_a_10_mib_body_grows_the_database_by_less_than_64_kib,
    unsigned_pings_never_count_against_the_rate_limit,
    an_unsigned_ping_never_makes_a_later_signed_delivery_with_its_key_a_duplicate,
    a_rejected_delivery_keeps_only_a_few_header_bytes_and_nothing_of_its_body,
    a_list_page_stays_under_4_mib_and_ends_early_with_a_next_page_token,
    grpcurl_reads_a_25_mib_delivery_with_get_and_the_whole_body_with_the_stream,
);
