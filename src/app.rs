//! Builds and runs the whole service: the database, the HTTP ingress, the gRPC admin API and the
//! web console.
//! `main` and the integration tests both start hookgate through [`Application`], so the tests run
//! exactly what operators run.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use futures_util::future::BoxFuture;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;

use crate::admin::{self, AdminAuth, AdminState};
use crate::config::Config;
use crate::db::{self, Db};
use crate::deliveries::{
    DeliveryStore, Handler, Intake, IntakeConfig, Worker, WorkerConfig, WorkerStatus, run_janitor,
    supervise,
};
use crate::health;
use crate::ingress::{self, IngressState};
use crate::metrics::{DatabaseGauges, ScrapeSource};
use crate::receivers::{CodeHostKind, ReceiverStore};
use crate::secret_key;
use crate::sync::{ChangesetStore, RepositoryStore, SyncHandler, SyncRequestStore};

/// A built service: database migrated, every listener bound, not yet serving.
pub struct Application {
    http_listener: TcpListener,
    grpc_listener: TcpListener,
    /// The web console's listener and pages (`--console-addr`); `None` when it is off.
    console: Option<(TcpListener, axum::Router)>,
    /// Where `/metrics` is served (`--metrics-addr`).
    metrics_listener: TcpListener,
    http_router: axum::Router,
    /// `/metrics` alone.
    metrics_router: axum::Router,
    grpc_routes: tonic::service::Routes,
    /// `None` with `--ingress-only`.
    worker: Option<Worker>,
    /// Whether the worker runs, for `/healthz`.
    worker_status: WorkerStatus,
    /// The intake's committers: they stop once the ingress (which holds the intake) has stopped
    /// and every delivery handed to them is written.
    committers: Vec<tokio::task::JoinHandle<()>>,
    /// Kept current with other replicas' registry changes while serving.
    receivers: ReceiverStore,
    deliveries: DeliveryStore,
    /// Cancelled to stop everything: the servers, the worker, the janitor, open streams.
    stop: CancellationToken,
    /// How long deliveries are kept.
    retention: std::time::Duration,
    /// The base of receiver URLs in force.
    public_url: String,
    db: Db,
    /// The ingress server's connection limits.
    server_limits: ingress::serve::ServerLimits,
    /// How long shutdown may wait for in-flight work.
    shutdown_timeout: std::time::Duration,
    /// The largest admin API request message.
    max_admin_message_bytes: usize,
    /// Where `/metrics` reads the process's metrics.
    metrics: metrics_exporter_prometheus::PrometheusHandle,
}

impl Application {
    /// Checks the configuration, opens and migrates the database and binds the three ports (port
    /// 0 picks a free one; [`Application::http_addr`] and the like tell which).
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        let admin_token = config.admin_token();
        if admin_token.is_none() && !config.grpc_addr.ip().is_loopback() {
            anyhow::bail!(
                "the admin API would listen on {} with no admin token, open to anyone who can reach it: \
                 set --admin-token (or HOOKGATE_ADMIN_TOKEN), or listen on a loopback address such as --grpc-addr 127.0.0.1:50051",
                config.grpc_addr
            );
        }
        if let Some(addr) = config.console_addr.addr() {
            crate::console::check_address(addr, admin_token)?;
        }
        config.operations.check(config.max_body_bytes)?;
        let db = open_database(config).await?;

        let http_listener = TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("cannot listen on --http-addr {}", config.http_addr))?;
        let grpc_listener = TcpListener::bind(config.grpc_addr)
            .await
            .with_context(|| format!("cannot listen on --grpc-addr {}", config.grpc_addr))?;
        let metrics_listener = TcpListener::bind(config.metrics_addr)
            .await
            .with_context(|| format!("cannot listen on --metrics-addr {}", config.metrics_addr))?;
        let console_listener = match config.console_addr.addr() {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on --console-addr {addr}"))?,
            ),
            None => None,
        };
        let public_url = config.public_url(http_listener.local_addr()?)?;
        if config.public_url.is_none() && config.http_addr.ip().is_unspecified() {
            tracing::warn!(
                %public_url,
                "receiver URLs use the listen address, which code hosts cannot reach: set --public-url (HOOKGATE_PUBLIC_URL) to the URL they see, e.g. https://hooks.example.com"
            );
        }

        let secrets =
            secret_key::prepare(&db, config.secret_key_file.as_deref(), &config.data_dir).await?;
        let receivers = ReceiverStore::new(db.clone(), secrets);
        // The ingress answers from memory: every receiver is there before the first request.
        let loaded = receivers
            .load_all()
            .await
            .context("cannot read the receiver registry")?;
        tracing::debug!(receivers = loaded, "registry loaded");
        let deliveries = DeliveryStore::new(db.clone());
        let stop = CancellationToken::new();
        let worker_wake = Arc::new(Notify::new());
        let (intake, committers) =
            Intake::start(deliveries.clone(), IntakeConfig::for_backend(db.backend()));
        let metrics = crate::metrics::install();
        let metrics_router = crate::metrics::router(crate::metrics::MetricsState {
            handle: metrics.clone(),
            source: Arc::new(ScrapeStores {
                receivers: receivers.clone(),
                deliveries: deliveries.clone(),
                sync_requests: SyncRequestStore::new(db.clone()),
            }),
        });
        let worker_status = WorkerStatus::default();
        let tally = Arc::new(health::Tally::default());
        let unmatched = Arc::new(health::Unmatched::default());
        let mut http_router = ingress::router(IngressState {
            db: db.clone(),
            receivers: receivers.clone(),
            deliveries: deliveries.clone(),
            intake,
            max_body_bytes: config.max_body_bytes,
            worker_wake: worker_wake.clone(),
            rate_limiter: Default::default(),
            rejected_log: Default::default(),
            worker: (!config.ingress_only).then(|| worker_status.clone()),
            tally: tally.clone(),
            unmatched: unmatched.clone(),
        });
        if config.metrics_on_ingress {
            http_router = http_router.merge(metrics_router.clone());
        }
        let http_router = http_router
            .layer(axum::middleware::from_fn_with_state(
                ingress::limits::IngressLimits::new(&config.operations),
                ingress::limits::enforce,
            ))
            .layer(axum::middleware::from_fn(ingress::observe::track));
        let admin_state = AdminState {
            receivers: receivers.clone(),
            deliveries: deliveries.clone(),
            repositories: RepositoryStore::new(db.clone()),
            changesets: ChangesetStore::new(db.clone()),
            sync_requests: SyncRequestStore::new(db.clone()),
            db: db.clone(),
            shutdown: stop.clone(),
            public_url: public_url.clone(),
            worker_wake: worker_wake.clone(),
            health: health::HealthStore::new(db.clone(), tally, public_url.clone()),
            unmatched,
        };
        // The console calls the same admin services in-process, behind its own login.
        let console = console_listener.map(|listener| {
            let state =
                crate::console::ConsoleState::new(admin_state.clone(), admin_token, stop.clone());
            (listener, crate::console::router(state))
        });
        let grpc_routes = admin::routes(
            admin_state,
            AdminAuth::new(admin_token),
            config.operations.max_admin_message_bytes,
        )
        .await?;
        let worker = (!config.ingress_only).then(|| {
            Worker::new(
                db.clone(),
                receivers.clone(),
                Arc::new(SyncHandler),
                WorkerConfig::for_backend(db.backend()).with(config),
                worker_wake,
            )
        });
        Ok(Self {
            http_listener,
            grpc_listener,
            console,
            metrics_listener,
            http_router,
            metrics_router,
            grpc_routes,
            worker,
            worker_status,
            committers,
            receivers,
            deliveries,
            stop,
            retention: config.delivery_retention.into(),
            public_url,
            db,
            server_limits: (&config.operations).into(),
            shutdown_timeout: config.operations.shutdown_timeout.into(),
            max_admin_message_bytes: config.operations.max_admin_message_bytes,
            metrics,
        })
    }

    /// Wraps the delivery worker's handler (see [`Worker::wrap_handler`]): for tests that need a
    /// handler to misbehave around the real one; hookgate itself never calls it.
    pub fn wrap_handler(&mut self, wrap: impl FnOnce(Arc<dyn Handler>) -> Arc<dyn Handler>) {
        if let Some(worker) = &mut self.worker {
            worker.wrap_handler(wrap);
        }
    }

    /// Where the ingress listens.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Where the admin API listens.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Where the web console listens; `None` with `--console-addr off`.
    pub fn console_addr(&self) -> Option<SocketAddr> {
        self.console.as_ref().map(|(listener, _)| {
            listener
                .local_addr()
                .expect("a bound listener has an address")
        })
    }

    /// Where `/metrics` is served.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The base of receiver URLs.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// Serves every port until `shutdown` completes, then stops taking connections, lets
    /// in-flight requests and the worker's batch finish and returns. When that takes longer than
    /// `--shutdown-timeout`, it returns anyway, leaving the rest to be dropped with the process:
    /// a request not answered yet was not acknowledged (its sender retries it), and a delivery
    /// the worker had claimed is claimed again when its lease runs out.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let http_addr = self.http_addr();
        let grpc_addr = self.grpc_addr();
        let metrics_addr = self.metrics_addr();
        let stop = self.stop.clone();
        tokio::spawn({
            let stop = stop.clone();
            async move {
                shutdown.await;
                stop.cancel();
            }
        });

        tracing::info!(%http_addr, public_url = %self.public_url, "webhook ingress listening");
        tracing::info!(%metrics_addr, "metrics listening");
        tracing::info!(%grpc_addr, "admin API listening");
        let console_addr = self.console_addr();
        match console_addr {
            Some(console_addr) => tracing::info!(%console_addr, "console listening"),
            None => tracing::info!("console off (--console-addr off)"),
        }
        let console = async {
            match self.console {
                Some((listener, router)) => {
                    crate::console::serve(listener, router, stop.clone()).await
                }
                // Off: nothing to serve, but ending now would stop the others.
                None => {
                    stop.cancelled().await;
                    Ok(())
                }
            }
        };
        let http = async {
            // The metrics listener is served as the ingress is, under the same connection
            // limits, and stops with it.
            tokio::join!(
                ingress::serve::serve(
                    self.http_listener,
                    self.http_router,
                    self.server_limits.clone(),
                    stop.clone(),
                ),
                ingress::serve::serve(
                    self.metrics_listener,
                    self.metrics_router,
                    self.server_limits,
                    stop.clone(),
                )
            );
            anyhow::Ok(())
        };
        let grpc = async {
            tonic::transport::Server::builder()
                .layer(ingress::limits::admin_message_limit(
                    self.max_admin_message_bytes,
                ))
                .add_routes(self.grpc_routes)
                .serve_with_incoming_shutdown(
                    // With an incoming stream tonic leaves TCP_NODELAY unset (its builder's
                    // setting applies only to listeners it binds); without it every answer of
                    // more than one HTTP/2 frame waits ~40 ms for the client's delayed ACK.
                    TcpIncoming::from(self.grpc_listener).with_nodelay(Some(true)),
                    stop.clone().cancelled_owned(),
                )
                .await
                .context("the gRPC admin API failed")
        };
        let worker = match self.worker {
            Some(worker) => tokio::spawn(supervise(worker, self.worker_status, stop.clone())),
            None => {
                tracing::info!("--ingress-only: deliveries are left to other replicas' workers");
                tokio::spawn(async {})
            }
        };
        let follower = tokio::spawn(self.receivers.follow(stop.clone()));
        let janitor = tokio::spawn(run_janitor(
            self.deliveries,
            crate::sync::FeedStore::new(self.db.clone()),
            self.retention,
            stop.clone(),
        ));
        tokio::spawn(crate::metrics::run_upkeep(self.metrics, stop.clone()));
        let everything = async {
            // If one server fails, stop the other too rather than run half a service.
            let result = tokio::try_join!(
                async {
                    let r = http.await;
                    stop.cancel();
                    r
                },
                async {
                    let r = grpc.await;
                    stop.cancel();
                    r
                },
                async {
                    let r = console.await;
                    stop.cancel();
                    r
                }
            );
            // The servers have stopped taking requests: what they handed the intake is
            // written, and the worker finishes its batch.
            stop.cancel();
            for committer in self.committers {
                committer.await.ok();
            }
            worker.await.ok();
            janitor.await.ok();
            follower.await.ok();
            result
        };
        let timeout = self.shutdown_timeout;
        let deadline = async {
            stop.cancelled().await;
            tokio::time::sleep(timeout).await;
        };
        tokio::select! {
            result = everything => {
                self.db.close().await.ok();
                result.map(|_| ())
            }
            () = deadline => {
                tracing::warn!(
                    shutdown_timeout = %humantime::format_duration(timeout),
                    "shutdown timeout passed: exiting with requests still open; none of them was acknowledged, so their senders retry"
                );
                Ok(())
            }
        }
    }
}

/// Creates the data directory (mode 0700), opens the database and applies migrations.
pub async fn open_database(config: &Config) -> anyhow::Result<Db> {
    crate::data_dir::prepare(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            config.data_dir.display()
        )
    })?;
    let db = db::connect_with(
        &config.database_url(),
        config.sqlite_synchronous,
        config.database_max_connections,
    )
    .await?;
    db::migrate(&db).await?;
    for warning in db::postgres_warnings(&db).await {
        tracing::warn!("{warning}");
    }
    Ok(db)
}

/// What `/metrics` reads from the stores when it is scraped (metrics itself reads no store).
struct ScrapeStores {
    receivers: ReceiverStore,
    deliveries: DeliveryStore,
    sync_requests: SyncRequestStore,
}

impl ScrapeSource for ScrapeStores {
    fn receivers(&self) -> Vec<(uuid::Uuid, CodeHostKind)> {
        self.receivers.known()
    }

    fn database_gauges(&self) -> BoxFuture<'_, anyhow::Result<DatabaseGauges>> {
        Box::pin(async move {
            let (queue_depth, queue_oldest_receive_time) = self.deliveries.queue_depth().await?;
            Ok(DatabaseGauges {
                queue_depth,
                queue_oldest_receive_time,
                sync_requests_pending: self.sync_requests.pending_count().await?,
            })
        })
    }
}
