//! The delivery log in the database: intake (with de-duplication), the worker's claims and
//! outcomes, listing for admins, redelivery and retention. The same statements run on SQLite and
//! PostgreSQL; claims lock with `FOR UPDATE SKIP LOCKED`, which SQLite (one writer at a time)
//! leaves out.

use std::collections::BTreeMap;
use std::time::Duration;

use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    FromQueryResult, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, SqlErr,
    TransactionTrait,
};
use uuid::Uuid;

use super::DeliveryState;
use crate::entity::{delivery, receiver};
use crate::store::StoreError;
use crate::store::paging::{self, Order};
use crate::time::duration_micros;

/// A delivery as intake stores it.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub id: Uuid,
    pub receiver_id: Uuid,
    pub delivery_key: Option<String>,
    pub event: String,
    pub state: DeliveryState,
    pub receive_time: i64,
    pub method: String,
    pub path: String,
    /// Lower-case names, secrets already redacted.
    pub request_headers: BTreeMap<String, String>,
    /// `None` for a rejected delivery.
    pub request_body: Option<Vec<u8>>,
    pub response_status: u16,
    pub response_body: Vec<u8>,
    pub last_error: Option<String>,
}

/// What intake did with a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Committed as a new delivery.
    New,
    /// The receiver already has an accepted delivery with this key: this one.
    Duplicate(Uuid),
}

/// A delivery as the log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: Uuid,
    pub receiver_id: Uuid,
    pub delivery_key: Option<String>,
    pub event: String,
    pub state: DeliveryState,
    pub receive_time: i64,
    pub method: String,
    pub path: String,
    pub request_headers: BTreeMap<String, String>,
    /// Empty in listings; `None` for a rejected delivery.
    pub request_body: Option<Vec<u8>>,
    pub response_status: u16,
    pub response_body: Vec<u8>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub process_time: Option<i64>,
}

/// A delivery a worker has claimed: what the handler needs, and the claim it holds.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: Uuid,
    pub receiver_id: Uuid,
    pub event: String,
    pub request_headers: BTreeMap<String, String>,
    pub request_body: Vec<u8>,
    /// Tries so far, this one included. With the id it names the claim: a worker whose lease
    /// ran out finds its outcome refused, because the next claim raised it.
    pub attempts: i32,
    pub receive_time: i64,
}

/// Which deliveries a listing shows.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub receiver_id: Option<Uuid>,
    /// Empty: every state.
    pub states: Vec<DeliveryState>,
    /// Only those answered outside 200-299, or `FAILED`.
    pub only_errors: bool,
    /// Received at or after.
    pub since: Option<i64>,
    /// Received before.
    pub until: Option<i64>,
}

/// One page of a listing, newest first.
#[derive(Debug)]
pub struct DeliveryPage {
    pub deliveries: Vec<Delivery>,
    pub total_size: u64,
    pub has_more: bool,
}

/// Why a delivery cannot be redelivered.
#[derive(Debug, thiserror::Error)]
pub enum RedeliverError {
    #[error(
        "delivery {0} was rejected and has no body to process: ask the code host to redeliver it"
    )]
    Rejected(Uuid),
    #[error("delivery {0} is already {1}: it will be processed without a redelivery")]
    Queued(Uuid, DeliveryState),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The delivery log.
#[derive(Debug, Clone)]
pub struct DeliveryStore {
    db: DatabaseConnection,
}

/// The columns of a listing: everything but the bodies.
#[derive(Debug, FromQueryResult)]
struct ListedRow {
    id: String,
    receiver_id: String,
    delivery_key: Option<String>,
    event: String,
    state: String,
    receive_time: i64,
    method: String,
    path: String,
    request_headers: String,
    response_status: i32,
    attempts: i32,
    last_error: Option<String>,
    process_time: Option<i64>,
}

impl DeliveryStore {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Stores a delivery and commits it, and marks the receiver's last delivery time, in one
    /// transaction. A key the receiver already has an accepted delivery for is `Duplicate`, and
    /// nothing is written.
    pub async fn record(&self, new: NewDelivery) -> Result<Stored, StoreError> {
        self.record_with(new, |_| Box::pin(async { Ok(()) })).await
    }

    /// Like [`DeliveryStore::record`], and runs `then` in the same transaction after the
    /// delivery is written (for intake that applies its effects at once: the generic trigger).
    /// Nothing is written when `then` fails.
    pub async fn record_with<F>(&self, new: NewDelivery, then: F) -> Result<Stored, StoreError>
    where
        F: for<'t> FnOnce(
            &'t sea_orm::DatabaseTransaction,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<(), DbErr>> + Send + 't>,
        >,
    {
        let txn = crate::db::begin_write(&self.db).await?;
        let row = delivery::ActiveModel {
            id: Set(new.id.to_string()),
            receiver_id: Set(new.receiver_id.to_string()),
            delivery_key: Set(new.delivery_key.clone()),
            event: Set(new.event),
            state: Set(new.state.as_str().to_owned()),
            receive_time: Set(new.receive_time),
            method: Set(new.method),
            path: Set(new.path),
            request_headers: Set(headers_json(&new.request_headers)),
            request_body: Set(new.request_body),
            response_status: Set(i32::from(new.response_status)),
            response_body: Set(new.response_body),
            attempts: Set(0),
            last_error: Set(new.last_error),
            process_time: Set(None),
            next_attempt_time: Set(new.receive_time),
            lease_expire_time: Set(None),
        };
        if let Err(err) = delivery::Entity::insert(row)
            .exec_without_returning(&txn)
            .await
        {
            drop(txn);
            if let (Some(SqlErr::UniqueConstraintViolation(_)), Some(key)) =
                (err.sql_err(), &new.delivery_key)
                && let Some(original) = self.find_by_key(new.receiver_id, key).await?
            {
                return Ok(Stored::Duplicate(original));
            }
            return Err(err.into());
        }
        receiver::Entity::update_many()
            .col_expr(
                receiver::Column::LastDeliveryTime,
                Expr::value(new.receive_time),
            )
            .filter(receiver::Column::Id.eq(new.receiver_id.to_string()))
            .filter(
                Condition::any()
                    .add(receiver::Column::LastDeliveryTime.is_null())
                    .add(receiver::Column::LastDeliveryTime.lt(new.receive_time)),
            )
            .exec(&txn)
            .await?;
        then(&txn).await?;
        txn.commit().await?;
        Ok(Stored::New)
    }

    /// Replaces the stored answer of a delivery, on `conn` (the transaction that stores it).
    pub async fn set_response_body<C: ConnectionTrait>(
        conn: &C,
        id: Uuid,
        body: Vec<u8>,
    ) -> Result<(), DbErr> {
        delivery::Entity::update_many()
            .col_expr(delivery::Column::ResponseBody, Expr::value(body))
            .filter(delivery::Column::Id.eq(id.to_string()))
            .exec(conn)
            .await?;
        Ok(())
    }

    /// The accepted delivery of `receiver` with host delivery id `key`, if there is one.
    pub async fn find_by_key(&self, receiver: Uuid, key: &str) -> Result<Option<Uuid>, StoreError> {
        let id: Option<String> = delivery::Entity::find()
            .select_only()
            .column(delivery::Column::Id)
            .filter(delivery::Column::ReceiverId.eq(receiver.to_string()))
            .filter(delivery::Column::DeliveryKey.eq(key))
            .filter(delivery::Column::State.ne(DeliveryState::Rejected.as_str()))
            .into_tuple()
            .one(&self.db)
            .await?;
        id.map(|id| parse_uuid(&id)).transpose()
    }

    pub async fn get(&self, id: Uuid) -> Result<Delivery, StoreError> {
        let m = delivery::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?
            .ok_or(StoreError::not_found("delivery", id))?;
        to_delivery(m)
    }

    /// Deliveries matching `filter`, newest first, after the `(receive_time, id)` cursor,
    /// without their bodies.
    pub async fn list(
        &self,
        filter: &DeliveryFilter,
        after: Option<(i64, Uuid)>,
        limit: u64,
    ) -> Result<DeliveryPage, StoreError> {
        let mut query = delivery::Entity::find();
        if let Some(receiver) = filter.receiver_id {
            query = query.filter(delivery::Column::ReceiverId.eq(receiver.to_string()));
        }
        if !filter.states.is_empty() {
            query = query
                .filter(delivery::Column::State.is_in(filter.states.iter().map(|s| s.as_str())));
        }
        if filter.only_errors {
            query = query.filter(
                Condition::any()
                    .add(delivery::Column::ResponseStatus.lt(200))
                    .add(delivery::Column::ResponseStatus.gt(299))
                    .add(delivery::Column::State.eq(DeliveryState::Failed.as_str())),
            );
        }
        if let Some(since) = filter.since {
            query = query.filter(delivery::Column::ReceiveTime.gte(since));
        }
        if let Some(until) = filter.until {
            query = query.filter(delivery::Column::ReceiveTime.lt(until));
        }
        let total_size = query.clone().count(&self.db).await?;
        if let Some(cursor) = after {
            query = query.filter(paging::after(
                delivery::Column::ReceiveTime,
                delivery::Column::Id,
                cursor,
                Order::Descending,
            ));
        }
        use delivery::Column as C;
        let mut rows: Vec<ListedRow> = query
            .select_only()
            .columns([
                C::Id,
                C::ReceiverId,
                C::DeliveryKey,
                C::Event,
                C::State,
                C::ReceiveTime,
                C::Method,
                C::Path,
                C::RequestHeaders,
                C::ResponseStatus,
                C::Attempts,
                C::LastError,
                C::ProcessTime,
            ])
            .order_by_desc(C::ReceiveTime)
            .order_by_desc(C::Id)
            .limit(limit + 1)
            .into_model()
            .all(&self.db)
            .await?;
        let has_more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let deliveries = rows
            .into_iter()
            .map(|r| {
                to_delivery(delivery::Model {
                    id: r.id,
                    receiver_id: r.receiver_id,
                    delivery_key: r.delivery_key,
                    event: r.event,
                    state: r.state,
                    receive_time: r.receive_time,
                    method: r.method,
                    path: r.path,
                    request_headers: r.request_headers,
                    request_body: None,
                    response_status: r.response_status,
                    response_body: Vec::new(),
                    attempts: r.attempts,
                    last_error: r.last_error,
                    process_time: r.process_time,
                    next_attempt_time: 0,
                    lease_expire_time: None,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(DeliveryPage {
            deliveries,
            total_size,
            has_more,
        })
    }

    /// Puts a processed, ignored or failed delivery back in the queue, as if new: due now,
    /// with its tries counted afresh.
    pub async fn redeliver(&self, id: Uuid, now: i64) -> Result<Delivery, RedeliverError> {
        let current = self.get(id).await?;
        match current.state {
            DeliveryState::Rejected => return Err(RedeliverError::Rejected(id)),
            s @ (DeliveryState::Pending | DeliveryState::Processing) => {
                return Err(RedeliverError::Queued(id, s));
            }
            DeliveryState::Processed | DeliveryState::Ignored | DeliveryState::Failed => {}
        }
        let updated = delivery::Entity::update_many()
            .col_expr(
                delivery::Column::State,
                Expr::value(DeliveryState::Pending.as_str()),
            )
            .col_expr(delivery::Column::Attempts, Expr::value(0))
            .col_expr(delivery::Column::NextAttemptTime, Expr::value(now))
            .col_expr(delivery::Column::LeaseExpireTime, Expr::value(None::<i64>))
            .filter(delivery::Column::Id.eq(id.to_string()))
            .filter(delivery::Column::State.eq(current.state.as_str()))
            .exec(&self.db)
            .await
            .map_err(StoreError::from)?;
        if updated.rows_affected == 0 {
            // Someone else moved it between the read and the write: report what it is now.
            let now_state = self.get(id).await?.state;
            return Err(RedeliverError::Queued(id, now_state));
        }
        Ok(self.get(id).await?)
    }

    /// Claims up to `max` due deliveries for `lease`: pending ones whose next try is due, and
    /// processing ones whose lease ran out (their worker died). No delivery is handed to two
    /// claimers at once.
    pub async fn claim(
        &self,
        max: u64,
        lease: Duration,
        now: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        use delivery::Column as C;
        let due = Query::select()
            .column(C::Id)
            .from(delivery::Entity)
            .cond_where(
                Condition::any()
                    .add(
                        Condition::all()
                            .add(C::State.eq(DeliveryState::Pending.as_str()))
                            .add(C::NextAttemptTime.lte(now)),
                    )
                    .add(
                        Condition::all()
                            .add(C::State.eq(DeliveryState::Processing.as_str()))
                            .add(C::LeaseExpireTime.lte(now)),
                    ),
            )
            .order_by(C::NextAttemptTime, sea_orm::Order::Asc)
            .limit(max)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .to_owned();
        let rows = delivery::Entity::update_many()
            .col_expr(C::State, Expr::value(DeliveryState::Processing.as_str()))
            .col_expr(
                C::LeaseExpireTime,
                Expr::value(now.saturating_add(duration_micros(lease))),
            )
            .col_expr(C::Attempts, Expr::col(C::Attempts).add(1))
            .filter(C::Id.in_subquery(due))
            .exec_with_returning(&self.db)
            .await?;
        let mut claimed: Vec<ClaimedDelivery> = rows
            .into_iter()
            .map(|m| {
                Ok(ClaimedDelivery {
                    id: parse_uuid(&m.id)?,
                    receiver_id: parse_uuid(&m.receiver_id)?,
                    event: m.event,
                    request_headers: parse_headers(&m.id, &m.request_headers)?,
                    request_body: m.request_body.unwrap_or_default(),
                    attempts: m.attempts,
                    receive_time: m.receive_time,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        claimed.sort_by_key(|c| c.receive_time);
        Ok(claimed)
    }

    /// Records the outcome of a claimed delivery, on `conn` (the transaction its effects are
    /// written in). `false` when the claim is no longer held: the caller must roll back.
    pub async fn finish<C: ConnectionTrait>(
        conn: &C,
        claimed: &ClaimedDelivery,
        state: DeliveryState,
        note: Option<&str>,
        now: i64,
    ) -> Result<bool, DbErr> {
        let result = delivery::Entity::update_many()
            .col_expr(delivery::Column::State, Expr::value(state.as_str()))
            .col_expr(delivery::Column::ProcessTime, Expr::value(now))
            .col_expr(delivery::Column::LeaseExpireTime, Expr::value(None::<i64>))
            .col_expr(
                delivery::Column::LastError,
                Expr::value(note.map(str::to_owned)),
            )
            .filter(claim_held(claimed))
            .exec(conn)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Records a failed try: back to `PENDING`, due after `retry_after`, or `FAILED` when
    /// there is no retry left (`retry_after` is `None`). Returns the new state, or `None` when
    /// the claim is no longer held.
    pub async fn fail(
        &self,
        claimed: &ClaimedDelivery,
        error: &str,
        retry_after: Option<Duration>,
        now: i64,
    ) -> Result<Option<DeliveryState>, StoreError> {
        let (state, next) = match retry_after {
            Some(wait) => (
                DeliveryState::Pending,
                now.saturating_add(duration_micros(wait)),
            ),
            None => (DeliveryState::Failed, now),
        };
        let mut update = delivery::Entity::update_many()
            .col_expr(delivery::Column::State, Expr::value(state.as_str()))
            .col_expr(delivery::Column::NextAttemptTime, Expr::value(next))
            .col_expr(delivery::Column::LeaseExpireTime, Expr::value(None::<i64>))
            .col_expr(delivery::Column::LastError, Expr::value(error.to_owned()));
        if state == DeliveryState::Failed {
            update = update.col_expr(delivery::Column::ProcessTime, Expr::value(now));
        }
        let txn = self.db.begin().await?;
        let result = update.filter(claim_held(claimed)).exec(&txn).await?;
        let held = result.rows_affected == 1;
        if held && state == DeliveryState::Failed {
            crate::events::record(
                &txn,
                crate::events::EventKind::DeliveryFailed,
                Some(claimed.receiver_id),
                claimed.id,
                now,
            )
            .await?;
        }
        txn.commit().await?;
        Ok(held.then_some(state))
    }

    /// Deletes deliveries received before `cutoff`; returns how many.
    pub async fn purge_received_before(&self, cutoff: i64) -> Result<u64, StoreError> {
        let result = delivery::Entity::delete_many()
            .filter(delivery::Column::ReceiveTime.lt(cutoff))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected)
    }

    /// Deliveries waiting for the worker, and the receive time of the oldest.
    pub async fn queue_depth(&self) -> Result<(u64, Option<i64>), StoreError> {
        let pending = delivery::Entity::find().filter(delivery::Column::State.is_in([
            DeliveryState::Pending.as_str(),
            DeliveryState::Processing.as_str(),
        ]));
        let depth = pending.clone().count(&self.db).await?;
        let oldest: Option<Option<i64>> = pending
            .select_only()
            .column_as(delivery::Column::ReceiveTime.min(), "oldest")
            .into_tuple()
            .one(&self.db)
            .await?;
        Ok((depth, oldest.flatten()))
    }
}

/// The condition that a claim is still held: same delivery, still processing, same try.
fn claim_held(claimed: &ClaimedDelivery) -> Condition {
    Condition::all()
        .add(delivery::Column::Id.eq(claimed.id.to_string()))
        .add(delivery::Column::State.eq(DeliveryState::Processing.as_str()))
        .add(delivery::Column::Attempts.eq(claimed.attempts))
}

fn headers_json(headers: &BTreeMap<String, String>) -> String {
    serde_json::to_string(headers).expect("a map of strings always serialises")
}

fn parse_headers(id: &str, json: &str) -> Result<BTreeMap<String, String>, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
        id: id.to_owned(),
        why: format!("request_headers: {e}"),
    })
}

fn parse_uuid(s: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(s).map_err(|e| StoreError::Corrupt {
        id: s.to_owned(),
        why: format!("not a UUID: {e}"),
    })
}

fn to_delivery(m: delivery::Model) -> Result<Delivery, StoreError> {
    let state = DeliveryState::from_db(&m.state).ok_or_else(|| StoreError::Corrupt {
        id: m.id.clone(),
        why: format!("unknown state {:?}", m.state),
    })?;
    Ok(Delivery {
        id: parse_uuid(&m.id)?,
        receiver_id: parse_uuid(&m.receiver_id)?,
        request_headers: parse_headers(&m.id, &m.request_headers)?,
        delivery_key: m.delivery_key,
        event: m.event,
        state,
        receive_time: m.receive_time,
        method: m.method,
        path: m.path,
        request_body: m.request_body,
        response_status: u16::try_from(m.response_status).unwrap_or(0),
        response_body: m.response_body,
        attempts: m.attempts,
        last_error: m.last_error,
        process_time: m.process_time,
    })
}
