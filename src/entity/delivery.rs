//! The `deliveries` table: the delivery log and the worker's queue. A delivery's request body is
//! not in its row but in `delivery_bodies` ([`super::delivery_body`]): the row is rewritten at
//! each claim and outcome, the body never. The columns with a fixed set of values are enums here
//! ([`DeliveryState`], and [`BodyEncoding`] for the body's table), stored as the text they have
//! always been stored as.

use sea_orm::entity::prelude::*;

use std::collections::BTreeMap;

use super::id::Id;
use super::json::Json;
use crate::time::Timestamp;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Id,
    pub receiver_id: Id,
    /// The host's delivery id (`deliveries::DeliveryKey`); `NULL` when it sent none.
    pub delivery_key: Option<String>,
    /// The key the delivery is deduplicated by: `delivery_key` unless it was `REJECTED` (a
    /// forged request must not block the real delivery with the same id), `NULL` when it was or
    /// has none. Written with the row and never after, so the unique index on it is not
    /// rewritten when the worker changes the delivery's state.
    pub accepted_key: Option<String>,
    pub event: String,
    pub state: DeliveryState,
    pub receive_time: Timestamp,
    pub method: String,
    pub path: String,
    /// Lower-case header name to value, secrets redacted; stored as a JSON object.
    pub request_headers: Json<BTreeMap<String, String>>,
    pub response_status: i32,
    pub response_body: Vec<u8>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub process_time: Option<Timestamp>,
    pub next_attempt_time: Timestamp,
    pub lease_expire_time: Option<Timestamp>,
    /// Who last put it back in the queue (the admin's `x-hookgate-actor`); `NULL` if nobody.
    pub redelivered_by: Option<String>,
    /// When that was.
    pub redeliver_time: Option<Timestamp>,
    /// The size of its request body as received, in bytes (0 without one): what a claim of it
    /// holds in memory once the body is decoded, counted against the worker's byte budget.
    pub body_size: i64,
}

/// Where a delivery is in its life. `PENDING` → `PROCESSING` → `PROCESSED` (or back to `PENDING`
/// after a failed try, and `FAILED` after the last); `IGNORED` and `REJECTED` are final at intake.
/// Stored as its upper-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum DeliveryState {
    #[sea_orm(string_value = "PENDING")]
    Pending,
    #[sea_orm(string_value = "PROCESSING")]
    Processing,
    #[sea_orm(string_value = "PROCESSED")]
    Processed,
    #[sea_orm(string_value = "IGNORED")]
    Ignored,
    #[sea_orm(string_value = "FAILED")]
    Failed,
    #[sea_orm(string_value = "REJECTED")]
    Rejected,
}

/// The stored name (`PENDING`), as logs and messages show a state.
impl std::fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_value())
    }
}

/// How a stored request body is encoded; a body stored as received has none (`NULL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum BodyEncoding {
    /// A zstd frame of the body.
    #[sea_orm(string_value = "zstd")]
    Zstd,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
