//! How a client subcommand fails: the gRPC status the API answered (or UNAVAILABLE when nothing
//! answered), a flag combination that cannot be sent, or an outcome that is itself a failure. Each
//! has its own exit code, so a script can tell "not found" from "server down" without reading
//! stderr.

use std::fmt;

use tonic::{Code, Status};

/// Why a client subcommand did not succeed.
#[derive(Debug)]
pub enum Failure {
    /// The API answered this status; connecting failures are UNAVAILABLE.
    Status(Status),
    /// The flags given cannot make a request (exit 2, as for clap's own usage errors).
    Usage(String),
    /// The call succeeded but what it reports is a failure (a test delivery answered 401).
    Outcome(String),
}

impl Failure {
    /// 10 + the gRPC code number for a status (NOT_FOUND 15, UNAVAILABLE 24, UNAUTHENTICATED
    /// 26, ...), 2 for a usage error, 1 for a failed outcome. README's "Admin CLI" has the table.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Status(status) => 10 + status.code() as u8,
            Failure::Usage(_) => 2,
            Failure::Outcome(_) => 1,
        }
    }
}

impl From<Status> for Failure {
    fn from(status: Status) -> Self {
        Failure::Status(status)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Status(status) => {
                write!(f, "{}: {}", code_name(status.code()), status.message())
            }
            Failure::Usage(message) | Failure::Outcome(message) => f.write_str(message),
        }
    }
}

/// The canonical name of a gRPC code, as the gRPC specification and grpcurl spell it.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
