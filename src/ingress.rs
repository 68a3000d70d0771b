//! The HTTP side of hookgate: the router that code hosts deliver to, and `/healthz`. Status codes
//! are decided here.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use sea_orm::DatabaseConnection;

/// What the HTTP handlers share.
#[derive(Clone)]
pub struct IngressState {
    pub db: DatabaseConnection,
}

/// The HTTP router.
pub fn router(state: IngressState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .with_state(state)
}

/// 200 when the database answers, 503 when it does not.
async fn healthz(State(state): State<IngressState>) -> (StatusCode, &'static str) {
    match state.db.ping().await {
        Ok(()) => (StatusCode::OK, "ok\n"),
        Err(err) => {
            tracing::warn!(error = %err, "health check: the database does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n")
        }
    }
}
