//! The `secret_key` table: the key receiver secrets are encrypted under, by its id.

use sea_orm::entity::prelude::*;

use crate::time::Timestamp;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "secret_key")]
pub struct Model {
    /// Always [`ROW_ID`]: the table holds one row at most.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i32,
    /// `secret_key::KeyId` of the key in force.
    pub key_id: String,
    /// When the key came into force (first start, or the last `rotate-key`).
    pub update_time: Timestamp,
}

/// The id of the one row.
pub const ROW_ID: i32 = 1;

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
