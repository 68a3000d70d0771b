//! hookgate's database schema, as sea-orm migrations: one file per migration, applied in order at
//! start-up and by `hookgate migrate`. The same migrations run on SQLite and PostgreSQL.
//!
//! Times are stored as microseconds since the Unix epoch (UTC) in BIGINT columns: they sort and
//! compare the same way on both engines.

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_create_receivers;
mod m20261123_000002_create_deliveries;
mod m20261123_000003_create_repositories_and_changesets;
mod m20261123_000004_create_sync_requests_and_events;
mod m20261123_000005_create_commit_checks;
mod m20261201_000006_encrypt_receiver_secrets;
mod m20261201_000007_compress_delivery_bodies;
mod m20261201_000008_notify_receiver_changes;
mod m20261201_000009_partial_delivery_queue_index;
mod m20261201_000010_queue_index_with_receive_time;
mod m20261202_000015_timeline_entry_keys;
mod m20261202_000016_repository_identity;
mod m20261202_000017_event_cursor_on_commit;
mod m20261203_000018_delivery_receiver_state_index;
mod m20261203_000019_delivery_redelivered_by;
mod m20261203_000020_feed_entry_delivery;
mod m20261203_000021_changeset_merge_queue_and_auto_merge;
mod m20261203_000022_receiver_signing_tokens;
mod m20261203_000023_delivery_bodies;
mod m20261203_000024_delivery_body_size;
mod m20261204_000025_delivery_accepted_key;

/// Every migration hookgate has, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_create_receivers::Migration),
            Box::new(m20261123_000002_create_deliveries::Migration),
            Box::new(m20261123_000003_create_repositories_and_changesets::Migration),
            Box::new(m20261123_000004_create_sync_requests_and_events::Migration),
            Box::new(m20261123_000005_create_commit_checks::Migration),
            Box::new(m20261201_000006_encrypt_receiver_secrets::Migration),
            Box::new(m20261201_000007_compress_delivery_bodies::Migration),
            Box::new(m20261201_000008_notify_receiver_changes::Migration),
            Box::new(m20261201_000009_partial_delivery_queue_index::Migration),
            Box::new(m20261201_000010_queue_index_with_receive_time::Migration),
            Box::new(m20261202_000015_timeline_entry_keys::Migration),
            Box::new(m20261202_000016_repository_identity::Migration),
            Box::new(m20261202_000017_event_cursor_on_commit::Migration),
            Box::new(m20261203_000018_delivery_receiver_state_index::Migration),
            Box::new(m20261203_000019_delivery_redelivered_by::Migration),
            Box::new(m20261203_000020_feed_entry_delivery::Migration),
            Box::new(m20261203_000021_changeset_merge_queue_and_auto_merge::Migration),
            Box::new(m20261203_000022_receiver_signing_tokens::Migration),
            Box::new(m20261203_000023_delivery_bodies::Migration),
            Box::new(m20261203_000024_delivery_body_size::Migration),
            Box::new(m20261204_000025_delivery_accepted_key::Migration),
        ]
    }
}
