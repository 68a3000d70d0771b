//! The registry's store: receivers in the database, through sea-orm, the same on SQLite and
//! PostgreSQL, and all of them in memory (kept current with every replica's changes) for the
//! ingress. Secrets are sealed by the [`SecretBox`] of the key in force before they are written,
//! and opened when they are read: the database never holds one in plain text.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QuerySelect, Set,
    SqlErr,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    CodeHostKind, CodeHostUrn, ReceiverName, ReceiverOptions, ReceiverSecret, SigningToken,
};
use crate::db::Db;
use crate::entity::json::Json;
use crate::entity::{Id, receiver};
use crate::secret_key::{self, SecretBox, Slot};
use crate::store::StoreError;
use crate::store::paging::{self, Sort};
use crate::time::Timestamp;

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
    /// Whether it holds a GitLab signing token (never shown but when it is made).
    pub has_signing_token: bool,
    pub create_time: Timestamp,
    pub update_time: Timestamp,
    /// Who made the receiver and who changed it last (the caller's `x-hookgate-actor`).
    pub created_by: String,
    pub updated_by: String,
    /// When the receiver last took a delivery; `None` until it has.
    pub last_delivery_time: Option<Timestamp>,
}

/// Everything a new receiver needs, already checked.
#[derive(Debug)]
pub struct NewReceiver {
    pub name: ReceiverName,
    pub code_host_kind: CodeHostKind,
    pub code_host_urn: CodeHostUrn,
    pub secret: ReceiverSecret,
    /// A GitLab receiver's signing token; `None` for none (and for every other kind).
    pub signing_token: Option<SigningToken>,
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
    pub signature_tolerance: Option<Duration>,
    pub require_signature: Option<bool>,
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
    pub previous_secret_expire_time: Option<Timestamp>,
}

/// The outcome of a signing token rotation.
#[derive(Debug)]
pub struct RotatedSigningToken {
    pub receiver: Receiver,
    /// When the previous token stops being accepted; `None` when it stopped at once (or there
    /// was none).
    pub previous_signing_token_expire_time: Option<Timestamp>,
}

/// The secrets a receiver's deliveries may be signed with.
#[derive(Debug, Clone)]
pub struct ReceiverSecrets {
    pub current: ReceiverSecret,
    /// The secret before the last rotation and when it stops being accepted.
    pub previous: Option<(ReceiverSecret, Timestamp)>,
    /// A GitLab receiver's signing token, when it has one.
    pub signing_token: Option<SigningToken>,
    /// The signing token before the last rotation and when it stops being accepted.
    pub previous_signing_token: Option<(SigningToken, Timestamp)>,
}

impl ReceiverSecrets {
    /// The secrets accepted at `now`: the current one, and the previous one while its overlap
    /// lasts.
    pub fn accepted_at(&self, now: Timestamp) -> Vec<&str> {
        let mut accepted = vec![self.current.expose()];
        if let Some((previous, expire)) = &self.previous
            && now < *expire
        {
            accepted.push(previous.expose());
        }
        accepted
    }

    /// The HMAC keys of the signing tokens accepted at `now`: the current one, and the previous
    /// one while its overlap lasts. Empty when the receiver has no signing token.
    pub fn signing_keys_at(&self, now: Timestamp) -> Vec<zeroize::Zeroizing<Vec<u8>>> {
        let mut keys: Vec<_> = self.signing_token.iter().map(SigningToken::key).collect();
        if let Some((previous, expire)) = &self.previous_signing_token
            && now < *expire
        {
            keys.push(previous.key());
        }
        keys
    }
}

/// A receiver and its secrets, as the ingress needs them for every delivery.
#[derive(Debug)]
pub struct ReceiverEntry {
    pub receiver: Receiver,
    pub secrets: ReceiverSecrets,
}

/// Every receiver with its secrets, in memory, so the ingress never asks the database who a
/// delivery is for. It is kept current by [`ReceiverStore::follow`]: on PostgreSQL a trigger
/// notifies every replica of each change (`LISTEN hookgate_receivers`), on SQLite a poll of the
/// registry's version catches another process's changes; this process's own changes are applied
/// at once.
#[derive(Debug, Default)]
struct Registry {
    entries: RwLock<HashMap<Uuid, Held>>,
    /// Whether `entries` holds every receiver (the follower loaded them all): then a miss means
    /// there is no such receiver, and the database is not asked.
    complete: AtomicBool,
    /// Held while an entry is read from the database and put in place, so a slow read can never
    /// put an older row over a newer one.
    refreshing: tokio::sync::Mutex<()>,
}

/// A receiver as the registry in memory holds it: ready, or unusable because its row cannot be
/// opened (its secret is under another key, or was altered). An unusable receiver's deliveries
/// are answered 503 (a host that retries will), until the row is mended; the other receivers work.
type Held = Result<Arc<ReceiverEntry>, StoreError>;

/// The channel PostgreSQL notifies registry changes on (migration
/// `m20261201_000008_notify_receiver_changes`); the payload is the receiver's id.
const CHANGES_CHANNEL: &str = "hookgate_receivers";

/// How often, on SQLite, the registry's version is compared with what is in memory.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// The receivers in the database, and all of them in memory for the ingress's hot path.
#[derive(Debug, Clone)]
pub struct ReceiverStore {
    db: Db,
    registry: Arc<Registry>,
    /// Seals and opens the secret columns, with the key in force at start-up.
    secrets: SecretBox,
}

impl ReceiverStore {
    /// A store over `db` whose secrets `secrets` seals and opens (see `secret_key::prepare`).
    pub fn new(db: Db, secrets: SecretBox) -> Self {
        Self {
            db,
            registry: Arc::default(),
            secrets,
        }
    }

    /// The receiver and its secrets. From memory alone once the registry is complete (a miss is
    /// `None`); before that, a miss is read from the database.
    pub async fn lookup(&self, id: Uuid) -> Result<Option<Arc<ReceiverEntry>>, StoreError> {
        if let Some(held) = self.cached(id) {
            return held.map(Some);
        }
        if self.registry.complete.load(Ordering::Acquire) {
            return Ok(None);
        }
        self.refresh(id).await
    }

    /// Like [`ReceiverStore::lookup`], but a miss is always read from the database: for the
    /// worker, which may hold a delivery for a receiver made on another replica a moment ago.
    pub async fn lookup_or_read(&self, id: Uuid) -> Result<Option<Arc<ReceiverEntry>>, StoreError> {
        match self.cached(id) {
            Some(held) => held.map(Some),
            None => self.refresh(id).await,
        }
    }

    /// Every usable receiver in memory, with its code host kind: the receivers whose series
    /// `/metrics` shows from 0.
    pub fn known(&self) -> Vec<(Uuid, CodeHostKind)> {
        let entries = self.registry.entries.read().expect("registry lock");
        entries
            .values()
            .filter_map(|held| held.as_ref().ok())
            .map(|entry| (entry.receiver.id, entry.receiver.code_host_kind))
            .collect()
    }

    fn cached(&self, id: Uuid) -> Option<Held> {
        self.registry
            .entries
            .read()
            .expect("registry lock")
            .get(&id)
            .cloned()
    }

    /// Reads one receiver from the database and puts it in memory (or takes it out, when it is
    /// gone). `Err` when the database cannot be read, or when the row cannot be opened (then it
    /// is held as unusable).
    async fn refresh(&self, id: Uuid) -> Result<Option<Arc<ReceiverEntry>>, StoreError> {
        let _one_at_a_time = self.registry.refreshing.lock().await;
        let model = receiver::Entity::find_by_id(Id::from(id))
            .one(&self.db)
            .await?;
        let mut entries = self.registry.entries.write().expect("registry lock");
        match model {
            None => {
                entries.remove(&id);
                Ok(None)
            }
            Some(model) => {
                let held = self.hold(model);
                entries.insert(id, held.clone());
                held.map(Some)
            }
        }
    }

    /// A row as the registry holds it.
    fn hold(&self, model: receiver::Model) -> Held {
        let id = model.id;
        self.to_entry(model).map(Arc::new).inspect_err(|e| {
            tracing::error!(receiver = %id, error = %e, "registry: a receiver cannot be used; its deliveries are answered 503");
        })
    }

    /// Brings the registry in memory up to date after this process changed receiver `id`. When
    /// the row cannot be read back, the entry is dropped and misses go to the database until the
    /// follower has reloaded everything, so a stale secret is never used.
    async fn changed(&self, id: Uuid) {
        if let Err(
            e @ (StoreError::Unavailable(_) | StoreError::Refused(_) | StoreError::Database(_)),
        ) = self.refresh(id).await
        {
            tracing::warn!(receiver = %id, error = %e, "registry: cannot read back a changed receiver");
            self.registry.complete.store(false, Ordering::Release);
            self.registry
                .entries
                .write()
                .expect("registry lock")
                .remove(&id);
        }
    }

    /// Reads every receiver into memory, replacing what was there, and marks the registry
    /// complete. Returns how many there are.
    pub async fn load_all(&self) -> Result<usize, StoreError> {
        let _one_at_a_time = self.registry.refreshing.lock().await;
        let models = receiver::Entity::find().all(&self.db).await?;
        let mut loaded = HashMap::with_capacity(models.len());
        for model in models {
            loaded.insert(model.id.uuid(), self.hold(model));
        }
        let count = loaded.len();
        *self.registry.entries.write().expect("registry lock") = loaded;
        self.registry.complete.store(true, Ordering::Release);
        Ok(count)
    }

    /// Keeps the registry in memory current with changes made by other processes until `stop`:
    /// on PostgreSQL by `LISTEN`ing to the notifications a trigger sends for each change (and
    /// reloading everything whenever the listening connection is re-established, since
    /// notifications sent meanwhile are lost), on SQLite by polling the registry's version.
    pub async fn follow(self, stop: CancellationToken) {
        match self.db.backend() {
            DbBackend::Postgres => self.follow_notifications(stop).await,
            _ => self.follow_version(stop).await,
        }
    }

    async fn follow_notifications(self, stop: CancellationToken) {
        let mut failures = 0u32;
        loop {
            if failures > 0 {
                let wait = Duration::from_millis(250 * u64::from(failures.min(20)));
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(wait) => {},
                }
            }
            // Listen first, then load: a change is either in the load or notified after it.
            let pool = self.db.get_postgres_connection_pool();
            let mut listener = match sea_orm::sqlx::postgres::PgListener::connect_with(pool).await {
                Ok(mut listener) => match listener.listen(CHANGES_CHANNEL).await {
                    Ok(()) => listener,
                    Err(e) => {
                        failures += 1;
                        tracing::warn!(error = %e, "registry: cannot listen for receiver changes; retrying");
                        continue;
                    }
                },
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, "registry: cannot connect to listen for receiver changes; retrying");
                    continue;
                }
            };
            if let Err(e) = self.load_all().await {
                failures += 1;
                tracing::warn!(error = %e, "registry: cannot load receivers; retrying");
                continue;
            }
            failures = 0;
            loop {
                let received = tokio::select! {
                    () = stop.cancelled() => return,
                    received = listener.try_recv() => received,
                };
                match received {
                    Ok(Some(notification)) => {
                        let Ok(id) = Uuid::parse_str(notification.payload()) else {
                            tracing::warn!(
                                payload = notification.payload(),
                                "registry: a change notification that names no receiver"
                            );
                            continue;
                        };
                        if let Err(e) = self.refresh(id).await {
                            // The change is not in memory yet: start over, which loads all.
                            tracing::warn!(receiver = %id, error = %e, "registry: cannot read a changed receiver; reloading");
                            failures += 1;
                            break;
                        }
                    }
                    // The connection was lost and made again: what changed meanwhile is unknown.
                    Ok(None) => {
                        if let Err(e) = self.load_all().await {
                            tracing::warn!(error = %e, "registry: cannot reload receivers; retrying");
                            failures += 1;
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "registry: lost the connection that listens for receiver changes; reconnecting");
                        failures += 1;
                        break;
                    }
                }
            }
        }
    }

    async fn follow_version(self, stop: CancellationToken) {
        let mut seen = None;
        loop {
            match self.version().await {
                Ok(version) if Some(version) == seen => {}
                Ok(version) => match self.load_all().await {
                    Ok(_) => seen = Some(version),
                    Err(e) => tracing::warn!(error = %e, "registry: cannot reload receivers"),
                },
                Err(e) => {
                    tracing::warn!(error = %e, "registry: cannot read the registry's version")
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(POLL_INTERVAL) => {},
            }
        }
    }

    /// What changes whenever a receiver is made, changed or deleted, or the key in force is
    /// replaced: how many receivers there are, their latest update time, and when the key came
    /// into force.
    async fn version(&self) -> Result<(i64, Option<Timestamp>, Option<Timestamp>), StoreError> {
        let (count, latest): (i64, Option<Timestamp>) = receiver::Entity::find()
            .select_only()
            .column_as(receiver::Column::Id.count(), "count")
            .column_as(receiver::Column::UpdateTime.max(), "latest")
            .into_tuple()
            .one(&self.db)
            .await?
            .unwrap_or((0, None));
        let key_time: Option<Timestamp> = crate::entity::secret_key::Entity::find()
            .select_only()
            .column(crate::entity::secret_key::Column::UpdateTime)
            .into_tuple()
            .one(&self.db)
            .await?;
        Ok((count, latest, key_time))
    }

    /// Stores a new receiver made by `actor`, its secret sealed. A name already in use is
    /// `NameTaken`.
    pub async fn create(&self, new: NewReceiver, actor: &str) -> Result<Receiver, StoreError> {
        let now = Timestamp::now();
        let name = new.name.as_str().to_owned();
        let id = Id::from(Uuid::new_v4());
        let sealed = self
            .secrets
            .seal(&id.to_string(), Slot::Current, new.secret.expose());
        let token = new.signing_token.as_ref().map(|t| {
            self.secrets
                .seal(&id.to_string(), Slot::SigningToken, t.expose())
        });
        let row = receiver::ActiveModel {
            id: Set(id),
            name: Set(name.clone()),
            code_host_kind: Set(new.code_host_kind),
            code_host_urn: Set(new.code_host_urn.as_str().to_owned()),
            secret: Set(sealed.value),
            secret_key_id: Set(Some(sealed.key_id)),
            previous_secret: Set(None),
            previous_secret_key_id: Set(None),
            previous_secret_expire_time: Set(None),
            signing_token_key_id: Set(token.as_ref().map(|t| t.key_id.clone())),
            signing_token: Set(token.map(|t| t.value)),
            previous_signing_token: Set(None),
            previous_signing_token_key_id: Set(None),
            previous_signing_token_expire_time: Set(None),
            signature_tolerance_ms: Set(millis(new.options.signature_tolerance)),
            require_signature: Set(new.options.require_signature),
            ignore_unmatched: Set(new.options.ignore_unmatched),
            min_sync_interval_ms: Set(millis(new.options.min_sync_interval)),
            push_branch_filter: Set(Json(new.options.push_branch_filter.clone())),
            rate_limit_per_minute: Set(i64::from(new.options.rate_limit_per_minute)),
            create_time: Set(now),
            update_time: Set(now),
            created_by: Set(actor.to_owned()),
            updated_by: Set(actor.to_owned()),
            last_delivery_time: Set(None),
        };
        let txn = self.db.begin_write().await?;
        self.hold_key_in_force(&txn, id).await?;
        let model = row.insert(&txn).await.map_err(|e| name_clash(e, &name))?;
        txn.commit().await?;
        let receiver = to_receiver(model)?;
        self.changed(receiver.id).await;
        Ok(receiver)
    }

    /// Fails unless this store's key is the one the database has in force, and (PostgreSQL)
    /// keeps it so until `txn` ends: a replica that missed a `rotate-key` writes nothing under
    /// the retired key.
    async fn hold_key_in_force(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        id: Id,
    ) -> Result<(), StoreError> {
        let in_force = secret_key::key_in_force(txn).await?;
        self.secrets
            .check_in_force(in_force.as_ref())
            .map_err(|source| StoreError::SecretKey {
                id: id.to_string(),
                source,
            })
    }

    pub async fn get(&self, id: Uuid) -> Result<Receiver, StoreError> {
        let model = receiver::Entity::find_by_id(Id::from(id))
            .one(&self.db)
            .await?
            .ok_or(StoreError::not_found("receiver", id))?;
        to_receiver(model)
    }

    /// The receiver's secrets, opened, for verifying its deliveries.
    pub async fn secrets(&self, id: Uuid) -> Result<ReceiverSecrets, StoreError> {
        let m = receiver::Entity::find_by_id(Id::from(id))
            .one(&self.db)
            .await?
            .ok_or(StoreError::not_found("receiver", id))?;
        self.to_secrets(&m)
    }

    /// Receivers in creation order, `limit` at most, after the `(create_time, id)` cursor.
    pub async fn list(
        &self,
        kind: Option<CodeHostKind>,
        after: Option<(Timestamp, Uuid)>,
        limit: u64,
    ) -> Result<ReceiverPage, StoreError> {
        let mut query = receiver::Entity::find();
        if let Some(kind) = kind {
            query = query.filter(receiver::Column::CodeHostKind.eq(kind));
        }
        let sort = Sort::oldest_first(receiver::Column::CreateTime, receiver::Column::Id);
        let page = paging::counted_page(query, sort, after, limit, &self.db).await?;
        let receivers = page
            .rows
            .into_iter()
            .map(to_receiver)
            .collect::<Result<_, _>>()?;
        Ok(ReceiverPage {
            receivers,
            total_size: page.total_size,
            has_more: page.has_more,
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
            .col_expr(C::UpdateTime, Expr::value(Timestamp::now()))
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
            update = update.col_expr(C::PushBranchFilter, Expr::value(Json(v)));
        }
        if let Some(v) = patch.rate_limit_per_minute {
            update = update.col_expr(C::RateLimitPerMinute, Expr::value(i64::from(v)));
        }
        if let Some(v) = patch.signature_tolerance {
            update = update.col_expr(C::SignatureToleranceMs, Expr::value(millis(v)));
        }
        if let Some(v) = patch.require_signature {
            update = update.col_expr(C::RequireSignature, Expr::value(v));
        }
        let result = update
            .filter(C::Id.eq(Id::from(id)))
            .exec(&self.db)
            .await
            .map_err(|e| match &new_name {
                Some(name) => name_clash(e, name),
                None => e.into(),
            })?;
        self.changed(id).await;
        if result.rows_affected == 0 {
            return Err(StoreError::not_found("receiver", id));
        }
        self.get(id).await
    }

    /// Deletes the receiver and everything that belongs to it.
    pub async fn delete(&self, id: Uuid) -> Result<(), StoreError> {
        let result = receiver::Entity::delete_by_id(Id::from(id))
            .exec(&self.db)
            .await?;
        self.changed(id).await;
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
        let txn = self.db.begin_write().await?;
        self.hold_key_in_force(&txn, Id::from(id)).await?;
        let Some(row) = receiver::Entity::find_by_id(Id::from(id))
            .lock_exclusive()
            .one(&txn)
            .await?
        else {
            return Err(StoreError::not_found("receiver", id));
        };
        let now = Timestamp::now();
        let expire = (!overlap.is_zero()).then(|| now.plus(overlap));
        let (previous, previous_key_id) = match expire {
            Some(_) => {
                let current = self.open_secret(&row, Slot::Current)?;
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
            .filter(C::Id.eq(Id::from(id)))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        self.changed(id).await;
        Ok(RotatedSecret {
            receiver: self.get(id).await?,
            previous_secret_expire_time: expire,
        })
    }

    /// Replaces the GitLab signing token (or gives the receiver its first), as
    /// [`ReceiverStore::rotate_secret`] replaces the secret: with a non-zero `overlap` the
    /// previous token (if there was one) stays accepted for that long. The caller checks the
    /// receiver is a GitLab one.
    pub async fn rotate_signing_token(
        &self,
        id: Uuid,
        token: &SigningToken,
        overlap: Duration,
        actor: &str,
    ) -> Result<RotatedSigningToken, StoreError> {
        use receiver::Column as C;
        let key = id.to_string();
        let txn = self.db.begin_write().await?;
        self.hold_key_in_force(&txn, Id::from(id)).await?;
        let Some(row) = receiver::Entity::find_by_id(Id::from(id))
            .lock_exclusive()
            .one(&txn)
            .await?
        else {
            return Err(StoreError::not_found("receiver", id));
        };
        let now = Timestamp::now();
        let expire = (!overlap.is_zero() && row.signing_token.is_some()).then(|| now.plus(overlap));
        let (previous, previous_key_id) = match expire {
            Some(_) => {
                let current = self.open_token(&row, Slot::SigningToken)?;
                let sealed = self
                    .secrets
                    .seal(&key, Slot::PreviousSigningToken, current.expose());
                (Some(sealed.value), Some(sealed.key_id))
            }
            None => (None, None),
        };
        let sealed = self.secrets.seal(&key, Slot::SigningToken, token.expose());
        receiver::Entity::update_many()
            .col_expr(C::PreviousSigningToken, Expr::value(previous))
            .col_expr(C::PreviousSigningTokenKeyId, Expr::value(previous_key_id))
            .col_expr(C::PreviousSigningTokenExpireTime, Expr::value(expire))
            .col_expr(C::SigningToken, Expr::value(Some(sealed.value)))
            .col_expr(C::SigningTokenKeyId, Expr::value(Some(sealed.key_id)))
            .col_expr(C::UpdateTime, Expr::value(now))
            .col_expr(C::UpdatedBy, Expr::value(actor.to_owned()))
            .filter(C::Id.eq(Id::from(id)))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        self.changed(id).await;
        Ok(RotatedSigningToken {
            receiver: self.get(id).await?,
            previous_signing_token_expire_time: expire,
        })
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A unique-constraint violation on insert or update can only be the name.
fn name_clash(err: DbErr, name: &str) -> StoreError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => StoreError::NameTaken(name.to_owned()),
        _ => err.into(),
    }
}

impl ReceiverStore {
    /// The row as the registry in memory keeps it: the receiver and its secrets, opened.
    fn to_entry(&self, m: receiver::Model) -> Result<ReceiverEntry, StoreError> {
        let secrets = self.to_secrets(&m)?;
        Ok(ReceiverEntry {
            receiver: to_receiver(m)?,
            secrets,
        })
    }

    /// The row's secrets, opened.
    fn to_secrets(&self, m: &receiver::Model) -> Result<ReceiverSecrets, StoreError> {
        let current = self.open_secret(m, Slot::Current)?;
        let previous = match m.previous_secret_expire_time {
            Some(expire) if m.previous_secret.is_some() => {
                Some((self.open_secret(m, Slot::Previous)?, expire))
            }
            _ => None,
        };
        let signing_token = match m.signing_token {
            Some(_) => Some(self.open_token(m, Slot::SigningToken)?),
            None => None,
        };
        let previous_signing_token = match m.previous_signing_token_expire_time {
            Some(expire) if m.previous_signing_token.is_some() => {
                Some((self.open_token(m, Slot::PreviousSigningToken)?, expire))
            }
            _ => None,
        };
        Ok(ReceiverSecrets {
            current,
            previous,
            signing_token,
            previous_signing_token,
        })
    }

    /// The value in `slot` of the row, opened (not yet checked).
    fn open(
        &self,
        m: &receiver::Model,
        slot: Slot,
    ) -> Result<zeroize::Zeroizing<String>, StoreError> {
        let (value, key_id) = slot.stored(m);
        let id = m.id.to_string();
        self.secrets
            .open(&id, slot, key_id, value)
            .map_err(|source| StoreError::SecretKey { id, source })
    }

    /// The secret in `slot` of the row, opened and checked.
    fn open_secret(&self, m: &receiver::Model, slot: Slot) -> Result<ReceiverSecret, StoreError> {
        let plain = self.open(m, slot)?;
        ReceiverSecret::parse(&plain).map_err(|_| StoreError::Corrupt {
            id: m.id.to_string(),
            why: format!("{} is not a valid secret once opened", slot.column()),
        })
    }

    /// The signing token in `slot` of the row, opened and checked.
    fn open_token(&self, m: &receiver::Model, slot: Slot) -> Result<SigningToken, StoreError> {
        let plain = self.open(m, slot)?;
        SigningToken::parse(&plain).map_err(|_| StoreError::Corrupt {
            id: m.id.to_string(),
            why: format!("{} is not a valid signing token once opened", slot.column()),
        })
    }
}

fn to_receiver(m: receiver::Model) -> Result<Receiver, StoreError> {
    let corrupt = |why: String| StoreError::Corrupt {
        id: m.id.to_string(),
        why,
    };
    let code_host_urn =
        CodeHostUrn::parse(&m.code_host_urn).map_err(|e| corrupt(format!("{e}")))?;
    Ok(Receiver {
        id: m.id.uuid(),
        name: m.name,
        code_host_kind: m.code_host_kind,
        code_host_urn,
        options: ReceiverOptions {
            ignore_unmatched: m.ignore_unmatched,
            min_sync_interval: Duration::from_millis(m.min_sync_interval_ms.max(0) as u64),
            push_branch_filter: m.push_branch_filter.0,
            rate_limit_per_minute: u32::try_from(m.rate_limit_per_minute).unwrap_or(u32::MAX),
            signature_tolerance: Duration::from_millis(m.signature_tolerance_ms.max(0) as u64),
            require_signature: m.require_signature,
        },
        has_secret: !m.secret.is_empty(),
        has_signing_token: m.signing_token.is_some(),
        create_time: m.create_time,
        update_time: m.update_time,
        created_by: m.created_by,
        updated_by: m.updated_by,
        last_delivery_time: m.last_delivery_time,
    })
}
