//! What an event does, as the host's payload tells it: the effects a handler applies to the
//! store. Parsing is pure (payload in, effects out); applying them, with the out-of-order rules,
//! is `sync/`'s job.

use serde_json::Value;

use crate::text::{Cap, MAX_REFS, bounded, bounded_list};
use crate::time::Timestamp;

/// A repository as an event names it: by the host's own id, by name, or both (never neither).
/// The id is what identifies it; the name is what people read, and what matches when the event
/// gives no id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryRef {
    /// `octo-org/hello-world`; GitLab `path_with_namespace`; Bitbucket Server `PROJECT/repo`
    /// (project key and repository slug); Bitbucket Cloud `full_name`. Empty when the event
    /// names it only by its id.
    pub name: String,
    /// The host's own id for it, as text: GitHub `repository.id`, GitLab `project.id` (or
    /// `project_id`), Bitbucket Server `repository.id`, Bitbucket Cloud `repository.uuid`; empty
    /// when not sent.
    pub external_id: String,
    /// Its web page (`https://github.com/octo-org/hello-world`); empty when not sent.
    pub url: String,
    /// Clone URLs (https and ssh) as the payload lists them.
    pub clone_urls: Vec<String>,
}

impl RepositoryRef {
    /// This reference, if it names its repository by name or id; else the error, which names
    /// `name_at`, where the name was looked for.
    pub fn identified(self, event: &str, name_at: &str) -> Result<Self, EffectError> {
        if self.name.is_empty() && self.external_id.is_empty() {
            return Err(EffectError::new(
                event,
                format!("missing {name_at}, and the repository's id too"),
            ));
        }
        Ok(self)
    }
}

/// One effect of an event.
// Effects live for one delivery and are never stored in bulk; boxing the larger variant would
// buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Something about a pull/merge request: its fields, a review, a check, a comment.
    Changeset(ChangesetEffect),
    /// Refs of a repository changed: it should be fetched again.
    Push(PushEffect),
    /// The repository is now as this says: a rename or a transfer on the host (GitHub
    /// `repository` `renamed` / `transferred`). It is matched by its id.
    Repository(RepositoryRef),
}

impl Effect {
    /// The repository the effect is about.
    pub fn repository(&self) -> &RepositoryRef {
        match self {
            Effect::Changeset(e) => &e.repository,
            Effect::Push(p) => &p.repository,
            Effect::Repository(r) => r,
        }
    }
}

/// Which changeset(s) an effect is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The pull/merge request with this number (GitLab `iid`, Bitbucket `id`).
    Number(i64),
    /// Every changeset of the repository whose head is this commit (a commit status that names
    /// no pull request). A shorter SHA on either side matches as a prefix (Bitbucket Cloud sends
    /// 12-character hashes in pull requests and full ones in statuses).
    HeadSha(String),
    /// The pull request a GitHub merge group is for: `number` as its head ref names it
    /// (`refs/heads/gh-readonly-queue/<base>/pr-<number>-<sha>`; `None` when the ref is not of
    /// that form), if hookgate already has a changeset for it; a merge group never creates one.
    MergeGroup {
        /// The group's `head_ref`, for the reason when it matches nothing.
        head_ref: String,
        number: Option<i64>,
    },
}

/// The lifecycle state of a changeset (stored as its upper-case name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sea_orm::EnumIter, sea_orm::DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum ChangesetState {
    #[sea_orm(string_value = "OPEN")]
    Open,
    #[sea_orm(string_value = "DRAFT")]
    Draft,
    #[sea_orm(string_value = "CLOSED")]
    Closed,
    #[sea_orm(string_value = "MERGED")]
    Merged,
}

/// What a payload says about the changeset itself, as of `ChangesetEffect::occur_time`.
/// `None`: the payload does not say (the field is left as it is).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangesetSnapshot {
    pub title: Option<String>,
    /// The changeset's web page.
    pub url: Option<String>,
    /// Login / username of who opened it.
    pub author: Option<String>,
    pub state: Option<ChangesetState>,
    /// Branch names without `refs/heads/`.
    pub head_ref: Option<String>,
    pub base_ref: Option<String>,
    pub head_sha: Option<String>,
    pub labels: Option<Vec<String>>,
    /// The host's last update time of the changeset.
    pub host_update_time: Option<Timestamp>,
    /// Whether it is in the host's merge queue (GitHub `pull_request` `enqueued` /
    /// `dequeued`).
    pub in_merge_queue: Option<bool>,
    /// Whether it is set to merge by itself once its requirements are met (GitHub
    /// `pull_request` `auto_merge_enabled` / `auto_merge_disabled`).
    pub auto_merge: Option<bool>,
}

/// A reviewer's vote (stored, in a changeset's reviews, as its upper-case name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Vote {
    Approved,
    ChangesRequested,
    /// The reviewer's vote is gone: dismissed, unapproved, changes request removed.
    Withdrawn,
}

/// A review that counts toward the review state. A comment-only review is not one (it is a
/// timeline entry with no `review`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewVote {
    /// Login / username.
    pub reviewer: String,
    pub vote: Vote,
}

/// The result of one check on one commit (stored as its upper-case name).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    sea_orm::EnumIter,
    sea_orm::DeriveActiveEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CheckStatus {
    #[sea_orm(string_value = "PENDING")]
    Pending,
    #[sea_orm(string_value = "PASSED")]
    Passed,
    #[sea_orm(string_value = "FAILED")]
    Failed,
}

/// One check result: the latest result per `context` on a commit counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// Status context, check run name, `pipeline`, build key.
    pub context: String,
    /// The commit it ran on (full SHA when the host sends it).
    pub sha: String,
    pub status: CheckStatus,
}

/// An event's effect on one changeset, and its timeline entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangesetEffect {
    pub repository: RepositoryRef,
    pub target: Target,
    /// The host's time for this event; `None` when the payload has none (the delivery's
    /// receive time is used).
    pub occur_time: Option<Timestamp>,
    /// The timeline entry's kind: `opened`, `closed`, `merged`, `reopened`, `edited`,
    /// `synchronize`, `ready_for_review`, `converted_to_draft`, `labeled`, `review`,
    /// `comment`, `check`, ...
    pub kind: String,
    /// Who did it (login / username); empty when unknown.
    pub actor: String,
    /// One line for a person: `alice approved`, `ci/build failed on 1a2b3c4`.
    pub summary: String,
    /// The host's own key for the timeline entry, unique per changeset and `kind`: the id of the
    /// comment, review, note, check run, check suite, status, pipeline or activity (`618478455`),
    /// with `/deleted` or `/dismissed` when the event ends that thing (so the end is an entry of
    /// its own). Empty when the host gives no id (state changes, approvals): the entry is then
    /// keyed by its host time and summary (`sync::changesets::entry_key`).
    pub external_id: String,
    pub snapshot: ChangesetSnapshot,
    pub review: Option<ReviewVote>,
    pub check: Option<CheckResult>,
}

/// One ref a push changed. A created ref has an all-zero (or empty) `old_sha`, a deleted one an
/// all-zero (or empty) `new_sha`, as the host sends them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
    /// The full ref name: `refs/heads/main`, `refs/tags/v1.0`.
    pub name: String,
    pub old_sha: String,
    pub new_sha: String,
}

/// A push: the repository and the refs that changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushEffect {
    pub repository: RepositoryRef,
    pub refs: Vec<RefUpdate>,
    /// Who pushed; empty when unknown.
    pub actor: String,
}

impl Effect {
    /// The effect with every text value cut to its stored column's `Cap` and every list to
    /// its most items: what a payload says can be stored, however much it says.
    pub fn bounded(self) -> Self {
        match self {
            Effect::Changeset(e) => Effect::Changeset(ChangesetEffect {
                repository: e.repository.bounded(),
                target: match e.target {
                    Target::HeadSha(sha) => Target::HeadSha(bounded(sha, Cap::SHA)),
                    Target::MergeGroup { head_ref, number } => Target::MergeGroup {
                        head_ref: bounded(head_ref, Cap::REF),
                        number,
                    },
                    number => number,
                },
                kind: bounded(e.kind, Cap::KIND),
                external_id: bounded(e.external_id, Cap::EXTERNAL_ID),
                actor: bounded(e.actor, Cap::LOGIN),
                summary: bounded(e.summary, Cap::SUMMARY),
                snapshot: ChangesetSnapshot {
                    title: e.snapshot.title.map(|v| bounded(v, Cap::TITLE)),
                    url: e.snapshot.url.map(|v| bounded(v, Cap::URL)),
                    author: e.snapshot.author.map(|v| bounded(v, Cap::LOGIN)),
                    head_ref: e.snapshot.head_ref.map(|v| bounded(v, Cap::REF)),
                    base_ref: e.snapshot.base_ref.map(|v| bounded(v, Cap::REF)),
                    head_sha: e.snapshot.head_sha.map(|v| bounded(v, Cap::SHA)),
                    labels: e.snapshot.labels.map(|v| bounded_list(v, Cap::LABEL)),
                    ..e.snapshot
                },
                review: e.review.map(|r| ReviewVote {
                    reviewer: bounded(r.reviewer, Cap::LOGIN),
                    ..r
                }),
                check: e.check.map(|c| CheckResult {
                    context: bounded(c.context, Cap::CONTEXT),
                    sha: bounded(c.sha, Cap::SHA),
                    ..c
                }),
                ..e
            }),
            Effect::Push(p) => Effect::Push(PushEffect {
                repository: p.repository.bounded(),
                refs: p
                    .refs
                    .into_iter()
                    .take(MAX_REFS)
                    .map(|r| RefUpdate {
                        name: bounded(r.name, Cap::REF),
                        old_sha: bounded(r.old_sha, Cap::SHA),
                        new_sha: bounded(r.new_sha, Cap::SHA),
                    })
                    .collect(),
                actor: bounded(p.actor, Cap::LOGIN),
            }),
            Effect::Repository(r) => Effect::Repository(r.bounded()),
        }
    }
}

impl RepositoryRef {
    fn bounded(self) -> Self {
        RepositoryRef {
            name: bounded(self.name, Cap::NAME),
            external_id: bounded(self.external_id, Cap::EXTERNAL_ID),
            url: bounded(self.url, Cap::URL),
            clone_urls: bounded_list(self.clone_urls, Cap::URL),
        }
    }
}

/// A payload that lacks what its event must carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{event} payload: {message}")]
pub struct EffectError {
    pub event: String,
    pub message: String,
}

impl EffectError {
    pub fn new(event: &str, message: impl Into<String>) -> Self {
        Self {
            event: event.to_owned(),
            message: message.into(),
        }
    }
}

/// A time as hosts write it: RFC 3339
/// (`2019-05-15T15:20:33Z`, `2017-09-19T09:58:11+10:00`), `+1000` offsets without a colon
/// (Bitbucket Server), GitLab's `2013-12-03 17:23:34 UTC` and `2013-12-03 17:23:34 +0100`, and
/// epoch milliseconds as a number (Bitbucket Server's `createdDate`).
pub fn parse_time(value: &Value) -> Option<Timestamp> {
    parse_micros(value).map(Timestamp::from_micros)
}

fn parse_micros(value: &Value) -> Option<i64> {
    use chrono::{DateTime, NaiveDateTime};
    match value {
        Value::Number(n) => n.as_i64().map(|ms| ms.saturating_mul(1000)),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                return Some(t.timestamp_micros());
            }
            for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f %z"] {
                if let Ok(t) = DateTime::parse_from_str(s, format) {
                    return Some(t.timestamp_micros());
                }
            }
            let naive = s.strip_suffix(" UTC").unwrap_or(s);
            for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
                if let Ok(t) = NaiveDateTime::parse_from_str(naive, format) {
                    return Some(t.and_utc().timestamp_micros());
                }
            }
            None
        }
        _ => None,
    }
}

/// One event being turned into effects, as every host reads it: its name, its payload and who
/// did it, with `host`, what the host module adds (where it finds the event's repository, what
/// it read once). The readers here are shared by every host: what the event must carry (an
/// absent value is an error that names it as a dotted path), who did it for a summary, and its
/// changeset effect. Each host module adds its own methods on `Event<'_, ItsHost>`.
pub struct Event<'p, H> {
    /// The classified event name (`pull_request/opened`), for error messages.
    pub event: &'p str,
    /// The whole payload.
    pub payload: &'p Value,
    /// Who did it (login / username); empty when the payload does not say.
    pub actor: &'p str,
    /// What the host module adds.
    pub host: H,
}

/// What a host module adds to an [`Event`]: how it finds the repository an event is about.
pub trait HostEvent: Sized {
    /// The repository `event` is about, as the host names it.
    fn repository(event: &Event<'_, Self>) -> Result<RepositoryRef, EffectError>;
}

impl<'p, H: HostEvent> Event<'p, H> {
    /// The repository the event is about, as the host names it.
    pub fn repository(&self) -> Result<RepositoryRef, EffectError> {
        H::repository(self)
    }

    /// The error for a payload without the value at `pointer`.
    pub fn missing(&self, pointer: &str) -> EffectError {
        EffectError::new(self.event, format!("missing {}", dotted(pointer)))
    }

    /// The array at `pointer` (from the payload root), which the event must carry.
    pub fn need_array(&self, pointer: &str) -> Result<&'p [Value], EffectError> {
        self.payload
            .pointer(pointer)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .ok_or_else(|| self.missing(pointer))
    }

    /// The string at `pointer` (from the payload root), which the event must carry.
    pub fn need_str(&self, pointer: &str) -> Result<&'p str, EffectError> {
        str_at(self.payload, pointer).ok_or_else(|| self.missing(pointer))
    }

    /// The object at `pointer` (from the payload root), which the event must carry.
    pub fn need(&self, pointer: &str) -> Result<&'p Value, EffectError> {
        self.payload
            .pointer(pointer)
            .filter(|v| v.is_object())
            .ok_or_else(|| self.missing(pointer))
    }

    /// The integer at `pointer` (a number, or digits in a string), which the event must carry.
    pub fn need_i64(&self, pointer: &str) -> Result<i64, EffectError> {
        i64_at(self.payload, pointer).ok_or_else(|| self.missing(pointer))
    }

    /// Who did it, for a summary: the actor, or "someone" when the payload does not say.
    pub fn who(&self) -> &'p str {
        match self.actor {
            "" => "someone",
            actor => actor,
        }
    }

    /// A changeset effect of this event on its repository, by its actor, with no review and no
    /// check (a caller adds those); `external_id` is the host's key for its timeline entry
    /// (empty for a pull request's own changes, which have none).
    pub fn changeset(
        &self,
        target: Target,
        occur_time: Option<Timestamp>,
        kind: &str,
        summary: String,
        external_id: String,
        snapshot: ChangesetSnapshot,
    ) -> Result<ChangesetEffect, EffectError> {
        Ok(ChangesetEffect {
            repository: self.repository()?,
            target,
            occur_time,
            kind: kind.to_owned(),
            actor: self.actor.to_owned(),
            summary,
            external_id,
            snapshot,
            review: None,
            check: None,
        })
    }
}

/// A JSON pointer as the dotted path an error message names: `/pull_request/number` is
/// `pull_request.number`, `/changes/0/ref/id` is `changes.0.ref.id`.
pub fn dotted(pointer: &str) -> String {
    pointer.trim_start_matches('/').replace('/', ".")
}

/// The `field` of each of an object's `labels` (GitHub's `name`, GitLab's `title`), when the
/// object has that list.
pub fn label_list(object: &Value, field: &str) -> Option<Vec<String>> {
    let labels = object.get("labels")?.as_array()?;
    Some(
        labels
            .iter()
            .filter_map(|l| l.get(field).and_then(Value::as_str).map(str::to_owned))
            .collect(),
    )
}

/// The first 7 characters of a commit SHA, as hosts show it.
pub fn short_sha(sha: &str) -> &str {
    sha.char_indices()
        .nth(7)
        .map_or(sha, |(end, _)| &sha[..end])
}

/// A host id as text (`1296269`, `{uuid}`); empty when absent.
pub fn id_text(id: Option<&Value>) -> String {
    match id {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    }
}

/// A timeline key for the event that ends the thing `id` names (`618478455/deleted`), so the end
/// is an entry of its own; `id` itself when `ends` is false or the host gave no id.
pub fn ending(id: String, ends: bool, word: &str) -> String {
    if ends && !id.is_empty() {
        format!("{id}/{word}")
    } else {
        id
    }
}

/// A check's timeline summary: `ci/build failed on 1a2b3c4`.
pub fn check_summary(name: &str, status: CheckStatus, sha: &str) -> String {
    let outcome = match status {
        CheckStatus::Pending => "is pending",
        CheckStatus::Passed => "passed",
        CheckStatus::Failed => "failed",
    };
    format!("{name} {outcome} on {}", short_sha(sha))
}

/// The string at a JSON pointer (`/pull_request/head/sha`), if it is one.
pub fn str_at<'v>(value: &'v Value, pointer: &str) -> Option<&'v str> {
    value.pointer(pointer).and_then(Value::as_str)
}

/// The string at a JSON pointer, owned; `None` when absent or not a string.
pub fn string_at(value: &Value, pointer: &str) -> Option<String> {
    str_at(value, pointer).map(str::to_owned)
}

/// The integer at a JSON pointer (numbers, or digits in a string).
pub fn i64_at(value: &Value, pointer: &str) -> Option<i64> {
    match value.pointer(pointer)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_time_format_the_hosts_use_parses_to_the_same_instant() {
        let expected = Some(Timestamp::from_micros(1_386_091_414_000_000)); // 2013-12-03T17:23:34Z
        for t in [
            json!("2013-12-03T17:23:34Z"),
            json!("2013-12-03T18:23:34+01:00"),
            json!("2013-12-03T18:23:34+0100"),
            json!("2013-12-03 17:23:34 UTC"),
            json!("2013-12-03 18:23:34 +0100"),
            json!(1_386_091_414_000i64),
        ] {
            assert_eq!(parse_time(&t), expected, "{t}");
        }
        assert_eq!(parse_time(&json!("yesterday")), None);
        assert_eq!(parse_time(&json!(null)), None);
    }
}
