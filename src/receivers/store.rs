//! The registry's store: receivers in the database, through sea-orm, the same on SQLite and
//! PostgreSQL. Secrets are sealed by the [`SecretBox`] of the key in force before they are
//! written, and opened when they are read: the database never holds one in plain text.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QuerySelect, Set, SqlErr,
};
use uuid::Uuid;

use super::{CodeHostKind, CodeHostUrn, ReceiverName, ReceiverOptions, ReceiverSecret};
use crate::db::begin_write;
use crate::entity::receiver;
use crate::secret_key::{self, SecretBox, Slot};
use crate::store::StoreError;
use crate::store::paging::{self, Order};
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

/// A receiver and its secrets, as the ingress needs them for every delivery.
#[derive(Debug)]
pub struct ReceiverEntry {
    pub receiver: Receiver,
    pub secrets: ReceiverSecrets,
}

/// How long a cached receiver is trusted before it is read again. Changes made through this
/// process are seen at once (they drop the entry); this bounds how long a change made by another
/// replica can go unseen.
const CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// A cached receiver and when it was read.
type CachedEntry = (Instant, Arc<ReceiverEntry>);

/// The receivers in the database, with an in-memory cache for the ingress's hot path.
#[derive(Debug, Clone)]
pub struct ReceiverStore {
    db: DatabaseConnection,
    /// Receivers read recently, by id, with the time they were read.
    cache: Arc<RwLock<HashMap<Uuid, CachedEntry>>>,
    /// Seals and opens the secret columns, with the key in force at start-up.
    secrets: SecretBox,
}

impl ReceiverStore {
    /// A store over `db` whose secrets `secrets` seals and opens (see `secret_key::prepare`).
    pub fn new(db: DatabaseConnection, secrets: SecretBox) -> Self {
        Self {
            db,
            cache: Arc::default(),
            secrets,
        }
    }

    /// The receiver and its secrets, from the cache when fresh, else from the database.
    /// `None` when there is no such receiver.
    pub async fn lookup(&self, id: Uuid) -> Result<Option<Arc<ReceiverEntry>>, StoreError> {
        if let Some((read, entry)) = self.cache.read().expect("cache lock").get(&id)
            && read.elapsed() < CACHE_TTL
        {
            return Ok(Some(entry.clone()));
        }
        // One read of the row gives both the receiver and its secrets.
        let Some(model) = receiver::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?
        else {
            self.forget(id);
            return Ok(None);
        };
        let secrets = self.to_secrets(&model)?;
        let entry = Arc::new(ReceiverEntry {
            receiver: to_receiver(model)?,
            secrets,
        });
        self.cache
            .write()
            .expect("cache lock")
            .insert(id, (Instant::now(), entry.clone()));
        Ok(Some(entry))
    }

    /// Drops a receiver from the cache, so the next lookup reads the database.
    fn forget(&self, id: Uuid) {
        self.cache.write().expect("cache lock").remove(&id);
    }

    /// Stores a new receiver made by `actor`, its secret sealed. A name already in use is
    /// `NameTaken`.
    pub async fn create(&self, new: NewReceiver, actor: &str) -> Result<Receiver, StoreError> {
        let now = now_micros();
        let name = new.name.as_str().to_owned();
        let id = Uuid::new_v4().to_string();
        let sealed = self.secrets.seal(&id, Slot::Current, new.secret.expose());
        let row = receiver::ActiveModel {
            id: Set(id.clone()),
            name: Set(name.clone()),
            code_host_kind: Set(new.code_host_kind.as_str().to_owned()),
            code_host_urn: Set(new.code_host_urn.as_str().to_owned()),
            secret: Set(sealed.value),
            secret_key_id: Set(Some(sealed.key_id)),
            previous_secret: Set(None),
            previous_secret_key_id: Set(None),
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
        let txn = begin_write(&self.db).await?;
        self.hold_key_in_force(&txn, &id).await?;
        let model = row.insert(&txn).await.map_err(|e| name_clash(e, &name))?;
        txn.commit().await?;
        to_receiver(model)
    }

    /// Fails unless this store's key is the one the database has in force, and (PostgreSQL)
    /// keeps it so until `txn` ends: a replica that missed a `rotate-key` writes nothing under
    /// the retired key.
    async fn hold_key_in_force(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        id: &str,
    ) -> Result<(), StoreError> {
        let in_force = secret_key::key_in_force(txn).await?;
        self.secrets
            .check_in_force(in_force.as_ref())
            .map_err(|source| StoreError::SecretKey {
                id: id.to_owned(),
                source,
            })
    }

    pub async fn get(&self, id: Uuid) -> Result<Receiver, StoreError> {
        let model = receiver::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?
            .ok_or(StoreError::not_found("receiver", id))?;
        to_receiver(model)
    }

    /// The receiver's secrets, opened, for verifying its deliveries.
    pub async fn secrets(&self, id: Uuid) -> Result<ReceiverSecrets, StoreError> {
        let m = receiver::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?
            .ok_or(StoreError::not_found("receiver", id))?;
        self.to_secrets(&m)
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
        let (rows, has_more) = paging::page(
            query,
            receiver::Column::CreateTime,
            receiver::Column::Id,
            after,
            Order::Ascending,
            limit,
            &self.db,
        )
        .await?;
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

    /// Applies `patch` and records `actor` as the last to change it. One UPDATE statement, so
    /// no read-then-write transaction can be refused by a busy SQLite file.
    pub async fn update(
        &self,
        id: Uuid,
        patch: ReceiverPatch,
        actor: &str,
    ) -> Result<Receiver, StoreError> {
        use receiver::Column as C;
        let mut update = receiver::Entity::update_many()
            .col_expr(C::UpdateTime, Expr::value(now_micros()))
            .col_expr(C::UpdatedBy, Expr::value(actor.to_owned()));
        let new_name = patch.name.map(|n| n.as_str().to_owned());
        if let Some(name) = &new_name {
            update = update.col_expr(C::Name, Expr::value(name.clone()));
        }
        if let Some(urn) = patch.code_host_urn {
            update = update.col_expr(C::CodeHostUrn, Expr::value(urn.as_str().to_owned()));
        }
        if let Some(v) = patch.ignore_unmatched {
            update = update.col_expr(C::IgnoreUnmatched, Expr::value(v));
        }
        if let Some(v) = patch.min_sync_interval {
            update = update.col_expr(C::MinSyncIntervalMs, Expr::value(millis(v)));
        }
        if let Some(v) = patch.push_branch_filter {
            update = update.col_expr(C::PushBranchFilter, Expr::value(filter_json(&v)));
        }
        if let Some(v) = patch.rate_limit_per_minute {
            update = update.col_expr(C::RateLimitPerMinute, Expr::value(i64::from(v)));
        }
        let result = update
            .filter(C::Id.eq(id.to_string()))
            .exec(&self.db)
            .await
            .map_err(|e| match &new_name {
                Some(name) => name_clash(e, name),
                None => e.into(),
            })?;
        self.forget(id);
        if result.rows_affected == 0 {
            return Err(StoreError::not_found("receiver", id));
        }
        self.get(id).await
    }

    /// Deletes the receiver and everything that belongs to it.
    pub async fn delete(&self, id: Uuid) -> Result<(), StoreError> {
        let result = receiver::Entity::delete_by_id(id.to_string())
            .exec(&self.db)
            .await?;
        self.forget(id);
        if result.rows_affected == 0 {
            return Err(StoreError::not_found("receiver", id));
        }
        Ok(())
    }

    /// Replaces the secret. With a non-zero `overlap` the previous secret stays valid for that
    /// long; with zero it stops working at once. One write transaction that reads the row locked
    /// (`FOR UPDATE` on PostgreSQL; SQLite's write lock is taken at `BEGIN`): the previous secret
    /// is the one the row holds at that moment, even if another rotation ran just before. It is
    /// opened and sealed again for its new column, because each ciphertext is bound to its
    /// column.
    pub async fn rotate_secret(
        &self,
        id: Uuid,
        secret: &ReceiverSecret,
        overlap: Duration,
        actor: &str,
    ) -> Result<RotatedSecret, StoreError> {
        use receiver::Column as C;
        let key = id.to_string();
        let txn = begin_write(&self.db).await?;
        self.hold_key_in_force(&txn, &key).await?;
        let Some(row) = receiver::Entity::find_by_id(key.clone())
            .lock_exclusive()
            .one(&txn)
            .await?
        else {
            return Err(StoreError::not_found("receiver", id));
        };
        let now = now_micros();
        let expire = (!overlap.is_zero()).then(|| now.saturating_add(duration_micros(overlap)));
        let (previous, previous_key_id) = match expire {
            Some(_) => {
                let current = self.open(&row, Slot::Current)?;
                let sealed = self.secrets.seal(&key, Slot::Previous, current.expose());
                (Some(sealed.value), Some(sealed.key_id))
            }
            None => (None, None),
        };
        let sealed = self.secrets.seal(&key, Slot::Current, secret.expose());
        receiver::Entity::update_many()
            .col_expr(C::PreviousSecret, Expr::value(previous))
            .col_expr(C::PreviousSecretKeyId, Expr::value(previous_key_id))
            .col_expr(C::PreviousSecretExpireTime, Expr::value(expire))
            .col_expr(C::Secret, Expr::value(sealed.value))
            .col_expr(C::SecretKeyId, Expr::value(sealed.key_id))
            .col_expr(C::UpdateTime, Expr::value(now))
            .col_expr(C::UpdatedBy, Expr::value(actor.to_owned()))
            .filter(C::Id.eq(key.as_str()))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        self.forget(id);
        Ok(RotatedSecret {
            receiver: self.get(id).await?,
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

impl ReceiverStore {
    /// The row's secrets, opened.
    fn to_secrets(&self, m: &receiver::Model) -> Result<ReceiverSecrets, StoreError> {
        let current = self.open(m, Slot::Current)?;
        let previous = match m.previous_secret_expire_time {
            Some(expire) if m.previous_secret.is_some() => {
                Some((self.open(m, Slot::Previous)?, expire))
            }
            _ => None,
        };
        Ok(ReceiverSecrets { current, previous })
    }

    /// The secret in `slot` of the row, opened and checked.
    fn open(&self, m: &receiver::Model, slot: Slot) -> Result<ReceiverSecret, StoreError> {
        let (value, key_id) = match slot {
            Slot::Current => (m.secret.as_str(), m.secret_key_id.as_deref()),
            Slot::Previous => (
                m.previous_secret.as_deref().unwrap_or_default(),
                m.previous_secret_key_id.as_deref(),
            ),
        };
        let plain = self
            .secrets
            .open(&m.id, slot, key_id, value)
            .map_err(|source| StoreError::SecretKey {
                id: m.id.clone(),
                source,
            })?;
        ReceiverSecret::parse(&plain).map_err(|_| StoreError::Corrupt {
            id: m.id.clone(),
            why: format!("{} is not a valid secret once opened", slot.column()),
        })
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
