//! A turn's evidence as the index holds it: its checks, artifacts, test
//! reports and coverage, read back from their events.

use super::{Index, Result};
use crate::protocol::{ArtifactSummary, CheckSummary, EventKind, SessionId, TurnSummary};

impl Index {
    /// Adds each turn's evidence to `turns`, in the order it was recorded.
    pub(super) fn attach_evidence(&self, session: &SessionId, turns: &mut [TurnSummary]) -> Result<()> {
        for kind in ["check_result", "artifact_stored", "test_report", "coverage_report"] {
            for event in self.events_of_kind(session, kind)? {
                let Some(summary) = event.turn.and_then(|turn| turns.iter_mut().find(|summary| summary.turn == turn))
                else {
                    continue;
                };
                match event.kind {
                    EventKind::CheckResult { name, passed, exit_code, duration_ms, evidence } => summary
                        .checks
                        .push(CheckSummary { seq: event.seq, name, passed, exit_code, duration_ms, evidence }),
                    EventKind::ArtifactStored { path, stored, bytes, media_type, check } => {
                        // A later run of a check replaces what an earlier one stored.
                        summary.artifacts.retain(|artifact| artifact.stored != stored);
                        summary.artifacts.push(ArtifactSummary {
                            seq: event.seq,
                            path,
                            stored,
                            bytes,
                            media_type,
                            check,
                        });
                    }
                    EventKind::TestReport { report } => {
                        summary.tests.retain(|known| known.path != report.path);
                        summary.tests.push(report);
                    }
                    EventKind::CoverageReport { report } => {
                        summary.coverage.retain(|known| known.path != report.path);
                        summary.coverage.push(report);
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}
