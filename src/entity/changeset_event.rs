//! The `changeset_events` table: each changeset's timeline.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "changeset_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub changeset_id: String,
    pub kind: String,
    pub actor: String,
    pub occur_time: i64,
    pub delivery_id: String,
    pub summary: String,
    pub create_time: i64,
    /// The host's own key for what happened, unique per changeset and kind (see
    /// `sync::changesets::entry_key`).
    pub external_id: String,
    /// The host time of the latest fact told about it (an edit, a check run finishing): a fact
    /// no newer leaves its summary as it is.
    pub revise_time: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
