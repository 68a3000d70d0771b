//! What can go wrong when a store talks to the database, shared by every store so that the admin
//! API and the ingress map it to status codes once.

use sea_orm::DbErr;
use uuid::Uuid;

/// Why a store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// `what` is the kind of thing (`receiver`, `delivery`).
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: Uuid },
    #[error("a receiver named {0:?} already exists: choose another name")]
    NameTaken(String),
    /// A repository is registered under a name that a repository with another host id holds.
    #[error(
        "repository {name} of {urn} is known with external_id {held_by}, not {given}: register it without external_id, or with the id its host gives it"
    )]
    RepositoryIdMismatch {
        urn: String,
        name: String,
        held_by: String,
        given: String,
    },
    /// The database could not be reached or did not answer in time: worth retrying.
    #[error("the database is unavailable: {0}")]
    Unavailable(DbErr),
    #[error("database error: {0}")]
    Database(DbErr),
    /// A receiver's secret cannot be opened, or sealed for storing, with this process's secret
    /// key.
    #[error("the secret of receiver {id} cannot be used: {source}")]
    SecretKey {
        id: String,
        source: crate::secret_key::SealError,
    },
    /// A stored row that no version of hookgate writes.
    #[error("stored row {id} is corrupt: {why}")]
    Corrupt { id: String, why: String },
}

impl StoreError {
    pub fn not_found(what: &'static str, id: Uuid) -> Self {
        StoreError::NotFound { what, id }
    }
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
                    // SQLite: SQLITE_BUSY (5) / SQLITE_LOCKED (6) and their extended codes;
                    // PostgreSQL: class 08 (connection exception) and 57P (shutdown).
                    let code = db.code().unwrap_or_default();
                    let sqlite_busy = code
                        .parse::<i32>()
                        .map(|c| c & 0xff == 5 || c & 0xff == 6)
                        .unwrap_or(false);
                    sqlite_busy || code.starts_with("08") || code.starts_with("57P")
                }
                _ => false,
            }
        }
        _ => false,
    }
}

/// Keyset pagination, shared by every listing: rows are ordered by `(key, id)` (a time in
/// microseconds, then the UUID that breaks ties), and a page starts after the last row of the
/// previous one.
pub mod paging {
    use sea_orm::{
        ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
        QuerySelect, Select,
    };
    use uuid::Uuid;

    /// Which way a listing runs.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Order {
        /// Oldest first.
        Ascending,
        /// Newest first.
        Descending,
    }

    /// The condition "comes after the row `(key, id)`" in a listing in `order`.
    pub fn after<K: ColumnTrait, I: ColumnTrait>(
        key: K,
        id: I,
        cursor: (i64, Uuid),
        order: Order,
    ) -> Condition {
        let (k, i) = cursor;
        let i = i.to_string();
        match order {
            Order::Ascending => Condition::any()
                .add(key.gt(k))
                .add(Condition::all().add(key.eq(k)).add(id.gt(i))),
            Order::Descending => Condition::any()
                .add(key.lt(k))
                .add(Condition::all().add(key.eq(k)).add(id.lt(i))),
        }
    }

    /// One page of `query`: at most `limit` rows after `cursor`, in `order`, and whether more
    /// follow.
    pub async fn page<E, K, I, C>(
        query: Select<E>,
        key: K,
        id: I,
        cursor: Option<(i64, Uuid)>,
        order: Order,
        limit: u64,
        conn: &C,
    ) -> Result<(Vec<E::Model>, bool), DbErr>
    where
        E: EntityTrait,
        K: ColumnTrait,
        I: ColumnTrait,
        C: ConnectionTrait,
    {
        let mut query = query;
        if let Some(cursor) = cursor {
            query = query.filter(after(key, id, cursor, order));
        }
        query = match order {
            Order::Ascending => query.order_by_asc(key).order_by_asc(id),
            Order::Descending => query.order_by_desc(key).order_by_desc(id),
        };
        // One more than asked tells whether another page follows.
        let mut rows = query.limit(limit + 1).all(conn).await?;
        let has_more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        Ok((rows, has_more))
    }
}
