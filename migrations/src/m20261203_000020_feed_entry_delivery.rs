//! Each feed entry remembers the delivery whose processing wrote it (empty for an admin's action
//! or a sync worker's report), so a delivery can say what it did: the changesets it updated and
//! the sync requests it made or joined (the web console's delivery page). Entries written before
//! this migration have none. Timeline entries already name their delivery: an index lets the
//! same page find them by it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for statement in [
            "ALTER TABLE events ADD COLUMN delivery_id TEXT NOT NULL DEFAULT ''",
            // A partial index (both engines have them): most entries' lookups are by cursor, and
            // entries without a delivery need no place in it.
            "CREATE INDEX idx_events_delivery ON events (delivery_id) WHERE delivery_id <> ''",
            "CREATE INDEX idx_changeset_events_delivery ON changeset_events (delivery_id)",
        ] {
            manager
                .get_connection()
                .execute_unprepared(statement)
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for statement in [
            "DROP INDEX IF EXISTS idx_changeset_events_delivery",
            "DROP INDEX IF EXISTS idx_events_delivery",
            "ALTER TABLE events DROP COLUMN delivery_id",
        ] {
            manager
                .get_connection()
                .execute_unprepared(statement)
                .await?;
        }
        Ok(())
    }
}
