//! The `receivers` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "receivers")]
pub struct Model {
    /// UUID v4, hyphenated lower-case.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    #[sea_orm(unique)]
    pub name: String,
    /// `CodeHostKind::as_str`.
    pub code_host_kind: String,
    /// The normalised URN.
    pub code_host_urn: String,
    /// The secret, sealed (`secret_key::SecretBox`): base64 of nonce, ciphertext and tag. Plain
    /// text only while `secret_key_id` is NULL, in a database an older hookgate wrote, until
    /// start-up encrypts it.
    pub secret: String,
    /// The id of the key `secret` is sealed under.
    pub secret_key_id: Option<String>,
    /// The secret before the last rotation, while its overlap lasts, sealed like `secret`.
    pub previous_secret: Option<String>,
    /// The id of the key `previous_secret` is sealed under.
    pub previous_secret_key_id: Option<String>,
    pub previous_secret_expire_time: Option<i64>,
    pub ignore_unmatched: bool,
    pub min_sync_interval_ms: i64,
    /// JSON array of glob patterns.
    pub push_branch_filter: String,
    pub rate_limit_per_minute: i64,
    pub create_time: i64,
    pub update_time: i64,
    pub created_by: String,
    pub updated_by: String,
    pub last_delivery_time: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
