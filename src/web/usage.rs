//! Usage in the panel: `/usage` sums tokens and cost by session,
//! workspace, node or day (the same sums as `cortex usage` and
//! `GET /api/v1/usage`), and the dashboard's charts: sessions by state and
//! spend per day over the last 30 days, as SVG with the numbers in words.

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::Web;
use super::pages::{Shell, shell};
use crate::evidence::chart;
use crate::protocol::{SessionState, SessionSummary, UsageBy, UsageReport, UsageRow};

#[derive(Deserialize)]
pub(super) struct UsageQuery {
    #[serde(default)]
    by: String,
    #[serde(default)]
    since: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "usage.html")]
pub(super) struct UsagePage {
    shell: Shell,
    by: &'static str,
    since: String,
    report: Option<UsageReport>,
    problem: Option<String>,
    chart_svg: Option<String>,
}

pub(super) async fn get_usage(State(web): State<Arc<Web>>, Query(query): Query<UsageQuery>) -> Response {
    let by = UsageBy::parse(&query.by).unwrap_or(UsageBy::Day);
    let since = query.since.trim().to_string();
    let crumbs = vec![("usage".to_string(), "/usage".to_string())];
    let mut page = UsagePage {
        shell: shell(&web, crumbs),
        by: by.as_str(),
        since: since.clone(),
        report: None,
        problem: None,
        chart_svg: None,
    };
    let since_time = match since.as_str() {
        "" => None,
        text => match since_time(text) {
            Some(time) => Some(time),
            None => {
                page.problem = Some(format!("`{text}` is not a date (2026-12-01) or an RFC 3339 time."));
                return (axum::http::StatusCode::UNPROCESSABLE_ENTITY, page).into_response();
            }
        },
    };
    match web.core.usage(by, since_time.as_deref()) {
        Ok(report) => {
            let rows: Vec<(String, f64, String)> = report.rows.iter().take(30).map(row_bar).collect();
            page.chart_svg =
                (!rows.is_empty()).then(|| chart::bar_chart_svg(&format!("Tokens by {}", by.as_str()), &rows));
            page.report = Some(report);
        }
        Err(error) => page.problem = Some(format!("Core could not sum the usage: {error}")),
    }
    page.into_response()
}

/// A date (`2026-12-01`, midnight UTC) or an RFC 3339 time.
fn since_time(text: &str) -> Option<String> {
    if let Ok(time) = text.parse::<jiff::Timestamp>() {
        return Some(time.to_string());
    }
    let date: jiff::civil::Date = text.parse().ok()?;
    Some(date.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp().to_string())
}

fn row_bar(row: &UsageRow) -> (String, f64, String) {
    (row.label.clone(), row.total_tokens as f64, row_words(row))
}

fn row_words(row: &UsageRow) -> String {
    match row.cost_usd {
        Some(_) => format!("{} tokens · {}", row.total_tokens, row.cost_text()),
        None => format!("{} tokens", row.total_tokens),
    }
}

/// Sessions by state, the states with none left out.
pub(super) fn states_chart(sessions: &[SessionSummary]) -> Option<String> {
    let mut rows: Vec<(String, f64, String)> = Vec::new();
    for state in SessionState::ALL {
        let count = sessions.iter().filter(|session| session.state == state).count();
        if count > 0 {
            rows.push((state.as_str().to_string(), count as f64, format!("{count} session(s)")));
        }
    }
    (!rows.is_empty()).then(|| chart::bar_chart_svg("Sessions by state", &rows))
}

/// Spend per UTC day over the last 30 days (days without use at zero):
/// dollars where any turn had a cost, else tokens.
pub(super) fn spend_chart(web: &Web) -> Option<String> {
    let today = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let first = today.checked_sub(jiff::Span::new().days(29)).ok()?;
    let since = first.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp().to_string();
    let report = web.core.usage(UsageBy::Day, Some(&since)).ok()?;
    if report.rows.is_empty() {
        return None;
    }
    let dollars_known = report.total.cost_usd.is_some();
    let rows = (0..30)
        .filter_map(|offset| first.checked_add(jiff::Span::new().days(offset)).ok())
        .map(|day| {
            let key = day.to_string();
            let row = report.rows.iter().find(|row| row.key == key);
            let value = match (row, dollars_known) {
                (Some(row), true) => row.cost_usd.unwrap_or(0.0),
                (Some(row), false) => row.total_tokens as f64,
                (None, _) => 0.0,
            };
            (key, value, row.map(row_words).unwrap_or_else(|| "nothing".into()))
        })
        .collect::<Vec<_>>();
    let what = if dollars_known { "Spend (US dollars)" } else { "Tokens" };
    Some(chart::bar_chart_svg(&format!("{what} per day, last 30 days"), &rows))
}
