//! The `repositories` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "repositories")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The normalised code host URN.
    pub code_host_urn: String,
    pub name: String,
    pub external_id: String,
    pub url: String,
    /// JSON array.
    pub clone_urls: String,
    pub registered: bool,
    /// When it was last synced successfully.
    pub last_sync_time: Option<i64>,
    pub create_time: i64,
    pub update_time: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
