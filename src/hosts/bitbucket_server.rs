//! Bitbucket Server / Data Center: deliveries signed with `X-Hub-Signature: sha256=<hex>`
//! (SHA-256 under the header name GitHub uses for SHA-1), named by `X-Event-Key` and keyed by
//! `X-Request-Id`. Two exceptions: the "Test connection" `diagnostics:ping` may arrive unsigned
//! and with any body, and the Sourcegraph Bitbucket Server plugin wrote the signature as bare hex
//! before 2020, so both forms are accepted.

use http::HeaderMap;
use serde_json::Value;

use super::signature::{self, Algorithm, Prefix};
use super::{
    Classified, ClassifyError, Disposition, TestDelivery, Verified, VerifyError, delivery_key,
    event_header, header_text, parse_json,
};

const SIGNATURE: &str = "X-Hub-Signature";
const EVENT: &str = "X-Event-Key";
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

pub(super) fn classify(headers: &HeaderMap, body: &[u8]) -> Result<Classified, ClassifyError> {
    let event = event_header(headers, EVENT)?;
    let (payload, disposition) = if event == PING {
        // `{"test": true}` in practice; nothing is read from it, so nothing is insisted on.
        let payload = serde_json::from_slice(body).unwrap_or(Value::Null);
        (payload, Disposition::Ping)
    } else {
        (parse_json(event, body)?, disposition(event))
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
            ("Content-Type", "application/json".to_owned()),
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

/// The effects of a `Handled` event (see `super::effects`).
pub(super) fn effects(
    _event: &str,
    _payload: &serde_json::Value,
) -> Result<Vec<super::Effect>, super::EffectError> {
    Ok(Vec::new())
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

    #[test]
    fn the_test_delivery_is_a_signed_ping_that_round_trips() {
        assert_test_delivery_round_trips(Host::BitbucketServer, "diagnostics:ping", Ping);
        assert_eq!(test_delivery("s", "k").body, br#"{"test": true}"#);
    }
}
