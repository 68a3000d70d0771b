//! Cross-site request forgery: every console form carries its session's token in a hidden field
//! `csrf`, and every POST is refused (403) unless its form holds that token. The session cookie
//! is `SameSite=Strict` as well; the token is what makes a forged form useless even to a
//! browser that sends the cookie anyway. Checked once, for every POST, by the session guard.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

/// The form field the token travels in.
pub const FIELD: &str = "csrf";

/// A fresh random value of 32 bytes, as text fit for a cookie or a form field (session ids and
/// CSRF tokens).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random number generator is available");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether the urlencoded form `body` carries `expected` in its `csrf` field (compared in
/// constant time). A form with no such field, or two, does not.
pub fn form_carries(body: &[u8], expected: &str) -> bool {
    let mut found = form_urlencoded::parse(body).filter(|(name, _)| name == FIELD);
    match (found.next(), found.next()) {
        (Some((_, value)), None) => bool::from(value.as_bytes().ct_eq(expected.as_bytes())),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_passes_only_with_its_sessions_token_once() {
        let token = random_token();
        assert!(form_carries(format!("a=1&csrf={token}").as_bytes(), &token));
        assert!(!form_carries(b"a=1", &token));
        assert!(!form_carries(b"csrf=", &token));
        assert!(!form_carries(format!("csrf={token}x").as_bytes(), &token));
        assert!(!form_carries(
            format!("csrf={token}&csrf={token}").as_bytes(),
            &token
        ));
        assert_ne!(random_token(), token);
    }
}
