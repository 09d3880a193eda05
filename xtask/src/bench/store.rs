//! `cargo xtask bench store`: how fast the store writes, the index rebuilds,
//! and `session list` answers, each beside a plain-git baseline measured in
//! the same run on the same machine.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::{ms, row};
use cortex::core::Core;
use cortex::node::Node;
use cortex::protocol::{Event, EventKind, SessionId, SessionState};
use cortex::store::{FlushReason, META_SCHEMA, Meta, SessionWriter, Store};

/// Events appended in the write benchmark.
const APPEND_EVENTS: u64 = 20_000;
/// Events per `append` call in the batched path (one fsync each).
const BATCH: u64 = 256;
/// Sessions and events per session for the rebuild benchmark.
const REBUILD_SESSIONS: usize = 1_000;
const REBUILD_EVENTS: u64 = 100;
/// Sessions for the listing benchmark.
const LIST_SESSIONS: usize = 10_000;

pub fn store() -> anyhow::Result<()> {
    let cortex = super::build_cortex()?;
    let mut rows = Vec::new();

    let (batched, fast_import) = append_rate()?;
    rows.push(row("store append, batched (256 events/call, fsynced spool)", format!("{batched:.0} events/s")));
    rows.push(row("git fast-import of the same commits and blobs", format!("{fast_import:.0} events/s")));
    rows.push(row("ratio store / fast-import", format!("{:.2}", batched / fast_import)));
    let single = single_append_rate()?;
    rows.push(row("store append, one event per call (fsync each)", format!("{single:.0} events/s")));

    let (sessions_per_s, events_per_s) = rebuild_rate()?;
    rows.push(row(
        &format!("index rebuild, {REBUILD_SESSIONS} sessions × {REBUILD_EVENTS} events"),
        format!("{sessions_per_s:.0} sessions/s ({events_per_s:.0} events/s)"),
    ));

    let listing = list_times(&cortex)?;
    rows.push(row(
        &format!("`session list --json`, {LIST_SESSIONS} sessions, first run (index built)"),
        ms(listing.cold),
    ));
    rows.push(row(&format!("`session list --json`, {LIST_SESSIONS} sessions, warm (median of 5)"), ms(listing.warm)));
    rows.push(row("`git for-each-ref refs/cortex/sessions` (median of 5)", ms(listing.for_each_ref)));
    rows.push(row(
        "ratio warm list / for-each-ref",
        format!("{:.1}", listing.warm.as_secs_f64() / listing.for_each_ref.as_secs_f64()),
    ));

    super::publish("store", &rows)
}

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("git").current_dir(dir).args(args).stdin(Stdio::null()).output()?;
    if !output.status.success() {
        bail!("git {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8(output.stdout)?)
}

fn new_repo(root: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let repo = root.join(name);
    std::fs::create_dir_all(&repo)?;
    git(&repo, &["init", "-q"])?;
    Ok(repo)
}

fn meta(id: &SessionId) -> Meta {
    let now = jiff::Timestamp::now();
    Meta {
        provider_version: None,
        schema: META_SCHEMA,
        id: id.clone(),
        title: "benchmark".into(),
        provider: "fake".into(),
        node: "bench".into(),
        workspace: "wsp_bench".into(),
        base_commit: None,
        state: SessionState::Idle,
        state_reason: None,
        resume_ref: None,
        usage_total: None,
        cost_usd_total: None,
        worktree: None,
        branch: None,
        last_seq: 0,
        turns: 1,
        created_at: now,
        updated_at: now,
    }
}

/// A message of roughly the size agents produce: about 200 bytes.
fn event(seq: u64) -> Event {
    Event {
        seq,
        at: jiff::Timestamp::now(),
        turn: Some(1),
        cause: None,
        kind: EventKind::AssistantMessage {
            text: format!(
                "event {seq}: the quick brown fox jumps over the lazy dog while the tests run on port {seq} and pass"
            ),
        },
    }
}

/// Events per second through the batched store path, and through one
/// `git fast-import` run writing the same chunks as the same commit chain.
fn append_rate() -> anyhow::Result<(f64, f64)> {
    let root = tempfile::tempdir()?;
    let repo = new_repo(root.path(), "store")?;
    let store = Store::discover(&repo)?;
    let id = SessionId::generate();
    let mut writer = SessionWriter::create(&store, meta(&id))?;
    let mut events: Vec<Event> = (1..=APPEND_EVENTS).map(event).collect();
    let started = Instant::now();
    for batch in events.chunks_mut(BATCH as usize) {
        writer.append(batch)?;
    }
    writer.close()?;
    let store_rate = APPEND_EVENTS as f64 / started.elapsed().as_secs_f64();

    // The same chunk blobs and meta.toml, one commit per chunk, in one stream.
    let mut stream = Vec::new();
    let meta_text = meta(&id).to_toml();
    // Later commits on the same ref continue from its tip, as the store does.
    for batch in events.chunks(BATCH as usize) {
        let first = batch[0].seq;
        let chunk: String = batch.iter().map(|event| serde_json::to_string(event).unwrap() + "\n").collect();
        writeln!(stream, "commit refs/cortex/sessions/{id}")?;
        writeln!(stream, "committer Cortex <cortex@localhost> 1700000000 +0000")?;
        writeln!(stream, "data 6\nflush\n")?;
        writeln!(stream, "M 100644 inline events/{:04}/{first:010}.jsonl\ndata {}", first / 4096, chunk.len())?;
        stream.extend_from_slice(chunk.as_bytes());
        writeln!(stream, "\nM 100644 inline meta.toml\ndata {}", meta_text.len())?;
        stream.extend_from_slice(meta_text.as_bytes());
        writeln!(stream)?;
    }
    let plain = new_repo(root.path(), "fast-import")?;
    let started = Instant::now();
    let mut child =
        Command::new("git").current_dir(&plain).args(["fast-import", "--quiet"]).stdin(Stdio::piped()).spawn()?;
    child.stdin.take().context("fast-import stdin")?.write_all(&stream)?;
    if !child.wait()?.success() {
        bail!("git fast-import failed");
    }
    let fast_import_rate = APPEND_EVENTS as f64 / started.elapsed().as_secs_f64();
    Ok((store_rate, fast_import_rate))
}

fn single_append_rate() -> anyhow::Result<f64> {
    let root = tempfile::tempdir()?;
    let repo = new_repo(root.path(), "store")?;
    let store = Store::discover(&repo)?;
    let id = SessionId::generate();
    let mut writer = SessionWriter::create(&store, meta(&id))?;
    let count = 2_000;
    let started = Instant::now();
    for seq in 1..=count {
        writer.append(&mut [event(seq)])?;
    }
    writer.close()?;
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// Writes `sessions` sessions of `events` events each, one flush apiece.
fn populate(store: &Store, sessions: usize, events: u64) -> anyhow::Result<()> {
    for _ in 0..sessions {
        let id = SessionId::generate();
        let mut writer = SessionWriter::create(store, meta(&id))?;
        let mut batch: Vec<Event> = (1..=events).map(event).collect();
        writer.append(&mut batch)?;
        writer.flush(FlushReason::TurnEnd)?;
        writer.close()?;
    }
    Ok(())
}

fn rebuild_rate() -> anyhow::Result<(f64, f64)> {
    let root = tempfile::tempdir()?;
    let repo = new_repo(root.path(), "store")?;
    let store = Store::discover(&repo)?;
    populate(&store, REBUILD_SESSIONS, REBUILD_EVENTS)?;
    let data = root.path().join("data");
    let workspace = Node::open(&data)?.bind(&store)?;
    let started = Instant::now();
    let (_, stats) = Core::rebuild(&data, &[workspace], &mut |_, _| {})?;
    let elapsed = started.elapsed().as_secs_f64();
    if stats.sessions != REBUILD_SESSIONS {
        bail!("rebuilt {} sessions, expected {REBUILD_SESSIONS}", stats.sessions);
    }
    Ok((stats.sessions as f64 / elapsed, stats.events as f64 / elapsed))
}

struct ListTimes {
    cold: Duration,
    warm: Duration,
    for_each_ref: Duration,
}

fn list_times(cortex: &Path) -> anyhow::Result<ListTimes> {
    let root = tempfile::tempdir()?;
    let repo = new_repo(root.path(), "store")?;
    let store = Store::discover(&repo)?;
    populate(&store, LIST_SESSIONS, 3)?;
    let data = root.path().join("data");
    Node::open(&data)?.bind(&store)?;
    let time = |command: &mut Command| -> anyhow::Result<Duration> {
        let started = Instant::now();
        let output = command.stdin(Stdio::null()).output()?;
        if !output.status.success() {
            bail!("{command:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        Ok(started.elapsed())
    };
    let list = || {
        let mut command = Command::new(cortex);
        command.current_dir(&repo).env("CORTEX_HOME", &data).args(["session", "list", "--json"]);
        command
    };
    let for_each_ref = || {
        let mut command = Command::new("git");
        command.current_dir(&repo).args(["for-each-ref", "refs/cortex/sessions"]);
        command
    };
    // The answer is checked, not only timed: every session must come back.
    let listed = list().stdin(Stdio::null()).output()?;
    let count = serde_json::from_slice::<serde_json::Value>(&listed.stdout)?.as_array().map_or(0, Vec::len);
    if count != LIST_SESSIONS {
        bail!("`session list --json` returned {count} sessions, not {LIST_SESSIONS}");
    }
    let _ = std::fs::remove_file(data.join("index.sqlite"));
    let cold = time(&mut list())?;
    let median = |samples: &mut Vec<Duration>| {
        samples.sort();
        samples[samples.len() / 2]
    };
    let mut warm = (0..5).map(|_| time(&mut list())).collect::<anyhow::Result<Vec<_>>>()?;
    let mut plain = (0..5).map(|_| time(&mut for_each_ref())).collect::<anyhow::Result<Vec<_>>>()?;
    Ok(ListTimes { cold, warm: median(&mut warm), for_each_ref: median(&mut plain) })
}
