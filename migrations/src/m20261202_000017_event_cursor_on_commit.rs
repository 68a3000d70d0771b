//! An event's cursor (its place in the feed `Watch` streams) is given when the event is
//! committed, no longer when its row is written: a transaction that writes an event and commits
//! it long after, while others commit theirs, no longer leaves a hole below cursors a watcher has
//! already passed (a hole it would skip for good).
//!
//! The column that numbered rows as they were written becomes `id`; a new `cursor` column holds
//! the feed position. Existing rows keep their cursor (`cursor = id`), and new cursors continue
//! after the last one ever given, so a client's saved cursor goes on working.
//!
//! - PostgreSQL: `cursor` is NULL when written, and numbered from its own sequence by
//!   `crate::events`' sequencer once the row is committed.
//! - SQLite: one writer at a time, which holds the database from its first write to its commit,
//!   so rows are committed in `id` order and no hole below a visible row can fill later. A
//!   trigger sets `cursor = id` on insert (`id` is AUTOINCREMENT: never reused, even after the
//!   newest rows are purged).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared(
                    r#"
ALTER TABLE events RENAME COLUMN "cursor" TO id;
DO $$ BEGIN
    EXECUTE format('ALTER SEQUENCE %s RENAME TO events_id_seq', pg_get_serial_sequence('events', 'id'));
END $$;
ALTER TABLE events ADD COLUMN "cursor" BIGINT NULL;
UPDATE events SET "cursor" = id;
CREATE SEQUENCE events_cursor_seq AS BIGINT OWNED BY events."cursor";
SELECT setval('events_cursor_seq', last_value, is_called) FROM events_id_seq;
CREATE UNIQUE INDEX idx_events_cursor ON events ("cursor");
CREATE INDEX idx_events_uncommitted ON events (id) WHERE "cursor" IS NULL;
"#,
                )
                .await?;
            }
            _ => {
                db.execute_unprepared(
                    r#"
ALTER TABLE events RENAME COLUMN "cursor" TO id;
ALTER TABLE events ADD COLUMN "cursor" BIGINT NULL;
UPDATE events SET "cursor" = id;
CREATE UNIQUE INDEX idx_events_cursor ON events ("cursor");
CREATE TRIGGER events_cursor AFTER INSERT ON events FOR EACH ROW WHEN NEW."cursor" IS NULL
BEGIN
    UPDATE events SET "cursor" = NEW.id WHERE id = NEW.id;
END;
"#,
                )
                .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Back to cursors given as rows are written: each row's cursor becomes its id again.
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared(
                    r#"
DROP INDEX IF EXISTS idx_events_uncommitted;
DROP INDEX IF EXISTS idx_events_cursor;
ALTER TABLE events DROP COLUMN "cursor";
ALTER SEQUENCE events_id_seq RENAME TO events_cursor_seq;
ALTER TABLE events RENAME COLUMN id TO "cursor";
"#,
                )
                .await?;
            }
            _ => {
                db.execute_unprepared(
                    r#"
DROP TRIGGER IF EXISTS events_cursor;
DROP INDEX IF EXISTS idx_events_cursor;
ALTER TABLE events DROP COLUMN "cursor";
ALTER TABLE events RENAME COLUMN id TO "cursor";
"#,
                )
                .await?;
            }
        }
        Ok(())
    }
}
