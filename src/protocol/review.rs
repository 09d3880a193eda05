//! What a session's review events add up to: the comments a request for
//! changes would hand back, where each comment points, and which files a
//! reviewer has marked viewed. Every surface (the panel, the CLI, the node
//! writing the next prompt) reads them through these.

use std::collections::HashMap;

use super::{Event, EventKind};

/// The review comments since the last verdict, in order: what a request
/// for changes hands back. `events` are a session's, in seq order.
pub fn open_review_comments(events: &[Event]) -> impl Iterator<Item = &Event> {
    let since = events.iter().rposition(|event| matches!(event.kind, EventKind::ReviewVerdict { .. }));
    let after = since.map_or(0, |at| at + 1);
    events[after..].iter().filter(|event| matches!(event.kind, EventKind::ReviewComment { .. }))
}

/// Where a comment points, as people write it: `src/a.rs`, `src/a.rs:7`,
/// `src/a.rs:7-12`.
pub fn comment_place(path: &str, line: Option<u32>, end_line: Option<u32>) -> String {
    match (line, end_line) {
        (Some(line), Some(end)) if end > line => format!("{path}:{line}-{end}"),
        (Some(line), _) => format!("{path}:{line}"),
        (None, _) => path.to_string(),
    }
}

/// Reads the lines of a comment's place as people write them: `42` or
/// `42-50`. Lines count from 1; a range may not end before it starts.
pub fn parse_lines(text: &str) -> Result<(u32, Option<u32>), String> {
    let number = |part: &str| {
        let part = part.trim();
        match part.parse::<u32>() {
            Ok(0) => Err("lines are counted from 1".to_string()),
            Ok(line) => Ok(line),
            Err(_) => Err(format!("`{part}` is not a line number (write 42, or 42-50 for a range)")),
        }
    };
    match text.split_once('-') {
        None => Ok((number(text)?, None)),
        Some((first, last)) => {
            let (first, last) = (number(first)?, number(last)?);
            if last < first {
                return Err(format!("{first}-{last}: the range ends before it starts"));
            }
            Ok((first, (last > first).then_some(last)))
        }
    }
}

/// The files `by` has marked viewed, each with the turn it was viewed as
/// of (the last mark on a path wins). `events` are a session's, in seq
/// order. A file a later turn changed is no longer viewed: the caller
/// compares the turn with the turns that touched the file.
pub fn viewed_files(events: &[Event], by: &str) -> HashMap<String, u32> {
    let mut viewed = HashMap::new();
    for event in events {
        let EventKind::ReviewViewed { by: who, path, viewed: mark, reviewed_turn } = &event.kind else { continue };
        if who != by {
            continue;
        }
        if *mark {
            viewed.insert(path.clone(), *reviewed_turn);
        } else {
            viewed.remove(path);
        }
    }
    viewed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64, kind: EventKind) -> Event {
        Event { seq, at: "2026-12-05T08:00:00Z".parse().unwrap(), turn: None, cause: None, kind }
    }

    fn mark(seq: u64, by: &str, path: &str, viewed: bool, turn: u32) -> Event {
        event(seq, EventKind::ReviewViewed { by: by.into(), path: path.into(), viewed, reviewed_turn: turn })
    }

    #[test]
    fn the_last_mark_of_each_reviewer_wins_and_others_marks_do_not_count() {
        let events = [
            mark(1, "ana", "a.rs", true, 1),
            mark(2, "ana", "b.rs", true, 1),
            mark(3, "ana", "b.rs", false, 1),
            mark(4, "bo", "c.rs", true, 2),
            mark(5, "ana", "a.rs", true, 2),
        ];
        let ana = viewed_files(&events, "ana");
        assert_eq!(ana.len(), 1, "{ana:?}");
        assert_eq!(ana.get("a.rs"), Some(&2));
        assert_eq!(viewed_files(&events, "bo").get("c.rs"), Some(&2));
    }

    #[test]
    fn lines_are_one_number_or_a_range_from_one() {
        assert_eq!(parse_lines("42"), Ok((42, None)));
        assert_eq!(parse_lines("42-50"), Ok((42, Some(50))));
        assert_eq!(parse_lines("7-7"), Ok((7, None)));
        assert!(parse_lines("0").unwrap_err().contains("from 1"));
        assert!(parse_lines("9-3").unwrap_err().contains("ends before"));
        assert!(parse_lines("x").unwrap_err().contains("not a line number"));
        assert!(parse_lines("-3").is_err());
    }

    #[test]
    fn a_place_names_a_file_a_line_or_a_range() {
        assert_eq!(comment_place("a.rs", None, None), "a.rs");
        assert_eq!(comment_place("a.rs", Some(7), None), "a.rs:7");
        assert_eq!(comment_place("a.rs", Some(7), Some(7)), "a.rs:7");
        assert_eq!(comment_place("a.rs", Some(7), Some(12)), "a.rs:7-12");
    }
}
