//! The receiver registry.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Receivers {
    Table,
    Id,
    Name,
    CodeHostKind,
    CodeHostUrn,
    Secret,
    PreviousSecret,
    PreviousSecretExpireTime,
    IgnoreUnmatched,
    MinSyncIntervalMs,
    PushBranchFilter,
    RateLimitPerMinute,
    CreateTime,
    UpdateTime,
    CreatedBy,
    UpdatedBy,
    LastDeliveryTime,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Receivers::Table)
                    .if_not_exists()
                    .col(string_len(Receivers::Id, 36).primary_key())
                    .col(string_len_uniq(Receivers::Name, 100))
                    .col(string_len(Receivers::CodeHostKind, 32))
                    .col(text(Receivers::CodeHostUrn))
                    // The secrets live in columns of their own so they can be encrypted at rest
                    // without touching anything else.
                    .col(text(Receivers::Secret))
                    .col(text_null(Receivers::PreviousSecret))
                    .col(big_integer_null(Receivers::PreviousSecretExpireTime))
                    .col(boolean(Receivers::IgnoreUnmatched).default(false))
                    .col(big_integer(Receivers::MinSyncIntervalMs).default(0))
                    // A JSON array of glob patterns.
                    .col(text(Receivers::PushBranchFilter))
                    .col(big_integer(Receivers::RateLimitPerMinute).default(0))
                    .col(big_integer(Receivers::CreateTime))
                    .col(big_integer(Receivers::UpdateTime))
                    .col(text(Receivers::CreatedBy))
                    .col(text(Receivers::UpdatedBy))
                    .col(big_integer_null(Receivers::LastDeliveryTime))
                    .to_owned(),
            )
            .await?;
        // Listing pages through receivers in creation order.
        manager
            .create_index(
                Index::create()
                    .name("idx_receivers_create_time_id")
                    .table(Receivers::Table)
                    .col(Receivers::CreateTime)
                    .col(Receivers::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Receivers::Table).to_owned())
            .await
    }
}
