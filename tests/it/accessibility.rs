//! Every screen of the panel in real Chromium, at 1400 and 390 px: axe-core
//! finds no WCAG 2.1 A/AA violation, the console has no error (a CSP
//! refusal, a script error), and nothing is wider than the window. Also the
//! keyboard: a skip link first, approving with the keyboard alone keeps the
//! focus on the page's controls.

use crate::browser::{bind, log_in, start_from_workspace_page};
use crate::support::TestEnv;
use crate::support::chrome::{CONTROL, Chrome, ENTER, TAB};
use crate::support::cluster::{free_port, wait_state};

const WIDTHS: [(u32, u32); 2] = [(1400, 900), (390, 844)];

#[test]
fn every_screen_passes_axe_at_both_widths_with_a_quiet_console() {
    let Some(chrome) = Chrome::start(true) else { return };
    let env = TestEnv::new();
    std::fs::create_dir_all(env.repo.join(".cortex")).unwrap();
    std::fs::write(
        env.repo.join(".cortex/config.toml"),
        "[[checks]]\nname = \"lint\"\ncommand = \"echo lint clean; printf '<testsuite name=s><testcase name=a/><testcase name=b><failure message=no/></testcase></testsuite>' > junit.xml\"\nartifacts = [\"junit.xml\"]\n",
    )
    .unwrap();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let workspace = bind(&env, &core);
    let cortex = |args: &[&str]| env.cortex_at(&core, &env.repo, args);
    let script = env.script(
        "work.toml",
        "[[step]]\nmessage = \"I will write the library.\"\n\
         [[step]]\nwrite_file = { path = \"src/lib.rs\", content = \"pub fn one() -> u32 {\\n    1\\n}\\n\" }\n\
         [[step]]\ncommand = \"echo built\"\n[[step]]\nusage = { input = 10, output = 5, cost_usd = 0.01 }\n[[step]]\nmessage = \"done\"\n",
    );
    let done = cortex(&["session", "start", "write lib", "--script", script.to_str().unwrap(), "--json"]);
    assert_eq!(done.code, 0, "{}", done.stderr);
    let done = done.json()["session_id"].as_str().unwrap().to_string();
    wait_state(&env, &core, &done, "idle");
    assert_eq!(cortex(&["session", "check", &done]).code, 0);
    let node = cortex(&["node", "list", "--json"]).json()[0]["id"].as_str().unwrap().to_string();
    assert_eq!(cortex(&["tool", "add", "ghost", "--command", "/nowhere/mcp-ghost"]).code, 0);

    // The login page, before logging in.
    chrome.goto(&format!("{}/", core.url));
    chrome.wait("main.login");
    let mut screens: Vec<(String, String)> = vec![("login".into(), String::new())];
    log_in(&chrome, &env, &core, &core.url, &format!("/workspaces/{workspace}"));
    let waiting = start_from_workspace_page(
        &chrome,
        "ask first",
        "[[step]]\napproval = \"May I write notes.txt?\"\n[[step]]\nmessage = \"thanks\"\n",
    );
    chrome.wait("#approval");
    let command = chrome.attrs(".block a.cause[href^='/commands/']", "href").into_iter().next();
    for (name, path) in [
        ("dashboard", "/".to_string()),
        ("nodes", "/nodes".into()),
        ("node", format!("/nodes/{node}")),
        ("workspace", format!("/workspaces/{workspace}")),
        ("session", format!("/sessions/{done}")),
        ("session awaiting approval", format!("/sessions/{waiting}")),
        ("turn", format!("/sessions/{done}/turns/1")),
        ("event", format!("/sessions/{done}/events/1")),
        ("turn diff", format!("/sessions/{done}/turns/1/diff")),
        ("side-by-side diff", format!("/sessions/{done}/diff?view=split")),
        ("evidence", format!("/sessions/{done}/evidence")),
        ("files", format!("/workspaces/{workspace}/files?path=src")),
        ("file", format!("/workspaces/{workspace}/file?path=src/lib.rs")),
        ("file editor", format!("/workspaces/{workspace}/file?path=src/lib.rs&edit=1")),
        ("search", "/search?q=library".into()),
        ("sessions", "/sessions?sort=title".into()),
        ("usage", "/usage?by=session".into()),
        ("tools", "/tools".into()),
        ("tool", "/tools/ghost".into()),
        ("session tools", format!("/sessions/{done}/tools")),
        ("not found", "/sessions/ses_none".into()),
    ] {
        screens.push((name.into(), path));
    }
    if let Some(command) = command {
        screens.push(("command".into(), command));
    }

    let mut found = Vec::new();
    for (width, height) in WIDTHS {
        chrome.resize(width, height);
        for (name, path) in &screens {
            if name == "login" {
                continue;
            }
            chrome.goto(&format!("{}{path}", core.url));
            chrome.wait("main");
            check_screen(&chrome, &format!("{name} at {width} px"), width, &mut found);
        }
    }
    // The login page, logged out in a fresh browser.
    let fresh = Chrome::start(true).unwrap();
    for (width, height) in WIDTHS {
        fresh.resize(width, height);
        fresh.goto(&format!("{}/", core.url));
        fresh.wait("main.login");
        check_screen(&fresh, &format!("login at {width} px"), width, &mut found);
    }
    let names: Vec<&str> = screens.iter().map(|(name, _)| name.as_str()).collect();
    assert!(found.is_empty(), "on {} screens ({names:?}) at 1400 and 390 px:\n{}", screens.len(), found.join("\n"));
}

fn check_screen(chrome: &Chrome, screen: &str, width: u32, found: &mut Vec<String>) {
    let Some(violations) = chrome.axe() else { return };
    found.extend(violations.into_iter().map(|violation| format!("{screen}: {violation}")));
    // The page's own status (401 for the login page, 404 for a missing
    // session) is the answer it means to give; anything else is an error.
    let own_status = format!("{} - Failed to load resource", chrome.url());
    let errors = chrome.console_errors().into_iter().filter(|error| !error.starts_with(&own_status));
    found.extend(errors.map(|error| format!("{screen}: console: {error}")));
    let wide = chrome.script("return document.documentElement.scrollWidth").unwrap().as_u64().unwrap();
    if wide > u64::from(width) {
        found.push(format!("{screen}: the page is {wide} px wide"));
    }
}

#[test]
fn the_keyboard_alone_skips_the_tree_approves_keeps_the_focus_and_sends_with_ctrl_enter() {
    let Some(chrome) = Chrome::start(true) else { return };
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let workspace = bind(&env, &core);
    log_in(&chrome, &env, &core, &core.url, &format!("/workspaces/{workspace}"));
    let script = "[[step]]\napproval = \"May I write notes.txt?\"\n[[step]]\nmessage = \"thanks\"\n";
    let id = start_from_workspace_page(&chrome, "ask first", script);
    chrome.refresh();
    chrome.wait("#approval");
    let title = chrome.script("return document.title").unwrap();
    assert!(title.as_str().unwrap().starts_with("(1) "), "the title counts the approval waiting: {title}");

    chrome.script("document.activeElement.blur(); return 1").unwrap();
    chrome.keys(TAB);
    assert!(chrome.focused().starts_with("a#.skip"), "the first Tab reaches the skip link: {}", chrome.focused());
    chrome.keys(ENTER);
    let mut presses = 0;
    while !chrome.focused().starts_with("button#.primary approve") {
        presses += 1;
        assert!(presses <= 12, "Approve is more than 12 Tabs past the skip link; stuck at {}", chrome.focused());
        chrome.keys(TAB);
    }
    chrome.keys(ENTER);
    wait_state(&env, &core, &id, "idle");
    chrome.until("the controls of an idle session", |chrome| chrome.count("#controls textarea[name=prompt]") == 1);
    chrome.until("the focus on the composer", |chrome| chrome.focused().starts_with("textarea#"));

    chrome.keys("and now the second turn");
    chrome.keys(&format!("{CONTROL}{ENTER}"));
    let sent = crate::support::wait_for(|| {
        let log = env.cortex_at(&core, &env.repo, ["session", "log", &id, "--json"]).json();
        log.as_array().unwrap().iter().find(|event| event["kind"] == "user_message" && event["turn"] == 2).cloned()
    })
    .expect("Ctrl+Enter sent the turn");
    assert_eq!(sent["text"], "and now the second turn");
}
