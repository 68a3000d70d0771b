//! The `sync_requests` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sync_requests")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub repository_id: String,
    /// Empty for an admin's request.
    pub receiver_id: String,
    pub state: String,
    pub push_count: i32,
    /// JSON array of ref updates.
    pub refs: String,
    pub request_time: i64,
    pub due_time: i64,
    pub lease_expire_time: Option<i64>,
    pub worker: String,
    pub reason: String,
    pub min_sync_interval_ms: i64,
    pub rerun: bool,
    pub rerun_refs: String,
    pub rerun_count: i32,
    pub complete_time: Option<i64>,
    pub error: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
