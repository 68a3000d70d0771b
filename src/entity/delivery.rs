//! The `deliveries` table: the delivery log and the worker's queue.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub receiver_id: String,
    pub delivery_key: Option<String>,
    pub event: String,
    /// `DeliveryState::as_str`.
    pub state: String,
    pub receive_time: i64,
    pub method: String,
    pub path: String,
    /// JSON object: lower-case header name to value, secrets redacted.
    pub request_headers: String,
    /// As stored: see `request_body_encoding`.
    pub request_body: Option<Vec<u8>>,
    /// `NULL`: the body as received; `zstd`: compressed (`deliveries::body`).
    pub request_body_encoding: Option<String>,
    pub response_status: i32,
    pub response_body: Vec<u8>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub process_time: Option<i64>,
    pub next_attempt_time: i64,
    pub lease_expire_time: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
