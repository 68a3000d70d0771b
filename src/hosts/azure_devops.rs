//! Azure DevOps (Services at `dev.azure.com`, and Server): service hook subscriptions of the
//! *Web Hooks* consumer. Azure DevOps signs nothing; a subscription can send Basic
//! authentication and custom HTTP headers, so the receiver's secret is checked as the Basic
//! password (any user name) or as `X-Hook-Secret: <secret>`, in constant time. Each of the two
//! that a delivery carries must match (a wrong `X-Hook-Secret` beside a right Basic password is
//! refused), and it must carry at least one; a blank header counts as not sent.
//!
//! There is no event header and no documented delivery header: the event is the body's
//! `eventType`, and the delivery key is `<subscriptionId>.<notificationId>` (literally the
//! subscription id, a dot, the notification id) when the body has both (Azure DevOps keeps both
//! on a retry of the same notification), else the body's `id` (the event's GUID). A request
//! that was not authenticated is logged with neither (its body is never read).
//!
//! A delivery is from the organization `resourceContainers.account.baseUrl` (or
//! `collection.baseUrl`) names, else the one its repository's `url` / `remoteUrl` is under.
//! `https://<org>.visualstudio.com/...`, the old address of an organization, is read as
//! `https://dev.azure.com/<org>/`, the one form a receiver's URN takes. Repositories are named
//! `<project>/<repository>` and identified by the repository's id (a GUID).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use serde_json::{Value, json};

use super::effects::{
    self, ChangesetEffect, ChangesetSnapshot, ChangesetState, CheckResult, CheckStatus, Effect,
    EffectError, HostEvent, PushEffect, RefUpdate, RepositoryRef, ReviewVote, Target, Vote,
    check_summary, ending, id_text, label_list, parse_time, str_at, string_at,
};
use super::signature::{self, token_matches};
use super::{Classified, ClassifyError, Disposition, Payload, TestDelivery, Verified, VerifyError};

/// Where a subscription's Basic authentication arrives.
const AUTHORIZATION: &str = "Authorization";
/// The custom header a subscription can carry the secret in (its *HTTP headers* setting,
/// `X-Hook-Secret:<secret>`); the generic trigger reads the same name.
const HOOK_SECRET: &str = "X-Hook-Secret";
/// How a well-formed `Authorization` looks.
const BASIC_EXPECTED: &str = "Basic base64(<any user name>:<the receiver's secret>)";
/// What a request with neither credential is missing.
const EITHER: &str = "Authorization (Basic) or X-Hook-Secret";
/// The name a body that is not JSON is refused under (`body of a service hook event must be
/// JSON: ...`): before the body is read there is no event name.
const BODY: &str = "service hook";

/// Event types a handler takes: batch-change sync (pull requests created, updated, merged;
/// comments on them; builds) and push sync (`git.push`).
const HANDLED: &[&str] = &[
    "git.pullrequest.created",
    "git.pullrequest.updated",
    "git.pullrequest.merged",
    COMMENT_EVENT,
    "git.push",
    "build.complete",
];

/// A comment on a pull request (added, edited, deleted).
const COMMENT_EVENT: &str = "ms.vss-code.git-pullrequest-comment-event";

/// Checks the credentials a subscription sends (see the module doc): each of `Authorization:
/// Basic` and `X-Hook-Secret` that is sent must carry one of `secrets`, and one must be sent.
pub(super) fn verify(headers: &HeaderMap, secrets: &[&str]) -> Result<Verified, VerifyError> {
    let basic = sent(headers, AUTHORIZATION);
    let header = sent(headers, HOOK_SECRET);
    if !basic && !header {
        return Err(VerifyError::Missing { header: EITHER });
    }
    if basic {
        let password = basic_password(headers)?;
        if !token_matches(&password, secrets) {
            return Err(VerifyError::CredentialMismatch {
                credential: "the Basic authentication password",
            });
        }
    }
    if header {
        signature::check_token(headers, HOOK_SECRET, secrets).map_err(|e| match e {
            VerifyError::TokenMismatch => VerifyError::CredentialMismatch {
                credential: HOOK_SECRET,
            },
            other => other,
        })?;
    }
    Ok(Verified::Signed)
}

/// Whether `name` was sent with a value that is not blank.
fn sent(headers: &HeaderMap, name: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .any(|v| !v.as_bytes().iter().all(u8::is_ascii_whitespace))
}

/// The password of a `Basic` `Authorization` header (everything after the first `:` of the
/// decoded `user:password`); `Malformed`, naming the expected form, for anything else.
fn basic_password(headers: &HeaderMap) -> Result<String, VerifyError> {
    let malformed = VerifyError::Malformed {
        header: AUTHORIZATION,
        expected: BASIC_EXPECTED,
    };
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(malformed);
    };
    let value = std::str::from_utf8(value.as_bytes()).map_err(|_| malformed.clone())?;
    let (scheme, encoded) = value.trim().split_once(' ').ok_or(malformed.clone())?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(malformed);
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .map_err(|_| malformed.clone())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed.clone())?;
    let (_user, password) = decoded.split_once(':').ok_or(malformed)?;
    Ok(password.to_owned())
}

/// The event and key come from the body alone (Azure DevOps sends neither in a header).
pub(super) fn classify<P: Payload>(
    _headers: &HeaderMap,
    body: &[u8],
) -> Result<Classified<P>, ClassifyError> {
    let payload = P::parse(BODY, body)?;
    let event = payload
        .event_type()
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .ok_or_else(|| {
            ClassifyError::BadBody(
                "body of an Azure DevOps service hook delivery must be a JSON object with a string eventType (such as \"git.push\"): Azure DevOps sends no event header, the eventType names the event".to_owned(),
            )
        })?
        .to_owned();
    let disposition = match HANDLED.contains(&event.as_str()) {
        true => Disposition::Handled,
        false => Disposition::Ignored,
    };
    Ok(Classified {
        delivery_key: delivery_key(&payload),
        event,
        disposition,
        payload,
    })
}

/// `<subscriptionId>.<notificationId>` when the body has both, else its `id`; `None` when it
/// has neither.
fn delivery_key<P: Payload>(payload: &P) -> Option<String> {
    let field = |name: &str| {
        payload
            .key_field(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    match (field("subscriptionId"), field("notificationId")) {
        (Some(subscription), Some(notification)) => Some(format!("{subscription}.{notification}")),
        _ => field("id"),
    }
}

/// What the *Test* button of a Web Hooks subscription sends: a sample event with the
/// subscription's credentials. hookgate's is a `git.push` that changes no ref, carrying the
/// secret both ways a subscription can (Basic password of user `hookgate`, and
/// `X-Hook-Secret`), keyed by its `id`.
pub(super) fn test_delivery(secret: &str, key: &str) -> TestDelivery {
    let body = serde_json::to_vec_pretty(&json!({
        "id": key,
        "eventType": "git.push",
        "publisherId": "tfs",
        "message": { "text": "hookgate test delivery: a push that changes no ref" },
        "resource": {
            "commits": [],
            "refUpdates": [],
            "repository": {
                "id": "00000000-0000-0000-0000-000000000000",
                "name": "test",
                "project": { "id": "00000000-0000-0000-0000-000000000000", "name": "hookgate" }
            },
            "pushedBy": { "displayName": "hookgate", "uniqueName": "hookgate" },
            "pushId": 0,
            "date": "2000-01-01T00:00:00Z"
        },
        "resourceVersion": "1.0",
        "resourceContainers": {},
        "createdDate": "2000-01-01T00:00:00Z"
    }))
    .expect("a serde_json::Value always serialises");
    let basic = STANDARD.encode(format!("hookgate:{secret}"));
    TestDelivery {
        headers: vec![
            ("User-Agent", "VSServices (hookgate-test)".to_owned()),
            (AUTHORIZATION, format!("Basic {basic}")),
            (HOOK_SECRET, secret.to_owned()),
        ],
        body,
    }
}

/// The effects of a `Handled` event (see `super::effects`): a pull request event gives its
/// changeset effect and one per reviewer's vote, a comment (resource version 2.0) a comment
/// entry, a build its check result on its commit, a push one push effect. An event that names
/// nothing to sync (a comment of resource version 1.0, a build that names no repository or
/// commit, a push of no ref) gives none; [`nothing_to_sync`] says why.
pub(super) fn effects(event: &str, payload: &Value) -> Result<Vec<Effect>, EffectError> {
    let repository_at = match event {
        COMMENT_EVENT => "/resource/pullRequest/repository",
        _ => "/resource/repository",
    };
    let on = Event {
        event,
        payload,
        actor: "",
        host: Azure { repository_at },
    };
    match event {
        "git.pullrequest.created" | "git.pullrequest.updated" | "git.pullrequest.merged" => {
            on.pull_request()
        }
        COMMENT_EVENT if on.payload.pointer("/resource/pullRequest").is_some() => {
            on.comment().map(|e| vec![e])
        }
        "git.push" => on.push().map(|e| e.into_iter().collect()),
        "build.complete" => on.build().map(|e| e.into_iter().collect()),
        _ => Ok(Vec::new()),
    }
}

/// Why a `Handled` event gives no effects, when this module knows better than "says nothing".
pub(super) fn nothing_to_sync(event: &str, payload: &Value) -> Option<String> {
    let version = str_at(payload, "/resourceVersion").unwrap_or("(none)");
    match event {
        COMMENT_EVENT => Some(format!(
            "{event} with resourceVersion {version} carries the comment only, not its pull request, so it names no changeset: subscribe with resource version 2.0"
        )),
        "build.complete" if build_repository(payload).is_none() => {
            let source = str_at(payload, "/resource/sourceGetVersion")
                .map(|v| format!(" (only sourceGetVersion {v})"))
                .unwrap_or_default();
            Some(format!(
                "build.complete with resourceVersion {version} names no repository{source}: its result is not attached to any changeset rather than guessed; subscribe with resource version 2.0"
            ))
        }
        "build.complete" => Some(format!(
            "build.complete with resourceVersion {version} names no source commit (resource.sourceVersion): its result is not attached to any changeset"
        )),
        "git.push" => Some("git.push changes no ref (resource.refUpdates is empty)".to_owned()),
        _ => None,
    }
}

/// What the Azure DevOps module adds to an event being turned into effects.
#[derive(Clone, Copy)]
struct Azure {
    /// Where the event's repository is: the pull request's, the push's or the build's.
    repository_at: &'static str,
}

/// One Azure DevOps event being turned into effects.
type Event<'p> = effects::Event<'p, Azure>;

impl HostEvent for Azure {
    /// The repository at `repository_at`: `<project>/<repository>`, by its id, its web page on
    /// the delivery's organization.
    fn repository(event: &effects::Event<'_, Self>) -> Result<RepositoryRef, EffectError> {
        let at = event.host.repository_at;
        let repository = event.need(at)?;
        repository_ref(event.payload, repository)
            .identified(event.event, &format!("{}.name", effects::dotted(at)))
    }
}

/// A repository object as a [`RepositoryRef`]: named `<project.name>/<name>` (empty unless it
/// has both), identified by its `id`, its web page `<organization>/<project>/_git/<name>`, its
/// clone URLs `remoteUrl` and `sshUrl`.
fn repository_ref(payload: &Value, repository: &Value) -> RepositoryRef {
    let text = |pointer: &str| str_at(repository, pointer).filter(|v| !v.is_empty());
    let (project, name) = (text("/project/name"), text("/name"));
    let url = match (organization_url(payload, repository), project, name) {
        (Some(org), Some(project), Some(name)) => web_url(&org, project, name).unwrap_or_default(),
        _ => String::new(),
    };
    RepositoryRef {
        name: match (project, name) {
            (Some(project), Some(name)) => format!("{project}/{name}"),
            _ => String::new(),
        },
        external_id: id_text(repository.get("id")),
        url,
        clone_urls: ["/remoteUrl", "/sshUrl"]
            .into_iter()
            .filter_map(|p| text(p).map(str::to_owned))
            .collect(),
    }
}

/// `<org>/<project>/_git/<name>`, each part percent-encoded as a path segment.
fn web_url(org: &str, project: &str, name: &str) -> Option<String> {
    let mut url = url::Url::parse(org).ok()?;
    url.path_segments_mut()
        .ok()?
        .pop_if_empty()
        .push(project)
        .push("_git")
        .push(name);
    Some(url.into())
}

/// The organization a delivery is from: `resourceContainers.account.baseUrl`, else
/// `collection.baseUrl`, else what the repository's `url` (then `remoteUrl`) is under.
fn organization_url(payload: &Value, repository: &Value) -> Option<String> {
    let base = [
        "/resourceContainers/account/baseUrl",
        "/resourceContainers/collection/baseUrl",
    ]
    .into_iter()
    .find_map(|p| str_at(payload, p).and_then(|u| organization_of(u, true)));
    base.or_else(|| {
        ["url", "remoteUrl"].into_iter().find_map(|f| {
            repository
                .get(f)?
                .as_str()
                .and_then(|u| organization_of(u, false))
        })
    })
}

/// The organization URL of an address on Azure DevOps: `https://dev.azure.com/<org>/...` is
/// `https://dev.azure.com/<org>/`, and so is `https://<org>.visualstudio.com/...` (the old
/// address of the same organization). On another host (Azure DevOps Server), a base URL
/// (`is_base`) is the collection's as it is, and a repository's API URL is taken up to its
/// `/_apis/`; anything else names no organization.
fn organization_of(raw: &str, is_base: bool) -> Option<String> {
    let url = url::Url::parse(raw.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let host = url.host_str()?.to_ascii_lowercase();
    if host == "dev.azure.com" {
        let org = url.path_segments()?.next().filter(|s| !s.is_empty())?;
        return Some(format!("https://dev.azure.com/{org}/"));
    }
    if let Some(sub) = host.strip_suffix(".visualstudio.com") {
        // `fabrikam.visualstudio.com`; `fabrikam.vssps.visualstudio.com` is its identity service.
        let org = sub.split('.').next().filter(|s| !s.is_empty())?;
        return Some(format!("https://dev.azure.com/{org}/"));
    }
    let path = url.path();
    let path = match is_base {
        true => path,
        false => &path[..path.find("/_apis/")?],
    };
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    Some(format!(
        "{}://{host}{port}{}/",
        url.scheme(),
        path.trim_end_matches('/')
    ))
}

/// Who an identity object is: its `uniqueName`, else its `displayName`; empty when neither.
fn identity(value: Option<&Value>) -> &str {
    let Some(value) = value else { return "" };
    ["uniqueName", "displayName"]
        .into_iter()
        .find_map(|f| value.get(f)?.as_str().filter(|s| !s.is_empty()))
        .unwrap_or_default()
}

/// The first line of the body's `message.text`, which Azure DevOps writes for a person
/// (`Jamal Hartnett created a new pull request`); `None` when absent or blank.
fn message(payload: &Value) -> Option<&str> {
    str_at(payload, "/message/text")
        .and_then(|t| t.lines().next())
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The changeset state of a pull request's `status` and `isDraft`.
fn state(pr: &Value) -> Option<ChangesetState> {
    match pr.get("status")?.as_str()? {
        "active" if pr.get("isDraft").and_then(Value::as_bool) == Some(true) => {
            Some(ChangesetState::Draft)
        }
        "active" => Some(ChangesetState::Open),
        "abandoned" => Some(ChangesetState::Closed),
        "completed" => Some(ChangesetState::Merged),
        _ => None,
    }
}

/// A pull request as a [`ChangesetSnapshot`] as of `time`.
fn snapshot(
    pr: &Value,
    web: Option<String>,
    time: Option<crate::time::Timestamp>,
) -> ChangesetSnapshot {
    let branch = |pointer: &str| {
        str_at(pr, pointer).map(|r| r.strip_prefix("refs/heads/").unwrap_or(r).to_owned())
    };
    let author = identity(pr.get("createdBy"));
    ChangesetSnapshot {
        title: string_at(pr, "/title"),
        url: web,
        author: (!author.is_empty()).then(|| author.to_owned()),
        state: state(pr),
        head_ref: branch("/sourceRefName"),
        base_ref: branch("/targetRefName"),
        head_sha: string_at(pr, "/lastMergeSourceCommit/commitId"),
        labels: label_list(pr, "name"),
        host_update_time: time,
        ..ChangesetSnapshot::default()
    }
}

/// A reviewer's `vote` as a vote: 10 (approved) and 5 (approved with suggestions) approve, -5
/// (waiting for the author) and -10 (rejected) request changes, 0 (no vote) withdraws; the
/// words for the summary.
fn vote(value: i64) -> Option<(Vote, &'static str)> {
    match value {
        10 => Some((Vote::Approved, "approved")),
        5 => Some((Vote::Approved, "approved with suggestions")),
        0 => Some((Vote::Withdrawn, "has no vote on")),
        -5 => Some((Vote::ChangesRequested, "is waiting for the author on")),
        -10 => Some((Vote::ChangesRequested, "rejected")),
        _ => None,
    }
}

/// What a build's `result` (resource version 2.0, beside `status: completed`) or `status`
/// (1.0) says: succeeded passed; partially succeeded, failed and canceled failed (a canceled
/// build did not pass); in progress, not started and postponed pending.
fn build_status(word: &str) -> Option<CheckStatus> {
    match word {
        "succeeded" => Some(CheckStatus::Passed),
        "partiallySucceeded" | "failed" | "canceled" => Some(CheckStatus::Failed),
        "inProgress" | "notStarted" | "postponed" | "cancelling" => Some(CheckStatus::Pending),
        _ => None,
    }
}

/// A build's repository, when it names one by its id (resource version 2.0).
fn build_repository(payload: &Value) -> Option<&Value> {
    payload
        .pointer("/resource/repository")
        .filter(|r| r.get("id").is_some_and(|id| !id_text(Some(id)).is_empty()))
}

impl Event<'_> {
    /// A pull request event: its changeset effect (kind `opened`, `merged`, `closed`,
    /// `updated` or `merge_commit`), then one `review` effect per reviewer that is a person
    /// (groups, `isContainer`, are left out: they vote through their members), each timed as
    /// the pull request. On `created` a reviewer with no vote (0) is left out, as there is no
    /// vote to withdraw yet.
    ///
    /// The time of it: `closedDate` of a completed or abandoned pull request, `creationDate`
    /// of a created one, else the delivery's `createdDate` (an update of an active one has no
    /// time of its own), so a late `created` does not reopen a completed pull request.
    fn pull_request(&self) -> Result<Vec<Effect>, EffectError> {
        let pr = self.need("/resource")?;
        let number = self.need_i64("/resource/pullRequestId")?;
        let created = self.event == "git.pullrequest.created";
        let time = match (pr.get("status").and_then(Value::as_str), created) {
            (Some("completed" | "abandoned"), _) => pr.get("closedDate").and_then(parse_time),
            (_, true) => pr.get("creationDate").and_then(parse_time),
            _ => None,
        }
        .or_else(|| self.payload.get("createdDate").and_then(parse_time));
        let actor = match created {
            true => identity(pr.get("createdBy")),
            false => identity(pr.get("closedBy")),
        };
        let on = Event { actor, ..*self };
        let repository = on.repository()?;
        let web = self.pull_request_url(pr, &repository, number);
        let snapshot = snapshot(pr, web, time);
        let kind = match (self.event, snapshot.state) {
            ("git.pullrequest.created", _) => "opened",
            (_, Some(ChangesetState::Merged)) => "merged",
            (_, Some(ChangesetState::Closed)) => "closed",
            ("git.pullrequest.merged", _) => "merge_commit",
            _ => "updated",
        };
        let titled = match &snapshot.title {
            Some(title) => format!("#{number} \"{title}\""),
            None => format!("#{number}"),
        };
        let summary = match message(self.payload) {
            Some(text) => format!("{text} ({titled})"),
            None => format!("{} {kind} {titled}", on.who()),
        };
        let mut out = vec![Effect::Changeset(on.changeset(
            Target::Number(number),
            time,
            kind,
            summary,
            String::new(),
            snapshot,
        )?)];
        let reviewers = pr
            .get("reviewers")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for reviewer in reviewers {
            if reviewer.get("isContainer").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let Some((vote, words)) = reviewer.get("vote").and_then(Value::as_i64).and_then(vote)
            else {
                continue;
            };
            let who = identity(Some(reviewer));
            if who.is_empty() || (created && vote == Vote::Withdrawn) {
                continue;
            }
            let shown = str_at(reviewer, "/displayName").unwrap_or(who);
            let id = match id_text(reviewer.get("id")) {
                id if id.is_empty() => who.to_owned(),
                id => id,
            };
            let value = reviewer
                .get("vote")
                .and_then(Value::as_i64)
                .unwrap_or_default();
            let effect = Event {
                actor: who,
                ..*self
            }
            .changeset(
                Target::Number(number),
                time,
                "review",
                format!("{shown} {words} #{number}"),
                format!("vote/{id}/{value}"),
                ChangesetSnapshot::default(),
            )?;
            out.push(Effect::Changeset(ChangesetEffect {
                review: Some(ReviewVote {
                    reviewer: who.to_owned(),
                    vote,
                }),
                ..effect
            }));
        }
        Ok(out)
    }

    /// The pull request's web page: `_links.web.href` when sent, else
    /// `<repository page>/pullrequest/<number>`.
    fn pull_request_url(
        &self,
        pr: &Value,
        repository: &RepositoryRef,
        number: i64,
    ) -> Option<String> {
        string_at(pr, "/_links/web/href").or_else(|| {
            (!repository.url.is_empty()).then(|| format!("{}/pullrequest/{number}", repository.url))
        })
    }

    /// A comment on a pull request (resource version 2.0: `resource.comment` and
    /// `resource.pullRequest`): a `comment` entry keyed by its thread and id
    /// (`<thread>/<comment>`, as comment ids count within a thread; `/deleted` when
    /// `isDeleted`), timed by the comment's `lastUpdatedDate` (else `publishedDate`), with what
    /// the pull request says as of then.
    fn comment(&self) -> Result<Effect, EffectError> {
        let comment = self.need("/resource/comment")?;
        let pr = self.need("/resource/pullRequest")?;
        let number = self.need_i64("/resource/pullRequest/pullRequestId")?;
        let time = comment
            .get("lastUpdatedDate")
            .and_then(parse_time)
            .or_else(|| comment.get("publishedDate").and_then(parse_time))
            .or_else(|| self.payload.get("createdDate").and_then(parse_time));
        let on = Event {
            actor: identity(comment.get("author")),
            ..*self
        };
        let id = id_text(comment.get("id"));
        let thread = str_at(comment, "/_links/self/href")
            .and_then(|href| href.split("/threads/").nth(1))
            .and_then(|rest| rest.split('/').next())
            .filter(|t| !t.is_empty());
        let key = match thread {
            Some(thread) if !id.is_empty() => format!("{thread}/{id}"),
            _ => id,
        };
        let deleted = comment.get("isDeleted").and_then(Value::as_bool) == Some(true);
        let summary = match message(self.payload) {
            Some(text) => format!("{text} (#{number})"),
            None => format!("{} commented on #{number}", on.who()),
        };
        let repository = on.repository()?;
        let web = self.pull_request_url(pr, &repository, number);
        on.changeset(
            Target::Number(number),
            time,
            "comment",
            summary,
            ending(key, deleted, "deleted"),
            snapshot(pr, web, time),
        )
        .map(Effect::Changeset)
    }

    /// `git.push`: every ref in `resource.refUpdates` (an all-zero `oldObjectId` is a created
    /// ref, an all-zero `newObjectId` a deleted one); `None` when it lists none.
    fn push(&self) -> Result<Option<Effect>, EffectError> {
        let updates = self.need_array("/resource/refUpdates")?;
        if updates.is_empty() {
            return Ok(None);
        }
        let mut refs = Vec::with_capacity(updates.len());
        for (i, update) in updates.iter().enumerate() {
            let field = |name: &str| {
                str_at(update, &format!("/{name}"))
                    .map(str::to_owned)
                    .ok_or_else(|| self.missing(&format!("/resource/refUpdates/{i}/{name}")))
            };
            refs.push(RefUpdate {
                name: field("name")?,
                old_sha: field("oldObjectId")?,
                new_sha: field("newObjectId")?,
            });
        }
        Ok(Some(Effect::Push(PushEffect {
            repository: self.repository()?,
            refs,
            actor: identity(self.payload.pointer("/resource/pushedBy")).to_owned(),
        })))
    }

    /// `build.complete`: its result on its source commit, for every changeset whose head it is
    /// (resource version 2.0: `sourceVersion` and `repository.id`). A build that names no
    /// repository or no commit (the 1.0 shape: `sourceGetVersion` only) gives nothing rather
    /// than a guess. The check is named by the build definition, keyed by the build's id and
    /// timed by its `finishTime` (else `startTime`, else the delivery's `createdDate`).
    fn build(&self) -> Result<Option<Effect>, EffectError> {
        let (Some(_), Some(sha)) = (
            build_repository(self.payload),
            str_at(self.payload, "/resource/sourceVersion").filter(|s| !s.is_empty()),
        ) else {
            return Ok(None);
        };
        let word = str_at(self.payload, "/resource/result")
            .or_else(|| str_at(self.payload, "/resource/status"))
            .ok_or_else(|| self.missing("/resource/result"))?;
        let status = build_status(word).ok_or_else(|| {
            EffectError::new(
                self.event,
                format!(
                    "build result {word:?} is none of succeeded, partiallySucceeded, failed, canceled, inProgress, notStarted, postponed"
                ),
            )
        })?;
        let context = str_at(self.payload, "/resource/definition/name")
            .filter(|n| !n.is_empty())
            .unwrap_or("build");
        let result = CheckResult {
            context: context.to_owned(),
            sha: sha.to_owned(),
            status,
        };
        let resource = self.need("/resource")?;
        let time = ["finishTime", "startTime"]
            .into_iter()
            .find_map(|f| resource.get(f).and_then(parse_time))
            .or_else(|| self.payload.get("createdDate").and_then(parse_time));
        let actor = match identity(resource.get("requestedFor")) {
            "" => identity(resource.get("lastChangedBy")),
            who => who,
        };
        let on = Event { actor, ..*self };
        let effect = on.changeset(
            Target::HeadSha(sha.to_owned()),
            time,
            "check",
            check_summary(context, status, sha),
            id_text(resource.get("id")),
            ChangesetSnapshot::default(),
        )?;
        Ok(Some(Effect::Changeset(ChangesetEffect {
            check: Some(result),
            ..effect
        })))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::hosts::testing::{
        FixtureCase, assert_every_fixture, assert_test_delivery_round_trips, fixture, headers,
        host_headers,
    };
    use crate::hosts::{Host, classify, verify};
    use Disposition::Handled;

    const SECRET: &str = "the-receiver-secret";
    const DIR: &str = "azure-devops";

    #[rustfmt::skip]
    const CASES: &[FixtureCase] = &[
        ("build.complete.json", "build.complete", "build.complete", Handled),
        ("git.pullrequest.created.json", "git.pullrequest.created", "git.pullrequest.created", Handled),
        ("git.pullrequest.merged.json", "git.pullrequest.merged", "git.pullrequest.merged", Handled),
        ("git.pullrequest.updated.json", "git.pullrequest.updated", "git.pullrequest.updated", Handled),
        ("git.push.json", "git.push", "git.push", Handled),
        ("ms.vss-code.git-pullrequest-comment-event.json", COMMENT_EVENT, COMMENT_EVENT, Handled),
        ("ms.vss-code.git-pullrequest-comment-event.resource-v1.json", COMMENT_EVENT, COMMENT_EVENT, Handled),
    ];

    #[test]
    fn every_azure_devops_fixture_is_named_by_its_event_type_and_verified() {
        assert_every_fixture(Host::AzureDevOps, DIR, CASES);
    }

    /// The key a fixture classifies to.
    fn key_of(file: &str) -> Option<String> {
        let body = fixture(&format!("{DIR}/{file}"));
        let h = headers(&[(HOOK_SECRET, SECRET)]);
        classify(Host::AzureDevOps, &h, &body)
            .expect("it classifies")
            .delivery_key
    }

    #[test]
    fn the_delivery_key_is_subscription_dot_notification_else_the_event_id() {
        assert_eq!(
            key_of("git.push.json").as_deref(),
            Some("8fd412f1-9873-4b45-8854-655b1b8a2eff.2")
        );
        assert_eq!(
            key_of("ms.vss-code.git-pullrequest-comment-event.json").as_deref(),
            Some("00000000-0000-0000-0000-000000000000.10")
        );
        // The docs samples have no subscriptionId / notificationId: the event's GUID.
        assert_eq!(
            key_of("git.pullrequest.created.json").as_deref(),
            Some("2ab4e3d3-b7a6-425e-92b1-5a9982c1269e")
        );
        let h = headers(&[(HOOK_SECRET, SECRET)]);
        let only_subscription = br#"{"eventType":"git.push","subscriptionId":"s","id":"e"}"#;
        let c = classify(Host::AzureDevOps, &h, only_subscription).expect("it classifies");
        assert_eq!(c.delivery_key.as_deref(), Some("e"));
        let none = br#"{"eventType":"git.push"}"#;
        let c = classify(Host::AzureDevOps, &h, none).expect("it classifies");
        assert_eq!(c.delivery_key, None);
    }

    fn basic(user_password: &str) -> String {
        format!("Basic {}", STANDARD.encode(user_password))
    }

    #[test]
    fn the_secret_passes_as_the_basic_password_of_any_user_or_as_x_hook_secret() {
        let body = fixture("azure-devops/git.push.json");
        for user in ["", "azure", "someone:with-colon-before"] {
            let auth = basic(&format!("{user}:{SECRET}"));
            let h = headers(&[("Authorization", &auth)]);
            let expected = match user.contains(':') {
                // The password is what follows the first colon.
                true => Err(VerifyError::CredentialMismatch {
                    credential: "the Basic authentication password",
                }),
                false => Ok(Verified::Signed),
            };
            assert_eq!(
                verify(Host::AzureDevOps, &h, &body, &[SECRET]),
                expected,
                "{user}"
            );
        }
        let h = headers(&[("X-Hook-Secret", SECRET)]);
        assert_eq!(
            verify(Host::AzureDevOps, &h, &body, &["old", SECRET]),
            Ok(Verified::Signed)
        );
        let auth = basic(&format!("u:{SECRET}"));
        let both = headers(&[("Authorization", &auth), ("X-Hook-Secret", SECRET)]);
        assert_eq!(
            verify(Host::AzureDevOps, &both, &body, &[SECRET]),
            Ok(Verified::Signed)
        );
    }

    #[test]
    fn each_credential_sent_must_match_and_one_must_be_sent() {
        let body = fixture("azure-devops/git.push.json");
        let right = basic(&format!("u:{SECRET}"));
        let wrong = basic("u:not-it");
        let h = headers(&[("Authorization", &right), ("X-Hook-Secret", "not-it")]);
        assert_eq!(
            verify(Host::AzureDevOps, &h, &body, &[SECRET]),
            Err(VerifyError::CredentialMismatch {
                credential: "X-Hook-Secret"
            })
        );
        let h = headers(&[("Authorization", &wrong), ("X-Hook-Secret", SECRET)]);
        assert_eq!(
            verify(Host::AzureDevOps, &h, &body, &[SECRET]),
            Err(VerifyError::CredentialMismatch {
                credential: "the Basic authentication password"
            })
        );
        for h in [
            headers(&[]),
            headers(&[("X-Hook-Secret", " "), ("Authorization", "")]),
        ] {
            let e = verify(Host::AzureDevOps, &h, &body, &[SECRET]).expect_err("nothing sent");
            assert_eq!(
                e.to_string(),
                "missing Authorization (Basic) or X-Hook-Secret"
            );
        }
        assert!(
            verify(
                Host::AzureDevOps,
                &headers(&[("X-Hook-Secret", SECRET)]),
                &body,
                &[]
            )
            .is_err()
        );
    }

    #[test]
    fn a_malformed_authorization_is_refused_naming_the_expected_form() {
        let body = fixture("azure-devops/git.push.json");
        let no_colon = basic(SECRET);
        let bearer = format!("Bearer {SECRET}");
        for value in [
            "Basic !!!not-base64",
            no_colon.as_str(),
            bearer.as_str(),
            "Basic",
        ] {
            let h = headers(&[("Authorization", value), ("X-Hook-Secret", SECRET)]);
            let e = verify(Host::AzureDevOps, &h, &body, &[SECRET]).expect_err(value);
            assert_eq!(
                e.to_string(),
                "malformed Authorization: expected Basic base64(<any user name>:<the receiver's secret>)",
                "{value}"
            );
        }
    }

    #[test]
    fn a_body_without_a_string_event_type_is_refused_saying_so() {
        let h = headers(&[("X-Hook-Secret", SECRET)]);
        for body in [
            &br#"{"eventType": 3}"#[..],
            br#"{"id":"x"}"#,
            br#"{"eventType":" "}"#,
        ] {
            let e = classify(Host::AzureDevOps, &h, body).expect_err("no eventType");
            assert!(e.to_string().contains("string eventType"), "{e}");
        }
        let e = classify(Host::AzureDevOps, &h, b"[1]").expect_err("not an object");
        assert_eq!(
            e.to_string(),
            "body of a service hook event must be a JSON object"
        );
        let e = classify(Host::AzureDevOps, &h, b"no").expect_err("not JSON");
        assert!(
            e.to_string()
                .starts_with("body of a service hook event must be JSON"),
            "{e}"
        );
    }

    #[test]
    fn other_event_types_are_ignored_and_claimed_names_nothing() {
        let h = headers(&[("X-Hook-Secret", SECRET)]);
        let body = br#"{"eventType":"workitem.created","id":"w"}"#;
        let c = classify(Host::AzureDevOps, &h, body).expect("it classifies");
        assert_eq!(
            (c.event.as_str(), c.disposition),
            ("workitem.created", Disposition::Ignored)
        );
        assert_eq!(
            crate::hosts::claimed(Host::AzureDevOps, &h),
            crate::hosts::Claimed::default()
        );
    }

    #[test]
    fn the_test_delivery_is_a_push_of_no_ref_carrying_the_secret_both_ways() {
        assert_test_delivery_round_trips(Host::AzureDevOps, "git.push", Handled);
        let delivery = crate::hosts::test_delivery(Host::AzureDevOps, SECRET, "k");
        let h = crate::hosts::testing::test_delivery_headers(&delivery);
        assert_eq!(
            h.get("X-Hook-Secret").map(|v| v.as_bytes()),
            Some(SECRET.as_bytes())
        );
        let mut only_basic = h.clone();
        only_basic.remove("X-Hook-Secret");
        assert_eq!(
            verify(Host::AzureDevOps, &only_basic, &delivery.body, &[SECRET]),
            Ok(Verified::Signed)
        );
        let payload: Value = serde_json::from_slice(&delivery.body).expect("JSON");
        assert_eq!(effects("git.push", &payload), Ok(vec![]));
        assert!(nothing_to_sync("git.push", &payload).is_some());
    }

    #[test]
    fn an_organization_is_read_in_its_dev_azure_com_form() {
        for (raw, base, expected) in [
            (
                "https://dev.azure.com/alexander0053/",
                true,
                Some("https://dev.azure.com/alexander0053/"),
            ),
            (
                "https://dev.azure.com/fabrikam/DefaultCollection/_apis/repos/git/x",
                false,
                Some("https://dev.azure.com/fabrikam/"),
            ),
            (
                "https://fabrikam.visualstudio.com/DefaultCollection/_git/Fabrikam",
                false,
                Some("https://dev.azure.com/fabrikam/"),
            ),
            (
                "https://ado.example.com/tfs/DefaultCollection/_apis/git/repositories/1",
                false,
                Some("https://ado.example.com/tfs/DefaultCollection/"),
            ),
            (
                "https://ado.example.com/tfs/DefaultCollection",
                true,
                Some("https://ado.example.com/tfs/DefaultCollection/"),
            ),
            (
                "https://ado.example.com/tfs/DefaultCollection/_git/r",
                false,
                None,
            ),
            ("https://dev.azure.com/", true, None),
            ("not a url", true, None),
        ] {
            assert_eq!(organization_of(raw, base).as_deref(), expected, "{raw}");
        }
    }

    // ---- effects ----

    /// The parsed fixture `azure-devops/<file>`.
    fn body_of(file: &str) -> Value {
        serde_json::from_slice(&fixture(&format!("{DIR}/{file}"))).expect("JSON")
    }

    fn effects_of(value: &Value) -> Result<Vec<Effect>, EffectError> {
        let body = serde_json::to_vec(value).expect("serialises");
        let h = host_headers(Host::AzureDevOps, "", "k", Some(SECRET), &body);
        let c = classify(Host::AzureDevOps, &h, &body).expect("it classifies");
        crate::hosts::effects(Host::AzureDevOps, &c.event, &c.payload)
    }

    fn changeset(effect: &Effect) -> &ChangesetEffect {
        match effect {
            Effect::Changeset(c) => c,
            other => panic!("a changeset effect, got {other:?}"),
        }
    }

    #[test]
    fn a_created_pull_request_is_open_with_its_title_branches_head_and_repository() {
        let effects = effects_of(&body_of("git.pullrequest.created.json")).expect("effects");
        // The only reviewer is a group (isContainer): no vote effect.
        assert_eq!(effects.len(), 1);
        let c = changeset(&effects[0]);
        assert_eq!(c.target, Target::Number(1));
        assert_eq!(c.kind, "opened");
        assert_eq!(c.actor, "fabrikamfiber4@hotmail.com");
        assert_eq!(
            c.summary,
            "Jamal Hartnett created a new pull request (#1 \"my first pull request\")"
        );
        let s = &c.snapshot;
        assert_eq!(s.state, Some(ChangesetState::Open));
        assert_eq!(s.title.as_deref(), Some("my first pull request"));
        assert_eq!(s.head_ref.as_deref(), Some("mytopic"));
        assert_eq!(s.base_ref.as_deref(), Some("master"));
        assert_eq!(
            s.head_sha.as_deref(),
            Some("53d54ac915144006c2c9e90d2c7d3880920db49c")
        );
        assert_eq!(
            c.occur_time,
            parse_time(&json!("2014-06-17T16:55:46.589889Z"))
        );
        assert_eq!(c.repository.name, "Fabrikam/Fabrikam");
        assert_eq!(
            c.repository.external_id,
            "4bc14d40-c903-45e2-872e-0462c7748079"
        );
        assert_eq!(
            c.repository.url,
            "https://dev.azure.com/fabrikam/Fabrikam/_git/Fabrikam"
        );
        assert_eq!(
            s.url.as_deref(),
            Some("https://dev.azure.com/fabrikam/Fabrikam/_git/Fabrikam/pullrequest/1")
        );
    }

    #[test]
    fn completed_is_merged_abandoned_closed_and_a_draft_is_a_draft() {
        for (file, kind) in [
            ("git.pullrequest.updated.json", "merged"),
            ("git.pullrequest.merged.json", "merged"),
        ] {
            let effects = effects_of(&body_of(file)).expect("effects");
            let c = changeset(&effects[0]);
            assert_eq!(
                (c.kind.as_str(), c.snapshot.state),
                (kind, Some(ChangesetState::Merged))
            );
            assert_eq!(
                c.occur_time,
                parse_time(&json!("2014-06-30T18:59:12.3660573Z"))
            );
        }
        // Derived from git.pullrequest.updated.json: status changed by the test.
        let mut abandoned = body_of("git.pullrequest.updated.json");
        abandoned["resource"]["status"] = json!("abandoned");
        let c = changeset(&effects_of(&abandoned).expect("effects")[0]).clone();
        assert_eq!(
            (c.kind.as_str(), c.snapshot.state),
            ("closed", Some(ChangesetState::Closed))
        );
        let mut draft = body_of("git.pullrequest.updated.json");
        draft["resource"]["status"] = json!("active");
        draft["resource"]["isDraft"] = json!(true);
        let c = changeset(&effects_of(&draft).expect("effects")[0]).clone();
        assert_eq!(
            (c.kind.as_str(), c.snapshot.state),
            ("updated", Some(ChangesetState::Draft))
        );
        // An active pull request's update has no time of its own: the delivery's.
        assert_eq!(
            c.occur_time,
            parse_time(&json!("2016-09-19T13:03:27.2813828Z"))
        );
    }

    #[test]
    fn reviewer_votes_map_onto_approvals_and_change_requests_and_groups_are_left_out() {
        // Derived from git.pullrequest.updated.json: reviewers replaced by the test.
        let mut body = body_of("git.pullrequest.updated.json");
        let person = |id: &str, vote: i64| json!({"id": id, "displayName": id.to_uppercase(), "uniqueName": format!("{id}@example.com"), "vote": vote});
        let mut group = person("team", 10);
        group["isContainer"] = json!(true);
        body["resource"]["reviewers"] = json!([
            person("a", 10),
            person("b", 5),
            person("c", 0),
            person("d", -5),
            person("e", -10),
            group,
            person("f", 7)
        ]);
        let effects = effects_of(&body).expect("effects");
        let votes: Vec<(String, Vote, String, String)> = effects[1..]
            .iter()
            .map(|e| {
                let c = changeset(e);
                let r = c.review.clone().expect("a vote");
                (r.reviewer, r.vote, c.summary.clone(), c.external_id.clone())
            })
            .collect();
        let expected = [
            (
                "a@example.com",
                Vote::Approved,
                "A approved #1",
                "vote/a/10",
            ),
            (
                "b@example.com",
                Vote::Approved,
                "B approved with suggestions #1",
                "vote/b/5",
            ),
            (
                "c@example.com",
                Vote::Withdrawn,
                "C has no vote on #1",
                "vote/c/0",
            ),
            (
                "d@example.com",
                Vote::ChangesRequested,
                "D is waiting for the author on #1",
                "vote/d/-5",
            ),
            (
                "e@example.com",
                Vote::ChangesRequested,
                "E rejected #1",
                "vote/e/-10",
            ),
        ];
        let expected: Vec<_> = expected
            .iter()
            .map(|(r, v, s, k)| (r.to_string(), *v, s.to_string(), k.to_string()))
            .collect();
        assert_eq!(votes, expected);
        // On created, a reviewer who has not voted has nothing to withdraw.
        let mut created = body_of("git.pullrequest.created.json");
        created["resource"]["reviewers"] = json!([person("c", 0), person("a", 10)]);
        let effects = effects_of(&created).expect("effects");
        assert_eq!(effects.len(), 2);
        assert_eq!(
            changeset(&effects[1]).review.as_ref().map(|r| r.vote),
            Some(Vote::Approved)
        );
    }

    #[test]
    fn a_version_2_comment_is_a_comment_entry_and_a_version_1_comment_is_nothing_with_a_reason() {
        let effects = effects_of(&body_of("ms.vss-code.git-pullrequest-comment-event.json"))
            .expect("effects");
        let c = changeset(&effects[0]);
        assert_eq!(effects.len(), 1);
        assert_eq!(
            (c.kind.as_str(), c.external_id.as_str()),
            ("comment", "5/2")
        );
        assert_eq!(c.target, Target::Number(1));
        assert_eq!(c.actor, "fabrikamfiber4@hotmail.com");
        assert_eq!(
            c.summary,
            "Jamal Hartnett has edited a pull request comment (#1)"
        );
        assert_eq!(
            c.occur_time,
            parse_time(&json!("2014-06-17T16:58:33.123889Z"))
        );
        // The old visualstudio.com address is the same organization.
        assert_eq!(
            c.repository.url,
            "https://dev.azure.com/fabrikam/Fabrikam/_git/Fabrikam"
        );
        let v1 = body_of("ms.vss-code.git-pullrequest-comment-event.resource-v1.json");
        assert_eq!(effects_of(&v1), Ok(vec![]));
        let why = nothing_to_sync(COMMENT_EVENT, &v1).expect("a reason");
        assert!(why.contains("resourceVersion 1.0"), "{why}");
    }

    #[test]
    fn a_push_is_its_ref_updates_on_the_organization_of_its_base_url() {
        let effects = effects_of(&body_of("git.push.json")).expect("effects");
        let [Effect::Push(p)] = effects.as_slice() else {
            panic!("one push effect: {effects:?}");
        };
        assert_eq!(
            p.refs,
            vec![RefUpdate {
                name: "refs/heads/master".into(),
                old_sha: "fa51eeb1e50b98293ce281e6d5492b9decae613b".into(),
                new_sha: "298a79aa1552799a70718a0ee914d153d5a1a76b".into(),
            }]
        );
        assert_eq!(p.actor, "alexander@akuity.onmicrosoft.com");
        assert_eq!(p.repository.name, "alex-test/alex-test");
        assert_eq!(
            p.repository.external_id,
            "ba2967cc-02c2-414c-8d10-1b99197cbaa6"
        );
        assert_eq!(
            p.repository.url,
            "https://dev.azure.com/alexander0053/alex-test/_git/alex-test"
        );
        // A ref update without its new id is an error naming it.
        let mut body = body_of("git.push.json");
        body["resource"]["refUpdates"][0]
            .as_object_mut()
            .expect("an object")
            .remove("newObjectId");
        let e = effects_of(&body).expect_err("no newObjectId");
        assert!(
            e.to_string()
                .contains("missing resource.refUpdates.0.newObjectId"),
            "{e}"
        );
    }

    /// build.complete.json made into the resource version 2.0 shape by the test: a
    /// `sourceVersion` commit and a `repository {id, type}`, `status: completed` and `result`.
    fn build_v2(result: &str) -> Value {
        let mut body = body_of("build.complete.json");
        body["resourceVersion"] = json!("2.0");
        body["resource"]["status"] = json!("completed");
        body["resource"]["result"] = json!(result);
        body["resource"]["sourceVersion"] = json!("53d54ac915144006c2c9e90d2c7d3880920db49c");
        body["resource"]["repository"] =
            json!({"id": "4bc14d40-c903-45e2-872e-0462c7748079", "type": "TfsGit"});
        body
    }

    #[test]
    fn a_version_2_build_is_a_check_on_its_commit_and_a_version_1_build_is_nothing() {
        use CheckStatus::{Failed, Passed, Pending};
        for (result, status) in [
            ("succeeded", Passed),
            ("partiallySucceeded", Failed),
            ("failed", Failed),
            ("canceled", Failed),
            ("inProgress", Pending),
        ] {
            let effects = effects_of(&build_v2(result)).expect("effects");
            let c = changeset(&effects[0]);
            let sha = "53d54ac915144006c2c9e90d2c7d3880920db49c";
            assert_eq!(c.target, Target::HeadSha(sha.into()));
            assert_eq!(
                c.check,
                Some(CheckResult {
                    context: "ConsumerAddressModule".into(),
                    sha: sha.into(),
                    status
                }),
                "{result}"
            );
            assert_eq!(
                c.repository.external_id,
                "4bc14d40-c903-45e2-872e-0462c7748079"
            );
            assert_eq!(c.repository.name, "");
            assert_eq!(c.external_id, "2");
        }
        let e = effects_of(&build_v2("exploded")).expect_err("an unknown result");
        assert!(e.to_string().contains("\"exploded\""), "{e}");
        let v1 = body_of("build.complete.json");
        assert_eq!(effects_of(&v1), Ok(vec![]));
        let why = nothing_to_sync("build.complete", &v1).expect("a reason");
        assert!(
            why.contains("names no repository") && why.contains("LG:refs/heads/master:600c52d"),
            "{why}"
        );
    }
}
