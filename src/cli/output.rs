//! How the CLI shows things: one line per event, coloured diffs, JSON, and
//! the terminal's answers to approval requests.

use std::borrow::Cow;
use std::io::{BufRead, IsTerminal, Write};

use serde::Serialize;

use crate::node::{Approver, Observer};
use crate::protocol::{ApprovalDecision, ArtifactSummary, Event, EventKind, FileChange, SessionId};

pub(crate) fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// `--color`: when stdout gets ANSI colours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Colour {
    Auto,
    Always,
    Never,
}

static STYLE: std::sync::OnceLock<(Colour, bool)> = std::sync::OnceLock::new();

/// Sets `--color` and `-q` for the whole run.
pub(crate) fn set_style(colour: Colour, quiet: bool) {
    let _ = STYLE.set((colour, quiet));
}

/// Whether stdout gets ANSI colours: `--color always|never`; with `auto`,
/// never with NO_COLOR, always with CLICOLOR_FORCE (not `0`), else only a
/// terminal.
pub(crate) fn colour_stdout() -> bool {
    let set = |name: &str| std::env::var_os(name).is_some_and(|value| !value.is_empty());
    match STYLE.get().map_or(Colour::Auto, |style| style.0) {
        Colour::Always => true,
        Colour::Never => false,
        Colour::Auto if set("NO_COLOR") => false,
        Colour::Auto if set("CLICOLOR_FORCE") && std::env::var_os("CLICOLOR_FORCE").is_some_and(|v| v != "0") => true,
        Colour::Auto => std::io::stdout().is_terminal(),
    }
}

/// A duration as people write it: `90`, `90s`, `5m`, `2h`, `7d`.
pub(crate) fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let number: u64 = number.parse().map_err(|_| format!("`{text}` is not a duration: write 90, 90s, 5m, 2h or 7d"))?;
    let seconds = match unit {
        "" | "s" => number,
        "m" => number * 60,
        "h" => number * 3600,
        "d" => number * 86_400,
        _ => return Err(format!("`{unit}` is not a unit: s, m, h or d")),
    };
    Ok(std::time::Duration::from_secs(seconds))
}

/// `text` in the ANSI colour that state has, when `colour` is set.
pub(crate) fn paint_state(state: crate::protocol::SessionState, text: &str, colour: bool) -> String {
    use crate::protocol::SessionState::*;
    let code = match state {
        Starting | Running => "33",
        AwaitingApproval => "1;35",
        Idle => "32",
        Failed => "31",
        Interrupted | Stopped | Expired => "2",
    };
    if colour { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
}

/// `-q`: only errors go to stderr.
pub(crate) fn quiet() -> bool {
    STYLE.get().is_some_and(|style| style.1)
}

/// A note on stderr (what happened, what to do next), left out with `-q`.
macro_rules! note {
    ($($arg:tt)*) => {
        if !$crate::cli::output::quiet() {
            eprintln!($($arg)*);
        }
    };
}
pub(crate) use note;

/// `text` safe for a terminal: escape sequences and other control
/// characters from an agent or a command (a clipboard write, a title, a
/// `\r` that overwrites a line) are shown in caret notation (`^[`, `^M`),
/// C1 controls as `<U+009B>`; newlines and tabs stay, and a `\r` before a
/// newline is dropped.
pub(crate) fn printable(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| (c.is_control() && c != '\n' && c != '\t') || c == '\u{7f}';
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\u{7f}' => out.push_str("^?"),
            c if (c as u32) < 0x20 && unsafe_char(c) => {
                out.push('^');
                out.push(char::from(b'@' + c as u8));
            }
            c if unsafe_char(c) => out.push_str(&format!("<U+{:04X}>", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// One human line (or a few, for multi-line text) describing an event,
/// safe to print on a terminal.
pub(crate) fn describe(event: &Event) -> String {
    printable(&describe_raw(event)).into_owned()
}

fn describe_raw(event: &Event) -> String {
    match &event.kind {
        EventKind::Lifecycle { from, to, reason } => {
            let from = from.map(|from| format!("{from} → ")).unwrap_or_default();
            let reason = reason.as_ref().map(|reason| format!(" ({reason})")).unwrap_or_default();
            format!("state {from}{to}{reason}")
        }
        EventKind::UserMessage { text } => format!("you: {text}"),
        EventKind::AssistantMessage { text } => format!("agent: {text}"),
        EventKind::Reasoning { text } => format!("thinking: {text}"),
        EventKind::CommandStarted { command, .. } => format!("$ {command}"),
        EventKind::ArtifactStored { path, bytes, media_type, check, .. } => {
            format!("artifact {}", ArtifactSummary::text(path, *bytes, media_type, check.as_deref()))
        }
        EventKind::TestReport { report } => format!("tests {}", report.summary()),
        EventKind::CoverageReport { report } => format!("coverage {}", report.summary()),
        EventKind::ToolCall { call } => format!("tool {}", call.summary()),
        EventKind::CommandOutput { text, .. } => format!("  {}", text.trim_end_matches('\n')),
        EventKind::CommandFinished { exit_code, duration_ms, .. } => match exit_code {
            Some(code) => format!("  exit {code} in {duration_ms} ms"),
            None => format!("  killed by a signal after {duration_ms} ms"),
        },
        EventKind::FileChanged { path, change } => {
            let verb = match change {
                FileChange::Added => "added",
                FileChange::Modified => "modified",
                FileChange::Deleted => "deleted",
            };
            format!("{verb} {path}")
        }
        EventKind::ApprovalRequested { prompt, .. } => format!("approval requested: {prompt}"),
        EventKind::ApprovalResolved { decision, by, .. } => match decision {
            ApprovalDecision::Approved => format!("approved by {by}"),
            ApprovalDecision::Denied => format!("denied by {by}"),
        },
        EventKind::Warning { message } => format!("warning: {message}"),
        EventKind::Error { message } => format!("error: {message}"),
        EventKind::TurnFinished { outcome } => format!("turn {}", outcome.as_str()),
        EventKind::DiffCaptured { files, insertions, deletions } => {
            format!("diff: {files} file(s) changed, +{insertions} -{deletions}")
        }
        EventKind::AssistantDelta { text, .. } => format!("agent…: {text}"),
        EventKind::TokenUsage { usage, model, cost_usd, cost_source } => {
            crate::protocol::usage_text(usage, model.as_deref(), *cost_usd, *cost_source)
        }
        EventKind::BudgetExceeded { budget, limit, used } => crate::protocol::budget_text(budget, *limit, *used),
        EventKind::CommitCreated { commit, message } => {
            format!("committed {} {}", &commit[..commit.len().min(12)], message.lines().next().unwrap_or_default())
        }
        EventKind::Intervention { by, action, path, detail } => {
            let what = [path.as_deref(), detail.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(" ");
            format!("{by} ({action}) {what}")
        }
        EventKind::ReviewComment { by, path, line, end_line, text, .. } => {
            let place = crate::protocol::comment_place(path, *line, *end_line);
            format!("{by} commented on {place}: {}", text.lines().next().unwrap_or_default())
        }
        EventKind::ReviewViewed { by, path, viewed, reviewed_turn } => {
            let what = if *viewed { "marked" } else { "unmarked" };
            format!("{by} {what} {path} as viewed (turn {reviewed_turn})")
        }
        EventKind::ReviewVerdict { by, verdict, reviewed_turn: turn, comments } => match verdict {
            crate::protocol::Verdict::Approve => format!("{by} approved the changes as of turn {turn}"),
            crate::protocol::Verdict::RequestChanges => {
                format!("{by} requested changes as of turn {turn} ({comments} comments handed back)")
            }
        },
        EventKind::CheckResult { name, passed, exit_code, duration_ms, .. } => {
            let verdict = if *passed { "passed" } else { "failed" };
            let code = exit_code.map(|code| format!(", exit {code}")).unwrap_or_default();
            format!("check {name} {verdict}{code} in {duration_ms} ms")
        }
    }
}

/// Prints each event as it happens, to stderr, so stdout stays for results,
/// and keeps the approvals and check results a `--json` report lists.
/// With `--json` (`quiet`) the events are not printed one by one: a
/// progress line every few seconds counts them by kind, so a long run in CI
/// is never silent (`-q` turns that off too).
pub(crate) struct Transcript {
    pub quiet: bool,
    pub evidence: Vec<Event>,
    progress: Option<Progress>,
}

/// The progress lines of a `--json` run: events counted by kind since the
/// last line, printed by a timer thread that ends with the transcript.
struct Progress {
    counts: std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<&'static str, usize>>>,
    stop: std::sync::mpsc::Sender<()>,
}

/// Seconds between progress lines: `CORTEX_PROGRESS_SECS`, else 5.
fn progress_interval() -> std::time::Duration {
    let secs = std::env::var("CORTEX_PROGRESS_SECS").ok().and_then(|secs| secs.parse::<f64>().ok()).unwrap_or(5.0);
    std::time::Duration::from_secs_f64(secs.clamp(0.1, 3600.0))
}

impl Progress {
    fn start() -> Progress {
        let counts = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::new()));
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let shared = counts.clone();
        let interval = progress_interval();
        std::thread::spawn(move || {
            let started = std::time::Instant::now();
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                let counts = std::mem::take(&mut *shared.lock().expect("progress lock"));
                let what = match counts.is_empty() {
                    true => "no new events".to_string(),
                    false => {
                        counts.iter().map(|(kind, count)| format!("{count} {kind}")).collect::<Vec<_>>().join(", ")
                    }
                };
                eprintln!("cortex: progress after {} s: {what}", started.elapsed().as_secs());
            }
        });
        Progress { counts, stop }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        let _ = self.stop.send(());
    }
}

impl Transcript {
    pub(crate) fn new(quiet: bool) -> Transcript {
        let progress = (quiet && !self::quiet()).then(Progress::start);
        Transcript { quiet, evidence: Vec::new(), progress }
    }

    pub(crate) fn show(&mut self, event: &Event) {
        if matches!(
            event.kind,
            EventKind::ApprovalRequested { .. } | EventKind::ApprovalResolved { .. } | EventKind::CheckResult { .. }
        ) {
            self.evidence.push(event.clone());
        }
        // Deltas are for live views; the complete message follows.
        if matches!(event.kind, EventKind::AssistantDelta { .. }) {
            return;
        }
        if let Some(progress) = &self.progress {
            *progress.counts.lock().expect("progress lock").entry(event.kind.name()).or_default() += 1;
        }
        // Redacted like the store: a CI log is as public as a pushed ref.
        if !self.quiet {
            crate::cli::output::note!("{}", crate::store::redact::redact_str(&describe(event)));
        }
    }
}

impl Observer for Transcript {
    fn event(&mut self, event: &Event, _meta: &crate::store::Meta) {
        self.show(event);
    }
}

/// Asks on the terminal; with no terminal, approves only when `--yes` was
/// given, and otherwise denies (the denial is recorded as an event).
pub(crate) struct TerminalApprover {
    pub yes: bool,
    /// A person answered "always for this session".
    pub always: bool,
}

/// What a terminal asks when an agent waits for approval, in-process and
/// attached to Core alike.
pub(crate) fn approval_question(prompt: &str) -> String {
    format!("Approve: {} [y]es, [N]o, [a]lways for this session: ", printable(prompt))
}

/// A person's answer to [`approval_question`]: `(approve, for_session)`,
/// or `None` when it is not one (ask again). Enter alone denies.
pub(crate) fn approval_answer(line: &str) -> Option<(bool, bool)> {
    match line.trim().to_lowercase().as_str() {
        "y" | "yes" => Some((true, false)),
        "a" | "always" => Some((true, true)),
        "" | "n" | "no" => Some((false, false)),
        _ => None,
    }
}

impl Approver for TerminalApprover {
    fn decide(&mut self, _session: &SessionId, _approval_id: &str, prompt: &str) -> (ApprovalDecision, String) {
        if self.yes {
            return (ApprovalDecision::Approved, "--yes".into());
        }
        if self.always {
            return (ApprovalDecision::Approved, "approved for the session".into());
        }
        if !std::io::stdin().is_terminal() {
            return (ApprovalDecision::Denied, "no terminal to ask (pass --yes to approve)".into());
        }
        let by = std::env::var("USER").unwrap_or_else(|_| "terminal".into());
        loop {
            eprint!("{}", approval_question(prompt));
            let _ = std::io::stderr().flush();
            let mut answer = String::new();
            if std::io::stdin().lock().read_line(&mut answer).unwrap_or(0) == 0 {
                return (ApprovalDecision::Denied, by);
            }
            match approval_answer(&answer) {
                Some((true, always)) => {
                    self.always = always;
                    return (ApprovalDecision::Approved, by);
                }
                Some((false, _)) => return (ApprovalDecision::Denied, by),
                None => eprintln!("Answer y, n or a."),
            }
        }
    }
}

/// A unified diff, coloured like git's when `colour` is set.
pub(crate) fn write_diff(out: &mut (impl Write + ?Sized), patch: &str, colour: bool) -> std::io::Result<()> {
    for line in patch.lines() {
        let line = printable(line);
        let paint = if !colour {
            None
        } else if line.starts_with("+++") || line.starts_with("---") || line.starts_with("diff --git") {
            Some("1")
        } else if line.starts_with('+') {
            Some("32")
        } else if line.starts_with('-') {
            Some("31")
        } else if line.starts_with("@@") {
            Some("36")
        } else {
            None
        };
        match paint {
            Some(code) => writeln!(out, "\x1b[{code}m{line}\x1b[0m")?,
            None => writeln!(out, "{line}")?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{parse_duration, printable};

    #[test]
    fn escape_sequences_are_shown_not_obeyed() {
        for (input, expect) in [
            ("plain text\twith a tab\n", "plain text\twith a tab\n"),
            ("\x1b]52;c;ZXZpbA==\x07", "^[]52;c;ZXZpbA==^G"),
            ("\x1b]0;title\x1b\\", "^[]0;title^[\\"),
            ("ok\rFAKE", "ok^MFAKE"),
            ("windows line\r\n", "windows line\n"),
            ("\u{9b}31m", "<U+009B>31m"),
            ("del\x7f", "del^?"),
        ] {
            assert_eq!(printable(input), expect, "{input:?}");
        }
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("90"), Ok(std::time::Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(std::time::Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(std::time::Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(std::time::Duration::from_secs(7200)));
        assert_eq!(parse_duration("7d"), Ok(std::time::Duration::from_secs(7 * 86_400)));
        assert!(parse_duration("5y").unwrap_err().contains("unit"));
        assert!(parse_duration("soon").unwrap_err().contains("not a duration"));
    }
}
