//! What every integration test needs: the real service on port 0 with a fresh database (SQLite in
//! a temporary directory, or a new PostgreSQL database), and clients that talk to it over real
//! sockets.

#![allow(dead_code)]

pub mod binary;
pub mod console;
pub mod exactly_once;
pub mod postgres_server;
pub mod prometheus;
pub mod raw_http;

use std::net::SocketAddr;

use clap::Parser;
use hookgate::admin::proto::receiver_service_client::ReceiverServiceClient;
use hookgate::app::Application;
use hookgate::config::Config;
use sea_orm::{ConnectionTrait, Database};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// The database engine a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Generates one `#[tokio::test]` per engine for an `async fn(Engine)`, as `name::sqlite` and
/// `name::postgres`. The PostgreSQL variant is built ignored when `HOOKGATE_TEST_DATABASE_URL` was
/// not set (and not in CI: see build.rs), so the run's summary counts it as ignored.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::common::Engine::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(
                    not(hookgate_postgres),
                    ignore = "set HOOKGATE_TEST_DATABASE_URL to run the PostgreSQL variant"
                )]
                async fn postgres() {
                    super::$name($crate::common::Engine::Postgres).await
                }
            }
        )*
    };
}

/// The PostgreSQL server the PostgreSQL tests use, from `HOOKGATE_TEST_DATABASE_URL`. Those tests
/// are built ignored without it (build.rs), so one that runs without it (in CI, or a test binary
/// started by hand) fails here rather than passing without having run.
pub fn postgres_url() -> String {
    match std::env::var("HOOKGATE_TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "HOOKGATE_TEST_DATABASE_URL is not set: this PostgreSQL test needs a server such as \
             postgres://postgres@127.0.0.1:5432/test (CI must run the PostgreSQL tests)"
        ),
    }
}

/// A fresh, empty database for one test.
pub struct TestDatabase {
    /// The URL hookgate is started with.
    pub url: String,
    /// Holds the SQLite file (and the data directory) until the test ends.
    pub dir: tempfile::TempDir,
    /// For PostgreSQL: the server URL and the database's name, to drop it afterwards.
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    pub async fn new(engine: Engine) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory can be made");
        match engine {
            Engine::Sqlite => Self {
                url: format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("hookgate.db").display()
                ),
                dir,
                postgres: None,
            },
            Engine::Postgres => Self::on_postgres(&postgres_url()).await,
        }
    }

    /// A fresh database on the PostgreSQL server at `server` (a URL whose user may create
    /// databases).
    pub async fn on_postgres(server: &str) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory can be made");
        let name = format!("hookgate_test_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(server)
            .await
            .expect("the PostgreSQL test server accepts connections");
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("a test database can be created");
        admin.close().await.ok();
        let mut url = url::Url::parse(server).expect("a PostgreSQL server URL");
        url.set_path(&name);
        Self {
            url: url.to_string(),
            dir,
            postgres: Some((server.to_owned(), name)),
        }
    }

    /// The same data seen from a new, empty data directory, as when a database is copied
    /// without the rest of the data directory: for SQLite a copy of its files (the database and
    /// any write-ahead log), for PostgreSQL the same database (which the copy does not drop).
    pub fn copy_to_new_data_dir(&self) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory can be made");
        match &self.postgres {
            Some(_) => Self {
                url: self.url.clone(),
                dir,
                postgres: None,
            },
            None => {
                for name in ["hookgate.db", "hookgate.db-wal"] {
                    let from = self.dir.path().join(name);
                    if from.exists() {
                        std::fs::copy(&from, dir.path().join(name))
                            .expect("the database file can be copied");
                    }
                }
                Self {
                    url: format!(
                        "sqlite://{}?mode=rwc",
                        dir.path().join("hookgate.db").display()
                    ),
                    dir,
                    postgres: None,
                }
            }
        }
    }

    /// Drops a PostgreSQL test database (SQLite's goes with the temporary directory).
    pub async fn drop_database(&self) {
        if let Some((server, name)) = &self.postgres
            && let Ok(admin) = Database::connect(server.as_str()).await
        {
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await
                .ok();
            admin.close().await.ok();
        }
    }
}

/// The service as a test sees it.
pub struct TestApp {
    pub http_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    /// Where `/metrics` is served (not on the ingress).
    pub metrics_addr: SocketAddr,
    /// Where the web console is served (`None` with `--console-addr off`).
    pub console_addr: Option<SocketAddr>,
    pub public_url: String,
    pub db: TestDatabase,
    /// The admin token the service was started with, sent by [`TestApp::req`].
    pub admin_token: Option<String>,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

/// The configuration a test starts hookgate with: every port 0 (the console's too), loopback, the given database, and
/// every other setting at the default an operator gets (parsed as the command line is, so a new
/// setting needs no change here).
pub fn test_config(db: &TestDatabase) -> Config {
    let mut config = hookgate::config::Cli::try_parse_from([
        "hookgate",
        "--http-addr",
        "127.0.0.1:0",
        "--grpc-addr",
        "127.0.0.1:0",
        "--metrics-addr",
        "127.0.0.1:0",
        "--console-addr",
        "127.0.0.1:0",
    ])
    .expect("the test command line parses")
    .config;
    config.data_dir = db.dir.path().to_path_buf();
    config.database_url = Some(db.url.clone());
    // Whatever the environment says, tests start without a token or a public URL.
    config.admin_token = None;
    config.public_url = None;
    // Every test client is 127.0.0.1, so one address's share is the whole service: the tests of
    // fairness set the per-address limits they need.
    let ops = &mut config.operations;
    ops.max_connections_per_address = ops.max_connections;
    ops.max_inflight_requests_per_address = ops.max_inflight_requests;
    ops.max_buffered_body_bytes_per_address = ops.max_buffered_body_bytes;
    config
}

impl TestApp {
    /// Starts hookgate on a fresh database of `engine`, with no admin token.
    pub async fn spawn(engine: Engine) -> Self {
        Self::spawn_with(engine, |_| {}).await
    }

    /// Starts hookgate on a fresh database after `adjust` has changed the test configuration.
    pub async fn spawn_with(engine: Engine, adjust: impl FnOnce(&mut Config)) -> Self {
        Self::start(TestDatabase::new(engine).await, adjust).await
    }

    /// Starts hookgate on an existing test database after `adjust` has changed the test
    /// configuration.
    pub async fn start(db: TestDatabase, adjust: impl FnOnce(&mut Config)) -> Self {
        Self::start_built(db, adjust, |_| {}).await
    }

    /// Like [`TestApp::start`], and lets `prepare` change the built application before it
    /// serves (to wrap the worker's handler in one that misbehaves).
    pub async fn start_built(
        db: TestDatabase,
        adjust: impl FnOnce(&mut Config),
        prepare: impl FnOnce(&mut Application),
    ) -> Self {
        let mut config = test_config(&db);
        adjust(&mut config);
        let mut app = Application::build(&config)
            .await
            .expect("hookgate starts with the test configuration");
        prepare(&mut app);
        let stop = CancellationToken::new();
        let http_addr = app.http_addr();
        let grpc_addr = app.grpc_addr();
        let metrics_addr = app.metrics_addr();
        let console_addr = app.console_addr();
        let public_url = app.public_url().to_owned();
        let task = tokio::spawn(app.run_until(stop.clone().cancelled_owned()));
        Self {
            http_addr,
            grpc_addr,
            metrics_addr,
            console_addr,
            public_url,
            db,
            admin_token: config.admin_token().map(str::to_owned),
            stop,
            task,
        }
    }

    /// A gRPC channel to the admin API.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.grpc_addr))
            .expect("a valid URI")
            .connect()
            .await
            .expect("the admin API accepts connections")
    }

    pub async fn receivers(&self) -> ReceiverServiceClient<Channel> {
        ReceiverServiceClient::new(self.channel().await)
    }

    /// A request carrying the admin token, if the service has one.
    pub fn req<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(token) = &self.admin_token {
            request.metadata_mut().insert(
                "authorization",
                format!("Bearer {token}")
                    .parse()
                    .expect("a valid header value"),
            );
        }
        request
    }

    /// Stops the service gracefully and drops its database.
    pub async fn stop(self) {
        let db = self.shut_down().await;
        db.drop_database().await;
    }

    /// Stops the service gracefully and hands back its database (and data directory), to start
    /// it again or look at what it left.
    pub async fn shut_down(self) -> TestDatabase {
        self.stop.cancel();
        self.task
            .await
            .expect("the service task does not panic")
            .expect("the service stops cleanly");
        self.db
    }
}

/// A fixture's bytes, from `tests/fixtures/` (copied from the project's shared fixtures with
/// their attribution in `tests/fixtures/README.md`).
pub fn fixture(path: &str) -> Vec<u8> {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("fixture {}: {e}", full.display()))
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`, as GitHub and Bitbucket sign.
pub fn sha256_signature(secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hookgate::hosts::sign_hmac_sha256_hex(secret, body)
    )
}

impl TestApp {
    /// Creates a receiver of `kind` on `urn` with a generated secret; returns (id, secret).
    pub async fn create_receiver(
        &self,
        name: &str,
        kind: hookgate::admin::proto::CodeHostKind,
        urn: &str,
    ) -> (String, String) {
        self.create_receiver_with(name, kind, urn, Default::default())
            .await
    }

    /// Like [`TestApp::create_receiver`], with `options`.
    pub async fn create_receiver_with(
        &self,
        name: &str,
        kind: hookgate::admin::proto::CodeHostKind,
        urn: &str,
        options: hookgate::admin::proto::ReceiverOptions,
    ) -> (String, String) {
        let created = self
            .receivers()
            .await
            .create_receiver(self.req(hookgate::admin::proto::CreateReceiverRequest {
                name: name.to_owned(),
                code_host_kind: kind as i32,
                code_host_urn: urn.to_owned(),
                options: Some(options),
                ..Default::default()
            }))
            .await
            .expect("the receiver is created")
            .into_inner();
        (created.receiver.expect("a receiver").id, created.secret)
    }

    pub async fn deliveries(
        &self,
    ) -> hookgate::admin::proto::delivery_service_client::DeliveryServiceClient<Channel> {
        hookgate::admin::proto::delivery_service_client::DeliveryServiceClient::new(
            self.channel().await,
        )
    }

    /// POSTs `body` with `headers` to the receiver's webhook URL over real HTTP.
    pub async fn post(
        &self,
        id: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> reqwest::Response {
        let mut request = reqwest::Client::new()
            .post(format!("http://{}/.api/webhooks/{id}", self.http_addr))
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request.send().await.expect("the ingress answers")
    }

    pub async fn get_delivery(&self, id: &str) -> hookgate::admin::proto::Delivery {
        self.deliveries()
            .await
            .get_delivery(
                self.req(hookgate::admin::proto::GetDeliveryRequest { id: id.to_owned() }),
            )
            .await
            .expect("the delivery exists")
            .into_inner()
    }

    /// The one changeset of `repository` with `number`.
    pub async fn changeset(
        &self,
        repository: &str,
        number: i64,
    ) -> hookgate::admin::proto::Changeset {
        let mut found =
            hookgate::admin::proto::changeset_service_client::ChangesetServiceClient::new(
                self.channel().await,
            )
            .list_changesets(self.req(hookgate::admin::proto::ListChangesetsRequest {
                repository: repository.to_owned(),
                number,
                ..Default::default()
            }))
            .await
            .expect("changesets can be listed")
            .into_inner()
            .changesets;
        assert_eq!(
            found.len(),
            1,
            "one changeset for {repository}#{number}: {found:?}"
        );
        found.pop().expect("one")
    }

    /// Waits (up to 20 s) until the worker has moved the delivery to `state`.
    pub async fn wait_for_state(
        &self,
        id: &str,
        state: hookgate::admin::proto::DeliveryState,
    ) -> hookgate::admin::proto::Delivery {
        for _ in 0..200 {
            let d = self.get_delivery(id).await;
            if d.state == state as i32 {
                return d;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!(
            "delivery {id} never reached {state:?}: {:?}",
            self.get_delivery(id).await
        );
    }
}

/// The JSON body of an ingress answer.
pub async fn json_body(response: reqwest::Response) -> serde_json::Value {
    let text = response.text().await.expect("a body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("JSON answer ({e}): {text}"))
}

/// The headers a host sends with a delivery: its event header, its delivery id, and its
/// signature (or token) made with `secret`; `None` leaves the signature out.
pub fn host_headers(
    kind: hookgate::admin::proto::CodeHostKind,
    event: &str,
    key: &str,
    secret: Option<&str>,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let mut h = vec![("content-type", "application/json".to_owned())];
    use hookgate::admin::proto::CodeHostKind::{
        BitbucketServer as Bbs, Github as Gh, Gitlab as Gl,
    };
    match kind {
        Gh => {
            h.push(("x-github-event", event.to_owned()));
            h.push(("x-github-delivery", key.to_owned()));
            if let Some(s) = secret {
                h.push(("x-hub-signature-256", sha256_signature(s, body)));
            }
        }
        Gl => {
            h.push(("x-gitlab-event", event.to_owned()));
            h.push(("idempotency-key", key.to_owned()));
            if let Some(s) = secret {
                h.push(("x-gitlab-token", s.to_owned()));
            }
        }
        Bbs => {
            h.push(("x-event-key", event.to_owned()));
            h.push(("x-request-id", key.to_owned()));
            if let Some(s) = secret {
                h.push(("x-hub-signature", sha256_signature(s, body)));
            }
        }
        // As Gitea sends it: its own headers and the GitHub-compatible copies (GitHub's names
        // with Gitea's event), which a Gitea receiver must not read.
        hookgate::admin::proto::CodeHostKind::Gitea => {
            h.push(("x-gitea-event", event.to_owned()));
            h.push(("x-gitea-event-type", event.to_owned()));
            h.push(("x-gitea-delivery", key.to_owned()));
            h.push(("x-github-event", event.to_owned()));
            h.push(("x-github-delivery", key.to_owned()));
            if let Some(s) = secret {
                let signature = sha256_signature(s, body);
                let digits = signature.trim_start_matches("sha256=").to_owned();
                h.push(("x-gitea-signature", digits));
                h.push(("x-hub-signature-256", signature));
            }
        }
        // Azure DevOps sends no event or key header (both are in the body): the secret as the
        // Basic password of a subscription and in its custom header `X-Hook-Secret`.
        hookgate::admin::proto::CodeHostKind::AzureDevops => {
            let _ = (event, key);
            if let Some(s) = secret {
                use base64::Engine as _;
                let basic = base64::engine::general_purpose::STANDARD.encode(format!("azure:{s}"));
                h.push(("authorization", format!("Basic {basic}")));
                h.push(("x-hook-secret", s.to_owned()));
            }
        }
        _ => {
            h.push(("x-event-key", event.to_owned()));
            h.push(("x-request-uuid", key.to_owned()));
            if let Some(s) = secret {
                h.push(("x-hub-signature", sha256_signature(s, body)));
            }
        }
    }
    h
}

impl TestApp {
    /// Signs `body` as a `kind` host would for `event_header`, posts it to the receiver
    /// `(id, secret)` under a fresh delivery key, and waits until the worker is done with it
    /// (any state but pending or processing). Returns the stored delivery.
    pub async fn deliver(
        &self,
        kind: hookgate::admin::proto::CodeHostKind,
        receiver: &(String, String),
        event_header: &str,
        body: &serde_json::Value,
    ) -> hookgate::admin::proto::Delivery {
        let body = serde_json::to_vec(body).expect("JSON serialises");
        let key = uuid::Uuid::new_v4().to_string();
        let headers = host_headers(kind, event_header, &key, Some(&receiver.1), &body);
        let response = self.post(&receiver.0, &headers, body).await;
        let status = response.status();
        let answer = json_body(response).await;
        assert!(status.is_success(), "{event_header}: {status} {answer}");
        let id = answer["delivery_id"]
            .as_str()
            .expect("a delivery id")
            .to_owned();
        self.wait_until_done(&id).await
    }

    /// Waits (up to 20 s) until the worker is done with a delivery.
    pub async fn wait_until_done(&self, id: &str) -> hookgate::admin::proto::Delivery {
        use hookgate::admin::proto::DeliveryState as S;
        for _ in 0..200 {
            let d = self.get_delivery(id).await;
            if d.state != S::Pending as i32 && d.state != S::Processing as i32 {
                return d;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!(
            "delivery {id} was never processed: {:?}",
            self.get_delivery(id).await
        );
    }
}

/// Posts a signed GitHub ping to the service at `http` every 20 ms until it answers `want`; returns how
/// long that took, or panics after `within`.
pub async fn until_answered(
    http: impl std::fmt::Display,
    receiver: &str,
    secret: &str,
    want: u16,
    within: std::time::Duration,
) -> std::time::Duration {
    let body = fixture("github/ping.json");
    let started = std::time::Instant::now();
    let client = reqwest::Client::new();
    loop {
        let headers = host_headers(
            hookgate::admin::proto::CodeHostKind::Github,
            "ping",
            &uuid::Uuid::new_v4().to_string(),
            Some(secret),
            &body,
        );
        let mut request = client
            .post(format!("http://{http}/.api/webhooks/{receiver}"))
            .body(body.clone());
        for (name, value) in &headers {
            request = request.header(*name, value);
        }
        let status = request.send().await.unwrap().status().as_u16();
        if status == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{http} still answers {status}, not {want}, after {within:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
