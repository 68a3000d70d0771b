//! The one mapping from domain errors to gRPC status codes.

use tonic::Status;

use crate::receivers::ValidationError;
use crate::store::StoreError;
use crate::sync::FollowError;

impl From<ValidationError> for Status {
    fn from(err: ValidationError) -> Self {
        Status::invalid_argument(err.to_string())
    }
}

impl From<StoreError> for Status {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound { .. } => Status::not_found(err.to_string()),
            StoreError::NameTaken(_) => Status::already_exists(err.to_string()),
            StoreError::RepositoryIdMismatch { .. } => Status::failed_precondition(err.to_string()),
            StoreError::Unavailable(ref e) => {
                tracing::warn!(error = %e, "admin call failed: database unavailable");
                Status::unavailable("the database is unavailable; retry shortly")
            }
            StoreError::Refused(ref e) => {
                tracing::warn!(error = %e, "admin call failed: the database refused a value");
                Status::invalid_argument(format!(
                    "the database refused a value of this request: {e}"
                ))
            }
            StoreError::Database(ref e) => {
                tracing::error!(error = %e, "admin call failed: database error");
                Status::internal("database error (see the server log)")
            }
            StoreError::SecretKey { .. } => {
                tracing::error!(error = %err, "admin call failed: secret key");
                Status::failed_precondition(err.to_string())
            }
            StoreError::Corrupt { .. } => {
                tracing::error!(error = %err, "admin call failed: corrupt row");
                Status::internal(err.to_string())
            }
        }
    }
}

impl From<FollowError> for Status {
    fn from(err: FollowError) -> Self {
        match err {
            FollowError::Stopping => Status::unavailable(
                "the server is shutting down: call Watch again (on this server once it is back, or \
                 on another replica) with after_cursor set to the last cursor you received, and \
                 the feed goes on with nothing lost or repeated",
            ),
            FollowError::Store(e) => e.into(),
        }
    }
}

/// Parses a resource id given in field `field`: empty or malformed is `INVALID_ARGUMENT`.
pub fn parse_id(field: &str, raw: &str) -> Result<uuid::Uuid, Status> {
    if raw.trim().is_empty() {
        return Err(Status::invalid_argument(format!("{field} is required")));
    }
    uuid::Uuid::parse_str(raw.trim()).map_err(|_| {
        Status::invalid_argument(format!(
            "{field} {raw:?} is not a UUID (expected the form 4f2c1c3e-8a6b-4d2e-9f4a-0b1c2d3e4f5a)"
        ))
    })
}

/// The page size in force: 0 means `default`, more than `max` or negative is refused.
pub fn page_size(raw: i32, default: u64, max: u64) -> Result<u64, Status> {
    match raw {
        0 => Ok(default),
        n if n < 0 => Err(Status::invalid_argument(format!(
            "page_size must not be negative (got {n})"
        ))),
        n if n as u64 > max => Err(Status::invalid_argument(format!(
            "page_size {n} is over the maximum of {max}"
        ))),
        n => Ok(n as u64),
    }
}
