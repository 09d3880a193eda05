//! Evidence you can see: a check's JUnit file stored as an artifact and
//! read into a test table that says what was fixed since the last turn
//! (surviving `refs push`/`fetch`), the agent's images shown inline while
//! SVG and HTML are downloads whose scripts never run in the panel's origin
//! (in Chromium), and the Gantt of a three-turn session checked against its
//! events from the SVG's geometry.

use crate::support::TestEnv;
use crate::support::chrome::Chrome;
use crate::support::cluster::{CoreProcess, free_port, wait_state};
use crate::support::panel::logged_in;

/// A check whose JUnit report fails `m::divides` until `fixed.txt` exists.
const JUNIT_CHECK: &str = r#"
[[checks]]
name = "tests"
command = """
mkdir -p target
if [ -f fixed.txt ]; then f=''; else f='<failure message="expected 4, got 5">at divides.rs:3</failure>'; fi
printf '<?xml version="1.0"?><testsuite name="m"><testcase classname="m" name="adds" time="0.01"/><testcase classname="m" name="divides">%s</testcase></testsuite>' "$f" > target/junit.xml
printf 'SF:src/lib.rs\nDA:1,1\nDA:2,0\nend_of_record\n' > target/lcov.info
echo "token ghp_CorpusGithubToken0123456789abcdefgh" > target/notes.txt
test -f fixed.txt
"""
artifacts = ["target/junit.xml", "target/lcov.info", "target/notes.txt", "target/*.png"]
"#;

fn start(env: &TestEnv, core: &CoreProcess, prompt: &str, script: &str) -> String {
    let script = env.script("s.toml", script);
    let started =
        env.cortex_at(core, &env.repo, ["session", "start", prompt, "--script", script.to_str().unwrap(), "--json"]);
    assert_eq!(started.code, 0, "{}", started.stderr);
    let id = started.json()["session_id"].as_str().unwrap().to_string();
    wait_state(env, core, &id, "idle");
    id
}

#[test]
fn a_junit_artifact_becomes_a_test_table_that_says_what_was_fixed_and_travels_with_the_refs() {
    let env = TestEnv::new();
    let remote = env.origin("remote.git");
    env.git(&env.repo, ["push", "-q", "origin", "main"]);
    std::fs::create_dir_all(env.repo.join(".cortex")).unwrap();
    std::fs::write(env.repo.join(".cortex/config.toml"), JUNIT_CHECK).unwrap();
    // A stale report from before the session is not passed off as turn 1's.
    std::fs::create_dir_all(env.repo.join("target")).unwrap();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let script = "[[turn]]\n[[turn.step]]\nmessage = \"tried\"\n[[turn]]\n[[turn.step]]\nwrite_file = { path = \"fixed.txt\", content = \"y\\n\" }\n";
    let id = start(&env, &core, "make the tests pass", script);
    let sent = env.cortex_at(&core, &env.repo, ["session", "send", &id, "fix divides", "--json"]);
    assert_eq!(sent.code, 0, "{}", sent.stderr);
    wait_state(&env, &core, &id, "idle");

    let show = env.cortex_at(&core, &env.repo, ["session", "show", &id, "--json"]).json();
    let turns = show["turns"].as_array().unwrap();
    let artifact = &turns[0]["artifacts"][0];
    assert_eq!(artifact["path"], "target/junit.xml");
    assert_eq!(artifact["stored"], "turns/1/artifacts/target/junit.xml");
    assert_eq!(artifact["check"], "tests");
    assert_eq!(artifact["media_type"], "application/xml");
    let stored: Vec<&str> =
        turns[0]["artifacts"].as_array().unwrap().iter().map(|a| a["path"].as_str().unwrap()).collect();
    assert_eq!(stored, ["target/junit.xml", "target/lcov.info", "target/notes.txt"]);
    assert_eq!(turns[0]["coverage"][0]["lines_found"], 2);
    assert_eq!(turns[0]["coverage"][0]["lines_hit"], 1);
    let notes = env.git(&env.repo, ["show", &format!("refs/cortex/sessions/{id}:turns/1/artifacts/target/notes.txt")]);
    assert_eq!(notes, "token [REDACTED]\n", "an artifact's text is redacted like every blob");
    let log = env.cortex_at(&core, &env.repo, ["session", "log", &id, "--json"]).json();
    let warned =
        log.as_array().unwrap().iter().any(|event| event["message"] == "artifact `target/*.png` matched no file");
    assert!(warned, "a pattern that matched nothing is said");
    let text = env.cortex_at(&core, &env.repo, ["session", "show", &id]).stdout;
    assert!(text.contains("  tests target/junit.xml: 1 passed, 1 failed, 0 skipped"), "{text}");
    assert!(text.contains("  artifact turns/1/artifacts/target/junit.xml ("), "{text}");
    let tests = |turn: usize| &turns[turn]["tests"][0];
    assert_eq!((tests(0)["passed"].as_u64(), tests(0)["failed"].as_u64()), (Some(1), Some(1)));
    assert_eq!(tests(0)["cases"][0]["name"], "m::divides", "failures first");
    assert_eq!(tests(0)["cases"][0]["message"], "expected 4, got 5");
    assert_eq!((tests(1)["passed"].as_u64(), tests(1)["failed"].as_u64()), (Some(2), Some(0)));

    let browser = logged_in(&env, &core);
    let page = browser.get(&format!("{}/sessions/{id}/evidence", core.url));
    assert_eq!(page.status, 200, "{}", page.body);
    let turn = |n: u32| {
        let start = page.body.find(&format!("id=\"turn-{n}\"")).unwrap();
        let rest = &page.body[start..];
        rest[..rest.find("</section>\n</section>").unwrap_or(rest.len())].to_string()
    };
    let (one, two) = (turn(1), turn(2));
    assert!(one.contains("First run:") && one.contains("newly failing: 1"), "{one}");
    assert!(one.contains("<code>m::divides</code>") && one.contains("expected 4, got 5"), "{one}");
    assert!(two.contains("Since turn 1:") && two.contains("fixed: 1") && two.contains("still failing: 0"), "{two}");
    assert!(two.contains("Fixed: <code>m::divides</code>"), "{two}");
    assert!(one.contains("target/lcov.info</code> · 50% of 2 lines in 1 file(s)"), "{one}");

    let stored = |repo: &std::path::Path| {
        env.git(repo, ["show", &format!("refs/cortex/sessions/{id}:turns/1/artifacts/target/junit.xml")])
    };
    assert!(stored(&env.repo).contains("<failure message=\"expected 4, got 5\">"));
    env.cortex_ok(["refs", "push"]);
    let clone = env.path("clone");
    env.git(env.root.path(), ["clone", "-q", remote.to_str().unwrap(), clone.to_str().unwrap()]);
    let fetched =
        env.cortex_command(&clone).env("CORTEX_HOME", env.path("other-home")).args(["refs", "fetch"]).output();
    assert!(fetched.unwrap().status.success());
    assert_eq!(stored(&clone), stored(&env.repo), "the artifact came with the ref");
}

/// A 1×1 PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

#[test]
fn an_image_the_agent_writes_is_shown_and_svg_or_html_only_downloads_without_running() {
    let Some(chrome) = Chrome::start(true) else { return };
    let env = TestEnv::new();
    std::fs::create_dir_all(env.repo.join(".cortex")).unwrap();
    std::fs::write(env.repo.join(".cortex/config.toml"), "[artifacts]\nfolder = \"out\"\n").unwrap();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let hostile = "<script>localStorage.setItem('pwned', location.href); document.title = 'pwned'</script>";
    let script = format!(
        "[[step]]\ncommand = \"mkdir -p out && echo {PNG} | base64 -d > out/shot.png\"\n\
         [[step]]\nwrite_file = {{ path = \"out/chart.svg\", content = \"<svg xmlns='http://www.w3.org/2000/svg'>{hostile}</svg>\" }}\n\
         [[step]]\nwrite_file = {{ path = \"out/report.html\", content = \"<!DOCTYPE html><html>{hostile}</html>\" }}\n\
         [[step]]\nwrite_file = {{ path = \"out/notes.md\", content = \"# Findings\\n\\n<img src=x onerror=alert(1)> **bold**\\n\" }}\n"
    );
    let id = start(&env, &core, "draw", &script);

    let browser = logged_in(&env, &core);
    let artifact = |name: &str| browser.get(&format!("{}/sessions/{id}/artifacts/1/out/{name}", core.url));
    // Only files under the turn's artifacts: nothing else of the session tree.
    for escape in ["..%2F..%2Fmeta.toml", "..%2F..%2F..%2Fmeta.toml", "%2E%2E/%2E%2E/prompt.md"] {
        let page = artifact(escape);
        assert_ne!(page.status, 200, "{escape}: {}", page.body);
        assert!(!page.body.contains("schema ="), "{escape} leaked meta.toml");
    }
    let png = artifact("shot.png");
    assert_eq!(png.headers["content-type"], "image/png");
    assert!(png.headers["content-disposition"].to_str().unwrap().starts_with("inline"));
    for name in ["chart.svg", "report.html"] {
        let page = artifact(name);
        assert_eq!(page.status, 200);
        assert_eq!(page.headers["content-type"], "application/octet-stream", "{name}");
        assert!(page.headers["content-disposition"].to_str().unwrap().starts_with("attachment"), "{name}");
        assert!(page.headers["content-security-policy"].to_str().unwrap().contains("sandbox"), "{name}");
        assert_eq!(page.headers["x-content-type-options"], "nosniff");
    }

    let evidence = format!("/sessions/{id}/evidence");
    let link = env.cortex_at(&core, env.root.path(), ["panel", "login"]);
    chrome.goto(&format!("{}&next={evidence}", link.stdout.trim()));
    chrome.wait("ul.artifacts");
    let width = chrome
        .script("const img = document.querySelector(\"img[alt='out/shot.png']\"); return img.complete ? img.naturalWidth : -1")
        .unwrap();
    assert_eq!(width, 1, "the PNG is shown inline");
    let embedded = chrome
        .script("return [...document.querySelectorAll('img, iframe, object, embed')].map(e => e.src || e.data).filter(s => /\\.(svg|html)/.test(s)).length")
        .unwrap();
    assert_eq!(embedded, 0, "SVG and HTML are never embedded");
    let downloads = chrome.attrs("ul.artifacts a[download]", "href");
    assert!(downloads.iter().any(|href| href.ends_with("/out/chart.svg")), "{downloads:?}");
    assert!(downloads.iter().any(|href| href.ends_with("/out/report.html")), "{downloads:?}");
    assert!(chrome.text("ul.artifacts .markdown").contains("Findings"));
    assert_eq!(chrome.count("ul.artifacts .markdown img"), 0, "Markdown is sanitized");
    chrome.screenshot("evidence-artifacts");

    // Opened directly, each is a download: nothing renders, no script runs.
    for name in ["chart.svg", "report.html"] {
        chrome.script(&format!("location.assign('/sessions/{id}/artifacts/1/out/{name}')")).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        chrome.goto(&format!("{}{evidence}", core.url));
        chrome.wait("ul.artifacts");
        let pwned = chrome.script("return [localStorage.getItem('pwned'), document.title]").unwrap();
        assert_eq!(pwned[0], serde_json::Value::Null, "a script in {name} ran in the panel's origin");
        assert_ne!(pwned[1], "pwned");
    }
}

#[test]
fn the_gantt_of_three_turns_has_a_bar_per_turn_and_command_sized_by_its_time() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let turn =
        |secs: &str| format!("[[turn]]\n[[turn.step]]\ncommand = \"sleep {secs}\"\n[[turn.step]]\nsleep_ms = 200\n");
    let id = start(&env, &core, "one", &[turn("0.2"), turn("0.8"), turn("0.4")].concat());
    for prompt in ["two", "three"] {
        assert_eq!(env.cortex_at(&core, &env.repo, ["session", "send", &id, prompt]).code, 0);
        wait_state(&env, &core, &id, "idle");
    }
    let page = logged_in(&env, &core).get(&format!("{}/sessions/{id}/evidence", core.url));
    let svg = &page.body[page.body.find("<svg").unwrap()..page.body.find("</svg>").unwrap()];
    let attr = |rect: &str, name: &str| -> String {
        rect.split(&format!(" {name}=\"")).nth(1).unwrap().split('"').next().unwrap().to_string()
    };
    let bars: Vec<(String, f64, f64, f64)> = svg
        .split("<rect class=\"bar\"")
        .skip(1)
        .map(|rect| {
            let number = |name: &str| attr(rect, name).parse::<f64>().unwrap();
            (attr(rect, "data-kind"), number("data-start-ms"), number("data-ms"), number("width"))
        })
        .collect();
    let kinds: Vec<&str> = bars.iter().map(|bar| bar.0.as_str()).collect();
    assert_eq!(kinds, ["turn", "command", "turn", "command", "turn", "command"], "{svg}");

    // The durations are the events' own, and the widths keep their ratios.
    let log = env.cortex_at(&core, &env.repo, ["session", "log", &id, "--json"]).json();
    let at = |event: &serde_json::Value| event["at"].as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
    let events = log.as_array().unwrap();
    let origin = events.iter().find(|event| event["kind"] == "user_message").unwrap();
    let near = |drawn: f64, recorded: f64, what: &str| {
        assert!((drawn - recorded).abs() <= 1.0, "{what}: {drawn} vs {recorded}")
    };
    for (index, n) in (1..=3).enumerate() {
        let of_turn = |kind: &str| events.iter().find(|event| event["turn"] == n && event["kind"] == kind).unwrap();
        let ms = |a: &serde_json::Value, b: &serde_json::Value| (at(b) - at(a)).total(jiff::Unit::Millisecond).unwrap();
        let turn_bar = &bars[index * 2];
        let command_bar = &bars[index * 2 + 1];
        near(turn_bar.2, ms(of_turn("user_message"), of_turn("turn_finished")), &format!("turn {n} took"));
        near(command_bar.2, ms(of_turn("command_started"), of_turn("command_finished")), &format!("command {n} took"));
        near(turn_bar.1, ms(origin, of_turn("user_message")), &format!("turn {n} began"));
        near(command_bar.1, ms(origin, of_turn("command_started")), &format!("command {n} began"));
        assert!(command_bar.1 >= turn_bar.1 && command_bar.1 + command_bar.2 <= turn_bar.1 + turn_bar.2);
    }
    let scale = bars[0].3 / bars[0].2;
    for bar in &bars {
        assert!((bar.3 - bar.2 * scale).abs() < 0.01, "width follows duration: {bar:?} at {scale}");
    }
    assert!(bars[3].2 > bars[5].2 && bars[5].2 > bars[1].2, "0.8 s > 0.4 s > 0.2 s: {bars:?}");
    assert!(svg.contains("<desc") && svg.contains("Turn 2: two"), "a text alternative names each bar");
    assert!(page.body.contains("<th scope=\"col\">Took</th>"), "and a table says the same");
}

#[test]
fn a_session_report_is_one_file_that_fetches_nothing_and_shows_the_diff_tests_and_cost() {
    let Some(chrome) = Chrome::start(true) else { return };
    let env = TestEnv::new();
    std::fs::create_dir_all(env.repo.join(".cortex")).unwrap();
    let config = format!("{JUNIT_CHECK}\n[artifacts]\nfolder = \"out\"\n");
    std::fs::write(env.repo.join(".cortex/config.toml"), config).unwrap();
    // Anything the report tried to fetch would knock here.
    let trap = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let bait = format!("http://127.0.0.1:{}/leak", trap.local_addr().unwrap().port());
    let core = env.start_core("up", &env.cortex_home, free_port());
    let script = format!(
        "[[step]]\nmessage = \"Done: <img src='{bait}'> <link rel=stylesheet href='{bait}'>\"\n\
         [[step]]\nwrite_file = {{ path = \"src/lib.rs\", content = \"pub fn answer() -> u32 {{ 42 }}\\n\" }}\n\
         [[step]]\ncommand = \"mkdir -p out && echo {PNG} | base64 -d > out/shot.png\"\n\
         [[step]]\nusage = {{ input = 1200, output = 300, model = \"m1\", cost_usd = 0.25 }}\n"
    );
    let id = start(&env, &core, &format!("write <script src='{bait}'></script> lib"), &script);

    let file = env.path("report.html");
    let written = env.cortex_at(&core, &env.repo, ["session", "report", &id, "-o", file.to_str().unwrap()]);
    assert_eq!(written.code, 0, "{}", written.stderr);
    assert!(written.stderr.contains("Wrote the report of"), "{}", written.stderr);
    let html = std::fs::read_to_string(&file).unwrap();
    // The same file from the panel, and in-process with Core stopped.
    let browser = logged_in(&env, &core);
    let download = browser.get(&format!("{}/sessions/{id}/report?format=html", core.url));
    assert!(download.headers["content-disposition"].to_str().unwrap().contains(&format!("cortex-{id}.html")));
    let stamp =
        |text: &str| text.lines().filter(|line| !line.contains("report written")).collect::<Vec<_>>().join("\n");
    assert_eq!(stamp(&download.body), stamp(&html));
    drop(core);
    let local = env.cortex_ok(["session", "report", &id, "--no-core"]);
    assert_eq!(stamp(&local.stdout), stamp(&html));
    let markdown = env.cortex_ok(["session", "report", &id, "--format", "md"]).stdout;
    assert!(markdown.contains("fixed: 0") && markdown.contains("+pub fn answer() -> u32 { 42 }"), "{markdown}");
    assert!(markdown.contains("| m::divides | Failed | expected 4, got 5 |"), "{markdown}");

    chrome.goto(&format!("file://{}", file.display()));
    chrome.wait("#turn-1");
    assert!(chrome.text("#cost").contains("1500 tokens, $0.2500"), "{}", chrome.text("#cost"));
    assert!(chrome.text("pre.diff .add").contains("+pub fn answer() -> u32 { 42 }"));
    assert!(chrome.text("table.tests tr.failed").contains("m::divides"));
    assert!(chrome.text("table.tests tr.failed").contains("expected 4, got 5"));
    assert!(chrome.text(".answer").contains(&format!("<img src='{bait}'>")), "the agent's HTML is text");
    let loaded = chrome
        .script("const img = document.querySelector(\"img[alt='out/shot.png']\"); return img.naturalWidth")
        .unwrap();
    assert_eq!(loaded, 1, "the image is inside the file");
    let fetched = chrome.script("return performance.getEntriesByType('resource').map(e => e.name)").unwrap();
    assert_eq!(fetched, serde_json::json!([]), "the report fetched something");
    let kinds = chrome.attrs("svg[role=img] rect.bar", "data-kind");
    assert_eq!(kinds, ["turn", "command", "check"], "the timeline: the turn, its command and its check");
    chrome.screenshot("session-report");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(trap.accept().is_err(), "the report reached out to {bait}");
}
