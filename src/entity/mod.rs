//! sea-orm entities: one file per table, columns as the migrations in `migrations/` make them.
//! A time is a `crate::time::Timestamp`; an id is an [`Id`], a UUID stored as its text.

pub mod changeset;
pub mod changeset_event;
pub mod commit_check;
pub mod delivery;
pub mod event;
mod id;
pub mod receiver;
pub mod repository;
pub mod repository_alias;
pub mod secret_key;
pub mod sync_request;

pub use id::Id;
