//! Two writers on one PostgreSQL database at once, as two replicas' workers are: a change to a
//! repository's sync requests or changesets waits for the other writer's transaction, then
//! builds on what it wrote. Nothing is lost and nothing fails.
//!
//! PostgreSQL only: on SQLite, write transactions take turns from their start
//! (`db::begin_write`), so the second never begins while the first is open.

mod common;

use std::time::Duration;

use common::{TestDatabase, fixture};
use hookgate::db::Db;
use hookgate::entity::repository;
use hookgate::hosts::effects::{Effect, RepositoryRef};
use hookgate::hosts::{self, Host};
use hookgate::sync::requests::{self, Reason};
use hookgate::sync::{SyncRequestState, SyncRequestStore, changesets, repositories};
use hookgate::time::Timestamp;
use sea_orm::TransactionTrait;
use uuid::Uuid;

const SECOND: Timestamp = Timestamp::from_micros(1_000_000);
const URN: &str = "https://github.com/";
/// `n` seconds after the epoch.
fn seconds(n: i64) -> Timestamp {
    Timestamp::from_micros(n * SECOND.micros())
}

/// How long the second writer is watched while the first holds its transaction open.
const HELD: Duration = Duration::from_millis(300);

/// A migrated PostgreSQL database with one repository.
async fn setup() -> (TestDatabase, Db, repository::Model) {
    let test_db = TestDatabase::on_postgres(&common::postgres_url()).await;
    let db = hookgate::db::connect(&test_db.url).await.unwrap();
    hookgate::db::migrate(&db).await.unwrap();
    let seen = RepositoryRef {
        name: "Codertocat/Hello-World".into(),
        external_id: String::new(),
        url: String::new(),
        clone_urls: Vec::new(),
    };
    let repo = repositories::seen(&db, URN, &seen, true, None, SECOND)
        .await
        .unwrap()
        .expect("created");
    (test_db, db, repo)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(hookgate_postgres),
    ignore = "set HOOKGATE_TEST_DATABASE_URL to run this PostgreSQL test"
)]
async fn two_pushes_at_once_join_one_sync_request_and_both_are_counted() {
    let (test_db, db, repo) = setup().await;
    let push = |db: Db, repo: repository::Model| async move {
        let txn = db.begin().await?;
        let id = requests::request(
            &txn,
            &repo,
            Default::default(),
            &[],
            Duration::ZERO,
            Reason::Push,
            SECOND,
        )
        .await?;
        Ok::<_, sea_orm::DbErr>((txn, id))
    };
    let (first, first_id) = push(db.clone(), repo.clone()).await.unwrap();
    let second = tokio::spawn({
        let (db, repo) = (db.clone(), repo.clone());
        async move {
            let (txn, id) = push(db, repo).await?;
            txn.commit().await?;
            Ok::<_, sea_orm::DbErr>(id)
        }
    });
    tokio::time::sleep(HELD).await;
    assert!(
        !second.is_finished(),
        "the second push does not wait for the first's transaction"
    );
    first.commit().await.unwrap();
    let second_id = second
        .await
        .unwrap()
        .expect("the second push joins the first's request rather than failing");
    assert_eq!(second_id, first_id, "both pushes are in one request");
    let request = SyncRequestStore::new(db.clone())
        .get(first_id)
        .await
        .unwrap();
    assert_eq!(request.push_count, 2, "{request:?}");
    assert_eq!(request.state, SyncRequestState::Pending);
    test_db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(hookgate_postgres),
    ignore = "set HOOKGATE_TEST_DATABASE_URL to run this PostgreSQL test"
)]
async fn a_push_while_a_worker_completes_the_sync_is_synced_again_not_lost() {
    let (test_db, db, repo) = setup().await;
    let store = SyncRequestStore::new(db.clone());
    let first = requests::request(
        &db,
        &repo,
        Default::default(),
        &[],
        Duration::ZERO,
        Reason::Push,
        SECOND,
    )
    .await
    .unwrap();
    let claimed = store
        .claim("w", 1, Duration::from_secs(60), SECOND)
        .await
        .unwrap();
    assert_eq!(claimed[0].id, first);

    // A push lands while the sync runs, its transaction still open when the worker reports.
    let txn = db.begin().await.unwrap();
    requests::request(
        &txn,
        &repo,
        Default::default(),
        &[],
        Duration::ZERO,
        Reason::Push,
        seconds(2),
    )
    .await
    .unwrap();
    let completing = tokio::spawn({
        let store = store.clone();
        async move { store.complete(first, true, "", seconds(3)).await }
    });
    tokio::time::sleep(HELD).await;
    assert!(
        !completing.is_finished(),
        "the completion does not wait for the push's transaction"
    );
    txn.commit().await.unwrap();
    completing.await.unwrap().expect("the sync completes");

    let again = store
        .claim("w", 10, Duration::from_secs(60), seconds(100))
        .await
        .unwrap();
    assert_eq!(
        again.len(),
        1,
        "the push during the sync makes one more sync: {again:?}"
    );
    assert_eq!(again[0].push_count, 1);
    assert_ne!(again[0].id, first);
    test_db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(hookgate_postgres),
    ignore = "set HOOKGATE_TEST_DATABASE_URL to run this PostgreSQL test"
)]
async fn two_events_of_one_pull_request_at_once_both_count_and_the_newest_state_wins() {
    let (test_db, db, repo) = setup().await;
    let effect = |fixture_name: &str| {
        let payload: serde_json::Value = serde_json::from_slice(&fixture(fixture_name)).unwrap();
        let mut effects = hosts::effects(Host::GitHub, "pull_request", &payload).unwrap();
        match effects.remove(0) {
            Effect::Changeset(mut e) => {
                // One repository: the fixtures come from different ones (other host ids).
                e.repository.name = repo.name.clone();
                e.repository.external_id = "186853002".to_owned();
                e.target = hosts::effects::Target::Number(7);
                e
            }
            other => panic!("{fixture_name}: {other:?}"),
        }
    };
    let (opened, closed, edited) = (
        effect("github/pull_request.opened.json"),
        effect("github/pull_request.closed.json"),
        effect("github/pull_request.edited.json"),
    );
    // Each effect is applied as the worker does: the repository named (and held), then the
    // changeset, at the host time given.
    let apply = |db: Db, effect: hosts::effects::ChangesetEffect, time: Timestamp| async move {
        let txn = db.begin().await?;
        let repo = repositories::seen(&txn, URN, &effect.repository, true, None, time)
            .await?
            .expect("known");
        let at = hookgate::sync::Stamp {
            time,
            arrival: time,
        };
        changesets::apply(&txn, &repo, &effect, Uuid::now_v7(), Uuid::nil(), at).await?;
        Ok::<_, sea_orm::DbErr>(txn)
    };
    apply(db.clone(), opened, SECOND)
        .await
        .unwrap()
        .commit()
        .await
        .unwrap();

    // Closed at 30 s, still uncommitted, while an edit made at 20 s (whose snapshot says open)
    // is applied by another writer.
    let first = apply(db.clone(), closed, seconds(30)).await.unwrap();
    let second = tokio::spawn({
        let db = db.clone();
        async move { apply(db, edited, seconds(20)).await?.commit().await }
    });
    tokio::time::sleep(HELD).await;
    assert!(
        !second.is_finished(),
        "the second event does not wait for the first's transaction"
    );
    first.commit().await.unwrap();
    second.await.unwrap().expect("the second event applies");

    let store = changesets::ChangesetStore::new(db.clone());
    let page = store
        .list(
            &hookgate::sync::ChangesetFilter {
                repository: Some(repo.name.clone()),
                number: Some(7),
                ..Default::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(page.changesets.len(), 1);
    let changeset = &page.changesets[0];
    assert_eq!(
        changeset.state,
        hookgate::hosts::effects::ChangesetState::Closed,
        "the close (newest) wins over the older edit applied after it: {changeset:?}"
    );
    let (timeline, _) = store.timeline(changeset.id, None, 10).await.unwrap();
    assert_eq!(
        timeline.len(),
        3,
        "opened, closed and edited are all on the timeline: {timeline:?}"
    );
    test_db.drop_database().await;
}
