//! A CLI binary of the Tool Registry, called through the gateway as the
//! tool `NAME.run`: the program with the call's arguments (an array of
//! words, never a shell line), in the session's workspace, killed at the
//! call's timeout, its output capped; the answer is its exit code and
//! output, an error when it exits non-zero.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use rmcp::model::{CallToolResult, ContentBlock, JsonObject};
use tokio::io::AsyncReadExt;

use crate::protocol::ToolOutcome;

/// The most of each of stdout and stderr a call answers.
const MAX_OUTPUT: u64 = 256 * 1024;

/// Runs `program` with `arguments["args"]` in `cwd`.
pub async fn run(
    program: &str,
    arguments: Option<&JsonObject>,
    cwd: Option<&Path>,
    timeout: Duration,
) -> (ToolOutcome, CallToolResult) {
    let failed = |outcome, message: String| (outcome, CallToolResult::error(vec![ContentBlock::text(message)]));
    let args = match arguments.and_then(|arguments| arguments.get("args")) {
        Some(serde_json::Value::Array(words)) => {
            match words.iter().map(|word| word.as_str().map(str::to_string)).collect::<Option<Vec<String>>>() {
                Some(words) => words,
                None => return failed(ToolOutcome::Error, "`args` must be an array of strings".into()),
            }
        }
        None => Vec::new(),
        Some(_) => return failed(ToolOutcome::Error, "`args` must be an array of strings".into()),
    };
    let Some(cwd) = cwd else {
        return failed(ToolOutcome::Error, "this session has no workspace on this node to run in".into());
    };
    let spawned = tokio::process::Command::new(program)
        .args(&args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) => return failed(ToolOutcome::Error, format!("cannot run {program}: {error}")),
    };
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let finished = tokio::time::timeout(timeout, async {
        let (out_read, err_read) = (capped(stdout), capped(stderr));
        tokio::pin!(out_read, err_read);
        let (mut out, mut err) = (None, None);
        while out.is_none() || err.is_none() {
            let bytes = tokio::select! {
                bytes = &mut out_read, if out.is_none() => out.insert(bytes),
                bytes = &mut err_read, if err.is_none() => err.insert(bytes),
            };
            if bytes.len() as u64 >= MAX_OUTPUT {
                // It has more to say than a call answers: it is stopped.
                let _ = child.start_kill();
            }
        }
        (child.wait().await, out.unwrap_or_default(), err.unwrap_or_default())
    })
    .await;
    let (status, out, err) = match finished {
        Ok((Ok(status), out, err)) => (status, out, err),
        Ok((Err(error), _, _)) => return failed(ToolOutcome::Error, format!("{program} failed: {error}")),
        Err(_) => {
            return failed(ToolOutcome::TimedOut, format!("{program} did not finish within {} s", timeout.as_secs()));
        }
    };
    let code = status.code().map_or_else(|| "killed by a signal".to_string(), |code| format!("exit {code}"));
    let mut text = format!("{code}\n{}", String::from_utf8_lossy(&out));
    if !err.is_empty() {
        text.push_str(&format!("\nstderr:\n{}", String::from_utf8_lossy(&err)));
    }
    if status.success() {
        (ToolOutcome::Ok, CallToolResult::success(vec![ContentBlock::text(text)]))
    } else {
        (ToolOutcome::Error, CallToolResult::error(vec![ContentBlock::text(text)]))
    }
}

/// What a pipe gives, up to [`MAX_OUTPUT`].
async fn capped(pipe: Option<impl tokio::io::AsyncRead + Unpin>) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Some(pipe) = pipe {
        let _ = pipe.take(MAX_OUTPUT).read_to_end(&mut bytes).await;
    }
    bytes
}
