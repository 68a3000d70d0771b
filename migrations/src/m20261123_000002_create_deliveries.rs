//! The delivery log: every request that reached a receiver, as received, with its outcome.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Receivers {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    Id,
    ReceiverId,
    DeliveryKey,
    Event,
    State,
    ReceiveTime,
    Method,
    Path,
    RequestHeaders,
    RequestBody,
    ResponseStatus,
    ResponseBody,
    Attempts,
    LastError,
    ProcessTime,
    NextAttemptTime,
    LeaseExpireTime,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Deliveries::Table)
                    .if_not_exists()
                    .col(string_len(Deliveries::Id, 36).primary_key())
                    .col(string_len(Deliveries::ReceiverId, 36))
                    // The host's delivery id; NULL when the host sent none.
                    .col(text_null(Deliveries::DeliveryKey))
                    .col(text(Deliveries::Event))
                    .col(string_len(Deliveries::State, 16))
                    .col(big_integer(Deliveries::ReceiveTime))
                    .col(string_len(Deliveries::Method, 16))
                    .col(text(Deliveries::Path))
                    // A JSON object of lower-case header names to values, secrets redacted.
                    .col(text(Deliveries::RequestHeaders))
                    // NULL for a REJECTED delivery: an unauthenticated body is never kept.
                    .col(blob_null(Deliveries::RequestBody))
                    .col(integer(Deliveries::ResponseStatus))
                    .col(blob(Deliveries::ResponseBody))
                    .col(integer(Deliveries::Attempts).default(0))
                    .col(text_null(Deliveries::LastError))
                    .col(big_integer_null(Deliveries::ProcessTime))
                    // When a PENDING delivery may next be tried (backoff after a failure).
                    .col(big_integer(Deliveries::NextAttemptTime))
                    // When a PROCESSING delivery's claim runs out and another worker may take it.
                    .col(big_integer_null(Deliveries::LeaseExpireTime))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_deliveries_receiver")
                            .from(Deliveries::Table, Deliveries::ReceiverId)
                            .to(Receivers::Table, Receivers::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Listing a receiver's deliveries newest first; the last delivery time.
        manager
            .create_index(
                Index::create()
                    .name("idx_deliveries_receiver_time")
                    .table(Deliveries::Table)
                    .col(Deliveries::ReceiverId)
                    .col(Deliveries::ReceiveTime)
                    .to_owned(),
            )
            .await?;
        // Listing all deliveries newest first; retention.
        manager
            .create_index(
                Index::create()
                    .name("idx_deliveries_time")
                    .table(Deliveries::Table)
                    .col(Deliveries::ReceiveTime)
                    .col(Deliveries::Id)
                    .to_owned(),
            )
            .await?;
        // The worker's queue.
        manager
            .create_index(
                Index::create()
                    .name("idx_deliveries_queue")
                    .table(Deliveries::Table)
                    .col(Deliveries::State)
                    .col(Deliveries::NextAttemptTime)
                    .to_owned(),
            )
            .await?;
        // One accepted delivery per host delivery id and receiver. Rejected attempts do not
        // count: a forged request must not block the real delivery with the same id. The same
        // partial-index syntax works on SQLite and PostgreSQL.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX IF NOT EXISTS idx_deliveries_key \
                 ON deliveries (receiver_id, delivery_key) \
                 WHERE delivery_key IS NOT NULL AND state <> 'REJECTED'",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Deliveries::Table).to_owned())
            .await
    }
}
