//! Benchmarks: each prints a Markdown table for docs/benchmarks.md, and
//! measures a plain baseline in the same run where there is one.

mod budget;
mod codex;
mod core;
mod diff_page;
mod direct;
mod panel;
mod providers;
mod store;
mod tools;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

pub use self::budget::budget;
pub use self::codex::codex;
pub use self::core::core;
pub use self::panel::panel;
pub use self::providers::{installed_agents, providers};
pub use self::store::store;
pub use self::tools::{client as tools_client, tools};

pub(crate) fn row(what: &str, result: String) -> String {
    format!("| {what} | {result} |")
}

/// The median and the 99th percentile of `samples` (sorted in place).
pub(crate) fn p50_p99(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    let pick = |quantile: f64| samples[((samples.len() - 1) as f64 * quantile).round() as usize];
    (pick(0.50), pick(0.99))
}

pub(crate) fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

/// Prints the rows as a Markdown table and writes them, with the date and
/// the machine, into `docs/benchmarks.md` between the markers
/// `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`: the results there are
/// the benchmark's, never typed by hand.
pub(crate) fn publish(name: &str, rows: &[String]) -> anyhow::Result<()> {
    let mut table = format!("{}\n\n| benchmark | result |\n| --- | --- |\n", machine());
    for line in rows {
        table.push_str(line);
        table.push('\n');
    }
    println!("\n{table}");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("xtask lives in the repository")?;
    let path = root.join("docs/benchmarks.md");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let (begin, end) = (format!("<!-- bench:{name} -->"), format!("<!-- /bench:{name} -->"));
    let (Some(start), Some(stop)) = (text.find(&begin), text.find(&end)) else {
        bail!("{} has no `{begin}` … `{end}` section for this benchmark", path.display());
    };
    let updated = format!("{}{begin}\n{table}{}", &text[..start], &text[stop..]);
    std::fs::write(&path, updated).with_context(|| format!("cannot write {}", path.display()))?;
    println!("(written to docs/benchmarks.md)");
    Ok(())
}

/// When and on what: the date, cores, memory, CPU model.
fn machine() -> String {
    let date = Command::new("date")
        .arg("+%Y-%m-%d")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string());
    let cores = std::thread::available_parallelism().map_or(0, |cores| cores.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_gib = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib / 1024 / 1024);
    format!(
        "Measured {} on {cores} cores, {memory_gib} GiB ({}).",
        date.unwrap_or_default(),
        model.unwrap_or_else(|| "unknown CPU".into())
    )
}

/// Builds the release `cortex` binary and returns its path.
pub(crate) fn build_cortex() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo).args(["build", "--release", "--bin", "cortex"]).status()?;
    if !status.success() {
        bail!("cannot build the cortex binary");
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("xtask lives in the repository")?;
    Ok(root.join("target/release/cortex"))
}

/// An empty git repository `root/repo` with one commit, `.cortex/` made and
/// ignored.
pub(crate) fn git_repo(root: &Path) -> anyhow::Result<PathBuf> {
    let repo = root.join("repo");
    std::fs::create_dir_all(repo.join(".cortex"))?;
    for args in [
        &["init", "-q"][..],
        &["-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "--allow-empty", "-m", "init"],
    ] {
        Command::new("git").current_dir(&repo).args(args).status()?;
    }
    std::fs::write(repo.join(".gitignore"), ".cortex/\n")?;
    Ok(repo)
}

/// Runs `cortex ARGS` in `repo` with its data in `data` and parses its JSON.
pub(crate) fn cortex_json(cortex: &Path, repo: &Path, data: &Path, args: &[&str]) -> anyhow::Result<serde_json::Value> {
    let output = Command::new(cortex)
        .current_dir(repo)
        .env("CORTEX_HOME", data)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()?;
    if !output.status.success() {
        bail!("cortex {} failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr));
    }
    Ok(serde_json::from_slice(&output.stdout)?)
}

/// The URL a starting `cortex up` or `cortex core` with data in `data`
/// writes, once it answers (30 s at most).
pub(crate) fn wait_url(data: &Path) -> anyhow::Result<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(url) = std::fs::read_to_string(data.join("core.url"))
            && url.ends_with('\n')
        {
            return Ok(url.trim().to_string());
        }
        if std::time::Instant::now() > deadline {
            bail!("cortex did not start (no {})", data.join("core.url").display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `cortex up` on a free port with its data in `data`, its output
/// discarded; stopped with SIGTERM (then SIGKILL after 10 s) when dropped.
pub(crate) struct Up(std::process::Child);

impl Up {
    pub(crate) fn start(cortex: &Path, data: &Path) -> anyhow::Result<Up> {
        let child = Command::new(cortex)
            .env("CORTEX_HOME", data)
            .args(["up", "--bind", "127.0.0.1:0"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("cannot start cortex up")?;
        Ok(Up(child))
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while matches!(self.0.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
