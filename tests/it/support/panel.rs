//! A browser without a browser, for the panel over HTTP: a cookie kept
//! after login, forms posted from an origin, pages with their links.

use crate::support::TestEnv;
use crate::support::cluster::CoreProcess;

pub struct Browser {
    pub runtime: tokio::runtime::Runtime,
    pub client: reqwest::Client,
    pub cookie: Option<String>,
}

pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Browser {
    pub fn new() -> Browser {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser {
            runtime: tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap(),
            client,
            cookie: None,
        }
    }

    /// Follows a one-time login link and keeps the session cookie it sets.
    pub fn log_in(link: &str) -> Browser {
        let mut browser = Browser::new();
        let login = browser.get(link);
        assert!(matches!(login.status, 302 | 303), "{}", login.body);
        let cookie = login.headers.get("set-cookie").unwrap().to_str().unwrap().to_string();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
        browser.cookie = Some(cookie.split(';').next().unwrap().to_string());
        browser
    }

    pub fn request(&self, method: reqwest::Method, url: &str, headers: &[(&str, &str)]) -> Page {
        self.send(self.client.request(method, url), url, headers)
    }

    /// Sends `request` with this browser's cookie and `headers`.
    fn send(&self, mut request: reqwest::RequestBuilder, url: &str, headers: &[(&str, &str)]) -> Page {
        if let Some(cookie) = &self.cookie {
            request = request.header("Cookie", cookie);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.runtime.block_on(async {
            let response = request.send().await.unwrap_or_else(|error| panic!("{url}: {error:?}"));
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            Page { status, headers, body: response.text().await.unwrap() }
        })
    }

    /// POSTs `body` as JSON with `headers` (an API client, not a form).
    pub fn post_json(&self, url: &str, headers: &[(&str, &str)], body: &serde_json::Value) -> Page {
        self.send(self.client.post(url).json(body), url, headers)
    }

    pub fn get(&self, url: &str) -> Page {
        self.request(reqwest::Method::GET, url, &[])
    }

    /// Sends a form as a browser would, from `origin` (`None`: no Origin).
    pub fn post(&self, url: &str, form: &[(&str, &str)], origin: Option<&str>) -> Page {
        self.runtime.block_on(async {
            let mut request = self.client.post(url).form(form);
            if let Some(cookie) = &self.cookie {
                request = request.header("Cookie", cookie);
            }
            if let Some(origin) = origin {
                request = request.header("Origin", origin);
            }
            let response = request.send().await.unwrap_or_else(|error| panic!("{url}: {error:?}"));
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            Page { status, headers, body: response.text().await.unwrap() }
        })
    }
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers.get("location").map_or("", |value| value.to_str().unwrap())
    }

    /// Every local link on the page that starts with `prefix`.
    pub fn links(&self, prefix: &str) -> Vec<String> {
        let mut links: Vec<String> = self
            .body
            .split("href=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .filter(|href| href.starts_with(prefix))
            .map(str::to_string)
            .collect();
        links.dedup();
        links
    }
}

/// A browser logged in with the link `cortex up` printed.
pub fn logged_in(env: &TestEnv, core: &CoreProcess) -> Browser {
    Browser::log_in(&core.login_url(env))
}
