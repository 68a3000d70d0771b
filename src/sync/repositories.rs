//! Repositories in the database: registered by admins, or created by the first event that names
//! them.
//!
//! A repository is the host's repository, not its name: it is found by the host's own id
//! (`external_id`) first, and by name only when the event gives no id or the stored row has none
//! yet (the id is then recorded). The same id under a new name is a rename or a transfer: the one
//! row takes the new name, keeps its changesets and sync history, and keeps the old name as an
//! alias (`repository_aliases`) that lookups by name still follow.

use std::collections::HashMap;

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use uuid::Uuid;

use crate::db::Db;
use crate::entity::id::Id;
use crate::entity::json::Json;
use crate::entity::{repository, repository_alias};
use crate::hosts::effects::RepositoryRef;
use crate::receivers::{CodeHostUrn, ValidationError};
use crate::store::StoreError;
use crate::store::paging::{self, Sort};
use crate::sync::feed::{self, FeedEntryKind};
use crate::time::Timestamp;

/// A repository as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub id: Uuid,
    pub code_host_urn: String,
    pub name: String,
    /// The host's own id for it: what identifies it. Empty until an event or an admin gives it.
    pub external_id: String,
    pub url: String,
    pub clone_urls: Vec<String>,
    /// Registered by an admin, not only seen in an event.
    pub registered: bool,
    pub create_time: Timestamp,
    /// Names it had on its host before a rename or transfer, newest first.
    pub former_names: Vec<String>,
}

/// A repository name as an admin gives it: trimmed, 1 to 1000 characters.
pub fn parse_repository_name(raw: &str) -> Result<String, ValidationError> {
    let name = raw.trim().trim_matches('/');
    if name.is_empty() {
        return Err(ValidationError::new(
            "name",
            "is required: the repository's name on its code host, such as octo-org/hello-world",
        ));
    }
    if name.chars().count() > 1000 || name.chars().any(char::is_control) {
        return Err(ValidationError::new(
            "name",
            "must be at most 1000 characters, without control characters",
        ));
    }
    Ok(name.to_owned())
}

/// One page of repositories.
#[derive(Debug)]
pub struct RepositoryPage {
    pub repositories: Vec<Repository>,
    pub total_size: u64,
    pub has_more: bool,
}

/// The repositories in the database.
#[derive(Debug, Clone)]
pub struct RepositoryStore {
    db: Db,
}

impl RepositoryStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Registers a repository; one already known (registered or seen) is marked registered and
    /// keeps its id. Registering twice is not an error. With `external_id`, the repository with
    /// that host id is the one registered (renamed to `name` if it was seen under another); a
    /// name held by a repository with another host id is refused.
    pub async fn register(
        &self,
        urn: &CodeHostUrn,
        name: &str,
        external_id: &str,
    ) -> Result<Repository, StoreError> {
        let (urn, external_id) = (urn.as_str(), external_id.trim());
        let now = Timestamp::now();
        let txn = self.db.begin_write().await?;
        let model = if external_id.is_empty() {
            insert_if_absent(&*txn, urn, name, "", now).await?;
            find_locked(&*txn, urn, name).await?
        } else if let Some(known) = find_id_locked(&*txn, urn, external_id).await? {
            Some(rename(&*txn, known, name, None, now).await?)
        } else {
            match find_locked(&*txn, urn, name).await? {
                Some(holder) if !holder.external_id.is_empty() => {
                    return Err(StoreError::RepositoryIdMismatch {
                        urn: urn.to_owned(),
                        name: name.to_owned(),
                        held_by: holder.external_id,
                        given: external_id.to_owned(),
                    });
                }
                Some(holder) => Some(holder),
                None => {
                    insert_if_absent(&*txn, urn, name, external_id, now).await?;
                    find_id_locked(&*txn, urn, external_id).await?
                }
            }
        };
        let model = model.ok_or_else(|| DbErr::RecordNotFound(name.to_owned()))?;
        let mut row: repository::ActiveModel = model.into();
        row.registered = Set(true);
        row.update_time = Set(now);
        if !external_id.is_empty() {
            row.external_id = Set(external_id.to_owned());
        }
        let model = row.update(&*txn).await?;
        txn.commit().await?;
        self.with_former_names(to_repository(model)).await
    }

    pub async fn get(&self, id: Uuid) -> Result<Repository, StoreError> {
        let model = repository::Entity::find_by_id(Id::from(id))
            .one(&self.db)
            .await?
            .ok_or(StoreError::not_found("repository", id))?;
        self.with_former_names(to_repository(model)).await
    }

    /// The repository `name` of `urn`: the one with that name now, else the one that had it
    /// before a rename. `None` when neither is known.
    pub async fn get_by_name(
        &self,
        urn: &str,
        name: &str,
    ) -> Result<Option<Repository>, StoreError> {
        match self.row_by_name(urn, name).await? {
            None => Ok(None),
            Some(model) => Ok(Some(self.with_former_names(to_repository(model)).await?)),
        }
    }

    /// `repository` with its former names.
    async fn with_former_names(&self, repository: Repository) -> Result<Repository, StoreError> {
        let mut one = former_names(&self.db, vec![repository]).await?;
        Ok(one.remove(0))
    }

    /// Repositories in creation order, after the `(create_time, id)` cursor.
    pub async fn list(
        &self,
        urn: Option<&str>,
        after: Option<(Timestamp, Uuid)>,
        limit: u64,
    ) -> Result<RepositoryPage, StoreError> {
        use repository::Column as C;
        let mut query = repository::Entity::find();
        if let Some(urn) = urn {
            query = query.filter(C::CodeHostUrn.eq(urn));
        }
        let sort = Sort::oldest_first(C::CreateTime, C::Id);
        let page = paging::counted_page(query, sort, after, limit, &self.db).await?;
        let (total_size, has_more) = (page.total_size, page.has_more);
        let repositories = page.rows.into_iter().map(to_repository).collect();
        Ok(RepositoryPage {
            repositories: former_names(&self.db, repositories).await?,
            total_size,
            has_more,
        })
    }

    /// The stored rows of one repository (by id) or of every repository of `urn`.
    pub async fn rows_by_id(&self, id: Uuid) -> Result<repository::Model, StoreError> {
        repository::Entity::find_by_id(Id::from(id))
            .one(&self.db)
            .await?
            .ok_or(StoreError::not_found("repository", id))
    }

    /// The stored row of repository `name` of `urn` (its name now, or one it had), if known.
    pub async fn row_by_name(
        &self,
        urn: &str,
        name: &str,
    ) -> Result<Option<repository::Model>, StoreError> {
        if let Some(model) = find(&self.db, urn, name).await? {
            return Ok(Some(model));
        }
        Ok(match alias_of(&self.db, urn, name).await? {
            Some(id) => repository::Entity::find_by_id(id).one(&self.db).await?,
            None => None,
        })
    }

    /// The stored rows of every repository of `urn`.
    pub async fn rows_of(&self, urn: &str) -> Result<Vec<repository::Model>, StoreError> {
        Ok(all_of(&self.db, urn).await?)
    }

    /// Deletes a repository, its changesets and its former names.
    pub async fn delete(&self, id: Uuid) -> Result<(), StoreError> {
        let result = repository::Entity::delete_by_id(Id::from(id))
            .exec(&self.db)
            .await?;
        if result.rows_affected == 0 {
            return Err(StoreError::not_found("repository", id));
        }
        Ok(())
    }
}

/// `repositories` with their former names, newest first, read in one query.
async fn former_names<C: ConnectionTrait>(
    conn: &C,
    mut repositories: Vec<Repository>,
) -> Result<Vec<Repository>, DbErr> {
    if repositories.is_empty() {
        return Ok(repositories);
    }
    let ids: Vec<Id> = repositories.iter().map(|r| Id::from(r.id)).collect();
    let aliases = repository_alias::Entity::find()
        .filter(repository_alias::Column::RepositoryId.is_in(ids))
        .order_by_desc(repository_alias::Column::CreateTime)
        .order_by_asc(repository_alias::Column::Name)
        .all(conn)
        .await?;
    let mut by_repository: HashMap<Id, Vec<String>> = HashMap::new();
    for alias in aliases {
        by_repository
            .entry(alias.repository_id)
            .or_default()
            .push(alias.name);
    }
    for r in &mut repositories {
        r.former_names = by_repository.remove(&Id::from(r.id)).unwrap_or_default();
    }
    Ok(repositories)
}

/// The repositories with these ids, by id (for listings of rows that name their repository).
pub async fn by_ids<C: ConnectionTrait>(
    conn: &C,
    ids: impl IntoIterator<Item = Id>,
) -> Result<std::collections::HashMap<Id, repository::Model>, DbErr> {
    Ok(repository::Entity::find()
        .filter(repository::Column::Id.is_in(ids))
        .all(conn)
        .await?
        .into_iter()
        .map(|r| (r.id, r))
        .collect())
}

/// Every repository of `urn`, by name.
pub async fn all_of<C: ConnectionTrait>(
    conn: &C,
    urn: &str,
) -> Result<Vec<repository::Model>, DbErr> {
    repository::Entity::find()
        .filter(repository::Column::CodeHostUrn.eq(urn))
        .order_by_asc(repository::Column::Name)
        .all(conn)
        .await
}

/// The repository `name` of `urn`, if known.
pub async fn find<C: ConnectionTrait>(
    conn: &C,
    urn: &str,
    name: &str,
) -> Result<Option<repository::Model>, DbErr> {
    by_name(urn, name).one(conn).await
}

/// Whether `urn` has a repository called `name`, now or before a rename.
pub async fn known<C: ConnectionTrait>(conn: &C, urn: &str, name: &str) -> Result<bool, DbErr> {
    Ok(find(conn, urn, name).await?.is_some() || alias_of(conn, urn, name).await?.is_some())
}

/// The repository `name` of `urn`, as a query.
fn by_name(urn: &str, name: &str) -> sea_orm::Select<repository::Entity> {
    repository::Entity::find()
        .filter(repository::Column::CodeHostUrn.eq(urn))
        .filter(repository::Column::Name.eq(name))
}

/// Like [`find`], and holds the repository's row until the transaction ends.
///
/// Every change to a repository's changesets and sync requests is made under this hold, which
/// makes them one after another when several replicas share PostgreSQL (`SELECT ... FOR
/// UPDATE`): each reads what the one before it wrote, so no update is lost and the out-of-order
/// rules see every event. Transactions that hold several take them in the order of the host's
/// id their events give, else of the name (the delivery worker sorts its batches so:
/// `SyncHandler::lock_order`), so they do not deadlock. SQLite has no row locks and needs none:
/// its writers take turns already (`db::begin_write`).
async fn find_locked<C: ConnectionTrait>(
    conn: &C,
    urn: &str,
    name: &str,
) -> Result<Option<repository::Model>, DbErr> {
    by_name(urn, name).lock_exclusive().one(conn).await
}

/// The repository of `urn` with the host's id `external_id`, held as [`find_locked`] holds it.
async fn find_id_locked<C: ConnectionTrait>(
    conn: &C,
    urn: &str,
    external_id: &str,
) -> Result<Option<repository::Model>, DbErr> {
    // Read, and held, at the start of the worker's chunk.
    if let Some(model) = crate::deliveries::chunk::cached_repository(urn, external_id) {
        return Ok(Some(model));
    }
    repository::Entity::find()
        .filter(repository::Column::CodeHostUrn.eq(urn))
        .filter(repository::Column::ExternalId.eq(external_id))
        .lock_exclusive()
        .one(conn)
        .await
}

/// The id of the repository of `urn` that had the name `name` before a rename, if one did.
async fn alias_of<C: ConnectionTrait>(
    conn: &C,
    urn: &str,
    name: &str,
) -> Result<Option<Id>, DbErr> {
    Ok(
        repository_alias::Entity::find_by_id((urn.to_owned(), name.to_owned()))
            .one(conn)
            .await?
            .map(|a| a.repository_id),
    )
}

/// Holds the repository `id`'s row until the transaction ends (see `find_locked`); in a
/// worker's chunk that already holds it, nothing more is asked of the database.
pub async fn lock<C: ConnectionTrait>(conn: &C, id: Id) -> Result<(), DbErr> {
    if crate::deliveries::chunk::holds_repository(id) {
        return Ok(());
    }
    repository::Entity::find_by_id(id)
        .lock_exclusive()
        .one(conn)
        .await?;
    crate::deliveries::chunk::hold_repository(id);
    Ok(())
}

/// Creates an unregistered repository `name` of `urn` with the host's id `external_id` (may be
/// empty) unless one with that name or that id exists (safe against a concurrent creator: the
/// unique indexes decide, nobody fails).
async fn insert_if_absent<C: ConnectionTrait>(
    conn: &C,
    urn: &str,
    name: &str,
    external_id: &str,
    now: Timestamp,
) -> Result<(), DbErr> {
    let row = repository::ActiveModel {
        id: Set(Id::new_v4()),
        code_host_urn: Set(urn.to_owned()),
        name: Set(name.to_owned()),
        external_id: Set(external_id.to_owned()),
        url: Set(String::new()),
        clone_urls: Set(Json(Vec::new())),
        registered: Set(false),
        last_sync_time: Set(None),
        create_time: Set(now),
        update_time: Set(now),
    };
    crate::deliveries::chunk::forget_repositories();
    // No conflict target: either unique index, (urn, name) or (urn, external_id), decides.
    repository::Entity::insert(row)
        .on_conflict(OnConflict::new().do_nothing().to_owned())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// The stored repository an event's repository is, held (see [`find_locked`]): the one with its
/// id; else, while no row has that id, the one with its name if that one has no id yet. When the
/// event gives no id: the one with its name now, else the one that had it before a rename.
async fn find_seen_locked<C: ConnectionTrait>(
    conn: &C,
    urn: &str,
    seen: &RepositoryRef,
) -> Result<Option<repository::Model>, DbErr> {
    if !seen.external_id.is_empty() {
        if let Some(model) = find_id_locked(conn, urn, &seen.external_id).await? {
            return Ok(Some(model));
        }
        if seen.name.is_empty() {
            return Ok(None);
        }
        let holder = find_locked(conn, urn, &seen.name).await?;
        return Ok(holder.filter(|h| h.external_id.is_empty()));
    }
    if seen.name.is_empty() {
        return Ok(None);
    }
    if let Some(model) = find_locked(conn, urn, &seen.name).await? {
        return Ok(Some(model));
    }
    match alias_of(conn, urn, &seen.name).await? {
        Some(id) => {
            repository::Entity::find_by_id(id)
                .lock_exclusive()
                .one(conn)
                .await
        }
        None => Ok(None),
    }
}

/// Gives `holder`'s name up: its host has given the name to another repository (another id),
/// so `holder` was renamed or deleted there without hookgate hearing of it. It keeps its history
/// under `<name>@<its id>` until an event of its own names it again.
///
/// The holder's row is a second one the transaction holds, outside the batch's order (see
/// [`find_locked`]); this is rare (a name handed on before the old holder's own rename arrived),
/// and should two transactions wait for each other over it, PostgreSQL ends one and its
/// deliveries are tried again.
async fn release_name<C: ConnectionTrait>(
    conn: &C,
    holder: repository::Model,
    now: Timestamp,
) -> Result<(), DbErr> {
    let id = match holder.external_id.as_str() {
        "" => holder.id.to_string(),
        external => external.to_owned(),
    };
    let name = format!("{}@{id}", holder.name);
    tracing::info!(repository = %holder.id, from = %holder.name, to = %name,
        "repository gives up its name: its host gave it to another repository");
    crate::deliveries::chunk::forget_repositories();
    let mut row: repository::ActiveModel = holder.into();
    row.name = Set(name);
    row.update_time = Set(now);
    row.update(conn).await?;
    Ok(())
}

/// Renames `model` to `name` (a rename or transfer on its host): the old name becomes its
/// former name (an alias), a repository that still held the new name gives it up
/// ([`release_name`]), and the feed tells of it (`receiver`: where the news came from). The same
/// name: nothing changes.
async fn rename<C: ConnectionTrait>(
    conn: &C,
    model: repository::Model,
    name: &str,
    receiver: Option<Uuid>,
    now: Timestamp,
) -> Result<repository::Model, DbErr> {
    if model.name == name {
        return Ok(model);
    }
    crate::deliveries::chunk::forget_repositories();
    let urn = model.code_host_urn.clone();
    if let Some(holder) = find_locked(conn, &urn, name).await?
        && holder.id != model.id
    {
        release_name(conn, holder, now).await?;
    }
    repository_alias::Entity::insert(repository_alias::ActiveModel {
        code_host_urn: Set(urn.clone()),
        name: Set(model.name.clone()),
        repository_id: Set(model.id),
        create_time: Set(now),
    })
    .on_conflict(
        OnConflict::columns([
            repository_alias::Column::CodeHostUrn,
            repository_alias::Column::Name,
        ])
        .update_columns([
            repository_alias::Column::RepositoryId,
            repository_alias::Column::CreateTime,
        ])
        .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    // The new name is a name now, nobody's former one.
    repository_alias::Entity::delete_many()
        .filter(repository_alias::Column::CodeHostUrn.eq(urn.as_str()))
        .filter(repository_alias::Column::Name.eq(name))
        .exec(conn)
        .await?;
    let subject = model.id.uuid();
    tracing::info!(repository = %model.id, from = %model.name, to = %name, %urn, "repository renamed");
    let mut row: repository::ActiveModel = model.into();
    row.name = Set(name.to_owned());
    row.update_time = Set(now);
    let model = row.update(conn).await?;
    feed::append(
        conn,
        FeedEntryKind::RepositoryRenamed,
        feed::Source::receiver(receiver),
        subject,
        now,
    )
    .await?;
    Ok(model)
}

/// The repository an event names, created (unregistered) if `create` and it is new, with what
/// the event says about it (name, id, URL, clone URLs) brought up to date: the same id under a
/// new name is renamed (see `rename`; `receiver` is where the event came from, for the feed).
/// `None` when it is unknown and not to be created, or named only by an id no repository has.
pub async fn seen<C: ConnectionTrait>(
    conn: &C,
    urn: &str,
    seen: &RepositoryRef,
    create: bool,
    receiver: Option<Uuid>,
    now: Timestamp,
) -> Result<Option<repository::Model>, DbErr> {
    let model = match find_seen_locked(conn, urn, seen).await? {
        Some(m) => m,
        None if !create || seen.name.is_empty() => return Ok(None),
        None => {
            // A holder of the name with another id is another repository: the host has given
            // the name to this one.
            if !seen.external_id.is_empty()
                && let Some(holder) = find_locked(conn, urn, &seen.name).await?
            {
                release_name(conn, holder, now).await?;
            }
            insert_if_absent(conn, urn, &seen.name, &seen.external_id, now).await?;
            find_seen_locked(conn, urn, seen)
                .await?
                .ok_or_else(|| DbErr::RecordNotFound(seen.name.clone()))?
        }
    };
    let model = match seen.name.as_str() {
        "" => model,
        name => rename(conn, model, name, receiver, now).await?,
    };
    // Read to be held (`find_seen_locked`), in this transaction: a chunk's later `lock` of it
    // asks nothing more.
    crate::deliveries::chunk::hold_repository(model.id);
    let stale = (!seen.external_id.is_empty() && seen.external_id != model.external_id)
        || (!seen.url.is_empty() && seen.url != model.url)
        || (!seen.clone_urls.is_empty() && seen.clone_urls != model.clone_urls.0);
    if !stale {
        return Ok(Some(model));
    }
    crate::deliveries::chunk::forget_repositories();
    let mut row: repository::ActiveModel = model.into();
    if !seen.external_id.is_empty() {
        row.external_id = Set(seen.external_id.clone());
    }
    if !seen.url.is_empty() {
        row.url = Set(seen.url.clone());
    }
    if !seen.clone_urls.is_empty() {
        row.clone_urls = Set(Json(seen.clone_urls.clone()));
    }
    row.update_time = Set(now);
    row.update(conn).await.map(Some)
}

/// A stored repository as the store shows it (without its former names).
pub fn to_repository(m: repository::Model) -> Repository {
    Repository {
        id: m.id.uuid(),
        clone_urls: m.clone_urls.0,
        code_host_urn: m.code_host_urn,
        name: m.name,
        external_id: m.external_id,
        url: m.url,
        registered: m.registered,
        create_time: m.create_time,
        former_names: Vec::new(),
    }
}
