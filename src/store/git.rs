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
    let output = command.output().map_err(|source| Error::Io {
        context: format!("cannot run `git {shown}` (is git installed and on PATH?)"),
        source,
    })?;
    if !output.status.success() {
        return Err(Error::GitCommand {
            args: shown,
            dir: dir.to_path_buf(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(output)
}
