//! An index of each receiver's deliveries by state, then receive time, for receiver health and
//! bulk redelivery: the last time a receiver had a delivery in a given state is one step down
//! the index (not a walk through all its deliveries), counts by state over the last hour and
//! day read only the index entries of that window, and `RedeliverDeliveries` finds a receiver's
//! `FAILED` deliveries of a time range without reading the others.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    ReceiverId,
    State,
    ReceiveTime,
}

const NAME: &str = "idx_deliveries_receiver_state_time";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(NAME)
                    .table(Deliveries::Table)
                    .col(Deliveries::ReceiverId)
                    .col(Deliveries::State)
                    .col(Deliveries::ReceiveTime)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name(NAME).table(Deliveries::Table).to_owned())
            .await
    }
}
