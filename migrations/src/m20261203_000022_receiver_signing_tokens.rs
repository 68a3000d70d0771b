//! GitLab signing tokens (Standard Webhooks): a GitLab receiver may hold a signing token beside
//! its secret, sealed like the secret (`signing_token` with the id of its key), and during a
//! rotation overlap the previous one (`previous_signing_token`, until
//! `previous_signing_token_expire_time`). Two receiver options come with it: how far a
//! delivery's `webhook-timestamp` may be from the receiver's clock (`signature_tolerance_ms`,
//! 5 minutes by default) and whether the signature is required beside the `X-Gitlab-Token`
//! (`require_signature`, on by default). Receivers stored before this migration have no token.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for statement in [
            "ALTER TABLE receivers ADD COLUMN signing_token TEXT NULL",
            "ALTER TABLE receivers ADD COLUMN signing_token_key_id TEXT NULL",
            "ALTER TABLE receivers ADD COLUMN previous_signing_token TEXT NULL",
            "ALTER TABLE receivers ADD COLUMN previous_signing_token_key_id TEXT NULL",
            "ALTER TABLE receivers ADD COLUMN previous_signing_token_expire_time BIGINT NULL",
            "ALTER TABLE receivers ADD COLUMN signature_tolerance_ms BIGINT NOT NULL DEFAULT 300000",
            "ALTER TABLE receivers ADD COLUMN require_signature BOOLEAN NOT NULL DEFAULT TRUE",
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
            "ALTER TABLE receivers DROP COLUMN require_signature",
            "ALTER TABLE receivers DROP COLUMN signature_tolerance_ms",
            "ALTER TABLE receivers DROP COLUMN previous_signing_token_expire_time",
            "ALTER TABLE receivers DROP COLUMN previous_signing_token_key_id",
            "ALTER TABLE receivers DROP COLUMN previous_signing_token",
            "ALTER TABLE receivers DROP COLUMN signing_token_key_id",
            "ALTER TABLE receivers DROP COLUMN signing_token",
        ] {
            manager
                .get_connection()
                .execute_unprepared(statement)
                .await?;
        }
        Ok(())
    }
}
