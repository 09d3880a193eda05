//! The web panel over HTTP: login, what unauthenticated requests get,
//! escaping of agent output, security headers, CSRF, static files.

use crate::support::TestEnv;
use crate::support::cluster::{CoreProcess, free_port, wait_state};

struct Browser {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    cookie: Option<String>,
}

struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Browser {
    fn new() -> Browser {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser {
            runtime: tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap(),
            client,
            cookie: None,
        }
    }

    fn request(&self, method: reqwest::Method, url: &str, headers: &[(&str, &str)]) -> Page {
        self.runtime.block_on(async {
            let mut request = self.client.request(method, url);
            if let Some(cookie) = &self.cookie {
                request = request.header("Cookie", cookie);
            }
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            Page { status, headers, body: response.text().await.unwrap() }
        })
    }

    fn get(&self, url: &str) -> Page {
        self.request(reqwest::Method::GET, url, &[])
    }
}

fn logged_in(env: &TestEnv, core: &CoreProcess) -> Browser {
    let mut browser = Browser::new();
    let login = browser.get(&core.login_url(env));
    assert!(matches!(login.status, 302 | 303), "{}", login.body);
    let cookie = login.headers.get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    browser.cookie = Some(cookie.split(';').next().unwrap().to_string());
    browser
}

#[test]
fn the_panel_needs_a_login_and_shows_nothing_before_it() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let run = env.cortex_at(&core, &env.repo, ["session", "start", "secret project plan", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);

    let stranger = Browser::new();
    let page = stranger.get(&format!("{}/", core.url));
    assert_eq!(page.status, 401);
    assert!(page.body.contains("login link") && !page.body.contains("secret project plan"), "{}", page.body);
    let forged = stranger.get(&format!("{}/login?token=clg_forged", core.url));
    assert_eq!(forged.status, 401);

    let url = core.login_url(&env);
    let browser = logged_in(&env, &core);
    let dashboard = browser.get(&format!("{}/", core.url));
    assert_eq!(dashboard.status, 200);
    assert!(dashboard.body.contains("secret project plan"), "{}", dashboard.body);
    let csp = dashboard.headers.get("content-security-policy").unwrap().to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    // The login link works once.
    assert_eq!(Browser::new().get(&url).status, 401);
}

#[test]
fn agent_output_is_escaped_and_posts_need_the_panels_origin() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let script = env.script("xss.toml", "[[step]]\nmessage = \"<script>alert('pwned')</script><b>bold</b>\"\n");
    let run = env.cortex_at(
        &core,
        &env.repo,
        ["session", "start", "render me", "--script", script.to_str().unwrap(), "--json"],
    );
    let id = run.json()["session_id"].as_str().unwrap().to_string();
    wait_state(&env, &core, &id, "idle");
    let browser = logged_in(&env, &core);
    let page = browser.get(&format!("{}/sessions/{id}", core.url));
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("<script>alert"), "agent output must not become markup");
    assert!(page.body.contains("&#60;script&#62;alert(&#39;pwned&#39;)&#60;/script&#62;"), "{}", page.body);
    assert!(page.body.contains("id=\"event-"), "every timeline block has a stable anchor");

    let forged =
        browser.request(reqwest::Method::POST, &format!("{}/", core.url), &[("Origin", "http://evil.example")]);
    assert_eq!(forged.status, 403);
    let no_origin = browser.request(reqwest::Method::POST, &format!("{}/", core.url), &[]);
    assert_eq!(no_origin.status, 403);
}

#[test]
fn vendored_htmx_is_cached_and_the_stylesheet_revalidates() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let browser = Browser::new();
    let htmx = browser.get(&format!("{}/static/vendor/htmx-2.0.11.min.js", core.url));
    assert_eq!(htmx.status, 200);
    assert!(htmx.headers.get("cache-control").unwrap().to_str().unwrap().contains("immutable"));
    let css = browser.get(&format!("{}/static/cortex.css", core.url));
    let etag = css.headers.get("etag").unwrap().to_str().unwrap().to_string();
    let again =
        browser.request(reqwest::Method::GET, &format!("{}/static/cortex.css", core.url), &[("If-None-Match", &etag)]);
    assert_eq!(again.status, 304);
    assert_eq!(browser.get(&format!("{}/static/nope.js", core.url)).status, 404);
}

#[test]
fn a_fresh_login_link_needs_the_admin_token() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let link = env.cortex_at(&core, env.root.path(), ["panel", "login"]);
    assert_eq!(link.code, 0, "{}", link.stderr);
    let url = link.stdout.trim();
    assert!(url.starts_with(&format!("{}/login?token=clg_", core.url)), "{url}");
    assert!(matches!(Browser::new().get(url).status, 302 | 303));
    let stranger = Browser::new().request(
        reqwest::Method::POST,
        &format!("{}/panel/login-links", core.url),
        &[("Origin", &core.url)],
    );
    assert_eq!(stranger.status, 401);
}
