//! The soak: sessions on the fake provider and on the real codex (against
//! the scripted model) through a real Core and a real node, with `kill -9`
//! of Core, of the node and of the agent (the fake's running command, the
//! codex app-server child) at seeded random points. After every kill, and at the end, the
//! invariants are checked: no event lost or duplicated (the store, Core's
//! index and the API agree, seqs gapless), no session left busy without a
//! live writer, `git fsck --strict` clean, and at the end `index rebuild`
//! gives the same answers. CI runs a short seeded soak;
//! `cargo xtask soak --turns N --seed S` runs a long one and records it.

use std::collections::BTreeMap;

use crate::support::cluster::{CoreProcess, Http, free_port, wait_node_status};
use crate::support::model::Model;
use crate::support::{Background, TestEnv, app_servers, assert_gapless, codex_binary, wait_for};

/// A small seeded generator (xorshift64*): the same seed, the same soak.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

/// A script of `turns` turns, each a message, a command that sleeps a
/// seeded while (so kills land mid-command), a file write and a message.
fn script(rng: &mut Rng, turns: usize) -> String {
    let mut text = String::new();
    for turn in 1..=turns {
        let sleep = rng.below(400);
        text.push_str(&format!(
            "[[turn]]\n[[turn.step]]\nmessage = \"turn {turn} begins\"\n\
             [[turn.step]]\ncommand = \"echo soak-step-{turn}; sleep 0.{sleep:03}; echo done-{turn}\"\n\
             [[turn.step]]\nwrite_file = {{ path = \"soak/{turn}.txt\", content = \"turn {turn}\\n\" }}\n\
             [[turn.step]]\nmessage = \"turn {turn} ends\"\n"
        ));
    }
    text
}

struct Soak<'a> {
    env: &'a TestEnv,
    port: u16,
    core: CoreProcess,
    node: Background,
    node_home: std::path::PathBuf,
    restarts: usize,
}

impl Soak<'_> {
    fn http(&self) -> Http {
        Http::new(&self.core)
    }

    fn restart_core(&mut self) {
        self.core.process.kill();
        self.core = self.env.start_core("core", &self.env.cortex_home, self.port);
        // The node finds the new Core by itself (capped backoff).
        wait_node_status(self.env, &self.core, "soak", "online");
    }

    fn restart_node(&mut self) {
        self.node.kill();
        self.restarts += 1;
        let log = format!("soak-node-{}.log", self.restarts);
        self.node = self.env.start_node(&self.core.url, &self.node_home, None, &log);
        wait_node_status(self.env, &self.core, "soak", "online");
    }

    fn sessions(&self) -> Vec<serde_json::Value> {
        let http = self.http();
        let (status, sessions) = http.get("/api/v1/sessions", Some(http.token()));
        assert_eq!(status, 200, "{sessions}");
        sessions.as_array().cloned().unwrap_or_default()
    }

    /// Waits until no session is busy (every turn ended, or was marked
    /// interrupted by a recovery); a session that stays busy has no writer.
    fn settle(&self) {
        let settled = wait_for(|| {
            let busy: Vec<_> = self
                .sessions()
                .into_iter()
                .filter(|session| {
                    ["starting", "running", "awaiting_approval"].contains(&session["state"].as_str().unwrap_or(""))
                })
                .collect();
            busy.is_empty().then_some(())
        });
        if settled.is_none() {
            panic!("sessions left busy with no live writer: {:#?}", self.sessions());
        }
    }

    fn events_from_core(&self, id: &str) -> serde_json::Value {
        let http = self.http();
        let (status, events) = http.get(&format!("/api/v1/sessions/{id}/events"), Some(http.token()));
        assert_eq!(status, 200, "{events}");
        events
    }

    /// Every session's events as the store has them: the refs read into a
    /// fresh index in another data dir, in-process.
    fn events_from_store(&self) -> BTreeMap<String, serde_json::Value> {
        let offline = self.env.path("soak-offline");
        let _ = std::fs::remove_dir_all(&offline);
        let data = offline.to_str().unwrap();
        let rebuilt = self.env.cortex_in(&self.env.repo, ["--data", data, "index", "rebuild"]);
        assert_eq!(rebuilt.code, 0, "{}", rebuilt.stderr);
        // Read straight from the rebuilt index: one process, not one per session.
        let index = rusqlite::Connection::open(offline.join("index.sqlite")).unwrap();
        let mut statement = index.prepare("SELECT session_id, body FROM events ORDER BY session_id, seq").unwrap();
        let rows = statement.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))).unwrap();
        let mut events: BTreeMap<String, serde_json::Value> = BTreeMap::new();
        for row in rows {
            let (id, body) = row.unwrap();
            let list = events.entry(id).or_insert_with(|| serde_json::json!([]));
            list.as_array_mut().unwrap().push(serde_json::from_str(&body).unwrap());
        }
        events
    }

    fn events_from_api(&self) -> BTreeMap<String, serde_json::Value> {
        self.sessions()
            .iter()
            .map(|session| {
                let id = session["id"].as_str().unwrap().to_string();
                let events = self.events_from_core(&id);
                (id, events)
            })
            .collect()
    }

    /// Every invariant, with the moment named for the failure message.
    fn check(&self, moment: &str) {
        self.settle();
        // The last flush of a settled session may trail by the flush timer.
        let agreed = wait_for(|| {
            let from_api = self.events_from_api();
            (self.events_from_store() == from_api).then_some(from_api)
        });
        let Some(from_api) = agreed else {
            let (store, api) = (self.events_from_store(), self.events_from_api());
            let differ: Vec<_> = api.keys().filter(|id| store.get(*id) != api.get(*id)).collect();
            panic!("{moment}: Core and the store disagree on {differ:?}\ncore: {api:#?}\nstore: {store:#?}");
        };
        for events in from_api.values() {
            assert_gapless(events);
        }
        let fsck = self.env.git_run(&self.env.repo, ["fsck", "--strict", "--no-progress"]);
        assert_eq!(fsck.code, 0, "{moment}: git fsck --strict: {}", fsck.stderr);
    }
}

// Long: the soak is one scenario (start, kill, restart, verify) told in order.
#[test]
fn soak_kills_at_random_points_lose_nothing() {
    let turns = setting("CORTEX_SOAK_TURNS", 12);
    let seed = setting("CORTEX_SOAK_SEED", 1);
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let env = TestEnv::new();
    // Codex sessions too, where codex is installed (CI installs it).
    let codex = codex_binary();
    let _model = codex.as_ref().map(|codex| {
        let model = Model::start();
        std::fs::create_dir_all(env.repo.join(".cortex")).unwrap();
        let config = model.config(codex, &env.path("codex-home"), "never");
        std::fs::write(env.repo.join(".cortex/config.toml"), config).unwrap();
        std::fs::write(env.repo.join(".gitignore"), "target/\n.cortex/\n").unwrap();
        model
    });
    let port = free_port();
    let core = env.start_core("core", &env.cortex_home, port);
    let token = env.enroll(&core, "soak");
    let node_home = env.path("soak-node");
    let node = env.start_node(&core.url, &node_home, Some(&token), "soak-node-0.log");
    wait_node_status(&env, &core, "soak", "online");
    let bound = env.cortex_at(&core, &env.repo, ["workspace", "bind", "--node", "soak", "--json"]);
    assert_eq!(bound.code, 0, "{}", bound.stderr);
    let workspace = bound.json()["id"].as_str().unwrap().to_string();
    let script = script(&mut rng, 64);
    let mut soak = Soak { env: &env, port, core, node, node_home, restarts: 0 };
    let mut kills: BTreeMap<&str, u64> = BTreeMap::new();
    let mut sessions: Vec<String> = Vec::new();
    let mut answers: BTreeMap<String, u64> = BTreeMap::new();
    let started = std::time::Instant::now();
    for turn in 0..turns {
        let http = soak.http();
        let id = format!("soak_{seed}_{turn}");
        let idle: Vec<String> = soak
            .sessions()
            .into_iter()
            .filter(|session| {
                ["idle", "interrupted", "stopped", "expired"].contains(&session["state"].as_str().unwrap_or(""))
            })
            .filter(|session| session["turns"].as_u64().unwrap_or(0) < 60)
            .filter_map(|session| session["id"].as_str().map(str::to_string))
            .collect();
        // Codex is asked to say something or to run a command (the scripted
        // model answers either); the fake plays its script.
        let prompt = match rng.below(2) {
            0 => format!("say soak {turn}"),
            _ => format!("run echo soak-step-{turn}"),
        };
        let command = if idle.is_empty() || sessions.len() < 3 || (sessions.len() < 30 && rng.below(5) == 0) {
            let provider = if codex.is_some() && rng.below(3) == 0 { "codex" } else { "fake" };
            serde_json::json!({ "v": 1, "id": id, "kind": "start_session", "payload": {
                "workspace_id": workspace, "provider": provider, "prompt": prompt, "script": script } })
        } else {
            let session = &idle[rng.below(idle.len() as u64) as usize];
            serde_json::json!({ "v": 1, "id": id, "kind": "send_turn", "payload": { "session_id": session, "prompt": prompt } })
        };
        let (status, answer) = http.post("/api/v1/commands", &command);
        let outcome = if status == 200 { "started" } else { answer["code"].as_str().unwrap_or("failed") };
        *answers.entry(outcome.to_string()).or_default() += 1;
        if status == 200
            && let Some(session) = answer["value"]["session_id"].as_str()
            && !sessions.iter().any(|known| known == session)
        {
            sessions.push(session.to_string());
        }
        if rng.below(10) < 3 {
            std::thread::sleep(std::time::Duration::from_millis(rng.below(450)));
            let victim = match rng.below(3) {
                0 => {
                    soak.restart_core();
                    "core"
                }
                1 => {
                    soak.restart_node();
                    "node"
                }
                _ => {
                    // The fake's running command, and any live codex child.
                    let _ = std::process::Command::new("pkill").args(["-9", "-f", "soak-step-"]).status();
                    for pid in app_servers(&env.path("codex-home")) {
                        let _ = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status();
                    }
                    "agent"
                }
            };
            *kills.entry(victim).or_default() += 1;
            soak.check(&format!("after turn {turn}, seed {seed}, kill -9 of the {victim}"));
        } else {
            soak.settle();
        }
    }
    soak.check(&format!("at the end, seed {seed}"));
    // A rebuild of Core's index gives the same answers.
    let before: Vec<_> =
        soak.sessions().iter().map(|session| soak.events_from_core(session["id"].as_str().unwrap())).collect();
    let rebuilt = env.cortex_at(&soak.core, env.root.path(), ["index", "rebuild"]);
    assert_eq!(rebuilt.code, 0, "{}", rebuilt.stderr);
    // Rebuilt from the nodes, Core's index must equal the store again. A
    // session whose store a node had not yet recovered (it recovers dead
    // writers' spools when it connects) may have grown meanwhile: counted.
    let mut last = String::new();
    let rebuilt_equal = wait_for(|| {
        let after: Vec<_> =
            soak.sessions().iter().map(|session| soak.events_from_core(session["id"].as_str().unwrap())).collect();
        let (store, api) = (soak.events_from_store(), soak.events_from_api());
        if after.len() == before.len() && store == api {
            return Some(after);
        }
        last = disagreement(before.len(), after.len(), &store, &api);
        None
    });
    let Some(after) = rebuilt_equal else {
        panic!("after index rebuild, Core and the store disagree (seed {seed}): {last}");
    };
    let late = before.iter().zip(&after).filter(|(before, after)| before != after).count();
    for (before, after) in before.iter().zip(&after) {
        let (before, after) = (before.as_array().unwrap(), after.as_array().unwrap());
        assert!(after.starts_with(before), "a rebuild lost or changed events (seed {seed})");
    }
    let events: usize = before.iter().map(|events| events.as_array().map_or(0, Vec::len)).sum();
    let turns_run: u64 = soak.sessions().iter().map(|session| session["turns"].as_u64().unwrap_or(0)).sum();
    let mut providers: BTreeMap<String, u64> = BTreeMap::new();
    for session in soak.sessions() {
        *providers.entry(session["provider"].as_str().unwrap_or("?").to_string()).or_default() +=
            session["turns"].as_u64().unwrap_or(0);
    }
    let started_count = answers.get("started").copied().unwrap_or(0);
    assert!(started_count * 2 >= turns, "most commands must start a turn: {answers:?}");
    let report = serde_json::json!({
        "commands": turns, "answers": answers, "turns_run": turns_run, "turns_by_provider": providers, "seed": seed, "sessions": before.len(),
        "events": events, "kills": kills, "seconds": started.elapsed().as_secs(), "late_recoveries": late,
    });
    if let Ok(path) = std::env::var("CORTEX_SOAK_REPORT") {
        std::fs::write(path, report.to_string()).unwrap();
    }
}

/// What differs between the store and Core after a rebuild: the session
/// counts, and per differing session the event counts and the first seq
/// that differs.
fn disagreement(
    before: usize,
    after: usize,
    store: &BTreeMap<String, serde_json::Value>,
    api: &BTreeMap<String, serde_json::Value>,
) -> String {
    let mut lines = vec![format!("sessions before {before}, after {after}; store {}, api {}", store.len(), api.len())];
    let ids: std::collections::BTreeSet<&String> = store.keys().chain(api.keys()).collect();
    for id in ids {
        let empty = Vec::new();
        let events = |side: &BTreeMap<String, serde_json::Value>| {
            side.get(id).and_then(|v| v.as_array()).unwrap_or(&empty).clone()
        };
        let (in_store, in_api) = (events(store), events(api));
        if in_store != in_api {
            let first =
                in_store.iter().zip(&in_api).position(|(a, b)| a != b).unwrap_or(in_store.len().min(in_api.len()));
            lines.push(format!(
                "{id}: store {} events, api {}, first difference at index {first}",
                in_store.len(),
                in_api.len()
            ));
        }
    }
    lines.join("; ")
}
