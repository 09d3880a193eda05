//! Session lists people can scan: `/sessions` filters and sorts by what its
//! URL says, and a failed check puts a session under "needs attention".

use crate::support::TestEnv;
use crate::support::cluster::{free_port, wait_state};
use crate::support::panel::logged_in;

/// The session titles a list page shows, in order.
fn titles(body: &str) -> Vec<String> {
    let row = regex::Regex::new(r#"<tr><td><a href="/sessions/ses_[a-z0-9]+">([^<]*)</a>"#).unwrap();
    row.captures_iter(body).map(|found| found[1].to_string()).collect()
}

#[test]
fn sessions_filter_and_sort_by_the_url_and_a_failed_check_needs_attention() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.repo.join(".cortex")).unwrap();
    std::fs::write(
        env.repo.join(".cortex/config.toml"),
        "[[checks]]\nname = \"lint\"\ncommand = \"test ! -e broken\"\n",
    )
    .unwrap();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let cortex = |args: &[&str]| env.cortex_at(&core, &env.repo, args);
    let mut ids = Vec::new();
    for title in ["beta work", "alpha work"] {
        let started = cortex(&["session", "start", title, "--json"]);
        assert_eq!(started.code, 0, "{}", started.stderr);
        let id = started.json()["session_id"].as_str().unwrap().to_string();
        wait_state(&env, &core, &id, "idle");
        ids.push(id);
    }
    assert_eq!(cortex(&["session", "check", &ids[0]]).code, 0);
    std::fs::write(env.repo.join("broken"), "").unwrap();
    assert_ne!(cortex(&["session", "check", &ids[1]]).code, 0, "the lint check fails now");

    let browser = logged_in(&env, &core);
    let base = &core.url;
    let all = browser.get(&format!("{base}/sessions"));
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(titles(&all.body), ["alpha work", "beta work"], "newest update first");
    let by_title = browser.get(&format!("{base}/sessions?sort=title&state=idle"));
    assert_eq!(titles(&by_title.body), ["alpha work", "beta work"]);
    let failed = browser.get(&format!("{base}/sessions?failed=1"));
    assert_eq!(titles(&failed.body), ["alpha work"], "only the session whose check failed");
    assert!(failed.body.contains("check failed: lint"), "{}", failed.body);
    let none = browser.get(&format!("{base}/sessions?provider=codex&since=1h"));
    assert!(titles(&none.body).is_empty() && none.body.contains("No session matches."), "{}", none.body);
    let hostile = browser.get(&format!("{base}/sessions?state=%3Cscript%3E&sort=%22"));
    assert_eq!((hostile.status, titles(&hostile.body).len()), (200, 0), "an unknown state matches nothing");
    assert!(!hostile.body.contains("<script>"), "{}", hostile.body);

    let dashboard = browser.get(&format!("{base}/"));
    let attention = dashboard.body.split("<h2>Needs attention</h2>").nth(1).unwrap();
    let attention = attention.split("<h2>Recent activity</h2>").next().unwrap();
    assert!(attention.contains("alpha work") && attention.contains("check failed: lint"), "{attention}");
    assert!(!attention.contains("beta work"), "a passing check needs nothing: {attention}");

    // A workspace's and a node's pages list their sessions with links into
    // `/sessions` filtered to them.
    let session = cortex(&["session", "show", &ids[0], "--json"]).json();
    let session = &session["session"];
    let (workspace, node) = (session["workspace_id"].as_str().unwrap(), session["node"].as_str().unwrap());
    for (page, scope) in [
        (format!("/workspaces/{workspace}"), format!("workspace={workspace}")),
        (format!("/nodes/{node}"), format!("node={node}")),
    ] {
        let body = browser.get(&format!("{base}{page}")).body;
        assert_eq!(titles(&body), ["alpha work", "beta work"], "{page}");
        assert!(body.contains("2 session(s)"), "{page}: {body}");
        let failing = format!("href=\"/sessions?{scope}&#38;failed=1\">a check failed: 1</a>");
        assert!(body.contains(&failing), "{page} links to its failing sessions: {body}");
        assert!(body.contains(&format!("href=\"/sessions?{scope}&#38;state=idle\">idle: 2</a>")), "{body}");
        let linked = browser.get(&format!("{base}/sessions?{scope}&failed=1"));
        assert_eq!(titles(&linked.body), ["alpha work"], "{scope}");
    }

    // Fixed and checked again: the check's latest run passes, nothing waits.
    std::fs::remove_file(env.repo.join("broken")).unwrap();
    assert_eq!(cortex(&["session", "check", &ids[1]]).code, 0);
    assert!(titles(&browser.get(&format!("{base}/sessions?failed=1")).body).is_empty());
}
