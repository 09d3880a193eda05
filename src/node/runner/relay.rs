//! The turn's one recorder. The provider plays on a thread of its own and
//! its sink calls come to the runner as messages, in order, beside the
//! calls of the session's MCP gateway: a tool call recorded, or a person
//! asked, in the middle of a turn goes through the same runner as the
//! agent's own events (one seq order, one approval path, one state).

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use super::Runner;
use crate::protocol::{ApprovalDecision, EventKind, SessionId};
use crate::provider::{self, Provider, TurnEnd, TurnRequest, TurnSink};

type Reply<T> = Sender<Result<T, provider::Error>>;

/// One call into the running turn.
pub enum Call {
    Emit(EventKind, Reply<u64>),
    Approve(String, Reply<ApprovalDecision>),
    Raw(String, Reply<()>),
    Usage(provider::Usage, Reply<()>),
    /// Asks a person; answers the decision and who made it.
    Ask(String, Reply<(ApprovalDecision, String)>),
    /// The provider's turn has ended.
    Done,
}

/// The turns running on this node, by session: where a gateway sends its
/// calls. A session with no turn running has no entry.
#[derive(Clone, Default)]
pub struct Turns(Arc<Mutex<HashMap<SessionId, Sender<Call>>>>);

impl Turns {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Sender<Call>>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records `kind` in `session`'s running turn; `None` when no turn runs.
    pub fn record(&self, session: &SessionId, kind: EventKind) -> Option<Result<u64, provider::Error>> {
        let inbox = self.lock().get(session).cloned()?;
        ask(&inbox, |reply| Call::Emit(kind, reply))
    }

    /// Asks a person through `session`'s running turn, which waits in
    /// `awaiting_approval` meanwhile; `None` when no turn runs.
    pub fn approve(
        &self,
        session: &SessionId,
        prompt: String,
    ) -> Option<Result<(ApprovalDecision, String), provider::Error>> {
        let inbox = self.lock().get(session).cloned()?;
        ask(&inbox, |reply| Call::Ask(prompt, reply))
    }
}

/// Sends a call and waits for its answer; `None` when the turn is gone.
fn ask<T>(inbox: &Sender<Call>, call: impl FnOnce(Reply<T>) -> Call) -> Option<Result<T, provider::Error>> {
    let (reply, answer) = channel();
    inbox.send(call(reply)).ok()?;
    answer.recv().ok()
}

/// The provider's side: each call is a message to the runner.
struct ChannelSink(Sender<Call>);

impl ChannelSink {
    fn call<T>(&self, call: impl FnOnce(Reply<T>) -> Call) -> Result<T, provider::Error> {
        ask(&self.0, call).unwrap_or_else(|| Err(provider::Error::Agent("the turn's recorder is gone".into())))
    }
}

impl TurnSink for ChannelSink {
    fn emit(&mut self, kind: EventKind) -> Result<u64, provider::Error> {
        self.call(|reply| Call::Emit(kind, reply))
    }

    fn approve(&mut self, prompt: &str) -> Result<ApprovalDecision, provider::Error> {
        self.call(|reply| Call::Approve(prompt.to_string(), reply))
    }

    fn raw(&mut self, line: &str) -> Result<(), provider::Error> {
        self.call(|reply| Call::Raw(line.to_string(), reply))
    }

    fn usage(&mut self, usage: provider::Usage) -> Result<(), provider::Error> {
        self.call(|reply| Call::Usage(usage, reply))
    }
}

impl Runner<'_> {
    /// Plays the provider's turn on its own thread while this one records
    /// every call, the provider's and the gateway's, until the turn ends.
    pub(super) fn play(
        &mut self,
        provider: &mut dyn Provider,
        request: TurnRequest<'_>,
        turns: &Turns,
    ) -> Result<TurnEnd, provider::Error> {
        let (inbox, calls) = channel();
        turns.lock().insert(self.session.clone(), inbox.clone());
        let ended = std::thread::scope(|scope| {
            let player = scope.spawn(move || {
                let mut sink = ChannelSink(inbox);
                let ended = provider.run_turn(request, &mut sink);
                let _ = sink.0.send(Call::Done);
                ended
            });
            self.serve(&calls);
            player.join()
        });
        turns.lock().remove(&self.session);
        // Calls that came after the end are answered, never left waiting.
        while let Ok(call) = calls.try_recv() {
            self.answer(call);
        }
        ended.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    fn serve(&mut self, calls: &Receiver<Call>) {
        while let Ok(call) = calls.recv() {
            if matches!(call, Call::Done) {
                return;
            }
            self.answer(call);
        }
    }

    fn answer(&mut self, call: Call) {
        // A reply nobody waits for any more is dropped.
        match call {
            Call::Emit(kind, reply) => drop(reply.send(TurnSink::emit(self, kind))),
            Call::Approve(prompt, reply) => drop(reply.send(TurnSink::approve(self, &prompt))),
            Call::Raw(line, reply) => drop(reply.send(TurnSink::raw(self, &line))),
            Call::Usage(usage, reply) => drop(reply.send(TurnSink::usage(self, usage))),
            Call::Ask(prompt, reply) => {
                let answer = self.ask_who(&prompt).map_err(|error| provider::Error::Sink(Box::new(error)));
                drop(reply.send(answer));
            }
            Call::Done => {}
        }
    }
}
