//! The receiver registry: the domain types a receiver is made of, each of which only exists valid
//! (parse, don't validate), and the store that keeps receivers in the database.
//!
//! Nothing here knows about gRPC or HTTP: the admin API maps its messages onto these types, and
//! the ingress reads receivers through the store.

mod kind;
mod name;
mod options;
mod secret;
mod signing_token;
mod store;
mod urn;

pub use kind::CodeHostKind;
pub use name::ReceiverName;
pub use options::ReceiverOptions;
pub use secret::ReceiverSecret;
pub use signing_token::SigningToken;
pub use store::{
    NewReceiver, Receiver, ReceiverEntry, ReceiverPage, ReceiverPatch, ReceiverSecrets,
    ReceiverStore, RotatedSecret, RotatedSigningToken,
};
pub use urn::CodeHostUrn;

/// A value an admin gave that breaks one of the registry's rules. `field` names the request
/// field as the admin API spells it; `message` says what is wrong and what a valid value is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {message}")]
pub struct ValidationError {
    /// The field, as the admin API names it (`code_host_urn`, `options.push_branch_filter`).
    pub field: &'static str,
    /// What is wrong with it, phrased to follow the field name.
    pub message: String,
}

impl ValidationError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}
