//! A turn's token use and cost as its agent reports them: priced from the
//! repository's `[pricing]` table where the agent gives no cost, and held to
//! its `[budget]`. The runner feeds it each reading a provider makes during
//! a turn; the first limit a reading crosses stops the turn.

use std::collections::BTreeMap;

use super::config::{Budget, Price};
use crate::protocol::{CostSource, EventKind, TokenUsage};
use crate::provider::Usage;

/// A limit of `[budget]` that a reading went past.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Crossing {
    /// Its key in `[budget]`: `turn_tokens`, `session_tokens`, `turn_usd`
    /// or `session_usd`.
    pub budget: &'static str,
    pub limit: f64,
    pub used: f64,
}

impl Crossing {
    /// The reason a person reads on the session: what crossed which limit.
    pub fn reason(&self) -> String {
        crate::protocol::budget_text(self.budget, self.limit, self.used)
    }

    pub fn event(&self) -> EventKind {
        EventKind::BudgetExceeded { budget: self.budget.to_string(), limit: self.limit, used: self.used }
    }
}

/// One turn's meter.
pub(crate) struct Meter {
    budget: Budget,
    pricing: BTreeMap<String, Price>,
    /// The session's use before this turn.
    before: TokenUsage,
    before_cost: f64,
    latest: Option<Usage>,
    /// A limit was crossed this turn (it is named once).
    crossed: bool,
}

impl Meter {
    pub fn new(budget: Budget, pricing: BTreeMap<String, Price>, before: TokenUsage, before_cost: f64) -> Meter {
        Meter { budget, pricing, before, before_cost, latest: None, crossed: false }
    }

    /// The meter for a turn of the session starting now: the repository's
    /// budget and prices (none when its config cannot be read), the
    /// session's use so far.
    pub fn for_session(workdir: &std::path::Path, meta: &crate::store::Meta) -> Meter {
        Meter::with_config(super::config::RepoConfig::load(workdir).unwrap_or_default(), meta)
    }

    /// Like [`Meter::for_session`], with the config already read.
    pub fn with_config(config: super::config::RepoConfig, meta: &crate::store::Meta) -> Meter {
        let (used, cost) = (meta.usage_total.unwrap_or_default(), meta.cost_usd_total.unwrap_or(0.0));
        Meter::new(config.budget, config.pricing, used, cost)
    }

    /// Takes the provider's latest reading of the turn; returns the limit it
    /// crosses, once (later readings cross nothing new: the turn is ending).
    pub fn reading(&mut self, usage: Usage) -> Option<Crossing> {
        self.latest = Some(usage);
        if self.crossed {
            return None;
        }
        let crossed = self.first_crossing();
        self.crossed = crossed.is_some();
        crossed
    }

    /// The limit already crossed when the turn is about to start (a session
    /// whose budget is spent), judged on the session's figures alone.
    pub fn spent(&self) -> Option<Crossing> {
        let session_tokens = self.before.total_tokens as f64;
        over("session_tokens", self.budget.session_tokens.map(|limit| limit as f64), session_tokens)
            .or_else(|| over("session_usd", self.budget.session_usd, self.before_cost))
    }

    fn first_crossing(&self) -> Option<Crossing> {
        let usage = self.latest.as_ref()?;
        let turn_tokens = usage.tokens.total_tokens as f64;
        let turn_cost = self.cost(usage).map_or(0.0, |(cost, _)| cost);
        over("turn_tokens", self.budget.turn_tokens.map(|limit| limit as f64), turn_tokens)
            .or_else(|| {
                let session = self.before.total_tokens.saturating_add(usage.tokens.total_tokens) as f64;
                over("session_tokens", self.budget.session_tokens.map(|limit| limit as f64), session)
            })
            .or_else(|| over("turn_usd", self.budget.turn_usd, turn_cost))
            .or_else(|| over("session_usd", self.budget.session_usd, self.before_cost + turn_cost))
    }

    /// What `usage` cost: the agent's own figure, else priced from
    /// `[pricing.MODEL]`; `None` when neither is known.
    pub fn cost(&self, usage: &Usage) -> Option<(f64, CostSource)> {
        if let Some(cost) = usage.cost_usd {
            return Some((cost, CostSource::Provider));
        }
        let price = self.pricing.get(usage.model.as_deref()?)?;
        Some((price.of(&usage.tokens), CostSource::Computed))
    }

    /// The turn's `token_usage` event, when the agent reported any.
    pub fn event(&self) -> Option<EventKind> {
        let usage = self.latest.as_ref()?;
        let cost = self.cost(usage);
        Some(EventKind::TokenUsage {
            usage: usage.tokens,
            model: usage.model.clone(),
            cost_usd: cost.map(|(cost, _)| cost),
            cost_source: cost.map(|(_, source)| source),
        })
    }

    /// The session's figures after this turn, for `meta.toml`.
    pub fn totals(&self) -> Option<(TokenUsage, Option<f64>)> {
        let usage = self.latest.as_ref()?;
        let cost = self.cost(usage).map(|(cost, _)| self.before_cost + cost);
        Some((self.before.plus(usage.tokens), cost.or((self.before_cost > 0.0).then_some(self.before_cost))))
    }
}

fn over(budget: &'static str, limit: Option<f64>, used: f64) -> Option<Crossing> {
    limit.filter(|limit| used > *limit).map(|limit| Crossing { budget, limit, used })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(total: u64, model: Option<&str>, cost: Option<f64>) -> Usage {
        let tokens = TokenUsage {
            input_tokens: total - total / 4,
            output_tokens: total / 4,
            total_tokens: total,
            ..TokenUsage::default()
        };
        Usage { tokens, model: model.map(str::to_string), cost_usd: cost }
    }

    #[test]
    fn the_first_limit_crossed_is_named_once_with_its_figures() {
        let budget = Budget { turn_tokens: Some(500), session_tokens: Some(1000), ..Budget::default() };
        let before = TokenUsage { total_tokens: 700, ..TokenUsage::default() };
        let mut meter = Meter::new(budget, BTreeMap::new(), before, 0.0);
        assert_eq!(meter.reading(usage(200, None, None)), None);
        let crossed = meter.reading(usage(400, None, None)).expect("700 + 400 is over 1000");
        assert_eq!((crossed.budget, crossed.limit, crossed.used), ("session_tokens", 1000.0, 1100.0));
        assert!(crossed.reason().contains("1100 tokens, over its limit of 1000 tokens"), "{}", crossed.reason());
        assert_eq!(meter.reading(usage(900, None, None)), None, "named once");
        assert_eq!(meter.totals().unwrap().0.total_tokens, 1600);
    }

    #[test]
    fn the_agents_cost_wins_and_a_price_table_fills_in_marked_as_computed() {
        let price = Price { input: 2.0, cached_input: Some(0.5), output: 8.0 };
        let pricing = BTreeMap::from([("m".to_string(), price)]);
        let budget = Budget { turn_usd: Some(0.01), ..Budget::default() };
        let mut meter = Meter::new(budget, pricing, TokenUsage::default(), 0.0);
        let reported = usage(4000, Some("m"), Some(0.002));
        assert_eq!(meter.cost(&reported), Some((0.002, CostSource::Provider)));
        // 3000 input at $2/M and 1000 output at $8/M: $0.014, over $0.01.
        let priced = meter.reading(usage(4000, Some("m"), None)).expect("over the turn's dollars");
        assert_eq!(priced.budget, "turn_usd");
        assert!((priced.used - 0.014).abs() < 1e-9, "{priced:?}");
        assert_eq!(meter.cost(&usage(10, Some("other"), None)), None, "no price, no cost");
    }

    #[test]
    fn a_spent_session_is_refused_before_its_turn() {
        let budget = Budget { session_tokens: Some(100), ..Budget::default() };
        let spent = TokenUsage { total_tokens: 100, ..TokenUsage::default() };
        assert!(Meter::new(budget.clone(), BTreeMap::new(), spent, 0.0).spent().is_none(), "at the limit is not over");
        let over = TokenUsage { total_tokens: 101, ..TokenUsage::default() };
        assert_eq!(Meter::new(budget, BTreeMap::new(), over, 0.0).spent().unwrap().budget, "session_tokens");
    }
}
