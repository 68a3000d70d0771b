//! Standard Webhooks signatures, as GitLab sends them for a webhook with a signing token: the
//! delivery carries `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`
//! (`v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<raw body>">`, several space-separated during a
//! key rotation), keyed by the bytes the base64 after `whsec_` encodes. Pure, like the rest of
//! `hosts`: the caller gives the keys, the clock reading and the tolerance.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::VerifyError;

/// The delivery's unique id; also its delivery key.
pub const WEBHOOK_ID: &str = "webhook-id";
/// When the delivery was signed, in Unix seconds.
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
/// The signatures, `v1,<base64>` separated by spaces.
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";

/// What a signed delivery is checked against.
#[derive(Debug, Clone, Copy)]
pub struct SignatureCheck<'a> {
    /// The HMAC keys it may be signed with (the current signing token's, and the previous one's
    /// during a rotation overlap); an empty list accepts nothing.
    pub keys: &'a [&'a [u8]],
    /// Now, in Unix seconds.
    pub now: i64,
    /// How far `webhook-timestamp` may be from `now`, either way.
    pub tolerance: Duration,
}

/// Whether the delivery carries any of the three Standard Webhooks headers.
pub fn is_signed(headers: &HeaderMap) -> bool {
    [WEBHOOK_ID, WEBHOOK_TIMESTAMP, WEBHOOK_SIGNATURE]
        .iter()
        .any(|h| headers.contains_key(*h))
}

/// Passes when the delivery carries all three headers, its timestamp is within the tolerance,
/// and one of its `v1` signatures is the HMAC of `id.timestamp.body` under one of the keys.
/// Every key and every signature is tried (no early exit), each comparison in constant time; the
/// body is hashed once per key, not once per listed signature.
pub fn verify(
    headers: &HeaderMap,
    body: &[u8],
    check: &SignatureCheck<'_>,
) -> Result<(), VerifyError> {
    let id = single(headers, WEBHOOK_ID, "one delivery id")?;
    let timestamp_text = single(headers, WEBHOOK_TIMESTAMP, "Unix seconds, e.g. 1614265330")?;
    let signatures = single(
        headers,
        WEBHOOK_SIGNATURE,
        "v1,<base64 HMAC-SHA256>, space-separated",
    )?;
    let timestamp: i64 = timestamp_text.parse().map_err(|_| VerifyError::Malformed {
        header: WEBHOOK_TIMESTAMP,
        expected: "Unix seconds, e.g. 1614265330",
    })?;
    let tolerance = i64::try_from(check.tolerance.as_secs()).unwrap_or(i64::MAX);
    let skew = timestamp.saturating_sub(check.now);
    if skew.unsigned_abs() > tolerance.unsigned_abs() {
        return Err(VerifyError::StaleTimestamp {
            skew_seconds: skew,
            tolerance_seconds: tolerance,
        });
    }
    // One HMAC of the body per key, however many signatures the header lists.
    let expected: Vec<Vec<u8>> = check
        .keys
        .iter()
        .filter(|k| !k.is_empty())
        .map(|key| sign_raw(key, id, timestamp_text, body))
        .collect();
    let mut matched = subtle::Choice::from(0);
    let mut any_v1 = false;
    for entry in signatures.split(' ').filter(|s| !s.is_empty()) {
        let Some(encoded) = entry.strip_prefix("v1,") else {
            // Other schemes (`v1a,` is asymmetric) are not ours to check.
            continue;
        };
        let Ok(digest) = STANDARD.decode(encoded) else {
            return Err(VerifyError::Malformed {
                header: WEBHOOK_SIGNATURE,
                expected: "v1,<base64 HMAC-SHA256>, space-separated",
            });
        };
        any_v1 = true;
        for candidate in &expected {
            matched |= candidate.as_slice().ct_eq(digest.as_slice());
        }
    }
    if !any_v1 {
        return Err(VerifyError::Malformed {
            header: WEBHOOK_SIGNATURE,
            expected: "v1,<base64 HMAC-SHA256>, space-separated",
        });
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

/// The `webhook-signature` value for `body` under `key`: `v1,<base64 HMAC-SHA256 of
/// "id.timestamp.body">`. For test deliveries, tests and load tools.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let digest = sign_raw(key, id, &timestamp.to_string(), body);
    format!("v1,{}", STANDARD.encode(digest))
}

fn sign_raw(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// The one, non-empty, trimmed value of `header`; `Missing` when absent or empty, `Malformed`
/// when sent more than once or not text.
fn single<'h>(
    headers: &'h HeaderMap,
    header: &'static str,
    expected: &'static str,
) -> Result<&'h str, VerifyError> {
    let mut values = headers.get_all(header).iter();
    let Some(value) = values.next() else {
        return Err(VerifyError::Missing { header });
    };
    if values.next().is_some() {
        return Err(VerifyError::Malformed { header, expected });
    }
    let text = value
        .to_str()
        .map_err(|_| VerifyError::Malformed { header, expected })?
        .trim();
    if text.is_empty() {
        return Err(VerifyError::Missing { header });
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hosts::testing::{fixtures_dir, headers};

    /// The Standard Webhooks vector (tests/fixtures/standard-webhooks-vector.json).
    fn vector() -> serde_json::Value {
        let text = std::fs::read(fixtures_dir().join("standard-webhooks-vector.json"))
            .expect("standard-webhooks-vector.json is in tests/fixtures");
        serde_json::from_slice(&text).expect("the vector is JSON")
    }

    fn field<'v>(v: &'v serde_json::Value, name: &str) -> &'v str {
        v[name]
            .as_str()
            .unwrap_or_else(|| panic!("vector field {name}"))
    }

    fn key_of(secret: &str) -> Vec<u8> {
        STANDARD
            .decode(secret.strip_prefix("whsec_").expect("a whsec_ secret"))
            .expect("base64")
    }

    fn check_at<'a>(keys: &'a [&'a [u8]], now: i64) -> SignatureCheck<'a> {
        SignatureCheck {
            keys,
            now,
            tolerance: Duration::from_secs(300),
        }
    }

    #[test]
    fn the_standard_webhooks_vector_signs_and_verifies() {
        let v = vector();
        let key = key_of(field(&v, "secret"));
        let id = field(&v, "webhook_id");
        let ts = field(&v, "webhook_timestamp");
        let body = field(&v, "payload_utf8").as_bytes();
        let timestamp: i64 = ts.parse().unwrap();
        assert_eq!(sign(&key, id, timestamp, body), field(&v, "expected"));
        let keys: &[&[u8]] = &[&key];
        let good = headers(&[
            (WEBHOOK_ID, id),
            (WEBHOOK_TIMESTAMP, ts),
            (WEBHOOK_SIGNATURE, field(&v, "expected")),
        ]);
        verify(&good, body, &check_at(keys, timestamp + 10)).expect("the vector verifies");
        let bad = headers(&[
            (WEBHOOK_ID, id),
            (WEBHOOK_TIMESTAMP, ts),
            (WEBHOOK_SIGNATURE, field(&v, "negative_example")),
        ]);
        assert_eq!(
            verify(&bad, body, &check_at(keys, timestamp)),
            Err(VerifyError::Mismatch)
        );
        // Keyed with the whole `whsec_...` text instead of the decoded bytes: wrong.
        let raw: &[&[u8]] = &[field(&v, "secret").as_bytes()];
        assert_eq!(
            verify(&good, body, &check_at(raw, timestamp)),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn one_valid_signature_among_several_is_enough() {
        let v = vector();
        let key = key_of(field(&v, "secret"));
        let keys: &[&[u8]] = &[&key];
        let both = format!(
            "{} {}",
            field(&v, "negative_example"),
            field(&v, "expected")
        );
        let h = headers(&[
            (WEBHOOK_ID, field(&v, "webhook_id")),
            (WEBHOOK_TIMESTAMP, field(&v, "webhook_timestamp")),
            (WEBHOOK_SIGNATURE, &both),
        ]);
        verify(
            &h,
            field(&v, "payload_utf8").as_bytes(),
            &check_at(keys, 1614265330),
        )
        .expect("one of the two matches");
    }

    #[test]
    fn a_timestamp_beyond_the_tolerance_either_way_is_refused_with_the_skew() {
        let key = [7u8; 32];
        let keys: &[&[u8]] = &[&key];
        let now = 1_800_000_000;
        for ts in [now - 301, now + 301] {
            let sig = sign(&key, "msg_1", ts, b"{}");
            let h = headers(&[
                (WEBHOOK_ID, "msg_1"),
                (WEBHOOK_TIMESTAMP, &ts.to_string()),
                (WEBHOOK_SIGNATURE, &sig),
            ]);
            let e = verify(&h, b"{}", &check_at(keys, now)).unwrap_err();
            assert!(matches!(e, VerifyError::StaleTimestamp { .. }), "{e}");
            assert!(e.to_string().contains("301"), "{e}");
        }
        for ts in [now - 300, now + 300] {
            let sig = sign(&key, "msg_1", ts, b"{}");
            let h = headers(&[
                (WEBHOOK_ID, "msg_1"),
                (WEBHOOK_TIMESTAMP, &ts.to_string()),
                (WEBHOOK_SIGNATURE, &sig),
            ]);
            verify(&h, b"{}", &check_at(keys, now)).expect("at the edge of the tolerance");
        }
    }

    #[test]
    fn missing_and_malformed_headers_are_named() {
        let key = [7u8; 32];
        let keys: &[&[u8]] = &[&key];
        let e = verify(&headers(&[]), b"{}", &check_at(keys, 0)).unwrap_err();
        assert_eq!(e.to_string(), "missing webhook-id");
        let h = headers(&[
            (WEBHOOK_ID, "m"),
            (WEBHOOK_TIMESTAMP, "soon"),
            (WEBHOOK_SIGNATURE, "v1,AA=="),
        ]);
        let e = verify(&h, b"{}", &check_at(keys, 0)).unwrap_err();
        assert!(
            e.to_string().starts_with("malformed webhook-timestamp"),
            "{e}"
        );
        let h = headers(&[
            (WEBHOOK_ID, "m"),
            (WEBHOOK_TIMESTAMP, "0"),
            (WEBHOOK_SIGNATURE, "sha256=ab"),
        ]);
        let e = verify(&h, b"{}", &check_at(keys, 0)).unwrap_err();
        assert!(
            e.to_string().starts_with("malformed webhook-signature"),
            "{e}"
        );
        let no_keys: &[&[u8]] = &[];
        let sig = sign(&key, "m", 0, b"{}");
        let h = headers(&[
            (WEBHOOK_ID, "m"),
            (WEBHOOK_TIMESTAMP, "0"),
            (WEBHOOK_SIGNATURE, &sig),
        ]);
        assert_eq!(
            verify(&h, b"{}", &check_at(no_keys, 0)),
            Err(VerifyError::Mismatch)
        );
    }
}
