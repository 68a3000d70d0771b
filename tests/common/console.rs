//! A plain HTTP client of the web console, as a browser without JavaScript is: it keeps the
//! session cookie, follows nothing by itself (tests look at each redirect), and sends forms with
//! the CSRF token of the last page it read.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use super::TestApp;

/// One answer of the console.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    /// Where a redirect points.
    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// Every `Set-Cookie` value.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }

    /// The value of the first hidden `csrf` field on the page.
    pub fn csrf(&self) -> String {
        field_value(&self.body, "name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no csrf field on the page: {}", self.body))
    }

    /// The text of the element with `id` (up to its first `<`), as rendered (escaped).
    pub fn text_of(&self, id: &str) -> Option<String> {
        let start = self.body.find(&format!("id=\"{id}\""))?;
        let rest = &self.body[start..];
        let open = rest.find('>')? + 1;
        let close = rest[open..].find('<')?;
        Some(rest[open..open + close].to_owned())
    }
}

/// The text after `prefix` up to the next `"`.
pub fn field_value(body: &str, prefix: &str) -> Option<String> {
    let start = body.find(prefix)? + prefix.len();
    let end = body[start..].find('"')?;
    Some(body[start..start + end].to_owned())
}

/// A console client with its own session.
pub struct ConsoleClient {
    pub base: String,
    http: reqwest::Client,
    /// The session cookie's value, once the console gave one.
    pub cookie: Option<String>,
    /// The CSRF token of the last page read that had one.
    pub csrf: Option<String>,
}

impl ConsoleClient {
    pub fn new(app: &TestApp) -> Self {
        Self::from_address(app, std::net::Ipv4Addr::LOCALHOST.into())
    }

    /// A client whose connections come from `local` (any 127.0.0.0/8 address is this
    /// machine: 127.0.0.2 is a second client).
    pub fn from_address(app: &TestApp, local: std::net::IpAddr) -> Self {
        let addr = app.console_addr.expect("the console is on");
        Self {
            base: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .local_address(local)
                .build()
                .expect("an HTTP client builds"),
            cookie: None,
            csrf: None,
        }
    }

    async fn keep(&mut self, response: reqwest::Response) -> Answer {
        {
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.text().await.expect("a body");
            let answer = Answer {
                status,
                headers,
                body,
            };
            for cookie in answer.set_cookies() {
                if let Some(value) = cookie
                    .split(';')
                    .next()
                    .and_then(|pair| pair.strip_prefix("hookgate_console="))
                {
                    self.cookie = (!value.is_empty()).then(|| value.to_owned());
                }
            }
            if let Some(token) = field_value(&answer.body, "name=\"csrf\" value=\"") {
                self.csrf = Some(token);
            }
            answer
        }
    }

    fn with_cookie(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.cookie {
            Some(c) => request.header("cookie", format!("hookgate_console={c}")),
            None => request,
        }
    }

    /// GET `path`.
    pub async fn get(&mut self, path: &str) -> Answer {
        let request = self.with_cookie(self.http.get(format!("{}{path}", self.base)));
        let response = request.send().await.expect("the console answers");
        self.keep(response).await
    }

    /// POST `form` to `path` as it is (no CSRF token added).
    pub async fn post_raw(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = self
            .with_cookie(self.http.post(format!("{}{path}", self.base)))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        let response = request.send().await.expect("the console answers");
        self.keep(response).await
    }

    /// POST `form` to `path` with the CSRF token of the last page read.
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let token = self
            .csrf
            .clone()
            .expect("a page with a form was read first");
        let mut all = vec![("csrf", token.as_str())];
        all.extend_from_slice(form);
        self.post_raw(path, &all).await
    }

    /// Logs in with `token` (the console must ask for one).
    pub async fn log_in(&mut self, token: &str) {
        let login = self.get("/login").await;
        assert_eq!(login.status, StatusCode::OK, "{}", login.body);
        let answer = self.post("/login", &[("token", token)]).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    }
}
