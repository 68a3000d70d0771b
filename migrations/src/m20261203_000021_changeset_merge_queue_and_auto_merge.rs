//! Two facts GitHub tells of a pull request that hookgate keeps on its changeset: whether it is
//! in the merge queue (`pull_request` `enqueued` / `dequeued`) and whether it is set to
//! auto-merge (`auto_merge_enabled` / `auto_merge_disabled`). Changesets stored before this
//! migration are neither: nothing had told hookgate otherwise.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for statement in [
            "ALTER TABLE changesets ADD COLUMN in_merge_queue BOOLEAN NOT NULL DEFAULT FALSE",
            "ALTER TABLE changesets ADD COLUMN auto_merge BOOLEAN NOT NULL DEFAULT FALSE",
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
            "ALTER TABLE changesets DROP COLUMN auto_merge",
            "ALTER TABLE changesets DROP COLUMN in_merge_queue",
        ] {
            manager
                .get_connection()
                .execute_unprepared(statement)
                .await?;
        }
        Ok(())
    }
}
