//! GitLab: deliveries carry the receiver's secret verbatim in `X-Gitlab-Token` (GitLab does not
//! sign the body), are named by `X-Gitlab-Event` plus `object_attributes.action`, and keyed by
//! `Idempotency-Key` (stable across retries, GitLab 17.4+) or else `X-Gitlab-Event-UUID`.

use http::HeaderMap;
use serde_json::json;

use super::signature;
use super::{
    Classified, ClassifyError, Disposition, TestDelivery, Verified, VerifyError, delivery_key,
    event_header, json_bytes, parse_json, with_action,
};

const TOKEN: &str = "X-Gitlab-Token";
const EVENT: &str = "X-Gitlab-Event";
/// The delivery key headers, best first.
const KEYS: &[&str] = &["Idempotency-Key", "X-Gitlab-Event-UUID"];

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

pub(super) fn classify(headers: &HeaderMap, body: &[u8]) -> Result<Classified, ClassifyError> {
    let event = event_header(headers, EVENT)?;
    let payload = parse_json(event, body)?;
    let action = payload
        .get("object_attributes")
        .and_then(|attributes| attributes.get("action"));
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
            ("Content-Type", "application/json".to_owned()),
            ("User-Agent", "GitLab/hookgate-test".to_owned()),
            (EVENT, "Push Hook".to_owned()),
            ("X-Gitlab-Event-UUID", key.to_owned()),
            ("Idempotency-Key", key.to_owned()),
            (TOKEN, secret.to_owned()),
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
    use crate::hosts::{Host, classify, verify};
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
}
