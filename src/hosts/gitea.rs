//! Gitea and Forgejo: deliveries signed with `X-Gitea-Signature: <hex HMAC-SHA256 of the body>`
//! (no prefix; Forgejo also sends it as `X-Forgejo-Signature`), named by `X-Gitea-Event-Type`
//! (the exact hook type, `pull_request_review_approved`, not the coarse `X-Gitea-Event`) plus the
//! body's `action`, keyed by `X-Gitea-Delivery` (or `X-Forgejo-Delivery`). Gitea also sends
//! GitHub-compatible headers (`X-GitHub-Event`, `X-Hub-Signature-256`, ...) carrying Gitea's
//! event names: they are never read here, so a Gitea receiver takes only what Gitea signs as
//! Gitea. The bodies are GitHub-like, so the pull request is read with GitHub's reader; what
//! differs (reviews named by the event type, comments on the issue payload, `create` / `delete`
//! of refs by their short name, no ping) is here.

use http::HeaderMap;
use serde_json::{Value, json};

use super::effects::{
    self, ChangesetEffect, ChangesetSnapshot, ChangesetState, Effect, EffectError, HostEvent,
    PushEffect, RefUpdate, RepositoryRef, ReviewVote, Target, Vote, ending, id_text, parse_time,
    short_sha, str_at,
};
use super::github::{
    issue_snapshot_merged, merged_from_time, pull_request_snapshot, repository_of,
};
use super::signature::{self, Algorithm, Prefix};
use super::{
    Classified, ClassifyError, Disposition, Payload, TestDelivery, Verified, VerifyError,
    delivery_key, header_text, with_action,
};

/// Where Gitea puts the signature; Forgejo sends the same digest here and in [`SIGNATURE_FORGEJO`].
const SIGNATURE: &str = "X-Gitea-Signature";
const SIGNATURE_FORGEJO: &str = "X-Forgejo-Signature";
/// The exact hook type; Forgejo sends the same value under both names.
const EVENT: &str = "X-Gitea-Event-Type";
const EVENT_FORGEJO: &str = "X-Forgejo-Event-Type";
/// The coarse event (`pull_request_approved`), sent for older receivers; read only for the test.
const EVENT_COARSE: &str = "X-Gitea-Event";
const DELIVERY: &str = "X-Gitea-Delivery";
const DELIVERY_FORGEJO: &str = "X-Forgejo-Delivery";
/// Where this host names the event and the delivery key.
pub(super) const HEADERS: super::HeaderNames = super::HeaderNames {
    event: EVENT,
    keys: &[DELIVERY, DELIVERY_FORGEJO],
};
/// How a well-formed signature looks.
const SIGNATURE_EXPECTED: &str = "<64 hex digits>";
/// A ref id that is no commit: a created ref's old id, a deleted ref's new one.
const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

/// Hook types (`X-Gitea-Event-Type`) a handler takes: batch-change sync (pull requests, their
/// assignment, labels and milestone, their branch moving, review requests, reviews, comments)
/// and push sync (`push`, and `create` / `delete` of a ref). `issue_comment` is taken whole;
/// whether the issue is a pull request is the handler's question.
const HANDLED: &[&str] = &[
    "pull_request",
    "pull_request_assign",
    "pull_request_label",
    "pull_request_milestone",
    "pull_request_sync",
    "pull_request_review_request",
    "pull_request_review_approved",
    "pull_request_review_rejected",
    "pull_request_review_comment",
    "pull_request_comment",
    "issue_comment",
    "push",
    "create",
    "delete",
];

pub(super) fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[&str],
) -> Result<Verified, VerifyError> {
    // Gitea's header alone decides when it is present (Forgejo sends both, with one value);
    // Forgejo's is read only without it. An empty header is what Gitea sends for a hook that
    // has no secret: it counts as missing.
    let header = [SIGNATURE, SIGNATURE_FORGEJO]
        .into_iter()
        .find(|name| headers.contains_key(*name) && header_text(headers, name).is_some())
        .ok_or(VerifyError::Missing { header: SIGNATURE })?;
    let malformed = VerifyError::Malformed {
        header,
        expected: SIGNATURE_EXPECTED,
    };
    // Gitea writes bare hex digits; a prefixed value is not what it sends.
    if header_text(headers, header).is_some_and(|v| v.contains('=')) {
        return Err(malformed);
    }
    let signature = signature::read_signature(headers, header, Algorithm::Sha256, Prefix::Optional)
        .map_err(|_| malformed.clone())?
        .ok_or(malformed)?;
    signature::check_hmac(&signature, body, secrets)?;
    Ok(Verified::Signed)
}

pub(super) fn classify<P: Payload>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Classified<P>, ClassifyError> {
    let event = header_text(headers, EVENT)
        .or_else(|| header_text(headers, EVENT_FORGEJO))
        .ok_or(ClassifyError::MissingEventHeader(EVENT))?;
    let payload = P::parse(event, body)?;
    let disposition = match event {
        e if HANDLED.contains(&e) => Disposition::Handled,
        _ => Disposition::Ignored,
    };
    Ok(Classified {
        event: with_action(event, payload.action()),
        delivery_key: delivery_key(headers, HEADERS.keys),
        disposition,
        payload,
    })
}

/// What Gitea's *Test Delivery* button sends: a `push` of the default branch whose `before`
/// equals `after` (the branch's latest commit; here, as in an empty repository, the all-zero id
/// with the message `This is a fake commit`), with Gitea's headers and the GitHub-compatible
/// copies it sends alongside.
pub(super) fn test_delivery(secret: &str, key: &str) -> TestDelivery {
    let body = serde_json::to_vec_pretty(&json!({
        "ref": "refs/heads/main",
        "before": ZERO_SHA,
        "after": ZERO_SHA,
        "compare_url": "",
        "commits": [{
            "id": ZERO_SHA,
            "message": "This is a fake commit",
            "url": "",
            "author": { "name": "hookgate", "email": "hookgate@localhost", "username": "hookgate" },
            "committer": { "name": "hookgate", "email": "hookgate@localhost", "username": "hookgate" },
            "timestamp": "0001-01-01T00:00:00Z"
        }],
        "total_commits": 1,
        "repository": { "id": 0, "name": "test", "full_name": "hookgate/test" },
        "pusher": { "id": 0, "login": "hookgate", "username": "hookgate" },
        "sender": { "id": 0, "login": "hookgate", "username": "hookgate" }
    }))
    .expect("a serde_json::Value always serialises");
    let digest = signature::sign_hex(Algorithm::Sha256, secret, &body);
    TestDelivery {
        headers: vec![
            (
                "User-Agent",
                "Go-http-client/1.1 (hookgate-test)".to_owned(),
            ),
            (EVENT_COARSE, "push".to_owned()),
            (EVENT, "push".to_owned()),
            (DELIVERY, key.to_owned()),
            (SIGNATURE, digest.clone()),
            ("X-GitHub-Event", "push".to_owned()),
            ("X-GitHub-Event-Type", "push".to_owned()),
            ("X-GitHub-Delivery", key.to_owned()),
            ("X-Hub-Signature-256", format!("sha256={digest}")),
            (
                "X-Hub-Signature",
                signature::header_value(Algorithm::Sha1, secret, &body),
            ),
        ],
        body,
    }
}

/// The effects of a `Handled` event (see `super::effects`): pull request events, review requests,
/// reviews and comments on pull requests each give one changeset effect; `push`, `create` and
/// `delete` one push effect.
pub(super) fn effects(event: &str, payload: &Value) -> Result<Vec<Effect>, EffectError> {
    let name = event.split('/').next().unwrap_or(event);
    let action = str_at(payload, "/action").unwrap_or_default();
    let actor = str_at(payload, "/sender/login")
        .or_else(|| str_at(payload, "/sender/username"))
        .unwrap_or_default();
    let on = Event {
        event,
        payload,
        actor,
        host: Gitea { name, action },
    };
    match name {
        "pull_request"
        | "pull_request_assign"
        | "pull_request_label"
        | "pull_request_milestone"
        | "pull_request_sync"
        | "pull_request_review_request" => on.pull_request().map(|e| vec![e]),
        "pull_request_review_approved"
        | "pull_request_review_rejected"
        | "pull_request_review_comment" => on.review().map(|e| vec![e]),
        // A plain comment (an issue comment payload), or, from Gitea before 1.17, a review
        // with verdict "comment" under the same headers (a pull request payload, `reviewed`).
        "pull_request_comment" if payload.get("issue").is_none() => on.review().map(|e| vec![e]),
        "pull_request_comment" | "issue_comment" => {
            on.issue_comment().map(|e| e.into_iter().collect())
        }
        "push" => on.push().map(|e| vec![e]),
        "create" | "delete" => on.ref_created_or_deleted().map(|e| e.into_iter().collect()),
        _ => Ok(Vec::new()),
    }
}

/// What the Gitea module adds to an event being turned into effects.
struct Gitea<'p> {
    /// The hook type (`pull_request_review_approved`).
    name: &'p str,
    /// The body's `action`; empty for events that have none (`push`, `create`, `delete`).
    action: &'p str,
}

/// One Gitea event being turned into effects.
type Event<'p> = effects::Event<'p, Gitea<'p>>;

impl HostEvent for Gitea<'_> {
    /// The repository every Gitea event carries, by `full_name` and its numeric `id`.
    fn repository(event: &effects::Event<'_, Self>) -> Result<RepositoryRef, EffectError> {
        repository_of(event.payload, event.event)
    }
}

impl Event<'_> {
    /// A pull request event: the action is the timeline kind, except that a closed pull
    /// request that was merged is `merged` (Gitea has no action of its own for it).
    fn pull_request(&self) -> Result<Effect, EffectError> {
        let pr = self.need("/pull_request")?;
        let number = self.need_i64("/pull_request/number")?;
        let snapshot = pull_request_snapshot(pr);
        let kind = match self.host.action {
            "closed" if snapshot.state == Some(ChangesetState::Merged) => "merged",
            "" => return Err(self.missing("/action")),
            action => action,
        };
        let summary = self.pull_request_summary(kind, number, &snapshot);
        self.changeset(
            Target::Number(number),
            pr.get("updated_at").and_then(parse_time),
            kind,
            summary,
            String::new(),
            snapshot,
        )
        .map(Effect::Changeset)
    }

    /// `example opened #2 "update"`, worded for the action.
    fn pull_request_summary(&self, kind: &str, number: i64, pr: &ChangesetSnapshot) -> String {
        let who = self.who();
        let titled = match &pr.title {
            Some(title) => format!("#{number} \"{title}\""),
            None => format!("#{number}"),
        };
        let reviewer = || str_at(self.payload, "/requested_reviewer/login").unwrap_or("someone");
        match kind {
            "opened" | "closed" | "merged" | "reopened" | "edited" => {
                format!("{who} {kind} {titled}")
            }
            "synchronized" => match pr.head_sha.as_deref() {
                Some(sha) => format!("{who} pushed {} to #{number}", short_sha(sha)),
                None => format!("{who} pushed to #{number}"),
            },
            "review_requested" => {
                format!("{who} requested a review from {} on #{number}", reviewer())
            }
            "review_request_removed" => format!(
                "{who} removed the review request for {} on #{number}",
                reviewer()
            ),
            other => format!("{who} {} {titled}", other.replace('_', " ")),
        }
    }

    /// A review (`reviewed`): an approval or a rejection is a vote of its author, a review with
    /// verdict "comment" a timeline entry alone. Gitea names the verdict by the hook type (and
    /// in `review.type`); the review has no id and no time of its own, so the entry is timed by
    /// the pull request's `updated_at` and keyed by its time and summary.
    fn review(&self) -> Result<Effect, EffectError> {
        let pr = self.need("/pull_request")?;
        let number = self.need_i64("/pull_request/number")?;
        let vote = match self.host.name {
            "pull_request_review_approved" => Some(Vote::Approved),
            "pull_request_review_rejected" => Some(Vote::ChangesRequested),
            _ => None,
        };
        let review_vote = match vote {
            Some(_) if self.actor.is_empty() => return Err(self.missing("/sender/login")),
            Some(vote) => Some(ReviewVote {
                reviewer: self.actor.to_owned(),
                vote,
            }),
            None => None,
        };
        let who = self.who();
        let summary = match vote {
            Some(Vote::Approved) => format!("{who} approved #{number}"),
            Some(_) => format!("{who} requested changes on #{number}"),
            None => format!("{who} reviewed #{number}"),
        };
        let effect = self.changeset(
            Target::Number(number),
            pr.get("updated_at").and_then(parse_time),
            "review",
            summary,
            String::new(),
            pull_request_snapshot(pr),
        )?;
        Ok(Effect::Changeset(ChangesetEffect {
            review: review_vote,
            ..effect
        }))
    }

    /// A comment on an issue payload: on a pull request (`is_pull`, or the issue's
    /// `pull_request`) a comment entry keyed by the comment's id (`<id>/deleted` for its
    /// deletion); on a plain issue nothing.
    fn issue_comment(&self) -> Result<Option<Effect>, EffectError> {
        let issue = self.need("/issue")?;
        let on_pull_request = self.payload.get("is_pull").and_then(Value::as_bool) == Some(true)
            || issue.get("pull_request").is_some_and(Value::is_object);
        if !on_pull_request {
            return Ok(None);
        }
        let number = self.need_i64("/issue/number")?;
        let comment = self.need("/comment")?;
        let deleted = self.host.action == "deleted";
        let time = comment
            .get("updated_at")
            .and_then(parse_time)
            .or_else(|| comment.get("created_at").and_then(parse_time));
        let occur_time = match deleted {
            true => time.max(issue.get("updated_at").and_then(parse_time)),
            false => time,
        };
        let who = self.who();
        let summary = match self.host.action {
            "edited" => format!("{who} edited a comment on #{number}"),
            "deleted" => format!("{who} deleted a comment on #{number}"),
            _ => format!("{who} commented on #{number}"),
        };
        self.changeset(
            Target::Number(number),
            occur_time,
            "comment",
            summary,
            ending(
                id_text(self.payload.pointer("/comment/id")),
                deleted,
                "deleted",
            ),
            issue_snapshot(issue),
        )
        .map(|effect| Some(Effect::Changeset(effect)))
    }

    /// `push`: the one ref it changed (branch or tag, created, updated or deleted).
    fn push(&self) -> Result<Effect, EffectError> {
        let update = RefUpdate {
            name: self.need_str("/ref")?.to_owned(),
            old_sha: self.need_str("/before")?.to_owned(),
            new_sha: self.need_str("/after")?.to_owned(),
        };
        Ok(Effect::Push(PushEffect {
            repository: self.repository()?,
            refs: vec![update],
            actor: self.pusher().to_owned(),
        }))
    }

    /// `create` / `delete` of a branch or tag, named by its short name and `ref_type`: one ref
    /// update, created at the body's `sha` (an all-zero old id) or deleted (an all-zero new id;
    /// the body does not say where it was). Another `ref_type` gives nothing.
    fn ref_created_or_deleted(&self) -> Result<Option<Effect>, EffectError> {
        let prefix = match self.need_str("/ref_type")? {
            "branch" => "refs/heads/",
            "tag" => "refs/tags/",
            _ => return Ok(None),
        };
        let short = self.need_str("/ref")?;
        let name = match short.starts_with("refs/") {
            true => short.to_owned(),
            false => format!("{prefix}{short}"),
        };
        let (old_sha, new_sha) = match self.host.name {
            "create" => (ZERO_SHA.to_owned(), self.need_str("/sha")?.to_owned()),
            _ => (String::new(), ZERO_SHA.to_owned()),
        };
        Ok(Some(Effect::Push(PushEffect {
            repository: self.repository()?,
            refs: vec![RefUpdate {
                name,
                old_sha,
                new_sha,
            }],
            actor: self.pusher().to_owned(),
        })))
    }

    /// Who pushed: the sender, else the pusher.
    fn pusher(&self) -> &str {
        match self.actor {
            "" => str_at(self.payload, "/pusher/login")
                .or_else(|| str_at(self.payload, "/pusher/username"))
                .unwrap_or_default(),
            login => login,
        }
    }
}

/// What the issue of a comment on a pull request says about the changeset: no branches or
/// commits; whether it was merged when its `pull_request` says (`merged`, or `merged_at`).
fn issue_snapshot(issue: &Value) -> ChangesetSnapshot {
    let merged = match issue.pointer("/pull_request/merged") {
        Some(Value::Bool(merged)) => Some(*merged),
        _ => merged_from_time(issue.pointer("/pull_request/merged_at")),
    };
    issue_snapshot_merged(issue, merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hosts::testing::{
        FixtureCase, assert_every_fixture, assert_test_delivery_round_trips, fixture, fixtures_dir,
        headers, host_headers,
    };
    use crate::hosts::{Host, classify, sign_hmac_sha256_hex, verify};
    use Disposition::Handled;

    #[rustfmt::skip]
    const CASES: &[FixtureCase] = &[
        ("create.branch.json", "create", "create", Handled),
        ("delete.branch.json", "delete", "delete", Handled),
        ("issue_comment.created.json", "issue_comment", "issue_comment/created", Handled),
        ("pull_request.closed.json", "pull_request", "pull_request/closed", Handled),
        ("pull_request.closed.merged.json", "pull_request", "pull_request/closed", Handled),
        ("pull_request.edited.json", "pull_request", "pull_request/edited", Handled),
        ("pull_request.opened.json", "pull_request", "pull_request/opened", Handled),
        ("pull_request.reopened.forgejo-codeberg.json", "pull_request", "pull_request/reopened", Handled),
        ("pull_request_comment.created.json", "pull_request_comment", "pull_request_comment/created", Handled),
        ("pull_request_comment.reviewed.json", "pull_request_comment", "pull_request_comment/reviewed", Handled),
        ("pull_request_review_approved.reviewed.json", "pull_request_review_approved", "pull_request_review_approved/reviewed", Handled),
        ("pull_request_review_comment.reviewed.json", "pull_request_review_comment", "pull_request_review_comment/reviewed", Handled),
        ("pull_request_review_rejected.reviewed.json", "pull_request_review_rejected", "pull_request_review_rejected/reviewed", Handled),
        ("pull_request_review_request.review_requested.json", "pull_request_review_request", "pull_request_review_request/review_requested", Handled),
        ("pull_request_sync.synchronized.json", "pull_request_sync", "pull_request_sync/synchronized", Handled),
        ("push.branch-created-no-commits.json", "push", "push", Handled),
        ("push.branch-created.json", "push", "push", Handled),
        ("push.branch-updated.json", "push", "push", Handled),
    ];

    const SECRET: &str = "gitea-secret";

    #[test]
    fn every_gitea_fixture_is_named_keyed_and_verified() {
        assert_every_fixture(Host::Gitea, "gitea", CASES);
    }

    #[test]
    fn every_published_gitea_signature_vector_verifies_and_a_changed_body_does_not() {
        let text = std::fs::read(fixtures_dir().join("signature-vectors-gitea.json"))
            .expect("signature-vectors-gitea.json is in tests/fixtures");
        let vectors: Vec<Value> = serde_json::from_slice(&text).expect("a JSON array");
        assert_eq!(vectors.len(), 7, "all seven Gitea vectors are read");
        for v in &vectors {
            let field = |name: &str| v[name].as_str().expect(name);
            assert_eq!(field("header"), "X-Gitea-Signature");
            let body = fixture(field("payload_file"));
            let expected = field("expected");
            assert_eq!(sign_hmac_sha256_hex(field("secret"), &body), expected);
            let h = headers(&[("X-Gitea-Signature", expected)]);
            assert_eq!(
                verify(Host::Gitea, &h, &body, &[field("secret")]),
                Ok(Verified::Signed),
                "{v}"
            );
            let mut changed = body.clone();
            changed.push(b' ');
            assert_eq!(
                verify(Host::Gitea, &h, &changed, &[field("secret")]),
                Err(VerifyError::Mismatch)
            );
        }
    }

    #[test]
    fn a_forgejo_delivery_is_verified_by_x_forgejo_signature_and_named_by_its_headers() {
        let body = fixture("gitea/pull_request.reopened.forgejo-codeberg.json");
        let digits = sign_hmac_sha256_hex(SECRET, &body);
        let h = headers(&[
            ("X-Forgejo-Event-Type", "pull_request"),
            ("X-Forgejo-Delivery", "f-1"),
            ("X-Forgejo-Signature", &digits),
        ]);
        assert_eq!(
            verify(Host::Gitea, &h, &body, &[SECRET]),
            Ok(Verified::Signed)
        );
        let classified = classify(Host::Gitea, &h, &body).expect("it classifies");
        assert_eq!(classified.event, "pull_request/reopened");
        assert_eq!(classified.delivery_key.as_deref(), Some("f-1"));
        let wrong = headers(&[("X-Forgejo-Signature", &sign_hmac_sha256_hex("x", &body))]);
        assert_eq!(
            verify(Host::Gitea, &wrong, &body, &[SECRET]),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn the_gitea_signature_alone_decides_when_present() {
        let body = fixture("gitea/push.branch-created.json");
        let good = sign_hmac_sha256_hex(SECRET, &body);
        let bad = sign_hmac_sha256_hex("other", &body);
        let h = headers(&[("X-Gitea-Signature", &bad), ("X-Forgejo-Signature", &good)]);
        assert_eq!(
            verify(Host::Gitea, &h, &body, &[SECRET]),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn githubs_headers_alone_do_not_pass_for_gitea() {
        let body = fixture("gitea/push.branch-created.json");
        let digits = sign_hmac_sha256_hex(SECRET, &body);
        let sha256 = format!("sha256={digits}");
        let github_only = headers(&[
            ("X-GitHub-Event", "push"),
            ("X-GitHub-Delivery", "g-1"),
            ("X-Hub-Signature-256", &sha256),
        ]);
        assert_eq!(
            verify(Host::Gitea, &github_only, &body, &[SECRET]),
            Err(VerifyError::Missing {
                header: "X-Gitea-Signature"
            })
        );
        assert_eq!(
            classify(Host::Gitea, &github_only, &body).expect_err("no Gitea event header"),
            ClassifyError::MissingEventHeader("X-Gitea-Event-Type")
        );
    }

    #[test]
    fn an_empty_or_prefixed_or_short_signature_is_refused_naming_the_form() {
        let body = fixture("gitea/push.branch-created.json");
        let empty = headers(&[("X-Gitea-Signature", "")]);
        assert_eq!(
            verify(Host::Gitea, &empty, &body, &[SECRET]),
            Err(VerifyError::Missing {
                header: "X-Gitea-Signature"
            })
        );
        let prefixed = format!("sha256={}", sign_hmac_sha256_hex(SECRET, &body));
        for value in [prefixed.as_str(), "abcd", "zz"] {
            let h = headers(&[("X-Gitea-Signature", value)]);
            let e = verify(Host::Gitea, &h, &body, &[SECRET]).expect_err(value);
            assert_eq!(
                e,
                VerifyError::Malformed {
                    header: "X-Gitea-Signature",
                    expected: "<64 hex digits>"
                }
            );
        }
    }

    #[test]
    fn a_gitea_delivery_at_a_github_receiver_is_refused_as_the_wrong_host() {
        let body = fixture("gitea/push.branch-created.json");
        let digits = sign_hmac_sha256_hex(SECRET, &body);
        let sha256 = format!("sha256={digits}");
        // Exactly the GitHub-compatible headers Gitea sends, plus its own.
        let h = headers(&[
            ("X-GitHub-Event", "push"),
            ("X-GitHub-Delivery", "g-1"),
            ("X-Hub-Signature-256", &sha256),
            ("X-Gitea-Event", "push"),
            ("X-Gitea-Event-Type", "push"),
            ("X-Gitea-Signature", &digits),
        ]);
        assert_eq!(
            verify(Host::GitHub, &h, &body, &[SECRET]),
            Ok(Verified::Signed)
        );
        let e = classify(Host::GitHub, &h, &body).expect_err("a Gitea delivery");
        assert!(matches!(e, ClassifyError::WrongHost(_)), "{e:?}");
        assert!(e.to_string().contains("CODE_HOST_KIND_GITEA"), "{e}");
    }

    #[test]
    fn other_hook_types_are_ignored_with_their_action() {
        let body = br#"{"action":"opened","issue":{"number":1}}"#;
        let h = host_headers(Host::Gitea, "issues", "k", Some(SECRET), body);
        let classified = classify(Host::Gitea, &h, body).expect("it classifies");
        assert_eq!(classified.event, "issues/opened");
        assert_eq!(classified.disposition, Disposition::Ignored);
    }

    #[test]
    fn the_test_delivery_is_a_push_whose_before_equals_its_after_that_round_trips() {
        assert_test_delivery_round_trips(Host::Gitea, "push", Handled);
        let delivery = crate::hosts::test_delivery(Host::Gitea, SECRET, "k");
        let payload: Value = serde_json::from_slice(&delivery.body).expect("JSON");
        assert_eq!(payload["before"], payload["after"]);
        let h = crate::hosts::testing::test_delivery_headers(&delivery);
        assert_eq!(
            h.get("X-Gitea-Signature").map(|v| v.as_bytes().to_vec()),
            Some(sign_hmac_sha256_hex(SECRET, &delivery.body).into_bytes())
        );
    }

    // ---- effects ----

    /// The effects of the fixture `gitea/<file>`, delivered as an `event_type` event.
    fn effects_of(event_type: &str, file: &str) -> Vec<Effect> {
        let body = fixture(&format!("gitea/{file}"));
        effects_of_body(event_type, &body).unwrap_or_else(|e| panic!("gitea/{file}: {e}"))
    }

    fn effects_of_body(event_type: &str, body: &[u8]) -> Result<Vec<Effect>, EffectError> {
        let h = host_headers(Host::Gitea, event_type, "k", Some(SECRET), body);
        let classified = classify(Host::Gitea, &h, body).expect("it classifies");
        crate::hosts::effects(Host::Gitea, &classified.event, &classified.payload)
    }

    /// One changeset effect's (number, kind, vote, state, summary).
    type Seen = (i64, String, Option<Vote>, Option<ChangesetState>, String);

    fn seen(effects: Vec<Effect>) -> Seen {
        match <[Effect; 1]>::try_from(effects) {
            Ok([Effect::Changeset(c)]) => {
                let Target::Number(n) = c.target else {
                    panic!("a pull request number, got {:?}", c.target);
                };
                (
                    n,
                    c.kind,
                    c.review.map(|r| r.vote),
                    c.snapshot.state,
                    c.summary,
                )
            }
            other => panic!("expected one changeset effect, got {other:?}"),
        }
    }

    /// (event type, fixture, number, kind, vote, state, summary).
    type PullRequestCase = (
        &'static str,
        &'static str,
        i64,
        &'static str,
        Option<Vote>,
        Option<ChangesetState>,
        &'static str,
    );

    #[test]
    fn every_pull_request_fixture_gives_its_kind_vote_state_and_summary() {
        use ChangesetState::{Closed, Merged, Open};
        #[rustfmt::skip]
        let cases: &[PullRequestCase] = &[
            ("pull_request", "pull_request.opened.json", 2, "opened", None, Some(Open), "example2 opened #2 \"update\""),
            ("pull_request", "pull_request.edited.json", 7, "edited", None, Some(Open), "a_nice_user edited #7 \"Edit pull title :D\""),
            ("pull_request", "pull_request.closed.json", 1, "closed", None, Some(Closed), "anbraten closed #1 \"Adjust file\""),
            ("pull_request", "pull_request.closed.merged.json", 1, "merged", None, Some(Merged), "anbraten merged #1 \"Adjust file\""),
            ("pull_request", "pull_request.reopened.forgejo-codeberg.json", 1, "reopened", None, Some(Open), "6543 reopened #1 \"Some ned more AAAA\""),
            ("pull_request_sync", "pull_request_sync.synchronized.json", 2, "synchronized", None, Some(Open), "test pushed 788ed8d to #2"),
            ("pull_request_review_request", "pull_request_review_request.review_requested.json", 7, "review_requested", None, Some(Open), "a_nice_user requested a review from a_nice_user on #7"),
            ("pull_request_review_approved", "pull_request_review_approved.reviewed.json", 7, "review", Some(Vote::Approved), Some(Open), "a_nice_user approved #7"),
            ("pull_request_review_rejected", "pull_request_review_rejected.reviewed.json", 7, "review", Some(Vote::ChangesRequested), Some(Open), "a_nice_user requested changes on #7"),
            ("pull_request_review_comment", "pull_request_review_comment.reviewed.json", 7, "review", None, Some(Open), "a_nice_user reviewed #7"),
            ("pull_request_comment", "pull_request_comment.reviewed.json", 2, "review", None, Some(Open), "example reviewed #2"),
            ("pull_request_comment", "pull_request_comment.created.json", 2, "comment", None, Some(Open), "example commented on #2"),
        ];
        for &(event, file, number, kind, vote, state, summary) in cases {
            assert_eq!(
                seen(effects_of(event, file)),
                (number, kind.to_owned(), vote, state, summary.to_owned()),
                "{file}"
            );
        }
    }

    #[test]
    fn a_vote_is_its_senders_and_the_repository_is_named_by_its_numeric_id() {
        let effects = effects_of(
            "pull_request_review_approved",
            "pull_request_review_approved.reviewed.json",
        );
        let Effect::Changeset(c) = &effects[0] else {
            panic!("a changeset effect");
        };
        assert_eq!(
            c.review.as_ref().map(|r| r.reviewer.as_str()),
            Some("a_nice_user")
        );
        assert_eq!(c.repository.external_id, "1234");
        assert_eq!(c.repository.name, "a_nice_user/hello_world_ci");
        assert_eq!(
            c.repository.url,
            "https://gitea.com/a_nice_user/hello_world_ci"
        );
    }

    #[test]
    fn a_comment_is_keyed_by_its_id_and_one_on_a_plain_issue_gives_nothing() {
        let effects = effects_of("pull_request_comment", "pull_request_comment.created.json");
        let Effect::Changeset(c) = &effects[0] else {
            panic!("a changeset effect");
        };
        assert_eq!(c.external_id, "6");
        assert_eq!(
            effects_of("issue_comment", "issue_comment.created.json"),
            vec![]
        );
    }

    /// The one ref update of a push effect, and who pushed.
    fn pushed(effects: Vec<Effect>) -> (RefUpdate, String, String) {
        match <[Effect; 1]>::try_from(effects) {
            Ok([Effect::Push(p)]) => {
                let [update] = <[RefUpdate; 1]>::try_from(p.refs).expect("one ref");
                (update, p.actor, p.repository.external_id)
            }
            other => panic!("expected one push effect, got {other:?}"),
        }
    }

    fn update(name: &str, old: &str, new: &str) -> RefUpdate {
        RefUpdate {
            name: name.to_owned(),
            old_sha: old.to_owned(),
            new_sha: new.to_owned(),
        }
    }

    #[test]
    fn pushes_creates_and_deletes_are_one_ref_update_each() {
        let sha = "67b56589a45103f891bdee7c0546e5d40bc02001";
        assert_eq!(
            pushed(effects_of("push", "push.branch-created.json")),
            (
                update("refs/heads/master", ZERO_SHA, sha),
                "example".into(),
                "1".into()
            )
        );
        assert_eq!(
            pushed(effects_of("push", "push.branch-updated.json")),
            (
                update(
                    "refs/heads/main",
                    "6efcf5b7c98f3e7a491675164b7a2e7acac27941",
                    "29be01c073851cf0db0c6a466e396b725a670453"
                ),
                "test-user".into(),
                "6".into()
            )
        );
        assert_eq!(
            pushed(effects_of("create", "create.branch.json")),
            (
                update("refs/heads/master", ZERO_SHA, sha),
                "example".into(),
                "1".into()
            )
        );
        assert_eq!(
            pushed(effects_of("delete", "delete.branch.json")),
            (
                update("refs/heads/example3", "", ZERO_SHA),
                "example".into(),
                "1".into()
            )
        );
        // A tag is created under refs/tags/, and a ref type Gitea may add later is nothing.
        let mut tag: Value =
            serde_json::from_slice(&fixture("gitea/create.branch.json")).expect("JSON");
        tag["ref_type"] = json!("tag");
        tag["ref"] = json!("v1.0");
        let body = serde_json::to_vec(&tag).expect("serialises");
        assert_eq!(
            pushed(effects_of_body("create", &body).expect("it parses")).0,
            update("refs/tags/v1.0", ZERO_SHA, sha)
        );
        tag["ref_type"] = json!("wiki");
        let body = serde_json::to_vec(&tag).expect("serialises");
        assert_eq!(effects_of_body("create", &body), Ok(vec![]));
    }

    #[test]
    fn a_payload_missing_what_its_event_must_carry_is_an_error_naming_it() {
        let e = effects_of_body("pull_request", br#"{"action":"opened"}"#)
            .expect_err("no pull request");
        assert!(e.to_string().contains("missing pull_request"), "{e}");
        let e = effects_of_body("push", br#"{"ref":"refs/heads/x"}"#).expect_err("no before");
        assert!(e.to_string().contains("missing before"), "{e}");
        let e = effects_of_body("delete", br#"{"ref":"x"}"#).expect_err("no ref_type");
        assert!(e.to_string().contains("missing ref_type"), "{e}");
    }
}
