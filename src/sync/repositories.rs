//! Repositories in the database: registered by admins, or created by the first event that names
//! them.

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use crate::entity::repository;
use crate::hosts::effects::RepositoryRef;
use crate::receivers::{CodeHostUrn, ValidationError};
use crate::store::StoreError;
use crate::store::paging::{self, Order};
use crate::time::now_micros;

/// A repository as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub id: Uuid,
    pub code_host_urn: String,
    pub name: String,
    pub external_id: String,
    pub url: String,
    pub clone_urls: Vec<String>,
    /// Registered by an admin, not only seen in an event.
    pub registered: bool,
    pub create_time: i64,
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
    db: DatabaseConnection,
}

impl RepositoryStore {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Registers a repository; one already known (registered or seen) is marked registered and
    /// keeps its id. Registering twice is not an error.
    pub async fn register(
        &self,
        urn: &CodeHostUrn,
        name: &str,
        external_id: &str,
    ) -> Result<Repository, StoreError> {
        let now = now_micros();
        insert_if_absent(&self.db, urn.as_str(), name, now).await?;
        let mut update = repository::Entity::update_many()
            .col_expr(
                repository::Column::Registered,
                sea_orm::sea_query::Expr::value(true),
            )
            .col_expr(
                repository::Column::UpdateTime,
                sea_orm::sea_query::Expr::value(now),
            );
        if !external_id.trim().is_empty() {
            update = update.col_expr(
                repository::Column::ExternalId,
                sea_orm::sea_query::Expr::value(external_id.trim().to_owned()),
            );
        }
        update
            .filter(repository::Column::CodeHostUrn.eq(urn.as_str()))
            .filter(repository::Column::Name.eq(name))
            .exec(&self.db)
            .await?;
        let model = find(&self.db, urn.as_str(), name)
            .await?
            .ok_or_else(|| StoreError::Database(DbErr::RecordNotFound(name.to_owned())))?;
        to_repository(model)
    }

    pub async fn get(&self, id: Uuid) -> Result<Repository, StoreError> {
        let model = repository::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?
            .ok_or(StoreError::not_found("repository", id))?;
        to_repository(model)
    }

    /// Repositories in creation order, after the `(create_time, id)` cursor.
    pub async fn list(
        &self,
        urn: Option<&str>,
        after: Option<(i64, Uuid)>,
        limit: u64,
    ) -> Result<RepositoryPage, StoreError> {
        use repository::Column as C;
        let mut query = repository::Entity::find();
        if let Some(urn) = urn {
            query = query.filter(C::CodeHostUrn.eq(urn));
        }
        let total_size = query.clone().count(&self.db).await?;
        let (rows, has_more) = paging::page(
            query,
            C::CreateTime,
            C::Id,
            after,
            Order::Ascending,
            limit,
            &self.db,
        )
        .await?;
        Ok(RepositoryPage {
            repositories: rows
                .into_iter()
                .map(to_repository)
                .collect::<Result<_, _>>()?,
            total_size,
            has_more,
        })
    }

    /// The stored rows of one repository (by id) or of every repository of `urn`.
    pub async fn rows_by_id(&self, id: Uuid) -> Result<repository::Model, StoreError> {
        repository::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?
            .ok_or(StoreError::not_found("repository", id))
    }

    /// The stored row of repository `name` of `urn`, if known.
    pub async fn row_by_name(
        &self,
        urn: &str,
        name: &str,
    ) -> Result<Option<repository::Model>, StoreError> {
        Ok(find(&self.db, urn, name).await?)
    }

    /// The stored rows of every repository of `urn`.
    pub async fn rows_of(&self, urn: &str) -> Result<Vec<repository::Model>, StoreError> {
        Ok(all_of(&self.db, urn).await?)
    }

    /// Deletes a repository and its changesets.
    pub async fn delete(&self, id: Uuid) -> Result<(), StoreError> {
        let result = repository::Entity::delete_by_id(id.to_string())
            .exec(&self.db)
            .await?;
        if result.rows_affected == 0 {
            return Err(StoreError::not_found("repository", id));
        }
        Ok(())
    }
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
/// rules see every event. Transactions that hold several take them in order of name (the
/// delivery worker sorts its batches so), so they do not deadlock. SQLite has no row locks and
/// needs none: its writers take turns already (`db::begin_write`).
async fn find_locked<C: ConnectionTrait>(
    conn: &C,
    urn: &str,
    name: &str,
) -> Result<Option<repository::Model>, DbErr> {
    by_name(urn, name).lock_exclusive().one(conn).await
}

/// Holds the repository `id`'s row until the transaction ends (see [`find_locked`]).
pub async fn lock<C: ConnectionTrait>(conn: &C, id: &str) -> Result<(), DbErr> {
    repository::Entity::find_by_id(id.to_owned())
        .lock_exclusive()
        .one(conn)
        .await?;
    Ok(())
}

/// Creates an unregistered repository `name` of `urn` unless it exists (safe against a
/// concurrent creator: the unique index decides, nobody fails).
async fn insert_if_absent<C: ConnectionTrait>(
    conn: &C,
    urn: &str,
    name: &str,
    now: i64,
) -> Result<(), DbErr> {
    let row = repository::ActiveModel {
        id: Set(Uuid::new_v4().to_string()),
        code_host_urn: Set(urn.to_owned()),
        name: Set(name.to_owned()),
        external_id: Set(String::new()),
        url: Set(String::new()),
        clone_urls: Set("[]".to_owned()),
        registered: Set(false),
        last_sync_time: Set(None),
        create_time: Set(now),
        update_time: Set(now),
    };
    repository::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([repository::Column::CodeHostUrn, repository::Column::Name])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// The repository an event names, created (unregistered) if `create` and it is new, with what
/// the event says about it (id, URL, clone URLs) brought up to date. `None` when it is unknown
/// and not to be created.
pub async fn seen<C: ConnectionTrait>(
    conn: &C,
    urn: &str,
    seen: &RepositoryRef,
    create: bool,
    now: i64,
) -> Result<Option<repository::Model>, DbErr> {
    let existing = find_locked(conn, urn, &seen.name).await?;
    let model = match existing {
        Some(m) => m,
        None if !create => return Ok(None),
        None => {
            insert_if_absent(conn, urn, &seen.name, now).await?;
            find_locked(conn, urn, &seen.name)
                .await?
                .ok_or_else(|| DbErr::RecordNotFound(seen.name.clone()))?
        }
    };
    let clone_urls = serde_json::to_string(&seen.clone_urls).expect("strings serialise");
    let stale = (!seen.external_id.is_empty() && seen.external_id != model.external_id)
        || (!seen.url.is_empty() && seen.url != model.url)
        || (!seen.clone_urls.is_empty() && clone_urls != model.clone_urls);
    if !stale {
        return Ok(Some(model));
    }
    let mut row: repository::ActiveModel = model.into();
    if !seen.external_id.is_empty() {
        row.external_id = Set(seen.external_id.clone());
    }
    if !seen.url.is_empty() {
        row.url = Set(seen.url.clone());
    }
    if !seen.clone_urls.is_empty() {
        row.clone_urls = Set(clone_urls);
    }
    row.update_time = Set(now);
    sea_orm::ActiveModelTrait::update(row, conn).await.map(Some)
}

pub fn to_repository(m: repository::Model) -> Result<Repository, StoreError> {
    let corrupt = |why: String| StoreError::Corrupt {
        id: m.id.clone(),
        why,
    };
    Ok(Repository {
        id: Uuid::parse_str(&m.id).map_err(|e| corrupt(format!("id: {e}")))?,
        clone_urls: serde_json::from_str(&m.clone_urls)
            .map_err(|e| corrupt(format!("clone_urls: {e}")))?,
        code_host_urn: m.code_host_urn,
        name: m.name,
        external_id: m.external_id,
        url: m.url,
        registered: m.registered,
        create_time: m.create_time,
    })
}
