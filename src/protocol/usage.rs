//! Token use and cost summed over turns: `cortex usage`, `GET /api/v1/usage`
//! and the panel's usage page, from the `token_usage` events in the index.

use serde::{Deserialize, Serialize};

/// What usage is summed by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageBy {
    #[default]
    Session,
    Workspace,
    Node,
    /// The UTC day the turn's usage was recorded.
    Day,
}

impl UsageBy {
    pub fn as_str(self) -> &'static str {
        match self {
            UsageBy::Session => "session",
            UsageBy::Workspace => "workspace",
            UsageBy::Node => "node",
            UsageBy::Day => "day",
        }
    }

    pub fn parse(text: &str) -> Option<UsageBy> {
        [UsageBy::Session, UsageBy::Workspace, UsageBy::Node, UsageBy::Day].into_iter().find(|by| by.as_str() == text)
    }
}

/// One group's sums.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageRow {
    /// The session id, workspace id, node id or `YYYY-MM-DD`.
    pub key: String,
    /// What a person calls it: a session's title, a workspace's or node's
    /// name, the day.
    pub label: String,
    /// Turns that reported usage.
    pub turns: u64,
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub output_tokens: u64,
    pub reasoning_output_tokens: u64,
    pub total_tokens: u64,
    /// US dollars, over the turns with a known cost; `None` when none had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// Part of the cost was computed from `[pricing]`, not reported by the agent.
    #[serde(default)]
    pub cost_computed: bool,
    /// Turns whose cost is unknown (no figure from the agent, no price).
    #[serde(default)]
    pub unpriced_turns: u64,
}

impl UsageRow {
    /// This row's sums with `other`'s added (the key and label stay).
    pub fn add(&mut self, other: &UsageRow) {
        self.turns += other.turns;
        self.input_tokens += other.input_tokens;
        self.cached_input_tokens += other.cached_input_tokens;
        self.output_tokens += other.output_tokens;
        self.reasoning_output_tokens += other.reasoning_output_tokens;
        self.total_tokens += other.total_tokens;
        self.cost_usd = match (self.cost_usd, other.cost_usd) {
            (None, None) => None,
            (mine, theirs) => Some(mine.unwrap_or(0.0) + theirs.unwrap_or(0.0)),
        };
        self.cost_computed |= other.cost_computed;
        self.unpriced_turns += other.unpriced_turns;
    }
}

/// `GET /api/v1/usage`'s answer: the rows, largest first, and their total.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageReport {
    pub by: UsageBy,
    /// The earliest moment counted (RFC 3339), when one was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    pub rows: Vec<UsageRow>,
    pub total: UsageRow,
}

impl UsageRow {
    /// `$0.2500`, with `*` when part of it was computed; `–` when unknown.
    pub fn cost_text(&self) -> String {
        match self.cost_usd {
            Some(cost) => format!("{}{}", dollars(cost), if self.cost_computed { "*" } else { "" }),
            None => "–".into(),
        }
    }
}

impl UsageReport {
    pub fn new(by: UsageBy, since: Option<String>, rows: Vec<UsageRow>) -> UsageReport {
        let mut total = UsageRow { key: "total".into(), label: "total".into(), ..UsageRow::default() };
        for row in &rows {
            total.add(row);
        }
        UsageReport { by, since, rows, total }
    }
}

/// A turn's `token_usage` event in words, the same on every surface:
/// `15 tokens: 10 in (0 cached), 5 out (0 reasoning), gpt-5.5, $0.0001 (computed)`.
pub fn usage_text(
    usage: &super::TokenUsage,
    model: Option<&str>,
    cost_usd: Option<f64>,
    source: Option<super::CostSource>,
) -> String {
    let mut text = format!(
        "{} tokens: {} in ({} cached), {} out ({} reasoning)",
        usage.total_tokens,
        usage.input_tokens,
        usage.cached_input_tokens,
        usage.output_tokens,
        usage.reasoning_output_tokens
    );
    if let Some(model) = model {
        text.push_str(&format!(", {model}"));
    }
    if let Some(cost) = cost_usd {
        text.push_str(&format!(", {}", dollars(cost)));
        if source == Some(super::CostSource::Computed) {
            text.push_str(" (computed)");
        }
    }
    text
}

/// A `budget_exceeded` event (and the session's state reason) in words.
pub fn budget_text(budget: &str, limit: f64, used: f64) -> String {
    let (scope, unit) = budget.split_once('_').unwrap_or((budget, ""));
    let figure = |value: f64| match unit {
        "usd" => dollars(value),
        _ => format!("{} tokens", value as u64),
    };
    format!(
        "budget: the {scope} used {}, over its limit of {} (`[budget] {budget}` in .cortex/config.toml)",
        figure(used),
        figure(limit)
    )
}

/// US dollars as people read them: cents for a dollar or more, four places below.
pub fn dollars(value: f64) -> String {
    if value >= 1.0 { format!("${value:.2}") } else { format!("${value:.4}") }
}
