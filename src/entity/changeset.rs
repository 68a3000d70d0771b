//! The `changesets` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "changesets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub repository_id: String,
    pub number: i64,
    pub title: String,
    pub url: String,
    pub author: String,
    pub state: String,
    pub review_state: String,
    pub check_state: String,
    pub head_ref: String,
    pub base_ref: String,
    pub head_sha: String,
    /// JSON array.
    pub labels: String,
    pub host_update_time: Option<i64>,
    /// JSON object: field -> time of the change that set it last.
    pub field_times: String,
    /// JSON object: reviewer -> latest vote.
    pub reviews: String,
    /// JSON object: "<sha> <context>" -> latest status.
    pub checks: String,
    pub create_time: i64,
    pub update_time: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
