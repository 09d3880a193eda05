//! The in-process Core and Node every command uses when no Core runs: find
//! the data dir, replay what a crashed process left in spools, sync the
//! index, and run commands through the node's own command table with this
//! process as the [`Host`]: turns run here, their events printed as a
//! transcript, approvals asked at this terminal.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use anyhow::Context;
use serde::de::DeserializeOwned;

use super::output::{TerminalApprover, Transcript};
use crate::core::Core;
use crate::node::commands::{self, Approvals, Host};
use crate::node::{Cancel, Node, Observer, PreparedTurn, TurnResult};
use crate::protocol::{CommandError, CommandKind, ErrorCode, Event, SessionId, Workspace};

pub(crate) fn data_dir(flag: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = flag {
        return Ok(dir);
    }
    let dirs = directories::ProjectDirs::from("dev", "cortex", "cortex")
        .context("cannot find a home directory for Cortex's data; pass --data DIR or set CORTEX_HOME")?;
    Ok(dirs.data_dir().to_path_buf())
}

pub(crate) struct Local {
    pub node: Node,
    pub core: Core,
}

/// What an in-process command did besides its reply: the turn it ran, and
/// the approvals and check results it recorded (for `--json`).
pub(crate) struct Ran {
    pub turn: Option<TurnResult>,
    pub evidence: Vec<Event>,
}

impl Local {
    /// Node and Core on `data`, with crashed sessions recovered and the index
    /// in step with the refs.
    pub(crate) fn open(data: &Path) -> anyhow::Result<Local> {
        let node = Node::open(data).context("cannot open this machine's node")?;
        for recovered in node.recover().context("cannot recover crashed sessions")? {
            let what = if recovered.interrupted { ", marked interrupted" } else { "" };
            crate::cli::output::note!(
                "cortex: recovered {} spooled event(s) of session {}{what}",
                recovered.replayed,
                recovered.session
            );
        }
        let mut core = Core::open(data).context("cannot open the index")?;
        core.sync(&node.workspaces()?).context("cannot sync the index with the session refs")?;
        Ok(Local { node, core })
    }

    /// Runs `kind` through the node's command table, here; the transcript
    /// of a turn is printed unless `quiet`. The index follows.
    pub(crate) fn run<T: DeserializeOwned>(&mut self, kind: CommandKind, quiet: bool) -> anyhow::Result<(T, Ran)> {
        let host =
            LocalHost { node: &self.node, transcript: Mutex::new(Transcript::new(quiet)), turn: Mutex::new(None) };
        let answer = commands::handle(&host, kind);
        self.core.sync(&self.node.workspaces()?).context("cannot sync the index with the session refs")?;
        let reply = serde_json::to_value(answer?).expect("holds because replies are JSON");
        let reply: T = crate::protocol::reply::decode(reply)?;
        let turn = host.turn.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner()).transpose()?;
        let evidence = host.transcript.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner()).evidence;
        Ok((reply, Ran { turn, evidence }))
    }
}

struct LocalHost<'a> {
    node: &'a Node,
    transcript: Mutex<Transcript>,
    turn: Mutex<Option<crate::node::Result<TurnResult>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The transcript as every handler's observer.
struct Shared<'a>(&'a Mutex<Transcript>);

impl Observer for Shared<'_> {
    fn event(&mut self, event: &Event, meta: &crate::store::Meta) {
        lock(self.0).event(event, meta);
    }
}

impl Host for LocalHost<'_> {
    fn node(&self) -> &Node {
        self.node
    }

    fn observer(&self, _workspace: &Workspace) -> Box<dyn Observer + '_> {
        Box::new(Shared(&self.transcript))
    }

    /// Here, to its end: approvals are asked at this terminal, or denied at
    /// once when nobody can answer.
    fn run_turn(&self, prepared: PreparedTurn, _workspace: Workspace, (auto_approve, deny_approvals): Approvals) {
        let mut approver = TerminalApprover { yes: auto_approve, always: false };
        let mut observer = Shared(&self.transcript);
        let cancel = Cancel::default();
        // Ctrl-C interrupts this turn; a second one forces.
        let _keys = super::ctrl_c::TurnKeys::watch(cancel.clone());
        let result = if deny_approvals && !auto_approve {
            prepared.run(&mut NobodyAsks, &mut observer, &cancel)
        } else {
            prepared.run(&mut approver, &mut observer, &cancel)
        };
        *lock(&self.turn) = Some(result);
    }

    fn running(&self, _session: &SessionId) -> Option<Cancel> {
        None
    }

    fn answer_approval(
        &self,
        _session: &SessionId,
        _approval_id: Option<String>,
        _approve: bool,
        _for_session: bool,
        _by: Option<String>,
    ) -> Result<(), CommandError> {
        Err(CommandError::new(
            ErrorCode::Unsupported,
            "an in-process turn asks at its own terminal; answering from elsewhere needs a running Core (`cortex up`)",
        ))
    }
}

/// No person will answer: every approval is denied at once, with the reason.
struct NobodyAsks;

impl crate::node::Approver for NobodyAsks {
    fn decide(
        &mut self,
        _session: &SessionId,
        _approval_id: &str,
        _prompt: &str,
    ) -> (crate::protocol::ApprovalDecision, String) {
        (crate::protocol::ApprovalDecision::Denied, "no terminal to ask (pass --yes to approve)".into())
    }
}
