//! The delivery log in the database: intake (with de-duplication), the worker's claims and
//! outcomes, listing for admins, redelivery and retention. The same statements run on SQLite and
//! PostgreSQL; claims lock with `FOR UPDATE SKIP LOCKED`, which SQLite (one writer at a time)
//! leaves out.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType, OnConflict, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, Set,
};
use uuid::Uuid;

use super::body::StoredBody;
use super::{DeliveryKey, DeliveryState};
use crate::db::Db;
use crate::entity::feed_entry::{self, FeedEntryKind};
use crate::entity::json::Json;
use crate::entity::{Id, delivery, delivery_body, receiver};
use crate::store::StoreError;
use crate::store::paging::Sort;
use crate::text::{Cap, bounded};
use crate::time::Timestamp;

/// A delivery as intake stores it.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub id: Uuid,
    pub receiver_id: Uuid,
    pub delivery_key: Option<DeliveryKey>,
    pub event: String,
    pub state: DeliveryState,
    pub receive_time: Timestamp,
    pub method: String,
    pub path: String,
    /// Lower-case names, secrets already redacted.
    pub request_headers: BTreeMap<String, String>,
    /// `None` for a rejected delivery.
    pub request_body: Option<Vec<u8>>,
    pub response_status: u16,
    pub response_body: Vec<u8>,
    pub last_error: Option<String>,
}

/// What intake did with a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Committed as a new delivery.
    New,
    /// The receiver already has an accepted delivery with this key: this one.
    Duplicate(Uuid),
}

/// A delivery as the log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: Uuid,
    pub receiver_id: Uuid,
    pub delivery_key: Option<DeliveryKey>,
    pub event: String,
    pub state: DeliveryState,
    pub receive_time: Timestamp,
    pub method: String,
    pub path: String,
    pub request_headers: BTreeMap<String, String>,
    /// Empty in listings; `None` for a rejected delivery.
    pub request_body: Option<Vec<u8>>,
    pub response_status: u16,
    pub response_body: Vec<u8>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub process_time: Option<Timestamp>,
    /// Who last put it back in the queue, and when; `None` if nobody did.
    pub redelivered_by: Option<String>,
    pub redeliver_time: Option<Timestamp>,
}

/// A delivery a worker has claimed: what the handler needs, and the claim it holds.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: Uuid,
    pub receiver_id: Uuid,
    pub event: String,
    pub request_headers: BTreeMap<String, String>,
    /// As received. The worker reads the event from it before any handler runs, and then lets
    /// it go (a handler is given the [`Event`](super::Event), and finds this empty).
    pub request_body: Vec<u8>,
    /// Tries so far, this one included. With the id it names the claim: a worker whose lease
    /// ran out finds its outcome refused, because the next claim raised it.
    pub attempts: i32,
    pub receive_time: Timestamp,
}

/// The columns of a delivery a claim reads back as it claims it.
#[derive(Debug, FromQueryResult)]
struct ClaimedRow {
    id: Id,
    receiver_id: Id,
    event: String,
    request_headers: Json<BTreeMap<String, String>>,
    attempts: i32,
    receive_time: Timestamp,
}

/// Which deliveries a listing shows.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub receiver_id: Option<Uuid>,
    /// Empty: every state.
    pub states: Vec<DeliveryState>,
    /// Only those answered outside 200-299, or `FAILED`.
    pub only_errors: bool,
    /// Received at or after.
    pub since: Option<Timestamp>,
    /// Received before.
    pub until: Option<Timestamp>,
    /// Only this event, exactly (`pull_request/opened`, `push`).
    pub event: Option<String>,
}

/// The states a delivery can be put back in the queue from: the worker is done with it and it
/// has a body. `PENDING` and `PROCESSING` ones are in the queue already; a `REJECTED` one was
/// kept without its body.
pub const REDELIVERABLE: [DeliveryState; 3] = [
    DeliveryState::Processed,
    DeliveryState::Ignored,
    DeliveryState::Failed,
];

/// Which deliveries a bulk redelivery puts back in the queue: one receiver's, in some of the
/// [`REDELIVERABLE`] states, received in a time range.
#[derive(Debug, Clone)]
pub struct RedeliverFilter {
    pub receiver_id: Uuid,
    /// Not empty, each one of [`REDELIVERABLE`].
    pub states: Vec<DeliveryState>,
    /// Received at or after.
    pub since: Option<Timestamp>,
    /// Received before.
    pub until: Option<Timestamp>,
}

/// What one call of [`DeliveryStore::redeliver_matching`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redelivered {
    /// How many deliveries matched the filter (on every page) when the call began.
    pub matched: u64,
    /// How many this call put back in the queue.
    pub queued: u64,
    /// How many of this page it left as they were: someone else queued them first.
    pub already_queued: u64,
    /// Where the next call goes on, after this `(receive_time, id)`; `None` when done.
    pub next: Option<(Timestamp, Uuid)>,
}

/// How many deliveries one write transaction of a bulk redelivery puts back in the queue: a
/// short hold of SQLite's write lock (intake goes on between two), and well under either
/// engine's bound on parameters.
const REDELIVER_PER_TRANSACTION: usize = 500;

/// One page of a listing, newest first.
#[derive(Debug)]
pub struct DeliveryPage {
    pub deliveries: Vec<Delivery>,
    pub total_size: u64,
    pub has_more: bool,
}

/// Why a delivery cannot be redelivered.
#[derive(Debug, thiserror::Error)]
pub enum RedeliverError {
    #[error(
        "delivery {0} was rejected and has no body to process: ask the code host to redeliver it"
    )]
    Rejected(Uuid),
    #[error("delivery {0} is already {1}: it will be processed without a redelivery")]
    Queued(Uuid, DeliveryState),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The delivery log.
#[derive(Debug, Clone)]
pub struct DeliveryStore {
    db: Db,
    /// The `last_delivery_time` this store last committed for each receiver: a batch whose
    /// newest delivery is within [`LAST_DELIVERY_RESOLUTION`] of it would not move it (the
    /// column only moves forward), so it is not asked to.
    marked: Arc<Mutex<HashMap<Uuid, Timestamp>>>,
}

/// The columns of a listing: everything but the bodies.
#[derive(Debug, FromQueryResult)]
struct ListedRow {
    id: Id,
    receiver_id: Id,
    delivery_key: Option<String>,
    event: String,
    state: DeliveryState,
    receive_time: Timestamp,
    method: String,
    path: String,
    request_headers: Json<BTreeMap<String, String>>,
    response_status: i32,
    attempts: i32,
    last_error: Option<String>,
    process_time: Option<Timestamp>,
    redelivered_by: Option<String>,
    redeliver_time: Option<Timestamp>,
}

impl DeliveryStore {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            marked: Arc::default(),
        }
    }

    /// The receivers of `latest` whose last delivery time a write must move: this store has
    /// committed none for them, or one older than the resolution allows.
    fn to_mark(&self, latest: HashMap<Uuid, Timestamp>) -> HashMap<Uuid, Timestamp> {
        let marked = self.marked.lock().unwrap_or_else(|p| p.into_inner());
        latest
            .into_iter()
            .filter(|(receiver, time)| {
                marked
                    .get(receiver)
                    .is_none_or(|m| *m < time.minus(LAST_DELIVERY_RESOLUTION))
            })
            .collect()
    }

    /// Notes the last delivery times a committed write set.
    fn note_marked(&self, written: HashMap<Uuid, Timestamp>) {
        let mut marked = self.marked.lock().unwrap_or_else(|p| p.into_inner());
        for (receiver, time) in written {
            let m = marked.entry(receiver).or_insert(time);
            *m = Ord::max(*m, time);
        }
    }

    /// Stores a delivery and commits it, and marks the receiver's last delivery time, in one
    /// transaction. A key the receiver already has an accepted delivery for is `Duplicate`, and
    /// nothing is written.
    pub async fn record(&self, new: NewDelivery) -> Result<Stored, StoreError> {
        self.record_with(new, |_| Box::pin(async { Ok(()) })).await
    }

    /// Like [`DeliveryStore::record`], and runs `then` in the same transaction after the
    /// delivery is written (for intake that applies its effects at once: the generic trigger).
    /// Nothing is written when `then` fails; `then` does not run for a duplicate.
    pub async fn record_with<F>(&self, new: NewDelivery, then: F) -> Result<Stored, StoreError>
    where
        F: for<'t> FnOnce(
            &'t sea_orm::DatabaseTransaction,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<(), DbErr>> + Send + 't>,
        >,
    {
        let prepared = PreparedDelivery::new(new);
        let txn = self.db.begin_write().await?;
        let (stored, marked) =
            insert_all(&txn, std::slice::from_ref(&prepared), |l| self.to_mark(l)).await?;
        let stored = stored[0];
        if stored == Stored::New {
            then(&txn).await?;
        }
        txn.commit().await?;
        self.note_marked(marked);
        Ok(stored)
    }

    /// Stores a batch of deliveries (from concurrent requests) in one transaction, committed
    /// once: what each became, in the batch's order. The whole batch is written or none of it.
    pub async fn record_batch(
        &self,
        batch: &[PreparedDelivery],
    ) -> Result<Vec<Stored>, StoreError> {
        if let Some(written) = self.record_batch_in_one_call(batch).await {
            return written;
        }
        if let Some(written) = self.record_batch_in_one_statement(batch).await {
            return written;
        }
        let txn = self.db.begin_write().await?;
        let (stored, marked) = insert_all(&txn, batch, |l| self.to_mark(l)).await?;
        txn.commit().await?;
        self.note_marked(marked);
        Ok(stored)
    }

    /// [`DeliveryStore::record_batch`] on SQLite, in one call to the intake's write connection
    /// ([`Db::write_natively`]): what [`insert_all`] writes, in one message to that connection's
    /// thread and one answer, instead of a round trip for each statement. The bodies are written
    /// only for the rows inserted (a row's id exists only if it was), and a receiver's last
    /// delivery time only from its rows inserted. The write also reads, after its inserts, the
    /// accepted delivery of each key in the batch: the original of a delivery skipped as a
    /// duplicate (stored before it, or earlier in this batch), so nothing is read after the commit.
    /// `None` where there is no such connection (PostgreSQL, a database in memory).
    async fn record_batch_in_one_call(
        &self,
        batch: &[PreparedDelivery],
    ) -> Option<Result<Vec<Stored>, StoreError>> {
        use sea_orm::sea_query::{SqliteQueryBuilder, Value, Values};

        if self.db.is_postgres() || batch.is_empty() {
            return None;
        }
        let mut statements: Vec<(String, Vec<Value>)> = Vec::new();
        for chunk in batch.chunks(ROWS_PER_INSERT) {
            let (text, Values(params)) = insert_rows(chunk).build(SqliteQueryBuilder);
            statements.push((text, params));
        }
        // The accepted delivery of each key here, read after the inserts: a duplicate's original
        // (stored before, or earlier in this batch) is known before the commit, not looked up
        // after it.
        let keyed: Vec<(Id, &str)> = batch
            .iter()
            .filter_map(|p| Some((Id::from(p.receiver_id), p.delivery_key.as_ref()?.as_str())))
            .collect();
        for chunk in keyed.chunks(ROWS_PER_INSERT) {
            let mut sql = String::from(
                "SELECT id AS original_id, receiver_id AS original_receiver, \
                 accepted_key AS original_key FROM deliveries WHERE accepted_key IS NOT NULL \
                 AND (receiver_id, accepted_key) IN (VALUES ",
            );
            let mut values = Vec::with_capacity(chunk.len() * 2);
            for (i, (receiver, key)) in chunk.iter().enumerate() {
                sql.push_str(if i == 0 { "(?, ?)" } else { ", (?, ?)" });
                values.push(Value::from(*receiver));
                values.push(Value::from(key.to_string()));
            }
            sql.push(')');
            statements.push((sql, values));
        }
        let bodies: Vec<(Id, &StoredBody)> = batch
            .iter()
            .filter_map(|p| Some((p.row.id.clone().unwrap(), p.body.as_ref()?)))
            .collect();
        for chunk in bodies.chunks(ROWS_PER_INSERT) {
            // SQLite names the columns of a `VALUES` list column1, column2, ...
            let mut sql = String::from(
                "INSERT INTO delivery_bodies (delivery_id, body, encoding) \
                 SELECT column1, column2, column3 FROM (VALUES ",
            );
            let mut values = Vec::with_capacity(chunk.len() * 3);
            for (i, (id, body)) in chunk.iter().enumerate() {
                sql.push_str(if i == 0 { "(?, ?, ?)" } else { ", (?, ?, ?)" });
                values.push(Value::from(*id));
                values.push(Value::from(body.bytes.clone()));
                values.push(Value::from(body.encoding));
            }
            sql.push_str(") WHERE EXISTS (SELECT 1 FROM deliveries WHERE deliveries.id = column1)");
            statements.push((sql, values));
        }
        // Each receiver's newest delivery here, were every one inserted: which receivers to mark.
        let mut newest: HashMap<Uuid, Timestamp> = HashMap::new();
        let mut ids_of: BTreeMap<Uuid, Vec<Id>> = BTreeMap::new();
        for p in batch {
            let time = newest.entry(p.receiver_id).or_insert(p.receive_time);
            *time = Ord::max(*time, p.receive_time);
            ids_of
                .entry(p.receiver_id)
                .or_default()
                .push(p.row.id.clone().unwrap());
        }
        let to_mark = self.to_mark(newest);
        let resolution = i64::try_from(LAST_DELIVERY_RESOLUTION.as_micros()).unwrap_or(i64::MAX);
        // In the order of their ids, as every batch takes them (see `insert_all`). The time is
        // that of the receiver's newest delivery inserted here (none: no change).
        for (receiver_id, ids) in ids_of.iter().filter(|(r, _)| to_mark.contains_key(r)) {
            let newest_inserted = format!(
                "(SELECT MAX(receive_time) FROM deliveries WHERE id IN ({}))",
                vec!["?"; ids.len()].join(", ")
            );
            let sql = format!(
                "UPDATE receivers SET last_delivery_time = {newest_inserted} WHERE id = ? AND \
                 (last_delivery_time IS NULL OR last_delivery_time < {newest_inserted} - ?)"
            );
            let mut values = Vec::with_capacity(ids.len() * 2 + 2);
            values.extend(ids.iter().map(|id| Value::from(*id)));
            values.push(Value::from(Id::from(*receiver_id)));
            values.extend(ids.iter().map(|id| Value::from(*id)));
            values.push(Value::from(resolution));
            statements.push((sql, values));
        }
        let rows = match self.db.write_natively(statements).await? {
            Ok(rows) => rows,
            Err(e) => return Some(Err(e.into())),
        };
        Some(self.after_script(batch, rows, &to_mark).await)
    }

    /// [`DeliveryStore::record_batch`] on PostgreSQL, as one statement in a transaction of its
    /// own: one round trip to the database instead of one for each of `BEGIN`, the deliveries'
    /// INSERT, the bodies' INSERT and `COMMIT`. The bodies' INSERT rides in the same statement
    /// (a data-modifying `WITH`), for the rows the deliveries' INSERT returned; the statement also
    /// returns the accepted delivery already stored for each key of the batch, and the inserted
    /// rows' keys stand for the originals of keys told twice in the batch. `None` (the caller
    /// writes through a [`WriteTxn`](crate::db::WriteTxn)) on SQLite, for a batch of more rows
    /// than one INSERT carries, and for a batch that would mark a receiver's last delivery time:
    /// those updates are taken in one order across committers (see `insert_all`), which one
    /// statement does not promise.
    async fn record_batch_in_one_statement(
        &self,
        batch: &[PreparedDelivery],
    ) -> Option<Result<Vec<Stored>, StoreError>> {
        use sea_orm::sea_query::{PostgresQueryBuilder, Value, Values};

        if !self.db.is_postgres() || batch.is_empty() || batch.len() > ROWS_PER_INSERT {
            return None;
        }
        let mut newest: HashMap<Uuid, Timestamp> = HashMap::new();
        for p in batch {
            let time = newest.entry(p.receiver_id).or_insert(p.receive_time);
            *time = Ord::max(*time, p.receive_time);
        }
        if !self.to_mark(newest).is_empty() {
            return None;
        }
        let mut insert = insert_rows(batch);
        insert.returning(Query::returning().columns([
            delivery::Column::Id,
            delivery::Column::ReceiverId,
            delivery::Column::AcceptedKey,
        ]));
        let (text, Values(mut values)) = insert.build(PostgresQueryBuilder);
        let mut sql = format!("WITH ins AS ({text})");
        let param = |values: &mut Vec<Value>, value: Value, cast: &str| {
            values.push(value);
            format!("${}::{cast}", values.len())
        };
        let bodies: Vec<(Id, &StoredBody)> = batch
            .iter()
            .filter_map(|p| Some((p.row.id.clone().unwrap(), p.body.as_ref()?)))
            .collect();
        if !bodies.is_empty() {
            sql.push_str(
                ", bodies AS (INSERT INTO delivery_bodies (delivery_id, body, encoding) \
                 SELECT v.delivery_id, v.body, v.encoding FROM (VALUES ",
            );
            for (i, (id, body)) in bodies.iter().enumerate() {
                let row = format!(
                    "{}({}, {}, {})",
                    if i == 0 { "" } else { ", " },
                    param(&mut values, Value::from(*id), "varchar"),
                    param(&mut values, Value::from(body.bytes.clone()), "bytea"),
                    param(&mut values, Value::from(body.encoding), "varchar"),
                );
                sql.push_str(&row);
            }
            sql.push_str(
                ") AS v (delivery_id, body, encoding) \
                 WHERE v.delivery_id IN (SELECT id FROM ins))",
            );
        }
        sql.push_str(" SELECT 'inserted' AS kind, id, receiver_id, accepted_key FROM ins");
        let keyed: Vec<(Id, &str)> = batch
            .iter()
            .filter_map(|p| Some((Id::from(p.receiver_id), p.delivery_key.as_ref()?.as_str())))
            .collect();
        if !keyed.is_empty() {
            // Rows stored before this statement; a key's original inserted by this very
            // statement is among `ins`.
            sql.push_str(
                " UNION ALL SELECT 'stored', id, receiver_id, accepted_key FROM deliveries \
                 WHERE accepted_key IS NOT NULL AND (receiver_id, accepted_key) IN (VALUES ",
            );
            for (i, (receiver, key)) in keyed.iter().enumerate() {
                let row = format!(
                    "{}({}, {})",
                    if i == 0 { "" } else { ", " },
                    param(&mut values, Value::from(*receiver), "varchar"),
                    param(&mut values, Value::from(key.to_string()), "text"),
                );
                sql.push_str(&row);
            }
            sql.push(')');
        }
        let statement = sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            sql,
            Values(values),
        );
        let rows = match self.db.query_all_raw(statement).await {
            Ok(rows) => rows,
            Err(e) => return Some(Err(e.into())),
        };
        Some(self.after_statement(batch, rows).await)
    }

    /// What each delivery of a batch written by
    /// [`DeliveryStore::record_batch_in_one_statement`] became, from the rows its statement
    /// returned (`kind`, `id`, `receiver_id`, `accepted_key`). The statement has committed: a
    /// delivery skipped for a key whose original another committer stored while the statement
    /// ran (its INSERT waited for that commit, its reads did not see it) has its original looked
    /// up afresh. Should that look-up fail (the database went away just then), the batch is
    /// answered as not stored although its rows are: a host that retries a keyed delivery then
    /// hears it is a duplicate; nothing acknowledged is lost.
    async fn after_statement(
        &self,
        batch: &[PreparedDelivery],
        rows: Vec<sea_orm::QueryResult>,
    ) -> Result<Vec<Stored>, StoreError> {
        let mut inserted: HashSet<Id> = HashSet::with_capacity(rows.len());
        let mut originals: HashMap<(Id, String), Id> = HashMap::new();
        for row in rows {
            let id = row.try_get::<Id>("", "id")?;
            if row.try_get::<String>("", "kind")? == "inserted" {
                inserted.insert(id);
            }
            if let Some(key) = row.try_get::<Option<String>>("", "accepted_key")? {
                originals.insert((row.try_get::<Id>("", "receiver_id")?, key), id);
            }
        }
        for p in batch {
            let Some(key) = &p.delivery_key else { continue };
            let wanted = (Id::from(p.receiver_id), key.as_str().to_owned());
            if inserted.contains(&p.row.id.clone().unwrap()) || originals.contains_key(&wanted) {
                continue;
            }
            if let Some(original) = find_by_key_on(&self.db, p.receiver_id, key).await? {
                originals.insert(wanted, original);
            }
        }
        let (stored, _) =
            what_each_became(Originals::<Db>::Read(&originals), batch, &inserted).await?;
        Ok(stored)
    }

    /// What each delivery of a batch written by [`DeliveryStore::record_batch_in_one_call`]
    /// became, from the rows its write returned: the ids its inserts returned (`id`) and the
    /// accepted delivery of each of its keys (`original_id`, `original_receiver`,
    /// `original_key`), told apart by their columns; notes the receivers it marked.
    async fn after_script(
        &self,
        batch: &[PreparedDelivery],
        rows: Vec<crate::sqlite_writer::Row>,
        to_mark: &HashMap<Uuid, Timestamp>,
    ) -> Result<Vec<Stored>, StoreError> {
        let id = |row: &crate::sqlite_writer::Row, column: &str| -> Result<Id, DbErr> {
            row.text(column)
                .and_then(|text| text.parse().ok())
                .ok_or_else(|| {
                    DbErr::Custom(format!("the intake's write returned no id in {column}"))
                })
        };
        let mut inserted: HashSet<Id> = HashSet::with_capacity(rows.len());
        let mut originals: HashMap<(Id, String), Id> = HashMap::new();
        for row in rows {
            if row.get("original_id").is_some() {
                let key = row.text("original_key").ok_or_else(|| {
                    DbErr::Custom("the intake's write returned no key".to_owned())
                })?;
                originals.insert(
                    (id(&row, "original_receiver")?, key.to_owned()),
                    id(&row, "original_id")?,
                );
            } else {
                inserted.insert(id(&row, "id")?);
            }
        }
        let (stored, mut latest) =
            what_each_became(Originals::<Db>::Read(&originals), batch, &inserted).await?;
        latest.retain(|receiver, _| to_mark.contains_key(receiver));
        self.note_marked(latest);
        Ok(stored)
    }

    /// Replaces the stored answer of a delivery, on `conn` (the transaction that stores it).
    pub async fn set_response_body<C: ConnectionTrait>(
        conn: &C,
        id: Uuid,
        body: Vec<u8>,
    ) -> Result<(), DbErr> {
        delivery::Entity::update_many()
            .col_expr(delivery::Column::ResponseBody, Expr::value(body))
            .filter(delivery::Column::Id.eq(Id::from(id)))
            .exec(conn)
            .await?;
        Ok(())
    }

    /// The accepted delivery of `receiver` with host delivery id `key`, if there is one.
    pub async fn find_by_key(
        &self,
        receiver: Uuid,
        key: &DeliveryKey,
    ) -> Result<Option<Uuid>, StoreError> {
        Ok(find_by_key_on(&self.db, receiver, key).await?.map(Id::uuid))
    }

    pub async fn get(&self, id: Uuid) -> Result<Delivery, StoreError> {
        let m = delivery::Entity::find_by_id(Id::from(id))
            .one(&self.db)
            .await?
            .ok_or(StoreError::not_found("delivery", id))?;
        let body = delivery_body::Entity::find_by_id(m.id)
            .one(&self.db)
            .await?;
        let body = decode_body(m.id, body)?;
        Ok(to_delivery(m, body))
    }

    /// Deliveries matching `filter`, newest first, after the `(receive_time, id)` cursor,
    /// without their bodies.
    pub async fn list(
        &self,
        filter: &DeliveryFilter,
        after: Option<(Timestamp, Uuid)>,
        limit: u64,
    ) -> Result<DeliveryPage, StoreError> {
        let mut query = delivery::Entity::find();
        if let Some(receiver) = filter.receiver_id {
            query = query.filter(delivery::Column::ReceiverId.eq(Id::from(receiver)));
        }
        if !filter.states.is_empty() {
            query = query.filter(delivery::Column::State.is_in(filter.states.iter().copied()));
        }
        if filter.only_errors {
            query = query.filter(
                Condition::any()
                    .add(delivery::Column::ResponseStatus.lt(200))
                    .add(delivery::Column::ResponseStatus.gt(299))
                    .add(delivery::Column::State.eq(DeliveryState::Failed)),
            );
        }
        if let Some(since) = filter.since {
            query = query.filter(delivery::Column::ReceiveTime.gte(since));
        }
        if let Some(until) = filter.until {
            query = query.filter(delivery::Column::ReceiveTime.lt(until));
        }
        if let Some(event) = &filter.event {
            query = query.filter(delivery::Column::Event.eq(event.as_str()));
        }
        let total_size = query.clone().count(&self.db).await?;
        if let Some((time, id)) = after {
            let sort = Sort::newest_first(delivery::Column::ReceiveTime, delivery::Column::Id);
            query = query.filter(sort.after((time, id)));
        }
        use delivery::Column as C;
        let mut rows: Vec<ListedRow> = query
            .select_only()
            .columns([
                C::Id,
                C::ReceiverId,
                C::DeliveryKey,
                C::Event,
                C::State,
                C::ReceiveTime,
                C::Method,
                C::Path,
                C::RequestHeaders,
                C::ResponseStatus,
                C::Attempts,
                C::LastError,
                C::ProcessTime,
                C::RedeliveredBy,
                C::RedeliverTime,
            ])
            .order_by_desc(C::ReceiveTime)
            .order_by_desc(C::Id)
            .limit(limit + 1)
            .into_model()
            .all(&self.db)
            .await?;
        let has_more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let deliveries = rows
            .into_iter()
            .map(|r| {
                to_delivery(
                    delivery::Model {
                        id: r.id,
                        receiver_id: r.receiver_id,
                        // Not listed: `to_delivery` does not read it.
                        accepted_key: None,
                        delivery_key: r.delivery_key,
                        event: r.event,
                        state: r.state,
                        receive_time: r.receive_time,
                        method: r.method,
                        path: r.path,
                        request_headers: r.request_headers,
                        response_status: r.response_status,
                        response_body: Vec::new(),
                        attempts: r.attempts,
                        last_error: r.last_error,
                        process_time: r.process_time,
                        next_attempt_time: Timestamp::EPOCH,
                        lease_expire_time: None,
                        redelivered_by: r.redelivered_by,
                        redeliver_time: r.redeliver_time,
                        body_size: 0,
                    },
                    None,
                )
            })
            .collect();
        Ok(DeliveryPage {
            deliveries,
            total_size,
            has_more,
        })
    }

    /// Puts a processed, ignored or failed delivery back in the queue, as if new: due now,
    /// with its tries counted afresh, and recorded as redelivered by `actor`.
    pub async fn redeliver(
        &self,
        id: Uuid,
        actor: &str,
        now: Timestamp,
    ) -> Result<Delivery, RedeliverError> {
        let current = self.get(id).await?;
        match current.state {
            DeliveryState::Rejected => return Err(RedeliverError::Rejected(id)),
            s @ (DeliveryState::Pending | DeliveryState::Processing) => {
                return Err(RedeliverError::Queued(id, s));
            }
            DeliveryState::Processed | DeliveryState::Ignored | DeliveryState::Failed => {}
        }
        let updated = queue_again(actor, now)
            .filter(delivery::Column::Id.eq(Id::from(id)))
            .filter(delivery::Column::State.eq(current.state))
            .exec(&self.db)
            .await
            .map_err(StoreError::from)?;
        if updated.rows_affected == 0 {
            // Someone else moved it between the read and the write: report what it is now.
            let now_state = self.get(id).await?.state;
            return Err(RedeliverError::Queued(id, now_state));
        }
        Ok(self.get(id).await?)
    }

    /// How many deliveries `filter` matches now.
    pub async fn count_redeliverable(&self, filter: &RedeliverFilter) -> Result<u64, StoreError> {
        Ok(redeliverable(filter).count(&self.db).await?)
    }

    /// Puts up to `limit` of the deliveries `filter` matches back in the queue, oldest first
    /// from after the `(receive_time, id)` cursor `after`, each recorded as redelivered by
    /// `actor`; the worker is not woken here. A delivery another caller queued in the meantime
    /// is left as it is (`already_queued`): each write takes only rows still in a matching
    /// state, so two calls that race never queue one delivery twice. The writes are
    /// transactions of at most `REDELIVER_PER_TRANSACTION` (500) deliveries.
    pub async fn redeliver_matching(
        &self,
        filter: &RedeliverFilter,
        after: Option<(Timestamp, Uuid)>,
        limit: u64,
        actor: &str,
        now: Timestamp,
    ) -> Result<Redelivered, StoreError> {
        use delivery::Column as C;
        let matched = self.count_redeliverable(filter).await?;
        let mut page = redeliverable(filter);
        let sort = Sort::oldest_first(C::ReceiveTime, C::Id);
        if let Some(cursor) = after {
            page = page.filter(sort.after(cursor));
        }
        let mut candidates: Vec<(Id, Timestamp)> = sort
            .order(page)
            .select_only()
            .columns([C::Id, C::ReceiveTime])
            .limit(limit + 1)
            .into_tuple()
            .all(&self.db)
            .await?;
        let has_more = candidates.len() as u64 > limit;
        candidates.truncate(limit as usize);
        let mut queued = 0u64;
        for chunk in candidates.chunks(REDELIVER_PER_TRANSACTION) {
            let txn = self.db.begin_write().await?;
            let result = queue_again(actor, now)
                .filter(C::Id.is_in(chunk.iter().map(|(id, _)| *id)))
                // Only those still as the filter found them: one queued meanwhile stays as is.
                .filter(C::State.is_in(filter.states.iter().copied()))
                .exec(&txn)
                .await?;
            txn.commit().await?;
            queued += result.rows_affected;
        }
        Ok(Redelivered {
            matched,
            queued,
            already_queued: (candidates.len() as u64).saturating_sub(queued),
            next: match candidates.last() {
                Some((id, time)) if has_more => Some((*time, id.uuid())),
                _ => None,
            },
        })
    }

    /// Claims up to `max` due deliveries for `lease`: pending ones whose next try is due, and
    /// processing ones whose lease ran out (their worker died). No delivery is handed to two
    /// claimers at once. It takes them in the order they are due only while their bodies come
    /// to at most `max_bytes` together (`body_size`, as received: what the claim holds once
    /// they are decoded); the first is taken whatever its size, so a body larger than the
    /// budget is claimed alone rather than never. Also says whether the budget left due
    /// deliveries behind (so another claim need not wait).
    pub async fn claim(
        &self,
        max: u64,
        max_bytes: u64,
        lease: Duration,
        now: Timestamp,
    ) -> Result<(Vec<ClaimedDelivery>, bool), StoreError> {
        use delivery::Column as C;
        // Two reads, each a range of the queue index (partial on PENDING and PROCESSING, by
        // state and next attempt) that stops at `max`: the claims of dead workers first (they
        // are the oldest), then pending deliveries in the order they are due. One query with
        // both conditions would read every queued delivery's row, and sort them, at each
        // claim: the whole backlog, each time. On PostgreSQL the rows read are locked (others
        // skip them) until the claim commits.
        let due = |condition: Condition, order: bool, limit: u64| {
            let mut select = Query::select();
            select
                .columns([C::Id, C::BodySize])
                .from(delivery::Entity)
                .and_where(queued())
                .cond_where(condition);
            if order {
                select.order_by(C::NextAttemptTime, sea_orm::Order::Asc);
            }
            select
                .limit(limit)
                .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
                .to_owned()
        };
        let read = |rows: Vec<sea_orm::QueryResult>| {
            rows.iter()
                .map(|row| {
                    Ok((
                        row.try_get::<Id>("", "id")?,
                        row.try_get::<i64>("", "body_size")?,
                    ))
                })
                .collect::<Result<Vec<_>, DbErr>>()
        };
        // Nobody waits for a claim: the writers that answer someone go first.
        let txn = self.db.begin_background_write().await?;
        let mut candidates = read(
            txn.query_all(&due(
                Condition::all()
                    .add(C::State.eq(DeliveryState::Processing))
                    .add(C::LeaseExpireTime.lte(now)),
                false,
                max,
            ))
            .await?,
        )?;
        let left = max.saturating_sub(candidates.len() as u64);
        if left > 0 {
            candidates.extend(read(
                txn.query_all(&due(
                    Condition::all()
                        .add(C::State.eq(DeliveryState::Pending))
                        .add(C::NextAttemptTime.lte(now)),
                    true,
                    left,
                ))
                .await?,
            )?);
        }
        let ids = within_budget(&candidates, max_bytes);
        let cut_short = ids.len() < candidates.len();
        let rows = if ids.is_empty() {
            Vec::new()
        } else {
            // Only the columns a claim hands on come back, not the whole row.
            let claim = Query::update()
                .table(delivery::Entity)
                .value(C::State, DeliveryState::Processing)
                .value(C::LeaseExpireTime, now.plus(lease))
                .value(C::Attempts, Expr::col(C::Attempts).add(1))
                .and_where(C::Id.is_in(ids))
                .returning(Query::returning().columns([
                    C::Id,
                    C::ReceiverId,
                    C::Event,
                    C::RequestHeaders,
                    C::Attempts,
                    C::ReceiveTime,
                ]))
                .to_owned();
            txn.query_all(&claim)
                .await?
                .iter()
                .map(|row| ClaimedRow::from_query_result(row, ""))
                .collect::<Result<Vec<_>, DbErr>>()?
        };
        txn.commit().await?;
        // The bodies, read after the commit (they never change once written): the write lock
        // is held only for the small rows the claim rewrites.
        let mut bodies = bodies_of(&self.db, rows.iter().map(|m| m.id)).await?;
        // Decompressed on the blocking pool: a batch's bodies are megabytes, and the worker's
        // task also drives the writes of the batch before.
        let decode = move || {
            rows.into_iter()
                .map(|m| {
                    let body = decode_body(m.id, bodies.remove(&m.id))?;
                    Ok(ClaimedDelivery {
                        id: m.id.uuid(),
                        receiver_id: m.receiver_id.uuid(),
                        event: m.event,
                        request_headers: m.request_headers.0,
                        request_body: body.unwrap_or_default(),
                        attempts: m.attempts,
                        receive_time: m.receive_time,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()
        };
        let mut claimed = match tokio::task::spawn_blocking(decode).await {
            Ok(claimed) => claimed?,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => {
                return Err(StoreError::Unavailable(DbErr::Custom(format!(
                    "decoding claimed bodies: {e}"
                ))));
            }
        };
        claimed.sort_by_key(|c| c.receive_time);
        Ok((claimed, cut_short))
    }

    /// Records the outcome of a claimed delivery, on `conn` (the transaction its effects are
    /// written in). `false` when the claim is no longer held: the caller must roll back.
    pub async fn finish<C: ConnectionTrait>(
        conn: &C,
        claimed: &ClaimedDelivery,
        state: DeliveryState,
        note: Option<&str>,
        now: Timestamp,
    ) -> Result<bool, DbErr> {
        Self::finish_all(conn, &[(claimed, state, note)], now).await
    }

    /// Records the outcomes of claimed deliveries, on `conn` (the transaction their effects are
    /// written in), one statement for those that end alike. `false` when any claim is no
    /// longer held: the caller must roll back.
    pub async fn finish_all<C: ConnectionTrait>(
        conn: &C,
        finished: &[(&ClaimedDelivery, DeliveryState, Option<&str>)],
        now: Timestamp,
    ) -> Result<bool, DbErr> {
        let mut alike: Vec<(DeliveryState, Option<&str>, Vec<&ClaimedDelivery>)> = Vec::new();
        for &(claimed, state, note) in finished {
            match alike.iter_mut().find(|(s, n, _)| *s == state && *n == note) {
                Some((_, _, claims)) => claims.push(claimed),
                None => alike.push((state, note, vec![claimed])),
            }
        }
        let mut held = 0;
        for (state, note, claims) in alike {
            for claims in claims.chunks(256) {
                let result = delivery::Entity::update_many()
                    .col_expr(delivery::Column::State, Expr::value(state))
                    .col_expr(delivery::Column::ProcessTime, Expr::value(now))
                    .col_expr(
                        delivery::Column::LeaseExpireTime,
                        Expr::value(None::<Timestamp>),
                    )
                    .col_expr(
                        delivery::Column::LastError,
                        Expr::value(note.map(|n| bounded(n, Cap::NOTE))),
                    )
                    .filter(
                        claims
                            .iter()
                            .fold(Condition::any(), |any, c| any.add(claim_held(c))),
                    )
                    .exec(conn)
                    .await?;
                held += result.rows_affected;
            }
        }
        Ok(held == finished.len() as u64)
    }

    /// Records a failed try: back to `PENDING`, due after `retry_after`, or `FAILED` when
    /// there is no retry left (`retry_after` is `None`). Returns the new state, or `None` when
    /// the claim is no longer held.
    pub async fn fail(
        &self,
        claimed: &ClaimedDelivery,
        error: &str,
        retry_after: Option<Duration>,
        now: Timestamp,
    ) -> Result<Option<DeliveryState>, StoreError> {
        let txn = self.db.begin_background_write().await?;
        let state = Self::fail_on(&txn, claimed, error, retry_after, now).await?;
        txn.commit().await?;
        Ok(state)
    }

    /// Like [`DeliveryStore::fail`], on `conn` (a transaction the caller commits); a failure
    /// for good is told on the event feed there too.
    pub async fn fail_on<C: ConnectionTrait>(
        conn: &C,
        claimed: &ClaimedDelivery,
        error: &str,
        retry_after: Option<Duration>,
        now: Timestamp,
    ) -> Result<Option<DeliveryState>, DbErr> {
        let (state, next) = match retry_after {
            Some(wait) => (DeliveryState::Pending, now.plus(wait)),
            None => (DeliveryState::Failed, now),
        };
        let mut update = delivery::Entity::update_many()
            .col_expr(delivery::Column::State, Expr::value(state))
            .col_expr(delivery::Column::NextAttemptTime, Expr::value(next))
            .col_expr(
                delivery::Column::LeaseExpireTime,
                Expr::value(None::<Timestamp>),
            )
            .col_expr(
                delivery::Column::LastError,
                Expr::value(bounded(error, Cap::NOTE)),
            );
        if state == DeliveryState::Failed {
            update = update.col_expr(delivery::Column::ProcessTime, Expr::value(now));
        }
        let result = update.filter(claim_held(claimed)).exec(conn).await?;
        let held = result.rows_affected == 1;
        if held && state == DeliveryState::Failed {
            feed_entry::Entity::insert(feed_entry::ActiveModel::entry(
                FeedEntryKind::DeliveryFailed,
                feed_entry::Source::delivery(claimed.receiver_id, claimed.id),
                claimed.id,
                now,
            ))
            .exec_without_returning(conn)
            .await?;
        }
        Ok(held.then_some(state))
    }

    /// Deletes deliveries received before `cutoff`; returns how many.
    pub async fn purge_received_before(&self, cutoff: Timestamp) -> Result<u64, StoreError> {
        let result = delivery::Entity::delete_many()
            .filter(delivery::Column::ReceiveTime.lt(cutoff))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected)
    }

    /// Deliveries waiting for the worker, and the receive time of the oldest.
    pub async fn queue_depth(&self) -> Result<(u64, Option<Timestamp>), StoreError> {
        let row: Option<(i64, Option<Timestamp>)> =
            queue_depth_query().into_tuple().one(&self.db).await?;
        let (depth, oldest) = row.unwrap_or((0, None));
        Ok((u64::try_from(depth).unwrap_or(0), oldest))
    }

    /// The newest `limit` deliveries of `receiver` (of every receiver when `None`): each one's
    /// id, state and tries, newest first. Cheap (the receive-time indexes), and it changes when
    /// a delivery arrives, is processed or is queued again, whichever replica did it: what an
    /// open console page looks at to know that its list is out of date.
    pub async fn newest_states(
        &self,
        receiver: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<(Uuid, DeliveryState, i32)>, StoreError> {
        use delivery::Column as C;
        let mut query = delivery::Entity::find();
        if let Some(receiver) = receiver {
            query = query.filter(C::ReceiverId.eq(Id::from(receiver)));
        }
        let rows: Vec<(Id, DeliveryState, i32)> = query
            .select_only()
            .columns([C::Id, C::State, C::Attempts])
            .order_by_desc(C::ReceiveTime)
            .order_by_desc(C::Id)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, state, attempts)| (id.uuid(), state, attempts))
            .collect())
    }
}

/// The ids of `candidates` (id and body size, in the order they are due) a claim of at most
/// `max_bytes` takes: those before the first that would bring the total over it, and always
/// the first.
fn within_budget(candidates: &[(Id, i64)], max_bytes: u64) -> Vec<Id> {
    let mut total = 0u64;
    let mut ids = Vec::with_capacity(candidates.len());
    for (id, size) in candidates {
        total = total.saturating_add(u64::try_from(*size).unwrap_or(0));
        if total > max_bytes && !ids.is_empty() {
            break;
        }
        ids.push(*id);
    }
    ids
}

/// A delivery ready to be written: its row, with the body already encoded for storage, so
/// that compressing it is done by the request's own task and not by whoever writes the batch.
#[derive(Debug, Clone)]
pub struct PreparedDelivery {
    row: delivery::ActiveModel,
    /// Its body as stored, for `delivery_bodies`; `None` for a rejected delivery.
    body: Option<StoredBody>,
    receiver_id: Uuid,
    delivery_key: Option<DeliveryKey>,
    receive_time: Timestamp,
    /// The bytes the row holds, roughly: bounds how much one batch carries.
    size: usize,
}

impl PreparedDelivery {
    /// Its text columns are `bounded` here, where every delivery enters the log (the key
    /// already is: a [`DeliveryKey`] only exists bounded).
    pub fn new(new: NewDelivery) -> Self {
        // What a code host sent becomes text the store holds: the event (from a body's
        // `action`) and the error; the body itself is kept as bytes.
        let new = NewDelivery {
            event: bounded(new.event, Cap::EVENT),
            path: bounded(new.path, Cap::PATH),
            last_error: new.last_error.map(|e| bounded(e, Cap::NOTE)),
            ..new
        };
        let body_size = new
            .request_body
            .as_ref()
            .map_or(0, |b| i64::try_from(b.len()).unwrap_or(i64::MAX));
        let body = new.request_body.map(StoredBody::encode);
        // The headers' stored size, near enough: each name and value, quoted and separated.
        let headers_size: usize = new
            .request_headers
            .iter()
            .map(|(name, value)| name.len() + value.len() + 6)
            .sum();
        let size = headers_size
            + body.as_ref().map_or(0, |b| b.bytes.len())
            + new.response_body.len()
            + new.event.len()
            + new.path.len();
        PreparedDelivery {
            receiver_id: new.receiver_id,
            delivery_key: new.delivery_key.clone(),
            receive_time: new.receive_time,
            size,
            body,
            row: delivery::ActiveModel {
                id: Set(new.id.into()),
                receiver_id: Set(new.receiver_id.into()),
                accepted_key: Set(new
                    .delivery_key
                    .as_ref()
                    .filter(|_| new.state != DeliveryState::Rejected)
                    .map(|key| key.as_str().to_owned())),
                delivery_key: Set(new.delivery_key.map(String::from)),
                event: Set(new.event),
                state: Set(new.state),
                receive_time: Set(new.receive_time),
                method: Set(new.method),
                path: Set(new.path),
                request_headers: Set(Json(new.request_headers)),
                response_status: Set(i32::from(new.response_status)),
                response_body: Set(new.response_body),
                attempts: Set(0),
                last_error: Set(new.last_error),
                process_time: Set(None),
                next_attempt_time: Set(new.receive_time),
                lease_expire_time: Set(None),
                redelivered_by: Set(None),
                redeliver_time: Set(None),
                body_size: Set(body_size),
            },
        }
    }

    /// The bytes it will write, roughly.
    pub fn size(&self) -> usize {
        self.size
    }
}

/// The most rows one INSERT carries: well under SQLite's 32,766 bound parameters (17 a row).
const ROWS_PER_INSERT: usize = 512;

/// How far behind a receiver's `last_delivery_time` may be before a delivery moves it: it is
/// written at most once a second per receiver, so concurrent batches (and replicas) do not all
/// queue on that one row.
const LAST_DELIVERY_RESOLUTION: Duration = Duration::from_secs(1);

/// Writes `batch` on `txn`: one multi-row INSERT that skips rows whose delivery key the receiver
/// already has (`ON CONFLICT DO NOTHING`, the partial unique index on accepted keys), one of the
/// bodies of the rows inserted, the originals of those skipped, and the last delivery time of
/// each receiver `to_mark` keeps (of the newest of its deliveries here). Returns what each
/// delivery became, and the last delivery times written.
async fn insert_all(
    txn: &crate::db::WriteTxn,
    batch: &[PreparedDelivery],
    to_mark: impl FnOnce(HashMap<Uuid, Timestamp>) -> HashMap<Uuid, Timestamp>,
) -> Result<(Vec<Stored>, HashMap<Uuid, Timestamp>), DbErr> {
    let mut inserted: HashSet<Id> = HashSet::with_capacity(batch.len());
    for chunk in batch.chunks(ROWS_PER_INSERT) {
        for row in txn.query_all(&insert_rows(chunk)).await? {
            inserted.insert(row.try_get::<Id>("", "id")?);
        }
    }
    let bodies: Vec<delivery_body::ActiveModel> = batch
        .iter()
        .filter_map(|p| {
            let id = p.row.id.clone().unwrap();
            let body = p.body.as_ref().filter(|_| inserted.contains(&id))?;
            Some(delivery_body::ActiveModel {
                delivery_id: Set(id),
                body: Set(body.bytes.clone()),
                encoding: Set(body.encoding),
            })
        })
        .collect();
    for chunk in bodies.chunks(ROWS_PER_INSERT) {
        delivery_body::Entity::insert_many(chunk.iter().cloned())
            .exec_without_returning(txn)
            .await?;
    }
    let (stored, latest) = what_each_became(Originals::On(txn), batch, &inserted).await?;
    let marked = to_mark(latest);
    // In one order (the receivers' ids), as every batch takes them: two committers on
    // PostgreSQL, each marking the same receivers in its map's own order, would each hold the row
    // the other waits for, and the database would abort one of them (a deadlock, answered 503).
    let mut order: Vec<(&Uuid, &Timestamp)> = marked.iter().collect();
    order.sort_unstable_by_key(|(receiver_id, _)| **receiver_id);
    for (&receiver_id, &time) in order {
        receiver::Entity::update_many()
            .col_expr(receiver::Column::LastDeliveryTime, Expr::value(time))
            .filter(receiver::Column::Id.eq(Id::from(receiver_id)))
            .filter(
                Condition::any()
                    .add(receiver::Column::LastDeliveryTime.is_null())
                    .add(
                        receiver::Column::LastDeliveryTime.lt(time.minus(LAST_DELIVERY_RESOLUTION)),
                    ),
            )
            .exec(txn)
            .await?;
    }
    Ok((stored, marked))
}

/// The INSERT of `rows` into `deliveries` that skips a row whose delivery key its receiver
/// already has (`ON CONFLICT DO NOTHING`, the partial unique index on accepted keys) and returns
/// the ids of the rows it inserted.
fn insert_rows(rows: &[PreparedDelivery]) -> sea_orm::sea_query::InsertStatement {
    let mut insert = delivery::Entity::insert_many(rows.iter().map(|p| p.row.clone())).into_query();
    insert
        .on_conflict(OnConflict::new().do_nothing().to_owned())
        .returning_col(delivery::Column::Id);
    insert
}

/// Where the original of a skipped delivery is found.
enum Originals<'a, C> {
    /// Looked up on this connection (the batch's transaction).
    On(&'a C),
    /// Read already, by receiver and key.
    Read(&'a HashMap<(Id, String), Id>),
}

/// What each delivery of `batch` became, given the ids of those `inserted` (the others were
/// skipped by the unique index: their receiver has an accepted delivery with their key, written
/// before or earlier in the same batch, found in `originals`); and the newest receive time of
/// each receiver's deliveries inserted.
async fn what_each_became<C: ConnectionTrait>(
    originals: Originals<'_, C>,
    batch: &[PreparedDelivery],
    inserted: &HashSet<Id>,
) -> Result<(Vec<Stored>, HashMap<Uuid, Timestamp>), DbErr> {
    let mut stored = Vec::with_capacity(batch.len());
    let mut latest: HashMap<Uuid, Timestamp> = HashMap::new();
    for p in batch {
        let id = p.row.id.clone().unwrap();
        if inserted.contains(&id) {
            stored.push(Stored::New);
            let time = latest.entry(p.receiver_id).or_insert(p.receive_time);
            *time = Ord::max(*time, p.receive_time);
            continue;
        }
        let original = match (&p.delivery_key, &originals) {
            (None, _) => None,
            (Some(key), Originals::On(conn)) => find_by_key_on(*conn, p.receiver_id, key).await?,
            (Some(key), Originals::Read(read)) => read
                .get(&(Id::from(p.receiver_id), key.as_str().to_owned()))
                .copied(),
        };
        let original = original.ok_or_else(|| {
            DbErr::Custom(format!(
                "delivery {id} was not inserted, and no accepted delivery has its key"
            ))
        })?;
        stored.push(Stored::Duplicate(original.uuid()));
    }
    Ok((stored, latest))
}

/// The id of the accepted delivery of `receiver` with key `key`, on `conn`.
async fn find_by_key_on<C: ConnectionTrait>(
    conn: &C,
    receiver: Uuid,
    key: &DeliveryKey,
) -> Result<Option<Id>, DbErr> {
    delivery::Entity::find()
        .select_only()
        .column(delivery::Column::Id)
        .filter(delivery::Column::ReceiverId.eq(Id::from(receiver)))
        .filter(delivery::Column::AcceptedKey.eq(key.as_str()))
        .into_tuple()
        .one(conn)
        .await
}

/// The update that puts deliveries back in the queue as if new (due `now`, tries counted
/// afresh), recorded as redelivered by `actor` at `now`.
fn queue_again(actor: &str, now: Timestamp) -> sea_orm::UpdateMany<delivery::Entity> {
    use delivery::Column as C;
    delivery::Entity::update_many()
        .col_expr(C::State, Expr::value(DeliveryState::Pending))
        .col_expr(C::Attempts, Expr::value(0))
        .col_expr(C::NextAttemptTime, Expr::value(now))
        .col_expr(C::LeaseExpireTime, Expr::value(None::<Timestamp>))
        .col_expr(C::RedeliveredBy, Expr::value(actor.to_owned()))
        .col_expr(C::RedeliverTime, Expr::value(now))
}

/// The deliveries a bulk redelivery's `filter` matches (by the index of a receiver's
/// deliveries by state and receive time).
fn redeliverable(filter: &RedeliverFilter) -> sea_orm::Select<delivery::Entity> {
    use delivery::Column as C;
    let mut query = delivery::Entity::find()
        .filter(C::ReceiverId.eq(Id::from(filter.receiver_id)))
        .filter(C::State.is_in(filter.states.iter().copied()));
    if let Some(since) = filter.since {
        query = query.filter(C::ReceiveTime.gte(since));
    }
    if let Some(until) = filter.until {
        query = query.filter(C::ReceiveTime.lt(until));
    }
    query
}

/// The query of [`DeliveryStore::queue_depth`]: how many deliveries are queued and the receive
/// time of the oldest, in one statement, so that both are read from the queue's own index and
/// the cost follows the queue, not the history kept. Asked for alone, the oldest was planned by
/// PostgreSQL as a walk of `idx_deliveries_time` from the oldest delivery kept, row by row until
/// one is queued: with 40,000 processed deliveries kept and none queued, every scrape of
/// `/metrics` read all 40,000 (93 ms), and more as history grows. With the count beside it,
/// that shortcut does not apply.
pub fn queue_depth_query() -> sea_orm::Select<delivery::Entity> {
    delivery::Entity::find()
        .filter(queued())
        .select_only()
        .column_as(Expr::cust("COUNT(*)"), "depth")
        .column_as(delivery::Column::ReceiveTime.min(), "oldest")
}

/// The SQL of [`queued`].
const QUEUED_SQL: &str = "state IN ('PENDING', 'PROCESSING')";

/// "The delivery is queued" (`PENDING` or `PROCESSING`), written as the queue index's own
/// condition with its values in the SQL text. SQLite takes a partial index only for a query
/// whose condition is the index's, and it plans a statement before its parameters are bound:
/// with the states as parameters it never took the index and read every delivery in the log
/// (bodies and all) at each claim and each `/metrics` scrape.
fn queued() -> sea_orm::sea_query::SimpleExpr {
    Expr::cust(QUEUED_SQL)
}

/// The condition that a claim is still held: same delivery, still processing, same try.
fn claim_held(claimed: &ClaimedDelivery) -> Condition {
    Condition::all()
        .add(delivery::Column::Id.eq(Id::from(claimed.id)))
        .add(delivery::Column::State.eq(DeliveryState::Processing))
        .add(delivery::Column::Attempts.eq(claimed.attempts))
}

/// The stored bodies of deliveries `ids`, by delivery (one that has none is missing).
async fn bodies_of<C: ConnectionTrait>(
    conn: &C,
    ids: impl Iterator<Item = Id>,
) -> Result<HashMap<Id, delivery_body::Model>, DbErr> {
    let ids: Vec<Id> = ids.collect();
    let mut bodies = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(ROWS_PER_INSERT) {
        for b in delivery_body::Entity::find()
            .filter(delivery_body::Column::DeliveryId.is_in(chunk.iter().copied()))
            .all(conn)
            .await?
        {
            bodies.insert(b.delivery_id, b);
        }
    }
    Ok(bodies)
}

/// A stored body of delivery `id` as it was received.
fn decode_body(
    id: Id,
    stored: Option<delivery_body::Model>,
) -> Result<Option<Vec<u8>>, StoreError> {
    stored
        .map(|b| StoredBody::decode(b.body, b.encoding))
        .transpose()
        .map_err(|why| StoreError::Corrupt {
            id: id.to_string(),
            why: format!("request body: {why}"),
        })
}

/// A delivery's row, with its request body (decoded, or `None`), as the log shows it.
fn to_delivery(m: delivery::Model, request_body: Option<Vec<u8>>) -> Delivery {
    Delivery {
        id: m.id.uuid(),
        receiver_id: m.receiver_id.uuid(),
        request_headers: m.request_headers.0,
        delivery_key: m.delivery_key.as_deref().and_then(DeliveryKey::parse),
        event: m.event,
        state: m.state,
        receive_time: m.receive_time,
        method: m.method,
        path: m.path,
        request_body,
        response_status: u16::try_from(m.response_status).unwrap_or(0),
        response_body: m.response_body,
        attempts: m.attempts,
        last_error: m.last_error,
        process_time: m.process_time,
        redelivered_by: m.redelivered_by,
        redeliver_time: m.redeliver_time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queued_condition_names_the_queued_states_as_stored_and_as_the_index_says() {
        let expected = format!(
            "state IN ('{}', '{}')",
            DeliveryState::Pending,
            DeliveryState::Processing
        );
        assert_eq!(QUEUED_SQL, expected);
        let index =
            include_str!("../../migrations/src/m20261201_000010_queue_index_with_receive_time.rs");
        assert!(
            index.contains(&format!("WHERE {expected}")),
            "the queue index's condition is the one the queries give"
        );
    }
}
