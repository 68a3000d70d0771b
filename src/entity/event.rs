//! The `events` table: the feed `EventService.Watch` streams.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    /// Increases with every event; what a client resumes after.
    #[sea_orm(primary_key)]
    pub cursor: i64,
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
