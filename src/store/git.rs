//! Running the git CLI for the few things gix cannot do. Hooks and external
//! diff drivers are switched off; the user's own config still applies (their
//! excludes files, their credentials for push and fetch).

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use super::{Error, Result};

/// Runs `git <args>` in `dir` with `envs` set, and returns stdout on success.
pub(crate) fn run<I, S>(dir: &Path, args: I, envs: &[(&str, &OsStr)]) -> Result<Vec<u8>>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let output = output(dir, args, envs)?;
    Ok(output.stdout)
}

pub(crate) fn output<I, S>(dir: &Path, args: I, envs: &[(&str, &OsStr)]) -> Result<Output>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    spawn(dir, args, envs, None, true)
}

/// Runs `git <args>` and returns its output whatever its exit status (for
/// commands whose partial success is useful, like `add --ignore-errors`).
pub(crate) fn output_lenient<I, S>(dir: &Path, args: I, envs: &[(&str, &OsStr)]) -> Result<Output>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    spawn(dir, args, envs, None, false)
}

/// Runs `git <args>` with `input` on its standard input; returns stdout.
pub(crate) fn run_with_input<I, S>(dir: &Path, args: I, envs: &[(&str, &OsStr)], input: Vec<u8>) -> Result<Vec<u8>>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Ok(spawn(dir, args, envs, Some(input), true)?.stdout)
}

/// Runs git; with `strict`, a failure exit is an error naming its stderr.
fn spawn<I, S>(dir: &Path, args: I, envs: &[(&str, &OsStr)], input: Option<Vec<u8>>, strict: bool) -> Result<Output>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args.into_iter().map(|arg| arg.as_ref().to_os_string()).collect();
    let shown = args.iter().map(|arg| arg.to_string_lossy()).collect::<Vec<_>>().join(" ");
    let mut command = Command::new("git");
    command
        .current_dir(dir)
        .args(["-c", "core.hooksPath=/dev/null", "-c", "core.quotePath=false"])
        .args(&args)
        .stdin(Stdio::null())
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE");
    for (key, value) in envs {
        command.env(key, value);
    }
    let cannot_run =
        |source| Error::Io { context: format!("cannot run `git {shown}` (is git installed and on PATH?)"), source };
    let output = match input {
        None => command.output().map_err(cannot_run)?,
        Some(input) => {
            command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
            let mut child = command.spawn().map_err(cannot_run)?;
            let mut stdin = child.stdin.take().expect("holds because stdin was piped");
            // Written from a thread, so a large answer cannot block the writer.
            let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &input));
            let output = child.wait_with_output().map_err(cannot_run)?;
            let _ = writer.join();
            output
        }
    };
    if strict && !output.status.success() {
        return Err(Error::GitCommand {
            args: shown,
            dir: dir.to_path_buf(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(output)
}
