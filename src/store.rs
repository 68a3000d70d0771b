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
    /// The database cannot do it now (unreachable, out of resources, shutting down, busy, or in
    /// conflict with a concurrent transaction): worth retrying ([`Failure::Transient`]).
    #[error("the database is unavailable: {0}")]
    Unavailable(DbErr),
    /// The database refused the values written (a data exception or a constraint): the
    /// write's own fault, which retrying it as it is cannot cure ([`Failure::Data`]).
    #[error("the database refused a value: {0}")]
    Refused(DbErr),
    /// Any other database failure, which retrying will not cure either.
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
        match Failure::of(&err) {
            Failure::Transient => StoreError::Unavailable(err),
            Failure::Data => StoreError::Refused(err),
            Failure::Permanent => StoreError::Database(err),
        }
    }
}

/// What kind of failure a database error is, read the way its engine reports it: PostgreSQL by
/// SQLSTATE, SQLite by its (extended) result code. The two are never read with each other's
/// rules (a PostgreSQL `22021` is not SQLite's busy code because `22021 & 0xff == 5`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Cannot be done now, may be later: a lost or refused connection, an exhausted pool, a
    /// server short of resources or shutting down, a busy SQLite file, a serialization failure
    /// or deadlock.
    Transient,
    /// The values written cannot be stored as they are: PostgreSQL classes 22 (data exception,
    /// such as a NUL in text) and 23 (integrity constraint); SQLite's constraint, too-big and
    /// mismatch codes.
    Data,
    /// Anything else.
    Permanent,
}

impl Failure {
    /// Classifies a database error.
    pub fn of(err: &DbErr) -> Self {
        use sea_orm::{RuntimeErr, sqlx};
        let e = match err {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return Failure::Transient,
            DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => e,
            _ => return Failure::Permanent,
        };
        match e.as_ref() {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => Failure::Transient,
            sqlx::Error::Database(db) => {
                if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                    Self::of_sqlstate(pg.code())
                } else if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
                    || db
                        .try_downcast_ref::<crate::sqlite_writer::SqliteError>()
                        .is_some()
                {
                    db.code()
                        .and_then(|code| code.parse().ok())
                        .map_or(Failure::Permanent, Self::of_sqlite_code)
                } else {
                    Failure::Permanent
                }
            }
            _ => Failure::Permanent,
        }
    }

    /// A PostgreSQL SQLSTATE: class 08 (connection exception), 53 (insufficient resources),
    /// 57P01-57P04 (shutdown, cannot connect now), 40001 (serialization failure) and 40P01
    /// (deadlock) are transient; classes 22 and 23 are the data's.
    pub fn of_sqlstate(code: &str) -> Self {
        let class = code.get(..2).unwrap_or_default();
        match (class, code) {
            ("08" | "53", _) | (_, "57P01" | "57P02" | "57P03" | "57P04" | "40001" | "40P01") => {
                Failure::Transient
            }
            ("22" | "23", _) => Failure::Data,
            _ => Failure::Permanent,
        }
    }

    /// A SQLite result code, primary or extended (the primary code is its low byte):
    /// `SQLITE_BUSY`, `SQLITE_LOCKED`, `SQLITE_NOMEM` and `SQLITE_FULL` are transient;
    /// `SQLITE_TOOBIG`, `SQLITE_CONSTRAINT` and `SQLITE_MISMATCH` are the data's.
    pub fn of_sqlite_code(code: i32) -> Self {
        match code & 0xff {
            5 | 6 | 7 | 13 => Failure::Transient,
            18..=20 => Failure::Data,
            _ => Failure::Permanent,
        }
    }
}

/// Keyset pagination, shared by every listing: rows are ordered by `(key, id)` (a time, then
/// the UUID that breaks ties), and a page starts after the last row of the
/// previous one.
pub mod paging {
    use sea_orm::{
        ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
        QueryOrder, QuerySelect, Select,
    };
    use uuid::Uuid;

    use crate::time::Timestamp;

    /// How a listing is sorted: by a time column, then by the id column that breaks ties, one
    /// way or the other.
    #[derive(Debug, Clone, Copy)]
    pub struct Sort<K, I> {
        key: K,
        id: I,
        newest_first: bool,
    }

    impl<K: ColumnTrait, I: ColumnTrait> Sort<K, I> {
        /// Oldest first by `key`, then by `id`.
        pub fn oldest_first(key: K, id: I) -> Self {
            Self {
                key,
                id,
                newest_first: false,
            }
        }

        /// Newest first by `key`, then by `id`.
        pub fn newest_first(key: K, id: I) -> Self {
            Self {
                key,
                id,
                newest_first: true,
            }
        }

        /// The condition "comes after the row `(key, id)`" in this order.
        pub fn after(&self, cursor: (Timestamp, Uuid)) -> Condition {
            let (k, i) = cursor;
            let i = i.to_string();
            let (key, id) = (self.key, self.id);
            if self.newest_first {
                Condition::any()
                    .add(key.lt(k))
                    .add(Condition::all().add(key.eq(k)).add(id.lt(i)))
            } else {
                Condition::any()
                    .add(key.gt(k))
                    .add(Condition::all().add(key.eq(k)).add(id.gt(i)))
            }
        }

        /// `query` in this order.
        pub fn order<E: EntityTrait>(&self, query: Select<E>) -> Select<E> {
            if self.newest_first {
                query.order_by_desc(self.key).order_by_desc(self.id)
            } else {
                query.order_by_asc(self.key).order_by_asc(self.id)
            }
        }
    }

    /// One page of a listing.
    #[derive(Debug)]
    pub struct Page<M> {
        pub rows: Vec<M>,
        /// Whether another page follows.
        pub has_more: bool,
        /// The rows of the whole listing, on every page (0 when not counted).
        pub total_size: u64,
    }

    /// One page of `query`: at most `limit` rows after `cursor`, sorted by `sort`, and whether
    /// more follow.
    pub async fn page<E, K, I, C>(
        query: Select<E>,
        sort: Sort<K, I>,
        cursor: Option<(Timestamp, Uuid)>,
        limit: u64,
        conn: &C,
    ) -> Result<Page<E::Model>, DbErr>
    where
        E: EntityTrait,
        K: ColumnTrait,
        I: ColumnTrait,
        C: ConnectionTrait,
    {
        let mut query = query;
        if let Some(cursor) = cursor {
            query = query.filter(sort.after(cursor));
        }
        // One more than asked tells whether another page follows.
        let mut rows = sort.order(query).limit(limit + 1).all(conn).await?;
        let has_more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        Ok(Page {
            rows,
            has_more,
            total_size: 0,
        })
    }

    /// [`page`], with the number of rows `query` matches on every page.
    pub async fn counted_page<E, K, I, C>(
        query: Select<E>,
        sort: Sort<K, I>,
        cursor: Option<(Timestamp, Uuid)>,
        limit: u64,
        conn: &C,
    ) -> Result<Page<E::Model>, DbErr>
    where
        E: EntityTrait,
        E::Model: Sync,
        K: ColumnTrait,
        I: ColumnTrait,
        C: ConnectionTrait,
    {
        let total_size = query.clone().count(conn).await?;
        let page = page(query, sort, cursor, limit, conn).await?;
        Ok(Page { total_size, ..page })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_errors_are_classified_by_sqlstate_class() {
        for code in [
            "08006", "08001", "53300", "53100", "57P01", "57P03", "40001", "40P01",
        ] {
            assert_eq!(Failure::of_sqlstate(code), Failure::Transient, "{code}");
        }
        // 22021 (a NUL in text) is not SQLite's busy code, though 22021 & 0xff == 5.
        for code in ["22021", "22001", "22P02", "23505", "23514"] {
            assert_eq!(Failure::of_sqlstate(code), Failure::Data, "{code}");
        }
        for code in ["42P01", "42703", "XX000", "57014", ""] {
            assert_eq!(Failure::of_sqlstate(code), Failure::Permanent, "{code}");
        }
    }

    #[test]
    fn sqlite_errors_are_classified_by_primary_code_of_the_extended_one() {
        // SQLITE_BUSY, SQLITE_BUSY_SNAPSHOT, SQLITE_LOCKED, SQLITE_LOCKED_SHAREDCACHE, SQLITE_FULL.
        for code in [5, 517, 6, 262, 13] {
            assert_eq!(Failure::of_sqlite_code(code), Failure::Transient, "{code}");
        }
        // SQLITE_CONSTRAINT_UNIQUE, _CHECK, _TRIGGER, SQLITE_TOOBIG.
        for code in [2067, 275, 1811, 18] {
            assert_eq!(Failure::of_sqlite_code(code), Failure::Data, "{code}");
        }
        // SQLITE_ERROR, SQLITE_CORRUPT, SQLITE_READONLY.
        for code in [1, 11, 8] {
            assert_eq!(Failure::of_sqlite_code(code), Failure::Permanent, "{code}");
        }
    }
}
