//! Check results of commits no changeset has as its head yet (a status that names no pull
//! request can arrive before the pull request event that moves the head to its commit).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Repositories {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum CommitChecks {
    Table,
    Id,
    RepositoryId,
    Sha,
    Context,
    Status,
    Time,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CommitChecks::Table)
                    .if_not_exists()
                    .col(string_len(CommitChecks::Id, 36).primary_key())
                    .col(string_len(CommitChecks::RepositoryId, 36))
                    // Lower-case, as the host sent it (full or abbreviated).
                    .col(string_len(CommitChecks::Sha, 64))
                    .col(text(CommitChecks::Context))
                    .col(string_len(CommitChecks::Status, 16))
                    .col(big_integer(CommitChecks::Time))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_commit_checks_repository")
                            .from(CommitChecks::Table, CommitChecks::RepositoryId)
                            .to(Repositories::Table, Repositories::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_commit_checks_once")
                    .table(CommitChecks::Table)
                    .col(CommitChecks::RepositoryId)
                    .col(CommitChecks::Sha)
                    .col(CommitChecks::Context)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CommitChecks::Table).to_owned())
            .await
    }
}
