//! The `commit_checks` table: check results kept per repository and commit, for commits that
//! become a changeset's head later.

use sea_orm::entity::prelude::*;

use super::id::Id;
use crate::hosts::effects::CheckStatus;
use crate::time::Timestamp;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "commit_checks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Id,
    pub repository_id: Id,
    /// Lower-case.
    pub sha: String,
    pub context: String,
    pub status: CheckStatus,
    pub time: Timestamp,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
