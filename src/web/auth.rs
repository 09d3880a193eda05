//! Who may see the panel: a one-time login URL (printed by `cortex up` and
//! `cortex core`, like a notebook server) sets an HttpOnly, SameSite=Strict
//! session cookie. Every state-changing request must come from the panel's
//! own origin (CSRF). Every response carries a Content-Security-Policy that
//! allows only the panel's own scripts and styles.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;

use super::pages::LoginPage;

pub const COOKIE: &str = "cortex_session";

/// How long a panel login lasts; then the person logs in again.
const SESSION_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
                   frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The panel's logins: one-time tokens waiting to be used, and the cookies
/// they turned into. Only hashes are kept.
#[derive(Default)]
pub struct Panel {
    login_tokens: Mutex<HashSet<String>>,
    /// Cookie hashes and when they were issued.
    sessions: Mutex<HashMap<String, Instant>>,
    /// Core listens beyond loopback: every page says so.
    pub exposed: bool,
}

fn hash(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Panel {
    pub fn new(exposed: bool) -> Arc<Panel> {
        Arc::new(Panel { exposed, ..Panel::default() })
    }

    /// A fresh one-time login URL under `base`.
    pub fn login_url(&self, base: &str) -> String {
        let token = crate::core::new_secret("clg_");
        lock(&self.login_tokens).insert(hash(&token));
        format!("{base}/login?token={token}")
    }

    fn is_logged_in(&self, jar: &CookieJar) -> bool {
        let mut sessions = lock(&self.sessions);
        sessions.retain(|_, issued| issued.elapsed() < SESSION_LIFETIME);
        jar.get(COOKIE).is_some_and(|cookie| sessions.contains_key(&hash(cookie.value())))
    }
}

#[derive(Deserialize)]
pub(super) struct LoginQuery {
    token: Option<String>,
    /// Where to go once logged in: a path on this panel.
    next: Option<String>,
}

/// `next` if it is a path on this panel, never another site: a browser
/// drops tabs and newlines from a URL and reads `\\` as `/`, so a path with
/// any control character or backslash, or one that starts with `//`, is
/// not taken.
fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.chars().any(|c| c.is_control() || c == '\\' || c.is_whitespace()) =>
        {
            path
        }
        _ => "/",
    }
}

/// Spends a one-time token for a session cookie, then goes to the dashboard.
pub(super) async fn get_login(
    State(panel): State<Arc<Panel>>,
    jar: CookieJar,
    Query(query): Query<LoginQuery>,
) -> Response {
    // A pasted login link works as well as its token.
    let token = query.token.as_deref().and_then(|token| token.trim().rsplit("token=").next()?.split('&').next());
    let valid = token.is_some_and(|token| lock(&panel.login_tokens).remove(&hash(token)));
    let next = local_path(query.next.as_deref()).to_string();
    if !valid {
        let page = LoginPage { problem: query.token.is_some(), next };
        return (StatusCode::UNAUTHORIZED, page).into_response();
    }
    let secret = crate::core::new_secret("cps_");
    lock(&panel.sessions).insert(hash(&secret), Instant::now());
    let cookie = Cookie::build((COOKIE, secret))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/")
        .max_age(time::Duration::seconds(SESSION_LIFETIME.as_secs() as i64))
        .build();
    (jar.add(cookie), Redirect::to(&next)).into_response()
}

/// `POST /panel/login-links` with the admin bearer token: a fresh one-time
/// login URL (`cortex panel login`), for when the one printed at start is
/// spent or out of sight.
pub(super) async fn post_login_link(State(web): State<Arc<super::Web>>, request: Request) -> Response {
    let presented = crate::core::auth::bearer(request.headers());
    if !presented.is_some_and(|token| crate::core::auth::tokens_match(token, web.core.admin_token())) {
        return (StatusCode::UNAUTHORIZED, "a login link needs the admin token (Authorization: Bearer …)")
            .into_response();
    }
    let host = request.headers().get(header::HOST).and_then(|value| value.to_str().ok()).unwrap_or("127.0.0.1");
    let url = web.panel.login_url(&format!("http://{host}"));
    axum::Json(crate::protocol::LoginLink { url }).into_response()
}

/// Pages need a session cookie; without one, the login page and no data.
pub(super) async fn require_login(
    State(panel): State<Arc<Panel>>,
    jar: CookieJar,
    request: Request,
    next: Next,
) -> Response {
    if !panel.is_logged_in(&jar) {
        let next = request.uri().path_and_query().map_or("/", |path| path.as_str()).to_string();
        return (StatusCode::UNAUTHORIZED, LoginPage { problem: false, next }).into_response();
    }
    next.run(request).await
}

/// Every request must name this Core as its Host (a page reached through
/// a rebound DNS name is refused), and a state-changing one must come from
/// this panel: its Origin (or, for browsers that omit it, its Referer) must
/// be exactly `http://<host>`.
pub(super) async fn same_origin(State(web): State<Arc<super::Web>>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let host = headers.get(header::HOST).and_then(|value| value.to_str().ok()).unwrap_or_default().to_string();
    if let Some(bound) = web.core.bound_addr()
        && !crate::core::auth::host_allowed(bound, &host)
    {
        return (StatusCode::MISDIRECTED_REQUEST, "refused: this Core does not answer to that host name")
            .into_response();
    }
    // A bearer token is sent by programs, never attached by a browser to a
    // cross-site request; but a request that also carries the panel's
    // cookie is a browser's, and is checked.
    let cookie = CookieJar::from_headers(headers).get(COOKIE).is_some();
    let bearer = crate::core::auth::bearer(headers).is_some();
    if (bearer && !cookie) || matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(request).await;
    }
    let expected = format!("http://{host}");
    let origin = headers.get(header::ORIGIN).and_then(|value| value.to_str().ok()).map(str::to_string).or_else(|| {
        let referer = headers.get(header::REFERER)?.to_str().ok()?;
        let authority = referer.strip_prefix("http://")?.split(['/', '?', '#']).next()?;
        Some(format!("http://{authority}"))
    });
    if host.is_empty() || origin.as_deref() != Some(expected.as_str()) {
        return (StatusCode::FORBIDDEN, "refused: this request did not come from the panel's own pages")
            .into_response();
    }
    next.run(request).await
}

/// Security headers on every panel response.
pub(super) async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}
