//! Following a session: history from the index in pages, then live events
//! as they are committed, with no gap and no duplicate; served as SSE.

use std::sync::Arc;

use axum::response::sse::Event as SseEvent;
use futures_util::StreamExt;
use futures_util::stream::{self, Stream};
use tokio::sync::broadcast;

use super::Result;
use crate::protocol::{Event, SessionId};

use super::state::{CoreState, lock};

impl CoreState {
    /// A session's events after `after`: history from the index, then live
    /// ones as they are committed, in seq order with no gap and no
    /// duplicate (a lagging reader refills from the index).
    pub fn follow(self: &Arc<Self>, session: SessionId, after: u64) -> impl Stream<Item = Event> + use<> {
        // Subscribe before reading history, so nothing falls between the two.
        let receiver = self.events.subscribe();
        let mut follow = Follow {
            state: self.clone(),
            session,
            receiver,
            last: after,
            backlog: Default::default(),
            caught_up: false,
        };
        follow.refill();
        stream::unfold(follow, |mut follow| async move {
            loop {
                if let Some(event) = follow.backlog.pop_front() {
                    if event.seq <= follow.last {
                        continue;
                    }
                    follow.last = event.seq;
                    return Some((event, follow));
                }
                if !follow.caught_up {
                    follow.refill();
                    continue;
                }
                match follow.receiver.recv().await {
                    Ok(item) => {
                        let (session, event) = item.as_ref();
                        if *session != follow.session || event.seq <= follow.last {
                            continue;
                        }
                        if event.seq == follow.last + 1 {
                            follow.backlog.push_back(event.clone());
                        } else {
                            follow.refill();
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => follow.refill(),
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
    }
}

/// The largest page of events one request answers.
pub(crate) const EVENTS_PAGE_MAX: usize = 5000;

/// History is read for a stream in pages this size, so a follower of a long
/// session holds neither the whole history in memory nor the index lock.
pub(super) const FOLLOW_PAGE: usize = 256;

pub(super) struct Follow {
    state: Arc<CoreState>,
    session: SessionId,
    receiver: broadcast::Receiver<Arc<(SessionId, Event)>>,
    last: u64,
    backlog: std::collections::VecDeque<Event>,
    /// The last page of history read was not full: live events follow.
    caught_up: bool,
}

impl Follow {
    /// Reads what the index has after `last`; used at the start, after a
    /// lagging receiver, and when a live event skips ahead.
    /// Reads the next page of history after the last event given (or
    /// queued), unless history is known to be caught up with.
    fn refill(&mut self) {
        match lock(&self.state.index).events_page(&self.session, self.last, FOLLOW_PAGE) {
            Ok(events) => {
                self.caught_up = events.len() < FOLLOW_PAGE;
                self.backlog.extend(events);
            }
            Err(error) => tracing::error!(%error, "cannot read events for a stream"),
        }
    }
}

pub(super) fn event_stream(
    state: Arc<CoreState>,
    session: SessionId,
    after: u64,
) -> impl Stream<Item = Result<SseEvent, std::convert::Infallible>> {
    state.follow(session, after).map(|event| {
        Ok(SseEvent::default()
            .id(event.seq.to_string())
            .event(event.kind.name())
            .json_data(&event)
            .expect("holds because events serialize to JSON"))
    })
}
