//! The review pages of `cargo xtask bench panel`, on a real `cortex up`: a
//! `fake` session writes a 5,000-line Rust file, and its turn's diff page
//! (5,000 added lines, highlighted on the server) is fetched through HTTP
//! with a panel cookie: the first render (the node reads the diff, every
//! line is highlighted), then p50/p99 of later ones (highlighting cached by
//! content), and the page's size; then the session's page once it has
//! 20 turns, each under its header.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;

use super::panel::{panel_cookie, render_times};
use super::{ms, row};

const LINES: usize = 5_000;
/// Turns of the session whose page is measured (its first writes the file).
const TURNS: usize = 20;

/// Rust that exercises the grammar: items, strings, numbers, comments.
fn source() -> String {
    let mut text = String::new();
    for index in 0..LINES / 5 {
        let _ = write!(
            text,
            "/// Adds {index} to the total.\npub fn step_{index}(total: u64) -> u64 {{\n    let label = \"step {index}\"; // why not\n    total + {index} + label.len() as u64\n}}\n"
        );
    }
    text
}

pub(super) async fn rows(cortex: &Path) -> anyhow::Result<Vec<String>> {
    let root = tempfile::tempdir()?;
    let repo = super::git_repo(root.path())?;
    let data = root.path().join("data");
    let _up = super::Up::start(cortex, &data)?;
    let base = super::wait_url(&data)?;
    let content = source();
    let script = root.path().join("write.toml");
    std::fs::write(
        &script,
        format!("[[step]]\nwrite_file = {{ path = \"src/steps.rs\", content = '''\n{content}''' }}\n"),
    )?;
    let started = super::cortex_json(
        cortex,
        &repo,
        &data,
        &["session", "start", "write steps", "--script", script.to_str().context("utf-8 path")?, "--json"],
    )?;
    let id = started["session_id"].as_str().context("no session id")?.to_string();
    let token = std::fs::read_to_string(data.join("admin.token"))?;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let cookie = panel_cookie(&http, &base, token.trim()).await?;

    let diff = format!("/sessions/{id}/turns/1/diff");
    let first = Instant::now();
    let page = http.get(format!("{base}{diff}")).header("Cookie", &cookie).send().await?.text().await?;
    let first = first.elapsed();
    let highlighted = page.matches("<span class=\"").count();
    anyhow::ensure!(
        page.contains(&format!("step_{}", LINES / 5 - 1)) && highlighted > LINES,
        "the diff page is not highlighted"
    );
    let (p50, p99, bytes) = render_times(&http, &base, &cookie, &diff).await?;
    let mut rows = vec![
        row(
            &format!(
                "highlighted {LINES}-line diff page, first render ({} KiB page, {highlighted} spans)",
                bytes / 1024
            ),
            ms(first),
        ),
        row("same, later renders, p50", ms(p50)),
        row("same, p99", ms(p99)),
    ];
    for turn in 2..=TURNS {
        super::cortex_json(cortex, &repo, &data, &["session", "send", &id, &format!("check step {turn}"), "--json"])?;
    }
    let (p50, p99, bytes) = render_times(&http, &base, &cookie, &format!("/sessions/{id}")).await?;
    rows.push(row(&format!("its session page, {TURNS} turns grouped, p50 ({} KiB page)", bytes / 1024), ms(p50)));
    rows.push(row("same, p99", ms(p99)));
    Ok(rows)
}
