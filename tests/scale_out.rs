//! Scale-out on PostgreSQL: three `hookgate serve` processes (the built binary) share one
//! database and one data directory, as replicas behind a load balancer do. Deliveries spread over
//! the three are each stored once and processed exactly once, by one replica's worker or
//! another's; a receiver made or rotated on one replica is honoured by the others within a
//! second; and a `Watch` on any replica streams the events every replica made.
//!
//! PostgreSQL only: several processes on one SQLite file is not a supported deployment.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::binary::Served;
use common::exactly_once::{Admin, Answer, Planned, check_exactly_once, make_plan, send};
use common::{TestDatabase, prometheus, until_answered};
use hookgate::admin::proto::{
    CodeHostKind, CreateReceiverRequest, DeliveryState, Event, EventKind,
    RotateReceiverSecretRequest, WatchRequest, event, event_service_client::EventServiceClient,
    receiver_service_client::ReceiverServiceClient,
};
use tokio_stream::StreamExt;

const REPLICAS: usize = 3;
/// Deliveries spread over the replicas (a third each), and clients per replica.
const DELIVERIES: usize = 300;
const CLIENTS_PER_REPLICA: usize = 3;
/// How soon a receiver made or changed on one replica must be honoured by the others.
const WITHIN: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(hookgate_postgres),
    ignore = "set HOOKGATE_TEST_DATABASE_URL to run this PostgreSQL test"
)]
async fn three_replicas_on_one_postgresql_share_the_deliveries_the_receivers_and_the_event_feed() {
    let db = TestDatabase::on_postgres(&common::postgres_url()).await;
    // All at once, on an empty database, with the one key file every replica needs (as
    // docs/operations.md says to run them): they take turns migrating it.
    let key_file = db.dir.path().join("replicas.key");
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).expect("random bytes");
    std::fs::write(
        &key_file,
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key),
    )
    .expect("the key file is written");
    let args = [
        std::ffi::OsString::from("--secret-key-file"),
        key_file.into(),
    ];
    let replicas: Vec<Served> = std::thread::scope(|scope| {
        let starting: Vec<_> = (0..REPLICAS)
            .map(|_| scope.spawn(|| Served::start_with(&db, &args)))
            .collect();
        starting
            .into_iter()
            .map(|s| s.join().expect("a replica starts"))
            .collect()
    });
    let mut admins = Vec::new();
    let mut watched = Vec::new();
    for served in &replicas {
        let channel = served.channel().await;
        watched.push(watch(channel.clone()).await);
        admins.push(Admin::new(channel));
    }

    // A receiver made on replica 0 is honoured by 1 and 2; its secret rotated on 1 (with no
    // overlap) is honoured by 0 and 2.
    let (probe, secret) = admins[0].create_receiver("probe").await;
    for r in [1, 2] {
        let took = until_answered(&replicas[r].http_addr, &probe, &secret, 200, WITHIN).await;
        eprintln!("replica {r} honoured a receiver made on replica 0 after {took:?}");
    }
    let rotated = ReceiverServiceClient::new(replicas[1].channel().await)
        .rotate_receiver_secret(RotateReceiverSecretRequest {
            id: probe.clone(),
            ..Default::default()
        })
        .await
        .expect("the secret is rotated")
        .into_inner();
    for r in [0, 2] {
        let took = until_answered(&replicas[r].http_addr, &probe, &secret, 401, WITHIN).await;
        eprintln!("replica {r} refused the secret rotated away on replica 1 after {took:?}");
        until_answered(&replicas[r].http_addr, &probe, &rotated.secret, 200, WITHIN).await;
    }

    // The deliveries, for a receiver made on replica 2, sent a third to each replica. A replica
    // that answers 404 within a second of the receiver's making is asked again: that is the
    // second it has to learn of it.
    let (receiver, secret) = admins[2].create_receiver("spread").await;
    let made = Instant::now();
    let plan = Arc::new(make_plan(&secret, DELIVERIES, "scale-out"));
    let mut clients = Vec::new();
    for (r, served) in replicas.iter().enumerate() {
        let mine: Vec<usize> = (r..DELIVERIES).step_by(REPLICAS).collect();
        for c in 0..CLIENTS_PER_REPLICA {
            let theirs: Vec<usize> = mine
                .iter()
                .copied()
                .skip(c)
                .step_by(CLIENTS_PER_REPLICA)
                .collect();
            let url = format!("http://{}/.api/webhooks/{receiver}", served.http_addr);
            let plan = plan.clone();
            clients.push(tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut seen = Vec::new();
                for i in theirs {
                    seen.push((i, send_until_known(&http, &url, &plan[i], made).await));
                }
                seen
            }));
        }
    }

    // Trigger calls, one to each replica, each for a repository of its own: each replica makes
    // its sync request (and its event) itself, while it answers.
    let trigger = ReceiverServiceClient::new(replicas[0].channel().await)
        .create_receiver(CreateReceiverRequest {
            name: "trigger".into(),
            code_host_kind: CodeHostKind::Generic as i32,
            code_host_urn: "https://git.example.com".into(),
            ..Default::default()
        })
        .await
        .expect("the trigger receiver is made")
        .into_inner();
    let trigger_made = Instant::now();
    let trigger_id = trigger.receiver.expect("a receiver").id;
    let mut triggered = BTreeSet::new();
    for (r, served) in replicas.iter().enumerate() {
        let repository = format!("scale-out/replica-{r}");
        // A trigger names only repositories hookgate knows (an unknown name is a 404).
        served
            .register_repository("https://git.example.com", &repository)
            .await;
        let url = format!(
            "http://{}/.api/webhooks/{trigger_id}?repository={repository}",
            served.http_addr
        );
        let status = loop {
            let status = reqwest::Client::new()
                .post(&url)
                .header("X-Hook-Secret", &trigger.secret)
                .send()
                .await
                .expect("the trigger is answered")
                .status()
                .as_u16();
            if status != 404 || trigger_made.elapsed() > WITHIN {
                break status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(status, 202, "replica {r} takes the trigger call");
        triggered.insert(repository);
    }

    let mut answers: HashMap<String, Answer> = HashMap::new();
    for client in clients {
        for (i, answer) in client.await.expect("a client does not panic") {
            match &answer {
                Answer::Acknowledged { status: 202, .. } => {}
                other => panic!("delivery {i} was answered {other:?}, not 202"),
            }
            answers.insert(plan[i].key.clone(), answer);
        }
    }
    let drained = admins[0].wait_until_queue_is_empty().await;
    eprintln!(
        "{DELIVERIES} deliveries answered 202 by {REPLICAS} replicas; queue empty {drained:?} later"
    );

    // Stored once, processed, effects once; and claimed once: no replica's worker took a
    // delivery another had.
    let report = check_exactly_once(
        &admins[1],
        std::slice::from_ref(&receiver),
        &plan,
        &answers,
        &[],
    )
    .await;
    assert_eq!(
        report.claimed_again, 0,
        "deliveries were claimed more than once"
    );

    // Each replica's worker took part, and together they processed each delivery once: the
    // deliveries their metrics count are those stored as processed, no more.
    let mut processed_by = Vec::new();
    for served in &replicas {
        let metrics = prometheus::scrape(&served.metrics_addr).await;
        processed_by.push(metrics.count(
            "hookgate_delivery_processing_duration_seconds_count",
            &[("outcome", "processed")],
        ) as usize);
    }
    // (The probe's pings are answered and marked processed by the ingress itself.)
    let stored_processed = admins[2]
        .all_deliveries(&receiver)
        .await
        .iter()
        .filter(|d| d.state == DeliveryState::Processed as i32)
        .count();
    eprintln!("processed by each replica's worker: {processed_by:?}");
    assert_eq!(
        processed_by.iter().sum::<usize>(),
        stored_processed,
        "the workers processed {processed_by:?}, but {stored_processed} deliveries are processed"
    );
    assert!(
        processed_by.iter().all(|&n| n > 0),
        "every replica's worker processes some of the deliveries: {processed_by:?}"
    );

    // Every replica's feed has every changeset update, whichever replica's worker made it,
    // and the sync request each replica made while it answered its trigger call.
    let numbers: BTreeSet<i64> = plan.iter().filter_map(|p| p.number).collect();
    for (r, seen) in watched.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (changesets, syncs) = feed(&seen.lock().unwrap());
            let missing_changesets = numbers.difference(&changesets).count();
            let missing_syncs: Vec<_> = triggered.difference(&syncs).collect();
            if missing_changesets == 0 && missing_syncs.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "replica {r}'s Watch lacks {missing_changesets} of {} changeset updates and the \
                 sync requests of {missing_syncs:?}",
                numbers.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    drop(replicas);
    db.drop_database().await;
}

/// Sends `planned` until it is answered with something other than a 404 made within
/// [`WITHIN`] of `made` (the receiver's making).
async fn send_until_known(
    http: &reqwest::Client,
    url: &str,
    planned: &Planned,
    made: Instant,
) -> Answer {
    loop {
        let answer = send(http, url, planned).await;
        match answer {
            Answer::Refused(404) if made.elapsed() < WITHIN => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => return other,
        }
    }
}

/// Starts a `Watch` of every event on `channel`; what it streams is collected as it comes.
async fn watch(channel: tonic::transport::Channel) -> Arc<Mutex<Vec<Event>>> {
    let mut stream = EventServiceClient::new(channel)
        .watch(WatchRequest::default())
        .await
        .expect("a Watch starts")
        .into_inner();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    tokio::spawn(async move {
        while let Some(Ok(event)) = stream.next().await {
            sink.lock().unwrap().push(event);
        }
    });
    seen
}

/// The pull request numbers of the changeset updates in `events`, and the repositories of the
/// sync requests.
fn feed(events: &[Event]) -> (BTreeSet<i64>, BTreeSet<String>) {
    let mut changesets = BTreeSet::new();
    let mut syncs = BTreeSet::new();
    for e in events {
        match (&e.subject, EventKind::try_from(e.kind)) {
            (Some(event::Subject::Changeset(c)), Ok(EventKind::ChangesetUpdated)) => {
                changesets.insert(c.number);
            }
            (Some(event::Subject::SyncRequest(s)), Ok(EventKind::SyncRequested)) => {
                syncs.insert(s.repository.clone());
            }
            _ => {}
        }
    }
    (changesets, syncs)
}
