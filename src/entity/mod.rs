//! sea-orm entities: one file per table, columns as the migrations in `migrations/` make them.
//! Times are microseconds since the Unix epoch, UTC.

pub mod changeset;
pub mod changeset_event;
pub mod commit_check;
pub mod delivery;
pub mod event;
pub mod receiver;
pub mod repository;
pub mod repository_alias;
pub mod secret_key;
pub mod sync_request;
