//! Batch-change sync end to end for GitLab, Bitbucket Server, Bitbucket Cloud, Gitea and Azure
//! DevOps, as
//! `changesets.rs` is for GitHub: real fixture payloads posted over HTTP, processed by the worker,
//! and the changeset read back over gRPC, on SQLite and PostgreSQL.
//!
//! The published fixtures come from different projects, pull requests and years, so each story
//! edits them into one: one repository and one pull request number, each step at a later host
//! time than the one before, and every snapshot a payload carries (head commit, state, title,
//! branches) saying what the story says at that step.

mod common;

use common::{Engine, TestApp, fixture};
use hookgate::admin::proto::{
    Changeset, ChangesetState, CheckState, CodeHostKind, DeliveryState, ListChangesetEventsRequest,
    ListChangesetsRequest, ReviewState, changeset_service_client::ChangesetServiceClient,
};
use serde_json::{Value, json};

fn load(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).expect("fixtures are JSON")
}

/// Epoch milliseconds of an RFC 3339 time, as Bitbucket Server writes its dates.
fn epoch_ms(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .expect("a valid RFC 3339 time")
        .timestamp_millis()
}

/// One delivery of a story: the event header and the (edited) body.
struct Step {
    name: &'static str,
    event: &'static str,
    body: Value,
}

/// What a person reads on the pull request's page at the end of the story, besides its state.
struct Page {
    title: &'static str,
    url: &'static str,
    author: &'static str,
    head_ref: &'static str,
    base_ref: &'static str,
    labels: &'static [&'static str],
}

/// One host's pull request, followed from opened to merged: opened → approved → check failed →
/// new commit → check passed → merged.
struct Story {
    kind: CodeHostKind,
    /// The receiver's code host, as created.
    urn: &'static str,
    /// The code host URN as hookgate normalises it.
    normalized_urn: &'static str,
    /// The repository's name as the host's events name it.
    repository: &'static str,
    number: i64,
    /// The head commit as the pull request events carry it, before and after the new commit.
    old_head: &'static str,
    new_head: &'static str,
    steps: Vec<Step>,
    /// The timeline kind each step leaves.
    kinds: [&'static str; 6],
    page: Page,
}

/// A declined or closed pull request, and an older open (or reopen) delivered after it.
struct LateOpen {
    closed: Step,
    /// At an earlier host time than `closed`.
    older: Step,
    /// At a later host time than `closed`, when the host can reopen at all.
    newer: Option<Step>,
    /// The timeline kinds of `older` and `closed`, oldest first.
    kinds: [&'static str; 2],
}

// ---- GitLab ----

/// gitlabhq/gitlab-test!1 "MS-Viewport" on http://example.com, from merge_request.open.json.
const GL_OLD: &str = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7";
const GL_NEW: &str = "3c4f1b0e2d9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c";
const GL_URL: &str = "http://example.com/gitlabhq/gitlab-test/-/merge_requests/1";

/// Makes a Merge Request Hook or Pipeline Hook fixture about gitlabhq/gitlab-test!1: its
/// project, labels and the merge request's identity (iid, title, branches, author, URL) as
/// merge_request.open.json states them. The sample's own `url` names another project and its
/// `author_id` (51) is not the user (id 1) who opened it; the story makes both consistent.
fn gitlab_as_story(payload: &mut Value) {
    let open = load("gitlab/merge_request.open.json");
    payload["project"] = open["project"].clone();
    payload["repository"] = open["repository"].clone();
    let mr = if payload["object_kind"] == "pipeline" {
        &mut payload["merge_request"]
    } else {
        payload["labels"] = open["labels"].clone();
        payload["object_attributes"]["author_id"] = json!(1);
        &mut payload["object_attributes"]
    };
    for key in ["iid", "title", "source_branch", "target_branch"] {
        mr[key] = open["object_attributes"][key].clone();
    }
    mr["url"] = json!(GL_URL);
    mr["source_project_id"] = open["project"]["id"].clone();
    mr["target_project_id"] = open["project"]["id"].clone();
}

/// A Merge Request Hook from `file`, made about the story's merge request, by `user`, with
/// `action`, its last commit `head` and its `updated_at` at `time`.
fn gitlab_merge_request(file: &str, action: &str, user: Value, head: &str, time: &str) -> Value {
    let mut payload = load(file);
    gitlab_as_story(&mut payload);
    payload["user"] = user;
    let mr = &mut payload["object_attributes"];
    mr["action"] = json!(action);
    mr["updated_at"] = json!(time);
    mr["last_commit"]["id"] = json!(head);
    mr["last_commit"]["url"] = json!(format!(
        "http://example.com/gitlabhq/gitlab-test/-/commit/{head}"
    ));
    payload
}

/// A Pipeline Hook of the story's merge request on `sha`, finished at `finished`.
fn gitlab_pipeline(status: &str, sha: &str, created: &str, finished: &str) -> Value {
    let mut payload = load("gitlab/pipeline.json");
    gitlab_as_story(&mut payload);
    let pipeline = &mut payload["object_attributes"];
    pipeline["status"] = json!(status);
    pipeline["sha"] = json!(sha);
    pipeline["ref"] = json!("ms-viewport");
    pipeline["created_at"] = json!(created);
    pipeline["finished_at"] = json!(finished);
    payload["commit"]["id"] = json!(sha);
    payload
}

/// user1, who opened the merge request (merge_request.open.json's user).
fn gitlab_author() -> Value {
    load("gitlab/merge_request.open.json")["user"].clone()
}

fn gitlab() -> Story {
    let mut opened = load("gitlab/merge_request.open.json");
    gitlab_as_story(&mut opened);

    // Another user approves; an approval changes nothing else.
    let reviewer = json!({
        "id": 2,
        "name": "Reviewer One",
        "username": "reviewer-1",
        "avatar_url": null,
        "email": "reviewer-1@example.com"
    });
    let mut approved = gitlab_merge_request(
        "gitlab/merge_request.open.json",
        "approved",
        reviewer,
        GL_OLD,
        "2013-12-03T17:24:00Z",
    );
    approved["changes"] = json!({});

    let failed = gitlab_pipeline(
        "failed",
        GL_OLD,
        "2013-12-03 17:24:10 UTC",
        "2013-12-03 17:25:00 UTC",
    );

    let mut pushed = gitlab_merge_request(
        "gitlab/merge_request.update.json",
        "update",
        gitlab_author(),
        GL_NEW,
        "2013-12-03 17:26:00 UTC",
    );
    pushed["object_attributes"]["oldrev"] = json!(GL_OLD);

    let mut passed = gitlab_pipeline(
        "success",
        GL_NEW,
        "2013-12-03 17:26:10 UTC",
        "2013-12-03 17:27:00 UTC",
    );
    // The new commit's pipeline is another pipeline than the first (31).
    passed["object_attributes"]["id"] = json!(32);

    let merged = gitlab_merge_request(
        "gitlab/merge_request.merge.json",
        "merge",
        load("gitlab/merge_request.merge.json")["user"].clone(),
        GL_NEW,
        "2013-12-03 17:28:00 UTC",
    );

    Story {
        kind: CodeHostKind::Gitlab,
        urn: "http://example.com",
        normalized_urn: "http://example.com/",
        repository: "gitlabhq/gitlab-test",
        number: 1,
        old_head: GL_OLD,
        new_head: GL_NEW,
        steps: vec![
            step("opened", "Merge Request Hook", opened),
            step("approved", "Merge Request Hook", approved),
            step("pipeline failed", "Pipeline Hook", failed),
            step("new commit", "Merge Request Hook", pushed),
            step("pipeline passed", "Pipeline Hook", passed),
            step("merged", "Merge Request Hook", merged),
        ],
        kinds: [
            "opened",
            "approved",
            "check",
            "synchronize",
            "check",
            "merged",
        ],
        page: Page {
            title: "MS-Viewport",
            url: GL_URL,
            author: "user1",
            head_ref: "ms-viewport",
            base_ref: "master",
            labels: &["API"],
        },
    }
}

/// Closed at 17:28:34 (T+5 min), then a reopen at 17:23:34 (T) arrives; a reopen at T+10 min
/// is real news.
fn gitlab_late_open() -> LateOpen {
    let closed = gitlab_merge_request(
        "gitlab/merge_request.close.json",
        "close",
        gitlab_author(),
        GL_OLD,
        "2013-12-03 17:28:34 UTC",
    );
    let reopen = |time| {
        let mut reopened = gitlab_merge_request(
            "gitlab/merge_request.open.json",
            "reopen",
            gitlab_author(),
            GL_OLD,
            time,
        );
        reopened["changes"] = json!({"state_id": {"previous": 2, "current": 1}});
        reopened
    };
    LateOpen {
        closed: step("closed", "Merge Request Hook", closed),
        older: step(
            "reopened",
            "Merge Request Hook",
            reopen("2013-12-03 17:23:34 UTC"),
        ),
        newer: Some(step(
            "reopened",
            "Merge Request Hook",
            reopen("2013-12-03 17:33:34 UTC"),
        )),
        kinds: ["reopened", "closed"],
    }
}

// ---- Bitbucket Server ----

/// ~gopher/webhook-test pull request 5 "Update README" on server.bitbucket.local, from
/// pr_opened.json.
const BBS_OLD: &str = "32a0b8a740c2963c6f56bd8baf3dc05683d299e0";
const BBS_NEW: &str = "7e2d4c1a9b8f6e5d4c3b2a1f0e9d8c7b6a5f4e3d";

/// Makes a `pr:*` fixture about pull request 5: its id, title, author, links and refs as
/// pr_opened.json states them, its source branch at `head`, and its `updatedDate`.
fn bbs_as_story(payload: &mut Value, head: &str, updated_ms: i64) {
    let story = load("bitbucket-server/pr_opened.json")["pullRequest"].clone();
    let pr = &mut payload["pullRequest"];
    for key in [
        "id",
        "title",
        "description",
        "author",
        "fromRef",
        "toRef",
        "links",
        "createdDate",
    ] {
        pr[key] = story[key].clone();
    }
    pr["fromRef"]["latestCommit"] = json!(head);
    pr["updatedDate"] = json!(updated_ms);
}

/// A `pr:*` fixture made about pull request 5, dated `date` (Bitbucket's `+0100` form).
fn bbs_pull_request(file: &str, head: &str, date: &str, updated_ms: i64) -> Value {
    let mut payload = load(file);
    bbs_as_story(&mut payload, head, updated_ms);
    payload["date"] = json!(date);
    payload
}

/// A `repo:build_status` as the Sourcegraph plugin sends it (the parser's shape): the build on
/// `sha`, for pull request 5 as it stands then.
fn bbs_build_status(state: &str, sha: &str, at: &str, pr_updated_ms: i64) -> Value {
    let mut pr = json!({"pullRequest": load("bitbucket-server/pr_opened.json")["pullRequest"]});
    bbs_as_story(&mut pr, sha, pr_updated_ms);
    json!({
        "createdDate": epoch_ms(at),
        "user": {"name": "ci-bot", "id": 9},
        "commit": sha,
        "status": {
            "state": state,
            "key": "ci-build",
            "name": "CI build",
            "url": "https://ci.example/builds/42",
            "description": "",
            "dateAdded": epoch_ms(at)
        },
        "pullRequests": [pr["pullRequest"]]
    })
}

fn bitbucket_server() -> Story {
    let opened_ms = 1_551_432_675_860; // pr_opened.json's createdDate, 09:31:15.860Z
    let opened = load("bitbucket-server/pr_opened.json");
    // tux approves at 10:35:38+0100: the fixture is about pull request 5 as opened.
    let approved = load("bitbucket-server/pr_reviewer_approved.json");
    let failed = bbs_build_status("FAILED", BBS_OLD, "2019-03-01T09:36:00Z", opened_ms);

    let pushed_ms = epoch_ms("2019-03-01T09:36:30Z");
    let mut pushed = bbs_pull_request(
        "bitbucket-server/pr_from_ref_updated.json",
        BBS_NEW,
        "2019-03-01T10:36:30+0100",
        pushed_ms,
    );
    pushed["previousFromHash"] = json!(BBS_OLD);
    pushed["actor"] = opened["actor"].clone();

    let passed = bbs_build_status("SUCCESSFUL", BBS_NEW, "2019-03-01T09:37:00Z", pushed_ms);

    // Merged at 10:37:14+0100, as the fixture says, with the new head.
    let merged_ms = 1_551_433_034_286;
    let merged = bbs_pull_request(
        "bitbucket-server/pr_merged.json",
        BBS_NEW,
        "2019-03-01T10:37:14+0100",
        merged_ms,
    );

    Story {
        kind: CodeHostKind::BitbucketServer,
        urn: "https://server.bitbucket.local",
        normalized_urn: "https://server.bitbucket.local/",
        repository: "~gopher/webhook-test",
        number: 5,
        old_head: BBS_OLD,
        new_head: BBS_NEW,
        steps: vec![
            step("opened", "pr:opened", opened),
            step("approved", "pr:reviewer:approved", approved),
            step("build failed", "repo:build_status", failed),
            step("new commit", "pr:from_ref_updated", pushed),
            step("build passed", "repo:build_status", passed),
            step("merged", "pr:merged", merged),
        ],
        kinds: [
            "opened",
            "approved",
            "check",
            "synchronize",
            "check",
            "merged",
        ],
        page: Page {
            title: "Update README",
            url: "https://server.bitbucket.local/users/gopher/repos/webhook-test/pull-requests/5",
            author: "gopher",
            head_ref: "feature/wip",
            base_ref: "master",
            labels: &[],
        },
    }
}

/// Declined at 10:36:15+0100 (T+5 min), then the opening at 10:31:15 (T) arrives; an opening
/// at T+10 min is real news.
fn bitbucket_server_late_open() -> LateOpen {
    let declined_ms = epoch_ms("2019-03-01T09:36:15Z");
    let mut declined = bbs_pull_request(
        "bitbucket-server/pr_declined.json",
        BBS_OLD,
        "2019-03-01T10:36:15+0100",
        declined_ms,
    );
    declined["pullRequest"]["closedDate"] = json!(declined_ms);
    let newer_ms = epoch_ms("2019-03-01T09:41:15Z");
    LateOpen {
        closed: step("declined", "pr:declined", declined),
        older: step(
            "opened",
            "pr:opened",
            load("bitbucket-server/pr_opened.json"),
        ),
        newer: Some(step(
            "opened again",
            "pr:opened",
            bbs_pull_request(
                "bitbucket-server/pr_opened.json",
                BBS_OLD,
                "2019-03-01T10:41:15+0100",
                newer_ms,
            ),
        )),
        kinds: ["opened", "closed"],
    }
}

// ---- Bitbucket Cloud ----

/// amuniz/test-repos pull request 735 "BUILD test" on bitbucket.org, from
/// pullrequest_created.json. Pull requests carry 12-character hashes, statuses full ones.
const BBC_OLD: &str = "d31df3425c5b";
const BBC_OLD_FULL: &str = "d31df3425c5b8e7a6f5e4d3c2b1a09f8e7d6c5b4";
const BBC_NEW: &str = "5ab8e1c2d3f4";
const BBC_NEW_FULL: &str = "5ab8e1c2d3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8";

/// Makes a `pullrequest:*` fixture about pull request 735 of amuniz/test-repos: the repository,
/// and the pull request's id, title, author, links and branches as pullrequest_created.json
/// states them, its source commit `head`, and its `updated_on`.
fn bbc_pull_request(file: &str, head: &str, updated_on: &str) -> Value {
    let created = load("bitbucket-cloud/pullrequest_created.json");
    let mut payload = load(file);
    payload["repository"] = created["repository"].clone();
    let pr = &mut payload["pullrequest"];
    for key in [
        "id",
        "title",
        "description",
        "summary",
        "rendered",
        "author",
        "source",
        "destination",
        "links",
        "created_on",
    ] {
        pr[key] = created["pullrequest"][key].clone();
    }
    pr["source"]["commit"]["hash"] = json!(head);
    pr["source"]["commit"]["links"] = json!({
        "html": {"href": format!("https://bitbucket.org/amuniz/test-repos/commits/{head}")},
        "self": {"href": format!(
            "https://api.bitbucket.org/2.0/repositories/amuniz/test-repos/commit/{head}"
        )}
    });
    pr["updated_on"] = json!(updated_on);
    payload
}

/// A `repo:commit_status_updated` of amuniz/test-repos for the full commit `sha`.
fn bbc_commit_status(state: &str, sha: &str, created_on: &str, updated_on: &str) -> Value {
    let repository = load("bitbucket-cloud/pullrequest_created.json")["repository"].clone();
    let mut payload = load("bitbucket-cloud/repo_commit_status_updated.json");
    payload["repository"] = repository.clone();
    let status = &mut payload["commit_status"];
    status["repository"] = repository;
    status["state"] = json!(state);
    status["refname"] = json!("feature/test");
    status["name"] = json!("Pipeline #5 for feature/test");
    status["created_on"] = json!(created_on);
    status["updated_on"] = json!(updated_on);
    status["commit"]["hash"] = json!(sha);
    let api = "https://api.bitbucket.org/2.0/repositories/amuniz/test-repos/commit";
    status["commit"]["links"]["self"]["href"] = json!(format!("{api}/{sha}"));
    status["links"]["commit"]["href"] = json!(format!("{api}/{sha}"));
    status["links"]["self"]["href"] = json!(format!("{api}/{sha}/statuses/build/3343801"));
    payload
}

fn bitbucket_cloud() -> Story {
    // Created at 13:02:56, last updated 13:02:57.098, as the fixture says.
    let created = load("bitbucket-cloud/pullrequest_created.json");

    let at = "2024-11-09T13:03:30.000000+00:00";
    let mut approved = bbc_pull_request("bitbucket-cloud/pullrequest_approved.json", BBC_OLD, at);
    approved["approval"]["date"] = json!(at);

    let failed = bbc_commit_status(
        "FAILED",
        BBC_OLD_FULL,
        "2024-11-09T13:03:10.000000+00:00",
        "2024-11-09T13:04:00.000000+00:00",
    );
    let pushed = bbc_pull_request(
        "bitbucket-cloud/pullrequest_updated.json",
        BBC_NEW,
        "2024-11-09T13:05:00.000000+00:00",
    );
    let passed = bbc_commit_status(
        "SUCCESSFUL",
        BBC_NEW_FULL,
        "2024-11-09T13:05:10.000000+00:00",
        "2024-11-09T13:06:00.000000+00:00",
    );
    let merged = bbc_pull_request(
        "bitbucket-cloud/pullrequest_fulfilled.json",
        BBC_NEW,
        "2024-11-09T13:07:00.000000+00:00",
    );

    Story {
        kind: CodeHostKind::BitbucketCloud,
        urn: "https://bitbucket.org",
        normalized_urn: "https://bitbucket.org/",
        repository: "amuniz/test-repos",
        number: 735,
        old_head: BBC_OLD,
        new_head: BBC_NEW,
        steps: vec![
            step("created", "pullrequest:created", created),
            step("approved", "pullrequest:approved", approved),
            step("status failed", "repo:commit_status_updated", failed),
            step("new commit", "pullrequest:updated", pushed),
            step("status passed", "repo:commit_status_updated", passed),
            step("fulfilled", "pullrequest:fulfilled", merged),
        ],
        // `pullrequest:updated` does not say whether it brought commits.
        kinds: ["opened", "approved", "check", "edited", "check", "merged"],
        page: Page {
            title: "BUILD test",
            url: "https://bitbucket.org/amuniz/test-repos/pull-requests/735",
            author: "Nikolas Falco",
            head_ref: "feature/test",
            base_ref: "master",
            labels: &[],
        },
    }
}

/// Declined at T+5 min, then the creation at T (13:02:57) arrives. A declined pull request
/// cannot be reopened on Bitbucket Cloud.
fn bitbucket_cloud_late_open() -> LateOpen {
    LateOpen {
        closed: step(
            "rejected",
            "pullrequest:rejected",
            bbc_pull_request(
                "bitbucket-cloud/pullrequest_rejected.json",
                BBC_OLD,
                "2024-11-09T13:07:57.098060+00:00",
            ),
        ),
        older: step(
            "created",
            "pullrequest:created",
            load("bitbucket-cloud/pullrequest_created.json"),
        ),
        newer: None,
        kinds: ["opened", "closed"],
    }
}

// ---- Gitea ----

/// The head of anbraten/test-repo!1 on gitea.com as its captures carry it, and a new commit.
const GITEA_OLD: &str = "d555a5dd07f4d0148a58d4686ec381502ae6a2d4";
const GITEA_NEW: &str = "1a2b3c4d5e6f708192a3b4c5d6e7f80912a3b4c5";

/// anbraten/test-repo!1 (repository 46534) as `pull_request.closed.merged.json` carries it,
/// at `updated_at`, with head `sha`: open and unmerged, unless the caller says otherwise.
fn gitea_pull_request(action: &str, sha: &str, updated_at: &str) -> Value {
    let mut payload = load("gitea/pull_request.closed.merged.json");
    payload["action"] = json!(action);
    let pr = &mut payload["pull_request"];
    pr["state"] = json!("open");
    pr["merged"] = json!(false);
    pr["merged_at"] = Value::Null;
    pr["merged_by"] = Value::Null;
    pr["closed_at"] = Value::Null;
    pr["updated_at"] = json!(updated_at);
    pr["head"]["sha"] = json!(sha);
    payload
}

/// A review of the story's pull request at `updated_at`, from the review fixture `file`.
fn gitea_review(file: &str, sha: &str, updated_at: &str) -> Value {
    let base = gitea_pull_request("reviewed", sha, updated_at);
    let mut review = load(file);
    review["pull_request"] = base["pull_request"].clone();
    review["repository"] = base["repository"].clone();
    review["number"] = json!(1);
    review
}

/// A plain comment on the story's pull request (an issue comment payload) at `at`.
fn gitea_comment(at: &str) -> Value {
    let base = gitea_pull_request("created", GITEA_OLD, at);
    let mut comment = load("gitea/pull_request_comment.created.json");
    comment["repository"] = base["repository"].clone();
    comment["issue"]["number"] = json!(1);
    comment["issue"]["title"] = json!("Adjust file");
    comment["issue"]["html_url"] = json!("https://gitea.com/anbraten/test-repo/pulls/1");
    comment["issue"]["user"] = base["pull_request"]["user"].clone();
    comment["issue"]["updated_at"] = json!(at);
    comment["comment"]["created_at"] = json!(at);
    comment["comment"]["updated_at"] = json!(at);
    comment
}

/// Opened → approved → new commit → commented → merged, each later than the one before.
fn gitea_steps() -> Vec<Step> {
    let mut merged = gitea_pull_request("closed", GITEA_NEW, "2023-12-05T18:35:31Z");
    merged["pull_request"]["state"] = json!("closed");
    merged["pull_request"]["merged"] = json!(true);
    merged["pull_request"]["merged_at"] = json!("2023-12-05T18:35:31Z");
    vec![
        step(
            "opened",
            "pull_request",
            gitea_pull_request("opened", GITEA_OLD, "2023-12-05T18:00:00Z"),
        ),
        step(
            "approved",
            "pull_request_review_approved",
            gitea_review(
                "gitea/pull_request_review_approved.reviewed.json",
                GITEA_OLD,
                "2023-12-05T18:10:00Z",
            ),
        ),
        step(
            "new commit",
            "pull_request_sync",
            gitea_pull_request("synchronized", GITEA_NEW, "2023-12-05T18:20:00Z"),
        ),
        step(
            "commented",
            "pull_request_comment",
            gitea_comment("2023-12-05T18:30:00Z"),
        ),
        step("merged", "pull_request", merged),
    ]
}

async fn a_gitea_pull_request_is_followed_from_opened_to_merged(engine: Engine) {
    use ChangesetState::{Merged, Open};
    use ReviewState::{Approved, Pending};
    let app = TestApp::spawn(engine).await;
    let receiver = app
        .create_receiver("gitea", CodeHostKind::Gitea, "https://gitea.com")
        .await;
    let expected = [
        (Open, Pending, GITEA_OLD),
        (Open, Approved, GITEA_OLD),
        (Open, Approved, GITEA_NEW),
        (Open, Approved, GITEA_NEW),
        (Merged, Approved, GITEA_NEW),
    ];
    for (step, (state, review, head)) in gitea_steps().iter().zip(expected) {
        let d = app
            .deliver(CodeHostKind::Gitea, &receiver, step.event, &step.body)
            .await;
        assert_eq!(
            d.state,
            DeliveryState::Processed as i32,
            "{}: {d:?}",
            step.name
        );
        let c = app.changeset("anbraten/test-repo", 1).await;
        assert_eq!(
            (c.state, c.review_state, c.head_sha.as_str()),
            (state as i32, review as i32, head),
            "after {}: {c:?}",
            step.name
        );
    }
    let c = app.changeset("anbraten/test-repo", 1).await;
    assert_eq!(c.title, "Adjust file");
    assert_eq!(c.url, "https://gitea.com/anbraten/test-repo/pulls/1");
    assert_eq!(c.author, "anbraten");
    assert_eq!(c.head_ref, "anbraten-patch-1");
    assert_eq!(c.base_ref, "main");
    assert_eq!(c.code_host_urn, "https://gitea.com/");
    let events = timeline(&app, &c).await;
    let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["opened", "review", "synchronized", "comment", "merged"],
        "{events:?}"
    );
    assert_eq!(events[1].summary, "a_nice_user approved #1");
    app.stop().await;
}

async fn any_order_of_the_gitea_story_ends_in_the_same_state(engine: Engine) {
    let mut ends = Vec::new();
    let orders: [[usize; 5]; 3] = [[0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [2, 4, 0, 3, 1]];
    for order in orders {
        let app = TestApp::spawn(engine).await;
        let receiver = app
            .create_receiver("gitea", CodeHostKind::Gitea, "https://gitea.com")
            .await;
        let steps = gitea_steps();
        for &i in &order {
            let step = &steps[i];
            let d = app
                .deliver(CodeHostKind::Gitea, &receiver, step.event, &step.body)
                .await;
            assert_eq!(
                d.state,
                DeliveryState::Processed as i32,
                "{order:?} {}: {d:?}",
                step.name
            );
        }
        let c = app.changeset("anbraten/test-repo", 1).await;
        assert_eq!(c.state, ChangesetState::Merged as i32, "{order:?}: {c:?}");
        assert_eq!(
            c.review_state,
            ReviewState::Approved as i32,
            "{order:?}: {c:?}"
        );
        assert_eq!(c.head_sha, GITEA_NEW, "{order:?}");
        assert_eq!(timeline(&app, &c).await.len(), 5, "{order:?}");
        ends.push(as_read(&c));
        app.stop().await;
    }
    assert!(ends.windows(2).all(|w| w[0] == w[1]), "{ends:#?}");
}

async fn a_gitea_open_older_than_the_close_leaves_it_closed_and_a_newer_reopen_opens_it(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let receiver = app
        .create_receiver("gitea", CodeHostKind::Gitea, "https://gitea.com")
        .await;
    let mut closed = gitea_pull_request("closed", GITEA_OLD, "2023-12-05T18:06:43Z");
    closed["pull_request"]["state"] = json!("closed");
    let opened = gitea_pull_request("opened", GITEA_OLD, "2023-12-05T18:00:00Z");
    for (event, body) in [("pull_request", &closed), ("pull_request", &opened)] {
        let d = app
            .deliver(CodeHostKind::Gitea, &receiver, event, body)
            .await;
        assert_eq!(d.state, DeliveryState::Processed as i32, "{d:?}");
    }
    let c = app.changeset("anbraten/test-repo", 1).await;
    assert_eq!(c.state, ChangesetState::Closed as i32, "{c:?}");
    let kinds: Vec<_> = timeline(&app, &c)
        .await
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["opened", "closed"]);

    // The Forgejo capture's reopen, made newer than the close.
    let mut reopened = load("gitea/pull_request.reopened.forgejo-codeberg.json");
    reopened["pull_request"] = opened["pull_request"].clone();
    reopened["pull_request"]["updated_at"] = json!("2023-12-05T18:09:00Z");
    reopened["repository"] = opened["repository"].clone();
    let d = app
        .deliver(CodeHostKind::Gitea, &receiver, "pull_request", &reopened)
        .await;
    assert_eq!(d.state, DeliveryState::Processed as i32, "{d:?}");
    assert_eq!(d.event, "pull_request/reopened");
    let c = app.changeset("anbraten/test-repo", 1).await;
    assert_eq!(c.state, ChangesetState::Open as i32, "{c:?}");
    app.stop().await;
}

// ---- Azure DevOps ----

/// The head of Fabrikam/Fabrikam!1 as Microsoft's samples carry it.
const AZURE_HEAD: &str = "53d54ac915144006c2c9e90d2c7d3880920db49c";
/// The organization of the samples' repository.
const AZURE_ORG: &str = "https://dev.azure.com/fabrikam/";

/// The fixture `azure-devops/<file>` as a delivery of its own: Azure DevOps keys a delivery by
/// its body, so each test delivery gets a fresh `id` and no subscription / notification ids
/// (the only change made to the fixture).
fn azure(file: &str) -> Value {
    let mut body = load(&format!("azure-devops/{file}"));
    let envelope = body.as_object_mut().expect("an object");
    envelope.remove("subscriptionId");
    envelope.remove("notificationId");
    envelope.insert("id".into(), json!(uuid::Uuid::new_v4().to_string()));
    body
}

/// Derived from `git.pullrequest.updated.json`: the pull request still active, reviewed by
/// `reviewers` (`(name, vote)`), the delivery made at `at`.
fn azure_votes(reviewers: &[(&str, i64)], at: &str) -> Value {
    let mut body = azure("git.pullrequest.updated.json");
    body["message"]["text"] = json!("Jamal Hartnett updated the pull request");
    body["createdDate"] = json!(at);
    let pr = &mut body["resource"];
    pr["status"] = json!("active");
    pr.as_object_mut().expect("an object").remove("closedDate");
    pr["reviewers"] = reviewers
        .iter()
        .map(|(name, vote)| {
            json!({"id": format!("id-{name}"), "displayName": name, "uniqueName": format!("{name}@example.com"), "vote": vote})
        })
        .collect();
    body
}

/// Derived from `build.complete.json` into the resource version 2.0 shape: a `sourceVersion`
/// commit and a `repository {id, type}` (the samples' repository), `result`.
fn azure_build_v2(sha: &str, result: &str) -> Value {
    let mut body = azure("build.complete.json");
    body["resourceVersion"] = json!("2.0");
    body["resource"]["status"] = json!("completed");
    body["resource"]["result"] = json!(result);
    body["resource"]["sourceVersion"] = json!(sha);
    body["resource"]["repository"] =
        json!({"id": "4bc14d40-c903-45e2-872e-0462c7748079", "type": "TfsGit"});
    body
}

async fn an_azure_devops_pull_request_is_followed_from_created_to_completed(engine: Engine) {
    use ChangesetState::{Merged, Open};
    use ReviewState::{Approved, ChangesRequested, Pending};
    let app = TestApp::spawn(engine).await;
    let receiver = app
        .create_receiver("azure", CodeHostKind::AzureDevops, AZURE_ORG)
        .await;
    let steps = [
        (
            "created",
            azure("git.pullrequest.created.json"),
            Open,
            Pending,
        ),
        // A person approves (10), a group (isContainer) is left out.
        (
            "approved",
            {
                let mut b = azure_votes(&[("alice", 10)], "2014-06-20T10:00:00Z");
                b["resource"]["reviewers"]
                    .as_array_mut()
                    .expect("reviewers")
                    .push(json!({"id": "team", "displayName": "Team", "uniqueName": "team", "vote": -10, "isContainer": true}));
                b
            },
            Open,
            Approved,
        ),
        // Waiting for the author (-5) requests changes.
        (
            "waiting for the author",
            azure_votes(&[("alice", 10), ("bob", -5)], "2014-06-21T10:00:00Z"),
            Open,
            ChangesRequested,
        ),
        // Approved with suggestions (5) approves; no vote (0) withdraws.
        (
            "bob approves with suggestions",
            azure_votes(&[("alice", 0), ("bob", 5)], "2014-06-22T10:00:00Z"),
            Open,
            Approved,
        ),
        // On the samples' organization under its old visualstudio.com address.
        (
            "commented",
            azure("ms.vss-code.git-pullrequest-comment-event.json"),
            Open,
            Approved,
        ),
        (
            "completed",
            azure("git.pullrequest.updated.json"),
            Merged,
            Approved,
        ),
    ];
    for (name, body, state, review) in &steps {
        let event = body["eventType"].as_str().expect("an event type");
        let d = app
            .deliver(CodeHostKind::AzureDevops, &receiver, event, body)
            .await;
        assert_eq!(d.state, DeliveryState::Processed as i32, "{name}: {d:?}");
        assert_eq!(d.event, event);
        let c = app.changeset("Fabrikam/Fabrikam", 1).await;
        assert_eq!(
            (c.state, c.review_state, c.head_sha.as_str()),
            (*state as i32, *review as i32, AZURE_HEAD),
            "after {name}: {c:?}"
        );
    }
    let c = app.changeset("Fabrikam/Fabrikam", 1).await;
    assert_eq!(c.title, "my first pull request");
    assert_eq!(
        c.url,
        "https://dev.azure.com/fabrikam/Fabrikam/_git/Fabrikam/pullrequest/1"
    );
    assert_eq!(c.author, "fabrikamfiber4@hotmail.com");
    assert_eq!(c.head_ref, "mytopic");
    assert_eq!(c.base_ref, "master");
    assert_eq!(c.code_host_urn, AZURE_ORG);
    let events = timeline(&app, &c).await;
    let mut kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"opened"), "{events:?}");
    assert_eq!(kinds.last(), Some(&"merged"), "{events:?}");
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "comment", "merged", "opened", "review", "review", "review", "review", "updated",
            "updated", "updated"
        ],
        "{events:?}"
    );
    let comment = events
        .iter()
        .find(|e| e.kind == "comment")
        .expect("a comment");
    assert_eq!(
        comment.summary,
        "Jamal Hartnett has edited a pull request comment (#1)"
    );
    assert!(
        events
            .iter()
            .any(|e| e.summary == "bob is waiting for the author on #1"),
        "{events:?}"
    );
    app.stop().await;
}

async fn an_azure_devops_update_before_the_creation_leaves_it_completed(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let receiver = app
        .create_receiver("azure", CodeHostKind::AzureDevops, AZURE_ORG)
        .await;
    for file in [
        "git.pullrequest.updated.json",
        "git.pullrequest.created.json",
    ] {
        let body = azure(file);
        let event = body["eventType"]
            .as_str()
            .expect("an event type")
            .to_owned();
        let d = app
            .deliver(CodeHostKind::AzureDevops, &receiver, &event, &body)
            .await;
        assert_eq!(d.state, DeliveryState::Processed as i32, "{file}: {d:?}");
    }
    let c = app.changeset("Fabrikam/Fabrikam", 1).await;
    assert_eq!(c.state, ChangesetState::Merged as i32, "{c:?}");
    assert_eq!(c.title, "my first pull request");
    let kinds: Vec<_> = timeline(&app, &c)
        .await
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["opened", "merged"]);
    app.stop().await;
}

async fn an_azure_devops_build_of_version_2_is_a_check_and_one_of_version_1_or_a_v1_comment_is_ignored_saying_why(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let receiver = app
        .create_receiver("azure", CodeHostKind::AzureDevops, AZURE_ORG)
        .await;
    let created = azure("git.pullrequest.created.json");
    let d = app
        .deliver(
            CodeHostKind::AzureDevops,
            &receiver,
            "git.pullrequest.created",
            &created,
        )
        .await;
    assert_eq!(d.state, DeliveryState::Processed as i32, "{d:?}");

    for (result, check) in [
        ("inProgress", CheckState::Pending),
        ("failed", CheckState::Failed),
        ("succeeded", CheckState::Passed),
    ] {
        let mut build = azure_build_v2(AZURE_HEAD, result);
        // Each result of the same build, later than the one before.
        let finish = match result {
            "inProgress" => "2015-04-07T18:05:00Z",
            "failed" => "2015-04-07T18:06:00Z",
            _ => "2015-04-07T18:07:00Z",
        };
        build["resource"]["finishTime"] = json!(finish);
        let d = app
            .deliver(
                CodeHostKind::AzureDevops,
                &receiver,
                "build.complete",
                &build,
            )
            .await;
        assert_eq!(d.state, DeliveryState::Processed as i32, "{result}: {d:?}");
        let c = app.changeset("Fabrikam/Fabrikam", 1).await;
        assert_eq!(c.check_state, check as i32, "{result}: {c:?}");
    }

    // A build of another commit matches no changeset.
    let other = azure_build_v2("0000000000000000000000000000000000000001", "failed");
    let d = app
        .deliver(
            CodeHostKind::AzureDevops,
            &receiver,
            "build.complete",
            &other,
        )
        .await;
    let c = app.changeset("Fabrikam/Fabrikam", 1).await;
    assert_eq!(c.check_state, CheckState::Passed as i32, "{d:?} {c:?}");

    // The 1.0 sample names no repository: ignored, not guessed.
    let v1 = azure("build.complete.json");
    let d = app
        .deliver(CodeHostKind::AzureDevops, &receiver, "build.complete", &v1)
        .await;
    assert_eq!(d.state, DeliveryState::Ignored as i32, "{d:?}");
    assert!(
        d.last_error
            .contains("resourceVersion 1.0 names no repository")
            && d.last_error.contains("sourceGetVersion"),
        "{d:?}"
    );

    // A comment of resource version 1.0 carries no pull request.
    let comment = azure("ms.vss-code.git-pullrequest-comment-event.resource-v1.json");
    let d = app
        .deliver(
            CodeHostKind::AzureDevops,
            &receiver,
            "ms.vss-code.git-pullrequest-comment-event",
            &comment,
        )
        .await;
    assert_eq!(d.state, DeliveryState::Ignored as i32, "{d:?}");
    assert!(d.last_error.contains("resourceVersion 1.0"), "{d:?}");
    assert!(d.last_error.contains("not its pull request"), "{d:?}");
    let c = app.changeset("Fabrikam/Fabrikam", 1).await;
    assert_eq!(
        timeline(&app, &c).await.len(),
        2,
        "opened, and the build's one entry"
    );
    app.stop().await;
}

async fn an_azure_devops_pull_request_of_another_organization_is_ignored_saying_so(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let receiver = app
        .create_receiver(
            "azure",
            CodeHostKind::AzureDevops,
            "https://dev.azure.com/contoso/",
        )
        .await;
    let created = azure("git.pullrequest.created.json");
    let d = app
        .deliver(
            CodeHostKind::AzureDevops,
            &receiver,
            "git.pullrequest.created",
            &created,
        )
        .await;
    assert_eq!(d.state, DeliveryState::Ignored as i32, "{d:?}");
    assert!(
        d.last_error
            .contains("is not on this receiver's code host https://dev.azure.com/contoso/"),
        "{d:?}"
    );
    app.stop().await;
}

// ---- What every host's tests share ----

fn step(name: &'static str, event: &'static str, body: Value) -> Step {
    Step { name, event, body }
}

async fn receiver(app: &TestApp, story: &Story) -> (String, String) {
    app.create_receiver("story", story.kind, story.urn).await
}

async fn changesets(app: &TestApp) -> ChangesetServiceClient<tonic::transport::Channel> {
    ChangesetServiceClient::new(app.channel().await)
}

/// The one changeset of the story's pull request, read over gRPC.
async fn the_changeset(app: &TestApp, story: &Story) -> Changeset {
    let list = changesets(app)
        .await
        .list_changesets(app.req(ListChangesetsRequest {
            repository: story.repository.into(),
            number: story.number,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.total_size, 1, "{list:?}");
    list.changesets.into_iter().next().unwrap()
}

/// A changeset's timeline, oldest first.
async fn timeline(app: &TestApp, c: &Changeset) -> Vec<hookgate::admin::proto::ChangesetEvent> {
    changesets(app)
        .await
        .list_changeset_events(app.req(ListChangesetEventsRequest {
            changeset_id: c.id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .events
}

/// Delivers a step under a fresh delivery key and waits for the worker.
async fn deliver(
    app: &TestApp,
    story: &Story,
    receiver: &(String, String),
    step: &Step,
) -> hookgate::admin::proto::Delivery {
    app.deliver(story.kind, receiver, step.event, &step.body)
        .await
}

/// What a person reads on the pull request's page at the end of the story.
fn assert_end_of_story(story: &Story, c: &Changeset) {
    let page = &story.page;
    assert_eq!(c.state, ChangesetState::Merged as i32, "{c:?}");
    assert_eq!(c.review_state, ReviewState::Approved as i32, "{c:?}");
    assert_eq!(c.check_state, CheckState::Passed as i32, "{c:?}");
    assert_eq!(c.head_sha, story.new_head);
    assert_eq!(c.title, page.title);
    assert_eq!(c.number, story.number);
    assert_eq!(c.repository, story.repository);
    assert_eq!(c.code_host_urn, story.normalized_urn);
    assert_eq!(c.url, page.url);
    assert_eq!(c.author, page.author);
    assert_eq!(c.head_ref, page.head_ref);
    assert_eq!(c.base_ref, page.base_ref);
    assert_eq!(c.labels, page.labels);
}

/// The changeset without what differs between two databases (its ids and row creation time).
fn as_read(c: &Changeset) -> Changeset {
    Changeset {
        id: String::new(),
        repository_id: String::new(),
        ..c.clone()
    }
}

async fn followed_from_opened_to_merged(engine: Engine, story: Story) {
    let app = TestApp::spawn(engine).await;
    let receiver = receiver(&app, &story).await;
    let (old, new) = (story.old_head, story.new_head);
    use ChangesetState::{Merged, Open};
    use CheckState::{Failed, Passed, Unknown};
    use ReviewState::{Approved, Pending};
    let expected = [
        (Open, Pending, Unknown, old),
        (Open, Approved, Unknown, old),
        (Open, Approved, Failed, old),
        (Open, Approved, Unknown, new),
        (Open, Approved, Passed, new),
        (Merged, Approved, Passed, new),
    ];
    for (step, (state, review, check, head)) in story.steps.iter().zip(expected) {
        let d = deliver(&app, &story, &receiver, step).await;
        assert_eq!(
            d.state,
            DeliveryState::Processed as i32,
            "{}: {d:?}",
            step.name
        );
        let c = the_changeset(&app, &story).await;
        assert_eq!(
            (c.state, c.review_state, c.check_state, c.head_sha.as_str()),
            (state as i32, review as i32, check as i32, head),
            "after {}: {c:?}",
            step.name
        );
    }
    let c = the_changeset(&app, &story).await;
    assert_end_of_story(&story, &c);

    // One entry per event, oldest first by the host's time, which the story made increase.
    let events = timeline(&app, &c).await;
    let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, story.kinds, "{events:?}");
    let times: Vec<_> = events
        .iter()
        .map(|e| e.occur_time.map(|t| (t.seconds, t.nanos)))
        .collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    assert!(
        events
            .iter()
            .all(|e| !e.delivery_id.is_empty() && !e.summary.is_empty()),
        "{events:?}"
    );
    app.stop().await;
}

async fn any_order_ends_in_the_same_state(engine: Engine, story: fn() -> Story) {
    let in_order = {
        let story = story();
        let app = TestApp::spawn(engine).await;
        let receiver = receiver(&app, &story).await;
        for step in &story.steps {
            deliver(&app, &story, &receiver, step).await;
        }
        let c = as_read(&the_changeset(&app, &story).await);
        app.stop().await;
        c
    };
    // Reversed, and two interleavings that put late news first.
    let orders: [[usize; 6]; 3] = [[5, 4, 3, 2, 1, 0], [3, 0, 5, 1, 4, 2], [2, 4, 1, 5, 0, 3]];
    for order in orders {
        let story = story();
        let app = TestApp::spawn(engine).await;
        let receiver = receiver(&app, &story).await;
        let mut ignored = Vec::new();
        for &i in &order {
            let step = &story.steps[i];
            let d = deliver(&app, &story, &receiver, step).await;
            // A check on a commit that is not the head changes nothing; on Bitbucket Cloud,
            // whose statuses name no pull request, it matches no changeset at all.
            if d.state == DeliveryState::Ignored as i32
                && d.last_error.contains("matches head commit")
            {
                ignored.push(format!("{}: {}", step.name, d.last_error));
                continue;
            }
            assert_eq!(
                d.state,
                DeliveryState::Processed as i32,
                "{order:?}, {}: {d:?}",
                step.name
            );
        }
        let c = the_changeset(&app, &story).await;
        assert_eq!(
            as_read(&c),
            in_order,
            "delivered in the order {order:?}; ignored: {ignored:?}"
        );
        assert_end_of_story(&story, &c);
        app.stop().await;
    }
}

async fn a_late_older_open_leaves_it_closed(engine: Engine, story: Story, late: LateOpen) {
    let app = TestApp::spawn(engine).await;
    let receiver = receiver(&app, &story).await;
    for step in [&late.closed, &late.older] {
        let d = deliver(&app, &story, &receiver, step).await;
        assert_eq!(
            d.state,
            DeliveryState::Processed as i32,
            "{}: {d:?}",
            step.name
        );
    }
    let c = the_changeset(&app, &story).await;
    assert_eq!(c.state, ChangesetState::Closed as i32, "{c:?}");

    let events = timeline(&app, &c).await;
    let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, late.kinds, "both kept, ordered by the host's time");

    // News that is really newer does change it.
    if let Some(newer) = &late.newer {
        deliver(&app, &story, &receiver, newer).await;
        let c = the_changeset(&app, &story).await;
        assert_eq!(c.state, ChangesetState::Open as i32, "{c:?}");
        assert_eq!(timeline(&app, &c).await.len(), 3);
    }
    app.stop().await;
}

async fn a_duplicate_changes_nothing(engine: Engine, story: Story) {
    let app = TestApp::spawn(engine).await;
    let receiver = receiver(&app, &story).await;
    for step in &story.steps[..3] {
        deliver(&app, &story, &receiver, step).await;
    }
    let before = the_changeset(&app, &story).await;
    assert_eq!(timeline(&app, &before).await.len(), 3);

    // The approval again under the same delivery key: acknowledged, not processed again.
    let approved = &story.steps[1];
    let body = serde_json::to_vec(&approved.body).unwrap();
    let headers = common::host_headers(
        story.kind,
        approved.event,
        "dup-1",
        Some(&receiver.1),
        &body,
    );
    let first = app.post(&receiver.0, &headers, body.clone()).await;
    assert!(first.status().is_success(), "{}", first.status());
    let first_id = common::json_body(first).await["delivery_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let d = app.wait_until_done(&first_id).await;
    assert_eq!(d.state, DeliveryState::Processed as i32, "{d:?}");
    let again = app.post(&receiver.0, &headers, body).await;
    assert_eq!(again.status(), 200);
    assert_eq!(
        common::json_body(again).await["delivery_id"],
        first_id.as_str()
    );

    // The same events under new delivery keys (a host that resends with a new id).
    for step in &story.steps[1..3] {
        let d = deliver(&app, &story, &receiver, step).await;
        assert_eq!(
            d.state,
            DeliveryState::Processed as i32,
            "{}: {d:?}",
            step.name
        );
    }

    let after = the_changeset(&app, &story).await;
    assert_eq!(after, before);
    assert_eq!(timeline(&app, &after).await.len(), 3);
    app.stop().await;
}

on_both_engines!(
    a_gitlab_merge_request_is_followed_from_opened_to_merged,
    any_order_of_the_gitlab_story_ends_in_the_same_state,
    a_gitlab_reopen_older_than_the_close_leaves_it_closed_and_the_timeline_keeps_both,
    a_duplicate_gitlab_event_changes_nothing,
    a_bitbucket_server_pull_request_is_followed_from_opened_to_merged,
    any_order_of_the_bitbucket_server_story_ends_in_the_same_state,
    a_bitbucket_server_open_older_than_the_decline_leaves_it_declined_and_the_timeline_keeps_both,
    a_duplicate_bitbucket_server_event_changes_nothing,
    a_bitbucket_cloud_pull_request_is_followed_from_created_to_fulfilled,
    any_order_of_the_bitbucket_cloud_story_ends_in_the_same_state,
    a_bitbucket_cloud_creation_older_than_the_rejection_leaves_it_declined_and_the_timeline_keeps_both,
    a_duplicate_bitbucket_cloud_event_changes_nothing,
    a_gitea_pull_request_is_followed_from_opened_to_merged,
    any_order_of_the_gitea_story_ends_in_the_same_state,
    a_gitea_open_older_than_the_close_leaves_it_closed_and_a_newer_reopen_opens_it,
    an_azure_devops_pull_request_is_followed_from_created_to_completed,
    an_azure_devops_update_before_the_creation_leaves_it_completed,
    an_azure_devops_build_of_version_2_is_a_check_and_one_of_version_1_or_a_v1_comment_is_ignored_saying_why,
    an_azure_devops_pull_request_of_another_organization_is_ignored_saying_so,
);

async fn a_gitlab_merge_request_is_followed_from_opened_to_merged(engine: Engine) {
    followed_from_opened_to_merged(engine, gitlab()).await;
}

async fn any_order_of_the_gitlab_story_ends_in_the_same_state(engine: Engine) {
    any_order_ends_in_the_same_state(engine, gitlab).await;
}

async fn a_gitlab_reopen_older_than_the_close_leaves_it_closed_and_the_timeline_keeps_both(
    engine: Engine,
) {
    a_late_older_open_leaves_it_closed(engine, gitlab(), gitlab_late_open()).await;
}

async fn a_duplicate_gitlab_event_changes_nothing(engine: Engine) {
    a_duplicate_changes_nothing(engine, gitlab()).await;
}

async fn a_bitbucket_server_pull_request_is_followed_from_opened_to_merged(engine: Engine) {
    followed_from_opened_to_merged(engine, bitbucket_server()).await;
}

async fn any_order_of_the_bitbucket_server_story_ends_in_the_same_state(engine: Engine) {
    any_order_ends_in_the_same_state(engine, bitbucket_server).await;
}

async fn a_bitbucket_server_open_older_than_the_decline_leaves_it_declined_and_the_timeline_keeps_both(
    engine: Engine,
) {
    a_late_older_open_leaves_it_closed(engine, bitbucket_server(), bitbucket_server_late_open())
        .await;
}

async fn a_duplicate_bitbucket_server_event_changes_nothing(engine: Engine) {
    a_duplicate_changes_nothing(engine, bitbucket_server()).await;
}

async fn a_bitbucket_cloud_pull_request_is_followed_from_created_to_fulfilled(engine: Engine) {
    followed_from_opened_to_merged(engine, bitbucket_cloud()).await;
}

async fn any_order_of_the_bitbucket_cloud_story_ends_in_the_same_state(engine: Engine) {
    any_order_ends_in_the_same_state(engine, bitbucket_cloud).await;
}

async fn a_bitbucket_cloud_creation_older_than_the_rejection_leaves_it_declined_and_the_timeline_keeps_both(
    engine: Engine,
) {
    a_late_older_open_leaves_it_closed(engine, bitbucket_cloud(), bitbucket_cloud_late_open())
        .await;
}

async fn a_duplicate_bitbucket_cloud_event_changes_nothing(engine: Engine) {
    a_duplicate_changes_nothing(engine, bitbucket_cloud()).await;
}
