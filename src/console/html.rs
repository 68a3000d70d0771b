//! The parts every console page shares: the layout, notices, the error page (a `tonic::Status`
//! of the admin API becomes an HTTP status and the API's own message), badges for states, times,
//! copy buttons and the CSRF field. Everything rendered goes through maud, which escapes it.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::session::Ctx;
use crate::admin::proto;

/// A message shown at the top of the next page: what a POST did, or why it did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Whether it tells of a success.
    pub ok: bool,
    pub text: String,
    /// A link that goes with it: (text, path).
    pub link: Option<(String, String)>,
}

impl Notice {
    pub fn ok(text: impl Into<String>) -> Self {
        Self {
            ok: true,
            text: text.into(),
            link: None,
        }
    }

    pub fn error(text: impl Into<String>) -> Self {
        Self {
            ok: false,
            text: text.into(),
            link: None,
        }
    }

    pub fn with_link(mut self, text: impl Into<String>, path: impl Into<String>) -> Self {
        self.link = Some((text.into(), path.into()));
        self
    }
}

/// What a page is, besides its body.
pub struct Frame<'a> {
    pub ctx: Option<&'a Ctx>,
    pub title: &'a str,
    pub notices: Vec<Notice>,
    /// The live stream that tells this page its parts are out of date (`/live?...`).
    pub live: Option<String>,
}

impl<'a> Frame<'a> {
    pub fn new(ctx: &'a Ctx, title: &'a str) -> Self {
        Self {
            ctx: Some(ctx),
            title,
            notices: Vec::new(),
            live: None,
        }
    }

    pub fn notices(mut self, notices: Vec<Notice>) -> Self {
        self.notices = notices;
        self
    }

    pub fn live(mut self, url: impl Into<String>) -> Self {
        self.live = Some(url.into());
        self
    }

    /// The whole page around `body`.
    pub fn render(self, body: Markup) -> Html<String> {
        let markup = html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (self.title) " · hookgate" }
                    link rel="stylesheet" href=(super::assets::CSS_PATH);
                    script src=(super::assets::JS_PATH) defer {}
                }
                body data-live=[self.live.as_deref()] {
                    header.top {
                        a.brand href="/receivers" { "hookgate" }
                        nav {
                            a href="/receivers" { "Receivers" }
                            a href="/repositories" { "Repositories" }
                            a href="/sync-requests" { "Sync requests" }
                        }
                        @if let Some(ctx) = self.ctx.filter(|c| c.can_log_out) {
                            form.logout method="post" action="/logout" {
                                (csrf_field(ctx))
                                button.link type="submit" { "Log out" }
                            }
                        }
                    }
                    main {
                        @for notice in &self.notices {
                            p.notice.ok[notice.ok].error[!notice.ok] role="status" {
                                (notice.text)
                                @if let Some((text, path)) = &notice.link {
                                    " " a href=(path) { (text) }
                                }
                            }
                        }
                        (body)
                    }
                }
            }
        };
        Html(markup.into_string())
    }
}

/// A page with no navigation (the login form).
pub fn page_without_nav(title: &str, body: Markup) -> Html<String> {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · hookgate" }
                link rel="stylesheet" href=(super::assets::CSS_PATH);
            }
            body { main { (body) } }
        }
    };
    Html(markup.into_string())
}

/// A page that failed: an HTTP status and a message a person can act on (the admin API's own,
/// when it said no).
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub message: String,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

/// The HTTP status that says what a gRPC code says.
pub fn http_status(code: tonic::Code) -> StatusCode {
    use tonic::Code as C;
    match code {
        C::Ok => StatusCode::OK,
        C::InvalidArgument | C::OutOfRange => StatusCode::BAD_REQUEST,
        C::NotFound => StatusCode::NOT_FOUND,
        C::AlreadyExists | C::FailedPrecondition | C::Aborted => StatusCode::CONFLICT,
        C::Unauthenticated => StatusCode::UNAUTHORIZED,
        C::PermissionDenied => StatusCode::FORBIDDEN,
        C::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        C::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        C::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        C::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        C::Cancelled | C::Unknown | C::Internal | C::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<tonic::Status> for PageError {
    fn from(status: tonic::Status) -> Self {
        Self::new(http_status(status.code()), status.message())
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(err: crate::store::StoreError) -> Self {
        tonic::Status::from(err).into()
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error").to_owned();
        let body = html! {
            h1 { (self.status.as_u16()) " " (title) }
            p.notice.error role="alert" { (self.message) }
            p { a href="/receivers" { "Back to the receivers" } }
        };
        let frame = Frame {
            ctx: None,
            title: &title,
            notices: Vec::new(),
            live: None,
        };
        (self.status, frame.render(body)).into_response()
    }
}

/// Unknown paths.
pub async fn not_found(uri: axum::http::Uri) -> PageError {
    PageError::new(
        StatusCode::NOT_FOUND,
        format!("there is no console page at {}", uri.path()),
    )
}

/// The hidden field every form carries.
pub fn csrf_field(ctx: &Ctx) -> Markup {
    html! { input type="hidden" name=(super::csrf::FIELD) value=(ctx.csrf); }
}

/// A time as the console shows it (UTC), or a dash.
pub fn time(t: Option<&prost_types::Timestamp>) -> Markup {
    let Some(t) = t else {
        return html! { span.muted { "—" } };
    };
    let nanos = u32::try_from(t.nanos).unwrap_or(0);
    match chrono::DateTime::from_timestamp(t.seconds, nanos) {
        Some(at) => html! {
            time datetime=(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)) {
                (at.format("%Y-%m-%d %H:%M:%S UTC"))
            }
        },
        None => html! { span.muted { "—" } },
    }
}

/// A value with a copy button beside it (the button only with JavaScript).
pub fn copyable(id: &str, value: &str) -> Markup {
    html! {
        span.copyable {
            code #(id) { (value) }
            button.copy.js-only type="button" data-copy=(id) { "Copy" }
        }
    }
}

/// A coloured label: `tone` is one of ok, warn, bad, busy, muted.
pub fn badge(text: &str, tone: &str) -> Markup {
    html! { span class=(format!("badge {tone}")) { (text) } }
}

/// A delivery state's badge.
pub fn delivery_state(raw: i32) -> Markup {
    use proto::DeliveryState as S;
    let (text, tone) = match S::try_from(raw) {
        Ok(S::Pending) => ("PENDING", "busy"),
        Ok(S::Processing) => ("PROCESSING", "busy"),
        Ok(S::Processed) => ("PROCESSED", "ok"),
        Ok(S::Ignored) => ("IGNORED", "muted"),
        Ok(S::Failed) => ("FAILED", "bad"),
        Ok(S::Rejected) => ("REJECTED", "bad"),
        _ => ("UNKNOWN", "muted"),
    };
    badge(text, tone)
}

/// The name of a diagnosis and its tone.
pub fn diagnosis(raw: i32) -> (&'static str, &'static str) {
    use proto::Diagnosis as D;
    match D::try_from(raw) {
        Ok(D::Healthy) => ("HEALTHY", "ok"),
        Ok(D::NeverReceived) => ("NEVER_RECEIVED", "muted"),
        Ok(D::SignatureFailing) => ("SIGNATURE_FAILING", "bad"),
        Ok(D::Ignoring) => ("IGNORING", "warn"),
        Ok(D::Failing) => ("FAILING", "bad"),
        Ok(D::RateLimited) => ("RATE_LIMITED", "warn"),
        Ok(D::Silent) => ("SILENT", "warn"),
        _ => ("UNKNOWN", "muted"),
    }
}

/// A receiver's health badge with its diagnosis sentence.
pub fn health(health: Option<&proto::ReceiverHealth>) -> Markup {
    match health {
        Some(h) => {
            let (name, tone) = diagnosis(h.diagnosis);
            html! {
                span.health {
                    (badge(name, tone))
                    " "
                    span.diagnosis { (h.diagnosis_message) }
                }
            }
        }
        None => html! { span.muted { "health unknown" } },
    }
}

/// A code host kind as people name it.
pub fn kind(raw: i32) -> &'static str {
    use proto::CodeHostKind as K;
    match K::try_from(raw) {
        Ok(K::Github) => "GitHub",
        Ok(K::Gitlab) => "GitLab",
        Ok(K::BitbucketServer) => "Bitbucket Server",
        Ok(K::BitbucketCloud) => "Bitbucket Cloud",
        Ok(K::Gitea) => "Gitea / Forgejo",
        Ok(K::AzureDevops) => "Azure DevOps",
        Ok(K::Generic) => "Generic trigger",
        _ => "unknown",
    }
}

/// A changeset state's badge.
pub fn changeset_state(raw: i32) -> Markup {
    use proto::ChangesetState as S;
    let (text, tone) = match S::try_from(raw) {
        Ok(S::Open) => ("OPEN", "ok"),
        Ok(S::Draft) => ("DRAFT", "muted"),
        Ok(S::Closed) => ("CLOSED", "bad"),
        Ok(S::Merged) => ("MERGED", "merged"),
        _ => ("UNKNOWN", "muted"),
    };
    badge(text, tone)
}

/// A review state's badge.
pub fn review_state(raw: i32) -> Markup {
    use proto::ReviewState as S;
    let (text, tone) = match S::try_from(raw) {
        Ok(S::Pending) => ("review pending", "muted"),
        Ok(S::Approved) => ("approved", "ok"),
        Ok(S::ChangesRequested) => ("changes requested", "bad"),
        _ => ("no review", "muted"),
    };
    badge(text, tone)
}

/// A check state's badge.
pub fn check_state(raw: i32) -> Markup {
    use proto::CheckState as S;
    let (text, tone) = match S::try_from(raw) {
        Ok(S::Pending) => ("checks pending", "busy"),
        Ok(S::Passed) => ("checks passed", "ok"),
        Ok(S::Failed) => ("checks failed", "bad"),
        _ => ("no checks", "muted"),
    };
    badge(text, tone)
}

/// A sync request state's badge.
pub fn sync_state(raw: i32) -> Markup {
    use proto::SyncRequestState as S;
    let (text, tone) = match S::try_from(raw) {
        Ok(S::Pending) => ("PENDING", "busy"),
        Ok(S::Claimed) => ("CLAIMED", "busy"),
        Ok(S::Completed) => ("COMPLETED", "ok"),
        Ok(S::Failed) => ("FAILED", "bad"),
        _ => ("UNKNOWN", "muted"),
    };
    badge(text, tone)
}

/// A link to the next page of a listing (none on the last), and back to the first when this
/// is not it. `base` is the listing's path and query without the page token.
pub fn pager(base: &str, current_token: &str, next_token: &str) -> Markup {
    let join = if base.contains('?') { '&' } else { '?' };
    let next = format!(
        "{base}{join}{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("page_token", next_token)
            .finish()
    );
    html! {
        nav.pager {
            @if !current_token.is_empty() {
                a href=(base) { "← Newest" }
            }
            @if !next_token.is_empty() {
                a href=(next) { "Next page →" }
            }
        }
    }
}

/// A path with `pairs` as its query (empty values left out).
pub fn with_query(path: &str, pairs: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (name, value) in pairs {
        if !value.is_empty() {
            query.append_pair(name, value);
            any = true;
        }
    }
    if any {
        format!("{path}?{}", query.finish())
    } else {
        path.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_codes_map_to_http_statuses() {
        assert_eq!(http_status(tonic::Code::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(
            http_status(tonic::Code::InvalidArgument),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            http_status(tonic::Code::AlreadyExists),
            StatusCode::CONFLICT
        );
        assert_eq!(
            http_status(tonic::Code::Unavailable),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn values_are_escaped() {
        let shown = badge("<script>alert(1)</script>", "ok").into_string();
        assert!(!shown.contains("<script>"), "{shown}");
        assert!(shown.contains("&lt;script&gt;"), "{shown}");
    }

    #[test]
    fn queries_leave_out_empty_values() {
        assert_eq!(with_query("/x", &[("a", ""), ("b", "")]), "/x");
        assert_eq!(with_query("/x", &[("a", "1 2"), ("b", "")]), "/x?a=1+2");
    }
}
