//! Group commit for the ingress. Each request hands its delivery to the intake and waits; a
//! committer takes every delivery waiting at that moment and writes them in one transaction, so
//! one commit (and one `fsync`) serves as many requests as arrived while the previous commit ran.
//! Nothing waits on a timer: a lone request is written at once, and under load batches grow by
//! themselves. Each request is answered only after its batch has committed.

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{DeliveryStore, IntakeConfig, NewDelivery, PreparedDelivery, Stored};
use crate::store::StoreError;

/// One request's delivery, and where its outcome goes.
struct Job {
    delivery: PreparedDelivery,
    done: oneshot::Sender<Result<Stored, StoreError>>,
}

/// The ingress's side of group commit; cheap to clone. When every clone is gone, the
/// committers write what is still queued and stop.
#[derive(Clone)]
pub struct Intake {
    jobs: mpsc::Sender<Job>,
}

impl Intake {
    /// Starts the committers on `store`; they run until every [`Intake`] clone is dropped and the
    /// queue is empty.
    pub fn start(store: DeliveryStore, config: IntakeConfig) -> (Intake, Vec<JoinHandle<()>>) {
        let (jobs, queue) = mpsc::channel(config.queue.max(1));
        let queue = Arc::new(Mutex::new(queue));
        let committers = (0..config.committers.max(1))
            .map(|_| tokio::spawn(commit_batches(store.clone(), queue.clone(), config)))
            .collect();
        (Intake { jobs }, committers)
    }

    /// Stores a delivery durably: returns once the transaction holding it has committed.
    pub async fn record(&self, new: NewDelivery) -> Result<Stored, StoreError> {
        // Encoding (compressing the body) happens here, on the request's own task, so the
        // committers only write.
        let delivery = PreparedDelivery::new(new);
        let (done, outcome) = oneshot::channel();
        self.jobs
            .send(Job { delivery, done })
            .await
            .map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }
}

/// The intake is shutting down: the request is answered as if the database were away (503: not
/// stored, for the host to retry if it does).
fn stopped() -> StoreError {
    StoreError::Unavailable(sea_orm::DbErr::Custom(
        "the service is shutting down".to_owned(),
    ))
}

/// One committer: takes what is queued (up to a batch), writes it, answers, again.
async fn commit_batches(
    store: DeliveryStore,
    queue: Arc<Mutex<mpsc::Receiver<Job>>>,
    config: IntakeConfig,
) {
    loop {
        let batch = {
            let mut queue = queue.lock().await;
            let Some(first) = queue.recv().await else {
                return;
            };
            let mut bytes = first.delivery.size();
            let mut batch = vec![first];
            while batch.len() < config.max_batch && bytes < config.max_batch_bytes {
                match queue.try_recv() {
                    Ok(job) => {
                        bytes += job.delivery.size();
                        batch.push(job);
                    }
                    Err(_) => break,
                }
            }
            batch
        };
        metrics::histogram!(crate::metrics::INTAKE_BATCH_SIZE).record(batch.len() as f64);
        let (deliveries, answers): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|j| (j.delivery, j.done)).unzip();
        let outcomes = write_apart(&store, &deliveries).await;
        for (answer, outcome) in answers.into_iter().zip(outcomes) {
            // A request whose client left has no one to answer; its delivery is stored.
            let _ = answer.send(outcome);
        }
    }
}

/// Writes `batch` in one transaction, and what each delivery became. When the database refuses
/// the batch for anything but being unavailable, each half is written on its own, and so on
/// down to single deliveries: a delivery that cannot be stored fails alone (its error is its own
/// answer), and its neighbours are written without it in a few transactions (about 2·log2(n)
/// for one bad delivery among n) rather than n. When the database is unavailable, every
/// delivery of the part being written hears so (503).
async fn write_apart(
    store: &DeliveryStore,
    batch: &[PreparedDelivery],
) -> Vec<Result<Stored, StoreError>> {
    let mut outcomes: Vec<Option<Result<Stored, StoreError>>> = vec![None; batch.len()];
    let mut parts = Vec::new();
    parts.push(0..batch.len());
    while let Some(part) = parts.pop() {
        match store.record_batch(&batch[part.clone()]).await {
            Ok(stored) => {
                for (slot, stored) in outcomes[part].iter_mut().zip(stored) {
                    *slot = Some(Ok(stored));
                }
            }
            Err(e) if part.len() == 1 || matches!(e, StoreError::Unavailable(_)) => {
                for slot in &mut outcomes[part] {
                    *slot = Some(Err(e.clone()));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, size = part.len(), "intake: a batch was refused; writing each half on its own");
                let middle = part.start + part.len() / 2;
                // Popped first half first: deliveries are written in the order they came.
                parts.push(middle..part.end);
                parts.push(part.start..middle);
            }
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.expect("every part of the batch is written or answered"))
        .collect()
}
