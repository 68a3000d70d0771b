//! What every console answer says to the browser about itself, and which requests the console
//! takes at all.
//!
//! Every answer carries a Content-Security-Policy with no inline script or style (so a value that
//! slipped through escaping still could not run), `nosniff`, no referrer, and, unless it is an
//! asset, `Cache-Control: no-store`: pages show delivery bodies and headers, which must not stay
//! in a shared cache. Without an admin token the console answers only requests addressed to a
//! loopback name, so a web page whose own name has been pointed at 127.0.0.1 (DNS rebinding)
//! cannot read it.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ConsoleState;
use super::html::PageError;

/// The Content-Security-Policy of every answer.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the security headers to every answer.
pub async fn secure(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Without an admin token, refuses (403) a request whose `Host` is not a loopback name.
pub async fn loopback_host(
    State(state): State<ConsoleState>,
    request: Request,
    next: Next,
) -> Response {
    if state.token.is_some() {
        return next.run(request).await;
    }
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if is_loopback_name(host) {
        next.run(request).await
    } else {
        PageError::new(
            StatusCode::FORBIDDEN,
            "without an admin token the console answers only requests addressed to localhost or a \
             loopback address (such as http://127.0.0.1:8081/): open it under that name, or set \
             --admin-token",
        )
        .into_response()
    }
}

/// Whether a `Host` header names this machine's loopback: `localhost`, `127.x.x.x` or `[::1]`,
/// with or without a port.
fn is_loopback_name(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        // `[::1]:8081`, `127.0.0.1:8081`, `localhost:8081`; a bare `[::1]` has its colons inside.
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) && !name.ends_with(':') => {
            name
        }
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_pass_and_others_do_not() {
        for ok in [
            "localhost",
            "localhost:8081",
            "127.0.0.1:8081",
            "127.3.4.5",
            "[::1]:8081",
            "[::1]",
        ] {
            assert!(is_loopback_name(ok), "{ok}");
        }
        for bad in [
            "",
            "evil.example",
            "evil.example:8081",
            "10.0.0.1:8081",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
        ] {
            assert!(!is_loopback_name(bad), "{bad}");
        }
    }
}
