//! Running checks: commands a repository declares in `.cortex/config.toml`
//! (see `config.rs`), run by the node after each turn or on request. Their
//! output becomes evidence in the session tree, their outcome a
//! `check_result` event.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::config::Check;
use super::{Error, Result};

/// Output kept per check; the rest is cut, with a note.
const MAX_OUTPUT: usize = 1024 * 1024;

/// What one run of a check did.
pub struct CheckRun {
    pub passed: bool,
    pub exit_code: Option<i32>,
    pub duration: Duration,
    /// Combined stdout and stderr, cut at 1 MiB.
    pub output: Vec<u8>,
}

/// Runs `check` with `sh -c` in `workdir`, killing its whole process group
/// when the timeout passes; `live` sees the output as it comes.
pub fn run(check: &Check, workdir: &Path, live: &mut dyn FnMut(&[u8])) -> Result<CheckRun> {
    use std::os::unix::process::CommandExt;
    let started = Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("exec 2>&1\n{}", check.command))
        .current_dir(workdir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|source| Error::Io { context: format!("cannot run check `{}`", check.name), source })?;
    let mut stdout = child.stdout.take().expect("holds because stdout is piped");
    let (chunks, arrived) = std::sync::mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buffer = [0u8; 8192];
        let mut cut = false;
        while let Ok(read) = stdout.read(&mut buffer) {
            if read == 0 {
                break;
            }
            let room = MAX_OUTPUT.saturating_sub(kept.len());
            kept.extend_from_slice(&buffer[..read.min(room)]);
            if room > 0 {
                let _ = chunks.send(buffer[..read.min(room)].to_vec());
            }
            cut |= read > room;
        }
        if cut {
            kept.extend_from_slice(format!("\n[output cut at {MAX_OUTPUT} bytes]\n").as_bytes());
        }
        kept
    });
    let deadline = started + Duration::from_secs(check.timeout_secs);
    let mut timed_out = false;
    let status = loop {
        while let Ok(chunk) = arrived.try_recv() {
            live(&chunk);
        }
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                timed_out = true;
                // The group: the shell and whatever it started.
                let _ = Command::new("kill").args(["-s", "KILL", "--", &format!("-{}", child.id())]).status();
                break child.wait().ok();
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(source) => {
                return Err(Error::Io { context: format!("cannot wait for check `{}`", check.name), source });
            }
        }
    };
    let mut output = reader.join().unwrap_or_default();
    while let Ok(chunk) = arrived.try_recv() {
        live(&chunk);
    }
    if timed_out {
        output.extend_from_slice(format!("\n[killed after the {} s timeout]\n", check.timeout_secs).as_bytes());
    }
    let exit_code = if timed_out { None } else { status.and_then(|status| status.code()) };
    Ok(CheckRun { passed: exit_code == Some(0), exit_code, duration: started.elapsed(), output })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::config::{RepoConfig, When};

    fn check(command: &str, timeout_secs: u64) -> Check {
        Check { name: "c".into(), command: command.into(), when: When::Turn, timeout_secs, artifacts: Vec::new() }
    }

    #[test]
    fn output_and_exit_codes_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut live = Vec::new();
        let run =
            run(&check("echo out; echo err >&2; exit 3", 10), dir.path(), &mut |chunk| live.extend_from_slice(chunk))
                .unwrap();
        assert!(!run.passed);
        assert_eq!(run.exit_code, Some(3));
        assert_eq!(String::from_utf8_lossy(&run.output), "out\nerr\n");
        assert_eq!(live, run.output, "everything kept was also seen live");
    }

    #[test]
    fn a_timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let run = run(&check("sleep 30 & sleep 30; echo never", 1), dir.path(), &mut |_| {}).unwrap();
        assert!(!run.passed);
        assert_eq!(run.exit_code, None);
        assert!(run.duration < Duration::from_secs(10));
        assert!(String::from_utf8_lossy(&run.output).contains("killed after the 1 s timeout"));
    }

    #[test]
    fn config_mistakes_are_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".cortex")).unwrap();
        std::fs::write(
            dir.path().join(".cortex/config.toml"),
            "[[checks]]\nname = \"t\"\ncommand = \"true\"\nwhen = \"sometimes\"\n",
        )
        .unwrap();
        let error = RepoConfig::load(dir.path()).unwrap_err().to_string();
        assert!(error.contains("unknown variant `sometimes`"), "{error}");
        std::fs::write(dir.path().join(".cortex/config.toml"), "[[checks]]\nname = \"../x\"\ncommand = \"true\"\n")
            .unwrap();
        assert!(RepoConfig::load(dir.path()).unwrap_err().to_string().contains("check name `../x`"));
    }
}
