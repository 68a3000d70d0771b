//! Crash safety, proven on the built binary: concurrent clients send deliveries, the process is
//! killed with SIGKILL mid-load, and started again on the same data. Then every delivery that got
//! a 2xx is stored, every delivery the clients send again (those that got no 2xx) is stored once,
//! and once the queue is empty each one's effects are there exactly once. Each kill point runs on
//! a fresh database, on SQLite and PostgreSQL.
//!
//! The deliveries are GitHub `pull_request` events, one pull request number each (each makes one
//! changeset with one timeline entry that names its delivery), and `push` events (each counts one
//! push in the repository's sync request: a push applied twice would count twice).

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use common::binary::Served;
use common::{Engine, TestDatabase, fixture, host_headers};
use hookgate::admin::proto::{
    Changeset, ChangesetEvent, CodeHostKind, CreateReceiverRequest, Delivery, DeliveryState,
    ListChangesetEventsRequest, ListChangesetsRequest, ListDeliveriesRequest,
    ListSyncRequestsRequest, SyncRequest, changeset_service_client::ChangesetServiceClient,
    delivery_service_client::DeliveryServiceClient, receiver_service_client::ReceiverServiceClient,
    repository_service_client::RepositoryServiceClient,
};
use serde_json::Value;
use tonic::transport::Channel;

/// Deliveries per scenario, and how many clients send them at once.
const DELIVERIES: usize = 240;
const CLIENTS: usize = 8;
/// Every sixth delivery is a push; the others are pull requests.
const PUSH_EVERY: usize = 6;
/// The pull request numbers start here.
const FIRST_NUMBER: i64 = 1000;
/// The repository every delivery names (the fixtures').
const REPOSITORY: &str = "Codertocat/Hello-World";
/// The worker's claim on a delivery: short, so that the restarted process takes up the claims
/// the killed one held within seconds rather than after the default minute.
const LEASE: &str = "2s";

on_both_engines!(
    a_process_killed_during_intake_loses_no_acknowledged_delivery_and_repeats_no_effect,
    a_process_killed_while_its_worker_processes_a_backlog_finishes_it_after_a_restart_exactly_once,
    a_process_killed_again_while_recovering_still_ends_with_every_delivery_processed_once,
);

/// Killed when a third of the deliveries are answered: clients have requests in flight, and the
/// worker is processing what came before.
async fn a_process_killed_during_intake_loses_no_acknowledged_delivery_and_repeats_no_effect(
    engine: Engine,
) {
    scenario(engine, &[Run::KilledAfterAnswers(1, 3), Run::ToTheEnd]).await;
}

/// Every delivery is stored first by an ingress-only process (itself killed once every client
/// has its answer); a process with a worker is then killed when a third of them are processed:
/// it dies holding claims and in the middle of a transaction, with no client connected.
async fn a_process_killed_while_its_worker_processes_a_backlog_finishes_it_after_a_restart_exactly_once(
    engine: Engine,
) {
    let report = scenario(
        engine,
        &[
            Run::IngressOnlyThenKilled,
            Run::KilledAfterProcessed(1, 3),
            Run::ToTheEnd,
        ],
    )
    .await;
    assert!(
        report.processed_after_last_kill > 0,
        "the worker had finished everything before the kill, so it interrupted no processing"
    );
}

/// Killed during intake, and killed again while the restarted process takes up the killed one's
/// work and the clients send what got no answer.
async fn a_process_killed_again_while_recovering_still_ends_with_every_delivery_processed_once(
    engine: Engine,
) {
    scenario(
        engine,
        &[
            Run::KilledAfterAnswers(1, 2),
            Run::KilledAfterAnswers(1, 2),
            Run::ToTheEnd,
        ],
    )
    .await;
}

/// How one process of a scenario runs and ends.
#[derive(Debug, Clone, Copy)]
enum Run {
    /// Started with `--ingress-only`; SIGKILLed once every client has its answer.
    IngressOnlyThenKilled,
    /// SIGKILLed once this fraction (numerator, denominator) of the deliveries sent to it have
    /// been answered.
    KilledAfterAnswers(usize, usize),
    /// SIGKILLed once this fraction of all deliveries is processed.
    KilledAfterProcessed(usize, usize),
    /// Runs until every delivery has a 2xx and the queue is empty; then everything is checked.
    ToTheEnd,
}

/// One delivery as its code host makes it: the key and the signed body are the same on every
/// try.
struct Planned {
    key: String,
    /// GitHub's headers: the event, the key, the signature of the body.
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    /// The pull request it opens; `None` for a push.
    number: Option<i64>,
}

/// What a client saw when it sent a delivery.
#[derive(Debug, Clone)]
enum Answer {
    /// A 2xx, naming the stored delivery. The client never sends it again.
    Acknowledged { status: u16, id: String },
    /// Any other status: the client sends it again.
    Refused(u16),
    /// No answer: the connection broke under the request (or the process was gone).
    Lost(String),
    /// Never sent: the process had been killed before the client got to it.
    Unsent,
}

/// Per-scenario numbers, for the report and for the scenarios' own assertions.
struct Report {
    /// Deliveries processed after the last kill (by their process time).
    processed_after_last_kill: usize,
    /// Deliveries claimed more than once: by a process that was killed holding the claim, then
    /// again when the claim ran out.
    claimed_again: usize,
}

async fn scenario(engine: Engine, runs: &[Run]) -> Report {
    let started = Instant::now();
    let db = TestDatabase::new(engine).await;
    let lease = ["--delivery-lease", LEASE];
    let mut receiver: Option<String> = None;
    let mut plan: Arc<Vec<Planned>> = Arc::new(Vec::new());
    // The answer each delivery got last, by key; once acknowledged it stays so.
    let mut answers: HashMap<String, Answer> = HashMap::new();
    let mut kills: Vec<SystemTime> = Vec::new();
    // Keys sent at least once (an answer may have been lost after the delivery was stored).
    let mut ever_sent: HashSet<String> = HashSet::new();
    // Keys whose answer was lost or refused, and which a resend found stored already (200).
    let mut found_stored_on_resend = 0usize;

    for (round, run) in runs.iter().enumerate() {
        let mut args = lease.to_vec();
        if matches!(run, Run::IngressOnlyThenKilled) {
            args.push("--ingress-only");
        }
        let round_start = Instant::now();
        let mut served = Served::start_with(&db, &args);
        let up = round_start.elapsed();
        let admin = Admin::new(served.channel().await);
        let receiver_id = match &receiver {
            Some(id) => id.clone(),
            None => {
                let (id, secret) = admin.create_receiver().await;
                plan = Arc::new(make_plan(&secret));
                receiver = Some(id.clone());
                id
            }
        };

        // What the killed process acknowledged is stored, under the id it answered with.
        let stored: HashMap<String, String> = admin
            .all_deliveries(&receiver_id)
            .await
            .into_iter()
            .map(|d| (d.id, d.delivery_key))
            .collect();
        for (key, answer) in &answers {
            if let Answer::Acknowledged { status, id } = answer {
                assert_eq!(
                    stored.get(id),
                    Some(key),
                    "round {round}: {key} got {status} naming delivery {id}, which is not stored under that key after the kill"
                );
            }
        }

        // The clients send every delivery not acknowledged yet, with its key and body.
        let pending: Vec<usize> = plan
            .iter()
            .enumerate()
            .filter(|(_, p)| !matches!(answers.get(&p.key), Some(Answer::Acknowledged { .. })))
            .map(|(i, _)| i)
            .collect();
        let clients = Clients::start(
            plan.clone(),
            pending.clone(),
            format!("http://{}/.api/webhooks/{receiver_id}", served.http_addr),
        );
        let sending = Instant::now();
        let killed = match *run {
            Run::IngressOnlyThenKilled => {
                clients.wait_until_answered(pending.len()).await;
                true
            }
            Run::KilledAfterAnswers(n, d) => {
                clients.wait_until_answered(pending.len() * n / d).await;
                true
            }
            Run::KilledAfterProcessed(n, d) => {
                clients.wait_until_answered(pending.len()).await;
                let seen = admin.wait_until_processed(DELIVERIES * n / d).await;
                eprintln!(
                    "{engine:?} round {round}: {seen} processed, {:?} after the start",
                    round_start.elapsed()
                );
                true
            }
            Run::ToTheEnd => false,
        };
        if killed {
            let log = served.kill();
            kills.push(SystemTime::now());
            clients.stop();
            if std::env::var_os("HOOKGATE_TEST_SHOW_LOG").is_some() {
                eprintln!("{log}");
            }
        }
        let seen = clients.finish().await;
        let mut tally: HashMap<String, usize> = HashMap::new();
        let mut lost_example = None;
        for (i, answer) in seen {
            let key = &plan[i].key;
            let sent_before = ever_sent.contains(key);
            if !matches!(answer, Answer::Unsent) {
                ever_sent.insert(key.clone());
            }
            *tally
                .entry(match &answer {
                    Answer::Acknowledged { status, .. } => status.to_string(),
                    Answer::Refused(status) => format!("refused {status}"),
                    Answer::Lost(why) => {
                        lost_example.get_or_insert_with(|| why.clone());
                        "no answer".to_owned()
                    }
                    Answer::Unsent => "unsent".to_owned(),
                })
                .or_default() += 1;
            if let Answer::Acknowledged { status, .. } = &answer
                && *status != 202
            {
                // Only a key sent before can be a duplicate (that the id it names is stored
                // under this key is checked with every acknowledged one).
                assert!(
                    sent_before,
                    "{key} got {status} on its first try (a new delivery is 202)"
                );
                found_stored_on_resend += 1;
            }
            answers.insert(key.clone(), answer);
        }
        let mut tally: Vec<_> = tally.into_iter().collect();
        tally.sort();
        eprintln!(
            "{engine:?} round {round} ({run:?}): up in {up:?}; {} to send -> {tally:?} in {:?}{}{}",
            pending.len(),
            sending.elapsed(),
            if killed { ", SIGKILL" } else { "" },
            lost_example
                .map(|e| format!(" (no answer: {e})"))
                .unwrap_or_default()
        );
        if killed {
            continue;
        }

        // The last run: every delivery is acknowledged, on its first resend at the latest.
        for p in plan.iter() {
            match &answers[&p.key] {
                Answer::Acknowledged { .. } => {}
                other => panic!("{} was resent after the restart and got {other:?}", p.key),
            }
        }
        let drained = admin.wait_until_queue_is_empty().await;
        let report = check_exactly_once(&admin, &receiver_id, &plan, &answers, &kills).await;
        eprintln!(
            "{engine:?}: queue empty {drained:?} after the last answer; {found_stored_on_resend} \
             resent deliveries were stored already (200); {} processed after the last kill, {} of \
             them taken again from a killed process's claim; scenario took {:?}",
            report.processed_after_last_kill,
            report.claimed_again,
            started.elapsed()
        );
        drop(served);
        db.drop_database().await;
        return report;
    }
    panic!("a scenario ends with Run::ToTheEnd");
}

/// Every delivery key is stored exactly once and processed; each pull request has exactly one
/// changeset with exactly one timeline entry, from its delivery; the pushes are counted once each.
async fn check_exactly_once(
    admin: &Admin,
    receiver_id: &str,
    plan: &[Planned],
    answers: &HashMap<String, Answer>,
    kills: &[SystemTime],
) -> Report {
    let stored = admin.all_deliveries(receiver_id).await;
    let mut by_key: HashMap<&str, Vec<&Delivery>> = HashMap::new();
    for d in &stored {
        by_key.entry(d.delivery_key.as_str()).or_default().push(d);
    }
    let mut wrong = Vec::new();
    for p in plan {
        let Answer::Acknowledged { id, .. } = &answers[&p.key] else {
            unreachable!("checked before")
        };
        match by_key.get(p.key.as_str()).map(Vec::as_slice) {
            Some([d]) if d.id != *id => {
                wrong.push(format!("{}: answered {id}, stored as {}", p.key, d.id))
            }
            Some([d]) if d.state != DeliveryState::Processed as i32 => wrong.push(format!(
                "{}: {:?} ({})",
                p.key,
                DeliveryState::try_from(d.state),
                d.last_error
            )),
            Some([_]) => {}
            None => wrong.push(format!("{}: not stored", p.key)),
            Some(many) => wrong.push(format!("{}: stored {} times", p.key, many.len())),
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} deliveries are not stored exactly once and processed:\n{}",
        wrong.len(),
        plan.len(),
        wrong.join("\n")
    );
    assert_eq!(
        stored.len(),
        plan.len(),
        "only the deliveries sent are stored"
    );

    let id_of: HashMap<&str, &str> = stored
        .iter()
        .map(|d| (d.delivery_key.as_str(), d.id.as_str()))
        .collect();
    let changesets = admin.changesets().await;
    let mut by_number: HashMap<i64, Vec<&Changeset>> = HashMap::new();
    for c in &changesets {
        by_number.entry(c.number).or_default().push(c);
    }
    let mut wrong = Vec::new();
    let pull_requests: Vec<&Planned> = plan.iter().filter(|p| p.number.is_some()).collect();
    for p in &pull_requests {
        let number = p.number.expect("pull requests only");
        let [changeset] = by_number
            .get(&number)
            .map(Vec::as_slice)
            .unwrap_or_default()
        else {
            wrong.push(format!(
                "#{number}: {} changesets",
                by_number.get(&number).map_or(0, Vec::len)
            ));
            continue;
        };
        let timeline = admin.timeline(&changeset.id).await;
        let from: Vec<&str> = timeline.iter().map(|e| e.delivery_id.as_str()).collect();
        if from != [id_of[p.key.as_str()]] {
            wrong.push(format!(
                "#{number}: timeline entries from {from:?}, expected one from {}",
                id_of[p.key.as_str()]
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "pull requests without exactly one changeset and one timeline entry:\n{}",
        wrong.join("\n")
    );
    assert_eq!(
        changesets.len(),
        pull_requests.len(),
        "one changeset per pull request"
    );

    let pushes = plan.iter().filter(|p| p.number.is_none()).count();
    let counted: i32 = admin
        .sync_requests()
        .await
        .iter()
        .filter(|r| r.repository == REPOSITORY)
        .map(|r| r.push_count)
        .sum();
    assert_eq!(
        counted as usize, pushes,
        "the sync requests count each push once"
    );

    let last_kill = kills.last().copied().unwrap_or(SystemTime::UNIX_EPOCH);
    let processed_after_last_kill = stored
        .iter()
        .filter(|d| {
            d.process_time
                .as_ref()
                .and_then(|t| SystemTime::try_from(*t).ok())
                .is_some_and(|t| t > last_kill)
        })
        .count();
    Report {
        processed_after_last_kill,
        claimed_again: stored.iter().filter(|d| d.attempts > 1).count(),
    }
}

/// The deliveries of a scenario: pull requests numbered from [`FIRST_NUMBER`], and every
/// [`PUSH_EVERY`]th a push, each with its own key, signed with `secret`.
fn make_plan(secret: &str) -> Vec<Planned> {
    let opened: Value = serde_json::from_slice(&fixture("github/pull_request.opened.json"))
        .expect("the fixture is JSON");
    let pushed: Value = serde_json::from_slice(&fixture("github/push.branch-updated.json"))
        .expect("the fixture is JSON");
    assert_eq!(opened["repository"]["full_name"], REPOSITORY);
    assert_eq!(pushed["repository"]["full_name"], REPOSITORY);
    (0..DELIVERIES)
        .map(|i| {
            let key = format!("crash-{i:04}-{}", uuid::Uuid::new_v4());
            let (event, number, body) = if i % PUSH_EVERY == PUSH_EVERY - 1 {
                let mut body = pushed.clone();
                body["after"] = Value::String(format!("{i:040x}"));
                ("push", None, body)
            } else {
                let number = FIRST_NUMBER + i as i64;
                let mut body = opened.clone();
                body["number"] = number.into();
                body["pull_request"]["number"] = number.into();
                body["pull_request"]["title"] = format!("Crash test #{number}").into();
                ("pull_request", Some(number), body)
            };
            let body = serde_json::to_vec(&body).expect("JSON serialises");
            Planned {
                headers: host_headers(CodeHostKind::Github, event, &key, Some(secret), &body),
                key,
                body,
                number,
            }
        })
        .collect()
}

/// Concurrent clients sending planned deliveries over real HTTP, each recording what it saw.
struct Clients {
    tasks: Vec<tokio::task::JoinHandle<Vec<(usize, Answer)>>>,
    /// Deliveries answered so far (with any status).
    answered: Arc<AtomicUsize>,
    /// Set after the kill: the clients send nothing more.
    stop: Arc<AtomicBool>,
}

impl Clients {
    /// [`CLIENTS`] clients share `which` deliveries of `plan`, in turn, and send them to `url`.
    fn start(plan: Arc<Vec<Planned>>, which: Vec<usize>, url: String) -> Self {
        let answered = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..CLIENTS)
            .map(|c| {
                let mine: Vec<usize> = which.iter().copied().skip(c).step_by(CLIENTS).collect();
                let (plan, url, answered, stop) =
                    (plan.clone(), url.clone(), answered.clone(), stop.clone());
                tokio::spawn(async move {
                    let http = reqwest::Client::builder()
                        .timeout(Duration::from_secs(30))
                        .build()
                        .expect("an HTTP client");
                    let mut seen = Vec::with_capacity(mine.len());
                    for i in mine {
                        if stop.load(Ordering::SeqCst) {
                            seen.push((i, Answer::Unsent));
                            continue;
                        }
                        let answer = send(&http, &url, &plan[i]).await;
                        if !matches!(answer, Answer::Lost(_)) {
                            answered.fetch_add(1, Ordering::SeqCst);
                        }
                        seen.push((i, answer));
                    }
                    seen
                })
            })
            .collect();
        Self {
            tasks,
            answered,
            stop,
        }
    }

    /// Waits until `n` deliveries have been answered (or every client is done).
    async fn wait_until_answered(&self, n: usize) {
        while self.answered.load(Ordering::SeqCst) < n
            && !self.tasks.iter().all(|t| t.is_finished())
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// What every client saw, once they are all done.
    async fn finish(self) -> Vec<(usize, Answer)> {
        let mut all = Vec::new();
        for task in self.tasks {
            all.extend(task.await.expect("a client does not panic"));
        }
        all
    }
}

/// Sends one delivery as GitHub does and tells what came back.
async fn send(http: &reqwest::Client, url: &str, planned: &Planned) -> Answer {
    let mut request = http.post(url).body(planned.body.clone());
    for (name, value) in &planned.headers {
        request = request.header(*name, value);
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => return Answer::Lost(causes(&e)),
    };
    let status = response.status().as_u16();
    let text = match response.text().await {
        Ok(t) => t,
        // The status line came, the rest did not: a host goes by the status.
        Err(e) if (200..300).contains(&status) => {
            panic!("a {status} without its body ({e}): the delivery id is unknown")
        }
        Err(_) => return Answer::Refused(status),
    };
    if !(200..300).contains(&status) {
        return Answer::Refused(status);
    }
    let answer: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("a {status} answer is JSON ({e}): {text}"));
    let id = answer["delivery_id"]
        .as_str()
        .unwrap_or_else(|| panic!("a {status} answer names the delivery: {text}"))
        .to_owned();
    Answer::Acknowledged { status, id }
}

/// An error with its causes, `outer: inner: ...`.
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// The admin API of one process, as the checks read it.
struct Admin {
    channel: Channel,
}

impl Admin {
    fn new(channel: Channel) -> Self {
        Self { channel }
    }

    async fn create_receiver(&self) -> (String, String) {
        let created = ReceiverServiceClient::new(self.channel.clone())
            .create_receiver(CreateReceiverRequest {
                name: "crash".into(),
                code_host_kind: CodeHostKind::Github as i32,
                code_host_urn: "https://github.com".into(),
                ..Default::default()
            })
            .await
            .expect("the receiver is created")
            .into_inner();
        (created.receiver.expect("a receiver").id, created.secret)
    }

    /// How many deliveries are in `states`.
    async fn count(&self, states: &[DeliveryState]) -> usize {
        let listed = DeliveryServiceClient::new(self.channel.clone())
            .list_deliveries(ListDeliveriesRequest {
                states: states.iter().map(|s| *s as i32).collect(),
                page_size: 1,
                ..Default::default()
            })
            .await
            .expect("deliveries can be listed")
            .into_inner();
        usize::try_from(listed.total_size).expect("a count")
    }

    /// Waits until at least `n` deliveries are processed; returns how many were.
    async fn wait_until_processed(&self, n: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let processed = self.count(&[DeliveryState::Processed]).await;
            if processed >= n {
                return processed;
            }
            assert!(
                Instant::now() < deadline,
                "the worker never processed {n} deliveries"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until no delivery is pending or processing; returns how long that took.
    async fn wait_until_queue_is_empty(&self) -> Duration {
        let start = Instant::now();
        loop {
            let queued = self
                .count(&[DeliveryState::Pending, DeliveryState::Processing])
                .await;
            if queued == 0 {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "{queued} deliveries are still queued after two minutes"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn all_deliveries(&self, receiver_id: &str) -> Vec<Delivery> {
        let mut client = DeliveryServiceClient::new(self.channel.clone());
        let (mut all, mut token) = (Vec::new(), String::new());
        loop {
            let page = client
                .list_deliveries(ListDeliveriesRequest {
                    receiver_id: receiver_id.to_owned(),
                    page_size: 500,
                    page_token: token,
                    ..Default::default()
                })
                .await
                .expect("deliveries can be listed")
                .into_inner();
            all.extend(page.deliveries);
            if page.next_page_token.is_empty() {
                return all;
            }
            token = page.next_page_token;
        }
    }

    async fn changesets(&self) -> Vec<Changeset> {
        let mut client = ChangesetServiceClient::new(self.channel.clone());
        let (mut all, mut token) = (Vec::new(), String::new());
        loop {
            let page = client
                .list_changesets(ListChangesetsRequest {
                    repository: REPOSITORY.into(),
                    page_size: 500,
                    page_token: token,
                    ..Default::default()
                })
                .await
                .expect("changesets can be listed")
                .into_inner();
            all.extend(page.changesets);
            if page.next_page_token.is_empty() {
                return all;
            }
            token = page.next_page_token;
        }
    }

    async fn timeline(&self, changeset_id: &str) -> Vec<ChangesetEvent> {
        ChangesetServiceClient::new(self.channel.clone())
            .list_changeset_events(ListChangesetEventsRequest {
                changeset_id: changeset_id.to_owned(),
                page_size: 500,
                ..Default::default()
            })
            .await
            .expect("a changeset's timeline can be read")
            .into_inner()
            .events
    }

    async fn sync_requests(&self) -> Vec<SyncRequest> {
        RepositoryServiceClient::new(self.channel.clone())
            .list_sync_requests(ListSyncRequestsRequest {
                page_size: 500,
                ..Default::default()
            })
            .await
            .expect("sync requests can be listed")
            .into_inner()
            .sync_requests
    }
}
