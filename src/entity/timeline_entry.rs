//! The `changeset_events` table (its name from before the word "timeline entry"): each
//! changeset's timeline.

use sea_orm::entity::prelude::*;

use super::id::Id;
use crate::time::Timestamp;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "changeset_events")]
pub struct Model {
    /// Orders entries of the same host time by arrival: made from the receive time of the
    /// delivery that told of it first (`sync::changesets::arrival_ordered_id`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Id,
    pub changeset_id: Id,
    /// What happened, as the host names it (`opened`, `comment`, `check`...): an open set.
    pub kind: String,
    pub actor: String,
    pub occur_time: Timestamp,
    /// The delivery that told the latest fact about it.
    pub delivery_id: Id,
    pub summary: String,
    pub create_time: Timestamp,
    /// The host's own key for what happened, unique per changeset and kind (see
    /// `sync::changesets::entry_key`).
    pub external_id: String,
    /// The host time of the latest fact told about it (an edit, a check run finishing): a fact
    /// no newer leaves its summary as it is.
    pub revise_time: Timestamp,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
