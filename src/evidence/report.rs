//! A session report: one self-contained file (HTML or Markdown) with each
//! turn's prompt, answers, commands, diff, checks, test tables, images and
//! cost, and the session's timeline, for a pull request or a CI artifact.
//! Built from the session's own events and files, so the node that holds
//! the ref writes the same report wherever it is asked from. The HTML has
//! no external reference at all: styles inline, images as `data:` URIs, the
//! Gantt as inline SVG, and a CSP that forbids fetching anything.

use std::fmt::Write;

use askama::Template;

use super::chart::{self, Bar};
use crate::protocol::{
    ArtifactSummary, CheckSummary, CoverageReport, Event, EventKind, TestChanges, TestHistory, TestReport, TurnOutcome,
    dollars,
};

/// Lines of a turn's diff kept in a report, and the images' total size.
const MAX_DIFF_LINES: usize = 3000;
const MAX_IMAGE_BYTES: usize = 8 * 1024 * 1024;

/// What the report says about the session as a whole.
pub struct Header {
    pub id: String,
    pub title: String,
    pub provider: String,
    pub state: String,
    pub created_at: String,
    pub tokens: Option<u64>,
    pub cost_usd: Option<f64>,
}

pub struct Command {
    pub command: String,
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
}

pub struct Tests {
    pub report: TestReport,
    pub changes: TestChanges,
}

pub struct Image {
    pub path: String,
    pub data_uri: String,
}

pub struct DiffLine {
    /// `add`, `del`, `hunk`, `file` or empty.
    pub class: &'static str,
    pub text: String,
}

pub struct Turn {
    pub number: u32,
    pub prompt: String,
    pub answers: Vec<String>,
    pub commands: Vec<Command>,
    pub outcome: Option<TurnOutcome>,
    pub usage: Option<String>,
    pub checks: Vec<CheckSummary>,
    pub tests: Vec<Tests>,
    pub coverage: Vec<CoverageReport>,
    pub images: Vec<Image>,
    /// Artifacts not shown inline, named.
    pub files: Vec<ArtifactSummary>,
    pub diff: Vec<DiffLine>,
    pub diff_cut: bool,
}

#[derive(Template)]
#[template(path = "report.html")]
pub struct Report {
    pub header: Header,
    pub turns: Vec<Turn>,
    pub bars: Vec<Bar>,
    pub gantt_svg: String,
    pub generated_at: String,
}

/// Builds the report from the session's events; `diff_of(turn)` gives a
/// turn's patch, `bytes_of(stored)` an artifact's bytes.
pub fn build(
    header: Header,
    events: &[Event],
    diff_of: &mut dyn FnMut(u32) -> Option<String>,
    bytes_of: &mut dyn FnMut(&str) -> Option<Vec<u8>>,
) -> Report {
    let mut turns: Vec<Turn> = Vec::new();
    let mut image_bytes = 0;
    let mut history = TestHistory::default();
    for event in events {
        let Some(number) = event.turn else { continue };
        if turns.last().is_none_or(|turn| turn.number != number) {
            turns.push(Turn::new(number, diff_of(number).unwrap_or_default()));
        }
        let turn = turns.last_mut().expect("holds because one was just pushed");
        match &event.kind {
            EventKind::UserMessage { text } if turn.prompt.is_empty() => turn.prompt = text.clone(),
            EventKind::AssistantMessage { text } => turn.answers.push(text.clone()),
            EventKind::CommandStarted { command_id, command } if !command_id.starts_with("check:") => {
                turn.commands.push(Command { command: command.clone(), exit_code: None, duration_ms: 0 })
            }
            EventKind::CommandFinished { command_id, exit_code, duration_ms } if !command_id.starts_with("check:") => {
                if let Some(command) = turn.commands.iter_mut().rev().find(|command| command.duration_ms == 0) {
                    (command.exit_code, command.duration_ms) = (*exit_code, (*duration_ms).max(1));
                }
            }
            EventKind::TurnFinished { outcome } => turn.outcome = Some(*outcome),
            EventKind::TokenUsage { usage, model, cost_usd, cost_source } => {
                turn.usage = Some(crate::protocol::usage_text(usage, model.as_deref(), *cost_usd, *cost_source))
            }
            EventKind::CheckResult { name, passed, exit_code, duration_ms, evidence } => {
                let (name, evidence) = (name.clone(), evidence.clone());
                let (passed, exit_code, duration_ms) = (*passed, *exit_code, *duration_ms);
                turn.checks.push(CheckSummary { seq: event.seq, name, passed, exit_code, duration_ms, evidence })
            }
            EventKind::TestReport { report } => {
                let changes = history.changes(number, report);
                turn.tests.retain(|known| known.report.path != report.path);
                turn.tests.push(Tests { report: report.clone(), changes });
            }
            EventKind::CoverageReport { report } => turn.coverage.push(report.clone()),
            EventKind::ArtifactStored { path, stored, bytes, media_type, check } => {
                let inline =
                    super::media::is_inline_image(media_type) && image_bytes + *bytes as usize <= MAX_IMAGE_BYTES;
                match bytes_of(stored).filter(|_| inline) {
                    Some(content) if super::media::sniff(path, &content) == media_type => {
                        use base64::Engine;
                        image_bytes += content.len();
                        let data = base64::engine::general_purpose::STANDARD.encode(&content);
                        turn.images
                            .push(Image { path: path.clone(), data_uri: format!("data:{media_type};base64,{data}") })
                    }
                    _ => turn.files.push(ArtifactSummary {
                        seq: event.seq,
                        path: path.clone(),
                        stored: stored.clone(),
                        bytes: *bytes,
                        media_type: media_type.clone(),
                        check: check.clone(),
                    }),
                }
            }
            _ => {}
        }
    }
    let bars = chart::gantt_bars(&events.iter().filter(|event| timing(&event.kind)).cloned().collect::<Vec<_>>());
    let gantt_svg = chart::gantt_svg(&format!("Where the time went in {}", header.title), &bars);
    let generated_at = jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M UTC").to_string();
    Report { header, turns, bars, gantt_svg, generated_at }
}

fn timing(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::UserMessage { .. }
            | EventKind::TurnFinished { .. }
            | EventKind::CommandStarted { .. }
            | EventKind::CommandFinished { .. }
            | EventKind::ApprovalRequested { .. }
            | EventKind::ApprovalResolved { .. }
    )
}

impl Turn {
    fn new(number: u32, patch: String) -> Turn {
        let mut diff = Vec::new();
        let mut lines = patch.lines();
        for line in lines.by_ref().take(MAX_DIFF_LINES) {
            let class = match line.as_bytes().first() {
                _ if line.starts_with("diff --git") => "file",
                _ if line.starts_with("+++") || line.starts_with("---") => "file",
                Some(b'+') => "add",
                Some(b'-') => "del",
                Some(b'@') => "hunk",
                _ => "",
            };
            diff.push(DiffLine { class, text: line.to_string() });
        }
        let diff_cut = lines.next().is_some();
        Turn {
            number,
            prompt: String::new(),
            answers: Vec::new(),
            commands: Vec::new(),
            outcome: None,
            usage: None,
            checks: Vec::new(),
            tests: Vec::new(),
            coverage: Vec::new(),
            images: Vec::new(),
            files: Vec::new(),
            diff,
            diff_cut,
        }
    }

    pub fn outcome_text(&self) -> &str {
        self.outcome.map_or("unfinished", |outcome| outcome.as_str())
    }
}

impl Header {
    pub fn cost_text(&self) -> String {
        let tokens =
            self.tokens.map(|tokens| format!("{tokens} tokens")).unwrap_or_else(|| "no tokens reported".into());
        match self.cost_usd {
            Some(cost) => format!("{tokens}, {}", dollars(cost)),
            None => tokens,
        }
    }
}

impl Report {
    pub fn html(&self) -> String {
        self.render().unwrap_or_else(|error| format!("<!DOCTYPE html><title>report</title><p>cannot render: {error}"))
    }

    /// The same report as Markdown, for a pull request's description.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let header = &self.header;
        let _ = writeln!(out, "# {}\n", one_line(&header.title));
        let _ = writeln!(
            out,
            "Session `{}` · {} · {} · started {}  ",
            header.id, header.provider, header.state, header.created_at
        );
        let _ = writeln!(out, "Cost: {}\n", header.cost_text());
        let _ = writeln!(out, "## Where the time went\n\n| What | Started after | Took |\n| --- | --- | --- |");
        for bar in &self.bars {
            let _ = writeln!(out, "| {} | {} | {} |", cell(&bar.label), bar.after(), bar.took());
        }
        for turn in &self.turns {
            turn.markdown(&mut out);
        }
        out
    }
}

impl Turn {
    fn markdown(&self, out: &mut String) {
        let _ = writeln!(out, "\n## Turn {} · {}\n", self.number, self.outcome_text());
        let _ = writeln!(out, "{}\n", quote(&self.prompt));
        for answer in &self.answers {
            let _ = writeln!(out, "{answer}\n");
        }
        for command in &self.commands {
            let exit = command.exit_code.map_or("killed".to_string(), |code| format!("exit {code}"));
            let _ = writeln!(out, "- `{}` · {exit} · {} ms", command.command.replace('`', "'"), command.duration_ms);
        }
        if let Some(usage) = &self.usage {
            let _ = writeln!(out, "\nUsage: {usage}");
        }
        for check in &self.checks {
            let verdict = if check.passed { "passed" } else { "FAILED" };
            let _ = writeln!(out, "\nCheck **{}** {verdict} in {} ms", check.name, check.duration_ms);
        }
        for tests in &self.tests {
            tests.markdown(out);
        }
        for coverage in &self.coverage {
            let _ = writeln!(out, "\nCoverage: {}", coverage.summary());
        }
        for image in &self.images {
            let _ = writeln!(out, "\n![{}]({})", cell(&image.path), image.data_uri);
        }
        for file in &self.files {
            let _ = writeln!(
                out,
                "\nArtifact `{}` ({} bytes, {}) at `{}`",
                file.path, file.bytes, file.media_type, file.stored
            );
        }
        if !self.diff.is_empty() {
            let fence = if self.diff.iter().any(|line| line.text.contains("```")) { "````" } else { "```" };
            let _ = writeln!(out, "\n{fence}diff");
            for line in &self.diff {
                let _ = writeln!(out, "{}", line.text);
            }
            let _ = writeln!(out, "{fence}{}", if self.diff_cut { "\n(diff cut)" } else { "" });
        }
    }
}

impl Tests {
    fn markdown(&self, out: &mut String) {
        let changes = &self.changes;
        let _ = writeln!(out, "\nTests: {}  ", self.report.summary());
        let _ = writeln!(
            out,
            "newly failing: {} · fixed: {} · still failing: {}\n",
            changes.newly_failing.len(),
            changes.fixed.len(),
            changes.still_failing.len()
        );
        let _ = writeln!(out, "| Test | Result | Message |\n| --- | --- | --- |");
        for case in self.report.cases.iter().take(200) {
            let message = case.message.as_deref().map(cell).unwrap_or_default();
            let _ = writeln!(out, "| {} | {:?} | {message} |", cell(&case.name), case.outcome);
        }
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Text safe inside a Markdown table cell.
fn cell(text: &str) -> String {
    one_line(text).replace('|', "\\|")
}

fn quote(text: &str) -> String {
    text.lines().map(|line| format!("> {line}")).collect::<Vec<_>>().join("\n")
}
