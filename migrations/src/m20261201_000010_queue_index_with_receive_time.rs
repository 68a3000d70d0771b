//! The queue index also holds each queued delivery's receive time, so the age of the oldest one
//! (`/metrics`, at every scrape) is read from the index alone instead of from every queued row:
//! with a large backlog that was the whole backlog's bodies, each scrape.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One batch of statements, so both run on the same connection.
        manager
            .get_connection()
            .execute_unprepared(
                "DROP INDEX IF EXISTS idx_deliveries_queue_open; \
                 CREATE INDEX idx_deliveries_queue_open \
                 ON deliveries (state, next_attempt_time, receive_time) \
                 WHERE state IN ('PENDING', 'PROCESSING');",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "DROP INDEX IF EXISTS idx_deliveries_queue_open; \
                 CREATE INDEX idx_deliveries_queue_open ON deliveries (state, next_attempt_time) \
                 WHERE state IN ('PENDING', 'PROCESSING');",
            )
            .await?;
        Ok(())
    }
}
