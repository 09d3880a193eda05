//! `cargo xtask dist [--check]`: the release tarball people install from:
//! `bin/cortex` (release build, stripped), `share/man/man1/*.1` (one page per
//! command), completions for bash, zsh and fish where each shell looks
//! under a prefix, and the README. `--check` unpacks it into a scratch
//! prefix and runs what a new user would: `cortex --version`, `man`, and
//! bash completion, from there alone.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};

fn run(command: &mut Command) -> anyhow::Result<String> {
    let shown = format!("{command:?}");
    let out = command.output().with_context(|| format!("cannot run {shown}"))?;
    if !out.status.success() {
        bail!("{shown} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Builds `target/dist/cortex-VERSION-ARCH-OS.tar.gz`, and with `check`
/// tries it from a scratch prefix.
pub fn dist(check: bool) -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("xtask lives in the workspace")?.to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("== cargo build --release");
    let status = Command::new(&cargo).current_dir(&root).args(["build", "--release", "--bin", "cortex"]).status()?;
    ensure!(status.success(), "the release build failed");
    let bin = root.join("target/release/cortex");
    let version = run(Command::new(&bin).arg("--version"))?;
    let number = version.split_whitespace().nth(1).context("`cortex --version` says no version")?.to_string();
    let name = format!("cortex-{number}-{}-{}", std::env::consts::ARCH, std::env::consts::OS);
    let dist = root.join("target/dist");
    let stage = dist.join(&name);
    if stage.exists() {
        std::fs::remove_dir_all(&stage)?;
    }
    for dir in [
        "bin",
        "share/man/man1",
        "share/bash-completion/completions",
        "share/zsh/site-functions",
        "share/fish/vendor_completions.d",
        "share/doc/cortex",
    ] {
        std::fs::create_dir_all(stage.join(dir))?;
    }
    std::fs::copy(&bin, stage.join("bin/cortex"))?;
    // The release profile keeps line tables for benchmarks' backtraces; a
    // shipped binary does without (115 MB → 21 MB).
    if let Err(error) = run(Command::new("strip").arg(stage.join("bin/cortex"))) {
        eprintln!("warning: the binary is not stripped ({error:#})");
    }
    run(Command::new(&bin).arg("man-pages").arg(stage.join("share/man/man1")).arg("-q"))?;
    for (shell, file) in [
        ("bash", "share/bash-completion/completions/cortex"),
        ("zsh", "share/zsh/site-functions/_cortex"),
        ("fish", "share/fish/vendor_completions.d/cortex.fish"),
    ] {
        std::fs::write(stage.join(file), run(Command::new(&bin).args(["completions", shell]))?)?;
    }
    std::fs::copy(root.join("README.md"), stage.join("share/doc/cortex/README.md"))?;
    let tarball = dist.join(format!("{name}.tar.gz"));
    run(Command::new("tar").arg("-czf").arg(&tarball).arg("-C").arg(&dist).arg(&name))?;
    let size = std::fs::metadata(&tarball)?.len();
    println!("{} ({:.1} MiB): {}", tarball.display(), size as f64 / 1048576.0, version.trim());
    if check {
        check_from_scratch(&tarball)?;
    }
    Ok(())
}

/// Unpacks `tarball` into a scratch prefix and uses it from there only.
fn check_from_scratch(tarball: &PathBuf) -> anyhow::Result<()> {
    let prefix = tempfile::tempdir()?;
    let prefix = prefix.path();
    run(Command::new("tar").arg("-xzf").arg(tarball).arg("-C").arg(prefix).arg("--strip-components=1"))?;
    let path = format!("{}:/usr/bin:/bin", prefix.join("bin").display());
    // Found on the PATH (a child's PATH is where Rust looks it up).
    let version = run(Command::new("cortex").arg("--version").env("PATH", &path))?;
    ensure!(version.starts_with("cortex "), "`cortex --version` said {version:?}");
    println!("ok: {}", version.trim());
    let page = run(Command::new("man")
        .arg("cortex-session-start")
        .env("MANPATH", prefix.join("share/man"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "80"))?;
    ensure!(page.contains("cortex-session-start - Start an agent session"), "man cortex-session-start:\n{page}");
    println!("ok: man cortex-session-start, from the prefix's MANPATH");
    // A bash that loads only the prefix's completion answers `cortex se<Tab>`.
    let script = format!(
        "source {}; COMP_WORDS=(cortex se); COMP_CWORD=1; COMP_LINE='cortex se'; COMP_POINT=9; _cortex cortex se cortex; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        prefix.join("share/bash-completion/completions/cortex").display()
    );
    let completed = run(Command::new("bash").args(["--norc", "--noprofile", "-c", &script]).env("PATH", &path))?;
    ensure!(
        completed.lines().any(|line| line.trim() == "session"),
        "bash completion of `cortex se` gave {completed:?}"
    );
    println!("ok: bash completes `cortex se` to `session`");
    Ok(())
}
