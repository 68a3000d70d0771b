//! Connecting to the database and bringing its schema up to date. SQLite is opened in WAL mode
//! with `synchronous=FULL` by default (a committed delivery survives a power loss, not just a
//! crash; `--sqlite-synchronous normal` trades the first for speed); PostgreSQL is used as
//! configured.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, ExecResult, QueryResult, SqliteTransactionMode, Statement, TransactionOptions,
    TransactionTrait,
};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::sqlite_writer::SqliteWriter;

/// How long a request waits for a database connection before it is refused (503 at the ingress,
/// `UNAVAILABLE` at the admin API, 503 at `/healthz`). While the database is unreachable every
/// request waits this long (the pool keeps retrying a refused connection until then), so it is
/// kept well inside the 10 s code hosts wait for an answer: a host hears "retry later" instead
/// of timing out.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

pub use crate::config::{POSTGRES_MAX_CONNECTIONS, SQLITE_MAX_READERS};

/// How SQLite makes a commit durable (`PRAGMA synchronous` in WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SqliteDurability {
    /// The log is synced to disk at every commit: a commit survives a power loss.
    #[default]
    Full,
    /// The log is synced only at checkpoints: a commit survives the process dying, not the
    /// machine.
    Normal,
}

/// The database hookgate works on, opened once ([`connect`]; the service opens it in
/// `Application::build`) and handed to every store: the pool, its engine, and on SQLite the one
/// connection every write transaction goes through and the write gate writers queue on (see
/// [`WriteTxn`]). Cheap to clone: clones share all of it.
///
/// It reads as its pool does (it is a [`ConnectionTrait`], and derefs to the pool); writes go
/// through [`Db::begin_write`] and [`Db::begin_background_write`].
#[derive(Clone)]
pub struct Db {
    pool: DatabaseConnection,
    /// SQLite's write connection and gate; `None` on PostgreSQL, whose writers need neither.
    sqlite: Option<Arc<SqliteWrites>>,
}

/// What an SQLite database adds to its pool for writes.
struct SqliteWrites {
    /// The connection every write transaction runs on. SQLite has one writer at a time anyway;
    /// giving all writes one connection also keeps its page cache, which SQLite drops whenever
    /// another connection has written since the last transaction. `None` for a pool opened
    /// elsewhere (`Db::from`), whose writes then take one of its connections.
    writer: Option<DatabaseConnection>,
    /// The connection the intake's batches are written through ([`Db::write_natively`]), on a
    /// thread of its own; `None` for a pool opened elsewhere and for a database in memory.
    native: Option<SqliteWriter>,
    /// The gate this value's writers queue on. Another `Db` on the same file (another process,
    /// or another [`connect`] in this one) has its own: the two then take turns through SQLite's
    /// own lock and busy handler, as separate processes do.
    gate: Arc<Gate>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend())
            .field(
                "writer",
                &self.sqlite.as_ref().is_some_and(|s| s.writer.is_some()),
            )
            .finish_non_exhaustive()
    }
}

impl From<DatabaseConnection> for Db {
    /// A pool opened elsewhere (`sea_orm::Database::connect`), as a `Db`: on SQLite its writes
    /// queue on a gate of their own and run on the pool's connections.
    fn from(pool: DatabaseConnection) -> Self {
        let sqlite = (pool.get_database_backend() == DbBackend::Sqlite).then(|| {
            Arc::new(SqliteWrites {
                writer: None,
                native: None,
                gate: Arc::default(),
            })
        });
        Self { pool, sqlite }
    }
}

impl std::ops::Deref for Db {
    type Target = DatabaseConnection;

    fn deref(&self) -> &DatabaseConnection {
        &self.pool
    }
}

/// A `Db` reads as its pool does, so stores pass it wherever sea-orm takes a connection.
#[tonic::async_trait]
impl ConnectionTrait for Db {
    fn get_database_backend(&self) -> DbBackend {
        self.pool.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.pool.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.pool.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.pool.query_one_raw(stmt).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.pool.query_all_raw(stmt).await
    }
}

impl Db {
    /// The database's engine.
    pub fn backend(&self) -> DbBackend {
        self.pool.get_database_backend()
    }

    /// Whether it is PostgreSQL (else SQLite).
    pub fn is_postgres(&self) -> bool {
        self.backend() == DbBackend::Postgres
    }

    /// The pool reads go through.
    pub fn pool(&self) -> &DatabaseConnection {
        &self.pool
    }

    /// Closes the pool and, for SQLite, its write connections.
    pub async fn close(self) -> Result<(), DbErr> {
        if let Some(native) = self.sqlite.as_ref().and_then(|s| s.native.as_ref()) {
            native.close().await;
        }
        if let Some(writer) = self.sqlite.as_ref().and_then(|s| s.writer.clone()) {
            writer.close().await?;
        }
        self.pool.close().await
    }
}

/// Opens a pool on `url` (sqlite:// or postgres://), with SQLite commits synced at every commit.
pub async fn connect(url: &str) -> anyhow::Result<Db> {
    connect_with(url, SqliteDurability::Full, None).await
}

/// Opens a pool on `url`, SQLite commits made durable as `durability` says, of at most
/// `max_connections` connections ([`POSTGRES_MAX_CONNECTIONS`] or [`SQLITE_MAX_READERS`] when
/// `None`). For SQLite it also opens the connection every write transaction of this pool uses
/// (see [`Db::begin_write`]).
pub async fn connect_with(
    url: &str,
    durability: SqliteDurability,
    max_connections: Option<u32>,
) -> anyhow::Result<Db> {
    let sqlite = url.starts_with("sqlite:");
    if sqlite {
        crate::data_dir::prepare_sqlite_file(url)
            .with_context(|| format!("cannot make the database file of {}", redact_url(url)))?;
    }
    let connections = max_connections.unwrap_or(if sqlite {
        SQLITE_MAX_READERS
    } else {
        POSTGRES_MAX_CONNECTIONS
    });
    let pool = Database::connect(options(url, connections, durability, None))
        .await
        .with_context(|| format!("cannot open the database at {}", redact_url(url)))?;
    if !sqlite {
        return Ok(Db { pool, sqlite: None });
    }
    let mut writer = options(url, 1, durability, Some(WRITER_CACHE_KIB));
    writer
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None);
    let writer = Database::connect(writer)
        .await
        .with_context(|| format!("cannot open the database at {}", redact_url(url)))?;
    let native = match sqlite_file_to_write(url) {
        Some(path) => Some(
            SqliteWriter::open(path, durability, WRITER_CACHE_KIB)
                .with_context(|| format!("cannot open the database at {}", redact_url(url)))?,
        ),
        None => None,
    };
    Ok(Db {
        pool,
        sqlite: Some(Arc::new(SqliteWrites {
            writer: Some(writer),
            native,
            gate: Arc::default(),
        })),
    })
}

/// The file of an SQLite `url` that a connection of our own can write to as the pool does:
/// `None` for a database in memory, or one opened read-only.
fn sqlite_file_to_write(url: &str) -> Option<std::path::PathBuf> {
    let (path, mode) = crate::data_dir::sqlite_file_and_mode(url)?;
    (mode.as_deref() != Some("ro")).then_some(path)
}

/// The pool settings for `url`, with at most `connections` connections (and for SQLite a page
/// cache of `cache_kib`, when given).
fn options(
    url: &str,
    connections: u32,
    durability: SqliteDurability,
    cache_kib: Option<&'static str>,
) -> ConnectOptions {
    let mut options = ConnectOptions::new(url.to_owned());
    // sea-orm's connect timeout is the same pool setting as its acquire timeout.
    options
        .sqlx_logging(false)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .max_connections(connections);
    if url.starts_with("sqlite:") {
        options.map_sqlx_sqlite_opts(move |o| {
            use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
            // A new database gets 8 KiB pages, so a delivery's body (compressed, a few KiB, in
            // `delivery_bodies`) fits one page instead of spilling into an overflow page.
            // An existing database keeps the page size it was made with.
            let o = o
                .page_size(8192)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(match durability {
                    SqliteDurability::Full => SqliteSynchronous::Full,
                    SqliteDurability::Normal => SqliteSynchronous::Normal,
                })
                // Statement journals (a multi-row INSERT in a transaction has one) in memory,
                // not in a temporary file made and deleted each time.
                .pragma("temp_store", "memory")
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            // sea-orm keeps one such function per pool: every SQLite setting is made here.
            match cache_kib {
                Some(kib) => o.pragma("cache_size", kib),
                None => o,
            }
        });
    } else if let Some(port) = postgres_port(url) {
        options.map_sqlx_postgres_pool_opts(move |pool| {
            pool.after_connect(move |_conn, _meta| {
                Box::pin(async move {
                    no_delay_to(port);
                    Ok(())
                })
            })
        });
    }
    options
}

/// The TCP port of a `postgres://` URL (5432 when none is given); `None` for a Unix socket
/// (`?host=/path`).
fn postgres_port(url: &str) -> Option<u16> {
    let parsed = url::Url::parse(url).ok()?;
    if parsed
        .query_pairs()
        .any(|(k, v)| k == "host" && v.starts_with('/'))
    {
        return None;
    }
    Some(parsed.port().unwrap_or(5432))
}

/// Sets `TCP_NODELAY` on every TCP connection of this process to `port`.
///
/// sqlx leaves Nagle's algorithm on for its PostgreSQL connections. A message that takes several
/// TCP segments (a batch of deliveries is) would then have its last one held back until the one
/// before it is acknowledged, which PostgreSQL's side delays by up to 40 ms: a group commit, and
/// every answer waiting on it, would take that long instead of a few milliseconds. sqlx offers no
/// setting and no access to its sockets, so each new connection looks for them among the
/// process's open files (Linux: `/proc/self/fd`); a file that is not such a socket, or is closed
/// meanwhile, is left alone.
fn no_delay_to(port: u16) {
    #[cfg(target_os = "linux")]
    for_each_tcp_socket_to(port, |socket| {
        let _ = socket.set_tcp_nodelay(true);
    });
    #[cfg(not(target_os = "linux"))]
    let _ = port;
}

/// Calls `f` with every TCP socket of this process whose peer's port is `port`.
#[cfg(target_os = "linux")]
fn for_each_tcp_socket_to(port: u16, mut f: impl FnMut(socket2::SockRef<'_>)) {
    use std::os::fd::BorrowedFd;
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    for entry in dir.flatten() {
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if !is_socket {
            continue;
        }
        // SAFETY: the descriptor is only borrowed for the calls below, which do not close it; if
        // it was closed (and its number reused) since it was listed, the calls act on whatever
        // the number names now, and only a TCP socket to `port` is passed on.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let socket = socket2::SockRef::from(&fd);
        let to_port = socket
            .peer_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .is_some_and(|a| a.port() == port);
        if to_port && socket.r#type().is_ok_and(|t| t == socket2::Type::STREAM) {
            f(socket);
        }
    }
}

/// The page cache of the write connection, in KiB as `PRAGMA cache_size` takes it (negative):
/// it holds the pages intake and the worker touch (the ends of the delivery indexes), so a
/// write reads little from the file.
const WRITER_CACHE_KIB: &str = "-16384";

/// A transaction that writes. On SQLite it also holds its [`Db`]'s write gate for its whole
/// life: SQLite takes one writer at a time, and a writer that finds the file locked waits in
/// SQLite's busy handler, which sleeps 1, 2, 5, 10... ms between looks. Writers queued on the
/// gate instead start the moment the previous one ends, so a delivery's commit never waits
/// longer than the transaction ahead of it. On PostgreSQL there is no gate: rows lock one by one.
pub struct WriteTxn {
    txn: DatabaseTransaction,
    /// Held until the transaction ends; `None` on PostgreSQL.
    _gate: Option<OwnedMutexGuard<()>>,
    /// The gate it holds, to see who waits for it; `None` on PostgreSQL.
    gate: Option<Arc<Gate>>,
    /// For a writer that comes first: counted as one until the transaction ends.
    _first: Option<FirstWriter>,
}

/// The write gate of an SQLite [`Db`]: the lock, and who wants it first.
///
/// Writers that answer someone (a delivery waiting for its 2xx, an admin call) come first; the
/// delivery worker's batches, which nobody waits for, take the lock only when none of them has
/// wanted it for a moment ([`Db::begin_background_write`]).
#[derive(Default)]
struct Gate {
    lock: Arc<Mutex<()>>,
    /// Writers that come first, waiting for the lock or holding it.
    first: std::sync::atomic::AtomicUsize,
    /// When one of them last let go of the lock (milliseconds on [`clock`]).
    first_released_ms: std::sync::atomic::AtomicU64,
}

/// A process-wide monotonic clock in milliseconds, for the gate.
fn clock() -> u64 {
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
}

/// One writer that comes first, counted from when it asks for the lock until its transaction
/// ends (or it gives up asking).
struct FirstWriter(Arc<Gate>);

impl FirstWriter {
    fn new(gate: Arc<Gate>) -> Self {
        gate.first.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Self(gate)
    }
}

impl Drop for FirstWriter {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering;
        self.0.first_released_ms.store(clock(), Ordering::Release);
        self.0.first.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How long the worker's writes wait for the writers that come first to leave the lock alone.
/// Past it the worker takes its turn anyway (behind whoever is in the queue then), so a stream
/// of deliveries that never lets up slows processing down but never stops it. It is short: a
/// worker's transaction itself makes way for them once it has had its share
/// (`WorkerConfig::yield_after`), and a longer wait at every turn would leave the worker a
/// trickle of the lock while deliveries keep arriving.
pub const BACKGROUND_WRITE_MAX_DEFER: Duration = Duration::from_millis(1);
/// How long the lock must have been left alone by the writers that come first.
const BACKGROUND_WRITE_QUIET: u64 = 2;

impl std::ops::Deref for WriteTxn {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

/// A `WriteTxn` runs statements as its transaction does, so stores take it wherever they take a
/// connection.
#[tonic::async_trait]
impl ConnectionTrait for WriteTxn {
    fn get_database_backend(&self) -> DbBackend {
        self.txn.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.txn.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.txn.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.txn.query_one_raw(stmt).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.txn.query_all_raw(stmt).await
    }
}

impl WriteTxn {
    /// Whether a writer that answers someone (the ingress, an admin call) waits for this
    /// transaction to end: always `false` on PostgreSQL, whose writers do not wait for each
    /// other's transactions, only rows.
    pub fn others_waiting(&self) -> bool {
        self.gate.as_ref().is_some_and(|gate| {
            let holding = usize::from(self._first.is_some());
            gate.first.load(std::sync::atomic::Ordering::Acquire) > holding
        })
    }

    pub async fn commit(self) -> Result<(), DbErr> {
        self.txn.commit().await
    }

    pub async fn rollback(self) -> Result<(), DbErr> {
        self.txn.rollback().await
    }
}

impl Db {
    /// Begins a transaction that will write. On SQLite it waits for the write gate (see
    /// [`WriteTxn`]) and runs on the write connection, which takes the file's write lock at once
    /// (`BEGIN IMMEDIATE`), so a transaction that reads before it writes is never refused for a
    /// stale snapshot when another connection wrote in between; on PostgreSQL it is an ordinary
    /// transaction.
    pub async fn begin_write(&self) -> Result<WriteTxn, DbErr> {
        let gate = self.gate();
        let (guard, first) = match &gate {
            Some(gate) => {
                let first = FirstWriter::new(gate.clone());
                (Some(gate.lock.clone().lock_owned().await), Some(first))
            }
            None => (None, None),
        };
        self.begin_on_writer(gate, guard, first).await
    }

    /// Like [`Db::begin_write`], for work nobody waits for (the delivery worker's): on SQLite it
    /// first lets every writer that comes first go ahead, until the lock has been left alone for
    /// a moment or [`BACKGROUND_WRITE_MAX_DEFER`] has passed. On PostgreSQL it is
    /// [`Db::begin_write`].
    pub async fn begin_background_write(&self) -> Result<WriteTxn, DbErr> {
        self.begin_background_write_within(BACKGROUND_WRITE_MAX_DEFER)
            .await
    }

    /// [`Db::begin_background_write`], waiting at most `max_defer` for the lock to be left
    /// alone.
    async fn begin_background_write_within(&self, max_defer: Duration) -> Result<WriteTxn, DbErr> {
        use std::sync::atomic::Ordering;
        let Some(gate) = self.gate() else {
            return self.begin_on_writer(None, None, None).await;
        };
        let deadline = tokio::time::Instant::now() + max_defer;
        loop {
            let quiet = gate.first.load(Ordering::Acquire) == 0
                && clock().saturating_sub(gate.first_released_ms.load(Ordering::Acquire))
                    >= BACKGROUND_WRITE_QUIET;
            if quiet || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let guard = gate.lock.clone().lock_owned().await;
        self.begin_on_writer(Some(gate), Some(guard), None).await
    }

    /// Begins the transaction on the write connection, holding `guard` and `first`.
    async fn begin_on_writer(
        &self,
        gate: Option<Arc<Gate>>,
        guard: Option<OwnedMutexGuard<()>>,
        first: Option<FirstWriter>,
    ) -> Result<WriteTxn, DbErr> {
        let writer = self
            .sqlite
            .as_ref()
            .and_then(|s| s.writer.as_ref())
            .unwrap_or(&self.pool);
        let txn = writer
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await?;
        Ok(WriteTxn {
            txn,
            _gate: guard,
            gate,
            _first: first,
        })
    }

    /// On SQLite, runs `statements`, a whole write transaction, on the intake's own write
    /// connection ([`SqliteWriter`]) in one call, as a writer that comes first (see
    /// [`Db::begin_write`]); returns the rows its statements return. Through a [`WriteTxn`]
    /// each statement is a round trip to sqlx's thread for the connection, and each costs thread
    /// wake-ups while the write lock is held. When a statement fails, the transaction is rolled
    /// back.
    ///
    /// `None` on PostgreSQL, for a pool opened elsewhere (`Db::from`) or in memory, which have
    /// no such connection, and for a parameter it does not bind: the caller writes through a
    /// [`WriteTxn`] instead.
    pub async fn write_natively(
        &self,
        statements: Vec<crate::sqlite_writer::Statement>,
    ) -> Option<Result<Vec<crate::sqlite_writer::Row>, DbErr>> {
        let sqlite = self.sqlite.as_ref()?;
        let native = sqlite.native.as_ref()?;
        let first = FirstWriter::new(sqlite.gate.clone());
        let guard = sqlite.gate.lock.clone().lock_owned().await;
        let result = native.write(statements).await;
        drop(guard);
        drop(first);
        result
    }

    /// The write gate; `None` on PostgreSQL.
    fn gate(&self) -> Option<Arc<Gate>> {
        self.sqlite.as_ref().map(|s| s.gate.clone())
    }
}

/// What a PostgreSQL server is set to that hookgate cannot run well with, as warnings for the
/// operator's log (empty on SQLite, and for a server that answers nothing it can read).
///
/// Today that is autovacuum turned off. Every delivery leaves dead row versions behind (it is
/// claimed, then its outcome written), and so do changesets and sync requests: without
/// autovacuum they are never reclaimed and the tables are never analyzed, so every read of the
/// queue wades through more of them and plans made when a table was small are kept as it grows.
/// Processing slows down steadily with nothing else changed.
pub async fn postgres_warnings(db: &Db) -> Vec<String> {
    if !db.is_postgres() {
        return Vec::new();
    }
    let setting = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT setting FROM pg_settings WHERE name = 'autovacuum'",
        ))
        .await
        .ok()
        .flatten()
        .and_then(|row| row.try_get::<String>("", "setting").ok());
    setting
        .and_then(|s| autovacuum_warning(&s))
        .into_iter()
        .collect()
}

/// The warning for PostgreSQL's `autovacuum` setting `setting` (`on` or `off`), if it needs one.
fn autovacuum_warning(setting: &str) -> Option<String> {
    (setting.trim() == "off").then(|| {
        "PostgreSQL's autovacuum is off: the dead rows every delivery leaves (claimed, then \
         finished) are never reclaimed and its tables never analyzed, so processing slows down \
         as they pile up; turn it on (autovacuum = on, the default) or VACUUM ANALYZE regularly"
            .to_owned()
    })
}

/// The PostgreSQL advisory lock replicas take turns migrating under: "hookgate" in ASCII.
const MIGRATION_LOCK: i64 = 0x686f_6f6b_6761_7465;

/// Applies every migration not applied yet. Replicas sharing a PostgreSQL database that start at
/// once take turns: each waits for a transaction-level advisory lock, held on one connection of
/// its pool while the migrations run on others, so the first applies them and the rest find
/// nothing left to do (rather than failing on tables another one just made).
pub async fn migrate(db: &Db) -> anyhow::Result<()> {
    let turn = match db.get_database_backend() {
        DbBackend::Postgres => {
            let txn = db
                .begin()
                .await
                .context("cannot begin a transaction to take the migration lock")?;
            txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
                .await
                .context("cannot take the migration lock")?;
            Some(txn)
        }
        _ => None,
    };
    let migrated = Migrator::up(db.pool(), None)
        .await
        .context("cannot apply database migrations");
    if let Some(txn) = turn {
        // Ending the transaction releases the lock; a failure to end it drops the connection,
        // which releases it too.
        txn.commit().await.ok();
    }
    migrated
}

/// `url` with any password replaced, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("REDACTED"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that answers someone, queued behind the lock's holder after the worker's (within
    /// the worker's wait, here a long one), is let in first; the worker waits while such writers
    /// keep coming, but not past its limit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_workers_writes_let_the_writers_that_answer_someone_go_first() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("gate.db").display());
        let db = connect(&url).await.unwrap();
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let holder = db.begin_write().await.unwrap();

        let background = tokio::spawn({
            let (db, order) = (db.clone(), order.clone());
            async move {
                let txn = db
                    .begin_background_write_within(Duration::from_millis(200))
                    .await
                    .unwrap();
                order.lock().unwrap().push("worker");
                txn.commit().await.unwrap();
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let first = tokio::spawn({
            let (db, order) = (db.clone(), order.clone());
            async move {
                let txn = db.begin_write().await.unwrap();
                order.lock().unwrap().push("ingress");
                txn.commit().await.unwrap();
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        holder.commit().await.unwrap();
        first.await.unwrap();
        background.await.unwrap();
        assert_eq!(*order.lock().unwrap(), ["ingress", "worker"]);

        // Writers that come first without a pause: the worker still gets its turn.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stream = tokio::spawn({
            let (db, stop) = (db.clone(), stop.clone());
            async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let txn = db.begin_write().await.unwrap();
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    txn.commit().await.unwrap();
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let started = std::time::Instant::now();
        let txn = tokio::time::timeout(Duration::from_secs(5), db.begin_background_write())
            .await
            .expect("the worker gets its turn")
            .unwrap();
        eprintln!(
            "the worker waited {:?} while writers kept coming",
            started.elapsed()
        );
        txn.commit().await.unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        stream.await.unwrap();
        db.close().await.unwrap();
    }

    /// The intake's own SQLite connection ([`Db::write_natively`]) stores each parameter as the
    /// pool stores it (the same type in the file), returns the rows its statements return by
    /// column, rolls a whole transaction back when one statement fails (with the error
    /// classified as the pool's), goes on writing afterwards, and once closed answers as a
    /// database that is away.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_intakes_connection_binds_returns_and_fails_as_the_pool_does() {
        use sea_orm::sea_query::Value;

        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("n.db").display());
        let db = connect(&url).await.unwrap();
        db.execute_unprepared(
            "CREATE TABLE t (via TEXT NOT NULL, b, i, s, y, n, CHECK (i IS NULL OR i < 100))",
        )
        .await
        .unwrap();
        let values = || {
            vec![
                Value::Bool(Some(true)),
                Value::BigInt(Some(7)),
                Value::String(Some("x".to_owned())),
                Value::Bytes(Some(vec![0, 1, 2])),
                Value::String(None),
            ]
        };
        let insert = |via: &str| {
            format!(
                "INSERT INTO t (via, b, i, s, y, n) VALUES ('{via}', ?, ?, ?, ?, ?) \
                 RETURNING i AS got, s"
            )
        };
        db.execute_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            insert("pool"),
            values(),
        ))
        .await
        .unwrap();
        let rows = db
            .write_natively(vec![(insert("native"), values())])
            .await
            .expect("a file database has the connection")
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            rows[0].get("got"),
            Some(&rusqlite::types::Value::Integer(7))
        );
        assert_eq!(rows[0].text("s"), Some("x"));
        let stored = |via: &'static str| {
            let db = db.clone();
            async move {
                db.query_one_raw(Statement::from_string(
                    DbBackend::Sqlite,
                    format!(
                        "SELECT typeof(b) || typeof(i) || typeof(s) || typeof(y) || typeof(n) \
                         || ':' || b || i || s || hex(y) AS seen FROM t WHERE via = '{via}'"
                    ),
                ))
                .await
                .unwrap()
                .unwrap()
                .try_get::<String>("", "seen")
                .unwrap()
            }
        };
        assert_eq!(stored("native").await, stored("pool").await);
        assert_eq!(
            stored("native").await,
            "integerintegertextblobnull:17x000102"
        );

        // The second statement breaks the CHECK: the first one's row is not kept either.
        let mut refused = values();
        refused[1] = Value::BigInt(Some(500));
        let err = db
            .write_natively(vec![
                (insert("first"), values()),
                (insert("second"), refused),
            ])
            .await
            .unwrap()
            .expect_err("the CHECK refuses the second row");
        assert_eq!(crate::store::Failure::of(&err), crate::store::Failure::Data);
        assert!(err.to_string().contains("CHECK constraint failed"), "{err}");
        let count = |db: Db| async move {
            db.query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT COUNT(*) AS n FROM t",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get::<i64>("", "n")
            .unwrap()
        };
        assert_eq!(count(db.clone()).await, 2);
        db.write_natively(vec![(insert("after"), values())])
            .await
            .unwrap()
            .expect("the connection is not left in the failed transaction");
        assert_eq!(count(db.clone()).await, 3);

        let closed = db.clone();
        db.close().await.unwrap();
        let err = closed
            .write_natively(vec![(insert("closed"), values())])
            .await
            .unwrap()
            .expect_err("a closed connection writes nothing");
        assert_eq!(
            crate::store::Failure::of(&err),
            crate::store::Failure::Transient
        );

        // In memory there is no file for a second connection to open: the caller writes another
        // way.
        let memory = connect("sqlite::memory:").await.unwrap();
        assert!(memory.write_natively(vec![]).await.is_none());
    }

    /// Two `Db` values on one SQLite file (two processes, or two [`connect`]s in one) each have
    /// their own gate: a writer of one waits for the other's transaction in SQLite's busy
    /// handler rather than being refused, and writers of both, side by side, all commit. A pool
    /// opened elsewhere (`Db::from`) writes on its own connections.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_dbs_on_one_sqlite_file_take_turns_through_sqlites_lock() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("two.db").display());
        let a = connect(&url).await.unwrap();
        let b = connect(&url).await.unwrap();
        let c = Db::from(Database::connect(url.as_str()).await.unwrap());
        assert!(c.sqlite.as_ref().is_some_and(|s| s.writer.is_none()));
        a.execute_unprepared("CREATE TABLE t (n INTEGER NOT NULL)")
            .await
            .unwrap();

        let held = a.begin_write().await.unwrap();
        held.execute_unprepared("INSERT INTO t VALUES (0)")
            .await
            .unwrap();
        let waiting = tokio::spawn({
            let b = b.clone();
            async move {
                let txn = b.begin_write().await?;
                txn.execute_unprepared("INSERT INTO t VALUES (1)").await?;
                txn.commit().await
            }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!waiting.is_finished(), "b wrote while a held the lock");
        held.commit().await.unwrap();
        waiting
            .await
            .unwrap()
            .expect("b waits for a, and is not refused");

        let writers: Vec<_> = [a.clone(), b.clone(), c.clone()]
            .into_iter()
            .enumerate()
            .map(|(i, db)| {
                tokio::spawn(async move {
                    for n in 0..30 {
                        let txn = db.begin_write().await?;
                        txn.execute_unprepared(&format!(
                            "INSERT INTO t VALUES ({})",
                            10 + i * 100 + n
                        ))
                        .await?;
                        txn.commit().await?;
                    }
                    Ok::<_, DbErr>(())
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap().expect("every write commits");
        }
        let rows: i64 = a
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT COUNT(*) FROM t",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index(0)
            .unwrap();
        assert_eq!(rows, 2 + 3 * 30);
        for db in [a, b, c] {
            db.close().await.unwrap();
        }
    }

    /// The PostgreSQL server the tests use (`HOOKGATE_TEST_DATABASE_URL`); `None` when it is not
    /// set, which CI does not allow.
    fn postgres_test_url() -> Option<String> {
        match std::env::var("HOOKGATE_TEST_DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => Some(url),
            _ if std::env::var_os("CI").is_some() => {
                panic!("HOOKGATE_TEST_DATABASE_URL is not set: CI must run the PostgreSQL tests")
            }
            _ => None,
        }
    }

    /// The warning for a server with autovacuum off, and none when it is on; on a real server,
    /// a warning exactly when its `autovacuum` is off; none on SQLite.
    #[tokio::test]
    async fn a_postgresql_server_with_autovacuum_off_is_warned_about() {
        assert!(
            autovacuum_warning("off")
                .is_some_and(|w| w.contains("autovacuum is off") && w.contains("VACUUM ANALYZE"))
        );
        assert_eq!(autovacuum_warning("on"), None);
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("w.db").display());
        assert!(
            postgres_warnings(&connect(&url).await.unwrap())
                .await
                .is_empty()
        );

        let Some(url) = postgres_test_url() else {
            return eprintln!("skipped: HOOKGATE_TEST_DATABASE_URL is not set");
        };
        let db = connect(&url).await.unwrap();
        let on = db
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SHOW autovacuum",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get::<String>("", "autovacuum")
            .unwrap();
        let warnings = postgres_warnings(&db).await;
        eprintln!("this server's autovacuum is {on}: {warnings:?}");
        assert_eq!(warnings.len(), usize::from(on == "off"), "{warnings:?}");
        db.close().await.unwrap();
    }

    /// Every connection of a PostgreSQL pool has Nagle's algorithm off (see [`no_delay_to`]).
    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgresql_connections_are_made_with_tcp_nodelay() {
        let Some(url) = postgres_test_url() else {
            return eprintln!("skipped: HOOKGATE_TEST_DATABASE_URL is not set");
        };
        let Some(port) = postgres_port(&url) else {
            return eprintln!("skipped: the test database is reached over a Unix socket");
        };
        let db = connect(&url).await.unwrap();
        // Several connections at once, so the pool opens more than its first.
        let mut busy = Vec::new();
        for _ in 0..4 {
            let db = db.clone();
            busy.push(tokio::spawn(async move {
                db.execute_unprepared("SELECT pg_sleep(0.1)").await.unwrap();
            }));
        }
        for b in busy {
            b.await.unwrap();
        }
        let (mut seen, mut delayed) = (0, 0);
        for_each_tcp_socket_to(port, |socket| {
            seen += 1;
            if !socket.tcp_nodelay().unwrap() {
                delayed += 1;
            }
        });
        assert!(seen >= 2, "{seen} connections to PostgreSQL were found");
        assert_eq!(
            delayed, 0,
            "{delayed} of {seen} connections without TCP_NODELAY"
        );
        db.close().await.ok();
    }

    #[test]
    fn passwords_are_redacted_from_database_urls() {
        let shown = redact_url("postgres://app:hunter2@db.example.com/hookgate");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("db.example.com"));
    }
}
