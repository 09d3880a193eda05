//! The panel in real headless Chromium: start a `fake` session from a
//! workspace page, watch it live, approve, interrupt, reload, review the
//! diff; live updates survive a dropped connection with no duplicated and
//! no missing block; and with JavaScript off, plain forms still do the job.
//! Screenshots of the main screens land in `target/panel-screenshots/`.

use std::collections::BTreeSet;

use crate::support::chrome::{Chrome, Proxy};
use crate::support::cluster::{CoreProcess, free_port, state_of, wait_state};
use crate::support::{TestEnv, wait_for};

/// Binds the test repository and returns its workspace id.
pub(crate) fn bind(env: &TestEnv, core: &CoreProcess) -> String {
    let run = env.cortex_at(core, &env.repo, ["workspace", "bind", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.json()["id"].as_str().unwrap().to_string()
}

/// Opens the login link in the browser, going on to `next`.
pub(crate) fn log_in(chrome: &Chrome, env: &TestEnv, core: &CoreProcess, base: &str, next: &str) {
    let link = core.login_url(env).replace(&core.url, base);
    chrome.goto(&format!("{link}&next={next}"));
}

/// The seqs of the events the page shows, in page order.
fn page_seqs(chrome: &Chrome) -> Vec<u64> {
    chrome.attrs("#timeline [data-seq]", "data-seq").iter().map(|seq| seq.parse().unwrap()).collect()
}

/// The seqs a session's timeline must show: every event but streamed deltas.
fn api_seqs(env: &TestEnv, core: &CoreProcess, id: &str) -> Vec<u64> {
    let log = env.cortex_at(core, &env.repo, ["session", "log", id, "--json"]);
    log.json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["kind"] != "assistant_delta")
        .map(|event| event["seq"].as_u64().unwrap())
        .collect()
}

/// The session's state as the state box, the breadcrumb and the tree show
/// it; they must agree.
fn shown_state(chrome: &Chrome, id: &str) -> String {
    let code = format!(
        "return [document.getElementById('state'), document.getElementById('crumb-state'), \
         document.querySelector(\"[data-state-of='{id}']\")].map(e => e ? e.textContent + ' ' + e.className : 'missing')"
    );
    let shown = chrome.script(&code).unwrap();
    let shown: Vec<&str> = shown.as_array().unwrap().iter().map(|value| value.as_str().unwrap()).collect();
    assert!(shown.iter().all(|one| *one == shown[0]), "state box, breadcrumb and tree disagree: {shown:?}");
    shown[0].split(' ').next().unwrap().to_string()
}

/// Starts a session from the workspace page's form; returns its id.
pub(crate) fn start_from_workspace_page(chrome: &Chrome, prompt: &str, script: &str) -> String {
    chrome.wait("form#start");
    chrome.fill("form#start textarea[name=prompt]", prompt);
    chrome.click("form#start details summary");
    chrome.fill("form#start textarea[name=script]", script);
    chrome.click("form#start button");
    chrome.wait("#timeline");
    let url = chrome.url();
    url.rsplit("/sessions/").next().unwrap().trim_end_matches('/').to_string()
}

#[test]
fn a_session_is_started_watched_approved_interrupted_and_reviewed_in_chromium() {
    let Some(chrome) = Chrome::start(true) else { return };
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let workspace = bind(&env, &core);
    log_in(&chrome, &env, &core, &core.url, &format!("/workspaces/{workspace}"));
    chrome.screenshot("workspace");
    let script = "[[step]]\nmessage = \"<img src=x onerror=alert(1)> hello\"\n\
                  [[step]]\napproval = \"May I write notes.txt?\"\n\
                  [[step]]\nwrite_file = { path = \"notes.txt\", content = \"approved\\n\" }\n\
                  [[step]]\nmessage = \"wrote notes.txt\"\n\
                  [[step]]\nsleep_ms = 60000\n\
                  [[step]]\nmessage = \"never reached\"\n";
    let id = start_from_workspace_page(&chrome, "write the notes", script);
    assert!(id.starts_with("ses_"), "{id}");
    assert_eq!(chrome.script("return typeof htmx").unwrap(), serde_json::json!("object"));
    // A marker that a reload would wipe: everything below arrives live.
    chrome.script("window.cortexMarker = 1; return 1").unwrap();

    chrome.wait("#approval");
    assert_eq!(shown_state(&chrome, &id), "awaiting_approval");
    assert!(chrome.text("#approval").contains("May I write notes.txt?"));
    let xss = chrome.text("#timeline .assistant_message");
    assert!(xss.contains("<img src=x onerror=alert(1)> hello"), "{xss}");
    assert_eq!(chrome.count("#timeline img"), 0, "agent output must render as text");
    chrome.screenshot("session-awaiting-approval");

    chrome.click("#approval button[value=approve]");
    chrome.until("the approved write to show", |chrome| chrome.source().contains("wrote notes.txt"));
    chrome.until("the running state", |chrome| chrome.text("#state") == "running");
    assert_eq!(shown_state(&chrome, &id), "running");
    chrome.click("#controls form[action$='/interrupt'] button");
    chrome.until("the interrupted turn to end", |chrome| chrome.text("#state") == "idle");
    assert_eq!(shown_state(&chrome, &id), "idle");
    assert!(chrome.text("#turns").contains("interrupted"), "the turns pane follows: {}", chrome.text("#turns"));
    assert_eq!(chrome.script("return window.cortexMarker").unwrap(), serde_json::json!(1), "the page never reloaded");
    assert!(!chrome.source().contains("never reached"));
    wait_state(&env, &core, &id, "idle");
    chrome.until("every event on the page", |chrome| page_seqs(chrome) == api_seqs(&env, &core, &id));
    let live = page_seqs(&chrome);
    chrome.screenshot("session-live");

    chrome.refresh();
    chrome.wait("#timeline");
    assert_eq!(page_seqs(&chrome), live, "a reload shows the same timeline");
    assert_eq!(shown_state(&chrome, &id), "idle");
    assert!(chrome.source().contains("approved"), "the approval stays on record");

    chrome.click(&format!("a[href='/sessions/{id}/turns/1/diff']"));
    chrome.wait("nav.filetree");
    assert!(chrome.text("nav.filetree").contains("notes.txt"));
    assert!(chrome.text("details.file").contains("approved"));
    chrome.screenshot("diff-unified");
    chrome.click("nav.views a[href$='view=split']");
    chrome.wait("table.code.split");
    chrome.screenshot("diff-split");

    chrome.goto(&format!("{}/", core.url));
    chrome.wait(".counts");
    chrome.screenshot("dashboard");
    chrome.resize(375, 800);
    chrome.goto(&format!("{}/sessions/{id}", core.url));
    chrome.wait("#timeline");
    let overflow = chrome.script("return document.documentElement.scrollWidth > window.innerWidth").unwrap();
    assert_eq!(overflow, serde_json::json!(false), "the session page fits 375 px");
    chrome.screenshot("session-375px");
    chrome.goto(&format!("{}/sessions/{id}/turns/1/diff?view=split", core.url));
    chrome.wait("table.code.split");
    let one_column =
        "return [...document.querySelectorAll('table.code.split td.none')].map(td => getComputedStyle(td).display)";
    let shown = chrome.script(one_column).unwrap();
    assert!(
        !shown.as_array().unwrap().is_empty() && shown.as_array().unwrap().iter().all(|display| display == "none"),
        "side by side is one column on a phone: {shown}"
    );
    assert!(chrome.text("table.code.split").contains("approved"));
    chrome.screenshot("diff-split-375px");
}

#[test]
fn a_dropped_live_connection_resumes_with_no_duplicated_and_no_missing_block() {
    let Some(chrome) = Chrome::start(true) else { return };
    let env = TestEnv::new();
    let port = free_port();
    let core = env.start_core("up", &env.cortex_home, port);
    let proxy = Proxy::start(port);
    let workspace = bind(&env, &core);
    log_in(&chrome, &env, &core, &proxy.url(), &format!("/workspaces/{workspace}"));
    let mut script = String::new();
    for step in 1..=40 {
        script.push_str(&format!("[[step]]\nmessage = \"step {step}\"\n[[step]]\nsleep_ms = 100\n"));
    }
    let id = start_from_workspace_page(&chrome, "count slowly", &script);
    chrome.until("a few live blocks", |chrome| chrome.source().contains("step 5"));
    let before = proxy.accepted();
    proxy.cut();
    chrome.until("the stream to reconnect", |_| proxy.accepted() > before);
    wait_state(&env, &core, &id, "idle");
    let expected = api_seqs(&env, &core, &id);
    chrome.until("the whole session on the page", |chrome| page_seqs(chrome).last() == expected.last());
    let seen = page_seqs(&chrome);
    let unique: BTreeSet<u64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no block twice: {seen:?}");
    assert_eq!(seen, expected, "no block missing, in order");
    assert!(chrome.source().contains("step 40"));
}

#[test]
fn without_javascript_plain_forms_start_send_stop_and_show_the_diff() {
    let Some(chrome) = Chrome::start(false) else { return };
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let workspace = bind(&env, &core);
    log_in(&chrome, &env, &core, &core.url, &format!("/workspaces/{workspace}"));
    // The page's own scripts never ran (WebDriver's still can, to look).
    assert_eq!(chrome.script("return typeof htmx").unwrap(), serde_json::json!("undefined"), "scripts are off");
    let script = "[[turn]]\n[[turn.step]]\nwrite_file = { path = \"one.txt\", content = \"first\\n\" }\n\
                  [[turn]]\n[[turn.step]]\nwrite_file = { path = \"two.txt\", content = \"second\\n\" }\n\
                  [[turn.step]]\nmessage = \"both written\"\n";
    let id = start_from_workspace_page(&chrome, "write one", script);
    wait_state(&env, &core, &id, "idle");
    chrome.refresh();
    chrome.fill(".composer textarea[name=prompt]", "now write two");
    chrome.click(".composer button");
    chrome.wait("#timeline");
    assert!(chrome.url().ends_with(&format!("/sessions/{id}")), "{}", chrome.url());
    wait_for(|| {
        let session = state_of(&env, &core, &id);
        (session["turns"] == 2 && session["state"] == "idle").then_some(())
    })
    .expect("the second turn ends");
    chrome.refresh();
    assert!(chrome.source().contains("both written"));
    chrome.click("#controls form[action$='/stop'] button");
    chrome.wait("#timeline");
    wait_state(&env, &core, &id, "stopped");
    chrome.refresh();
    assert_eq!(chrome.text("#state"), "stopped");
    chrome.click(&format!("a[href='/sessions/{id}/diff']"));
    let files = chrome.text("nav.filetree");
    assert!(files.contains("one.txt") && files.contains("two.txt"), "{files}");
    chrome.screenshot("diff-without-javascript");
}

#[test]
fn a_person_edits_a_file_in_the_inspector_and_a_change_behind_its_back_is_a_conflict() {
    let Some(chrome) = Chrome::start(true) else { return };
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let script = env.script(
        "two.toml",
        "[[turn]]\n[[turn.step]]\nwrite_file = { path = \"docs/notes.txt\", content = \"from the agent\\n\" }\n\
         [[turn]]\n[[turn.step]]\nmessage = \"looked again\"\n",
    );
    let run =
        env.cortex_at(&core, &env.repo, ["session", "start", "notes", "--script", script.to_str().unwrap(), "--json"]);
    let id = run.json()["session_id"].as_str().unwrap().to_string();
    wait_state(&env, &core, &id, "idle");
    log_in(&chrome, &env, &core, &core.url, &format!("/sessions/{id}"));

    chrome.click("p.links a[href*='/files?']");
    chrome.click("table.entries a[href*='path=docs']");
    chrome.click("table.entries a[href*='notes.txt']");
    assert!(chrome.text("table.source").contains("from the agent"));
    chrome.screenshot("inspector-file");
    chrome.click("a[href*='edit=1']");
    chrome.replace("form.editor textarea", "from the agent\nfixed by hand\n");
    chrome.screenshot("inspector-editor");
    chrome.click("form.editor button");
    chrome.until("the saved file", |chrome| chrome.source().contains("Saved, and recorded in the session"));
    assert!(chrome.text("table.source").contains("fixed by hand"));
    assert_eq!(std::fs::read_to_string(env.repo.join("docs/notes.txt")).unwrap(), "from the agent\nfixed by hand\n");

    let next = env.cortex_at(&core, &env.repo, ["session", "send", &id, "look again", "--json"]);
    assert_eq!(next.code, 0, "{}", next.stderr);
    wait_state(&env, &core, &id, "idle");
    chrome.goto(&format!("{}/sessions/{id}/diff", core.url));
    assert!(chrome.text("details.file").contains("fixed by hand"), "the edit is in the session's diff");
    chrome.goto(&format!("{}/sessions/{id}", core.url));
    chrome.until("the intervention on the timeline", |chrome| chrome.source().contains("panel: edit"));

    chrome.goto(&format!("{}/sessions/{id}", core.url));
    chrome.click("p.links a[href*='/files?']");
    chrome.click("table.entries a[href*='path=docs']");
    chrome.click("table.entries a[href*='notes.txt']");
    chrome.click("a[href*='edit=1']");
    std::fs::write(env.repo.join("docs/notes.txt"), "changed on disk meanwhile\n").unwrap();
    chrome.replace("form.editor textarea", "my stale edit\n");
    chrome.click("form.editor button");
    chrome.wait("#conflict");
    assert!(chrome.text("#conflict").contains("changed on disk"), "{}", chrome.text("#conflict"));
    assert_eq!(
        std::fs::read_to_string(env.repo.join("docs/notes.txt")).unwrap(),
        "changed on disk meanwhile\n",
        "a conflict never overwrites"
    );
    assert!(chrome.source().contains("my stale edit"), "the person's text is kept");
    assert!(chrome.text("table.source").contains("changed on disk meanwhile"), "and the current file shown");
    chrome.screenshot("inspector-conflict");
}

#[test]
fn a_terminal_runs_in_the_workspace_reattaches_after_a_reload_and_keeps_history() {
    let Some(chrome) = Chrome::start(true) else { return };
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let workspace = bind(&env, &core);
    log_in(&chrome, &env, &core, &core.url, &format!("/workspaces/{workspace}"));
    chrome.click("form[action$='/terminals'] button");
    chrome.wait(".xterm-rows");
    chrome.until("the terminal to connect", |chrome| chrome.text("#terminal-state") == "connected");
    chrome.fill(".xterm-helper-textarea", "echo hello && pwd\n");
    let repo = env.repo.canonicalize().unwrap().display().to_string();
    let screen = |chrome: &Chrome| chrome.text(".xterm-rows");
    chrome.until("the command's output", |chrome| {
        let text = screen(chrome);
        text.lines().any(|line| line.trim() == "hello") && text.contains(&repo)
    });
    chrome.screenshot("terminal");

    chrome.refresh();
    chrome.wait(".xterm-rows");
    chrome.until("the scrollback after a reload", |chrome| {
        let text = screen(chrome);
        text.lines().any(|line| line.trim() == "hello") && text.contains(&repo)
    });
    assert!(chrome.text("ol.history").contains("echo hello && pwd"), "the command is in the history");
    chrome.fill(".xterm-helper-textarea", "echo again\n");
    chrome.until("the reattached terminal to take keys", |chrome| {
        screen(chrome).lines().any(|line| line.trim() == "again")
    });
}

#[test]
fn a_check_run_from_the_panel_streams_its_output_and_becomes_evidence() {
    let Some(chrome) = Chrome::start(true) else { return };
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    std::fs::create_dir_all(env.repo.join(".cortex")).unwrap();
    std::fs::write(
        env.repo.join(".cortex/config.toml"),
        "[[checks]]\nname = \"slow\"\nwhen = \"manual\"\ncommand = \"echo first-$((1+1)); sleep 3; echo second-$((2+2))\"\n",
    )
    .unwrap();
    let script = env.script("quick.toml", "[[step]]\nmessage = \"done\"\n");
    let run = env.cortex_at(
        &core,
        &env.repo,
        ["session", "start", "checked", "--script", script.to_str().unwrap(), "--json"],
    );
    let id = run.json()["session_id"].as_str().unwrap().to_string();
    wait_state(&env, &core, &id, "idle");
    log_in(&chrome, &env, &core, &core.url, &format!("/sessions/{id}"));
    chrome.click("#controls form[action$='/checks'] button");
    // The command line names neither output: `first-2` and `second-4` come from the shell.
    chrome.until("the first line, live", |chrome| chrome.source().contains("first-2"));
    assert!(!chrome.source().contains("second-4"), "output shows while the check still runs");
    chrome.until("the check's result", |chrome| chrome.source().contains("slow passed"));
    assert!(chrome.source().contains("second-4"));
    chrome.goto(&format!("{}/sessions/{id}/evidence", core.url));
    let evidence = chrome.text("details.check");
    assert!(evidence.contains("slow") && evidence.contains("passed"), "{evidence}");
}

#[test]
fn the_dashboard_and_the_tree_keep_up_without_a_reload() {
    let Some(chrome) = Chrome::start(true) else { return };
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    log_in(&chrome, &env, &core, &core.url, "/");
    chrome.wait("#dashboard");
    chrome.script("window.cortexMarker = 1; return 1").unwrap();
    let run = env.cortex_at(&core, &env.repo, ["session", "start", "appears by itself", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    chrome.until("the new session in the tree and the dashboard", |chrome| {
        chrome.text("nav.tree").contains("appears by itself") && chrome.text("#dashboard").contains("appears by itself")
    });
    assert_eq!(chrome.script("return window.cortexMarker").unwrap(), serde_json::json!(1), "the page never reloaded");
}

#[test]
fn live_command_output_ends_as_one_block_identical_to_the_reloaded_page() {
    let Some(chrome) = Chrome::start(true) else { return };
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let workspace = bind(&env, &core);
    log_in(&chrome, &env, &core, &core.url, &format!("/workspaces/{workspace}"));
    let script = "[[step]]\nmessage = \"counting\"\n[[step]]\nsleep_ms = 500\n\
                  [[step]]\ncommand = \"for i in $(seq 1 200); do echo \\\"line $i <b>\\\"; sleep 0.005; done\"\n\
                  [[step]]\nmessage = \"counted\"\n";
    let id = start_from_workspace_page(&chrome, "count to 200", script);
    chrome.script("window.cortexMarker = 1; return 1").unwrap();
    chrome.until("the command to finish live", |chrome| {
        chrome.count("#timeline .command_started .exit:not([hidden])") == 1 && chrome.source().contains("counted")
    });
    wait_state(&env, &core, &id, "idle");
    chrome.until("every event on the page", |chrome| page_seqs(chrome) == api_seqs(&env, &core, &id));
    assert_eq!(chrome.script("return window.cortexMarker").unwrap(), serde_json::json!(1), "it all came live");
    let block = "return document.querySelector('#timeline .command_started').outerHTML";
    let live = chrome.script(block).unwrap();
    let live_blocks = chrome.count("#timeline > article");
    assert_eq!(chrome.count("#timeline .command_started"), 1);
    assert_eq!(chrome.count("#timeline .command_output"), 0, "no block per output line");
    let output = chrome
        .script("return document.querySelector('#timeline .command_started pre[id^=output-]').textContent")
        .unwrap();
    let output = output.as_str().unwrap();
    assert_eq!(output.lines().count(), 200, "{output}");
    assert!(output.contains("line 200 <b>"), "{output}");

    chrome.until("the turn's header to say how it ended", |chrome| chrome.text("#turn-head-1").contains("completed"));
    let head = chrome.text("#turn-head-1");
    assert!(head.contains("Turn 1") && head.contains("count to 200"), "{head}");
    assert_eq!(chrome.count("#timeline > header.turn-head"), 1, "one header for the one turn");
    chrome.refresh();
    chrome.wait("#timeline");
    assert_eq!(chrome.script(block).unwrap(), live, "the same markup after a reload");
    assert_eq!(chrome.text("#turn-head-1"), head, "the header kept live reads as after a reload");
    assert_eq!(chrome.count("#timeline > article"), live_blocks);
}

/// Whether the timeline's last block is on screen.
fn tail_in_view(chrome: &Chrome) -> bool {
    let code = "var r = document.getElementById('timeline').lastElementChild.getBoundingClientRect(); \
                return r.top < window.innerHeight && r.bottom > 0";
    chrome.script(code).unwrap() == serde_json::json!(true)
}

#[test]
fn a_running_command_shows_its_clock_and_the_page_follows_the_tail_until_scrolled_up() {
    let Some(chrome) = Chrome::start(true) else { return };
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let workspace = bind(&env, &core);
    chrome.resize(1000, 600);
    log_in(&chrome, &env, &core, &core.url, &format!("/workspaces/{workspace}"));
    let lines = (1..=40).map(|n| format!("[[turn.step]]\nmessage = \"step {n}\"\n")).collect::<String>();
    let script = format!(
        "[[turn]]\n{lines}[[turn.step]]\ncommand = \"sleep 3; echo slept\"\n\
         [[turn]]\n{lines}"
    );
    let id = start_from_workspace_page(&chrome, "a long turn", &script);
    assert_eq!(chrome.script("return document.getElementById('follow').checked").unwrap(), serde_json::json!(true));
    chrome.until("the clock of the running command", |chrome| {
        chrome.count("#timeline .command_started .clock:not([hidden])") == 1
            && chrome.text("#timeline .command_started .clock").starts_with("running")
    });
    assert!(tail_in_view(&chrome), "following, the newest event is on screen");
    chrome.until("the command's end", |chrome| chrome.count("#timeline .command_started .exit:not([hidden])") == 1);
    assert_eq!(chrome.count("#timeline .command_started .clock:not([hidden])"), 0, "no clock once it ended");
    assert_eq!(chrome.text("#timeline .command_started .clock"), "");
    wait_state(&env, &core, &id, "idle");

    // Scrolling up stops following: the next turn's events do not pull the page down.
    chrome.script("document.activeElement.blur(); return 1").unwrap();
    chrome.keys(crate::support::chrome::HOME);
    assert_eq!(chrome.script("return document.getElementById('follow').checked").unwrap(), serde_json::json!(false));
    let sent = env.cortex_at(&core, &env.repo, ["session", "send", &id, "again", "--json"]);
    assert_eq!(sent.code, 0, "{}", sent.stderr);
    chrome
        .until("turn 2 on the page", |chrome| chrome.count("#turn-head-2") == 1 && chrome.source().contains("step 40"));
    assert!(!tail_in_view(&chrome), "not following, the page stays where the reader is");
    chrome.refresh();
    chrome.wait("#timeline");
    assert_eq!(
        chrome.script("return document.getElementById('follow').checked").unwrap(),
        serde_json::json!(false),
        "the choice is kept"
    );
}
