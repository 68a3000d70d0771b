//! The event feed: a row per thing automation wants to hear about (a changeset updated, a sync
//! requested or completed, a delivery failed, a repository renamed), written in the same transaction as the change it
//! tells of, and read by `EventService.Watch` in cursor order. Every replica writes to and reads
//! from the same table, so a client on any replica sees every replica's events.

use std::fmt;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use uuid::Uuid;

use crate::entity::event;
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

/// Reads the feed.
#[derive(Debug, Clone)]
pub struct EventStore {
    db: DatabaseConnection,
}

impl EventStore {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Up to `limit` events after `cursor`, oldest first, of `receiver` (if given) and of
    /// `kinds` (all when empty).
    pub async fn after(
        &self,
        cursor: i64,
        receiver: Option<Uuid>,
        kinds: &[EventKind],
        limit: u64,
    ) -> Result<Vec<Event>, StoreError> {
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
                    id: m.cursor.to_string(),
                    why,
                };
                Ok(Event {
                    cursor: m.cursor,
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
        let last: Option<i64> = event::Entity::find()
            .select_only()
            .column(event::Column::Cursor)
            .order_by_desc(event::Column::Cursor)
            .into_tuple()
            .one(&self.db)
            .await?;
        Ok(last.unwrap_or(0))
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
