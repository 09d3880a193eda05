//! The evidence of a session: where its time went (a Gantt of turns,
//! commands, checks and approvals), tokens per turn, and for each turn its
//! checks with their output, its test reports as tables (failures first,
//! what changed since the last turn), coverage, and its artifacts. Images
//! are shown inline only when their bytes say PNG, JPEG, GIF or WebP;
//! everything else (SVG and HTML included) is served as a download in a
//! sandbox, so nothing an agent wrote runs in the panel's origin.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Web;
use super::error::found;
use super::pages::{Shell, bytes, not_found, shell};
use super::review::ask;
use super::session::session_crumbs;
use super::urls;
use crate::evidence::chart::{self, Bar};
use crate::evidence::media;
use crate::protocol::reply::{ReportRendered, SessionFileRead};
use crate::protocol::{
    ArtifactSummary, CheckSummary, CommandKind, CoverageReport, Event, EventKind, ReportFormat, SessionId,
    SessionSummary, TestCase, TestChanges, TestHistory, TestReport, TurnSummary, dollars,
};

pub(super) struct CheckView {
    check: CheckSummary,
    output: Result<String, String>,
}

/// A test report with what changed since the same report's last turn.
pub(crate) struct TestsView {
    pub report: TestReport,
    pub changes: TestChanges,
    /// The rows shown: failures first, at most [`MAX_ROWS`].
    pub shown: Vec<TestCase>,
    pub hidden: u64,
}

pub(super) struct ArtifactView {
    artifact: ArtifactSummary,
    url: String,
    image: bool,
    /// A Markdown artifact, rendered and sanitized.
    markdown: Option<String>,
    size: String,
}

pub(super) struct TurnEvidence {
    turn: TurnSummary,
    checks: Vec<CheckView>,
    tests: Vec<TestsView>,
    coverage: Vec<CoverageReport>,
    artifacts: Vec<ArtifactView>,
}

#[derive(Template, WebTemplate)]
#[template(path = "evidence.html")]
pub(super) struct EvidencePage {
    shell: Shell,
    session: SessionSummary,
    turns: Vec<TurnEvidence>,
    /// Where the time went, as SVG and as rows for the table beside it.
    gantt_svg: String,
    bars: Vec<Bar>,
    tokens_svg: Option<String>,
}

/// Outputs fetched for one page; older ones are a link away.
const MAX_OUTPUTS: usize = 100;
/// Test rows shown per report.
pub(crate) const MAX_ROWS: usize = 200;
/// Markdown artifacts rendered per page, and the largest rendered.
const MAX_MARKDOWN: usize = 20;
const MAX_MARKDOWN_BYTES: u64 = 256 * 1024;

pub(super) async fn get_evidence(State(web): State<Arc<Web>>, Path(id): Path<String>) -> Response {
    let (session, turns) = found!(&web, web.find_session(&id));
    let outputs = check_outputs(&web, &session.id, &turns).await;
    let mut markdown = markdown_artifacts(&web, &session.id, &turns).await;
    let mut crumbs = session_crumbs(&web, &session);
    crumbs.push(("evidence".into(), urls::evidence(&session.id)));
    let events = timing_events(&web, &session.id);
    let bars = chart::gantt_bars(&events);
    let gantt_svg = chart::gantt_svg(&format!("Where the time went in {}", session.title), &bars);
    let tokens_svg = tokens_chart(&web.core.events_of_kind(&session.id, "token_usage").unwrap_or_default());
    let mut tests = test_views(&turns).into_iter();
    let mut outputs = outputs;
    let turns = turns
        .into_iter()
        .map(|turn| TurnEvidence {
            checks: turn
                .checks
                .iter()
                .map(|check| CheckView {
                    output: outputs.remove(&check.seq).unwrap_or_else(|| Err("no output recorded".into())),
                    check: check.clone(),
                })
                .collect(),
            tests: tests.next().unwrap_or_default(),
            coverage: turn.coverage.clone(),
            artifacts: turn
                .artifacts
                .iter()
                .map(|artifact| ArtifactView {
                    url: urls::artifact(&session.id, turn.turn, &artifact.path),
                    image: media::is_inline_image(&artifact.media_type),
                    markdown: markdown.remove(&artifact.seq),
                    size: bytes(artifact.bytes),
                    artifact: artifact.clone(),
                })
                .collect(),
            turn,
        })
        .collect();
    EvidencePage { shell: shell(&web, crumbs), session, turns, gantt_svg, bars, tokens_svg }.into_response()
}

async fn check_outputs(web: &Web, session: &SessionId, turns: &[TurnSummary]) -> HashMap<u64, Result<String, String>> {
    let mut outputs = HashMap::new();
    for check in turns.iter().rev().flat_map(|turn| turn.checks.iter().rev()) {
        let Some(path) = &check.evidence else { continue };
        if outputs.len() == MAX_OUTPUTS {
            break;
        }
        let kind = CommandKind::ReadSessionFile { session_id: session.clone(), path: path.clone(), raw: false };
        outputs.insert(check.seq, ask::<SessionFileRead>(web, kind).await.map(|file| file.text));
    }
    outputs
}

async fn markdown_artifacts(web: &Web, session: &SessionId, turns: &[TurnSummary]) -> HashMap<u64, String> {
    let mut rendered = HashMap::new();
    let markdown = turns
        .iter()
        .rev()
        .flat_map(|turn| turn.artifacts.iter())
        .filter(|artifact| artifact.media_type == "text/markdown" && artifact.bytes <= MAX_MARKDOWN_BYTES);
    for artifact in markdown.take(MAX_MARKDOWN) {
        let kind =
            CommandKind::ReadSessionFile { session_id: session.clone(), path: artifact.stored.clone(), raw: false };
        if let Ok(file) = ask::<SessionFileRead>(web, kind).await
            && let Some(html) = super::markdown::render(&file.text)
        {
            rendered.insert(artifact.seq, html);
        }
    }
    rendered
}

/// The events a Gantt is drawn from, in order.
fn timing_events(web: &Web, session: &SessionId) -> Vec<Event> {
    let kinds = ["user_message", "turn_finished", "command_started", "command_finished"];
    let approvals = ["approval_requested", "approval_resolved"];
    let mut events: Vec<Event> = kinds
        .iter()
        .chain(&approvals)
        .flat_map(|kind| web.core.events_of_kind(session, kind).unwrap_or_default())
        .collect();
    events.sort_by_key(|event| event.seq);
    events
}

/// Each turn's test reports beside the same report's last earlier run.
pub(crate) fn test_views(turns: &[TurnSummary]) -> Vec<Vec<TestsView>> {
    let mut history = TestHistory::default();
    let mut views = Vec::new();
    for turn in turns {
        let mut these = Vec::new();
        for report in &turn.tests {
            let changes = history.changes(turn.turn, report);
            let shown: Vec<TestCase> = report.cases.iter().take(MAX_ROWS).cloned().collect();
            let hidden = (report.passed + report.failed + report.skipped).saturating_sub(shown.len() as u64);
            these.push(TestsView { report: report.clone(), changes, shown, hidden });
        }
        views.push(these);
    }
    views
}

/// Tokens and cost per turn as a bar chart; none before any turn used any.
pub(crate) fn tokens_chart(usage: &[Event]) -> Option<String> {
    let rows: Vec<(String, f64, String)> = usage
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::TokenUsage { usage, cost_usd, .. } => {
                let cost = cost_usd.map(|cost| format!(" · {}", dollars(cost))).unwrap_or_default();
                let words = format!("{} tokens{cost}", usage.total_tokens);
                Some((format!("Turn {}", event.turn.unwrap_or_default()), usage.total_tokens as f64, words))
            }
            _ => None,
        })
        .collect();
    (!rows.is_empty()).then(|| chart::bar_chart_svg("Tokens per turn", &rows))
}

/// An artifact's bytes: inline only as a raster image its bytes prove;
/// anything else as an attachment, sandboxed, so a script in an SVG or an
/// HTML file never runs in the panel's origin.
pub(super) async fn get_artifact(
    State(web): State<Arc<Web>>,
    Path((id, turn, path)): Path<(String, u32, String)>,
) -> Response {
    let (session, _) = found!(&web, web.find_session(&id));
    let kind = CommandKind::ReadSessionFile {
        session_id: session.id.clone(),
        path: format!("turns/{turn}/artifacts/{path}"),
        raw: true,
    };
    let file = match ask::<SessionFileRead>(&web, kind).await {
        Ok(file) => file,
        Err(message) => return not_found(&web, message),
    };
    let content = {
        use base64::Engine;
        match base64::engine::general_purpose::STANDARD.decode(file.base64.unwrap_or_default()) {
            Ok(content) => content,
            Err(error) => {
                return (StatusCode::BAD_GATEWAY, format!("the node sent an unreadable file: {error}")).into_response();
            }
        }
    };
    let sniffed = media::sniff(&path, &content);
    let name: String = path
        .rsplit('/')
        .next()
        .unwrap_or("artifact")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' })
        .collect();
    let (content_type, disposition) = if media::is_inline_image(sniffed) {
        (sniffed, format!("inline; filename=\"{name}\""))
    } else {
        ("application/octet-stream", format!("attachment; filename=\"{name}\""))
    };
    let mut response = content.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    response
}

#[derive(serde::Deserialize)]
pub(super) struct ReportQuery {
    #[serde(default)]
    format: ReportFormat,
}

/// The session's report as a download, the same file `cortex session report` writes.
pub(super) async fn get_report(
    State(web): State<Arc<Web>>,
    Path(id): Path<String>,
    axum::extract::Query(query): axum::extract::Query<ReportQuery>,
) -> Response {
    let (session, _) = found!(&web, web.find_session(&id));
    let kind = CommandKind::RenderReport { session_id: session.id.clone(), format: query.format };
    let report = match ask::<ReportRendered>(&web, kind).await {
        Ok(report) => report,
        Err(message) => return not_found(&web, message),
    };
    let mut response = report.content.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(report.format.media_type()));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", report.file_name)) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox"),
    );
    response
}
