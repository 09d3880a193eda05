//! The subject line of a session commit, for `git log
//! refs/cortex/sessions/ID`: what happened in words (`turn 2: fix the
//! flaky test (3 files, checks passed)`), read from the events the commit
//! seals. The events are already redacted; the subject is one line without
//! control characters.

use crate::protocol::{Event, EventKind, TurnOutcome};

/// The longest prompt quoted in a subject, in characters.
const MAX_PROMPT: usize = 60;

/// One line of `text`, control characters dropped, cut at [`MAX_PROMPT`].
fn quoted(text: &str) -> String {
    let line = text.lines().map(str::trim).find(|line| !line.is_empty()).unwrap_or_default();
    let clean: String = line.chars().filter(|c| !c.is_control()).collect();
    match clean.chars().count() > MAX_PROMPT {
        true => format!("{}…", clean.chars().take(MAX_PROMPT - 1).collect::<String>()),
        false => clean,
    }
}

/// Keeps, of `lines`, the events a later subject quotes (the prompt, the
/// diff, the checks) in `notes`, which holds one turn's: a new turn's
/// prompt starts them over.
pub(crate) fn remember(notes: &mut Vec<Event>, lines: &[String]) {
    for line in lines {
        let noted =
            ["\"user_message\"", "\"diff_captured\"", "\"check_result\""].iter().any(|kind| line.contains(kind));
        let Some(event) = noted.then(|| serde_json::from_str::<Event>(line).ok()).flatten() else { continue };
        if matches!(event.kind, EventKind::UserMessage { .. }) {
            notes.clear();
        }
        notes.push(event);
    }
}

/// The subject of a commit sealing `lines` (the events that parse) of a
/// session titled `title`; `reason` says why it was made; `earlier` holds
/// what earlier commits sealed of the current turn (see [`remember`]).
pub(crate) fn subject(lines: &[String], title: &str, reason: &str, earlier: &[Event]) -> String {
    let sealed: Vec<Event> = lines.iter().filter_map(|line| serde_json::from_str(line).ok()).collect();
    let events: Vec<Event> = earlier.iter().cloned().chain(sealed.iter().cloned()).collect();
    let prompt_of = |turn: Option<u32>| {
        events.iter().rev().find_map(|event| match &event.kind {
            EventKind::UserMessage { text } if event.turn == turn => Some(quoted(text)),
            _ => None,
        })
    };
    let finished = sealed.iter().rev().find_map(|event| match &event.kind {
        EventKind::TurnFinished { outcome } => Some((event.turn, *outcome)),
        _ => None,
    });
    if let Some((turn, outcome)) = finished {
        let of_turn = || events.iter().filter(move |event| event.turn == turn);
        let mut facts = Vec::new();
        if let Some(files) = of_turn().find_map(|event| match &event.kind {
            EventKind::DiffCaptured { files, .. } => Some(*files),
            _ => None,
        }) {
            facts.push(format!("{files} file{}", if files == 1 { "" } else { "s" }));
        }
        let checks: Vec<bool> = of_turn()
            .filter_map(|event| match &event.kind {
                EventKind::CheckResult { passed, .. } => Some(*passed),
                _ => None,
            })
            .collect();
        let failed = checks.iter().filter(|passed| !**passed).count();
        match (checks.len(), failed) {
            (0, _) => {}
            (_, 0) => facts.push("checks passed".into()),
            (all, failed) => facts.push(format!("{failed} of {all} checks failed")),
        }
        let how = match outcome {
            TurnOutcome::Completed => String::new(),
            other => format!(" {}", other.as_str()),
        };
        let prompt = prompt_of(turn).unwrap_or_else(|| quoted(title));
        let facts = if facts.is_empty() { String::new() } else { format!(" ({})", facts.join(", ")) };
        return format!("turn {}{how}: {prompt}{facts}", turn.unwrap_or(0));
    }
    if let Some(event) = sealed.iter().rev().find(|event| matches!(event.kind, EventKind::UserMessage { .. })) {
        let prompt = prompt_of(event.turn).unwrap_or_default();
        return format!("turn {} started: {prompt}", event.turn.unwrap_or(0));
    }
    let moved = sealed.iter().rev().find_map(|event| match &event.kind {
        EventKind::Lifecycle { to, .. } => Some(to.as_str()),
        _ => None,
    });
    match (moved, sealed.len()) {
        (Some(state), _) => format!("session {state}: {}", quoted(title)),
        (None, 0) if reason == "created" => format!("session created: {}", quoted(title)),
        (None, 0) => format!("session updated ({reason})"),
        (None, _) => {
            let turn = sealed.iter().rev().find_map(|event| event.turn).map(|turn| format!("turn {turn}: "));
            let mut kinds: Vec<&str> = sealed.iter().map(|event| event.kind.name()).collect();
            kinds.dedup();
            let more = match kinds.len() {
                0..=4 => String::new(),
                many => format!(" and {} more", many - 4),
            };
            kinds.truncate(4);
            format!("{}{}{more} ({reason})", turn.unwrap_or_default(), kinds.join(", ").replace('_', " "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(turn: u32, kind: EventKind) -> String {
        let event = Event { seq: 1, at: "2026-12-05T08:00:00Z".parse().unwrap(), turn: Some(turn), cause: None, kind };
        serde_json::to_string(&event).unwrap()
    }

    #[test]
    fn a_finished_turn_says_its_prompt_files_and_checks() {
        let lines = [
            line(2, EventKind::UserMessage { text: "fix the flaky test\nand more detail".into() }),
            line(2, EventKind::DiffCaptured { files: 3, insertions: 10, deletions: 2 }),
            line(
                2,
                EventKind::CheckResult {
                    name: "t".into(),
                    passed: true,
                    exit_code: Some(0),
                    duration_ms: 5,
                    evidence: None,
                },
            ),
            line(2, EventKind::TurnFinished { outcome: TurnOutcome::Completed }),
        ];
        assert_eq!(subject(&lines, "x", "turn end", &[]), "turn 2: fix the flaky test (3 files, checks passed)");
        // What earlier commits of the same turn sealed counts too.
        let mut notes = Vec::new();
        remember(&mut notes, &lines[..3]);
        assert_eq!(
            subject(&lines[3..], "x", "turn end", &notes),
            "turn 2: fix the flaky test (3 files, checks passed)"
        );
        assert_eq!(subject(&lines[2..3], "x", "tool result", &notes), "turn 2: check result (tool result)");
        // A new prompt starts the notes over.
        remember(&mut notes, &[line(3, EventKind::UserMessage { text: "next".into() })]);
        assert_eq!(notes.len(), 1);
        let failed = [
            line(
                1,
                EventKind::CheckResult {
                    name: "t".into(),
                    passed: false,
                    exit_code: Some(1),
                    duration_ms: 5,
                    evidence: None,
                },
            ),
            line(1, EventKind::TurnFinished { outcome: TurnOutcome::Failed }),
        ];
        assert_eq!(subject(&failed, "the title", "turn end", &[]), "turn 1 failed: the title (1 of 1 checks failed)");
    }

    #[test]
    fn a_subject_is_one_clean_line() {
        let lines = [line(1, EventKind::UserMessage { text: format!("\u{1b}[31mred\r {}", "x".repeat(100)) })];
        let said = subject(&lines, "t", "lifecycle", &[]);
        assert!(said.starts_with("turn 1 started: [31mred x"), "{said}");
        assert!(!said.chars().any(char::is_control) && said.chars().count() < 90, "{said}");
    }
}
