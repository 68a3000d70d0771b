//! Push sync (sync requests) and the event feed.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Repositories {
    Table,
    Id,
    LastSyncTime,
}

#[derive(DeriveIden)]
enum SyncRequests {
    Table,
    Id,
    RepositoryId,
    ReceiverId,
    State,
    PushCount,
    Refs,
    RequestTime,
    DueTime,
    LeaseExpireTime,
    Worker,
    Reason,
    MinSyncIntervalMs,
    Rerun,
    RerunRefs,
    RerunCount,
    CompleteTime,
    Error,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Cursor,
    Time,
    Kind,
    ReceiverId,
    SubjectId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // When the repository was last synced successfully: the minimum interval counts from it.
        manager
            .alter_table(
                Table::alter()
                    .table(Repositories::Table)
                    .add_column(big_integer_null(Repositories::LastSyncTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SyncRequests::Table)
                    .if_not_exists()
                    .col(string_len(SyncRequests::Id, 36).primary_key())
                    .col(string_len(SyncRequests::RepositoryId, 36))
                    // The receiver whose delivery asked first; empty for an admin's request.
                    .col(string_len(SyncRequests::ReceiverId, 36))
                    .col(string_len(SyncRequests::State, 16))
                    .col(integer(SyncRequests::PushCount))
                    // JSON array of {name, old_sha, new_sha}.
                    .col(text(SyncRequests::Refs))
                    .col(big_integer(SyncRequests::RequestTime))
                    .col(big_integer(SyncRequests::DueTime))
                    .col(big_integer_null(SyncRequests::LeaseExpireTime))
                    .col(text(SyncRequests::Worker))
                    .col(text(SyncRequests::Reason))
                    .col(big_integer(SyncRequests::MinSyncIntervalMs))
                    // Pushes that landed while a worker held it: it runs again when completed.
                    .col(boolean(SyncRequests::Rerun).default(false))
                    .col(text(SyncRequests::RerunRefs))
                    .col(integer(SyncRequests::RerunCount).default(0))
                    .col(big_integer_null(SyncRequests::CompleteTime))
                    .col(text_null(SyncRequests::Error))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_sync_requests_repository")
                            .from(SyncRequests::Table, SyncRequests::RepositoryId)
                            .to(Repositories::Table, Repositories::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sync_requests_due")
                    .table(SyncRequests::Table)
                    .col(SyncRequests::State)
                    .col(SyncRequests::DueTime)
                    .to_owned(),
            )
            .await?;
        // At most one outstanding sync request per repository.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX IF NOT EXISTS idx_sync_requests_outstanding \
                 ON sync_requests (repository_id) WHERE state IN ('PENDING', 'CLAIMED')",
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Events::Cursor))
                    .col(big_integer(Events::Time))
                    .col(string_len(Events::Kind, 32))
                    .col(string_len(Events::ReceiverId, 36))
                    .col(string_len(Events::SubjectId, 36))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_events_time")
                    .table(Events::Table)
                    .col(Events::Time)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Events::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(SyncRequests::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Repositories::Table)
                    .drop_column(Repositories::LastSyncTime)
                    .to_owned(),
            )
            .await
    }
}
