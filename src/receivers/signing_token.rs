//! A GitLab receiver's signing token: the Standard Webhooks secret GitLab signs deliveries with
//! (`whsec_` followed by the base64 of 32 random bytes). It is not a [`super::ReceiverSecret`]:
//! base64 has `+`, `/` and `=`, which the URL-safe rule of secrets refuses, and it is only ever
//! used as an HMAC key, never compared verbatim.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use super::ValidationError;

/// A signing token that has passed its checks; its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningToken(Zeroizing<String>);

impl SigningToken {
    /// What every signing token starts with.
    pub const PREFIX: &'static str = "whsec_";
    /// How many bytes the HMAC key (the base64 after the prefix) has.
    pub const KEY_LEN: usize = 32;

    /// Checks a given token: `whsec_` and the standard base64 (with padding) of 32 bytes.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        const FIELD: &str = "signing_token";
        let Some(encoded) = raw.strip_prefix(Self::PREFIX) else {
            return Err(ValidationError::new(
                FIELD,
                "must start with \"whsec_\" (copy it whole from GitLab's webhook settings), or leave it empty and set generate_signing_token to have one made",
            ));
        };
        match STANDARD.decode(encoded) {
            Ok(key) if key.len() == Self::KEY_LEN => Ok(Self(Zeroizing::new(raw.to_owned()))),
            Ok(key) => Err(ValidationError::new(
                FIELD,
                format!(
                    "must be \"whsec_\" followed by the base64 of {} bytes; this one holds {} bytes",
                    Self::KEY_LEN,
                    key.len()
                ),
            )),
            Err(_) => Err(ValidationError::new(
                FIELD,
                format!(
                    "must be \"whsec_\" followed by the standard base64 (A-Z a-z 0-9 + / and = padding) of {} bytes",
                    Self::KEY_LEN
                ),
            )),
        }
    }

    /// A fresh token of [`Self::KEY_LEN`] bytes from the OS's CSPRNG.
    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; Self::KEY_LEN]);
        getrandom::fill(key.as_mut()).expect("the OS random number generator is available");
        Self(Zeroizing::new(format!(
            "{}{}",
            Self::PREFIX,
            STANDARD.encode(key.as_ref())
        )))
    }

    /// The token itself, for sealing and for the one response that shows it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The HMAC key deliveries are signed with: the bytes the base64 after `whsec_` encodes.
    pub fn key(&self) -> Zeroizing<Vec<u8>> {
        let encoded = &self.0[Self::PREFIX.len()..];
        Zeroizing::new(
            STANDARD
                .decode(encoded)
                .expect("a parsed signing token is valid base64"),
        )
    }
}

impl fmt::Debug for SigningToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningToken([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_parses_and_holds_32_bytes() {
        let token = SigningToken::generate();
        assert!(token.expose().starts_with("whsec_"));
        let parsed = SigningToken::parse(token.expose()).expect("a generated token parses");
        assert_eq!(parsed.key().len(), 32);
        assert_ne!(SigningToken::generate(), token);
    }

    #[test]
    fn tokens_without_the_prefix_or_of_the_wrong_size_are_refused_with_the_reason() {
        let no_prefix = SigningToken::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err();
        assert!(no_prefix.message.contains("whsec_"), "{no_prefix}");
        let short = SigningToken::parse("whsec_c2hvcnQ=").unwrap_err();
        assert!(short.message.contains("holds 5 bytes"), "{short}");
        let not_base64 = SigningToken::parse("whsec_not base64!").unwrap_err();
        assert!(not_base64.message.contains("base64"), "{not_base64}");
    }

    #[test]
    fn debug_never_shows_the_token() {
        let token = SigningToken::generate();
        assert_eq!(format!("{token:?}"), "SigningToken([REDACTED])");
    }
}
