//! The web console: server-rendered pages for the admin, on a listener of their own
//! (`--console-addr`, loopback by default), so a person can see and do what the gRPC API offers
//! without grpcurl: receivers with their health, each receiver's setup guide and delivery log,
//! one delivery as it came in and what it did, repositories, changesets, the sync request queue.
//!
//! It is a separate module, and a separate listener, because it is a client of the admin API and
//! nothing more: every page calls the admin services in-process (`api`), with the actor
//! `console`, so validation, errors and the record of who changed what are the gRPC API's own.
//! What is here is HTML for proto messages, and what a browser needs to be safe with it: a
//! session behind the admin token (`session`), a CSRF token on every form (`csrf`), security
//! headers on every answer (`headers`), and every value escaped (maud escapes whatever it
//! renders; a delivery's headers and body are whatever a stranger sent). Pages work without
//! JavaScript; a little (`assets`) adds copy buttons and live refresh (`live`).

mod api;
mod assets;
mod csrf;
mod guide;
mod headers;
mod html;
mod live;
mod pages;
mod session;

pub use session::WRONG_TOKENS_PER_MINUTE;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::admin::AdminState;

/// Everything a console request needs, shared by every handler.
#[derive(Clone)]
pub struct ConsoleState(Arc<Inner>);

/// What every [`ConsoleState`] clone shares.
pub struct Inner {
    /// The admin services, called in-process.
    api: api::Api,
    /// The stores, for the few things the admin API has no call for: what a delivery did, and
    /// whether an open page is out of date.
    stores: AdminState,
    /// Who is logged in.
    sessions: session::Sessions,
    /// Wrong admin tokens given to the login form, by client address.
    logins: session::LoginThrottle,
    /// The admin token a login must give; `None`: no login (the console is on loopback).
    token: Option<Arc<str>>,
    /// Cancelled when the service stops: open live streams end.
    stop: CancellationToken,
}

impl std::ops::Deref for ConsoleState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl ConsoleState {
    /// The console over `stores`, behind `token` if one is configured.
    pub fn new(stores: AdminState, token: Option<&str>, stop: CancellationToken) -> Self {
        Self(Arc::new(Inner {
            api: api::Api::new(stores.clone()),
            stores,
            sessions: session::Sessions::default(),
            logins: session::LoginThrottle::default(),
            token: token.map(Arc::from),
            stop,
        }))
    }
}

/// Refuses a console that would be open to anyone who can reach it: without an admin token it
/// must listen on a loopback address.
pub fn check_address(addr: SocketAddr, token: Option<&str>) -> anyhow::Result<()> {
    if token.is_none() && !addr.ip().is_loopback() {
        anyhow::bail!(
            "the console would listen on {addr} with no admin token, open to anyone who can reach it: \
             set --admin-token (or HOOKGATE_ADMIN_TOKEN), listen on a loopback address such as \
             --console-addr 127.0.0.1:8081, or turn it off with --console-addr off"
        );
    }
    Ok(())
}

/// Every page and endpoint of the console, behind the session guard and the security headers.
pub fn router(state: ConsoleState) -> Router {
    use pages::{deliveries, receivers, sync};
    Router::new()
        .route("/", get(receivers::home))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/assets/{name}", get(assets::serve))
        .route("/live", get(live::stream))
        .route("/receivers", get(receivers::list).post(receivers::create))
        .route("/receivers/new", get(receivers::new_form))
        .route("/receivers/table", get(receivers::table_fragment))
        .route("/receivers/{id}", get(receivers::show))
        .route("/receivers/{id}/health", get(receivers::health_fragment))
        .route(
            "/receivers/{id}/deliveries",
            get(receivers::deliveries_fragment),
        )
        .route(
            "/receivers/{id}/edit",
            get(receivers::edit_form).post(receivers::edit),
        )
        .route("/receivers/{id}/rotate", post(receivers::rotate))
        .route(
            "/receivers/{id}/delete",
            get(receivers::delete_form).post(receivers::delete),
        )
        .route("/receivers/{id}/test", post(receivers::send_test))
        .route(
            "/receivers/{id}/redeliver",
            get(receivers::redeliver_form).post(receivers::redeliver),
        )
        .route("/deliveries/{id}", get(deliveries::show))
        .route(
            "/deliveries/{id}/summary",
            get(deliveries::summary_fragment),
        )
        .route("/deliveries/{id}/redeliver", post(deliveries::redeliver))
        .route("/repositories", get(sync::repositories))
        .route("/repositories/{id}", get(sync::repository))
        .route("/changesets/{id}", get(sync::changeset))
        .route("/sync-requests", get(sync::sync_requests))
        .route("/sync-requests/{id}", get(sync::sync_request))
        .fallback(html::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            session::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            headers::loopback_host,
        ))
        .layer(axum::middleware::from_fn(headers::secure))
        .with_state(state)
}

/// Serves the console on `listener` until `stop`, then lets open requests finish (live streams
/// end on `stop` themselves) and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    // Each request knows its client's address: the login form counts wrong tokens by it.
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
        .map_err(|e| anyhow::anyhow!("the console failed: {e}"))
}
