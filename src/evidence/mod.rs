//! Reading evidence: what an artifact is (its type sniffed from its bytes,
//! never from its name alone), the test reports and coverage inside it, and
//! server-rendered SVG charts of a session (a Gantt of where the time went,
//! bars per turn and per day). Pure functions over bytes and protocol types:
//! the node reads reports with them, the panel and `cortex session report`
//! draw with them.

pub mod chart;
pub mod lcov;
pub mod media;
pub mod report;
pub mod results;

/// What an artifact holds, as far as Cortex reads it.
#[derive(Debug, PartialEq)]
pub enum Report {
    Tests(crate::protocol::TestReport),
    Coverage(crate::protocol::CoverageReport),
}

/// The report inside the file at `path` (relative to the workspace), if it
/// holds one; `Err` says why a file that looks like a report cannot be read.
pub fn read_report(path: &str, bytes: &[u8]) -> Option<Result<Report, String>> {
    let text = std::str::from_utf8(bytes).ok()?;
    if results::is_junit(text) {
        return Some(results::parse_junit(path, text).map(Report::Tests));
    }
    if results::is_tap(path, text) {
        return Some(Ok(Report::Tests(results::parse_tap(path, text))));
    }
    if lcov::is_lcov(path, text) {
        return Some(Ok(Report::Coverage(lcov::parse(path, text))));
    }
    None
}

/// Cuts `text` to at most `max` bytes on a character boundary, marking the cut.
pub(crate) fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
