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
//! The cork is per thread and lasts one poll: a poll never moves between
//! threads, and a handler that waits (a timer, a database) ends the poll,
//! so what it published is not held while it waits. Connection tasks are
//! corked (see `http::upgrade`); [`corked`](crate::corked) corks any
//! other task.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::api::connection::{self, Connection};

/// A list this long is dropped after use rather than kept for the next
/// poll: the memory of a thread's cork stays bounded.
const KEPT_CAPACITY: usize = 1 << 16;

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
        if held.capacity() <= KEPT_CAPACITY {
            CORK.with(|cork| cork.borrow_mut().held = held);
        }
    }
}

pin_project_lite::pin_project! {
    /// A future whose every poll holds the cork: see [`corked`](crate::corked).
    #[must_use = "futures do nothing unless polled"]
    pub struct Corked<F> {
        #[pin]
        inner: F,
        always: bool,
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
        let this = self.project();
        let _cork = enter(*this.always);
        this.inner.poll(cx)
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
    Corked {
        inner: future,
        always: true,
    }
}

/// A connection's task, corked: its poll's first publish is written
/// through unless more events wait behind it (see [`more_to_come`]).
pub(crate) fn connection_task<F: Future>(task: F) -> Corked<F> {
    Corked {
        inner: task,
        always: false,
    }
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
