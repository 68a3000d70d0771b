//! The `repositories` table.

use sea_orm::entity::prelude::*;

use super::id::Id;
use super::json::Json;
use crate::time::Timestamp;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "repositories")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Id,
    /// The normalised code host URN.
    pub code_host_urn: String,
    pub name: String,
    pub external_id: String,
    pub url: String,
    pub clone_urls: Json<Vec<String>>,
    pub registered: bool,
    /// When it was last synced successfully.
    pub last_sync_time: Option<Timestamp>,
    pub create_time: Timestamp,
    pub update_time: Timestamp,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
