//! Deliveries whose effects can be counted, and the checks that each was stored once and
//! applied once: shared by the crash test and the scale-out test.
//!
//! The deliveries are GitHub `pull_request` events, one pull request number each (each makes one
//! changeset with one timeline entry that names its delivery), and `push` events (each counts one
//! push in the repository's sync request: a push applied twice would count twice). With
//! [`other_hosts`], every other code host's real push fixture joins in, to a receiver of its own
//! kind, each counted the same way.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use super::{fixture, host_headers};
use hookgate::admin::proto::{
    Changeset, ChangesetEvent, CodeHostKind, CreateReceiverRequest, Delivery, DeliveryState,
    ListChangesetEventsRequest, ListChangesetsRequest, ListDeliveriesRequest,
    ListSyncRequestsRequest, SyncRequest, changeset_service_client::ChangesetServiceClient,
    delivery_service_client::DeliveryServiceClient, receiver_service_client::ReceiverServiceClient,
    repository_service_client::RepositoryServiceClient,
};
use serde_json::Value;
use tonic::transport::Channel;

/// Every sixth delivery is a push; the others are pull requests.
pub const PUSH_EVERY: usize = 6;
/// The pull request numbers start here.
pub const FIRST_NUMBER: i64 = 1000;
/// The repository every delivery names (the fixtures').
pub const REPOSITORY: &str = "Codertocat/Hello-World";

/// One delivery as its code host makes it: the key and the signed body are the same on every
/// try.
pub struct Planned {
    pub key: String,
    /// GitHub's headers: the event, the key, the signature of the body.
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// The pull request it opens; `None` for a push.
    pub number: Option<i64>,
    /// Which receiver it is sent to: 0 is the GitHub one, 1 and on the [`OTHER_HOSTS`] in order.
    pub receiver: usize,
}

/// Every code host other than GitHub, with the receiver URN its push fixture is under, the
/// fixture, and its event header.
pub const OTHER_HOSTS: [(CodeHostKind, &str, &str, &str); 5] = [
    (
        CodeHostKind::Gitlab,
        "http://example.com",
        "gitlab/push.json",
        "Push Hook",
    ),
    (
        CodeHostKind::BitbucketServer,
        "https://server.bitbucket.local",
        "bitbucket-server/repo_refs_changed.json",
        "repo:refs_changed",
    ),
    (
        CodeHostKind::BitbucketCloud,
        "https://bitbucket.org",
        "bitbucket-cloud/repo_push.json",
        "repo:push",
    ),
    (
        CodeHostKind::Gitea,
        "http://127.0.0.1:3000",
        "gitea/push.branch-updated.json",
        "push",
    ),
    (
        CodeHostKind::AzureDevops,
        "https://dev.azure.com/alexander0053/",
        "azure-devops/git.push.json",
        "git.push",
    ),
];

/// What a client saw when it sent a delivery.
#[derive(Debug, Clone)]
pub enum Answer {
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
pub struct Report {
    /// Deliveries processed after the last kill (by their process time).
    pub processed_after_last_kill: usize,
    /// Deliveries claimed more than once: by a process that was killed holding the claim, then
    /// again when the claim ran out.
    pub claimed_again: usize,
}

/// Every delivery key is stored exactly once and processed; each pull request has exactly one
/// changeset with exactly one timeline entry, from its delivery; the pushes are counted once each.
pub async fn check_exactly_once(
    admin: &Admin,
    receiver_ids: &[String],
    plan: &[Planned],
    answers: &HashMap<String, Answer>,
    kills: &[SystemTime],
) -> Report {
    let mut stored = Vec::new();
    for receiver_id in receiver_ids {
        stored.extend(admin.all_deliveries(receiver_id).await);
    }
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

    // Each push is counted once, in its own repository's sync request (GitHub's in
    // `REPOSITORY`'s, every other host's in its fixture's).
    let mut pushes: HashMap<usize, usize> = HashMap::new();
    for p in plan.iter().filter(|p| p.number.is_none()) {
        *pushes.entry(p.receiver).or_default() += 1;
    }
    let requests = admin.sync_requests().await;
    let counted_in = |repository: &str| -> usize {
        let sum: i32 = requests
            .iter()
            .filter(|r| r.repository == repository)
            .map(|r| r.push_count)
            .sum();
        usize::try_from(sum).expect("a count")
    };
    assert_eq!(
        counted_in(REPOSITORY),
        pushes.get(&0).copied().unwrap_or_default(),
        "the sync requests count each GitHub push once"
    );
    let all: i32 = requests.iter().map(|r| r.push_count).sum();
    assert_eq!(
        usize::try_from(all).expect("a count"),
        pushes.values().sum::<usize>(),
        "the sync requests of every repository count each push of every host once: {:?}",
        requests
            .iter()
            .map(|r| (&r.repository, r.push_count))
            .collect::<Vec<_>>()
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

/// `count` deliveries: pull requests numbered from [`FIRST_NUMBER`], and every [`PUSH_EVERY`]th
/// a push, each with its own key (starting with `key_prefix`), signed with `secret`.
pub fn make_plan(secret: &str, count: usize, key_prefix: &str) -> Vec<Planned> {
    let opened: Value = serde_json::from_slice(&fixture("github/pull_request.opened.json"))
        .expect("the fixture is JSON");
    let pushed: Value = serde_json::from_slice(&fixture("github/push.branch-updated.json"))
        .expect("the fixture is JSON");
    assert_eq!(opened["repository"]["full_name"], REPOSITORY);
    assert_eq!(pushed["repository"]["full_name"], REPOSITORY);
    // The two fixtures come from two repositories that happen to share a name; a repository is
    // its host id, so the pushes are made to name the pull requests' one.
    let mut pushed = pushed;
    pushed["repository"]["id"] = opened["repository"]["id"].clone();
    (0..count)
        .map(|i| {
            let key = format!("{key_prefix}-{i:04}-{}", uuid::Uuid::new_v4());
            let (event, number, body) = if i % PUSH_EVERY == PUSH_EVERY - 1 {
                let mut body = pushed.clone();
                body["after"] = Value::String(format!("{i:040x}"));
                ("push", None, body)
            } else {
                let number = FIRST_NUMBER + i as i64;
                let mut body = opened.clone();
                body["number"] = number.into();
                body["pull_request"]["number"] = number.into();
                body["pull_request"]["title"] = format!("Test #{number}").into();
                ("pull_request", Some(number), body)
            };
            let body = serde_json::to_vec(&body).expect("JSON serialises");
            Planned {
                headers: host_headers(CodeHostKind::Github, event, &key, Some(secret), &body),
                key,
                body,
                number,
                receiver: 0,
            }
        })
        .collect()
}

/// `per_host` pushes of each of the [`OTHER_HOSTS`], made from its real push fixture, each with
/// its own key (starting with `key_prefix`), signed (or carrying the token) with that host's
/// receiver's secret in `secrets` (in [`OTHER_HOSTS`] order). Azure DevOps names a delivery in
/// its body (`<subscriptionId>.<notificationId>`), so its pushes differ by `notificationId`.
pub fn other_hosts(secrets: &[String], per_host: usize, key_prefix: &str) -> Vec<Planned> {
    assert_eq!(secrets.len(), OTHER_HOSTS.len(), "a secret per host");
    let mut plan = Vec::new();
    for i in 0..per_host {
        for (h, ((kind, _, file, event), secret)) in OTHER_HOSTS.iter().zip(secrets).enumerate() {
            let mut key = format!("{key_prefix}-{h}-{i:04}-{}", uuid::Uuid::new_v4());
            let body = if *kind == CodeHostKind::AzureDevops {
                let mut body: Value =
                    serde_json::from_slice(&fixture(file)).expect("the fixture is JSON");
                let notification = 1_000_000 + plan.len();
                body["notificationId"] = notification.into();
                key = format!(
                    "{}.{notification}",
                    body["subscriptionId"].as_str().expect("a subscriptionId")
                );
                serde_json::to_vec(&body).expect("JSON serialises")
            } else {
                // The fixture's own bytes, as the host sent them.
                fixture(file)
            };
            plan.push(Planned {
                headers: host_headers(*kind, event, &key, Some(secret), &body),
                key,
                body,
                number: None,
                receiver: h + 1,
            });
        }
    }
    plan
}

/// Sends one delivery as GitHub does and tells what came back.
pub async fn send(http: &reqwest::Client, url: &str, planned: &Planned) -> Answer {
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
pub fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// The admin API of one process, as the checks read it.
pub struct Admin {
    channel: Channel,
}

impl Admin {
    pub fn new(channel: Channel) -> Self {
        Self { channel }
    }

    /// A GitHub receiver named `name`; returns (id, secret).
    pub async fn create_receiver(&self, name: &str) -> (String, String) {
        self.create_receiver_of(name, CodeHostKind::Github, "https://github.com")
            .await
    }

    /// A receiver of `kind` for the code host `urn`, named `name`; returns (id, secret).
    pub async fn create_receiver_of(
        &self,
        name: &str,
        kind: CodeHostKind,
        urn: &str,
    ) -> (String, String) {
        let created = ReceiverServiceClient::new(self.channel.clone())
            .create_receiver(CreateReceiverRequest {
                name: name.into(),
                code_host_kind: kind as i32,
                code_host_urn: urn.into(),
                ..Default::default()
            })
            .await
            .expect("the receiver is created")
            .into_inner();
        (created.receiver.expect("a receiver").id, created.secret)
    }

    /// How many deliveries are in `states`.
    pub async fn count(&self, states: &[DeliveryState]) -> usize {
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
    pub async fn wait_until_processed(&self, n: usize) -> usize {
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
    pub async fn wait_until_queue_is_empty(&self) -> Duration {
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

    pub async fn all_deliveries(&self, receiver_id: &str) -> Vec<Delivery> {
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

    pub async fn changesets(&self) -> Vec<Changeset> {
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

    pub async fn timeline(&self, changeset_id: &str) -> Vec<ChangesetEvent> {
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

    pub async fn sync_requests(&self) -> Vec<SyncRequest> {
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
