//! What a receiver does with the deliveries it accepts.

use std::time::Duration;

use super::ValidationError;

/// A receiver's options. Every value here has passed its checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverOptions {
    /// Act only on repositories registered beforehand; events for others are ignored.
    pub ignore_unmatched: bool,
    /// The shortest time between two syncs of one repository caused by pushes (zero: none).
    pub min_sync_interval: Duration,
    /// Glob patterns on branch names; a push that touches only other branches is ignored.
    /// Empty: every branch.
    pub push_branch_filter: Vec<String>,
    /// Deliveries accepted per minute; zero: unlimited.
    pub rate_limit_per_minute: u32,
    /// How far a signed GitLab delivery's `webhook-timestamp` may be from now, either way (used
    /// only when the receiver has a signing token).
    pub signature_tolerance: Duration,
    /// Whether a GitLab receiver with a signing token takes only signed deliveries (carrying the
    /// `X-Gitlab-Token` too); when false, either the token or the signature is enough, and each
    /// one a delivery carries must match.
    pub require_signature: bool,
}

impl Default for ReceiverOptions {
    fn default() -> Self {
        Self {
            ignore_unmatched: false,
            min_sync_interval: Duration::ZERO,
            push_branch_filter: Vec::new(),
            rate_limit_per_minute: 0,
            signature_tolerance: Self::DEFAULT_SIGNATURE_TOLERANCE,
            require_signature: true,
        }
    }
}

impl ReceiverOptions {
    /// The most patterns one receiver may have.
    pub const MAX_PATTERNS: usize = 100;
    /// The longest pattern, in bytes.
    pub const MAX_PATTERN_LEN: usize = 255;
    /// The signature tolerance when none is given (what the Standard Webhooks libraries use).
    pub const DEFAULT_SIGNATURE_TOLERANCE: Duration = Duration::from_secs(5 * 60);
    /// The longest signature tolerance.
    pub const MAX_SIGNATURE_TOLERANCE: Duration = Duration::from_secs(24 * 3600);

    /// Checks `push_branch_filter`: each pattern non-blank, not too long, and a valid glob.
    pub fn parse_branch_filter(patterns: Vec<String>) -> Result<Vec<String>, ValidationError> {
        const FIELD: &str = "options.push_branch_filter";
        if patterns.len() > Self::MAX_PATTERNS {
            return Err(ValidationError::new(
                FIELD,
                format!(
                    "has {} patterns; at most {} are allowed",
                    patterns.len(),
                    Self::MAX_PATTERNS
                ),
            ));
        }
        patterns
            .into_iter()
            .map(|p| {
                let p = p.trim().to_owned();
                if p.is_empty() {
                    return Err(ValidationError::new(
                        FIELD,
                        "has an empty pattern; give globs such as \"main\" or \"release/*\"",
                    ));
                }
                if p.len() > Self::MAX_PATTERN_LEN {
                    return Err(ValidationError::new(
                        FIELD,
                        format!("has a pattern longer than {} bytes", Self::MAX_PATTERN_LEN),
                    ));
                }
                globset::Glob::new(&p).map_err(|e| {
                    ValidationError::new(FIELD, format!("has an invalid glob {p:?}: {e}"))
                })?;
                Ok(p)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_globs_are_kept_trimmed() {
        let got = ReceiverOptions::parse_branch_filter(vec![" main ".into(), "release/*".into()])
            .unwrap();
        assert_eq!(got, vec!["main", "release/*"]);
    }

    #[test]
    fn blank_and_malformed_globs_are_refused() {
        assert!(ReceiverOptions::parse_branch_filter(vec!["  ".into()]).is_err());
        let err = ReceiverOptions::parse_branch_filter(vec!["release/[".into()]).unwrap_err();
        assert!(err.message.contains("invalid glob"), "{err}");
    }
}
