//! `hookgate.v1.EventService`: the live, resumable event feed.

use std::pin::Pin;
use std::time::Duration;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::AdminState;
use super::changesets::changeset_to_proto;
use super::deliveries::delivery_to_proto;
use super::proto::{self, event_service_server::EventService};
use super::repositories::{repository_to_proto, sync_request_to_proto};
use super::status::parse_id;
use crate::store::StoreError;
use crate::sync::feed::{Event, EventKind, EventStore};
use crate::time::to_timestamp;

/// How often a watcher looks for new events when it has seen them all.
const POLL: Duration = Duration::from_millis(200);

/// Serves `EventService`.
pub struct EventAdmin {
    state: AdminState,
    events: EventStore,
}

impl EventAdmin {
    pub fn new(state: AdminState, events: EventStore) -> Self {
        Self { state, events }
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<proto::Event, Status>> + Send>>;

#[tonic::async_trait]
impl EventService for EventAdmin {
    type WatchStream = EventStream;

    async fn watch(
        &self,
        request: Request<proto::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let req = request.into_inner();
        if req.after_cursor < 0 {
            return Err(Status::invalid_argument(
                "after_cursor must not be negative",
            ));
        }
        let receiver = match req.receiver_id.trim() {
            "" => None,
            raw => Some(parse_id("receiver_id", raw)?),
        };
        let kinds = req
            .kinds
            .iter()
            .map(|&raw| {
                EventKind::ALL
                    .into_iter()
                    .find(|k| kind_to_proto(*k) as i32 == raw)
                    .ok_or_else(|| {
                        Status::invalid_argument(format!(
                            "kinds has {raw}, which is not an event kind"
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let events = self.events.clone();
        let state = self.state.clone();
        let mut cursor = req.after_cursor;
        let shutdown = self.state.shutdown.clone();
        tokio::spawn(async move {
            loop {
                // Cursors become visible in increasing order (see `crate::sync::feed`), so a cursor
                // missing below the newest one is gone for good (rolled back, or purged): the
                // feed reads straight on.
                let batch = match events.after(cursor, None, &[], 200).await {
                    Ok(batch) => batch,
                    Err(e) => {
                        let _ = tx
                            .send(Err(Status::unavailable(format!("event feed: {e}"))))
                            .await;
                        return;
                    }
                };
                for event in batch {
                    cursor = event.cursor;
                    let wanted = receiver.is_none_or(|r| event.receiver_id == Some(r))
                        && (kinds.is_empty() || kinds.contains(&event.kind));
                    if !wanted {
                        continue;
                    }
                    let message = match to_proto(&state, &event).await {
                        Ok(m) => m,
                        Err(e) => {
                            let _ = tx
                                .send(Err(Status::unavailable(format!("event feed: {e}"))))
                                .await;
                            return;
                        }
                    };
                    if tx.send(Ok(message)).await.is_err() {
                        return; // The client left.
                    }
                }
                tokio::select! {
                    () = tx.closed() => return,
                    // The service is stopping: end the stream (the client resumes elsewhere
                    // from its last cursor) rather than hold up the shutdown.
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(POLL) => {},
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}

fn kind_to_proto(kind: EventKind) -> proto::EventKind {
    match kind {
        EventKind::ChangesetUpdated => proto::EventKind::ChangesetUpdated,
        EventKind::SyncRequested => proto::EventKind::SyncRequested,
        EventKind::SyncCompleted => proto::EventKind::SyncCompleted,
        EventKind::DeliveryFailed => proto::EventKind::DeliveryFailed,
        EventKind::RepositoryRenamed => proto::EventKind::RepositoryRenamed,
    }
}

/// The streamed message: the event with its subject as it is now.
async fn to_proto(state: &AdminState, event: &Event) -> Result<proto::Event, StoreError> {
    use proto::event::Subject;
    let gone = |r: Result<Subject, StoreError>| match r {
        Ok(s) => Ok(Some(s)),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    };
    let subject = match event.kind {
        EventKind::ChangesetUpdated => gone(
            state
                .changesets
                .get(event.subject_id)
                .await
                .map(|c| Subject::Changeset(changeset_to_proto(c))),
        )?,
        EventKind::SyncRequested | EventKind::SyncCompleted => gone(
            state
                .sync_requests
                .get(event.subject_id)
                .await
                .map(|r| Subject::SyncRequest(sync_request_to_proto(r))),
        )?,
        EventKind::DeliveryFailed => gone(state.deliveries.get(event.subject_id).await.map(|d| {
            let mut d = delivery_to_proto(d);
            d.request_body.clear();
            d.request_body_truncated = d.request_body_size > 0;
            Subject::Delivery(d)
        }))?,
        EventKind::RepositoryRenamed => gone(
            state
                .repositories
                .get(event.subject_id)
                .await
                .map(|r| Subject::Repository(repository_to_proto(r))),
        )?,
    };
    Ok(proto::Event {
        cursor: event.cursor,
        time: Some(to_timestamp(event.time)),
        kind: kind_to_proto(event.kind) as i32,
        subject,
    })
}
