//! The event feed: a row per thing automation wants to hear about (a changeset updated, a sync
//! requested or completed, a delivery failed, a repository renamed), written in the same transaction as the change it
//! tells of, and read by `EventService.Watch` in cursor order. Every replica writes to and reads
//! from the same table, so a client on any replica sees every replica's events.
//!
//! A watcher that has read up to cursor `c` never reads below `c` again, so an event must never
//! become visible with a cursor below one already visible. An event therefore gets its cursor
//! when it is committed, not when it is written (a writer's transaction may take any time to
//! commit: it may wait for a repository's row, on another replica):
//!
//! - on PostgreSQL it is written without a cursor, and [`EventStore::give_cursors`] numbers the
//!   committed rows that have none, one numbering at a time across every replica (an advisory
//!   lock); one numbering's cursors are all above the previous one's, which was committed
//!   before it began, so cursors become visible in increasing order;
//! - on SQLite the one writer holds the database from its first write until it commits, so rows
//!   are committed in the order they are written, and each takes its row id as its cursor as it
//!   is written (a trigger; migration 000017).

use std::fmt;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, Statement, TransactionTrait,
};
use uuid::Uuid;

use crate::entity::feed_entry as event;
use crate::store::StoreError;

/// What an event tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    ChangesetUpdated,
    SyncRequested,
    SyncCompleted,
    DeliveryFailed,
    /// A repository has a new name on its host (renamed or moved), the same repository.
    RepositoryRenamed,
}

impl EventKind {
    pub const ALL: [EventKind; 5] = [
        EventKind::ChangesetUpdated,
        EventKind::SyncRequested,
        EventKind::SyncCompleted,
        EventKind::DeliveryFailed,
        EventKind::RepositoryRenamed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ChangesetUpdated => "CHANGESET_UPDATED",
            EventKind::SyncRequested => "SYNC_REQUESTED",
            EventKind::SyncCompleted => "SYNC_COMPLETED",
            EventKind::DeliveryFailed => "DELIVERY_FAILED",
            EventKind::RepositoryRenamed => "REPOSITORY_RENAMED",
        }
    }

    pub fn from_db(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event of the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub cursor: i64,
    pub time: i64,
    pub kind: EventKind,
    /// The receiver it came through, if any.
    pub receiver_id: Option<Uuid>,
    /// The changeset, sync request, delivery or repository it is about.
    pub subject_id: Uuid,
}

/// Appends an event, on `conn` (the transaction of the change it tells of).
pub async fn record<C: ConnectionTrait>(
    conn: &C,
    kind: EventKind,
    receiver_id: Option<Uuid>,
    subject_id: Uuid,
    now: i64,
) -> Result<(), DbErr> {
    event::Entity::insert(event::ActiveModel {
        time: Set(now),
        kind: Set(kind.as_str().to_owned()),
        receiver_id: Set(receiver_id.map(|r| r.to_string()).unwrap_or_default()),
        subject_id: Set(subject_id.to_string()),
        ..Default::default()
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// The PostgreSQL advisory lock one numbering of committed events holds: "hookfeed" in ASCII.
const NUMBERING_LOCK: i64 = 0x686f_6f6b_6665_6564;
/// How many events one numbering gives cursors to, at most.
const NUMBERING_BATCH: u64 = 1000;

/// Reads the feed.
#[derive(Debug, Clone)]
pub struct EventStore {
    db: DatabaseConnection,
    /// Whether committed events wait for [`EventStore::give_cursors`] to get their cursor
    /// (PostgreSQL), rather than taking it as they are written (SQLite).
    numbered_on_commit: bool,
}

impl EventStore {
    pub fn new(db: DatabaseConnection) -> Self {
        let numbered_on_commit = db.get_database_backend() == DbBackend::Postgres;
        Self {
            db,
            numbered_on_commit,
        }
    }

    /// Gives every committed event that has no cursor yet the next cursors, in the order the
    /// events were written. A reader calls it before it reads: events then reach it as soon as
    /// they are committed, whoever wrote them. When another replica or watcher is numbering at
    /// the moment, this one leaves it to them (their cursors are visible once they commit).
    pub async fn give_cursors(&self) -> Result<(), StoreError> {
        if !self.numbered_on_commit {
            return Ok(());
        }
        loop {
            // A look first, on the partial index of rows without a cursor: nearly always none.
            let waiting = event::Entity::find()
                .select_only()
                .column(event::Column::Id)
                .filter(event::Column::Cursor.is_null())
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

    /// Up to `limit` events after `cursor`, oldest first, of `receiver` (if given) and of
    /// `kinds` (all when empty). Committed events still without a cursor are numbered first
    /// ([`EventStore::give_cursors`]), so a reader sees every event committed before it asked.
    pub async fn after(
        &self,
        cursor: i64,
        receiver: Option<Uuid>,
        kinds: &[EventKind],
        limit: u64,
    ) -> Result<Vec<Event>, StoreError> {
        self.give_cursors().await?;
        let mut query = event::Entity::find().filter(event::Column::Cursor.gt(cursor));
        if let Some(receiver) = receiver {
            query = query.filter(event::Column::ReceiverId.eq(receiver.to_string()));
        }
        if !kinds.is_empty() {
            query = query.filter(event::Column::Kind.is_in(kinds.iter().map(|k| k.as_str())));
        }
        let rows = query
            .order_by_asc(event::Column::Cursor)
            .limit(limit)
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|m| {
                let corrupt = |why: String| StoreError::Corrupt {
                    id: m.id.to_string(),
                    why,
                };
                Ok(Event {
                    cursor: m.cursor.ok_or_else(|| corrupt("no cursor".to_owned()))?,
                    time: m.time,
                    kind: EventKind::from_db(&m.kind)
                        .ok_or_else(|| corrupt(format!("kind {:?}", m.kind)))?,
                    receiver_id: match m.receiver_id.as_str() {
                        "" => None,
                        id => Some(Uuid::parse_str(id).map_err(|e| corrupt(e.to_string()))?),
                    },
                    subject_id: Uuid::parse_str(&m.subject_id)
                        .map_err(|e| corrupt(e.to_string()))?,
                })
            })
            .collect()
    }

    /// The newest cursor, or 0 when the feed is empty.
    pub async fn last_cursor(&self) -> Result<i64, StoreError> {
        let last: Option<Option<i64>> = event::Entity::find()
            .select_only()
            .column(event::Column::Cursor)
            .filter(event::Column::Cursor.is_not_null())
            .order_by_desc(event::Column::Cursor)
            .into_tuple()
            .one(&self.db)
            .await?;
        Ok(last.flatten().unwrap_or(0))
    }

    /// Deletes events older than `cutoff` (they are kept as long as deliveries).
    pub async fn purge_before(&self, cutoff: i64) -> Result<u64, StoreError> {
        Ok(event::Entity::delete_many()
            .filter(event::Column::Time.lt(cutoff))
            .exec(&self.db)
            .await?
            .rows_affected)
    }
}
