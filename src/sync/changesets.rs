//! Changesets in the database: applying an event's effect in the worker's transaction, and
//! reading changesets and their timelines for the admin API.

use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect, Set};
use uuid::Uuid;

use super::tracked::{CheckState, ReviewState, Stamp, StoredCheck, Tracked, same_commit};
use crate::db::Db;
use crate::entity::id::Id;
use crate::entity::json::Json;
use crate::entity::{changeset, commit_check, repository, timeline_entry};
use crate::hosts::effects::{ChangesetEffect, ChangesetState, Target};
use crate::store::StoreError;
use crate::store::paging::{self, Sort};
use crate::sync::feed::{self, FeedEntryKind};
use crate::time::Timestamp;

/// A changeset as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changeset {
    pub id: Uuid,
    pub repository_id: Uuid,
    pub repository: String,
    pub code_host_urn: String,
    pub number: i64,
    pub title: String,
    pub url: String,
    pub author: String,
    pub state: ChangesetState,
    pub review_state: ReviewState,
    pub check_state: CheckState,
    pub head_ref: String,
    pub base_ref: String,
    pub head_sha: String,
    pub labels: Vec<String>,
    pub host_update_time: Option<Timestamp>,
    /// Whether it is in the host's merge queue.
    pub in_merge_queue: bool,
    /// Whether it is set to auto-merge.
    pub auto_merge: bool,
    pub create_time: Timestamp,
}

/// One timeline entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    pub id: Uuid,
    pub kind: String,
    pub actor: String,
    pub occur_time: Timestamp,
    /// The delivery that told the latest fact about it.
    pub delivery_id: Uuid,
    pub summary: String,
    /// The host's own key for what happened (see [`entry_key`]).
    pub external_id: String,
}

/// Which changesets a listing shows.
#[derive(Debug, Clone, Default)]
pub struct ChangesetFilter {
    pub code_host_urn: Option<String>,
    pub repository: Option<String>,
    pub number: Option<i64>,
    pub states: Vec<ChangesetState>,
}

/// One page of changesets.
#[derive(Debug)]
pub struct ChangesetPage {
    pub changesets: Vec<Changeset>,
    pub total_size: u64,
    pub has_more: bool,
}

/// Applies an effect, told by delivery `delivery_id` and from `at` (its host time, and the
/// delivery's receive time), to the changesets it names; returns them (empty: it matched none).
pub async fn apply<C: ConnectionTrait>(
    conn: &C,
    repository: &repository::Model,
    effect: &ChangesetEffect,
    delivery_id: Uuid,
    receiver_id: Uuid,
    at: Stamp,
) -> Result<Vec<Uuid>, DbErr> {
    let targets = match &effect.target {
        Target::Number(number) => vec![find_or_create(conn, repository.id, *number).await?],
        Target::MergeGroup { number: None, .. } => Vec::new(),
        Target::MergeGroup {
            number: Some(number),
            ..
        } => with_new(
            repository.id,
            changeset::Entity::find()
                .filter(changeset::Column::RepositoryId.eq(repository.id))
                .filter(changeset::Column::Number.eq(*number))
                .all(conn)
                .await?,
        )
        .filter(|c| c.number == *number)
        .collect(),
        Target::HeadSha(sha) => with_new(
            repository.id,
            changeset::Entity::find()
                .filter(changeset::Column::RepositoryId.eq(repository.id))
                .all(conn)
                .await?,
        )
        .filter(|c| same_commit(&c.head_sha, sha))
        .collect(),
    };
    let now = Timestamp::now();
    // A result for a commit, named by no pull request, is kept for the repository: the
    // changeset whose head becomes that commit later takes it then.
    if let (Target::HeadSha(sha), Some(check)) = (&effect.target, &effect.check) {
        keep_commit_check(conn, repository.id, sha, check, at.time).await?;
    }
    let mut applied = Vec::with_capacity(targets.len());
    for model in targets {
        let id = model.id.uuid();
        let before = load(&model);
        let mut tracked = before.clone();
        tracked.apply(effect, at);
        if tracked.head_sha != before.head_sha {
            // The new head may have results that arrived before this event.
            for kept in commit_checks_of(conn, repository.id, &tracked.head_sha).await? {
                tracked.record_check(kept);
            }
        }
        if tracked != before {
            save(conn, model.clone(), &tracked, now).await?;
            feed::append(
                conn,
                FeedEntryKind::ChangesetUpdated,
                feed::Source::delivery(receiver_id, delivery_id),
                id,
                now,
            )
            .await?;
        }
        record_entry(conn, model.id, effect, delivery_id, at, now).await?;
        applied.push(id);
    }
    Ok(applied)
}

/// `row` as the worker's chunk changed it, when it did (its new state is written at the chunk's
/// end, so the table does not hold it yet).
fn as_changed(row: changeset::Model) -> changeset::Model {
    crate::deliveries::chunk::pending_changeset(row.id).unwrap_or(row)
}

/// `rows`, a repository's changesets read from the table, as the worker's chunk changed them,
/// then those of the repository the chunk made (written at its end, so not in the table yet).
fn with_new(
    repository_id: Id,
    rows: Vec<changeset::Model>,
) -> impl Iterator<Item = changeset::Model> {
    let read: std::collections::HashSet<Id> = rows.iter().map(|r| r.id).collect();
    let made = crate::deliveries::chunk::pending_changesets_of(repository_id)
        .into_iter()
        .filter(move |c| !read.contains(&c.id));
    rows.into_iter().map(as_changed).chain(made)
}

/// The key of a timeline entry: the host's own (`effect.external_id`), else, for what the host
/// gives no id (a state change), its host time and summary: a redelivery or a resend tells the
/// same time and words, two real changes differ in one or the other.
pub fn entry_key(effect: &ChangesetEffect, time: Timestamp) -> String {
    if effect.external_id.is_empty() {
        format!("{} {}", time.micros(), effect.summary)
    } else {
        effect.external_id.clone()
    }
}

/// An id for a timeline entry that sorts as its arrival does: a UUID v7 whose time is the
/// receive time of the delivery that told of it (milliseconds, then the microseconds within the
/// millisecond in the 12 bits v7 leaves to the maker), the rest random. The timeline lists
/// entries by host time, then by id, so entries of the same host time read in the order their
/// deliveries arrived, whenever and wherever they were processed.
pub fn arrival_ordered_id(arrival: Timestamp) -> Uuid {
    let micros = u128::try_from(arrival.micros()).unwrap_or(0);
    let (millis, sub_milli) = (micros / 1_000, micros % 1_000);
    let random = Uuid::new_v4().as_u128() & ((1 << 62) - 1);
    Uuid::from_u128(
        ((millis & ((1 << 48) - 1)) << 80)
            | (0x7 << 76)
            | (sub_milli << 64)
            | (0b10 << 62)
            | random,
    )
}

/// Adds `effect`'s entry to a changeset's timeline, once per (kind, key). A later fact about the
/// same thing (an edited comment, a check run that finished) updates the entry instead: its
/// summary, actor and delivery are the latest fact's, its time the earliest one's.
async fn record_entry<C: ConnectionTrait>(
    conn: &C,
    changeset_id: Id,
    effect: &ChangesetEffect,
    delivery_id: Uuid,
    at: Stamp,
    now: Timestamp,
) -> Result<(), DbErr> {
    let time = at.time;
    let entry = timeline_entry::ActiveModel {
        id: Set(arrival_ordered_id(at.arrival).into()),
        changeset_id: Set(changeset_id),
        kind: Set(effect.kind.clone()),
        actor: Set(effect.actor.clone()),
        occur_time: Set(time),
        delivery_id: Set(delivery_id.into()),
        summary: Set(effect.summary.clone()),
        create_time: Set(now),
        external_id: Set(entry_key(effect, time)),
        revise_time: Set(time),
    };
    // Nothing reads a timeline while a chunk of deliveries is applied: in one, the entry is
    // written with the chunk's others.
    if let Some(entry) = crate::deliveries::chunk::defer_timeline_entry(entry) {
        timeline_entry::Entity::insert(entry)
            .on_conflict(crate::deliveries::chunk::timeline_upsert())
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// Keeps `check` on commit `sha` of a repository, unless a newer result of the same context
/// is kept.
async fn keep_commit_check<C: ConnectionTrait>(
    conn: &C,
    repository_id: Id,
    sha: &str,
    check: &crate::hosts::effects::CheckResult,
    time: Timestamp,
) -> Result<(), DbErr> {
    use commit_check::Column as K;
    // What the worker's chunk read of the repository's kept results no longer holds.
    crate::deliveries::chunk::forget_commit_checks(repository_id);
    let sha = sha.to_ascii_lowercase();
    let status = check.status;
    commit_check::Entity::insert(commit_check::ActiveModel {
        id: Set(Id::new_v4()),
        repository_id: Set(repository_id),
        sha: Set(sha.clone()),
        context: Set(check.context.clone()),
        status: Set(status),
        time: Set(time),
    })
    .on_conflict(
        OnConflict::columns([K::RepositoryId, K::Sha, K::Context])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    commit_check::Entity::update_many()
        .col_expr(K::Status, Expr::value(status))
        .col_expr(K::Time, Expr::value(time))
        .filter(K::RepositoryId.eq(repository_id))
        .filter(K::Sha.eq(sha))
        .filter(K::Context.eq(check.context.clone()))
        .filter(K::Time.lte(time))
        .exec(conn)
        .await?;
    Ok(())
}

/// Kept results whose commit (`commit_checks.sha`, stored in lower case) starts with `head`.
///
/// On SQLite it is a range of the column (`head <= sha < head's successor`), which its BINARY
/// collation orders byte by byte, as `str::starts_with` does. `LIKE` would ask the same, but
/// SQLite plans a `LIKE` on a bound pattern again each time the pattern is bound (to see whether
/// an index serves it), so a chunk's statement naming many heads was planned twice, and it is
/// one statement of the write transaction. PostgreSQL orders text by the database's collation,
/// where a range is not a prefix: it keeps `LIKE`.
pub(crate) fn sha_starts_with(backend: sea_orm::DbBackend, head: &str) -> sea_orm::Condition {
    use commit_check::Column as K;
    use sea_orm::Condition;
    if backend == sea_orm::DbBackend::Postgres {
        return Condition::all().add(K::Sha.starts_with(head));
    }
    let range = Condition::all().add(K::Sha.gte(head));
    match successor(head) {
        Some(end) => range.add(K::Sha.lt(end)),
        None => range,
    }
}

/// The least string greater than every string that starts with `prefix` (in the order of code
/// points, which is UTF-8's byte order): `prefix` with its last character that has a next one
/// moved to that next one, and the characters after it dropped. `None` when there is none
/// (`prefix` is empty or all `char::MAX`).
fn successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The kept results of the repository's commit `head` (which may be abbreviated).
async fn commit_checks_of<C: ConnectionTrait>(
    conn: &C,
    repository_id: Id,
    head: &str,
) -> Result<Vec<StoredCheck>, DbErr> {
    if head.is_empty() {
        return Ok(Vec::new());
    }
    let head = head.to_ascii_lowercase();
    // Read at the start of the worker's chunk, for the heads its events name.
    let rows = match crate::deliveries::chunk::cached_commit_checks(repository_id, &head) {
        Some(rows) => rows,
        None => {
            commit_check::Entity::find()
                .filter(commit_check::Column::RepositoryId.eq(repository_id))
                .filter(sha_starts_with(conn.get_database_backend(), &head))
                .all(conn)
                .await?
        }
    };
    Ok(rows
        .into_iter()
        .map(|r| StoredCheck {
            sha: r.sha,
            context: r.context,
            status: r.status,
            time: r.time,
            // Kept results are ordered by host time alone.
            arrival: Timestamp::EPOCH,
        })
        .collect())
}

/// The changeset `number` of a repository, created empty (open) if it is new; safe against a
/// concurrent creator.
async fn find_or_create<C: ConnectionTrait>(
    conn: &C,
    repository_id: Id,
    number: i64,
) -> Result<changeset::Model, DbErr> {
    let find = || {
        changeset::Entity::find()
            .filter(changeset::Column::RepositoryId.eq(repository_id))
            .filter(changeset::Column::Number.eq(number))
    };
    match crate::deliveries::chunk::cached_changeset(repository_id, number) {
        // Read at the start of the worker's chunk, under the repository's hold.
        Some(Some(m)) => return Ok(m),
        Some(None) => {}
        None => {
            if let Some(m) = find().one(conn).await? {
                return Ok(as_changed(m));
            }
        }
    }
    let now = Timestamp::now();
    let empty = Tracked::default();
    let new = changeset::Model {
        id: Id::new_v4(),
        repository_id,
        number,
        title: String::new(),
        url: String::new(),
        author: String::new(),
        state: empty.state,
        review_state: empty.review_state(),
        check_state: empty.check_state(),
        head_ref: String::new(),
        base_ref: String::new(),
        head_sha: String::new(),
        labels: Json(empty.labels),
        host_update_time: None,
        in_merge_queue: false,
        auto_merge: false,
        field_times: Json(empty.field_times),
        reviews: Json(empty.reviews),
        checks: Json(empty.checks),
        create_time: now,
        update_time: now,
    };
    // In a worker's chunk, which holds the repository's row (so nobody else makes it
    // meanwhile), it is written with the chunk's other changesets at its end, and read from
    // there until then.
    let Some(row) = crate::deliveries::chunk::defer_changeset(new.clone()) else {
        return Ok(new);
    };
    changeset::Entity::insert(
        sea_orm::IntoActiveModel::<changeset::ActiveModel>::into_active_model(row),
    )
    .on_conflict(
        OnConflict::columns([changeset::Column::RepositoryId, changeset::Column::Number])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    find()
        .one(conn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("changeset {number}")))
}

/// The state a stored changeset holds.
fn load(m: &changeset::Model) -> Tracked {
    Tracked {
        title: m.title.clone(),
        url: m.url.clone(),
        author: m.author.clone(),
        state: m.state,
        head_ref: m.head_ref.clone(),
        base_ref: m.base_ref.clone(),
        head_sha: m.head_sha.clone(),
        labels: m.labels.0.clone(),
        host_update_time: m.host_update_time,
        in_merge_queue: m.in_merge_queue,
        auto_merge: m.auto_merge,
        field_times: m.field_times.0.clone(),
        reviews: m.reviews.0.clone(),
        checks: m.checks.0.clone(),
    }
}

async fn save<C: ConnectionTrait>(
    conn: &C,
    model: changeset::Model,
    t: &Tracked,
    now: Timestamp,
) -> Result<(), DbErr> {
    let saved = changeset::Model {
        title: t.title.clone(),
        url: t.url.clone(),
        author: t.author.clone(),
        state: t.state,
        review_state: t.review_state(),
        check_state: t.check_state(),
        head_ref: t.head_ref.clone(),
        base_ref: t.base_ref.clone(),
        head_sha: t.head_sha.clone(),
        labels: Json(t.labels.clone()),
        host_update_time: t.host_update_time,
        in_merge_queue: t.in_merge_queue,
        auto_merge: t.auto_merge,
        field_times: Json(t.field_times.clone()),
        reviews: Json(t.reviews.clone()),
        checks: Json(t.checks.clone()),
        update_time: now,
        ..model
    };
    // In a chunk of the worker's, written with the chunk's other changesets at its end.
    let Some(saved) = crate::deliveries::chunk::defer_changeset(saved) else {
        return Ok(());
    };
    let id = saved.id;
    // One statement: `ActiveModelTrait::update` reads the row back after (on SQLite, another).
    changeset::Entity::update_many()
        .set(sea_orm::ActiveModelTrait::reset_all(
            sea_orm::IntoActiveModel::<changeset::ActiveModel>::into_active_model(saved),
        ))
        .filter(changeset::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Changesets and timelines for the admin API.
#[derive(Debug, Clone)]
pub struct ChangesetStore {
    db: Db,
}

impl ChangesetStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub async fn get(&self, id: Uuid) -> Result<Changeset, StoreError> {
        let model = changeset::Entity::find_by_id(Id::from(id))
            .one(&self.db)
            .await?
            .ok_or(StoreError::not_found("changeset", id))?;
        let mut out = self.with_repositories(vec![model]).await?;
        out.pop().ok_or(StoreError::not_found("changeset", id))
    }

    /// Changesets matching `filter`, in creation order, after the `(create_time, id)` cursor.
    pub async fn list(
        &self,
        filter: &ChangesetFilter,
        after: Option<(Timestamp, Uuid)>,
        limit: u64,
    ) -> Result<ChangesetPage, StoreError> {
        use changeset::Column as C;
        let mut query = changeset::Entity::find();
        if filter.code_host_urn.is_some() || filter.repository.is_some() {
            let mut repos = Query::select()
                .column(repository::Column::Id)
                .from(repository::Entity)
                .to_owned();
            if let Some(urn) = &filter.code_host_urn {
                repos.and_where(repository::Column::CodeHostUrn.eq(urn.clone()));
            }
            if let Some(name) = &filter.repository {
                repos.and_where(repository::Column::Name.eq(name.clone()));
            }
            query = query.filter(C::RepositoryId.in_subquery(repos));
        }
        if let Some(number) = filter.number {
            query = query.filter(C::Number.eq(number));
        }
        if !filter.states.is_empty() {
            query = query.filter(C::State.is_in(filter.states.iter().copied()));
        }
        let sort = Sort::oldest_first(C::CreateTime, C::Id);
        let page = paging::counted_page(query, sort, after, limit, &self.db).await?;
        Ok(ChangesetPage {
            changesets: self.with_repositories(page.rows).await?,
            total_size: page.total_size,
            has_more: page.has_more,
        })
    }

    /// The changesets whose timeline has an entry told (last) by `delivery`, at most `limit`:
    /// what a delivery did to batch-change sync.
    pub async fn told_by(&self, delivery: Uuid, limit: u64) -> Result<Vec<Uuid>, StoreError> {
        use timeline_entry::Column as C;
        let ids = timeline_entry::Entity::find()
            .select_only()
            .column(C::ChangesetId)
            .distinct()
            .filter(C::DeliveryId.eq(Id::from(delivery)))
            .limit(limit)
            .into_tuple::<Id>()
            .all(&self.db)
            .await?;
        Ok(ids.into_iter().map(Id::uuid).collect())
    }

    /// A changeset's timeline, oldest first by host time and then by arrival (see
    /// [`arrival_ordered_id`]), after the `(occur_time, id)` cursor.
    pub async fn timeline(
        &self,
        changeset_id: Uuid,
        after: Option<(Timestamp, Uuid)>,
        limit: u64,
    ) -> Result<(Vec<TimelineEntry>, bool), StoreError> {
        use timeline_entry::Column as C;
        // Not found is an error, an empty timeline is not.
        self.get(changeset_id).await?;
        let query =
            timeline_entry::Entity::find().filter(C::ChangesetId.eq(Id::from(changeset_id)));
        let sort = Sort::oldest_first(C::OccurTime, C::Id);
        let page = paging::page(query, sort, after, limit, &self.db).await?;
        let entries = page
            .rows
            .into_iter()
            .map(|e| TimelineEntry {
                id: e.id.uuid(),
                kind: e.kind,
                actor: e.actor,
                occur_time: e.occur_time,
                delivery_id: e.delivery_id.uuid(),
                summary: e.summary,
                external_id: e.external_id,
            })
            .collect();
        Ok((entries, page.has_more))
    }

    /// Changesets with their repository's name and URN.
    async fn with_repositories(
        &self,
        rows: Vec<changeset::Model>,
    ) -> Result<Vec<Changeset>, StoreError> {
        let repos =
            super::repositories::by_ids(&self.db, rows.iter().map(|r| r.repository_id)).await?;
        Ok(rows
            .into_iter()
            .map(|m| {
                let tracked = load(&m);
                let repo = repos.get(&m.repository_id);
                Changeset {
                    id: m.id.uuid(),
                    repository_id: m.repository_id.uuid(),
                    repository: repo.map(|r| r.name.clone()).unwrap_or_default(),
                    code_host_urn: repo.map(|r| r.code_host_urn.clone()).unwrap_or_default(),
                    number: m.number,
                    review_state: tracked.review_state(),
                    check_state: tracked.check_state(),
                    title: tracked.title,
                    url: tracked.url,
                    author: tracked.author,
                    state: tracked.state,
                    head_ref: tracked.head_ref,
                    base_ref: tracked.base_ref,
                    head_sha: tracked.head_sha,
                    labels: tracked.labels,
                    host_update_time: tracked.host_update_time,
                    in_merge_queue: tracked.in_merge_queue,
                    auto_merge: tracked.auto_merge,
                    create_time: m.create_time,
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::successor;

    #[test]
    fn a_prefix_successor_is_the_least_string_after_all_that_start_with_it() {
        assert_eq!(successor("5e7b3a9c0d1f").as_deref(), Some("5e7b3a9c0d1g"));
        assert_eq!(successor("a9").as_deref(), Some("a:"));
        // The last character with a next one moves; those after it go.
        assert_eq!(successor("ab\u{10FFFF}").as_deref(), Some("ac"));
        // Surrogates are not characters: the next after U+D7FF is U+E000.
        assert_eq!(successor("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(successor(""), None);
        assert_eq!(successor("\u{10FFFF}\u{10FFFF}"), None);
        for prefix in ["5e7b", "a\u{10FFFF}", "\u{D7FF}"] {
            let end = successor(prefix).unwrap();
            for s in [
                prefix.to_owned(),
                format!("{prefix}\u{10FFFF}\u{10FFFF}"),
                format!("{prefix}0"),
            ] {
                assert!(
                    s.as_str() >= prefix && s < end,
                    "{s:?} within [{prefix:?}, {end:?})"
                );
            }
            assert!(!end.starts_with(prefix) && end.as_str() > prefix);
        }
    }
}
