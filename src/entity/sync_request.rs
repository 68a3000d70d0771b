//! The `sync_requests` table, and the values its columns hold: where a request is in its life,
//! why it was made, and the ref updates it carries.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use super::id::{Id, OptionalId};
use super::json::Json;
use crate::time::Timestamp;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sync_requests")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Id,
    pub repository_id: Id,
    /// None (stored empty) for an admin's request.
    pub receiver_id: OptionalId,
    pub state: SyncRequestState,
    pub push_count: i32,
    pub refs: Json<Vec<StoredRef>>,
    pub request_time: Timestamp,
    pub due_time: Timestamp,
    pub lease_expire_time: Option<Timestamp>,
    pub worker: String,
    pub reason: Reason,
    pub min_sync_interval_ms: i64,
    pub rerun: bool,
    pub rerun_refs: Json<Vec<StoredRef>>,
    pub rerun_count: i32,
    pub complete_time: Option<Timestamp>,
    pub error: Option<String>,
}

/// Where a sync request is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum SyncRequestState {
    #[sea_orm(string_value = "PENDING")]
    Pending,
    #[sea_orm(string_value = "CLAIMED")]
    Claimed,
    #[sea_orm(string_value = "COMPLETED")]
    Completed,
    #[sea_orm(string_value = "FAILED")]
    Failed,
}

/// Why a sync was requested (what the admin API shows as `reason`: [`Reason::label`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum Reason {
    /// A push event: counts as a push, and carries refs.
    #[sea_orm(string_value = "push")]
    Push,
    /// A generic trigger URL was called.
    #[sea_orm(string_value = "trigger")]
    Trigger,
    /// An admin asked (RequestSync).
    #[sea_orm(string_value = "manual")]
    Manual,
    /// Pushes landed while a worker synced: the request that runs again after it.
    #[sea_orm(string_value = "pushed during a sync")]
    PushedDuringSync,
}

impl Reason {
    /// As the admin API shows it: the stored text.
    pub fn label(self) -> String {
        self.to_value()
    }
}

/// A ref update as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRef {
    pub name: String,
    pub old_sha: String,
    pub new_sha: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
