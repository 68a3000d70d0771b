//! The gRPC admin API: tonic services that map protobuf messages onto the domain and back, and
//! nothing else. Access control and error mapping live here too, once for every service.

mod auth;
mod changesets;
mod deliveries;
mod events;
mod page_token;
mod receivers;
mod repositories;
mod status;

pub use auth::{AdminAuth, actor};
pub use changesets::ChangesetAdmin;
pub use deliveries::DeliveryAdmin;
pub use events::EventAdmin;
pub use receivers::ReceiverAdmin;
pub use repositories::{RepositoryAdmin, sync_request_to_proto};

/// The generated protobuf types and services of `hookgate.v1`.
pub mod proto {
    tonic::include_proto!("hookgate.v1");

    /// Every .proto file compiled, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("hookgate_descriptor");
}

use tonic::service::Routes;

use crate::db::Db;
use crate::deliveries::DeliveryStore;
use crate::receivers::ReceiverStore;
use crate::sync::{ChangesetStore, RepositoryStore, SyncRequestStore};

/// Everything the admin services need.
#[derive(Clone)]
pub struct AdminState {
    pub receivers: ReceiverStore,
    pub deliveries: DeliveryStore,
    pub repositories: RepositoryStore,
    pub changesets: ChangesetStore,
    pub sync_requests: SyncRequestStore,
    pub db: Db,
    /// Cancelled when the service shuts down: open streams end so shutdown is not held up.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Woken when a redelivery puts a delivery back in the queue.
    pub worker_wake: std::sync::Arc<tokio::sync::Notify>,
    /// The base of receiver URLs, no trailing slash.
    pub public_url: String,
    /// Receivers' health (`GetReceiverHealth`, `ListReceivers` with the health view).
    pub health: crate::health::HealthStore,
    /// Requests to receiver ids that do not exist, as this process's ingress saw them.
    pub unmatched: std::sync::Arc<crate::health::Unmatched>,
}

/// The admin API's routes: every service behind the admin token, plus reflection (v1 and
/// v1alpha, which grpcurl 1.8 speaks) and health, which stay open. Messages up to
/// `max_message_bytes` are decoded (larger ones are refused before this, with
/// `INVALID_ARGUMENT`, by `limits::admin_message_limit`).
pub async fn routes(
    state: AdminState,
    auth: AdminAuth,
    max_message_bytes: usize,
) -> anyhow::Result<Routes> {
    use proto::changeset_service_server::ChangesetServiceServer;
    use proto::delivery_service_server::DeliveryServiceServer;
    use proto::event_service_server::EventServiceServer;
    use proto::receiver_service_server::ReceiverServiceServer;
    use proto::repository_service_server::RepositoryServiceServer;
    use tonic::service::interceptor::InterceptedService;

    // Health is described too, so `grpcurl list` shows it and `describe` works on it.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let (health_reporter, health) = tonic_health::server::health_reporter();
    for service in [
        "hookgate.v1.ReceiverService",
        "hookgate.v1.DeliveryService",
        "hookgate.v1.RepositoryService",
        "hookgate.v1.ChangesetService",
        "hookgate.v1.EventService",
    ] {
        health_reporter
            .set_service_status(service, tonic_health::ServingStatus::Serving)
            .await;
    }

    let max = max_message_bytes;
    let deliveries = InterceptedService::new(
        DeliveryServiceServer::new(DeliveryAdmin::new(state.clone()))
            .max_decoding_message_size(max),
        auth.clone(),
    );
    let repositories = InterceptedService::new(
        RepositoryServiceServer::new(RepositoryAdmin::new(state.clone()))
            .max_decoding_message_size(max),
        auth.clone(),
    );
    let changesets = InterceptedService::new(
        ChangesetServiceServer::new(ChangesetAdmin::new(state.clone()))
            .max_decoding_message_size(max),
        auth.clone(),
    );
    let events = InterceptedService::new(
        EventServiceServer::new(EventAdmin::new(
            state.clone(),
            crate::sync::FeedStore::new(state.db.clone()),
        ))
        .max_decoding_message_size(max),
        auth.clone(),
    );
    let receivers = InterceptedService::new(
        ReceiverServiceServer::new(ReceiverAdmin::new(state)).max_decoding_message_size(max),
        auth,
    );
    let mut builder = Routes::builder();
    builder
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(receivers)
        .add_service(deliveries)
        .add_service(repositories)
        .add_service(changesets)
        .add_service(events);
    Ok(builder.routes())
}
