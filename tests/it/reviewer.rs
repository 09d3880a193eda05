//! The reviewer's loop in real headless Chromium: a highlighted diff, a
//! comment started from a line number, two comments handed back with
//! Request changes as the next turn, an approval, and the Commit button
//! committing exactly what was reviewed: refused naming the file edited
//! since, then committed anyway with the box ticked, the later edit left
//! in the working tree.

use crate::support::TestEnv;
use crate::support::chrome::Chrome;
use crate::support::cluster::{free_port, wait_state};

const LIB: &str = "pub fn one() -> u32 {\n    1\n}\n";
const SCRIPT: &str =
    "[[step]]\nwrite_file = { path = \"src/lib.rs\", content = \"pub fn one() -> u32 {\\n    1\\n}\\n\" }\n";

/// Clicks the diff's link on `line` of the new side, writes `text` in the
/// review form it opens on, and presses `button`.
fn comment_on(chrome: &Chrome, line: u32, text: &str, button: &str) {
    chrome.click(&format!("table.code a[href$='path=src/lib.rs&line={line}#review']"));
    chrome.until("the form to start on the line", |chrome| chrome.url().contains(&format!("line={line}")));
    let start = chrome.script("return [document.getElementById('review-path').value, document.getElementById('review-line').value, document.activeElement.id]").unwrap();
    assert_eq!(
        start,
        serde_json::json!(["src/lib.rs", line.to_string(), "review-text"]),
        "the form starts on the line, focused"
    );
    chrome.fill("#review-text", text);
    chrome.click(&format!("section.review button[value='{button}']"));
}

#[test]
fn a_reviewer_comments_on_two_lines_hands_them_back_approves_and_commits_what_was_reviewed() {
    let Some(chrome) = Chrome::start(true) else { return };
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let cortex = |args: &[&str]| env.cortex_at(&core, &env.repo, args);
    let script = env.script("s.toml", SCRIPT);
    let started = cortex(&["session", "start", "write lib", "--script", script.to_str().unwrap(), "--json"]);
    assert_eq!(started.code, 0, "{}", started.stderr);
    let id = started.json()["session_id"].as_str().unwrap().to_string();
    wait_state(&env, &core, &id, "idle");
    let diff = format!("/sessions/{id}/turns/1/diff");
    chrome.goto(&format!("{}&next={diff}", core.login_url(&env)));
    chrome.wait("section.review");

    // Highlighted on the server: `fn` is a keyword, `1` a number.
    assert!(chrome.count("table.code span.k") > 0, "{}", chrome.source());
    assert!(chrome.count("table.code span.n") > 0);
    chrome.screenshot("diff-highlighted");

    comment_on(&chrome, 1, "say what it returns", "");
    chrome.until("back on the diff with the comment open", |chrome| chrome.count("#open-comments li") == 1);
    assert!(chrome.url().contains(&diff), "{}", chrome.url());
    chrome.goto(&format!("{}{diff}", core.url));
    chrome.wait("nav.filetree");
    chrome.document("panel-diff");
    comment_on(&chrome, 2, "make it two", "request_changes");
    chrome.wait("#timeline");
    let turn_two = crate::support::wait_for(|| {
        let log = cortex(&["session", "log", &id, "--json"]).json();
        log.as_array()
            .unwrap()
            .iter()
            .find(|event| event["kind"] == "user_message" && event["turn"] == 2)
            .map(|event| event["text"].as_str().unwrap().to_string())
    })
    .expect("request changes starts turn 2");
    for part in ["src/lib.rs:1", "say what it returns", "src/lib.rs:2", "make it two", ">     1"] {
        assert!(turn_two.contains(part), "{part:?} missing from the next prompt:\n{turn_two}");
    }
    wait_state(&env, &core, &id, "idle");
    let finished = cortex(&["session", "show", &id, "--json"]).json();
    assert_eq!(finished["turns"][1]["outcome"], "completed", "{finished}");

    chrome.goto(&format!("{}/sessions/{id}/diff", core.url));
    chrome.wait("section.review");
    assert_eq!(chrome.count("#open-comments li"), 0, "the comments were handed back");
    chrome.click("section.review button[value='approve']");
    chrome.until("back at the commit form", |chrome| chrome.url().ends_with("#commit"));

    // An edit on disk after the review: the Commit button refuses, naming it.
    let lib = env.repo.join("src/lib.rs");
    std::fs::write(&lib, "pub fn one() -> u32 {\n    2\n}\n").unwrap();
    chrome.click("form[action$='/commit'] button");
    chrome.until("the refusal", |chrome| chrome.source().contains("changed since"));
    assert!(chrome.source().contains("src/lib.rs"), "{}", chrome.source());
    assert!(env.git(&env.repo, ["log", "--format=%s"]).lines().all(|subject| subject != "reviewed lib"));

    // Ticked, the reviewed version is committed and the edit stays.
    chrome.goto(&format!("{}/sessions/{id}/diff#commit", core.url));
    chrome.fill("#commit-message", "reviewed lib");
    chrome.click("form[action$='/commit'] input[name=as_reviewed]");
    chrome.click("form[action$='/commit'] button");
    chrome.until("the commit", |chrome| chrome.url().ends_with(&format!("/sessions/{id}")));
    let message = env.git(&env.repo, ["log", "-1", "--format=%B"]);
    assert!(message.starts_with("reviewed lib"), "{message}");
    assert!(message.contains(&format!("Cortex-Session: {id}")), "{message}");
    assert!(message.contains("Reviewed-by: panel"), "{message}");
    assert_eq!(env.git(&env.repo, ["show", "HEAD:src/lib.rs"]), LIB, "the commit holds what was reviewed");
    assert_eq!(std::fs::read_to_string(&lib).unwrap(), "pub fn one() -> u32 {\n    2\n}\n", "the later edit stays");
}

/// Rows of each file on the diff page: `(path, open, viewed)`.
fn files_shown(chrome: &Chrome) -> Vec<(String, bool, bool)> {
    let found = chrome
        .script(
            "return [...document.querySelectorAll('details.file')].map(d => \
             [d.querySelector('summary strong').textContent, d.open, d.classList.contains('viewed')])",
        )
        .unwrap();
    serde_json::from_value(found).unwrap()
}

#[test]
fn a_reviewer_reads_more_context_comments_on_a_hunk_and_viewed_files_fold_until_they_change() {
    let Some(chrome) = Chrome::start(true) else { return };
    let env = TestEnv::new();
    let long: String = (1..=30).map(|n| format!("fn f{n}() {{}}\n")).collect();
    std::fs::create_dir_all(env.repo.join("src")).unwrap();
    std::fs::write(env.repo.join("src/long.rs"), &long).unwrap();
    env.git(&env.repo, ["add", "src/long.rs"]);
    env.git(&env.repo, ["commit", "-q", "-m", "long"]);
    let changed = long.replace("fn f15() {}", "fn f15() { todo!() }").replace('\n', "\\n");
    let script = format!(
        "[[turn]]\n[[turn.step]]\nwrite_file = {{ path = \"src/long.rs\", content = \"{changed}\" }}\n\
         [[turn.step]]\nwrite_file = {{ path = \"README.md\", content = \"one\\n\" }}\n\
         [[turn]]\n[[turn.step]]\nwrite_file = {{ path = \"README.md\", content = \"two\\n\" }}\n"
    );
    let core = env.start_core("up", &env.cortex_home, free_port());
    let cortex = |args: &[&str]| env.cortex_at(&core, &env.repo, args);
    let script = env.script("s.toml", &script);
    let started = cortex(&["session", "start", "edit", "--script", script.to_str().unwrap(), "--json"]);
    assert_eq!(started.code, 0, "{}", started.stderr);
    let id = started.json()["session_id"].as_str().unwrap().to_string();
    wait_state(&env, &core, &id, "idle");
    let diff = format!("/sessions/{id}/diff");
    chrome.goto(&format!("{}&next={diff}", core.login_url(&env)));
    chrome.wait("nav.filetree");

    // The file tree names each file under its folder.
    let tree = chrome.text("nav.filetree");
    assert!(tree.contains("src/") && tree.contains("long.rs") && tree.contains("README.md"), "{tree}");
    let rows = |chrome: &Chrome| chrome.count("details.file:has(strong) table.code tr:has(pre)");
    let shown = chrome.script("return [...document.querySelectorAll('table.code tr')].map(r => r.textContent)");
    assert_eq!(
        rows(&chrome),
        2 + 3 + 2 + 3,
        "README's replaced line, then 3 lines of context around the change: {shown:?}"
    );
    chrome.click("nav.views a[href$='context=100000']");
    chrome.until("the whole file", |chrome| rows(chrome) == 2 + 30 + 1);
    assert!(chrome.text("#f2 table.code").contains("fn f1() {}"));
    chrome.click("nav.views a[href='?']");
    chrome.until("three lines again", |chrome| rows(chrome) == 10);

    // Viewed: the file folds, the tree counts it, a reload keeps it.
    chrome.click("details.file:has(strong) form.viewed button[value='1']");
    chrome.until("README folded", |chrome| files_shown(chrome).contains(&("README.md".into(), false, true)));
    assert!(chrome.url().ends_with("#f1"), "{}", chrome.url());
    assert!(chrome.text("nav.filetree").contains("1 viewed"));
    chrome.refresh();
    assert_eq!(
        files_shown(&chrome),
        [("README.md".into(), false, true), ("src/long.rs".into(), true, false)],
        "a reload keeps the mark"
    );

    // A comment on the whole hunk, handed back: the prompt quotes its lines.
    chrome.click("#f2 .hunk-head a[href$='path=src/long.rs&line=12-18#review']");
    chrome.until("the form on the hunk", |chrome| chrome.url().contains("line=12-18"));
    let line = chrome.script("return document.getElementById('review-line').value").unwrap();
    assert_eq!(line, "12-18");
    chrome.fill("#review-text", "no todo!() here");
    chrome.click("section.review button[value='request_changes']");
    chrome.wait("#timeline");
    let prompt = crate::support::wait_for(|| {
        let log = cortex(&["session", "log", &id, "--json"]).json();
        let events = log.as_array().unwrap().clone();
        events.into_iter().find(|event| event["kind"] == "user_message" && event["turn"] == 2)
    })
    .expect("request changes starts turn 2");
    let prompt = prompt["text"].as_str().unwrap();
    for part in ["src/long.rs:12-18", "> fn f12() {}", "> fn f15() { todo!() }", "> fn f18() {}", "no todo!() here"] {
        assert!(prompt.contains(part), "{part:?} missing from the prompt:\n{prompt}");
    }
    wait_state(&env, &core, &id, "idle");

    // Turn 2 changed README again: it is no longer viewed.
    chrome.goto(&format!("{}{diff}", core.url));
    chrome.wait("nav.filetree");
    assert_eq!(files_shown(&chrome), [("README.md".into(), true, false), ("src/long.rs".into(), true, false)]);
    assert!(!chrome.text("nav.filetree").contains("viewed"));
}
