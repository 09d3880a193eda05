//! The web panel over HTTP: login, what unauthenticated requests get,
//! escaping of agent output, security headers, CSRF, static files.

use crate::support::TestEnv;
use crate::support::cluster::{CoreProcess, free_port, wait_state};
use crate::support::panel::{Browser, Page, logged_in};

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
    assert!(decoded(&page.body).contains("<script>alert('pwned')</script>"), "shown as text: {}", page.body);
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

/// A repository whose checks and agent write things that must stay text.
fn hostile_session(env: &TestEnv, core: &CoreProcess) -> String {
    std::fs::create_dir_all(env.repo.join(".cortex")).unwrap();
    std::fs::write(
        env.repo.join(".cortex/config.toml"),
        "[[checks]]\nname = \"lint\"\ncommand = \"echo '<b>lint</b> clean'\"\n",
    )
    .unwrap();
    let script = env.script(
        "hostile.toml",
        "[[step]]\nmessage = \"<script>alert('pwned')</script> greetings\"\n\
         [[step]]\nwrite_file = { path = \"page.html\", content = \"<script>alert(2)</script>\\nsecond line\\n\" }\n\
         [[step]]\nwrite_file = { path = \"blob.bin\", content = \"\\u0000\\u0001\\u0002\" }\n\
         [[step]]\ncommand = \"echo '<i>shell</i>'\"\n",
    );
    let run = env.cortex_at(
        core,
        &env.repo,
        ["session", "start", "hostile work", "--script", script.to_str().unwrap(), "--json"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let id = run.json()["session_id"].as_str().unwrap().to_string();
    wait_state(env, core, &id, "idle");
    id
}

/// Text with HTML's entities for `<>&"'` turned back into characters,
/// written either way (askama writes `&#60;`, ammonia `&lt;`): to find
/// what a page shows as text, once it is known that no markup got through.
fn decoded(html: &str) -> String {
    [("&#60;", "<"), ("&lt;", "<"), ("&#62;", ">"), ("&gt;", ">"), ("&#34;", "\""), ("&quot;", "\""), ("&#39;", "'")]
        .iter()
        .fold(html.to_string(), |text, (entity, char)| text.replace(entity, char))
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

fn assert_page(page: &Page, what: &str, expected: &[&str]) {
    assert_eq!(page.status, 200, "{what}: {}", page.body);
    // Highlighted code splits text into classed spans; the text is what counts.
    let spans = regex::Regex::new(r#"<span class="[a-z ]+">|</span>"#).unwrap();
    let text = decoded(&spans.replace_all(&page.body, ""));
    for expected in expected {
        let expected = decoded(expected);
        assert!(text.contains(&expected), "{what} lacks `{expected}`:\n{}", page.body);
    }
    assert!(
        !page.body.contains("<script>alert") && !page.body.contains("<b>lint") && !page.body.contains("<i>shell"),
        "{what} let markup through:\n{}",
        page.body
    );
}

#[test]
fn every_screen_is_reachable_from_the_tree_and_shows_what_agents_wrote_as_text() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let id = hostile_session(&env, &core);
    let browser = logged_in(&env, &core);
    let base = &core.url;

    let dashboard = browser.get(&format!("{base}/"));
    assert_page(&dashboard, "dashboard", &["1</strong> of 1 node(s) online", "hostile work"]);
    let node = dashboard.links("/nodes/").into_iter().next().expect("the tree links the node");
    let workspace = dashboard.links("/workspaces/").into_iter().next().expect("the tree links the workspace");
    assert!(dashboard.links("/sessions/").contains(&format!("/sessions/{id}")), "the tree links the session");

    let node_page = browser.get(&format!("{base}{node}"));
    assert_page(&node_page, "node", &["Capabilities", "provider fake", "memory free", "hostile work", "Revoke"]);
    assert_page(&browser.get(&format!("{base}/nodes")), "nodes", &["Enroll a node", "online"]);
    let workspace_page = browser.get(&format!("{base}{workspace}"));
    assert_page(
        &workspace_page,
        "workspace",
        &["Start a session", "name=\"provider\"", "name=\"script\"", "name=\"worktree\"", "hostile work"],
    );

    let session = browser.get(&format!("{base}/sessions/{id}"));
    assert_page(
        &session,
        "session",
        &[
            "&#60;script&#62;alert(&#39;pwned&#39;)&#60;/script&#62; greetings",
            "sse-connect=\"/sessions/",
            "id=\"controls\"",
            "name=\"prompt\"",
            "Run checks",
            "&#60;i&#62;shell&#60;/i&#62;",
            "exit 0",
        ],
    );
    assert!(!session.body.contains("/interrupt\""), "an idle session offers no interrupt");
    let command_seq: u64 = session
        .body
        .split("<strong>command</strong>")
        .next()
        .unwrap()
        .rsplit("/events/")
        .next()
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        session.body.contains(&format!("id=\"event-{}\" data-seq=\"{}\" hidden", command_seq + 1, command_seq + 1)),
        "the command's output folds into its block"
    );

    let turn = browser.get(&format!("{base}/sessions/{id}/turns/1"));
    assert_page(&turn, "turn", &["Turn 1 of", "hostile work", "lint"]);
    let diff = browser.get(&format!("{base}/sessions/{id}/turns/1/diff"));
    assert_page(
        &diff,
        "turn diff",
        &[
            "page.html",
            "blob.bin",
            "binary",
            "Binary file blob.bin",
            "&#60;script&#62;alert(2)&#60;/script&#62;",
            "id=\"f2-h1\"",
            "href=\"#f2-h1\"",
            "produced by <a href=\"/sessions/",
        ],
    );
    let split = browser.get(&format!("{base}/sessions/{id}/turns/1/diff?view=split"));
    assert_page(&split, "split diff", &["table class=\"code split\"", "second line"]);
    let all = browser.get(&format!("{base}/sessions/{id}/diff"));
    assert_page(&all, "session diff", &["All changes", "page.html", "Changed in turn", "open the file"]);
    let evidence = browser.get(&format!("{base}/sessions/{id}/evidence"));
    assert_page(&evidence, "evidence", &["&#60;b&#62;lint&#60;/b&#62; clean", "id=\"check-", "passed"]);
    let output_seq = command_seq + 1;
    let event = browser.get(&format!("{base}/sessions/{id}/events/{command_seq}"));
    assert_page(&event, "event", &["Event #", "What it caused", &format!("/sessions/{id}/events/{output_seq}")]);
    let search = browser.get(&format!("{base}/search?q=greetings"));
    assert_page(&search, "search", &[&format!("/sessions/{id}/events/"), "<mark>greetings</mark>", "match(es)"]);
    let shouting = browser.get(&format!("{base}/search?q=GREETINGS"));
    assert!(shouting.body.contains("<mark>greetings</mark>"), "any case is marked: {}", shouting.body);
    assert_page(&browser.get(&format!("{base}/search?q=")), "empty search", &["Search"]);

    let tree = browser.get(&format!("{base}/panel/tree"));
    assert_page(&tree, "tree", &["<nav class=\"tree\"", "hx-trigger=\"every 10s\"", &format!("/sessions/{id}")]);
    assert!(!tree.body.contains("<html"), "a fragment, not a page");
    assert_eq!(Browser::new().get(&format!("{base}/panel/tree")).status, 401);
    assert!(dashboard.body.contains("hx-select=\"#dashboard\""), "the dashboard refreshes itself");
    assert_eq!(browser.get(&format!("{base}/sessions/ses_nope")).status, 404);
    assert_eq!(browser.get(&format!("{base}/sessions/{id}/turns/9")).status, 404);
    assert_eq!(browser.get(&format!("{base}/sessions/{id}/events/9999")).status, 404);
    assert_eq!(browser.get(&format!("{base}/nodes/nod_nope")).status, 404);
    assert_eq!(browser.get(&format!("{base}/workspaces/wsp_nope")).status, 404);
    assert_eq!(browser.get(&format!("{base}/commands/nope")).status, 404);
}

#[test]
fn panel_forms_need_its_origin_run_once_and_say_what_went_wrong() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let bound = env.cortex_at(&core, &env.repo, ["workspace", "bind", "--json"]);
    let workspace = bound.json()["id"].as_str().unwrap().to_string();
    let browser = logged_in(&env, &core);
    let base = core.url.clone();
    let origin = Some(base.as_str());
    let count = || env.cortex_at(&core, &env.repo, ["session", "list", "--json"]).json().as_array().unwrap().len();
    let script = "[[step]]\nmessage = \"started from the panel\"\n";
    let start = [("command_id", "web_once"), ("provider", "fake"), ("prompt", "from the panel"), ("script", script)];
    let url = format!("{base}/workspaces/{workspace}/sessions");

    assert_eq!(browser.post(&url, &start, Some("http://evil.example")).status, 403);
    assert_eq!(browser.post(&url, &start, None).status, 403);
    assert_eq!(Browser::new().post(&url, &start, origin).status, 401, "no cookie, no action");
    assert_eq!(count(), 0, "refused forms change nothing");

    let first = browser.post(&url, &start, origin);
    assert_eq!(first.status, 303, "{}", first.body);
    assert!(first.location().starts_with("/sessions/ses_"), "{}", first.location());
    let again = browser.post(&url, &start, origin);
    assert_eq!(again.location(), first.location(), "the same form twice is one session");
    assert_eq!(count(), 1);
    let id = first.location().trim_start_matches("/sessions/").to_string();
    wait_state(&env, &core, &id, "idle");
    let command = browser.get(&format!("{base}/commands/web_once"));
    assert_page(&command, "command", &["start_session", "from the panel", "session_id"]);

    let illegal = browser.post(&format!("{base}/sessions/{id}/interrupt"), &[("command_id", "web_int")], origin);
    assert_eq!(illegal.status, 409, "{}", illegal.body);
    assert!(illegal.body.contains("not running") || illegal.body.contains("cannot"), "{}", illegal.body);
    let htmx = browser.request(
        reqwest::Method::POST,
        &format!("{base}/sessions/{id}/interrupt"),
        &[("Origin", &base), ("HX-Request", "true"), ("Content-Type", "application/x-www-form-urlencoded")],
    );
    assert_eq!(htmx.status, 200);
    assert!(htmx.body.contains("role=\"alert\""), "htmx gets the problem as a notice: {}", htmx.body);
    let nonsense = browser.post(&format!("{base}/sessions/{id}/approval"), &[("decision", "maybe")], origin);
    assert_eq!(nonsense.status, 422);
    let empty = browser.post(&format!("{base}/sessions/{id}/turns"), &[("prompt", "  ")], origin);
    assert_eq!(empty.status, 422);

    let sent = browser.post(
        &format!("{base}/sessions/{id}/turns"),
        &[("command_id", "web_send"), ("prompt", "once more")],
        origin,
    );
    assert_eq!(sent.location(), format!("/sessions/{id}"));
    wait_state(&env, &core, &id, "idle");
    let stopped = browser.post(&format!("{base}/sessions/{id}/stop"), &[("command_id", "web_stop")], origin);
    assert_eq!(stopped.status, 303);
    wait_state(&env, &core, &id, "stopped");

    let node = browser.get(&format!("{base}/")).links("/nodes/").into_iter().next().unwrap();
    let missing = browser.post(&format!("{base}{node}/workspaces"), &[("path", "/no/such/repo")], origin);
    assert_eq!(missing.status, 422, "{}", missing.body);
    assert!(missing.body.contains("does not exist"), "{}", missing.body);
    let other = env.repo("other");
    let bind = browser.post(
        &format!("{base}{node}/workspaces"),
        &[("command_id", "web_bind"), ("path", other.to_str().unwrap())],
        origin,
    );
    assert!(bind.location().starts_with("/workspaces/wsp_"), "{} {}", bind.status, bind.body);
    let unbind = browser.post(&format!("{base}{}/unbind", bind.location()), &[("command_id", "web_unbind")], origin);
    assert_eq!(unbind.location(), node);
    assert_eq!(browser.get(&format!("{base}{}", bind.location())).status, 404);

    let enrolled = browser.post(&format!("{base}/nodes/enroll"), &[("name", "laptop")], origin);
    assert_page(&enrolled, "enrollment", &["cortex node run --core", "--token cen_"]);
    let revoked = browser.post(&format!("{base}{node}/revoke"), &[], origin);
    assert_eq!(revoked.status, 303);
    assert!(browser.get(&format!("{base}{node}")).body.contains("badge revoked"));
}

#[test]
fn a_deep_link_survives_the_login() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let asked = Browser::new().get(&format!("{}/search?q=plan", core.url));
    assert_eq!(asked.status, 401);
    assert!(asked.body.contains("name=\"next\" value=\"/search?q=plan\""), "{}", asked.body);
    let link = core.login_url(&env);
    let login = Browser::new().get(&format!("{link}&next=/search?q=plan"));
    assert_eq!(login.location(), "/search?q=plan");
    let link = env.cortex_at(&core, env.root.path(), ["panel", "login"]).stdout.trim().to_string();
    let elsewhere = Browser::new().get(&format!("{link}&next=//evil.example/"));
    assert_eq!(elsewhere.location(), "/", "never a redirect to another site");
}

#[test]
fn a_long_session_page_starts_with_its_latest_events() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let steps: String = (1..=600).map(|step| format!("[[step]]\nmessage = \"note {step}\"\n")).collect();
    let script = env.script("long.toml", &steps);
    let run =
        env.cortex_at(&core, &env.repo, ["session", "start", "long", "--script", script.to_str().unwrap(), "--json"]);
    let id = run.json()["session_id"].as_str().unwrap().to_string();
    let last = wait_state(&env, &core, &id, "idle")["last_seq"].as_u64().unwrap();
    let browser = logged_in(&env, &core);
    let page = browser.get(&format!("{}/sessions/{id}", core.url));
    assert_page(
        &page,
        "long session",
        &["earlier event(s) are not shown", "note 600", &format!("id=\"event-{last}\"")],
    );
    assert!(!page.body.contains("note 1<"), "the first notes wait behind the link");
    assert!(page.body.contains(&format!("data-last-seq=\"{last}\"")), "live updates continue after the last event");
    let all = browser.get(&format!("{}/sessions/{id}?all=1", core.url));
    assert_page(&all, "whole session", &["note 1<", "note 600"]);
}

#[test]
fn the_inspector_lists_shows_and_saves_files_as_text() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let bound = env.cortex_at(&core, &env.repo, ["workspace", "bind", "--json"]);
    let workspace = bound.json()["id"].as_str().unwrap().to_string();
    std::fs::write(env.repo.join("page.html"), "line one\n<script>alert(3)</script>\nline three\n").unwrap();
    let browser = logged_in(&env, &core);
    let base = core.url.clone();

    let files = browser.get(&format!("{base}/workspaces/{workspace}/files"));
    assert_page(&files, "files", &["page.html", "untracked", "README.md"]);
    let file = browser.get(&format!("{base}/workspaces/{workspace}/file?path=page.html&lines=2-3"));
    assert_page(&file, "file", &["&#60;script&#62;alert(3)&#60;/script&#62;", "id=\"L3\" class=\"marked\"", "edit=1"]);
    assert!(file.body.contains("id=\"L1\">"), "line 1 is not marked");
    let editor = browser.get(&format!("{base}/workspaces/{workspace}/file?path=page.html&edit=1"));
    assert_page(&editor, "editor", &["<textarea name=\"content\"", "name=\"hash\" value=\""]);
    let escape = browser.get(&format!("{base}/workspaces/{workspace}/file?path=../../etc/passwd"));
    assert_eq!(escape.status, 422, "{}", escape.body);
    assert!(escape.body.contains("climbs out"), "{}", escape.body);
    assert_eq!(browser.get(&format!("{base}/workspaces/{workspace}/file?path=nope.txt")).status, 404);

    let stale = [("path", "page.html"), ("content", "mine\r\n"), ("hash", "0000")];
    let conflict = browser.post(&format!("{base}/workspaces/{workspace}/file"), &stale, Some(&base));
    assert_eq!(conflict.status, 409, "{}", conflict.body);
    assert!(
        conflict.body.contains("changed on disk") && conflict.body.contains(">mine\n</textarea>"),
        "{}",
        conflict.body
    );
    assert!(std::fs::read_to_string(env.repo.join("page.html")).unwrap().starts_with("line one"));
    let foreign = browser.post(&format!("{base}/workspaces/{workspace}/file"), &stale, Some("http://evil.example"));
    assert_eq!(foreign.status, 403);
    let created = [("path", "new/dir/made.txt"), ("content", "made\r\nhere\r\n")];
    let made = browser.post(&format!("{base}/workspaces/{workspace}/file"), &created, Some(&base));
    assert_eq!(made.status, 303, "{}", made.body);
    assert_eq!(std::fs::read_to_string(env.repo.join("new/dir/made.txt")).unwrap(), "made\nhere\n");

    let moved = browser.post(
        &format!("{base}/workspaces/{workspace}/move"),
        &[("from", "new/dir/made.txt"), ("to", "new/renamed.txt")],
        Some(&base),
    );
    assert_eq!(moved.status, 303, "{}", moved.body);
    assert!(moved.location().contains("path=new/renamed.txt"), "{}", moved.location());
    assert!(env.repo.join("new/renamed.txt").exists() && !env.repo.join("new/dir/made.txt").exists());
    let outside = browser.post(
        &format!("{base}/workspaces/{workspace}/move"),
        &[("from", "new/renamed.txt"), ("to", "../escaped.txt")],
        Some(&base),
    );
    assert_eq!(outside.status, 422, "{}", outside.body);
    let stale_delete = browser.post(
        &format!("{base}/workspaces/{workspace}/delete"),
        &[("path", "new/renamed.txt"), ("hash", "0000")],
        Some(&base),
    );
    assert_eq!(stale_delete.status, 409, "a file changed since it was shown is not deleted");
    assert!(env.repo.join("new/renamed.txt").exists());
    let hash = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(std::fs::read(env.repo.join("new/renamed.txt")).unwrap()))
    };
    let deleted = browser.post(
        &format!("{base}/workspaces/{workspace}/delete"),
        &[("path", "new/renamed.txt"), ("hash", &hash)],
        Some(&base),
    );
    assert_eq!(deleted.status, 303, "{}", deleted.body);
    assert!(!env.repo.join("new/renamed.txt").exists());
}

#[test]
fn a_terminal_page_is_the_panels_own_and_closes_its_shell() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let bound = env.cortex_at(&core, &env.repo, ["workspace", "bind", "--json"]);
    let workspace = bound.json()["id"].as_str().unwrap().to_string();
    let browser = logged_in(&env, &core);
    let base = core.url.clone();
    let opened = browser.post(&format!("{base}/workspaces/{workspace}/terminals"), &[], Some(&base));
    assert_eq!(opened.status, 303, "{}", opened.body);
    let page_url = format!("{base}{}", opened.location());
    let page = browser.get(&page_url);
    assert_page(
        &page,
        "terminal",
        &["/static/vendor/xterm-6.0.0.js", "data-socket=\"/terminals/trm_", "cortex term --attach"],
    );
    let csp = page.headers.get("content-security-policy").unwrap().to_str().unwrap();
    assert!(csp.contains("script-src 'self';") && csp.contains("style-src 'self' 'unsafe-inline'"), "{csp}");
    let socket = format!("{page_url}/ws");
    let hijack = browser.request(
        reqwest::Method::GET,
        &socket,
        &[
            ("Origin", "http://evil.example"),
            ("Connection", "Upgrade"),
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
    );
    assert_eq!(hijack.status, 403, "another site cannot open the terminal");
    assert!(
        browser.get(&format!("{base}/workspaces/{workspace}")).body.contains(opened.location()),
        "listed on the workspace"
    );
    let closed = browser.post(&format!("{page_url}/close"), &[], Some(&base));
    assert_eq!(closed.status, 303, "{}", closed.body);
    let terminal = opened.location().trim_start_matches("/terminals/").to_string();
    let http = crate::support::cluster::Http::new(&core);
    crate::support::wait_for(|| {
        let (_, summary) = http.get(&format!("/api/v1/terminals/{terminal}"), Some(http.token()));
        summary.get("exited").is_some().then_some(())
    })
    .expect("the shell ends when its terminal is closed");
}

#[test]
fn a_workspace_check_streams_on_a_terminal_page_and_its_output_is_journal_evidence() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    std::fs::create_dir_all(env.repo.join(".cortex")).unwrap();
    std::fs::write(
        env.repo.join(".cortex/config.toml"),
        "[[checks]]\nname = \"lint\"\nwhen = \"manual\"\ncommand = \"echo lint-$((40+2)) sk-$((1+1))abcdefghijklmnopqrstuvwxyz; exit 3\"\n",
    )
    .unwrap();
    let bound = env.cortex_at(&core, &env.repo, ["workspace", "bind", "--json"]);
    let workspace = bound.json()["id"].as_str().unwrap().to_string();
    let browser = logged_in(&env, &core);
    let base = core.url.clone();
    let page = browser.get(&format!("{base}/workspaces/{workspace}"));
    assert_page(&page, "workspace", &["lint", "echo lint-$((40+2))", "/checks\""]);
    let unknown = browser.post(&format!("{base}/workspaces/{workspace}/checks"), &[("name", "nope")], Some(&base));
    assert_eq!(unknown.status, 422);
    assert!(unknown.body.contains("no check named `nope`"), "{}", unknown.body);

    let run = browser.post(&format!("{base}/workspaces/{workspace}/checks"), &[("name", "lint")], Some(&base));
    assert_eq!(run.status, 303, "{}", run.body);
    let terminal = run.location().trim_start_matches("/terminals/").to_string();
    let http = crate::support::cluster::Http::new(&core);
    let summary = crate::support::wait_for(|| {
        let (_, summary) = http.get(&format!("/api/v1/terminals/{terminal}"), Some(http.token()));
        summary.get("exited").is_some().then_some(summary)
    })
    .expect("the check ends");
    assert_eq!(summary["exited"], 3, "{summary}");
    let attach = env
        .cortex_command(env.root.path())
        .env("CORTEX_HOME", &core.data)
        .args(["term", "--attach", &terminal])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&attach.stdout);
    assert!(shown.contains("lint-42 [REDACTED]") && shown.contains("[lint failed, exit 3]"), "{shown}");
    assert!(!shown.contains("sk-2abcdefghijklmnopqrstuvwxyz"), "a secret in the output is redacted live: {shown}");

    let journal = browser.get(&format!("{base}/workspaces/{workspace}"));
    assert_page(&journal, "journal", &["lint failed (exit 3); output at checks/"]);
    let listing = env.git(&env.repo, ["ls-tree", "-r", "--name-only", "refs/cortex/workspace/journal"]);
    let log = listing
        .lines()
        .find(|path| path.starts_with("checks/") && path.ends_with("-lint.log"))
        .expect("the output is kept");
    let output = env.git(&env.repo, ["show", &format!("refs/cortex/workspace/journal:{log}")]);
    assert_eq!(output, "lint-42 [REDACTED]\n");
}

/// Round 1: `next=/%09/evil.example` passed the filter (browsers drop the
/// tab), a Referer was compared by prefix, any `Bearer x` skipped the
/// Origin check while the cookie authenticated, the Host was trusted, a
/// lowercase `bearer` was refused, and cookies never expired.
#[test]
fn forged_origins_hosts_and_redirects_are_refused() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    for next in ["/%09/evil.example", "/%0a/evil.example", "/%5c/evil.example", "/%20/evil.example"] {
        let link = env.cortex_at(&core, env.root.path(), ["panel", "login"]).stdout.trim().to_string();
        let login = Browser::new().get(&format!("{link}&next={next}"));
        assert_eq!(login.location(), "/", "{next}");
        let cookie = login.headers.get("set-cookie").unwrap().to_str().unwrap();
        assert!(cookie.contains("Max-Age="), "a login lasts a while, not forever: {cookie}");
    }
    let browser = logged_in(&env, &core);
    let base = core.url.clone();
    let url = format!("{base}/nodes/enroll");
    let form = "name=sneaky";
    let form_type = ("Content-Type", "application/x-www-form-urlencoded");
    let post = |headers: &[(&str, &str)]| {
        browser.runtime.block_on(async {
            let mut request = browser.client.post(&url).body(form);
            for (name, value) in headers.iter().chain([&form_type]) {
                request = request.header(*name, *value);
            }
            request = request.header("Cookie", browser.cookie.as_deref().unwrap());
            request.send().await.unwrap().status().as_u16()
        })
    };
    let lookalike = format!("{base}.evil.example/page");
    assert_eq!(post(&[("Referer", &lookalike)]), 403, "a Referer on another host that starts like ours");
    assert_eq!(post(&[("Authorization", "Bearer x")]), 403, "a bogus bearer does not skip the check for a cookie");
    assert_eq!(post(&[("Referer", &format!("{base}/nodes"))]), 200, "our own Referer is fine");
    let port = base.rsplit(':').next().unwrap();
    let rebound =
        browser.request(reqwest::Method::GET, &format!("{base}/"), &[("Host", &format!("evil.example:{port}"))]);
    assert_eq!(rebound.status, 421, "a rebound DNS name is not this Core");
    let localhost =
        browser.request(reqwest::Method::GET, &format!("{base}/"), &[("Host", &format!("localhost:{port}"))]);
    assert_eq!(localhost.status, 200);
    let lower = Browser::new().request(
        reqwest::Method::GET,
        &format!("{base}/api/v1/sessions"),
        &[("Authorization", &format!("bearer {}", core.token()))],
    );
    assert_eq!(lower.status, 200, "the scheme is case-insensitive");
}

/// Round 1 put file paths into links unencoded: `a&b #1.txt` cut the query
/// at `&` and `#`.
#[test]
fn a_file_with_url_characters_in_its_name_opens_and_saves() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let bound = env.cortex_at(&core, &env.repo, ["workspace", "bind", "--json"]);
    let workspace = bound.json()["id"].as_str().unwrap().to_string();
    std::fs::create_dir_all(env.repo.join("odd dir")).unwrap();
    std::fs::write(env.repo.join("odd dir/a&b #1+%.txt"), "odd content\n").unwrap();
    let browser = logged_in(&env, &core);
    let base = core.url.clone();
    let folder = browser.get(&format!("{base}/workspaces/{workspace}/files?path=odd%20dir"));
    let link =
        folder.links(&format!("/workspaces/{workspace}/file?path=")).into_iter().next().expect("a link to the file");
    let link = link.replace("&amp;", "&");
    let page = browser.get(&format!("{base}{link}"));
    assert_eq!(page.status, 200, "{link}: {}", page.body);
    assert!(page.body.contains("odd content"), "{link}: {}", page.body);
    let hash = page.body.split("name=\"hash\" value=\"").nth(1).map(|rest| rest.split('"').next().unwrap().to_string());
    let editor = browser.get(&format!("{base}{link}&edit=1"));
    let hash = hash.or_else(|| {
        editor.body.split("name=\"hash\" value=\"").nth(1).map(|rest| rest.split('"').next().unwrap().to_string())
    });
    let form = [("path", "odd dir/a&b #1+%.txt"), ("content", "saved\r\n"), ("hash", hash.as_deref().unwrap())];
    let saved = browser.post(&format!("{base}/workspaces/{workspace}/file"), &form, Some(&base));
    assert_eq!(saved.status, 303, "{}", saved.body);
    let back = browser.get(&format!("{base}{}", saved.location()));
    assert!(back.body.contains("saved"), "the redirect leads back to the same file: {}", saved.location());
    assert_eq!(std::fs::read_to_string(env.repo.join("odd dir/a&b #1+%.txt")).unwrap(), "saved\n");
}

/// Issue 11: every URL the panel builds percent-encodes a file's path, so a
/// file named `a&b #1.txt` opens from the diff, edits and saves.
#[test]
fn a_file_with_an_odd_name_opens_from_the_diff_and_saves() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let script = env
        .script("odd.toml", "[[turn]]\n[[turn.step]]\nwrite_file = { path = \"a&b #1.txt\", content = \"odd\\n\" }\n");
    let started =
        env.cortex_at(&core, &env.repo, ["session", "start", "odd", "--script", script.to_str().unwrap(), "--json"]);
    assert_eq!(started.code, 0, "{}", started.stderr);
    let id = started.json()["session_id"].as_str().unwrap().to_string();
    let browser = logged_in(&env, &core);
    let base = core.url.clone();

    let diff = browser.get(&format!("{base}/sessions/{id}/diff"));
    assert_page(&diff, "diff", &["a&#38;b #1.txt"]);
    let open = diff.links("/workspaces/").into_iter().find(|link| link.contains("/file?")).expect("an open link");
    let open = open.replace("&amp;", "&").replace("&#38;", "&");
    assert!(open.contains("path=a%26b%20%231.txt"), "the path is encoded: {open}");
    let file = browser.get(&format!("{base}{open}"));
    assert_page(&file, "file", &["odd", "edit=1"]);
    let edit = file.links("/workspaces/").into_iter().find(|link| link.contains("edit=1")).expect("an edit link");
    let editor = browser.get(&format!("{base}{}", edit.replace("&amp;", "&").replace("&#38;", "&")));
    assert_page(&editor, "editor", &["<textarea name=\"content\""]);
    let hash = editor.body.split("name=\"hash\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let workspace = open.split('/').nth(2).unwrap().to_string();
    let saved = browser.post(
        &format!("{base}/workspaces/{workspace}/file"),
        &[("path", "a&b #1.txt"), ("content", "odd, edited\n"), ("hash", &hash), ("session", &id)],
        Some(&base),
    );
    assert_eq!(saved.status, 303, "{}", saved.body);
    let back = browser.get(&format!("{base}{}", saved.location()));
    assert_page(&back, "saved file", &["odd, edited"]);
    assert_eq!(std::fs::read_to_string(env.repo.join("a&b #1.txt")).unwrap(), "odd, edited\n");
}

/// Issue 11: a page whose read of Core's index fails says so with a 500,
/// never a 404 that would send a person looking for a session that exists.
#[test]
fn an_index_that_cannot_be_read_is_a_500_page_not_a_404() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let id = {
        let script = env.script("s.toml", "[[turn]]\n[[turn.step]]\nmessage = \"hi\"\n");
        let run =
            env.cortex_at(&core, &env.repo, ["session", "start", "x", "--script", script.to_str().unwrap(), "--json"]);
        run.json()["session_id"].as_str().unwrap().to_string()
    };
    let browser = logged_in(&env, &core);
    assert_eq!(browser.get(&format!("{}/sessions/{id}", core.url)).status, 200);
    let index = rusqlite::Connection::open(env.cortex_home.join("index.sqlite")).unwrap();
    index.execute_batch("ALTER TABLE sessions RENAME TO sessions_gone").unwrap();
    let page = browser.get(&format!("{}/sessions/{id}", core.url));
    assert_eq!(page.status, 500, "{}", page.body);
    assert!(page.body.contains("Core could not read its state"), "{}", page.body);
    let dashboard = browser.get(&format!("{}/", core.url));
    assert_eq!(dashboard.status, 500, "an empty dashboard would be a lie: {}", dashboard.body);
}
