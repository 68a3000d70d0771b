//! The request bodies a run sends, built and signed before the first request: a real fixture,
//! optionally in `--distinct K` variants whose pull/merge request number is 1..K (so the worker
//! touches K changesets, not one), each with its headers and signature computed once. Only the
//! delivery id changes per request, and it is a header, so nothing here runs on the hot path.
//!
//! A variant differs from the fixture in the digits of the number and nowhere else: the number's
//! byte span is found with `serde_json`'s `RawValue` and replaced in place, so the body keeps the
//! fixture's formatting and size (a re-serialised body would be smaller and a different test).

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName};
use serde_json::value::RawValue;

use crate::hosts::Host;
use crate::mix::Mix;

/// Why the bodies of a run could not be prepared. Each message names the file or the field.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The fixture could not be read.
    #[error("cannot read fixture {path}: {source}")]
    Read {
        /// The path as given, or as resolved against the repository root.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
    /// `--distinct` needs a JSON object body to renumber.
    #[error("the fixture is not a JSON object, so --distinct cannot renumber it: {0}")]
    NotJson(String),
    /// None of the host's number fields is in the body.
    #[error("the fixture has none of {0:?}, so --distinct cannot renumber it")]
    NoNumber(Vec<String>),
    /// A number field holds something other than an integer.
    #[error("{pointer} is {found}, not an integer")]
    NotAnInteger {
        /// The JSON pointer of the field.
        pointer: String,
        /// The raw JSON found there.
        found: String,
    },
    /// The event or the secret cannot be sent as a header.
    #[error("the event or the secret is not a valid header value: {0}")]
    Header(#[from] http::header::InvalidHeaderValue),
    /// `--distinct 0`.
    #[error("--distinct must be at least 1")]
    NoVariants,
    /// The realistic mix cannot be made (its sizes, or a fixture lacking what it rewrites).
    #[error("the mix: {0}")]
    Mix(String),
}

/// One body exactly as it is sent, with every header but the delivery id.
#[derive(Debug, Clone)]
pub struct SignedBody {
    /// The body bytes (cheap to clone: reference counted).
    pub body: Bytes,
    /// Content type, event, fixed hook headers and the signature over `body`.
    pub headers: HeaderMap,
}

/// Everything a run sends, prepared: the body variants, cycled in order (or the realistic mix,
/// which builds each body from its sequence number), and the headers that receive a fresh
/// delivery id per request.
#[derive(Debug, Clone)]
pub struct Deliveries {
    /// At least one unless `mix` is set; variant `i` (from 0) carries number `i + 1` when there
    /// is more than one.
    pub variants: Vec<SignedBody>,
    /// Header names that get the request's delivery id.
    pub id_headers: Vec<HeaderName>,
    /// `--mix realistic`: every body is built by the mix instead of taken from `variants`.
    pub mix: Option<Arc<Mix>>,
}

impl Deliveries {
    /// Signs `fixture` as `host` would for `event` with `secret`. With `distinct == 1` the
    /// fixture is sent unchanged; with more, variant `k` has its number fields set to `k`
    /// (1..=distinct).
    pub fn prepare(
        host: Host,
        fixture: &[u8],
        event: &str,
        secret: &str,
        distinct: u32,
    ) -> Result<Self, BodyError> {
        let bodies: Vec<Vec<u8>> = match distinct {
            0 => return Err(BodyError::NoVariants),
            1 => vec![fixture.to_vec()],
            k => {
                let text =
                    std::str::from_utf8(fixture).map_err(|e| BodyError::NotJson(e.to_string()))?;
                (1..=u64::from(k))
                    .map(|n| renumber(text, host.number_pointers(), n).map(String::into_bytes))
                    .collect::<Result<_, _>>()?
            }
        };
        let variants = bodies
            .into_iter()
            .map(|body| {
                let headers = host.headers(event, secret, &body)?;
                Ok(SignedBody {
                    body: Bytes::from(body),
                    headers,
                })
            })
            .collect::<Result<_, BodyError>>()?;
        Ok(Self {
            variants,
            id_headers: id_headers(host),
            mix: None,
        })
    }

    /// The realistic mix's deliveries (GitHub's): body `n` is `mix.build(n)`.
    pub fn mixed(mix: Mix) -> Self {
        Self {
            variants: Vec::new(),
            id_headers: id_headers(Host::GitHub),
            mix: Some(Arc::new(mix)),
        }
    }

    /// The body of the run's `n`-th request (from 0): variant `n mod K`, or the mix's
    /// delivery `n`, built now.
    pub fn signed(&self, n: u64) -> Cow<'_, SignedBody> {
        match &self.mix {
            Some(mix) => Cow::Owned(mix.build(n)),
            None => Cow::Borrowed(&self.variants[(n % self.variants.len() as u64) as usize]),
        }
    }
}

/// `host`'s delivery id headers as header names.
fn id_headers(host: Host) -> Vec<HeaderName> {
    host.delivery_id_headers()
        .iter()
        .map(|name| HeaderName::from_static(name))
        .collect()
}

/// Reads a fixture. A relative path that does not exist from the current directory is tried
/// against the repository root this tool was built in, so the defaults work from anywhere.
pub fn read_fixture(path: &Path) -> Result<Vec<u8>, BodyError> {
    let candidates = if path.is_relative() && !path.exists() {
        vec![
            Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path),
            path.to_path_buf(),
        ]
    } else {
        vec![path.to_path_buf()]
    };
    let mut last = None;
    for candidate in candidates {
        match std::fs::read(&candidate) {
            Ok(bytes) => return Ok(bytes),
            Err(source) => {
                last = Some(BodyError::Read {
                    path: candidate,
                    source,
                })
            }
        }
    }
    Err(last.expect("there is at least one candidate path"))
}

/// `text` with the integer at each of `pointers` that is present replaced by `number`, and every
/// other byte unchanged. At least one pointer must be present.
pub fn renumber(text: &str, pointers: &[&str], number: u64) -> Result<String, BodyError> {
    let mut spans = Vec::new();
    for pointer in pointers {
        if let Some(span) = value_span(text, pointer)? {
            let found = &text[span.clone()];
            if found.parse::<i64>().is_err() {
                return Err(BodyError::NotAnInteger {
                    pointer: (*pointer).to_owned(),
                    found: found.to_owned(),
                });
            }
            spans.push(span);
        }
    }
    if spans.is_empty() {
        return Err(BodyError::NoNumber(
            pointers.iter().map(|p| (*p).to_owned()).collect(),
        ));
    }
    spans.sort_by_key(|span| span.start);
    let digits = number.to_string();
    let mut out = String::with_capacity(text.len() + spans.len() * digits.len());
    let mut at = 0;
    for span in spans {
        out.push_str(&text[at..span.start]);
        out.push_str(&digits);
        at = span.end;
    }
    out.push_str(&text[at..]);
    Ok(out)
}

/// The byte range in `text` of the JSON value at `pointer` (`/a/b`: object keys only), or
/// `None` when some key on the way is absent. `RawValue` borrows from `text`, so its position is
/// the value's position in the original bytes.
fn value_span(text: &str, pointer: &str) -> Result<Option<Range<usize>>, BodyError> {
    let mut current: &str = text;
    for (depth, key) in pointer.split('/').skip(1).enumerate() {
        let object: HashMap<String, &RawValue> = match serde_json::from_str(current) {
            Ok(object) => object,
            // Below the top, a value that is not an object just does not have the key.
            Err(_) if depth > 0 => return Ok(None),
            Err(e) => return Err(BodyError::NotJson(e.to_string())),
        };
        match object.get(key) {
            Some(raw) => current = raw.get(),
            None => return Ok(None),
        }
    }
    let start = current.as_ptr() as usize - text.as_ptr() as usize;
    Ok(Some(start..start + current.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "{\n  \"action\": \"opened\",\n  \"number\": 1,\n  \"pull_request\": {\n    \"id\": 7,\n    \"number\": 1,\n    \"title\": \"number: 1\"\n  }\n}\n";

    #[test]
    fn renumbering_changes_the_numbers_and_no_other_byte() {
        let out = renumber(BODY, &["/number", "/pull_request/number"], 42).expect("renumbered");
        assert_eq!(out, BODY.replace("\"number\": 1,", "\"number\": 42,"));
        // The title's "number: 1" and the id are untouched.
        assert!(out.contains("\"title\": \"number: 1\""));
        assert!(out.contains("\"id\": 7"));
    }

    #[test]
    fn an_absent_pointer_is_skipped_when_another_is_present() {
        let out = renumber(BODY, &["/missing/number", "/pull_request/number"], 3).expect("ok");
        assert!(out.contains("\"number\": 1,\n  \"pull_request\""));
        assert!(out.contains("\"number\": 3,"));
    }

    #[test]
    fn a_body_with_none_of_the_numbers_is_an_error() {
        assert!(matches!(
            renumber("{\"a\": 1}", &["/number"], 2),
            Err(BodyError::NoNumber(_))
        ));
    }

    #[test]
    fn a_number_field_that_is_not_an_integer_is_an_error() {
        assert!(matches!(
            renumber("{\"number\": \"1\"}", &["/number"], 2),
            Err(BodyError::NotAnInteger { .. })
        ));
    }

    #[test]
    fn a_body_that_is_not_json_is_an_error() {
        assert!(matches!(
            renumber("payload=x", &["/number"], 2),
            Err(BodyError::NotJson(_))
        ));
    }

    #[test]
    fn one_variant_is_the_fixture_unchanged_and_k_variants_are_numbered_one_to_k() {
        let one = Deliveries::prepare(Host::GitHub, BODY.as_bytes(), "pull_request", "s", 1)
            .expect("prepared");
        assert_eq!(one.variants.len(), 1);
        assert_eq!(one.variants[0].body, BODY.as_bytes());
        let three = Deliveries::prepare(Host::GitHub, BODY.as_bytes(), "pull_request", "s", 3)
            .expect("prepared");
        for (i, variant) in three.variants.iter().enumerate() {
            let value: serde_json::Value = serde_json::from_slice(&variant.body).expect("JSON");
            assert_eq!(value["pull_request"]["number"], i as u64 + 1);
        }
        assert_ne!(
            three.variants[0].headers["x-hub-signature-256"],
            three.variants[1].headers["x-hub-signature-256"],
            "each variant is signed over its own bytes"
        );
    }

    #[test]
    fn zero_variants_is_an_error() {
        assert!(matches!(
            Deliveries::prepare(Host::GitHub, BODY.as_bytes(), "pull_request", "s", 0),
            Err(BodyError::NoVariants)
        ));
    }
}
