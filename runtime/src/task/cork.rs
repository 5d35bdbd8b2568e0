//! The cork: publishes made while a task is polled are written when that
//! poll ends, one write per subscriber for all of them.
//!
//! A connection's task handles every frame one read brought before it
//! waits again, so a client's burst of messages, each published to a
//! topic, is many publishes within one poll. Written through one by one,
//! each would cost every idle subscriber a `send`; queued for the
//! subscribers' tasks, each subscriber a wake-up and a poll. Corked, each
//! publish queues its frame on an idle subscriber without waking it, and
//! when the poll ends the publishing task writes each such subscriber's
//! frames in one write (`Connection::flush_corked`). The frames
//! are in the subscriber's queue from the publish on, so whatever else is
//! sent to it keeps its place, and a subscriber that wakes meanwhile
//! writes them itself.
//!
//! A burst of small frames to one topic is not queued frame by frame: the
//! poll keeps each topic's frames in a [`Log`], and each idle subscriber
//! holds a run of it, so a publish's visit to a subscriber is its lock and
//! one cache line, and the subscribers holding the same run are all
//! written one pack, built once.
//!
//! The cork is per thread and lasts one poll: a poll never moves between
//! threads, and a handler that waits (a timer, a database) ends the poll,
//! so what it published is not held while it waits. Connection tasks are
//! corked (see `http::upgrade`); [`corked`](crate::corked) corks any
//! other task.

use std::cell::RefCell;
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;

use crate::api::connection::{self, Connection};
use crate::proto::COPY_BELOW;

/// A list this long is dropped after use rather than kept for the next
/// poll: the memory of a thread's cork stays bounded.
const KEPT_CAPACITY: usize = 1 << 16;

/// At most this many logs (topics, or compressed variants of one) a poll
/// keeps; publishes to more go to each subscriber frame by frame.
const LOGS_MAX: usize = 64;

/// At most this many bytes of frames a poll's logs hold: the logs keep
/// their frames alive until the poll ends, whatever the subscribers'
/// queues take, so what they hold is bounded on its own.
const LOGGED_MAX: usize = 1 << 20;

#[derive(Default)]
struct Cork {
    /// A poll on this thread holds the cork.
    active: bool,
    /// Cork every publish of the poll (see [`corked`]); else only those
    /// behind another publish, or with more events to handle behind them.
    always: bool,
    /// The task has more events to handle in this poll.
    more: bool,
    /// A publish was made in this poll.
    published: bool,
    /// Subscribers with corked frames, each once.
    held: Vec<Connection>,
    /// The poll's logs, one per topic and frame variant.
    logs: Vec<LogEntry>,
    /// Bytes of frames in `logs`.
    logged: usize,
}

/// The frames one poll published to one topic, in one variant
/// (uncompressed, or compressed with one window and level), in order.
///
/// A subscriber handed a burst of a topic's messages within one poll
/// holds a *run* of its log — the log, where the run starts, and the
/// number of its last frame — rather than a queue entry per frame: each
/// further frame of the burst moves the run's end, a write to the one
/// cache line of the subscriber a publish reads anyway
/// (`Connection::send_frame_corked`), where a queue entry was one more
/// line, and a reference count, per subscriber and message. When the poll
/// ends, all the subscribers holding the same run are written the same
/// bytes, packed once. Anyone else who looks at the queue first turns the
/// run back into frames.
#[derive(Default)]
pub(crate) struct Log {
    /// Each frame with its number (see [`Logged::seq`]). Locked by the
    /// publishing thread to add a frame, and by a subscriber's task that
    /// drains its queue before the poll ends.
    frames: Mutex<Vec<(NonZeroU32, Bytes)>>,
}

impl Log {
    /// Calls `f` on the frames from place `start` through the one
    /// numbered `last`; returns how many.
    pub(crate) fn through(&self, start: u32, last: NonZeroU32, mut f: impl FnMut(&Bytes)) -> usize {
        let frames = self.frames.lock().unwrap_or_else(PoisonError::into_inner);
        let mut count = 0;
        for (seq, frame) in frames.get(start as usize..).unwrap_or_default() {
            f(frame);
            count += 1;
            if *seq == last {
                break;
            }
        }
        count
    }
}

/// Where a published frame went in its poll's [`Log`].
pub(crate) struct Logged {
    pub(crate) log: Arc<Log>,
    /// Its place in the log.
    pub(crate) index: u32,
    /// Its number, unique among the frames that any live run could hold.
    pub(crate) seq: NonZeroU32,
    /// The number of the frame before it in the same log, if any: a run
    /// that ends there goes on with this one.
    pub(crate) prev: Option<NonZeroU32>,
}

struct LogEntry {
    /// Which topic (its address in the registry) and variant.
    key: (usize, u8),
    log: Arc<Log>,
    last: Option<NonZeroU32>,
}

/// Numbers frames across all threads: a run is extended only by the
/// frame numbered right after its last in its own log, so a number must
/// not be reused while a run that holds it lives — a run lives within one
/// poll, and the count would have to go round all 2^32 numbers in it.
static SEQ: AtomicU32 = AtomicU32::new(1);

fn next_seq() -> NonZeroU32 {
    loop {
        if let Some(seq) = NonZeroU32::new(SEQ.fetch_add(1, Ordering::Relaxed)) {
            return seq;
        }
    }
}

/// Adds `frame`, published in this corked poll to the topic at `topic`
/// in variant `variant`, to that topic's log; `None` if it goes frame by
/// frame instead: a large frame (written on its own, uncopied), or when
/// the poll's logs are full.
pub(crate) fn log(topic: usize, variant: u8, frame: &Bytes) -> Option<Logged> {
    if frame.len() >= COPY_BELOW {
        return None;
    }
    CORK.with(|cork| {
        let mut cork = cork.borrow_mut();
        if !cork.active || cork.logged + frame.len() > LOGGED_MAX {
            return None;
        }
        let key = (topic, variant);
        let at = match cork.logs.iter().rposition(|entry| entry.key == key) {
            Some(at) => at,
            None if cork.logs.len() < LOGS_MAX => {
                cork.logs.push(LogEntry {
                    key,
                    log: Arc::default(),
                    last: None,
                });
                cork.logs.len() - 1
            }
            None => return None,
        };
        cork.logged += frame.len();
        let seq = next_seq();
        let entry = &mut cork.logs[at];
        let mut frames = entry
            .log
            .frames
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // At most LOGGED_MAX frames, far below u32::MAX.
        let index = frames.len() as u32;
        frames.push((seq, frame.clone()));
        drop(frames);
        Some(Logged {
            log: Arc::clone(&entry.log),
            index,
            seq,
            prev: entry.last.replace(seq),
        })
    })
}

/// How a publish reaches the subscribers whose tasks are idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// No cork on this thread.
    Uncorked,
    /// Written to each socket at once: the poll's first publish, with no
    /// more events behind it — what a lone message costs least as.
    WriteThrough,
    /// Queued, and written when the poll ends.
    Corked,
}

thread_local! {
    static CORK: RefCell<Cork> = RefCell::default();
}

/// How the publish about to be made on this thread is delivered.
pub(crate) fn publishing() -> Mode {
    CORK.with(|cork| {
        let mut cork = cork.borrow_mut();
        if !cork.active {
            return Mode::Uncorked;
        }
        let first = !std::mem::replace(&mut cork.published, true);
        if first && !cork.always && !cork.more {
            Mode::WriteThrough
        } else {
            Mode::Corked
        }
    })
}

/// Tells the cork whether the task has more events to handle after the
/// one it hands to a handler now: a publish with more behind it is
/// corked, as the handlers of the next ones may publish too.
pub(crate) fn more_to_come(more: bool) {
    CORK.with(|cork| cork.borrow_mut().more = more);
}

/// Writes `conn`'s corked frames when the poll ends. Called once per
/// connection and cork (`SendQueue::corked` says whether it was).
pub(crate) fn hold(conn: &Connection) {
    CORK.with(|cork| {
        let mut cork = cork.borrow_mut();
        debug_assert!(cork.active, "hold without a cork");
        cork.held.push(conn.clone());
    });
}

/// Holds the cork until dropped, then writes what it held; `None` if this
/// thread holds one already (a poll nested in another's).
fn enter(always: bool) -> Option<Guard> {
    CORK.with(|cork| {
        let mut cork = cork.borrow_mut();
        (!cork.active).then(|| {
            cork.active = true;
            cork.always = always;
            Guard
        })
    })
}

struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        // Taken out first: writing drops handles, and nothing here may
        // find the cell borrowed.
        let mut held = CORK.with(|cork| {
            let mut cork = cork.borrow_mut();
            cork.active = false;
            cork.more = false;
            cork.published = false;
            std::mem::take(&mut cork.held)
        });
        for conn in &held {
            conn.flush_corked();
        }
        connection::forget_pack();
        held.clear();
        let mut logs = CORK.with(|cork| {
            let mut cork = cork.borrow_mut();
            cork.logged = 0;
            if held.capacity() <= KEPT_CAPACITY {
                cork.held = held;
            }
            std::mem::take(&mut cork.logs)
        });
        // Cleared outside the cell: it drops frames.
        logs.clear();
        CORK.with(|cork| cork.borrow_mut().logs = logs);
    }
}

pin_project_lite::pin_project! {
    /// A future whose every poll holds the cork: see [`corked`](crate::corked).
    #[must_use = "futures do nothing unless polled"]
    pub struct Corked<F> {
        #[pin]
        inner: F,
    }
}

pin_project_lite::pin_project! {
    /// A connection's task, corked: see [`connection_task`]. A type of its
    /// own rather than a flag in [`Corked`]: the task's cell is allocated
    /// in steps of 128 bytes, and a flag's 8 bytes with padding took an
    /// idle connection's into the next step.
    pub(crate) struct ConnectionTask<F> {
        #[pin]
        inner: F,
    }
}

impl<F> std::fmt::Debug for Corked<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Corked").finish_non_exhaustive()
    }
}

impl<F: Future> Future for Corked<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _cork = enter(true);
        self.project().inner.poll(cx)
    }
}

impl<F: Future> Future for ConnectionTask<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _cork = enter(false);
        self.project().inner.poll(cx)
    }
}

/// Runs `future` corked: the messages it publishes within one poll —
/// between two waits — go to each subscriber in one write when that poll
/// ends, instead of one write each. Connection tasks are corked already;
/// this is for other tasks that publish in bursts, such as a broker's
/// receiving loop or a feed that publishes a batch at a time.
///
/// ```no_run
/// # async fn feed(sockets: wsroute::WebSockets, batches: Vec<Vec<String>>) {
/// wsroute::corked(async move {
///     for batch in batches {
///         for row in batch {
///             sockets.publish("prices", row);
///         }
///         // The batch leaves here, one write per subscriber.
///         tokio::time::sleep(std::time::Duration::from_millis(100)).await;
///     }
/// })
/// .await;
/// # }
/// ```
pub fn corked<F: Future>(future: F) -> Corked<F> {
    Corked { inner: future }
}

/// A connection's task, corked: its poll's first publish is written
/// through unless more events wait behind it (see [`more_to_come`]).
pub(crate) fn connection_task<F: Future>(task: F) -> ConnectionTask<F> {
    ConnectionTask { inner: task }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cork_lasts_one_poll_and_does_not_nest() {
        assert_eq!(publishing(), Mode::Uncorked);
        let outer = enter(true);
        assert!(outer.is_some());
        assert!(
            enter(false).is_none(),
            "a nested poll leaves the cork to its owner"
        );
        assert_eq!(publishing(), Mode::Corked);
        drop(outer);
        assert_eq!(publishing(), Mode::Uncorked);
    }

    #[test]
    fn frames_logged_on_two_threads_never_share_a_number() {
        // A run is extended by the frame whose `prev` is the run's last
        // number, so two threads' frames must never be numbered alike.
        let logged = || {
            let _cork = enter(true);
            let frame = Bytes::from_static(b"\x81\x01x");
            let (a, b) = (log(1, 0, &frame).unwrap(), log(1, 0, &frame).unwrap());
            assert_eq!((a.index, b.index, b.prev), (0, 1, Some(a.seq)));
            (a.seq, b.seq)
        };
        let there = std::thread::spawn(logged).join().unwrap();
        let here = logged();
        let mut all = [here.0, here.1, there.0, there.1];
        all.sort();
        assert!(all.windows(2).all(|w| w[0] != w[1]), "{all:?}");
    }

    #[test]
    fn a_connection_writes_its_first_publish_through_unless_more_follow() {
        let cork = enter(false);
        assert_eq!(publishing(), Mode::WriteThrough, "a lone message");
        assert_eq!(publishing(), Mode::Corked, "behind another publish");
        drop(cork);
        let cork = enter(false);
        more_to_come(true);
        assert_eq!(publishing(), Mode::Corked, "more events to handle");
        drop(cork);
        let _cork = enter(false);
        assert_eq!(publishing(), Mode::WriteThrough, "each poll starts afresh");
    }
}
