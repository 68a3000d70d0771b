//! A repository is the host's repository, not its name: the host's own id (`external_id`) is
//! unique per code host, and the names a repository had before a rename are kept as aliases so
//! that the old name still finds it.
//!
//! Before this, an event's id overwrote the stored one, so a repository renamed on its host could
//! have become two rows with the same id. Of those, the one updated last (the one the host's
//! latest event named) keeps the id; the others keep their history and their name, and are
//! known by name only, as they were.

use sea_orm_migration::sea_orm::ConnectionTrait;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Repositories {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum RepositoryAliases {
    Table,
    CodeHostUrn,
    Name,
    RepositoryId,
    CreateTime,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        // Rows that share an id with a row updated later are known by name only. The same
        // statement on both engines (a correlated subquery on the table being updated).
        db.execute_unprepared(
            "UPDATE repositories SET external_id = '' \
             WHERE external_id <> '' AND EXISTS ( \
                 SELECT 1 FROM repositories AS newer \
                 WHERE newer.code_host_urn = repositories.code_host_urn \
                   AND newer.external_id = repositories.external_id \
                   AND (newer.update_time > repositories.update_time \
                        OR (newer.update_time = repositories.update_time \
                            AND newer.id > repositories.id)))",
        )
        .await?;
        // A partial index (both engines have them): rows without an id are many.
        db.execute_unprepared(
            "CREATE UNIQUE INDEX IF NOT EXISTS idx_repositories_urn_external_id \
             ON repositories (code_host_urn, external_id) WHERE external_id <> ''",
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(RepositoryAliases::Table)
                    .if_not_exists()
                    .col(text(RepositoryAliases::CodeHostUrn))
                    // A name the repository had on its host before it was renamed or moved.
                    .col(text(RepositoryAliases::Name))
                    .col(string_len(RepositoryAliases::RepositoryId, 36))
                    // When it stopped being the repository's name.
                    .col(big_integer(RepositoryAliases::CreateTime))
                    .primary_key(
                        Index::create()
                            .col(RepositoryAliases::CodeHostUrn)
                            .col(RepositoryAliases::Name),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_repository_aliases_repository")
                            .from(RepositoryAliases::Table, RepositoryAliases::RepositoryId)
                            .to(Repositories::Table, Repositories::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_repository_aliases_repository")
                    .table(RepositoryAliases::Table)
                    .col(RepositoryAliases::RepositoryId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(RepositoryAliases::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS idx_repositories_urn_external_id")
            .await?;
        Ok(())
    }
}
