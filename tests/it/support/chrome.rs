//! Real headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromedriver`), and a TCP proxy on 127.0.0.1 the tests can cut, to drop
//! a browser's live connections mid-session.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

use super::cluster::free_port;
use super::wait_for;

fn find(env_var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env_var).map(PathBuf::from).filter(|path| path.exists()) {
        return Some(path);
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|path| path.exists())
}

pub const TAB: &str = "\u{e004}";
pub const ENTER: &str = "\u{e007}";
pub const CONTROL: &str = "\u{e009}";
pub const HOME: &str = "\u{e011}";

/// A headless Chromium session; the driver is stopped when it is dropped.
pub struct Chrome {
    runtime: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    shots: PathBuf,
}

impl Chrome {
    /// Starts chromedriver and a browser, with JavaScript on or off. `None`
    /// (the reason printed) when Chromium is not installed; under `CI=true`
    /// that is a failure instead.
    pub fn start(javascript: bool) -> Option<Chrome> {
        let browser = find("CORTEX_CHROMIUM", &["chromium", "chromium-browser", "google-chrome"]);
        let driver = find("CORTEX_CHROMEDRIVER", &["chromedriver"]);
        let (Some(browser), Some(driver)) = (browser, driver) else {
            super::skip("no chromium/chromedriver (apt-get install chromium chromium-driver; .ci/run does)");
            return None;
        };
        let port = free_port();
        let driver = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let mut options = serde_json::json!({
            "binary": browser,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-quic", "--no-first-run", "--window-size=1280,900",
            ],
        });
        if !javascript {
            options["prefs"] = serde_json::json!({ "profile.managed_default_content_settings.javascript": 2 });
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), "chrome".into());
        capabilities.insert("goog:loggingPrefs".into(), serde_json::json!({ "browser": "ALL" }));
        capabilities.insert("goog:chromeOptions".into(), options);
        let url = format!("http://127.0.0.1:{port}");
        let client = runtime.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let mut builder = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
                match builder.capabilities(capabilities.clone()).connect(&url).await {
                    Ok(client) => break client,
                    Err(error) if Instant::now() > deadline => panic!("chromium did not start: {error}"),
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
        let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/panel-screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        Some(Chrome { runtime, client: Some(client), driver, shots })
    }

    fn client(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    pub fn goto(&self, url: &str) {
        self.runtime.block_on(self.client().goto(url)).unwrap_or_else(|error| panic!("goto {url}: {error}"));
    }

    pub fn url(&self) -> String {
        self.runtime.block_on(self.client().current_url()).unwrap().to_string()
    }

    pub fn refresh(&self) {
        self.runtime.block_on(self.client().refresh()).unwrap();
    }

    /// Waits up to 30 s for an element matching `css`.
    pub fn wait(&self, css: &str) -> fantoccini::elements::Element {
        let found =
            self.runtime.block_on(self.client().wait().at_most(Duration::from_secs(30)).for_element(Locator::Css(css)));
        found.unwrap_or_else(|error| {
            self.screenshot("failed");
            panic!("no `{css}` within 30 s: {error}\non {}:\n{}", self.url(), self.source())
        })
    }

    pub fn count(&self, css: &str) -> usize {
        self.runtime.block_on(self.client().find_all(Locator::Css(css))).map_or(0, |found| found.len())
    }

    /// Clicks the first element matching `css`, scrolled to the middle of
    /// the window first (as a person would: not under a sticky header).
    pub fn click(&self, css: &str) {
        let element = self.wait(css);
        let center = self.client().execute(
            "arguments[0].scrollIntoView({block: 'center', inline: 'nearest'})",
            vec![serde_json::to_value(&element).expect("an element as JSON")],
        );
        let _ = self.runtime.block_on(center);
        self.runtime.block_on(element.click()).unwrap_or_else(|error| panic!("click {css}: {error}"));
    }

    pub fn fill(&self, css: &str, text: &str) {
        let element = self.wait(css);
        self.runtime.block_on(element.send_keys(text)).unwrap_or_else(|error| panic!("type into {css}: {error}"));
    }

    /// The text of the first element matching `css` (found again if a live
    /// update replaced it meanwhile).
    /// Replaces what a field holds.
    pub fn replace(&self, css: &str, text: &str) {
        let element = self.wait(css);
        self.runtime.block_on(element.clear()).unwrap_or_else(|error| panic!("clear {css}: {error}"));
        self.runtime.block_on(element.send_keys(text)).unwrap_or_else(|error| panic!("type into {css}: {error}"));
    }

    pub fn text(&self, css: &str) -> String {
        for _ in 0..20 {
            let element = self.wait(css);
            if let Ok(text) = self.runtime.block_on(element.text()) {
                return text;
            }
        }
        panic!("`{css}` kept being replaced");
    }

    /// Every value of `attribute` on elements matching `css`, in page order.
    pub fn attrs(&self, css: &str, attribute: &str) -> Vec<String> {
        self.runtime.block_on(async {
            let mut values = Vec::new();
            for element in self.client().find_all(Locator::Css(css)).await.unwrap() {
                if let Some(value) = element.attr(attribute).await.unwrap() {
                    values.push(value);
                }
            }
            values
        })
    }

    pub fn source(&self) -> String {
        self.runtime.block_on(self.client().source()).unwrap()
    }

    /// Runs a script in the page; `Err` when the page cannot run scripts.
    pub fn script(&self, code: &str) -> Result<serde_json::Value, String> {
        self.runtime.block_on(self.client().execute(code, Vec::new())).map_err(|error| error.to_string())
    }

    /// Waits until `probe` holds, reloading nothing: the page must change by itself.
    pub fn until(&self, what: &str, mut probe: impl FnMut(&Chrome) -> bool) {
        if wait_for(|| probe(self).then_some(())).is_none() {
            self.screenshot("failed");
            panic!("timed out waiting for {what} on {}:\n{}", self.url(), self.source());
        }
    }

    /// Saves a screenshot as `target/panel-screenshots/<name>.png`.
    pub fn screenshot(&self, name: &str) {
        let png = self.runtime.block_on(self.client().screenshot()).unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    /// A screenshot for the documentation (`docs/images/NAME.png`), taken
    /// only with `CORTEX_UPDATE_DOCS=1`, so an ordinary run changes no
    /// tracked file.
    pub fn document(&self, name: &str) {
        if std::env::var("CORTEX_UPDATE_DOCS").as_deref() != Ok("1") {
            return;
        }
        let png = self.runtime.block_on(self.client().screenshot()).unwrap();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/images");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    pub fn resize(&self, width: u32, height: u32) {
        self.runtime.block_on(self.client().set_window_size(width, height)).unwrap();
    }

    /// Types `keys` into whatever has the focus (WebDriver key codes:
    /// `TAB`, `ENTER`, `CONTROL` below).
    pub fn keys(&self, keys: &str) {
        self.runtime.block_on(async {
            let focused = self.client().active_element().await.expect("something has the focus");
            focused.send_keys(keys).await.expect("the keys are typed");
        });
    }

    /// What has the focus: its tag, id, class and text, for assertions.
    pub fn focused(&self) -> String {
        let code = "const e = document.activeElement; return e.tagName.toLowerCase() + '#' + e.id + '.' + e.className + ' ' + (e.value || e.textContent || '').trim().slice(0, 40)";
        self.script(code).unwrap().as_str().unwrap().to_string()
    }

    /// The browser console's errors since the last call (CSP refusals,
    /// script errors, failed loads), as `level: message`.
    pub fn console_errors(&self) -> Vec<String> {
        let log = self.runtime.block_on(self.client().issue_cmd(BrowserLog)).expect("chromedriver reads the console");
        log.as_array()
            .into_iter()
            .flatten()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// axe-core's WCAG 2.1 A and AA violations on the page shown, one line
    /// each (rule, node count, the first nodes); axe is injected through
    /// WebDriver, never served by the panel. `None` (the reason printed)
    /// without axe-core; under `CI=true` that is a failure instead.
    pub fn axe(&self) -> Option<Vec<String>> {
        let Some(source) = axe_source() else {
            super::skip("no axe-core (npm install axe-core@4.11.0 and set CORTEX_AXE_JS; .ci/run does)");
            return None;
        };
        if self.script("return typeof axe").unwrap() != "object" {
            self.script(&format!("{source}\nreturn 1")).expect("axe-core loads");
        }
        let run = "return axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] }, \
                   resultTypes: ['violations'] }).then(result => result.violations.map(rule => rule.id + ' (' + \
                   rule.nodes.length + '): ' + rule.nodes.slice(0, 3).map(node => node.target.join(' ') + ' ' + \
                   (node.failureSummary || '').split('\\n').slice(1, 2).join('')).join(' | ')))";
        let found = self.script(run).expect("axe runs");
        Some(found.as_array().unwrap().iter().map(|line| line.as_str().unwrap().to_string()).collect())
    }
}

fn axe_source() -> Option<String> {
    let pinned = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tools/axe/node_modules/axe-core/axe.min.js");
    let path = std::env::var_os("CORTEX_AXE_JS").map(PathBuf::from).filter(|path| path.exists()).unwrap_or(pinned);
    std::fs::read_to_string(path).ok()
}

/// ChromeDriver's console log (`goog:loggingPrefs`), which W3C WebDriver lacks.
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.to_string()))
    }
}

impl Drop for Chrome {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.runtime.block_on(client.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Forwards 127.0.0.1:`port` to a target port; `cut` drops every open
/// connection at once, as a network failure would.
pub struct Proxy {
    pub port: u16,
    accepted: Arc<AtomicUsize>,
    open: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Proxy {
    pub fn start(target: u16) -> Proxy {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let open: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let (counter, tasks) = (accepted.clone(), open.clone());
        runtime.spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap().push(task);
            }
        });
        Proxy { port, accepted, open, _runtime: runtime }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Drops every open connection.
    pub fn cut(&self) {
        for task in self.open.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}
