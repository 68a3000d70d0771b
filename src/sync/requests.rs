//! Sync requests: "repository R should be fetched again", at most one outstanding per repository,
//! debounced by the receiver's minimum interval, claimed by sync workers over gRPC with a lease.
//!
//! - idle → a push makes it `PENDING`, due at `max(now, last completed sync + min interval)`;
//! - `PENDING` → more pushes are coalesced into it (push count, refs, newest SHAs);
//! - `CLAIMED` → a push marks it to run again: when the worker completes it, a new `PENDING`
//!   request carries the pushes that landed during the sync, so none is lost;
//! - a claim whose lease runs out returns to `PENDING`.

use std::time::Duration;

use sea_orm::sea_query::{Expr, LockBehavior, LockType, Query};
use sea_orm::{
    ActiveEnum, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QuerySelect, Set,
};
use uuid::Uuid;

use crate::db::Db;
use crate::entity::id::{Id, OptionalId};
use crate::entity::json::Json;
pub use crate::entity::sync_request::{Reason, StoredRef, SyncRequestState};
use crate::entity::{repository, sync_request};
use crate::hosts::effects::RefUpdate;
use crate::store::StoreError;
use crate::store::paging::{self, Sort};
use crate::sync::feed::{self, FeedEntryKind, Source};
use crate::text::{Cap, MAX_REFS, bounded};
use crate::time::Timestamp;

/// A sync request as a worker or an admin sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRequest {
    pub id: Uuid,
    pub repository_id: Uuid,
    pub repository: String,
    pub code_host_urn: String,
    pub clone_urls: Vec<String>,
    pub state: SyncRequestState,
    pub push_count: i32,
    pub refs: Vec<StoredRef>,
    pub request_time: Timestamp,
    pub due_time: Timestamp,
    pub lease_expire_time: Option<Timestamp>,
    pub worker: String,
    pub reason: Reason,
    pub receiver_id: Option<Uuid>,
    pub error: Option<String>,
}

/// Why a sync request cannot be completed.
#[derive(Debug, thiserror::Error)]
pub enum CompleteError {
    #[error(
        "sync request {0} is {1}, not claimed: only a claimed request can be completed (its lease may have run out and another worker taken it)"
    )]
    NotClaimed(Uuid, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The states of a repository's outstanding request (at most one): the one a push joins.
pub const OUTSTANDING: [SyncRequestState; 2] =
    [SyncRequestState::Pending, SyncRequestState::Claimed];

/// Requests a sync of `repo`, on `conn` (the caller's transaction): makes a pending request,
/// or joins the outstanding one. Returns its id. `source` says through which receiver, and
/// which delivery made it, if any (kept with its feed entry).
#[allow(clippy::too_many_arguments)]
pub async fn request<C: ConnectionTrait>(
    conn: &C,
    repo: &repository::Model,
    source: Source,
    refs: &[RefUpdate],
    min_interval: Duration,
    reason: Reason,
    now: Timestamp,
) -> Result<Uuid, DbErr> {
    use sync_request::Column as C;
    let receiver_id = source.receiver_id;
    let pushes = i32::from(reason == Reason::Push);
    // The repository first, then its outstanding request: a concurrent request (another
    // replica's push) waits here and then joins what this one made, and a sync worker's claim
    // or completion of the request comes wholly before this or wholly after it.
    super::repositories::lock(conn, repo.id).await?;
    // A worker's chunk read the outstanding requests of its pushes' repositories at its start,
    // and keeps them as it writes them.
    let outstanding = match crate::deliveries::chunk::cached_outstanding(repo.id) {
        Some(known) => known,
        None => {
            sync_request::Entity::find()
                .filter(C::RepositoryId.eq(repo.id))
                .filter(C::State.is_in(OUTSTANDING))
                .lock_exclusive()
                .one(conn)
                .await?
        }
    };
    let new = outstanding.is_none();
    let request = match outstanding {
        None => {
            let due = match (reason, repo.last_sync_time) {
                (Reason::Manual, _) | (_, None) => now,
                (_, Some(last)) => now.max(last.plus(min_interval)),
            };
            sync_request::Model {
                id: Id::new_v4(),
                repository_id: repo.id,
                receiver_id: OptionalId(receiver_id),
                state: SyncRequestState::Pending,
                push_count: pushes,
                refs: Json(merge_refs(Vec::new(), refs)),
                request_time: now,
                due_time: due,
                lease_expire_time: None,
                worker: String::new(),
                reason,
                min_sync_interval_ms: i64::try_from(min_interval.as_millis()).unwrap_or(i64::MAX),
                rerun: false,
                rerun_refs: Json(Vec::new()),
                rerun_count: 0,
                complete_time: None,
                error: None,
            }
        }
        Some(m) if m.state == SyncRequestState::Pending => sync_request::Model {
            push_count: m.push_count.saturating_add(pushes),
            refs: Json(merge_refs(m.refs.0.clone(), refs)),
            // An admin asked for it now.
            due_time: if reason == Reason::Manual {
                m.due_time.min(now)
            } else {
                m.due_time
            },
            ..m
        },
        // Claimed: a worker is syncing. Whatever lands now needs another sync after it.
        Some(m) => sync_request::Model {
            rerun: true,
            rerun_count: m.rerun_count.saturating_add(pushes),
            rerun_refs: Json(merge_refs(m.rerun_refs.0.clone(), refs)),
            ..m
        },
    };
    let id = request.id.uuid();
    // In a worker's chunk, written with the chunk's other sync requests at its end.
    if let Some(request) = crate::deliveries::chunk::defer_sync_request(request) {
        let row = sea_orm::IntoActiveModel::<sync_request::ActiveModel>::into_active_model(request);
        if new {
            sync_request::Entity::insert(row)
                .exec_without_returning(conn)
                .await?;
        } else {
            // One statement: `ActiveModelTrait::update` reads the row back after (on SQLite,
            // another).
            sync_request::Entity::update_many()
                .set(sea_orm::ActiveModelTrait::reset_all(row))
                .filter(C::Id.eq(Id::from(id)))
                .exec(conn)
                .await?;
        }
    }
    feed::append(conn, FeedEntryKind::SyncRequested, source, id, now).await?;
    Ok(id)
}

/// Adds `new` updates to `refs`: a ref already listed keeps its first old SHA and takes the
/// newest new SHA.
fn merge_refs(mut refs: Vec<StoredRef>, new: &[RefUpdate]) -> Vec<StoredRef> {
    for update in new {
        let full = refs.len() >= MAX_REFS;
        match refs.iter_mut().find(|r| r.name == update.name) {
            Some(existing) => existing.new_sha = update.new_sha.clone(),
            // A request keeps at most MAX_REFS refs; the sync fetches them all anyway.
            None if full => {}
            None => refs.push(StoredRef {
                name: update.name.clone(),
                old_sha: update.old_sha.clone(),
                new_sha: update.new_sha.clone(),
            }),
        }
    }
    refs
}

/// One page of sync requests.
#[derive(Debug)]
pub struct SyncRequestPage {
    pub sync_requests: Vec<SyncRequest>,
    pub total_size: u64,
    pub has_more: bool,
}

/// Sync requests for workers and admins.
#[derive(Debug, Clone)]
pub struct SyncRequestStore {
    db: Db,
}

impl SyncRequestStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// How many requests are `PENDING` (for `/metrics`).
    pub async fn pending_count(&self) -> Result<u64, StoreError> {
        Ok(sync_request::Entity::find()
            .filter(sync_request::Column::State.eq(SyncRequestState::Pending))
            .count(&self.db)
            .await?)
    }

    /// Returns claims whose lease ran out to `PENDING`.
    async fn release_expired(&self, now: Timestamp) -> Result<(), DbErr> {
        use sync_request::Column as C;
        sync_request::Entity::update_many()
            .col_expr(C::State, Expr::value(SyncRequestState::Pending))
            .col_expr(C::LeaseExpireTime, Expr::value(None::<Timestamp>))
            .col_expr(C::Worker, Expr::value(String::new()))
            .filter(C::State.eq(SyncRequestState::Claimed))
            .filter(C::LeaseExpireTime.lte(now))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Claims up to `max` due requests for `worker` for `lease`. No request is handed to two
    /// claimers at once.
    pub async fn claim(
        &self,
        worker: &str,
        max: u64,
        lease: Duration,
        now: Timestamp,
    ) -> Result<Vec<SyncRequest>, StoreError> {
        use sync_request::Column as C;
        self.release_expired(now).await?;
        let due = Query::select()
            .column(C::Id)
            .from(sync_request::Entity)
            .cond_where(
                Condition::all()
                    .add(C::State.eq(SyncRequestState::Pending))
                    .add(C::DueTime.lte(now)),
            )
            .order_by(C::DueTime, sea_orm::Order::Asc)
            .limit(max)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .to_owned();
        let rows = sync_request::Entity::update_many()
            .col_expr(C::State, Expr::value(SyncRequestState::Claimed))
            .col_expr(C::LeaseExpireTime, Expr::value(now.plus(lease)))
            .col_expr(C::Worker, Expr::value(bounded(worker, Cap::LOGIN)))
            .filter(C::Id.in_subquery(due))
            .exec_with_returning(&self.db)
            .await?;
        let mut claimed = self.with_repositories(rows).await?;
        claimed.sort_by_key(|r| r.due_time);
        Ok(claimed)
    }

    /// Records a claimed request's outcome. A success marks the repository synced now; pushes
    /// that landed during the sync become a new pending request.
    pub async fn complete(
        &self,
        id: Uuid,
        success: bool,
        error: &str,
        now: Timestamp,
    ) -> Result<SyncRequest, CompleteError> {
        use sync_request::Column as C;
        let state = if success {
            SyncRequestState::Completed
        } else {
            SyncRequestState::Failed
        };
        let txn = self.db.begin_write().await.map_err(StoreError::from)?;
        // The repository's row first, as every request for it does (`request`): a push that
        // lands now either comes before (and is in this request's rerun) or after (and makes a
        // new request).
        let repository_id = sync_request::Entity::find_by_id(Id::from(id))
            .select_only()
            .column(C::RepositoryId)
            .into_tuple::<Id>()
            .one(&txn)
            .await
            .map_err(StoreError::from)?
            .ok_or(StoreError::not_found("sync request", id))?;
        super::repositories::lock(&txn, repository_id)
            .await
            .map_err(StoreError::from)?;
        // Write first: the conditional update decides whether the claim is still held.
        let updated = sync_request::Entity::update_many()
            .col_expr(C::State, Expr::value(state))
            .col_expr(C::CompleteTime, Expr::value(now))
            .col_expr(C::LeaseExpireTime, Expr::value(None::<Timestamp>))
            .col_expr(
                C::Error,
                Expr::value((!success).then(|| bounded(error, Cap::NOTE))),
            )
            .filter(C::Id.eq(Id::from(id)))
            .filter(C::State.eq(SyncRequestState::Claimed))
            .exec(&txn)
            .await
            .map_err(StoreError::from)?;
        let model = sync_request::Entity::find_by_id(Id::from(id))
            .one(&txn)
            .await
            .map_err(StoreError::from)?
            .ok_or(StoreError::not_found("sync request", id))?;
        if updated.rows_affected == 0 {
            return Err(CompleteError::NotClaimed(id, model.state.to_value()));
        }
        let repo = repository::Entity::find_by_id(model.repository_id)
            .one(&txn)
            .await
            .map_err(StoreError::from)?
            .ok_or_else(|| {
                StoreError::Database(DbErr::RecordNotFound(model.repository_id.to_string()))
            })?;
        let receiver = model.receiver_id.0;
        if success {
            repository::Entity::update_many()
                .col_expr(repository::Column::LastSyncTime, Expr::value(now))
                .filter(repository::Column::Id.eq(repo.id))
                .exec(&txn)
                .await
                .map_err(StoreError::from)?;
        }
        feed::append(
            &txn,
            FeedEntryKind::SyncCompleted,
            Source::receiver(receiver),
            id,
            now,
        )
        .await
        .map_err(StoreError::from)?;
        if model.rerun {
            let interval = Duration::from_millis(model.min_sync_interval_ms.max(0) as u64);
            let last = if success {
                Some(now)
            } else {
                repo.last_sync_time
            };
            let rerun_id = Uuid::new_v4();
            sync_request::Entity::insert(sync_request::ActiveModel {
                id: Set(rerun_id.into()),
                repository_id: Set(repo.id),
                receiver_id: Set(model.receiver_id),
                state: Set(SyncRequestState::Pending),
                push_count: Set(model.rerun_count),
                refs: Set(model.rerun_refs.clone()),
                request_time: Set(now),
                due_time: Set(match last {
                    Some(last) => now.max(last.plus(interval)),
                    None => now,
                }),
                lease_expire_time: Set(None),
                worker: Set(String::new()),
                reason: Set(Reason::PushedDuringSync),
                min_sync_interval_ms: Set(model.min_sync_interval_ms),
                rerun: Set(false),
                rerun_refs: Set(Json(Vec::new())),
                rerun_count: Set(0),
                complete_time: Set(None),
                error: Set(None),
            })
            .exec_without_returning(&txn)
            .await
            .map_err(StoreError::from)?;
            feed::append(
                &txn,
                FeedEntryKind::SyncRequested,
                Source::receiver(receiver),
                rerun_id,
                now,
            )
            .await
            .map_err(StoreError::from)?;
        }
        txn.commit().await.map_err(StoreError::from)?;
        Ok(self.get(id).await?)
    }

    /// Requests a sync of each of `repositories` (manual or trigger), in one transaction;
    /// returns the requests made or joined.
    pub async fn request_many(
        &self,
        repositories: &[repository::Model],
        receiver_id: Option<Uuid>,
        min_interval: Duration,
        reason: Reason,
        now: Timestamp,
    ) -> Result<Vec<SyncRequest>, StoreError> {
        let txn = self.db.begin_write().await?;
        let mut ids = Vec::with_capacity(repositories.len());
        for repo in repositories {
            let source = Source::receiver(receiver_id);
            ids.push(request(&txn, repo, source, &[], min_interval, reason, now).await?);
        }
        txn.commit().await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.get(id).await?);
        }
        Ok(out)
    }

    pub async fn get(&self, id: Uuid) -> Result<SyncRequest, StoreError> {
        let model = sync_request::Entity::find_by_id(Id::from(id))
            .one(&self.db)
            .await?
            .ok_or(StoreError::not_found("sync request", id))?;
        let mut found = self.with_repositories(vec![model]).await?;
        found.pop().ok_or(StoreError::not_found("sync request", id))
    }

    /// Sync requests, newest first, of `urn` (all when `None`) in `states` (all when empty),
    /// after the `(request_time, id)` cursor.
    pub async fn list(
        &self,
        urn: Option<&str>,
        states: &[SyncRequestState],
        after: Option<(Timestamp, Uuid)>,
        limit: u64,
        now: Timestamp,
    ) -> Result<SyncRequestPage, StoreError> {
        use sync_request::Column as C;
        self.release_expired(now).await?;
        let mut query = sync_request::Entity::find();
        if let Some(urn) = urn {
            query = query.filter(
                C::RepositoryId.in_subquery(
                    Query::select()
                        .column(repository::Column::Id)
                        .from(repository::Entity)
                        .and_where(repository::Column::CodeHostUrn.eq(urn))
                        .to_owned(),
                ),
            );
        }
        if !states.is_empty() {
            query = query.filter(C::State.is_in(states.iter().copied()));
        }
        let sort = Sort::newest_first(C::RequestTime, C::Id);
        let page = paging::counted_page(query, sort, after, limit, &self.db).await?;
        Ok(SyncRequestPage {
            sync_requests: self.with_repositories(page.rows).await?,
            total_size: page.total_size,
            has_more: page.has_more,
        })
    }

    async fn with_repositories(
        &self,
        rows: Vec<sync_request::Model>,
    ) -> Result<Vec<SyncRequest>, StoreError> {
        let repos =
            super::repositories::by_ids(&self.db, rows.iter().map(|r| r.repository_id)).await?;
        Ok(rows
            .into_iter()
            .map(|m| {
                let repo = repos.get(&m.repository_id);
                SyncRequest {
                    id: m.id.uuid(),
                    repository_id: m.repository_id.uuid(),
                    repository: repo.map(|r| r.name.clone()).unwrap_or_default(),
                    code_host_urn: repo.map(|r| r.code_host_urn.clone()).unwrap_or_default(),
                    clone_urls: repo.map(|r| r.clone_urls.0.clone()).unwrap_or_default(),
                    state: m.state,
                    push_count: m.push_count,
                    refs: m.refs.0,
                    request_time: m.request_time,
                    due_time: m.due_time,
                    lease_expire_time: m.lease_expire_time,
                    worker: m.worker,
                    reason: m.reason,
                    receiver_id: m.receiver_id.0,
                    error: m.error,
                }
            })
            .collect())
    }
}
