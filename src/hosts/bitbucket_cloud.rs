//! Bitbucket Cloud: deliveries signed with `X-Hub-Signature: sha256=<hex>`, named only by
//! `X-Event-Key` (the body carries no event name) and keyed by `X-Request-UUID`. Bitbucket Cloud
//! has no ping.

use http::HeaderMap;
use serde_json::json;

use super::signature::{self, Algorithm, Prefix};
use super::{
    Classified, ClassifyError, Disposition, TestDelivery, Verified, VerifyError, delivery_key,
    event_header, json_bytes, parse_json,
};

const SIGNATURE: &str = "X-Hub-Signature";
const EVENT: &str = "X-Event-Key";
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

pub(super) fn classify(headers: &HeaderMap, body: &[u8]) -> Result<Classified, ClassifyError> {
    let event = event_header(headers, EVENT)?;
    let payload = parse_json(event, body)?;
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
            ("Content-Type", "application/json".to_owned()),
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
