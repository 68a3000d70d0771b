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

/// The secret rules over generated text: exactly the strings of 8 to 255 characters from the
/// alphabet are accepted, each refusal says why, and a generated secret always passes.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    /// The README's alphabet, written out again rather than read from `ALPHABET`, so that a
    /// change to the constant shows here.
    fn in_alphabet(c: char) -> bool {
        c.is_ascii_alphanumeric() || "._~-".contains(c)
    }

    proptest! {
        #[test]
        fn every_string_of_8_to_255_allowed_characters_is_accepted_as_it_is(
            raw in "[A-Za-z0-9._~-]{8,255}",
        ) {
            let secret = ReceiverSecret::parse(&raw).expect("an allowed secret");
            prop_assert_eq!(secret.expose(), raw.as_str());
        }

        #[test]
        fn a_length_outside_8_to_255_is_refused_naming_the_length(
            raw in prop_oneof!["[A-Za-z0-9._~-]{0,7}", "[A-Za-z0-9._~-]{256,400}"],
        ) {
            let err = ReceiverSecret::parse(&raw).expect_err("a secret of the wrong length");
            prop_assert_eq!(err.field, "secret");
            let expected = format!("must be 8 to 255 characters long (it is {})", raw.len());
            prop_assert!(err.message.starts_with(&expected), "{}", err.message);
        }

        #[test]
        fn one_character_outside_the_alphabet_is_refused_naming_it(
            raw in "[A-Za-z0-9._~-]{7,254}",
            bad in any::<char>().prop_filter("outside the alphabet", |c| !in_alphabet(*c)),
            at in any::<prop::sample::Index>(),
        ) {
            let mut chars: Vec<char> = raw.chars().collect();
            chars.insert(at.index(chars.len() + 1), bad);
            let raw: String = chars.into_iter().collect();
            let err = ReceiverSecret::parse(&raw).expect_err("a character outside the alphabet");
            prop_assert_eq!(err.field, "secret");
            prop_assert!(err.message.starts_with(&format!("contains {bad:?}; only A-Z a-z 0-9 . _ ~ -")), "{}", err.message);
        }

        #[test]
        fn any_text_is_accepted_exactly_when_its_length_and_characters_are_allowed(
            raw in prop_oneof![
                any::<String>(),
                "\\PC{0,300}",
                "[A-Za-z0-9._~-]{0,300}",
                // Mostly allowed, with at most one character that is not.
                "[A-Za-z0-9._~-]{0,150}[^A-Za-z0-9._~-]?[A-Za-z0-9._~-]{0,150}",
            ],
        ) {
            let allowed = (8..=255).contains(&raw.chars().count()) && raw.chars().all(in_alphabet);
            prop_assert_eq!(ReceiverSecret::parse(&raw).is_ok(), allowed, "{:?}", raw);
        }
    }

    #[test]
    fn every_generated_secret_is_40_allowed_characters_and_together_they_use_the_whole_alphabet() {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..2_000 {
            let secret = ReceiverSecret::generate();
            assert_eq!(
                secret.expose().chars().count(),
                ReceiverSecret::GENERATED_LEN
            );
            assert!(
                ReceiverSecret::parse(secret.expose()).is_ok(),
                "{}",
                secret.expose()
            );
            seen.extend(secret.expose().bytes());
        }
        // 80,000 uniform draws from 66 characters miss one with a probability below 1e-500.
        let alphabet: Vec<u8> = (0u8..128).filter(|b| in_alphabet(char::from(*b))).collect();
        assert_eq!(alphabet.len(), 66);
        assert_eq!(seen.into_iter().collect::<Vec<u8>>(), alphabet);
    }
}
