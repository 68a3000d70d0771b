//! Who may call the admin API, and who they say they are.

use std::sync::Arc;

use subtle::ConstantTimeEq;
use tonic::{Request, Status};

/// Checks `authorization: Bearer <token>` on every admin call when a token is configured.
/// Without a token every call passes (the server then listens on loopback only).
#[derive(Clone)]
pub struct AdminAuth {
    /// The configured admin token, if any.
    token: Option<Arc<str>>,
}

impl AdminAuth {
    pub fn new(token: Option<&str>) -> Self {
        Self {
            token: token.map(Arc::from),
        }
    }
}

impl tonic::service::Interceptor for AdminAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(expected) = &self.token else {
            return Ok(request);
        };
        let Some(value) = request.metadata().get("authorization") else {
            return Err(Status::unauthenticated(
                "missing admin token: send the metadata `authorization: Bearer <admin token>`",
            ));
        };
        let presented = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| {
                Status::unauthenticated(
                    "malformed authorization metadata: expected `Bearer <admin token>`",
                )
            })?;
        if bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
            Ok(request)
        } else {
            Err(Status::unauthenticated("admin token does not match"))
        }
    }
}

/// The name a change is recorded under: the `x-hookgate-actor` metadata, `admin` when absent.
/// It is recorded, never trusted for access.
pub fn actor<T>(request: &Request<T>) -> Result<String, Status> {
    let Some(value) = request.metadata().get("x-hookgate-actor") else {
        return Ok("admin".to_owned());
    };
    let actor = value
        .to_str()
        .map(str::trim)
        .map_err(|_| Status::invalid_argument("x-hookgate-actor must be printable ASCII"))?;
    if actor.is_empty() {
        return Ok("admin".to_owned());
    }
    if actor.len() > 100 {
        return Err(Status::invalid_argument(
            "x-hookgate-actor must be at most 100 characters",
        ));
    }
    Ok(actor.to_owned())
}
