//! The registry's store: receivers in the database, through sea-orm, the same on SQLite and
//! PostgreSQL.

use std::time::Duration;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, SqlErr,
    TransactionTrait,
};
use uuid::Uuid;

use super::{CodeHostKind, CodeHostUrn, ReceiverName, ReceiverOptions, ReceiverSecret};
use crate::entity::receiver;
use crate::time::{duration_micros, now_micros};

/// A receiver as the registry knows it, without its secret (which is read only to verify
/// deliveries, and shown only when it is made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receiver {
    pub id: Uuid,
    pub name: String,
    pub code_host_kind: CodeHostKind,
    pub code_host_urn: CodeHostUrn,
    pub options: ReceiverOptions,
    /// Always true today: a receiver gets a generated secret when none is given.
    pub has_secret: bool,
    pub create_time: i64,
    pub update_time: i64,
    /// Who made the receiver and who changed it last (the caller's `x-hookgate-actor`).
    pub created_by: String,
    pub updated_by: String,
    /// When the receiver last took a delivery; `None` until it has.
    pub last_delivery_time: Option<i64>,
}

/// Everything a new receiver needs, already checked.
#[derive(Debug)]
pub struct NewReceiver {
    pub name: ReceiverName,
    pub code_host_kind: CodeHostKind,
    pub code_host_urn: CodeHostUrn,
    pub secret: ReceiverSecret,
    pub options: ReceiverOptions,
}

/// The changes an update makes; `None` leaves a value as it is.
#[derive(Debug, Default)]
pub struct ReceiverPatch {
    pub name: Option<ReceiverName>,
    pub code_host_urn: Option<CodeHostUrn>,
    pub ignore_unmatched: Option<bool>,
    pub min_sync_interval: Option<Duration>,
    pub push_branch_filter: Option<Vec<String>>,
    pub rate_limit_per_minute: Option<u32>,
}

/// One page of a listing.
#[derive(Debug)]
pub struct ReceiverPage {
    pub receivers: Vec<Receiver>,
    /// Every receiver matching the filter, on all pages.
    pub total_size: u64,
    /// Whether receivers follow the last one of this page.
    pub has_more: bool,
}

/// The outcome of a rotation.
#[derive(Debug)]
pub struct RotatedSecret {
    pub receiver: Receiver,
    /// When the previous secret stops being accepted; `None` when it stopped at once.
    pub previous_secret_expire_time: Option<i64>,
}

/// The secrets a receiver's deliveries may be signed with.
#[derive(Debug, Clone)]
pub struct ReceiverSecrets {
    pub current: ReceiverSecret,
    /// The secret before the last rotation and when it stops being accepted.
    pub previous: Option<(ReceiverSecret, i64)>,
}

impl ReceiverSecrets {
    /// The secrets accepted at `now` (microseconds): the current one, and the previous one while
    /// its overlap lasts.
    pub fn accepted_at(&self, now: i64) -> Vec<&str> {
        let mut accepted = vec![self.current.expose()];
        if let Some((previous, expire)) = &self.previous
            && now < *expire
        {
            accepted.push(previous.expose());
        }
        accepted
    }
}

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("receiver {0} not found")]
    NotFound(Uuid),
    #[error("a receiver named {0:?} already exists: choose another name")]
    NameTaken(String),
    /// The database could not be reached or did not answer in time: worth retrying.
    #[error("the database is unavailable: {0}")]
    Unavailable(DbErr),
    #[error("database error: {0}")]
    Database(DbErr),
    /// A stored row that no version of hookgate writes.
    #[error("stored receiver {id} is corrupt: {why}")]
    Corrupt { id: String, why: String },
}

impl From<DbErr> for StoreError {
    fn from(err: DbErr) -> Self {
        if is_unavailable(&err) {
            StoreError::Unavailable(err)
        } else {
            StoreError::Database(err)
        }
    }
}

/// Whether a database error means "cannot reach the database now" rather than "this query is
/// wrong": lost connections, an exhausted pool, a busy SQLite file.
pub fn is_unavailable(err: &DbErr) -> bool {
    use sea_orm::{RuntimeErr, sqlx};
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            match e.as_ref() {
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                sqlx::Error::Database(db) => {
                    // SQLite: SQLITE_BUSY (5) / SQLITE_LOCKED (6); PostgreSQL: class 08
                    // (connection exception) and 57P (operator intervention: shutdown).
                    let code = db.code().unwrap_or_default();
                    code == "5" || code == "6" || code.starts_with("08") || code.starts_with("57P")
                }
                _ => false,
            }
        }
        _ => false,
    }
}

/// The receivers in the database.
#[derive(Debug, Clone)]
pub struct ReceiverStore {
    db: DatabaseConnection,
}

impl ReceiverStore {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Stores a new receiver made by `actor`. A name already in use is `NameTaken`.
    pub async fn create(&self, new: NewReceiver, actor: &str) -> Result<Receiver, StoreError> {
        let now = now_micros();
        let name = new.name.as_str().to_owned();
        let row = receiver::ActiveModel {
            id: Set(Uuid::new_v4().to_string()),
            name: Set(name.clone()),
            code_host_kind: Set(new.code_host_kind.as_str().to_owned()),
            code_host_urn: Set(new.code_host_urn.as_str().to_owned()),
            secret: Set(new.secret.expose().to_owned()),
            previous_secret: Set(None),
            previous_secret_expire_time: Set(None),
            ignore_unmatched: Set(new.options.ignore_unmatched),
            min_sync_interval_ms: Set(millis(new.options.min_sync_interval)),
            push_branch_filter: Set(filter_json(&new.options.push_branch_filter)),
            rate_limit_per_minute: Set(i64::from(new.options.rate_limit_per_minute)),
            create_time: Set(now),
            update_time: Set(now),
            created_by: Set(actor.to_owned()),
            updated_by: Set(actor.to_owned()),
            last_delivery_time: Set(None),
        };
        let model = row
            .insert(&self.db)
            .await
            .map_err(|e| name_clash(e, &name))?;
        to_receiver(model)
    }

    pub async fn get(&self, id: Uuid) -> Result<Receiver, StoreError> {
        let model = receiver::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?
            .ok_or(StoreError::NotFound(id))?;
        to_receiver(model)
    }

    /// The receiver's secrets, for verifying its deliveries.
    pub async fn secrets(&self, id: Uuid) -> Result<ReceiverSecrets, StoreError> {
        let m = receiver::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?
            .ok_or(StoreError::NotFound(id))?;
        let corrupt = |why: &str| StoreError::Corrupt {
            id: m.id.clone(),
            why: why.to_owned(),
        };
        let current = ReceiverSecret::parse(&m.secret).map_err(|_| corrupt("secret"))?;
        let previous = match (&m.previous_secret, m.previous_secret_expire_time) {
            (Some(secret), Some(expire)) => Some((
                ReceiverSecret::parse(secret).map_err(|_| corrupt("previous_secret"))?,
                expire,
            )),
            _ => None,
        };
        Ok(ReceiverSecrets { current, previous })
    }

    /// Receivers in creation order, `limit` at most, after the `(create_time, id)` cursor.
    pub async fn list(
        &self,
        kind: Option<CodeHostKind>,
        after: Option<(i64, Uuid)>,
        limit: u64,
    ) -> Result<ReceiverPage, StoreError> {
        let mut query = receiver::Entity::find();
        if let Some(kind) = kind {
            query = query.filter(receiver::Column::CodeHostKind.eq(kind.as_str()));
        }
        let total_size = query.clone().count(&self.db).await?;
        if let Some((time, id)) = after {
            query = query.filter(
                Condition::any()
                    .add(receiver::Column::CreateTime.gt(time))
                    .add(
                        Condition::all()
                            .add(receiver::Column::CreateTime.eq(time))
                            .add(receiver::Column::Id.gt(id.to_string())),
                    ),
            );
        }
        let mut rows = query
            .order_by_asc(receiver::Column::CreateTime)
            .order_by_asc(receiver::Column::Id)
            // One more than asked tells whether another page follows.
            .limit(limit + 1)
            .all(&self.db)
            .await?;
        let has_more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let receivers = rows
            .into_iter()
            .map(to_receiver)
            .collect::<Result<_, _>>()?;
        Ok(ReceiverPage {
            receivers,
            total_size,
            has_more,
        })
    }

    /// Applies `patch` in one transaction and records `actor` as the last to change it.
    pub async fn update(
        &self,
        id: Uuid,
        patch: ReceiverPatch,
        actor: &str,
    ) -> Result<Receiver, StoreError> {
        let txn = self.db.begin().await?;
        let model = receiver::Entity::find_by_id(id.to_string())
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound(id))?;
        let mut row = model.into_active_model();
        let mut new_name = None;
        if let Some(name) = patch.name {
            new_name = Some(name.as_str().to_owned());
            row.name = Set(name.as_str().to_owned());
        }
        if let Some(urn) = patch.code_host_urn {
            row.code_host_urn = Set(urn.as_str().to_owned());
        }
        if let Some(v) = patch.ignore_unmatched {
            row.ignore_unmatched = Set(v);
        }
        if let Some(v) = patch.min_sync_interval {
            row.min_sync_interval_ms = Set(millis(v));
        }
        if let Some(v) = patch.push_branch_filter {
            row.push_branch_filter = Set(filter_json(&v));
        }
        if let Some(v) = patch.rate_limit_per_minute {
            row.rate_limit_per_minute = Set(i64::from(v));
        }
        row.update_time = Set(now_micros());
        row.updated_by = Set(actor.to_owned());
        let model = row.update(&txn).await.map_err(|e| match &new_name {
            Some(name) => name_clash(e, name),
            None => e.into(),
        })?;
        txn.commit().await?;
        to_receiver(model)
    }

    /// Deletes the receiver and everything that belongs to it.
    pub async fn delete(&self, id: Uuid) -> Result<(), StoreError> {
        let result = receiver::Entity::delete_by_id(id.to_string())
            .exec(&self.db)
            .await?;
        if result.rows_affected == 0 {
            return Err(StoreError::NotFound(id));
        }
        Ok(())
    }

    /// Replaces the secret. With a non-zero `overlap` the previous secret stays valid for that
    /// long; with zero it stops working at once.
    pub async fn rotate_secret(
        &self,
        id: Uuid,
        secret: &ReceiverSecret,
        overlap: Duration,
        actor: &str,
    ) -> Result<RotatedSecret, StoreError> {
        let txn = self.db.begin().await?;
        let model = receiver::Entity::find_by_id(id.to_string())
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound(id))?;
        let now = now_micros();
        let previous = model.secret.clone();
        let mut row = model.into_active_model();
        let expire = (!overlap.is_zero()).then(|| now.saturating_add(duration_micros(overlap)));
        row.previous_secret = Set(expire.map(|_| previous));
        row.previous_secret_expire_time = Set(expire);
        row.secret = Set(secret.expose().to_owned());
        row.update_time = Set(now);
        row.updated_by = Set(actor.to_owned());
        let model = row.update(&txn).await?;
        txn.commit().await?;
        Ok(RotatedSecret {
            receiver: to_receiver(model)?,
            previous_secret_expire_time: expire,
        })
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn filter_json(patterns: &[String]) -> String {
    serde_json::to_string(patterns).expect("a list of strings always serialises")
}

/// A unique-constraint violation on insert or update can only be the name.
fn name_clash(err: DbErr, name: &str) -> StoreError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => StoreError::NameTaken(name.to_owned()),
        _ => err.into(),
    }
}

fn to_receiver(m: receiver::Model) -> Result<Receiver, StoreError> {
    let corrupt = |why: String| StoreError::Corrupt {
        id: m.id.clone(),
        why,
    };
    let id = Uuid::parse_str(&m.id).map_err(|e| corrupt(format!("id: {e}")))?;
    let code_host_kind = CodeHostKind::from_db(&m.code_host_kind)
        .ok_or_else(|| corrupt(format!("unknown code_host_kind {:?}", m.code_host_kind)))?;
    let code_host_urn =
        CodeHostUrn::parse(&m.code_host_urn).map_err(|e| corrupt(format!("{e}")))?;
    let push_branch_filter: Vec<String> = serde_json::from_str(&m.push_branch_filter)
        .map_err(|e| corrupt(format!("push_branch_filter: {e}")))?;
    Ok(Receiver {
        id,
        name: m.name,
        code_host_kind,
        code_host_urn,
        options: ReceiverOptions {
            ignore_unmatched: m.ignore_unmatched,
            min_sync_interval: Duration::from_millis(m.min_sync_interval_ms.max(0) as u64),
            push_branch_filter,
            rate_limit_per_minute: u32::try_from(m.rate_limit_per_minute).unwrap_or(u32::MAX),
        },
        has_secret: !m.secret.is_empty(),
        create_time: m.create_time,
        update_time: m.update_time,
        created_by: m.created_by,
        updated_by: m.updated_by,
        last_delivery_time: m.last_delivery_time,
    })
}
