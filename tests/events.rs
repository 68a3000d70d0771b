//! `EventService.Watch` end to end, on SQLite and PostgreSQL: events made by real trigger calls,
//! sync workers and GitHub deliveries are replayed in cursor order, resumed from a cursor without
//! a loss or a repeat, streamed live, filtered by kind and receiver, and followed with grpcurl
//! against the built binary; a watcher open when the service stops gets `UNAVAILABLE` saying to
//! resume from its last cursor; and, on PostgreSQL, a transaction that holds its event uncommitted
//! for 10 s while others commit theirs loses nothing for a live or a resuming watcher.

mod common;

use std::time::Duration;

use common::binary::{Served, grpcurl, grpcurl_available, grpcurl_json};
use common::{Engine, TestApp, TestDatabase, fixture};
use hookgate::admin::proto::{
    ClaimSyncRequestsRequest, CodeHostKind, CompleteSyncRequestRequest, DeliveryState, Event,
    EventKind, ListChangesetsRequest, RegisterRepositoryRequest, Repository, RequestSyncRequest,
    SyncRequest, SyncRequestState, WatchRequest, changeset_service_client::ChangesetServiceClient,
    event::Subject, event_service_client::EventServiceClient,
    repository_service_client::RepositoryServiceClient,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};
use serde_json::Value;
use tonic::Streaming;

/// The code host of the trigger receivers of these tests.
const URN: &str = "https://git.example.com";
/// How long a test waits for an event it expects before it fails.
const EXPECT_WITHIN: Duration = Duration::from_secs(10);
/// How long a feed must stay silent to count as having sent everything (the service looks for
/// new events every 200 ms).
const QUIET: Duration = Duration::from_millis(1500);

use EventKind::{
    ChangesetUpdated as Updated, SyncCompleted as Completed, SyncRequested as Requested,
};

async fn repositories(app: &TestApp) -> RepositoryServiceClient<tonic::transport::Channel> {
    RepositoryServiceClient::new(app.channel().await)
}

/// Registers repository `name` of [`URN`].
async fn register(app: &TestApp, name: &str) -> Repository {
    register_in(app, URN, name).await
}

/// Registers repository `name` of `urn`.
async fn register_in(app: &TestApp, urn: &str, name: &str) -> Repository {
    repositories(app)
        .await
        .register_repository(app.req(RegisterRepositoryRequest {
            code_host_urn: urn.into(),
            name: name.into(),
            external_id: String::new(),
        }))
        .await
        .expect("the repository is registered")
        .into_inner()
}

/// Calls the trigger `(id, secret)`: for one repository, or for all of them with `None`.
/// Returns how many sync requests it made or joined.
async fn trigger(app: &TestApp, receiver: &(String, String), repository: Option<&str>) -> u64 {
    let mut url = format!(
        "http://{}/.api/webhooks/{}/{}",
        app.http_addr, receiver.0, receiver.1
    );
    if let Some(name) = repository {
        url.push_str(&format!("?repository={name}"));
    }
    let response = reqwest::Client::new()
        .post(url)
        .send()
        .await
        .expect("the ingress answers");
    assert_eq!(response.status(), 202);
    let answer = common::json_body(response).await;
    answer["sync_requests"]
        .as_u64()
        .unwrap_or_else(|| panic!("a count: {answer}"))
}

/// Claims every due sync request as `worker-1` and completes each successfully, in the order
/// they were handed out. Returns them as claimed.
async fn sync_all(app: &TestApp) -> Vec<SyncRequest> {
    let mut repos = repositories(app).await;
    let claimed = repos
        .claim_sync_requests(app.req(ClaimSyncRequestsRequest {
            worker: "worker-1".into(),
            max: 500,
            lease: None,
        }))
        .await
        .expect("sync requests are claimed")
        .into_inner()
        .sync_requests;
    for request in &claimed {
        let done = repos
            .complete_sync_request(app.req(CompleteSyncRequestRequest {
                id: request.id.clone(),
                success: true,
                error: String::new(),
            }))
            .await
            .expect("a claimed request is completed")
            .into_inner();
        assert_eq!(done.state, SyncRequestState::Completed as i32);
    }
    claimed
}

/// Delivers GitHub's `pull_request.opened` fixture to `receiver` and waits until it is applied.
async fn open_pull_request(app: &TestApp, receiver: &(String, String)) {
    let body: Value = serde_json::from_slice(&fixture("github/pull_request.opened.json"))
        .expect("fixtures are JSON");
    let d = app
        .deliver(CodeHostKind::Github, receiver, "pull_request", &body)
        .await;
    assert_eq!(d.state, DeliveryState::Processed as i32, "{d:?}");
}

/// Delivers GitHub's `push.branch-updated` fixture to `receiver` and waits until it is applied.
async fn push(app: &TestApp, receiver: &(String, String)) {
    let body: Value = serde_json::from_slice(&fixture("github/push.branch-updated.json"))
        .expect("fixtures are JSON");
    let d = app
        .deliver(CodeHostKind::Github, receiver, "push", &body)
        .await;
    assert_eq!(d.state, DeliveryState::Processed as i32, "{d:?}");
}

/// The id of the one changeset there is.
async fn only_changeset_id(app: &TestApp) -> String {
    let listed = ChangesetServiceClient::new(app.channel().await)
        .list_changesets(app.req(ListChangesetsRequest::default()))
        .await
        .expect("changesets are listed")
        .into_inner();
    assert_eq!(listed.total_size, 1, "{listed:?}");
    listed.changesets[0].id.clone()
}

async fn watch(app: &TestApp, request: WatchRequest) -> Streaming<Event> {
    EventServiceClient::new(app.channel().await)
        .watch(app.req(request))
        .await
        .expect("the feed opens")
        .into_inner()
}

fn after(cursor: i64) -> WatchRequest {
    WatchRequest {
        after_cursor: cursor,
        ..Default::default()
    }
}

/// The next event of the feed; fails if none comes within [`EXPECT_WITHIN`].
async fn next(feed: &mut Streaming<Event>) -> Event {
    match tokio::time::timeout(EXPECT_WITHIN, feed.message()).await {
        Ok(Ok(Some(event))) => event,
        Ok(Ok(None)) => panic!("the feed ended"),
        Ok(Err(status)) => panic!("the feed failed: {status}"),
        Err(_) => panic!("no event within {EXPECT_WITHIN:?}"),
    }
}

async fn take(feed: &mut Streaming<Event>, n: usize) -> Vec<Event> {
    let mut events = Vec::with_capacity(n);
    for _ in 0..n {
        events.push(next(feed).await);
    }
    events
}

/// Every event the feed sends until it has been quiet for [`QUIET`].
async fn drain(mut feed: Streaming<Event>) -> Vec<Event> {
    let mut events = Vec::new();
    loop {
        match tokio::time::timeout(QUIET, feed.message()).await {
            Ok(Ok(Some(event))) => events.push(event),
            Ok(Ok(None)) => panic!("the feed ended"),
            Ok(Err(status)) => panic!("the feed failed: {status}"),
            Err(_) => return events,
        }
    }
}

/// An event's cursor and kind.
fn cursor_and_kind(event: &Event) -> (i64, EventKind) {
    let kind = EventKind::try_from(event.kind).expect("a known event kind");
    (event.cursor, kind)
}

fn cursors_and_kinds(events: &[Event]) -> Vec<(i64, EventKind)> {
    events.iter().map(cursor_and_kind).collect()
}

fn cursors(events: &[Event]) -> Vec<i64> {
    events.iter().map(|e| e.cursor).collect()
}

fn sync_request_of(event: &Event) -> &SyncRequest {
    match &event.subject {
        Some(Subject::SyncRequest(r)) => r,
        other => panic!("event {} has no sync request: {other:?}", event.cursor),
    }
}

fn time_of(event: &Event) -> (i64, i32) {
    let t = event
        .time
        .as_ref()
        .unwrap_or_else(|| panic!("event {} has no time", event.cursor));
    (t.seconds, t.nanos)
}

on_both_engines!(
    watch_from_cursor_0_replays_every_event_in_order_with_its_subject,
    a_watch_resumed_after_the_last_cursor_seen_gets_exactly_the_newer_events,
    an_open_watch_receives_events_made_after_it_started,
    an_open_watch_ends_unavailable_with_a_reconnect_hint_when_the_service_stops,
    kinds_and_receiver_id_limit_what_is_streamed,
    a_negative_cursor_an_unknown_kind_or_a_malformed_receiver_is_invalid_argument,
    an_admin_follows_the_feed_with_grpcurl,
    cursors_given_before_the_upgrade_still_resume_and_new_events_follow_the_last_one_given,
);

async fn watch_from_cursor_0_replays_every_event_in_order_with_its_subject(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let trig = app
        .create_receiver("trigger", CodeHostKind::Generic, URN)
        .await;
    let github = app
        .create_receiver("github", CodeHostKind::Github, "https://github.com")
        .await;
    let one = register(&app, "octo/one").await;
    assert_eq!(trigger(&app, &trig, Some("octo/one")).await, 1);
    let synced = sync_all(&app).await;
    assert_eq!(synced.len(), 1, "{synced:?}");
    open_pull_request(&app, &github).await;
    let changeset_id = only_changeset_id(&app).await;

    let events = drain(watch(&app, after(0)).await).await;
    assert_eq!(
        cursors_and_kinds(&events),
        [(1, Requested), (2, Completed), (3, Updated)]
    );
    let times: Vec<_> = events.iter().map(time_of).collect();
    assert!(times.is_sorted(), "{times:?}");

    // A sync request's subject is the request as it is now: completed.
    for event in &events[..2] {
        let request = sync_request_of(event);
        assert_eq!(request.id, synced[0].id);
        assert_eq!(request.repository_id, one.id);
        assert_eq!(request.repository, "octo/one");
        assert_eq!(request.code_host_urn, "https://git.example.com/");
        assert_eq!(request.reason, "trigger");
        assert_eq!(request.state, SyncRequestState::Completed as i32);
        assert_eq!(request.worker, "worker-1");
    }
    let Some(Subject::Changeset(changeset)) = &events[2].subject else {
        panic!("a changeset event carries its changeset: {:?}", events[2]);
    };
    assert_eq!(changeset.id, changeset_id);
    assert_eq!(changeset.repository, "Codertocat/Hello-World");
    assert_eq!(changeset.code_host_urn, "https://github.com/");
    assert_eq!(changeset.number, 2);
    assert_eq!(changeset.title, "Update the README with new information.");
    app.stop().await;
}

async fn a_watch_resumed_after_the_last_cursor_seen_gets_exactly_the_newer_events(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let trig = app
        .create_receiver("trigger", CodeHostKind::Generic, URN)
        .await;
    for name in ["octo/one", "octo/two", "octo/three"] {
        register(&app, name).await;
    }
    assert_eq!(trigger(&app, &trig, None).await, 3);

    // Read two of the three, then leave.
    let mut feed = watch(&app, after(0)).await;
    let first = take(&mut feed, 2).await;
    assert_eq!(cursors_and_kinds(&first), [(1, Requested), (2, Requested)]);
    let last_seen = first[1].cursor;
    drop(feed);

    let synced = sync_all(&app).await;
    assert_eq!(synced.len(), 3, "{synced:?}");
    assert_eq!(trigger(&app, &trig, Some("octo/one")).await, 1);

    let resumed = drain(watch(&app, after(last_seen)).await).await;
    assert_eq!(
        cursors_and_kinds(&resumed),
        [
            (3, Requested),
            (4, Completed),
            (5, Completed),
            (6, Completed),
            (7, Requested)
        ]
    );
    // The one not read before leaving is the third request (requests are made by name).
    assert_eq!(sync_request_of(&resumed[0]).repository, "octo/two");
    let completed: Vec<&str> = resumed[1..4]
        .iter()
        .map(|e| sync_request_of(e).id.as_str())
        .collect();
    let claimed: Vec<&str> = synced.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(completed, claimed);
    let again = sync_request_of(&resumed[4]);
    assert_eq!(again.repository, "octo/one");
    assert_eq!(again.state, SyncRequestState::Pending as i32);
    assert!(!claimed.contains(&again.id.as_str()), "a new request");

    // Everything, read again from the start, is the same events once each.
    let all = drain(watch(&app, after(0)).await).await;
    assert_eq!(cursors(&all), [1, 2, 3, 4, 5, 6, 7]);
    app.stop().await;
}

async fn an_open_watch_receives_events_made_after_it_started(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let trig = app
        .create_receiver("trigger", CodeHostKind::Generic, URN)
        .await;
    let github = app
        .create_receiver("github", CodeHostKind::Github, "https://github.com")
        .await;
    register(&app, "octo/one").await;
    let mut feed = watch(&app, after(0)).await;

    trigger(&app, &trig, Some("octo/one")).await;
    let requested = next(&mut feed).await;
    assert_eq!(cursor_and_kind(&requested), (1, Requested));

    // The feed has answered once, so it is past its first look: these arrive live.
    let synced = sync_all(&app).await;
    let completed = next(&mut feed).await;
    assert_eq!(cursor_and_kind(&completed), (2, Completed));
    assert_eq!(sync_request_of(&completed).id, synced[0].id);

    // A second watcher from the end of the feed gets only what happens next.
    let late = watch(&app, after(2)).await;
    open_pull_request(&app, &github).await;
    let updated = next(&mut feed).await;
    assert_eq!(cursor_and_kind(&updated), (3, Updated));
    assert_eq!(cursors_and_kinds(&drain(late).await), [(3, Updated)]);
    // Leave before stopping: see the test below for a service stopped under a watcher.
    drop(feed);
    app.stop().await;
}

async fn an_open_watch_ends_unavailable_with_a_reconnect_hint_when_the_service_stops(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let trig = app
        .create_receiver("trigger", CodeHostKind::Generic, URN)
        .await;
    register(&app, "octo/one").await;
    let mut feed = watch(&app, after(0)).await;
    trigger(&app, &trig, Some("octo/one")).await;
    assert_eq!(cursor_and_kind(&next(&mut feed).await), (1, Requested));

    // A graceful stop waits for open requests; a feed that never ends must not hold it forever.
    tokio::time::timeout(EXPECT_WITHIN, app.stop())
        .await
        .expect("the service stops within 10 s while a watcher is connected");
    // Not a silent end, which a client cannot tell from "nothing more will ever come": an error
    // that says to come back, and how.
    let status = match tokio::time::timeout(EXPECT_WITHIN, feed.message()).await {
        Ok(Err(status)) => status,
        Ok(Ok(None)) => panic!("the feed ended silently when the service stopped"),
        Ok(Ok(Some(event))) => panic!("an event after the stop: {event:?}"),
        Err(_) => panic!("the feed is still open 10 s after the service stopped"),
    };
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    let message = status.message();
    assert!(
        message.contains("shutting down")
            && message.contains("after_cursor")
            && message.contains("last cursor you received"),
        "the message says to reconnect with the last cursor: {message}"
    );
}

async fn kinds_and_receiver_id_limit_what_is_streamed(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let trig = app
        .create_receiver("trigger", CodeHostKind::Generic, URN)
        .await;
    let github = app
        .create_receiver("github", CodeHostKind::Github, "https://github.com")
        .await;
    let one = register(&app, "octo/one").await;
    // 1: requested through the trigger.
    trigger(&app, &trig, Some("octo/one")).await;
    // 2: a changeset through GitHub; 3: a push through GitHub requests a sync.
    open_pull_request(&app, &github).await;
    push(&app, &github).await;
    // 4: an admin's request, through no receiver (it joins the pending one).
    repositories(&app)
        .await
        .request_sync(app.req(RequestSyncRequest {
            repository_id: one.id.clone(),
            ..Default::default()
        }))
        .await
        .expect("a sync is requested");
    // 5 and 6: both completed, each under the receiver that asked first.
    let synced = sync_all(&app).await;
    assert_eq!(
        synced
            .iter()
            .map(|r| r.repository.as_str())
            .collect::<Vec<_>>(),
        ["octo/one", "Codertocat/Hello-World"]
    );

    let filters: Vec<(&str, WatchRequest, Vec<i64>)> = vec![
        ("no filter", after(0), vec![1, 2, 3, 4, 5, 6]),
        (
            "sync requested",
            WatchRequest {
                kinds: vec![Requested as i32],
                ..Default::default()
            },
            vec![1, 3, 4],
        ),
        (
            "sync completed or changeset updated",
            WatchRequest {
                kinds: vec![Completed as i32, Updated as i32],
                ..Default::default()
            },
            vec![2, 5, 6],
        ),
        (
            "delivery failed",
            WatchRequest {
                kinds: vec![EventKind::DeliveryFailed as i32],
                ..Default::default()
            },
            vec![],
        ),
        (
            "the trigger",
            WatchRequest {
                receiver_id: trig.0.clone(),
                ..Default::default()
            },
            vec![1, 5],
        ),
        (
            "GitHub",
            WatchRequest {
                receiver_id: github.0.clone(),
                ..Default::default()
            },
            vec![2, 3, 6],
        ),
        (
            "GitHub's sync requests after cursor 2",
            WatchRequest {
                after_cursor: 2,
                receiver_id: github.0.clone(),
                kinds: vec![Requested as i32],
            },
            vec![3],
        ),
    ];
    // All feeds at once: each must stay quiet for a while to prove it sends nothing more.
    let mut running = Vec::new();
    for (name, request, expected) in filters {
        let feed = watch(&app, request).await;
        running.push((name, expected, tokio::spawn(drain(feed))));
    }
    for (name, expected, task) in running {
        let got = task.await.expect("the drain does not panic");
        assert_eq!(cursors(&got), expected, "{name}");
    }
    app.stop().await;
}

async fn a_negative_cursor_an_unknown_kind_or_a_malformed_receiver_is_invalid_argument(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let mut client = EventServiceClient::new(app.channel().await);
    for (request, message) in [
        (after(-1), Some("after_cursor must not be negative")),
        (
            WatchRequest {
                kinds: vec![99],
                ..Default::default()
            },
            Some("kinds has 99, which is not an event kind"),
        ),
        (
            WatchRequest {
                receiver_id: "not-a-uuid".into(),
                ..Default::default()
            },
            None,
        ),
    ] {
        let status = client
            .watch(app.req(request.clone()))
            .await
            .expect_err("the request is refused");
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{request:?}");
        if let Some(message) = message {
            assert_eq!(status.message(), message);
        } else {
            assert!(status.message().contains("receiver_id"), "{status:?}");
        }
    }
    app.stop().await;
}

/// A feed written by the version before cursors were given on commit (migration 000017): five
/// events, the newest two already gone (purged or never committed). After the upgrade, the
/// cursors clients hold still resume, and new events come after the last cursor ever given.
async fn cursors_given_before_the_upgrade_still_resume_and_new_events_follow_the_last_one_given(
    engine: Engine,
) {
    use migration::MigratorTrait;
    let db = TestDatabase::new(engine).await;
    let conn = hookgate::db::connect(&db.url)
        .await
        .expect("the test database accepts connections");
    migration::Migrator::up(conn.pool(), Some(10))
        .await
        .expect("the schema before 000017");
    let now = hookgate::time::Timestamp::now().micros();
    for _ in 0..5 {
        conn.execute_unprepared(&format!(
            "INSERT INTO events (time, kind, receiver_id, subject_id) \
             VALUES ({now}, 'SYNC_REQUESTED', '', '{}')",
            uuid::Uuid::new_v4()
        ))
        .await
        .expect("an event of the old schema is written");
    }
    conn.execute_unprepared(r#"DELETE FROM events WHERE "cursor" > 3"#)
        .await
        .expect("the newest events are deleted");
    conn.close().await.ok();

    let app = TestApp::start(db, |_| {}).await;
    let trig = app
        .create_receiver("trigger", CodeHostKind::Generic, URN)
        .await;
    register(&app, "octo/one").await;
    assert_eq!(
        cursors(&drain(watch(&app, after(1)).await).await),
        [2, 3],
        "the old events keep their cursors"
    );
    // A client that saw cursor 5 before the upgrade.
    let resumed = watch(&app, after(5)).await;
    trigger(&app, &trig, Some("octo/one")).await;
    let new = drain(resumed).await;
    assert_eq!(cursors_and_kinds(&new), [(6, Requested)]);
    assert_eq!(sync_request_of(&new[0]).repository, "octo/one");
    assert_eq!(
        cursors(&drain(watch(&app, after(0)).await).await),
        [1, 2, 3, 6]
    );
    app.stop().await;
}

// ---- The built binary and grpcurl (as in tests/cli.rs) ----

async fn an_admin_follows_the_feed_with_grpcurl(engine: Engine) {
    if !grpcurl_available() {
        return;
    }
    let db = TestDatabase::new(engine).await;
    let served = Served::start(&db);
    let addr = served.grpc_addr.as_str();
    let created = grpcurl_json(&[
        "-plaintext",
        "-d",
        r#"{"name": "nightly", "code_host_kind": "CODE_HOST_KIND_GENERIC", "code_host_urn": "https://git.example.com"}"#,
        addr,
        "hookgate.v1.ReceiverService/CreateReceiver",
    ]);
    let id = created["receiver"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("an id: {created}"))
        .to_owned();
    let secret = created["secret"]
        .as_str()
        .unwrap_or_else(|| panic!("a secret: {created}"))
        .to_owned();
    let client = reqwest::Client::new();
    for name in ["octo/one", "octo/two"] {
        grpcurl_json(&[
            "-plaintext",
            "-d",
            &format!(r#"{{"code_host_urn": "https://git.example.com", "name": "{name}"}}"#),
            addr,
            "hookgate.v1.RepositoryService/RegisterRepository",
        ]);
        let r = client
            .get(format!(
                "http://{}/.api/webhooks/{id}/{secret}?repository={name}",
                served.http_addr
            ))
            .send()
            .await
            .expect("the ingress answers");
        assert_eq!(r.status(), 202);
    }

    // Watch streams until it is stopped: -max-time ends it, so it exits with DeadlineExceeded
    // after printing what it got.
    let (_, stdout, stderr) = grpcurl(&[
        "-plaintext",
        "-max-time",
        "3",
        "-d",
        r#"{"after_cursor": 1}"#,
        addr,
        "hookgate.v1.EventService/Watch",
    ]);
    assert!(stderr.contains("DeadlineExceeded"), "{stderr}");
    let events: Vec<Value> = serde_json::Deserializer::from_str(&stdout)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("grpcurl printed JSON objects ({e}): {stdout}"));
    assert_eq!(events.len(), 1, "{stdout}");
    let event = &events[0];
    // int64 is a string in protobuf's JSON.
    assert_eq!(event["cursor"], "2", "{event}");
    assert_eq!(event["kind"], "EVENT_KIND_SYNC_REQUESTED", "{event}");
    assert!(event["time"].is_string(), "{event}");
    let request = &event["syncRequest"];
    assert_eq!(request["repository"], "octo/two", "{event}");
    assert_eq!(
        request["codeHostUrn"], "https://git.example.com/",
        "{event}"
    );
    assert_eq!(request["state"], "SYNC_REQUEST_STATE_PENDING", "{event}");
    assert_eq!(request["reason"], "trigger", "{event}");
    let (status, log) = served.terminate();
    assert!(status.success(), "{log}");
    db.drop_database().await;
}

// ---- A long transaction (PostgreSQL) ----

/// How long the held writer keeps its transaction open after it took its place in the feed.
const HELD: Duration = Duration::from_secs(10);
/// The code host of the writers that commit while the held one waits.
const OTHER_URN: &str = "https://other.example.com";

/// The kind and the repository of each event, as `(kind, repository)`, sorted: what "every
/// event once" compares, whatever the order.
fn kinds_and_repositories(events: &[Event]) -> Vec<(EventKind, String)> {
    let mut out: Vec<_> = events
        .iter()
        .map(|e| (cursor_and_kind(e).1, sync_request_of(e).repository.clone()))
        .collect();
    out.sort();
    out
}

/// How many sessions of the test database wait for a lock.
async fn lock_waiters(db: &DatabaseConnection) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        ))
        .await
        .expect("pg_stat_activity is readable")
        .expect("a count");
    row.try_get("", "n").expect("a count")
}

/// A real trigger call takes its place in the feed (the sync request of `octo/a-first`, made
/// and recorded in its transaction), then waits 10 s on the row of `octo/z-held`, which another
/// transaction (another replica's, here the test's) holds. Meanwhile five other trigger calls
/// commit their events. A watcher that started before everything, and a watcher that read three
/// events, left, and came back with its last cursor, each get every event exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(hookgate_postgres),
    ignore = "set HOOKGATE_TEST_DATABASE_URL to run this PostgreSQL test"
)]
async fn an_event_committed_10_s_after_it_took_its_place_reaches_live_and_resuming_watchers_once() {
    let app = TestApp::spawn(Engine::Postgres).await;
    let held_trigger = app
        .create_receiver("held", CodeHostKind::Generic, URN)
        .await;
    let other_trigger = app
        .create_receiver("other", CodeHostKind::Generic, OTHER_URN)
        .await;
    register(&app, "octo/a-first").await;
    let held = register(&app, "octo/z-held").await;
    for n in 1..=5 {
        register_in(&app, OTHER_URN, &format!("other/{n}")).await;
    }
    let live = watch(&app, after(0)).await;
    let mut leaving = watch(&app, after(0)).await;

    // Another writer holds `octo/z-held`'s row.
    let raw = hookgate::db::connect(&app.db.url)
        .await
        .expect("the test database accepts connections");
    let holder = raw.begin().await.expect("a transaction begins");
    holder
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT id FROM repositories WHERE id = $1 FOR UPDATE",
            [held.id.clone().into()],
        ))
        .await
        .expect("the repository's row is locked");

    // A trigger for every repository of URN: it records `octo/a-first`'s request, then waits.
    let waiting = tokio::spawn({
        let url = format!(
            "http://{}/.api/webhooks/{}/{}",
            app.http_addr, held_trigger.0, held_trigger.1
        );
        async move { reqwest::Client::new().post(url).send().await }
    });
    let deadline = tokio::time::Instant::now() + EXPECT_WITHIN;
    while lock_waiters(&raw).await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the trigger never waited for octo/z-held"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let held_since = tokio::time::Instant::now();

    // Others commit while it waits.
    for n in 1..=5 {
        let name = format!("other/{n}");
        assert_eq!(trigger(&app, &other_trigger, Some(&name)).await, 1);
    }
    // The one that leaves reads three of them while the writer still waits, and goes.
    let first = take(&mut leaving, 3).await;
    assert!(
        held_since.elapsed() < HELD,
        "three committed events took {:?} to reach a watcher",
        held_since.elapsed()
    );
    drop(leaving);
    let last_seen = first[2].cursor;

    tokio::time::sleep_until(held_since + HELD).await;
    holder.rollback().await.expect("the lock is released");
    let answered = waiting
        .await
        .expect("the trigger call does not panic")
        .expect("the ingress answers");
    assert_eq!(answered.status(), 202);
    assert_eq!(common::json_body(answered).await["sync_requests"], 2);

    let expected: Vec<(EventKind, String)> = {
        let mut e: Vec<_> = ["octo/a-first", "octo/z-held"]
            .into_iter()
            .map(String::from)
            .chain((1..=5).map(|n| format!("other/{n}")))
            .map(|r| (Requested, r))
            .collect();
        e.sort();
        e
    };
    // The watcher that stayed: every event once, in increasing cursors.
    let seen = drain(live).await;
    let got = cursors(&seen);
    assert!(
        got.is_sorted() && got.windows(2).all(|w| w[0] != w[1]),
        "{got:?}"
    );
    assert_eq!(kinds_and_repositories(&seen), expected, "cursors {got:?}");

    // The one that came back: the four it had not read, once each.
    let rest = drain(watch(&app, after(last_seen)).await).await;
    let mut both = first.clone();
    both.extend(rest.iter().cloned());
    assert_eq!(
        kinds_and_repositories(&both),
        expected,
        "read {:?} before leaving, then {:?}",
        cursors(&first),
        cursors(&rest)
    );
    raw.close().await.ok();
    app.stop().await;
}
