//! Benchmarks: each prints a Markdown table for docs/benchmarks.md, and
//! measures a plain baseline in the same run where there is one.

mod codex;
mod core;
mod direct;
mod panel;
mod providers;
mod store;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

pub use self::codex::codex;
pub use self::core::core;
pub use self::panel::panel;
pub use self::providers::providers;
pub use self::store::store;

pub(crate) fn row(what: &str, result: String) -> String {
    format!("| {what} | {result} |")
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
