//! What each code host sends with a delivery, as the load tool imitates it: the fixture and event
//! it sends by default, the headers that go with the body (its signature or token included), the
//! header(s) that carry the delivery id, and where in the body the pull/merge request number is.
//! It mirrors the table in hookgate's README ("Deliveries") and the header lists in
//! `tests/fixtures/README.md`; the tests check it against hookgate's own `hosts::verify` and
//! `hosts::classify`, so the two cannot drift apart unnoticed.

use hmac::{Hmac, KeyInit, Mac};
use http::header::{CONTENT_TYPE, InvalidHeaderValue, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::Sha256;

/// The code host whose deliveries the load tool sends. Chosen with `--host`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Host {
    /// GitHub: `X-Hub-Signature-256`, `X-GitHub-Event`, `X-GitHub-Delivery`.
    #[value(name = "github")]
    GitHub,
    /// GitLab: `X-Gitlab-Token`, `X-Gitlab-Event`, `Idempotency-Key` and `X-Gitlab-Event-UUID`.
    #[value(name = "gitlab")]
    GitLab,
    /// Bitbucket Server / Data Center: `X-Hub-Signature`, `X-Event-Key`, `X-Request-Id`.
    #[value(name = "bitbucket-server")]
    BitbucketServer,
    /// Bitbucket Cloud: `X-Hub-Signature`, `X-Event-Key`, `X-Request-UUID`.
    #[value(name = "bitbucket-cloud")]
    BitbucketCloud,
}

impl Host {
    /// Every host, for tests and help texts.
    pub const ALL: [Host; 4] = [
        Host::GitHub,
        Host::GitLab,
        Host::BitbucketServer,
        Host::BitbucketCloud,
    ];

    /// The fixture sent when `--fixture` is not given, relative to the repository root: a
    /// pull/merge request being opened, the event batch-change sync is built around.
    pub fn default_fixture(self) -> &'static str {
        match self {
            Host::GitHub => "tests/fixtures/github/pull_request.opened.json",
            Host::GitLab => "tests/fixtures/gitlab/merge_request.open.json",
            Host::BitbucketServer => "tests/fixtures/bitbucket-server/pr_opened.json",
            Host::BitbucketCloud => "tests/fixtures/bitbucket-cloud/pullrequest_created.json",
        }
    }

    /// The event header value sent when `--event` is not given; it matches
    /// [`Host::default_fixture`].
    pub fn default_event(self) -> &'static str {
        match self {
            Host::GitHub => "pull_request",
            Host::GitLab => "Merge Request Hook",
            Host::BitbucketServer => "pr:opened",
            Host::BitbucketCloud => "pullrequest:created",
        }
    }

    /// The header that names the event.
    pub fn event_header(self) -> &'static str {
        match self {
            Host::GitHub => "x-github-event",
            Host::GitLab => "x-gitlab-event",
            Host::BitbucketServer | Host::BitbucketCloud => "x-event-key",
        }
    }

    /// The headers that carry the delivery id, which is fresh for every request. GitLab sends it
    /// twice: `Idempotency-Key` (what hookgate prefers) and `X-Gitlab-Event-UUID`.
    pub fn delivery_id_headers(self) -> &'static [&'static str] {
        match self {
            Host::GitHub => &["x-github-delivery"],
            Host::GitLab => &["idempotency-key", "x-gitlab-event-uuid"],
            Host::BitbucketServer => &["x-request-id"],
            Host::BitbucketCloud => &["x-request-uuid"],
        }
    }

    /// JSON pointers to the pull/merge request number in this host's pull/merge request events:
    /// the field hookgate keys a changeset on (GitHub repeats it at the top level).
    pub fn number_pointers(self) -> &'static [&'static str] {
        match self {
            Host::GitHub => &["/number", "/pull_request/number"],
            Host::GitLab => &["/object_attributes/iid"],
            Host::BitbucketServer => &["/pullRequest/id"],
            Host::BitbucketCloud => &["/pullrequest/id"],
        }
    }

    /// Every header the host sends with `body` for `event` except the delivery id: content type,
    /// user agent, the event, the host's fixed hook headers, and the signature over `body` made
    /// with `secret` (for GitLab, the token itself). Fails only when `event` or a GitLab `secret`
    /// cannot be a header value.
    pub fn headers(
        self,
        event: &str,
        secret: &str,
        body: &[u8],
    ) -> Result<HeaderMap, InvalidHeaderValue> {
        let mut headers = HeaderMap::new();
        let fixed = |headers: &mut HeaderMap, name: &'static str, value: &'static str| {
            headers.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        };
        headers.insert(
            HeaderName::from_static(self.event_header()),
            HeaderValue::from_str(event)?,
        );
        let signature = || HeaderValue::from_str(&format!("sha256={}", sign(secret, body)));
        match self {
            Host::GitHub => {
                fixed(&mut headers, "content-type", "application/json");
                fixed(&mut headers, "user-agent", "GitHub-Hookshot/hookgate-load");
                fixed(&mut headers, "x-github-hook-id", "1");
                fixed(
                    &mut headers,
                    "x-github-hook-installation-target-type",
                    "repository",
                );
                fixed(&mut headers, "x-github-hook-installation-target-id", "1");
                headers.insert("x-hub-signature-256", signature()?);
            }
            Host::GitLab => {
                fixed(&mut headers, "content-type", "application/json");
                fixed(&mut headers, "user-agent", "GitLab/17.1.0");
                fixed(
                    &mut headers,
                    "x-gitlab-instance",
                    "https://gitlab.example.com",
                );
                fixed(
                    &mut headers,
                    "x-gitlab-webhook-uuid",
                    "3c5c0404-c866-44bc-a5f6-452bb1bfc76e",
                );
                headers.insert("x-gitlab-token", HeaderValue::from_str(secret)?);
            }
            Host::BitbucketServer => {
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/json; charset=UTF-8"),
                );
                headers.insert(
                    USER_AGENT,
                    HeaderValue::from_static("Atlassian HttpClient/hookgate-load"),
                );
                headers.insert("x-hub-signature", signature()?);
            }
            Host::BitbucketCloud => {
                fixed(&mut headers, "content-type", "application/json");
                fixed(&mut headers, "user-agent", "Bitbucket-Webhooks/2.0");
                fixed(
                    &mut headers,
                    "x-hook-uuid",
                    "{4a7dc6e1-2b3c-4d5e-8f90-1a2b3c4d5e6f}",
                );
                fixed(&mut headers, "x-attempt-number", "1");
                headers.insert("x-hub-signature", signature()?);
            }
        }
        Ok(headers)
    }
}

/// `HMAC-SHA256(secret, body)` as lowercase hex: the digits after `sha256=` in the signature
/// headers of GitHub and both Bitbuckets.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_rfc_4231_test_vector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn every_host_sends_its_event_and_a_signature_or_token() {
        for host in Host::ALL {
            let headers = host
                .headers(host.default_event(), "s3cret-s3cret", b"{}")
                .expect("valid headers");
            assert_eq!(
                headers[host.event_header()],
                host.default_event(),
                "{host:?}"
            );
            let proof = match host {
                Host::GitHub => "x-hub-signature-256",
                Host::GitLab => "x-gitlab-token",
                Host::BitbucketServer | Host::BitbucketCloud => "x-hub-signature",
            };
            assert!(headers.contains_key(proof), "{host:?} lacks {proof}");
            for id_header in host.delivery_id_headers() {
                assert!(
                    !headers.contains_key(*id_header),
                    "{host:?}: the delivery id is set per request, not here"
                );
            }
        }
    }

    #[test]
    fn a_secret_that_cannot_be_a_header_is_an_error_for_gitlab() {
        assert!(
            Host::GitLab
                .headers("Push Hook", "bad\nsecret", b"{}")
                .is_err()
        );
    }
}
