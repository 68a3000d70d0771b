//! Bitbucket Cloud: deliveries signed with `X-Hub-Signature: sha256=<hex>`, named only by
//! `X-Event-Key` (the body carries no event name) and keyed by `X-Request-UUID`. Bitbucket Cloud
//! has no ping.

use http::HeaderMap;
use serde_json::{Value, json};

use super::effects::{
    self, ChangesetEffect, ChangesetSnapshot, ChangesetState, CheckResult, CheckStatus, HostEvent,
    PushEffect, RefUpdate, RepositoryRef, ReviewVote, Target, Vote, check_summary, ending, id_text,
    parse_time, str_at, string_at,
};
use super::signature::{self, Algorithm, Prefix};
use super::{
    Classified, ClassifyError, Disposition, Effect, EffectError, Payload, TestDelivery, Verified,
    VerifyError, delivery_key, event_header, json_bytes,
};

const SIGNATURE: &str = "X-Hub-Signature";
const EVENT: &str = "X-Event-Key";
/// Where this host names the event and the delivery key.
pub(super) const HEADERS: super::HeaderNames = super::HeaderNames {
    event: EVENT,
    keys: &[DELIVERY],
};
use crate::time::Timestamp;
const DELIVERY: &str = "X-Request-UUID";

pub(super) fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[&str],
) -> Result<Verified, VerifyError> {
    let signature =
        signature::read_signature(headers, SIGNATURE, Algorithm::Sha256, Prefix::Required)?
            .ok_or(VerifyError::Missing { header: SIGNATURE })?;
    signature::check_hmac(&signature, body, secrets)?;
    Ok(Verified::Signed)
}

pub(super) fn classify<P: Payload>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Classified<P>, ClassifyError> {
    let event = event_header(headers, EVENT)?;
    let payload = P::parse(event, body)?;
    Ok(Classified {
        event: event.to_owned(),
        delivery_key: delivery_key(headers, &[DELIVERY]),
        disposition: disposition(event),
        payload,
    })
}

/// Events a handler takes (DESIGN.md): every pull request event, commit statuses and pushes.
fn disposition(event: &str) -> Disposition {
    match event {
        "repo:push" | "repo:commit_status_created" | "repo:commit_status_updated" => {
            Disposition::Handled
        }
        e if e.starts_with("pullrequest:") => Disposition::Handled,
        _ => Disposition::Ignored,
    }
}

/// A signed `repo:push` with no changes to a placeholder repository, the nearest thing to a test
/// event Bitbucket Cloud has.
pub(super) fn test_delivery(secret: &str, key: &str) -> TestDelivery {
    let body = json_bytes(&json!({
        "push": { "changes": [] },
        "actor": {
            "type": "user",
            "display_name": "hookgate",
            "nickname": "hookgate"
        },
        "repository": {
            "type": "repository",
            "name": "test-delivery",
            "full_name": "hookgate/test-delivery",
            "uuid": "{00000000-0000-0000-0000-000000000000}",
            "links": { "html": { "href": "https://bitbucket.invalid/hookgate/test-delivery" } }
        }
    }));
    TestDelivery {
        headers: vec![
            ("User-Agent", "Bitbucket-Webhooks/2.0".to_owned()),
            (EVENT, "repo:push".to_owned()),
            (DELIVERY, key.to_owned()),
            ("X-Attempt-Number", "1".to_owned()),
            (
                SIGNATURE,
                signature::header_value(Algorithm::Sha256, secret, &body),
            ),
        ],
        body,
    }
}

/// The effects of a `Handled` event (see `super::effects`): a `pullrequest:*` event changes one
/// pull request, a `repo:commit_status_*` is a check on a commit (which names no pull request),
/// and `repo:push` is a push.
pub(super) fn effects(event: &str, payload: &Value) -> Result<Vec<Effect>, EffectError> {
    let on = Event {
        event,
        payload,
        actor: user_name(payload.get("actor")).unwrap_or_default(),
        host: BitbucketCloud,
    };
    if let Some(action) = event.strip_prefix("pullrequest:") {
        return on.pull_request(action).map(|e| vec![e]);
    }
    match event {
        "repo:push" => on.push().map(|e| vec![e]),
        "repo:commit_status_created" | "repo:commit_status_updated" => {
            on.commit_status().map(|e| vec![e])
        }
        _ => Ok(Vec::new()),
    }
}

/// What the Bitbucket Cloud module adds to an event being turned into effects: nothing but how
/// it finds the event's repository.
struct BitbucketCloud;

/// One Bitbucket Cloud event being turned into effects.
type Event<'p> = effects::Event<'p, BitbucketCloud>;

impl HostEvent for BitbucketCloud {
    /// The event's `repository`: its `full_name`, `uuid` (one of the two may be absent), web
    /// page and clone URLs. Webhook bodies carry no clone links, so unless one is listed the
    /// https and ssh URLs are made from the name.
    fn repository(event: &effects::Event<'_, Self>) -> Result<RepositoryRef, EffectError> {
        let repo = event.need("/repository")?;
        let full_name = str_at(repo, "/full_name").unwrap_or_default();
        let listed: Vec<String> = repo
            .pointer("/links/clone")
            .and_then(Value::as_array)
            .map(|links| links.iter().filter_map(|l| string_at(l, "/href")).collect())
            .unwrap_or_default();
        let clone_urls = if !listed.is_empty() || full_name.is_empty() {
            listed
        } else {
            vec![
                format!("https://bitbucket.org/{full_name}.git"),
                format!("git@bitbucket.org:{full_name}.git"),
            ]
        };
        let url = string_at(repo, "/links/html/href").unwrap_or_else(|| match full_name {
            "" => String::new(),
            name => format!("https://bitbucket.org/{name}"),
        });
        RepositoryRef {
            name: full_name.to_owned(),
            external_id: string_at(repo, "/uuid").unwrap_or_default(),
            url,
            clone_urls,
        }
        .identified(event.event, "repository.full_name")
    }
}

impl Event<'_> {
    /// The effect of a `pullrequest:<action>` event on its pull request.
    fn pull_request(&self, action: &str) -> Result<Effect, EffectError> {
        let pr = self.need("/pullrequest")?;
        let number = self.need_i64("/pullrequest/id")?;
        let snapshot = snapshot(pr);
        let who = self.who();
        let titled = match &snapshot.title {
            Some(title) => format!("#{number} \"{title}\""),
            None => format!("#{number}"),
        };
        // The object whose time and user this event is about: the approval, the changes
        // request or the comment; the pull request itself for the rest.
        let vote = |at: &str, vote: Vote| -> Result<ReviewVote, EffectError> {
            Ok(ReviewVote {
                reviewer: user_name(self.payload.pointer(&format!("/{at}/user")))
                    .ok_or_else(|| self.missing(&format!("/{at}/user")))?
                    .to_owned(),
                vote,
            })
        };
        // The timeline key: the comment's id, or for a vote (which has no id) the voter and
        // the vote's time; the pull request's own changes have none.
        let voted = |review: &ReviewVote, at: &str| match self.time(&format!("/{at}/date")) {
            Some(t) => format!("{} {}", review.reviewer, t.micros()),
            None => String::new(),
        };
        let (kind, review, summary, occur_time, external_id) = match action {
            "created" => ("opened", None, format!("{who} opened {titled}"), None, None),
            "updated" => (
                "edited",
                None,
                format!("{who} updated {titled}"),
                None,
                None,
            ),
            "fulfilled" => ("merged", None, format!("{who} merged {titled}"), None, None),
            "rejected" => (
                "closed",
                None,
                format!("{who} declined {titled}"),
                None,
                None,
            ),
            "superseded" => (
                "closed",
                None,
                format!("{who} superseded {titled}"),
                None,
                None,
            ),
            "approved" | "unapproved" => {
                let review = vote(
                    "approval",
                    if action == "approved" {
                        Vote::Approved
                    } else {
                        Vote::Withdrawn
                    },
                )?;
                let summary = match review.vote {
                    Vote::Approved => format!("{} approved #{number}", review.reviewer),
                    _ => format!("{} withdrew their approval of #{number}", review.reviewer),
                };
                let key = voted(&review, "approval");
                (
                    action,
                    Some(review),
                    summary,
                    self.time("/approval/date"),
                    Some(key),
                )
            }
            "changes_request_created" | "changes_request_removed" => {
                let created = action == "changes_request_created";
                let review = vote(
                    "changes_request",
                    if created {
                        Vote::ChangesRequested
                    } else {
                        Vote::Withdrawn
                    },
                )?;
                let summary = if created {
                    format!("{} requested changes on #{number}", review.reviewer)
                } else {
                    format!(
                        "{} withdrew their changes request on #{number}",
                        review.reviewer
                    )
                };
                let kind = if created {
                    "changes_requested"
                } else {
                    "changes_request_removed"
                };
                let key = voted(&review, "changes_request");
                (
                    kind,
                    Some(review),
                    summary,
                    self.time("/changes_request/date"),
                    Some(key),
                )
            }
            comment if comment.starts_with("comment_") => {
                let verb = match comment {
                    "comment_updated" => "edited a comment on",
                    "comment_deleted" => "deleted a comment on",
                    "comment_resolved" => "resolved a comment on",
                    "comment_reopened" => "reopened a comment on",
                    _ => "commented on",
                };
                let occur_time = self
                    .time("/comment/updated_on")
                    .or_else(|| self.time("/comment/created_on"));
                // Edits share the comment's entry; a deletion is one of its own, and so is each
                // resolution or reopening (at its time).
                let id = id_text(self.payload.pointer("/comment/id"));
                let key = match (comment, occur_time) {
                    ("comment_deleted", _) => ending(id, true, "deleted"),
                    ("comment_resolved" | "comment_reopened", Some(t)) => {
                        let word = comment.trim_start_matches("comment_");
                        ending(id, true, &format!("{word}/{}", t.micros()))
                    }
                    _ => id,
                };
                (
                    "comment",
                    None,
                    format!("{who} {verb} #{number}"),
                    occur_time,
                    Some(key),
                )
            }
            other => (
                other,
                None,
                format!("{who}: {other} on #{number}"),
                None,
                None,
            ),
        };
        let occur_time = occur_time.or(snapshot.host_update_time);
        let effect = self.changeset(
            Target::Number(number),
            occur_time,
            kind,
            summary,
            external_id.unwrap_or_default(),
            snapshot,
        )?;
        Ok(Effect::Changeset(ChangesetEffect { review, ..effect }))
    }

    /// The time at a JSON pointer of the payload.
    fn time(&self, pointer: &str) -> Option<Timestamp> {
        self.payload.pointer(pointer).and_then(parse_time)
    }

    /// A `repo:commit_status_*`: a check on the commit, for every changeset whose head it is.
    fn commit_status(&self) -> Result<Effect, EffectError> {
        let status = self.need("/commit_status")?;
        // Older bodies link the commit (`.../commit/<hash>`) instead of embedding it.
        let sha = str_at(status, "/commit/hash")
            .or_else(|| {
                str_at(status, "/links/commit/href")
                    .and_then(|href| href.rsplit('/').next())
                    .filter(|hash| !hash.is_empty())
            })
            .ok_or_else(|| self.missing("/commit_status/commit/hash"))?;
        let context = self.need_str("/commit_status/key")?;
        let check_status = match self.need_str("/commit_status/state")? {
            "SUCCESSFUL" => CheckStatus::Passed,
            "FAILED" | "STOPPED" => CheckStatus::Failed,
            // INPROGRESS, and any state newer than this code: not a result yet.
            _ => CheckStatus::Pending,
        };
        let name = str_at(status, "/name")
            .filter(|n| !n.is_empty())
            .unwrap_or(context);
        let effect = self.changeset(
            Target::HeadSha(sha.to_owned()),
            status
                .get("updated_on")
                .or_else(|| status.get("created_on"))
                .and_then(parse_time),
            "check",
            check_summary(name, check_status, sha),
            // A status is Bitbucket's (commit, key): its entry follows it from in progress to
            // done.
            format!("{context} {sha}"),
            ChangesetSnapshot::default(),
        )?;
        Ok(Effect::Changeset(ChangesetEffect {
            check: Some(CheckResult {
                context: context.to_owned(),
                sha: sha.to_owned(),
                status: check_status,
            }),
            ..effect
        }))
    }

    /// A `repo:push`: each changed branch or tag, with its old and new commit (empty for a ref
    /// that was created or deleted, whose `old` or `new` is null).
    fn push(&self) -> Result<Effect, EffectError> {
        let repository = self.repository()?;
        let changes = self.need_array("/push/changes")?;
        let refs = changes
            .iter()
            .enumerate()
            .map(|(i, change)| {
                let side = ["/new", "/old"]
                    .iter()
                    .filter_map(|s| change.pointer(s))
                    .find(|s| s.is_object())
                    .ok_or_else(|| {
                        EffectError::new(
                            self.event,
                            format!("push.changes[{i}] has neither new nor old"),
                        )
                    })?;
                let name = str_at(side, "/name").ok_or_else(|| {
                    EffectError::new(self.event, format!("push.changes[{i}] names no ref"))
                })?;
                let prefix = match str_at(side, "/type") {
                    Some("tag" | "annotated_tag") => "refs/tags/",
                    // `branch`, and Mercurial's `named_branch` and `bookmark` of old.
                    _ => "refs/heads/",
                };
                Ok(RefUpdate {
                    name: format!("{prefix}{name}"),
                    old_sha: string_at(change, "/old/target/hash").unwrap_or_default(),
                    new_sha: string_at(change, "/new/target/hash").unwrap_or_default(),
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

/// What a pull request says about itself. Bitbucket Cloud has no labels; its hashes are the
/// 12-character short form.
fn snapshot(pr: &Value) -> ChangesetSnapshot {
    let draft = pr.get("draft").and_then(Value::as_bool) == Some(true);
    ChangesetSnapshot {
        title: string_at(pr, "/title"),
        url: string_at(pr, "/links/html/href"),
        author: user_name(pr.get("author")).map(str::to_owned),
        state: match str_at(pr, "/state") {
            Some("OPEN") if draft => Some(ChangesetState::Draft),
            Some("OPEN") => Some(ChangesetState::Open),
            Some("MERGED") => Some(ChangesetState::Merged),
            Some("DECLINED" | "SUPERSEDED") => Some(ChangesetState::Closed),
            _ => None,
        },
        head_ref: string_at(pr, "/source/branch/name"),
        base_ref: string_at(pr, "/destination/branch/name"),
        head_sha: string_at(pr, "/source/commit/hash"),
        labels: None,
        host_update_time: pr.get("updated_on").and_then(parse_time),
        in_merge_queue: None,
        auto_merge: None,
    }
}

/// A user's handle: `nickname`, else the older `username`, else `display_name`.
fn user_name(user: Option<&Value>) -> Option<&str> {
    let user = user?;
    ["/nickname", "/username", "/display_name"]
        .iter()
        .find_map(|pointer| str_at(user, pointer).filter(|s| !s.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hosts::testing::{
        FixtureCase, assert_every_fixture, assert_test_delivery_round_trips, fixture, headers,
        test_delivery_headers,
    };
    use crate::hosts::{Host, classify, sign_hmac_sha256_hex, verify};
    use Disposition::Handled;

    #[rustfmt::skip]
    const CASES: &[FixtureCase] = &[
        ("pullrequest_approved.json", "pullrequest:approved", "pullrequest:approved", Handled),
        ("pullrequest_comment_created.json", "pullrequest:comment_created", "pullrequest:comment_created", Handled),
        ("pullrequest_created.json", "pullrequest:created", "pullrequest:created", Handled),
        ("pullrequest_fulfilled.json", "pullrequest:fulfilled", "pullrequest:fulfilled", Handled),
        ("pullrequest_rejected.json", "pullrequest:rejected", "pullrequest:rejected", Handled),
        ("pullrequest_updated.json", "pullrequest:updated", "pullrequest:updated", Handled),
        ("repo_commit_status_created.json", "repo:commit_status_created", "repo:commit_status_created", Handled),
        ("repo_commit_status_updated.json", "repo:commit_status_updated", "repo:commit_status_updated", Handled),
        ("repo_push.json", "repo:push", "repo:push", Handled),
        ("repo_push.signed.json", "repo:push", "repo:push", Handled),
    ];

    const SECRET: &str = "bbc-secret";

    #[test]
    fn every_bitbucket_cloud_fixture_is_named_keyed_and_verified() {
        assert_every_fixture(Host::BitbucketCloud, "bitbucket-cloud", CASES);
    }

    #[test]
    fn a_bare_hex_signature_is_malformed_on_bitbucket_cloud() {
        let body = fixture("bitbucket-cloud/repo_push.json");
        let h = headers(&[
            ("X-Event-Key", "repo:push"),
            ("X-Hub-Signature", &sign_hmac_sha256_hex(SECRET, &body)),
        ]);
        let e = verify(Host::BitbucketCloud, &h, &body, &[SECRET]).expect_err("no prefix");
        assert_eq!(
            e.to_string(),
            "malformed X-Hub-Signature: expected sha256=<64 hex digits>"
        );
    }

    #[test]
    fn an_unsigned_delivery_is_refused() {
        let body = fixture("bitbucket-cloud/pullrequest_created.json");
        let h = headers(&[("X-Event-Key", "pullrequest:created")]);
        let e = verify(Host::BitbucketCloud, &h, &body, &[SECRET]).expect_err("unsigned");
        assert_eq!(e.to_string(), "missing X-Hub-Signature");
    }

    #[test]
    fn the_previous_secret_is_accepted_during_a_rotation_overlap() {
        let body = fixture("bitbucket-cloud/repo_push.json");
        let sig = format!("sha256={}", sign_hmac_sha256_hex("old", &body));
        let h = headers(&[("X-Hub-Signature", &sig)]);
        assert_eq!(
            verify(Host::BitbucketCloud, &h, &body, &["new", "old"]),
            Ok(Verified::Signed)
        );
    }

    #[test]
    fn other_events_are_ignored_and_a_missing_event_header_is_refused() {
        let h = headers(&[("X-Event-Key", "repo:fork"), ("X-Request-UUID", "u-1")]);
        let classified = classify(Host::BitbucketCloud, &h, b"{}").expect("it classifies");
        assert_eq!(classified.event, "repo:fork");
        assert_eq!(classified.disposition, Disposition::Ignored);
        let e = classify(Host::BitbucketCloud, &headers(&[]), b"{}").expect_err("no event");
        assert_eq!(e.to_string(), "missing X-Event-Key header");
    }

    #[test]
    fn a_body_that_is_not_json_is_a_bad_body() {
        let h = headers(&[("X-Event-Key", "repo:push")]);
        let e = classify(Host::BitbucketCloud, &h, b"push!").expect_err("not JSON");
        assert!(matches!(e, ClassifyError::BadBody(_)));
    }

    #[test]
    fn the_test_delivery_is_a_signed_empty_push_that_round_trips() {
        assert_test_delivery_round_trips(Host::BitbucketCloud, "repo:push", Handled);
        let delivery = test_delivery("s", "k");
        let classified = classify(
            Host::BitbucketCloud,
            &test_delivery_headers(&delivery),
            &delivery.body,
        )
        .expect("it classifies");
        assert_eq!(classified.payload["push"]["changes"], json!([]));
    }
}

#[cfg(test)]
mod effect_tests {
    use super::*;
    use crate::hosts::testing::fixture;

    /// The parsed body of `tests/fixtures/bitbucket-cloud/<file>`.
    fn body(file: &str) -> Value {
        serde_json::from_slice(&fixture(&format!("bitbucket-cloud/{file}")))
            .expect("a fixture is JSON")
    }

    /// The one changeset effect of `event` with `payload`.
    fn changeset(event: &str, payload: &Value) -> ChangesetEffect {
        match effects(event, payload).expect("it parses").as_slice() {
            [Effect::Changeset(c)] => c.clone(),
            other => panic!("{event}: expected one changeset effect, got {other:?}"),
        }
    }

    /// A repository as webhook bodies name it: no clone links, so the made ones.
    fn repo(full_name: &str, uuid: &str) -> RepositoryRef {
        RepositoryRef {
            name: full_name.to_owned(),
            external_id: uuid.to_owned(),
            url: format!("https://bitbucket.org/{full_name}"),
            clone_urls: vec![
                format!("https://bitbucket.org/{full_name}.git"),
                format!("git@bitbucket.org:{full_name}.git"),
            ],
        }
    }

    fn test_repos() -> RepositoryRef {
        repo(
            "amuniz/test-repos",
            "{f991126e-6825-40ea-a1c2-e72c336ae41e}",
        )
    }

    /// Pull request 735 of amuniz/test-repos ("BUILD test", feature/test at d31df3425c5b).
    fn build_test(state: ChangesetState, updated_on: Timestamp) -> ChangesetSnapshot {
        ChangesetSnapshot {
            title: Some("BUILD test".to_owned()),
            url: Some("https://bitbucket.org/amuniz/test-repos/pull-requests/735".to_owned()),
            author: Some("Nikolas Falco".to_owned()),
            state: Some(state),
            head_ref: Some("feature/test".to_owned()),
            base_ref: Some("master".to_owned()),
            head_sha: Some("d31df3425c5b".to_owned()),
            labels: None,
            host_update_time: Some(updated_on),
            in_merge_queue: None,
            auto_merge: None,
        }
    }

    #[test]
    fn pullrequest_created_is_an_opened_changeset_at_its_update_time() {
        assert_eq!(
            changeset("pullrequest:created", &body("pullrequest_created.json")),
            ChangesetEffect {
                repository: test_repos(),
                target: Target::Number(735),
                occur_time: Some(Timestamp::from_micros(1_731_157_377_098_060)), // 2024-11-09T13:02:57.098060+00:00
                kind: "opened".to_owned(),
                actor: "Nikolas Falco".to_owned(),
                summary: "Nikolas Falco opened #735 \"BUILD test\"".to_owned(),
                external_id: String::new(),
                snapshot: build_test(
                    ChangesetState::Open,
                    Timestamp::from_micros(1_731_157_377_098_060)
                ),
                review: None,
                check: None,
            }
        );
    }

    #[test]
    fn pullrequest_rejected_closes_the_changeset() {
        assert_eq!(
            changeset("pullrequest:rejected", &body("pullrequest_rejected.json")),
            ChangesetEffect {
                repository: test_repos(),
                target: Target::Number(735),
                occur_time: Some(Timestamp::from_micros(1_731_158_073_659_528)), // 2024-11-09T13:14:33.659528+00:00
                kind: "closed".to_owned(),
                actor: "Nikolas Falco".to_owned(),
                summary: "Nikolas Falco declined #735 \"BUILD test\"".to_owned(),
                external_id: String::new(),
                snapshot: build_test(
                    ChangesetState::Closed,
                    Timestamp::from_micros(1_731_158_073_659_528)
                ),
                review: None,
                check: None,
            }
        );
    }

    #[test]
    fn pullrequest_updated_is_an_edit_of_a_pull_request_that_is_not_a_draft() {
        assert_eq!(
            changeset("pullrequest:updated", &body("pullrequest_updated.json")),
            ChangesetEffect {
                repository: repo(
                    "nfalco79/test-repos",
                    "{3deb8c29-778a-450c-8f69-3e50a18079df}"
                ),
                target: Target::Number(1),
                occur_time: Some(Timestamp::from_micros(1_785_375_349_207_341)), // 2026-07-30T01:35:49.207341+00:00
                kind: "edited".to_owned(),
                actor: "Nikolas Falco".to_owned(),
                summary: "Nikolas Falco updated #1 \"Release/release 1\"".to_owned(),
                external_id: String::new(),
                snapshot: ChangesetSnapshot {
                    title: Some("Release/release 1".to_owned()),
                    url: Some(
                        "https://bitbucket.org/nfalco79/test-repos/pull-requests/1".to_owned()
                    ),
                    author: Some("Former user".to_owned()),
                    state: Some(ChangesetState::Open),
                    head_ref: Some("release/release-1".to_owned()),
                    base_ref: Some("master".to_owned()),
                    head_sha: Some("f945c96c71d0".to_owned()),
                    labels: None,
                    host_update_time: Some(Timestamp::from_micros(1_785_375_349_207_341)),
                    in_merge_queue: None,
                    auto_merge: None,
                },
                review: None,
                check: None,
            }
        );
    }

    #[test]
    fn pullrequest_fulfilled_is_merged_by_the_actors_username() {
        assert_eq!(
            changeset("pullrequest:fulfilled", &body("pullrequest_fulfilled.json")),
            ChangesetEffect {
                repository: repo("cloudbeers/temp", "{708c9715-0ecc-4a5d-87ed-63c4ba48ea06}"),
                target: Target::Number(2),
                occur_time: Some(Timestamp::from_micros(1_488_796_919_551_194)), // 2017-03-06T10:41:59.551194+00:00
                kind: "merged".to_owned(),
                actor: "stephenc".to_owned(),
                summary: "stephenc merged #2 \"README.md edited online with Bitbucket\"".to_owned(),
                external_id: String::new(),
                snapshot: ChangesetSnapshot {
                    title: Some("README.md edited online with Bitbucket".to_owned()),
                    url: Some("https://bitbucket.org/cloudbeers/temp/pull-requests/2".to_owned()),
                    author: Some("Stephen Connolly".to_owned()),
                    state: Some(ChangesetState::Merged),
                    head_ref: Some("foo".to_owned()),
                    base_ref: Some("main".to_owned()),
                    head_sha: Some("a72355f35fde".to_owned()),
                    labels: None,
                    host_update_time: Some(Timestamp::from_micros(1_488_796_919_551_194)),
                    in_merge_queue: None,
                    auto_merge: None,
                },
                review: None,
                check: None,
            }
        );
    }

    /// Pull request 198 of some-repo-namespace/some-repo, as pullrequest_approved.json states it.
    fn pram() -> ChangesetSnapshot {
        ChangesetSnapshot {
            title: Some("I have to push the pram a lot X.".to_owned()),
            url: Some(
                "https://bitbucket.org/some-repo-namespace/some-repo/pullrequests/198".to_owned(),
            ),
            author: Some("me-nickname".to_owned()),
            state: Some(ChangesetState::Open),
            head_ref: Some("feature/do-not-merge".to_owned()),
            base_ref: Some("develop".to_owned()),
            head_sha: Some("123db174babc".to_owned()),
            labels: None,
            host_update_time: Some(Timestamp::from_micros(1_581_352_117_177_914)),
            in_merge_queue: None,
            auto_merge: None,
        }
    }

    #[test]
    fn pullrequest_approved_is_an_approval_at_the_approvals_date() {
        let mut payload = body("pullrequest_approved.json");
        // The fixture's approval date equals the pull request's update time: move it, so the
        // test tells which one is read.
        payload["approval"]["date"] = json!("2020-02-10T16:30:00+00:00");
        assert_eq!(
            changeset("pullrequest:approved", &payload),
            ChangesetEffect {
                repository: repo(
                    "some-repo-namespace/some-repo",
                    "{2c2g914f-14eg-47a3-d35e-dc334cae1db1}"
                ),
                target: Target::Number(198),
                occur_time: Some(Timestamp::from_micros(1_581_352_200_000_000)), // 2020-02-10T16:30:00Z
                kind: "approved".to_owned(),
                actor: "me-nickname".to_owned(),
                summary: "me-nickname approved #198".to_owned(),
                external_id: "me-nickname 1581352200000000".to_owned(),
                snapshot: pram(),
                review: Some(ReviewVote {
                    reviewer: "me-nickname".to_owned(),
                    vote: Vote::Approved,
                }),
                check: None,
            }
        );
        assert_eq!(
            changeset("pullrequest:approved", &body("pullrequest_approved.json")).occur_time,
            Some(Timestamp::from_micros(1_581_352_117_177_914)) // 2020-02-10T16:28:37.177914+00:00
        );
    }

    #[test]
    fn unapproval_and_changes_requests_are_votes_of_their_user() {
        let approved = body("pullrequest_approved.json");
        let mut as_other = approved.clone();
        as_other["approval"]["user"] = json!({"display_name": "Alice A.", "type": "user"});
        let unapproved = changeset("pullrequest:unapproved", &as_other);
        assert_eq!(unapproved.kind, "unapproved");
        assert_eq!(
            unapproved.summary,
            "Alice A. withdrew their approval of #198"
        );
        assert_eq!(
            unapproved.review,
            Some(ReviewVote {
                reviewer: "Alice A.".to_owned(),
                vote: Vote::Withdrawn
            })
        );

        let mut changes = approved.clone();
        let object = changes.as_object_mut().expect("an object");
        let mut request = object.remove("approval").expect("an approval");
        request["date"] = json!("2020-02-11T08:00:00+00:00");
        object.insert("changes_request".to_owned(), request);
        let created = changeset("pullrequest:changes_request_created", &changes);
        assert_eq!(created.kind, "changes_requested");
        assert_eq!(created.summary, "me-nickname requested changes on #198");
        assert_eq!(
            created.occur_time,
            Some(Timestamp::from_micros(1_581_408_000_000_000))
        );
        assert_eq!(
            created.review,
            Some(ReviewVote {
                reviewer: "me-nickname".to_owned(),
                vote: Vote::ChangesRequested
            })
        );
        let removed = changeset("pullrequest:changes_request_removed", &changes);
        assert_eq!(removed.kind, "changes_request_removed");
        assert_eq!(removed.review.map(|r| r.vote), Some(Vote::Withdrawn));
    }

    #[test]
    fn a_vote_without_its_user_is_an_error() {
        let mut payload = body("pullrequest_approved.json");
        payload["approval"]
            .as_object_mut()
            .expect("an object")
            .remove("user");
        let e = effects("pullrequest:approved", &payload).expect_err("no user");
        assert_eq!(
            e.to_string(),
            "pullrequest:approved payload: missing approval.user"
        );
    }

    #[test]
    fn pullrequest_comment_created_is_a_comment_at_the_comments_time() {
        let expected = ChangesetEffect {
            repository: repo(
                "rutvijmehta-harness/spring-cloud-alibaba",
                "{4402cbae-7790-453a-b29e-5fcab61a84df}",
            ),
            target: Target::Number(1),
            occur_time: Some(Timestamp::from_micros(1_656_022_209_939_978)), // 2022-06-23T22:10:09.939978+00:00
            kind: "comment".to_owned(),
            actor: "Rutvij Mehta".to_owned(),
            summary: "Rutvij Mehta commented on #1".to_owned(),
            external_id: "311512047".to_owned(),
            snapshot: ChangesetSnapshot {
                title: Some("Update pom.xml".to_owned()),
                url: Some(
                    "https://bitbucket.org/rutvijmehta-harness/spring-cloud-alibaba/pull-requests/1"
                        .to_owned(),
                ),
                author: Some("Rutvij Mehta".to_owned()),
                state: Some(ChangesetState::Open),
                head_ref: Some("tiwhitepaper-rutvij".to_owned()),
                base_ref: Some("2021.x".to_owned()),
                head_sha: Some("b9437f32dddd".to_owned()),
                labels: None,
                host_update_time: Some(Timestamp::from_micros(1_656_022_209_939_978)), in_merge_queue: None, auto_merge: None,
            },
            review: None,
            check: None,
        };
        let payload = body("pullrequest_comment_created.json");
        assert_eq!(changeset("pullrequest:comment_created", &payload), expected);

        // Without its update time, the comment's creation time (not the pull request's).
        let mut created_only = payload.clone();
        created_only["comment"]
            .as_object_mut()
            .expect("an object")
            .remove("updated_on");
        assert_eq!(
            changeset("pullrequest:comment_created", &created_only).occur_time,
            Some(Timestamp::from_micros(1_656_022_209_939_925)) // 2022-06-23T22:10:09.939925+00:00
        );
        let edited = changeset("pullrequest:comment_updated", &payload);
        assert_eq!(edited.kind, "comment");
        assert_eq!(edited.summary, "Rutvij Mehta edited a comment on #1");
    }

    #[test]
    fn a_draft_is_a_draft_and_a_superseded_pull_request_is_closed() {
        let mut payload = body("pullrequest_updated.json");
        payload["pullrequest"]["draft"] = json!(true);
        assert_eq!(
            changeset("pullrequest:updated", &payload).snapshot.state,
            Some(ChangesetState::Draft)
        );
        payload["pullrequest"]["state"] = json!("SUPERSEDED");
        let superseded = changeset("pullrequest:superseded", &payload);
        assert_eq!(superseded.kind, "closed");
        assert_eq!(superseded.snapshot.state, Some(ChangesetState::Closed));
    }

    #[test]
    fn a_pull_request_event_missing_its_id_or_repository_is_an_error_naming_it() {
        let mut payload = body("pullrequest_created.json");
        payload["pullrequest"]
            .as_object_mut()
            .expect("an object")
            .remove("id");
        let e = effects("pullrequest:created", &payload).expect_err("no id");
        assert_eq!(
            e.to_string(),
            "pullrequest:created payload: missing pullrequest.id"
        );

        let mut payload = body("pullrequest_created.json");
        payload
            .as_object_mut()
            .expect("an object")
            .remove("repository");
        let e = effects("pullrequest:created", &payload).expect_err("no repository");
        assert_eq!(e.message, "missing repository");

        let mut payload = body("pullrequest_created.json");
        let repository = payload["repository"].as_object_mut().expect("an object");
        repository.remove("full_name");
        let uuid = repository["uuid"].as_str().expect("a uuid").to_owned();
        let named_by_id = changeset("pullrequest:created", &payload).repository;
        assert_eq!(named_by_id.name, "", "known by its uuid alone");
        assert_eq!(named_by_id.external_id, uuid);
        assert!(named_by_id.clone_urls.is_empty(), "{named_by_id:?}");
        payload["repository"]
            .as_object_mut()
            .expect("an object")
            .remove("uuid");
        let e = effects("pullrequest:created", &payload).expect_err("no name and no uuid");
        assert_eq!(
            e.message,
            "missing repository.full_name, and the repository's id too"
        );
    }

    #[test]
    fn commit_statuses_are_checks_on_the_head_sha() {
        let check = |status, time, summary: &str| ChangesetEffect {
            repository: repo(
                "automationtestharness/testrepo",
                "{2b922c6d-3824-4e91-a7be-90c8b8392f84}",
            ),
            target: Target::HeadSha("bdf6fac0519ffd1562461eb82e018ff62efffbc9".to_owned()),
            occur_time: Some(time),
            kind: "check".to_owned(),
            actor: "automationtestharness".to_owned(),
            summary: summary.to_owned(),
            external_id: "3343801 bdf6fac0519ffd1562461eb82e018ff62efffbc9".to_owned(),
            snapshot: ChangesetSnapshot::default(),
            review: None,
            check: Some(CheckResult {
                context: "3343801".to_owned(),
                sha: "bdf6fac0519ffd1562461eb82e018ff62efffbc9".to_owned(),
                status,
            }),
        };
        assert_eq!(
            changeset(
                "repo:commit_status_created",
                &body("repo_commit_status_created.json")
            ),
            check(
                CheckStatus::Pending,
                Timestamp::from_micros(1_742_806_136_572_450), // 2025-03-24T08:48:56.572450+00:00
                "Pipeline #4 for main is pending on bdf6fac"
            )
        );
        assert_eq!(
            changeset(
                "repo:commit_status_updated",
                &body("repo_commit_status_updated.json")
            ),
            check(
                CheckStatus::Passed,
                Timestamp::from_micros(1_742_806_182_838_984), // 2025-03-24T08:49:42.838984+00:00
                "Pipeline #4 for main passed on bdf6fac"
            )
        );
    }

    #[test]
    fn failed_and_stopped_builds_fail() {
        for state in ["FAILED", "STOPPED"] {
            let mut payload = body("repo_commit_status_updated.json");
            payload["commit_status"]["state"] = json!(state);
            let effect = changeset("repo:commit_status_updated", &payload);
            assert_eq!(
                effect.check.map(|c| c.status),
                Some(CheckStatus::Failed),
                "{state}"
            );
            assert_eq!(effect.summary, "Pipeline #4 for main failed on bdf6fac");
        }
    }

    #[test]
    fn a_commit_status_names_its_commit_or_links_it_or_is_an_error() {
        let mut payload = body("repo_commit_status_updated.json");
        let status = payload["commit_status"].as_object_mut().expect("an object");
        status.remove("commit");
        // Older bodies only link the commit.
        assert_eq!(
            changeset("repo:commit_status_updated", &payload).target,
            Target::HeadSha("bdf6fac0519ffd1562461eb82e018ff62efffbc9".to_owned())
        );
        payload["commit_status"]
            .as_object_mut()
            .expect("an object")
            .remove("links");
        let e = effects("repo:commit_status_updated", &payload).expect_err("no commit");
        assert_eq!(
            e.to_string(),
            "repo:commit_status_updated payload: missing commit_status.commit.hash"
        );
    }

    #[test]
    fn repo_push_is_a_push_of_each_changed_ref() {
        assert_eq!(
            effects("repo:push", &body("repo_push.json")).expect("parses"),
            vec![Effect::Push(PushEffect {
                repository: repo("cloudbeers/temp", "{708c9715-0ecc-4a5d-87ed-63c4ba48ea06}"),
                refs: vec![RefUpdate {
                    name: "refs/heads/main".to_owned(),
                    old_sha: "501bf5b99365d1d870882254b9360c17172bda0e".to_owned(),
                    new_sha: "e42fac24456e4a56f1b7f9358afc3070e3b7ddec".to_owned(),
                }],
                actor: "stephenc".to_owned(),
            })]
        );
        assert_eq!(
            effects("repo:push", &body("repo_push.signed.json")).expect("parses"),
            vec![Effect::Push(PushEffect {
                repository: repo(
                    "nfalco79/test-repos",
                    "{3deb8c29-778a-450c-8f69-3e50a18079df}"
                ),
                refs: vec![RefUpdate {
                    name: "refs/heads/feature/webhook".to_owned(),
                    old_sha: String::new(),
                    new_sha: "d7f300a32270053bdfd97a6d64113f58202c33e7".to_owned(),
                }],
                actor: "Nikolas Falco".to_owned(),
            })]
        );
    }

    #[test]
    fn a_deleted_tag_is_named_from_its_old_side_with_an_empty_new_sha() {
        let mut payload = body("repo_push.json");
        let change = &mut payload["push"]["changes"][0];
        change["new"] = Value::Null;
        change["old"]["type"] = json!("tag");
        change["old"]["name"] = json!("v1.0");
        let Effect::Push(push) = &effects("repo:push", &payload).expect("parses")[0] else {
            panic!("a push");
        };
        assert_eq!(
            push.refs,
            vec![RefUpdate {
                name: "refs/tags/v1.0".to_owned(),
                old_sha: "501bf5b99365d1d870882254b9360c17172bda0e".to_owned(),
                new_sha: String::new(),
            }]
        );
    }

    #[test]
    fn a_push_without_changes_is_an_error_and_the_test_delivery_pushes_nothing() {
        let mut payload = body("repo_push.json");
        payload["push"]
            .as_object_mut()
            .expect("an object")
            .remove("changes");
        let e = effects("repo:push", &payload).expect_err("no changes");
        assert_eq!(e.to_string(), "repo:push payload: missing push.changes");

        let delivery = test_delivery("s", "k");
        let payload: Value = serde_json::from_slice(&delivery.body).expect("JSON");
        assert_eq!(
            effects("repo:push", &payload).expect("parses"),
            vec![Effect::Push(PushEffect {
                repository: RepositoryRef {
                    name: "hookgate/test-delivery".to_owned(),
                    external_id: "{00000000-0000-0000-0000-000000000000}".to_owned(),
                    url: "https://bitbucket.invalid/hookgate/test-delivery".to_owned(),
                    clone_urls: vec![
                        "https://bitbucket.org/hookgate/test-delivery.git".to_owned(),
                        "git@bitbucket.org:hookgate/test-delivery.git".to_owned(),
                    ],
                },
                refs: vec![],
                actor: "hookgate".to_owned(),
            })]
        );
    }

    #[test]
    fn listed_clone_links_are_used_as_listed() {
        let mut payload = body("repo_push.json");
        payload["repository"]["links"]["clone"] = json!([
            {"name": "https", "href": "https://bitbucket.org/cloudbeers/temp.git"},
            {"name": "ssh", "href": "git@bitbucket.org:cloudbeers/temp.git"}
        ]);
        let Effect::Push(push) = &effects("repo:push", &payload).expect("parses")[0] else {
            panic!("a push");
        };
        assert_eq!(
            push.repository.clone_urls,
            vec![
                "https://bitbucket.org/cloudbeers/temp.git".to_owned(),
                "git@bitbucket.org:cloudbeers/temp.git".to_owned(),
            ]
        );
    }
}
