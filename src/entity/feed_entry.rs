//! The `events` table: the feed `EventService.Watch` streams.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    /// Increases with every event written, in the order they were written (not committed).
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The event's place in the feed, what a client resumes after: given once the row is
    /// committed, so cursors become visible in increasing order (see `crate::sync::feed`). `None`
    /// until then.
    pub cursor: Option<i64>,
    pub time: i64,
    /// `CHANGESET_UPDATED`, `SYNC_REQUESTED`, `SYNC_COMPLETED`, `DELIVERY_FAILED`.
    pub kind: String,
    /// The receiver the event came through; empty for an admin's action.
    pub receiver_id: String,
    /// The changeset, sync request or delivery it is about.
    pub subject_id: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
