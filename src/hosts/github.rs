//! GitHub: deliveries signed with `X-Hub-Signature-256: sha256=<hex>` (or only the legacy
//! `X-Hub-Signature`, holding `sha1=<hex>` or, as some GitHub-compatible senders write it,
//! `sha256=<hex>`), named by `X-GitHub-Event` plus the body's `action`, keyed by
//! `X-GitHub-Delivery`. A hook configured as *form* sends the JSON in a `payload` form field; the
//! signature covers the form bytes, the event is read from the decoded JSON.

use std::borrow::Cow;

use http::HeaderMap;
use serde_json::{Value, json};

use super::effects::{
    self, ChangesetEffect, ChangesetSnapshot, ChangesetState, CheckResult, CheckStatus, Effect,
    EffectError, HostEvent, PushEffect, RefUpdate, RepositoryRef, ReviewVote, Target, Vote,
    check_summary, ending, i64_at, id_text, label_list, parse_time, short_sha, str_at, string_at,
};
use super::signature::{self, Algorithm, Prefix};
use super::{
    Classified, ClassifyError, Disposition, Payload, TestDelivery, Verified, VerifyError,
    delivery_key, event_header, header_text, json_bytes, with_action,
};

/// Where GitHub puts the current signature.
const SIGNATURE_256: &str = "X-Hub-Signature-256";
/// Where GitHub puts the legacy HMAC-SHA1 signature (and some GitHub-compatible senders an
/// HMAC-SHA256 one).
const SIGNATURE_LEGACY: &str = "X-Hub-Signature";
const EVENT: &str = "X-GitHub-Event";
/// Where this host names the event and the delivery key.
pub(super) const HEADERS: super::HeaderNames = super::HeaderNames {
    event: EVENT,
    keys: &[DELIVERY],
};
use crate::time::Timestamp;
const DELIVERY: &str = "X-GitHub-Delivery";

/// Events a handler takes (DESIGN.md): batch-change sync and push sync, and `repository` (a
/// rename or transfer keeps the repository's identity). `issue_comment` is taken whole; whether
/// the issue is a pull request is the handler's question.
const HANDLED: &[&str] = &[
    "repository",
    "pull_request",
    "pull_request_review",
    "pull_request_review_comment",
    "pull_request_review_thread",
    "issue_comment",
    "check_run",
    "check_suite",
    "status",
    "push",
    "merge_group",
];

/// Headers only Gitea, Forgejo (and Gogs, whose names Gitea keeps) send, which mark a
/// delivery as theirs whatever GitHub headers it also carries.
const GITEA_EVENT_HEADERS: [&str; 4] = [
    "X-Gitea-Event",
    "X-Gitea-Event-Type",
    "X-Forgejo-Event",
    "X-Gogs-Event",
];

/// Where GitHub's merge queue puts a merge group's branch: `gh-readonly-queue/<base>/...`.
const MERGE_QUEUE_PREFIX: &str = "gh-readonly-queue/";

/// How the legacy header may be written: GitHub itself puts `sha1=<hex>` there, some
/// GitHub-compatible senders `sha256=<hex>`.
const LEGACY_EXPECTED: &str = "sha256=<64 hex digits> or sha1=<40 hex digits>";

pub(super) fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[&str],
) -> Result<Verified, VerifyError> {
    // When the SHA-256 header is present it alone decides: a good legacy signature next to a
    // bad SHA-256 one must not pass. Without it, the legacy header is read as whichever
    // algorithm its prefix names; it holds one value, so `sha1=` is only ever consulted when no
    // SHA-256 signature was sent at all.
    let signature = match signature::read_signature(
        headers,
        SIGNATURE_256,
        Algorithm::Sha256,
        Prefix::Required,
    )? {
        Some(s) => s,
        None => signature::read_prefixed_signature(
            headers,
            SIGNATURE_LEGACY,
            &[Algorithm::Sha256, Algorithm::Sha1],
            LEGACY_EXPECTED,
        )?
        .ok_or(VerifyError::Missing {
            header: SIGNATURE_256,
        })?,
    };
    signature::check_hmac(&signature, body, secrets)?;
    Ok(Verified::Signed)
}

pub(super) fn classify<P: Payload>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Classified<P>, ClassifyError> {
    // Gitea and Forgejo send GitHub's headers too, signed the same way, with their own event
    // names; they also send their own, which GitHub never does.
    if let Some(header) = GITEA_EVENT_HEADERS
        .into_iter()
        .find(|name| headers.contains_key(*name))
    {
        return Err(ClassifyError::WrongHost(format!(
            "this is a Gitea or Forgejo delivery ({header}), which a GitHub receiver does not take: create a CODE_HOST_KIND_GITEA receiver for it"
        )));
    }
    let event = event_header(headers, EVENT)?;
    let json = if is_form(headers) {
        form_payload(event, body)?
    } else {
        Cow::Borrowed(body)
    };
    let payload = P::parse(event, &json)?;
    let disposition = match event {
        "ping" => Disposition::Ping,
        e if HANDLED.contains(&e) => Disposition::Handled,
        _ => Disposition::Ignored,
    };
    Ok(Classified {
        event: with_action(event, payload.action()),
        delivery_key: delivery_key(headers, &[DELIVERY]),
        disposition,
        payload,
    })
}

/// Whether the body is `application/x-www-form-urlencoded` (parameters such as a charset aside).
fn is_form(headers: &HeaderMap) -> bool {
    header_text(headers, "Content-Type")
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|media| {
            media
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// The JSON of a form-encoded delivery: its `payload` field, decoded.
fn form_payload<'b>(event: &str, body: &'b [u8]) -> Result<Cow<'b, [u8]>, ClassifyError> {
    form_urlencoded::parse(body)
        .find(|(name, _)| name == "payload")
        .map(|(_, value)| Cow::Owned(value.into_owned().into_bytes()))
        .ok_or_else(|| {
            ClassifyError::BadBody(format!(
                "body of a form-encoded {event} event must have a payload field holding the JSON"
            ))
        })
}

/// GitHub's `ping`, as it sends it when a hook is created or "Redeliver" is pressed on it.
pub(super) fn test_delivery(secret: &str, key: &str) -> TestDelivery {
    let body = json_bytes(&json!({
        "zen": "Design for failure.",
        "hook_id": 0,
        "hook": {
            "type": "Repository",
            "id": 0,
            "name": "web",
            "active": true,
            "events": ["*"],
            "config": {
                "content_type": "json",
                "insecure_ssl": "0"
            }
        }
    }));
    TestDelivery {
        headers: vec![
            ("User-Agent", "GitHub-Hookshot/hookgate-test".to_owned()),
            (EVENT, "ping".to_owned()),
            (DELIVERY, key.to_owned()),
            ("X-GitHub-Hook-ID", "0".to_owned()),
            (
                SIGNATURE_LEGACY,
                signature::header_value(Algorithm::Sha1, secret, &body),
            ),
            (
                SIGNATURE_256,
                signature::header_value(Algorithm::Sha256, secret, &body),
            ),
        ],
        body,
    }
}

/// Every object key GitHub's effects read (see `payload::Kept`): each name this module's code
/// spells in a string (pointers split at `/`), and `labels`, which `effects::label_list` reads.
/// Some are event and action names, not keys: keeping a key of such a name costs little.
/// `the_vocabulary_names_every_key_this_module_spells` checks that none is missing.
pub(super) struct Keys;

impl super::payload::Vocabulary for Keys {
    #[rustfmt::skip]
    const KEYS: &'static [&'static str] = &[
    "Repository", "action", "active", "after", "app", "approved", "assigned", "assignee",
    "auto_merge_disabled", "auto_merge_enabled", "base", "base_ref", "before", "changes_requested",
    "check", "check_run", "check_suite", "checks_requested", "clone_url", "closed", "comment",
    "completed", "completed_at", "conclusion", "config", "content_type", "context",
    "converted_to_draft", "created_at", "deleted", "dequeued", "destroyed", "dismissed", "draft",
    "edited", "enqueued", "error", "events", "failure", "full_name", "head", "head_branch",
    "head_commit", "head_ref", "head_sha", "heads", "hook", "hook_id", "html_url", "id",
    "insecure_ssl", "issue", "issue_comment", "json", "label", "labeled", "labels", "login",
    "merge_group", "merge_group_checks_requested", "merge_group_destroyed", "merged", "merged_at",
    "name", "neutral", "node_id", "number", "open", "opened", "payload", "pending", "ping",
    "pull_request", "pull_request_review", "pull_request_review_comment",
    "pull_request_review_thread", "pull_requests", "push", "pusher", "ready_for_review", "reason",
    "ref", "refs", "renamed", "reopened", "repo", "repository", "requested_reviewer",
    "requested_team", "resolved", "review", "review_request_removed", "review_requested", "sender",
    "sha", "skipped", "someone", "ssh_url", "started_at", "state", "status", "submitted",
    "submitted_at", "success", "synchronize", "thread", "thread_resolved", "thread_unresolved",
    "timestamp", "title", "transferred", "type", "unassigned", "unlabeled", "unresolved",
    "updated_at", "user", "web", "zen",
    ];
}

/// The effects of a `Handled` event (see `super::effects`): pull request events, reviews,
/// review comments, review threads resolved or unresolved and issue comments on pull requests,
/// check runs, check suites, commit statuses and merge groups each give one changeset effect
/// (check runs and suites one per pull request they name); a push gives one push effect; a
/// repository renamed or transferred gives one repository effect (its other actions none).
pub(super) fn effects(event: &str, payload: &Value) -> Result<Vec<Effect>, EffectError> {
    let name = event.split('/').next().unwrap_or(event);
    let action = str_at(payload, "/action").unwrap_or_default();
    let actor = str_at(payload, "/sender/login").unwrap_or_default();
    let on = Event {
        event,
        payload,
        actor,
        host: GitHub { action },
    };
    match name {
        "pull_request" => on.pull_request().map(|e| vec![e]),
        "pull_request_review" => on.review().map(|e| vec![e]),
        "pull_request_review_comment" => on.review_comment().map(|e| vec![e]),
        "pull_request_review_thread" => on.review_thread().map(|e| e.into_iter().collect()),
        "issue_comment" => on.issue_comment().map(|e| e.into_iter().collect()),
        "check_run" => on.check_run(),
        "check_suite" => on.check_suite(),
        "status" => on.status().map(|e| vec![e]),
        "push" => on.push().map(|e| vec![e]),
        "merge_group" => on.merge_group().map(|e| e.into_iter().collect()),
        "repository" => on.renamed_or_transferred(),
        _ => Ok(Vec::new()),
    }
}

/// What the GitHub module adds to an event being turned into effects.
struct GitHub<'p> {
    /// The body's `action`; empty for events that have none (`status`, `push`).
    action: &'p str,
}

/// One GitHub event being turned into effects.
type Event<'p> = effects::Event<'p, GitHub<'p>>;

impl HostEvent for GitHub<'_> {
    /// The repository every GitHub event carries, by `full_name` and `id` (one may be absent).
    fn repository(event: &effects::Event<'_, Self>) -> Result<RepositoryRef, EffectError> {
        repository_of(event.payload, event.event)
    }
}

/// The `repository` object as GitHub writes it (and Gitea, which copies its shape): by
/// `full_name` and numeric `id`, with its page and clone URLs.
pub(super) fn repository_of(payload: &Value, event: &str) -> Result<RepositoryRef, EffectError> {
    RepositoryRef {
        name: string_at(payload, "/repository/full_name").unwrap_or_default(),
        external_id: id_text(payload.pointer("/repository/id")),
        url: string_at(payload, "/repository/html_url").unwrap_or_default(),
        clone_urls: ["/repository/clone_url", "/repository/ssh_url"]
            .iter()
            .filter_map(|p| string_at(payload, p))
            .collect(),
    }
    .identified(event, "repository.full_name")
}

impl<'p> Event<'p> {
    /// A `repository` event: `renamed` and `transferred` say what the repository is now called
    /// (the same id); the other actions say nothing hookgate keeps.
    fn renamed_or_transferred(&self) -> Result<Vec<Effect>, EffectError> {
        match self.host.action {
            "renamed" | "transferred" => Ok(vec![Effect::Repository(self.repository()?)]),
            _ => Ok(Vec::new()),
        }
    }

    /// `pull_request/*`: the action is the timeline kind, except that a closed pull request
    /// that was merged is `merged`. `enqueued` / `dequeued` say whether it is in the merge
    /// queue, `auto_merge_enabled` / `auto_merge_disabled` whether it is set to auto-merge.
    fn pull_request(&self) -> Result<Effect, EffectError> {
        let pr = self.need("/pull_request")?;
        let number = self.need_i64("/pull_request/number")?;
        let mut snapshot = pull_request_snapshot(pr);
        match self.host.action {
            "enqueued" => snapshot.in_merge_queue = Some(true),
            "dequeued" => snapshot.in_merge_queue = Some(false),
            "auto_merge_enabled" => snapshot.auto_merge = Some(true),
            "auto_merge_disabled" => snapshot.auto_merge = Some(false),
            _ => {}
        }
        let kind = match self.host.action {
            "closed" if snapshot.state == Some(ChangesetState::Merged) => "merged",
            "" => return Err(self.missing("/action")),
            action => action,
        };
        let summary = self.pull_request_summary(kind, number, &snapshot);
        let occur_time = pr.get("updated_at").and_then(parse_time);
        self.changeset(
            Target::Number(number),
            occur_time,
            kind,
            summary,
            String::new(),
            snapshot,
        )
        .map(Effect::Changeset)
    }

    /// `octocat opened #2 "Update the README"`, worded for the action.
    fn pull_request_summary(&self, kind: &str, number: i64, pr: &ChangesetSnapshot) -> String {
        let who = self.who();
        let titled = match &pr.title {
            Some(title) => format!("#{number} \"{title}\""),
            None => format!("#{number}"),
        };
        let label = || str_at(self.payload, "/label/name").unwrap_or("a label");
        let user = |pointer: &str| str_at(self.payload, pointer).unwrap_or("someone");
        let reviewer = || {
            str_at(self.payload, "/requested_reviewer/login")
                .or_else(|| str_at(self.payload, "/requested_team/name"))
                .unwrap_or("someone")
        };
        match kind {
            "opened" | "closed" | "merged" | "reopened" | "edited" => {
                format!("{who} {kind} {titled}")
            }
            "synchronize" => match pr.head_sha.as_deref() {
                Some(sha) => format!("{who} pushed {} to #{number}", short_sha(sha)),
                None => format!("{who} pushed to #{number}"),
            },
            "ready_for_review" => format!("{who} marked #{number} ready for review"),
            "converted_to_draft" => format!("{who} converted #{number} to a draft"),
            "labeled" => format!("{who} labeled #{number} \"{}\"", label()),
            "unlabeled" => format!("{who} removed the label \"{}\" from #{number}", label()),
            "assigned" => format!("{who} assigned {} to #{number}", user("/assignee/login")),
            "unassigned" => format!(
                "{who} unassigned {} from #{number}",
                user("/assignee/login")
            ),
            "review_requested" => {
                format!("{who} requested a review from {} on #{number}", reviewer())
            }
            "review_request_removed" => format!(
                "{who} removed the review request for {} on #{number}",
                reviewer()
            ),
            "enqueued" => format!("{who} added #{number} to the merge queue"),
            // GitHub says why (`MANUAL`, `MERGE`, `CI_FAILURE`, ...) in `reason`.
            "dequeued" => match str_at(self.payload, "/reason").filter(|r| !r.is_empty()) {
                Some(reason) => format!("{who} removed #{number} from the merge queue ({reason})"),
                None => format!("{who} removed #{number} from the merge queue"),
            },
            "auto_merge_enabled" => format!("{who} enabled auto-merge on #{number}"),
            "auto_merge_disabled" => format!("{who} disabled auto-merge on #{number}"),
            other => format!("{who} {} {titled}", other.replace('_', " ")),
        }
    }

    /// `pull_request_review/*`: an approval or a change request is a vote, a dismissal
    /// withdraws the reviewer's vote, and a comment-only review is a timeline entry alone.
    fn review(&self) -> Result<Effect, EffectError> {
        let pr = self.need("/pull_request")?;
        let number = self.need_i64("/pull_request/number")?;
        let review = self.need("/review")?;
        let state = str_at(review, "/state")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let vote = match (self.host.action, state.as_str()) {
            ("dismissed", _) => Some(Vote::Withdrawn),
            ("submitted" | "edited", "approved") => Some(Vote::Approved),
            ("submitted" | "edited", "changes_requested") => Some(Vote::ChangesRequested),
            _ => None,
        };
        let reviewer = str_at(review, "/user/login");
        let review_vote = match vote {
            Some(vote) => Some(ReviewVote {
                reviewer: reviewer
                    .ok_or_else(|| self.missing("/review/user/login"))?
                    .to_owned(),
                vote,
            }),
            None => None,
        };
        let who = self.who();
        let summary = match (self.host.action, vote) {
            ("dismissed", _) => format!(
                "{who} dismissed {}'s review on #{number}",
                reviewer.unwrap_or("someone")
            ),
            ("edited", _) => format!("{who} edited a review on #{number}"),
            (_, Some(Vote::Approved)) => format!("{who} approved #{number}"),
            (_, Some(Vote::ChangesRequested)) => format!("{who} requested changes on #{number}"),
            _ => format!("{who} reviewed #{number}"),
        };
        let submitted = review.get("submitted_at").and_then(parse_time);
        let pr_updated = pr.get("updated_at").and_then(parse_time);
        // `submitted_at` dates the review, not its dismissal; the later of it and the pull
        // request's `updated_at` (as of the dismissal) is the closer bound.
        let occur_time = match self.host.action {
            "dismissed" => submitted.max(pr_updated),
            _ => submitted.or(pr_updated),
        };
        // A dismissal is an entry of its own; an edit updates the review's.
        let external_id = ending(
            self.id_at("/review/id"),
            self.host.action == "dismissed",
            "dismissed",
        );
        let effect = self.changeset(
            Target::Number(number),
            occur_time,
            "review",
            summary,
            external_id,
            pull_request_snapshot(pr),
        )?;
        Ok(Effect::Changeset(ChangesetEffect {
            review: review_vote,
            ..effect
        }))
    }

    /// `pull_request_review_comment/*`: a comment on the diff of a pull request.
    fn review_comment(&self) -> Result<Effect, EffectError> {
        let pr = self.need("/pull_request")?;
        let number = self.need_i64("/pull_request/number")?;
        let comment = self.need("/comment")?;
        self.changeset(
            Target::Number(number),
            self.comment_time(comment, pr),
            "comment",
            self.comment_summary(number),
            self.comment_id(),
            pull_request_snapshot(pr),
        )
        .map(Effect::Changeset)
    }

    /// `pull_request_review_thread/resolved` and `/unresolved`: a timeline entry of that kind
    /// (`thread_resolved`, `thread_unresolved`) keyed by the thread's id, so a thread resolved,
    /// reopened and resolved again keeps one entry of each kind, showing its latest fact. The
    /// payload carries no time of the resolution: the pull request's `updated_at` is the
    /// closest bound. Other actions give nothing.
    fn review_thread(&self) -> Result<Option<Effect>, EffectError> {
        let kind = match self.host.action {
            "resolved" => "thread_resolved",
            "unresolved" => "thread_unresolved",
            _ => return Ok(None),
        };
        let pr = self.need("/pull_request")?;
        let number = self.need_i64("/pull_request/number")?;
        self.need("/thread")?;
        // GitHub's thread has only a GraphQL `node_id`; a numeric `id` is taken if a sender
        // adds one.
        let thread_id = match self.id_at("/thread/node_id") {
            id if id.is_empty() => self.id_at("/thread/id"),
            id => id,
        };
        if thread_id.is_empty() {
            return Err(self.missing("/thread/node_id"));
        }
        let who = self.who();
        let summary = format!("{who} {} a review thread on #{number}", self.host.action);
        self.changeset(
            Target::Number(number),
            pr.get("updated_at").and_then(parse_time),
            kind,
            summary,
            thread_id,
            pull_request_snapshot(pr),
        )
        .map(|effect| Some(Effect::Changeset(effect)))
    }

    /// `issue_comment/*`: a comment on a pull request's conversation, or nothing when the issue
    /// is not a pull request.
    fn issue_comment(&self) -> Result<Option<Effect>, EffectError> {
        let issue = self.need("/issue")?;
        let on_pull_request = issue.get("pull_request").is_some_and(Value::is_object);
        if !on_pull_request {
            return Ok(None);
        }
        let number = self.need_i64("/issue/number")?;
        let comment = self.need("/comment")?;
        self.changeset(
            Target::Number(number),
            self.comment_time(comment, issue),
            "comment",
            self.comment_summary(number),
            self.comment_id(),
            issue_snapshot(issue),
        )
        .map(|effect| Some(Effect::Changeset(effect)))
    }

    /// The comment's timeline key: its id, which its edits share, with `/deleted` for its
    /// deletion.
    fn comment_id(&self) -> String {
        ending(
            self.id_at("/comment/id"),
            self.host.action == "deleted",
            "deleted",
        )
    }

    /// A comment's time: when it was last updated, else when it was made. A deletion carries the
    /// comment as it was, so the later of that and its pull request's (or issue's) `updated_at`
    /// is the closer bound.
    fn comment_time(&self, comment: &Value, on: &Value) -> Option<Timestamp> {
        let time = comment
            .get("updated_at")
            .and_then(parse_time)
            .or_else(|| comment.get("created_at").and_then(parse_time));
        match self.host.action {
            "deleted" => time.max(on.get("updated_at").and_then(parse_time)),
            _ => time,
        }
    }

    /// The host id at `pointer` as text; empty when the payload has none (the entry is then
    /// keyed by its time and summary).
    fn id_at(&self, pointer: &str) -> String {
        id_text(self.payload.pointer(pointer))
    }

    /// `octocat commented on #2`, worded for the action.
    fn comment_summary(&self, number: i64) -> String {
        let who = self.who();
        match self.host.action {
            "edited" => format!("{who} edited a comment on #{number}"),
            "deleted" => format!("{who} deleted a comment on #{number}"),
            _ => format!("{who} commented on #{number}"),
        }
    }

    /// `merge_group/checks_requested` and `/destroyed`: a timeline entry on the changeset of
    /// the pull request the group is for, keyed by the group's head commit (`<sha>/destroyed`
    /// for its end). GitHub makes one group per queued pull request, on a branch named
    /// `gh-readonly-queue/<base>/pr-<number>-<sha>` after it; a group that also holds pull
    /// requests queued ahead of it is still named after (and recorded on) the last one, whose
    /// merge it tests. Only a changeset hookgate already has is touched (see
    /// [`Target::MergeGroup`]); the group says nothing about the pull request's own fields.
    /// `checks_requested` is timed by the group's head commit; `destroyed` carries no time (the
    /// delivery's is used). Other actions give nothing.
    fn merge_group(&self) -> Result<Option<Effect>, EffectError> {
        let destroyed = match self.host.action {
            "checks_requested" => false,
            "destroyed" => true,
            _ => return Ok(None),
        };
        self.need("/merge_group")?;
        let head_ref = self.need_str("/merge_group/head_ref")?;
        let head_sha = self.need_str("/merge_group/head_sha")?;
        let number = merge_group_number(head_ref);
        let base = str_at(self.payload, "/merge_group/base_ref")
            .map(|r| r.trim_start_matches("refs/heads/"))
            .unwrap_or("its base");
        let group = match number {
            Some(n) => format!(
                "the merge group {} of #{n} into {base}",
                short_sha(head_sha)
            ),
            None => format!("the merge group {} into {base}", short_sha(head_sha)),
        };
        let summary = if destroyed {
            match str_at(self.payload, "/reason").filter(|r| !r.is_empty()) {
                Some(reason) => format!("{group} was destroyed ({reason})"),
                None => format!("{group} was destroyed"),
            }
        } else {
            format!("{group} requested checks")
        };
        let occur_time = match destroyed {
            true => None,
            false => self
                .payload
                .pointer("/merge_group/head_commit/timestamp")
                .and_then(parse_time),
        };
        let kind = match destroyed {
            true => "merge_group_destroyed",
            false => "merge_group_checks_requested",
        };
        self.changeset(
            Target::MergeGroup {
                head_ref: head_ref.to_owned(),
                number,
            },
            occur_time,
            kind,
            summary,
            ending(head_sha.to_owned(), destroyed, "destroyed"),
            ChangesetSnapshot::default(),
        )
        .map(|effect| Some(Effect::Changeset(effect)))
    }

    /// `check_run/*`: one check named after the run, on its head commit.
    fn check_run(&self) -> Result<Vec<Effect>, EffectError> {
        let run = self.need("/check_run")?;
        let context = self.need_str("/check_run/name")?;
        let occur_time = run
            .get("completed_at")
            .and_then(parse_time)
            .or_else(|| run.get("started_at").and_then(parse_time));
        let id = self.id_at("/check_run/id");
        self.checks(run, "/check_run", context, occur_time, &id)
    }

    /// `check_suite/*`: one check named after the suite's app, on its head commit.
    fn check_suite(&self) -> Result<Vec<Effect>, EffectError> {
        let suite = self.need("/check_suite")?;
        let context = str_at(suite, "/app/name").unwrap_or("check_suite");
        let occur_time = suite.get("updated_at").and_then(parse_time);
        let id = self.id_at("/check_suite/id");
        self.checks(suite, "/check_suite", context, occur_time, &id)
    }

    /// The effects of a check run or suite (`check` at `pointer`): one per pull request of this
    /// repository that it lists, or one for its head commit when it lists none. `id` is the run's
    /// or suite's: its timeline entry follows it from queued to completed.
    fn checks(
        &self,
        check: &Value,
        pointer: &str,
        context: &str,
        occur_time: Option<Timestamp>,
        id: &str,
    ) -> Result<Vec<Effect>, EffectError> {
        let sha = self.need_str(&format!("{pointer}/head_sha"))?;
        let result = CheckResult {
            context: context.to_owned(),
            sha: sha.to_owned(),
            status: check_status(check),
        };
        let summary = check_summary(&result.context, result.status, &result.sha);
        let repository_id = self.payload.pointer("/repository/id");
        // A check of a merge group (on its `gh-readonly-queue/...` branch) tests the group's
        // merge commit, not the pull request: whatever pull requests it lists, it targets only
        // its own commit, which is no pull request's head, so it never counts toward a pull
        // request's check state nor moves its head.
        let head_branch = str_at(check, "/head_branch")
            .or_else(|| str_at(check, "/check_suite/head_branch"))
            .unwrap_or_default();
        let listed = if is_merge_queue_branch(head_branch) {
            &[][..]
        } else {
            check
                .get("pull_requests")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
        };
        let mut targets = Vec::new();
        for (i, pr) in listed.iter().enumerate() {
            // A check on a branch that is also the head of a pull request in another
            // repository (a fork's upstream) lists that pull request too; its number means
            // nothing here.
            let base_repository = pr.pointer("/base/repo/id");
            if base_repository.is_some()
                && repository_id.is_some()
                && base_repository != repository_id
            {
                continue;
            }
            let number = i64_at(pr, "/number")
                .ok_or_else(|| self.missing(&format!("{pointer}/pull_requests/{i}/number")))?;
            let snapshot = ChangesetSnapshot {
                head_ref: string_at(pr, "/head/ref"),
                base_ref: string_at(pr, "/base/ref"),
                head_sha: string_at(pr, "/head/sha"),
                ..ChangesetSnapshot::default()
            };
            targets.push((Target::Number(number), snapshot));
        }
        if targets.is_empty() {
            targets.push((
                Target::HeadSha(sha.to_owned()),
                ChangesetSnapshot::default(),
            ));
        }
        targets
            .into_iter()
            .map(|(target, snapshot)| {
                self.check_effect(target, occur_time, summary.clone(), id, snapshot, &result)
            })
            .collect()
    }

    /// A `check` timeline entry keyed `id`, carrying `result`.
    fn check_effect(
        &self,
        target: Target,
        occur_time: Option<Timestamp>,
        summary: String,
        id: &str,
        snapshot: ChangesetSnapshot,
        result: &CheckResult,
    ) -> Result<Effect, EffectError> {
        let effect = self.changeset(
            target,
            occur_time,
            "check",
            summary,
            id.to_owned(),
            snapshot,
        )?;
        Ok(Effect::Changeset(ChangesetEffect {
            check: Some(result.clone()),
            ..effect
        }))
    }

    /// `status`: a commit status, which names no pull request, only its commit.
    fn status(&self) -> Result<Effect, EffectError> {
        let sha = self.need_str("/sha")?;
        let context = self.need_str("/context")?;
        let state = self.need_str("/state")?;
        let status = match state {
            "success" => CheckStatus::Passed,
            "pending" => CheckStatus::Pending,
            "failure" | "error" => CheckStatus::Failed,
            other => {
                return Err(EffectError::new(
                    self.event,
                    format!("state {other:?} is none of success, pending, failure, error"),
                ));
            }
        };
        let result = CheckResult {
            context: context.to_owned(),
            sha: sha.to_owned(),
            status,
        };
        self.check_effect(
            Target::HeadSha(sha.to_owned()),
            self.payload.get("updated_at").and_then(parse_time),
            check_summary(&result.context, result.status, &result.sha),
            &self.id_at("/id"),
            ChangesetSnapshot::default(),
            &result,
        )
    }

    /// `push`: the one ref it changed.
    fn push(&self) -> Result<Effect, EffectError> {
        let update = RefUpdate {
            name: self.need_str("/ref")?.to_owned(),
            old_sha: self.need_str("/before")?.to_owned(),
            new_sha: self.need_str("/after")?.to_owned(),
        };
        let actor = match self.actor {
            "" => str_at(self.payload, "/pusher/name").unwrap_or_default(),
            login => login,
        };
        Ok(Effect::Push(PushEffect {
            repository: self.repository()?,
            refs: vec![update],
            actor: actor.to_owned(),
        }))
    }
}

/// What a full pull request object (`pull_request` of a pull request, review or review comment
/// event) says about the changeset.
/// Whether `branch` (with or without `refs/heads/`) is a merge queue's branch.
fn is_merge_queue_branch(branch: &str) -> bool {
    branch
        .trim_start_matches("refs/heads/")
        .starts_with(MERGE_QUEUE_PREFIX)
}

/// The pull request number a merge group's head ref names:
/// `refs/heads/gh-readonly-queue/<base>/pr-<number>-<sha>` (the base may hold slashes) gives
/// `<number>`; any other ref `None`.
fn merge_group_number(head_ref: &str) -> Option<i64> {
    let rest = head_ref
        .trim_start_matches("refs/heads/")
        .strip_prefix(MERGE_QUEUE_PREFIX)?;
    let (base, last) = rest.rsplit_once('/')?;
    let (digits, sha) = last.strip_prefix("pr-")?.split_once('-')?;
    if base.is_empty() || sha.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|n| *n > 0)
}

pub(super) fn pull_request_snapshot(pr: &Value) -> ChangesetSnapshot {
    // Review and review comment events leave out `merged`, but carry `merged_at`.
    let merged = match pr.get("merged") {
        Some(Value::Bool(merged)) => Some(*merged),
        _ => merged_from_time(pr.get("merged_at")),
    };
    ChangesetSnapshot {
        title: string_at(pr, "/title"),
        url: string_at(pr, "/html_url"),
        author: string_at(pr, "/user/login"),
        state: state(str_at(pr, "/state"), merged, pr.get("draft")),
        head_ref: string_at(pr, "/head/ref"),
        base_ref: string_at(pr, "/base/ref"),
        head_sha: string_at(pr, "/head/sha"),
        labels: label_list(pr, "name"),
        host_update_time: pr.get("updated_at").and_then(parse_time),
        in_merge_queue: None,
        auto_merge: None,
    }
}

/// What the issue of an `issue_comment` on a pull request says about the changeset: no
/// branches or commits, and whether it was merged only when `pull_request.merged_at` is sent.
fn issue_snapshot(issue: &Value) -> ChangesetSnapshot {
    issue_snapshot_merged(
        issue,
        merged_from_time(issue.pointer("/pull_request/merged_at")),
    )
}

/// What an issue-shaped pull request says about the changeset, `merged` as its host tells it.
pub(super) fn issue_snapshot_merged(issue: &Value, merged: Option<bool>) -> ChangesetSnapshot {
    ChangesetSnapshot {
        title: string_at(issue, "/title"),
        url: string_at(issue, "/html_url"),
        author: string_at(issue, "/user/login"),
        state: state(str_at(issue, "/state"), merged, issue.get("draft")),
        labels: label_list(issue, "name"),
        host_update_time: issue.get("updated_at").and_then(parse_time),
        ..ChangesetSnapshot::default()
    }
}

/// Whether a pull request was merged, from its `merged_at`: a time when it was, `null` when it
/// was not, unknown when the field is absent.
pub(super) fn merged_from_time(merged_at: Option<&Value>) -> Option<bool> {
    match merged_at {
        Some(Value::String(_)) => Some(true),
        Some(Value::Null) => Some(false),
        _ => None,
    }
}

/// The changeset state from GitHub's `state` (`open`/`closed`), whether it was merged, and its
/// `draft` flag. A closed pull request whose merging the payload does not tell has no state:
/// guessing `Closed` would undo a `Merged`.
pub(super) fn state(
    state: Option<&str>,
    merged: Option<bool>,
    draft: Option<&Value>,
) -> Option<ChangesetState> {
    if merged == Some(true) {
        return Some(ChangesetState::Merged);
    }
    match state? {
        "closed" => merged.map(|_| ChangesetState::Closed),
        "open" if draft.and_then(Value::as_bool) == Some(true) => Some(ChangesetState::Draft),
        "open" => Some(ChangesetState::Open),
        _ => None,
    }
}

/// The status of a check run or suite: not completed is pending; completed passes with a
/// success, neutral or skipped conclusion and fails with any other.
fn check_status(check: &Value) -> CheckStatus {
    if str_at(check, "/status") != Some("completed") {
        return CheckStatus::Pending;
    }
    match str_at(check, "/conclusion") {
        Some("success" | "neutral" | "skipped") => CheckStatus::Passed,
        _ => CheckStatus::Failed,
    }
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
        ("check_run.completed.json", "check_run", "check_run/completed", Handled),
        ("check_suite.completed.json", "check_suite", "check_suite/completed", Handled),
        ("merge_group.checks_requested.json", "merge_group", "merge_group/checks_requested", Handled),
        ("merge_group.destroyed.json", "merge_group", "merge_group/destroyed", Handled),
        ("issue_comment.created.json", "issue_comment", "issue_comment/created", Handled),
        ("ping.json", "ping", "ping", Ping),
        ("pull_request.closed.json", "pull_request", "pull_request/closed", Handled),
        ("pull_request.closed.merged.json", "pull_request", "pull_request/closed", Handled),
        ("pull_request.converted_to_draft.json", "pull_request", "pull_request/converted_to_draft", Handled),
        ("pull_request.auto_merge_disabled.json", "pull_request", "pull_request/auto_merge_disabled", Handled),
        ("pull_request.auto_merge_enabled.json", "pull_request", "pull_request/auto_merge_enabled", Handled),
        ("pull_request.dequeued.json", "pull_request", "pull_request/dequeued", Handled),
        ("pull_request.enqueued.json", "pull_request", "pull_request/enqueued", Handled),
        ("pull_request.edited.json", "pull_request", "pull_request/edited", Handled),
        ("pull_request.labeled.json", "pull_request", "pull_request/labeled", Handled),
        ("pull_request.opened.json", "pull_request", "pull_request/opened", Handled),
        ("pull_request.ready_for_review.json", "pull_request", "pull_request/ready_for_review", Handled),
        ("pull_request.reopened.json", "pull_request", "pull_request/reopened", Handled),
        ("pull_request.synchronize.json", "pull_request", "pull_request/synchronize", Handled),
        ("pull_request_review.dismissed.json", "pull_request_review", "pull_request_review/dismissed", Handled),
        ("pull_request_review.submitted.json", "pull_request_review", "pull_request_review/submitted", Handled),
        ("pull_request_review_comment.created.json", "pull_request_review_comment", "pull_request_review_comment/created", Handled),
        ("pull_request_review_thread.resolved.json", "pull_request_review_thread", "pull_request_review_thread/resolved", Handled),
        ("pull_request_review_thread.unresolved.json", "pull_request_review_thread", "pull_request_review_thread/unresolved", Handled),
        ("push.branch-created.json", "push", "push", Handled),
        ("push.branch-updated.json", "push", "push", Handled),
        ("push.tag-deleted.json", "push", "push", Handled),
        ("repository.renamed.json", "repository", "repository/renamed", Handled),
        ("repository.transferred.json", "repository", "repository/transferred", Handled),
        ("status.json", "status", "status", Handled),
    ];

    const SECRET: &str = "gh-secret";

    fn signed(event: &str, body: &[u8]) -> HeaderMap {
        host_headers(Host::GitHub, event, "d-1", Some(SECRET), body)
    }

    #[test]
    fn every_github_fixture_is_named_keyed_and_verified() {
        assert_every_fixture(Host::GitHub, "github", CASES);
    }

    #[test]
    fn a_delivery_without_an_event_header_is_refused_naming_the_header() {
        let body = fixture("github/push.branch-updated.json");
        let h = headers(&[
            ("X-GitHub-Delivery", "d-1"),
            (
                "X-Hub-Signature-256",
                &format!("sha256={}", sign_hmac_sha256_hex(SECRET, &body)),
            ),
        ]);
        let e = classify(Host::GitHub, &h, &body).expect_err("no event header");
        assert_eq!(e, ClassifyError::MissingEventHeader("X-GitHub-Event"));
        assert_eq!(e.to_string(), "missing X-GitHub-Event header");
    }

    #[test]
    fn a_body_that_is_not_json_is_a_bad_body_naming_the_event() {
        let body = b"<xml>not json</xml>";
        let e = classify(Host::GitHub, &signed("pull_request", body), body).expect_err("not JSON");
        let ClassifyError::BadBody(message) = e else {
            panic!("expected BadBody, got {e:?}");
        };
        assert!(
            message.starts_with("body of a pull_request event must be JSON: "),
            "{message}"
        );
    }

    #[test]
    fn a_json_body_that_is_not_an_object_is_a_bad_body() {
        let body = b"[1, 2, 3]";
        assert!(matches!(
            classify(Host::GitHub, &signed("push", body), body),
            Err(ClassifyError::BadBody(_))
        ));
    }

    #[test]
    fn a_form_encoded_delivery_is_verified_on_the_form_and_classified_by_its_payload_field() {
        let json = fixture("github/pull_request.opened.json");
        let json = String::from_utf8(json).expect("the fixture is UTF-8");
        let form: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &json)
            .finish();
        let mut h = signed("pull_request", form.as_bytes());
        h.insert(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8"
                .parse()
                .expect("a valid header value"),
        );
        assert_eq!(
            verify(Host::GitHub, &h, form.as_bytes(), &[SECRET]),
            Ok(Verified::Signed)
        );
        let classified = classify(Host::GitHub, &h, form.as_bytes()).expect("it classifies");
        assert_eq!(classified.event, "pull_request/opened");
        assert_eq!(classified.disposition, Disposition::Handled);
        assert_eq!(classified.payload["pull_request"]["number"], 2);
    }

    #[test]
    fn a_form_without_a_payload_field_is_a_bad_body() {
        let form = b"other=1&more=2";
        let mut h = signed("push", form);
        h.insert(
            "content-type",
            "application/x-www-form-urlencoded".parse().expect("valid"),
        );
        let e = classify(Host::GitHub, &h, form).expect_err("no payload field");
        assert!(matches!(e, ClassifyError::BadBody(ref m) if m.contains("payload field")));
    }

    #[test]
    fn a_legacy_sha1_signature_alone_is_checked_with_hmac_sha1() {
        let body = fixture("github/push.branch-updated.json");
        let good = signature::header_value(Algorithm::Sha1, SECRET, &body);
        let h = headers(&[("X-GitHub-Event", "push"), ("X-Hub-Signature", &good)]);
        assert_eq!(
            verify(Host::GitHub, &h, &body, &[SECRET]),
            Ok(Verified::Signed)
        );

        let bad = signature::header_value(Algorithm::Sha1, "other", &body);
        let h = headers(&[("X-GitHub-Event", "push"), ("X-Hub-Signature", &bad)]);
        assert_eq!(
            verify(Host::GitHub, &h, &body, &[SECRET]),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn a_sha256_signature_in_the_legacy_header_is_checked_with_hmac_sha256() {
        let body = fixture("github/pull_request.opened.json");
        let good = signature::header_value(Algorithm::Sha256, SECRET, &body);
        let h = headers(&[("X-Hub-Signature", &good)]);
        assert_eq!(
            verify(Host::GitHub, &h, &body, &[SECRET]),
            Ok(Verified::Signed)
        );
        let bad = signature::header_value(Algorithm::Sha256, "other", &body);
        let h = headers(&[("X-Hub-Signature", &bad)]);
        assert_eq!(
            verify(Host::GitHub, &h, &body, &[SECRET]),
            Err(VerifyError::Mismatch)
        );
        // The SHA-256 digits under the SHA-1 name do not pass as anything else.
        let h = headers(&[("X-Hub-Signature", good.trim_start_matches("sha256="))]);
        assert_eq!(
            verify(Host::GitHub, &h, &body, &[SECRET]),
            Err(VerifyError::Malformed {
                header: "X-Hub-Signature",
                expected: "sha256=<64 hex digits> or sha1=<40 hex digits>"
            })
        );
    }

    #[test]
    fn a_right_legacy_sha256_signature_does_not_rescue_a_wrong_sha256_header() {
        let body = fixture("github/push.branch-updated.json");
        let h = headers(&[
            (
                "X-Hub-Signature",
                &signature::header_value(Algorithm::Sha256, SECRET, &body),
            ),
            (
                "X-Hub-Signature-256",
                &signature::header_value(Algorithm::Sha256, "other", &body),
            ),
        ]);
        assert_eq!(
            verify(Host::GitHub, &h, &body, &[SECRET]),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn a_wrong_sha256_signature_fails_even_next_to_a_right_sha1_one() {
        let body = b"{\"zen\":\"x\"}";
        let h = headers(&[
            (
                "X-Hub-Signature",
                &signature::header_value(Algorithm::Sha1, SECRET, body),
            ),
            (
                "X-Hub-Signature-256",
                &signature::header_value(Algorithm::Sha256, "other", body),
            ),
        ]);
        assert_eq!(
            verify(Host::GitHub, &h, body, &[SECRET]),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn the_previous_secret_is_accepted_during_a_rotation_overlap() {
        let body = fixture("github/ping.json");
        let h = host_headers(Host::GitHub, "ping", "d-1", Some("old-secret"), &body);
        assert_eq!(
            verify(Host::GitHub, &h, &body, &["new-secret", "old-secret"]),
            Ok(Verified::Signed)
        );
        assert_eq!(
            verify(Host::GitHub, &h, &body, &["new-secret"]),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn a_malformed_signature_header_is_reported_with_the_expected_form() {
        let body = b"{}";
        for value in [
            "sha1=0123456789012345678901234567890123456789",
            &sign_hmac_sha256_hex(SECRET, body),
            "sha256=zz",
            "sha256=",
            "",
        ] {
            let h = headers(&[("X-Hub-Signature-256", value)]);
            let e = verify(Host::GitHub, &h, body, &[SECRET]).expect_err(value);
            assert_eq!(
                e.to_string(),
                "malformed X-Hub-Signature-256: expected sha256=<64 hex digits>",
                "{value:?}"
            );
        }
    }

    #[test]
    fn uppercase_hex_and_surrounding_whitespace_are_accepted() {
        let body = fixture("github/status.json");
        let upper = format!(
            "  sha256={}  ",
            sign_hmac_sha256_hex(SECRET, &body).to_uppercase()
        );
        let h = headers(&[("X-Hub-Signature-256", &upper)]);
        assert_eq!(
            verify(Host::GitHub, &h, &body, &[SECRET]),
            Ok(Verified::Signed)
        );
    }

    #[test]
    fn a_delivery_with_no_signature_is_missing_the_sha256_header() {
        let e = verify(Host::GitHub, &headers(&[]), b"{}", &[SECRET]).expect_err("unsigned");
        assert_eq!(e.to_string(), "missing X-Hub-Signature-256");
    }

    #[test]
    fn the_delivery_key_is_trimmed_and_an_empty_one_is_none() {
        let body = b"{}";
        let h = headers(&[("X-GitHub-Event", "star"), ("X-GitHub-Delivery", " abc-1 ")]);
        let classified = classify(Host::GitHub, &h, body).expect("it classifies");
        assert_eq!(classified.delivery_key.as_deref(), Some("abc-1"));
        let h = headers(&[("X-GitHub-Event", "star"), ("X-GitHub-Delivery", "")]);
        let classified = classify(Host::GitHub, &h, body).expect("it classifies");
        assert_eq!(classified.delivery_key, None);
    }

    #[test]
    fn events_no_handler_takes_are_ignored_with_their_action() {
        let body = br#"{"action":"created","starred_at":null}"#;
        let classified = classify(Host::GitHub, &signed("star", body), body).expect("classifies");
        assert_eq!(classified.event, "star/created");
        assert_eq!(classified.disposition, Disposition::Ignored);
    }

    #[test]
    fn the_test_delivery_is_a_ping_signed_both_ways_that_round_trips() {
        assert_test_delivery_round_trips(Host::GitHub, "ping", Disposition::Ping);
        let delivery = test_delivery(SECRET, "k");
        let sha1 = delivery
            .headers
            .iter()
            .find(|(n, _)| *n == "X-Hub-Signature")
            .map(|(_, v)| v.clone())
            .expect("the legacy signature is sent too");
        let h = headers(&[("X-Hub-Signature", &sha1)]);
        assert_eq!(
            verify(Host::GitHub, &h, &delivery.body, &[SECRET]),
            Ok(Verified::Signed)
        );
        let classified = classify(
            Host::GitHub,
            &crate::hosts::testing::test_delivery_headers(&delivery),
            &delivery.body,
        )
        .expect("it classifies");
        assert_eq!(classified.payload["hook"]["type"], "Repository");
        assert!(classified.payload["zen"].is_string());
    }

    // ---- effects ----

    use serde_json::Value;

    /// The fixture `github/<file>` as JSON, to edit into a payload no fixture has.
    fn json_fixture(file: &str) -> Value {
        serde_json::from_slice(&fixture(&format!("github/{file}"))).expect("fixtures are JSON")
    }

    /// The effects of `payload` delivered as a GitHub `event_header` event, classified the way
    /// the ingress classifies it.
    fn effects_of_json(event_header: &str, payload: &Value) -> Result<Vec<Effect>, EffectError> {
        let body = serde_json::to_vec(payload).expect("a Value serialises");
        let classified =
            classify(Host::GitHub, &signed(event_header, &body), &body).expect("it classifies");
        assert_eq!(classified.disposition, Handled, "{}", classified.event);
        crate::hosts::effects(Host::GitHub, &classified.event, &classified.payload)
    }

    /// The effects of the fixture `github/<file>`, delivered as an `event_header` event.
    fn effects_of(event_header: &str, file: &str) -> Vec<Effect> {
        effects_of_json(event_header, &json_fixture(file))
            .unwrap_or_else(|e| panic!("github/{file}: {e}"))
    }

    /// The repository of most fixtures, as read from them.
    fn hello_world() -> RepositoryRef {
        RepositoryRef {
            name: "Codertocat/Hello-World".to_owned(),
            external_id: "186853002".to_owned(),
            url: "https://github.com/Codertocat/Hello-World".to_owned(),
            clone_urls: vec![
                "https://github.com/Codertocat/Hello-World.git".to_owned(),
                "git@github.com:Codertocat/Hello-World.git".to_owned(),
            ],
        }
    }

    #[test]
    fn a_renamed_or_transferred_repository_is_a_repository_effect_with_its_id() {
        for file in ["repository.renamed.json", "repository.transferred.json"] {
            assert_eq!(
                effects_of("repository", file),
                vec![Effect::Repository(RepositoryRef {
                    name: "Octocoders/Hello-World".to_owned(),
                    external_id: "186853261".to_owned(),
                    url: "https://github.com/Octocoders/Hello-World".to_owned(),
                    clone_urls: vec![
                        "https://github.com/Octocoders/Hello-World.git".to_owned(),
                        "git@github.com:Octocoders/Hello-World.git".to_owned(),
                    ],
                })],
                "{file}"
            );
        }
        let mut edited = json_fixture("repository.renamed.json");
        edited["action"] = json!("edited");
        assert_eq!(effects_of_json("repository", &edited), Ok(vec![]));
    }

    #[test]
    fn a_repository_named_only_by_its_id_is_a_reference_by_id() {
        let mut payload = json_fixture("pull_request.opened.json");
        payload["repository"]
            .as_object_mut()
            .expect("an object")
            .remove("full_name");
        let effects = effects_of_json("pull_request", &payload).expect("it parses");
        let repository = effects[0].repository();
        assert_eq!(repository.name, "");
        assert_eq!(repository.external_id, "186853002");
    }

    /// Pull request #2 of Codertocat/Hello-World as its fixtures state it.
    fn readme_pr(state: Option<ChangesetState>, updated: Timestamp) -> ChangesetSnapshot {
        ChangesetSnapshot {
            title: Some("Update the README with new information.".to_owned()),
            url: Some("https://github.com/Codertocat/Hello-World/pull/2".to_owned()),
            author: Some("Codertocat".to_owned()),
            state,
            head_ref: Some("changes".to_owned()),
            base_ref: Some("master".to_owned()),
            head_sha: Some("ec26c3e57ca3a959ca5aad62de7213c562f8c821".to_owned()),
            labels: Some(vec!["bug".to_owned()]),
            host_update_time: Some(updated),
            in_merge_queue: None,
            auto_merge: None,
        }
    }

    /// A Hello-World changeset effect with no review and no check.
    fn entry(
        target: Target,
        occur_time: Option<Timestamp>,
        kind: &str,
        summary: &str,
        snapshot: ChangesetSnapshot,
    ) -> ChangesetEffect {
        ChangesetEffect {
            repository: hello_world(),
            target,
            occur_time,
            kind: kind.to_owned(),
            actor: "Codertocat".to_owned(),
            summary: summary.to_owned(),
            external_id: String::new(),
            snapshot,
            review: None,
            check: None,
        }
    }

    /// The one changeset effect of a list.
    fn only_changeset(effects: Vec<Effect>) -> ChangesetEffect {
        match <[Effect; 1]>::try_from(effects) {
            Ok([Effect::Changeset(c)]) => c,
            other => panic!("expected one changeset effect, got {other:?}"),
        }
    }

    const README_SHA: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
    /// 2019-05-15T15:20:33Z
    const T_15_20_33: Timestamp = Timestamp::from_micros(1_557_933_633_000_000);
    /// 2019-05-15T15:20:35Z
    const T_15_20_35: Timestamp = Timestamp::from_micros(1_557_933_635_000_000);
    /// 2019-05-15T15:20:38Z
    const T_15_20_38: Timestamp = Timestamp::from_micros(1_557_933_638_000_000);
    /// 2019-05-15T15:21:18Z
    const T_15_21_18: Timestamp = Timestamp::from_micros(1_557_933_678_000_000);

    #[test]
    fn an_opened_pull_request_is_an_opened_entry_with_everything_the_payload_states() {
        let expected = entry(
            Target::Number(2),
            Some(T_15_20_33),
            "opened",
            "Codertocat opened #2 \"Update the README with new information.\"",
            readme_pr(Some(ChangesetState::Open), T_15_20_33),
        );
        assert_eq!(
            effects_of("pull_request", "pull_request.opened.json"),
            vec![Effect::Changeset(expected)]
        );
    }

    #[test]
    fn every_hello_world_pull_request_fixture_gives_its_action_state_time_and_summary() {
        use ChangesetState::{Closed, Draft, Open};
        #[rustfmt::skip]
        let cases = [
            ("pull_request.closed.json", "closed", Closed, T_15_21_18,
                "Codertocat closed #2 \"Update the README with new information.\""),
            ("pull_request.reopened.json", "reopened", Open, T_15_20_33,
                "Codertocat reopened #2 \"Update the README with new information.\""),
            ("pull_request.converted_to_draft.json", "converted_to_draft", Draft, T_15_21_18,
                "Codertocat converted #2 to a draft"),
            ("pull_request.ready_for_review.json", "ready_for_review", Open, T_15_21_18,
                "Codertocat marked #2 ready for review"),
            ("pull_request.labeled.json", "labeled", Open, T_15_20_35,
                "Codertocat labeled #2 \"bug\""),
            ("pull_request.synchronize.json", "synchronize", Open, T_15_20_33,
                "Codertocat pushed ec26c3e to #2"),
        ];
        for (file, kind, state, time, summary) in cases {
            let expected = entry(
                Target::Number(2),
                Some(time),
                kind,
                summary,
                readme_pr(Some(state), time),
            );
            assert_eq!(
                effects_of("pull_request", file),
                vec![Effect::Changeset(expected)],
                "{file}"
            );
        }
    }

    #[test]
    fn enqueued_dequeued_and_auto_merge_set_their_flag_and_are_entries() {
        #[rustfmt::skip]
        let cases = [
            ("enqueued", "Codertocat added #2 to the merge queue", Some(true), None),
            ("dequeued", "Codertocat removed #2 from the merge queue (MANUAL)", Some(false), None),
            ("auto_merge_enabled", "Codertocat enabled auto-merge on #2", None, Some(true)),
            ("auto_merge_disabled", "Codertocat disabled auto-merge on #2", None, Some(false)),
        ];
        for (action, summary, in_merge_queue, auto_merge) in cases {
            let expected = entry(
                Target::Number(2),
                Some(T_15_20_33),
                action,
                summary,
                ChangesetSnapshot {
                    in_merge_queue,
                    auto_merge,
                    ..readme_pr(Some(ChangesetState::Open), T_15_20_33)
                },
            );
            assert_eq!(
                effects_of("pull_request", &format!("pull_request.{action}.json")),
                vec![Effect::Changeset(expected)],
                "{action}"
            );
        }
        // A dequeue without a reason says none; other actions leave both flags alone.
        let mut payload = json_fixture("pull_request.dequeued.json");
        payload.as_object_mut().expect("an object").remove("reason");
        let effect = only_changeset(effects_of_json("pull_request", &payload).expect("ok"));
        assert_eq!(effect.summary, "Codertocat removed #2 from the merge queue");
        let opened = only_changeset(effects_of("pull_request", "pull_request.opened.json"));
        assert_eq!(
            (opened.snapshot.in_merge_queue, opened.snapshot.auto_merge),
            (None, None)
        );
    }

    #[test]
    fn a_closed_pull_request_that_was_merged_is_a_merged_entry() {
        let t = Some(Timestamp::from_micros(1_584_946_016_000_000)); // 2020-03-23T06:46:56Z
        let expected = ChangesetEffect {
            repository: RepositoryRef {
                name: "robvanderleek/create-issue-branch".to_owned(),
                external_id: "197534757".to_owned(),
                url: "https://github.com/robvanderleek/create-issue-branch".to_owned(),
                clone_urls: vec![
                    "https://github.com/robvanderleek/create-issue-branch.git".to_owned(),
                    "git@github.com:robvanderleek/create-issue-branch.git".to_owned(),
                ],
            },
            target: Target::Number(117),
            occur_time: t,
            kind: "merged".to_owned(),
            actor: "robvanderleek".to_owned(),
            summary: "robvanderleek merged #117 \"Revert \"Update README.md\"\"".to_owned(),
            external_id: String::new(),
            snapshot: ChangesetSnapshot {
                title: Some("Revert \"Update README.md\"".to_owned()),
                url: Some(
                    "https://github.com/robvanderleek/create-issue-branch/pull/117".to_owned(),
                ),
                author: Some("robvanderleek".to_owned()),
                state: Some(ChangesetState::Merged),
                head_ref: Some("issue-111-robvanderleek-patch-1".to_owned()),
                base_ref: Some("master".to_owned()),
                head_sha: Some("59a63ccd828afb5fc4739ad8d3176d5c36eaebf6".to_owned()),
                labels: Some(vec![]),
                host_update_time: t,
                in_merge_queue: None,
                auto_merge: None,
            },
            review: None,
            check: None,
        };
        assert_eq!(
            effects_of("pull_request", "pull_request.closed.merged.json"),
            vec![Effect::Changeset(expected)]
        );
    }

    #[test]
    fn an_edited_pull_request_from_before_drafts_existed_is_open() {
        let t = Some(Timestamp::from_micros(1_529_953_819_000_000)); // 2018-06-25T19:10:19Z
        let expected = ChangesetEffect {
            repository: RepositoryRef {
                name: "bradrydzewski/drone-test-go".to_owned(),
                external_id: "13933572".to_owned(),
                url: "https://github.com/bradrydzewski/drone-test-go".to_owned(),
                clone_urls: vec![
                    "https://github.com/bradrydzewski/drone-test-go.git".to_owned(),
                    "git@github.com:bradrydzewski/drone-test-go.git".to_owned(),
                ],
            },
            target: Target::Number(1),
            occur_time: t,
            kind: "edited".to_owned(),
            actor: "bradrydzewski".to_owned(),
            summary: "bradrydzewski edited #1 \"Update .drone.yml\"".to_owned(),
            external_id: String::new(),
            snapshot: ChangesetSnapshot {
                title: Some("Update .drone.yml".to_owned()),
                url: Some("https://github.com/bradrydzewski/drone-test-go/pull/1".to_owned()),
                author: Some("bradrydzewski".to_owned()),
                state: Some(ChangesetState::Open),
                head_ref: Some("master".to_owned()),
                base_ref: Some("bradrydzewski-patch-1".to_owned()),
                head_sha: Some("d2b75aa7797ec26b088fa2dd527e9d2c052fcedd".to_owned()),
                labels: Some(vec![]),
                host_update_time: t,
                in_merge_queue: None,
                auto_merge: None,
            },
            review: None,
            check: None,
        };
        assert_eq!(
            effects_of("pull_request", "pull_request.edited.json"),
            vec![Effect::Changeset(expected)]
        );
    }

    #[test]
    fn assignment_and_review_request_summaries_name_who_was_assigned_or_asked() {
        let mut payload = json_fixture("pull_request.opened.json");
        payload["action"] = json!("assigned");
        payload["assignee"] = json!({"login": "hubot"});
        let e = only_changeset(effects_of_json("pull_request", &payload).expect("parses"));
        assert_eq!(
            (e.kind.as_str(), e.summary.as_str()),
            ("assigned", "Codertocat assigned hubot to #2")
        );

        payload["action"] = json!("review_requested");
        payload["requested_team"] = json!({"name": "justice-league"});
        let e = only_changeset(effects_of_json("pull_request", &payload).expect("parses"));
        assert_eq!(
            (e.kind.as_str(), e.summary.as_str()),
            (
                "review_requested",
                "Codertocat requested a review from justice-league on #2"
            )
        );
    }

    #[test]
    fn a_comment_only_review_is_a_timeline_entry_without_a_vote() {
        let expected = ChangesetEffect {
            external_id: "237895671".to_owned(),
            ..entry(
                Target::Number(2),
                Some(T_15_20_38),
                "review",
                "Codertocat reviewed #2",
                readme_pr(Some(ChangesetState::Open), T_15_20_38),
            )
        };
        assert_eq!(
            effects_of("pull_request_review", "pull_request_review.submitted.json"),
            vec![Effect::Changeset(expected)]
        );
    }

    #[test]
    fn approving_and_requesting_changes_are_votes_of_the_reviewer() {
        for (state, vote, summary) in [
            ("approved", Vote::Approved, "Codertocat approved #2"),
            ("APPROVED", Vote::Approved, "Codertocat approved #2"),
            (
                "changes_requested",
                Vote::ChangesRequested,
                "Codertocat requested changes on #2",
            ),
        ] {
            let mut payload = json_fixture("pull_request_review.submitted.json");
            payload["review"]["state"] = json!(state);
            payload["review"]["user"]["login"] = json!("monalisa");
            let expected = ChangesetEffect {
                review: Some(ReviewVote {
                    reviewer: "monalisa".to_owned(),
                    vote,
                }),
                external_id: "237895671".to_owned(),
                ..entry(
                    Target::Number(2),
                    Some(T_15_20_38),
                    "review",
                    summary,
                    readme_pr(Some(ChangesetState::Open), T_15_20_38),
                )
            };
            assert_eq!(
                effects_of_json("pull_request_review", &payload),
                Ok(vec![Effect::Changeset(expected)]),
                "{state}"
            );
        }
    }

    #[test]
    fn a_dismissed_review_withdraws_the_reviewers_vote() {
        let expected = ChangesetEffect {
            review: Some(ReviewVote {
                reviewer: "Codertocat".to_owned(),
                vote: Vote::Withdrawn,
            }),
            external_id: "237895671/dismissed".to_owned(),
            ..entry(
                Target::Number(2),
                Some(T_15_20_38),
                "review",
                "Codertocat dismissed Codertocat's review on #2",
                ChangesetSnapshot {
                    // As the fixture has it.
                    url: Some("https://github.com/hellomouse/GNS/pull/902".to_owned()),
                    ..readme_pr(Some(ChangesetState::Open), T_15_20_38)
                },
            )
        };
        assert_eq!(
            effects_of("pull_request_review", "pull_request_review.dismissed.json"),
            vec![Effect::Changeset(expected)]
        );
    }

    #[test]
    fn a_dismissal_is_timed_no_earlier_than_the_pull_requests_last_update() {
        let mut payload = json_fixture("pull_request_review.dismissed.json");
        payload["pull_request"]["updated_at"] = json!("2019-05-16T08:00:00Z");
        let e = only_changeset(effects_of_json("pull_request_review", &payload).expect("parses"));
        assert_eq!(
            e.occur_time,
            Some(Timestamp::from_micros(1_557_993_600_000_000))
        );

        let mut payload = json_fixture("pull_request_review.submitted.json");
        payload["review"]["state"] = json!("approved");
        payload["pull_request"]["updated_at"] = json!("2019-05-16T08:00:00Z");
        let e = only_changeset(effects_of_json("pull_request_review", &payload).expect("parses"));
        assert_eq!(
            e.occur_time,
            Some(T_15_20_38),
            "a submission is its own time"
        );
    }

    #[test]
    fn a_review_on_a_closed_pull_request_that_does_not_say_whether_it_merged_has_no_state() {
        let mut payload = json_fixture("pull_request_review.submitted.json");
        payload["pull_request"]["state"] = json!("closed");
        let closed = only_changeset(effects_of_json("pull_request_review", &payload).expect("ok"));
        assert_eq!(closed.snapshot.state, Some(ChangesetState::Closed));

        payload["pull_request"]["merged_at"] = json!("2019-05-15T15:20:38Z");
        let merged = only_changeset(effects_of_json("pull_request_review", &payload).expect("ok"));
        assert_eq!(merged.snapshot.state, Some(ChangesetState::Merged));

        let Value::Object(pr) = &mut payload["pull_request"] else {
            panic!("pull_request is an object");
        };
        pr.remove("merged_at");
        let unknown = only_changeset(effects_of_json("pull_request_review", &payload).expect("ok"));
        assert_eq!(unknown.snapshot.state, None);
    }

    #[test]
    fn a_review_comment_is_a_comment_entry_timed_by_its_last_update() {
        // created_at is 15:20:37, updated_at 15:20:38.
        let expected = ChangesetEffect {
            external_id: "284312630".to_owned(),
            ..entry(
                Target::Number(2),
                Some(T_15_20_38),
                "comment",
                "Codertocat commented on #2",
                readme_pr(Some(ChangesetState::Open), T_15_20_38),
            )
        };
        assert_eq!(
            effects_of(
                "pull_request_review_comment",
                "pull_request_review_comment.created.json"
            ),
            vec![Effect::Changeset(expected)]
        );
    }

    #[test]
    fn a_resolved_or_unresolved_review_thread_is_an_entry_keyed_by_the_thread() {
        for (action, kind) in [
            ("resolved", "thread_resolved"),
            ("unresolved", "thread_unresolved"),
        ] {
            let expected = ChangesetEffect {
                external_id: "PRRT_kwDOFd42Pc4rQOUv".to_owned(),
                ..entry(
                    Target::Number(2),
                    Some(T_15_20_38),
                    kind,
                    &format!("Codertocat {action} a review thread on #2"),
                    readme_pr(Some(ChangesetState::Open), T_15_20_38),
                )
            };
            assert_eq!(
                effects_of(
                    "pull_request_review_thread",
                    &format!("pull_request_review_thread.{action}.json")
                ),
                vec![Effect::Changeset(expected)],
                "{action}"
            );
        }
    }

    #[test]
    fn a_review_thread_without_an_id_is_an_error_and_other_actions_give_nothing() {
        let mut payload = json_fixture("pull_request_review_thread.resolved.json");
        payload["thread"]
            .as_object_mut()
            .expect("an object")
            .remove("node_id");
        let e = effects_of_json("pull_request_review_thread", &payload).expect_err("no id");
        assert_eq!(e.message, "missing thread.node_id");
        // A numeric id, if a sender gives one, keys the entry instead.
        payload["thread"]["id"] = json!(42);
        let effect =
            only_changeset(effects_of_json("pull_request_review_thread", &payload).expect("ok"));
        assert_eq!(effect.external_id, "42");
        payload["action"] = json!("created");
        assert_eq!(
            effects_of_json("pull_request_review_thread", &payload),
            Ok(vec![])
        );
    }

    #[test]
    fn an_issue_comment_on_an_issue_that_is_not_a_pull_request_gives_nothing() {
        assert_eq!(
            effects_of("issue_comment", "issue_comment.created.json"),
            vec![]
        );
    }

    #[test]
    fn an_issue_comment_on_a_pull_request_is_a_comment_entry_with_what_the_issue_states() {
        let mut payload = json_fixture("issue_comment.created.json");
        payload["issue"]["html_url"] = json!("https://github.com/Codertocat/Hello-World/pull/1");
        payload["issue"]["pull_request"] = json!({
            "url": "https://api.github.com/repos/Codertocat/Hello-World/pulls/1",
            "html_url": "https://github.com/Codertocat/Hello-World/pull/1",
            "merged_at": null
        });
        let t = Some(Timestamp::from_micros(1_557_933_621_000_000)); // 2019-05-15T15:20:21Z
        let expected = ChangesetEffect {
            external_id: "492700400".to_owned(),
            ..entry(
                Target::Number(1),
                t,
                "comment",
                "Codertocat commented on #1",
                ChangesetSnapshot {
                    title: Some("Spelling error in the README file".to_owned()),
                    url: Some("https://github.com/Codertocat/Hello-World/pull/1".to_owned()),
                    author: Some("Codertocat".to_owned()),
                    state: Some(ChangesetState::Open),
                    labels: Some(vec!["bug".to_owned()]),
                    host_update_time: t,
                    ..ChangesetSnapshot::default()
                },
            )
        };
        assert_eq!(
            effects_of_json("issue_comment", &payload),
            Ok(vec![Effect::Changeset(expected)])
        );

        payload["issue"]["state"] = json!("closed");
        payload["issue"]["pull_request"]["merged_at"] = json!("2019-05-15T15:20:21Z");
        let merged = only_changeset(effects_of_json("issue_comment", &payload).expect("ok"));
        assert_eq!(merged.snapshot.state, Some(ChangesetState::Merged));
    }

    #[test]
    fn a_comment_keeps_its_key_when_edited_and_its_deletion_has_one_of_its_own() {
        let mut payload = json_fixture("issue_comment.created.json");
        payload["issue"]["pull_request"] = json!({"merged_at": null});
        let key_of = |payload: &Value| {
            only_changeset(effects_of_json("issue_comment", payload).expect("ok")).external_id
        };
        assert_eq!(key_of(&payload), "492700400");
        payload["action"] = json!("edited");
        payload["comment"]["updated_at"] = json!("2019-05-15T15:21:21Z");
        let edited = only_changeset(effects_of_json("issue_comment", &payload).expect("ok"));
        assert_eq!(
            (edited.external_id.as_str(), edited.occur_time),
            (
                "492700400",
                Some(Timestamp::from_micros(1_557_933_681_000_000))
            )
        );
        payload["action"] = json!("deleted");
        payload["issue"]["updated_at"] = json!("2019-05-15T15:22:00Z");
        let deleted = only_changeset(effects_of_json("issue_comment", &payload).expect("ok"));
        assert_eq!(
            (deleted.external_id.as_str(), deleted.occur_time),
            (
                "492700400/deleted",
                Some(Timestamp::from_micros(1_557_933_720_000_000))
            )
        );
        // A payload without the comment's id leaves the key to its time and summary.
        payload["comment"]["id"] = json!(null);
        assert_eq!(key_of(&payload), "");
    }

    /// The check of the check run fixture, with `status`.
    fn linter(status: CheckStatus) -> CheckResult {
        CheckResult {
            context: "Octocoders-linter".to_owned(),
            sha: README_SHA.to_owned(),
            status,
        }
    }

    /// What a check run or suite states about pull request #2 of Hello-World.
    fn pr_2_branches() -> ChangesetSnapshot {
        ChangesetSnapshot {
            head_ref: Some("changes".to_owned()),
            base_ref: Some("master".to_owned()),
            head_sha: Some(README_SHA.to_owned()),
            ..ChangesetSnapshot::default()
        }
    }

    /// 2019-05-15T15:21:12Z, when the fixture's check run started and completed.
    const T_15_21_12: Timestamp = Timestamp::from_micros(1_557_933_672_000_000);

    #[test]
    fn a_completed_check_run_is_a_check_on_each_pull_request_it_names() {
        let expected = ChangesetEffect {
            check: Some(linter(CheckStatus::Passed)),
            external_id: "128620228".to_owned(),
            ..entry(
                Target::Number(2),
                Some(T_15_21_12),
                "check",
                "Octocoders-linter passed on ec26c3e",
                pr_2_branches(),
            )
        };
        assert_eq!(
            effects_of("check_run", "check_run.completed.json"),
            vec![Effect::Changeset(expected)]
        );
    }

    const GROUP_SHA: &str = "2ffea6db159f6b6c47a24e778fb9ef40cf6b1c7d";
    const GROUP_REF: &str =
        "refs/heads/gh-readonly-queue/main/pr-104-929f8209d40f77f4abc622a499c93a83babdbe64";

    #[test]
    fn a_merge_group_is_an_entry_for_the_pull_request_its_head_ref_names() {
        let [checks, destroyed] = ["checks_requested", "destroyed"].map(|action| {
            only_changeset(effects_of(
                "merge_group",
                &format!("merge_group.{action}.json"),
            ))
        });
        let target = Target::MergeGroup {
            head_ref: GROUP_REF.to_owned(),
            number: Some(104),
        };
        assert_eq!(checks.target, target);
        assert_eq!(checks.kind, "merge_group_checks_requested");
        assert_eq!(checks.external_id, GROUP_SHA);
        assert_eq!(
            checks.summary,
            "the merge group 2ffea6d of #104 into main requested checks"
        );
        // Timed by the group's head commit (2019-05-15T15:20:30Z).
        assert_eq!(
            checks.occur_time,
            Some(Timestamp::from_micros(1_557_933_630_000_000))
        );
        assert_eq!(checks.repository.name, "octo-org/octo-repo");
        assert_eq!(checks.snapshot, ChangesetSnapshot::default());
        assert_eq!((checks.check, checks.review), (None, None));

        assert_eq!(destroyed.target, target);
        assert_eq!(destroyed.kind, "merge_group_destroyed");
        assert_eq!(destroyed.external_id, format!("{GROUP_SHA}/destroyed"));
        assert_eq!(
            destroyed.summary,
            "the merge group 2ffea6d of #104 into main was destroyed (merged)"
        );
        assert_eq!(destroyed.occur_time, None, "destroyed carries no time");
        assert_eq!(destroyed.snapshot, ChangesetSnapshot::default());
    }

    #[test]
    fn a_merge_group_whose_head_ref_names_no_pull_request_has_no_number() {
        let mut payload = json_fixture("merge_group.checks_requested.json");
        payload["merge_group"]["head_ref"] = json!("refs/heads/some-branch");
        let effect = only_changeset(effects_of_json("merge_group", &payload).expect("ok"));
        assert_eq!(
            effect.target,
            Target::MergeGroup {
                head_ref: "refs/heads/some-branch".to_owned(),
                number: None
            }
        );
        assert_eq!(
            effect.summary,
            "the merge group 2ffea6d into main requested checks"
        );
        payload["action"] = json!("created");
        assert_eq!(effects_of_json("merge_group", &payload), Ok(vec![]));
        let mut payload = json_fixture("merge_group.destroyed.json");
        payload["merge_group"]
            .as_object_mut()
            .expect("an object")
            .remove("head_ref");
        let e = effects_of_json("merge_group", &payload).expect_err("no head ref");
        assert_eq!(e.message, "missing merge_group.head_ref");
    }

    #[test]
    fn merge_group_numbers_are_read_from_the_queue_branch_name_only() {
        for (head_ref, number) in [
            (GROUP_REF, Some(104)),
            ("gh-readonly-queue/main/pr-7-abc", Some(7)),
            (
                "refs/heads/gh-readonly-queue/release/1.x/pr-12-abc",
                Some(12),
            ),
            ("refs/heads/gh-readonly-queue/main/pr-x-abc", None),
            ("refs/heads/gh-readonly-queue/main/pr-12", None),
            ("refs/heads/gh-readonly-queue/pr-12-abc", None),
            ("refs/heads/gh-readonly-queue/main/pr-0-abc", None),
            ("refs/heads/gh-readonly-queue/main/pr--3-abc", None),
            ("refs/heads/feature/pr-12-abc", None),
            ("", None),
        ] {
            assert_eq!(merge_group_number(head_ref), number, "{head_ref}");
        }
    }

    #[test]
    fn a_check_on_a_merge_queue_branch_targets_only_its_commit_whatever_it_lists() {
        let queue_branch = json!("gh-readonly-queue/master/pr-2-ec26c3e");
        let mut run = json_fixture("check_run.completed.json");
        run["check_run"]["check_suite"]["head_branch"] = queue_branch.clone();
        run["check_run"]["head_sha"] = json!(GROUP_SHA);
        let mut suite = json_fixture("check_suite.completed.json");
        suite["check_suite"]["head_branch"] = queue_branch;
        suite["check_suite"]["head_sha"] = json!(GROUP_SHA);
        for (event, payload) in [("check_run", run), ("check_suite", suite)] {
            let effects = effects_of_json(event, &payload).expect("ok");
            assert!(!effects.is_empty(), "{event}");
            for effect in effects {
                let Effect::Changeset(c) = effect else {
                    panic!("{event}: a changeset effect")
                };
                assert_eq!(c.target, Target::HeadSha(GROUP_SHA.to_owned()), "{event}");
                assert_eq!(c.snapshot, ChangesetSnapshot::default(), "{event}");
            }
        }
    }

    #[test]
    fn a_check_run_that_names_no_pull_request_targets_its_head_commit() {
        let mut payload = json_fixture("check_run.completed.json");
        payload["check_run"]["pull_requests"] = json!([]);
        let expected = ChangesetEffect {
            check: Some(linter(CheckStatus::Passed)),
            external_id: "128620228".to_owned(),
            ..entry(
                Target::HeadSha(README_SHA.to_owned()),
                Some(T_15_21_12),
                "check",
                "Octocoders-linter passed on ec26c3e",
                ChangesetSnapshot::default(),
            )
        };
        assert_eq!(
            effects_of_json("check_run", &payload),
            Ok(vec![Effect::Changeset(expected)])
        );
    }

    #[test]
    fn a_check_run_naming_two_pull_requests_gives_one_effect_each() {
        let mut payload = json_fixture("check_run.completed.json");
        let mut second = payload["check_run"]["pull_requests"][0].clone();
        second["number"] = json!(7);
        second["base"]["ref"] = json!("release");
        payload["check_run"]["pull_requests"]
            .as_array_mut()
            .expect("an array")
            .push(second);
        let effects = effects_of_json("check_run", &payload).expect("parses");
        let targets: Vec<(Target, Option<String>)> = effects
            .into_iter()
            .map(|e| match e {
                Effect::Changeset(c) => (c.target, c.snapshot.base_ref),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            targets,
            vec![
                (Target::Number(2), Some("master".to_owned())),
                (Target::Number(7), Some("release".to_owned())),
            ]
        );
    }

    #[test]
    fn a_pull_request_of_another_repository_in_a_check_run_is_not_targeted() {
        let mut payload = json_fixture("check_run.completed.json");
        payload["check_run"]["pull_requests"][0]["base"]["repo"]["id"] = json!(1);
        let e = only_changeset(effects_of_json("check_run", &payload).expect("parses"));
        assert_eq!(e.target, Target::HeadSha(README_SHA.to_owned()));
    }

    #[test]
    fn check_run_statuses_and_conclusions_map_to_pending_passed_and_failed() {
        use CheckStatus::{Failed, Passed, Pending};
        let cases = [
            ("queued", None, Pending),
            ("in_progress", None, Pending),
            ("requested", None, Pending),
            ("pending", None, Pending),
            ("completed", Some("success"), Passed),
            ("completed", Some("neutral"), Passed),
            ("completed", Some("skipped"), Passed),
            ("completed", Some("failure"), Failed),
            ("completed", Some("cancelled"), Failed),
            ("completed", Some("timed_out"), Failed),
            ("completed", Some("action_required"), Failed),
        ];
        for (status, conclusion, expected) in cases {
            let mut payload = json_fixture("check_run.completed.json");
            payload["check_run"]["status"] = json!(status);
            payload["check_run"]["conclusion"] = json!(conclusion);
            let e = only_changeset(effects_of_json("check_run", &payload).expect("parses"));
            assert_eq!(e.check, Some(linter(expected)), "{status} {conclusion:?}");
        }
    }

    #[test]
    fn a_check_run_not_yet_completed_is_timed_by_its_start() {
        let mut payload = json_fixture("check_run.completed.json");
        payload["check_run"]["status"] = json!("in_progress");
        payload["check_run"]["started_at"] = json!("2019-05-15T15:20:33Z");
        payload["check_run"]["completed_at"] = json!(null);
        let e = only_changeset(effects_of_json("check_run", &payload).expect("parses"));
        assert_eq!(e.occur_time, Some(T_15_20_33));
        assert_eq!(e.summary, "Octocoders-linter is pending on ec26c3e");
    }

    #[test]
    fn a_completed_check_suite_is_a_check_named_after_its_app() {
        let expected = ChangesetEffect {
            check: Some(CheckResult {
                context: "octocoders-linter".to_owned(),
                sha: README_SHA.to_owned(),
                status: CheckStatus::Passed,
            }),
            external_id: "118578147".to_owned(),
            ..entry(
                Target::Number(2),
                Some(Timestamp::from_micros(1_557_933_674_000_000)), // 2019-05-15T15:21:14Z
                "check",
                "octocoders-linter passed on ec26c3e",
                pr_2_branches(),
            )
        };
        assert_eq!(
            effects_of("check_suite", "check_suite.completed.json"),
            vec![Effect::Changeset(expected)]
        );

        let mut payload = json_fixture("check_suite.completed.json");
        payload["check_suite"]["app"] = json!(null);
        payload["check_suite"]["conclusion"] = json!("failure");
        let e = only_changeset(effects_of_json("check_suite", &payload).expect("parses"));
        let check = e.check.expect("a check");
        assert_eq!(
            (check.context.as_str(), check.status),
            ("check_suite", CheckStatus::Failed)
        );
    }

    #[test]
    fn a_commit_status_targets_its_commit() {
        let sha = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
        let expected = ChangesetEffect {
            check: Some(CheckResult {
                context: "default".to_owned(),
                sha: sha.to_owned(),
                status: CheckStatus::Passed,
            }),
            external_id: "6805126730".to_owned(),
            ..entry(
                Target::HeadSha(sha.to_owned()),
                Some(Timestamp::from_micros(1_557_933_655_000_000)), // 2019-05-15T15:20:55+00:00
                "check",
                "default passed on 6113728",
                ChangesetSnapshot::default(),
            )
        };
        assert_eq!(
            effects_of("status", "status.json"),
            vec![Effect::Changeset(expected)]
        );
    }

    #[test]
    fn commit_status_states_map_to_pending_passed_and_failed() {
        for (state, expected, summary) in [
            (
                "pending",
                CheckStatus::Pending,
                "default is pending on 6113728",
            ),
            ("failure", CheckStatus::Failed, "default failed on 6113728"),
            ("error", CheckStatus::Failed, "default failed on 6113728"),
        ] {
            let mut payload = json_fixture("status.json");
            payload["state"] = json!(state);
            let e = only_changeset(effects_of_json("status", &payload).expect("parses"));
            assert_eq!(e.check.map(|c| c.status), Some(expected), "{state}");
            assert_eq!(e.summary, summary);
        }
        let mut payload = json_fixture("status.json");
        payload["state"] = json!("exploded");
        assert!(effects_of_json("status", &payload).is_err());
    }

    #[test]
    fn a_push_is_one_ref_update_as_github_sends_it() {
        let zero = "0000000000000000000000000000000000000000";
        let cases = [
            (
                "push.branch-created.json",
                "186853002",
                "refs/heads/master",
                zero,
                "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
            ),
            (
                "push.branch-updated.json",
                "135493233",
                "refs/heads/master",
                "a10867b14bb761a232cd80139fbd4c0d33264240",
                "199eddf46df50de8d02e99bf1c5fdb4101338224",
            ),
            (
                "push.tag-deleted.json",
                "186853002",
                "refs/tags/simple-tag",
                "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
                zero,
            ),
        ];
        for (file, id, name, old, new) in cases {
            let expected = PushEffect {
                repository: RepositoryRef {
                    external_id: id.to_owned(),
                    ..hello_world()
                },
                refs: vec![RefUpdate {
                    name: name.to_owned(),
                    old_sha: old.to_owned(),
                    new_sha: new.to_owned(),
                }],
                actor: "Codertocat".to_owned(),
            };
            assert_eq!(
                effects_of("push", file),
                vec![Effect::Push(expected)],
                "{file}"
            );
        }
    }

    #[test]
    fn a_payload_missing_what_its_event_must_carry_is_an_error_naming_it() {
        let without = |file: &str, path: &[&str]| {
            let mut payload = json_fixture(file);
            let (last, parents) = path.split_last().expect("a path");
            let mut object = &mut payload;
            for p in parents {
                object = &mut object[*p];
            }
            object
                .as_object_mut()
                .expect("an object")
                .remove(*last)
                .expect("the fixture has it");
            payload
        };
        let cases = [
            (
                "pull_request",
                without("pull_request.opened.json", &["pull_request", "number"]),
                "pull_request/opened payload: missing pull_request.number",
            ),
            (
                "pull_request_review",
                without(
                    "pull_request_review.submitted.json",
                    &["pull_request", "number"],
                ),
                "pull_request_review/submitted payload: missing pull_request.number",
            ),
            (
                "pull_request",
                without("pull_request.opened.json", &["repository"]),
                "pull_request/opened payload: missing repository.full_name, and the repository's id too",
            ),
            (
                "check_run",
                without("check_run.completed.json", &["check_run", "head_sha"]),
                "check_run/completed payload: missing check_run.head_sha",
            ),
            (
                "status",
                without("status.json", &["sha"]),
                "status payload: missing sha",
            ),
            (
                "push",
                without("push.branch-updated.json", &["ref"]),
                "push payload: missing ref",
            ),
        ];
        for (event, payload, message) in cases {
            let e = effects_of_json(event, &payload).expect_err(message);
            assert_eq!(e.to_string(), message);
        }

        let mut payload = json_fixture("check_run.completed.json");
        payload["check_run"]["pull_requests"][0]
            .as_object_mut()
            .expect("an object")
            .remove("number");
        let e = effects_of_json("check_run", &payload).expect_err("no number");
        assert_eq!(e.message, "missing check_run.pull_requests.0.number");

        let mut payload = json_fixture("issue_comment.created.json");
        payload["issue"]["pull_request"] = json!({"url": "x"});
        payload["issue"]
            .as_object_mut()
            .expect("an object")
            .remove("number");
        let e = effects_of_json("issue_comment", &payload).expect_err("no number");
        assert_eq!(e.message, "missing issue.number");
    }

    #[test]
    fn a_handled_event_with_nothing_to_say_gives_no_effects() {
        let payload = json!({"action": "created"});
        assert_eq!(effects("star/created", &payload), Ok(vec![]));
    }

    // ---- the kept payload ----

    /// Every fixture classifies to the same event, key and disposition, and gives the same
    /// effects (or the same error), whether the whole body is read or only the keys GitHub's
    /// effects read ([`Keys`]), as `classify` reads it; and what is kept of a pull request
    /// event is a small part of it.
    #[test]
    fn a_kept_body_gives_the_effects_of_the_whole_body() {
        for &(file, header, _, _) in CASES {
            let body = fixture(&format!("github/{file}"));
            let h = signed(header, &body);
            let whole = crate::hosts::classify_into::<Value>(Host::GitHub, &h, &body)
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            let kept = classify(Host::GitHub, &h, &body).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(
                (&kept.event, &kept.delivery_key, kept.disposition),
                (&whole.event, &whole.delivery_key, whole.disposition),
                "{file}"
            );
            if whole.disposition == Handled {
                let of = |payload: &Value| {
                    crate::hosts::effects(Host::GitHub, &whole.event, payload)
                        .map_err(|e| e.to_string())
                };
                assert_eq!(of(&kept.payload), of(&whole.payload), "{file}");
            }
        }
        let body = fixture("github/pull_request.opened.json");
        let kept = classify(Host::GitHub, &signed("pull_request", &body), &body)
            .unwrap()
            .payload;
        let kept_bytes = serde_json::to_vec(&kept).unwrap().len();
        assert!(
            kept_bytes * 3 < body.len(),
            "{kept_bytes} of {} bytes kept",
            body.len()
        );
    }

    /// What is not JSON, not an object, cut short or followed by more is refused by the kept
    /// read as by the whole one, with the same message. What the kept read only skips (nested
    /// deeper than serde_json reads, a lone surrogate, a number out of range, where nothing is
    /// kept) is refused at the ingress, whose outline reads it as strictly as a `Value`: such a
    /// body is never stored, so never reaches the kept read.
    #[test]
    fn a_kept_body_is_refused_where_the_whole_body_is() {
        let read = |body: &str| {
            let h = signed("pull_request", body.as_bytes());
            let whole = crate::hosts::classify_into::<Value>(Host::GitHub, &h, body.as_bytes());
            let kept = classify(Host::GitHub, &h, body.as_bytes());
            let outline = crate::hosts::classify_outline(Host::GitHub, &h, body.as_bytes());
            let text = |r: Result<String, ClassifyError>| r.map_err(|e| e.to_string());
            (
                text(whole.map(|c| c.event)),
                text(kept.map(|c| c.event)),
                text(outline.map(|c| c.event)),
            )
        };
        for body in [
            "[1, 2]",
            "{\"action\": \"opened\"",
            "{\"action\": \"opened\"} trailing",
            "{\"action\": \"opened\", \"number\": 1e999}",
            "{\"action\": \"opened\", \"title\": \"\\ud800 lone\"}",
        ] {
            let (whole, kept, outline) = read(body);
            assert!(whole.is_err(), "{body}");
            assert_eq!(kept, whole, "{body}");
            assert!(outline.is_err(), "{body}");
        }
        let deep = format!(
            "{{\"action\":\"opened\",\"ignored\":{}1{}}}",
            "[".repeat(200),
            "]".repeat(200)
        );
        for body in [
            deep.as_str(),
            "{\"action\": \"opened\", \"ignored\": 1e999}",
            "{\"action\": \"opened\", \"ignored\": \"\\ud800 lone\"}",
        ] {
            let (whole, _, outline) = read(body);
            assert!(whole.is_err(), "{body:.60}");
            assert_eq!(outline, whole, "{body:.60}");
        }
    }

    /// [`Keys`] is sorted without repeats (it is searched by halves), and names every key this
    /// module's code spells in a string (a pointer's every step): a key the effects read by a
    /// name missing from it would never be there to read.
    #[test]
    fn the_vocabulary_names_every_key_this_module_spells() {
        use crate::hosts::payload::Vocabulary;
        let keys = <Keys as Vocabulary>::KEYS;
        assert!(
            keys.windows(2).all(|w| w[0] < w[1]),
            "Keys is sorted, without repeats"
        );
        let source = include_str!("github.rs");
        let code = &source[..source
            .find("#[cfg(test)]\nmod tests {")
            .expect("the tests follow the code")];
        let spelled = |literal: &str| {
            let steps = literal.strip_prefix('/').unwrap_or(literal);
            steps.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && steps
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '/')
        };
        let mut named = std::collections::BTreeSet::new();
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for literal in line.split('"').skip(1).step_by(2) {
                if spelled(literal) {
                    named.extend(literal.split('/').filter(|step| !step.is_empty()));
                }
            }
        }
        assert!(named.len() > 50, "{} names found", named.len());
        let missing: Vec<_> = named.iter().filter(|n| !keys.contains(n)).collect();
        assert!(missing.is_empty(), "not in Keys: {missing:?}");
    }
}
