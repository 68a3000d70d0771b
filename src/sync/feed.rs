//! The event feed: a feed entry per thing automation wants to hear about (a changeset updated, a
//! sync requested or completed, a delivery failed, a repository renamed), written in the same
//! transaction as the change it tells of, and followed by `EventService.Watch` in cursor order
//! ([`FeedStore::follow`]). Every replica writes to and reads from the same table, so a client on
//! any replica sees every replica's entries.
//!
//! A watcher that has read up to cursor `c` never reads below `c` again, so an entry must never
//! become visible with a cursor below one already visible. An entry therefore gets its cursor
//! when it is committed, not when it is written (a writer's transaction may take any time to
//! commit: it may wait for a repository's row, on another replica):
//!
//! - on PostgreSQL it is written without a cursor, and [`FeedStore::give_cursors`] numbers the
//!   committed rows that have none, one numbering at a time across every replica (an advisory
//!   lock); one numbering's cursors are all above the previous one's, which was committed
//!   before it began, so cursors become visible in increasing order;
//! - on SQLite the one writer holds the database from its first write until it commits, so rows
//!   are committed in the order they are written, and each takes its row id as its cursor as it
//!   is written (a trigger; migration 000017).

use std::collections::VecDeque;
use std::time::Duration;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement, TransactionTrait,
};
use tokio_stream::Stream;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::db::Db;
use crate::deliveries::KeptWithDeliveries;
use crate::entity::feed_entry;
pub use crate::entity::feed_entry::{FeedEntryKind, Source};
use crate::entity::id::OptionalId;
use crate::store::StoreError;
use crate::time::Timestamp;

/// One entry of the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    /// Its place in the feed: what a follower resumes after.
    pub cursor: i64,
    /// When it was written, in the transaction of the change it tells of.
    pub time: Timestamp,
    pub kind: FeedEntryKind,
    /// The receiver the change came through, if any.
    pub receiver_id: Option<Uuid>,
    /// The changeset, sync request, delivery or repository it is about.
    pub subject_id: Uuid,
}

/// Appends an entry, on `conn` (the transaction of the change it tells of). In a chunk of the
/// delivery worker, `conn` is the chunk's transaction, and the entry is written with the chunk's
/// other entries before it commits ([`crate::deliveries::chunk`]).
pub async fn append<C: ConnectionTrait>(
    conn: &C,
    kind: FeedEntryKind,
    source: Source,
    subject_id: Uuid,
    now: Timestamp,
) -> Result<(), DbErr> {
    let entry = feed_entry::ActiveModel::entry(kind, source, subject_id, now);
    if let Some(entry) = crate::deliveries::chunk::defer_feed_entry(entry) {
        feed_entry::Entity::insert(entry)
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// Which entries a follower wants: those that came through `receiver` (every receiver's and
/// admins' when `None`), of `kinds` (every kind when empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedFilter {
    pub receiver: Option<Uuid>,
    pub kinds: Vec<FeedEntryKind>,
}

impl FeedFilter {
    /// Whether `entry` is one the follower wants.
    pub fn admits(&self, entry: &FeedEntry) -> bool {
        self.receiver.is_none_or(|r| entry.receiver_id == Some(r))
            && (self.kinds.is_empty() || self.kinds.contains(&entry.kind))
    }
}

/// Why a followed feed ended before its follower left.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// The service is stopping. Nothing is lost: the follower resumes, on this service once it is
    /// back or on another replica, after the last cursor it received.
    #[error("the service is stopping")]
    Stopping,
    /// The feed could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The PostgreSQL advisory lock one numbering of committed entries holds: "hookfeed" in ASCII.
const NUMBERING_LOCK: i64 = 0x686f_6f6b_6665_6564;
/// How many entries one numbering gives cursors to, at most.
const NUMBERING_BATCH: u64 = 1000;
/// How many entries a follower reads at a time.
const FOLLOW_BATCH: u64 = 200;
/// How often a follower looks for new entries once it has read them all.
const POLL: Duration = Duration::from_millis(200);

/// Reads and follows the feed, and deletes what is past retention.
#[derive(Debug, Clone)]
pub struct FeedStore {
    db: Db,
    /// Whether committed entries wait for [`FeedStore::give_cursors`] to get their cursor
    /// (PostgreSQL), rather than taking it as they are written (SQLite).
    numbered_on_commit: bool,
}

impl FeedStore {
    pub fn new(db: Db) -> Self {
        let numbered_on_commit = db.is_postgres();
        Self {
            db,
            numbered_on_commit,
        }
    }

    /// Gives every committed entry that has no cursor yet the next cursors, in the order the
    /// entries were written. A reader calls it before it reads: entries then reach it as soon as
    /// they are committed, whoever wrote them. When another replica or follower is numbering at
    /// the moment, this one leaves it to them (their cursors are visible once they commit).
    pub async fn give_cursors(&self) -> Result<(), StoreError> {
        if !self.numbered_on_commit {
            return Ok(());
        }
        loop {
            // A look first, on the partial index of rows without a cursor: nearly always none.
            let waiting = feed_entry::Entity::find()
                .select_only()
                .column(feed_entry::Column::Id)
                .filter(feed_entry::Column::Cursor.is_null())
                .limit(1)
                .into_tuple::<i64>()
                .one(&self.db)
                .await?;
            if waiting.is_none() {
                return Ok(());
            }
            let txn = self.db.begin().await?;
            let locked = txn
                .query_one_raw(Statement::from_string(
                    DbBackend::Postgres,
                    format!("SELECT pg_try_advisory_xact_lock({NUMBERING_LOCK}) AS locked"),
                ))
                .await?
                .map(|row| row.try_get::<bool>("", "locked"))
                .transpose()?
                .unwrap_or(false);
            if !locked {
                return Ok(());
            }
            // A statement of its own after the lock, so that its snapshot holds every cursor the
            // previous numbering gave. ORDER BY with LIMIT makes nextval() run in that order.
            let numbered = txn
                .execute_unprepared(&format!(
                    r#"WITH numbered AS (
                        SELECT id, nextval('events_cursor_seq') AS "cursor" FROM events
                        WHERE "cursor" IS NULL ORDER BY id LIMIT {NUMBERING_BATCH}
                    )
                    UPDATE events SET "cursor" = numbered."cursor" FROM numbered
                    WHERE events.id = numbered.id"#
                ))
                .await?
                .rows_affected();
            txn.commit().await?;
            if numbered < NUMBERING_BATCH {
                return Ok(());
            }
        }
    }

    /// Up to `limit` entries after `cursor`, oldest first, of `receiver` (if given) and of
    /// `kinds` (all when empty). Committed entries still without a cursor are numbered first
    /// ([`FeedStore::give_cursors`]), so a reader sees every entry committed before it asked.
    pub async fn after(
        &self,
        cursor: i64,
        receiver: Option<Uuid>,
        kinds: &[FeedEntryKind],
        limit: u64,
    ) -> Result<Vec<FeedEntry>, StoreError> {
        self.give_cursors().await?;
        let mut query = feed_entry::Entity::find().filter(feed_entry::Column::Cursor.gt(cursor));
        if let Some(receiver) = receiver {
            query = query.filter(feed_entry::Column::ReceiverId.eq(OptionalId(Some(receiver))));
        }
        if !kinds.is_empty() {
            query = query.filter(feed_entry::Column::Kind.is_in(kinds.iter().copied()));
        }
        let rows = query
            .order_by_asc(feed_entry::Column::Cursor)
            .limit(limit)
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|m| {
                Ok(FeedEntry {
                    cursor: m.cursor.ok_or_else(|| StoreError::Corrupt {
                        id: m.id.to_string(),
                        why: "a feed entry read after its cursor has none".to_owned(),
                    })?,
                    time: m.time,
                    kind: m.kind,
                    receiver_id: m.receiver_id.0,
                    subject_id: m.subject_id.uuid(),
                })
            })
            .collect()
    }

    /// The newest cursor given so far (0 when the feed is empty): where a follower that wants
    /// only what comes next starts.
    pub async fn newest_cursor(&self) -> Result<i64, StoreError> {
        self.give_cursors().await?;
        let newest = feed_entry::Entity::find()
            .select_only()
            .column_as(feed_entry::Column::Cursor.max(), "newest")
            .into_tuple::<Option<i64>>()
            .one(&self.db)
            .await?;
        Ok(newest.flatten().unwrap_or(0))
    }

    /// The entries written while processing `delivery`, oldest first: what it did (the
    /// changesets it updated, the sync requests it made or joined).
    pub async fn of_delivery(&self, delivery: Uuid) -> Result<Vec<FeedEntry>, StoreError> {
        let rows = feed_entry::Entity::find()
            .filter(feed_entry::Column::DeliveryId.eq(OptionalId(Some(delivery))))
            .order_by_asc(feed_entry::Column::Id)
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|m| FeedEntry {
                // Not yet numbered (PostgreSQL, just committed): shown all the same.
                cursor: m.cursor.unwrap_or_default(),
                time: m.time,
                kind: m.kind,
                receiver_id: m.receiver_id.0,
                subject_id: m.subject_id.uuid(),
            })
            .collect())
    }

    /// Every entry after cursor `after` that `filter` admits, then new ones as they are
    /// committed, each once and in cursor order, for as long as the stream is polled. It ends
    /// after its first error: [`FollowError::Stopping`] once `stop` is cancelled (the follower
    /// resumes after the last cursor it received), or the store's.
    ///
    /// Cursors become visible in increasing order, so a cursor missing below the newest one is
    /// gone for good (rolled back, or purged): the follower reads straight on. The filter is
    /// applied to what is read rather than in the query, so a follower of rare entries still
    /// moves its cursor on past the others instead of reading them again at every look.
    pub fn follow(
        &self,
        after: i64,
        filter: FeedFilter,
        stop: CancellationToken,
    ) -> impl Stream<Item = Result<FeedEntry, FollowError>> + Send + 'static {
        /// Where a follower is.
        struct Follower {
            feed: FeedStore,
            filter: FeedFilter,
            stop: CancellationToken,
            /// The last cursor read (admitted or not).
            cursor: i64,
            /// Entries read and admitted, not handed out yet.
            ready: VecDeque<FeedEntry>,
            /// Set once the error that ends the stream is handed out.
            ended: bool,
        }
        let follower = Follower {
            feed: self.clone(),
            filter,
            stop,
            cursor: after,
            ready: VecDeque::new(),
            ended: false,
        };
        futures_util::stream::unfold(follower, |mut f| async move {
            loop {
                if f.ended {
                    return None;
                }
                // Checked before every hand-out too, so a follower that is never idle (a long
                // backlog) still ends promptly when the service stops.
                if f.stop.is_cancelled() {
                    f.ended = true;
                    return Some((Err(FollowError::Stopping), f));
                }
                if let Some(entry) = f.ready.pop_front() {
                    return Some((Ok(entry), f));
                }
                let batch = match f.feed.after(f.cursor, None, &[], FOLLOW_BATCH).await {
                    Ok(batch) => batch,
                    Err(e) => {
                        f.ended = true;
                        return Some((Err(e.into()), f));
                    }
                };
                let full = batch.len() as u64 == FOLLOW_BATCH;
                for entry in batch {
                    f.cursor = entry.cursor;
                    if f.filter.admits(&entry) {
                        f.ready.push_back(entry);
                    }
                }
                if !f.ready.is_empty() || full {
                    continue;
                }
                tokio::select! {
                    () = f.stop.cancelled() => {}
                    () = tokio::time::sleep(POLL) => {}
                }
            }
        })
    }
}

/// Entries are kept as long as deliveries: the delivery janitor deletes them with the deliveries.
#[tonic::async_trait]
impl KeptWithDeliveries for FeedStore {
    fn what(&self) -> &'static str {
        "feed entries"
    }

    async fn purge_before(&self, cutoff: Timestamp) -> Result<u64, StoreError> {
        Ok(feed_entry::Entity::delete_many()
            .filter(feed_entry::Column::Time.lt(cutoff))
            .exec(&self.db)
            .await?
            .rows_affected)
    }
}
