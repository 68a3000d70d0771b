//! The connection the intake's batches are written through on SQLite: a connection of its own,
//! driven directly (rusqlite, on the same SQLite library sqlx links), on a thread of its own.
//!
//! A batch goes to the thread as one message and its answer comes back as one: the thread runs
//! `BEGIN IMMEDIATE`, the batch's statements (each prepared once and kept) and `COMMIT` without
//! waking anyone in between. Through sqlx, every statement's result (and every row) of the same
//! batch was a message of its own to the waiting task, each a thread wake-up while the write lock
//! was held: at a steady 1,000 deliveries a second that was most of a delivery's CPU time.
//!
//! It is one more write connection on the file beside the pool's: whoever holds the write gate
//! (`db::Db`) writes, so the two never wait for each other in SQLite's busy handler. Its settings
//! are those `db::options` gives the pool's write connection.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags};
use sea_orm::sea_query::Value;
use sea_orm::{DbErr, RuntimeErr};
use tokio::sync::oneshot;

use crate::db::SqliteDurability;

/// One statement of a batch: its SQL and its parameters, in order.
pub type Statement = (String, Vec<Value>);

/// A row a statement returned: its columns' names and values.
#[derive(Debug, Clone)]
pub struct Row {
    columns: std::sync::Arc<[String]>,
    values: Vec<SqlValue>,
}

impl Row {
    /// The value of the column named `name`, if the row has one.
    pub fn get(&self, name: &str) -> Option<&SqlValue> {
        let at = self.columns.iter().position(|c| c == name)?;
        self.values.get(at)
    }

    /// The text of the column named `name`; `None` if it has none or it is not text.
    pub fn text(&self, name: &str) -> Option<&str> {
        match self.get(name)? {
            SqlValue::Text(t) => Some(t),
            _ => None,
        }
    }
}

/// What the thread is asked to do.
enum Job {
    /// Runs a batch in one transaction, answers with every row its statements returned.
    Write {
        statements: Vec<(String, Vec<SqlValue>)>,
        done: oneshot::Sender<Result<Vec<Row>, DbErr>>,
    },
    /// Closes the connection and ends the thread.
    Close(oneshot::Sender<()>),
}

/// The handle on the thread; cheap to share. When it is dropped the thread closes its
/// connection and ends.
#[derive(Debug)]
pub struct SqliteWriter {
    jobs: mpsc::Sender<Job>,
}

/// How many prepared statements the connection keeps: a batch's statements differ by how many
/// rows they carry, and the sizes seen under a steady load are few.
const STATEMENT_CACHE: usize = 128;

impl SqliteWriter {
    /// Opens the database file at `path` (made already, by the pool) and starts its thread.
    pub fn open(
        path: PathBuf,
        durability: SqliteDurability,
        cache_kib: &str,
    ) -> Result<Self, DbErr> {
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(to_db_err)?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(to_db_err)?;
        let synchronous = match durability {
            SqliteDurability::Full => "FULL",
            SqliteDurability::Normal => "NORMAL",
        };
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; \
             PRAGMA temp_store = memory; PRAGMA foreign_keys = ON; PRAGMA cache_size = {cache_kib};"
        ))
        .map_err(to_db_err)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let (jobs, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("hookgate-sqlite-writer".to_owned())
            .spawn(move || run(conn, queue))
            .map_err(|e| DbErr::Custom(format!("cannot start the SQLite writer thread: {e}")))?;
        Ok(Self { jobs })
    }

    /// Runs `statements` in one transaction (`BEGIN IMMEDIATE` ... `COMMIT`) and returns the rows
    /// they returned, in order. When a statement fails, the transaction is rolled back and its
    /// error returned. `None` when a parameter has a type this connection does not bind as sqlx
    /// would (the caller writes another way).
    pub async fn write(&self, statements: Vec<Statement>) -> Option<Result<Vec<Row>, DbErr>> {
        let mut converted = Vec::with_capacity(statements.len());
        for (sql, values) in statements {
            let values = values
                .into_iter()
                .map(to_sql_value)
                .collect::<Option<Vec<_>>>()?;
            converted.push((sql, values));
        }
        let (done, answer) = oneshot::channel();
        let sent = self.jobs.send(Job::Write {
            statements: converted,
            done,
        });
        if sent.is_err() {
            return Some(Err(closed()));
        }
        Some(answer.await.unwrap_or_else(|_| Err(closed())))
    }

    /// Closes the connection; later writes fail as if the database were away.
    pub async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.jobs.send(Job::Close(done)).is_ok() {
            let _ = closed.await;
        }
    }
}

/// The thread: one job after another until told to close or every handle is gone.
fn run(conn: Connection, queue: mpsc::Receiver<Job>) {
    while let Ok(job) = queue.recv() {
        match job {
            Job::Write { statements, done } => {
                let _ = done.send(write(&conn, &statements).map_err(to_db_err));
            }
            Job::Close(done) => {
                drop(conn);
                let _ = done.send(());
                return;
            }
        }
    }
}

/// One transaction: every statement in order, then the commit; rolled back on the first error.
fn write(conn: &Connection, statements: &[(String, Vec<SqlValue>)]) -> rusqlite::Result<Vec<Row>> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = statements
        .iter()
        .try_fold(Vec::new(), |mut rows, (sql, values)| {
            run_statement(conn, sql, values, &mut rows)?;
            Ok(rows)
        })
        .and_then(|rows| conn.execute_batch("COMMIT").map(|()| rows));
    if result.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}

/// Runs one statement, adding the rows it returns to `rows`.
fn run_statement(
    conn: &Connection,
    sql: &str,
    values: &[SqlValue],
    rows: &mut Vec<Row>,
) -> rusqlite::Result<()> {
    let mut statement = conn.prepare_cached(sql)?;
    let columns: std::sync::Arc<[String]> = statement
        .column_names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let mut result = statement.query(rusqlite::params_from_iter(values))?;
    while let Some(row) = result.next()? {
        let values = (0..columns.len())
            .map(|i| row.get::<_, SqlValue>(i))
            .collect::<rusqlite::Result<_>>()?;
        rows.push(Row {
            columns: columns.clone(),
            values,
        });
    }
    Ok(())
}

/// A parameter as sqlx binds it for SQLite (`sea-query-sqlx`); `None` for a type it binds in a
/// way not repeated here.
fn to_sql_value(value: Value) -> Option<SqlValue> {
    fn or_null<T>(v: Option<T>, f: impl FnOnce(T) -> SqlValue) -> SqlValue {
        v.map_or(SqlValue::Null, f)
    }
    Some(match value {
        Value::Bool(v) => or_null(v, |b| SqlValue::Integer(b.into())),
        Value::TinyInt(v) => or_null(v, |i| SqlValue::Integer(i.into())),
        Value::SmallInt(v) => or_null(v, |i| SqlValue::Integer(i.into())),
        Value::Int(v) => or_null(v, |i| SqlValue::Integer(i.into())),
        Value::BigInt(v) => or_null(v, SqlValue::Integer),
        Value::TinyUnsigned(v) => or_null(v, |i| SqlValue::Integer(i.into())),
        Value::SmallUnsigned(v) => or_null(v, |i| SqlValue::Integer(i.into())),
        Value::Unsigned(v) => or_null(v, |i| SqlValue::Integer(i.into())),
        Value::BigUnsigned(v) => match v {
            None => SqlValue::Null,
            Some(i) => SqlValue::Integer(i64::try_from(i).ok()?),
        },
        Value::Float(v) => or_null(v, |f| SqlValue::Real(f.into())),
        Value::Double(v) => or_null(v, SqlValue::Real),
        Value::String(v) => or_null(v, SqlValue::Text),
        Value::Char(v) => or_null(v, |c| SqlValue::Text(c.to_string())),
        Value::Bytes(v) => or_null(v, SqlValue::Blob),
        Value::Json(v) => or_null(v, |j| SqlValue::Text(j.to_string())),
        _ => return None,
    })
}

/// The writer is closed (the service is shutting down): as a lost connection, worth retrying.
fn closed() -> DbErr {
    DbErr::Conn(RuntimeErr::Internal(
        "the SQLite write connection is closed".to_owned(),
    ))
}

/// An error of this connection, as the pool's own SQLite errors reach the stores: a database
/// error with SQLite's extended result code, which `store::Failure` classifies.
fn to_db_err(err: rusqlite::Error) -> DbErr {
    let native = match err {
        rusqlite::Error::SqliteFailure(e, message) => SqliteError {
            code: e.extended_code,
            message: message.unwrap_or_else(|| e.to_string()),
        },
        other => return DbErr::Custom(format!("SQLite: {other}")),
    };
    let err = sea_orm::sqlx::Error::Database(Box::new(native));
    DbErr::Exec(RuntimeErr::SqlxError(std::sync::Arc::new(err)))
}

/// An SQLite error of this connection: its extended result code and message.
#[derive(Debug, thiserror::Error)]
#[error("(code: {code}) {message}")]
pub struct SqliteError {
    code: i32,
    message: String,
}

impl sea_orm::sqlx::error::DatabaseError for SqliteError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Owned(self.code.to_string()))
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> sea_orm::sqlx::error::ErrorKind {
        use sea_orm::sqlx::error::ErrorKind;
        // SQLite's extended constraint codes: UNIQUE, PRIMARY KEY, FOREIGN KEY, NOT NULL, CHECK.
        match self.code {
            2067 | 1555 => ErrorKind::UniqueViolation,
            787 => ErrorKind::ForeignKeyViolation,
            1299 => ErrorKind::NotNullViolation,
            275 => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Failure;

    /// SQLite's codes reach the stores classified as the pool's are: busy and locked (a writer
    /// of another process) are worth retrying, a constraint is the data's.
    #[test]
    fn errors_are_classified_by_sqlites_extended_code() {
        let of = |code| {
            Failure::of(&to_db_err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(code),
                None,
            )))
        };
        assert_eq!(of(rusqlite::ffi::SQLITE_BUSY), Failure::Transient);
        assert_eq!(of(rusqlite::ffi::SQLITE_BUSY_SNAPSHOT), Failure::Transient);
        assert_eq!(of(rusqlite::ffi::SQLITE_LOCKED), Failure::Transient);
        assert_eq!(of(rusqlite::ffi::SQLITE_FULL), Failure::Transient);
        assert_eq!(of(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE), Failure::Data);
        assert_eq!(
            of(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY),
            Failure::Data
        );
        assert_eq!(of(rusqlite::ffi::SQLITE_CORRUPT), Failure::Permanent);
    }
}
