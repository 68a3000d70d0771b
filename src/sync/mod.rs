//! Batch-change sync and push sync: repositories, changesets kept current from pull/merge request
//! events with their timelines, sync requests (a push's through `push.rs`, whichever way it came),
//! the event feed `Watch` follows, and the handler the delivery worker calls.

pub mod changesets;
pub mod feed;
mod handler;
mod push;
pub mod repositories;
pub mod requests;
pub mod tracked;

pub use changesets::{Changeset, ChangesetFilter, ChangesetStore, TimelineEntry};
pub use feed::{FeedEntry, FeedEntryKind, FeedFilter, FeedStore, FollowError};
pub use handler::{SyncHandler, on_code_host};
pub use push::{filter_refs, request_push_sync};
pub use repositories::{Repository, RepositoryStore, parse_repository_name};
pub use requests::{CompleteError, Reason, SyncRequest, SyncRequestState, SyncRequestStore};
pub use tracked::{CheckState, ReviewState, Stamp};
