//! One accepted delivery per host delivery id and receiver was kept by a unique index on
//! `(receiver_id, delivery_key)` over the rows `WHERE state <> 'REJECTED'` (a forged request
//! must not block the real delivery with the same id). Its condition names `state`, and SQLite
//! rewrites the entry of a partial index whose condition names a column an UPDATE sets, whether
//! or not the row's membership changes: every claim and every outcome of a delivery rewrote its
//! entry, at a random place of that index (host delivery ids are random), so a batch of 128
//! dirtied about a page of it per delivery, twice. A delivery is `REJECTED` when it is stored or
//! never, so the key it is deduplicated by is fixed then: `accepted_key` holds it (the
//! delivery's key unless it was rejected; `NULL` when it was, or when it has none), set when the
//! row is written and never after, and the unique index is on it, with a condition that names
//! only it. Existing rows get it from their key and state.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    AcceptedKey,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Deliveries::Table)
                    .add_column(ColumnDef::new(Deliveries::AcceptedKey).text().null())
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared(
            "UPDATE deliveries SET accepted_key = delivery_key \
             WHERE delivery_key IS NOT NULL AND state <> 'REJECTED'",
        )
        .await?;
        // The same rows as the index it replaces, so the same keys are unique.
        db.execute_unprepared(
            "CREATE UNIQUE INDEX IF NOT EXISTS idx_deliveries_accepted_key \
             ON deliveries (receiver_id, accepted_key) WHERE accepted_key IS NOT NULL",
        )
        .await?;
        db.execute_unprepared("DROP INDEX IF EXISTS idx_deliveries_key")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE UNIQUE INDEX IF NOT EXISTS idx_deliveries_key \
             ON deliveries (receiver_id, delivery_key) \
             WHERE delivery_key IS NOT NULL AND state <> 'REJECTED'",
        )
        .await?;
        db.execute_unprepared("DROP INDEX IF EXISTS idx_deliveries_accepted_key")
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Deliveries::Table)
                    .drop_column(Deliveries::AcceptedKey)
                    .to_owned(),
            )
            .await
    }
}
