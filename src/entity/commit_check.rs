//! The `commit_checks` table: check results kept per repository and commit, for commits that
//! become a changeset's head later.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "commit_checks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub repository_id: String,
    /// Lower-case.
    pub sha: String,
    pub context: String,
    /// `PENDING`, `PASSED` or `FAILED`.
    pub status: String,
    pub time: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
