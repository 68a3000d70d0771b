//! The delivery log: every request that reached a receiver, as received, with its outcome; the
//! worker that processes pending deliveries, and its supervisor; and the janitor that enforces
//! retention.

pub mod body;
pub mod chunk;
mod intake;
mod janitor;
mod key;
mod store;
mod supervisor;
mod worker;

pub use crate::config::{IntakeConfig, RETRY_BACKOFF, WorkerConfig};
pub use crate::entity::delivery::DeliveryState;
pub use intake::Intake;
pub use janitor::{KeptWithDeliveries, run_janitor};
pub use key::DeliveryKey;
pub use store::{
    ClaimedDelivery, Delivery, DeliveryFilter, DeliveryPage, DeliveryStore, NewDelivery,
    PreparedDelivery, REDELIVERABLE, RedeliverError, RedeliverFilter, Redelivered, Stored,
    queue_depth_query,
};
pub use supervisor::{WorkerStatus, supervise};
pub use worker::{Event, Handler, HandlerError, Outcome, Worker};
