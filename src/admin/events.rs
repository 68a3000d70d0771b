//! `hookgate.v1.EventService`: the live, resumable event feed. The following itself (cursors,
//! filters, new entries, the end at shutdown) is `sync/feed.rs`'s [`FeedStore::follow`]; this
//! service maps a `WatchRequest` to it and each feed entry to the streamed `Event`, with its
//! subject as it is now.

use std::pin::Pin;

use futures_util::StreamExt;
use sea_orm::Iterable;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::AdminState;
use super::changesets::changeset_to_proto;
use super::deliveries::delivery_to_proto;
use super::proto::{self, event_service_server::EventService};
use super::repositories::{repository_to_proto, sync_request_to_proto};
use super::status::parse_id;
use crate::store::StoreError;
use crate::sync::{FeedEntry, FeedEntryKind, FeedFilter, FeedStore};

/// Serves `EventService`.
pub struct EventAdmin {
    state: AdminState,
    feed: FeedStore,
}

impl EventAdmin {
    pub fn new(state: AdminState, feed: FeedStore) -> Self {
        Self { state, feed }
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
                FeedEntryKind::iter()
                    .find(|k| kind_to_proto(*k) as i32 == raw)
                    .ok_or_else(|| {
                        Status::invalid_argument(format!(
                            "kinds has {raw}, which is not an event kind"
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let state = self.state.clone();
        let events = self
            .feed
            .follow(
                req.after_cursor,
                FeedFilter { receiver, kinds },
                self.state.shutdown.clone(),
            )
            .then(move |followed| {
                let state = state.clone();
                async move {
                    match followed {
                        Ok(entry) => Ok(to_proto(&state, &entry).await?),
                        Err(e) => Err(Status::from(e)),
                    }
                }
            });
        Ok(Response::new(Box::pin(events)))
    }
}

fn kind_to_proto(kind: FeedEntryKind) -> proto::EventKind {
    match kind {
        FeedEntryKind::ChangesetUpdated => proto::EventKind::ChangesetUpdated,
        FeedEntryKind::SyncRequested => proto::EventKind::SyncRequested,
        FeedEntryKind::SyncCompleted => proto::EventKind::SyncCompleted,
        FeedEntryKind::DeliveryFailed => proto::EventKind::DeliveryFailed,
        FeedEntryKind::RepositoryRenamed => proto::EventKind::RepositoryRenamed,
    }
}

/// The streamed message: the feed entry with its subject as it is now.
async fn to_proto(state: &AdminState, entry: &FeedEntry) -> Result<proto::Event, StoreError> {
    use proto::event::Subject;
    let gone = |r: Result<Subject, StoreError>| match r {
        Ok(s) => Ok(Some(s)),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    };
    let subject = match entry.kind {
        FeedEntryKind::ChangesetUpdated => gone(
            state
                .changesets
                .get(entry.subject_id)
                .await
                .map(|c| Subject::Changeset(changeset_to_proto(c))),
        )?,
        FeedEntryKind::SyncRequested | FeedEntryKind::SyncCompleted => gone(
            state
                .sync_requests
                .get(entry.subject_id)
                .await
                .map(|r| Subject::SyncRequest(sync_request_to_proto(r))),
        )?,
        FeedEntryKind::DeliveryFailed => {
            gone(state.deliveries.get(entry.subject_id).await.map(|d| {
                let mut d = delivery_to_proto(d);
                d.request_body.clear();
                d.request_body_truncated = d.request_body_size > 0;
                Subject::Delivery(d)
            }))?
        }
        FeedEntryKind::RepositoryRenamed => gone(
            state
                .repositories
                .get(entry.subject_id)
                .await
                .map(|r| Subject::Repository(repository_to_proto(r))),
        )?,
    };
    Ok(proto::Event {
        cursor: entry.cursor,
        time: Some(entry.time.to_proto()),
        kind: kind_to_proto(entry.kind) as i32,
        subject,
    })
}
