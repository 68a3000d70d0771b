//! The realistic mix (`--mix realistic`, issue 16): GitHub deliveries built from the real
//! fixtures of the pull request events hookgate handles, spread over `--repositories N`
//! repositories and `--pull-requests M` pull requests, instead of one body to one repository.
//!
//! # What is sent
//!
//! Delivery `n` of a run (the run's request sequence, warmup included) belongs to pull request
//! `p = n mod M`, which is number `p / N + 1` of repository `p mod N` (numbered per repository,
//! as GitHub numbers them). Its step is `n / M`: step 0, each pull request's first delivery, is
//! always `pull_request.opened`, so the first event hookgate sees for a pull request is its
//! opening (give or take the reordering of concurrent connections, which hookgate handles).
//! Every later delivery is drawn from [`WEIGHTS`] by a hash of `n`: a third pull request events
//! (`synchronize`, `labeled`), a sixth reviews, a sixth check runs, a sixth comments (half
//! `issue_comment` on the pull request, half `pull_request_review_comment`) and a sixth pushes.
//! Over a run of `D` deliveries, `min(D, M)` are `opened` and the rest follow the weights.
//!
//! # How each body is rewritten
//!
//! Each fixture is parsed once and turned into a template: its text (re-serialised pretty,
//! close to the fixture's own size) with holes where a delivery's values go:
//!
//! - the repository: every `id` equal to the fixture's `repository.id` (also the `head.repo`
//!   and `base.repo` of the pull request, and of a check run's `pull_requests`), every string
//!   `"Hello-World"` (its `name`), and `Codertocat/Hello-World` wherever it occurs in a string
//!   (`full_name`, `html_url` and every API or clone URL): repository `r` (from 0) becomes
//!   `Codertocat/Hello-World-<r+1>`, id `REPOSITORY_ID_BASE + r + 1`;
//! - the pull request: every `number` equal to the fixture's, the numbers in `/pull/<n>`,
//!   `/pulls/<n>` and `/issues/<n>` URLs, the pull request's `id`, and every string equal to its
//!   head SHA (`pull_request.head.sha`, a synchronize's `after`, a check run's `head_sha` and its
//!   pull request's `head.sha`): the head SHA is a fixed function of the pull request, so a check
//!   run and the pull request it tests agree on it whatever order they arrive in;
//! - what is new in every delivery: the id of the review, the comment or the check run (so each
//!   is a timeline entry of its own, as on GitHub) is `n + 1`, and a push's `after` (its head
//!   commit) is a SHA derived from `n`.
//!
//! The `issue_comment` fixture is a comment on an issue; the template adds the
//! `issue.pull_request` object GitHub sends for a comment on a pull request, so hookgate takes it.
//!
//! # Cost
//!
//! A body is assembled from its template per request (copying the literal parts, writing the
//! holes) and signed with a keyed HMAC state cloned per request: the same work as the receiver's
//! own signature check, and no JSON parsing or allocation beyond the body. `Mix::build` is
//! deterministic in `n`, so tests can check any delivery.

use std::fmt::Write as _;
use std::io::Write as _;

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, HeaderValue};
use serde_json::Value;
use sha2::Sha256;

use crate::bodies::{BodyError, SignedBody, read_fixture};
use crate::hosts::Host;

/// Which delivery of the mix: one fixture and its event header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `pull_request` / `opened`: each pull request's first delivery.
    Opened,
    /// `pull_request` / `synchronize`: commits pushed to the pull request.
    Synchronize,
    /// `pull_request` / `labeled`.
    Labeled,
    /// `pull_request_review` / `submitted`.
    Review,
    /// `check_run` / `completed`, listing the pull request it ran for.
    CheckRun,
    /// `issue_comment` / `created` on the pull request's conversation.
    IssueComment,
    /// `pull_request_review_comment` / `created`.
    ReviewComment,
    /// `push` to the pull request's repository's default branch.
    Push,
}

impl Kind {
    /// Every kind, in the order of `Kind as usize`.
    pub const ALL: [Kind; 8] = [
        Kind::Opened,
        Kind::Synchronize,
        Kind::Labeled,
        Kind::Review,
        Kind::CheckRun,
        Kind::IssueComment,
        Kind::ReviewComment,
        Kind::Push,
    ];

    /// The fixture the kind's template is made from, relative to the repository root.
    pub fn fixture(self) -> &'static str {
        match self {
            Kind::Opened => "tests/fixtures/github/pull_request.opened.json",
            Kind::Synchronize => "tests/fixtures/github/pull_request.synchronize.json",
            Kind::Labeled => "tests/fixtures/github/pull_request.labeled.json",
            Kind::Review => "tests/fixtures/github/pull_request_review.submitted.json",
            Kind::CheckRun => "tests/fixtures/github/check_run.completed.json",
            Kind::IssueComment => "tests/fixtures/github/issue_comment.created.json",
            Kind::ReviewComment => "tests/fixtures/github/pull_request_review_comment.created.json",
            Kind::Push => "tests/fixtures/github/push.branch-updated.json",
        }
    }

    /// The `X-GitHub-Event` value.
    pub fn event(self) -> &'static str {
        match self {
            Kind::Opened | Kind::Synchronize | Kind::Labeled => "pull_request",
            Kind::Review => "pull_request_review",
            Kind::CheckRun => "check_run",
            Kind::IssueComment => "issue_comment",
            Kind::ReviewComment => "pull_request_review_comment",
            Kind::Push => "push",
        }
    }

    /// Where the fixture keeps the id that is new in every delivery (review, comment, check
    /// run), if it has one.
    fn serial_pointer(self) -> Option<&'static str> {
        match self {
            Kind::Review => Some("/review/id"),
            Kind::CheckRun => Some("/check_run/id"),
            Kind::IssueComment | Kind::ReviewComment => Some("/comment/id"),
            Kind::Opened | Kind::Synchronize | Kind::Labeled | Kind::Push => None,
        }
    }
}

/// The weights of every delivery after a pull request's first (which is always
/// [`Kind::Opened`]), in twelfths: pull request events a third (synchronize and labeled, a sixth
/// each), reviews a sixth, check runs a sixth, comments a sixth (issue and review comments, a
/// twelfth each), pushes a sixth.
pub const WEIGHTS: [(Kind, u32); 7] = [
    (Kind::Synchronize, 2),
    (Kind::Labeled, 2),
    (Kind::Review, 2),
    (Kind::CheckRun, 2),
    (Kind::IssueComment, 1),
    (Kind::ReviewComment, 1),
    (Kind::Push, 2),
];

/// Repository `r` (from 0) has the GitHub id `REPOSITORY_ID_BASE + r + 1`: far from the
/// fixtures' own ids.
pub const REPOSITORY_ID_BASE: u64 = 900_000_000;

/// Pull request `p` (from 0) has the GitHub id `PULL_REQUEST_ID_BASE + p + 1`.
pub const PULL_REQUEST_ID_BASE: u64 = 800_000_000;

/// Marks a hole inside a string of the re-serialised fixture.
const SENTINEL: &str = "@@hookgate-load";

/// A place in a template where a delivery's own value goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hole {
    /// `Codertocat/Hello-World-<r+1>`, inside a string.
    FullName,
    /// `Hello-World-<r+1>`, inside a string.
    Name,
    /// The repository's id: a JSON number.
    RepositoryId,
    /// The pull request's id: a JSON number.
    PullRequestId,
    /// The pull request's number: a JSON number, or digits inside a URL.
    Number,
    /// The pull request's head SHA, inside a string.
    HeadSha,
    /// The review's, comment's or check run's id, new in every delivery: a JSON number.
    Serial,
    /// A push's new head commit, new in every delivery, inside a string.
    PushSha,
}

impl Hole {
    /// Every hole, for parsing the sentinels back.
    const ALL: [Hole; 8] = [
        Hole::FullName,
        Hole::Name,
        Hole::RepositoryId,
        Hole::PullRequestId,
        Hole::Number,
        Hole::HeadSha,
        Hole::Serial,
        Hole::PushSha,
    ];

    /// The hole's name in its sentinel.
    fn name(self) -> &'static str {
        match self {
            Hole::FullName => "full_name",
            Hole::Name => "name",
            Hole::RepositoryId => "repository_id",
            Hole::PullRequestId => "pull_request_id",
            Hole::Number => "number",
            Hole::HeadSha => "head_sha",
            Hole::Serial => "serial",
            Hole::PushSha => "push_sha",
        }
    }

    /// The text standing for the hole inside a string: `@@hookgate-load:name@@`.
    fn in_string(self) -> String {
        format!("{SENTINEL}:{}@@", self.name())
    }

    /// The string value standing for a hole that is a whole JSON number; serialised with its
    /// quotes, which the hole replaces too.
    fn as_value(self) -> Value {
        Value::String(format!("{SENTINEL}#{}@@", self.name()))
    }
}

/// One part of a template.
#[derive(Debug, Clone)]
enum Segment {
    /// Bytes sent as they are.
    Text(Box<[u8]>),
    /// A delivery's value.
    Hole(Hole),
}

/// One kind's body with holes, and its headers but the signature.
#[derive(Debug, Clone)]
struct Template {
    /// Literal parts and holes, in order.
    segments: Vec<Segment>,
    /// The literal bytes plus room for the holes: the capacity a body is built in.
    capacity: usize,
    /// Content type, event, hook headers; the signature is added per body.
    headers: HeaderMap,
}

/// Which delivery number `n` is, before its body is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick {
    /// The fixture and event.
    pub kind: Kind,
    /// The repository, from 0 (`Codertocat/Hello-World-<repository+1>`).
    pub repository: u32,
    /// The pull request, from 0 over all repositories.
    pub pull_request: u32,
    /// The pull request's number in its repository, from 1.
    pub number: u64,
}

/// The mix, ready to build any delivery: one template per kind, and the per-repository and
/// per-pull-request values written into the holes.
#[derive(Debug, Clone)]
pub struct Mix {
    /// By `Kind as usize`.
    templates: Vec<Template>,
    /// `N`.
    repositories: u32,
    /// `M`.
    pull_requests: u32,
    /// By repository: its full name, name and id as text.
    repository_text: Vec<(String, String, String)>,
    /// By pull request: its head SHA.
    head_shas: Vec<String>,
    /// The HMAC state keyed with the receiver's secret, cloned for every body.
    mac: Hmac<Sha256>,
}

impl Mix {
    /// The mix over `repositories` repositories and `pull_requests` pull requests, its bodies
    /// signed with `secret`, from the fixtures in this repository's `tests/fixtures/github/`.
    pub fn load(secret: &str, repositories: u32, pull_requests: u32) -> Result<Self, BodyError> {
        let fixtures = Kind::ALL
            .iter()
            .map(|kind| read_fixture(kind.fixture().as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(&fixtures, secret, repositories, pull_requests)
    }

    /// Like [`Mix::load`], from the fixtures given by `Kind as usize`.
    pub fn new(
        fixtures: &[Vec<u8>],
        secret: &str,
        repositories: u32,
        pull_requests: u32,
    ) -> Result<Self, BodyError> {
        if repositories == 0 || pull_requests < repositories {
            return Err(BodyError::Mix(format!(
                "--repositories must be at least 1 and --pull-requests at least as many (every \
                 repository gets a pull request), not {repositories} and {pull_requests}"
            )));
        }
        let templates = Kind::ALL
            .iter()
            .zip(fixtures)
            .map(|(&kind, fixture)| template(kind, fixture))
            .collect::<Result<Vec<_>, _>>()?;
        if templates.len() != Kind::ALL.len() {
            return Err(BodyError::Mix(format!(
                "{} fixtures given for {} kinds",
                fixtures.len(),
                Kind::ALL.len()
            )));
        }
        let repository_text = (0..repositories)
            .map(|r| {
                let name = format!("Hello-World-{}", r + 1);
                (
                    format!("Codertocat/{name}"),
                    name,
                    (REPOSITORY_ID_BASE + u64::from(r) + 1).to_string(),
                )
            })
            .collect();
        let head_shas = (0..pull_requests)
            .map(|p| sha_of(0x6865_6164 ^ (u64::from(p) << 20)))
            .collect();
        Ok(Self {
            templates,
            repositories,
            pull_requests,
            repository_text,
            head_shas,
            mac: Hmac::<Sha256>::new_from_slice(secret.as_bytes())
                .expect("HMAC takes a key of any length"),
        })
    }

    /// `N`.
    pub fn repositories(&self) -> u32 {
        self.repositories
    }

    /// `M`.
    pub fn pull_requests(&self) -> u32 {
        self.pull_requests
    }

    /// What delivery `n` is: its pull request is `n mod M`, its kind `opened` for the pull
    /// request's first delivery and drawn from [`WEIGHTS`] for every later one.
    pub fn pick(&self, n: u64) -> Pick {
        let m = u64::from(self.pull_requests);
        let p = (n % m) as u32;
        let kind = if n < m { Kind::Opened } else { draw(n) };
        Pick {
            kind,
            repository: p % self.repositories,
            pull_request: p,
            number: u64::from(p / self.repositories) + 1,
        }
    }

    /// Delivery `n`'s body and headers (all but the delivery id), signed.
    pub fn build(&self, n: u64) -> SignedBody {
        let pick = self.pick(n);
        let template = &self.templates[pick.kind as usize];
        let (full_name, name, repository_id) = &self.repository_text[pick.repository as usize];
        let mut body = Vec::with_capacity(template.capacity);
        for segment in &template.segments {
            match segment {
                Segment::Text(text) => body.extend_from_slice(text),
                Segment::Hole(Hole::FullName) => body.extend_from_slice(full_name.as_bytes()),
                Segment::Hole(Hole::Name) => body.extend_from_slice(name.as_bytes()),
                Segment::Hole(Hole::RepositoryId) => {
                    body.extend_from_slice(repository_id.as_bytes())
                }
                Segment::Hole(Hole::PullRequestId) => {
                    let id = PULL_REQUEST_ID_BASE + u64::from(pick.pull_request) + 1;
                    write!(body, "{id}").expect("writing to a Vec does not fail");
                }
                Segment::Hole(Hole::Number) => {
                    write!(body, "{}", pick.number).expect("writing to a Vec does not fail")
                }
                Segment::Hole(Hole::HeadSha) => {
                    body.extend_from_slice(self.head_shas[pick.pull_request as usize].as_bytes())
                }
                Segment::Hole(Hole::Serial) => {
                    write!(body, "{}", n + 1).expect("writing to a Vec does not fail")
                }
                Segment::Hole(Hole::PushSha) => body.extend_from_slice(sha_of(n).as_bytes()),
            }
        }
        let mut mac = self.mac.clone();
        mac.update(&body);
        let mut signature = String::with_capacity(71);
        signature.push_str("sha256=");
        for byte in mac.finalize().into_bytes() {
            write!(signature, "{byte:02x}").expect("writing to a String does not fail");
        }
        let mut headers = template.headers.clone();
        headers.insert(
            "x-hub-signature-256",
            HeaderValue::from_str(&signature).expect("hex is a valid header value"),
        );
        SignedBody {
            body: Bytes::from(body),
            headers,
        }
    }
}

/// The kind of a delivery after its pull request's first: [`WEIGHTS`] drawn by a hash of `n`.
pub fn draw(n: u64) -> Kind {
    let total: u32 = WEIGHTS.iter().map(|(_, weight)| weight).sum();
    let mut ticket = (splitmix64(n ^ 0x6d69_785f_6b69_6e64) % u64::from(total)) as u32;
    for (kind, weight) in WEIGHTS {
        if ticket < weight {
            return kind;
        }
        ticket -= weight;
    }
    unreachable!("the ticket is below the sum of the weights")
}

/// SplitMix64's output function: a well-mixed 64-bit hash of `x`.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A 40-digit lowercase hex SHA derived from `x`.
fn sha_of(x: u64) -> String {
    format!(
        "{:016x}{:016x}{:08x}",
        splitmix64(x),
        splitmix64(x ^ 0x5555_5555_5555_5555),
        splitmix64(x ^ 0xaaaa_aaaa_aaaa_aaaa) as u32
    )
}

/// `kind`'s template from its fixture: the holes of the module documentation put in, the
/// result serialised and cut at the holes. Fails when the fixture lacks what the kind needs.
fn template(kind: Kind, fixture: &[u8]) -> Result<Template, BodyError> {
    let fixture_error = |what: &str| BodyError::Mix(format!("{}: {what}", kind.fixture()));
    let mut value: Value =
        serde_json::from_slice(fixture).map_err(|e| fixture_error(&format!("not JSON: {e}")))?;
    let repository_id = value
        .pointer("/repository/id")
        .and_then(Value::as_u64)
        .ok_or_else(|| fixture_error("no numeric repository.id"))?;
    let number = [
        "/number",
        "/pull_request/number",
        "/issue/number",
        "/check_run/pull_requests/0/number",
    ]
    .iter()
    .find_map(|pointer| value.pointer(pointer).and_then(Value::as_u64));
    let pull_request_id = ["/pull_request/id", "/check_run/pull_requests/0/id"]
        .iter()
        .find_map(|pointer| value.pointer(pointer).and_then(Value::as_u64));
    let head_sha = ["/pull_request/head/sha", "/check_run/head_sha"]
        .iter()
        .find_map(|pointer| value.pointer(pointer).and_then(Value::as_str))
        .map(str::to_owned);
    let push_sha = match kind {
        Kind::Push => Some(
            value
                .pointer("/after")
                .and_then(Value::as_str)
                .ok_or_else(|| fixture_error("a push without `after`"))?
                .to_owned(),
        ),
        _ => None,
    };
    if kind != Kind::Push && number.is_none() {
        return Err(fixture_error("no pull request number"));
    }
    if let Some(pointer) = kind.serial_pointer() {
        *value
            .pointer_mut(pointer)
            .ok_or_else(|| fixture_error(&format!("no {pointer}")))? = Hole::Serial.as_value();
    }
    if kind == Kind::IssueComment {
        let issue = value
            .pointer_mut("/issue")
            .and_then(Value::as_object_mut)
            .ok_or_else(|| fixture_error("no issue object"))?;
        let n = number.expect("checked above");
        let base = "Codertocat/Hello-World";
        issue.insert(
            "pull_request".to_owned(),
            serde_json::json!({
                "url": format!("https://api.github.com/repos/{base}/pulls/{n}"),
                "html_url": format!("https://github.com/{base}/pull/{n}"),
                "diff_url": format!("https://github.com/{base}/pull/{n}.diff"),
                "patch_url": format!("https://github.com/{base}/pull/{n}.patch"),
                "merged_at": null,
            }),
        );
    }
    let rules = Rules {
        repository_id,
        number,
        pull_request_id,
        head_sha,
        push_sha,
    };
    rules.rewrite(&mut value);
    let text = serde_json::to_string_pretty(&value)
        .map_err(|e| fixture_error(&format!("cannot serialise: {e}")))?;
    let segments = cut(&text).map_err(|e| fixture_error(&e))?;
    let mut needed = vec![
        Hole::FullName,
        Hole::Name,
        Hole::RepositoryId,
        Hole::Number,
        Hole::HeadSha,
    ];
    match kind {
        Kind::Push => needed.retain(|h| matches!(h, Hole::FullName | Hole::RepositoryId)),
        Kind::IssueComment => needed.retain(|h| *h != Hole::HeadSha),
        _ => {}
    }
    for hole in needed {
        if !segments
            .iter()
            .any(|s| matches!(s, Segment::Hole(h) if *h == hole))
        {
            return Err(fixture_error(&format!(
                "nothing to rewrite for {}",
                hole.name()
            )));
        }
    }
    let capacity = segments
        .iter()
        .map(|s| match s {
            Segment::Text(text) => text.len(),
            Segment::Hole(_) => 48,
        })
        .sum();
    let headers = Host::GitHub.headers(kind.event(), "", b"")?;
    Ok(Template {
        segments,
        capacity,
        headers,
    })
}

/// What one fixture's values are, to be replaced by holes.
struct Rules {
    /// The fixture's `repository.id`.
    repository_id: u64,
    /// Its pull request number, if it has one.
    number: Option<u64>,
    /// Its pull request's id, if it has one.
    pull_request_id: Option<u64>,
    /// Its pull request's head SHA, if it has one.
    head_sha: Option<String>,
    /// A push's `after`.
    push_sha: Option<String>,
}

impl Rules {
    /// Puts the holes into `value`, recursively.
    fn rewrite(&self, value: &mut Value) {
        match value {
            Value::Object(object) => {
                for (key, field) in object.iter_mut() {
                    let numeric = field.as_u64();
                    match (key.as_str(), numeric) {
                        ("id", Some(id)) if id == self.repository_id => {
                            *field = Hole::RepositoryId.as_value()
                        }
                        ("id", Some(id)) if Some(id) == self.pull_request_id => {
                            *field = Hole::PullRequestId.as_value()
                        }
                        ("number", Some(number)) if Some(number) == self.number => {
                            *field = Hole::Number.as_value()
                        }
                        _ => self.rewrite(field),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.rewrite(item)),
            Value::String(text) => *text = self.rewrite_string(text),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// `text` with the repository's names, the pull request's number in URLs and the SHAs
    /// replaced by holes.
    fn rewrite_string(&self, text: &str) -> String {
        if self.head_sha.as_deref() == Some(text) {
            return Hole::HeadSha.in_string();
        }
        if self.push_sha.as_deref() == Some(text) {
            return Hole::PushSha.in_string();
        }
        if text == "Hello-World" {
            return Hole::Name.in_string();
        }
        let full_name = Hole::FullName.in_string();
        let mut out = text.replace("Codertocat/Hello-World", &full_name);
        if let Some(number) = self.number {
            for kind in ["/pull/", "/pulls/", "/issues/"] {
                out = replace_number(
                    &out,
                    &format!("{full_name}{kind}"),
                    number,
                    &Hole::Number.in_string(),
                );
            }
        }
        out
    }
}

/// `text` with each `prefix` directly followed by `number` (and then no further digit) having
/// that number replaced by `hole`.
fn replace_number(text: &str, prefix: &str, number: u64, hole: &str) -> String {
    let digits = number.to_string();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        let after = &rest[at + prefix.len()..];
        out.push_str(&rest[..at + prefix.len()]);
        let whole = after.strip_prefix(&digits).is_some_and(|tail| {
            !tail
                .as_bytes()
                .first()
                .is_some_and(|byte| byte.is_ascii_digit())
        });
        if whole {
            out.push_str(hole);
            rest = &after[digits.len()..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Cuts serialised JSON at its sentinels: `"@@hookgate-load#name@@"` (quotes included) and
/// `@@hookgate-load:name@@` (inside a string) become holes.
fn cut(text: &str) -> Result<Vec<Segment>, String> {
    let mut segments = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(SENTINEL) {
        let after = &rest[at + SENTINEL.len()..];
        let whole_value = after.starts_with('#');
        let end = after.find("@@").ok_or_else(|| {
            let start: String = after.chars().take(40).collect();
            format!("an unterminated hole at {start:?}")
        })?;
        let name = &after[1..end];
        let hole = Hole::ALL
            .into_iter()
            .find(|h| h.name() == name)
            .ok_or_else(|| format!("an unknown hole {name:?}"))?;
        let mut before = &rest[..at];
        let mut tail = &after[end + 2..];
        if whole_value {
            before = before
                .strip_suffix('"')
                .ok_or_else(|| format!("the number hole {name} is not a whole string"))?;
            tail = tail
                .strip_prefix('"')
                .ok_or_else(|| format!("the number hole {name} is not a whole string"))?;
        }
        literal.push_str(before);
        if !literal.is_empty() {
            segments.push(Segment::Text(
                std::mem::take(&mut literal).into_bytes().into(),
            ));
        }
        segments.push(Segment::Hole(hole));
        rest = tail;
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        segments.push(Segment::Text(literal.into_bytes().into()));
    }
    Ok(segments)
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;
    use crate::hosts::sign;

    const SECRET: &str = "mix-test-secret";

    /// The mix over the repository's fixtures.
    fn mix(repositories: u32, pull_requests: u32) -> Mix {
        Mix::load(SECRET, repositories, pull_requests).expect("the fixtures make a mix")
    }

    #[test]
    fn the_draws_follow_the_weights() {
        let draws = 240_000u64;
        let mut counts: HashMap<Kind, u64> = HashMap::new();
        for n in 0..draws {
            *counts.entry(draw(n)).or_default() += 1;
        }
        let total: u32 = WEIGHTS.iter().map(|(_, w)| w).sum();
        assert_eq!(total, 12, "the documented weights are in twelfths");
        for (kind, weight) in WEIGHTS {
            let expected = draws as f64 * f64::from(weight) / f64::from(total);
            let got = counts.get(&kind).copied().unwrap_or(0) as f64;
            // 240,000 draws: one standard deviation is under 200; 2 % is over 8 of them.
            assert!(
                (got - expected).abs() < expected * 0.02,
                "{kind:?}: {got} draws, {expected} expected"
            );
        }
        assert_eq!(counts.get(&Kind::Opened), None, "opened is never drawn");
        // The groups of the issue: a third pull request events, a sixth each of the rest.
        let share = |kinds: &[Kind]| {
            kinds
                .iter()
                .map(|k| counts.get(k).copied().unwrap_or(0))
                .sum::<u64>() as f64
                / draws as f64
        };
        for (kinds, expected) in [
            (&[Kind::Synchronize, Kind::Labeled][..], 1.0 / 3.0),
            (&[Kind::Review][..], 1.0 / 6.0),
            (&[Kind::CheckRun][..], 1.0 / 6.0),
            (&[Kind::IssueComment, Kind::ReviewComment][..], 1.0 / 6.0),
            (&[Kind::Push][..], 1.0 / 6.0),
        ] {
            assert!(
                (share(kinds) - expected).abs() < 0.005,
                "{kinds:?}: {} of the draws",
                share(kinds)
            );
        }
    }

    #[test]
    fn each_pull_requests_first_delivery_is_opened_and_no_later_one_is() {
        let mix = mix(10, 50);
        let mut first: HashMap<u32, Kind> = HashMap::new();
        for n in 0..5_000 {
            let pick = mix.pick(n);
            if let Some(previous) = first.get(&pick.pull_request) {
                assert_ne!(pick.kind, Kind::Opened, "delivery {n} reopens {previous:?}");
            } else {
                assert_eq!(pick.kind, Kind::Opened, "delivery {n}");
                first.insert(pick.pull_request, pick.kind);
            }
        }
        assert_eq!(first.len(), 50, "every pull request is touched");
    }

    #[test]
    fn every_body_is_json_naming_one_of_the_repositories_and_a_number_up_to_m() {
        let (n_repos, m) = (7, 40);
        let mix = mix(n_repos, m);
        let names: HashSet<String> = (1..=n_repos)
            .map(|r| format!("Codertocat/Hello-World-{r}"))
            .collect();
        let mut kinds = HashSet::new();
        let mut repositories = HashSet::new();
        let mut heads: HashMap<(String, u64), String> = HashMap::new();
        for n in 0..2_000 {
            let pick = mix.pick(n);
            kinds.insert(pick.kind);
            let signed = mix.build(n);
            let body: Value = serde_json::from_slice(&signed.body)
                .unwrap_or_else(|e| panic!("delivery {n} ({:?}) is not JSON: {e}", pick.kind));
            let repository = &body["repository"];
            let full_name = repository["full_name"].as_str().expect("a full name");
            assert!(names.contains(full_name), "{n}: {full_name}");
            let r = pick.repository + 1;
            assert_eq!(full_name, format!("Codertocat/Hello-World-{r}"));
            assert_eq!(repository["name"], format!("Hello-World-{r}"));
            assert_eq!(repository["id"], REPOSITORY_ID_BASE + u64::from(r));
            assert_eq!(
                repository["html_url"],
                format!("https://github.com/Codertocat/Hello-World-{r}")
            );
            assert!(
                !String::from_utf8_lossy(&signed.body).contains("Codertocat/Hello-World\""),
                "{n}: the fixture's repository is left somewhere"
            );
            repositories.insert(full_name.to_owned());
            assert_eq!(signed.headers["x-github-event"], pick.kind.event());
            let (number, head) = match pick.kind {
                Kind::Push => {
                    assert_eq!(body["after"].as_str().map(str::len), Some(40));
                    continue;
                }
                Kind::IssueComment => {
                    assert!(body["issue"]["pull_request"].is_object(), "{n}");
                    (&body["issue"]["number"], None)
                }
                Kind::CheckRun => {
                    let listed = &body["check_run"]["pull_requests"][0];
                    assert_eq!(listed["base"]["repo"]["id"], repository["id"], "{n}");
                    assert_eq!(listed["head"]["sha"], body["check_run"]["head_sha"], "{n}");
                    (&listed["number"], body["check_run"]["head_sha"].as_str())
                }
                _ => {
                    let pr = &body["pull_request"];
                    assert_eq!(pr["base"]["repo"]["id"], repository["id"], "{n}");
                    assert_eq!(
                        pr["html_url"],
                        format!(
                            "{}/pull/{}",
                            repository["html_url"].as_str().unwrap(),
                            pick.number
                        )
                    );
                    (&pr["number"], pr["head"]["sha"].as_str())
                }
            };
            let number = number.as_u64().expect("a numeric pull request number");
            assert_eq!(number, pick.number, "{n}");
            assert!((1..=u64::from(m)).contains(&number), "{n}: #{number}");
            assert!(number <= u64::from(m.div_ceil(n_repos)), "{n}: #{number}");
            if let Some(head) = head {
                let known = heads
                    .entry((full_name.to_owned(), number))
                    .or_insert_with(|| head.to_owned());
                assert_eq!(
                    known, head,
                    "{n}: {full_name}#{number} changed its head SHA"
                );
            }
        }
        assert_eq!(kinds.len(), Kind::ALL.len(), "every kind was sent");
        assert_eq!(
            repositories.len(),
            n_repos as usize,
            "every repository was named"
        );
        assert_eq!(heads.len(), m as usize, "every pull request was named");
        let distinct: HashSet<&String> = heads.values().collect();
        assert_eq!(distinct.len(), m as usize, "head SHAs are per pull request");
    }

    #[test]
    fn every_signature_verifies_over_its_own_body_and_no_other() {
        let mix = mix(3, 9);
        let mut previous: Option<SignedBody> = None;
        for n in 0..200 {
            let signed = mix.build(n);
            let header = signed.headers["x-hub-signature-256"]
                .to_str()
                .expect("ASCII");
            assert_eq!(
                header,
                format!("sha256={}", sign(SECRET, &signed.body)),
                "{n}"
            );
            assert_ne!(header, format!("sha256={}", sign("another", &signed.body)));
            if let Some(previous) = previous {
                assert_ne!(previous.body, signed.body, "{n}: two deliveries alike");
                assert_ne!(previous.headers["x-hub-signature-256"], header, "{n}");
            }
            previous = Some(signed);
        }
    }

    #[test]
    fn the_ids_of_reviews_comments_and_check_runs_are_new_in_every_delivery() {
        let mix = mix(2, 4);
        let mut seen = HashSet::new();
        for n in 0..400 {
            let pick = mix.pick(n);
            let Some(pointer) = pick.kind.serial_pointer() else {
                continue;
            };
            let body: Value = serde_json::from_slice(&mix.build(n).body).expect("JSON");
            let id = body
                .pointer(pointer)
                .and_then(Value::as_u64)
                .expect("an id");
            assert_eq!(id, n + 1);
            assert!(seen.insert(id));
        }
    }

    #[test]
    fn bad_sizes_are_refused() {
        assert!(matches!(Mix::load(SECRET, 0, 10), Err(BodyError::Mix(_))));
        assert!(matches!(Mix::load(SECRET, 10, 9), Err(BodyError::Mix(_))));
    }

    #[test]
    fn a_fixture_without_a_repository_is_refused() {
        let mut fixtures: Vec<Vec<u8>> = Kind::ALL
            .iter()
            .map(|k| read_fixture(k.fixture().as_ref()).expect("fixture"))
            .collect();
        fixtures[Kind::Review as usize] = b"{\"action\": \"submitted\"}".to_vec();
        assert!(matches!(
            Mix::new(&fixtures, SECRET, 1, 1),
            Err(BodyError::Mix(message)) if message.contains("repository.id")
        ));
    }

    #[test]
    fn a_number_in_a_url_is_replaced_only_when_whole() {
        assert_eq!(
            replace_number("a/pull/2/files", "a/pull/", 2, "N"),
            "a/pull/N/files"
        );
        assert_eq!(replace_number("a/pull/21", "a/pull/", 2, "N"), "a/pull/21");
        assert_eq!(replace_number("a/pull/2", "a/pull/", 2, "N"), "a/pull/N");
    }
}
