//! The console's two assets, one style sheet and one script, built into the binary: the console
//! fetches nothing from anywhere else, and works on a machine with no internet. Their paths carry
//! the version, so a browser may keep them a while.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::html::PageError;

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// Where pages link the style sheet and the script.
pub const CSS_PATH: &str = concat!("/assets/console.css?v=", env!("CARGO_PKG_VERSION"));
pub const JS_PATH: &str = concat!("/assets/console.js?v=", env!("CARGO_PKG_VERSION"));

/// GET /assets/{name}.
pub async fn serve(Path(name): Path<String>) -> Response {
    let (body, content_type) = match name.as_str() {
        "console.css" => (CSS, "text/css; charset=utf-8"),
        "console.js" => (JS, "text/javascript; charset=utf-8"),
        _ => {
            return PageError::new(StatusCode::NOT_FOUND, format!("no asset named {name:?}"))
                .into_response();
        }
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}
