//! One bad delivery harms only itself. A value the database cannot hold (a NUL in text, which
//! PostgreSQL refuses) is made storable where it enters; a delivery the database still refuses
//! fails alone, answered 500, while the deliveries committed with it are stored; a panic while
//! one delivery is handled fails that delivery and no other; and a worker that dies anyway is
//! restarted and counted, with `/healthz` answering 503 until it runs again.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Engine, TestApp, TestDatabase, fixture, host_headers, json_body};
use hookgate::admin::proto::{CodeHostKind, DeliveryState};
use hookgate::deliveries::{ClaimedDelivery, Event, Handler, HandlerError, Outcome};
use hookgate::receivers::Receiver;
use sea_orm::{
    ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, TransactionTrait,
};
use serde_json::Value;

on_both_engines!(
    a_signed_delivery_whose_action_or_title_holds_nul_is_stored_answered_202_and_processed,
    unauthenticated_requests_whose_action_holds_nul_do_not_fail_the_deliveries_committed_with_them,
    a_delivery_the_database_refuses_fails_alone_with_500_and_its_neighbours_are_stored,
    a_panic_while_handling_one_delivery_fails_it_alone_and_the_others_are_processed,
    a_worker_that_dies_is_restarted_and_counted_and_healthz_answers_503_meanwhile,
);

/// A GitHub `pull_request` delivery (the real `opened` fixture) for pull request `number`, with
/// `action` and `title` put in its body, under delivery key `key`, signed with `secret`.
fn pull_request(
    secret: &str,
    key: &str,
    number: i64,
    action: &str,
    title: &str,
) -> (Vec<(&'static str, String)>, Vec<u8>) {
    let mut body: Value = serde_json::from_slice(&fixture("github/pull_request.opened.json"))
        .expect("the fixture is JSON");
    body["action"] = action.into();
    body["number"] = number.into();
    body["pull_request"]["number"] = number.into();
    body["pull_request"]["title"] = title.into();
    let body = serde_json::to_vec(&body).expect("JSON serialises");
    let headers = host_headers(
        CodeHostKind::Github,
        "pull_request",
        key,
        Some(secret),
        &body,
    );
    (headers, body)
}

/// One request to send: its headers and its body.
type SignedRequest = (Vec<(&'static str, String)>, Vec<u8>);

/// Posts `delivery`, expects 202, and waits until the worker is done with it.
async fn accepted_and_done(
    app: &TestApp,
    receiver: &str,
    (headers, body): (Vec<(&'static str, String)>, Vec<u8>),
) -> hookgate::admin::proto::Delivery {
    let answer = app.post(receiver, &headers, body).await;
    let status = answer.status();
    let answer = json_body(answer).await;
    assert_eq!(status, 202, "{answer}");
    app.wait_until_done(answer["delivery_id"].as_str().expect("a delivery id"))
        .await
}

/// Posts every delivery of `requests` at once over one client; returns each one's status and
/// answer, in order.
async fn post_all(
    http_addr: std::net::SocketAddr,
    receiver: String,
    requests: Vec<SignedRequest>,
) -> Vec<(u16, Option<String>, Value)> {
    let client = reqwest::Client::new();
    let url = format!("http://{http_addr}/.api/webhooks/{receiver}");
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|(headers, body)| {
            let mut request = client.post(&url).body(body);
            for (name, value) in headers {
                request = request.header(name, value);
            }
            tokio::spawn(async move {
                let answer = request.send().await.expect("the ingress answers");
                let status = answer.status().as_u16();
                let retry_after = answer
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap_or_default().to_owned());
                (status, retry_after, json_body(answer).await)
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("the request task does not panic"));
    }
    answers
}

/// Holds every write to the deliveries from another session until the transaction is dropped
/// (PostgreSQL: a table lock; SQLite: the file's write lock), so that requests sent meanwhile
/// queue up and are written together in a few large group commits once it is let go.
async fn hold_delivery_writes(
    engine: Engine,
    url: &str,
) -> (DatabaseConnection, DatabaseTransaction) {
    let conn = Database::connect(url).await.expect("a second session");
    let txn = conn.begin().await.expect("a transaction");
    let hold = match engine {
        Engine::Postgres => "LOCK TABLE deliveries IN EXCLUSIVE MODE",
        Engine::Sqlite => "UPDATE receivers SET name = name",
    };
    txn.execute_unprepared(hold)
        .await
        .expect("the writes can be held");
    (conn, txn)
}

/// Posts `requests` at once while `held` holds the deliveries' writes, lets go after a moment,
/// and returns the answers.
async fn post_while_held(
    app: &TestApp,
    receiver: &str,
    requests: Vec<SignedRequest>,
    held: (DatabaseConnection, DatabaseTransaction),
) -> Vec<(u16, Option<String>, Value)> {
    let answers = tokio::spawn(post_all(app.http_addr, receiver.to_owned(), requests));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(held);
    answers.await.expect("the posting task does not panic")
}

async fn a_signed_delivery_whose_action_or_title_holds_nul_is_stored_answered_202_and_processed(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let github = app
        .create_receiver("nul", CodeHostKind::Github, "https://github.com")
        .await;

    // The action names the event the log keeps: text, which PostgreSQL cannot hold with a NUL.
    let delivery = pull_request(&github.1, "nul-in-action", 1, "opened\u{0}", "fine");
    let body = delivery.1.clone();
    let stored = accepted_and_done(&app, &github.0, delivery).await;
    assert_eq!(stored.event, "pull_request/opened\u{FFFD}", "{stored:?}");
    assert_eq!(
        stored.request_body, body,
        "the raw body is stored as it came"
    );
    assert_ne!(stored.state, DeliveryState::Failed as i32, "{stored:?}");

    // The title becomes a changeset's: text the worker writes.
    let delivery = pull_request(&github.1, "nul-in-title", 2, "opened", "a\u{0}title");
    let processed = accepted_and_done(&app, &github.0, delivery).await;
    assert_eq!(
        processed.state,
        DeliveryState::Processed as i32,
        "{processed:?}"
    );
    assert_eq!(
        app.changeset("Codertocat/Hello-World", 2).await.title,
        "a\u{FFFD}title"
    );
    app.stop().await;
}

async fn unauthenticated_requests_whose_action_holds_nul_do_not_fail_the_deliveries_committed_with_them(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let github = app
        .create_receiver("nul-neighbours", CodeHostKind::Github, "https://github.com")
        .await;
    const EACH: i64 = 30;
    let mut requests = Vec::new();
    for i in 0..EACH {
        // A stranger's request (wrong secret) whose action holds a NUL, then a real delivery.
        requests.push(pull_request(
            "not-the-secret",
            &format!("stranger-{i}"),
            1000 + i,
            "opened\u{0}",
            "x",
        ));
        requests.push(pull_request(
            &github.1,
            &format!("legit-{i}"),
            i + 1,
            "opened",
            "legit",
        ));
    }
    let (held, txn) = hold_delivery_writes(engine, &app.db.url).await;
    let answers = post_while_held(&app, &github.0, requests, (held, txn)).await;
    let legit: Vec<_> = answers.iter().skip(1).step_by(2).collect();
    let strangers: Vec<_> = answers.iter().step_by(2).collect();
    let legit_accepted = legit.iter().filter(|(s, ..)| *s == 202).count();
    eprintln!(
        "{engine:?}: {legit_accepted} of {EACH} signed deliveries answered 202 beside {EACH} unauthenticated ones with a NUL in their action"
    );
    for (status, _, answer) in &strangers {
        assert_eq!(*status, 401, "a stranger is refused: {answer}");
    }
    for (status, _, answer) in &legit {
        assert_eq!(*status, 202, "a signed delivery is stored: {answer}");
        let id = answer["delivery_id"].as_str().expect("a delivery id");
        app.get_delivery(id).await;
    }
    app.stop().await;
}

/// The delivery key the database is made to refuse.
const REFUSED_KEY: &str = "refused-by-the-database";

/// Makes the database refuse a delivery with [`REFUSED_KEY`] as a data error, the way
/// PostgreSQL refuses a NUL in text (SQLSTATE 22021) and SQLite a constraint (a trigger's
/// `RAISE(ABORT)`): the one value that still cannot be stored, now that NULs are made storable.
async fn refuse_one_key(engine: Engine, url: &str) {
    let conn = Database::connect(url).await.expect("a second session");
    let sql = match engine {
        Engine::Postgres => format!(
            "CREATE FUNCTION refuse_one_key() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
               IF NEW.delivery_key = '{REFUSED_KEY}' THEN \
                 RAISE EXCEPTION 'invalid byte sequence for encoding \"UTF8\": 0x00' USING ERRCODE = '22021'; \
               END IF; RETURN NEW; END $$; \
             CREATE TRIGGER refuse_one_key BEFORE INSERT ON deliveries \
               FOR EACH ROW EXECUTE FUNCTION refuse_one_key();"
        ),
        Engine::Sqlite => format!(
            "CREATE TRIGGER refuse_one_key BEFORE INSERT ON deliveries \
               WHEN NEW.delivery_key = '{REFUSED_KEY}' \
               BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;"
        ),
    };
    conn.execute_unprepared(&sql)
        .await
        .expect("the refusing trigger is made");
    conn.close().await.ok();
}

async fn a_delivery_the_database_refuses_fails_alone_with_500_and_its_neighbours_are_stored(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let github = app
        .create_receiver("refused", CodeHostKind::Github, "https://github.com")
        .await;
    refuse_one_key(engine, &app.db.url).await;
    const NEIGHBOURS: i64 = 40;
    let refused_at = (NEIGHBOURS / 2) as usize;
    let mut requests: Vec<_> = (0..NEIGHBOURS)
        .map(|i| {
            pull_request(
                &github.1,
                &format!("neighbour-{i}"),
                i + 1,
                "opened",
                "fine",
            )
        })
        .collect();
    requests.insert(
        refused_at,
        pull_request(&github.1, REFUSED_KEY, 999, "opened", "refused"),
    );
    let held = hold_delivery_writes(engine, &app.db.url).await;
    let mut answers = post_while_held(&app, &github.0, requests, held).await;

    let (status, retry_after, answer) = answers.remove(refused_at);
    eprintln!("{engine:?}: the refused delivery was answered {status}: {answer}");
    assert_eq!(status, 500, "a permanent store error is 500: {answer}");
    assert_eq!(
        retry_after, None,
        "a 500 does not ask to retry as if it would pass"
    );
    let message = answer["error"].as_str().unwrap_or_default();
    assert!(
        message.contains("refused"),
        "the answer says what happened: {message}"
    );
    let accepted = answers.iter().filter(|(s, ..)| *s == 202).count();
    eprintln!("{engine:?}: {accepted} of {NEIGHBOURS} neighbours answered 202");
    for (status, _, answer) in &answers {
        assert_eq!(*status, 202, "a neighbour is stored: {answer}");
        let id = answer["delivery_id"].as_str().expect("a delivery id");
        app.wait_until_done(id).await;
    }
    app.stop().await;
}

/// The real handler, except that it panics on the delivery whose GitHub delivery key is `key`.
struct PanicsOn {
    key: &'static str,
    real: Arc<dyn Handler>,
}

#[tonic::async_trait]
impl Handler for PanicsOn {
    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        receiver: &Receiver,
        delivery: &ClaimedDelivery,
        event: &Event,
    ) -> Result<Outcome, HandlerError> {
        if delivery
            .request_headers
            .get("x-github-delivery")
            .map(String::as_str)
            == Some(self.key)
        {
            panic!("the test handler panics on {}", self.key);
        }
        self.real.handle(txn, receiver, delivery, event).await
    }

    fn lock_order(&self, receiver: &Receiver, event: &Event) -> Option<String> {
        self.real.lock_order(receiver, event)
    }
}

async fn a_panic_while_handling_one_delivery_fails_it_alone_and_the_others_are_processed(
    engine: Engine,
) {
    const MARKED: &str = "panics-in-the-handler";
    let app = TestApp::start_built(
        TestDatabase::new(engine).await,
        |_| {},
        |app| app.wrap_handler(|real| Arc::new(PanicsOn { key: MARKED, real })),
    )
    .await;
    let github = app
        .create_receiver("panic", CodeHostKind::Github, "https://github.com")
        .await;
    let mut requests: Vec<_> = (0..6)
        .map(|i| {
            pull_request(
                &github.1,
                &format!("before-and-after-{i}"),
                i + 1,
                "opened",
                "fine",
            )
        })
        .collect();
    requests.insert(3, pull_request(&github.1, MARKED, 99, "opened", "marked"));
    let answers = post_all(app.http_addr, github.0.clone(), requests).await;
    let mut marked = None;
    for (i, (status, _, answer)) in answers.iter().enumerate() {
        assert_eq!(*status, 202, "{answer}");
        let id = answer["delivery_id"].as_str().expect("a delivery id");
        let done = app.wait_until_done(id).await;
        if i == 3 {
            marked = Some(done);
        } else {
            assert_eq!(done.state, DeliveryState::Processed as i32, "{done:?}");
        }
    }
    let marked = marked.expect("the marked delivery");
    eprintln!(
        "{engine:?}: the marked delivery: {:?}, {:?}",
        marked.state, marked.last_error
    );
    assert_eq!(marked.state, DeliveryState::Failed as i32, "{marked:?}");
    assert_eq!(marked.attempts, 1, "a panic is not tried again: {marked:?}");
    assert!(
        marked
            .last_error
            .contains("the test handler panics on panics-in-the-handler"),
        "the panic's message is kept: {}",
        marked.last_error
    );
    // And the worker goes on.
    let delivery = pull_request(&github.1, "after-the-panic", 100, "opened", "fine");
    let after = accepted_and_done(&app, &github.0, delivery).await;
    assert_eq!(after.state, DeliveryState::Processed as i32, "{after:?}");
    app.stop().await;
}

/// A panic payload that panics again when it is dropped: a panic the worker's per-delivery
/// isolation catches, but cannot get rid of, so the worker's task ends as with a bug outside
/// that isolation.
struct PanicsWhenDropped;

impl Drop for PanicsWhenDropped {
    fn drop(&mut self) {
        panic!("the test's panic payload panics when dropped");
    }
}

/// The real handler, except that its first call ends the worker's task.
struct KillsTheWorkerOnce {
    armed: AtomicBool,
    real: Arc<dyn Handler>,
}

#[tonic::async_trait]
impl Handler for KillsTheWorkerOnce {
    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        receiver: &Receiver,
        delivery: &ClaimedDelivery,
        event: &Event,
    ) -> Result<Outcome, HandlerError> {
        if self.armed.swap(false, Ordering::SeqCst) {
            std::panic::panic_any(PanicsWhenDropped);
        }
        self.real.handle(txn, receiver, delivery, event).await
    }

    fn lock_order(&self, receiver: &Receiver, event: &Event) -> Option<String> {
        self.real.lock_order(receiver, event)
    }
}

async fn healthz(app: &TestApp) -> (u16, String) {
    let answer = reqwest::get(format!("http://{}/healthz", app.http_addr))
        .await
        .expect("/healthz answers");
    (
        answer.status().as_u16(),
        answer.text().await.unwrap_or_default(),
    )
}

async fn a_worker_that_dies_is_restarted_and_counted_and_healthz_answers_503_meanwhile(
    engine: Engine,
) {
    let app = TestApp::start_built(
        TestDatabase::new(engine).await,
        |_| {},
        |app| {
            app.wrap_handler(|real| {
                Arc::new(KillsTheWorkerOnce {
                    armed: AtomicBool::new(true),
                    real,
                })
            })
        },
    )
    .await;
    let github = app
        .create_receiver("dies", CodeHostKind::Github, "https://github.com")
        .await;
    assert_eq!(healthz(&app).await.0, 200);
    let restarts_before = common::prometheus::scrape(&app.metrics_addr.to_string())
        .await
        .count("hookgate_worker_restarts_total", &[]);

    let (headers, body) = pull_request(&github.1, "kills-the-worker", 1, "opened", "fine");
    assert_eq!(app.post(&github.0, &headers, body).await.status(), 202);
    let died = Instant::now();
    let (status, reason) = loop {
        let (status, text) = healthz(&app).await;
        if status != 200 {
            break (status, text);
        }
        assert!(
            died.elapsed() < Duration::from_secs(20),
            "/healthz never said the worker stopped"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    eprintln!("{engine:?}: /healthz while the worker is down: {status} {reason}");
    assert_eq!(status, 503);
    assert!(reason.contains("no delivery worker is running"), "{reason}");
    loop {
        if healthz(&app).await.0 == 200 {
            break;
        }
        assert!(
            died.elapsed() < Duration::from_secs(30),
            "the worker was never restarted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "{engine:?}: the worker runs again {:?} after it died",
        died.elapsed()
    );
    let restarts = common::prometheus::scrape(&app.metrics_addr.to_string())
        .await
        .count("hookgate_worker_restarts_total", &[]);
    assert!(
        restarts > restarts_before,
        "the restart is counted: {restarts_before} then {restarts}"
    );

    // The restarted worker processes deliveries.
    let delivery = pull_request(&github.1, "after-the-restart", 2, "opened", "fine");
    let after = accepted_and_done(&app, &github.0, delivery).await;
    assert_eq!(after.state, DeliveryState::Processed as i32, "{after:?}");
    app.stop().await;
}
