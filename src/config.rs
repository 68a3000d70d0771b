//! Every setting hookgate has: its flag, its environment variable and its default, in one place.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;

/// The default cap on a delivery's body (`--max-body-bytes`): 25 MiB, GitHub's own cap.
pub const DEFAULT_MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

/// The default byte budget of one claim of the worker (`--worker-batch-bytes`): 8 MiB, more
/// than 128 of GitHub's 28 KB `pull_request.opened` fixture (3.6 MB), so it bounds big bodies
/// and leaves the count to bound the usual ones.
pub const DEFAULT_WORKER_BATCH_BYTES: u64 = 8 * 1024 * 1024;

/// hookgate: a webhook receiver for code hosts (GitHub, GitLab, Bitbucket Server/Data Center,
/// Bitbucket Cloud). Admins register receivers over gRPC; code hosts deliver to their URLs.
#[derive(Debug, Parser)]
#[command(name = "hookgate", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

/// What to do; `serve` when none is given.
#[derive(Debug, Clone, Subcommand, PartialEq, Eq)]
pub enum Command {
    /// Run the webhook ingress and the admin API (the default).
    Serve,
    /// Apply database migrations, then exit.
    Migrate,
    /// Re-encrypt every receiver secret under a new key, in one transaction, then exit. Run it
    /// with every replica stopped; the current key is --secret-key-file, else
    /// `<data-dir>/secret.key`.
    RotateKey {
        /// The new key: a file holding 32 random bytes in base64 (`openssl rand -base64 32`).
        #[arg(long)]
        new_key_file: PathBuf,
    },
    /// The admin CLI: receiver, delivery, changeset, repository, sync and watch speak the gRPC
    /// admin API at --grpc-addr.
    #[command(flatten)]
    Admin(crate::cli::AdminCommand),
}

/// The service's settings. Every flag may come from its environment variable instead.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Where the webhook ingress (and /healthz) listens.
    #[arg(
        long,
        env = "HOOKGATE_HTTP_ADDR",
        default_value = "0.0.0.0:8080",
        global = true
    )]
    pub http_addr: SocketAddr,

    /// Where the gRPC admin API listens. A non-loopback address needs --admin-token.
    #[arg(
        long,
        env = "HOOKGATE_GRPC_ADDR",
        default_value = "127.0.0.1:50051",
        global = true
    )]
    pub grpc_addr: SocketAddr,

    /// Where GET /metrics (Prometheus' text format) is served. Loopback by default: the metrics
    /// name every receiver's id and code host kind, which is no business of whoever can reach
    /// the ingress. Port 0 picks a free port (logged as metrics_addr).
    #[arg(
        long,
        env = "HOOKGATE_METRICS_ADDR",
        default_value = "127.0.0.1:9464",
        global = true
    )]
    pub metrics_addr: SocketAddr,

    /// Where the web console (pages for the admin, beside the gRPC API) listens, or `off`.
    /// Loopback by default; a non-loopback address needs --admin-token, which the console then
    /// asks for once (a login form). Port 0 picks a free port (logged as console_addr).
    #[arg(
        long,
        env = "HOOKGATE_CONSOLE_ADDR",
        default_value = "127.0.0.1:8081",
        global = true
    )]
    pub console_addr: ConsoleAddr,

    /// Serve GET /metrics on the ingress (--http-addr) as well, to anyone who can reach it: only
    /// for a scraper that can reach nothing else.
    #[arg(long, env = "HOOKGATE_METRICS_ON_INGRESS", global = true)]
    pub metrics_on_ingress: bool,

    /// The base of every receiver's URL, as code hosts reach this service
    /// (e.g. `https://hooks.example.com`). Default: `http://<http-addr>`.
    #[arg(long, env = "HOOKGATE_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,

    /// Where hookgate keeps its files (the SQLite database by default). Created if missing.
    #[arg(
        long,
        env = "HOOKGATE_DATA_DIR",
        default_value = "./hookgate-data",
        global = true
    )]
    pub data_dir: PathBuf,

    /// The database: postgres://user@host/db for PostgreSQL.
    /// Default: `sqlite://<data-dir>/hookgate.db?mode=rwc` (WAL mode).
    #[arg(long, env = "HOOKGATE_DATABASE_URL", global = true)]
    pub database_url: Option<String>,

    /// The bearer token every admin RPC must carry (metadata `authorization: Bearer <token>`).
    #[arg(
        long,
        env = "HOOKGATE_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub admin_token: Option<String>,

    /// The key receiver secrets are encrypted with: a file holding 32 random bytes in base64.
    /// Default: `<data-dir>/secret.key`, made with mode 0600 on first start. Every replica
    /// sharing a database needs the same key.
    #[arg(long, env = "HOOKGATE_SECRET_KEY_FILE", global = true)]
    pub secret_key_file: Option<PathBuf>,

    /// The largest delivery body accepted, in bytes; larger ones get 413 (default: 25 MiB,
    /// GitHub's own cap).
    #[arg(
        long,
        env = "HOOKGATE_MAX_BODY_BYTES",
        default_value_t = DEFAULT_MAX_BODY_BYTES,
        global = true
    )]
    pub max_body_bytes: usize,

    /// How long deliveries are kept in the log (e.g. 72h, 7d); older ones are deleted hourly.
    #[arg(
        long,
        env = "HOOKGATE_DELIVERY_RETENTION",
        default_value = "72h",
        global = true
    )]
    pub delivery_retention: humantime::Duration,

    /// How long a worker's claim on a delivery lasts (e.g. 60s). A delivery claimed by a process
    /// that died is taken again when its claim runs out, so this bounds how late a crash makes
    /// it; it must be longer than processing one batch takes.
    #[arg(
        long,
        env = "HOOKGATE_DELIVERY_LEASE",
        default_value = "60s",
        global = true
    )]
    pub delivery_lease: humantime::Duration,

    /// The most deliveries the worker claims at once (it reads their events on every core
    /// before it writes any).
    #[arg(
        long,
        env = "HOOKGATE_WORKER_BATCH",
        default_value_t = DEFAULT_WORKER_BATCH,
        value_parser = clap::value_parser!(u64).range(1..=10_000),
        global = true
    )]
    pub worker_batch: u64,

    /// The most body bytes (as received) the worker claims at once: a claim stops short of
    /// --worker-batch deliveries when their bodies come to more, so the memory a batch holds
    /// is bounded by bytes, not only by a count. A body larger than this is claimed alone.
    #[arg(
        long,
        env = "HOOKGATE_WORKER_BATCH_BYTES",
        default_value_t = DEFAULT_WORKER_BATCH_BYTES,
        value_parser = clap::value_parser!(u64).range(1..),
        global = true
    )]
    pub worker_batch_bytes: u64,

    /// The most deliveries the worker writes in one transaction (a chunk): more share one
    /// commit and one read of their repositories and changesets. Default: 128.
    #[arg(
        long,
        env = "HOOKGATE_WORKER_CHUNK",
        value_parser = clap::value_parser!(u64).range(1..=10_000),
        global = true
    )]
    pub worker_chunk: Option<u64>,

    /// How long the worker's transaction takes more deliveries once open (it keeps the ones it
    /// has). Default: 50ms.
    #[arg(long, env = "HOOKGATE_WORKER_CHUNK_TIME", global = true)]
    pub worker_chunk_time: Option<humantime::Duration>,

    /// On SQLite, once the worker's transaction has applied deliveries this long, it takes no
    /// more while the ingress waits for the write lock: it bounds how long the worker makes an
    /// arriving delivery wait, and is the worker's share of the lock while deliveries keep
    /// arriving.
    #[arg(
        long,
        env = "HOOKGATE_WORKER_YIELD_AFTER",
        default_value = "5ms",
        global = true
    )]
    pub worker_yield_after: humantime::Duration,

    /// After a claim that found deliveries but fewer than a batch, how long (from that claim)
    /// the worker waits before it claims again: under a steady stream it then claims what
    /// arrived meanwhile in one batch (one claim, one parse on every core, shared
    /// transactions) rather than a few deliveries at a time. A delivery after a quiet spell is
    /// claimed at once; a full claim is followed by the next at once. 0s turns it off.
    #[arg(
        long,
        env = "HOOKGATE_WORKER_LINGER",
        default_value = "50ms",
        value_parser = parse_linger,
        global = true
    )]
    pub worker_linger: humantime::Duration,

    /// How long the worker waits before each retry of a delivery whose handling failed (the
    /// database was away, say), comma-separated; after the last retry it is FAILED with its
    /// error. A payload that cannot be handled at all fails at once.
    #[arg(
        long,
        env = "HOOKGATE_WORKER_RETRY_BACKOFF",
        value_delimiter = ',',
        default_value = "1s,5s,30s,2m,10m",
        num_args = 1..,
        global = true
    )]
    pub worker_retry_backoff: Vec<humantime::Duration>,

    /// How an SQLite commit is made durable: `full` syncs the log to disk at every commit, so an
    /// acknowledged delivery survives the machine losing power; `normal` leaves that to the
    /// operating system, so it survives the process being killed but not a power loss or a
    /// kernel crash, and intake is faster. (PostgreSQL follows its own `synchronous_commit`.)
    #[arg(
        long,
        env = "HOOKGATE_SQLITE_SYNCHRONOUS",
        value_enum,
        default_value = "full",
        global = true
    )]
    pub sqlite_synchronous: crate::db::SqliteDurability,

    /// The most connections hookgate's pool opens to its database. Default: 10 on PostgreSQL
    /// (one of them kept for LISTEN, to hear of receiver changes: so at least 2), and 8 for
    /// reads on SQLite (every SQLite write goes through one more connection of its own). With
    /// several replicas on one PostgreSQL server, their sum must stay under its
    /// `max_connections`.
    #[arg(
        long,
        env = "HOOKGATE_DATABASE_MAX_CONNECTIONS",
        value_parser = clap::value_parser!(u32).range(2..=10_000),
        global = true
    )]
    pub database_max_connections: Option<u32>,

    /// Serve the ingress and the admin API, but leave stored deliveries to the workers of other
    /// replicas: for ingress-only replicas, and for building a backlog to measure processing.
    #[arg(long, env = "HOOKGATE_INGRESS_ONLY", global = true)]
    pub ingress_only: bool,

    /// Logs, shutdown and the limits on what clients can make the service hold.
    #[command(flatten)]
    pub operations: Operations,
}

/// How the service logs, stops, and bounds what clients can make it hold: the flags of
/// observability and limits, kept together as README's table "Limits, logs and shutdown" is.
#[derive(Debug, Clone, Args)]
pub struct Operations {
    /// How log lines are written to stderr: `pretty` (human-readable lines) or `json` (one JSON
    /// object a line, for log collectors).
    #[arg(
        long,
        env = "HOOKGATE_LOG_FORMAT",
        value_enum,
        default_value_t = crate::logging::LogFormat::Pretty,
        global = true
    )]
    pub log_format: crate::logging::LogFormat,

    /// After SIGTERM, how long in-flight requests and the worker's batch may take before the
    /// process exits anyway (nothing answered 2xx is lost: a 2xx is sent only after commit).
    #[arg(
        long,
        env = "HOOKGATE_SHUTDOWN_TIMEOUT",
        default_value = "30s",
        global = true
    )]
    pub shutdown_timeout: humantime::Duration,

    /// How long a client may take to send a request's headers; an idle keep-alive connection is
    /// closed after the same time.
    #[arg(
        long,
        env = "HOOKGATE_HEADER_READ_TIMEOUT",
        default_value = "10s",
        global = true
    )]
    pub header_read_timeout: humantime::Duration,

    /// How long a client may take to send a whole delivery body; slower ones get 408.
    #[arg(
        long,
        env = "HOOKGATE_BODY_READ_TIMEOUT",
        default_value = "30s",
        global = true
    )]
    pub body_read_timeout: humantime::Duration,

    /// The largest request head (request line and headers) in bytes; larger ones get 431.
    #[arg(
        long,
        env = "HOOKGATE_MAX_HEADER_BYTES",
        default_value_t = 64 * 1024,
        global = true
    )]
    pub max_header_bytes: usize,

    /// Open HTTP connections at most. At the cap an idle connection (no request in hand) is
    /// closed to make room, from the address holding the most; when none is idle, a new one is
    /// closed at once.
    #[arg(
        long,
        env = "HOOKGATE_MAX_CONNECTIONS",
        default_value_t = 512,
        global = true
    )]
    pub max_connections: usize,

    /// Open HTTP connections from one peer address at most (trusted proxies excepted); past it
    /// one of that address's idle connections is closed to make room, else the new one is.
    #[arg(
        long,
        env = "HOOKGATE_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 64,
        global = true
    )]
    pub max_connections_per_address: usize,

    /// Deliveries handled at once at most; further ones get 503 with Retry-After at once.
    #[arg(
        long,
        env = "HOOKGATE_MAX_INFLIGHT_REQUESTS",
        default_value_t = 256,
        global = true
    )]
    pub max_inflight_requests: usize,

    /// Deliveries handled at once for one client address at most; further ones from it get 503
    /// with Retry-After at once.
    #[arg(
        long,
        env = "HOOKGATE_MAX_INFLIGHT_REQUESTS_PER_ADDRESS",
        default_value_t = 32,
        global = true
    )]
    pub max_inflight_requests_per_address: usize,

    /// Bytes of delivery bodies held in memory at once, across all requests; past it a delivery
    /// gets 503 with Retry-After. Bytes are counted as they arrive, not as a request declares
    /// them. At least --max-body-bytes.
    #[arg(
        long,
        env = "HOOKGATE_MAX_BUFFERED_BODY_BYTES",
        default_value_t = 128 * 1024 * 1024,
        global = true
    )]
    pub max_buffered_body_bytes: usize,

    /// Bytes of delivery bodies held in memory at once for one client address; past it a
    /// delivery from it gets 503 with Retry-After. At least --max-body-bytes.
    #[arg(
        long,
        env = "HOOKGATE_MAX_BUFFERED_BODY_BYTES_PER_ADDRESS",
        default_value_t = 32 * 1024 * 1024,
        global = true
    )]
    pub max_buffered_body_bytes_per_address: usize,

    /// Proxies (addresses or networks, comma-separated: 10.0.0.7,10.1.0.0/16) whose
    /// X-Forwarded-For names the client that the per-address limits count. Nobody by default:
    /// the header is then ignored.
    #[arg(
        long,
        env = "HOOKGATE_TRUSTED_PROXIES",
        value_delimiter = ',',
        global = true
    )]
    pub trusted_proxies: Vec<TrustedProxy>,

    /// The largest admin API request message in bytes; larger ones get INVALID_ARGUMENT.
    #[arg(
        long,
        env = "HOOKGATE_MAX_ADMIN_MESSAGE_BYTES",
        default_value_t = 4 * 1024 * 1024,
        global = true
    )]
    pub max_admin_message_bytes: usize,
}

impl Config {
    /// The database URL in force: the one given, or the SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) if !url.trim().is_empty() => url.trim().to_owned(),
            _ => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("hookgate.db").display()
            ),
        }
    }

    /// The admin token, if one is set and not blank.
    pub fn admin_token(&self) -> Option<&str> {
        self.admin_token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }

    /// The base of receiver URLs, without a trailing slash. `bound_http` is the address the
    /// ingress actually listens on (it differs from --http-addr when that asks for port 0).
    pub fn public_url(&self, bound_http: SocketAddr) -> anyhow::Result<String> {
        match &self.public_url {
            Some(raw) if !raw.trim().is_empty() => {
                let url = url::Url::parse(raw.trim()).map_err(|e| {
                    anyhow::anyhow!(
                        "--public-url {raw:?} is not an absolute URL ({e}): give one such as https://hooks.example.com"
                    )
                })?;
                if url.scheme() != "http" && url.scheme() != "https" {
                    anyhow::bail!("--public-url {raw:?} must be an http or https URL");
                }
                Ok(url.as_str().trim_end_matches('/').to_owned())
            }
            _ => Ok(format!("http://{bound_http}")),
        }
    }
}

impl Operations {
    /// Refuses settings that cannot work together, with what to change.
    pub fn check(&self, max_body_bytes: usize) -> anyhow::Result<()> {
        if self.max_buffered_body_bytes < max_body_bytes {
            anyhow::bail!(
                "--max-buffered-body-bytes {} is less than --max-body-bytes {max_body_bytes}, so the largest delivery could never be read: raise it, or lower --max-body-bytes",
                self.max_buffered_body_bytes
            );
        }
        if self.max_buffered_body_bytes_per_address < max_body_bytes {
            anyhow::bail!(
                "--max-buffered-body-bytes-per-address {} is less than --max-body-bytes {max_body_bytes}, so the largest delivery could never be read: raise it, or lower --max-body-bytes",
                self.max_buffered_body_bytes_per_address
            );
        }
        for (flag, value) in [
            ("--max-connections", self.max_connections),
            (
                "--max-connections-per-address",
                self.max_connections_per_address,
            ),
            ("--max-inflight-requests", self.max_inflight_requests),
            (
                "--max-inflight-requests-per-address",
                self.max_inflight_requests_per_address,
            ),
            ("--max-admin-message-bytes", self.max_admin_message_bytes),
        ] {
            if value == 0 {
                anyhow::bail!("{flag} must be at least 1");
            }
        }
        if self.max_header_bytes < 1024 {
            anyhow::bail!(
                "--max-header-bytes {} is too small for any code host's headers: give at least 1024 (default 65536)",
                self.max_header_bytes
            );
        }
        Ok(())
    }
}

/// `--console-addr`: where the web console listens, or `off` for no console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleAddr {
    /// No console.
    Off,
    /// Served on this address.
    On(SocketAddr),
}

impl ConsoleAddr {
    /// The address, unless the console is off.
    pub fn addr(self) -> Option<SocketAddr> {
        match self {
            Self::Off => None,
            Self::On(addr) => Some(addr),
        }
    }
}

/// Why a `--console-addr` was refused.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not an address: give one such as 127.0.0.1:8081, or `off` for no console")]
pub struct BadConsoleAddr(String);

impl FromStr for ConsoleAddr {
    type Err = BadConsoleAddr;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let raw = raw.trim();
        if raw.eq_ignore_ascii_case("off") {
            return Ok(Self::Off);
        }
        raw.parse()
            .map(Self::On)
            .map_err(|_| BadConsoleAddr(raw.to_owned()))
    }
}

/// One entry of `--trusted-proxies`: an address (`10.0.0.7`) or a network (`10.0.0.0/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedProxy(IpNet);

/// Why an entry of `--trusted-proxies` was refused.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not an IP address or network: give one such as 10.0.0.7, 10.0.0.0/8 or fd00::/8")]
pub struct BadTrustedProxy(String);

impl FromStr for TrustedProxy {
    type Err = BadTrustedProxy;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let raw = raw.trim();
        if let Ok(net) = raw.parse::<IpNet>() {
            return Ok(Self(net.trunc()));
        }
        raw.parse::<IpAddr>()
            .map(|ip| Self(IpNet::from(ip)))
            .map_err(|_| BadTrustedProxy(raw.to_owned()))
    }
}

impl TrustedProxy {
    /// Whether `ip` is this proxy, or in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip)
    }
}

// Tuning per database engine: every number that depends on the engine (pool sizes, batch sizes,
// budgets, the retry backoff), with its default. `Application::build` takes its engine's values
// (`IntakeConfig::for_backend`, `WorkerConfig::for_backend`, and the pool size in `db::connect_with`)
// and lays the flags above over them.

/// The connections a PostgreSQL pool opens at most, unless told otherwise
/// (`--database-max-connections`).
pub const POSTGRES_MAX_CONNECTIONS: u32 = 10;
/// The read connections an SQLite pool opens at most, unless told otherwise; its writes go
/// through one more (see `Db::begin_write`).
pub const SQLITE_MAX_READERS: u32 = 8;

/// The default of `--worker-batch`: the most deliveries the worker claims at once.
pub const DEFAULT_WORKER_BATCH: u64 = 128;

/// The worker's default `--worker-linger`: at most this much is added to a delivery's
/// processing lag, and under a steady stream the worker claims what arrived in it as one batch.
pub const DEFAULT_WORKER_LINGER: Duration = Duration::from_millis(50);

/// The longest `--worker-linger` taken: past it, the wait would be a delay, not a batching.
pub const MAX_WORKER_LINGER: Duration = Duration::from_secs(10);

/// Parses `--worker-linger`: a duration of at most [`MAX_WORKER_LINGER`].
fn parse_linger(text: &str) -> Result<humantime::Duration, String> {
    let linger: humantime::Duration = text
        .parse()
        .map_err(|e| format!("{e} (a duration such as 50ms or 0s)"))?;
    if Duration::from(linger) > MAX_WORKER_LINGER {
        return Err(format!(
            "{text} is longer than the most the worker waits to batch a claim ({}); the linger is added to a delivery's processing lag",
            humantime::format_duration(MAX_WORKER_LINGER)
        ));
    }
    Ok(linger)
}

/// How long to wait before each retry of a failed delivery, unless `--worker-retry-backoff` says
/// otherwise; after the last, it is `FAILED`.
pub const RETRY_BACKOFF: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(120),
    Duration::from_secs(600),
];

/// How much one batch of the intake (group commit, `deliveries/intake.rs`) may carry, and how
/// many are written side by side.
#[derive(Debug, Clone, Copy)]
pub struct IntakeConfig {
    /// Deliveries a batch takes at most.
    pub max_batch: usize,
    /// Encoded bytes a batch takes at most (it always takes at least one delivery).
    pub max_batch_bytes: usize,
    /// Committers writing batches side by side.
    pub committers: usize,
    /// Requests that may wait for a committer before the next one waits to be queued.
    pub queue: usize,
}

impl IntakeConfig {
    /// The settings for a database of `backend`. They differ in the committers: one on SQLite,
    /// which has one writer anyway; four on PostgreSQL, so batches are built while others
    /// commit, and a replica's intake is not held to one commit at a time.
    pub fn for_backend(backend: sea_orm::DbBackend) -> Self {
        Self {
            max_batch: 256,
            max_batch_bytes: 8 * 1024 * 1024,
            committers: match backend {
                sea_orm::DbBackend::Postgres => 4,
                _ => 1,
            },
            queue: 4096,
        }
    }
}

/// How the delivery worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// How long a claim lasts before another worker may take the delivery.
    pub lease: Duration,
    /// The most deliveries claimed at once.
    pub batch: u64,
    /// The most body bytes claimed at once (as received, what the claim holds decoded): a
    /// batch stops short of `batch` deliveries when their bodies come to more. A body larger
    /// than this is claimed alone.
    pub batch_bytes: u64,
    /// The most deliveries written in one transaction: more share a commit, fewer hold SQLite's
    /// one write lock (which the ingress waits for) a shorter time.
    pub per_transaction: usize,
    /// A transaction takes no more deliveries once it has been open this long (it keeps the
    /// ones it has).
    pub transaction_budget: Duration,
    /// Once a transaction has been open this long, it takes no more deliveries when a writer
    /// that answers someone waits for it (on SQLite, the ingress waits for the one write lock):
    /// this bounds how long the worker makes an arriving delivery wait, and is the worker's
    /// share of the lock while deliveries keep arriving. Never applies on PostgreSQL, where no
    /// writer waits for the worker's transaction, only for rows.
    pub yield_after: Duration,
    /// After a claim that found deliveries but not a full batch, the next claim waits until
    /// this long after it began (`--worker-linger`), so a steady stream is claimed in batches.
    pub linger: Duration,
    /// How often to look for due deliveries when nothing wakes the worker (retries, deliveries
    /// taken by another replica).
    pub poll_interval: Duration,
    /// The wait before each retry; its length is the number of retries.
    pub backoff: Vec<Duration>,
}

impl WorkerConfig {
    /// The settings for a database of `backend`. Both engines take the same today: the chunk
    /// (128 deliveries, 50 ms) was measured best on both (`BENCHMARKS.md`), and what differs
    /// between them (SQLite's one write lock) is bounded by `yield_after`, which PostgreSQL
    /// never reaches.
    pub fn for_backend(backend: sea_orm::DbBackend) -> Self {
        let _ = backend;
        Self::default()
    }

    /// These settings, with what `config` sets (the lease, the batch, the retry backoff; the
    /// chunk and chunk time when given).
    pub fn with(mut self, config: &Config) -> Self {
        self.lease = config.delivery_lease.into();
        self.batch = config.worker_batch;
        self.batch_bytes = config.worker_batch_bytes;
        if let Some(chunk) = config.worker_chunk {
            self.per_transaction = usize::try_from(chunk).unwrap_or(usize::MAX);
        }
        if let Some(time) = config.worker_chunk_time {
            self.transaction_budget = time.into();
        }
        self.yield_after = config.worker_yield_after.into();
        self.linger = config.worker_linger.into();
        self.backoff = config
            .worker_retry_backoff
            .iter()
            .map(|&wait| wait.into())
            .collect();
        self
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(60),
            batch: DEFAULT_WORKER_BATCH,
            batch_bytes: DEFAULT_WORKER_BATCH_BYTES,
            per_transaction: 128,
            transaction_budget: Duration::from_millis(50),
            yield_after: Duration::from_millis(5),
            linger: DEFAULT_WORKER_LINGER,
            poll_interval: Duration::from_secs(1),
            backoff: RETRY_BACKOFF.to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("hookgate").chain(args.iter().copied()))
    }

    /// The worker's settings for `args`, on top of an engine's.
    fn worker(args: &[&str]) -> WorkerConfig {
        WorkerConfig::for_backend(sea_orm::DbBackend::Sqlite).with(&parse(args).unwrap().config)
    }

    /// The worker's byte budget is 8 MiB unless `--worker-batch-bytes` says otherwise, and a
    /// budget of nothing is refused with the flag's name.
    #[test]
    fn the_claims_byte_budget_comes_from_its_flag() {
        assert_eq!(worker(&[]).batch_bytes, 8 * 1024 * 1024);
        assert_eq!(
            worker(&["--worker-batch-bytes", "65536"]).batch_bytes,
            65_536
        );
        let refused = parse(&["--worker-batch-bytes", "0"])
            .unwrap_err()
            .to_string();
        assert!(refused.contains("--worker-batch-bytes"), "{refused}");
    }

    /// The retry backoff is 1s, 5s, 30s, 2m, 10m unless `--worker-retry-backoff` says
    /// otherwise; a wait that is not a duration is refused with the flag's name.
    #[test]
    fn the_retry_backoff_comes_from_its_flag() {
        assert_eq!(worker(&[]).backoff, RETRY_BACKOFF.to_vec());
        assert_eq!(
            worker(&["--worker-retry-backoff", "2s,1m,1h"]).backoff,
            [
                Duration::from_secs(2),
                Duration::from_secs(60),
                Duration::from_secs(3600)
            ]
        );
        assert_eq!(
            worker(&["--worker-retry-backoff", "250ms"]).backoff,
            [Duration::from_millis(250)]
        );
        let refused = parse(&["--worker-retry-backoff", "1s,soon"])
            .unwrap_err()
            .to_string();
        assert!(refused.contains("--worker-retry-backoff"), "{refused}");
    }

    /// The worker lingers 50 ms after a claim that was not full unless `--worker-linger` says
    /// otherwise; 0s turns it off, and a wait past 10 s (a delay, not a batching) is refused
    /// with the flag's name and why.
    #[test]
    fn the_claims_linger_comes_from_its_flag() {
        assert_eq!(worker(&[]).linger, Duration::from_millis(50));
        assert_eq!(
            worker(&["--worker-linger", "200ms"]).linger,
            Duration::from_millis(200)
        );
        assert_eq!(worker(&["--worker-linger", "0s"]).linger, Duration::ZERO);
        for wrong in ["11s", "soon"] {
            let refused = parse(&["--worker-linger", wrong]).unwrap_err().to_string();
            assert!(refused.contains("--worker-linger"), "{refused}");
        }
        let refused = parse(&["--worker-linger", "1m"]).unwrap_err().to_string();
        assert!(refused.contains("processing lag"), "{refused}");
    }

    /// Each engine's defaults: one intake committer on SQLite (one writer), four on
    /// PostgreSQL; the pool sizes `--database-max-connections` documents.
    #[test]
    fn each_engine_has_its_defaults() {
        use sea_orm::DbBackend;
        assert_eq!(IntakeConfig::for_backend(DbBackend::Sqlite).committers, 1);
        assert_eq!(IntakeConfig::for_backend(DbBackend::Postgres).committers, 4);
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            let defaults = WorkerConfig::for_backend(backend).with(&parse(&[]).unwrap().config);
            assert_eq!(defaults.batch, DEFAULT_WORKER_BATCH);
            assert_eq!(defaults.per_transaction, 128);
            assert_eq!(defaults.transaction_budget, Duration::from_millis(50));
            assert_eq!(defaults.yield_after, Duration::from_millis(5));
        }
        assert_eq!((POSTGRES_MAX_CONNECTIONS, SQLITE_MAX_READERS), (10, 8));
    }
}
