//! Bitbucket Server / Data Center: deliveries signed with `X-Hub-Signature: sha256=<hex>`
//! (SHA-256 under the header name GitHub uses for SHA-1), named by `X-Event-Key` and keyed by
//! `X-Request-Id`. Two exceptions: the "Test connection" `diagnostics:ping` may arrive unsigned
//! and with any body, and the Sourcegraph Bitbucket Server plugin wrote the signature as bare hex
//! before 2020, so both forms are accepted.

use std::time::Duration;

use http::HeaderMap;

use serde_json::Value;

use super::effects::{
    self, ChangesetEffect, ChangesetSnapshot, ChangesetState, CheckResult, CheckStatus, HostEvent,
    PushEffect, RefUpdate, RepositoryRef, ReviewVote, Target, Vote, check_summary, dotted, ending,
    i64_at, id_text, parse_time, short_sha, str_at, string_at,
};
use super::signature::{self, Algorithm, Prefix};
use super::{
    Classified, ClassifyError, Disposition, Effect, EffectError, Payload, TestDelivery, Verified,
    VerifyError, delivery_key, event_header, header_text,
};

const SIGNATURE: &str = "X-Hub-Signature";
const EVENT: &str = "X-Event-Key";
/// Where this host names the event and the delivery key.
pub(super) const HEADERS: super::HeaderNames = super::HeaderNames {
    event: EVENT,
    keys: &[DELIVERY],
};
use crate::time::Timestamp;
const DELIVERY: &str = "X-Request-Id";
/// The event of the "Test connection" button.
const PING: &str = "diagnostics:ping";

pub(super) fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[&str],
) -> Result<Verified, VerifyError> {
    match signature::read_signature(headers, SIGNATURE, Algorithm::Sha256, Prefix::Optional)? {
        Some(signature) => {
            signature::check_hmac(&signature, body, secrets)?;
            Ok(Verified::Signed)
        }
        // Only a ping may come unsigned, and only to a receiver that has a secret at all.
        None if header_text(headers, EVENT) == Some(PING)
            && secrets.iter().any(|s| !s.is_empty()) =>
        {
            Ok(Verified::UnsignedPing)
        }
        None => Err(VerifyError::Missing { header: SIGNATURE }),
    }
}

pub(super) fn classify<P: Payload>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Classified<P>, ClassifyError> {
    let event = event_header(headers, EVENT)?;
    let (payload, disposition) = if event == PING {
        // `{"test": true}` in practice; nothing is read from it, so nothing is insisted on.
        let payload = P::lenient(body);
        (payload, Disposition::Ping)
    } else {
        (P::parse(event, body)?, disposition(event))
    };
    Ok(Classified {
        event: event.to_owned(),
        delivery_key: delivery_key(headers, &[DELIVERY]),
        disposition,
        payload,
    })
}

/// Events a handler takes (DESIGN.md): every pull request event (the Sourcegraph plugin's
/// `pr:activity:*` included), pushes, and build statuses.
fn disposition(event: &str) -> Disposition {
    if event.starts_with("pr:") || event == "repo:refs_changed" || event == "repo:build_status" {
        Disposition::Handled
    } else {
        Disposition::Ignored
    }
}

/// The "Test connection" ping, signed as Bitbucket signs it when the hook has a secret.
pub(super) fn test_delivery(secret: &str, key: &str) -> TestDelivery {
    let body = br#"{"test": true}"#.to_vec();
    TestDelivery {
        headers: vec![
            (
                "User-Agent",
                "Atlassian HttpClient (Bitbucket; hookgate-test)".to_owned(),
            ),
            (EVENT, PING.to_owned()),
            (DELIVERY, key.to_owned()),
            (
                SIGNATURE,
                signature::header_value(Algorithm::Sha256, secret, &body),
            ),
        ],
        body,
    }
}

/// The effects of a `Handled` event (see `super::effects`): a `pr:*` event changes one pull
/// request, a `repo:build_status` each pull request its commit is in, and `repo:refs_changed` is
/// a push.
///
/// Two body shapes arrive under these names. A native webhook's body has `eventKey`, `date` and
/// `actor`. The Sourcegraph Bitbucket Server plugin's 2019 releases send that body (the later
/// ones without `eventKey`) but write `date` on a 12-hour clock (see [`plugin_date`]); its
/// current ones send `createdDate` (epoch milliseconds), `user`, the event's `action`, the
/// `activity` behind a `pr:activity:*` event, and `refChanges` instead of `changes`.
pub(super) fn effects(event: &str, payload: &Value) -> Result<Vec<Effect>, EffectError> {
    // Who did it: the native `actor`, or the plugin's `user`.
    let actor = str_at(payload, "/actor/name")
        .or_else(|| str_at(payload, "/user/name"))
        .unwrap_or_default();
    let on = |repository_at: &str| Event {
        event,
        payload,
        actor,
        host: BitbucketServer {
            repository_at: repository_at.to_owned(),
        },
    };
    match event {
        "repo:refs_changed" => on("/repository").push().map(|e| vec![e]),
        "repo:build_status" => on("/repository").build_status(),
        e if e.starts_with("pr:") => on("/pullRequest/toRef/repository")
            .pull_request()
            .map(|e| vec![e]),
        _ => Ok(Vec::new()),
    }
}

/// What the Bitbucket Server module adds to an event being turned into effects.
struct BitbucketServer {
    /// Where the repository an effect is about is rendered: the pull request's target
    /// repository for a `pr:*` event (`/pullRequest/toRef/repository`), else `/repository`.
    repository_at: String,
}

/// One Bitbucket Server event being turned into effects.
type Event<'p> = effects::Event<'p, BitbucketServer>;

impl HostEvent for BitbucketServer {
    /// A repository as Bitbucket Server renders it: `PROJECTKEY/slug`, its id (one of the two
    /// may be absent), its browse page and its clone links.
    fn repository(event: &effects::Event<'_, Self>) -> Result<RepositoryRef, EffectError> {
        let at = event.host.repository_at.as_str();
        let repo = event.need(at)?;
        let name = match (str_at(repo, "/project/key"), str_at(repo, "/slug")) {
            (Some(key), Some(slug)) => format!("{key}/{slug}"),
            _ => String::new(),
        };
        let at = dotted(at);
        RepositoryRef {
            name,
            external_id: i64_at(repo, "/id")
                .map(|id| id.to_string())
                .unwrap_or_default(),
            url: string_at(repo, "/links/self/0/href").unwrap_or_default(),
            clone_urls: repo
                .pointer("/links/clone")
                .and_then(Value::as_array)
                .map(|links| links.iter().filter_map(|l| string_at(l, "/href")).collect())
                .unwrap_or_default(),
        }
        .identified(event.event, &format!("{at}.project.key or {at}.slug"))
    }
}

/// What happened to a pull request, whichever body shape told it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    Opened,
    Reopened,
    Edited,
    /// New commits on the source branch (`pr:from_ref_updated`, the plugin's `RESCOPED`).
    Rescoped,
    Merged,
    Declined,
    Deleted,
    /// A comment added, edited, deleted or replied to; holds the summary's verb.
    Comment(&'static str),
    /// A reviewer's vote, and Bitbucket's word for it (the timeline kind).
    Vote(Vote, &'static str),
    ReviewersUpdated,
    /// Anything else; holds its lower-case name, the timeline kind.
    Other(String),
}

/// Names the change: by the native event key, else by the plugin's activity (or event) action.
fn change(event: &str, payload: &Value) -> Change {
    match event {
        "pr:opened" => Change::Opened,
        "pr:modified" => Change::Edited,
        "pr:from_ref_updated" => Change::Rescoped,
        "pr:merged" => Change::Merged,
        "pr:declined" => Change::Declined,
        "pr:deleted" => Change::Deleted,
        "pr:comment:added" => Change::Comment("commented on"),
        "pr:comment:edited" => Change::Comment("edited a comment on"),
        "pr:comment:deleted" => Change::Comment("deleted a comment on"),
        "pr:reviewer:approved" => Change::Vote(Vote::Approved, "approved"),
        "pr:reviewer:unapproved" => Change::Vote(Vote::Withdrawn, "unapproved"),
        "pr:reviewer:needs_work" => Change::Vote(Vote::ChangesRequested, "needs_work"),
        "pr:reviewer:changes_requested" => {
            Change::Vote(Vote::ChangesRequested, "changes_requested")
        }
        "pr:reviewer:updated" | "pr:activity:reviewers" => Change::ReviewersUpdated,
        _ => match str_at(payload, "/activity/action").or_else(|| str_at(payload, "/action")) {
            Some(action) => plugin_change(action, payload),
            None => Change::Other(event.rsplit(':').next().unwrap_or(event).to_owned()),
        },
    }
}

/// The change a plugin action names (Bitbucket's `PullRequestAction` / activity action).
fn plugin_change(action: &str, payload: &Value) -> Change {
    match action {
        "OPENED" => Change::Opened,
        "REOPENED" => Change::Reopened,
        "UPDATED" => Change::Edited,
        "RESCOPED" => Change::Rescoped,
        "MERGED" => Change::Merged,
        "DECLINED" => Change::Declined,
        "DELETED" => Change::Deleted,
        "COMMENTED" => Change::Comment(match str_at(payload, "/activity/commentAction") {
            Some("EDITED") => "edited a comment on",
            Some("DELETED") => "deleted a comment on",
            Some("REPLIED") => "replied to a comment on",
            _ => "commented on",
        }),
        "APPROVED" => Change::Vote(Vote::Approved, "approved"),
        "UNAPPROVED" => Change::Vote(Vote::Withdrawn, "unapproved"),
        // REVIEWED is how the activity log says "needs work".
        "REVIEWED" | "NEEDS_WORK" => Change::Vote(Vote::ChangesRequested, "needs_work"),
        other => Change::Other(other.to_ascii_lowercase()),
    }
}

impl Event<'_> {
    /// The effect of a `pr:*` event on its pull request.
    fn pull_request(&self) -> Result<Effect, EffectError> {
        let pr = self.need("/pullRequest")?;
        let number = self.need_i64("/pullRequest/id")?;
        let change = change(self.event, self.payload);
        let mut snapshot = snapshot(pr);
        if change == Change::Deleted {
            snapshot.state = Some(ChangesetState::Closed);
        }
        let review = match &change {
            Change::Vote(vote, _) => Some(ReviewVote {
                reviewer: reviewer(self.payload)
                    .ok_or_else(|| self.missing("/participant/user/name"))?,
                vote: *vote,
            }),
            _ => None,
        };
        let summary = self.summary(&change, number, review.as_ref(), &snapshot);
        let effect = self.changeset(
            Target::Number(number),
            occur_time(self.payload, Some(pr)),
            &kind(&change),
            summary,
            entry_id(&change, self.payload),
            snapshot,
        )?;
        Ok(Effect::Changeset(ChangesetEffect { review, ..effect }))
    }

    /// One line for a person: `gopher opened #5 "Update README"`, `tux approved #5`.
    fn summary(
        &self,
        change: &Change,
        number: i64,
        review: Option<&ReviewVote>,
        snapshot: &ChangesetSnapshot,
    ) -> String {
        let who = self.who();
        let titled = match &snapshot.title {
            Some(title) => format!("#{number} \"{title}\""),
            None => format!("#{number}"),
        };
        match change {
            Change::Opened => format!("{who} opened {titled}"),
            Change::Reopened => format!("{who} reopened {titled}"),
            Change::Edited => format!("{who} edited {titled}"),
            Change::Rescoped => match snapshot.head_sha.as_deref() {
                Some(sha) => format!("{who} updated #{number} to {}", short_sha(sha)),
                None => format!("{who} updated the source branch of #{number}"),
            },
            Change::Merged => format!("{who} merged {titled}"),
            Change::Declined => format!("{who} declined {titled}"),
            Change::Deleted => format!("{who} deleted {titled}"),
            Change::Comment(verb) => format!("{who} {verb} #{number}"),
            Change::Vote(vote, word) => {
                let reviewer = review.map_or(who, |r| r.reviewer.as_str());
                match (vote, *word) {
                    (Vote::Approved, _) => format!("{reviewer} approved #{number}"),
                    (Vote::Withdrawn, _) => {
                        format!("{reviewer} withdrew their review of #{number}")
                    }
                    (Vote::ChangesRequested, "changes_requested") => {
                        format!("{reviewer} requested changes on #{number}")
                    }
                    (Vote::ChangesRequested, _) => {
                        format!("{reviewer} marked #{number} as needs work")
                    }
                }
            }
            Change::ReviewersUpdated => format!("{who} updated the reviewers of #{number}"),
            Change::Other(word) => format!("{who}: {word} on #{number}"),
        }
    }

    /// A `repo:build_status` (sent by the Sourcegraph plugin): the check on `commit`, for each
    /// pull request the plugin found it in. With none, only a body that names its repository
    /// can target the commit's changesets (`Target::HeadSha`); the plugin's does not, and a
    /// commit in no pull request belongs to no changeset, so that is no effect.
    fn build_status(&self) -> Result<Vec<Effect>, EffectError> {
        let sha = self.need_str("/commit")?;
        let context = self.need_str("/status/key")?;
        let status = match self.need_str("/status/state")? {
            "SUCCESSFUL" => CheckStatus::Passed,
            "FAILED" | "STOPPED" | "CANCELLED" => CheckStatus::Failed,
            // INPROGRESS, and any state newer than this code: not a result yet.
            _ => CheckStatus::Pending,
        };
        let check = CheckResult {
            context: context.to_owned(),
            sha: sha.to_owned(),
            status,
        };
        let name = str_at(self.payload, "/status/name")
            .filter(|n| !n.is_empty())
            .unwrap_or(context);
        let summary = check_summary(name, status, sha);
        let occur_time = self
            .payload
            .get("createdDate")
            .and_then(parse_time)
            .or_else(|| {
                self.payload
                    .pointer("/status/dateAdded")
                    .and_then(parse_time)
            })
            .or_else(|| self.payload.get("date").and_then(|d| plugin_date(d, None)));
        let effect = |on: &Event, target, snapshot| -> Result<Effect, EffectError> {
            // The plugin's build status carries no id: its time and summary key it.
            let effect = on.changeset(
                target,
                occur_time,
                "check",
                summary.clone(),
                String::new(),
                snapshot,
            )?;
            Ok(Effect::Changeset(ChangesetEffect {
                check: Some(check.clone()),
                ..effect
            }))
        };

        let prs = self
            .payload
            .get("pullRequests")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if prs.is_empty() {
            return match self.payload.get("repository") {
                Some(_) => Ok(vec![effect(
                    self,
                    Target::HeadSha(sha.to_owned()),
                    ChangesetSnapshot::default(),
                )?]),
                None => Ok(Vec::new()),
            };
        }
        prs.iter()
            .enumerate()
            .map(|(i, pr)| {
                let number = self.need_i64(&format!("/pullRequests/{i}/id"))?;
                let on = Event {
                    host: BitbucketServer {
                        repository_at: format!("/pullRequests/{i}/toRef/repository"),
                    },
                    ..*self
                };
                effect(&on, Target::Number(number), snapshot(pr))
            })
            .collect()
    }

    /// A `repo:refs_changed`: each changed ref with its old and new commit as sent (a created
    /// ref's `fromHash` and a deleted one's `toHash` are all zeros). The plugin names the list
    /// `refChanges`.
    fn push(&self) -> Result<Effect, EffectError> {
        let repository = self.repository()?;
        let changes = self
            .need_array("/changes")
            .or_else(|missing| self.need_array("/refChanges").map_err(|_| missing))?;
        let refs = changes
            .iter()
            .enumerate()
            .map(|(i, change)| {
                let name = str_at(change, "/ref/id")
                    .or_else(|| str_at(change, "/refId"))
                    .ok_or_else(|| self.missing(&format!("/changes/{i}/ref/id")))?;
                Ok(RefUpdate {
                    name: name.to_owned(),
                    old_sha: string_at(change, "/fromHash").unwrap_or_default(),
                    new_sha: string_at(change, "/toHash").unwrap_or_default(),
                })
            })
            .collect::<Result<_, EffectError>>()?;
        Ok(Effect::Push(PushEffect {
            repository,
            refs,
            actor: self.actor.to_owned(),
        }))
    }
}

/// The timeline kind of a change.
fn kind(change: &Change) -> String {
    match change {
        Change::Opened => "opened",
        Change::Reopened => "reopened",
        Change::Edited => "edited",
        Change::Rescoped => "synchronize",
        Change::Merged => "merged",
        Change::Declined => "closed",
        Change::Deleted => "deleted",
        Change::Comment(_) => "comment",
        Change::Vote(_, word) => word,
        Change::ReviewersUpdated => "reviewers_updated",
        Change::Other(word) => word,
    }
    .to_owned()
}

/// The timeline key of a change: a comment's id, which its edits share (`/deleted` for its
/// deletion), else the plugin activity's id. A native body's other changes carry no id.
fn entry_id(change: &Change, payload: &Value) -> String {
    let activity = || id_text(payload.pointer("/activity/id"));
    match change {
        Change::Comment(verb) => {
            let comment = payload
                .pointer("/comment/id")
                .or_else(|| payload.pointer("/activity/comment/id"));
            match id_text(comment) {
                id if id.is_empty() => activity(),
                id => ending(id, verb.starts_with("deleted"), "deleted"),
            }
        }
        _ => activity(),
    }
}

/// What a rendered pull request says about itself. Bitbucket Server has no labels.
fn snapshot(pr: &Value) -> ChangesetSnapshot {
    let draft = pr.get("draft").and_then(Value::as_bool) == Some(true);
    ChangesetSnapshot {
        title: string_at(pr, "/title"),
        url: string_at(pr, "/links/self/0/href"),
        author: string_at(pr, "/author/user/name"),
        state: match str_at(pr, "/state") {
            Some("OPEN") if draft => Some(ChangesetState::Draft),
            Some("OPEN") => Some(ChangesetState::Open),
            Some("MERGED") => Some(ChangesetState::Merged),
            Some("DECLINED") => Some(ChangesetState::Closed),
            _ => None,
        },
        head_ref: branch(pr.get("fromRef")),
        base_ref: branch(pr.get("toRef")),
        head_sha: string_at(pr, "/fromRef/latestCommit"),
        labels: None,
        host_update_time: pr.get("updatedDate").and_then(parse_time),
        in_merge_queue: None,
        auto_merge: None,
    }
}

/// The branch name of a `fromRef`/`toRef`: its id without `refs/heads/`, else its display id.
fn branch(git_ref: Option<&Value>) -> Option<String> {
    let git_ref = git_ref?;
    str_at(git_ref, "/id")
        .and_then(|id| id.strip_prefix("refs/heads/"))
        .or_else(|| str_at(git_ref, "/displayId"))
        .map(str::to_owned)
}

/// Whose vote it is: the native `participant`, else the plugin activity's user, else the actor.
fn reviewer(payload: &Value) -> Option<String> {
    [
        "/participant/user/name",
        "/activity/user/name",
        "/actor/name",
        "/user/name",
    ]
    .iter()
    .find_map(|pointer| string_at(payload, pointer))
}

/// When the event happened. Native bodies: `date`. Plugin bodies: `createdDate`, else the
/// activity's `createdDate`, else `date` read as [`plugin_date`] says. Then, for both, the pull
/// request's `updatedDate`.
///
/// A native body has `eventKey` and writes `date` with two-digit hours and minutes. The plugin's
/// first release also sent `eventKey`, but its `h:m` clock writes one digit below 10, which is
/// how its dates are told apart (one at 10:10 to 12:59 cannot be, and is read as written).
fn occur_time(payload: &Value, pr: Option<&Value>) -> Option<Timestamp> {
    let updated = pr.and_then(|pr| pr.get("updatedDate")).and_then(parse_time);
    let date = payload.get("date");
    let native = payload.get("eventKey").is_some()
        && date
            .and_then(Value::as_str)
            .is_some_and(two_digit_hours_and_minutes);
    if native {
        return date.and_then(parse_time).or(updated);
    }
    payload
        .get("createdDate")
        .and_then(parse_time)
        .or_else(|| {
            payload
                .pointer("/activity/createdDate")
                .and_then(parse_time)
        })
        .or_else(|| date.and_then(|d| plugin_date(d, updated)))
        .or(updated)
}

/// Whether a `date` such as `2019-03-01T10:08:35+0100` has two digits of hours and of minutes.
fn two_digit_hours_and_minutes(date: &str) -> bool {
    let Some((_, time)) = date.split_once('T') else {
        return false;
    };
    time.split(':')
        .take(2)
        .filter(|f| f.len() == 2 && f.bytes().all(|b| b.is_ascii_digit()))
        .count()
        == 2
}

/// The instant a 2019 plugin release meant by `date`. It formats with `yyyy-MM-dd'T'h:m:ssZ`,
/// where `h` is the hour on a 12-hour clock (1 to 12) with no AM/PM: 22:31 is written `10:31`,
/// and 00:31 `12:31`, so the text read as written can be 12 hours early (or late). Of the
/// instants it can mean, this is the first not before `floor`, the pull request's last update
/// (less a second: the text drops the milliseconds); with no floor, the text as written.
fn plugin_date(value: &Value, floor: Option<Timestamp>) -> Option<Timestamp> {
    const HALF_DAY: Duration = Duration::from_secs(12 * 60 * 60);
    let written = parse_time(value)?;
    let hour = value
        .as_str()
        .and_then(|s| s.split_once('T'))
        .and_then(|(_, time)| time.split(':').next())
        .and_then(|h| h.parse::<u32>().ok());
    let candidates = match hour {
        Some(12) => [written.minus(HALF_DAY), written],
        Some(1..=11) => [written, written.plus(HALF_DAY)],
        // 0 and 13 to 23 only exist on a 24-hour clock: the text means what it says.
        _ => return Some(written),
    };
    let Some(floor) = floor else {
        return Some(written);
    };
    candidates
        .into_iter()
        // Saturating: `updatedDate` is epoch milliseconds from the body, any number at all.
        .find(|&t| t >= floor.minus(Duration::from_secs(1)))
        .or(Some(written))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hosts::testing::{
        FixtureCase, assert_every_fixture, assert_test_delivery_round_trips, fixture, headers,
        host_headers,
    };
    use crate::hosts::{Host, classify, sign_hmac_sha256_hex, verify};
    use Disposition::{Handled, Ping};

    #[rustfmt::skip]
    const CASES: &[FixtureCase] = &[
        ("diagnostics_ping.json", "diagnostics:ping", "diagnostics:ping", Ping),
        ("pr_comment_added.json", "pr:comment:added", "pr:comment:added", Handled),
        ("pr_declined.json", "pr:declined", "pr:declined", Handled),
        ("pr_from_ref_updated.json", "pr:from_ref_updated", "pr:from_ref_updated", Handled),
        ("pr_merged.json", "pr:merged", "pr:merged", Handled),
        ("pr_modified.json", "pr:modified", "pr:modified", Handled),
        ("pr_opened.json", "pr:opened", "pr:opened", Handled),
        ("pr_opened.sourcegraph-plugin.json", "pr:opened", "pr:opened", Handled),
        ("pr_reviewer_approved.json", "pr:reviewer:approved", "pr:reviewer:approved", Handled),
        ("pr_reviewer_needs_work.json", "pr:reviewer:needs_work", "pr:reviewer:needs_work", Handled),
        ("repo_refs_changed.json", "repo:refs_changed", "repo:refs_changed", Handled),
        ("repo_refs_changed.signed.json", "repo:refs_changed", "repo:refs_changed", Handled),
        ("repo_refs_changed.signed-go-scm.json", "repo:refs_changed", "repo:refs_changed", Handled),
    ];

    const SECRET: &str = "bbs-secret";

    #[test]
    fn every_bitbucket_server_fixture_is_named_keyed_and_verified() {
        assert_every_fixture(Host::BitbucketServer, "bitbucket-server", CASES);
    }

    #[test]
    fn an_unsigned_diagnostics_ping_is_let_through_as_an_unsigned_ping() {
        let body = fixture("bitbucket-server/diagnostics_ping.json");
        let h = headers(&[("X-Event-Key", "diagnostics:ping")]);
        assert_eq!(
            verify(Host::BitbucketServer, &h, &body, &[SECRET]),
            Ok(Verified::UnsignedPing)
        );
        let classified = classify(Host::BitbucketServer, &h, &body).expect("it classifies");
        assert_eq!(classified.disposition, Disposition::Ping);
        assert_eq!(classified.payload["test"], true);
    }

    #[test]
    fn a_ping_that_carries_a_wrong_signature_is_refused() {
        let body = fixture("bitbucket-server/diagnostics_ping.json");
        let h = host_headers(
            Host::BitbucketServer,
            "diagnostics:ping",
            "r",
            Some("x"),
            &body,
        );
        assert_eq!(
            verify(Host::BitbucketServer, &h, &body, &[SECRET]),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn an_unsigned_ping_is_refused_by_a_receiver_without_secrets() {
        let h = headers(&[("X-Event-Key", "diagnostics:ping")]);
        assert!(verify(Host::BitbucketServer, &h, b"{\"test\": true}", &[]).is_err());
    }

    #[test]
    fn an_unsigned_pull_request_event_is_refused() {
        let body = fixture("bitbucket-server/pr_opened.json");
        let h = headers(&[("X-Event-Key", "pr:opened"), ("X-Request-Id", "r-1")]);
        let e = verify(Host::BitbucketServer, &h, &body, &[SECRET]).expect_err("unsigned");
        assert_eq!(e.to_string(), "missing X-Hub-Signature");
    }

    #[test]
    fn a_ping_body_that_is_not_json_still_classifies_as_a_ping() {
        let h = headers(&[("X-Event-Key", "diagnostics:ping")]);
        let classified =
            classify(Host::BitbucketServer, &h, b"test connection").expect("it classifies");
        assert_eq!(classified.event, "diagnostics:ping");
        assert_eq!(classified.disposition, Disposition::Ping);
        assert_eq!(classified.payload, Value::Null);
    }

    #[test]
    fn a_body_that_is_not_json_is_a_bad_body_for_any_other_event() {
        let h = headers(&[("X-Event-Key", "pr:opened")]);
        let e = classify(Host::BitbucketServer, &h, b"test").expect_err("not JSON");
        assert!(
            e.to_string()
                .starts_with("body of a pr:opened event must be JSON: "),
            "{e}"
        );
    }

    #[test]
    fn the_sourcegraph_plugins_bare_hex_signature_is_accepted() {
        let body = fixture("bitbucket-server/pr_opened.sourcegraph-plugin.json");
        let h = headers(&[
            ("X-Event-Key", "pr:opened"),
            ("X-Hub-Signature", &sign_hmac_sha256_hex(SECRET, &body)),
            ("Content-Type", "text/plain; charset=UTF-8"),
        ]);
        assert_eq!(
            verify(Host::BitbucketServer, &h, &body, &[SECRET]),
            Ok(Verified::Signed)
        );
        let classified = classify(Host::BitbucketServer, &h, &body).expect("it classifies");
        assert_eq!(classified.event, "pr:opened");
    }

    #[test]
    fn a_malformed_signature_header_is_reported_with_both_accepted_forms() {
        let h = headers(&[(
            "X-Hub-Signature",
            "sha1=0123456789012345678901234567890123456789",
        )]);
        let e = verify(Host::BitbucketServer, &h, b"{}", &[SECRET]).expect_err("malformed");
        assert_eq!(
            e.to_string(),
            "malformed X-Hub-Signature: expected sha256=<64 hex digits> or <64 hex digits>"
        );
    }

    #[test]
    fn uppercase_hex_is_accepted() {
        let body = fixture("bitbucket-server/pr_merged.json");
        let sig = format!(
            "sha256={}",
            sign_hmac_sha256_hex(SECRET, &body).to_uppercase()
        );
        let h = headers(&[("X-Event-Key", "pr:merged"), ("X-Hub-Signature", &sig)]);
        assert_eq!(
            verify(Host::BitbucketServer, &h, &body, &[SECRET]),
            Ok(Verified::Signed)
        );
    }

    #[test]
    fn build_statuses_and_plugin_activity_are_handled_and_other_events_ignored() {
        for (event, expected) in [
            ("repo:build_status", Disposition::Handled),
            ("pr:activity:comment", Disposition::Handled),
            ("pr:reviewer:changes_requested", Disposition::Handled),
            ("repo:modified", Disposition::Ignored),
            ("repo:forked", Disposition::Ignored),
        ] {
            let h = headers(&[("X-Event-Key", event)]);
            let classified = classify(Host::BitbucketServer, &h, b"{}").expect("classifies");
            assert_eq!(classified.event, event);
            assert_eq!(classified.disposition, expected, "{event}");
        }
    }

    #[test]
    fn a_delivery_without_an_event_header_is_refused_naming_the_header() {
        let e = classify(Host::BitbucketServer, &headers(&[]), b"{}").expect_err("no event");
        assert_eq!(e.to_string(), "missing X-Event-Key header");
    }

    /// Found while writing the fuzz targets (`fuzz/`): a plugin-style body (no `eventKey`) whose
    /// `date` has a 12-hour-clock hour and whose pull request's `updatedDate` is near the
    /// smallest i64 made `plugin_date` subtract past `i64::MIN` (a panic with overflow checks,
    /// a wrapped floor without). The `bitbucket_server` target panicked on exactly this
    /// delivery (every header genuine, event `pr:opened`); this is it, as sent.
    #[test]
    fn a_plugin_date_against_an_update_time_at_the_start_of_time_does_not_overflow() {
        let body = br#"{"pullRequest":{"id":1,"toRef":{"repository":{"project":{"key":"P"},"slug":"r"}},"updatedDate":-9223372036854775807},"date":"2019-03-01T10:08:35+0100"}"#;
        let h = host_headers(
            Host::BitbucketServer,
            "pr:opened",
            "d-1",
            Some(SECRET),
            body,
        );
        assert_eq!(
            verify(Host::BitbucketServer, &h, body, &[SECRET]),
            Ok(Verified::Signed)
        );
        let classified = classify(Host::BitbucketServer, &h, body).expect("it classifies");
        assert_eq!(classified.disposition, Handled);
        let effects = effects(&classified.event, &classified.payload).expect("it has effects");
        let [Effect::Changeset(effect)] = effects.as_slice() else {
            panic!("one changeset effect, got {effects:?}");
        };
        // No instant the text can mean is before the floor: the date as written.
        let written = parse_time(&serde_json::json!("2019-03-01T10:08:35+0100"));
        assert_eq!(effect.occur_time, written);
        assert_eq!(
            effect.snapshot.host_update_time,
            Some(Timestamp::from_micros(i64::MIN))
        );
    }

    #[test]
    fn the_test_delivery_is_a_signed_ping_that_round_trips() {
        assert_test_delivery_round_trips(Host::BitbucketServer, "diagnostics:ping", Ping);
        assert_eq!(test_delivery("s", "k").body, br#"{"test": true}"#);
    }
}

#[cfg(test)]
mod effect_tests {
    use serde_json::json;

    use super::*;
    use crate::hosts::testing::fixture;

    /// The parsed body of `tests/fixtures/bitbucket-server/<file>`.
    fn body(file: &str) -> Value {
        serde_json::from_slice(&fixture(&format!("bitbucket-server/{file}")))
            .expect("a fixture is JSON")
    }

    /// The one changeset effect of `event` with `payload`.
    fn changeset(event: &str, payload: &Value) -> ChangesetEffect {
        match effects(event, payload).expect("it parses").as_slice() {
            [Effect::Changeset(c)] => c.clone(),
            other => panic!("{event}: expected one changeset effect, got {other:?}"),
        }
    }

    /// `~gopher/webhook-test` on server.bitbucket.local, as most fixtures name it.
    fn webhook_test() -> RepositoryRef {
        RepositoryRef {
            name: "~gopher/webhook-test".to_owned(),
            external_id: "4".to_owned(),
            url: "https://server.bitbucket.local/users/gopher/repos/webhook-test/browse".to_owned(),
            clone_urls: vec![
                "ssh://git@server.bitbucket.local:7999/~gopher/webhook-test.git".to_owned(),
                "https://server.bitbucket.local/scm/~gopher/webhook-test.git".to_owned(),
            ],
        }
    }

    /// Pull request 5 of `~gopher/webhook-test` ("Update README", feature/wip at 32a0b8a),
    /// open, as pr_opened.json and the reviewer fixtures state it.
    fn pull_request_5() -> ChangesetSnapshot {
        ChangesetSnapshot {
            title: Some("Update README".to_owned()),
            url: Some(
                "https://server.bitbucket.local/users/gopher/repos/webhook-test/pull-requests/5"
                    .to_owned(),
            ),
            author: Some("gopher".to_owned()),
            state: Some(ChangesetState::Open),
            head_ref: Some("feature/wip".to_owned()),
            base_ref: Some("master".to_owned()),
            head_sha: Some("32a0b8a740c2963c6f56bd8baf3dc05683d299e0".to_owned()),
            labels: None,
            host_update_time: Some(Timestamp::from_micros(1_551_432_675_860_000)),
            in_merge_queue: None,
            auto_merge: None,
        }
    }

    #[test]
    fn pr_opened_is_an_opened_changeset_with_everything_the_pull_request_states() {
        assert_eq!(
            changeset("pr:opened", &body("pr_opened.json")),
            ChangesetEffect {
                repository: webhook_test(),
                target: Target::Number(5),
                occur_time: Some(Timestamp::from_micros(1_551_432_675_000_000)), // 2019-03-01T10:31:15+0100
                kind: "opened".to_owned(),
                actor: "gopher".to_owned(),
                summary: "gopher opened #5 \"Update README\"".to_owned(),
                external_id: String::new(),
                snapshot: pull_request_5(),
                review: None,
                check: None,
            }
        );
    }

    #[test]
    fn pr_modified_is_an_edit() {
        assert_eq!(
            changeset("pr:modified", &body("pr_modified.json")),
            ChangesetEffect {
                repository: RepositoryRef {
                    name: "~gopher/webhook-test".to_owned(),
                    external_id: "4".to_owned(),
                    url: "https://server.bibucket.local/users/gopher/repos/webhook-test/browse"
                        .to_owned(),
                    clone_urls: vec![
                        "ssh://git@server.bibucket.local:7999/~gopher/webhook-test.git".to_owned(),
                        "https://server.bibucket.local/scm/~gopher/webhook-test.git".to_owned(),
                    ],
                },
                target: Target::Number(3),
                occur_time: Some(Timestamp::from_micros(1_551_431_988_000_000)), // 2019-03-01T10:19:48+0100
                kind: "edited".to_owned(),
                actor: "gopher".to_owned(),
                summary: "gopher edited #3 \"Feature/wip\"".to_owned(),
                external_id: String::new(),
                snapshot: ChangesetSnapshot {
                    title: Some("Feature/wip".to_owned()),
                    url: Some(
                        "https://server.bibucket.local/users/gopher/repos/webhook-test/pull-requests/3"
                            .to_owned()
                    ),
                    author: Some("gopher".to_owned()),
                    state: Some(ChangesetState::Open),
                    head_ref: Some("feature/wip".to_owned()),
                    base_ref: Some("master".to_owned()),
                    head_sha: Some("591f702354b3abf1faaca4d23811620d1b2ac984".to_owned()),
                    labels: None,
                    host_update_time: Some(Timestamp::from_micros(1_551_431_988_769_000)), in_merge_queue: None, auto_merge: None,
                },
                review: None,
                check: None,
            }
        );
    }

    #[test]
    fn pr_from_ref_updated_is_a_synchronize_to_the_new_head() {
        assert_eq!(
            changeset("pr:from_ref_updated", &body("pr_from_ref_updated.json")),
            ChangesetEffect {
                repository: RepositoryRef {
                    name: "ABC/some-repo".to_owned(),
                    external_id: "1".to_owned(),
                    url: "http://example.org/projects/ABC/repos/some-repo/browse".to_owned(),
                    clone_urls: vec![
                        "https://example.org/scm/some-namespace/some-repo.git".to_owned(),
                        "ssh://git@example.org/some-namespace/some-repo.git".to_owned(),
                    ],
                },
                target: Target::Number(1),
                occur_time: Some(Timestamp::from_micros(1_586_265_574_000_000)), // 2020-04-07T15:19:34+0200
                kind: "synchronize".to_owned(),
                actor: "me-name".to_owned(),
                summary: "me-name updated #1 to 522764f".to_owned(),
                external_id: String::new(),
                snapshot: ChangesetSnapshot {
                    title: Some("test".to_owned()),
                    url: Some(
                        "http://example.org/projects/ABC/repos/some-repo/pull-requests/61"
                            .to_owned()
                    ),
                    author: Some("me-name".to_owned()),
                    state: Some(ChangesetState::Open),
                    head_ref: Some("develop".to_owned()),
                    base_ref: Some("master".to_owned()),
                    head_sha: Some("522764f1602ae7d4abcd18197827cafdb3aef11".to_owned()),
                    labels: None,
                    host_update_time: Some(Timestamp::from_micros(1_586_265_574_452_000)),
                    in_merge_queue: None,
                    auto_merge: None,
                },
                review: None,
                check: None,
            }
        );
    }

    #[test]
    fn pr_merged_is_merged() {
        assert_eq!(
            changeset("pr:merged", &body("pr_merged.json")),
            ChangesetEffect {
                repository: webhook_test(),
                target: Target::Number(5),
                occur_time: Some(Timestamp::from_micros(1_551_433_034_000_000)), // 2019-03-01T10:37:14+0100
                kind: "merged".to_owned(),
                actor: "gopher".to_owned(),
                summary: "gopher merged #5 \"Update README\"".to_owned(),
                external_id: String::new(),
                snapshot: ChangesetSnapshot {
                    state: Some(ChangesetState::Merged),
                    host_update_time: Some(Timestamp::from_micros(1_551_433_034_286_000)),
                    ..pull_request_5()
                },
                review: None,
                check: None,
            }
        );
    }

    /// Pull request 2 of `~gopher/webhook-test` (feature/wip at 50a8ee1), as the comment and
    /// decline fixtures state it.
    fn pull_request_2(state: ChangesetState, updated_ms: i64) -> ChangesetSnapshot {
        ChangesetSnapshot {
            title: Some("Update README".to_owned()),
            url: Some(
                "https://server.bitbucket.local/users/gopher/repos/webhook-test/pull-requests/2"
                    .to_owned(),
            ),
            author: Some("gopher".to_owned()),
            state: Some(state),
            head_ref: Some("feature/wip".to_owned()),
            base_ref: Some("master".to_owned()),
            head_sha: Some("50a8ee1fae3abf75738a85f9039b4b2de4947174".to_owned()),
            labels: None,
            host_update_time: Some(Timestamp::from_micros(updated_ms * 1000)),
            in_merge_queue: None,
            auto_merge: None,
        }
    }

    #[test]
    fn pr_declined_closes_the_changeset() {
        assert_eq!(
            changeset("pr:declined", &body("pr_declined.json")),
            ChangesetEffect {
                repository: webhook_test(),
                target: Target::Number(2),
                occur_time: Some(Timestamp::from_micros(1_551_431_555_000_000)), // 2019-03-01T10:12:35+0100
                kind: "closed".to_owned(),
                actor: "gopher".to_owned(),
                summary: "gopher declined #2 \"Update README\"".to_owned(),
                external_id: String::new(),
                snapshot: pull_request_2(ChangesetState::Closed, 1_551_431_555_605),
                review: None,
                check: None,
            }
        );
    }

    #[test]
    fn pr_comment_added_is_a_comment_at_the_events_date() {
        assert_eq!(
            changeset("pr:comment:added", &body("pr_comment_added.json")),
            ChangesetEffect {
                repository: webhook_test(),
                target: Target::Number(2),
                occur_time: Some(Timestamp::from_micros(1_551_431_315_000_000)), // 2019-03-01T10:08:35+0100
                kind: "comment".to_owned(),
                actor: "gopher".to_owned(),
                summary: "gopher commented on #2".to_owned(),
                external_id: "167".to_owned(),
                snapshot: pull_request_2(ChangesetState::Open, 1_551_366_080_055),
                review: None,
                check: None,
            }
        );
    }

    #[test]
    fn pr_reviewer_approved_is_the_participants_approval() {
        assert_eq!(
            changeset("pr:reviewer:approved", &body("pr_reviewer_approved.json")),
            ChangesetEffect {
                repository: webhook_test(),
                target: Target::Number(5),
                occur_time: Some(Timestamp::from_micros(1_551_432_938_000_000)), // 2019-03-01T10:35:38+0100
                kind: "approved".to_owned(),
                actor: "tux".to_owned(),
                summary: "tux approved #5".to_owned(),
                external_id: String::new(),
                snapshot: pull_request_5(),
                review: Some(ReviewVote {
                    reviewer: "tux".to_owned(),
                    vote: Vote::Approved,
                }),
                check: None,
            }
        );
    }

    #[test]
    fn pr_reviewer_needs_work_requests_changes() {
        assert_eq!(
            changeset(
                "pr:reviewer:needs_work",
                &body("pr_reviewer_needs_work.json")
            ),
            ChangesetEffect {
                repository: webhook_test(),
                target: Target::Number(5),
                occur_time: Some(Timestamp::from_micros(1_551_432_893_000_000)), // 2019-03-01T10:34:53+0100
                kind: "needs_work".to_owned(),
                actor: "tux".to_owned(),
                summary: "tux marked #5 as needs work".to_owned(),
                external_id: String::new(),
                snapshot: pull_request_5(),
                review: Some(ReviewVote {
                    reviewer: "tux".to_owned(),
                    vote: Vote::ChangesRequested,
                }),
                check: None,
            }
        );
    }

    #[test]
    fn unapproved_withdraws_and_changes_requested_requests_changes() {
        let mut payload = body("pr_reviewer_approved.json");
        payload["eventKey"] = json!("pr:reviewer:unapproved");
        let unapproved = changeset("pr:reviewer:unapproved", &payload);
        assert_eq!(unapproved.kind, "unapproved");
        assert_eq!(
            unapproved.review,
            Some(ReviewVote {
                reviewer: "tux".to_owned(),
                vote: Vote::Withdrawn
            })
        );

        let changes = changeset(
            "pr:reviewer:changes_requested",
            &body("pr_reviewer_needs_work.json"),
        );
        assert_eq!(changes.kind, "changes_requested");
        assert_eq!(changes.summary, "tux requested changes on #5");
        assert_eq!(changes.review.map(|r| r.vote), Some(Vote::ChangesRequested));
    }

    #[test]
    fn the_reviewer_is_the_participant_not_the_actor() {
        let mut payload = body("pr_reviewer_approved.json");
        payload["actor"]["name"] = json!("admin");
        let approved = changeset("pr:reviewer:approved", &payload);
        assert_eq!(approved.actor, "admin");
        assert_eq!(approved.review.map(|r| r.reviewer).as_deref(), Some("tux"));
    }

    #[test]
    fn pr_deleted_closes_an_open_pull_request() {
        let deleted = changeset("pr:deleted", &body("pr_opened.json"));
        assert_eq!(deleted.kind, "deleted");
        assert_eq!(deleted.snapshot.state, Some(ChangesetState::Closed));
        assert_eq!(deleted.summary, "gopher deleted #5 \"Update README\"");
    }

    #[test]
    fn an_open_draft_is_a_draft_and_a_merged_one_is_merged() {
        let mut payload = body("pr_opened.json");
        payload["pullRequest"]["draft"] = json!(true);
        let draft = changeset("pr:opened", &payload);
        assert_eq!(draft.snapshot.state, Some(ChangesetState::Draft));
        payload["pullRequest"]["state"] = json!("MERGED");
        let merged = changeset("pr:merged", &payload);
        assert_eq!(merged.snapshot.state, Some(ChangesetState::Merged));
    }

    #[test]
    fn a_pull_request_event_without_a_date_falls_back_to_the_pull_requests_update_time() {
        let mut payload = body("pr_opened.json");
        payload.as_object_mut().expect("an object").remove("date");
        assert_eq!(
            changeset("pr:opened", &payload).occur_time,
            Some(Timestamp::from_micros(1_551_432_675_860_000))
        );
    }

    #[test]
    fn a_pull_request_event_missing_its_id_or_repository_is_an_error_naming_it() {
        let mut payload = body("pr_opened.json");
        payload["pullRequest"]
            .as_object_mut()
            .expect("an object")
            .remove("id");
        let e = effects("pr:opened", &payload).expect_err("no id");
        assert_eq!(e.to_string(), "pr:opened payload: missing pullRequest.id");

        let mut payload = body("pr_opened.json");
        payload["pullRequest"]["toRef"]["repository"]["project"]
            .as_object_mut()
            .expect("an object")
            .remove("key");
        let named_by_id = changeset("pr:opened", &payload);
        assert_eq!(
            (
                named_by_id.repository.name.as_str(),
                named_by_id.repository.external_id.as_str()
            ),
            ("", "4"),
            "a repository without its name is known by its id"
        );
        payload["pullRequest"]["toRef"]["repository"]
            .as_object_mut()
            .expect("an object")
            .remove("id");
        let e = effects("pr:opened", &payload).expect_err("no project key and no id");
        assert_eq!(
            e.message,
            "missing pullRequest.toRef.repository.project.key or pullRequest.toRef.repository.slug, and the repository's id too"
        );

        let e = effects("pr:merged", &json!({"eventKey": "pr:merged"})).expect_err("no PR");
        assert_eq!(e.message, "missing pullRequest");
    }

    #[test]
    fn an_unknown_pull_request_event_still_updates_the_snapshot() {
        let other = changeset("pr:reviewer:bored", &body("pr_opened.json"));
        assert_eq!(other.kind, "bored");
        assert_eq!(other.snapshot, pull_request_5());
        assert_eq!(other.review, None);
    }

    #[test]
    fn repo_refs_changed_is_a_push_of_each_changed_ref() {
        assert_eq!(
            effects("repo:refs_changed", &body("repo_refs_changed.json")).expect("parses"),
            vec![Effect::Push(PushEffect {
                repository: webhook_test(),
                refs: vec![RefUpdate {
                    name: "refs/heads/feature/wip".to_owned(),
                    old_sha: "32a0b8a740c2963c6f56bd8baf3dc05683d299e0".to_owned(),
                    new_sha: "0000000000000000000000000000000000000000".to_owned(),
                }],
                actor: "gopher".to_owned(),
            })]
        );
        assert_eq!(
            effects(
                "repo:refs_changed",
                &body("repo_refs_changed.signed-go-scm.json")
            )
            .expect("parses"),
            vec![Effect::Push(PushEffect {
                repository: RepositoryRef {
                    name: "PRJ/my-repo".to_owned(),
                    external_id: "1".to_owned(),
                    url: String::new(),
                    clone_urls: vec![],
                },
                refs: vec![RefUpdate {
                    name: "refs/heads/master".to_owned(),
                    old_sha: "5c64a07cd6c0f21b753bf261ef059c7e7633c50a".to_owned(),
                    new_sha: "823b2230a56056231c9425d63758fa87078a66b4".to_owned(),
                }],
                actor: "jcitizen".to_owned(),
            })]
        );
        assert_eq!(
            effects("repo:refs_changed", &body("repo_refs_changed.signed.json")).expect("parses"),
            vec![Effect::Push(PushEffect {
                repository: RepositoryRef {
                    name: "AMUNIZ/test-repos".to_owned(),
                    external_id: "2".to_owned(),
                    url: "http://localhost:7990/bitbucket/projects/AMUNIZ/repos/test-repos/browse"
                        .to_owned(),
                    clone_urls: vec![
                        "http://localhost:7990/bitbucket/scm/amuniz/test-repos.git".to_owned(),
                        "ssh://git@localhost:7999/amuniz/test-repos.git".to_owned(),
                    ],
                },
                refs: vec![RefUpdate {
                    name: "refs/heads/feature/BB-1".to_owned(),
                    old_sha: "fb522a6f08c7c7df337312e4e65ec1b57710672e".to_owned(),
                    new_sha: "0000000000000000000000000000000000000000".to_owned(),
                }],
                actor: "admin".to_owned(),
            })]
        );
    }

    #[test]
    fn a_push_without_a_repository_or_changes_is_an_error() {
        let mut payload = body("repo_refs_changed.json");
        payload
            .as_object_mut()
            .expect("an object")
            .remove("changes");
        let e = effects("repo:refs_changed", &payload).expect_err("no changes");
        assert_eq!(e.message, "missing changes");
        payload
            .as_object_mut()
            .expect("an object")
            .remove("repository");
        let e = effects("repo:refs_changed", &payload).expect_err("no repository");
        assert_eq!(e.message, "missing repository");
    }

    // The Sourcegraph Bitbucket Server plugin.

    /// `PROJECT_1/rep_1` on localhost, as the plugin fixture names it.
    fn rep_1() -> RepositoryRef {
        RepositoryRef {
            name: "PROJECT_1/rep_1".to_owned(),
            external_id: "1".to_owned(),
            url: "http://localhost:7990/bitbucket/projects/PROJECT_1/repos/rep_1/browse".to_owned(),
            clone_urls: vec![
                "http://localhost:7990/bitbucket/scm/project_1/rep_1.git".to_owned(),
                "ssh://git@localhost:7999/project_1/rep_1.git".to_owned(),
            ],
        }
    }

    /// Pull request 2 of `PROJECT_1/rep_1`, as the plugin fixture states it.
    fn plugin_pull_request() -> ChangesetSnapshot {
        ChangesetSnapshot {
            title: Some("add_file.txt edited online with Bitbucket".to_owned()),
            url: Some(
                "http://localhost:7990/bitbucket/projects/PROJECT_1/repos/rep_1/pull-requests/2"
                    .to_owned(),
            ),
            author: Some("admin".to_owned()),
            state: Some(ChangesetState::Open),
            head_ref: Some("admin/add_filetxt-1574317875130".to_owned()),
            base_ref: Some("master".to_owned()),
            head_sha: Some("2b9cff39d08fad011ab3607836988760b30f66e1".to_owned()),
            labels: None,
            host_update_time: Some(Timestamp::from_micros(1_574_317_913_743_000)),
            in_merge_queue: None,
            auto_merge: None,
        }
    }

    #[test]
    fn the_plugins_pr_opened_is_opened_at_the_instant_its_twelve_hour_date_meant() {
        // The body says "2019-11-20T10:31:54-0800" (18:31:54Z), but the pull request was
        // created at 1574317913743 = 2019-11-21T06:31:53.743Z: the plugin wrote 22:31 as 10:31.
        assert_eq!(
            changeset("pr:opened", &body("pr_opened.sourcegraph-plugin.json")),
            ChangesetEffect {
                repository: rep_1(),
                target: Target::Number(2),
                occur_time: Some(Timestamp::from_micros(1_574_317_914_000_000)), // 2019-11-21T06:31:54Z
                kind: "opened".to_owned(),
                actor: "admin".to_owned(),
                summary: "admin opened #2 \"add_file.txt edited online with Bitbucket\"".to_owned(),
                external_id: String::new(),
                snapshot: plugin_pull_request(),
                review: None,
                check: None,
            }
        );
    }

    #[test]
    fn a_plugin_date_is_read_on_a_twelve_hour_clock_against_the_last_update() {
        let hour = Duration::from_secs(3600);
        let at = |s: &str| parse_time(&json!(s)).expect("a time");
        // Morning: the text is right.
        let floor = Some(at("2019-11-20T09:00:00Z"));
        assert_eq!(
            plugin_date(&json!("2019-11-20T1:5:09-0800"), floor),
            Some(at("2019-11-20T09:05:09Z"))
        );
        // Afternoon: 12 hours later than written.
        let floor = Some(at("2019-11-20T21:00:00Z"));
        assert_eq!(
            plugin_date(&json!("2019-11-20T1:05:09-0800"), floor),
            Some(at("2019-11-20T01:05:09-0800").plus(12 * hour))
        );
        // "12" is noon or, written for 00:xx, 12 hours earlier.
        let floor = Some(at("2019-11-20T07:59:00Z"));
        assert_eq!(
            plugin_date(&json!("2019-11-20T12:30:00-0800"), floor),
            Some(at("2019-11-20T00:30:00-0800"))
        );
        let floor = Some(at("2019-11-20T20:00:00Z"));
        assert_eq!(
            plugin_date(&json!("2019-11-20T12:30:00-0800"), floor),
            Some(at("2019-11-20T12:30:00-0800"))
        );
        // Hours only a 24-hour clock has, and no floor: as written.
        let floor = Some(at("2019-11-21T00:00:00Z"));
        assert_eq!(
            plugin_date(&json!("2019-11-20T15:00:00-0800"), floor),
            Some(at("2019-11-20T23:00:00Z"))
        );
        assert_eq!(
            plugin_date(&json!("2019-11-20T10:31:54-0800"), None),
            Some(at("2019-11-20T18:31:54Z"))
        );
    }

    #[test]
    fn the_plugins_first_release_sent_an_event_key_but_its_one_digit_clock_gives_it_away() {
        // 13:05:09Z written by the 12-hour `h:m` clock in UTC; the pull request was last
        // updated half a second before.
        let mut payload = body("pr_opened.sourcegraph-plugin.json");
        payload["eventKey"] = json!("pr:opened");
        payload["date"] = json!("2019-11-21T1:5:09+0000");
        payload["pullRequest"]["updatedDate"] = json!(1_574_341_508_500i64);
        assert_eq!(
            changeset("pr:opened", &payload).occur_time,
            Some(Timestamp::from_micros(1_574_341_509_000_000)) // 2019-11-21T13:05:09Z
        );
        // A native date is read as written, even when the pull request changed after it.
        payload["date"] = json!("2019-11-21T01:05:09+0000");
        assert_eq!(
            changeset("pr:opened", &payload).occur_time,
            Some(Timestamp::from_micros(1_574_298_309_000_000)) // 2019-11-21T01:05:09Z
        );
    }

    /// A body as the plugin's current releases send a `pr:activity:*` event about the fixture's
    /// pull request: `createdDate`, `user`, `action` and `activity`, and no `date`/`actor`.
    fn plugin_activity(action: &str, activity: Value) -> Value {
        let mut payload = body("pr_opened.sourcegraph-plugin.json");
        let object = payload.as_object_mut().expect("an object");
        object.remove("date");
        let user = object.remove("actor").expect("the fixture has an actor");
        object.insert("createdDate".to_owned(), json!(1_574_400_000_000i64));
        object.insert("user".to_owned(), user.clone());
        object.insert("action".to_owned(), json!(action));
        let mut activity = activity;
        activity["id"] = json!(77);
        activity["createdDate"] = json!(1_574_400_000_000i64);
        activity["user"] = user;
        activity["action"] = json!(action);
        object.insert("activity".to_owned(), activity);
        payload
    }

    #[test]
    fn plugin_activity_events_give_the_same_effects_as_the_native_events() {
        let cases = [
            (
                "pr:activity:event",
                "APPROVED",
                json!({}),
                "approved",
                Some(Vote::Approved),
                "admin approved #2",
            ),
            (
                "pr:activity:event",
                "UNAPPROVED",
                json!({}),
                "unapproved",
                Some(Vote::Withdrawn),
                "admin withdrew their review of #2",
            ),
            (
                "pr:activity:event",
                "REVIEWED",
                json!({}),
                "needs_work",
                Some(Vote::ChangesRequested),
                "admin marked #2 as needs work",
            ),
            (
                "pr:activity:event",
                "OPENED",
                json!({}),
                "opened",
                None,
                "admin opened #2 \"add_file.txt edited online with Bitbucket\"",
            ),
            (
                "pr:activity:event",
                "DECLINED",
                json!({}),
                "closed",
                None,
                "admin declined #2 \"add_file.txt edited online with Bitbucket\"",
            ),
            (
                "pr:activity:event",
                "REOPENED",
                json!({}),
                "reopened",
                None,
                "admin reopened #2 \"add_file.txt edited online with Bitbucket\"",
            ),
            (
                "pr:activity:event",
                "UPDATED",
                json!({}),
                "edited",
                None,
                "admin edited #2 \"add_file.txt edited online with Bitbucket\"",
            ),
            (
                "pr:activity:merge",
                "MERGED",
                json!({"commit": {"id": "0a943a29376f2336b78312d99e65da17048951db"}}),
                "merged",
                None,
                "admin merged #2 \"add_file.txt edited online with Bitbucket\"",
            ),
            (
                "pr:activity:rescope",
                "RESCOPED",
                json!({"fromHash": "2b9cff39d08fad011ab3607836988760b30f66e1"}),
                "synchronize",
                None,
                "admin updated #2 to 2b9cff3",
            ),
            (
                "pr:activity:comment",
                "COMMENTED",
                json!({"commentAction": "ADDED", "comment": {"id": 1, "text": "hi"}}),
                "comment",
                None,
                "admin commented on #2",
            ),
            (
                "pr:activity:comment",
                "COMMENTED",
                json!({"commentAction": "EDITED", "comment": {"id": 1, "text": "hi!"}}),
                "comment",
                None,
                "admin edited a comment on #2",
            ),
            (
                "pr:activity:reviewers",
                "UPDATED",
                json!({"addedReviewers": [{"name": "tux"}], "removedReviewers": []}),
                "reviewers_updated",
                None,
                "admin updated the reviewers of #2",
            ),
        ];
        for (event, action, activity, kind, vote, summary) in cases {
            let payload = plugin_activity(action, activity);
            let effect = changeset(event, &payload);
            assert_eq!(effect.repository, rep_1(), "{action}");
            assert_eq!(effect.target, Target::Number(2), "{action}");
            assert_eq!(
                effect.occur_time,
                Some(Timestamp::from_micros(1_574_400_000_000_000)),
                "{action}"
            );
            assert_eq!(effect.kind, kind, "{action}");
            assert_eq!(effect.actor, "admin", "{action}");
            assert_eq!(effect.summary, summary, "{action}");
            assert_eq!(effect.snapshot, plugin_pull_request(), "{action}");
            assert_eq!(
                effect.review,
                vote.map(|vote| ReviewVote {
                    reviewer: "admin".to_owned(),
                    vote
                }),
                "{action}"
            );
            assert_eq!(effect.check, None, "{action}");
        }
    }

    #[test]
    fn the_plugins_participant_status_event_withdraws_a_needs_work() {
        let mut payload = body("pr_opened.sourcegraph-plugin.json");
        let object = payload.as_object_mut().expect("an object");
        object.remove("date");
        let user = object.remove("actor").expect("an actor");
        object.insert("createdDate".to_owned(), json!(1_574_400_000_000i64));
        object.insert("user".to_owned(), user);
        object.insert("action".to_owned(), json!("UNAPPROVED"));
        let effect = changeset("pr:participant:status", &payload);
        assert_eq!(effect.kind, "unapproved");
        assert_eq!(
            effect.review,
            Some(ReviewVote {
                reviewer: "admin".to_owned(),
                vote: Vote::Withdrawn
            })
        );
        assert_eq!(
            effect.occur_time,
            Some(Timestamp::from_micros(1_574_400_000_000_000))
        );
    }

    /// A `repo:build_status` as the plugin sends it, for commit 2b9cff3 of the fixture's pull
    /// request, in `state`.
    fn plugin_build_status(state: &str, pull_requests: Vec<Value>) -> Value {
        json!({
            "createdDate": 1_574_400_100_000i64,
            "user": {"name": "ci-bot", "id": 9},
            "commit": "2b9cff39d08fad011ab3607836988760b30f66e1",
            "status": {
                "state": state,
                "key": "build-42",
                "name": "CI build",
                "url": "https://ci.example/42",
                "description": "",
                "dateAdded": 1_574_400_099_000i64
            },
            "pullRequests": pull_requests
        })
    }

    #[test]
    fn a_plugin_build_status_is_a_check_on_each_pull_request_with_the_commit() {
        let pr = body("pr_opened.sourcegraph-plugin.json")["pullRequest"].clone();
        let mut other = pr.clone();
        other["id"] = json!(3);
        let payload = plugin_build_status("SUCCESSFUL", vec![pr, other]);
        let check = |number| {
            Effect::Changeset(ChangesetEffect {
                repository: rep_1(),
                target: Target::Number(number),
                occur_time: Some(Timestamp::from_micros(1_574_400_100_000_000)),
                kind: "check".to_owned(),
                actor: "ci-bot".to_owned(),
                summary: "CI build passed on 2b9cff3".to_owned(),
                external_id: String::new(),
                snapshot: plugin_pull_request(),
                review: None,
                check: Some(CheckResult {
                    context: "build-42".to_owned(),
                    sha: "2b9cff39d08fad011ab3607836988760b30f66e1".to_owned(),
                    status: CheckStatus::Passed,
                }),
            })
        };
        assert_eq!(
            effects("repo:build_status", &payload).expect("parses"),
            vec![check(2), check(3)]
        );
    }

    #[test]
    fn build_states_map_to_pending_passed_and_failed() {
        let pr = body("pr_opened.sourcegraph-plugin.json")["pullRequest"].clone();
        for (state, status, summary) in [
            (
                "INPROGRESS",
                CheckStatus::Pending,
                "CI build is pending on 2b9cff3",
            ),
            (
                "SUCCESSFUL",
                CheckStatus::Passed,
                "CI build passed on 2b9cff3",
            ),
            ("FAILED", CheckStatus::Failed, "CI build failed on 2b9cff3"),
            ("STOPPED", CheckStatus::Failed, "CI build failed on 2b9cff3"),
        ] {
            let effect = changeset(
                "repo:build_status",
                &plugin_build_status(state, vec![pr.clone()]),
            );
            assert_eq!(effect.check.map(|c| c.status), Some(status), "{state}");
            assert_eq!(effect.summary, summary, "{state}");
        }
    }

    #[test]
    fn a_build_status_with_no_pull_request_targets_the_head_sha_when_it_names_a_repository() {
        let mut payload = plugin_build_status("FAILED", vec![]);
        // The plugin's body names no repository: no changeset can be found for the commit.
        assert_eq!(
            effects("repo:build_status", &payload).expect("parses"),
            vec![]
        );

        payload["repository"] = body("repo_refs_changed.json")["repository"].clone();
        assert_eq!(
            changeset("repo:build_status", &payload),
            ChangesetEffect {
                repository: webhook_test(),
                target: Target::HeadSha("2b9cff39d08fad011ab3607836988760b30f66e1".to_owned()),
                occur_time: Some(Timestamp::from_micros(1_574_400_100_000_000)),
                kind: "check".to_owned(),
                actor: "ci-bot".to_owned(),
                summary: "CI build failed on 2b9cff3".to_owned(),
                external_id: String::new(),
                snapshot: ChangesetSnapshot::default(),
                review: None,
                check: Some(CheckResult {
                    context: "build-42".to_owned(),
                    sha: "2b9cff39d08fad011ab3607836988760b30f66e1".to_owned(),
                    status: CheckStatus::Failed,
                }),
            }
        );
    }

    #[test]
    fn a_build_status_without_its_commit_or_key_is_an_error() {
        let mut payload = plugin_build_status("FAILED", vec![]);
        payload.as_object_mut().expect("an object").remove("commit");
        let e = effects("repo:build_status", &payload).expect_err("no commit");
        assert_eq!(e.to_string(), "repo:build_status payload: missing commit");

        let mut payload = plugin_build_status("FAILED", vec![]);
        payload["status"]
            .as_object_mut()
            .expect("an object")
            .remove("key");
        let e = effects("repo:build_status", &payload).expect_err("no key");
        assert_eq!(e.message, "missing status.key");
    }

    #[test]
    fn the_plugins_push_lists_its_refs_as_ref_changes() {
        let mut payload = body("repo_refs_changed.json");
        let object = payload.as_object_mut().expect("an object");
        object.remove("eventKey");
        object.remove("date");
        let changes = object.remove("changes").expect("changes");
        let user = object.remove("actor").expect("an actor");
        object.insert("refChanges".to_owned(), changes);
        object.insert("user".to_owned(), user);
        assert_eq!(
            effects("repo:refs_changed", &payload).expect("parses"),
            vec![Effect::Push(PushEffect {
                repository: webhook_test(),
                refs: vec![RefUpdate {
                    name: "refs/heads/feature/wip".to_owned(),
                    old_sha: "32a0b8a740c2963c6f56bd8baf3dc05683d299e0".to_owned(),
                    new_sha: "0000000000000000000000000000000000000000".to_owned(),
                }],
                actor: "gopher".to_owned(),
            })]
        );
    }
}
