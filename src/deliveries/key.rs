//! [`DeliveryKey`]: a code host's id for one delivery, by which a receiver's log keeps one
//! accepted delivery per key. A value of the type has passed its checks, so the log, the
//! duplicate lookup and the admin API never hold an empty or over-long key.

use crate::text::{Cap, bounded};

/// A host's delivery id (`X-GitHub-Delivery`, `X-Request-Id`, `Idempotency-Key`, ...): trimmed,
/// not empty, and at most `Cap::DELIVERY_KEY` bytes (`text::bounded`: a longer one is cut and
/// ends in `…`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeliveryKey(String);

impl DeliveryKey {
    /// The key a header value gives; `None` when it is empty or only white space.
    pub fn parse(raw: &str) -> Option<DeliveryKey> {
        let key = raw.trim();
        (!key.is_empty()).then(|| DeliveryKey(bounded(key.to_owned(), Cap::DELIVERY_KEY)))
    }

    /// The key as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<DeliveryKey> for String {
    fn from(key: DeliveryKey) -> String {
        key.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_trimmed_and_an_empty_one_is_none() {
        assert_eq!(DeliveryKey::parse("  abc-1 ").unwrap().as_str(), "abc-1");
        assert_eq!(DeliveryKey::parse(""), None);
        assert_eq!(DeliveryKey::parse(" \t "), None);
    }

    #[test]
    fn a_long_key_is_cut_to_its_cap() {
        let key = DeliveryKey::parse(&"k".repeat(1000)).unwrap();
        assert!(key.as_str().len() <= Cap::DELIVERY_KEY.bytes());
        assert!(key.as_str().ends_with('…'));
        assert_eq!(DeliveryKey::parse(key.as_str()), Some(key));
    }
}
