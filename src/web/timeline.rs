//! A session's timeline as the panel shows it: one typed block per event
//! (a command's output and exit folded into the block that started it),
//! grouped under a header per turn (its prompt, outcome, how long it took,
//! its diff, checks and tokens), folded by the same rules whether a page is
//! rendered whole or its stream adds to it live.

use std::collections::HashMap;

use super::urls;
use crate::protocol::{ArtifactSummary, Event, EventKind};

/// Output kept inside one command block; the rest is in the store.
const MAX_BLOCK_OUTPUT: usize = 64 * 1024;

/// One block of a session's timeline.
pub(super) struct Block {
    pub(super) seq: u64,
    pub(super) kind: &'static str,
    pub(super) time: String,
    /// When it happened (RFC 3339): a running command's clock counts from it.
    pub(super) at: String,
    pub(super) title: String,
    pub(super) body: String,
    /// Shown folded (reasoning, command output).
    pub(super) collapsed: bool,
    /// What this event answers: `(label, href)`.
    pub(super) cause: Option<(String, String)>,
    /// Where to look next: the diff of its turn, its evidence.
    pub(super) links: Vec<(String, String)>,
    /// A command's output and end, folded into the block that started it.
    pub(super) output: String,
    pub(super) exit: Option<String>,
    pub(super) folded: Vec<u64>,
    /// A command's block: it has an output and an exit place, filled live.
    pub(super) command: bool,
    pub(super) session: String,
    pub(super) turn: Option<u32>,
    /// An agent's message rendered from Markdown (sanitized); shown instead of `body`.
    pub(super) html: Option<String>,
    /// Set on the header that opens a turn's events, instead of an event.
    pub(super) head: Option<TurnHead>,
}

/// The header of a turn's events: what was asked, how it ended, how long it
/// took, what it changed, its checks and tokens; built from the turn's own
/// events (see [`TurnHead::take`]).
#[derive(Clone)]
pub(super) struct TurnHead {
    pub(super) turn: u32,
    pub(super) session: String,
    pub(super) prompt: String,
    pub(super) outcome: Option<&'static str>,
    pub(super) started: Option<jiff::Timestamp>,
    pub(super) elapsed: Option<String>,
    /// `files, +insertions -deletions`, from its `diff_captured`.
    pub(super) diff: Option<String>,
    /// `(name, passed, seq)` of each `check_result`.
    pub(super) checks: Vec<(String, bool, u64)>,
    pub(super) tokens: Option<(u64, u64)>,
    /// Rendered to replace the header already on a page (htmx out of band).
    pub(super) oob: bool,
}

/// A prompt's first line, at most this many characters, in a turn's header.
const HEAD_PROMPT: usize = 160;

impl TurnHead {
    pub(super) fn new(session: &str, turn: u32) -> TurnHead {
        TurnHead {
            turn,
            session: session.to_string(),
            prompt: String::new(),
            outcome: None,
            started: None,
            elapsed: None,
            diff: None,
            checks: Vec::new(),
            tokens: None,
            oob: false,
        }
    }

    /// Takes in one event of the turn; says whether the header changed in
    /// a way a page should see (an ending, a diff, a check, tokens).
    pub(super) fn take(&mut self, event: &Event) -> bool {
        self.started.get_or_insert(event.at);
        match &event.kind {
            EventKind::UserMessage { text } if self.prompt.is_empty() => {
                let first = text.lines().find(|line| !line.trim().is_empty()).unwrap_or_default();
                self.prompt = first.chars().take(HEAD_PROMPT).collect();
                if first.chars().count() > HEAD_PROMPT || text.trim().lines().count() > 1 {
                    self.prompt.push('…');
                }
                false
            }
            EventKind::TurnFinished { outcome } => {
                self.outcome = Some(outcome.as_str());
                if let Some(started) = self.started {
                    let took = event.at.duration_since(started);
                    self.elapsed = Some(format!("{:.1} s", took.as_secs_f64().max(0.0)));
                }
                true
            }
            EventKind::DiffCaptured { files, insertions, deletions } => {
                self.diff = Some(format!("{files} file(s), +{insertions} -{deletions}"));
                true
            }
            EventKind::CheckResult { name, passed, .. } => {
                self.checks.push((name.clone(), *passed, event.seq));
                true
            }
            EventKind::TokenUsage { usage, .. } => {
                let (input, output) = self.tokens.unwrap_or_default();
                self.tokens = Some((input + usage.input_tokens, output + usage.output_tokens));
                true
            }
            _ => false,
        }
    }
}

/// Said once where a command block's output stops.
const MORE_OUTPUT: &str = "\n… (more in the session's events)";

/// What a command block shows of `text` after `shown` bytes of its output:
/// all of it below the cap, the marker once it is reached, then nothing.
/// The page and the live stream both fold output through here, so a
/// block streamed live ends as the reloaded page renders it.
pub(super) fn shown_output(shown: usize, text: &str) -> String {
    if shown >= MAX_BLOCK_OUTPUT {
        return String::new();
    }
    let mut out = text.to_string();
    if shown + text.len() >= MAX_BLOCK_OUTPUT {
        out.push_str(MORE_OUTPUT);
    }
    out
}

fn cause_link(session: &str, cause: &str) -> (String, String) {
    match cause.strip_prefix("seq:").and_then(|seq| seq.parse::<u64>().ok()) {
        Some(seq) => (format!("answers #{seq}"), format!("{}#event-{seq}", urls::session(session))),
        None => (format!("caused by command {cause}"), urls::command(cause)),
    }
}

pub(super) fn exit_text(exit_code: Option<i32>, duration_ms: u64) -> String {
    let exit = exit_code.map_or("killed".to_string(), |code| format!("exit {code}"));
    format!("{exit} in {duration_ms} ms")
}

// Long: one arm per event kind, each saying how that kind reads.
pub(super) fn block(session: &str, event: &Event) -> Block {
    let mut links = Vec::new();
    let turn_diff = |turn: Option<u32>| turn.map(|turn| urls::diff(session, Some(turn)));
    let mut collapsed = false;
    let (title, body) = match &event.kind {
        EventKind::UserMessage { text } => ("you".to_string(), text.clone()),
        EventKind::AssistantMessage { text } => ("agent".to_string(), text.clone()),
        EventKind::Reasoning { text } => {
            collapsed = true;
            ("reasoning".to_string(), text.clone())
        }
        EventKind::CommandStarted { command, .. } => ("command".to_string(), command.clone()),
        EventKind::CommandOutput { text, stream, .. } => {
            collapsed = true;
            (format!("output ({})", format!("{stream:?}").to_lowercase()), text.clone())
        }
        EventKind::CommandFinished { exit_code, duration_ms, .. } => {
            ("command finished".to_string(), exit_text(*exit_code, *duration_ms))
        }
        EventKind::FileChanged { path, change } => {
            if let Some(href) = turn_diff(event.turn) {
                links.push(("see the diff".to_string(), href));
            }
            (format!("file {}", format!("{change:?}").to_lowercase()), path.clone())
        }
        EventKind::ApprovalRequested { prompt, .. } => ("approval requested".to_string(), prompt.clone()),
        EventKind::ApprovalResolved { decision, by, .. } => {
            (format!("{decision:?}").to_lowercase(), format!("answered by {by}"))
        }
        EventKind::Lifecycle { from, to, reason } => {
            let from = from.map(|from| format!("{from} → ")).unwrap_or_default();
            let reason = reason.as_ref().map(|reason| format!(" ({reason})")).unwrap_or_default();
            ("state".to_string(), format!("{from}{to}{reason}"))
        }
        EventKind::Warning { message } => ("warning".to_string(), message.clone()),
        EventKind::Error { message } => ("error".to_string(), message.clone()),
        EventKind::TurnFinished { outcome } => {
            if let Some(turn) = event.turn {
                links.push((format!("turn {turn}"), urls::turn(session, turn)));
            }
            ("turn finished".to_string(), outcome.as_str().to_string())
        }
        EventKind::DiffCaptured { files, insertions, deletions } => {
            if let Some(href) = turn_diff(event.turn) {
                links.push(("see the diff".to_string(), href));
            }
            ("changes".to_string(), format!("{files} file(s), +{insertions} -{deletions}"))
        }
        EventKind::CheckResult { name, passed, exit_code, duration_ms, .. } => {
            links.push(("output".to_string(), format!("{}#check-{}", urls::evidence(session), event.seq)));
            let verdict = if *passed { "passed" } else { "failed" };
            ("check".to_string(), format!("{name} {verdict}: {}", exit_text(*exit_code, *duration_ms)))
        }
        EventKind::ArtifactStored { path, bytes, media_type, check, .. } => {
            links.push(("evidence".to_string(), format!("{}#artifact-{}", urls::evidence(session), event.seq)));
            ("artifact".to_string(), ArtifactSummary::text(path, *bytes, media_type, check.as_deref()))
        }
        EventKind::TestReport { report } => {
            links.push(("tests".to_string(), format!("{}#tests-{}", urls::evidence(session), event.seq)));
            ("tests".to_string(), report.summary())
        }
        EventKind::CoverageReport { report } => ("coverage".to_string(), report.summary()),
        EventKind::ToolCall { call } => {
            let hash = call
                .schema_hash
                .as_deref()
                .map_or(String::new(), |hash| format!("\nschema {}", &hash[..hash.len().min(12)]));
            links.push((format!("{} calls", call.server), urls::tool(&call.server)));
            ("tool call".to_string(), format!("{}\narguments {}{hash}", call.summary(), call.arguments))
        }
        EventKind::CommitCreated { commit, message } => ("commit".to_string(), format!("{commit} {message}")),
        EventKind::Intervention { by, action, path, detail } => {
            let what = [path.as_deref(), detail.as_deref()].into_iter().flatten().collect::<Vec<_>>().join("\n");
            (format!("{by}: {action}"), what)
        }
        EventKind::ReviewComment { by, path, line, end_line, text, quote } => {
            let place = crate::protocol::comment_place(path, *line, *end_line);
            let quote: String =
                quote.iter().flat_map(|quote| quote.lines()).map(|line| format!("> {line}\n")).collect();
            (format!("{by} on {place}"), format!("{quote}{text}"))
        }
        EventKind::ReviewViewed { by, path, viewed, reviewed_turn } => {
            let what = if *viewed { "viewed" } else { "unmarked as viewed" };
            (format!("{by}: {what}"), format!("{path} (as of turn {reviewed_turn})"))
        }
        EventKind::ReviewVerdict { by, verdict, reviewed_turn: turn, comments } => {
            let what = match verdict {
                crate::protocol::Verdict::Approve => format!("approved the changes as of turn {turn}"),
                crate::protocol::Verdict::RequestChanges => {
                    format!("requested changes as of turn {turn}; {comments} comments handed back to the agent")
                }
            };
            (format!("review by {by}"), what)
        }
        EventKind::AssistantDelta { text, .. } => ("agent (streaming)".to_string(), text.clone()),
        EventKind::TokenUsage { usage, model, cost_usd, cost_source } => {
            ("usage".to_string(), crate::protocol::usage_text(usage, model.as_deref(), *cost_usd, *cost_source))
        }
        EventKind::BudgetExceeded { budget, limit, used } => {
            ("budget".to_string(), crate::protocol::budget_text(budget, *limit, *used))
        }
    };
    let message = match &event.kind {
        EventKind::AssistantMessage { text } => Some(text.as_str()),
        _ => None,
    };
    let kind = match &event.kind {
        EventKind::CheckResult { passed: false, .. } => "check_failed",
        kind => kind.name(),
    };
    Block {
        seq: event.seq,
        kind,
        time: event.at.strftime("%H:%M:%S").to_string(),
        at: event.at.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        title,
        body,
        collapsed,
        cause: event.cause.as_deref().map(|cause| cause_link(session, cause)),
        links,
        output: String::new(),
        exit: None,
        folded: Vec::new(),
        command: matches!(event.kind, EventKind::CommandStarted { .. }),
        session: session.to_string(),
        turn: event.turn,
        html: message.and_then(super::markdown::render),
        head: None,
    }
}

/// The block that opens turn `turn`'s events.
pub(super) fn head_block(session: &str, head: TurnHead) -> Block {
    Block {
        seq: 0,
        kind: "turn_head",
        time: String::new(),
        at: String::new(),
        title: String::new(),
        body: String::new(),
        collapsed: false,
        cause: None,
        links: Vec::new(),
        output: String::new(),
        exit: None,
        folded: Vec::new(),
        command: false,
        session: session.to_string(),
        turn: Some(head.turn),
        html: None,
        head: Some(head),
    }
}

/// The blocks of a page: each event once (streamed deltas are left out:
/// the complete message follows), a command's output and end folded into
/// the block that started it.
pub(super) fn blocks<'a>(session: &str, events: impl IntoIterator<Item = &'a Event>) -> Vec<Block> {
    fold(session, events, false)
}

/// [`blocks`] with a header opening each turn's events (the session page).
pub(super) fn grouped<'a>(session: &str, events: impl IntoIterator<Item = &'a Event>) -> Vec<Block> {
    fold(session, events, true)
}

fn fold<'a>(session: &str, events: impl IntoIterator<Item = &'a Event>, grouped: bool) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    let mut commands: HashMap<String, usize> = HashMap::new();
    let mut heads: HashMap<u32, usize> = HashMap::new();
    for event in events {
        if grouped
            && !matches!(event.kind, EventKind::AssistantDelta { .. })
            && let Some(turn) = event.turn
        {
            let at = *heads.entry(turn).or_insert_with(|| {
                blocks.push(head_block(session, TurnHead::new(session, turn)));
                blocks.len() - 1
            });
            blocks[at].head.as_mut().expect("a head block").take(event);
        }
        match &event.kind {
            EventKind::AssistantDelta { .. } => {}
            EventKind::CommandStarted { command_id, .. } => {
                commands.insert(command_id.clone(), blocks.len());
                blocks.push(block(session, event));
            }
            EventKind::CommandOutput { command_id, text, .. } if commands.contains_key(command_id) => {
                let started = &mut blocks[commands[command_id]];
                let shown = shown_output(started.output.len(), text);
                started.output.push_str(&shown);
                started.folded.push(event.seq);
            }
            EventKind::CommandFinished { command_id, exit_code, duration_ms } if commands.contains_key(command_id) => {
                let started = &mut blocks[commands[command_id]];
                started.exit = Some(exit_text(*exit_code, *duration_ms));
                started.folded.push(event.seq);
            }
            _ => blocks.push(block(session, event)),
        }
    }
    blocks
}
