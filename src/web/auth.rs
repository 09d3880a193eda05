//! Who may see the panel: a one-time login URL (printed by `cortex up` and
//! `cortex core`, like a notebook server) sets an HttpOnly, SameSite=Strict
//! session cookie. Every state-changing request must come from the panel's
//! own origin (CSRF). Every response carries a Content-Security-Policy that
//! allows only the panel's own scripts and styles. A login link can carry
//! a name (`cortex panel login --as NAME`): what that browser does
//! (comments, approvals, edits) is recorded as that name's, else as
//! `panel`'s.

use std::collections::HashMap;
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
    /// Token hashes and the name each logs in as.
    login_tokens: Mutex<HashMap<String, String>>,
    /// Cookie hashes, when they were issued, and whose they are.
    sessions: Mutex<HashMap<String, (Instant, String)>>,
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

    /// A fresh one-time login URL under `base`, logging in as `name`
    /// (checked with [`person_name`]).
    pub fn login_url(&self, base: &str, name: &str) -> String {
        let token = crate::core::new_secret("clg_");
        lock(&self.login_tokens).insert(hash(&token), name.to_string());
        format!("{base}/login?token={token}")
    }

    /// Whose browser this is, if it is logged in.
    fn viewer(&self, jar: &CookieJar) -> Option<Viewer> {
        let mut sessions = lock(&self.sessions);
        sessions.retain(|_, (issued, _)| issued.elapsed() < SESSION_LIFETIME);
        let cookie = jar.get(COOKIE)?;
        sessions.get(&hash(cookie.value())).map(|(_, name)| Viewer(name.clone()))
    }
}

/// Who is using the panel, as actions record it (`by`).
#[derive(Clone, Debug)]
pub struct Viewer(pub String);

/// The name a panel login records when none is given.
pub const DEFAULT_NAME: &str = "panel";

/// A name for `--as`: 1 to 64 letters, digits, spaces and `._@+-`, not
/// starting or ending with a space; it ends up in events and `Reviewed-by`
/// trailers, so nothing that could forge a line or a trailer.
pub fn person_name(name: &str) -> Result<&str, String> {
    let fits = !name.is_empty()
        && name.len() <= 64
        && name.trim() == name
        && name.chars().all(|c| c.is_alphanumeric() || " ._@+-".contains(c));
    if fits { Ok(name) } else { Err(format!("`{name}` is not a name: use 1 to 64 letters, digits, spaces or ._@+-")) }
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
    let name = token.and_then(|token| lock(&panel.login_tokens).remove(&hash(token)));
    let next = local_path(query.next.as_deref()).to_string();
    let Some(name) = name else {
        let page = LoginPage { problem: query.token.is_some(), next };
        return (StatusCode::UNAUTHORIZED, page).into_response();
    };
    let secret = crate::core::new_secret("cps_");
    lock(&panel.sessions).insert(hash(&secret), (Instant::now(), name));
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
pub(super) async fn post_login_link(
    State(web): State<Arc<super::Web>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let presented = crate::core::auth::bearer(&headers);
    if !presented.is_some_and(|token| crate::core::auth::tokens_match(token, web.core.admin_token())) {
        return (StatusCode::UNAUTHORIZED, "a login link needs the admin token (Authorization: Bearer …)")
            .into_response();
    }
    let asked: LoginLinkRequest = if body.iter().all(u8::is_ascii_whitespace) {
        LoginLinkRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(asked) => asked,
            Err(error) => {
                return (StatusCode::BAD_REQUEST, format!("not a login link request: {error}")).into_response();
            }
        }
    };
    let name = match person_name(asked.name.as_deref().unwrap_or(DEFAULT_NAME)) {
        Ok(name) => name.to_string(),
        Err(message) => return (StatusCode::UNPROCESSABLE_ENTITY, message).into_response(),
    };
    let host = headers.get(header::HOST).and_then(|value| value.to_str().ok()).unwrap_or("127.0.0.1");
    let url = web.panel.login_url(&format!("http://{host}"), &name);
    axum::Json(crate::protocol::LoginLink { url }).into_response()
}

#[derive(Default, Deserialize)]
struct LoginLinkRequest {
    /// Who the link logs in as.
    #[serde(default)]
    name: Option<String>,
}

/// `POST /logout`: forgets this browser's login.
pub(super) async fn post_logout(State(panel): State<Arc<Panel>>, jar: CookieJar) -> Response {
    if let Some(cookie) = jar.get(COOKIE) {
        lock(&panel.sessions).remove(&hash(cookie.value()));
    }
    let page = LoginPage { problem: false, next: "/".into() };
    (jar.remove(Cookie::build((COOKIE, "")).path("/").build()), page).into_response()
}

/// Pages need a session cookie; without one, the login page and no data.
/// Handlers find who is logged in as the request's [`Viewer`].
pub(super) async fn require_login(
    State(panel): State<Arc<Panel>>,
    jar: CookieJar,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(viewer) = panel.viewer(&jar) else {
        let next = request.uri().path_and_query().map_or("/", |path| path.as_str()).to_string();
        return (StatusCode::UNAUTHORIZED, LoginPage { problem: false, next }).into_response();
    };
    request.extensions_mut().insert(viewer);
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
