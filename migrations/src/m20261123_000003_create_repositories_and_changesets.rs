//! Batch-change sync: repositories, changesets and their timelines.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Repositories {
    Table,
    Id,
    CodeHostUrn,
    Name,
    ExternalId,
    Url,
    CloneUrls,
    Registered,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum Changesets {
    Table,
    Id,
    RepositoryId,
    Number,
    Title,
    Url,
    Author,
    State,
    ReviewState,
    CheckState,
    HeadRef,
    BaseRef,
    HeadSha,
    Labels,
    HostUpdateTime,
    FieldTimes,
    Reviews,
    Checks,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum ChangesetEvents {
    Table,
    Id,
    ChangesetId,
    Kind,
    Actor,
    OccurTime,
    DeliveryId,
    Summary,
    CreateTime,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Repositories::Table)
                    .if_not_exists()
                    .col(string_len(Repositories::Id, 36).primary_key())
                    .col(text(Repositories::CodeHostUrn))
                    .col(text(Repositories::Name))
                    .col(text(Repositories::ExternalId))
                    .col(text(Repositories::Url))
                    // A JSON array of clone URLs.
                    .col(text(Repositories::CloneUrls))
                    // Registered by an admin (not only seen in an event).
                    .col(boolean(Repositories::Registered).default(false))
                    .col(big_integer(Repositories::CreateTime))
                    .col(big_integer(Repositories::UpdateTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_repositories_urn_name")
                    .table(Repositories::Table)
                    .col(Repositories::CodeHostUrn)
                    .col(Repositories::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Changesets::Table)
                    .if_not_exists()
                    .col(string_len(Changesets::Id, 36).primary_key())
                    .col(string_len(Changesets::RepositoryId, 36))
                    .col(big_integer(Changesets::Number))
                    .col(text(Changesets::Title))
                    .col(text(Changesets::Url))
                    .col(text(Changesets::Author))
                    .col(string_len(Changesets::State, 16))
                    .col(string_len(Changesets::ReviewState, 24))
                    .col(string_len(Changesets::CheckState, 16))
                    .col(text(Changesets::HeadRef))
                    .col(text(Changesets::BaseRef))
                    .col(text(Changesets::HeadSha))
                    // JSON array of label names.
                    .col(text(Changesets::Labels))
                    .col(big_integer_null(Changesets::HostUpdateTime))
                    // JSON object: field name -> host time of the change that set it last.
                    .col(text(Changesets::FieldTimes))
                    // JSON object: reviewer -> their latest vote and its time.
                    .col(text(Changesets::Reviews))
                    // JSON object: "<sha> <context>" -> latest status and its time.
                    .col(text(Changesets::Checks))
                    .col(big_integer(Changesets::CreateTime))
                    .col(big_integer(Changesets::UpdateTime))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_changesets_repository")
                            .from(Changesets::Table, Changesets::RepositoryId)
                            .to(Repositories::Table, Repositories::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_changesets_repository_number")
                    .table(Changesets::Table)
                    .col(Changesets::RepositoryId)
                    .col(Changesets::Number)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ChangesetEvents::Table)
                    .if_not_exists()
                    .col(string_len(ChangesetEvents::Id, 36).primary_key())
                    .col(string_len(ChangesetEvents::ChangesetId, 36))
                    .col(text(ChangesetEvents::Kind))
                    .col(text(ChangesetEvents::Actor))
                    .col(big_integer(ChangesetEvents::OccurTime))
                    // Not a foreign key: the timeline outlives the delivery log's retention.
                    .col(string_len(ChangesetEvents::DeliveryId, 36))
                    .col(text(ChangesetEvents::Summary))
                    .col(big_integer(ChangesetEvents::CreateTime))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_changeset_events_changeset")
                            .from(ChangesetEvents::Table, ChangesetEvents::ChangesetId)
                            .to(Changesets::Table, Changesets::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // A redelivered or duplicated event adds nothing to the timeline: the same kind of thing,
        // at the same host time, told the same way, is the same event.
        manager
            .create_index(
                Index::create()
                    .name("idx_changeset_events_once")
                    .table(ChangesetEvents::Table)
                    .col(ChangesetEvents::ChangesetId)
                    .col(ChangesetEvents::Kind)
                    .col(ChangesetEvents::OccurTime)
                    .col(ChangesetEvents::Summary)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_changeset_events_order")
                    .table(ChangesetEvents::Table)
                    .col(ChangesetEvents::ChangesetId)
                    .col(ChangesetEvents::OccurTime)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ChangesetEvents::Table.into_iden(),
            Changesets::Table.into_iden(),
            Repositories::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
