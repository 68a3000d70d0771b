//! The `repository_aliases` table: names repositories had on their hosts before a rename or a
//! transfer, each pointing to the repository that had it.

use sea_orm::entity::prelude::*;

use super::id::Id;
use crate::time::Timestamp;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "repository_aliases")]
pub struct Model {
    /// The normalised code host URN.
    #[sea_orm(primary_key, auto_increment = false)]
    pub code_host_urn: String,
    /// The former name.
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    pub repository_id: Id,
    /// When it stopped being the repository's name.
    pub create_time: Timestamp,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
