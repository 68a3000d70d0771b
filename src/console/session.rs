//! Who is using the console. Every browser gets a session: a random id in an `HttpOnly`,
//! `SameSite=Strict` cookie, and beside it, in this process's memory only, its CSRF token, its
//! expiry, the notices waiting for its next page, and whether it has logged in. With
//! `--admin-token` set a session must log in once with the token (compared in constant time);
//! without one (the console is then on loopback) every session is logged in from the start.
//!
//! Sessions live in memory: a restart, or another replica, asks for the token again. Their
//! number is bounded; the oldest go first. A client address that gives the wrong token
//! [`WRONG_TOKENS_PER_MINUTE`] times is not heard for the rest of that minute (429), so the
//! token cannot be guessed at the speed of the network.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use subtle::ConstantTimeEq;

use super::ConsoleState;
use super::csrf;
use super::html::{Notice, PageError, page_without_nav};

/// The cookie that carries the session id.
pub const COOKIE: &str = "hookgate_console";
/// How long a logged-in session lasts.
const LOGGED_IN_FOR: Duration = Duration::from_secs(12 * 3600);
/// How long a session that has not logged in lasts (the login form's).
const ANONYMOUS_FOR: Duration = Duration::from_secs(3600);
/// Sessions kept at most; past it the one closest to its end is dropped.
const MAX_SESSIONS: usize = 10_000;
/// The largest form the console reads.
const MAX_FORM_BYTES: usize = 64 * 1024;
/// Wrong admin tokens one client address may give the login form in a minute; past that its
/// logins are refused, unchecked, until the minute is over.
pub const WRONG_TOKENS_PER_MINUTE: u32 = 5;
/// Client addresses the login throttle remembers at most.
const MAX_THROTTLED_ADDRESSES: usize = 10_000;

/// Wrong tokens given to the login form, by client address: each address's count in the minute
/// that began with its first wrong token.
#[derive(Default)]
pub struct LoginThrottle {
    by_address: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl LoginThrottle {
    const WINDOW: Duration = Duration::from_secs(60);

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, (Instant, u32)>> {
        self.by_address.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long `address` must wait before a login is checked again; `None`: it may try now.
    fn wait(&self, address: IpAddr) -> Option<Duration> {
        let (start, wrong) = *self.lock().get(&address)?;
        let left = Self::WINDOW.checked_sub(start.elapsed())?;
        (wrong >= WRONG_TOKENS_PER_MINUTE).then_some(left)
    }

    /// Counts a wrong token from `address`.
    fn wrong(&self, address: IpAddr) {
        let now = Instant::now();
        let mut by_address = self.lock();
        if by_address.len() >= MAX_THROTTLED_ADDRESSES {
            by_address.retain(|_, (start, _)| now.duration_since(*start) < Self::WINDOW);
        }
        if by_address.len() >= MAX_THROTTLED_ADDRESSES && !by_address.contains_key(&address) {
            // Full of addresses all inside their minute: forget the oldest.
            if let Some(oldest) = by_address
                .iter()
                .min_by_key(|(_, (s, _))| *s)
                .map(|(a, _)| *a)
            {
                by_address.remove(&oldest);
            }
        }
        let entry = by_address.entry(address).or_insert((now, 0));
        if now.duration_since(entry.0) >= Self::WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }
}

/// One browser's session.
#[derive(Debug, Clone)]
struct Session {
    /// What every form of this session must carry.
    csrf: String,
    /// Logged in (or no login needed).
    logged_in: bool,
    /// When it ends.
    expires: Instant,
    /// Notices for the next page shown (after a POST's redirect).
    notices: Vec<Notice>,
}

/// Every live session, by id.
#[derive(Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding it leaves a map that is still whole.
        self.by_id.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes a session; returns its id.
    fn create(&self, logged_in: bool) -> String {
        let id = csrf::random_token();
        let now = Instant::now();
        let mut sessions = self.lock();
        if sessions.len() >= MAX_SESSIONS {
            sessions.retain(|_, s| s.expires > now);
        }
        if sessions.len() >= MAX_SESSIONS
            && let Some(first) = sessions
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(id, _)| id.clone())
        {
            sessions.remove(&first);
        }
        sessions.insert(
            id.clone(),
            Session {
                csrf: csrf::random_token(),
                logged_in,
                expires: now
                    + if logged_in {
                        LOGGED_IN_FOR
                    } else {
                        ANONYMOUS_FOR
                    },
                notices: Vec::new(),
            },
        );
        id
    }

    /// The live session `id`, if there is one.
    fn get(&self, id: &str) -> Option<Session> {
        let mut sessions = self.lock();
        match sessions.get(id) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                sessions.remove(id);
                None
            }
            None => None,
        }
    }

    /// Logs session `id` in: it is replaced by a new logged-in session (new id, new CSRF
    /// token), so an id known before the login is worth nothing after it. Returns the new id.
    fn log_in(&self, id: &str) -> String {
        self.lock().remove(id);
        self.create(true)
    }

    fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Keeps `notice` for the next page session `id` is shown.
    pub fn notify(&self, id: &str, notice: Notice) {
        if let Some(s) = self.lock().get_mut(id) {
            s.notices.push(notice);
        }
    }

    /// The notices waiting for session `id`, taken.
    fn take_notices(&self, id: &str) -> Vec<Notice> {
        self.lock()
            .get_mut(id)
            .map(|s| std::mem::take(&mut s.notices))
            .unwrap_or_default()
    }
}

/// The session of a request that passed the guard: what handlers and pages need of it.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The session id.
    pub id: String,
    /// The token every form of the page carries.
    pub csrf: String,
    /// Whether pages offer to log out (only with an admin token).
    pub can_log_out: bool,
}

impl Ctx {
    /// The notices waiting for this session (shown once, on the page that takes them).
    pub fn notices(&self, state: &ConsoleState) -> Vec<Notice> {
        state.sessions.take_notices(&self.id)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Ctx>().cloned().ok_or_else(|| {
            PageError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "this page was reached without a session",
            )
        })
    }
}

/// The session id the request's cookie names, if any.
fn cookie_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// The `Set-Cookie` value that gives a browser session `id`.
fn set_cookie(id: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/"))
        .expect("a session id is URL-safe base64")
}

/// The `Set-Cookie` value that makes a browser forget its session.
fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("hookgate_console=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

/// In front of every console path but the assets: finds (or makes) the request's session, sends
/// one that has not logged in to the login form, and refuses a POST whose form lacks the
/// session's CSRF token (403, nothing done).
pub async fn guard(State(state): State<ConsoleState>, request: Request, next: Next) -> Response {
    if request.uri().path().starts_with("/assets/") {
        return next.run(request).await;
    }
    let found =
        cookie_id(request.headers()).and_then(|id| state.sessions.get(&id).map(|s| (id, s)));
    let (id, session, fresh) = match found {
        Some((id, session)) => (id, session, false),
        None => {
            let id = state.sessions.create(state.token.is_none());
            let session = state
                .sessions
                .get(&id)
                .expect("a session just made is live");
            (id, session, true)
        }
    };
    let mut response = admit(&state, request, next, id.clone(), session).await;
    if fresh {
        response
            .headers_mut()
            .append(header::SET_COOKIE, set_cookie(&id));
    }
    response
}

/// The guard's decision for a request of session `id`.
async fn admit(
    state: &ConsoleState,
    request: Request,
    next: Next,
    id: String,
    session: Session,
) -> Response {
    let path = request.uri().path().to_owned();
    let is_post = request.method() == Method::POST;
    if !session.logged_in && path != "/login" {
        return if is_post {
            PageError::new(
                StatusCode::FORBIDDEN,
                "you are not logged in (or your session ended): log in with the admin token and try again",
            )
            .into_response()
        } else {
            Redirect::to("/login").into_response()
        };
    }
    let (parts, body) = request.into_parts();
    let body = if is_post {
        let bytes = match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
            Ok(bytes) => bytes,
            Err(_) => {
                return PageError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the form is larger than {MAX_FORM_BYTES} bytes"),
                )
                .into_response();
            }
        };
        if !csrf::form_carries(&bytes, &session.csrf) {
            return PageError::new(
                StatusCode::FORBIDDEN,
                "the form's CSRF token is missing or is not this session's: nothing was changed. \
                 Go back, reload the page and send the form again",
            )
            .into_response();
        }
        axum::body::Body::from(bytes)
    } else {
        body
    };
    let mut request = Request::from_parts(parts, body);
    request.extensions_mut().insert(Ctx {
        id,
        csrf: session.csrf,
        can_log_out: state.token.is_some(),
    });
    next.run(request).await
}

/// GET /login: the form that asks for the admin token.
pub async fn login_page(State(state): State<ConsoleState>, ctx: Ctx) -> Response {
    if state.token.is_none() || state.sessions.get(&ctx.id).is_some_and(|s| s.logged_in) {
        return Redirect::to("/receivers").into_response();
    }
    login_form(&ctx, StatusCode::OK, None)
}

fn login_form(ctx: &Ctx, status: StatusCode, error: Option<&str>) -> Response {
    let body = html! {
        section.login {
            h1 { "hookgate console" }
            p { "Give the admin token this service was started with (" code { "--admin-token" } ")." }
            @if let Some(error) = error {
                p.notice.error role="alert" { (error) }
            }
            form method="post" action="/login" {
                input type="hidden" name="csrf" value=(ctx.csrf);
                label for="token" { "Admin token" }
                input #token type="password" name="token" autocomplete="current-password" required autofocus;
                button type="submit" { "Log in" }
            }
        }
    };
    (status, page_without_nav("Log in", body)).into_response()
}

/// POST /login: checks the token; the right one logs the session in (a new session id in the
/// cookie) and goes on to the receivers.
pub async fn login(
    State(state): State<ConsoleState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    ctx: Ctx,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let Some(expected) = &state.token else {
        return Redirect::to("/receivers").into_response();
    };
    if let Some(wait) = state.logins.wait(client.ip()) {
        let seconds = wait.as_secs() + 1;
        tracing::warn!(client = %client.ip(), "console login refused: too many wrong tokens");
        let message = format!("Too many wrong tokens from this address: try again in {seconds} s.");
        let mut response = login_form(&ctx, StatusCode::TOO_MANY_REQUESTS, Some(&message));
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        return response;
    }
    let given = form.get("token").map(|t| t.trim()).unwrap_or_default();
    if given.is_empty() {
        return login_form(&ctx, StatusCode::BAD_REQUEST, Some("Give the admin token."));
    }
    if !bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        state.logins.wrong(client.ip());
        tracing::warn!(client = %client.ip(), "console login refused: wrong admin token");
        return login_form(
            &ctx,
            StatusCode::UNAUTHORIZED,
            Some(
                "That is not the admin token: check --admin-token (HOOKGATE_ADMIN_TOKEN) and try again.",
            ),
        );
    }
    let id = state.sessions.log_in(&ctx.id);
    tracing::info!("console login");
    let mut response = Redirect::to("/receivers").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(&id));
    response
}

/// POST /logout: ends the session.
pub async fn logout(State(state): State<ConsoleState>, ctx: Ctx) -> Response {
    state.sessions.remove(&ctx.id);
    let mut response = Redirect::to("/login").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, clear_cookie());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; hookgate_console=abc; b=2"),
        );
        assert_eq!(cookie_id(&headers).as_deref(), Some("abc"));
        assert_eq!(cookie_id(&HeaderMap::new()), None);
    }

    #[test]
    fn an_address_is_throttled_after_its_wrong_tokens_and_others_are_not() {
        let throttle = LoginThrottle::default();
        let (one, other): (IpAddr, IpAddr) =
            ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap());
        for _ in 0..WRONG_TOKENS_PER_MINUTE - 1 {
            throttle.wrong(one);
            assert_eq!(throttle.wait(one), None);
        }
        throttle.wrong(one);
        let wait = throttle.wait(one).expect("throttled");
        assert!(
            wait <= LoginThrottle::WINDOW && wait > Duration::from_secs(50),
            "{wait:?}"
        );
        assert_eq!(throttle.wait(other), None);
    }

    #[test]
    fn logging_in_replaces_the_session() {
        let sessions = Sessions::default();
        let before = sessions.create(false);
        let after = sessions.log_in(&before);
        assert!(sessions.get(&before).is_none());
        assert!(sessions.get(&after).is_some_and(|s| s.logged_in));
    }

    #[test]
    fn notices_are_shown_once() {
        let sessions = Sessions::default();
        let id = sessions.create(true);
        sessions.notify(&id, Notice::ok("done"));
        assert_eq!(sessions.take_notices(&id).len(), 1);
        assert!(sessions.take_notices(&id).is_empty());
    }
}
