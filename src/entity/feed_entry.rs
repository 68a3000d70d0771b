//! The `events` table: the event feed `EventService.Watch` streams, one row per feed entry (the
//! table keeps its first name). How entries get their cursors and are read is in `sync/feed.rs`;
//! [`ActiveModel::entry`] is here so that the delivery store, which sits below `sync/`, writes
//! its `DELIVERY_FAILED` entries the same way the feed writes the others.

use sea_orm::Set;
use sea_orm::entity::prelude::*;

use crate::entity::id::{Id, OptionalId};
use crate::time::Timestamp;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    /// Increases with every entry written, in the order they were written (not committed).
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The entry's place in the feed, what a client resumes after: given once the row is
    /// committed, so cursors become visible in increasing order (see `sync/feed.rs`). `None`
    /// until then.
    pub cursor: Option<i64>,
    /// When the entry was written (in the transaction of the change it tells of).
    pub time: Timestamp,
    pub kind: FeedEntryKind,
    /// The receiver the change came through; none (stored empty) for an admin's action.
    pub receiver_id: OptionalId,
    /// The changeset, sync request, delivery or repository it is about.
    pub subject_id: Id,
    /// The delivery whose processing wrote it; none (stored empty) for an admin's action or a
    /// sync worker's report.
    pub delivery_id: OptionalId,
}

/// What a feed entry tells, stored as its name in capitals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
pub enum FeedEntryKind {
    /// A changeset changed (state, review or check state, timeline).
    #[sea_orm(string_value = "CHANGESET_UPDATED")]
    ChangesetUpdated,
    /// A sync was asked for: a new sync request, one joined by more pushes, or a rerun.
    #[sea_orm(string_value = "SYNC_REQUESTED")]
    SyncRequested,
    /// A sync worker reported a sync request done (successfully or not).
    #[sea_orm(string_value = "SYNC_COMPLETED")]
    SyncCompleted,
    /// A delivery failed for good (after its last try).
    #[sea_orm(string_value = "DELIVERY_FAILED")]
    DeliveryFailed,
    /// A repository has a new name on its host (renamed or moved), the same repository.
    #[sea_orm(string_value = "REPOSITORY_RENAMED")]
    RepositoryRenamed,
}

/// Where the change a feed entry tells of came from: the receiver and the delivery whose
/// processing made it (both `None` for an admin's action; a sync worker's report names the
/// receiver of its request and no delivery).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Source {
    pub receiver_id: Option<Uuid>,
    pub delivery_id: Option<Uuid>,
}

impl Source {
    /// A change made by processing `delivery`, which came to `receiver`.
    pub fn delivery(receiver: Uuid, delivery: Uuid) -> Self {
        Self {
            receiver_id: Some(receiver),
            delivery_id: Some(delivery),
        }
    }

    /// A change through `receiver` (if any) that no one delivery made.
    pub fn receiver(receiver: Option<Uuid>) -> Self {
        Self {
            receiver_id: receiver,
            delivery_id: None,
        }
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl ActiveModel {
    /// A new entry, to insert in the transaction of the change it tells of: `kind` about
    /// `subject_id`, through `source` (none for an admin's action), written at `time`. Its id
    /// and cursor come from the database.
    pub fn entry(kind: FeedEntryKind, source: Source, subject_id: Uuid, time: Timestamp) -> Self {
        Self {
            time: Set(time),
            kind: Set(kind),
            receiver_id: Set(source.receiver_id.into()),
            delivery_id: Set(source.delivery_id.into()),
            subject_id: Set(subject_id.into()),
            ..Default::default()
        }
    }
}
