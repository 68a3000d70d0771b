//! The worker: claims pending deliveries, reads each one's event and effects once (on the
//! blocking pool, before any transaction opens), hands them to the handler, and writes the
//! outcome together with the handler's writes in one transaction. A failed try is retried with
//! backoff, then the delivery is `FAILED`. A claim is a lease: a worker that dies holding one
//! loses it when the lease runs out, and another worker takes the delivery again.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use futures_util::FutureExt as _;

use sea_orm::{DatabaseTransaction, DbErr};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::chunk::ChunkWrites;
use super::{ClaimedDelivery, DeliveryState, DeliveryStore, WorkerConfig};
use crate::db::Db;
use crate::hosts::{self, Classified, Disposition, Effect, EffectError, Host};
use crate::metrics::WorkerOutcome;
use crate::receivers::{Receiver, ReceiverEntry, ReceiverStore};
use crate::store::StoreError;
use crate::text::storable;
use crate::time::Timestamp;

/// What a handler made of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Its effects are written.
    Processed,
    /// Nothing to do, and why (kept as the delivery's note).
    Ignored(String),
}

/// A handler's failure; the delivery is tried again later unless `permanent`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    pub message: String,
    /// Trying again cannot help (the payload itself is wrong): fail at once.
    pub permanent: bool,
}

impl HandlerError {
    pub fn retry(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: false,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: true,
        }
    }
}

/// A delivery's event as the worker hands it to its handler: what it is and what it does, read
/// once from the body on the blocking pool before any transaction opens. The parsed body itself
/// is not kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The event name ([`Classified::event`]), made [`storable`].
    pub name: String,
    /// The host's delivery key ([`Classified::delivery_key`]).
    pub delivery_key: Option<String>,
    /// Whether a handler takes it; only a [`Disposition::Handled`] event reaches one.
    pub disposition: Disposition,
    /// Its effects ([`hosts::effects`], every text made [`storable`]), or why the payload has
    /// none that can be read. Empty unless the event is [`Disposition::Handled`].
    pub effects: Result<Vec<Effect>, EffectError>,
    /// For a `Handled` event with no effects, why nothing is synced
    /// ([`hosts::nothing_to_sync`], read from the payload while it is at hand); else `None`.
    pub nothing_to_sync: Option<String>,
}

/// Applies a verified, recognised event's effects, on `txn`.
#[tonic::async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        receiver: &Receiver,
        delivery: &ClaimedDelivery,
        event: &Event,
    ) -> Result<Outcome, HandlerError>;

    /// Called once per chunk of deliveries, on its transaction, before `handle` is called for
    /// any of `events` (the chunk's candidates, in order; the last may be left to the next
    /// chunk): a handler may read there, for them all at once, what `handle` would read for
    /// each (see [`super::chunk`]). An error fails the transaction.
    async fn prepare(
        &self,
        _txn: &DatabaseTransaction,
        _events: &[(&Receiver, &Event)],
    ) -> Result<(), DbErr> {
        Ok(())
    }

    /// What `handle` will hold rows of for `event` (with PostgreSQL, until the transaction
    /// ends), as a key that sorts: the worker applies each batch in this order, so that two
    /// replicas' transactions never wait for each other's rows in a circle. `None`: nothing.
    /// It is asked once per delivery, on the blocking pool, and must not parse anything.
    fn lock_order(&self, _receiver: &Receiver, _event: &Event) -> Option<String> {
        None
    }
}

/// Batches claimed and parsed that may wait for the writer. With one, the next claim waited for
/// the write lock until the batch before was written, then the writer waited for that claim's
/// parse: the two took turns. With two, the writer has a batch in hand while the next is
/// parsed (a drain of 30,000 deliveries of the mix on SQLite in /dev/shm: the writer's wait
/// for a batch went from 3.9 s of 8.7 to 0.05 s of 7.2).
const BATCHES_AHEAD: usize = 2;

/// The delivery worker of one process. A clone is the same worker afresh, which is how the
/// supervisor ([`super::supervise`]) restarts it.
#[derive(Clone)]
pub struct Worker {
    db: Db,
    deliveries: DeliveryStore,
    receivers: ReceiverStore,
    handler: Arc<dyn Handler>,
    config: WorkerConfig,
    /// Notified by the ingress after it commits a delivery, so the worker need not wait for its
    /// next poll.
    wake: Arc<Notify>,
}

impl Worker {
    pub fn new(
        db: Db,
        receivers: ReceiverStore,
        handler: Arc<dyn Handler>,
        config: WorkerConfig,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            deliveries: DeliveryStore::new(db.clone()),
            db,
            receivers,
            handler,
            config,
            wake,
        }
    }

    /// Puts `wrap(handler)` in place of the handler. hookgate itself never calls it: it is the
    /// narrow door through which a test runs the real handler inside one that misbehaves.
    pub fn wrap_handler(&mut self, wrap: impl FnOnce(Arc<dyn Handler>) -> Arc<dyn Handler>) {
        self.handler = wrap(self.handler.clone());
    }

    /// Processes due deliveries until `stop`; the batches in hand are finished first.
    ///
    /// Two loops share the task: one claims the next batch and reads its effects (the parse, on
    /// the blocking pool) while the other writes the batch before it, so the database is not
    /// left idle while a batch is parsed, nor the cores while one is written. Up to
    /// [`BATCHES_AHEAD`] batches wait between them, so no more than three are claimed and not yet
    /// written; a waiting batch holds its effects, not its bodies. After a claim that found
    /// deliveries but not a full batch, the next waits until [`WorkerConfig::linger`] after it,
    /// so a steady stream is claimed in batches, not a delivery or two per commit of the ingress.
    pub async fn run(self, stop: CancellationToken) {
        let (ready, mut batches) = tokio::sync::mpsc::channel::<Vec<Parsed>>(BATCHES_AHEAD);
        let worker = &self;
        let claiming = async move {
            let mut failures = 0u32;
            // When the last claim that found deliveries but not a full batch began: the next
            // claim waits until `linger` after it, so what arrives meanwhile is one batch.
            let mut lingering_since: Option<Instant> = None;
            loop {
                if let Some(since) = lingering_since.take() {
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep_until((since + worker.config.linger).into()) => {},
                    }
                }
                if stop.is_cancelled() {
                    break;
                }
                // A batch is claimed only once there is room for it: claims are not held while
                // the writer has `BATCHES_AHEAD` batches waiting already.
                let slot = tokio::select! {
                    biased;
                    () = stop.cancelled() => break,
                    slot = ready.reserve() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                };
                let claimed_at = Instant::now();
                match worker.claim_batch(Timestamp::now()).await {
                    Ok((batch, more)) => {
                        failures = 0;
                        let full = more || batch.len() as u64 == worker.config.batch;
                        if !batch.is_empty() {
                            metrics::histogram!(crate::metrics::WORKER_CLAIM_SIZE)
                                .record(batch.len() as f64);
                            slot.send(batch);
                            if !full && !worker.config.linger.is_zero() {
                                lingering_since = Some(claimed_at);
                            }
                        }
                        if full {
                            continue;
                        }
                    }
                    Err(err) => {
                        failures = failures.saturating_add(1);
                        tracing::warn!(error = %err, "delivery worker could not claim deliveries");
                    }
                }
                // Back off while the database is failing, up to 30 s.
                let wait = if failures == 0 {
                    worker.config.poll_interval
                } else {
                    (worker.config.poll_interval * failures.min(30)).min(Duration::from_secs(30))
                };
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = worker.wake.notified() => {},
                    () = tokio::time::sleep(wait) => {},
                }
            }
            // Dropping `ready` tells the writing loop that no batch follows.
        };
        let writing = async {
            // Outcomes are stamped with when the batch is written, not when it was claimed.
            while let Some(batch) = batches.recv().await {
                self.apply_batch(batch, Timestamp::now()).await;
            }
        };
        tokio::join!(claiming, writing);
        tracing::info!("delivery worker stopped");
    }

    /// Claims one batch of deliveries due at `now` and processes each; returns how many.
    ///
    /// Parsing a delivery (its whole JSON body) and reading its effects is the costly part, and
    /// needs no database: it runs for the whole batch first, spread over the machine's cores,
    /// and only the effects are kept, not the parsed body. They are then written
    /// [`WorkerConfig::per_transaction`] deliveries to a transaction (see `apply_chunk`), so
    /// one commit serves many; a chunk that fails is applied again one delivery at a time.
    pub async fn process_due(&self, now: Timestamp) -> Result<usize, StoreError> {
        let (batch, _) = self.claim_batch(now).await?;
        let count = batch.len();
        self.apply_batch(batch, now).await;
        Ok(count)
    }

    /// Claims one batch of deliveries due at `now` (up to [`WorkerConfig::batch`] of them and
    /// [`WorkerConfig::batch_bytes`] of bodies), finds their receivers and reads their effects,
    /// in the order they are to be applied. Also says whether the byte budget left due
    /// deliveries behind.
    async fn claim_batch(&self, now: Timestamp) -> Result<(Vec<Parsed>, bool), StoreError> {
        let (claimed, more) = self
            .deliveries
            .claim(
                self.config.batch,
                self.config.batch_bytes,
                self.config.lease,
                now,
            )
            .await?;
        let count = claimed.len();
        let mut parsed = Vec::with_capacity(count);
        for delivery in claimed {
            let receiver = self
                .receivers
                .lookup_or_read(delivery.receiver_id)
                .await
                .map_err(|e| HandlerError::retry(format!("database: {e}")));
            parsed.push(Parsed {
                started: Instant::now(),
                delivery,
                receiver,
                event: None,
                order: None,
            });
        }
        // Only PostgreSQL holds rows, and so only there does the order matter (on SQLite one
        // writer at a time never waits for another's rows).
        let ordered = self.db.is_postgres();
        let mut parsed = classify_all(parsed, ordered.then(|| self.handler.clone())).await;
        // Stable: the deliveries of one repository keep the order they came in.
        parsed.sort_by(|a, b| a.order.cmp(&b.order));
        Ok((parsed, more))
    }

    /// Applies a claimed batch, [`WorkerConfig::per_transaction`] deliveries to a transaction.
    async fn apply_batch(&self, batch: Vec<Parsed>, now: Timestamp) {
        let mut pending: VecDeque<Parsed> = batch.into();
        while !pending.is_empty() {
            self.apply_chunk(&mut pending, now).await;
        }
    }

    /// Takes deliveries from the front of `pending` into one transaction, up to
    /// [`WorkerConfig::per_transaction`] of them and while it has been open less than
    /// [`WorkerConfig::transaction_budget`], and writes their effects and outcomes there: the
    /// handler's reads and changes delivery by delivery, then the chunk's feed and timeline
    /// entries ([`ChunkWrites`]), then every outcome, a statement for those that end alike.
    /// When a handler fails, its writes so far cannot be told from its neighbours': the chunk
    /// is rolled back, that failure recorded on its own, and the deliveries before it are
    /// applied again with the next chunk. When a claim turns out lost or the transaction itself
    /// fails (the database went away, a commit refused), it is rolled back and each delivery it
    /// took is tried again on its own.
    async fn apply_chunk(&self, pending: &mut VecDeque<Parsed>, now: Timestamp) {
        let txn = match self.db.begin_background_write().await {
            Ok(txn) => txn,
            Err(e) => {
                tracing::warn!(error = %e, "delivery worker cannot begin a transaction");
                let take = pending.len().min(self.config.per_transaction);
                return self.one_by_one(pending.drain(..take).collect(), now).await;
            }
        };
        let opened = Instant::now();
        let mut chunk = Vec::with_capacity(self.config.per_transaction);
        let (decided, writes) = ChunkWrites::keep(async {
            let candidates: Vec<(&Receiver, &Event)> = pending
                .iter()
                .take(self.config.per_transaction)
                .filter_map(|item| match (&item.receiver, &item.event) {
                    (Ok(Some(entry)), Some(Ok(event))) => Some((&entry.receiver, event)),
                    _ => None,
                })
                .collect();
            if let Err(e) = self.handler.prepare(&txn, &candidates).await {
                return Err(Err(e));
            }
            // The share of the lock `yield_after` gives is counted once the chunk's reads are done.
            let prepared = Instant::now();
            let mut decided = Vec::with_capacity(self.config.per_transaction);
            while chunk.len() < self.config.per_transaction
                && (chunk.is_empty()
                    || (opened.elapsed() < self.config.transaction_budget
                        && (prepared.elapsed() < self.config.yield_after || !txn.others_waiting())))
            {
                let Some(item) = pending.pop_front() else {
                    break;
                };
                let outcome = self.decide(&txn, &item).await;
                chunk.push(item);
                decided.push(outcome.map_err(Ok)?);
            }
            Ok::<_, Result<HandlerError, DbErr>>(decided)
        })
        .await;
        let decided = match decided {
            Ok(decided) => decided,
            Err(Err(e)) => {
                tracing::warn!(error = %e, "delivery worker's transaction failed");
                drop(txn);
                let take = pending.len().min(self.config.per_transaction);
                return self.one_by_one(pending.drain(..take).collect(), now).await;
            }
            Err(Ok(error)) => {
                // The failed delivery's writes cannot be undone alone: the chunk is undone, its
                // failure recorded on its own, and the deliveries before it go back to the front
                // of the queue, to be applied again (their handlers run again) in the next.
                drop(txn);
                let failed = chunk
                    .pop()
                    .expect("the failed delivery is the chunk's last");
                for item in chunk.into_iter().rev() {
                    pending.push_front(item);
                }
                return self.record_failure(&failed, &error, now).await;
            }
        };
        match self.record_chunk(&txn, &chunk, &decided, writes, now).await {
            Ok(Some(failed_states)) => {
                if let Err(e) = txn.commit().await {
                    tracing::warn!(error = %e, "delivery worker could not commit a batch");
                    return self.one_by_one(chunk, now).await;
                }
                for ((item, decided), failed) in chunk.iter().zip(decided).zip(failed_states) {
                    match decided {
                        Decided::Done(state, _) => self.report_done(item, Some(state)),
                        Decided::Gone => self.report_done(item, None),
                        Decided::FailedEarly(error) => self.report_failed(item, &error, failed),
                    }
                }
            }
            Ok(None) => {
                // A claim was lost meanwhile: each delivery on its own finds out which.
                drop(txn);
                self.one_by_one(chunk, now).await
            }
            Err(e) => {
                tracing::warn!(error = %e, "delivery worker's transaction failed");
                drop(txn);
                self.one_by_one(chunk, now).await
            }
        }
    }

    /// Writes a chunk's kept feed and timeline entries and its deliveries' outcomes on `txn`;
    /// returns the state each failed try was recorded as (`None` for the others), or `None`
    /// when a claim is no longer held.
    async fn record_chunk(
        &self,
        txn: &DatabaseTransaction,
        chunk: &[Parsed],
        decided: &[Decided],
        writes: ChunkWrites,
        now: Timestamp,
    ) -> Result<Option<Vec<Option<DeliveryState>>>, DbErr> {
        writes.write(txn).await?;
        let done: Vec<_> = chunk
            .iter()
            .zip(decided)
            .filter_map(|(item, decided)| match decided {
                Decided::Done(state, note) => Some((&item.delivery, *state, note.as_deref())),
                _ => None,
            })
            .collect();
        if !done.is_empty() && !DeliveryStore::finish_all(txn, &done, now).await? {
            return Ok(None);
        }
        let mut failed_states = Vec::with_capacity(chunk.len());
        for (item, decided) in chunk.iter().zip(decided) {
            let state = match decided {
                Decided::FailedEarly(error) => {
                    let retry_after = self.retry_after(&item.delivery, error);
                    let state = DeliveryStore::fail_on(
                        txn,
                        &item.delivery,
                        &error.message,
                        retry_after,
                        now,
                    )
                    .await?;
                    if state.is_none() {
                        return Ok(None);
                    }
                    state
                }
                _ => None,
            };
            failed_states.push(state);
        }
        Ok(Some(failed_states))
    }

    /// Processes each delivery of `chunk` in a transaction of its own.
    async fn one_by_one(&self, chunk: Vec<Parsed>, now: Timestamp) {
        for item in chunk {
            let outcome = match self.db.begin_background_write().await {
                Err(e) => Err(HandlerError::retry(format!("database: {e}"))),
                Ok(txn) => match self.apply(&txn, &item, now).await {
                    Ok(Some(state)) => match txn.commit().await {
                        Ok(()) => Ok(Some(state)),
                        Err(e) => Err(HandlerError::retry(format!("database: {e}"))),
                    },
                    Ok(None) => Ok(None),
                    Err(e) => Err(e),
                },
            };
            match outcome {
                Ok(state) => self.report_done(&item, state),
                Err(error) => self.record_failure(&item, &error, now).await,
            }
        }
    }

    /// Records a failed try of `item` in a transaction of its own, and reports it.
    async fn record_failure(&self, item: &Parsed, error: &HandlerError, now: Timestamp) {
        let retry_after = self.retry_after(&item.delivery, error);
        match self
            .deliveries
            .fail(&item.delivery, &error.message, retry_after, now)
            .await
        {
            Ok(state) => self.report_failed(item, error, state),
            // The lease will run out and the delivery will be tried again.
            Err(e) => {
                tracing::warn!(delivery = %item.delivery.id, error = %e, "could not record a failed try")
            }
        }
    }

    /// How long until a failed delivery is tried again; `None`: never (it is `FAILED`).
    fn retry_after(&self, delivery: &ClaimedDelivery, error: &HandlerError) -> Option<Duration> {
        let tries = usize::try_from(delivery.attempts.max(1)).unwrap_or(usize::MAX);
        if error.permanent {
            None
        } else {
            self.config.backoff.get(tries - 1).copied()
        }
    }

    /// Logs and counts a delivery handled (`Some(state)`) or whose claim was lost (`None`).
    fn report_done(&self, item: &Parsed, state: Option<DeliveryState>) {
        let id = item.delivery.id;
        match state {
            Some(state) => {
                crate::metrics::delivery_processed(
                    worker_outcome(state),
                    item.started,
                    item.delivery.receive_time,
                );
                tracing::debug!(delivery = %id, %state, "delivery processed");
            }
            None => {
                crate::metrics::delivery_processed(
                    WorkerOutcome::Lost,
                    item.started,
                    item.delivery.receive_time,
                );
                tracing::warn!(delivery = %id, "lost the claim on a delivery (lease ran out); another worker has it");
            }
        }
    }

    /// Logs and counts a failed try, recorded as `state` (`None`: the claim was lost first).
    fn report_failed(&self, item: &Parsed, error: &HandlerError, state: Option<DeliveryState>) {
        let delivery = &item.delivery;
        let id = delivery.id;
        match state {
            Some(DeliveryState::Failed) => {
                crate::metrics::delivery_processed(
                    WorkerOutcome::Failed,
                    item.started,
                    delivery.receive_time,
                );
                tracing::error!(delivery = %id, attempts = delivery.attempts, error = %error, "delivery failed for good");
            }
            Some(_) => {
                crate::metrics::delivery_processed(
                    WorkerOutcome::Retry,
                    item.started,
                    delivery.receive_time,
                );
                tracing::warn!(delivery = %id, attempts = delivery.attempts, error = %error, retry_in = ?self.retry_after(delivery, error), "delivery failed; will retry");
            }
            None => {}
        }
    }

    /// Runs the handler for one parsed delivery on `txn` and records its outcome there.
    /// `Ok(None)`: the claim was lost (or the receiver deleted); the caller rolls back.
    async fn apply(
        &self,
        txn: &DatabaseTransaction,
        item: &Parsed,
        now: Timestamp,
    ) -> Result<Option<DeliveryState>, HandlerError> {
        match self.decide(txn, item).await? {
            Decided::Done(state, note) => {
                let held = DeliveryStore::finish(txn, &item.delivery, state, note.as_deref(), now)
                    .await
                    .map_err(|e| HandlerError::retry(format!("database: {e}")))?;
                Ok(held.then_some(state))
            }
            Decided::Gone => Ok(None),
            Decided::FailedEarly(error) => Err(error),
        }
    }

    /// Runs the handler for one parsed delivery on `txn` and says how the delivery ends;
    /// nothing of it is recorded yet. `Err`: the handler failed, perhaps after some writes.
    async fn decide(
        &self,
        txn: &DatabaseTransaction,
        item: &Parsed,
    ) -> Result<Decided, HandlerError> {
        let delivery = &item.delivery;
        let entry = match &item.receiver {
            Ok(Some(entry)) => entry,
            // The receiver was deleted, and its deliveries with it.
            Ok(None) => return Ok(Decided::Gone),
            Err(e) => return Ok(Decided::FailedEarly(e.clone())),
        };
        let receiver = &entry.receiver;
        let event = match &item.event {
            Some(Ok(event)) => event,
            Some(Err(e)) => return Ok(Decided::FailedEarly(e.clone())),
            None => {
                return Ok(Decided::FailedEarly(HandlerError::permanent(
                    "the delivery was not parsed",
                )));
            }
        };
        Ok(match event.disposition {
            // hookgate's test delivery, redelivered: still only a test.
            Disposition::Ping | Disposition::Test => Decided::Done(DeliveryState::Processed, None),
            Disposition::Ignored => Decided::Done(
                DeliveryState::Ignored,
                Some(format!("no handler takes {} events", event.name)),
            ),
            Disposition::Handled => {
                // A panic in the handler is this delivery's failure alone, for good (the same
                // payload would panic again): the worker goes on with the next.
                let handled = AssertUnwindSafe(self.handler.handle(txn, receiver, delivery, event))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|panic| Err(panicked("handling", delivery, panic)));
                match handled? {
                    Outcome::Processed => Decided::Done(DeliveryState::Processed, None),
                    Outcome::Ignored(why) => Decided::Done(DeliveryState::Ignored, Some(why)),
                }
            }
        })
    }
}

/// How a delivery of a chunk ends, before it is recorded.
enum Decided {
    /// Its effects are written (on the chunk's transaction); it ends in this state, with this
    /// note.
    Done(DeliveryState, Option<String>),
    /// Its receiver is gone, and it with it: nothing to record.
    Gone,
    /// It failed before anything was written for it (its receiver could not be read, its
    /// payload not classified): the try is recorded with its neighbours.
    FailedEarly(HandlerError),
}

/// A claimed delivery on its way through the worker: its receiver and its event's effects.
struct Parsed {
    /// When the worker took it up, for the processing-time metric.
    started: Instant,
    delivery: ClaimedDelivery,
    /// `Ok(None)`: the receiver is gone.
    receiver: Result<Option<Arc<ReceiverEntry>>, HandlerError>,
    /// Filled by [`classify_all`]; `None` when there was nothing to classify (no receiver).
    event: Option<Result<Event, HandlerError>>,
    /// The handler's [`Handler::lock_order`] for it, filled with `event`.
    order: Option<String>,
}

/// Classifies every delivery of a batch and reads its effects (the full parse of its body), on
/// blocking threads, one share per core; with a `handler`, also asks it for each delivery's lock
/// order.
async fn classify_all(batch: Vec<Parsed>, handler: Option<Arc<dyn Handler>>) -> Vec<Parsed> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let share = batch.len().div_ceil(cores).max(1);
    let mut shares = Vec::new();
    let mut rest = batch.into_iter();
    loop {
        let part: Vec<Parsed> = rest.by_ref().take(share).collect();
        if part.is_empty() {
            break;
        }
        let handler = handler.clone();
        shares.push(tokio::task::spawn_blocking(move || {
            part.into_iter()
                .map(|item| classify_one(item, handler.as_deref()))
                .collect::<Vec<_>>()
        }));
    }
    let mut out = Vec::new();
    for share in shares {
        match share.await {
            Ok(parsed) => out.extend(parsed),
            // Each delivery's panic is caught in `classify_one`; should the task fail anyway,
            // its deliveries' claims run out and they are taken again.
            Err(e) => tracing::error!(error = %e, "delivery worker: a classifying task failed"),
        }
    }
    out
}

/// Reads one delivery's event and effects, as the handler will need them. A panic while doing
/// so makes it this delivery's permanent failure, and nobody else's.
fn classify_one(mut item: Parsed, handler: Option<&dyn Handler>) -> Parsed {
    if let Err(panic) =
        std::panic::catch_unwind(AssertUnwindSafe(|| classify_into(&mut item, handler)))
    {
        item.event = Some(Err(panicked("classifying", &item.delivery, panic)));
        item.order = None;
    }
    // Everything is read from the body now: the batch waiting to be written holds only its
    // effects, not every body as well.
    item.delivery.request_body = Vec::new();
    item
}

/// Fills in `item`'s event and effects (and lock order, with a `handler`).
fn classify_into(item: &mut Parsed, handler: Option<&dyn Handler>) {
    let Ok(Some(entry)) = &item.receiver else {
        return;
    };
    let kind = entry.receiver.code_host_kind;
    item.event = Some(match kind.host() {
        None => Err(HandlerError::permanent(format!(
            "receivers of kind {kind} have no handler yet"
        ))),
        Some(host) => {
            let headers = header_map(&item.delivery.request_headers);
            hosts::classify(host, &headers, &item.delivery.request_body)
                .map_err(|e| HandlerError::permanent(e.to_string()))
                .and_then(|classified| event_of(host, classified, &item.delivery))
        }
    });
    if let (Some(handler), Some(Ok(event))) = (handler, &item.event) {
        item.order = handler.lock_order(&entry.receiver, event);
    }
}

/// The event a handler is given for `classified`: for a `Handled` one, its effects, read from
/// the payload once every text of it is made [`storable`] (what the effects' texts, and so the
/// rows made of them, are made of); the payload is dropped after. A panic while reading the
/// effects is this delivery's permanent failure, as it was when the handler read them.
fn event_of(
    host: Host,
    classified: Classified,
    delivery: &ClaimedDelivery,
) -> Result<Event, HandlerError> {
    let Classified {
        event,
        delivery_key,
        disposition,
        mut payload,
    } = classified;
    let name = storable(event);
    let (effects, nothing_to_sync) = match disposition {
        Disposition::Handled => std::panic::catch_unwind(AssertUnwindSafe(|| {
            storable_payload(&mut payload);
            let effects = hosts::effects(host, &name, &payload);
            let nothing = matches!(&effects, Ok(e) if e.is_empty())
                .then(|| storable(hosts::nothing_to_sync(host, &name, &payload)));
            (effects, nothing)
        }))
        .map_err(|panic| panicked("handling", delivery, panic))?,
        Disposition::Ping | Disposition::Ignored | Disposition::Test => (Ok(Vec::new()), None),
    };
    Ok(Event {
        name,
        delivery_key,
        disposition,
        effects,
        nothing_to_sync,
    })
}

/// Every string of a payload (keys too) made [`storable`].
fn storable_payload(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(s) if s.contains('\0') => *s = storable(std::mem::take(s)),
        Value::Array(items) => items.iter_mut().for_each(storable_payload),
        Value::Object(map) => {
            if map.keys().any(|k| k.contains('\0')) {
                *map = std::mem::take(map)
                    .into_iter()
                    .map(|(k, v)| (storable(k), v))
                    .collect();
            }
            map.values_mut().for_each(storable_payload);
        }
        _ => {}
    }
}

/// The permanent failure of `delivery` after a panic while `doing` it, with the panic's message.
fn panicked(
    doing: &str,
    delivery: &ClaimedDelivery,
    panic: Box<dyn std::any::Any + Send>,
) -> HandlerError {
    let message = super::supervisor::panic_message(panic);
    tracing::error!(delivery = %delivery.id, %message, "delivery worker: {doing} a delivery panicked; it is FAILED");
    HandlerError::permanent(format!("{doing} this delivery panicked: {message}"))
}

/// Rebuilds the request's headers from the log (values that are not valid headers are skipped).
fn header_map(headers: &std::collections::BTreeMap<String, String>) -> http::HeaderMap {
    let mut map = http::HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(value),
        ) {
            map.insert(name, value);
        }
    }
    map
}

/// The metric's outcome for a try that left its delivery in `state`.
fn worker_outcome(state: DeliveryState) -> WorkerOutcome {
    match state {
        DeliveryState::Ignored => WorkerOutcome::Ignored,
        DeliveryState::Failed => WorkerOutcome::Failed,
        DeliveryState::Pending => WorkerOutcome::Retry,
        _ => WorkerOutcome::Processed,
    }
}
