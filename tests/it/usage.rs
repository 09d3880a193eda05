//! Tokens, cost and budgets: per-turn usage is the agent's own figure
//! (scripted here), summed by session, workspace, node and day alike
//! in-process and through Core; a budget crossed mid-turn interrupts it.

use crate::support::TestEnv;
use crate::support::cluster::free_port;

fn usage_events(env: &TestEnv, id: &str) -> Vec<serde_json::Value> {
    let log = env.cortex_ok(["session", "log", id, "--json"]).json();
    log.as_array().unwrap().iter().filter(|event| event["kind"] == "token_usage").cloned().collect()
}

#[test]
fn per_turn_usage_is_the_agents_own_and_sums_alike_everywhere() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.repo.join(".cortex")).unwrap();
    std::fs::write(env.repo.join(".cortex/config.toml"), "[pricing.m1]\ninput = 2.0\noutput = 8.0\n").unwrap();
    let script = env.script(
        "s.toml",
        "[[turn]]\n[[turn.step]]\nusage = { input = 100, output = 20, model = \"m1\" }\n\
         [[turn.step]]\nusage = { input = 50, output = 10, cached = 40 }\n[[turn.step]]\nmessage = \"one\"\n\
         [[turn]]\n[[turn.step]]\nusage = { input = 7, output = 3, cost_usd = 0.5 }\n",
    );
    let start = env.cortex_ok(["session", "start", "go", "--script", script.to_str().unwrap(), "--json"]).json();
    let id = start["session_id"].as_str().unwrap().to_string();
    env.cortex_ok(["session", "send", &id, "more", "--json"]);

    let events = usage_events(&env, &id);
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["turn"], 1);
    assert_eq!(events[0]["usage"]["input_tokens"], 150);
    assert_eq!(events[0]["usage"]["cached_input_tokens"], 40);
    assert_eq!(events[0]["usage"]["output_tokens"], 30);
    assert_eq!(events[0]["usage"]["total_tokens"], 180);
    assert_eq!(events[0]["model"], "m1");
    // 110 fresh input at $2/M, 40 cached priced as input, 30 output at $8/M.
    let computed = (150.0 * 2.0 + 30.0 * 8.0) / 1e6;
    assert!((events[0]["cost_usd"].as_f64().unwrap() - computed).abs() < 1e-12, "{}", events[0]);
    assert_eq!(events[0]["cost_source"], "computed");
    assert_eq!(events[1]["usage"]["total_tokens"], 10);
    assert_eq!(events[1]["cost_usd"], 0.5);
    assert_eq!(events[1]["cost_source"], "provider");

    let in_process: Vec<serde_json::Value> = ["session", "workspace", "node", "day"]
        .iter()
        .map(|by| env.cortex_ok(["usage", "--by", by, "--json"]).json())
        .collect();
    for report in &in_process {
        assert_eq!(report["rows"].as_array().unwrap().len(), 1, "{report}");
        assert_eq!(report["total"]["turns"], 2, "{report}");
        assert_eq!(report["total"]["total_tokens"], 190, "{report}");
        assert_eq!(report["total"]["input_tokens"], 157, "{report}");
        assert!((report["total"]["cost_usd"].as_f64().unwrap() - (0.5 + computed)).abs() < 1e-12, "{report}");
        assert_eq!(report["total"]["cost_computed"], true);
    }
    assert_eq!(in_process[0]["rows"][0]["key"], id.as_str());
    let today = jiff::Timestamp::now().to_string()[..10].to_string();
    assert_eq!(in_process[3]["rows"][0]["key"], today.as_str());
    assert_eq!(env.cortex_ok(["usage", "--since", "1d", "--json"]).json()["total"]["turns"], 2);
    let table = env.cortex_ok(["usage"]).stdout;
    assert!(table.starts_with("SESSION") && table.contains("190") && table.contains('*'), "{table}");

    // Through Core, the same sums.
    let core = env.start_core("up", &env.cortex_home, free_port());
    for (by, local) in ["session", "workspace", "node", "day"].iter().zip(&in_process) {
        let remote = env.cortex_at(&core, &env.repo, ["usage", "--by", by, "--json"]).json();
        assert_eq!(remote["total"], local["total"], "by {by}");
        assert_eq!(remote["rows"][0]["key"], local["rows"][0]["key"], "by {by}");
        assert_eq!(remote["rows"][0]["label"], local["rows"][0]["label"], "by {by}");
    }
    let http = crate::support::cluster::Http::new(&core);
    let token = core.token();
    let (status, answer) = http.get("/api/v1/usage?by=day", Some(&token));
    assert_eq!((status, &answer["total"]), (200, &in_process[3]["total"]), "the API answers as the CLI does");
    let (status, refused) = http.get("/api/v1/usage?since=yesterday", Some(&token));
    assert_eq!(status, 422, "bad input: {refused}");
    assert!(refused.to_string().contains("RFC 3339"), "{refused}");
    assert_eq!(http.get("/api/v1/usage?by=planet", Some(&token)).0, 422);

    // The panel: the same sums, and the dashboard's spend per day.
    let browser = crate::support::panel::logged_in(&env, &core);
    let page = browser.get(&format!("{}/usage?by=session", core.url));
    assert_eq!(page.status, 200, "{}", page.body);
    let cost = in_process[0]["total"]["cost_usd"].as_f64().unwrap();
    let row = format!(
        "<td>2</td><td>157</td><td>40</td><td>33</td><td>0</td><td>190</td><td>{}*</td>",
        cortex::protocol::dollars(cost)
    );
    assert!(page.body.contains(&row), "{row} in {}", page.body);
    assert!(page.body.contains(&format!("href=\"/sessions/{id}\">go</a>")), "{}", page.body);
    let bad = browser.get(&format!("{}/usage?since=yesterday", core.url));
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("is not a date"), "{}", bad.body);
    let dashboard = browser.get(&format!("{}/", core.url)).body;
    assert!(dashboard.contains("Sessions by state") && dashboard.contains("1 session(s)"), "{dashboard}");
    let spend = &dashboard[dashboard.find("id=\"spend\"").unwrap()..];
    let values: Vec<f64> = spend
        .split("data-value=\"")
        .skip(1)
        .take(30)
        .map(|rest| rest.split('"').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(values.len(), 30, "a bar per day");
    assert!((values[29] - cost).abs() < 1e-9 && values[..29].iter().all(|value| *value == 0.0), "{values:?}");
}

#[test]
fn a_budget_crossed_mid_turn_interrupts_it_and_a_spent_session_takes_no_turn() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.repo.join(".cortex")).unwrap();
    std::fs::write(env.repo.join(".cortex/config.toml"), "[budget]\nsession_tokens = 1000\n").unwrap();
    let script = env.script(
        "s.toml",
        "[[turn]]\n[[turn.step]]\nusage = { input = 600 }\n[[turn.step]]\nmessage = \"one\"\n\
         [[turn]]\n[[turn.step]]\nusage = { input = 300 }\n[[turn.step]]\nusage = { input = 300 }\n\
         [[turn.step]]\nsleep_ms = 30000\n[[turn.step]]\nmessage = \"never reached\"\n",
    );
    let start = env.cortex_ok(["session", "start", "go", "--script", script.to_str().unwrap(), "--json"]).json();
    let id = start["session_id"].as_str().unwrap().to_string();
    let second = env.cortex(["session", "send", &id, "more", "--json"]);
    assert_eq!(second.code, 1, "an interrupted turn: {}", second.stderr);
    assert_eq!(second.json()["outcome"], "interrupted");

    let log = env.cortex_ok(["session", "log", &id, "--json"]).json();
    let events = log.as_array().unwrap();
    let crossed: Vec<_> = events.iter().filter(|event| event["kind"] == "budget_exceeded").collect();
    assert_eq!(crossed.len(), 1, "{log}");
    assert_eq!(crossed[0]["budget"], "session_tokens");
    assert_eq!(crossed[0]["limit"], 1000.0);
    assert_eq!(crossed[0]["used"], 1200.0);
    assert!(!log.to_string().contains("never reached"), "{log}");
    assert_eq!(usage_events(&env, &id)[1]["usage"]["total_tokens"], 600, "the turn's own use, to the crossing");
    let shown = env.cortex_ok(["session", "show", &id, "--json"]).json();
    assert_eq!(shown["session"]["state"], "idle", "{shown}");
    let reason = shown["session"]["state_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("used 1200 tokens, over its limit of 1000 tokens"), "{reason}");

    let refused = env.cortex(["session", "send", &id, "again", "--json"]);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("session_tokens") && refused.stderr.contains("raise it"), "{}", refused.stderr);
    let plain = env.cortex_ok(["session", "log", &id]).stdout;
    assert!(plain.contains("budget: the session used 1200 tokens"), "{plain}");

    // An agent reporting absurd figures: the sums saturate, nothing panics.
    let huge = env.script(
        "h.toml",
        "[[step]]\nusage = { input = 9223372036854775807, output = 9223372036854775807 }\n\
         [[step]]\nusage = { input = 9223372036854775807 }\n",
    );
    std::fs::remove_file(env.repo.join(".cortex/config.toml")).unwrap();
    let run = env.cortex_ok(["session", "start", "big", "--script", huge.to_str().unwrap(), "--json"]).json();
    let id = run["session_id"].as_str().unwrap().to_string();
    assert_eq!(usage_events(&env, &id)[0]["usage"]["total_tokens"], u64::MAX);
}

#[test]
fn codex_turns_report_the_scripted_models_usage_exactly() {
    let env = TestEnv::new();
    let Some(codex) = crate::support::codex_binary() else { return };
    let model = crate::support::model::Model::start();
    std::fs::create_dir_all(env.repo.join(".cortex")).unwrap();
    let config = model.config(&codex, &env.path("codex-home"), "never");
    std::fs::write(env.repo.join(".cortex/config.toml"), config).unwrap();
    std::fs::write(env.repo.join(".gitignore"), "target/\n.cortex/\n").unwrap();
    let start = env.cortex_ok(["session", "start", "say hello", "--provider", "codex", "--json"]).json();
    let id = start["session_id"].as_str().unwrap().to_string();
    env.cortex_ok(["session", "send", &id, "run echo hi", "--json"]);
    let events = usage_events(&env, &id);
    // The scripted model reports 10 in and 5 out per request; a command is a second request.
    let totals: Vec<_> = events.iter().map(|event| event["usage"]["total_tokens"].as_u64().unwrap()).collect();
    assert_eq!(totals, [15, 30], "{events:?}");
    assert_eq!(events[1]["usage"]["input_tokens"], 20);
    assert_eq!(events[0]["model"], "gpt-5.5");
    let report = env.cortex_ok(["usage", "--json"]).json();
    assert_eq!(report["total"]["total_tokens"], 45);
    assert_eq!(report["total"]["unpriced_turns"], 2, "no price and no cost from codex: {report}");
}
