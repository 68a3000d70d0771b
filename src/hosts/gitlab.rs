//! GitLab: deliveries carry the receiver's secret verbatim in `X-Gitlab-Token` (and are signed
//! only when the webhook has a signing token: `super::standard_webhooks`,
//! `super::verify_gitlab_signed`), are named by `X-Gitlab-Event` plus `object_attributes.action`,
//! and keyed by `webhook-id` (sent with a signing token), else `Idempotency-Key` (stable across
//! retries, GitLab 17.4+), else `X-Gitlab-Event-UUID`.

use http::HeaderMap;
use serde_json::{Value, json};

use super::effects::{
    self, ChangesetEffect, ChangesetSnapshot, ChangesetState, CheckResult, CheckStatus, Effect,
    EffectError, HostEvent, PushEffect, RefUpdate, RepositoryRef, ReviewVote, Target, Vote,
    check_summary, id_text, label_list, parse_time, short_sha, str_at, string_at,
};
use super::signature;
use super::{
    Classified, ClassifyError, Disposition, Payload, TestDelivery, Verified, VerifyError,
    delivery_key, event_header, json_bytes, with_action,
};

pub(super) const TOKEN: &str = "X-Gitlab-Token";
const EVENT: &str = "X-Gitlab-Event";
/// The delivery key headers, best first.
const KEYS: &[&str] = &[
    super::standard_webhooks::WEBHOOK_ID,
    "Idempotency-Key",
    "X-Gitlab-Event-UUID",
];
/// Where this host names the event and the delivery key.
pub(super) const HEADERS: super::HeaderNames = super::HeaderNames {
    event: EVENT,
    keys: KEYS,
};

/// Events a handler takes (DESIGN.md). `System Hook` and the confidential variants are not.
const HANDLED: &[&str] = &[
    "Merge Request Hook",
    "Pipeline Hook",
    "Note Hook",
    "Push Hook",
    "Tag Push Hook",
];

pub(super) fn verify(headers: &HeaderMap, secrets: &[&str]) -> Result<Verified, VerifyError> {
    signature::check_token(headers, TOKEN, secrets)?;
    Ok(Verified::Signed)
}

pub(super) fn classify<P: Payload>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Classified<P>, ClassifyError> {
    let event = event_header(headers, EVENT)?;
    let payload = P::parse(event, body)?;
    let action = payload.attributes_action();
    let disposition = if HANDLED.contains(&event) {
        Disposition::Handled
    } else {
        Disposition::Ignored
    };
    Ok(Classified {
        event: with_action(event, action),
        delivery_key: delivery_key(headers, KEYS),
        disposition,
        payload,
    })
}

/// A `Push Hook` with no commits to a placeholder project: GitLab has no ping, and its "Test"
/// button sends a push event.
pub(super) fn test_delivery(secret: &str, key: &str) -> TestDelivery {
    const ZERO: &str = "0000000000000000000000000000000000000000";
    const URL: &str = "https://gitlab.invalid/hookgate/test-delivery";
    let body = json_bytes(&json!({
        "object_kind": "push",
        "event_name": "push",
        "before": ZERO,
        "after": ZERO,
        "ref": "refs/heads/main",
        "checkout_sha": null,
        "message": "hookgate test delivery",
        "user_id": 0,
        "user_name": "hookgate",
        "user_username": "hookgate",
        "project_id": 0,
        "project": {
            "id": 0,
            "name": "test-delivery",
            "namespace": "hookgate",
            "path_with_namespace": "hookgate/test-delivery",
            "default_branch": "main",
            "web_url": URL,
            "homepage": URL,
            "git_http_url": format!("{URL}.git")
        },
        "repository": {
            "name": "test-delivery",
            "homepage": URL,
            "git_http_url": format!("{URL}.git")
        },
        "commits": [],
        "total_commits_count": 0
    }));
    TestDelivery {
        headers: vec![
            ("User-Agent", "GitLab/hookgate-test".to_owned()),
            (EVENT, "Push Hook".to_owned()),
            ("X-Gitlab-Event-UUID", key.to_owned()),
            ("Idempotency-Key", key.to_owned()),
            (TOKEN, secret.to_owned()),
        ],
        body,
    }
}

/// The effects of a `Handled` event (see `super::effects`): a merge request event, a pipeline
/// and a note on a merge request each give one changeset effect (a pipeline of no merge request
/// one for its commit); a push or tag push gives one push effect.
pub(super) fn effects(event: &str, payload: &Value) -> Result<Vec<Effect>, EffectError> {
    let name = event.split('/').next().unwrap_or(event);
    let on = Event {
        event,
        payload,
        actor: str_at(payload, "/user/username").unwrap_or_default(),
        host: GitLab,
    };
    match name {
        "Merge Request Hook" => on.merge_request().map(|e| vec![e]),
        "Pipeline Hook" => on.pipeline().map(|e| vec![e]),
        "Note Hook" => on.note().map(|e| e.into_iter().collect()),
        "Push Hook" | "Tag Push Hook" => on.push().map(|e| vec![e]),
        _ => Ok(Vec::new()),
    }
}

/// What the GitLab module adds to an event being turned into effects: nothing but how
/// it finds the event's repository.
struct GitLab;

/// One GitLab event being turned into effects.
type Event<'p> = effects::Event<'p, GitLab>;

impl HostEvent for GitLab {
    /// The project every GitLab event carries, by `path_with_namespace` and `id` (or the
    /// event's `project_id`); one may be absent.
    fn repository(event: &effects::Event<'_, Self>) -> Result<RepositoryRef, EffectError> {
        let name = string_at(event.payload, "/project/path_with_namespace").unwrap_or_default();
        let id = event
            .payload
            .pointer("/project/id")
            .or_else(|| event.payload.get("project_id"));
        let clone_url = |key: &str| {
            string_at(event.payload, &format!("/project/{key}"))
                .or_else(|| string_at(event.payload, &format!("/repository/{key}")))
        };
        RepositoryRef {
            name,
            external_id: id_text(id),
            url: string_at(event.payload, "/project/web_url").unwrap_or_default(),
            clone_urls: ["git_http_url", "git_ssh_url"]
                .iter()
                .filter_map(|key| clone_url(key))
                .collect(),
        }
        .identified(event.event, "project.path_with_namespace")
    }
}

impl<'p> Event<'p> {
    /// `Merge Request Hook/*`: the action as a timeline kind, and a vote for approvals.
    fn merge_request(&self) -> Result<Effect, EffectError> {
        let attributes = self.need("/object_attributes")?;
        let iid = self.need_i64("/object_attributes/iid")?;
        let mut snapshot = merge_request_snapshot(attributes, self.payload);
        if snapshot.labels.is_none() {
            // The hook's top-level `labels` is the merge request's.
            snapshot.labels = label_list(self.payload, "title");
        }
        let kind = self.merge_request_kind(attributes);
        let vote = match str_at(attributes, "/action") {
            Some("approved" | "approval") => Some(Vote::Approved),
            Some("unapproved" | "unapproval") => Some(Vote::Withdrawn),
            _ => None,
        };
        let review = match vote {
            Some(vote) => Some(ReviewVote {
                reviewer: self.need_str("/user/username")?.to_owned(),
                vote,
            }),
            None => None,
        };
        let summary = self.merge_request_summary(kind, iid, &snapshot);
        let occur_time = attributes.get("updated_at").and_then(parse_time);
        let effect = self.changeset(
            Target::Number(iid),
            occur_time,
            kind,
            summary,
            String::new(),
            snapshot,
        )?;
        Ok(Effect::Changeset(ChangesetEffect { review, ..effect }))
    }

    /// The timeline kind of a merge request event, in the words the other hosts use: `update`
    /// is `synchronize` when it brought commits (`oldrev`), `converted_to_draft` or
    /// `ready_for_review` when it changed the draft flag, else `edited`.
    fn merge_request_kind(&self, attributes: &'p Value) -> &'p str {
        match str_at(attributes, "/action") {
            Some("open") => "opened",
            Some("close") => "closed",
            Some("reopen") => "reopened",
            Some("merge") => "merged",
            Some("approved" | "approval") => "approved",
            Some("unapproved" | "unapproval") => "unapproved",
            Some("update") | None => {
                let pushed = attributes.get("oldrev").is_some_and(Value::is_string);
                let draft_now = [
                    "/changes/draft/current",
                    "/changes/work_in_progress/current",
                ]
                .iter()
                .find_map(|p| self.payload.pointer(p).and_then(Value::as_bool));
                match (pushed, draft_now) {
                    (true, _) => "synchronize",
                    (false, Some(true)) => "converted_to_draft",
                    (false, Some(false)) => "ready_for_review",
                    (false, None) => "edited",
                }
            }
            Some(other) => other,
        }
    }

    /// `alice opened !1 "Fix the build"`, worded for the kind.
    fn merge_request_summary(&self, kind: &str, iid: i64, mr: &ChangesetSnapshot) -> String {
        let who = self.who();
        let titled = match &mr.title {
            Some(title) => format!("!{iid} \"{title}\""),
            None => format!("!{iid}"),
        };
        match kind {
            "opened" | "closed" | "merged" | "reopened" | "edited" => {
                format!("{who} {kind} {titled}")
            }
            "approved" | "unapproved" => format!("{who} {kind} !{iid}"),
            "synchronize" => match mr.head_sha.as_deref() {
                Some(sha) => format!("{who} pushed {} to !{iid}", short_sha(sha)),
                None => format!("{who} pushed to !{iid}"),
            },
            "ready_for_review" => format!("{who} marked !{iid} ready for review"),
            "converted_to_draft" => format!("{who} converted !{iid} to a draft"),
            other => format!("{who} {} {titled}", other.replace('_', " ")),
        }
    }

    /// `Pipeline Hook`: the `pipeline` check on its commit, for the merge request it ran for
    /// or, when it ran for none of this project's, for every changeset whose head it is.
    fn pipeline(&self) -> Result<Effect, EffectError> {
        let attributes = self.need("/object_attributes")?;
        let sha = self.need_str("/object_attributes/sha")?;
        let status = match self.need_str("/object_attributes/status")? {
            "created"
            | "waiting_for_resource"
            | "preparing"
            | "pending"
            | "running"
            | "scheduled"
            | "manual" => CheckStatus::Pending,
            "success" | "skipped" => CheckStatus::Passed,
            "failed" | "canceled" | "canceling" => CheckStatus::Failed,
            other => {
                return Err(EffectError::new(
                    self.event,
                    format!("object_attributes.status {other:?} is not a pipeline status"),
                ));
            }
        };
        let check = CheckResult {
            context: "pipeline".to_owned(),
            sha: sha.to_owned(),
            status,
        };
        let merge_request = self.payload.get("merge_request").filter(|mr| {
            // A merge request of another project (a fork's pipeline for its upstream) has an
            // iid that means nothing in this one.
            let target = mr.get("target_project_id");
            let project = self.payload.pointer("/project/id");
            mr.is_object() && (target.is_none() || project.is_none() || target == project)
        });
        let (target, snapshot) = match merge_request {
            Some(mr) => {
                let iid = self.need_i64("/merge_request/iid")?;
                // A pipeline's commit is not always the head (merged results pipelines run
                // on a merge commit), so the snapshot leaves the head SHA alone.
                let snapshot = ChangesetSnapshot {
                    head_sha: None,
                    host_update_time: None,
                    ..merge_request_snapshot(mr, self.payload)
                };
                (Target::Number(iid), snapshot)
            }
            None => (
                Target::HeadSha(sha.to_owned()),
                ChangesetSnapshot::default(),
            ),
        };
        let occur_time = attributes
            .get("finished_at")
            .and_then(parse_time)
            .or_else(|| attributes.get("created_at").and_then(parse_time));
        let summary = check_summary(&check.context, check.status, &check.sha);
        // The pipeline's id: its entry follows it from created to finished.
        let id = id_text(attributes.get("id"));
        let effect = self.changeset(target, occur_time, "check", summary, id, snapshot)?;
        Ok(Effect::Changeset(ChangesetEffect {
            check: Some(check),
            ..effect
        }))
    }

    /// `Note Hook`: a comment on a merge request, or nothing for a note on anything else.
    fn note(&self) -> Result<Option<Effect>, EffectError> {
        let attributes = self.need("/object_attributes")?;
        if str_at(attributes, "/noteable_type") != Some("MergeRequest") {
            return Ok(None);
        }
        let mr = self.need("/merge_request")?;
        let iid = self.need_i64("/merge_request/iid")?;
        let who = self.who();
        let summary = match str_at(attributes, "/action") {
            Some("update") => format!("{who} edited a comment on !{iid}"),
            _ => format!("{who} commented on !{iid}"),
        };
        let occur_time = attributes
            .get("updated_at")
            .and_then(parse_time)
            .or_else(|| attributes.get("created_at").and_then(parse_time));
        let snapshot = merge_request_snapshot(mr, self.payload);
        // The note's id, which its edits share.
        let effect = self.changeset(
            Target::Number(iid),
            occur_time,
            "comment",
            summary,
            id_text(attributes.get("id")),
            snapshot,
        )?;
        Ok(Some(Effect::Changeset(effect)))
    }

    /// `Push Hook` and `Tag Push Hook`: the one ref they changed.
    fn push(&self) -> Result<Effect, EffectError> {
        let update = RefUpdate {
            name: self.need_str("/ref")?.to_owned(),
            old_sha: self.need_str("/before")?.to_owned(),
            new_sha: self.need_str("/after")?.to_owned(),
        };
        let actor = str_at(self.payload, "/user_username")
            .or_else(|| str_at(self.payload, "/user_name"))
            .unwrap_or_default();
        Ok(Effect::Push(PushEffect {
            repository: self.repository()?,
            refs: vec![update],
            actor: actor.to_owned(),
        }))
    }
}

/// What a merge request object (a Merge Request Hook's `object_attributes`, or the
/// `merge_request` of a note or pipeline) says about the changeset. GitLab names the author
/// only by id, so the author is known when the event's user is that id.
fn merge_request_snapshot(mr: &Value, payload: &Value) -> ChangesetSnapshot {
    let author_id = mr.get("author_id").filter(|id| !id.is_null());
    let author = match (author_id, payload.pointer("/user/id")) {
        (Some(author), Some(user)) if author == user => string_at(payload, "/user/username"),
        _ => None,
    };
    ChangesetSnapshot {
        title: string_at(mr, "/title"),
        url: string_at(mr, "/url"),
        author,
        state: state(mr),
        head_ref: string_at(mr, "/source_branch"),
        base_ref: string_at(mr, "/target_branch"),
        head_sha: string_at(mr, "/last_commit/id"),
        labels: label_list(mr, "title"),
        host_update_time: mr.get("updated_at").and_then(parse_time),
        in_merge_queue: None,
        auto_merge: None,
    }
}

/// The changeset state of a merge request. An open one is a draft when `draft` or
/// `work_in_progress` says so, and has no state when neither is sent (a pipeline's merge
/// request): guessing `Open` would undo a `Draft`.
fn state(mr: &Value) -> Option<ChangesetState> {
    match str_at(mr, "/state")? {
        "opened" => {
            let flags: Vec<bool> = ["draft", "work_in_progress"]
                .iter()
                .filter_map(|key| mr.get(*key).and_then(Value::as_bool))
                .collect();
            match (flags.is_empty(), flags.contains(&true)) {
                (true, _) => None,
                (false, true) => Some(ChangesetState::Draft),
                (false, false) => Some(ChangesetState::Open),
            }
        }
        "closed" | "locked" => Some(ChangesetState::Closed),
        "merged" => Some(ChangesetState::Merged),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hosts::testing::{
        FixtureCase, assert_every_fixture, assert_test_delivery_round_trips, fixture, headers,
        test_delivery_headers,
    };
    use crate::hosts::{Host, classify, verify};
    use crate::time::Timestamp;
    use Disposition::{Handled, Ignored};

    #[rustfmt::skip]
    const CASES: &[FixtureCase] = &[
        ("issue.open.json", "Issue Hook", "Issue Hook/open", Ignored),
        ("job.json", "Job Hook", "Job Hook", Ignored),
        ("merge_request.close.json", "Merge Request Hook", "Merge Request Hook/close", Handled),
        ("merge_request.merge.json", "Merge Request Hook", "Merge Request Hook/merge", Handled),
        ("merge_request.open.json", "Merge Request Hook", "Merge Request Hook/open", Handled),
        ("merge_request.update.json", "Merge Request Hook", "Merge Request Hook/update", Handled),
        ("note.commit.json", "Note Hook", "Note Hook/create", Handled),
        ("note.issue.json", "Note Hook", "Note Hook/create", Handled),
        ("note.merge_request.json", "Note Hook", "Note Hook/create", Handled),
        ("pipeline.json", "Pipeline Hook", "Pipeline Hook", Handled),
        ("push.json", "Push Hook", "Push Hook", Handled),
        ("tag_push.json", "Tag Push Hook", "Tag Push Hook", Handled),
    ];

    #[test]
    fn every_gitlab_fixture_is_named_keyed_and_verified() {
        assert_every_fixture(Host::GitLab, "gitlab", CASES);
    }

    #[test]
    fn the_idempotency_key_is_preferred_over_the_event_uuid() {
        let body = fixture("gitlab/push.json");
        let both = headers(&[
            ("X-Gitlab-Event", "Push Hook"),
            ("X-Gitlab-Event-UUID", "event-uuid"),
            ("Idempotency-Key", "idem-key"),
        ]);
        let classified = classify(Host::GitLab, &both, &body).expect("it classifies");
        assert_eq!(classified.delivery_key.as_deref(), Some("idem-key"));

        let uuid_only = headers(&[
            ("X-Gitlab-Event", "Push Hook"),
            ("X-Gitlab-Event-UUID", "event-uuid"),
            ("Idempotency-Key", " "),
        ]);
        let classified = classify(Host::GitLab, &uuid_only, &body).expect("it classifies");
        assert_eq!(classified.delivery_key.as_deref(), Some("event-uuid"));

        let neither = headers(&[("X-Gitlab-Event", "Push Hook")]);
        let classified = classify(Host::GitLab, &neither, &body).expect("it classifies");
        assert_eq!(classified.delivery_key, None);
    }

    #[test]
    fn a_missing_or_wrong_token_is_refused_with_a_token_message() {
        let e = verify(Host::GitLab, &headers(&[]), b"{}", &["s"]).expect_err("no token");
        assert_eq!(e.to_string(), "missing X-Gitlab-Token");
        let e = verify(
            Host::GitLab,
            &headers(&[("X-Gitlab-Token", "guess")]),
            b"{}",
            &["s"],
        )
        .expect_err("wrong token");
        assert_eq!(e.to_string(), "token does not match");
    }

    #[test]
    fn the_previous_secret_is_accepted_as_a_token_during_a_rotation_overlap() {
        let h = headers(&[("X-Gitlab-Token", "old")]);
        assert_eq!(
            verify(Host::GitLab, &h, b"{}", &["new", "old"]),
            Ok(Verified::Signed)
        );
    }

    #[test]
    fn a_delivery_without_an_event_header_is_refused_naming_the_header() {
        let body = fixture("gitlab/push.json");
        let e = classify(Host::GitLab, &headers(&[]), &body).expect_err("no event header");
        assert_eq!(e.to_string(), "missing X-Gitlab-Event header");
    }

    #[test]
    fn a_body_that_is_not_json_is_a_bad_body_naming_the_event() {
        let h = headers(&[("X-Gitlab-Event", "Merge Request Hook")]);
        let e = classify(Host::GitLab, &h, b"").expect_err("empty is not JSON");
        assert!(
            e.to_string()
                .starts_with("body of a Merge Request Hook event must be JSON: "),
            "{e}"
        );
    }

    #[test]
    fn system_hooks_and_confidential_notes_are_ignored() {
        for event in ["System Hook", "Confidential Note Hook"] {
            let h = headers(&[("X-Gitlab-Event", event)]);
            let body = br#"{"object_kind":"note","object_attributes":{"note":"x"}}"#;
            let classified = classify(Host::GitLab, &h, body).expect("it classifies");
            assert_eq!(classified.event, event);
            assert_eq!(classified.disposition, Disposition::Ignored);
        }
    }

    #[test]
    fn the_test_delivery_is_a_zero_commit_push_that_round_trips() {
        assert_test_delivery_round_trips(Host::GitLab, "Push Hook", Disposition::Handled);
        let delivery = test_delivery("s", "k");
        let classified = classify(
            Host::GitLab,
            &test_delivery_headers(&delivery),
            &delivery.body,
        )
        .expect("it classifies");
        assert_eq!(classified.payload["object_kind"], "push");
        assert_eq!(classified.payload["total_commits_count"], 0);
        assert_eq!(classified.payload["commits"], json!([]));
    }

    // ---- effects ----

    use serde_json::Value;

    /// The fixture `gitlab/<file>` as JSON, to edit into a payload no fixture has.
    fn json_fixture(file: &str) -> Value {
        serde_json::from_slice(&fixture(&format!("gitlab/{file}"))).expect("fixtures are JSON")
    }

    /// The effects of `payload` delivered as a GitLab `event_header` event, classified the way
    /// the ingress classifies it.
    fn effects_of_json(event_header: &str, payload: &Value) -> Result<Vec<Effect>, EffectError> {
        let body = serde_json::to_vec(payload).expect("a Value serialises");
        let h = headers(&[("X-Gitlab-Event", event_header)]);
        let classified = classify(Host::GitLab, &h, &body).expect("it classifies");
        assert_eq!(classified.disposition, Handled, "{}", classified.event);
        crate::hosts::effects(Host::GitLab, &classified.event, &classified.payload)
    }

    /// The effects of the fixture `gitlab/<file>`, delivered as an `event_header` event.
    fn effects_of(event_header: &str, file: &str) -> Vec<Effect> {
        effects_of_json(event_header, &json_fixture(file))
            .unwrap_or_else(|e| panic!("gitlab/{file}: {e}"))
    }

    #[test]
    fn a_project_named_only_by_its_id_is_a_reference_by_id() {
        let mut payload = json_fixture("push.json");
        payload
            .as_object_mut()
            .expect("an object")
            .remove("project");
        let effects = effects_of_json("Push Hook", &payload).expect("it parses");
        let repository = effects[0].repository();
        assert_eq!(repository.name, "");
        assert_eq!(repository.external_id, "15", "from project_id");
    }

    /// The one changeset effect of a list.
    fn only_changeset(effects: Vec<Effect>) -> ChangesetEffect {
        match <[Effect; 1]>::try_from(effects) {
            Ok([Effect::Changeset(c)]) => c,
            other => panic!("expected one changeset effect, got {other:?}"),
        }
    }

    /// A project as its fixture states it: path, id, and web URL (clone URLs follow from it).
    fn project(name: &str, id: &str, web_url: &str, ssh_url: &str) -> RepositoryRef {
        RepositoryRef {
            name: name.to_owned(),
            external_id: id.to_owned(),
            url: web_url.to_owned(),
            clone_urls: vec![format!("{web_url}.git"), ssh_url.to_owned()],
        }
    }

    fn hello_world() -> RepositoryRef {
        project(
            "gitlab-org/hello-world",
            "4861503",
            "https://gitlab.com/gitlab-org/hello-world",
            "git@gitlab.com:gitlab-org/hello-world.git",
        )
    }

    /// Merge request !1 of gitlab-org/hello-world (closed and merged fixtures).
    fn update_readme(state: ChangesetState, updated: Timestamp) -> ChangesetSnapshot {
        ChangesetSnapshot {
            title: Some("update readme".to_owned()),
            url: Some("https://gitlab.com/gitlab-org/hello-world/merge_requests/1".to_owned()),
            author: None,
            state: Some(state),
            head_ref: Some("feature".to_owned()),
            base_ref: Some("master".to_owned()),
            head_sha: Some("c4c79227ed610f1151f05bbc5be33b4f340d39c8".to_owned()),
            labels: Some(vec![]),
            host_update_time: Some(updated),
            in_merge_queue: None,
            auto_merge: None,
        }
    }

    /// A changeset effect with no review and no check.
    fn entry(
        repository: RepositoryRef,
        iid: i64,
        occur_time: Timestamp,
        kind: &str,
        actor: &str,
        summary: &str,
        snapshot: ChangesetSnapshot,
    ) -> ChangesetEffect {
        ChangesetEffect {
            repository,
            target: Target::Number(iid),
            occur_time: Some(occur_time),
            kind: kind.to_owned(),
            actor: actor.to_owned(),
            summary: summary.to_owned(),
            external_id: String::new(),
            snapshot,
            review: None,
            check: None,
        }
    }

    /// 2013-12-03T17:23:34Z
    const T_OPEN: Timestamp = Timestamp::from_micros(1_386_091_414_000_000);

    /// The changeset effect of `merge_request.open.json`.
    fn ms_viewport_opened() -> ChangesetEffect {
        entry(
            project(
                "gitlabhq/gitlab-test",
                "1",
                "http://example.com/gitlabhq/gitlab-test",
                "git@example.com:gitlabhq/gitlab-test.git",
            ),
            1,
            T_OPEN,
            "opened",
            "user1",
            "user1 opened !1 \"MS-Viewport\"",
            ChangesetSnapshot {
                title: Some("MS-Viewport".to_owned()),
                url: Some("http://example.com/diaspora/merge_requests/1".to_owned()),
                // author_id 51 is not the user (id 1) who opened it in this sample.
                author: None,
                state: Some(ChangesetState::Open),
                head_ref: Some("ms-viewport".to_owned()),
                base_ref: Some("master".to_owned()),
                head_sha: Some("da1560886d4f094c3e6c9ef40349f7d38b5d27d7".to_owned()),
                labels: Some(vec!["API".to_owned()]),
                host_update_time: Some(T_OPEN),
                in_merge_queue: None,
                auto_merge: None,
            },
        )
    }

    #[test]
    fn an_opened_merge_request_is_an_opened_entry_with_everything_the_payload_states() {
        assert_eq!(
            effects_of("Merge Request Hook", "merge_request.open.json"),
            vec![Effect::Changeset(ms_viewport_opened())]
        );
    }

    #[test]
    fn closing_and_merging_a_merge_request_are_closed_and_merged_entries() {
        let closed_at = Timestamp::from_micros(1_512_925_366_000_000); // 2017-12-10 17:02:46 UTC
        let merged_at = Timestamp::from_micros(1_512_925_687_000_000); // 2017-12-10 17:08:07 UTC
        let cases = [
            (
                "merge_request.close.json",
                entry(
                    hello_world(),
                    1,
                    closed_at,
                    "closed",
                    "sytses",
                    "sytses closed !1 \"update readme\"",
                    update_readme(ChangesetState::Closed, closed_at),
                ),
            ),
            (
                "merge_request.merge.json",
                entry(
                    hello_world(),
                    1,
                    merged_at,
                    "merged",
                    "sytses",
                    "sytses merged !1 \"update readme\"",
                    update_readme(ChangesetState::Merged, merged_at),
                ),
            ),
        ];
        for (file, expected) in cases {
            assert_eq!(
                effects_of("Merge Request Hook", file),
                vec![Effect::Changeset(expected)],
                "{file}"
            );
        }
    }

    #[test]
    fn an_update_that_brought_commits_is_a_synchronize_entry() {
        let t = Timestamp::from_micros(1_632_718_881_000_000); // 2021-09-27 05:01:21 UTC
        let expected = entry(
            project(
                "test/woodpecker",
                "2",
                "http://10.40.8.5:3200/test/woodpecker",
                "git@10.40.8.5:test/woodpecker.git",
            ),
            2,
            t,
            "synchronize",
            "test",
            "test pushed 0ab96a1 to !2",
            ChangesetSnapshot {
                title: Some("Update client.go 🎉".to_owned()),
                url: Some("http://10.40.8.5:3200/test/woodpecker/-/merge_requests/2".to_owned()),
                // The user (id 2) is the author (author_id 2).
                author: Some("test".to_owned()),
                state: Some(ChangesetState::Open),
                head_ref: Some("next-feature".to_owned()),
                base_ref: Some("master".to_owned()),
                head_sha: Some("0ab96a10266b95b4b533dcfd98738015fbe70889".to_owned()),
                labels: Some(vec![]),
                host_update_time: Some(t),
                in_merge_queue: None,
                auto_merge: None,
            },
        );
        assert_eq!(
            effects_of("Merge Request Hook", "merge_request.update.json"),
            vec![Effect::Changeset(expected)]
        );
    }

    #[test]
    fn an_update_that_changed_the_draft_flag_is_a_draft_entry_and_a_draft_state() {
        let mut payload = json_fixture("merge_request.update.json");
        payload["object_attributes"]["oldrev"] = json!(null);
        payload["object_attributes"]["draft"] = json!(true);
        payload["changes"]["draft"] = json!({"previous": false, "current": true});
        let e = only_changeset(effects_of_json("Merge Request Hook", &payload).expect("ok"));
        assert_eq!(
            (e.kind.as_str(), e.summary.as_str(), e.snapshot.state),
            (
                "converted_to_draft",
                "test converted !2 to a draft",
                Some(ChangesetState::Draft)
            )
        );

        payload["object_attributes"]["draft"] = json!(false);
        payload["changes"]["draft"] = json!({"previous": true, "current": false});
        let e = only_changeset(effects_of_json("Merge Request Hook", &payload).expect("ok"));
        assert_eq!(
            (e.kind.as_str(), e.snapshot.state),
            ("ready_for_review", Some(ChangesetState::Open))
        );

        payload["changes"] = json!({"title": {"previous": "a", "current": "b"}});
        payload["object_attributes"]["work_in_progress"] = json!(true);
        let e = only_changeset(effects_of_json("Merge Request Hook", &payload).expect("ok"));
        assert_eq!(
            (e.kind.as_str(), e.snapshot.state),
            ("edited", Some(ChangesetState::Draft)),
            "work_in_progress alone makes a draft"
        );
    }

    #[test]
    fn a_locked_merge_request_is_closed() {
        let mut payload = json_fixture("merge_request.close.json");
        payload["object_attributes"]["state"] = json!("locked");
        let e = only_changeset(effects_of_json("Merge Request Hook", &payload).expect("ok"));
        assert_eq!(e.snapshot.state, Some(ChangesetState::Closed));
    }

    #[test]
    fn approving_and_unapproving_are_votes_of_the_user() {
        for (action, kind, vote) in [
            ("approved", "approved", Vote::Approved),
            ("approval", "approved", Vote::Approved),
            ("unapproved", "unapproved", Vote::Withdrawn),
            ("unapproval", "unapproved", Vote::Withdrawn),
        ] {
            let mut payload = json_fixture("merge_request.open.json");
            payload["object_attributes"]["action"] = json!(action);
            let expected = ChangesetEffect {
                kind: kind.to_owned(),
                summary: format!("user1 {kind} !1"),
                review: Some(ReviewVote {
                    reviewer: "user1".to_owned(),
                    vote,
                }),
                ..ms_viewport_opened()
            };
            assert_eq!(
                effects_of_json("Merge Request Hook", &payload),
                Ok(vec![Effect::Changeset(expected)]),
                "{action}"
            );
        }
    }

    #[test]
    fn an_opened_merge_request_that_does_not_say_whether_it_is_a_draft_has_no_state() {
        let mut payload = json_fixture("merge_request.open.json");
        let Value::Object(attributes) = &mut payload["object_attributes"] else {
            panic!("object_attributes is an object");
        };
        attributes.remove("work_in_progress");
        attributes.remove("draft");
        let e = only_changeset(effects_of_json("Merge Request Hook", &payload).expect("ok"));
        assert_eq!(e.snapshot.state, None);
    }

    const PIPELINE_SHA: &str = "bcbb5ec396a2c0f828686f14fac9b80b780504f2";
    /// 2016-08-12 15:26:29 UTC, when the fixture's pipeline finished.
    const T_PIPELINE_FINISHED: Timestamp = Timestamp::from_micros(1_471_015_589_000_000);

    fn pipeline_project() -> RepositoryRef {
        project(
            "gitlab-org/gitlab-test",
            "1",
            "http://192.168.64.1:3005/gitlab-org/gitlab-test",
            "git@192.168.64.1:gitlab-org/gitlab-test.git",
        )
    }

    #[test]
    fn a_pipeline_of_a_merge_request_is_a_pipeline_check_on_that_merge_request() {
        let expected = ChangesetEffect {
            check: Some(CheckResult {
                context: "pipeline".to_owned(),
                sha: PIPELINE_SHA.to_owned(),
                status: CheckStatus::Passed,
            }),
            // The merge request's iid is 1; the pipeline's own iid (123) is not it.
            external_id: "31".to_owned(),
            ..entry(
                pipeline_project(),
                1,
                T_PIPELINE_FINISHED,
                "check",
                "user1",
                "pipeline passed on bcbb5ec",
                ChangesetSnapshot {
                    title: Some("Test".to_owned()),
                    url: Some(
                        "http://192.168.64.1:3005/gitlab-org/gitlab-test/merge_requests/1"
                            .to_owned(),
                    ),
                    // "opened", but whether it is a draft is not said.
                    state: None,
                    head_ref: Some("test".to_owned()),
                    base_ref: Some("master".to_owned()),
                    ..ChangesetSnapshot::default()
                },
            )
        };
        assert_eq!(
            effects_of("Pipeline Hook", "pipeline.json"),
            vec![Effect::Changeset(expected)]
        );
    }

    #[test]
    fn a_pipeline_of_no_merge_request_targets_its_commit() {
        let mut payload = json_fixture("pipeline.json");
        payload["merge_request"] = json!(null);
        let expected = ChangesetEffect {
            target: Target::HeadSha(PIPELINE_SHA.to_owned()),
            check: Some(CheckResult {
                context: "pipeline".to_owned(),
                sha: PIPELINE_SHA.to_owned(),
                status: CheckStatus::Passed,
            }),
            external_id: "31".to_owned(),
            ..entry(
                pipeline_project(),
                0,
                T_PIPELINE_FINISHED,
                "check",
                "user1",
                "pipeline passed on bcbb5ec",
                ChangesetSnapshot::default(),
            )
        };
        assert_eq!(
            effects_of_json("Pipeline Hook", &payload),
            Ok(vec![Effect::Changeset(expected)])
        );

        let mut payload = json_fixture("pipeline.json");
        payload["merge_request"]["target_project_id"] = json!(99);
        let e = only_changeset(effects_of_json("Pipeline Hook", &payload).expect("ok"));
        assert_eq!(
            e.target,
            Target::HeadSha(PIPELINE_SHA.to_owned()),
            "a merge request of another project is not targeted"
        );
    }

    #[test]
    fn pipeline_statuses_map_to_pending_passed_and_failed() {
        use CheckStatus::{Failed, Passed, Pending};
        for (status, expected) in [
            ("created", Pending),
            ("waiting_for_resource", Pending),
            ("preparing", Pending),
            ("pending", Pending),
            ("running", Pending),
            ("scheduled", Pending),
            ("manual", Pending),
            ("success", Passed),
            ("skipped", Passed),
            ("failed", Failed),
            ("canceled", Failed),
        ] {
            let mut payload = json_fixture("pipeline.json");
            payload["object_attributes"]["status"] = json!(status);
            let e = only_changeset(effects_of_json("Pipeline Hook", &payload).expect("ok"));
            assert_eq!(e.check.map(|c| c.status), Some(expected), "{status}");
        }
        let mut payload = json_fixture("pipeline.json");
        payload["object_attributes"]["status"] = json!("exploded");
        assert!(effects_of_json("Pipeline Hook", &payload).is_err());
    }

    #[test]
    fn a_running_pipeline_is_timed_by_its_creation() {
        let mut payload = json_fixture("pipeline.json");
        payload["object_attributes"]["status"] = json!("running");
        payload["object_attributes"]["finished_at"] = json!(null);
        let e = only_changeset(effects_of_json("Pipeline Hook", &payload).expect("ok"));
        assert_eq!(
            e.occur_time,
            Some(Timestamp::from_micros(1_471_015_408_000_000))
        ); // 2016-08-12 15:23:28 UTC
        assert_eq!(e.summary, "pipeline is pending on bcbb5ec");
    }

    #[test]
    fn a_note_on_a_merge_request_is_a_comment_entry() {
        let expected = ChangesetEffect {
            external_id: "1244".to_owned(),
            ..entry(
                project(
                    "gitlab-org/gitlab-test",
                    "5",
                    "http://example.com/gitlab-org/gitlab-test",
                    "git@example.com:gitlab-org/gitlab-test.git",
                ),
                1,
                Timestamp::from_micros(1_431_886_896_000_000), // 2015-05-17 18:21:36 UTC
                "comment",
                "root",
                "root commented on !1",
                ChangesetSnapshot {
                    title: Some("Tempora et eos debitis quae laborum et.".to_owned()),
                    url: None,
                    author: None,
                    state: Some(ChangesetState::Open),
                    head_ref: Some("master".to_owned()),
                    base_ref: Some("markdown".to_owned()),
                    head_sha: Some("562e173be03b8ff2efb05345d12df18815438a4b".to_owned()),
                    labels: Some(vec!["Afterpod".to_owned(), "Element".to_owned()]),
                    host_update_time: Some(Timestamp::from_micros(1_426_962_447_000_000)), // 2015-03-21 18:27:27 UTC
                    in_merge_queue: None,
                    auto_merge: None,
                },
            )
        };
        assert_eq!(
            effects_of("Note Hook", "note.merge_request.json"),
            vec![Effect::Changeset(expected)]
        );
    }

    #[test]
    fn a_note_on_anything_but_a_merge_request_gives_nothing() {
        assert_eq!(effects_of("Note Hook", "note.issue.json"), vec![]);
        assert_eq!(effects_of("Note Hook", "note.commit.json"), vec![]);
    }

    #[test]
    fn a_push_and_a_tag_push_are_one_ref_update_each() {
        let cases = [
            (
                "Push Hook",
                "push.json",
                project(
                    "mike/diaspora",
                    "15",
                    "http://example.com/mike/diaspora",
                    "git@example.com:mike/diaspora.git",
                ),
                "refs/heads/master",
                "95790bf891e76fee5e1747ab589903a6a1f80f22",
                "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
            ),
            (
                "Tag Push Hook",
                "tag_push.json",
                project(
                    "jsmith/example",
                    "1",
                    "http://example.com/jsmith/example",
                    "git@example.com:jsmith/example.git",
                ),
                "refs/tags/v1.0.0",
                "0000000000000000000000000000000000000000",
                "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7",
            ),
        ];
        for (event, file, repository, name, old, new) in cases {
            let expected = PushEffect {
                repository,
                refs: vec![RefUpdate {
                    name: name.to_owned(),
                    old_sha: old.to_owned(),
                    new_sha: new.to_owned(),
                }],
                actor: "jsmith".to_owned(),
            };
            assert_eq!(
                effects_of(event, file),
                vec![Effect::Push(expected)],
                "{file}"
            );
        }
    }

    #[test]
    fn the_test_delivery_is_a_push_of_no_change() {
        let delivery = test_delivery("s", "k");
        let payload: Value = serde_json::from_slice(&delivery.body).expect("JSON");
        let Ok([Effect::Push(push)]) =
            <[Effect; 1]>::try_from(effects_of_json("Push Hook", &payload).expect("ok"))
        else {
            panic!("one push");
        };
        assert_eq!(push.repository.name, "hookgate/test-delivery");
        assert_eq!(push.refs[0].old_sha, push.refs[0].new_sha);
    }

    #[test]
    fn a_payload_missing_what_its_event_must_carry_is_an_error_naming_it() {
        let without = |file: &str, parent: &str, key: &str| {
            let mut payload = json_fixture(file);
            let object = if parent.is_empty() {
                &mut payload
            } else {
                &mut payload[parent]
            };
            object
                .as_object_mut()
                .expect("an object")
                .remove(key)
                .expect("the fixture has it");
            payload
        };
        let cases = [
            (
                "Merge Request Hook",
                without("merge_request.open.json", "object_attributes", "iid"),
                "Merge Request Hook/open payload: missing object_attributes.iid",
            ),
            (
                "Merge Request Hook",
                without("merge_request.open.json", "", "project"),
                "Merge Request Hook/open payload: missing project.path_with_namespace, and the repository's id too",
            ),
            (
                "Note Hook",
                without("note.merge_request.json", "merge_request", "iid"),
                "Note Hook/create payload: missing merge_request.iid",
            ),
            (
                "Pipeline Hook",
                without("pipeline.json", "merge_request", "iid"),
                "Pipeline Hook payload: missing merge_request.iid",
            ),
            (
                "Pipeline Hook",
                without("pipeline.json", "object_attributes", "sha"),
                "Pipeline Hook payload: missing object_attributes.sha",
            ),
            (
                "Push Hook",
                without("push.json", "", "after"),
                "Push Hook payload: missing after",
            ),
        ];
        for (event, payload, message) in cases {
            let e = effects_of_json(event, &payload).expect_err(message);
            assert_eq!(e.to_string(), message);
        }
    }
}
