//! The delivery worker's supervisor. A panic while one delivery is classified or handled is
//! caught by the worker itself and fails that delivery alone; the supervisor is for whatever
//! still ends the worker's task (a bug outside that isolation): it logs it at error, counts it
//! (`hookgate_worker_restarts_total`), and starts the worker again after a backoff, while
//! [`WorkerStatus`] tells `/healthz` that no worker is running.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::Worker;

/// The wait before the first restart; it doubles with each restart in a row.
pub const FIRST_RESTART_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between restarts.
pub const MAX_RESTART_BACKOFF: Duration = Duration::from_secs(60);
/// A worker that ran this long before it ended is restarted after [`FIRST_RESTART_BACKOFF`]
/// again: it was not failing in a loop.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// Whether this process's delivery worker is running; cheap to clone, read by `/healthz`.
#[derive(Debug, Clone, Default)]
pub struct WorkerStatus(Arc<AtomicBool>);

impl WorkerStatus {
    pub fn is_running(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn set(&self, running: bool) {
        self.0.store(running, Ordering::Release);
    }
}

/// Runs `worker` until `stop`, and a fresh copy of it after a backoff whenever its task ends
/// before `stop` (a panic, or a return it should not make). `status` says whether one runs.
pub async fn supervise(worker: Worker, status: WorkerStatus, stop: CancellationToken) {
    let mut backoff = FIRST_RESTART_BACKOFF;
    loop {
        let started = Instant::now();
        status.set(true);
        let ended = tokio::spawn(worker.clone().run(stop.clone())).await;
        status.set(false);
        if stop.is_cancelled() {
            return;
        }
        let why = match ended {
            Ok(()) => "it returned while the service runs".to_owned(),
            Err(e) if e.is_panic() => format!("it panicked: {}", panic_message(e.into_panic())),
            Err(e) => e.to_string(),
        };
        if started.elapsed() >= HEALTHY_RUN {
            backoff = FIRST_RESTART_BACKOFF;
        }
        crate::metrics::worker_restarted();
        tracing::error!(reason = %why, restart_in = ?backoff, "the delivery worker stopped; it is restarted after a backoff, and /healthz answers 503 until then");
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_RESTART_BACKOFF);
        tracing::info!("the delivery worker is restarted");
    }
}

/// What a panic said (its `&str` or `String` payload), for the log and a delivery's error.
pub fn panic_message(panic: Box<dyn Any + Send>) -> String {
    match panic.downcast::<String>() {
        Ok(message) => *message,
        Err(panic) => match panic.downcast::<&'static str>() {
            Ok(message) => (*message).to_owned(),
            Err(_) => "a panic with no message".to_owned(),
        },
    }
}
