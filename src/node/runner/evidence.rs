//! Checks and artifacts, a turn's evidence. Each check's output streams
//! as a command's and is kept under `turns/<n>/evidence/`. Artifacts: the files found in the workspace (see
//! `node/artifacts.rs`) go under `turns/<n>/artifacts/` in the session tree,
//! each recorded as an `artifact_stored` event, and the test reports and
//! coverage read from them as `test_report` and `coverage_report`.

use std::time::SystemTime;

use super::{Result, Runner};
use crate::evidence::{Report, media};
use crate::node::artifacts::{self, Caps};
use crate::node::config::{Artifacts, Check, RepoConfig};
use crate::protocol::{CheckSummary, EventKind, OutputStream};
use crate::store::{FlushReason, Store};

impl Runner<'_> {
    /// Keeps what the agent wrote under `[artifacts] folder` since `since`.
    pub(super) fn keep_agent_artifacts(&mut self, store: &Store, turn: u32, since: SystemTime) -> Result<()> {
        // An unreadable config is said by the checks that follow.
        let Ok(config) = RepoConfig::load(store.workdir()) else { return Ok(()) };
        let Some(folder) = &config.artifacts.folder else { return Ok(()) };
        let pattern = format!("{}/**", folder.trim_end_matches('/'));
        self.keep_artifacts(store, turn, None, &[pattern], since, &config.artifacts)
    }

    /// Keeps the files `patterns` match that were written since `since`,
    /// as `check`'s (none: the agent's).
    pub(super) fn keep_artifacts(
        &mut self,
        store: &Store,
        turn: u32,
        check: Option<&str>,
        patterns: &[String],
        since: SystemTime,
        limits: &Artifacts,
    ) -> Result<()> {
        if patterns.is_empty() {
            return Ok(());
        }
        let left = *self.artifact_room.get_or_insert(limits.max_turn_bytes());
        let mut caps = Caps { max_file: limits.max_file_bytes(), left };
        let mut warnings = Vec::new();
        let found = artifacts::find(store.workdir(), patterns, since, &mut caps, &mut warnings);
        self.artifact_room = Some(caps.left);
        for message in warnings {
            self.record(EventKind::Warning { message })?;
        }
        for file in found {
            let media_type = media::sniff(&file.path, &file.bytes).to_string();
            let report = crate::evidence::read_report(&file.path, &file.bytes);
            let stored = format!("turns/{turn}/artifacts/{}", file.path);
            let bytes = file.bytes.len() as u64;
            self.writer().put_file(stored.clone(), file.bytes);
            let check = check.map(str::to_string);
            self.record(EventKind::ArtifactStored { path: file.path.clone(), stored, bytes, media_type, check })?;
            match report {
                Some(Ok(Report::Tests(report))) => self.record(EventKind::TestReport { report })?,
                Some(Ok(Report::Coverage(report))) => self.record(EventKind::CoverageReport { report })?,
                Some(Err(why)) => self.record(EventKind::Warning {
                    message: format!("`{}` looks like a test report but cannot be read: {why}", file.path),
                })?,
                None => 0,
            };
        }
        Ok(())
    }

    /// Runs the workspace's checks that `select` picks, each recorded as a
    /// `check_result` event with its output as evidence of `turn`. Returns
    /// how many ran. A config that cannot be read is a warning, not a failure
    /// of the turn.
    pub(super) fn run_checks(
        &mut self,
        store: &Store,
        turn: u32,
        select: impl Fn(&Check) -> bool,
    ) -> Result<Vec<CheckSummary>> {
        let config = match RepoConfig::load(store.workdir()) {
            Ok(config) => config,
            Err(error) => {
                self.record(EventKind::Warning { message: format!("checks not run: {error}") })?;
                return Ok(Vec::new());
            }
        };
        let mut ran = Vec::new();
        for check in config.checks.iter().filter(|check| select(check)) {
            // The output streams as a command's, so it shows live.
            let command_id = format!("check:{}:{}", check.name, self.writer().last_seq() + 1);
            self.record(EventKind::CommandStarted {
                command_id: command_id.clone(),
                command: format!("check {}: {}", check.name, check.command),
            })?;
            let mut streamed: Result<()> = Ok(());
            let began = std::time::SystemTime::now();
            let run = crate::node::checks::run(check, store.workdir(), &mut |chunk| {
                if streamed.is_ok() {
                    let text = String::from_utf8_lossy(chunk).into_owned();
                    let kind =
                        EventKind::CommandOutput { command_id: command_id.clone(), stream: OutputStream::Stdout, text };
                    streamed = self.record(kind).map(|_| ());
                }
            })?;
            streamed?;
            self.record(EventKind::CommandFinished {
                command_id,
                exit_code: run.exit_code,
                duration_ms: run.duration.as_millis() as u64,
            })?;
            let seq = self.writer().last_seq() + 1;
            let evidence = format!("turns/{turn}/evidence/{seq}-{}.log", check.name);
            self.writer().put_file(evidence.clone(), run.output);
            let summary = CheckSummary {
                seq,
                name: check.name.clone(),
                passed: run.passed,
                exit_code: run.exit_code,
                duration_ms: run.duration.as_millis() as u64,
                evidence: Some(evidence),
            };
            self.record(EventKind::CheckResult {
                name: summary.name.clone(),
                passed: summary.passed,
                exit_code: summary.exit_code,
                duration_ms: summary.duration_ms,
                evidence: summary.evidence.clone(),
            })?;
            self.keep_artifacts(store, turn, Some(&check.name), &check.artifacts, began, &config.artifacts)?;
            self.writer().flush(FlushReason::ToolResult)?;
            ran.push(summary);
        }
        Ok(ran)
    }
}
