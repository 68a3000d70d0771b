//! Request bodies move out of the `deliveries` row into `delivery_bodies` (one row per delivery
//! that has a body: `delivery_id`, `body` as stored, `encoding` as `request_body_encoding` was),
//! deleted with their delivery. A body is written once, at intake, and read when a delivery is
//! claimed or shown; the `deliveries` row is rewritten at every claim and every outcome, and on
//! SQLite an UPDATE rewrites the whole row, so a ~5 KB body in it was written to the WAL again
//! at each of those (and read by every scan of the log). Bodies stored before are copied over,
//! then the two columns are dropped.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DeliveryBodies {
    Table,
    DeliveryId,
    Body,
    Encoding,
}

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DeliveryBodies::Table)
                    .col(string_len(DeliveryBodies::DeliveryId, 36).primary_key())
                    .col(blob(DeliveryBodies::Body))
                    .col(string_len_null(DeliveryBodies::Encoding, 16))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_delivery_bodies_delivery")
                            .from(DeliveryBodies::Table, DeliveryBodies::DeliveryId)
                            .to(Deliveries::Table, Deliveries::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared(
            "INSERT INTO delivery_bodies (delivery_id, body, encoding) \
             SELECT id, request_body, request_body_encoding FROM deliveries \
             WHERE request_body IS NOT NULL",
        )
        .await?;
        for statement in [
            "ALTER TABLE deliveries DROP COLUMN request_body_encoding",
            "ALTER TABLE deliveries DROP COLUMN request_body",
        ] {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let blob_type = match manager.get_database_backend() {
            sea_orm_migration::sea_orm::DatabaseBackend::Postgres => "BYTEA",
            _ => "BLOB",
        };
        for statement in [
            format!("ALTER TABLE deliveries ADD COLUMN request_body {blob_type} NULL"),
            "ALTER TABLE deliveries ADD COLUMN request_body_encoding VARCHAR(16) NULL".to_owned(),
            "UPDATE deliveries SET \
             request_body = (SELECT body FROM delivery_bodies b WHERE b.delivery_id = deliveries.id), \
             request_body_encoding = (SELECT encoding FROM delivery_bodies b WHERE b.delivery_id = deliveries.id)"
                .to_owned(),
        ] {
            db.execute_unprepared(&statement).await?;
        }
        manager
            .drop_table(Table::drop().table(DeliveryBodies::Table).to_owned())
            .await
    }
}
