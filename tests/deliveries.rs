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
    db: hookgate::db::Db,
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
    let receiver = github_receiver(&receivers, "gh").await;
    Setup {
        deliveries: DeliveryStore::new(db.clone()),
        db,
        receivers,
        receiver,
        test_db,
    }
}

/// A new GitHub receiver named `name`.
async fn github_receiver(receivers: &ReceiverStore, name: &str) -> Uuid {
    receivers
        .create(
            NewReceiver {
                name: ReceiverName::parse(name).unwrap(),
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
        .id
}

/// A pending `push` delivery for `receiver`, received at `at`, ready for `record_batch`.
fn prepared_push(
    receiver: Uuid,
    key: Option<DeliveryKey>,
    at: i64,
    body: Vec<u8>,
) -> hookgate::deliveries::PreparedDelivery {
    hookgate::deliveries::PreparedDelivery::new(new_push(receiver, key, at, body))
}

/// A pending `push` delivery for `receiver`, received at `at`, with a fresh id.
fn new_push(receiver: Uuid, key: Option<DeliveryKey>, at: i64, body: Vec<u8>) -> NewDelivery {
    NewDelivery {
        id: Uuid::now_v7(),
        receiver_id: receiver,
        delivery_key: key,
        event: "push".into(),
        state: DeliveryState::Pending,
        receive_time: time(at),
        method: "POST".into(),
        path: "/".into(),
        request_headers: BTreeMap::new(),
        request_body: Some(body),
        response_status: 202,
        response_body: Vec::new(),
        last_error: None,
    }
}

/// A pending `push` delivery received at `at`.
async fn pending(s: &Setup, at: i64) -> Uuid {
    let id = Uuid::new_v4();
    let body = common::fixture("github/push.branch-updated.json");
    stored(s, id, "push", body, at).await;
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
    bodies_stored_in_the_delivery_row_move_to_their_own_table_and_back,
    a_receivers_last_delivery_time_moves_once_a_second_at_most,
    the_queue_gauges_read_the_queue_not_the_history_kept,
    a_batch_stores_each_key_once_and_marks_receivers_from_what_it_stored,
    a_batch_that_marks_no_receiver_stores_each_key_once,
    a_key_stored_by_another_writer_while_a_batch_waits_is_its_original,
);

/// A batch (the intake's group commit; on SQLite one script) stores a key once per receiver,
/// within the batch and across batches: a duplicate gets the original's id, and neither a row
/// nor a body of its own. A receiver's last delivery time comes from its deliveries stored, so
/// a batch of duplicates leaves it where it was.
async fn a_batch_stores_each_key_once_and_marks_receivers_from_what_it_stored(engine: Engine) {
    let s = setup(engine).await;
    let other = github_receiver(&s.receivers, "gh-2").await;
    let key = |k: &str| DeliveryKey::parse(k);
    let new = |receiver: Uuid, k: Option<&str>, at: i64| {
        prepared_push(receiver, k.and_then(key), at, b"{\"a\": 1}".to_vec())
    };
    let count = |sql: String| {
        let db = s.db.clone();
        async move { scalar(&db, &sql).await }
    };
    let last = |receiver: Uuid| {
        count(format!(
            "SELECT last_delivery_time FROM receivers WHERE id = '{receiver}'"
        ))
    };
    let id_of = |k: &str| {
        let db = s.db.clone();
        let sql = format!("SELECT id FROM deliveries WHERE accepted_key = '{k}'");
        async move {
            use sea_orm::ConnectionTrait;
            let row = db
                .query_one_raw(sea_orm::Statement::from_string(
                    db.get_database_backend(),
                    sql,
                ))
                .await
                .unwrap()
                .expect("the key was stored");
            row.try_get::<String>("", "id")
                .unwrap()
                .parse::<Uuid>()
                .unwrap()
        }
    };
    let t0 = 90_000 * SECOND;

    let first = s
        .deliveries
        .record_batch(&[
            new(s.receiver, Some("k1"), t0),
            new(s.receiver, Some("k1"), t0 + 1),
            new(other, Some("k2"), t0 + 2),
            new(s.receiver, None, t0 + 3),
        ])
        .await
        .unwrap();
    let k1 = id_of("k1").await;
    assert_eq!(
        first,
        [Stored::New, Stored::Duplicate(k1), Stored::New, Stored::New]
    );
    assert_eq!(count("SELECT COUNT(*) FROM deliveries".into()).await, 3);
    assert_eq!(
        count("SELECT COUNT(*) FROM delivery_bodies".into()).await,
        3
    );
    assert_eq!(last(s.receiver).await, t0 + 3);
    assert_eq!(last(other).await, t0 + 2);

    let t1 = t0 + 10 * SECOND;
    let again = s
        .deliveries
        .record_batch(&[new(other, Some("k2"), t1), new(s.receiver, Some("k1"), t1)])
        .await
        .unwrap();
    let k2 = id_of("k2").await;
    assert_eq!(again, [Stored::Duplicate(k2), Stored::Duplicate(k1)]);
    assert_eq!(count("SELECT COUNT(*) FROM deliveries".into()).await, 3);
    assert_eq!(
        count("SELECT COUNT(*) FROM delivery_bodies".into()).await,
        3
    );
    assert_eq!(last(s.receiver).await, t0 + 3, "a duplicate does not mark");
    assert_eq!(last(other).await, t0 + 2, "a duplicate does not mark");

    let t2 = t0 + 20 * SECOND;
    let later = s
        .deliveries
        .record_batch(&[new(other, Some("k1"), t2), new(other, Some("k2"), t2 + 1)])
        .await
        .unwrap();
    assert_eq!(later[0], Stored::New, "the same key on another receiver");
    assert_eq!(later[1], Stored::Duplicate(k2));
    assert_eq!(count("SELECT COUNT(*) FROM deliveries".into()).await, 4);
    assert_eq!(
        last(other).await,
        t2,
        "marked from the delivery stored, not the duplicate"
    );
    assert_eq!(last(s.receiver).await, t0 + 3);
    s.test_db.drop_database().await;
}

/// A batch whose receivers were marked less than a second ago marks none (on PostgreSQL it is
/// then written as one statement, its bodies' INSERT riding on the deliveries'): a key told twice
/// in the batch, and a key stored by an earlier batch, are stored once, their duplicates get the
/// original's id and no body; the rows inserted get their bodies, whole.
async fn a_batch_that_marks_no_receiver_stores_each_key_once(engine: Engine) {
    let s = setup(engine).await;
    let other = github_receiver(&s.receivers, "gh-2").await;
    let new = |receiver: Uuid, k: Option<&str>, at: i64, body: &str| {
        new_push(
            receiver,
            k.and_then(DeliveryKey::parse),
            at,
            body.as_bytes().to_vec(),
        )
    };
    let prepared = |new: NewDelivery| hookgate::deliveries::PreparedDelivery::new(new);
    let count = |sql: &str| {
        let db = s.db.clone();
        let sql = sql.to_owned();
        async move { scalar(&db, &sql).await }
    };
    let t0 = 70_000 * SECOND;
    let first = s
        .deliveries
        .record_batch(&[
            prepared(new(s.receiver, Some("k1"), t0, "{\"n\": 1}")),
            prepared(new(other, Some("k2"), t0, "{\"n\": 2}")),
        ])
        .await
        .unwrap();
    assert_eq!(first, [Stored::New, Stored::New]);
    let k1 = s
        .deliveries
        .find_by_key(s.receiver, &DeliveryKey::parse("k1").unwrap())
        .await
        .unwrap()
        .expect("k1 stored");

    // Within the second: no receiver to mark.
    let t1 = t0 + SECOND / 10;
    let batch = [
        new(s.receiver, Some("k3"), t1, "{\"n\": 3}"),
        new(s.receiver, Some("k3"), t1 + 1, "{\"n\": 4}"),
        new(s.receiver, Some("k1"), t1 + 2, "{\"n\": 5}"),
        new(other, Some("k3"), t1 + 3, "{\"n\": 6}"),
        new(other, None, t1 + 4, "{\"n\": 7}"),
    ];
    let ids: Vec<Uuid> = batch.iter().map(|n| n.id).collect();
    let batch: Vec<_> = batch.into_iter().map(prepared).collect();
    let outcome = s.deliveries.record_batch(&batch).await.unwrap();
    assert_eq!(
        outcome,
        [
            Stored::New,
            Stored::Duplicate(ids[0]),
            Stored::Duplicate(k1),
            Stored::New,
            Stored::New,
        ]
    );
    assert_eq!(count("SELECT COUNT(*) FROM deliveries").await, 5);
    assert_eq!(count("SELECT COUNT(*) FROM delivery_bodies").await, 5);
    for (id, n) in [(ids[0], 3), (ids[3], 6), (ids[4], 7)] {
        let stored = s.deliveries.get(id).await.unwrap();
        assert_eq!(
            stored.request_body.as_deref(),
            Some(format!("{{\"n\": {n}}}").as_bytes()),
            "the body of delivery {id}"
        );
    }
    for id in [ids[1], ids[2]] {
        assert!(s.deliveries.get(id).await.is_err(), "{id} was not stored");
    }
    assert_eq!(
        count(&format!(
            "SELECT last_delivery_time FROM receivers WHERE id = '{}'",
            s.receiver
        ))
        .await,
        t0,
        "marked by the first batch only"
    );
    s.test_db.drop_database().await;
}

/// A key another writer stores while a batch waits for it (on PostgreSQL the batch's INSERT
/// waits at the unique index for the other transaction, then skips the row, and its own reads
/// began before that commit) is the duplicate's original: the batch answers with its id, and
/// its other deliveries are stored.
async fn a_key_stored_by_another_writer_while_a_batch_waits_is_its_original(engine: Engine) {
    let s = setup(engine).await;
    let t0 = 80_000 * SECOND;
    // Marks the receiver, so the batch below (within the second) marks none.
    s.deliveries
        .record_batch(&[prepared_push(s.receiver, None, t0, b"{}".to_vec())])
        .await
        .unwrap();
    let t1 = t0 + SECOND / 10;
    let (holding, held) = tokio::sync::oneshot::channel::<()>();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let other_writer = {
        let deliveries = s.deliveries.clone();
        let new = new_push(s.receiver, DeliveryKey::parse("k9"), t1, b"{}".to_vec());
        let id = new.id;
        tokio::spawn(async move {
            let stored = deliveries
                .record_with(new, move |_txn| {
                    Box::pin(async move {
                        holding.send(()).unwrap();
                        released.await.unwrap();
                        Ok(())
                    })
                })
                .await
                .unwrap();
            (id, stored)
        })
    };
    held.await.unwrap();
    let batch = [
        prepared_push(s.receiver, DeliveryKey::parse("k9"), t1 + 1, b"{}".to_vec()),
        prepared_push(s.receiver, None, t1 + 2, b"{}".to_vec()),
    ];
    let writing = {
        let deliveries = s.deliveries.clone();
        tokio::spawn(async move { deliveries.record_batch(&batch).await })
    };
    // Let the batch reach the database and wait there, then let the other writer commit.
    tokio::time::sleep(Duration::from_millis(300)).await;
    release.send(()).unwrap();
    let (original, stored) = other_writer.await.unwrap();
    assert_eq!(stored, Stored::New);
    let outcome = writing.await.unwrap().unwrap();
    assert_eq!(outcome, [Stored::Duplicate(original), Stored::New]);
    assert_eq!(scalar(&s.db, "SELECT COUNT(*) FROM deliveries").await, 3);
    s.test_db.drop_database().await;
}

/// `/metrics` reads the queue's depth and the receive time of its oldest delivery at every
/// scrape: that read must cost what the queue holds, not what history is kept. With 3,000
/// deliveries kept, processed, and one queued, the figures are right, and the database reads
/// from the queue (PostgreSQL: no plan node reads or filters out a tenth of the history or more;
/// SQLite: the plan names the queue's index).
async fn the_queue_gauges_read_the_queue_not_the_history_kept(engine: Engine) {
    use hookgate::deliveries::PreparedDelivery;
    use sea_orm::{ConnectionTrait, QueryTrait};

    let s = setup(engine).await;
    const KEPT: usize = 3000;
    let t0 = 50_000 * SECOND;
    let body = common::fixture("github/push.branch-updated.json");
    let new = |i: usize, at: i64| {
        prepared_push(
            s.receiver,
            DeliveryKey::parse(&format!("kept-{i}")),
            at,
            body.clone(),
        )
    };
    let kept: Vec<PreparedDelivery> = (0..KEPT).map(|i| new(i, t0 + i as i64)).collect();
    let processed = || async {
        s.db.pool()
            .execute_unprepared("UPDATE deliveries SET state = 'PROCESSED'")
            .await
            .unwrap();
    };
    // History, then a backlog of a fiftieth of it.
    let (history, backlog) = kept.split_at(KEPT - KEPT / 50);
    for batch in history.chunks(500) {
        s.deliveries.record_batch(batch).await.unwrap();
    }
    processed().await;
    if engine == Engine::Postgres {
        // The history's row versions from before it was processed are reclaimed, as autovacuum
        // reclaims them long before a log holds this much: what the gauges must not read is the
        // history kept, not fresh dead rows (which a bitmap scan of the queue index would count
        // until a vacuum, and autovacuum may or may not have come by in this test's second).
        s.db.pool()
            .execute_unprepared("VACUUM deliveries")
            .await
            .unwrap();
    }
    s.deliveries.record_batch(backlog).await.unwrap();
    if engine == Engine::Postgres {
        // Statistics taken during the backlog, as autovacuum takes them and keeps them until
        // enough rows change again: the planner expects a fiftieth of the deliveries queued.
        s.db.pool()
            .execute_unprepared("ANALYZE deliveries")
            .await
            .unwrap();
    }
    processed().await;
    assert_eq!(s.deliveries.queue_depth().await.unwrap(), (0, None));
    let queued_at = t0 + 10 * SECOND;
    s.deliveries
        .record_batch(&[new(KEPT, queued_at)])
        .await
        .unwrap();
    assert_eq!(
        s.deliveries.queue_depth().await.unwrap(),
        (1, Some(time(queued_at)))
    );

    let db = s.db.pool();
    let sql = hookgate::deliveries::queue_depth_query()
        .build(db.get_database_backend())
        .to_string();
    match engine {
        Engine::Postgres => {
            let row = db
                .query_one_raw(sea_orm::Statement::from_string(
                    db.get_database_backend(),
                    format!("EXPLAIN (ANALYZE, FORMAT JSON) {sql}"),
                ))
                .await
                .unwrap()
                .expect("a plan");
            let plan: serde_json::Value = row.try_get_by_index(0).unwrap();
            let mut read = Vec::new();
            fn rows_read(node: &serde_json::Value, read: &mut Vec<(String, u64)>) {
                let count = |key: &str| node.get(key).and_then(|v| v.as_u64()).unwrap_or(0);
                read.push((
                    node["Node Type"].as_str().unwrap_or("?").to_owned(),
                    count("Actual Rows") + count("Rows Removed by Filter"),
                ));
                for child in node
                    .get("Plans")
                    .and_then(|p| p.as_array())
                    .into_iter()
                    .flatten()
                {
                    rows_read(child, read);
                }
            }
            rows_read(&plan[0]["Plan"], &mut read);
            // The old plan of the oldest's read walked all 3,000 from the oldest kept.
            assert!(
                read.iter().all(|(_, rows)| *rows < KEPT as u64 / 10),
                "the queue gauges read {read:?} rows for a queue of 1 among {KEPT} kept: {plan:#}"
            );
        }
        Engine::Sqlite => {
            let plan = db
                .query_all_raw(sea_orm::Statement::from_string(
                    db.get_database_backend(),
                    format!("EXPLAIN QUERY PLAN {sql}"),
                ))
                .await
                .unwrap();
            let details: Vec<String> = plan
                .iter()
                .map(|row| row.try_get_by_index::<String>(3).unwrap())
                .collect();
            assert!(
                details
                    .iter()
                    .any(|d| d.contains("idx_deliveries_queue_open")),
                "the queue gauges are read from the queue's index: {details:?}"
            );
        }
    }
    s.test_db.drop_database().await;
}

/// A receiver's `last_delivery_time` is written at most once a second (a busy receiver's row is
/// not rewritten by every batch): a delivery within a second of the time written leaves it, one
/// later moves it, and one that arrives with an older time never takes it back.
async fn a_receivers_last_delivery_time_moves_once_a_second_at_most(engine: Engine) {
    let s = setup(engine).await;
    let t0 = 40_000 * SECOND;
    let last = || async {
        scalar(
            &s.db,
            &format!(
                "SELECT last_delivery_time FROM receivers WHERE id = '{}'",
                s.receiver
            ),
        )
        .await
    };
    for (at, expected) in [
        (t0, t0),
        (t0 + SECOND / 2, t0),
        (t0 + SECOND, t0),
        (t0 + SECOND + 1, t0 + SECOND + 1),
        (t0 - 5 * SECOND, t0 + SECOND + 1),
        (t0 + 3 * SECOND, t0 + 3 * SECOND),
    ] {
        stored(&s, Uuid::new_v4(), "push", b"{}".to_vec(), at).await;
        assert_eq!(last().await, expected, "after a delivery at {at}");
    }
    s.test_db.drop_database().await;
}

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
        .claim(10, u64::MAX, Duration::from_secs(30), time(t0))
        .await
        .unwrap()
        .0;
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
                    .claim(7, u64::MAX, Duration::from_secs(60), time(t0 + SECOND))
                    .await
                {
                    Ok((batch, _)) if batch.is_empty() => break,
                    Ok((batch, _)) => mine.extend(batch.into_iter().map(|d| d.id)),
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
/// what the store writes is found by the same text. The rows are written before migration
/// 000025, as an earlier version wrote them: it gives the accepted one the key it is
/// deduplicated by (`accepted_key`), and a rejected one with the same key none.
async fn rows_stored_as_text_by_earlier_versions_load_and_stay_text(engine: Engine) {
    use migration::MigratorTrait;
    use sea_orm::ConnectionTrait;
    let s = setup(engine).await;
    let bytes = |hex: &str| match engine {
        Engine::Sqlite => format!("X'{hex}'"),
        Engine::Postgres => format!("decode('{hex}', 'hex')"),
    };
    migration::Migrator::down(s.db.pool(), Some(1))
        .await
        .unwrap();
    let (old, forged) = (Uuid::new_v4(), Uuid::new_v4());
    let t0 = 20_000 * SECOND;
    for (id, state, at) in [(forged, "REJECTED", t0 - 1), (old, "PENDING", t0)] {
        s.db.execute_unprepared(&format!(
            "INSERT INTO deliveries (id, receiver_id, delivery_key, event, state, receive_time, \
             method, path, request_headers, response_status, response_body, attempts, \
             next_attempt_time) VALUES ('{id}', '{receiver}', 'old-key', 'push', '{state}', \
             {at}, 'POST', '/', '{{\"x-github-event\":\"push\"}}', 202, {answer}, 0, {at})",
            receiver = s.receiver,
            answer = bytes(""),
        ))
        .await
        .unwrap();
    }
    migration::Migrator::up(s.db.pool(), None).await.unwrap();
    for (id, accepted) in [(old, 1), (forged, 0)] {
        assert_eq!(
            scalar(
                &s.db,
                &format!(
                    "SELECT COUNT(*) FROM deliveries WHERE id = '{id}' AND accepted_key = 'old-key'"
                )
            )
            .await,
            accepted,
            "{id}"
        );
    }
    s.db.execute_unprepared(&format!(
        "INSERT INTO delivery_bodies (delivery_id, body) VALUES ('{old}', {body})",
        body = bytes("7b7d"),
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
        .claim(10, u64::MAX, Duration::from_secs(30), time(t0))
        .await
        .unwrap()
        .0;
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
         request_headers, response_status, response_body, \
         attempts, next_attempt_time) VALUES ('{odd}', '{receiver}', 'push', 'PROCESSED', {t0}, \
         'POST', '/', '{{}}', 202, {answer}, 1, {t0})",
        receiver = s.receiver,
        answer = bytes(""),
    ))
    .await
    .unwrap();
    s.db.execute_unprepared(&format!(
        "INSERT INTO delivery_bodies (delivery_id, body, encoding) VALUES ('{odd}', {body}, 'brotli')",
        body = bytes("7b7d"),
    ))
    .await
    .unwrap();
    let err = s.deliveries.get(odd).await.unwrap_err();
    assert!(err.to_string().contains("brotli"), "{err}");
    s.test_db.drop_database().await;
}

/// Migration 000023 moves request bodies out of the `deliveries` row into `delivery_bodies`.
/// Bodies stored before it (one compressed, one as received, one stored in the row by hand as
/// an earlier version wrote it, and a rejected delivery without one) read back byte for byte
/// after it, a claim hands them to the worker, and the retention purge takes them with their
/// deliveries; undone, the migration puts every body back in its row.
async fn bodies_stored_in_the_delivery_row_move_to_their_own_table_and_back(engine: Engine) {
    use migration::MigratorTrait;
    use sea_orm::ConnectionTrait;
    let s = setup(engine).await;
    let t0 = 30_000 * SECOND;
    let big_body = common::fixture("github/pull_request.opened.json");
    let big = Uuid::new_v4();
    stored(&s, big, "pull_request", big_body.clone(), t0).await;
    let small = Uuid::new_v4();
    stored(&s, small, "push", b"{\"zen\": \"small\"}".to_vec(), t0 + 1).await;
    assert_eq!(
        scalar(&s.db, "SELECT COUNT(*) FROM delivery_bodies").await,
        2
    );

    // Back to the schema before 000023 (and 000024, which records each body's size, and 000025,
    // which keys accepted deliveries apart): the bodies are in their rows again.
    migration::Migrator::down(s.db.pool(), Some(3))
        .await
        .unwrap();
    assert_eq!(
        scalar(
            &s.db,
            &format!(
                "SELECT COUNT(*) FROM deliveries WHERE id = '{big}' \
                 AND request_body_encoding = 'zstd' AND request_body IS NOT NULL"
            )
        )
        .await,
        1
    );
    // Rows as that version wrote them: a body as received, and a rejected delivery's none.
    let bytes = |hex: &str| match engine {
        Engine::Sqlite => format!("X'{hex}'"),
        Engine::Postgres => format!("decode('{hex}', 'hex')"),
    };
    let (old, rejected) = (Uuid::new_v4(), Uuid::new_v4());
    for (id, state, body) in [
        (old, "PENDING", bytes("7b7d")),
        (rejected, "REJECTED", "NULL".to_owned()),
    ] {
        s.db.execute_unprepared(&format!(
            "INSERT INTO deliveries (id, receiver_id, event, state, receive_time, method, path, \
             request_headers, request_body, response_status, response_body, attempts, \
             next_attempt_time) VALUES ('{id}', '{receiver}', 'push', '{state}', {t0}, 'POST', \
             '/', '{{\"x-github-event\":\"push\"}}', {body}, 202, {answer}, 0, {t0})",
            receiver = s.receiver,
            answer = bytes(""),
        ))
        .await
        .unwrap();
    }

    migration::Migrator::up(s.db.pool(), None).await.unwrap();
    assert_eq!(
        scalar(&s.db, "SELECT COUNT(*) FROM delivery_bodies").await,
        3
    );
    assert!(
        s.db.execute_unprepared("SELECT request_body FROM deliveries")
            .await
            .is_err(),
        "the column is gone"
    );
    // 000024 records the size each body is stored with (compressed for a compressed one).
    let big_stored = scalar(
        &s.db,
        &format!(
            "SELECT CAST(length(body) AS BIGINT) FROM delivery_bodies WHERE delivery_id = '{big}'"
        ),
    )
    .await;
    assert!(big_stored < big_body.len() as i64);
    for (id, size) in [
        (big, big_stored),
        (small, b"{\"zen\": \"small\"}".len() as i64),
        (old, 2),
        (rejected, 0),
    ] {
        assert_eq!(
            scalar(
                &s.db,
                &format!("SELECT body_size FROM deliveries WHERE id = '{id}'")
            )
            .await,
            size,
            "{id}"
        );
    }
    // A new pool: the old one may hold statements prepared against the old schema.
    let db = hookgate::db::connect(&s.test_db.url).await.unwrap();
    let store = DeliveryStore::new(db.clone());
    for (id, body) in [
        (big, Some(big_body.clone())),
        (small, Some(b"{\"zen\": \"small\"}".to_vec())),
        (old, Some(b"{}".to_vec())),
        (rejected, None),
    ] {
        assert_eq!(store.get(id).await.unwrap().request_body, body, "{id}");
    }
    let claimed = store
        .claim(10, u64::MAX, Duration::from_secs(30), time(t0 + SECOND))
        .await
        .unwrap()
        .0;
    let bodies: BTreeMap<Uuid, Vec<u8>> = claimed
        .into_iter()
        .map(|c| (c.id, c.request_body))
        .collect();
    assert_eq!(
        bodies,
        BTreeMap::from([
            (big, big_body),
            (small, b"{\"zen\": \"small\"}".to_vec()),
            (old, b"{}".to_vec()),
        ])
    );

    assert_eq!(
        store
            .purge_received_before(time(t0 + SECOND))
            .await
            .unwrap(),
        4
    );
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM delivery_bodies").await, 0);
    db.close().await.ok();
    s.test_db.drop_database().await;
}

on_both_engines!(
    a_chunk_of_deliveries_leaves_what_they_leave_one_at_a_time,
    a_chunk_finds_the_changesets_and_commit_results_it_made,
    a_stopped_worker_writes_every_batch_it_claimed,
    a_claim_takes_deliveries_up_to_its_byte_budget,
    a_worker_whose_claims_the_byte_budget_cuts_short_claims_again_at_once,
);

/// A JSON body of exactly `size` bytes (at least 11), compressible as a real one is.
fn body_of(size: usize) -> Vec<u8> {
    let body = format!(
        "{{\"pad\": \"{}\"}}",
        "ab".repeat(size).split_at(size - 11).0
    );
    assert_eq!(body.len(), size);
    body.into_bytes()
}

/// Each delivery's row records its body's size as received (not as stored, compressed); a
/// claim takes deliveries in the order they are due while their bodies fit its byte budget,
/// says when it left due ones behind, and takes a body larger than the budget alone.
async fn a_claim_takes_deliveries_up_to_its_byte_budget(engine: Engine) {
    let s = setup(engine).await;
    let t0 = 50_000 * SECOND;
    let sizes = [1_000, 2_000, 3_000, 400, 5_000];
    let mut ids = Vec::new();
    for (i, size) in sizes.into_iter().enumerate() {
        let id = Uuid::new_v4();
        stored(&s, id, "push", body_of(size), t0 + i as i64).await;
        ids.push(id);
    }
    for (id, size) in ids.iter().zip(sizes) {
        assert_eq!(
            scalar(
                &s.db,
                &format!("SELECT body_size FROM deliveries WHERE id = '{id}'")
            )
            .await,
            size as i64
        );
    }
    // Stored compressed: the recorded size is the body's, not what the table holds.
    assert!(
        scalar(
            &s.db,
            &format!(
                "SELECT CAST(length(body) AS BIGINT) FROM delivery_bodies WHERE delivery_id = '{}'",
                ids[4]
            )
        )
        .await
            < 5_000
    );

    let now = time(t0 + SECOND);
    let lease = Duration::from_secs(30);
    let mut claims = Vec::new();
    loop {
        let (claimed, more) = s.deliveries.claim(10, 3_500, lease, now).await.unwrap();
        if claimed.is_empty() {
            assert!(!more);
            break;
        }
        for c in &claimed {
            let i = ids.iter().position(|id| *id == c.id).unwrap();
            assert_eq!(c.request_body, body_of(sizes[i]));
        }
        claims.push((claimed.iter().map(|c| c.id).collect::<Vec<_>>(), more));
        assert!(claims.len() <= 5, "{claims:?}");
    }
    assert_eq!(
        claims,
        vec![
            (vec![ids[0], ids[1]], true),
            (vec![ids[2], ids[3]], true),
            (vec![ids[4]], false),
        ]
    );
    // The count still bounds a claim: with room for every byte, two at a time.
    let (first, later) = (Uuid::new_v4(), Uuid::new_v4());
    stored(&s, first, "push", body_of(100), t0 + 10).await;
    stored(&s, later, "push", body_of(100), t0 + 11).await;
    let claimed = s.deliveries.claim(1, u64::MAX, lease, now).await.unwrap();
    assert_eq!(
        claimed.0.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![first]
    );
    assert!(!claimed.1);
    s.test_db.drop_database().await;
}

/// A worker whose claims the byte budget cuts short claims the rest at once, not at its next
/// poll (an hour here), and the bodies of the batch it holds are let go once read.
async fn a_worker_whose_claims_the_byte_budget_cuts_short_claims_again_at_once(engine: Engine) {
    let s = setup(engine).await;
    let now = Timestamp::now().micros();
    for i in 0..6 {
        pending(&s, now - 1_000 + i).await;
    }
    // Room for two of them a claim.
    let size = common::fixture("github/push.branch-updated.json").len() as u64;
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let w = Worker::new(
        s.db.clone(),
        s.receivers.clone(),
        Arc::new(BodiesSeen(seen.clone())),
        WorkerConfig {
            batch_bytes: size * 5 / 2,
            poll_interval: Duration::from_secs(3600),
            ..WorkerConfig::default()
        },
        Default::default(),
    );
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(w.run(stop.clone()));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while scalar(
        &s.db,
        "SELECT COUNT(*) FROM deliveries WHERE state = 'PROCESSED'",
    )
    .await
        < 6
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the worker left deliveries behind its first claim for its next poll"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.cancel();
    running.await.unwrap();
    assert_eq!(*seen.lock().unwrap(), vec![0; 6]);
    s.test_db.drop_database().await;
}

/// A handler that processes every delivery and notes the size of the body it is handed.
struct BodiesSeen(Arc<std::sync::Mutex<Vec<usize>>>);

#[tonic::async_trait]
impl Handler for BodiesSeen {
    async fn handle(
        &self,
        _: &DatabaseTransaction,
        _: &Receiver,
        delivery: &ClaimedDelivery,
        _: &Event,
    ) -> Result<Outcome, HandlerError> {
        self.0.lock().unwrap().push(delivery.request_body.len());
        Ok(Outcome::Processed)
    }
}

/// A GitHub event `fixture` made about pull request `number` of repository `id` (`name`).
fn about(fixture: &str, id: i64, name: &str, number: i64) -> Vec<u8> {
    let mut body: serde_json::Value =
        serde_json::from_slice(&common::fixture(&format!("github/{fixture}.json"))).unwrap();
    let repo = &mut body["repository"];
    repo["id"] = id.into();
    repo["full_name"] = name.into();
    repo["name"] = name.split('/').next_back().unwrap().into();
    repo["html_url"] = format!("https://github.com/{name}").into();
    for pointer in ["/number", "/pull_request/number", "/issue/number"] {
        if let Some(n) = body.pointer_mut(pointer) {
            *n = number.into();
        }
    }
    if let Some(prs) = body
        .pointer_mut("/check_run/pull_requests")
        .and_then(|p| p.as_array_mut())
    {
        for pr in prs {
            pr["number"] = number.into();
            pr["base"]["repo"]["id"] = id.into();
        }
    }
    serde_json::to_vec(&body).unwrap()
}

/// Stores a pending GitHub delivery `id` of `event` with `body`, received at `at`.
async fn stored(s: &Setup, id: Uuid, event: &str, body: Vec<u8>, at: i64) {
    let headers = BTreeMap::from([
        ("x-github-event".to_owned(), event.to_owned()),
        ("x-github-delivery".to_owned(), id.to_string()),
        ("content-type".to_owned(), "application/json".to_owned()),
    ]);
    let stored = s
        .deliveries
        .record(NewDelivery {
            id,
            receiver_id: s.receiver,
            delivery_key: DeliveryKey::parse(&id.to_string()),
            event: event.into(),
            state: DeliveryState::Pending,
            receive_time: time(at),
            method: "POST".into(),
            path: "/".into(),
            request_headers: headers,
            request_body: Some(body),
            response_status: 202,
            response_body: Vec::new(),
            last_error: None,
        })
        .await
        .unwrap();
    assert_eq!(stored, Stored::New);
}

/// What the deliveries left: every changeset with its timeline (without the ids and times the
/// database makes), the repositories, the feed's entries by kind, in order, and the sync
/// requests (repository, state, pushes, refs).
async fn left(s: &Setup) -> (Vec<String>, Vec<String>, Vec<FeedEntryKind>, Vec<String>) {
    use hookgate::sync::{ChangesetFilter, ChangesetStore, RepositoryStore};
    let store = ChangesetStore::new(s.db.clone());
    let page = store
        .list(&ChangesetFilter::default(), None, 1000)
        .await
        .unwrap();
    let mut changesets = Vec::new();
    for c in page.changesets {
        let (timeline, _) = store.timeline(c.id, None, 1000).await.unwrap();
        let timeline: Vec<String> = timeline
            .into_iter()
            .map(|e| {
                format!(
                    "{} {} {} {:?} {} {}",
                    e.kind, e.actor, e.external_id, e.occur_time, e.delivery_id, e.summary
                )
            })
            .collect();
        changesets.push(format!(
            "{}#{} {:?} {:?} {:?} {} {} {} {:?} {:?} {} {} | {}",
            c.repository,
            c.number,
            c.state,
            c.review_state,
            c.check_state,
            c.title,
            c.head_ref,
            c.head_sha,
            c.labels,
            c.host_update_time,
            c.in_merge_queue,
            c.auto_merge,
            timeline.join(" / ")
        ));
    }
    changesets.sort();
    let mut repositories: Vec<String> = RepositoryStore::new(s.db.clone())
        .list(None, None, 1000)
        .await
        .unwrap()
        .repositories
        .into_iter()
        .map(|r| format!("{} {} {} {:?}", r.name, r.external_id, r.url, r.clone_urls))
        .collect();
    repositories.sort();
    let feed = FeedStore::new(s.db.clone())
        .after(0, None, &[], 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    use sea_orm::ConnectionTrait;
    let mut requests: Vec<String> =
        s.db.query_all_raw(sea_orm::Statement::from_string(
            s.db.get_database_backend(),
            "SELECT r.name, q.state, q.push_count, q.refs, q.rerun, q.rerun_count \
             FROM sync_requests q JOIN repositories r ON r.id = q.repository_id",
        ))
        .await
        .unwrap()
        .into_iter()
        .map(|row| {
            let name: String = row.try_get("", "name").unwrap();
            let state: String = row.try_get("", "state").unwrap();
            let pushes: i32 = row.try_get("", "push_count").unwrap();
            let refs: String = row.try_get("", "refs").unwrap();
            let rerun: bool = row.try_get("", "rerun").unwrap();
            let reruns: i32 = row.try_get("", "rerun_count").unwrap();
            format!("{name} {state} {pushes} {refs} {rerun} {reruns}")
        })
        .collect();
    requests.sort();
    (changesets, repositories, feed, requests)
}

/// The real handler, counting the deliveries it was given outside a chunk: a chunk whose
/// transaction failed (a write refused, say, because its reads missed a row) is applied again
/// one delivery at a time, with the same end state, so only this count tells.
struct CountsOutsideChunks {
    real: Arc<dyn Handler>,
    outside: Arc<AtomicUsize>,
}

#[tonic::async_trait]
impl Handler for CountsOutsideChunks {
    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        receiver: &Receiver,
        delivery: &ClaimedDelivery,
        event: &Event,
    ) -> Result<Outcome, HandlerError> {
        if !hookgate::deliveries::chunk::in_chunk() {
            self.outside.fetch_add(1, Ordering::SeqCst);
        }
        self.real.handle(txn, receiver, delivery, event).await
    }

    async fn prepare(
        &self,
        txn: &DatabaseTransaction,
        events: &[(&Receiver, &Event)],
    ) -> Result<(), sea_orm::DbErr> {
        self.real.prepare(txn, events).await
    }

    fn lock_order(&self, receiver: &Receiver, event: &Event) -> Option<String> {
        self.real.lock_order(receiver, event)
    }
}

/// The worker applies many deliveries in one transaction, reading their repositories and
/// changesets once for the chunk and writing their timeline and feed entries and changesets'
/// new states together at its end: pull requests opened, labeled, reviewed, commented,
/// checked (a commit status on a head the same chunk moved), pushed to (several times a
/// repository, in each chunk) and closed, some told twice and some out of order, over three
/// repositories (the third with pull requests of its own numbers), leave the same changesets,
/// timelines, repositories, feed and sync requests as when each delivery is a transaction of
/// its own; and the chunks commit as chunks (none is undone and applied one by one).
async fn a_chunk_of_deliveries_leaves_what_they_leave_one_at_a_time(engine: Engine) {
    let events = [
        ("pull_request", "pull_request.opened"),
        ("pull_request", "pull_request.labeled"),
        ("pull_request_review", "pull_request_review.submitted"),
        ("issue_comment", "issue_comment.created"),
        ("check_run", "check_run.completed"),
        ("pull_request", "pull_request.synchronize"),
        // A commit status names no pull request, only a commit: here the head the synchronize
        // just moved to, which a chunk knows before the table does.
        ("status", "status"),
        ("push", "push.branch-updated"),
        ("pull_request", "pull_request.closed"),
    ];
    // The synchronize moves each head to a commit of its own, after every earlier fact (the
    // fixtures all name one head); the status is about that commit.
    let new_head = "5e1ec7ed0000000000000000000000000000c0de";
    let body_of = |fixture: &str, id: i64, name: &str, number: i64| {
        let mut body: serde_json::Value =
            serde_json::from_slice(&about(fixture, id, name, number)).unwrap();
        match fixture {
            "pull_request.synchronize" => {
                body["after"] = new_head.into();
                body["pull_request"]["head"]["sha"] = new_head.into();
                body["pull_request"]["updated_at"] = "2019-05-15T15:21:15Z".into();
            }
            "status" => body["sha"] = new_head.into(),
            _ => {}
        }
        serde_json::to_vec(&body).unwrap()
    };
    // The chunk reads each repository's own pull requests: octo/three's numbers are none of
    // the others'.
    let repositories = [
        (1001, "octo/one", 1..=3),
        (1002, "octo/two", 1..=3),
        (1003, "octo/three", 7..=9),
    ];
    let mut deliveries = Vec::new();
    for (i, (event, fixture)) in events.iter().enumerate() {
        for (r, (id, name, numbers)) in repositories.iter().enumerate() {
            for number in numbers.clone() {
                deliveries.push((Uuid::new_v4(), *event, body_of(fixture, *id, name, number)));
                // Told twice: a redelivery under its own id, with the same facts.
                if (i + r + number as usize).is_multiple_of(5) {
                    deliveries.push((Uuid::new_v4(), *event, body_of(fixture, *id, name, number)));
                }
            }
        }
    }
    // Out of order: the last ten arrive first.
    deliveries.rotate_right(10);

    let one_at_a_time = setup(engine).await;
    let chunked = setup(engine).await;
    let now = time(901 * SECOND);
    let alone = Worker::new(
        one_at_a_time.db.clone(),
        one_at_a_time.receivers.clone(),
        Arc::new(hookgate::sync::SyncHandler),
        WorkerConfig {
            batch: 1,
            per_transaction: 1,
            ..WorkerConfig::default()
        },
        Default::default(),
    );
    let mut together = Worker::new(
        chunked.db.clone(),
        chunked.receivers.clone(),
        Arc::new(hookgate::sync::SyncHandler),
        WorkerConfig {
            batch: 1000,
            per_transaction: 1000,
            transaction_budget: Duration::from_secs(600),
            ..WorkerConfig::default()
        },
        Default::default(),
    );
    let outside = Arc::new(AtomicUsize::new(0));
    together.wrap_handler(|real| {
        Arc::new(CountsOutsideChunks {
            real,
            outside: outside.clone(),
        })
    });
    // In two waves, so that the second chunk finds changesets and repositories the first made.
    let (first, second) = deliveries.split_at(deliveries.len() / 3);
    let mut at = 900 * SECOND;
    for wave in [first, second] {
        for s in [&one_at_a_time, &chunked] {
            for (i, (id, event, body)) in wave.iter().enumerate() {
                stored(s, *id, event, body.clone(), at + i as i64).await;
            }
        }
        at += wave.len() as i64;
        while alone.process_due(now).await.unwrap() > 0 {}
        assert_eq!(
            together.process_due(now).await.unwrap(),
            wave.len(),
            "one claim, one chunk"
        );
        assert_eq!(together.process_due(now).await.unwrap(), 0);
    }
    assert_eq!(
        outside.load(Ordering::SeqCst),
        0,
        "every delivery was applied in its chunk, none again on its own"
    );

    let expected = left(&one_at_a_time).await;
    let (changesets, repositories, feed, requests) = left(&chunked).await;
    // One pending request per repository, which every push of it joined.
    assert_eq!(expected.3.len(), 3, "{:#?}", expected.3);
    assert!(
        expected.3.iter().all(|r| r.contains(" PENDING ")),
        "{:#?}",
        expected.3
    );
    assert_eq!(requests, expected.3);
    assert_eq!(expected.0.len(), 9, "{:#?}", expected.0);
    assert_eq!(repositories.len(), 3, "{repositories:#?}");
    assert!(
        expected.0.iter().all(|c| c.contains(" / ")),
        "every changeset has a timeline: {:#?}",
        expected.0
    );
    assert_eq!(changesets, expected.0);
    assert_eq!(repositories, expected.1);
    if engine == Engine::Postgres {
        // On PostgreSQL a claim's deliveries are applied in the order of their repositories'
        // holds (`Handler::lock_order`), so entries of different repositories may come in
        // another order than one delivery at a time gives.
        let (mut feed, mut expected) = (feed, expected.2.clone());
        feed.sort_by_key(|k| format!("{k:?}"));
        expected.sort_by_key(|k| format!("{k:?}"));
        assert_eq!(feed, expected);
    } else {
        assert_eq!(feed, expected.2);
    }
    let mut states = Vec::new();
    for s in [&one_at_a_time, &chunked] {
        let mut of: Vec<(Uuid, DeliveryState, Option<String>)> = s
            .deliveries
            .list(&Default::default(), None, 1000)
            .await
            .unwrap()
            .deliveries
            .into_iter()
            .map(|d| (d.id, d.state, d.last_error))
            .collect();
        of.sort_by_key(|d| d.0);
        assert_eq!(of.len(), deliveries.len());
        assert!(
            of.iter()
                .all(|d| matches!(d.1, DeliveryState::Processed | DeliveryState::Ignored)),
            "{of:#?}"
        );
        states.push(of);
    }
    assert_eq!(states[0], states[1]);
    one_at_a_time.test_db.drop_database().await;
    chunked.test_db.drop_database().await;
}

/// A changeset a chunk makes is written at the chunk's end, with its others: until then the
/// chunk's events that name it not by number but by its head commit (a commit status) or its
/// merge group find it all the same, and a result kept in the chunk for a commit that one of
/// its changesets then moves to is taken, as when each delivery is a transaction of its own.
async fn a_chunk_finds_the_changesets_and_commit_results_it_made(engine: Engine) {
    let fixture = |name: &str| -> serde_json::Value {
        serde_json::from_slice(&common::fixture(&format!("github/{name}.json"))).unwrap()
    };
    let head = fixture("pull_request.opened")["pull_request"]["head"]["sha"]
        .as_str()
        .unwrap()
        .to_owned();
    let (id, name) = (1001, "octo/one");
    let mut status: serde_json::Value =
        serde_json::from_slice(&about("status", id, name, 1)).unwrap();
    status["sha"] = head.as_str().into();
    let mut queued: serde_json::Value =
        serde_json::from_slice(&about("merge_group.checks_requested", id, name, 2)).unwrap();
    queued["merge_group"]["head_ref"] =
        format!("refs/heads/gh-readonly-queue/main/pr-2-{head}").into();
    // A result for a commit no pull request has yet, which #3 then moves to: kept in the chunk
    // after the chunk read the kept results of its heads.
    let later = "1a7e4000000000000000000000000000000c0de5";
    let mut early: serde_json::Value =
        serde_json::from_slice(&about("status", id, name, 3)).unwrap();
    early["sha"] = later.into();
    let mut third: serde_json::Value =
        serde_json::from_slice(&about("pull_request.opened", id, name, 3)).unwrap();
    third["pull_request"]["head"]["sha"] = later.into();
    let deliveries = [
        ("status", serde_json::to_vec(&early).unwrap()),
        ("pull_request", about("pull_request.opened", id, name, 1)),
        ("pull_request", about("pull_request.opened", id, name, 2)),
        ("status", serde_json::to_vec(&status).unwrap()),
        ("merge_group", serde_json::to_vec(&queued).unwrap()),
        ("pull_request", serde_json::to_vec(&third).unwrap()),
    ];

    let one_at_a_time = setup(engine).await;
    let chunked = setup(engine).await;
    // The repository is known before the chunk (a first delivery made it), so the chunk reads
    // its changesets and kept results at its start.
    let first = (Uuid::new_v4(), about("pull_request.opened", id, name, 9));
    let ids: Vec<Uuid> = deliveries.iter().map(|_| Uuid::new_v4()).collect();
    for s in [&one_at_a_time, &chunked] {
        stored(s, first.0, "pull_request", first.1.clone(), 800 * SECOND).await;
    }
    let now = time(901 * SECOND);
    let worker = |s: &Setup, together: usize| {
        Worker::new(
            s.db.clone(),
            s.receivers.clone(),
            Arc::new(hookgate::sync::SyncHandler),
            WorkerConfig {
                batch: together as u64,
                per_transaction: together,
                transaction_budget: Duration::from_secs(600),
                ..WorkerConfig::default()
            },
            Default::default(),
        )
    };
    let alone = worker(&one_at_a_time, 1);
    for s in [&one_at_a_time, &chunked] {
        assert_eq!(worker(s, 1).process_due(now).await.unwrap(), 1);
        for (i, (event, body)) in deliveries.iter().enumerate() {
            stored(s, ids[i], event, body.clone(), 900 * SECOND + i as i64).await;
        }
    }
    while alone.process_due(now).await.unwrap() > 0 {}
    assert_eq!(
        worker(&chunked, 100).process_due(now).await.unwrap(),
        deliveries.len(),
        "one claim, one chunk"
    );

    let expected = left(&one_at_a_time).await;
    let (changesets, ..) = left(&chunked).await;
    assert_eq!(expected.0.len(), 4, "{:#?}", expected.0);
    // What the test is about: one at a time, the status found #1 and #2 (they have its commit
    // for their head), the merge group found #2, and #3 took the result kept for its head.
    let status = format!("default passed on {}", &head[..7]);
    assert!(
        expected.0[..2].iter().all(|c| c.contains(&status))
            && expected.0[1].contains("merge_group_checks_requested")
            && expected.0[2].contains(" Passed ")
            && expected.0[2].contains(later),
        "{:#?}",
        expected.0
    );
    assert_eq!(changesets, expected.0);
    let mut states = Vec::new();
    for s in [&one_at_a_time, &chunked] {
        let page = s
            .deliveries
            .list(&Default::default(), None, 100)
            .await
            .unwrap();
        let mut of: Vec<_> = page
            .deliveries
            .into_iter()
            .map(|d| (d.event, d.state, d.last_error))
            .collect();
        of.sort_by_key(|d| format!("{d:?}"));
        states.push(of);
    }
    assert_eq!(states[0], states[1]);
    one_at_a_time.test_db.drop_database().await;
    chunked.test_db.drop_database().await;
}

/// A handler that takes a while over each delivery, and tells when it starts on one.
#[derive(Default)]
struct Slow {
    started: tokio::sync::Notify,
}

#[tonic::async_trait]
impl Handler for Slow {
    async fn handle(
        &self,
        _: &DatabaseTransaction,
        _: &Receiver,
        _: &ClaimedDelivery,
        _: &Event,
    ) -> Result<Outcome, HandlerError> {
        self.started.notify_one();
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok(Outcome::Processed)
    }
}

/// The running worker claims the next batches while it writes one (so batches are parsed while
/// the one before them is written), two ahead at most; stopped, it writes every batch it claimed
/// before it ends, and claims no more: no delivery is left held by a claim until its lease runs
/// out.
async fn a_stopped_worker_writes_every_batch_it_claimed(engine: Engine) {
    let s = setup(engine).await;
    let now = Timestamp::now().micros();
    for i in 0..30 {
        pending(&s, now - 1_000 + i).await;
    }
    let handler = Arc::new(Slow::default());
    let w = Worker::new(
        s.db.clone(),
        s.receivers.clone(),
        handler.clone(),
        WorkerConfig {
            batch: 5,
            per_transaction: 5,
            ..WorkerConfig::default()
        },
        Default::default(),
    );
    let states = |s: &Setup| {
        let deliveries = s.deliveries.clone();
        async move {
            let mut by_state: BTreeMap<String, usize> = BTreeMap::new();
            for d in deliveries
                .list(&Default::default(), None, 100)
                .await
                .unwrap()
                .deliveries
            {
                *by_state.entry(format!("{:?}", d.state)).or_default() += 1;
            }
            by_state
        }
    };
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(w.run(stop.clone()));
    handler.started.notified().await;
    // While the first batch is written (a tenth of a second), the next two are claimed. On
    // SQLite a claim waits for the write lock the batch being written holds, so there they are
    // only seen to come; on PostgreSQL three batches are held by their claims at once, and never
    // more: a fourth is claimed only once the writer has taken one of the two that wait.
    // PostgreSQL is watched until the first batch is written too, so a fourth claim would be seen.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut most_held = 0;
    loop {
        let by_state = states(&s).await;
        let held = by_state.get("Processing").copied().unwrap_or(0);
        most_held = most_held.max(held);
        assert!(
            held <= 15,
            "more than three batches of five were claimed and not yet written: {by_state:?}"
        );
        let claimed_apart = match engine {
            Engine::Postgres => {
                most_held >= 15 && by_state.get("Processed").copied().unwrap_or(0) >= 5
            }
            Engine::Sqlite => by_state.get("Pending").copied().unwrap_or(0) <= 20,
        };
        if claimed_apart {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the next batches were not claimed while the first was written: {by_state:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("the worker stops")
        .unwrap();
    let by_state = states(&s).await;
    let processed = by_state.get("Processed").copied().unwrap_or(0);
    assert_eq!(by_state.get("Processing"), None, "{by_state:?}");
    assert!(processed >= 10, "{by_state:?}");
    assert_eq!(
        processed + by_state.get("Pending").copied().unwrap_or(0),
        30,
        "{by_state:?}"
    );
    s.test_db.drop_database().await;
}

/// Intake committers on PostgreSQL mark the receivers of their batches in one order (their ids),
/// so two of them never wait for each other's receiver row. Here a transaction takes the lower
/// receiver's row, as a committer in that order would, while a batch for both receivers (the
/// higher one first) is written; then it takes the higher one's. A batch that marked the higher
/// receiver first would hold it and wait for the lower: a deadlock, which PostgreSQL breaks by
/// aborting the batch (answered 503 to deliveries that are valid). Ten rounds, each with later
/// deliveries, so that each batch marks both receivers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(hookgate_postgres),
    ignore = "set HOOKGATE_TEST_DATABASE_URL to run this PostgreSQL test"
)]
async fn concurrent_batches_mark_their_receivers_in_one_order() {
    use sea_orm::{ConnectionTrait, Database, TransactionTrait};

    let s = setup(Engine::Postgres).await;
    let other = github_receiver(&s.receivers, "gh-2").await;
    let (lower, higher) = if s.receiver < other {
        (s.receiver, other)
    } else {
        (other, s.receiver)
    };
    let new = |receiver: Uuid, at: i64| prepared_push(receiver, None, at, b"{}".to_vec());
    // The other committer: its own connection, outside hookgate's pool.
    let holder = Database::connect(s.test_db.url.as_str()).await.unwrap();
    let take = |receiver: Uuid| {
        format!(
            "UPDATE receivers SET last_delivery_time = last_delivery_time WHERE id = '{receiver}'"
        )
    };
    let t0 = 60_000 * SECOND;
    for round in 0..10i64 {
        let at = t0 + round * 10 * SECOND;
        let held = holder.begin().await.unwrap();
        held.execute_unprepared(&take(lower)).await.unwrap();
        let deliveries = s.deliveries.clone();
        let batch = tokio::spawn(async move {
            deliveries
                .record_batch(&[new(higher, at), new(lower, at)])
                .await
        });
        // Long enough for the batch to insert and reach the receivers' rows.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let second = held.execute_unprepared(&take(higher)).await;
        held.commit().await.unwrap();
        let written = batch.await.unwrap();
        assert!(
            second.is_ok() && written.is_ok(),
            "round {round}: the holder's second row: {second:?}; the batch: {written:?}"
        );
    }
    let marked = scalar(
        &s.db,
        &format!(
            "SELECT COUNT(*) FROM receivers WHERE last_delivery_time = {}",
            t0 + 90 * SECOND
        ),
    )
    .await;
    assert_eq!(marked, 2, "both receivers marked by the last round");
    holder.close().await.ok();
    s.test_db.drop_database().await;
}
