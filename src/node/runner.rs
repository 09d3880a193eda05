//! Runs turns of a session: creates or opens its store writer, plays the
//! provider, assigns seqs, enforces the lifecycle, and captures each turn's
//! base and final working tree, diff and prompt.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::{Error, Node, Result};
use crate::protocol::{ApprovalDecision, Event, EventKind, SessionId, SessionState, TurnOutcome};
use crate::provider::fake::{FakeProvider, Script};
use crate::provider::{self, Provider, TurnEnd, TurnRequest, TurnSink};
use crate::store::{FlushReason, META_SCHEMA, Meta, SessionWriter, Store};

/// Which agent runs the session, with its options.
#[derive(Clone, Debug)]
pub enum ProviderSpec {
    Fake { script: Option<PathBuf> },
}

impl ProviderSpec {
    fn name(&self) -> &'static str {
        match self {
            Self::Fake { .. } => "fake",
        }
    }
}

pub struct StartRequest {
    pub provider: ProviderSpec,
    pub prompt: String,
    pub title: Option<String>,
}

/// Answers approval requests; the CLI asks on the terminal.
pub trait Approver {
    /// The decision and who made it (shown in the event).
    fn decide(&mut self, session: &SessionId, prompt: &str) -> (ApprovalDecision, String);
}

/// Sees every event as it is recorded; the CLI prints a live transcript.
pub trait Observer {
    fn event(&mut self, event: &Event);
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

/// How often the flush timer looks at the buffer.
const TIMER_TICK: Duration = Duration::from_millis(200);

impl Node {
    /// Starts a session in the workspace of `store` (binding it if needed)
    /// and runs its first turn. The provider's configuration is checked
    /// before anything is written.
    pub fn start_session(
        &self,
        store: &Store,
        request: StartRequest,
        approver: &mut dyn Approver,
        observer: &mut dyn Observer,
    ) -> Result<TurnResult> {
        let (mut provider, script_text) = match &request.provider {
            ProviderSpec::Fake { script: Some(path) } => {
                let script = Script::load(path).map_err(provider::Error::from)?;
                let text = fs_err::read_to_string(path).map_err(|source| Error::Io {
                    context: format!("cannot read `{}`", path.display()),
                    source,
                })?;
                (FakeProvider::new(script), Some(text))
            }
            ProviderSpec::Fake { script: None } => (FakeProvider::new(Script::default()), None),
        };
        let workspace = self.bind(store)?;
        let id = SessionId::generate();
        if let Some(text) = script_text {
            let path = script_path(store, &id);
            fs_err::create_dir_all(path.parent().expect("holds because the path has a folder"))
                .and_then(|()| fs_err::write(&path, text))
                .map_err(|source| Error::Io {
                    context: "cannot keep the session's script".into(),
                    source,
                })?;
        }
        let now = jiff::Timestamp::now();
        let title = request
            .title
            .clone()
            .unwrap_or_else(|| first_line(&request.prompt));
        let meta = Meta {
            schema: META_SCHEMA,
            id: id.clone(),
            title,
            provider: request.provider.name().to_string(),
            node: self.name.clone(),
            workspace: workspace.id.to_string(),
            base_commit: store.head_commit(),
            state: SessionState::Starting,
            state_reason: None,
            resume_ref: None,
            last_seq: 0,
            turns: 0,
            created_at: now,
            updated_at: now,
        };
        let writer = SessionWriter::create(store, meta)?;
        let mut runner = Runner::new(writer, approver, observer);
        runner.record(EventKind::Lifecycle {
            from: None,
            to: SessionState::Starting,
            reason: None,
        })?;
        runner.run_turn(store, &mut provider, &request.prompt)
    }

    /// Runs the next turn of an existing session.
    pub fn send_turn(
        &self,
        store: &Store,
        session: &SessionId,
        prompt: &str,
        approver: &mut dyn Approver,
        observer: &mut dyn Observer,
    ) -> Result<TurnResult> {
        let mut writer = SessionWriter::open(store, session)?;
        // Holding the lock, a session that looks mid-turn has a dead writer.
        writer.recover_in_place()?;
        let state = writer.meta().state;
        let next = if state == SessionState::Interrupted {
            SessionState::Idle
        } else {
            state
        };
        next.check_transition(SessionState::Running)?;
        let mut provider: Box<dyn Provider> = match writer.meta().provider.as_str() {
            "fake" => {
                let path = script_path(store, session);
                let script = if path.exists() {
                    Script::load(&path).map_err(provider::Error::from)?
                } else {
                    Script::default()
                };
                Box::new(FakeProvider::new(script))
            }
            other => {
                return Err(Error::UnknownProvider {
                    session: session.clone(),
                    provider: other.to_string(),
                });
            }
        };
        let mut runner = Runner::new(writer, approver, observer);
        if state == SessionState::Interrupted {
            runner.transition(SessionState::Idle, None)?;
        }
        runner.run_turn(store, provider.as_mut(), prompt)
    }
}

fn script_path(store: &Store, session: &SessionId) -> PathBuf {
    store
        .private_dir()
        .join("scripts")
        .join(format!("{session}.toml"))
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
}

impl<'a> Runner<'a> {
    fn new(
        writer: SessionWriter,
        approver: &'a mut dyn Approver,
        observer: &'a mut dyn Observer,
    ) -> Runner<'a> {
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
        }
    }

    fn writer(&self) -> MutexGuard<'_, SessionWriter> {
        self.writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn record(&mut self, kind: EventKind) -> Result<u64> {
        self.record_caused(kind, None)
    }

    fn record_caused(&mut self, kind: EventKind, cause: Option<String>) -> Result<u64> {
        let flush = match kind {
            EventKind::Lifecycle { .. } => Some(FlushReason::Lifecycle),
            EventKind::CommandFinished { .. } => Some(FlushReason::ToolResult),
            _ => None,
        };
        let event = {
            let mut writer = self.writer();
            let event = Event {
                seq: writer.last_seq() + 1,
                at: jiff::Timestamp::now(),
                turn: self.turn,
                cause,
                kind,
            };
            writer.append(std::slice::from_ref(&event))?;
            if let Some(reason) = flush {
                writer.flush(reason)?;
            }
            event
        };
        self.observer.event(&event);
        Ok(event.seq)
    }

    fn transition(&mut self, to: SessionState, reason: Option<String>) -> Result<()> {
        let from = self.writer().meta().state;
        from.check_transition(to)?;
        self.writer().set_state(to, reason.clone());
        self.record(EventKind::Lifecycle {
            from: Some(from),
            to,
            reason,
        })?;
        Ok(())
    }

    fn run_turn(
        mut self,
        store: &Store,
        provider: &mut dyn Provider,
        prompt: &str,
    ) -> Result<TurnResult> {
        let (turn, known_clean) = {
            let writer = self.writer();
            let turn = writer.meta().turns + 1;
            let view = store.view_at(writer.tip())?;
            let previous = store.tree_at(&view, &format!("turns/{}/worktree", turn - 1))?;
            (turn, previous.unwrap_or_else(|| store.head_tree()))
        };
        self.turn = Some(turn);
        let base = store.snapshot_worktree(known_clean)?;
        {
            let mut writer = self.writer();
            writer.update_meta(|meta| meta.turns = turn);
            writer.put_file(format!("turns/{turn}/prompt.md"), prompt);
            writer.put_tree(format!("turns/{turn}/base"), base.tree);
        }
        self.transition(SessionState::Running, None)?;
        let prompt_seq = self.record(EventKind::UserMessage {
            text: prompt.to_string(),
        })?;

        let request = TurnRequest {
            workspace: store.workdir(),
            turn,
            prompt,
        };
        let (outcome, error) = match provider.run_turn(request, &mut self) {
            Ok(TurnEnd::Completed) => (TurnOutcome::Completed, None),
            Ok(TurnEnd::Failed(message)) => (TurnOutcome::Failed, Some(message)),
            Err(provider::Error::Sink(source)) => {
                return Err(Error::Provider(provider::Error::Sink(source)));
            }
            Err(error) => (TurnOutcome::Failed, Some(error.to_string())),
        };
        if let Some(message) = &error {
            self.record(EventKind::Error {
                message: message.clone(),
            })?;
        }

        let after = store.snapshot_worktree(base.tree)?;
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
        self.record_caused(
            EventKind::TurnFinished { outcome },
            Some(format!("seq:{prompt_seq}")),
        )?;
        let state = if outcome == TurnOutcome::Completed {
            SessionState::Idle
        } else {
            SessionState::Failed
        };
        self.transition(state, error.clone())?;
        self.finish(turn, outcome, error)
    }

    fn finish(self, turn: u32, outcome: TurnOutcome, error: Option<String>) -> Result<TurnResult> {
        let Runner {
            writer,
            session,
            timer,
            ..
        } = self;
        drop(timer);
        let writer = Arc::try_unwrap(writer)
            .ok()
            .expect("holds because the timer thread, the only other owner, has ended")
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let result = TurnResult {
            session,
            turn,
            outcome,
            error,
            state: writer.meta().state,
            last_seq: writer.last_seq(),
        };
        writer.close()?;
        Ok(result)
    }
}

/// Stops and joins the flush timer when dropped, also on error paths.
struct FlushTimer {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl FlushTimer {
    /// Flushes events that have waited long enough while the provider is
    /// quiet (a long command, a sleep, a person deciding).
    fn start(writer: &Arc<Mutex<SessionWriter>>) -> FlushTimer {
        let writer = Arc::clone(writer);
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(TIMER_TICK);
                    let mut writer = writer
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    if let Err(error) = writer.flush_if_due() {
                        tracing::warn!(%error, "timed flush failed; the spool still holds the events");
                    }
                }
            })
        };
        FlushTimer {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for FlushTimer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

impl TurnSink for Runner<'_> {
    fn emit(&mut self, kind: EventKind) -> Result<u64, provider::Error> {
        self.record(kind)
            .map_err(|error| provider::Error::Sink(Box::new(error)))
    }

    fn approve(&mut self, prompt: &str) -> Result<ApprovalDecision, provider::Error> {
        self.ask(prompt)
            .map_err(|error| provider::Error::Sink(Box::new(error)))
    }
}

impl Runner<'_> {
    /// Records the request, waits in `awaiting_approval` for the approver,
    /// records the answer, and goes back to `running`.
    fn ask(&mut self, prompt: &str) -> Result<ApprovalDecision> {
        let seq = self.writer().last_seq() + 1;
        let approval_id = format!("apr_{seq}");
        self.record(EventKind::ApprovalRequested {
            approval_id: approval_id.clone(),
            prompt: prompt.to_string(),
        })?;
        self.transition(SessionState::AwaitingApproval, None)?;
        let (decision, by) = self.approver.decide(&self.session, prompt);
        self.record_caused(
            EventKind::ApprovalResolved {
                approval_id,
                decision,
                by,
            },
            Some(format!("seq:{seq}")),
        )?;
        self.transition(SessionState::Running, None)?;
        Ok(decision)
    }
}
