//! Writes of one chunk of the delivery worker (the deliveries it writes in one transaction):
//! feed entries and timeline entries, which nothing in the chunk reads back, and changesets'
//! and sync requests' new states, which the chunk reads back from here ([`cached_changeset`],
//! [`pending_changeset`], [`cached_outstanding`]). While the worker applies a chunk, they are
//! kept here instead of being written one statement each, and the worker writes them all
//! before it records the deliveries' outcomes, in the same transaction: one multi-row statement
//! per table (a few more when one timeline entry is told twice); a changeset or sync request
//! changed by several deliveries of the chunk is written once, in its last state.
//!
//! A write made outside a chunk (a delivery tried on its own, the generic trigger, an admin's
//! call) is made at once, as before: [`defer_feed_entry`], [`defer_timeline_entry`],
//! [`defer_changeset`] and [`defer_sync_request`] give the row back to be written then.
//!
//! A chunk also keeps rows its handler read for the whole chunk at its start (the repositories
//! and changesets its deliveries name, [`keep_repositories`], [`keep_changesets`], the kept
//! results of the head commits they name, [`keep_commit_checks`], and the outstanding sync
//! requests of the repositories its pushes name, [`keep_outstanding`]), so that
//! each delivery need not read its own: the chunk's transaction holds the database (SQLite) or
//! those rows (PostgreSQL), so they stay as read until the chunk itself writes them: a
//! repository's write forgets them ([`forget_repositories`]), a commit result kept for a
//! repository forgets its others ([`forget_commit_checks`]), a changeset's new state takes the
//! place of what was read ([`defer_changeset`]), as does a changeset the chunk makes (also
//! found among its repository's by [`pending_changesets_of`]), and a sync request's
//! ([`defer_sync_request`]). The repositories whose rows the transaction holds are noted
//! ([`hold_repository`]), so that holding one again asks nothing of the database.

use std::sync::{Arc, Mutex};

use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait};

use std::collections::{HashMap, HashSet};

use crate::entity::{
    Id, changeset, commit_check, feed_entry, repository, sync_request, timeline_entry,
};

/// The most rows one statement writes: far below both engines' limits on bound values.
const ROWS_PER_STATEMENT: usize = 256;

tokio::task_local! {
    /// The writes and reads of the chunk the current task is applying.
    static CHUNK: Arc<Mutex<Chunk>>;
}

/// What a chunk keeps while it is applied.
#[derive(Debug, Default)]
struct Chunk {
    writes: ChunkWrites,
    /// Repositories read at the chunk's start, by code host and the host's id.
    repositories: HashMap<(String, String), repository::Model>,
    /// Changesets read at the chunk's start, by repository and number; `None`: there is none.
    changesets: HashMap<(Id, i64), Option<changeset::Model>>,
    /// Repositories whose rows the chunk's transaction has read to hold them (`FOR UPDATE` on
    /// PostgreSQL): held until it ends, so a second hold need not be asked for. Unlike
    /// `repositories`, a write does not forget them (a row written stays held).
    held: HashSet<Id>,
    /// The outstanding (pending or claimed) sync request of repositories the chunk's pushes
    /// name, by repository, as read at the chunk's start and then as the chunk wrote it; `None`:
    /// there is none.
    outstanding: HashMap<Id, Option<sync_request::Model>>,
    /// The kept results of commits (`commit_checks`) the chunk read, by repository and the head
    /// (lower-case, maybe abbreviated) they were read for: every kept result whose commit
    /// starts with it.
    commit_checks: HashMap<(Id, String), Vec<commit_check::Model>>,
}

/// Writes kept for the end of a chunk, in the order they were asked for.
#[derive(Debug, Default)]
pub struct ChunkWrites {
    feed: Vec<feed_entry::ActiveModel>,
    timeline: Vec<timeline_entry::ActiveModel>,
    /// Changesets' latest states.
    changesets: Latest<changeset::Model>,
    /// Sync requests' latest states, made or joined by the chunk's pushes.
    sync_requests: Latest<sync_request::Model>,
}

/// Rows' latest states, by id, in the order each was first written: a row written twice is
/// written once, as it was last.
#[derive(Debug)]
struct Latest<M> {
    rows: Vec<M>,
    index: HashMap<Id, usize>,
}

impl<M> Default for Latest<M> {
    fn default() -> Self {
        Self {
            rows: Vec::new(),
            index: HashMap::new(),
        }
    }
}

impl<M: Clone> Latest<M> {
    fn put(&mut self, id: Id, row: M) {
        match self.index.get(&id) {
            Some(&i) => self.rows[i] = row,
            None => {
                self.index.insert(id, self.rows.len());
                self.rows.push(row);
            }
        }
    }

    fn get(&self, id: &Id) -> Option<M> {
        self.index.get(id).map(|&i| self.rows[i].clone())
    }
}

impl<M> Latest<M> {
    /// Writes every row, a multi-row insert of up to [`ROWS_PER_STATEMENT`] at a time, each
    /// with `on_conflict`.
    async fn upsert<A, C>(self, conn: &C, on_conflict: OnConflict) -> Result<(), DbErr>
    where
        M: sea_orm::IntoActiveModel<A>,
        A: sea_orm::ActiveModelTrait + Send,
        C: ConnectionTrait,
    {
        let mut rows = self.rows.into_iter().peekable();
        while rows.peek().is_some() {
            let statement: Vec<A> = rows
                .by_ref()
                .take(ROWS_PER_STATEMENT)
                .map(sea_orm::IntoActiveModel::into_active_model)
                .collect();
            <A::Entity as EntityTrait>::insert_many(statement)
                .on_conflict(on_conflict.clone())
                .exec_without_returning(conn)
                .await?;
        }
        Ok(())
    }
}

impl ChunkWrites {
    /// Runs `work` with its feed and timeline writes kept; returns its output and them.
    pub async fn keep<F: Future>(work: F) -> (F::Output, ChunkWrites) {
        let chunk = Arc::new(Mutex::new(Chunk::default()));
        let output = CHUNK.scope(chunk.clone(), work).await;
        let kept = std::mem::take(&mut lock(&chunk).writes);
        (output, kept)
    }

    /// Writes what was kept, on `conn` (the chunk's transaction).
    pub async fn write<C: ConnectionTrait>(self, conn: &C) -> Result<(), DbErr> {
        // A changeset here was read in this transaction, and the insert meets its row and sets
        // what a delivery may change; or the chunk made it, and the insert makes it (the chunk
        // holds its repository's row, so nobody else made it meanwhile).
        self.changesets
            .upsert::<changeset::ActiveModel, _>(conn, changeset_upsert())
            .await?;
        // A sync request here is new (inserted) or was read, and held, in this transaction
        // (its new state replaces the row's).
        self.sync_requests
            .upsert::<sync_request::ActiveModel, _>(conn, sync_request_upsert())
            .await?;
        for rows in self.feed.chunks(ROWS_PER_STATEMENT) {
            feed_entry::Entity::insert_many(rows.to_vec())
                .exec_without_returning(conn)
                .await?;
        }
        for round in timeline_rounds(self.timeline) {
            for rows in round.chunks(ROWS_PER_STATEMENT) {
                timeline_entry::Entity::insert_many(rows.to_vec())
                    .on_conflict(timeline_upsert())
                    .exec_without_returning(conn)
                    .await?;
            }
        }
        Ok(())
    }
}

fn lock(chunk: &Mutex<Chunk>) -> std::sync::MutexGuard<'_, Chunk> {
    // Nothing panics while holding it; a poisoned lock still holds whole rows.
    chunk.lock().unwrap_or_else(|p| p.into_inner())
}

/// `row`, kept in the chunk the current task is applying by `keep`; or given back when the task
/// is not applying one (the caller writes it now).
fn defer<T>(row: T, keep: impl FnOnce(&mut Chunk, T)) -> Option<T> {
    let mut row = Some(row);
    let _ = CHUNK.try_with(|chunk| {
        if let Some(row) = row.take() {
            keep(&mut lock(chunk), row);
        }
    });
    row
}

/// Whether the current task is applying a chunk.
pub fn in_chunk() -> bool {
    CHUNK.try_with(|_| ()).is_ok()
}

/// Keeps `models`, read in the chunk's transaction (and held there), for the chunk's deliveries.
pub fn keep_repositories(models: impl IntoIterator<Item = repository::Model>) {
    let _ = CHUNK.try_with(|chunk| {
        let mut chunk = lock(chunk);
        for m in models {
            chunk.held.insert(m.id);
            if !m.external_id.is_empty() {
                chunk
                    .repositories
                    .insert((m.code_host_urn.clone(), m.external_id.clone()), m);
            }
        }
    });
}

/// The repository of `urn` with the host's id `external_id`, if the chunk read it.
pub fn cached_repository(urn: &str, external_id: &str) -> Option<repository::Model> {
    CHUNK
        .try_with(|chunk| {
            lock(chunk)
                .repositories
                .get(&(urn.to_owned(), external_id.to_owned()))
                .cloned()
        })
        .ok()
        .flatten()
}

/// Notes that the chunk's transaction holds repository `id`'s row (it read it to hold it).
pub fn hold_repository(id: Id) {
    let _ = CHUNK.try_with(|chunk| lock(chunk).held.insert(id));
}

/// Whether the chunk's transaction already holds repository `id`'s row; `false` outside a chunk.
pub fn holds_repository(id: Id) -> bool {
    CHUNK
        .try_with(|chunk| lock(chunk).held.contains(&id))
        .unwrap_or(false)
}

/// Forgets every repository the chunk read: one of them, or the names they hold, is written.
pub fn forget_repositories() {
    let _ = CHUNK.try_with(|chunk| lock(chunk).repositories.clear());
}

/// Keeps what the chunk read of the outstanding sync requests of repositories `wanted` (read
/// after their rows were held, so no other transaction changes them meanwhile): `found`, and
/// that the others have none.
pub fn keep_outstanding(wanted: &[Id], found: Vec<sync_request::Model>) {
    let _ = CHUNK.try_with(|chunk| {
        let mut chunk = lock(chunk);
        for id in wanted {
            chunk.outstanding.entry(*id).or_insert(None);
        }
        for m in found {
            chunk.outstanding.insert(m.repository_id, Some(m));
        }
    });
}

/// What the chunk knows of repository `id`'s outstanding sync request: `Some(None)` when it
/// has none, `None` when the chunk does not know (outside a chunk, or not read).
pub fn cached_outstanding(id: Id) -> Option<Option<sync_request::Model>> {
    CHUNK
        .try_with(|chunk| lock(chunk).outstanding.get(&id).cloned())
        .ok()
        .flatten()
}

/// Keeps `request`, a sync request made or changed by a push, for the end of the chunk this
/// task is applying (in place of any state kept for it before), and as its repository's
/// outstanding request from now on; gives it back when the task is not applying one (write it
/// now). The chunk holds the repository's row, and the request's when it was read, so nobody
/// else writes it meanwhile.
pub fn defer_sync_request(request: sync_request::Model) -> Option<sync_request::Model> {
    defer(request, |chunk, request| {
        chunk
            .outstanding
            .insert(request.repository_id, Some(request.clone()));
        chunk.writes.sync_requests.put(request.id, request);
    })
}

/// Keeps what the chunk read of the kept commit results of heads `wanted` (repository, head in
/// lower case): `found`, every result of those repositories whose commit starts with one of
/// the heads.
pub fn keep_commit_checks(wanted: &[(Id, String)], found: &[commit_check::Model]) {
    let _ = CHUNK.try_with(|chunk| {
        let mut chunk = lock(chunk);
        for (repository_id, head) in wanted {
            let of_head = found
                .iter()
                .filter(|c| c.repository_id == *repository_id && c.sha.starts_with(head.as_str()))
                .cloned()
                .collect();
            chunk
                .commit_checks
                .insert((*repository_id, head.clone()), of_head);
        }
    });
}

/// The kept results of commit `head` (lower case) of a repository, if the chunk read them.
pub fn cached_commit_checks(repository_id: Id, head: &str) -> Option<Vec<commit_check::Model>> {
    CHUNK
        .try_with(|chunk| {
            lock(chunk)
                .commit_checks
                .get(&(repository_id, head.to_owned()))
                .cloned()
        })
        .ok()
        .flatten()
}

/// Forgets what the chunk read of a repository's kept commit results: one is written.
pub fn forget_commit_checks(repository_id: Id) {
    let _ = CHUNK.try_with(|chunk| {
        lock(chunk)
            .commit_checks
            .retain(|(id, _), _| *id != repository_id)
    });
}

/// Keeps what the chunk read of the changesets `wanted` (repository, number): `found` among
/// them, and that the others do not exist.
pub fn keep_changesets(wanted: &[(Id, i64)], found: Vec<changeset::Model>) {
    let _ = CHUNK.try_with(|chunk| {
        let mut chunk = lock(chunk);
        for key in wanted {
            chunk.changesets.entry(*key).or_insert(None);
        }
        for m in found {
            chunk
                .changesets
                .insert((m.repository_id, m.number), Some(m));
        }
    });
}

/// What the chunk read of changeset `number` of a repository: `Some(None)` when it does not
/// exist, `None` when the chunk did not read it.
pub fn cached_changeset(repository_id: Id, number: i64) -> Option<Option<changeset::Model>> {
    CHUNK
        .try_with(|chunk| {
            lock(chunk)
                .changesets
                .get(&(repository_id, number))
                .cloned()
        })
        .ok()
        .flatten()
}

/// Keeps `model`, a changeset's new state, for the end of the chunk this task is applying (in
/// place of any state kept for it before), and as what the chunk reads of it from now on;
/// gives it back when the task is not applying one (write it now).
pub fn defer_changeset(model: changeset::Model) -> Option<changeset::Model> {
    defer(model, |chunk, model| {
        chunk
            .changesets
            .insert((model.repository_id, model.number), Some(model.clone()));
        chunk.writes.changesets.put(model.id, model);
    })
}

/// The state of changeset `id` the chunk keeps to write, if it changed in this chunk: what
/// the chunk's reads of the table must see in place of the row.
pub fn pending_changeset(id: Id) -> Option<changeset::Model> {
    CHUNK
        .try_with(|chunk| lock(chunk).writes.changesets.get(&id))
        .ok()
        .flatten()
}

/// The changesets of repository `repository_id` the chunk keeps to write (changed or made in
/// it), in their new states; none outside a chunk.
pub fn pending_changesets_of(repository_id: Id) -> Vec<changeset::Model> {
    CHUNK
        .try_with(|chunk| {
            lock(chunk)
                .writes
                .changesets
                .rows
                .iter()
                .filter(|c| c.repository_id == repository_id)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// How a chunk's changesets are written: each row is there already, and gets every column but
/// its identity (id, repository and number) and its creation time, so a column added to the
/// table is written here without being named.
fn changeset_upsert() -> OnConflict {
    use changeset::Column as C;
    use sea_orm::Iterable;
    OnConflict::column(C::Id)
        .update_columns(
            C::iter().filter(|c| !matches!(c, C::Id | C::RepositoryId | C::Number | C::CreateTime)),
        )
        .to_owned()
}

/// How a chunk's sync requests are written: a new one is inserted, one already there gets
/// every column but its identity (id, repository) and its request time.
fn sync_request_upsert() -> OnConflict {
    use sea_orm::Iterable;
    use sync_request::Column as C;
    OnConflict::column(C::Id)
        .update_columns(
            C::iter().filter(|c| !matches!(c, C::Id | C::RepositoryId | C::RequestTime)),
        )
        .to_owned()
}

/// Keeps `entry` for the end of the chunk this task is applying; gives it back when the task is
/// not applying one (write it now).
pub fn defer_feed_entry(entry: feed_entry::ActiveModel) -> Option<feed_entry::ActiveModel> {
    defer(entry, |chunk, entry| chunk.writes.feed.push(entry))
}

/// Like [`defer_feed_entry`], for a timeline entry written with [`timeline_upsert`].
pub fn defer_timeline_entry(
    entry: timeline_entry::ActiveModel,
) -> Option<timeline_entry::ActiveModel> {
    defer(entry, |chunk, entry| chunk.writes.timeline.push(entry))
}

/// How a timeline entry is written: a new (changeset, kind, key) is inserted; for one already
/// there, a newer fact (a later `revise_time`) replaces its summary, actor and delivery, and an
/// earlier one its time. One statement, whose every assignment reads the row as it was.
pub fn timeline_upsert() -> OnConflict {
    use timeline_entry::Column as E;
    let newer = |column: &str| {
        sea_orm::sea_query::Expr::cust(format!(
            "CASE WHEN changeset_events.revise_time < excluded.revise_time \
             THEN excluded.{column} ELSE changeset_events.{column} END"
        ))
    };
    OnConflict::columns([E::ChangesetId, E::Kind, E::ExternalId])
        .value(E::Summary, newer("summary"))
        .value(E::Actor, newer("actor"))
        .value(E::DeliveryId, newer("delivery_id"))
        .value(E::ReviseTime, newer("revise_time"))
        .value(
            E::OccurTime,
            sea_orm::sea_query::Expr::cust(
                "CASE WHEN changeset_events.occur_time > excluded.occur_time \
                 THEN excluded.occur_time ELSE changeset_events.occur_time END",
            ),
        )
        .to_owned()
}

/// `entries` in rounds, each naming a (changeset, kind, key) at most once (PostgreSQL refuses
/// a statement that would update one row twice), an entry told twice in a later round than the
/// first telling: written round after round, each entry meets the ones told before it in the
/// order they were told, as one statement each would.
fn timeline_rounds(
    entries: Vec<timeline_entry::ActiveModel>,
) -> Vec<Vec<timeline_entry::ActiveModel>> {
    let mut rounds: Vec<Vec<timeline_entry::ActiveModel>> = Vec::new();
    let mut last_round = std::collections::HashMap::new();
    for entry in entries {
        let key = (
            entry.changeset_id.clone().unwrap(),
            entry.kind.clone().unwrap(),
            entry.external_id.clone().unwrap(),
        );
        let round = last_round.get(&key).map_or(0, |r| r + 1);
        last_round.insert(key, round);
        if rounds.len() <= round {
            rounds.push(Vec::new());
        }
        rounds[round].push(entry);
    }
    rounds
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::Id;
    use crate::time::Timestamp;
    use sea_orm::Set;

    fn entry(changeset: Id, key: &str, summary: &str) -> timeline_entry::ActiveModel {
        timeline_entry::ActiveModel {
            id: Set(Id::new_v4()),
            changeset_id: Set(changeset),
            kind: Set("comment".into()),
            actor: Set("octo".into()),
            occur_time: Set(Timestamp::EPOCH),
            delivery_id: Set(Id::new_v4()),
            summary: Set(summary.into()),
            create_time: Set(Timestamp::EPOCH),
            external_id: Set(key.into()),
            revise_time: Set(Timestamp::EPOCH),
        }
    }

    #[test]
    fn an_entry_told_twice_goes_to_a_later_round_in_the_order_told() {
        let (a, b) = (Id::new_v4(), Id::new_v4());
        let rounds = timeline_rounds(vec![
            entry(a, "1", "first"),
            entry(a, "2", "other"),
            entry(a, "1", "second"),
            entry(b, "1", "another changeset"),
            entry(a, "1", "third"),
        ]);
        let summaries: Vec<Vec<String>> = rounds
            .iter()
            .map(|r| r.iter().map(|e| e.summary.clone().unwrap()).collect())
            .collect();
        assert_eq!(
            summaries,
            [
                vec!["first", "other", "another changeset"],
                vec!["second"],
                vec!["third"]
            ]
        );
    }

    fn request(repository: Id, id: Id, pushes: i32) -> sync_request::Model {
        use crate::entity::id::OptionalId;
        use crate::entity::json::Json;
        use crate::entity::sync_request::{Reason, SyncRequestState};
        sync_request::Model {
            id,
            repository_id: repository,
            receiver_id: OptionalId(None),
            state: SyncRequestState::Pending,
            push_count: pushes,
            refs: Json(Vec::new()),
            request_time: Timestamp::EPOCH,
            due_time: Timestamp::EPOCH,
            lease_expire_time: None,
            worker: String::new(),
            reason: Reason::Push,
            min_sync_interval_ms: 0,
            rerun: false,
            rerun_refs: Json(Vec::new()),
            rerun_count: 0,
            complete_time: None,
            error: None,
        }
    }

    #[tokio::test]
    async fn a_sync_request_written_twice_in_a_chunk_is_kept_once_as_it_was_last() {
        let (a, b) = (Id::new_v4(), Id::new_v4());
        let (first, second) = (Id::new_v4(), Id::new_v4());
        assert!(defer_sync_request(request(a, first, 1)).is_some());
        let ((), kept) = ChunkWrites::keep(async {
            assert_eq!(cached_outstanding(a), None);
            assert!(defer_sync_request(request(a, first, 1)).is_none());
            assert!(defer_sync_request(request(b, second, 1)).is_none());
            assert!(defer_sync_request(request(a, first, 2)).is_none());
            // What the chunk's next push to `a` joins is its latest state.
            assert_eq!(cached_outstanding(a), Some(Some(request(a, first, 2))));
        })
        .await;
        let pushes: Vec<(Id, i32)> = kept
            .sync_requests
            .rows
            .iter()
            .map(|r| (r.id, r.push_count))
            .collect();
        assert_eq!(pushes, [(first, 2), (second, 1)]);
    }

    #[tokio::test]
    async fn writes_are_kept_only_inside_a_chunk() {
        let changeset = Id::new_v4();
        assert!(defer_timeline_entry(entry(changeset, "1", "outside")).is_some());
        let ((), kept) = ChunkWrites::keep(async {
            assert!(defer_timeline_entry(entry(changeset, "1", "inside")).is_none());
        })
        .await;
        assert_eq!(kept.timeline.len(), 1);
        assert!(defer_timeline_entry(entry(changeset, "1", "after")).is_some());
    }
}
