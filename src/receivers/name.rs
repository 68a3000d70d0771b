//! A receiver's name: what an admin calls it, unique in the registry.

use super::ValidationError;

/// A trimmed name of 1 to 100 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverName(String);

impl ReceiverName {
    /// The longest name, in characters (not bytes).
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(ValidationError::new(
                "name",
                "is required: give the receiver a name such as \"github-main\"",
            ));
        }
        let chars = trimmed.chars().count();
        if chars > Self::MAX_CHARS {
            return Err(ValidationError::new(
                "name",
                format!(
                    "is {chars} characters long; at most {} are allowed",
                    Self::MAX_CHARS
                ),
            ));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(ValidationError::new(
                "name",
                "must not contain control characters",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_trimmed() {
        assert_eq!(ReceiverName::parse("  ci  ").unwrap().as_str(), "ci");
    }

    #[test]
    fn an_empty_or_blank_name_is_refused() {
        assert!(ReceiverName::parse("").is_err());
        assert!(ReceiverName::parse(" \t ").is_err());
    }

    #[test]
    fn a_name_may_have_100_characters_but_not_101() {
        assert!(ReceiverName::parse(&"é".repeat(100)).is_ok());
        let err = ReceiverName::parse(&"a".repeat(101)).unwrap_err();
        assert!(err.to_string().contains("101 characters"), "{err}");
    }
}
