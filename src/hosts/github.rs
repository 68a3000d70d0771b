//! GitHub: deliveries signed with `X-Hub-Signature-256: sha256=<hex>` (or only the legacy
//! `X-Hub-Signature: sha1=<hex>`), named by `X-GitHub-Event` plus the body's `action`, keyed by
//! `X-GitHub-Delivery`. A hook configured as *form* sends the JSON in a `payload` form field; the
//! signature covers the form bytes, the event is read from the decoded JSON.

use std::borrow::Cow;

use http::HeaderMap;
use serde_json::json;

use super::signature::{self, Algorithm, Prefix};
use super::{
    Classified, ClassifyError, Disposition, TestDelivery, Verified, VerifyError, delivery_key,
    event_header, header_text, json_bytes, parse_json, with_action,
};

/// Where GitHub puts the current signature.
const SIGNATURE_256: &str = "X-Hub-Signature-256";
/// Where GitHub puts the legacy HMAC-SHA1 signature.
const SIGNATURE_SHA1: &str = "X-Hub-Signature";
const EVENT: &str = "X-GitHub-Event";
const DELIVERY: &str = "X-GitHub-Delivery";

/// Events a handler takes (DESIGN.md): batch-change sync and push sync. `issue_comment` is
/// taken whole; whether the issue is a pull request is the handler's question.
const HANDLED: &[&str] = &[
    "pull_request",
    "pull_request_review",
    "pull_request_review_comment",
    "issue_comment",
    "check_run",
    "check_suite",
    "status",
    "push",
];

pub(super) fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[&str],
) -> Result<Verified, VerifyError> {
    // When the SHA-256 header is present it alone decides: a good legacy SHA-1 next to a bad
    // SHA-256 must not pass.
    let signature = match signature::read_signature(
        headers,
        SIGNATURE_256,
        Algorithm::Sha256,
        Prefix::Required,
    )? {
        Some(s) => s,
        None => {
            signature::read_signature(headers, SIGNATURE_SHA1, Algorithm::Sha1, Prefix::Required)?
                .ok_or(VerifyError::Missing {
                header: SIGNATURE_256,
            })?
        }
    };
    signature::check_hmac(&signature, body, secrets)?;
    Ok(Verified::Signed)
}

pub(super) fn classify(headers: &HeaderMap, body: &[u8]) -> Result<Classified, ClassifyError> {
    let event = event_header(headers, EVENT)?;
    let json = if is_form(headers) {
        form_payload(event, body)?
    } else {
        Cow::Borrowed(body)
    };
    let payload = parse_json(event, &json)?;
    let disposition = match event {
        "ping" => Disposition::Ping,
        e if HANDLED.contains(&e) => Disposition::Handled,
        _ => Disposition::Ignored,
    };
    Ok(Classified {
        event: with_action(event, payload.get("action")),
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
            ("Content-Type", "application/json".to_owned()),
            ("User-Agent", "GitHub-Hookshot/hookgate-test".to_owned()),
            (EVENT, "ping".to_owned()),
            (DELIVERY, key.to_owned()),
            ("X-GitHub-Hook-ID", "0".to_owned()),
            (
                SIGNATURE_SHA1,
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
        ("check_run.completed.json", "check_run", "check_run/completed", Handled),
        ("check_suite.completed.json", "check_suite", "check_suite/completed", Handled),
        ("issue_comment.created.json", "issue_comment", "issue_comment/created", Handled),
        ("ping.json", "ping", "ping", Ping),
        ("pull_request.closed.json", "pull_request", "pull_request/closed", Handled),
        ("pull_request.closed.merged.json", "pull_request", "pull_request/closed", Handled),
        ("pull_request.converted_to_draft.json", "pull_request", "pull_request/converted_to_draft", Handled),
        ("pull_request.edited.json", "pull_request", "pull_request/edited", Handled),
        ("pull_request.labeled.json", "pull_request", "pull_request/labeled", Handled),
        ("pull_request.opened.json", "pull_request", "pull_request/opened", Handled),
        ("pull_request.ready_for_review.json", "pull_request", "pull_request/ready_for_review", Handled),
        ("pull_request.reopened.json", "pull_request", "pull_request/reopened", Handled),
        ("pull_request.synchronize.json", "pull_request", "pull_request/synchronize", Handled),
        ("pull_request_review.dismissed.json", "pull_request_review", "pull_request_review/dismissed", Handled),
        ("pull_request_review.submitted.json", "pull_request_review", "pull_request_review/submitted", Handled),
        ("pull_request_review_comment.created.json", "pull_request_review_comment", "pull_request_review_comment/created", Handled),
        ("push.branch-created.json", "push", "push", Handled),
        ("push.branch-updated.json", "push", "push", Handled),
        ("push.tag-deleted.json", "push", "push", Handled),
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
    fn a_sha256_signature_in_the_legacy_header_is_malformed() {
        let body = b"{}";
        let sha256 = format!("sha256={}", sign_hmac_sha256_hex(SECRET, body));
        let h = headers(&[("X-Hub-Signature", &sha256)]);
        assert_eq!(
            verify(Host::GitHub, &h, body, &[SECRET]),
            Err(VerifyError::Malformed {
                header: "X-Hub-Signature",
                expected: "sha1=<40 hex digits>"
            })
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
}
