//! sea-orm entities: one file per table, columns as the migrations in `migrations/` make them.
//! Times are [`crate::time::Timestamp`]s; ids stored as text are [`id::Id`]s; JSON stored as text
//! is [`json::Json`].

pub mod changeset;
pub mod commit_check;
pub mod delivery;
pub mod delivery_body;
pub mod feed_entry;
pub mod id;
pub mod json;
pub mod receiver;
pub mod repository;
pub mod repository_alias;
pub mod secret_key;
pub mod sync_request;
pub mod timeline_entry;

pub use id::Id;
