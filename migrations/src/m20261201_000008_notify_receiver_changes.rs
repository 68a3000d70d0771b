//! On PostgreSQL, every change to the registry notifies the `hookgate_receivers` channel with the
//! receiver's id, so each replica updates the receivers it holds in memory at once, whoever made
//! the change (any replica, `hookgate rotate-key`, or an operator's SQL). An update that only
//! moves `last_delivery_time` is not a registry change and notifies nothing. SQLite has one
//! process per file and needs no trigger.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared(
            r#"
CREATE OR REPLACE FUNCTION hookgate_notify_receiver_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('hookgate_receivers', OLD.id);
    ELSIF TG_OP = 'INSERT'
        OR (to_jsonb(OLD) - 'last_delivery_time') IS DISTINCT FROM (to_jsonb(NEW) - 'last_delivery_time') THEN
        PERFORM pg_notify('hookgate_receivers', NEW.id);
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql"#,
        )
        .await?;
        db.execute_unprepared(
            "CREATE TRIGGER receivers_notify_change \
             AFTER INSERT OR UPDATE OR DELETE ON receivers \
             FOR EACH ROW EXECUTE FUNCTION hookgate_notify_receiver_change()",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared("DROP TRIGGER IF EXISTS receivers_notify_change ON receivers")
            .await?;
        db.execute_unprepared("DROP FUNCTION IF EXISTS hookgate_notify_receiver_change()")
            .await?;
        Ok(())
    }
}
