//! Evidence beyond a check's exit code: the files checks and agents
//! produce (artifacts), the test reports and coverage read from them, and
//! how one turn's tests differ from the last's. Events carry these, so the
//! index, the panel and a session report read the same facts.

use serde::{Deserialize, Serialize};

/// A file kept as evidence of a turn, under `turns/<n>/artifacts/`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactSummary {
    /// The seq of its `artifact_stored` event.
    pub seq: u64,
    /// Where it was in the workspace, relative to its root.
    pub path: String,
    /// Where it is in the session tree.
    pub stored: String,
    pub bytes: u64,
    /// The type sniffed from its first bytes: `image/png`, `text/plain`,
    /// `application/octet-stream`…
    pub media_type: String,
    /// The check that declared it; none for a file the agent wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
}

/// How one test ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestOutcome {
    Failed,
    Skipped,
    Passed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestCase {
    /// `suite::class::name` as the report names it.
    pub name: String,
    pub outcome: TestOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_ms: Option<u64>,
    /// A failure's message (cut at 2 KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The tests of one report file (JUnit XML or TAP).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestReport {
    /// The report's path in the workspace (the artifact's `path`).
    pub path: String,
    /// `junit` or `tap`.
    pub format: String,
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    /// The cases, failures first; only the first 2,000 are kept (the counts
    /// are of all of them).
    pub cases: Vec<TestCase>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

impl ArtifactSummary {
    /// One line about a stored artifact, the same on every surface.
    pub fn text(path: &str, bytes: u64, media_type: &str, check: Option<&str>) -> String {
        let by = check.map(|check| format!(", from check {check}")).unwrap_or_else(|| ", written by the agent".into());
        format!("{path} ({bytes} bytes, {media_type}{by})")
    }
}

impl TestReport {
    /// `target/junit.xml: 3 passed, 1 failed, 0 skipped`.
    pub fn summary(&self) -> String {
        format!("{}: {} passed, {} failed, {} skipped", self.path, self.passed, self.failed, self.skipped)
    }

    pub fn failing(&self) -> impl Iterator<Item = &TestCase> {
        self.cases.iter().filter(|case| case.outcome == TestOutcome::Failed)
    }
}

/// How a turn's tests differ from the same report in an earlier turn.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestChanges {
    /// The turn compared with; none when this is the report's first turn.
    pub since_turn: Option<u32>,
    /// Failing now, not failing then.
    pub newly_failing: Vec<String>,
    /// Failing then, passing now.
    pub fixed: Vec<String>,
    pub still_failing: Vec<String>,
}

impl TestChanges {
    /// Compares `now` with `before` (an earlier turn's report of the same path).
    pub fn between(before: Option<(u32, &TestReport)>, now: &TestReport) -> TestChanges {
        use std::collections::BTreeSet;
        let Some((turn, before)) = before else {
            return TestChanges {
                newly_failing: now.failing().map(|case| case.name.clone()).collect(),
                ..Default::default()
            };
        };
        let failed_before: BTreeSet<&str> = before.failing().map(|case| case.name.as_str()).collect();
        let mut changes = TestChanges { since_turn: Some(turn), ..Default::default() };
        for case in &now.cases {
            let was_failing = failed_before.contains(case.name.as_str());
            match case.outcome {
                TestOutcome::Failed if was_failing => changes.still_failing.push(case.name.clone()),
                TestOutcome::Failed => changes.newly_failing.push(case.name.clone()),
                TestOutcome::Passed if was_failing => changes.fixed.push(case.name.clone()),
                _ => {}
            }
        }
        changes
    }
}

/// A session's test reports in turn order, so each one is compared with
/// the same report's last run in an *earlier* turn (a check run again in
/// the same turn is not compared with itself): the one rule the panel and
/// the session report share.
#[derive(Default)]
pub struct TestHistory {
    runs: std::collections::HashMap<String, Vec<(u32, TestReport)>>,
}

impl TestHistory {
    /// How `report`, from `turn`, differs from its path's last earlier turn;
    /// then remembers it.
    pub fn changes(&mut self, turn: u32, report: &TestReport) -> TestChanges {
        let runs = self.runs.entry(report.path.clone()).or_default();
        let before = runs.iter().rev().find(|(earlier, _)| *earlier < turn).map(|(earlier, report)| (*earlier, report));
        let changes = TestChanges::between(before, report);
        runs.push((turn, report.clone()));
        changes
    }
}

/// Line coverage of one source file, from an lcov report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileCoverage {
    pub file: String,
    pub lines_found: u64,
    pub lines_hit: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoverageReport {
    pub path: String,
    pub lines_found: u64,
    pub lines_hit: u64,
    /// Per file, the least covered first; only the first 500 are kept.
    pub files: Vec<FileCoverage>,
}

impl CoverageReport {
    /// `coverage/lcov.info: 72.5% of 400 lines in 12 file(s)`.
    pub fn summary(&self) -> String {
        format!("{}: {}", self.path, self.figures())
    }

    /// `72.5% of 400 lines in 12 file(s)`.
    pub fn figures(&self) -> String {
        let percent = self.percent().map_or("no".to_string(), |percent| format!("{percent}%"));
        format!("{percent} of {} lines in {} file(s)", self.lines_found, self.files.len())
    }

    /// Lines hit in percent, one decimal; none for a report with no lines.
    pub fn percent(&self) -> Option<f64> {
        percent(self.lines_hit, self.lines_found)
    }
}

impl FileCoverage {
    pub fn percent(&self) -> Option<f64> {
        percent(self.lines_hit, self.lines_found)
    }
}

fn percent(hit: u64, found: u64) -> Option<f64> {
    (found > 0).then(|| (hit.min(found) as f64 * 1000.0 / found as f64).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(cases: &[(&str, TestOutcome)]) -> TestReport {
        TestReport {
            path: "junit.xml".into(),
            format: "junit".into(),
            passed: 0,
            failed: 0,
            skipped: 0,
            cases: cases
                .iter()
                .map(|(name, outcome)| TestCase {
                    name: name.to_string(),
                    outcome: *outcome,
                    time_ms: None,
                    message: None,
                })
                .collect(),
            truncated: false,
        }
    }

    #[test]
    fn changes_name_what_broke_what_was_fixed_and_what_still_fails() {
        use TestOutcome::*;
        let before = report(&[("a", Failed), ("b", Failed), ("c", Passed), ("gone", Failed)]);
        let now = report(&[("a", Passed), ("b", Failed), ("c", Failed), ("new", Skipped)]);
        let changes = TestChanges::between(Some((1, &before)), &now);
        assert_eq!(changes.since_turn, Some(1));
        assert_eq!(changes.fixed, ["a"]);
        assert_eq!(changes.still_failing, ["b"]);
        assert_eq!(changes.newly_failing, ["c"]);
        let mut history = TestHistory::default();
        history.changes(1, &before);
        history.changes(2, &now);
        let rerun = history.changes(2, &now);
        assert_eq!((rerun.since_turn, rerun.fixed.clone()), (Some(1), vec!["a".to_string()]), "not against itself");
        let first = TestChanges::between(None, &now);
        assert_eq!((first.since_turn, first.newly_failing), (None, vec!["b".to_string(), "c".to_string()]));
    }
}
