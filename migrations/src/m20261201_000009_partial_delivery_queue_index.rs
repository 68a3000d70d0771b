//! The worker's queue index covers only the deliveries waiting for it (`PENDING`, `PROCESSING`),
//! not the whole log: it stays as small as the backlog, and a delivery leaving the queue drops
//! out of it instead of moving within it. The same partial-index syntax works on SQLite and
//! PostgreSQL.

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
                "CREATE INDEX idx_deliveries_queue_open ON deliveries (state, next_attempt_time) \
                 WHERE state IN ('PENDING', 'PROCESSING'); \
                 DROP INDEX IF EXISTS idx_deliveries_queue;",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX idx_deliveries_queue ON deliveries (state, next_attempt_time); \
                 DROP INDEX IF EXISTS idx_deliveries_queue_open;",
            )
            .await?;
        Ok(())
    }
}
