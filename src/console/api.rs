//! The admin API, called in-process: the same service structs the gRPC server runs, called
//! through their tonic traits with a `tonic::Request` that names the console as the actor. A
//! page therefore gets exactly what a gRPC client would: the same checks, the same errors, the
//! same record of who changed what.

use tonic::Request;
use tonic::metadata::MetadataValue;

use crate::admin::{AdminState, ChangesetAdmin, DeliveryAdmin, ReceiverAdmin, RepositoryAdmin};

/// The name changes made in the console are recorded under (`created_by`, `updated_by`, logs).
pub const ACTOR: &str = "console";

/// The admin services the console calls.
pub struct Api {
    pub receivers: ReceiverAdmin,
    pub deliveries: DeliveryAdmin,
    pub changesets: ChangesetAdmin,
    pub repositories: RepositoryAdmin,
}

impl Api {
    pub fn new(state: AdminState) -> Self {
        Self {
            receivers: ReceiverAdmin::new(state.clone()),
            deliveries: DeliveryAdmin::new(state.clone()),
            changesets: ChangesetAdmin::new(state.clone()),
            repositories: RepositoryAdmin::new(state),
        }
    }
}

/// A request of the admin API made by the console.
pub fn call<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("x-hookgate-actor", MetadataValue::from_static(ACTOR));
    request
}
