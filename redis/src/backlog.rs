//! What other nodes published, between the Redis client's reader and the
//! task that delivers it.
//!
//! The client reads the subscribed connection as fast as Redis writes, so
//! whatever this node has not delivered yet waits here, not in Redis
//! (whose `client-output-buffer-limit` never sees a slow reader). It is
//! bounded in bytes: a node that falls that far behind drops what does
//! not fit, counts it ([`Stats::lagged`](crate::Stats::lagged)) and says
//! so in the log, rather than growing until the process dies.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use redis::aio::{AsyncPushSender, SendError};
use redis::{PushInfo, PushKind, Value};
use tokio::sync::Notify;

use crate::{Shared, wire};

/// What a message costs here beyond its channel and payload: two
/// allocations and this queue's slot.
const OVERHEAD: usize = 96;

/// A message from another node, as Redis sent it.
pub(crate) struct Received {
    pub(crate) channel: Vec<u8>,
    pub(crate) payload: Bytes,
}

pub(crate) struct Backlog {
    state: Mutex<State>,
    ready: Notify,
    limit: usize,
}

#[derive(Default)]
struct State {
    messages: VecDeque<(Received, usize)>,
    bytes: usize,
    /// The connection whose pushes count; a late word from an older one
    /// must not end the current one.
    session: u64,
    /// The current connection is gone: once what it brought is delivered,
    /// the session ends.
    lost: bool,
    /// Dropping since the last message that fitted (to log once per spell).
    lagging: bool,
}

/// What [`Backlog::take`] hands the delivering task.
pub(crate) struct Batch {
    pub(crate) messages: Vec<Received>,
    /// The connection is gone and nothing of it is left to deliver.
    pub(crate) lost: bool,
}

impl Backlog {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            state: Mutex::default(),
            ready: Notify::new(),
            limit,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every critical section is a push or a pop.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a connection's session: the sender to give its client.
    /// What the last one left is kept, to be delivered first.
    pub(crate) fn session(shared: &Arc<Shared>) -> Pusher {
        let mut state = shared.backlog.state();
        state.session += 1;
        state.lost = false;
        Pusher {
            shared: Arc::clone(shared),
            session: state.session,
        }
    }

    /// Waits until there is something to take.
    pub(crate) async fn ready(&self) {
        loop {
            {
                let state = self.state();
                if !state.messages.is_empty() || state.lost {
                    return;
                }
            }
            // `notify_one` keeps a permit when no one waits, so a push
            // between the look above and this wait is not missed.
            self.ready.notified().await;
        }
    }

    /// Up to `most` of the oldest messages.
    pub(crate) fn take(&self, most: usize) -> Batch {
        let mut state = self.state();
        let n = most.min(state.messages.len());
        let mut messages = Vec::with_capacity(n);
        let mut freed = 0;
        for (msg, cost) in state.messages.drain(..n) {
            freed += cost;
            messages.push(msg);
        }
        state.bytes -= freed;
        Batch {
            messages,
            lost: state.lost && state.messages.is_empty(),
        }
    }
}

/// The push sender of one subscribed connection.
pub(crate) struct Pusher {
    shared: Arc<Shared>,
    session: u64,
}

impl AsyncPushSender for Pusher {
    fn send(&self, info: PushInfo) -> Result<(), SendError> {
        let backlog = &self.shared.backlog;
        match info.kind {
            PushKind::Message => {}
            PushKind::Disconnection => {
                let mut state = backlog.state();
                if state.session == self.session {
                    state.lost = true;
                    drop(state);
                    backlog.ready.notify_one();
                }
                return Ok(());
            }
            // Confirmations: their commands have them as answers.
            _ => return Ok(()),
        }
        let mut data = info.data.into_iter();
        let (Some(Value::BulkString(channel)), Some(Value::BulkString(payload))) =
            (data.next(), data.next())
        else {
            self.shared.counters.refused.fetch_add(1, Relaxed);
            return Ok(());
        };
        // Its subscribers here had it directly: neither held nor counted.
        if wire::sender(&payload) == Some(self.shared.node) {
            return Ok(());
        }
        let cost = channel.len() + payload.len() + OVERHEAD;
        let msg = Received {
            channel,
            payload: payload.into(),
        };
        let mut state = backlog.state();
        if state.bytes + cost > backlog.limit {
            let first = !std::mem::replace(&mut state.lagging, true);
            drop(state);
            self.shared.counters.lagged.fetch_add(1, Relaxed);
            if first {
                tracing::warn!(
                    limit = backlog.limit,
                    "wsroute-redis: too far behind delivering other nodes' messages; \
                     dropping them until it catches up"
                );
            }
            return Ok(());
        }
        state.lagging = false;
        state.bytes += cost;
        state.messages.push_back((msg, cost));
        drop(state);
        backlog.ready.notify_one();
        Ok(())
    }
}
