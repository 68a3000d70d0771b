//! The `receivers` table, and [`CodeHostKind`], the enum of its `code_host_kind` column (stored as
//! the upper-case names it has always been stored as).

use sea_orm::entity::prelude::*;

use super::id::Id;
use super::json::Json;
use crate::time::Timestamp;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "receivers")]
pub struct Model {
    /// UUID v4.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Id,
    #[sea_orm(unique)]
    pub name: String,
    pub code_host_kind: CodeHostKind,
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
    pub previous_secret_expire_time: Option<Timestamp>,
    /// The GitLab signing token (`whsec_...`), sealed like `secret`; NULL when there is none.
    pub signing_token: Option<String>,
    /// The id of the key `signing_token` is sealed under.
    pub signing_token_key_id: Option<String>,
    /// The signing token before the last rotation, while its overlap lasts, sealed.
    pub previous_signing_token: Option<String>,
    /// The id of the key `previous_signing_token` is sealed under.
    pub previous_signing_token_key_id: Option<String>,
    pub previous_signing_token_expire_time: Option<Timestamp>,
    /// How far a signed delivery's `webhook-timestamp` may be from now, in milliseconds.
    pub signature_tolerance_ms: i64,
    /// Whether a delivery to a receiver with a signing token must be signed (beside its token).
    pub require_signature: bool,
    pub ignore_unmatched: bool,
    pub min_sync_interval_ms: i64,
    /// Glob patterns on branch names; stored as a JSON array.
    pub push_branch_filter: Json<Vec<String>>,
    pub rate_limit_per_minute: i64,
    pub create_time: Timestamp,
    pub update_time: Timestamp,
    pub created_by: String,
    pub updated_by: String,
    pub last_delivery_time: Option<Timestamp>,
}

/// The kind of code host a receiver takes deliveries from, which decides how a delivery is
/// verified and parsed (`receivers::CodeHostKind::host`). Fixed when the receiver is created.
/// Stored, and shown in logs and metrics, as its upper-case name (`GITHUB`, `BITBUCKET_SERVER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
pub enum CodeHostKind {
    #[sea_orm(string_value = "GITHUB")]
    GitHub,
    #[sea_orm(string_value = "GITLAB")]
    GitLab,
    #[sea_orm(string_value = "BITBUCKET_SERVER")]
    BitbucketServer,
    #[sea_orm(string_value = "BITBUCKET_CLOUD")]
    BitbucketCloud,
    /// Gitea, and Forgejo.
    #[sea_orm(string_value = "GITEA")]
    Gitea,
    /// Azure DevOps (Services and Server) service hooks.
    #[sea_orm(string_value = "AZURE_DEVOPS")]
    AzureDevOps,
    /// A plain "sync now" trigger for systems that cannot sign their requests.
    #[sea_orm(string_value = "GENERIC")]
    Generic,
}

/// The stored name (`GITHUB`), as logs, metric labels and messages show a kind.
impl std::fmt::Display for CodeHostKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_value())
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
