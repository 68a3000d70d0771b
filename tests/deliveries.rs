//! The delivery queue under the worker, with an explicit clock instead of sleeps: retries with
//! backoff, leases of workers that die, claims shared by many workers, and retention; on SQLite
//! and PostgreSQL.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Engine, TestApp, TestDatabase};
use hookgate::deliveries::{
    ClaimedDelivery, DeliveryKey, DeliveryState, DeliveryStore, Event, Handler, HandlerError,
    NewDelivery, Outcome, RETRY_BACKOFF, Stored, Worker, WorkerConfig,
};
use hookgate::receivers::{
    CodeHostKind, CodeHostUrn, NewReceiver, Receiver, ReceiverName, ReceiverOptions,
    ReceiverSecret, ReceiverStore,
};
use hookgate::sync::feed::{self, FeedEntryKind, FeedStore};
use hookgate::time::Timestamp;
use sea_orm::{DatabaseConnection, DatabaseTransaction};
use uuid::Uuid;

const SECOND: i64 = 1_000_000;

/// The instant `micros` microseconds after the epoch.
fn time(micros: i64) -> Timestamp {
    Timestamp::from_micros(micros)
}

struct Setup {
    db: DatabaseConnection,
    receivers: ReceiverStore,
    deliveries: DeliveryStore,
    receiver: Uuid,
    test_db: TestDatabase,
}

async fn setup(engine: Engine) -> Setup {
    let test_db = TestDatabase::new(engine).await;
    let db = hookgate::db::connect(&test_db.url).await.unwrap();
    hookgate::db::migrate(&db).await.unwrap();
    let secrets = hookgate::secret_key::prepare(&db, None, test_db.dir.path())
        .await
        .unwrap();
    let receivers = ReceiverStore::new(db.clone(), secrets);
    let receiver = receivers
        .create(
            NewReceiver {
                name: ReceiverName::parse("gh").unwrap(),
                code_host_kind: CodeHostKind::GitHub,
                code_host_urn: CodeHostUrn::parse("https://github.com").unwrap(),
                secret: ReceiverSecret::generate(),
                signing_token: None,
                options: ReceiverOptions::default(),
            },
            "test",
        )
        .await
        .unwrap()
        .id;
    Setup {
        deliveries: DeliveryStore::new(db.clone()),
        db,
        receivers,
        receiver,
        test_db,
    }
}

/// A pending `push` delivery received at `at`.
async fn pending(s: &Setup, at: i64) -> Uuid {
    let id = Uuid::new_v4();
    let headers = BTreeMap::from([
        ("x-github-event".to_owned(), "push".to_owned()),
        ("content-type".to_owned(), "application/json".to_owned()),
    ]);
    let stored = s
        .deliveries
        .record(NewDelivery {
            id,
            receiver_id: s.receiver,
            delivery_key: DeliveryKey::parse(&Uuid::new_v4().to_string()),
            event: "push".into(),
            state: DeliveryState::Pending,
            receive_time: time(at),
            method: "POST".into(),
            path: "/".into(),
            request_headers: headers,
            request_body: Some(common::fixture("github/push.branch-updated.json")),
            response_status: 202,
            response_body: Vec::new(),
            last_error: None,
        })
        .await
        .unwrap();
    assert_eq!(stored, Stored::New);
    id
}

/// A handler that processes every delivery with no effects: the queue's own behaviour, alone.
struct NoEffects;

#[tonic::async_trait]
impl Handler for NoEffects {
    async fn handle(
        &self,
        _: &DatabaseTransaction,
        _: &Receiver,
        _: &ClaimedDelivery,
        _: &Event,
    ) -> Result<Outcome, HandlerError> {
        Ok(Outcome::Processed)
    }
}

/// A handler that fails every time and counts its calls.
struct AlwaysFails(AtomicUsize);

#[tonic::async_trait]
impl Handler for AlwaysFails {
    async fn handle(
        &self,
        _: &DatabaseTransaction,
        _: &Receiver,
        _: &ClaimedDelivery,
        _: &Event,
    ) -> Result<Outcome, HandlerError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(HandlerError::retry("the code host's API said no"))
    }
}

/// A handler that writes an effect (a repository) and then fails.
struct WritesThenFails;

#[tonic::async_trait]
impl Handler for WritesThenFails {
    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        _: &Receiver,
        _: &ClaimedDelivery,
        _: &Event,
    ) -> Result<Outcome, HandlerError> {
        let seen = hookgate::hosts::effects::RepositoryRef {
            name: "half/done".into(),
            external_id: String::new(),
            url: String::new(),
            clone_urls: vec![],
        };
        hookgate::sync::repositories::seen(
            txn,
            "https://github.com/",
            &seen,
            true,
            None,
            hookgate::time::Timestamp::EPOCH,
        )
        .await
        .map_err(|e| HandlerError::retry(e.to_string()))?;
        Err(HandlerError::retry("failed after writing"))
    }
}

/// A handler that writes a repository named after the delivery, then fails for the deliveries
/// in `fails` and succeeds for the rest.
struct FailsSome {
    fails: HashSet<Uuid>,
}

#[tonic::async_trait]
impl Handler for FailsSome {
    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        _: &Receiver,
        delivery: &ClaimedDelivery,
        _: &Event,
    ) -> Result<Outcome, HandlerError> {
        let seen = hookgate::hosts::effects::RepositoryRef {
            name: format!("repo/{}", delivery.id),
            external_id: String::new(),
            url: String::new(),
            clone_urls: vec![],
        };
        hookgate::sync::repositories::seen(
            txn,
            "https://github.com/",
            &seen,
            true,
            None,
            hookgate::time::Timestamp::EPOCH,
        )
        .await
        .map_err(|e| HandlerError::retry(e.to_string()))?;
        if self.fails.contains(&delivery.id) {
            return Err(HandlerError::retry("failed after writing"));
        }
        Ok(Outcome::Processed)
    }
}

fn worker(s: &Setup, handler: Arc<dyn Handler>, lease: Duration) -> Worker {
    Worker::new(
        s.db.clone(),
        s.receivers.clone(),
        handler,
        WorkerConfig {
            lease,
            ..WorkerConfig::default()
        },
        Default::default(),
    )
}

on_both_engines!(
    a_handler_failure_leaves_no_partial_change,
    a_failure_in_a_batch_undoes_only_that_deliverys_effects,
    a_failing_delivery_is_retried_with_backoff_then_failed_with_its_error,
    a_delivery_claimed_by_a_worker_that_died_is_processed_after_its_lease,
    concurrent_claimers_never_share_a_delivery,
    retention_deletes_deliveries_older_than_the_retention_period,
    rows_stored_as_text_by_earlier_versions_load_and_stay_text,
);

async fn a_handler_failure_leaves_no_partial_change(engine: Engine) {
    let s = setup(engine).await;
    let t0 = 500 * SECOND;
    let id = pending(&s, t0).await;
    let w = worker(&s, Arc::new(WritesThenFails), Duration::from_secs(60));
    assert_eq!(w.process_due(time(t0)).await.unwrap(), 1);
    let d = s.deliveries.get(id).await.unwrap();
    assert_eq!(d.state, DeliveryState::Pending, "to be retried");
    assert_eq!(d.last_error.as_deref(), Some("failed after writing"));
    let repos = hookgate::sync::RepositoryStore::new(s.db.clone())
        .list(None, None, 10)
        .await
        .unwrap();
    assert_eq!(
        repos.total_size, 0,
        "the handler's write was rolled back with it"
    );
    s.test_db.drop_database().await;
}

/// The worker writes many deliveries in one transaction; when a handler fails, the transaction
/// is undone and the others applied again: the ones whose handler fails roll back alone, the
/// others keep their effects and are processed.
async fn a_failure_in_a_batch_undoes_only_that_deliverys_effects(engine: Engine) {
    let s = setup(engine).await;
    let t0 = 700 * SECOND;
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(pending(&s, t0 + i).await);
    }
    let fails: HashSet<Uuid> = [ids[0], ids[4], ids[9]].into();
    let w = worker(
        &s,
        Arc::new(FailsSome {
            fails: fails.clone(),
        }),
        Duration::from_secs(60),
    );
    assert_eq!(w.process_due(time(t0 + SECOND)).await.unwrap(), 10);
    let repos: HashSet<String> = hookgate::sync::RepositoryStore::new(s.db.clone())
        .list(None, None, 100)
        .await
        .unwrap()
        .repositories
        .into_iter()
        .map(|r| r.name)
        .collect();
    for id in &ids {
        let d = s.deliveries.get(*id).await.unwrap();
        let repo = format!("repo/{id}");
        if fails.contains(id) {
            assert_eq!(d.state, DeliveryState::Pending, "to be retried: {d:?}");
            assert_eq!(d.last_error.as_deref(), Some("failed after writing"));
            assert!(!repos.contains(&repo), "{repo} was rolled back");
        } else {
            assert_eq!(d.state, DeliveryState::Processed, "{d:?}");
            assert!(repos.contains(&repo), "{repo} is kept");
        }
    }
    assert_eq!(repos.len(), 7);
    s.test_db.drop_database().await;
}

async fn a_failing_delivery_is_retried_with_backoff_then_failed_with_its_error(engine: Engine) {
    let s = setup(engine).await;
    let t0 = 1_000 * SECOND;
    let id = pending(&s, t0).await;
    let handler = Arc::new(AlwaysFails(AtomicUsize::new(0)));
    let w = worker(&s, handler.clone(), Duration::from_secs(60));

    let mut now = t0;
    assert_eq!(w.process_due(time(now)).await.unwrap(), 1);
    for (retry, wait) in RETRY_BACKOFF.iter().enumerate() {
        let d = s.deliveries.get(id).await.unwrap();
        assert_eq!(d.state, DeliveryState::Pending, "after try {}", retry + 1);
        assert_eq!(d.attempts as usize, retry + 1);
        assert_eq!(d.last_error.as_deref(), Some("the code host's API said no"));
        let wait = i64::try_from(wait.as_micros()).unwrap();
        // Not a moment before its backoff…
        assert_eq!(w.process_due(time(now + wait - 1)).await.unwrap(), 0);
        // …and at it.
        now += wait;
        assert_eq!(w.process_due(time(now)).await.unwrap(), 1);
    }
    let d = s.deliveries.get(id).await.unwrap();
    assert_eq!(d.state, DeliveryState::Failed);
    assert_eq!(d.attempts as usize, RETRY_BACKOFF.len() + 1);
    assert_eq!(d.last_error.as_deref(), Some("the code host's API said no"));
    assert_eq!(d.process_time, Some(time(now)));
    assert_eq!(handler.0.load(Ordering::SeqCst), RETRY_BACKOFF.len() + 1);
    // Failed is final until an admin redelivers it.
    assert_eq!(w.process_due(time(now + 3600 * SECOND)).await.unwrap(), 0);
    let again = s
        .deliveries
        .redeliver(id, "tester", time(now))
        .await
        .unwrap();
    assert_eq!(again.state, DeliveryState::Pending);
    assert_eq!(again.attempts, 0);
    let ok = worker(&s, Arc::new(NoEffects), Duration::from_secs(60));
    assert_eq!(ok.process_due(time(now)).await.unwrap(), 1);
    assert_eq!(
        s.deliveries.get(id).await.unwrap().state,
        DeliveryState::Processed
    );
    s.test_db.drop_database().await;
}

async fn a_delivery_claimed_by_a_worker_that_died_is_processed_after_its_lease(engine: Engine) {
    let s = setup(engine).await;
    let t0 = 5_000 * SECOND;
    let id = pending(&s, t0).await;
    // A worker claims it with a 30 s lease and dies without an outcome.
    let dead = s
        .deliveries
        .claim(10, Duration::from_secs(30), time(t0))
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        s.deliveries.get(id).await.unwrap().state,
        DeliveryState::Processing
    );

    let w = worker(&s, Arc::new(NoEffects), Duration::from_secs(30));
    assert_eq!(
        w.process_due(time(t0 + 29 * SECOND)).await.unwrap(),
        0,
        "the lease still holds"
    );
    assert_eq!(w.process_due(time(t0 + 30 * SECOND)).await.unwrap(), 1);
    let d = s.deliveries.get(id).await.unwrap();
    assert_eq!(d.state, DeliveryState::Processed);
    assert_eq!(d.attempts, 2);

    // The dead worker coming back cannot overwrite the outcome: its claim is gone.
    let late = DeliveryStore::finish(
        &s.db,
        &dead[0],
        DeliveryState::Failed,
        None,
        time(t0 + 31 * SECOND),
    )
    .await
    .unwrap();
    assert!(!late);
    assert_eq!(
        s.deliveries.get(id).await.unwrap().state,
        DeliveryState::Processed
    );
    s.test_db.drop_database().await;
}

async fn concurrent_claimers_never_share_a_delivery(engine: Engine) {
    let s = setup(engine).await;
    let t0 = 9_000 * SECOND;
    let mut all = HashSet::new();
    for i in 0..120 {
        all.insert(pending(&s, t0 + i).await);
    }
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let store = s.deliveries.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                match store
                    .claim(7, Duration::from_secs(60), time(t0 + SECOND))
                    .await
                {
                    Ok(batch) if batch.is_empty() => break,
                    Ok(batch) => mine.extend(batch.into_iter().map(|d| d.id)),
                    // SQLite may report a busy database under contention: try again.
                    Err(hookgate::store::StoreError::Unavailable(_)) => {}
                    Err(e) => panic!("claim failed: {e}"),
                }
            }
            mine
        }));
    }
    let mut claimed = Vec::new();
    for t in tasks {
        claimed.extend(t.await.unwrap());
    }
    let unique: HashSet<_> = claimed.iter().copied().collect();
    assert_eq!(
        unique.len(),
        claimed.len(),
        "a delivery was handed to two claimers"
    );
    assert_eq!(unique, all, "every delivery was claimed");
    s.test_db.drop_database().await;
}

async fn retention_deletes_deliveries_older_than_the_retention_period(engine: Engine) {
    // The store: only what was received before the cut-off goes.
    let s = setup(engine).await;
    let now = hookgate::time::Timestamp::now().micros();
    let old = pending(&s, now - 73 * 3600 * SECOND).await;
    let young = pending(&s, now - 71 * 3600 * SECOND).await;
    let cutoff = now - 72 * 3600 * SECOND;
    assert_eq!(
        s.deliveries
            .purge_received_before(time(cutoff))
            .await
            .unwrap(),
        1
    );
    assert!(s.deliveries.get(old).await.is_err());
    assert!(s.deliveries.get(young).await.is_ok());
    s.test_db.drop_database().await;

    // The service: its janitor applies --delivery-retention at start-up (then hourly).
    let s = setup(engine).await;
    let stale = pending(&s, now - 2 * 3600 * SECOND).await;
    let fresh = pending(&s, now).await;
    // Feed entries are kept as long as deliveries.
    feed::append(
        &s.db,
        FeedEntryKind::DeliveryFailed,
        Default::default(),
        stale,
        time(now - 2 * 3600 * SECOND),
    )
    .await
    .unwrap();
    feed::append(
        &s.db,
        FeedEntryKind::DeliveryFailed,
        Default::default(),
        fresh,
        time(now),
    )
    .await
    .unwrap();
    let feed = FeedStore::new(s.db.clone());
    let store = s.deliveries.clone();
    let app = TestApp::start(s.test_db, |c| {
        c.delivery_retention = Duration::from_secs(3600).into();
    })
    .await;
    // The janitor deletes old deliveries, then old feed entries: wait until both are done.
    let failed_entries = || async {
        feed.after(0, None, &[FeedEntryKind::DeliveryFailed], 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.subject_id)
            .collect::<Vec<_>>()
    };
    let mut purged = false;
    for _ in 0..200 {
        if store.get(stale).await.is_err() && failed_entries().await == vec![fresh] {
            purged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        purged,
        "the janitor deleted the delivery and the feed entry older than the retention: {:?}",
        failed_entries().await
    );
    assert!(store.get(fresh).await.is_ok(), "the young delivery stays");
    app.stop().await;
}

/// One value of a raw query: `SELECT <one column> ...`.
async fn scalar(db: &DatabaseConnection, sql: &str) -> i64 {
    use sea_orm::ConnectionTrait;
    db.query_one_raw(sea_orm::Statement::from_string(
        db.get_database_backend(),
        sql,
    ))
    .await
    .unwrap()
    .expect("a row")
    .try_get_by_index::<i64>(0)
    .unwrap()
}

/// The entities' ids, states and times are typed, but a row keeps the form the columns have
/// always had (ids as hyphenated text, states as upper-case names, times as microseconds): a
/// row written as an earlier hookgate wrote it loads, is claimed, lists and deduplicates, and
/// what the store writes is found by the same text.
async fn rows_stored_as_text_by_earlier_versions_load_and_stay_text(engine: Engine) {
    use sea_orm::ConnectionTrait;
    let s = setup(engine).await;
    let bytes = |hex: &str| match engine {
        Engine::Sqlite => format!("X'{hex}'"),
        Engine::Postgres => format!("decode('{hex}', 'hex')"),
    };
    let old = Uuid::new_v4();
    let t0 = 20_000 * SECOND;
    s.db.execute_unprepared(&format!(
        "INSERT INTO deliveries (id, receiver_id, delivery_key, event, state, receive_time, method, \
         path, request_headers, request_body, response_status, response_body, attempts, \
         next_attempt_time) VALUES ('{old}', '{receiver}', 'old-key', 'push', 'PENDING', {t0}, \
         'POST', '/', '{{\"x-github-event\":\"push\"}}', {body}, 202, {answer}, 0, {t0})",
        receiver = s.receiver,
        body = bytes("7b7d"),
        answer = bytes(""),
    ))
    .await
    .unwrap();

    let d = s.deliveries.get(old).await.unwrap();
    assert_eq!(d.id, old);
    assert_eq!(d.receiver_id, s.receiver);
    assert_eq!(d.state, DeliveryState::Pending);
    assert_eq!(d.receive_time, time(t0));
    assert_eq!(d.delivery_key.as_ref().map(|k| k.as_str()), Some("old-key"));
    assert_eq!(d.request_headers["x-github-event"], "push");
    assert_eq!(d.request_body.as_deref(), Some(&b"{}"[..]));
    assert_eq!(
        s.deliveries
            .find_by_key(s.receiver, &DeliveryKey::parse("old-key").unwrap())
            .await
            .unwrap(),
        Some(old)
    );
    let listed = s
        .deliveries
        .list(
            &hookgate::deliveries::DeliveryFilter {
                receiver_id: Some(s.receiver),
                states: vec![DeliveryState::Pending],
                since: Some(time(t0)),
                ..Default::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(
        listed.deliveries.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![old]
    );
    let claimed = s
        .deliveries
        .claim(10, Duration::from_secs(30), time(t0))
        .await
        .unwrap();
    assert_eq!(claimed.iter().map(|c| c.id).collect::<Vec<_>>(), vec![old]);

    // What the store wrote is the text an earlier version reads: the claim on the old row, and
    // a new delivery with its receiver's last delivery time.
    assert_eq!(
        scalar(
            &s.db,
            &format!(
                "SELECT COUNT(*) FROM deliveries WHERE id = '{old}' AND state = 'PROCESSING' \
                 AND lease_expire_time = {}",
                t0 + 30 * SECOND
            )
        )
        .await,
        1
    );
    let new = pending(&s, t0 + SECOND).await;
    assert_eq!(
        scalar(
            &s.db,
            &format!(
                "SELECT COUNT(*) FROM deliveries WHERE id = '{new}' AND receiver_id = '{}' \
                 AND state = 'PENDING' AND receive_time = {}",
                s.receiver,
                t0 + SECOND
            )
        )
        .await,
        1
    );
    assert_eq!(
        scalar(
            &s.db,
            &format!(
                "SELECT COUNT(*) FROM receivers WHERE id = '{}' AND code_host_kind = 'GITHUB' \
                 AND last_delivery_time = {}",
                s.receiver,
                t0 + SECOND
            )
        )
        .await,
        1
    );

    // A body encoding no version writes is an error, never the bytes as they are.
    let odd = Uuid::new_v4();
    s.db.execute_unprepared(&format!(
        "INSERT INTO deliveries (id, receiver_id, event, state, receive_time, method, path, \
         request_headers, request_body, request_body_encoding, response_status, response_body, \
         attempts, next_attempt_time) VALUES ('{odd}', '{receiver}', 'push', 'PROCESSED', {t0}, \
         'POST', '/', '{{}}', {body}, 'brotli', 202, {answer}, 1, {t0})",
        receiver = s.receiver,
        body = bytes("7b7d"),
        answer = bytes(""),
    ))
    .await
    .unwrap();
    let err = s.deliveries.get(odd).await.unwrap_err();
    assert!(err.to_string().contains("brotli"), "{err}");
    s.test_db.drop_database().await;
}
