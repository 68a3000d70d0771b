//! Timeline entries are known by the host's own key for what happened (a comment's, review's or
//! check run's id), not by their time and summary: two comments by one person in the same second
//! are two entries, and an edited comment updates its entry.
//!
//! Existing entries get the key a host with no id would give them, their host time and summary
//! (`<occur_time> <summary>`, as `sync::changesets::entry_key` makes it), so they stay unique and
//! a state change redelivered after the upgrade still adds nothing. `revise_time`, the host time
//! of the latest fact about an entry, starts at its `occur_time`.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One statement each: SQLite adds one column per ALTER TABLE.
        for statement in [
            "ALTER TABLE changeset_events ADD COLUMN external_id TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE changeset_events ADD COLUMN revise_time BIGINT NOT NULL DEFAULT 0",
            "UPDATE changeset_events \
             SET external_id = CAST(occur_time AS TEXT) || ' ' || summary, \
                 revise_time = occur_time",
            "DROP INDEX IF EXISTS idx_changeset_events_once",
            "CREATE UNIQUE INDEX idx_changeset_events_key \
             ON changeset_events (changeset_id, kind, external_id)",
        ] {
            manager
                .get_connection()
                .execute_unprepared(statement)
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Entries that only their keys told apart (two comments in one second) cannot all be
        // kept under the old rule: the later arrivals go.
        for statement in [
            "DROP INDEX IF EXISTS idx_changeset_events_key",
            "DELETE FROM changeset_events WHERE EXISTS (SELECT 1 FROM changeset_events o \
             WHERE o.changeset_id = changeset_events.changeset_id \
             AND o.kind = changeset_events.kind \
             AND o.occur_time = changeset_events.occur_time \
             AND o.summary = changeset_events.summary \
             AND o.id < changeset_events.id)",
            "CREATE UNIQUE INDEX idx_changeset_events_once \
             ON changeset_events (changeset_id, kind, occur_time, summary)",
            "ALTER TABLE changeset_events DROP COLUMN revise_time",
            "ALTER TABLE changeset_events DROP COLUMN external_id",
        ] {
            manager
                .get_connection()
                .execute_unprepared(statement)
                .await?;
        }
        Ok(())
    }
}
