//! Runs turns of a session: creates or opens its store writer, plays the
//! provider, assigns seqs, enforces the lifecycle, and captures each turn's
//! base and final working tree, diff and prompt.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::config::{RepoConfig, When};
use super::meter::Meter;
pub use super::spec::ProviderSpec;
use super::spec::{build_provider, script_path};
use super::{Error, Node, Result};

mod evidence;
mod relay;
use crate::protocol::{
    ApprovalDecision, CheckSummary, Event, EventKind, SessionId, SessionState, TurnOutcome, Workspace,
};
use crate::provider::{self, Provider, TurnEnd, TurnRequest, TurnSink};
use crate::store::{FlushReason, META_SCHEMA, Meta, SessionWriter, Store};
pub use relay::Turns;

pub struct StartRequest {
    pub provider: ProviderSpec,
    pub prompt: String,
    pub title: Option<String>,
    /// The id to use; a fresh one when `None`. Core assigns ids so a repeated
    /// command answers with the same session.
    pub session_id: Option<SessionId>,
    /// Run in a new git worktree on a branch `cortex/<short id>`, leaving
    /// the main checkout alone.
    pub worktree: bool,
}

/// Answers approval requests; the CLI asks on the terminal.
pub trait Approver: Send {
    /// The decision and who made it (shown in the event).
    fn decide(&mut self, session: &SessionId, approval_id: &str, prompt: &str) -> (ApprovalDecision, String);
}

/// Sees every event as it is recorded, with the session's meta as it stands
/// after it: the CLI prints a live transcript, the daemon forwards to Core.
pub trait Observer: Send {
    fn event(&mut self, event: &Event, meta: &Meta);
}

/// How a turn ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TurnResult {
    pub session: SessionId,
    pub turn: u32,
    pub outcome: TurnOutcome,
    pub error: Option<String>,
    pub state: SessionState,
    pub last_seq: u64,
}

/// Asks a running turn to end at the provider's next step: an interrupt
/// leaves the session `idle` for the next turn, a stop leaves it `stopped`.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<CancelState>);

#[derive(Debug, Default)]
struct CancelState {
    requested: AtomicBool,
    stop: AtomicBool,
    steer: Mutex<Vec<String>>,
}

impl Cancel {
    /// Ends the turn; the session becomes `stopped`.
    pub fn cancel(&self) {
        self.0.stop.store(true, Ordering::SeqCst);
        self.0.requested.store(true, Ordering::SeqCst);
    }

    /// Ends the turn; the session goes back to `idle`.
    pub fn interrupt(&self) {
        self.0.requested.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.requested.load(Ordering::SeqCst)
    }

    pub(crate) fn stops(&self) -> bool {
        self.0.stop.load(Ordering::SeqCst)
    }

    pub(crate) fn flag(&self) -> &AtomicBool {
        &self.0.requested
    }

    /// Adds input to the running turn, for a provider that can take it.
    pub fn steer(&self, text: String) {
        self.0.steer.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(text);
    }
}

/// A session with its next turn ready to run: the lock is held, the state
/// checked, the provider built. Running it may take long; the caller decides
/// on which thread.
pub struct PreparedTurn {
    store: Store,
    writer: SessionWriter,
    provider: Box<dyn Provider>,
    prompt: String,
    /// Lifecycle moves to record before the turn starts.
    preamble: Vec<(Option<SessionState>, SessionState)>,
    /// Where a provider with a live process waits for the next turn.
    live: LiveProviders,
    /// Where the session's gateway finds the running turn.
    turns: Turns,
}

/// Providers whose process outlives a turn (a codex app-server), by session.
pub(crate) type LiveProviders = Arc<Mutex<std::collections::HashMap<SessionId, Box<dyn Provider>>>>;

fn lock_live(live: &LiveProviders) -> MutexGuard<'_, std::collections::HashMap<SessionId, Box<dyn Provider>>> {
    live.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How often the flush timer looks at the buffer.
const TIMER_TICK: Duration = Duration::from_millis(200);

impl Node {
    /// Creates the session ref and readies its first turn.
    pub fn prepare_start(
        &self,
        store: &Store,
        workspace: &Workspace,
        request: StartRequest,
        observer: &mut dyn Observer,
    ) -> Result<PreparedTurn> {
        request.provider.check(store.workdir())?;
        let id = request.session_id.clone().unwrap_or_else(SessionId::generate);
        let (store, worktree, branch) = if request.worktree {
            let short = &id.as_str()[id.as_str().len() - 8..];
            let branch = format!("cortex/{short}");
            let path = store.private_dir().join("worktrees").join(short);
            let isolated = super::git::add_worktree(store.workdir(), &path, &branch)?;
            let path = isolated.workdir().to_string_lossy().into_owned();
            (isolated, Some(path), Some(branch))
        } else {
            (store.clone(), None, None)
        };
        let store = &store;
        if let ProviderSpec::Fake { script: Some(text), .. } = &request.provider {
            let path = script_path(store, &id);
            fs_err::create_dir_all(path.parent().expect("holds because the path has a folder"))
                // Kept redacted, like everything Cortex writes: the agent
                // plays the script as kept, from its first turn on.
                .and_then(|()| fs_err::write(&path, crate::store::redact::redact_str(text).as_bytes()))
                .map_err(|source| Error::Io { context: "cannot keep the session's script".into(), source })?;
        }
        let now = jiff::Timestamp::now();
        let meta = Meta {
            schema: META_SCHEMA,
            id,
            // The title travels in meta (to Core, the index, every page), so
            // it is redacted like an event (before the prompt is cut to a
            // line, so no secret is cut below what its rule recognises).
            title: crate::store::redact::redact_str(
                &request
                    .title
                    .clone()
                    .unwrap_or_else(|| first_line(&crate::store::redact::redact_str(&request.prompt))),
            )
            .into_owned(),
            provider: request.provider.name().to_string(),
            provider_version: request.provider.version(store.workdir()),
            node: self.name.clone(),
            workspace: workspace.id.to_string(),
            base_commit: store.head_commit(),
            state: SessionState::Starting,
            state_reason: None,
            resume_ref: None,
            usage_total: None,
            cost_usd_total: None,
            worktree,
            branch,
            last_seq: 0,
            turns: 0,
            created_at: now,
            updated_at: now,
        };
        let mut writer = SessionWriter::create(store, meta)?;
        // The first event is part of creating the session: whoever learns the
        // id has the event to go with it.
        let mut first = Event {
            seq: 1,
            at: now,
            turn: None,
            cause: None,
            kind: EventKind::Lifecycle { from: None, to: SessionState::Starting, reason: None },
        };
        writer.append(std::slice::from_mut(&mut first))?;
        writer.flush(FlushReason::Lifecycle)?;
        observer.event(&first, writer.meta());
        let provider = build_provider(store, writer.meta(), self.gateway_url(writer.meta()))?;
        Ok(PreparedTurn {
            store: store.clone(),
            writer,
            provider,
            prompt: request.prompt,
            preamble: Vec::new(),
            live: self.live.clone(),
            turns: self.turns.clone(),
        })
    }

    /// Takes the session's lock and checks that it may run a turn now.
    pub fn prepare_send(&self, store: &Store, session: &SessionId, prompt: &str) -> Result<PreparedTurn> {
        let mut writer = SessionWriter::open(store, session)?;
        // A session isolated in a worktree runs its turns there. Its meta is
        // read only now that the writer has verified the tip.
        if let Some(path) = writer.meta().worktree.clone()
            && store.workdir() != std::path::Path::new(&path)
        {
            drop(writer);
            return self.prepare_send(&store.for_session(session)?, session, prompt);
        }
        // A config typo is refused before the turn writes anything, and so
        // is a turn of a session whose budget is spent.
        let config = RepoConfig::load(store.workdir())?;
        if let Some(spent) = Meter::with_config(config, writer.meta()).spent() {
            return Err(Error::BudgetSpent(spent.reason()));
        }
        // Holding the lock, a session that looks mid-turn has a dead writer.
        writer.recover_in_place()?;
        let state = writer.meta().state;
        let mut preamble = Vec::new();
        if state == SessionState::Interrupted {
            preamble.push((Some(state), SessionState::Idle));
        }
        preamble.last().map_or(state, |(_, to)| *to).check_transition(SessionState::Running)?;
        let live = lock_live(&self.live).remove(session);
        let provider = match live {
            Some(provider) => provider,
            None => build_provider(store, writer.meta(), self.gateway_url(writer.meta()))?,
        };
        Ok(PreparedTurn {
            store: store.clone(),
            writer,
            provider,
            prompt: prompt.to_string(),
            preamble,
            live: self.live.clone(),
            turns: self.turns.clone(),
        })
    }

    /// Runs the session's checks now (all of them, or the one named), as
    /// evidence of its last turn. The session must not be mid-turn.
    pub fn run_checks(
        &self,
        store: &Store,
        session: &SessionId,
        name: Option<&str>,
        observer: &mut dyn Observer,
    ) -> Result<Vec<CheckSummary>> {
        let store = &store.for_session(session)?;
        let mut writer = SessionWriter::open(store, session)?;
        writer.recover_in_place()?;
        let meta = writer.meta();
        if meta.state.is_busy() {
            return Err(Error::Store(crate::store::Error::SessionBusy(session.clone())));
        }
        let config = RepoConfig::load(store.workdir())?;
        let known = config.checks.iter().any(|check| name.is_none_or(|name| check.name == name));
        if !known {
            let path = store.workdir().join(".cortex/config.toml");
            return Err(Error::Config {
                path,
                detail: match name {
                    Some(name) => format!("no check named `{name}`"),
                    None => "no checks are configured (add `[[checks]]` tables)".into(),
                },
            });
        }
        let turn = meta.turns.max(1);
        let mut approver = NoApprover;
        let mut runner = Runner::new(writer, &mut approver, observer);
        runner.turn = Some(turn);
        let ran = runner.run_checks(store, turn, |check| name.is_none_or(|name| check.name == name))?;
        let (_, writer) = runner.into_writer();
        writer.close()?;
        Ok(ran)
    }

    /// Moves a session that is not mid-turn to `stopped`; one that is
    /// stopped already stays so (a stop is idempotent).
    pub fn stop_idle(&self, store: &Store, session: &SessionId, observer: &mut dyn Observer) -> Result<SessionState> {
        if store.read_session(session).is_ok_and(|view| view.meta.state == SessionState::Stopped) {
            return Ok(SessionState::Stopped);
        }
        self.settle(store, session, SessionState::Stopped, "stopped by request", observer)
    }

    /// Marks an idle session `expired`: its managed lifetime ran out. The
    /// next turn resumes it.
    pub fn expire(
        &self,
        store: &Store,
        session: &SessionId,
        reason: &str,
        observer: &mut dyn Observer,
    ) -> Result<SessionState> {
        self.settle(store, session, SessionState::Expired, reason, observer)
    }

    /// Moves a session that is not mid-turn to `to`, if the lifecycle allows.
    fn settle(
        &self,
        store: &Store,
        session: &SessionId,
        to: SessionState,
        reason: &str,
        observer: &mut dyn Observer,
    ) -> Result<SessionState> {
        let mut writer = SessionWriter::open(store, session)?;
        writer.recover_in_place()?;
        writer.meta().state.check_transition(to)?;
        // Stopped or expired: its live process, if any, goes.
        drop(lock_live(&self.live).remove(session));
        let mut approver = NoApprover;
        let mut runner = Runner::new(writer, &mut approver, observer);
        runner.transition(to, Some(reason.to_string()))?;
        let (_, writer) = runner.into_writer();
        writer.close()?;
        Ok(to)
    }
}

impl PreparedTurn {
    pub fn session(&self) -> &SessionId {
        self.writer.id()
    }

    pub fn meta(&self) -> &Meta {
        self.writer.meta()
    }

    /// Runs the turn to its end. `cancel` stops it at the provider's next
    /// step; the turn then ends `interrupted` and the session `stopped`.
    pub fn run(self, approver: &mut dyn Approver, observer: &mut dyn Observer, cancel: &Cancel) -> Result<TurnResult> {
        let PreparedTurn { store, writer, mut provider, prompt, preamble, live, turns } = self;
        let session = writer.id().clone();
        let mut runner = Runner::new(writer, approver, observer);
        for (_, to) in preamble {
            runner.transition(to, None)?;
        }
        let result = runner.run_turn(&store, provider.as_mut(), &prompt, cancel, &turns);
        // A live process waits for the next turn, unless the session ended.
        let settled = result.as_ref().is_ok_and(|result| result.state == SessionState::Idle);
        if provider.is_live() && settled {
            lock_live(&live).insert(session, provider);
        }
        result
    }
}

/// Records one event outside a turn's run (a commit made from the
/// session's work, a note from gc), as part of the session's last turn, and
/// optionally a tree at `tree.0` in the session tree.
pub(super) fn record_event(
    store: &Store,
    session: &SessionId,
    kind: EventKind,
    tree: Option<(String, gix::ObjectId)>,
    observer: &mut dyn Observer,
) -> Result<()> {
    record_events(store, session, vec![kind], tree, observer)
}

/// [`record_event`] for several events, in one write of the session.
pub(super) fn record_events(
    store: &Store,
    session: &SessionId,
    kinds: Vec<EventKind>,
    tree: Option<(String, gix::ObjectId)>,
    observer: &mut dyn Observer,
) -> Result<()> {
    let mut writer = SessionWriter::open(store, session)?;
    writer.recover_in_place()?;
    let turn = writer.meta().turns;
    if let Some((path, tree)) = tree {
        writer.put_tree(path, tree);
    }
    let mut approver = NoApprover;
    let mut runner = Runner::new(writer, &mut approver, observer);
    runner.turn = (turn > 0).then_some(turn);
    for kind in kinds {
        runner.record(kind)?;
    }
    let (_, writer) = runner.into_writer();
    writer.close()?;
    Ok(())
}

struct NoApprover;

impl Approver for NoApprover {
    fn decide(&mut self, _session: &SessionId, _approval_id: &str, _prompt: &str) -> (ApprovalDecision, String) {
        (ApprovalDecision::Denied, "nobody (no approver)".into())
    }
}

fn first_line(prompt: &str) -> String {
    let line = prompt.lines().next().unwrap_or_default().trim();
    match line.char_indices().nth(80) {
        Some((idx, _)) => format!("{}…", &line[..idx]),
        None => line.to_string(),
    }
}

struct Runner<'a> {
    writer: Arc<Mutex<SessionWriter>>,
    session: SessionId,
    turn: Option<u32>,
    approver: &'a mut dyn Approver,
    observer: &'a mut dyn Observer,
    timer: FlushTimer,
    /// The seq of each command's start, the cause of its output and end.
    started: std::collections::HashMap<String, u64>,
    /// The running turn's use, held to the budget; and how to stop the
    /// turn when a reading crosses it, with the reason.
    meter: Option<Meter>,
    cancel: Option<Cancel>,
    over_budget: Option<String>,
    /// Bytes of artifacts this run may still store (`[artifacts] max_turn_bytes`).
    artifact_room: Option<u64>,
}

impl<'a> Runner<'a> {
    fn new(writer: SessionWriter, approver: &'a mut dyn Approver, observer: &'a mut dyn Observer) -> Runner<'a> {
        let session = writer.id().clone();
        let writer = Arc::new(Mutex::new(writer));
        let timer = FlushTimer::start(&writer);
        Runner {
            writer,
            session,
            turn: None,
            approver,
            observer,
            timer,
            started: Default::default(),
            meter: None,
            cancel: None,
            over_budget: None,
            artifact_room: None,
        }
    }

    fn writer(&self) -> MutexGuard<'_, SessionWriter> {
        self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn record(&mut self, kind: EventKind) -> Result<u64> {
        self.record_caused(kind, None)
    }

    fn record_caused(&mut self, kind: EventKind, cause: Option<String>) -> Result<u64> {
        let cause = cause.or_else(|| match &kind {
            EventKind::CommandOutput { command_id, .. } | EventKind::CommandFinished { command_id, .. } => {
                self.started.get(command_id).map(|seq| format!("seq:{seq}"))
            }
            _ => None,
        });
        let started = match &kind {
            EventKind::CommandStarted { command_id, .. } => Some(command_id.clone()),
            _ => None,
        };
        let flush = match kind {
            EventKind::Lifecycle { .. } => Some(FlushReason::Lifecycle),
            EventKind::CommandFinished { .. } => Some(FlushReason::ToolResult),
            _ => None,
        };
        let event = {
            let mut writer = self.writer();
            let mut event =
                Event { seq: writer.last_seq() + 1, at: jiff::Timestamp::now(), turn: self.turn, cause, kind };
            writer.append(std::slice::from_mut(&mut event))?;
            if let Some(reason) = flush {
                writer.flush(reason)?;
            }
            let meta = writer.meta().clone();
            (event, meta)
        };
        let (event, meta) = event;
        if let Some(command_id) = started {
            self.started.insert(command_id, event.seq);
        }
        self.observer.event(&event, &meta);
        Ok(event.seq)
    }

    fn transition(&mut self, to: SessionState, reason: Option<String>) -> Result<()> {
        let from = self.writer().meta().state;
        from.check_transition(to)?;
        self.writer().set_state(to, reason.clone());
        self.record(EventKind::Lifecycle { from: Some(from), to, reason })?;
        Ok(())
    }

    // Long: the turn's steps in order (running, provider, snapshot, checks,
    // settle) read best as one sequence; each step is a call.
    fn run_turn(
        mut self,
        store: &Store,
        provider: &mut dyn Provider,
        prompt: &str,
        cancel: &Cancel,
        turns: &Turns,
    ) -> Result<TurnResult> {
        let (turn, known_clean) = {
            let writer = self.writer();
            let turn = writer.meta().turns + 1;
            let view = store.view_at(writer.tip())?;
            let previous = store.tree_at(&view, &format!("turns/{}/worktree", turn - 1))?;
            (turn, previous.unwrap_or_else(|| store.head_tree()))
        };
        self.turn = Some(turn);
        // A snapshot that cannot be made fails the turn with the reason; the
        // session never waits in `starting` or `running` for nobody.
        let base = match store.snapshot_worktree(known_clean) {
            Ok(base) => base,
            Err(error) => {
                let reason = format!("cannot snapshot the working tree before the turn: {error}");
                self.writer().update_meta(|meta| meta.turns = turn);
                self.record(EventKind::Error { message: reason.clone() })?;
                self.record(EventKind::TurnFinished { outcome: TurnOutcome::Failed })?;
                self.transition(SessionState::Failed, Some(reason.clone()))?;
                return self.finish(turn, TurnOutcome::Failed, Some(reason));
            }
        };
        self.warn_skipped(&base.skipped)?;
        {
            let mut writer = self.writer();
            writer.update_meta(|meta| meta.turns = turn);
            writer.put_file(format!("turns/{turn}/prompt.md"), prompt);
            writer.put_tree(format!("turns/{turn}/base"), base.tree);
        }
        self.transition(SessionState::Running, None)?;
        let prompt_seq = self.record(EventKind::UserMessage { text: prompt.to_string() })?;

        let meter = Meter::for_session(store.workdir(), self.writer().meta());
        self.meter = Some(meter);
        self.cancel = Some(cancel.clone());
        let began = std::time::SystemTime::now();
        let request =
            TurnRequest { workspace: store.workdir(), turn, prompt, cancel: cancel.flag(), steer: &cancel.0.steer };
        let ended = self.play(provider, request, turns);
        let crashed = !cancel.is_cancelled() && matches!(ended, Ok(TurnEnd::Crashed(_)));
        let (mut outcome, mut error) = match ended {
            _ if cancel.is_cancelled() => (TurnOutcome::Interrupted, None),
            Ok(TurnEnd::Completed) => (TurnOutcome::Completed, None),
            Ok(TurnEnd::Interrupted) => (TurnOutcome::Interrupted, None),
            Ok(TurnEnd::Crashed(message)) => (TurnOutcome::Interrupted, Some(message)),
            Ok(TurnEnd::Failed(message)) => (TurnOutcome::Failed, Some(message)),
            Err(provider::Error::Sink(source)) => {
                return Err(Error::Provider(provider::Error::Sink(source)));
            }
            Err(error) => (TurnOutcome::Failed, Some(error.to_string())),
        };
        if let Some(message) = &error {
            self.record(EventKind::Error { message: message.clone() })?;
        }
        if let Some(resume) = provider.resume_ref() {
            self.writer().update_meta(|meta| meta.resume_ref = Some(resume));
        }
        if let Some(version) = provider.agent_version()
            && self.writer().meta().provider_version.is_none()
        {
            self.writer().update_meta(|meta| meta.provider_version = Some(version));
        }
        self.record_usage()?;

        match store.snapshot_worktree(base.tree) {
            Ok(after) => {
                self.warn_skipped(&after.skipped)?;
                let (patch, stat) = store.diff_trees(base.tree, after.tree)?;
                {
                    let mut writer = self.writer();
                    writer.put_file(format!("turns/{turn}/diff.patch"), patch);
                    writer.put_tree(format!("turns/{turn}/worktree"), after.tree);
                }
                self.record(EventKind::DiffCaptured {
                    files: stat.files.len() as u32,
                    insertions: stat.insertions(),
                    deletions: stat.deletions(),
                })?;
            }
            Err(snapshot_error) => {
                let reason = format!("cannot snapshot the working tree after the turn: {snapshot_error}");
                self.record(EventKind::Error { message: reason.clone() })?;
                outcome = TurnOutcome::Failed;
                error = Some(reason);
            }
        }
        self.keep_agent_artifacts(store, turn, began)?;
        if outcome != TurnOutcome::Interrupted {
            self.run_checks(store, turn, |check| check.when == When::Turn)?;
        }
        self.record_caused(EventKind::TurnFinished { outcome }, Some(format!("seq:{prompt_seq}")))?;
        match outcome {
            TurnOutcome::Completed => self.transition(SessionState::Idle, None)?,
            TurnOutcome::Failed => self.transition(SessionState::Failed, error.clone())?,
            TurnOutcome::Interrupted if cancel.stops() => {
                self.transition(SessionState::Interrupted, Some("stop requested".into()))?;
                self.transition(SessionState::Stopped, Some("stopped by request".into()))?;
            }
            // The agent died: the session says why and waits for a person.
            TurnOutcome::Interrupted if crashed => self.transition(SessionState::Interrupted, error.clone())?,
            TurnOutcome::Interrupted => {
                let budget = self.over_budget.clone();
                let reason = budget.clone().unwrap_or_else(|| "interrupted by request".into());
                self.transition(SessionState::Interrupted, Some(reason))?;
                self.transition(SessionState::Idle, budget)?;
            }
        }
        self.finish(turn, outcome, error)
    }

    /// Stops the flush timer and hands back the writer.
    fn into_writer(self) -> (SessionId, SessionWriter) {
        let Runner { writer, session, timer, .. } = self;
        drop(timer);
        let writer = Arc::try_unwrap(writer)
            .ok()
            .expect("holds because the timer thread, the only other owner, has ended")
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (session, writer)
    }

    /// Says which paths a snapshot left out because git refused them.
    fn warn_skipped(&mut self, skipped: &[String]) -> Result<()> {
        if skipped.is_empty() {
            return Ok(());
        }
        let shown: Vec<&str> = skipped.iter().take(10).map(String::as_str).collect();
        let more = skipped.len().saturating_sub(shown.len());
        let message = format!(
            "git refused {} path(s), left out of the snapshot: {}{}",
            skipped.len(),
            shown.join(", "),
            if more > 0 { format!(" and {more} more") } else { String::new() }
        );
        self.record(EventKind::Warning { message })?;
        Ok(())
    }

    fn finish(self, turn: u32, outcome: TurnOutcome, error: Option<String>) -> Result<TurnResult> {
        let (session, writer) = self.into_writer();
        let result =
            TurnResult { session, turn, outcome, error, state: writer.meta().state, last_seq: writer.last_seq() };
        writer.close()?;
        Ok(result)
    }
}

/// Stops and joins the flush timer when dropped, also on error paths. The
/// stop wakes the timer at once: a turn's end never waits out a tick (it
/// did, and every next turn started up to 200 ms late).
struct FlushTimer {
    stop: Option<std::sync::mpsc::Sender<()>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl FlushTimer {
    /// Flushes events that have waited long enough while the provider is
    /// quiet (a long command, a sleep, a person deciding).
    fn start(writer: &Arc<Mutex<SessionWriter>>) -> FlushTimer {
        let writer = Arc::clone(writer);
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let handle = std::thread::spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(TIMER_TICK) {
                let mut writer = writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                if let Err(error) = writer.flush_if_due() {
                    tracing::warn!(%error, "timed flush failed; the spool still holds the events");
                }
            }
        });
        FlushTimer { stop: Some(stop), handle: Some(handle) }
    }
}

impl Drop for FlushTimer {
    fn drop(&mut self) {
        // Dropping the sender disconnects the channel, which ends the loop.
        self.stop.take();
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

impl TurnSink for Runner<'_> {
    fn emit(&mut self, kind: EventKind) -> Result<u64, provider::Error> {
        self.record(kind).map_err(|error| provider::Error::Sink(Box::new(error)))
    }

    fn approve(&mut self, prompt: &str) -> Result<ApprovalDecision, provider::Error> {
        self.ask(prompt).map_err(|error| provider::Error::Sink(Box::new(error)))
    }

    fn raw(&mut self, line: &str) -> Result<(), provider::Error> {
        self.writer().append_raw(line).map_err(|error| provider::Error::Sink(Box::new(Error::from(error))))
    }

    fn usage(&mut self, usage: provider::Usage) -> Result<(), provider::Error> {
        let Some(crossed) = self.meter.as_mut().and_then(|meter| meter.reading(usage)) else { return Ok(()) };
        // Stopped at the provider's next step; the reason outlives the turn.
        self.over_budget = Some(crossed.reason());
        if let Some(cancel) = &self.cancel {
            cancel.interrupt();
        }
        self.record(crossed.event()).map(|_| ()).map_err(|error| provider::Error::Sink(Box::new(error)))
    }
}

impl Runner<'_> {
    /// The turn's `token_usage` event and the session's new totals, when
    /// the agent reported any use.
    fn record_usage(&mut self) -> Result<()> {
        let Some(meter) = self.meter.take() else { return Ok(()) };
        if let (Some(event), Some((tokens, cost))) = (meter.event(), meter.totals()) {
            self.record(event)?;
            self.writer().update_meta(|meta| {
                meta.usage_total = Some(tokens);
                meta.cost_usd_total = cost;
            });
        }
        Ok(())
    }

    /// Records the request, waits in `awaiting_approval` for the approver,
    /// records the answer, and goes back to `running`.
    fn ask(&mut self, prompt: &str) -> Result<ApprovalDecision> {
        self.ask_who(prompt).map(|(decision, _)| decision)
    }

    /// [`Runner::ask`], answering who decided too.
    fn ask_who(&mut self, prompt: &str) -> Result<(ApprovalDecision, String)> {
        let seq = self.writer().last_seq() + 1;
        let approval_id = format!("apr_{seq}");
        self.record(EventKind::ApprovalRequested { approval_id: approval_id.clone(), prompt: prompt.to_string() })?;
        self.transition(SessionState::AwaitingApproval, None)?;
        let (decision, by) = self.approver.decide(&self.session, &approval_id, prompt);
        self.record_caused(
            EventKind::ApprovalResolved { approval_id, decision, by: by.clone() },
            Some(format!("seq:{seq}")),
        )?;
        self.transition(SessionState::Running, None)?;
        Ok((decision, by))
    }
}
