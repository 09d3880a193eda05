//! Core and node daemons as real child processes on 127.0.0.1, with fast
//! heartbeats so status changes show within a second or two.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use super::{Background, Run, TestEnv, wait_for};

/// Heartbeat, stale and offline windows the test cluster runs with.
pub const HEARTBEAT_MS: u64 = 200;
pub const STALE_AFTER_MS: u64 = 1000;
pub const OFFLINE_AFTER_MS: u64 = 2000;

/// A `cortex up` or `cortex core` process and where to reach it.
pub struct CoreProcess {
    pub process: Background,
    pub url: String,
    pub data: PathBuf,
    log_name: String,
}

impl CoreProcess {
    /// The one-time panel login URL `cortex up` printed.
    pub fn login_url(&self, env: &TestEnv) -> String {
        let out = std::fs::read_to_string(env.path(&format!("{}.out", self.log_name))).unwrap();
        out.lines()
            .find_map(|line| line.split(": ").nth(1).filter(|url| url.contains("/login?token=")))
            .unwrap()
            .to_string()
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.data.join("admin.token")).unwrap().trim().to_string()
    }
}

/// A free port on 127.0.0.1 (for a Core that must come back on the same one).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl TestEnv {
    /// Starts `cortex <mode>` (`up` or `core`) with its data in `data` and
    /// waits until it answers.
    pub fn start_core(&self, mode: &str, data: &Path, port: u16) -> CoreProcess {
        self.start_core_with(mode, data, port, |_| {})
    }

    /// [`Self::start_core`], with `configure` applied to the command first.
    pub fn start_core_with(
        &self,
        mode: &str,
        data: &Path,
        port: u16,
        configure: impl FnOnce(&mut std::process::Command),
    ) -> CoreProcess {
        let _ = std::fs::remove_file(data.join("core.url"));
        let log = std::fs::File::create(self.path(&format!("{mode}-{port}.log"))).unwrap();
        let mut command = self.cortex_command(self.root.path());
        configure(&mut command);
        let child = command
            .env("CORTEX_HOME", data)
            .args([
                mode,
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--heartbeat-ms",
                &HEARTBEAT_MS.to_string(),
                "--stale-after-ms",
                &STALE_AFTER_MS.to_string(),
                "--offline-after-ms",
                &OFFLINE_AFTER_MS.to_string(),
            ])
            .stdout(std::fs::File::create(self.path(&format!("{mode}-{port}.out"))).unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let process = Background(child);
        let url = wait_for(|| {
            let url = std::fs::read_to_string(data.join("core.url")).ok()?;
            url.ends_with('\n').then(|| url.trim().to_string())
        })
        .unwrap_or_else(|| panic!("{mode} did not start: {}", self.log(&format!("{mode}-{port}.log"))));
        let core = CoreProcess { process, url, data: data.to_path_buf(), log_name: format!("{mode}-{port}") };
        if mode == "up" {
            // Ready when its own node is.
            let online = wait_for(|| {
                let run = self.cortex_at(&core, self.root.path(), ["node", "list", "--json"]);
                (run.code == 0 && run.json().as_array()?.iter().any(|node| node["status"] == "online")).then_some(())
            });
            assert!(
                online.is_some(),
                "the embedded node never came online: {}",
                self.log(&format!("{mode}-{port}.log"))
            );
        }
        core
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    /// Runs `cortex` in `dir` against `core`.
    pub fn cortex_at<I, S>(&self, core: &CoreProcess, dir: &Path, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let output = self.cortex_command(dir).env("CORTEX_HOME", &core.data).args(args).output().expect("cortex runs");
        Run::from(output)
    }

    /// A one-time enrollment token from `core`.
    pub fn enroll(&self, core: &CoreProcess, name: &str) -> String {
        let run = self.cortex_at(core, self.root.path(), ["node", "enroll", "--name", name, "--json"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.json()["token"].as_str().unwrap().to_string()
    }

    /// `cortex node run` with its own data dir `data`, against `core_url`.
    pub fn start_node(&self, core_url: &str, data: &Path, token: Option<&str>, log: &str) -> Background {
        let log = std::fs::File::create(self.path(log)).unwrap();
        let mut command = self.cortex_command(self.root.path());
        command.env("CORTEX_HOME", data).env("CORTEX_LOG", "cortex=debug").args(["node", "run", "--core", core_url]);
        if let Some(token) = token {
            command.args(["--token", token]);
        }
        Background(command.stdout(Stdio::null()).stderr(log).spawn().unwrap())
    }

    /// A fresh repository with one commit, at `name`.
    pub fn repo(&self, name: &str) -> PathBuf {
        let repo = self.path(name);
        std::fs::create_dir_all(&repo).unwrap();
        self.git(&repo, ["init", "-q", "-b", "main"]);
        std::fs::write(repo.join("README.md"), format!("# {name}\n")).unwrap();
        self.git(&repo, ["add", "."]);
        self.git(&repo, ["commit", "-q", "-m", "initial"]);
        repo
    }
}

/// A blocking HTTP client for raw API calls.
pub struct Http {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Http {
    pub fn new(core: &CoreProcess) -> Http {
        Http {
            runtime: tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap(),
            client: reqwest::Client::new(),
            base: core.url.clone(),
            token: core.token(),
        }
    }

    pub fn post(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        self.runtime.block_on(async {
            let response = self
                .client
                .post(format!("{}{path}", self.base))
                .bearer_auth(&self.token)
                .json(body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json().await.unwrap_or(serde_json::Value::Null))
        })
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
        self.runtime.block_on(async {
            let mut request = self.client.get(format!("{}{path}", self.base));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json().await.unwrap_or(serde_json::Value::Null))
        })
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn block_on<F: std::future::Future>(&self, work: F) -> F::Output {
        self.runtime.block_on(work)
    }
}

pub fn state_of(env: &TestEnv, core: &CoreProcess, id: &str) -> serde_json::Value {
    let run = env.cortex_at(core, env.root.path(), ["session", "show", id, "--json"]);
    if run.code != 0 {
        return serde_json::Value::Null;
    }
    run.json()["session"].clone()
}

/// Waits until the session's state through Core is `state`.
pub fn wait_state(env: &TestEnv, core: &CoreProcess, id: &str, state: &str) -> serde_json::Value {
    wait_for(|| {
        let session = state_of(env, core, id);
        (session["state"] == state).then_some(session)
    })
    .unwrap_or_else(|| panic!("session {id} never became {state}: {}", state_of(env, core, id)))
}

pub fn wait_node_status(env: &TestEnv, core: &CoreProcess, name: &str, status: &str) {
    let seen = wait_for(|| {
        let run = env.cortex_at(core, env.root.path(), ["node", "list", "--json"]);
        let nodes = run.json();
        nodes.as_array()?.iter().any(|node| node["name"] == name && node["status"] == status).then_some(())
    });
    assert!(seen.is_some(), "node {name} never became {status}");
}

/// The next text frame from a WebSocket, as JSON (10 s at most), past the
/// `tools` frames Core sends unasked.
pub async fn next_json<S>(socket: &mut S) -> serde_json::Value
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(10), socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                let frame: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
                // Core's `tools` frame follows every welcome unasked; it answers nothing.
                if frame["type"] != "tools" {
                    return frame;
                }
            }
            Ok(Some(Ok(_))) => continue,
            other => panic!("no frame from Core: {other:?}"),
        }
    }
}

/// The answers to a session's approvals, in order: `(decision, by)`.
pub fn decisions(env: &TestEnv, core: &CoreProcess, id: &str) -> Vec<(String, String)> {
    let log = env.cortex_at(core, env.root.path(), ["session", "log", id, "--json"]).json();
    log.as_array()
        .unwrap()
        .iter()
        .filter(|event| event["kind"] == "approval_resolved")
        .map(|event| (event["decision"].as_str().unwrap().to_string(), event["by"].as_str().unwrap().to_string()))
        .collect()
}
