//! The node's outbox: events not yet acknowledged by Core, per session, sent
//! in bounded batches and kept until Core has committed them (a new link
//! sends again everything after what Core says it has).

use std::collections::BTreeMap;

use crate::protocol::{Event, SessionId, SessionSummary};

/// Events per frame when catching Core up.
const BATCH: usize = 256;
/// A batch stops growing past about this many bytes, well under the frame
/// size Core accepts.
const BATCH_BYTES: usize = 2 * 1024 * 1024;

/// Events not yet acknowledged by Core, per session.
#[derive(Default)]
pub(super) struct Outbox {
    pub(super) sessions: BTreeMap<SessionId, Pending>,
}

pub(super) struct Pending {
    pub(super) summary: SessionSummary,
    pub(super) events: BTreeMap<u64, Event>,
    /// The last seq sent on the current link.
    pub(super) sent_upto: u64,
    /// The last seq Core has committed.
    pub(super) acked: u64,
}

impl Outbox {
    pub(super) fn push(&mut self, summary: SessionSummary, event: Event) {
        // A session new to the outbox goes on from this event: what came
        // before was acknowledged, or is loaded from the store when Core asks.
        let pending = self.sessions.entry(summary.id.clone()).or_insert_with(|| Pending {
            summary: summary.clone(),
            events: BTreeMap::new(),
            sent_upto: event.seq - 1,
            acked: event.seq - 1,
        });
        pending.summary = summary;
        if event.seq > pending.acked {
            pending.events.insert(event.seq, event);
        }
    }

    pub(super) fn ack(&mut self, session: &SessionId, seq: u64) {
        if let Some(pending) = self.sessions.get_mut(session) {
            pending.acked = pending.acked.max(seq);
            // The entry stays, empty: its watermarks say where the next
            // event of the session goes on from.
            pending.events.retain(|event_seq, _| *event_seq > seq);
        }
    }

    /// A new link: Core has `acked`; everything after it goes again.
    pub(super) fn restart(&mut self, acked: &BTreeMap<SessionId, u64>) {
        for (id, pending) in &mut self.sessions {
            pending.acked = acked.get(id).copied().unwrap_or(0);
            pending.sent_upto = pending.acked;
            let floor = pending.acked;
            pending.events.retain(|seq, _| *seq > floor);
        }
    }

    /// Whether the outbox can send `session` on from `after` without the store.
    pub(super) fn has_from(&self, session: &SessionId, after: u64) -> bool {
        self.sessions.get(session).is_some_and(|pending| pending.events.contains_key(&(after + 1)))
    }

    /// The next contiguous runs of unsent events, at most `BATCH` each.
    pub(super) fn take_batches(&mut self) -> Vec<(SessionSummary, Vec<Event>)> {
        let mut batches = Vec::new();
        for pending in self.sessions.values_mut() {
            let mut run = Vec::new();
            let mut bytes = 0;
            let mut next = pending.sent_upto + 1;
            while let Some(event) = pending.events.get(&next) {
                run.push(event.clone());
                bytes += 256 + event.kind.search_text().map_or(0, str::len);
                next += 1;
                if run.len() == BATCH || bytes >= BATCH_BYTES {
                    bytes = 0;
                    pending.sent_upto = next - 1;
                    batches.push((pending.summary.clone(), std::mem::take(&mut run)));
                }
            }
            if !run.is_empty() {
                pending.sent_upto = next - 1;
                batches.push((pending.summary.clone(), run));
            }
        }
        batches
    }
}
