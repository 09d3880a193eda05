//! Group commit: event batches from every node link queue here, and one
//! task commits all that are waiting in one SQLite transaction, then
//! acknowledges each to its node and broadcasts the new events to
//! followers. Under load many frames share one commit; alone, a frame is
//! committed at once. Order is kept: one queue, drained in arrival order.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::state::{CoreState, lock};
use crate::protocol::{CoreFrame, Event, PROTOCOL_VERSION, SessionSummary};

/// Frames committed together at most (and their events, roughly).
const MAX_GROUP_FRAMES: usize = 256;
const MAX_GROUP_EVENTS: usize = 16_384;
/// Frames that may wait; a link that finds the queue full waits too.
const QUEUE: usize = 4096;

/// One node frame of events, and where its answer goes.
pub(crate) struct Job {
    pub session: SessionSummary,
    pub events: Vec<Event>,
    pub reply: mpsc::Sender<CoreFrame>,
}

pub(crate) type Queue = mpsc::Sender<Job>;

/// Starts the committer; its queue is what links send to.
pub(crate) fn start(state: &Arc<CoreState>) -> Queue {
    let (queue, jobs) = mpsc::channel(QUEUE);
    let state = Arc::downgrade(state);
    std::thread::Builder::new()
        .name("cortex-ingest".into())
        .spawn(move || commit_loop(state, jobs))
        .expect("holds because a thread can be started at startup");
    queue
}

/// Runs on its own thread: SQLite work is blocking, and a commit's fsync
/// must not hold up the async workers.
fn commit_loop(state: std::sync::Weak<CoreState>, mut jobs: mpsc::Receiver<Job>) {
    while let Some(first) = jobs.blocking_recv() {
        let mut group = vec![first];
        let mut events = group[0].events.len();
        while group.len() < MAX_GROUP_FRAMES && events < MAX_GROUP_EVENTS {
            match jobs.try_recv() {
                Ok(job) => {
                    events += job.events.len();
                    group.push(job);
                }
                Err(_) => break,
            }
        }
        let Some(state) = state.upgrade() else { return };
        commit(&state, group);
    }
}

fn commit(state: &CoreState, mut group: Vec<Job>) {
    let batches: Vec<(&SessionSummary, Vec<Event>)> =
        group.iter_mut().map(|job| (&job.session, std::mem::take(&mut job.events))).collect();
    let committed = lock(&state.index).ingest_batches(batches);
    match committed {
        Ok(answers) => {
            for (job, ingested) in group.iter().zip(answers) {
                for event in ingested.fresh {
                    let _ = state.events.send(Arc::new((job.session.id.clone(), event)));
                }
                let ack = CoreFrame::Ack { v: PROTOCOL_VERSION, session: job.session.id.clone(), seq: ingested.acked };
                reply(job, ack);
                if let Some(after) = ingested.missing_after {
                    reply(job, CoreFrame::Resend { v: PROTOCOL_VERSION, session: job.session.id.clone(), after });
                }
            }
        }
        Err(error) => {
            tracing::error!(%error, frames = group.len(), "cannot commit nodes' events");
            for job in group {
                let message = format!("events not committed: {error}");
                reply(&job, CoreFrame::Error { v: PROTOCOL_VERSION, code: "internal".into(), message });
            }
        }
    }
}

/// Answers a frame's link without ever waiting on it: a link that does not
/// read must not hold up every other node's commits. A dropped ack is made
/// good by the session's next one (acks are cumulative) or by the next
/// link's welcome.
fn reply(job: &Job, frame: CoreFrame) {
    if let Err(mpsc::error::TrySendError::Full(_)) = job.reply.try_send(frame) {
        tracing::warn!(session = %job.session.id, "a node's link is not reading; an answer to it was dropped");
    }
}
