//! The two ways code hosts prove a delivery is theirs: an HMAC of the raw body, written as hex in a
//! header (GitHub, Bitbucket Server, Bitbucket Cloud), and a shared token sent verbatim (GitLab).
//! The host modules only say which header and which form; reading the header, comparing in
//! constant time and failing closed live here, once.

use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::VerifyError;

/// The hash an HMAC signature header is made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Algorithm {
    /// HMAC-SHA256, written `sha256=<64 hex digits>`; what every host uses today (and what
    /// some GitHub-compatible senders put in GitHub's legacy `X-Hub-Signature`).
    Sha256,
    /// HMAC-SHA1, written `sha1=<40 hex digits>`; GitHub's legacy `X-Hub-Signature`.
    Sha1,
}

impl Algorithm {
    /// The prefix the header value starts with.
    fn prefix(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256=",
            Algorithm::Sha1 => "sha1=",
        }
    }

    /// The length of the digest in bytes.
    fn digest_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 32,
            Algorithm::Sha1 => 20,
        }
    }

    /// How a well-formed header value looks, for the error message.
    fn expected(self, prefix: Prefix) -> &'static str {
        match (self, prefix) {
            (Algorithm::Sha256, Prefix::Required) => "sha256=<64 hex digits>",
            (Algorithm::Sha256, Prefix::Optional) => "sha256=<64 hex digits> or <64 hex digits>",
            (Algorithm::Sha1, Prefix::Required) => "sha1=<40 hex digits>",
            (Algorithm::Sha1, Prefix::Optional) => "sha1=<40 hex digits> or <40 hex digits>",
        }
    }
}

/// Whether a signature header must carry its algorithm prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Prefix {
    /// `sha256=<hex>` only.
    Required,
    /// `sha256=<hex>` or bare `<hex>` (the Sourcegraph Bitbucket Server plugin before 2020).
    Optional,
}

/// A signature header that has been read and decoded, not yet compared with anything.
#[derive(Debug)]
pub(super) struct Signature {
    /// The hash the host says it used.
    algorithm: Algorithm,
    /// The decoded digest, exactly `algorithm.digest_len()` bytes.
    digest: Vec<u8>,
}

/// Reads the signature in `header`: `Ok(None)` when the request has no such header, `Malformed`
/// when it has one that is not a single well-formed value. Hex digits may be in either case and
/// surrounding whitespace is ignored.
pub(super) fn read_signature(
    headers: &HeaderMap,
    header: &'static str,
    algorithm: Algorithm,
    prefix: Prefix,
) -> Result<Option<Signature>, VerifyError> {
    let malformed = VerifyError::Malformed {
        header,
        expected: algorithm.expected(prefix),
    };
    let Some(value) = single_value(headers, header).map_err(|()| malformed.clone())? else {
        return Ok(None);
    };
    let value = value.trim();
    let hex_digits = match (value.strip_prefix(algorithm.prefix()), prefix) {
        (Some(rest), _) => rest,
        (None, Prefix::Optional) => value,
        (None, Prefix::Required) => return Err(malformed),
    };
    match hex::decode(hex_digits) {
        Ok(digest) if digest.len() == algorithm.digest_len() => {
            Ok(Some(Signature { algorithm, digest }))
        }
        _ => Err(malformed),
    }
}

/// Reads a signature header that may be written with any of `algorithms`, each with its prefix
/// (`sha256=<hex>` or `sha1=<hex>`): the prefix names the algorithm. `Ok(None)` when the request
/// has no such header; `Malformed` (saying `expected`) when the value has none of the prefixes,
/// or digits of the wrong length for the one it names.
pub(super) fn read_prefixed_signature(
    headers: &HeaderMap,
    header: &'static str,
    algorithms: &[Algorithm],
    expected: &'static str,
) -> Result<Option<Signature>, VerifyError> {
    let malformed = VerifyError::Malformed { header, expected };
    let Some(value) = single_value(headers, header).map_err(|()| malformed.clone())? else {
        return Ok(None);
    };
    let value = value.trim();
    let Some((algorithm, hex_digits)) = algorithms
        .iter()
        .find_map(|&a| value.strip_prefix(a.prefix()).map(|rest| (a, rest)))
    else {
        return Err(malformed);
    };
    match hex::decode(hex_digits) {
        Ok(digest) if digest.len() == algorithm.digest_len() => {
            Ok(Some(Signature { algorithm, digest }))
        }
        _ => Err(malformed),
    }
}

/// Passes when `signature` is the HMAC of `body` under any of `secrets`. Every secret is tried
/// (no early exit), each comparison is constant-time, and empty secrets are skipped, so an empty
/// list, or a list of empty strings, accepts nothing.
pub(super) fn check_hmac(
    signature: &Signature,
    body: &[u8],
    secrets: &[&str],
) -> Result<(), VerifyError> {
    let mut matched = false;
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        matched |= match signature.algorithm {
            Algorithm::Sha256 => hmac_matches::<Hmac<Sha256>>(secret, body, &signature.digest),
            Algorithm::Sha1 => hmac_matches::<Hmac<Sha1>>(secret, body, &signature.digest),
        };
    }
    if matched {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

/// Passes when `header` holds exactly one of `secrets`. Both sides are hashed before the
/// constant-time comparison, so neither the content nor the length of a secret leaks through
/// timing. Empty secrets are skipped; an empty header counts as missing, and a header sent more
/// than once is `Malformed` (never "the first one wins"). GitLab's token and the generic
/// trigger's `X-Hook-Secret` are both read here.
pub fn check_token(
    headers: &HeaderMap,
    header: &'static str,
    secrets: &[&str],
) -> Result<(), VerifyError> {
    let token = match single_value(headers, header) {
        Ok(Some(token)) if !token.is_empty() => token,
        Ok(_) => return Err(VerifyError::Missing { header }),
        Err(()) => {
            return Err(VerifyError::Malformed {
                header,
                expected: "one token",
            });
        }
    };
    if token_matches(token, secrets) {
        Ok(())
    } else {
        Err(VerifyError::TokenMismatch)
    }
}

/// Whether `token` is one of `secrets`, compared in constant time on SHA-256 digests (so
/// neither content nor length leaks). Empty secrets never match.
pub fn token_matches(token: &str, secrets: &[&str]) -> bool {
    let presented = Sha256::digest(token.as_bytes());
    let mut matched = subtle::Choice::from(0);
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        let known = Sha256::digest(secret.as_bytes());
        matched |= presented.as_slice().ct_eq(known.as_slice());
    }
    bool::from(matched)
}

/// `HMAC-SHA256(secret, body)` as lowercase hex without a prefix: the digits that follow
/// `sha256=` in the headers GitHub and Bitbucket send. For tests, test deliveries and load tools.
pub fn sign_hmac_sha256_hex(secret: &str, body: &[u8]) -> String {
    sign_hex(Algorithm::Sha256, secret, body)
}

/// `HMAC(secret, body)` with `algorithm`, as lowercase hex without a prefix.
pub(super) fn sign_hex(algorithm: Algorithm, secret: &str, body: &[u8]) -> String {
    match algorithm {
        Algorithm::Sha256 => hex::encode(hmac_of::<Hmac<Sha256>>(secret, body)),
        Algorithm::Sha1 => hex::encode(hmac_of::<Hmac<Sha1>>(secret, body)),
    }
}

/// The header value a host writes for `body`: `sha256=<hex>` or `sha1=<hex>`.
pub(super) fn header_value(algorithm: Algorithm, secret: &str, body: &[u8]) -> String {
    format!(
        "{}{}",
        algorithm.prefix(),
        sign_hex(algorithm, secret, body)
    )
}

fn hmac_of<M: Mac + KeyInit>(secret: &str, body: &[u8]) -> Vec<u8> {
    let mut mac =
        <M as KeyInit>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

fn hmac_matches<M: Mac + KeyInit>(secret: &str, body: &[u8], digest: &[u8]) -> bool {
    let Ok(mut mac) = <M as KeyInit>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(digest).is_ok()
}

/// The one value of `name`: `Ok(None)` when absent, `Err(())` when repeated or not text. A
/// credential header sent twice is refused rather than guessed at.
fn single_value<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, ()> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(());
    }
    std::str::from_utf8(first.as_bytes())
        .map(Some)
        .map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hosts::testing::headers;

    #[test]
    fn signing_matches_the_example_in_githubs_documentation() {
        assert_eq!(
            sign_hmac_sha256_hex("It's a Secret to Everybody", b"Hello, World!"),
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn a_signature_of_the_wrong_length_is_malformed() {
        let h = headers(&[("X-Hub-Signature", "sha256=abcd")]);
        let e = read_signature(&h, "X-Hub-Signature", Algorithm::Sha256, Prefix::Required)
            .expect_err("four hex digits are not a SHA-256 digest");
        assert_eq!(
            e.to_string(),
            "malformed X-Hub-Signature: expected sha256=<64 hex digits>"
        );
    }

    #[test]
    fn a_signature_header_sent_twice_is_malformed() {
        let sig = header_value(Algorithm::Sha256, "s", b"body");
        let h = headers(&[("X-Hub-Signature", &sig), ("X-Hub-Signature", &sig)]);
        assert!(matches!(
            read_signature(&h, "X-Hub-Signature", Algorithm::Sha256, Prefix::Required),
            Err(VerifyError::Malformed { .. })
        ));
    }

    #[test]
    fn a_prefixed_signature_names_its_algorithm_by_its_prefix() {
        let both = [Algorithm::Sha256, Algorithm::Sha1];
        let expected = "sha256=<64 hex digits> or sha1=<40 hex digits>";
        for algorithm in both {
            let h = headers(&[("X-Hub-Signature", &header_value(algorithm, "s", b"b"))]);
            let sig = read_prefixed_signature(&h, "X-Hub-Signature", &both, expected)
                .expect("well-formed")
                .expect("present");
            assert_eq!(sig.algorithm, algorithm);
            assert_eq!(check_hmac(&sig, b"b", &["s"]), Ok(()));
        }
        // The prefix decides the length: SHA-1 digits after `sha256=` are malformed.
        let sha1_digits = sign_hex(Algorithm::Sha1, "s", b"b");
        for value in [
            format!("sha256={sha1_digits}"),
            sha1_digits.clone(),
            "md5=00".into(),
        ] {
            let h = headers(&[("X-Hub-Signature", &value)]);
            let e =
                read_prefixed_signature(&h, "X-Hub-Signature", &both, expected).expect_err(&value);
            assert_eq!(
                e,
                VerifyError::Malformed {
                    header: "X-Hub-Signature",
                    expected
                }
            );
        }
        assert!(matches!(
            read_prefixed_signature(&headers(&[]), "X-Hub-Signature", &both, expected),
            Ok(None)
        ));
    }

    #[test]
    fn empty_secrets_never_match_even_a_signature_made_with_an_empty_key() {
        let h = headers(&[(
            "X-Hub-Signature",
            &header_value(Algorithm::Sha256, "", b"x"),
        )]);
        let sig = read_signature(&h, "X-Hub-Signature", Algorithm::Sha256, Prefix::Required)
            .expect("well-formed")
            .expect("present");
        assert_eq!(check_hmac(&sig, b"x", &[""]), Err(VerifyError::Mismatch));
        assert_eq!(check_hmac(&sig, b"x", &[]), Err(VerifyError::Mismatch));
    }

    #[test]
    fn a_token_matches_only_exactly() {
        let h = headers(&[("X-Gitlab-Token", "s3cret")]);
        assert_eq!(check_token(&h, "X-Gitlab-Token", &["s3cret"]), Ok(()));
        assert_eq!(
            check_token(&h, "X-Gitlab-Token", &["s3cre"]),
            Err(VerifyError::TokenMismatch)
        );
        assert_eq!(
            check_token(&h, "X-Gitlab-Token", &["S3CRET"]),
            Err(VerifyError::TokenMismatch)
        );
        assert_eq!(
            check_token(&h, "X-Gitlab-Token", &[]),
            Err(VerifyError::TokenMismatch)
        );
    }
}
