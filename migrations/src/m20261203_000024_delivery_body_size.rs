//! Each delivery's row records the size of its request body as received (`body_size`, bytes;
//! 0 without one), so the worker can bound a claim by the bytes it will hold in memory as well
//! as by a count: the body itself lives in `delivery_bodies`, and a claim that had to read it
//! to learn its size would already hold it. Rows stored before this migration get the size
//! their body is stored with: exact for a body stored as received, and the compressed size for
//! a compressed one (less than it decodes to; the claim of such a delivery, only while it is
//! still queued after an upgrade, counts it low).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    BodySize,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Deliveries::Table)
                    .add_column(
                        ColumnDef::new(Deliveries::BodySize)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE deliveries SET body_size = \
                 (SELECT length(b.body) FROM delivery_bodies b WHERE b.delivery_id = deliveries.id) \
                 WHERE EXISTS (SELECT 1 FROM delivery_bodies b WHERE b.delivery_id = deliveries.id)",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Deliveries::Table)
                    .drop_column(Deliveries::BodySize)
                    .to_owned(),
            )
            .await
    }
}
