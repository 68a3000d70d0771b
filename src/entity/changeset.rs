//! The `changesets` table, and the values its columns hold: the derived review and check states,
//! and the JSON of what the state is derived from (each field's time, reviewers' votes, check
//! results).

use std::collections::BTreeMap;

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use super::id::Id;
use super::json::Json;
use crate::hosts::effects::{ChangesetState, CheckStatus, Vote};
use crate::time::Timestamp;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "changesets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Id,
    pub repository_id: Id,
    pub number: i64,
    pub title: String,
    pub url: String,
    pub author: String,
    pub state: ChangesetState,
    pub review_state: ReviewState,
    pub check_state: CheckState,
    pub head_ref: String,
    pub base_ref: String,
    pub head_sha: String,
    pub labels: Json<Vec<String>>,
    pub host_update_time: Option<Timestamp>,
    /// Whether it is in the host's merge queue (migration `000021`; false before).
    pub in_merge_queue: bool,
    /// Whether it is set to merge by itself once its requirements are met (migration
    /// `000021`; false before).
    pub auto_merge: bool,
    /// Field name -> when the change that set it last is from.
    pub field_times: Json<BTreeMap<String, Stamp>>,
    /// Reviewer -> latest vote.
    pub reviews: Json<BTreeMap<String, StoredVote>>,
    /// `"<sha> <context>"` -> latest result.
    pub checks: Json<BTreeMap<String, StoredCheck>>,
    pub create_time: Timestamp,
    pub update_time: Timestamp,
}

/// The review state of a changeset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum ReviewState {
    #[sea_orm(string_value = "PENDING")]
    Pending,
    #[sea_orm(string_value = "APPROVED")]
    Approved,
    #[sea_orm(string_value = "CHANGES_REQUESTED")]
    ChangesRequested,
}

/// The check state of a changeset's head commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum CheckState {
    #[sea_orm(string_value = "UNKNOWN")]
    Unknown,
    #[sea_orm(string_value = "PENDING")]
    Pending,
    #[sea_orm(string_value = "PASSED")]
    Passed,
    #[sea_orm(string_value = "FAILED")]
    Failed,
}

/// When a fact is from, to tell which of two is the later: the host's time, then, for facts the
/// host stamps with the same time, their arrival (the receive time of the delivery that told
/// it). Stored as the host time alone while the arrival is unknown ([`Timestamp::EPOCH`], as in
/// what hookgate stored before it kept arrivals), else as `[time, arrival]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp {
    /// The host's time of the fact.
    pub time: Timestamp,
    /// When the delivery that told it was received.
    pub arrival: Timestamp,
}

impl Serialize for Stamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.arrival == Timestamp::EPOCH {
            self.time.serialize(s)
        } else {
            (self.time, self.arrival).serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Stamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Time(Timestamp),
            TimeAndArrival(Timestamp, Timestamp),
        }
        Ok(match Stored::deserialize(d)? {
            Stored::Time(time) => Stamp {
                time,
                arrival: Timestamp::EPOCH,
            },
            Stored::TimeAndArrival(time, arrival) => Stamp { time, arrival },
        })
    }
}

/// Whether an arrival is not known (left out of the stored JSON).
fn arrival_unknown(arrival: &Timestamp) -> bool {
    *arrival == Timestamp::EPOCH
}

/// A reviewer's latest vote and when it was cast.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredVote {
    pub vote: Vote,
    pub time: Timestamp,
    /// See [`Stamp::arrival`]; left out while unknown.
    #[serde(default, skip_serializing_if = "arrival_unknown")]
    pub arrival: Timestamp,
}

/// The latest result of one check context on one commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCheck {
    pub sha: String,
    pub context: String,
    pub status: CheckStatus,
    pub time: Timestamp,
    /// See [`Stamp::arrival`]; left out while unknown.
    #[serde(default, skip_serializing_if = "arrival_unknown")]
    pub arrival: Timestamp,
}

impl StoredVote {
    /// When it is from.
    pub fn stamp(&self) -> Stamp {
        Stamp {
            time: self.time,
            arrival: self.arrival,
        }
    }
}

impl StoredCheck {
    /// When it is from.
    pub fn stamp(&self) -> Stamp {
        Stamp {
            time: self.time,
            arrival: self.arrival,
        }
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
