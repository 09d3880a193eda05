//! Server-rendered SVG charts: a session's Gantt (turns, commands, checks
//! and approvals on one time axis) and horizontal bar charts (tokens or cost
//! per turn, spend per day, sessions by state). Each SVG is `role="img"`
//! with a `<title>` and a `<desc>` that say in words what it shows, and
//! colours are presentation attributes, so a chart needs no stylesheet or
//! script and can be pasted into a self-contained report.

use std::collections::HashMap;
use std::fmt::Write;

use crate::protocol::{Event, EventKind};

/// What a Gantt bar stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarKind {
    Turn,
    Command,
    Check,
    Approval,
}

impl BarKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Turn => "turn",
            Self::Command => "command",
            Self::Check => "check",
            Self::Approval => "approval",
        }
    }

    fn colour(self) -> &'static str {
        match self {
            Self::Turn => "#2f5fa7",
            Self::Command => "#6b7280",
            Self::Check => "#1d7a46",
            Self::Approval => "#a15c00",
        }
    }
}

/// One bar: where it starts, counted from the first bar's start, and how long.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    pub kind: BarKind,
    pub label: String,
    pub start_ms: u64,
    pub duration_ms: u64,
}

impl Bar {
    /// When it started, in words (`3.2 s`).
    pub fn after(&self) -> String {
        seconds(self.start_ms)
    }

    /// How long it took, in words.
    pub fn took(&self) -> String {
        seconds(self.duration_ms)
    }
}

/// The Gantt bars of a session's events: a turn from its first event to
/// its `turn_finished`, a command (a check's command is a check) from
/// start to finish, an approval from request to answer. Unfinished ones end
/// at the last event.
pub fn gantt_bars(events: &[Event]) -> Vec<Bar> {
    let Some(first) = events.first().map(|event| event.at) else { return Vec::new() };
    let last = events.last().map_or(first, |event| event.at);
    let offset = |at: jiff::Timestamp| at.duration_since(first).as_millis().max(0) as u64;
    let mut bars: Vec<Bar> = Vec::new();
    let mut open: HashMap<String, usize> = HashMap::new();
    for event in events {
        let at = offset(event.at);
        let (key, start) = match &event.kind {
            EventKind::UserMessage { text } => match event.turn {
                Some(turn) if !open.contains_key(&format!("turn:{turn}")) => {
                    let label = format!("Turn {turn}: {}", one_line(text, 32));
                    (format!("turn:{turn}"), Some((BarKind::Turn, label)))
                }
                _ => continue,
            },
            EventKind::TurnFinished { .. } => (format!("turn:{}", event.turn.unwrap_or_default()), None),
            EventKind::CommandStarted { command_id, command } => {
                let (kind, label) = match command_id.starts_with("check:") {
                    // `check NAME: COMMAND` reads as its name.
                    true => (BarKind::Check, command.split(": ").next().unwrap_or(command)),
                    false => (BarKind::Command, command.as_str()),
                };
                (format!("command:{command_id}"), Some((kind, one_line(label, 40))))
            }
            EventKind::CommandFinished { command_id, .. } => (format!("command:{command_id}"), None),
            EventKind::ApprovalRequested { approval_id, prompt } => (
                format!("approval:{approval_id}"),
                Some((BarKind::Approval, format!("Approval: {}", one_line(prompt, 30)))),
            ),
            EventKind::ApprovalResolved { approval_id, .. } => (format!("approval:{approval_id}"), None),
            _ => continue,
        };
        match start {
            Some((kind, label)) => {
                open.insert(key, bars.len());
                bars.push(Bar { kind, label, start_ms: at, duration_ms: u64::MAX });
            }
            None => {
                if let Some(index) = open.remove(&key) {
                    bars[index].duration_ms = at.saturating_sub(bars[index].start_ms);
                }
            }
        }
    }
    let end = offset(last);
    for bar in &mut bars {
        if bar.duration_ms == u64::MAX {
            bar.duration_ms = end.saturating_sub(bar.start_ms);
        }
    }
    bars
}

/// Width of a chart in SVG units, the column its labels take, and a row's height.
const WIDTH: f64 = 960.0;
const LABELS: f64 = 300.0;
const ROW: f64 = 22.0;

/// The Gantt SVG of `bars`, titled `title`.
pub fn gantt_svg(title: &str, bars: &[Bar]) -> String {
    let total = bars.iter().map(|bar| bar.start_ms.saturating_add(bar.duration_ms)).max().unwrap_or(0).max(1);
    let scale = (WIDTH - LABELS - 20.0) / total as f64;
    let height = ROW * bars.len() as f64 + 30.0;
    let mut svg = open_svg(title, &gantt_desc(bars, total), height);
    for (row, bar) in bars.iter().enumerate() {
        let y = row as f64 * ROW + 4.0;
        let x = LABELS + bar.start_ms as f64 * scale;
        let width = bar.duration_ms as f64 * scale;
        let indent = if bar.kind == BarKind::Turn { 4.0 } else { 16.0 };
        let _ = write!(
            svg,
            r##"<text x="{indent}" y="{ty:.1}" font-size="12" fill="#1f2933">{label}</text><rect class="bar" data-kind="{kind}" data-start-ms="{start}" data-ms="{ms}" x="{x:.3}" y="{y:.1}" width="{width:.3}" height="{h:.1}" fill="{colour}"><title>{label}: {secs}</title></rect>"##,
            ty = y + ROW * 0.6,
            label = esc(&bar.label),
            kind = bar.kind.as_str(),
            start = bar.start_ms,
            ms = bar.duration_ms,
            h = ROW - 6.0,
            colour = bar.kind.colour(),
            secs = seconds(bar.duration_ms),
        );
    }
    let axis = ROW * bars.len() as f64 + 20.0;
    for tick in 0..=4 {
        let ms = total * tick / 4;
        let x = LABELS + ms as f64 * scale;
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="0" y2="{y:.1}" stroke="#d0d5dd" stroke-width="1"/><text x="{x:.1}" y="{ty:.1}" font-size="11" fill="#52606d" text-anchor="middle">{label}</text>"##,
            y = axis - 12.0,
            ty = axis,
            label = seconds(ms),
        );
    }
    svg.push_str("</svg>");
    svg
}

fn gantt_desc(bars: &[Bar], total: u64) -> String {
    let mut desc = format!("{} bars over {}.", bars.len(), seconds(total));
    for bar in bars.iter().take(200) {
        let _ = write!(desc, " {} from {} for {}.", bar.label, seconds(bar.start_ms), seconds(bar.duration_ms));
    }
    desc
}

/// A horizontal bar chart: one row per `(label, value, value's words)`.
pub fn bar_chart_svg(title: &str, rows: &[(String, f64, String)]) -> String {
    let max = rows.iter().map(|(_, value, _)| *value).fold(0.0_f64, f64::max);
    let scale = if max > 0.0 { (WIDTH - LABELS - 120.0) / max } else { 0.0 };
    let desc = rows.iter().map(|(label, _, words)| format!("{label}: {words}.")).collect::<Vec<_>>().join(" ");
    let mut svg = open_svg(title, &desc, ROW * rows.len() as f64 + 8.0);
    for (row, (label, value, words)) in rows.iter().enumerate() {
        let y = row as f64 * ROW + 4.0;
        let width = value.max(0.0) * scale;
        let _ = write!(
            svg,
            r##"<text x="4" y="{ty:.1}" font-size="12" fill="#1f2933">{label}</text><rect class="bar" data-value="{value}" x="{LABELS}" y="{y:.1}" width="{width:.3}" height="{h:.1}" fill="#2f5fa7"><title>{label}: {words}</title></rect><text x="{tx:.1}" y="{ty:.1}" font-size="12" fill="#1f2933">{words}</text>"##,
            ty = y + ROW * 0.6,
            label = esc(label),
            words = esc(words),
            h = ROW - 6.0,
            tx = LABELS + width + 6.0,
        );
    }
    svg.push_str("</svg>");
    svg
}

fn open_svg(title: &str, desc: &str, height: f64) -> String {
    let id = format!("chart-{:x}", fnv(title.as_bytes()));
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-labelledby="{id}-title {id}-desc" viewBox="0 0 {WIDTH} {height:.1}" width="100%" preserveAspectRatio="xMinYMin meet"><title id="{id}-title">{title}</title><desc id="{id}-desc">{desc}</desc>"#,
        title = esc(title),
        desc = esc(desc),
    )
}

/// A stable id from a title, so two charts on one page do not share one.
fn fnv(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c9dc5_u32, |hash, byte| (hash ^ u32::from(*byte)).wrapping_mul(0x01000193))
}

/// Milliseconds in words: `850 ms`, `3.2 s`, `4 min 5 s`.
pub fn seconds(ms: u64) -> String {
    match ms {
        0..1000 => format!("{ms} ms"),
        1000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min {} s", ms / 60_000, ms % 60_000 / 1000),
    }
}

fn one_line(text: &str, max: usize) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= max { line } else { format!("{}…", line.chars().take(max).collect::<String>()) }
}

/// Escapes text for SVG/XML content and attributes.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64, ms: i64, turn: u32, kind: EventKind) -> Event {
        let at = jiff::Timestamp::from_millisecond(1_700_000_000_000 + ms).unwrap();
        Event { seq, at, turn: Some(turn), cause: None, kind }
    }

    #[test]
    fn bars_follow_the_events_and_the_svg_keeps_their_proportions() {
        use crate::protocol::TurnOutcome;
        let events = [
            event(1, 0, 1, EventKind::UserMessage { text: "fix <the> bug".into() }),
            event(2, 100, 1, EventKind::CommandStarted { command_id: "c1".into(), command: "cargo test".into() }),
            event(
                3,
                1100,
                1,
                EventKind::CommandFinished { command_id: "c1".into(), exit_code: Some(0), duration_ms: 1000 },
            ),
            event(4, 2000, 1, EventKind::TurnFinished { outcome: TurnOutcome::Completed }),
            event(
                5,
                2100,
                1,
                EventKind::CommandStarted { command_id: "check:t:5".into(), command: "check t: ./run-it".into() },
            ),
            event(
                6,
                2600,
                1,
                EventKind::CommandFinished { command_id: "check:t:5".into(), exit_code: Some(0), duration_ms: 500 },
            ),
        ];
        let bars = gantt_bars(&events);
        let shape: Vec<_> = bars.iter().map(|bar| (bar.kind, bar.start_ms, bar.duration_ms)).collect();
        assert_eq!(shape, [(BarKind::Turn, 0, 2000), (BarKind::Command, 100, 1000), (BarKind::Check, 2100, 500)]);
        assert_eq!(bars[2].label, "check t");
        let svg = gantt_svg("Where the time went", &bars);
        assert!(svg.contains("Turn 1: fix &lt;the&gt; bug"), "{svg}");
        assert!(svg.contains("<desc") && svg.contains(r#"role="img""#));
        let widths: Vec<f64> = svg
            .split(r#"class="bar""#)
            .skip(1)
            .map(|rest| rest.split("width=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap())
            .collect();
        assert!((widths[0] / widths[1] - 2.0).abs() < 1e-6, "{widths:?}");
        assert!((widths[1] / widths[2] - 2.0).abs() < 1e-6, "{widths:?}");
    }

    #[test]
    fn durations_read_as_words() {
        assert_eq!(seconds(850), "850 ms");
        assert_eq!(seconds(3250), "3.2 s");
        assert_eq!(seconds(245_000), "4 min 5 s");
    }
}
