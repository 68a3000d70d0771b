//! The connection to the admin API: one channel to `http://<--grpc-addr>`, and the metadata every
//! call carries (the admin token, the actor). Connecting fails fast as UNAVAILABLE with what to
//! check, rather than as tonic's bare "transport error".

use std::time::Duration;

use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

use super::failure::Failure;
use crate::admin::proto::changeset_service_client::ChangesetServiceClient;
use crate::admin::proto::delivery_service_client::DeliveryServiceClient;
use crate::admin::proto::event_service_client::EventServiceClient;
use crate::admin::proto::receiver_service_client::ReceiverServiceClient;
use crate::admin::proto::repository_service_client::RepositoryServiceClient;

/// Where the admin API is and how to authenticate to it: `--grpc-addr` and `--admin-token`, as
/// `main` read them (the same flags `serve` listens and checks with).
#[derive(Debug, Clone)]
pub struct AdminApi {
    /// The admin API's address.
    pub grpc_addr: std::net::SocketAddr,
    /// The admin token to send, if one is set.
    pub admin_token: Option<String>,
}

/// The channel every client of one command shares, with its metadata added to each call.
type Transport = InterceptedService<Channel, Credentials>;

/// A connected admin API: hands out one client per service.
pub struct Api {
    transport: Transport,
}

impl Api {
    /// Connects to the admin API at `--grpc-addr`, sending the admin token (if one is set) and
    /// `actor` (else the OS user name) with every call.
    pub async fn connect(target: &AdminApi, actor: Option<&str>) -> Result<Api, Failure> {
        let address = format!("http://{}", target.grpc_addr);
        let credentials = Credentials::new(target.admin_token.as_deref(), actor)?;
        let channel = Endpoint::from_shared(address.clone())
            .map_err(|e| Failure::Usage(format!("--grpc-addr gives the URI {address}: {e}")))?
            .connect_timeout(Duration::from_secs(10))
            .connect()
            .await
            .map_err(|e| {
                Status::unavailable(format!(
                    "nothing answers at {address} ({}): start `hookgate serve` there, or point --grpc-addr (HOOKGATE_GRPC_ADDR) at its admin API",
                    error_chain(&e)
                ))
            })?;
        Ok(Api {
            transport: InterceptedService::new(channel, credentials),
        })
    }

    pub fn receivers(&self) -> ReceiverServiceClient<Transport> {
        ReceiverServiceClient::new(self.transport.clone())
    }

    pub fn deliveries(&self) -> DeliveryServiceClient<Transport> {
        DeliveryServiceClient::new(self.transport.clone())
    }

    pub fn changesets(&self) -> ChangesetServiceClient<Transport> {
        ChangesetServiceClient::new(self.transport.clone())
    }

    pub fn repositories(&self) -> RepositoryServiceClient<Transport> {
        RepositoryServiceClient::new(self.transport.clone())
    }

    pub fn events(&self) -> EventServiceClient<Transport> {
        EventServiceClient::new(self.transport.clone())
    }
}

/// An error and its sources on one line: "transport error: tcp connect error: Connection refused".
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

/// The metadata every call carries.
#[derive(Clone)]
pub struct Credentials {
    /// `Bearer <admin token>`, when a token is set.
    authorization: Option<MetadataValue<tonic::metadata::Ascii>>,
    /// Who the server records changes under; none leaves it to the server ("admin").
    actor: Option<MetadataValue<tonic::metadata::Ascii>>,
}

impl Credentials {
    fn new(token: Option<&str>, actor: Option<&str>) -> Result<Self, Failure> {
        let authorization = token
            .map(|token| {
                format!("Bearer {token}").parse().map_err(|_| {
                    Failure::Usage(
                        "the admin token (--admin-token, HOOKGATE_ADMIN_TOKEN) must be printable ASCII"
                            .to_owned(),
                    )
                })
            })
            .transpose()?;
        let actor = match actor {
            Some(given) => Some(given.parse().map_err(|_| {
                Failure::Usage(format!("--actor {given:?} must be printable ASCII"))
            })?),
            // A user name the metadata cannot carry is left out rather than refused: the change
            // is then recorded as "admin".
            None => std::env::var("USER")
                .or_else(|_| std::env::var("LOGNAME"))
                .ok()
                .filter(|name| !name.trim().is_empty())
                .and_then(|name| name.parse().ok()),
        };
        Ok(Credentials {
            authorization,
            actor,
        })
    }
}

impl tonic::service::Interceptor for Credentials {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let metadata = request.metadata_mut();
        if let Some(value) = &self.authorization {
            metadata.insert("authorization", value.clone());
        }
        if let Some(value) = &self.actor {
            metadata.insert("x-hookgate-actor", value.clone());
        }
        Ok(request)
    }
}
