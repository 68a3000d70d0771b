//! A receiver's secret: what a code host signs deliveries with (or sends as a token).

use std::fmt;

use super::ValidationError;

/// A secret of 8 to 255 characters from `A-Z a-z 0-9 . _ ~ -`: the URL-safe alphabet, because a
/// generic trigger may carry the secret in the URL path. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct ReceiverSecret(String);

/// The characters a secret may contain.
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-";

impl ReceiverSecret {
    pub const MIN_LEN: usize = 8;
    pub const MAX_LEN: usize = 255;
    /// The length of a generated secret.
    pub const GENERATED_LEN: usize = 40;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let len = raw.chars().count();
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&len) {
            return Err(ValidationError::new(
                "secret",
                format!(
                    "must be {} to {} characters long (it is {len}); leave it empty to have one generated",
                    Self::MIN_LEN,
                    Self::MAX_LEN
                ),
            ));
        }
        if let Some(bad) = raw
            .chars()
            .find(|c| !c.is_ascii() || !ALPHABET.contains(&(*c as u8)))
        {
            return Err(ValidationError::new(
                "secret",
                format!(
                    "contains {bad:?}; only A-Z a-z 0-9 . _ ~ - are allowed (it may travel in a URL path)"
                ),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// A fresh secret of [`Self::GENERATED_LEN`] characters from the OS's CSPRNG.
    pub fn generate() -> Self {
        let mut out = String::with_capacity(Self::GENERATED_LEN);
        // Rejection sampling keeps every character equally likely: bytes at or above the largest
        // multiple of the alphabet's size (198 = 3 * 66) are dropped instead of wrapped.
        let limit = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
        while out.len() < Self::GENERATED_LEN {
            let mut buf = [0u8; 64];
            getrandom::fill(&mut buf).expect("the OS random number generator is available");
            for b in buf {
                if b < limit && out.len() < Self::GENERATED_LEN {
                    out.push(ALPHABET[(b as usize) % ALPHABET.len()] as char);
                }
            }
        }
        Self(out)
    }

    /// The secret itself, for verifying deliveries and for the one response that shows it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ReceiverSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReceiverSecret([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_of_8_and_255_allowed_characters_are_accepted() {
        assert!(ReceiverSecret::parse("abcDEF09").is_ok());
        assert!(ReceiverSecret::parse(&"a._~-".repeat(51)).is_ok());
    }

    #[test]
    fn too_short_and_too_long_secrets_are_refused() {
        assert!(ReceiverSecret::parse("1234567").is_err());
        assert!(ReceiverSecret::parse(&"a".repeat(256)).is_err());
    }

    #[test]
    fn characters_outside_the_url_safe_alphabet_are_refused() {
        for bad in [
            "with space1",
            "slash/slash",
            "percent%20",
            "plus+plus+",
            "ümlautsss",
        ] {
            let err = ReceiverSecret::parse(bad).unwrap_err();
            assert!(err.message.contains("only A-Z"), "{bad}: {err}");
        }
    }

    #[test]
    fn generated_secrets_are_40_valid_characters_and_differ() {
        let a = ReceiverSecret::generate();
        let b = ReceiverSecret::generate();
        assert_eq!(a.expose().len(), 40);
        assert!(ReceiverSecret::parse(a.expose()).is_ok());
        assert_ne!(a, b);
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let s = ReceiverSecret::parse("supersecretvalue").unwrap();
        assert!(!format!("{s:?}").contains("supersecret"));
    }
}
