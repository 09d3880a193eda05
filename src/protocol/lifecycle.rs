//! The session lifecycle: the states of DESIGN.md and the one table of legal
//! transitions. Every component asks [`SessionState::check_transition`] before
//! moving a session, so an illegal move is refused in one place.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    Starting,
    Running,
    Idle,
    AwaitingApproval,
    Interrupted,
    Stopped,
    Failed,
    Expired,
}

/// A refused lifecycle move, worded for the person who asked for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a session that is {from} cannot become {to}{hint}")]
pub struct IllegalTransition {
    pub from: SessionState,
    pub to: SessionState,
    hint: &'static str,
}

impl SessionState {
    pub const ALL: [SessionState; 8] = [
        Self::Starting,
        Self::Running,
        Self::Idle,
        Self::AwaitingApproval,
        Self::Interrupted,
        Self::Stopped,
        Self::Failed,
        Self::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Idle => "idle",
            Self::AwaitingApproval => "awaiting_approval",
            Self::Interrupted => "interrupted",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
            Self::Expired => "expired",
        }
    }

    /// No provider works in a session in this state, and none will without a
    /// resume (`stopped`, `expired`) or ever again (`failed`).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Stopped | Self::Failed | Self::Expired)
    }

    /// A turn is under way: the provider is working or waiting on a person.
    pub fn is_busy(self) -> bool {
        matches!(self, Self::Starting | Self::Running | Self::AwaitingApproval)
    }

    pub fn can_become(self, to: SessionState) -> bool {
        use SessionState::*;
        match (self, to) {
            (Starting, Running) => true,
            (Running, Idle | AwaitingApproval | Interrupted) => true,
            (AwaitingApproval, Running | Interrupted) => true,
            (Interrupted, Idle) => true,
            (Idle, Running | Expired) => true,
            (Stopped | Expired, Running) => true,
            (Stopped | Failed, _) => false,
            (_, Stopped | Failed) => true,
            _ => false,
        }
    }

    pub fn check_transition(self, to: SessionState) -> Result<(), IllegalTransition> {
        if self.can_become(to) {
            return Ok(());
        }
        let hint = match self {
            Self::Failed => " (a failed session is final: start a new one)",
            Self::Stopped if to != Self::Running => " (resume it first)",
            _ if self.is_busy() => " while a turn is under way (wait for it, or interrupt it)",
            _ => "",
        };
        Err(IllegalTransition { from: self, to, hint })
    }
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for SessionState {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|state| state.as_str() == text).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|s| s.as_str()).collect();
            format!("unknown session state `{text}` (expected one of {})", names.join(", "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::SessionState::{self, *};

    fn check(from: SessionState, to: SessionState, expect: &str) {
        let got = match from.check_transition(to) {
            Ok(()) => "ok".to_string(),
            Err(error) => error.to_string(),
        };
        assert_eq!(got, expect, "{from} -> {to}");
    }

    #[test]
    fn legal_moves_follow_the_design() {
        check(Starting, Running, "ok");
        check(Running, AwaitingApproval, "ok");
        check(AwaitingApproval, Running, "ok");
        check(Running, Interrupted, "ok");
        check(Interrupted, Idle, "ok");
        check(Idle, Expired, "ok");
        check(Expired, Running, "ok");
        check(Stopped, Running, "ok");
        check(Idle, Stopped, "ok");
        check(Running, Failed, "ok");
    }

    /// Every one of the 64 pairs, against a table written from DESIGN.md
    /// (`starting → running ⇄ idle`, `running → awaiting_approval →
    /// running`, `running → interrupted → idle`, any → `stopped | failed`,
    /// `idle → expired`, `stopped | expired → running`; `failed` and
    /// `stopped` are left only by a resume of a stopped session) rather
    /// than from the code.
    #[test]
    fn all_64_pairs_match_the_design() {
        // Rows: from; columns: to, in `SessionState::ALL` order
        // (starting, running, idle, awaiting_approval, interrupted, stopped, failed, expired).
        const TABLE: [&str; 8] = [
            ".x...xx.", // starting
            "..xxxxx.", // running
            ".x...xxx", // idle
            ".x..xxx.", // awaiting_approval
            "..x..xx.", // interrupted
            ".x......", // stopped
            "........", // failed
            ".x...xx.", // expired
        ];
        for (from, row) in SessionState::ALL.into_iter().zip(TABLE) {
            for (to, cell) in SessionState::ALL.into_iter().zip(row.chars()) {
                assert_eq!(from.can_become(to), cell == 'x', "{from} -> {to}");
                assert_eq!(from.check_transition(to).is_ok(), cell == 'x', "{from} -> {to}");
            }
        }
    }

    #[test]
    fn illegal_moves_say_why() {
        check(
            Failed,
            Running,
            "a session that is failed cannot become running (a failed session is final: start a new one)",
        );
        check(
            Running,
            Running,
            "a session that is running cannot become running while a turn is under way (wait for it, or interrupt it)",
        );
        check(Stopped, Stopped, "a session that is stopped cannot become stopped (resume it first)");
        check(Idle, Interrupted, "a session that is idle cannot become interrupted");
    }

    #[test]
    fn state_names_round_trip() {
        for state in SessionState::ALL {
            assert_eq!(state.as_str().parse::<SessionState>(), Ok(state));
        }
        assert!("sleeping".parse::<SessionState>().unwrap_err().contains("expected one of"));
    }
}
