//! What each code host sends, and nothing else: for GitHub, GitLab, Bitbucket Server/Data Center,
//! Bitbucket Cloud, Gitea (with Forgejo) and Azure DevOps, how a delivery proves it is the host's ([`verify`]), what event it is and
//! under which delivery key ([`classify`], or [`classify_outline`] when only the outline of the
//! body is needed), and what the host's own test event looks like ([`test_delivery`]). It is pure: it takes headers and body bytes and returns a verdict, with no
//! HTTP server, database or clock, so every real fixture is a cheap unit test. One file per host;
//! `signature` holds the constant-time checks they share, and
//! `standard_webhooks` the Standard Webhooks signature a GitLab signing token adds. The generic
//! trigger is not a host.

mod azure_devops;
mod bitbucket_cloud;
mod bitbucket_server;
pub mod effects;
mod gitea;
mod github;
mod gitlab;
mod payload;
mod signature;
pub mod standard_webhooks;

use http::HeaderMap;
use serde_json::Value;

use crate::text::{Cap, bounded};

pub use effects::{Effect, EffectError};
pub use payload::{Outline, Payload};
pub use signature::{check_token, sign_hmac_sha256_hex, token_matches};

/// Which code host signed a delivery (the generic trigger is not here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    GitHub,
    GitLab,
    BitbucketServer,
    BitbucketCloud,
    /// Gitea, and Forgejo (which signs and names deliveries as Gitea does).
    Gitea,
    /// Azure DevOps service hooks (Web Hooks consumer), which sign nothing: the secret comes
    /// as the Basic password or in `X-Hook-Secret`.
    AzureDevOps,
}

/// A delivery that passed [`verify`], and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// Signed (or, for GitLab, carrying the token) with one of the receiver's secrets.
    Signed,
    /// A Bitbucket Server `diagnostics:ping` with no `X-Hub-Signature` at all: Bitbucket's
    /// "Test connection" button sends it unsigned, and it changes nothing, so it is let through.
    UnsignedPing,
}

/// Why a delivery failed [`verify`]; every variant is answered 401. The message names the header
/// and what was wrong with it, and never contains a secret or the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The signature or token header is absent.
    #[error("missing {header}")]
    Missing {
        /// The header the host sends its signature or token in.
        header: &'static str,
    },
    /// The header is present but not of the form the host writes.
    #[error("malformed {header}: expected {expected}")]
    Malformed {
        /// The header that was malformed.
        header: &'static str,
        /// What a well-formed value looks like, e.g. `sha256=<64 hex digits>`.
        expected: &'static str,
    },
    /// A well-formed HMAC signature that no accepted secret produces.
    #[error("signature does not match")]
    Mismatch,
    /// A GitLab token that is none of the accepted secrets.
    #[error("token does not match")]
    TokenMismatch,
    /// A credential sent verbatim that is none of the accepted secrets, named as the host
    /// sends it (Azure DevOps: `the Basic authentication password`, `X-Hook-Secret`).
    #[error("{credential} does not match")]
    CredentialMismatch {
        /// Which credential did not match.
        credential: &'static str,
    },
    /// A Standard Webhooks `webhook-timestamp` (GitLab signing token) too far from now: a replay
    /// of an old delivery, or a clock that is off.
    #[error(
        "webhook-timestamp is {skew_seconds}s from now; at most {tolerance_seconds}s either way is accepted (the receiver's signature_tolerance)"
    )]
    StaleTimestamp {
        /// The timestamp minus now, in seconds (negative: in the past).
        skew_seconds: i64,
        /// The receiver's tolerance, in seconds.
        tolerance_seconds: i64,
    },
}

/// Checks that a delivery comes from the host, on the raw body bytes, in constant time. `secrets`
/// are the ones a delivery may be signed with: the current one and, during a rotation overlap,
/// the previous one; a delivery signed with any of them passes. An empty `secrets` (or empty
/// strings in it) accepts nothing, not even an unsigned Bitbucket Server ping.
pub fn verify(
    host: Host,
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[&str],
) -> Result<Verified, VerifyError> {
    match host {
        Host::GitHub => github::verify(headers, body, secrets),
        Host::GitLab => gitlab::verify(headers, secrets),
        Host::BitbucketServer => bitbucket_server::verify(headers, body, secrets),
        Host::BitbucketCloud => bitbucket_cloud::verify(headers, body, secrets),
        Host::Gitea => gitea::verify(headers, body, secrets),
        Host::AzureDevOps => azure_devops::verify(headers, secrets),
    }
}

/// [`verify`] for a GitLab receiver that holds a signing token: the Standard Webhooks signature
/// ([`standard_webhooks::verify`]) is checked beside the `X-Gitlab-Token` (`secrets`). With
/// `required` (the receiver option `require_signature`, the default) a delivery must carry both
/// and both must match. Without it, a delivery must carry at least one of them, and each one it
/// carries must match: the token alone, the signature alone, or both.
pub fn verify_gitlab_signed(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[&str],
    check: &standard_webhooks::SignatureCheck<'_>,
    required: bool,
) -> Result<Verified, VerifyError> {
    let signed = standard_webhooks::is_signed(headers);
    if required || !signed || headers.contains_key(gitlab::TOKEN) {
        gitlab::verify(headers, secrets)?;
    }
    if required || signed {
        standard_webhooks::verify(headers, body, check)?;
    }
    Ok(Verified::Signed)
}

/// What a delivery is, as far as the ingress and the log need to know before a handler runs.
/// `P` is what the body was read into: all of it ([`Value`], which the delivery worker reads the
/// [`effects`] from) or its [`Outline`] (for the ingress).
#[derive(Debug, Clone, PartialEq)]
pub struct Classified<P = Value> {
    /// The event name: `pull_request/opened`, `push`, `Merge Request Hook/open`, `pr:opened`,
    /// `repo:push`, `ping`, ...: the host's event header, and for GitHub and GitLab the action
    /// (Azure DevOps: the body's `eventType`, `git.push`).
    pub event: String,
    /// The host's delivery id header, trimmed; `None` when absent or empty. Deduplication key.
    /// Azure DevOps sends none: its key is read from the body (`azure_devops`).
    pub delivery_key: Option<String>,
    /// Whether the delivery is a ping, an event a handler takes, or one nothing takes.
    pub disposition: Disposition,
    /// The parsed body (for a form-encoded GitHub delivery, the JSON of its `payload` field;
    /// `Null` for a Bitbucket Server ping whose body is not JSON).
    pub payload: P,
}

/// What the ingress does with a verified, classified delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// The host checking the hook (`ping`, `diagnostics:ping`): answered 200, changes nothing.
    Ping,
    /// An event that drives batch-change or push sync: stored and queued for a handler.
    Handled,
    /// Anything else: stored as ignored and answered 200.
    Ignored,
    /// hookgate's own test delivery ([`test_delivery`], marked with [`TEST_DELIVERY_HEADER`]):
    /// answered 200 and stored as a successful test, whatever event it imitates; it changes
    /// nothing and touches no repository.
    Test,
}

/// The header hookgate adds to its [`test_delivery`], on every host. It is read only from a
/// delivery that passed [`verify`] with one of the receiver's secrets (an unsigned ping never
/// reaches [`classify`]), so only someone who holds a secret can mark a delivery as a test, and
/// a test can only ever do less than the event it imitates.
pub const TEST_DELIVERY_HEADER: &str = "X-Hookgate-Test-Delivery";

/// What a test delivery's event is called: the event it imitates, marked, so that the delivery
/// log says what it was (`Push Hook (test delivery)`).
fn test_event(event: &str) -> String {
    format!("{event} (test delivery)")
}

/// Why a delivery could not be classified; answered 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClassifyError {
    /// The host's event header is absent or empty; holds its name.
    #[error("missing {0} header")]
    MissingEventHeader(&'static str),
    /// The body is not the JSON object its event must be; holds the whole message, e.g.
    /// `body of a pull_request event must be JSON: expected value at line 1 column 1`.
    #[error("{0}")]
    BadBody(String),
    /// The delivery was signed with the receiver's secret but is another host's, as its own
    /// headers say (a Gitea or Forgejo delivery at a GitHub receiver); holds the whole message.
    #[error("{0}")]
    WrongHost(String),
}

/// Names the event of a delivery, finds its delivery key and parses its body, for the reading of
/// its [`effects`]. Call it after [`verify`]: it trusts what it reads.
///
/// For GitHub the payload keeps only the keys its effects read ([`payload::Kept`]): the
/// effects, and so everything made of them, are those of the whole body, at a fraction of the
/// cost of building it.
pub fn classify(host: Host, headers: &HeaderMap, body: &[u8]) -> Result<Classified, ClassifyError> {
    match host {
        Host::GitHub => {
            classify_into::<payload::Kept<github::Keys>>(host, headers, body).map(|classified| {
                Classified {
                    event: classified.event,
                    delivery_key: classified.delivery_key,
                    disposition: classified.disposition,
                    payload: classified.payload.value,
                }
            })
        }
        _ => classify_into(host, headers, body),
    }
}

/// [`classify`] at the ingress's depth: the body is checked to be the JSON its event must be,
/// but only its [`Outline`] is kept (what names the event), at a fraction of the cost.
pub fn classify_outline(
    host: Host,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Classified<Outline>, ClassifyError> {
    classify_into(host, headers, body)
}

/// Classifies a delivery, reading its body into `P`: the depth [`classify`] and
/// [`classify_outline`] differ by.
fn classify_into<P: Payload>(
    host: Host,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Classified<P>, ClassifyError> {
    let mut classified = match host {
        Host::GitHub => github::classify(headers, body),
        Host::GitLab => gitlab::classify(headers, body),
        Host::BitbucketServer => bitbucket_server::classify(headers, body),
        Host::BitbucketCloud => bitbucket_cloud::classify(headers, body),
        Host::Gitea => gitea::classify(headers, body),
        Host::AzureDevOps => azure_devops::classify(headers, body),
    }?;
    if headers.contains_key(TEST_DELIVERY_HEADER) {
        classified.event = test_event(&classified.event);
        classified.disposition = Disposition::Test;
    }
    // What the log and the handlers see of the event and its key, however long the host's.
    Ok(Classified {
        event: bounded(classified.event, Cap::EVENT),
        delivery_key: classified
            .delivery_key
            .map(|k| bounded(k, Cap::DELIVERY_KEY)),
        ..classified
    })
}

/// Where a host names a delivery's event and its delivery key: header names, as it spells them.
#[derive(Debug, Clone, Copy)]
struct HeaderNames {
    /// The event header (`X-GitHub-Event`, `X-Event-Key`, ...).
    event: &'static str,
    /// The delivery key headers, the first present one counting.
    keys: &'static [&'static str],
}

/// What a request that was not authenticated claims to be, read from its headers alone (never
/// from its body), each value cut to `Cap::UNAUTHENTICATED`: for the log of a `REJECTED`
/// attempt or an unsigned ping. Azure DevOps names its event and its key only in the body, so
/// such a request of it claims nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claimed {
    /// The host's event header as sent; empty when absent.
    pub event: String,
    /// The host's delivery key header as sent.
    pub delivery_key: Option<String>,
}

/// Reads [`Claimed`] from a request's headers.
pub fn claimed(host: Host, headers: &HeaderMap) -> Claimed {
    let names = match host {
        Host::GitHub => github::HEADERS,
        Host::GitLab => gitlab::HEADERS,
        Host::BitbucketServer => bitbucket_server::HEADERS,
        Host::BitbucketCloud => bitbucket_cloud::HEADERS,
        Host::Gitea => gitea::HEADERS,
        Host::AzureDevOps => return Claimed::default(),
    };
    Claimed {
        event: bounded(
            header_text(headers, names.event).unwrap_or_default(),
            Cap::UNAUTHENTICATED,
        ),
        delivery_key: delivery_key(headers, names.keys).map(|k| bounded(k, Cap::UNAUTHENTICATED)),
    }
}

/// The effects of a classified, `Handled` event: changeset changes and pushes. An event that
/// turns out to have none (an issue comment that is not on a pull request) gives an empty list.
/// `event` is [`Classified::event`] and `payload` [`Classified::payload`].
/// Every text value in them is [`Effect::bounded`].
pub fn effects(host: Host, event: &str, payload: &Value) -> Result<Vec<Effect>, EffectError> {
    let effects = match host {
        Host::GitHub => github::effects(event, payload),
        Host::GitLab => gitlab::effects(event, payload),
        Host::BitbucketServer => bitbucket_server::effects(event, payload),
        Host::BitbucketCloud => bitbucket_cloud::effects(event, payload),
        Host::Gitea => gitea::effects(event, payload),
        Host::AzureDevOps => azure_devops::effects(event, payload),
    }?;
    Ok(effects.into_iter().map(Effect::bounded).collect())
}

/// Why a `Handled` event whose [`effects`] are none is not synced, for the delivery's
/// `IGNORED` reason: what the host module knows (an Azure DevOps comment of resource version
/// 1.0 names no pull request), else `<event> says nothing to sync`.
pub fn nothing_to_sync(host: Host, event: &str, payload: &Value) -> String {
    let known = match host {
        Host::AzureDevOps => azure_devops::nothing_to_sync(event, payload),
        _ => None,
    };
    bounded(
        known.unwrap_or_else(|| format!("{event} says nothing to sync")),
        Cap::SUMMARY,
    )
}

/// A request that looks exactly like the host's own test event, for the admin "send test
/// delivery" feature: POST `body` with `headers` to the receiver's URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestDelivery {
    /// Header names as the host spells them, with their values (signature included).
    pub headers: Vec<(&'static str, String)>,
    /// The raw body the signature was computed over.
    pub body: Vec<u8>,
}

/// Builds the host's test event, signed with `secret` as the host would sign it, under
/// `delivery_key`: a GitHub `ping`, a GitLab `Push Hook` with no commits, a Bitbucket Server
/// `diagnostics:ping` (signed), a Bitbucket Cloud `repo:push` with no changes, a Gitea `push`
/// whose `before` equals its `after`, an Azure DevOps `git.push` with no ref updates (the
/// secret as Basic password and `X-Hook-Secret`). It carries
/// [`TEST_DELIVERY_HEADER`], so it classifies as [`Disposition::Test`].
pub fn test_delivery(host: Host, secret: &str, delivery_key: &str) -> TestDelivery {
    let mut delivery = match host {
        Host::GitHub => github::test_delivery(secret, delivery_key),
        Host::GitLab => gitlab::test_delivery(secret, delivery_key),
        Host::BitbucketServer => bitbucket_server::test_delivery(secret, delivery_key),
        Host::BitbucketCloud => bitbucket_cloud::test_delivery(secret, delivery_key),
        Host::Gitea => gitea::test_delivery(secret, delivery_key),
        Host::AzureDevOps => azure_devops::test_delivery(secret, delivery_key),
    };
    // Every host's test event is JSON.
    delivery.headers.extend([
        ("Content-Type", "application/json".to_owned()),
        (TEST_DELIVERY_HEADER, "1".to_owned()),
    ]);
    delivery
}

/// The first value of `name` as text, trimmed; `None` when absent, empty or not UTF-8.
fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let value = std::str::from_utf8(headers.get(name)?.as_bytes())
        .ok()?
        .trim();
    (!value.is_empty()).then_some(value)
}

/// The host's event header, which every delivery must carry.
fn event_header<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, ClassifyError> {
    header_text(headers, name).ok_or(ClassifyError::MissingEventHeader(name))
}

/// The delivery key: the first of `names` that is present and not empty.
fn delivery_key(headers: &HeaderMap, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|name| header_text(headers, name))
        .map(str::to_owned)
}

/// `event`, followed by `/action` when the payload names one.
fn with_action(event: &str, action: Option<&str>) -> String {
    match action {
        Some(action) => format!("{event}/{action}"),
        None => event.to_owned(),
    }
}

/// The bytes of a test delivery's body.
fn json_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("a serde_json::Value always serialises")
}

/// Helpers shared by the host modules' tests: fixtures, header maps, and one check run over every
/// fixture of a host.
#[cfg(test)]
pub(crate) mod testing {
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    use http::{HeaderMap, HeaderName, HeaderValue};

    use super::{Disposition, Host, Verified, VerifyError, classify, verify};
    use super::{TestDelivery, sign_hmac_sha256_hex};

    /// `tests/fixtures/` of the crate (real payloads, with their sources in its README).
    pub(crate) fn fixtures_dir() -> PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
    }

    /// The bytes of `tests/fixtures/<path>`.
    pub(crate) fn fixture(path: &str) -> Vec<u8> {
        let full = fixtures_dir().join(path);
        std::fs::read(&full).unwrap_or_else(|e| panic!("fixture {}: {e}", full.display()))
    }

    /// A header map from (name, value) pairs; repeated names are kept repeated.
    pub(crate) fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).expect("a valid test header name"),
                HeaderValue::from_str(value).expect("a valid test header value"),
            );
        }
        map
    }

    /// The header map of a [`TestDelivery`], as the receiver would get it.
    pub(crate) fn test_delivery_headers(delivery: &TestDelivery) -> HeaderMap {
        let pairs: Vec<(&str, &str)> = delivery
            .headers
            .iter()
            .map(|(n, v)| (*n, v.as_str()))
            .collect();
        headers(&pairs)
    }

    /// The headers `host` sends with an `event` delivery under `key`, signed (or carrying the
    /// token) with `secret`, or with no signature at all when `secret` is `None`.
    pub(crate) fn host_headers(
        host: Host,
        event: &str,
        key: &str,
        secret: Option<&str>,
        body: &[u8],
    ) -> HeaderMap {
        let signature = secret.map(|s| format!("sha256={}", sign_hmac_sha256_hex(s, body)));
        let mut pairs = vec![("Content-Type", "application/json".to_owned())];
        match host {
            Host::GitHub => {
                pairs.push(("X-GitHub-Event", event.to_owned()));
                pairs.push(("X-GitHub-Delivery", key.to_owned()));
                pairs.extend(signature.map(|s| ("X-Hub-Signature-256", s)));
            }
            Host::GitLab => {
                pairs.push(("X-Gitlab-Event", event.to_owned()));
                pairs.push(("X-Gitlab-Event-UUID", key.to_owned()));
                pairs.extend(secret.map(|s| ("X-Gitlab-Token", s.to_owned())));
            }
            Host::BitbucketServer => {
                pairs.push(("X-Event-Key", event.to_owned()));
                pairs.push(("X-Request-Id", key.to_owned()));
                pairs.extend(signature.map(|s| ("X-Hub-Signature", s)));
            }
            Host::BitbucketCloud => {
                pairs.push(("X-Event-Key", event.to_owned()));
                pairs.push(("X-Request-UUID", key.to_owned()));
                pairs.extend(signature.map(|s| ("X-Hub-Signature", s)));
            }
            Host::Gitea => {
                pairs.push(("X-Gitea-Event-Type", event.to_owned()));
                pairs.push(("X-Gitea-Delivery", key.to_owned()));
                let digits = secret.map(|s| sign_hmac_sha256_hex(s, body));
                pairs.extend(digits.map(|d| ("X-Gitea-Signature", d)));
            }
            // No event or key header: both are in the body.
            Host::AzureDevOps => {
                let _ = (event, key);
                pairs.extend(secret.map(|s| ("X-Hook-Secret", s.to_owned())));
            }
        }
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (*n, v.as_str())).collect();
        headers(&pairs)
    }

    /// One fixture file and what hookgate must make of it: (file, event header, event name,
    /// disposition).
    pub(crate) type FixtureCase = (&'static str, &'static str, &'static str, Disposition);

    /// Checks that `cases` lists every file in `tests/fixtures/<dir>/`, and that each one
    /// classifies to its event, delivery key and disposition, verifies with the right secret,
    /// and fails with a wrong secret and with no signature (except the unsigned ping). Azure
    /// DevOps keys a delivery by its body: there, the key is only checked to be there.
    pub(crate) fn assert_every_fixture(host: Host, dir: &str, cases: &[FixtureCase]) {
        let on_disk: BTreeSet<String> = std::fs::read_dir(fixtures_dir().join(dir))
            .expect("the fixture folder exists")
            .map(|e| {
                e.expect("a readable entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        let listed: BTreeSet<String> = cases.iter().map(|c| c.0.to_owned()).collect();
        assert_eq!(
            on_disk, listed,
            "every fixture in {dir}/ has a case, and only those"
        );

        let secret = "the-receiver-secret";
        for &(file, header, event, disposition) in cases {
            let body = fixture(&format!("{dir}/{file}"));
            let key = format!("delivery-of-{file}");
            let signed = host_headers(host, header, &key, Some(secret), &body);

            let classified = classify(host, &signed, &body)
                .unwrap_or_else(|e| panic!("{dir}/{file} does not classify: {e}"));
            assert_eq!(classified.event, event, "{dir}/{file}");
            assert_eq!(classified.disposition, disposition, "{dir}/{file}");
            match host {
                Host::AzureDevOps => assert!(classified.delivery_key.is_some(), "{dir}/{file}"),
                _ => assert_eq!(classified.delivery_key.as_deref(), Some(key.as_str())),
            }

            assert_eq!(
                verify(host, &signed, &body, &[secret]),
                Ok(Verified::Signed),
                "{dir}/{file} with the right secret"
            );
            let forged = host_headers(host, header, &key, Some("not-the-secret"), &body);
            let wrong = match host {
                Host::GitLab => VerifyError::TokenMismatch,
                Host::AzureDevOps => VerifyError::CredentialMismatch {
                    credential: "X-Hook-Secret",
                },
                _ => VerifyError::Mismatch,
            };
            assert_eq!(
                verify(host, &forged, &body, &[secret]),
                Err(wrong),
                "{dir}/{file}"
            );

            let unsigned = host_headers(host, header, &key, None, &body);
            let expected = match (host, header) {
                (Host::BitbucketServer, "diagnostics:ping") => Ok(Verified::UnsignedPing),
                (Host::GitHub, _) => Err(VerifyError::Missing {
                    header: "X-Hub-Signature-256",
                }),
                (Host::GitLab, _) => Err(VerifyError::Missing {
                    header: "X-Gitlab-Token",
                }),
                (Host::Gitea, _) => Err(VerifyError::Missing {
                    header: "X-Gitea-Signature",
                }),
                (Host::AzureDevOps, _) => Err(VerifyError::Missing {
                    header: "Authorization (Basic) or X-Hook-Secret",
                }),
                _ => Err(VerifyError::Missing {
                    header: "X-Hub-Signature",
                }),
            };
            assert_eq!(
                verify(host, &unsigned, &body, &[secret]),
                expected,
                "{dir}/{file}"
            );
        }
    }

    /// Checks that `host`'s test delivery verifies with its secret, not with another, and
    /// classifies as a test of `event` under the key it was given; without hookgate's mark, it
    /// is the host's own `event`, of `disposition`.
    pub(crate) fn assert_test_delivery_round_trips(
        host: Host,
        event: &str,
        disposition: Disposition,
    ) {
        let delivery = super::test_delivery(host, "test-secret", "key-0001");
        let mut headers = test_delivery_headers(&delivery);
        assert_eq!(
            verify(host, &headers, &delivery.body, &["test-secret"]),
            Ok(Verified::Signed)
        );
        assert!(verify(host, &headers, &delivery.body, &["other-secret"]).is_err());
        let classified = classify(host, &headers, &delivery.body).expect("it classifies");
        assert_eq!(classified.event, format!("{event} (test delivery)"));
        assert_eq!(classified.disposition, Disposition::Test);
        assert_eq!(classified.delivery_key.as_deref(), Some("key-0001"));
        headers.remove(super::TEST_DELIVERY_HEADER);
        let unmarked = classify(host, &headers, &delivery.body).expect("it classifies");
        assert_eq!(unmarked.event, event);
        assert_eq!(unmarked.disposition, disposition);
        assert_eq!(
            headers.get("content-type").map(|v| v.as_bytes()),
            Some(&b"application/json"[..])
        );
        assert!(headers.contains_key("user-agent"));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::testing::{fixture, fixtures_dir, headers};
    use super::*;

    /// The host a vector in `signature-vectors.json` names.
    fn host_named(name: &str) -> Host {
        match name {
            "github" => Host::GitHub,
            "gitlab" => Host::GitLab,
            "bitbucket-server" => Host::BitbucketServer,
            "bitbucket-cloud" => Host::BitbucketCloud,
            "gitea" => Host::Gitea,
            "azure-devops" => Host::AzureDevOps,
            other => panic!("signature-vectors.json names an unknown host {other:?}"),
        }
    }

    #[test]
    fn every_published_signature_vector_passes_and_every_negative_example_fails() {
        let text = std::fs::read(fixtures_dir().join("signature-vectors.json"))
            .expect("signature-vectors.json is in tests/fixtures");
        let vectors: Vec<Value> = serde_json::from_slice(&text).expect("it is a JSON array");
        assert!(vectors.len() >= 6, "all six published vectors are read");
        let mut negatives = 0;
        for v in &vectors {
            let field = |name: &str| v.get(name).and_then(Value::as_str);
            let host = host_named(field("host").expect("host"));
            let secret = field("secret").expect("secret");
            let header = field("header").expect("header");
            let expected = field("expected").expect("expected");
            let body = match (field("payload_utf8"), field("payload_file")) {
                (Some(text), _) => text.as_bytes().to_vec(),
                (None, Some(file)) => fixture(file),
                (None, None) => panic!("vector without a payload: {v}"),
            };
            // An `event_header` is "Name: value".
            let event = field("event_header").and_then(|h| h.split_once(": "));
            let mut pairs = vec![(header, expected)];
            pairs.extend(event);

            let signed = headers(&pairs);
            assert_eq!(
                verify(host, &signed, &body, &[secret]),
                Ok(Verified::Signed),
                "{v}"
            );
            let digits = expected.strip_prefix("sha256=").expect("a sha256 vector");
            assert_eq!(sign_hmac_sha256_hex(secret, &body), digits);

            if let Some(negative) = field("negative_example") {
                negatives += 1;
                pairs[0] = (header, negative);
                assert!(
                    verify(host, &headers(&pairs), &body, &[secret]).is_err(),
                    "negative example of {v} must fail"
                );
            }
        }
        assert_eq!(negatives, 3, "all three negative examples are checked");
    }

    #[test]
    fn error_messages_name_the_header_and_the_expected_form() {
        let missing = VerifyError::Missing {
            header: "X-Hub-Signature-256",
        };
        assert_eq!(missing.to_string(), "missing X-Hub-Signature-256");
        let malformed = VerifyError::Malformed {
            header: "X-Hub-Signature-256",
            expected: "sha256=<64 hex digits>",
        };
        assert_eq!(
            malformed.to_string(),
            "malformed X-Hub-Signature-256: expected sha256=<64 hex digits>"
        );
        assert_eq!(
            VerifyError::Mismatch.to_string(),
            "signature does not match"
        );
        assert_eq!(
            VerifyError::TokenMismatch.to_string(),
            "token does not match"
        );
        assert_eq!(
            ClassifyError::MissingEventHeader("X-GitHub-Event").to_string(),
            "missing X-GitHub-Event header"
        );
    }

    #[test]
    fn an_empty_secret_list_accepts_no_host() {
        for host in [
            Host::GitHub,
            Host::GitLab,
            Host::BitbucketServer,
            Host::BitbucketCloud,
            Host::Gitea,
            Host::AzureDevOps,
        ] {
            let delivery = test_delivery(host, "s", "k");
            let headers = testing::test_delivery_headers(&delivery);
            assert_eq!(
                verify(host, &headers, &delivery.body, &["s"]),
                Ok(Verified::Signed)
            );
            assert!(
                verify(host, &headers, &delivery.body, &[]).is_err(),
                "{host:?}"
            );
            assert!(
                verify(host, &headers, &delivery.body, &[""]).is_err(),
                "{host:?}"
            );
        }
    }
}
