//! Health read from the delivery log, for one receiver or a page of them at once, in a fixed
//! number of statements whatever the page's size (four at most), each of which reads only index
//! entries of `idx_deliveries_receiver_state_time` (receiver, state, receive time) and the rows
//! it names:
//!
//! 1. counts by state over the last day, the last hour's among them;
//! 2. the newest receive time in each state, one step down the index per receiver and state;
//! 3. the newest failed, rejected and ignored delivery's row (its id and note), by the times
//!    of 2;
//! 4. only for receivers whose newest request was rejected: how many in a row were.
//!
//! What the ingress answered without storing a delivery comes from the [`Tally`].

use std::collections::HashMap;
use std::sync::Arc;

use sea_orm::sea_query::{Alias, Asterisk, Expr, ExprTrait, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, FromQueryResult, Iterable, QueryFilter,
    QuerySelect,
};
use uuid::Uuid;

use super::diagnosis::{Evidence, LastByState, Latest, diagnose};
use super::tally::Tally;
use super::{OutcomeCounts, ReceiverError, ReceiverHealth};
use crate::db::Db;
use crate::deliveries::DeliveryState;
use crate::entity::{Id, delivery, receiver};
use crate::receivers::Receiver;
use crate::store::StoreError;
use crate::time::Timestamp;

/// Computes receivers' health from the delivery log and this process's tally.
#[derive(Clone)]
pub struct HealthStore {
    db: Db,
    tally: Arc<Tally>,
    /// The base of receiver URLs, no trailing slash.
    public_url: String,
}

/// One row of the counts: a receiver's deliveries in one state.
#[derive(Debug, FromQueryResult)]
struct CountRow {
    receiver_id: Id,
    state: DeliveryState,
    last_hour: i64,
    last_day: i64,
}

/// A newest delivery of some state, as statement 3 reads it.
#[derive(Debug, FromQueryResult)]
struct LatestRow {
    id: Id,
    receiver_id: Id,
    state: DeliveryState,
    receive_time: Timestamp,
    process_time: Option<Timestamp>,
    last_error: Option<String>,
}

impl HealthStore {
    pub fn new(db: Db, tally: Arc<Tally>, public_url: String) -> Self {
        Self {
            db,
            tally,
            public_url,
        }
    }

    /// The health of `receiver` now.
    pub async fn of(&self, receiver: &Receiver) -> Result<ReceiverHealth, StoreError> {
        let mut all = self.of_all(std::slice::from_ref(receiver)).await?;
        Ok(all.pop().expect("one health for one receiver"))
    }

    /// The health of each of `receivers` now, in their order.
    pub async fn of_all(&self, receivers: &[Receiver]) -> Result<Vec<ReceiverHealth>, StoreError> {
        if receivers.is_empty() {
            return Ok(Vec::new());
        }
        let now = Timestamp::now();
        let hour_ago = now.minus(std::time::Duration::from_secs(3600));
        let day_ago = now.minus(super::tally::REMEMBERED);
        let ids: Vec<Id> = receivers.iter().map(|r| Id::from(r.id)).collect();

        let counts = self.counts(&ids, hour_ago, day_ago).await?;
        let last = self.last_times(&ids).await?;
        let latest = self.latest(&last).await?;
        let runs = self.rejected_runs(&last).await?;

        let healths = receivers
            .iter()
            .map(|r| {
                let (mut last_hour, mut last_day) = counts.get(&r.id).copied().unwrap_or_default();
                let last = last.get(&r.id).copied().unwrap_or_default();
                let remembered = self.tally.of(r.id, now);
                for (counts, memory) in [
                    (&mut last_hour, remembered.last_hour),
                    (&mut last_day, remembered.last_day),
                ] {
                    counts.duplicate = memory.duplicate;
                    counts.rate_limited = memory.rate_limited;
                    counts.rejected += memory.rejected;
                }
                let stored_newest = last.newest().map(|(_, t)| t);
                let last_delivery_time =
                    [stored_newest, r.last_delivery_time, remembered.last_time()]
                        .into_iter()
                        .flatten()
                        .max();
                let take = |state| latest.get(&(r.id, state)).cloned();
                let (latest_failed, latest_rejected, latest_ignored) = (
                    take(DeliveryState::Failed),
                    take(DeliveryState::Rejected),
                    take(DeliveryState::Ignored),
                );
                let last_error = match (&latest_failed, &latest_rejected) {
                    (Some(f), Some(j)) if j.receive_time > f.receive_time => rejected_error(j),
                    (Some(f), _) => failed_error(f),
                    (None, Some(j)) => rejected_error(j),
                    (None, None) => None,
                };
                let url = self.url(r.id);
                let evidence = Evidence {
                    receiver: r,
                    url: &url,
                    now,
                    last,
                    last_request_time: last_delivery_time,
                    last_hour,
                    last_day,
                    latest_failed,
                    latest_rejected,
                    latest_ignored,
                    rejected_run: runs.get(&r.id).copied().unwrap_or(0),
                };
                let (diagnosis, diagnosis_message) = diagnose(&evidence);
                ReceiverHealth {
                    receiver_id: r.id,
                    last_delivery_time,
                    last_accepted_time: last.newest_accepted(),
                    last_rejected_time: [last.rejected, remembered.last_rejected_time]
                        .into_iter()
                        .flatten()
                        .max(),
                    last_failed_time: last.failed,
                    last_hour,
                    last_day,
                    last_error,
                    diagnosis,
                    diagnosis_message,
                    compute_time: now,
                }
            })
            .collect();
        Ok(healths)
    }

    /// A receiver's URL, as the admin API gives it.
    fn url(&self, id: Uuid) -> String {
        format!("{}/.api/webhooks/{id}", self.public_url)
    }

    /// Statement 1: per receiver, deliveries received in the last hour and day, by state.
    async fn counts(
        &self,
        ids: &[Id],
        hour_ago: Timestamp,
        day_ago: Timestamp,
    ) -> Result<HashMap<Uuid, (OutcomeCounts, OutcomeCounts)>, StoreError> {
        use delivery::Column as C;
        // COUNT of a CASE with no ELSE counts the rows it gives a value: a BIGINT on both
        // engines, where a SUM of ones could be a NUMERIC on PostgreSQL.
        let in_last_hour =
            Expr::case(Expr::col(C::ReceiveTime).gte(hour_ago), Expr::val(1)).count();
        let rows: Vec<CountRow> = delivery::Entity::find()
            .select_only()
            .column(C::ReceiverId)
            .column(C::State)
            .expr_as(in_last_hour, "last_hour")
            .expr_as(Expr::col(Asterisk).count(), "last_day")
            .filter(C::ReceiverId.is_in(ids.iter().copied()))
            // Every state, named: the index's second column then bounds the range of its third.
            .filter(C::State.is_in(DeliveryState::iter()))
            .filter(C::ReceiveTime.gte(day_ago))
            .group_by(C::ReceiverId)
            .group_by(C::State)
            .into_model()
            .all(&self.db)
            .await?;
        let mut counts: HashMap<Uuid, (OutcomeCounts, OutcomeCounts)> = HashMap::new();
        for row in rows {
            let (hour, day) = counts.entry(row.receiver_id.uuid()).or_default();
            for (window, n) in [(hour, row.last_hour), (day, row.last_day)] {
                let n = u64::try_from(n).unwrap_or(0);
                match row.state {
                    DeliveryState::Rejected => window.rejected += n,
                    state => {
                        window.accepted += n;
                        match state {
                            DeliveryState::Processed => window.processed += n,
                            DeliveryState::Ignored => window.ignored += n,
                            DeliveryState::Failed => window.failed += n,
                            _ => {}
                        }
                    }
                }
            }
        }
        Ok(counts)
    }

    /// Statement 2: per receiver, the newest receive time in each state (a correlated
    /// `MAX` per state, which each engine answers from the end of the index's range).
    async fn last_times(&self, ids: &[Id]) -> Result<HashMap<Uuid, LastByState>, StoreError> {
        use delivery::Column as C;
        let d = Alias::new("d");
        let mut select = Query::select();
        select
            .column((receiver::Entity, receiver::Column::Id))
            .from(receiver::Entity)
            .and_where(receiver::Column::Id.is_in(ids.iter().copied()));
        for state in DeliveryState::iter() {
            let newest = Query::select()
                .expr(Expr::col((d.clone(), C::ReceiveTime)).max())
                .from_as(delivery::Entity, d.clone())
                .and_where(
                    Expr::col((d.clone(), C::ReceiverId))
                        .equals((receiver::Entity, receiver::Column::Id)),
                )
                .and_where(Expr::col((d.clone(), C::State)).eq(state))
                .to_owned();
            select.expr_as(newest, Alias::new(last_column(state)));
        }
        let mut last = HashMap::new();
        for row in self.db.query_all(&select).await? {
            let id: Id = row.try_get("", "id")?;
            let mut times = LastByState::default();
            for state in DeliveryState::iter() {
                let time: Option<Timestamp> = row.try_get("", last_column(state))?;
                times.set(state, time);
            }
            last.insert(id.uuid(), times);
        }
        Ok(last)
    }

    /// Statement 3: the newest failed, rejected and ignored delivery of each receiver, found by
    /// the times statement 2 read.
    async fn latest(
        &self,
        last: &HashMap<Uuid, LastByState>,
    ) -> Result<HashMap<(Uuid, DeliveryState), Latest>, StoreError> {
        use delivery::Column as C;
        let mut which = Condition::any();
        let mut any = false;
        for (id, times) in last {
            for state in [
                DeliveryState::Failed,
                DeliveryState::Rejected,
                DeliveryState::Ignored,
            ] {
                if let Some(time) = times.get(state) {
                    any = true;
                    which = which.add(
                        Condition::all()
                            .add(C::ReceiverId.eq(Id::from(*id)))
                            .add(C::State.eq(state))
                            .add(C::ReceiveTime.eq(time)),
                    );
                }
            }
        }
        let mut latest = HashMap::new();
        if !any {
            return Ok(latest);
        }
        let rows: Vec<LatestRow> = delivery::Entity::find()
            .select_only()
            .columns([
                C::Id,
                C::ReceiverId,
                C::State,
                C::ReceiveTime,
                C::ProcessTime,
                C::LastError,
            ])
            .filter(which)
            .into_model()
            .all(&self.db)
            .await?;
        for row in rows {
            let key = (row.receiver_id.uuid(), row.state);
            let candidate = Latest {
                id: row.id.uuid(),
                receive_time: row.receive_time,
                process_time: row.process_time,
                note: row.last_error.unwrap_or_default(),
            };
            // Two received in the same microsecond: the greater id (the later, as ids are v7).
            match latest.get(&key) {
                Some(Latest { id, .. }) if *id > candidate.id => {}
                _ => {
                    latest.insert(key, candidate);
                }
            }
        }
        Ok(latest)
    }

    /// Statement 4: for each receiver whose newest stored request was rejected, how many
    /// rejected ones came after the newest that was not.
    async fn rejected_runs(
        &self,
        last: &HashMap<Uuid, LastByState>,
    ) -> Result<HashMap<Uuid, u64>, StoreError> {
        use delivery::Column as C;
        let mut which = Condition::any();
        let mut any = false;
        for (id, times) in last {
            if !matches!(times.newest(), Some((DeliveryState::Rejected, _))) {
                continue;
            }
            any = true;
            let mut run = Condition::all()
                .add(C::ReceiverId.eq(Id::from(*id)))
                .add(C::State.eq(DeliveryState::Rejected));
            if let Some(accepted) = times.newest_accepted() {
                run = run.add(C::ReceiveTime.gt(accepted));
            }
            which = which.add(run);
        }
        if !any {
            return Ok(HashMap::new());
        }
        let rows: Vec<(Id, i64)> = delivery::Entity::find()
            .select_only()
            .column(C::ReceiverId)
            .expr(Expr::col(Asterisk).count())
            .filter(which)
            .group_by(C::ReceiverId)
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, n)| (id.uuid(), u64::try_from(n).unwrap_or(0)))
            .collect())
    }
}

/// The column statement 2 names the newest time of `state` by.
fn last_column(state: DeliveryState) -> &'static str {
    match state {
        DeliveryState::Pending => "last_pending",
        DeliveryState::Processing => "last_processing",
        DeliveryState::Processed => "last_processed",
        DeliveryState::Ignored => "last_ignored",
        DeliveryState::Failed => "last_failed",
        DeliveryState::Rejected => "last_rejected",
    }
}

fn failed_error(l: &Latest) -> Option<ReceiverError> {
    Some(ReceiverError {
        delivery_id: l.id,
        time: l.process_time.unwrap_or(l.receive_time),
        message: l.note.clone(),
    })
}

fn rejected_error(l: &Latest) -> Option<ReceiverError> {
    Some(ReceiverError {
        delivery_id: l.id,
        time: l.receive_time,
        message: l.note.clone(),
    })
}
