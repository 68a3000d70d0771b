//! The life of a delivery.

use std::fmt;

/// Where a delivery is in its life. `PENDING` → `PROCESSING` → `PROCESSED` (or back to `PENDING`
/// after a failed try, and `FAILED` after the last); `IGNORED` and `REJECTED` are final at intake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    Pending,
    Processing,
    Processed,
    Ignored,
    Failed,
    Rejected,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 6] = [
        DeliveryState::Pending,
        DeliveryState::Processing,
        DeliveryState::Processed,
        DeliveryState::Ignored,
        DeliveryState::Failed,
        DeliveryState::Rejected,
    ];

    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "PENDING",
            DeliveryState::Processing => "PROCESSING",
            DeliveryState::Processed => "PROCESSED",
            DeliveryState::Ignored => "IGNORED",
            DeliveryState::Failed => "FAILED",
            DeliveryState::Rejected => "REJECTED",
        }
    }

    pub fn from_db(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
