//! The handle handlers use to talk to one client.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::task::AtomicWaker;

use crate::message::{Message, Utf8Bytes};
use crate::proto::{CloseCode, MAX_CONTROL_PAYLOAD, SendError};

/// One client's connection: send messages, close it, see who it is.
///
/// Cheap to clone (a reference count), `Send + Sync`: keep clones in other
/// tasks to push messages to the client at any time. Sends never block:
/// they queue the message and return. Sends made while a handler runs are
/// written together, in one write, when the handler returns; sends from
/// other tasks wake the connection's task.
///
/// **Backpressure.** At most [`Config::max_send_queue`](crate::Config::max_send_queue)
/// bytes may wait unwritten. A send beyond that returns
/// [`SendError::QueueFull`] and queues nothing: the message is the caller's
/// to drop, retry or answer by closing the connection. After the
/// connection starts closing, sends return [`SendError::Closed`].
#[derive(Clone)]
pub struct Connection {
    shared: Arc<Shared>,
}

struct Shared {
    id: u64,
    remote_addr: Option<SocketAddr>,
    subprotocol: Option<Box<str>>,
    max_send_queue: usize,
    queue: Mutex<SendQueue>,
    /// The task is running handlers and drains the queue before it next
    /// waits, so senders need not wake it. Set without the lock (a sender
    /// that misses it wakes the task for nothing); cleared under the lock,
    /// together with the check that nothing is queued.
    in_handler: AtomicBool,
    /// Why the task was woken: [`SENDS`] and/or [`SHUTDOWN`].
    signals: AtomicU8,
    /// The task's waker: one atomic slot, where a `Notify` would take a
    /// lock on every wait.
    waker: AtomicWaker,
}

/// A signal bit: commands were queued while the task waited.
pub(crate) const SENDS: u8 = 1;
/// A signal bit: the server is shutting down.
pub(crate) const SHUTDOWN: u8 = 2;

/// Frames waiting for the connection's task to encode them.
#[derive(Default)]
pub(crate) struct SendQueue {
    pub(crate) commands: VecDeque<Command>,
    /// Payload bytes in `commands`.
    queued: usize,
    /// Bytes the task has encoded but not yet written.
    unwritten: usize,
    /// A close was requested or happened: refuse further sends.
    closed: bool,
}

/// Something a handle asked the connection's task to send.
#[derive(Debug)]
pub(crate) enum Command {
    Message(Message),
    Ping(Bytes),
    Pong(Bytes),
    Close(CloseCode, String),
}

impl Connection {
    pub(crate) fn new(
        id: u64,
        remote_addr: Option<SocketAddr>,
        subprotocol: Option<&str>,
        max_send_queue: usize,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                id,
                remote_addr,
                subprotocol: subprotocol.map(Into::into),
                max_send_queue,
                queue: Mutex::new(SendQueue::default()),
                // The task starts busy (running `open`); it drains the
                // queue before it first waits.
                in_handler: AtomicBool::new(true),
                signals: AtomicU8::new(0),
                waker: AtomicWaker::new(),
            }),
        }
    }

    /// A number unique among the connections of one
    /// [`WebSockets`](crate::WebSockets), in the order they were accepted.
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// The client's address, when the server was started with
    /// `into_make_service_with_connect_info::<SocketAddr>()`.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.shared.remote_addr
    }

    /// The subprotocol agreed in the handshake (see
    /// [`Config::protocols`](crate::Config::protocols)), if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.shared.subprotocol.as_deref()
    }

    /// Sends a text message.
    pub fn send_text(&self, text: impl Into<Utf8Bytes>) -> Result<(), SendError> {
        self.send(Message::Text(text.into()))
    }

    /// Sends a binary message.
    pub fn send_binary(&self, bytes: impl Into<Bytes>) -> Result<(), SendError> {
        self.send(Message::Binary(bytes.into()))
    }

    /// Sends `value` as a JSON text message.
    ///
    /// Fails with [`SendError::Json`] if `value` cannot be serialized (a map
    /// with non-string keys, a failing `Serialize` impl).
    pub fn send_json<T: serde::Serialize + ?Sized>(&self, value: &T) -> Result<(), SendError> {
        let text = serde_json::to_string(value).map_err(|e| SendError::Json(e.to_string()))?;
        self.send_text(text)
    }

    /// Sends a message, text or binary.
    pub fn send(&self, message: Message) -> Result<(), SendError> {
        let len = message.len();
        self.push(len, Command::Message(message))
    }

    /// Sends a ping (payload at most 125 bytes).
    pub fn send_ping(&self, payload: impl Into<Bytes>) -> Result<(), SendError> {
        let payload = control_payload(payload.into())?;
        self.push(payload.len(), Command::Ping(payload))
    }

    /// Sends an unsolicited pong (payload at most 125 bytes). Pings from
    /// the client are answered automatically.
    pub fn send_pong(&self, payload: impl Into<Bytes>) -> Result<(), SendError> {
        let payload = control_payload(payload.into())?;
        self.push(payload.len(), Command::Pong(payload))
    }

    /// Starts the close handshake with `code` and `reason` (cut to 123
    /// bytes). The route's `close` event follows once the client answers,
    /// or after the close timeout. Codes that may not be sent (1005, 1006,
    /// 1015) send a close frame without a code.
    pub fn close(&self, code: CloseCode, reason: &str) -> Result<(), SendError> {
        let mut queue = self.lock();
        if queue.closed {
            return Err(SendError::Closed);
        }
        queue.closed = true;
        queue
            .commands
            .push_back(Command::Close(code, reason.to_owned()));
        self.wake_unless_in_handler(&queue);
        Ok(())
    }

    /// Whether sends are still accepted.
    pub fn is_open(&self) -> bool {
        !self.lock().closed
    }

    fn push(&self, len: usize, command: Command) -> Result<(), SendError> {
        let mut queue = self.lock();
        if queue.closed {
            return Err(SendError::Closed);
        }
        let limit = self.shared.max_send_queue;
        if queue.queued + queue.unwritten + len > limit {
            return Err(SendError::QueueFull { limit });
        }
        queue.queued += len;
        queue.commands.push_back(command);
        self.wake_unless_in_handler(&queue);
        Ok(())
    }

    /// Called with the queue locked, so the task cannot go idle between
    /// the push and this check.
    fn wake_unless_in_handler(&self, _queue: &SendQueue) {
        if !self.shared.in_handler.load(Ordering::Acquire) {
            self.signal(SENDS);
        }
    }

    fn signal(&self, bit: u8) {
        self.shared.signals.fetch_or(bit, Ordering::Release);
        self.shared.waker.wake();
    }

    fn lock(&self) -> MutexGuard<'_, SendQueue> {
        // A panic while holding this lock leaves the queue consistent (every
        // update is a single push or field store), so poisoning is ignored.
        self.shared
            .queue
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    // ---- for the connection's task ----------------------------------------

    /// Ready with the signal bits ([`SENDS`], [`SHUTDOWN`]) raised since
    /// the last call, which clears them.
    pub(crate) fn poll_signals(&self, cx: &mut Context<'_>) -> Poll<u8> {
        let signals = &self.shared.signals;
        if signals.load(Ordering::Relaxed) == 0 {
            self.shared.waker.register(cx.waker());
        }
        // Checked after registering: a signal raised in between still
        // finds the waker.
        match signals.swap(0, Ordering::AcqRel) {
            0 => Poll::Pending,
            bits => Poll::Ready(bits),
        }
    }

    /// Tells the task the server is shutting down.
    pub(crate) fn signal_shutdown(&self) {
        self.signal(SHUTDOWN);
    }

    /// Marks the start of a handler run: sends need not wake the task
    /// until it next goes idle (see [`drain`](Self::drain)).
    pub(crate) fn enter_handlers(&self) {
        self.shared.in_handler.store(true, Ordering::Relaxed);
    }

    /// Runs `f` on the queued commands under the lock; `f` returns how many
    /// bytes wait unwritten, whether the connection still takes sends, and
    /// whether the task goes idle (from then on, sends wake it).
    pub(crate) fn drain(&self, f: impl FnOnce(&mut VecDeque<Command>) -> (usize, bool, bool)) {
        let mut queue = self.lock();
        let (unwritten, open, idle) = f(&mut queue.commands);
        queue.queued = 0;
        queue.unwritten = unwritten;
        queue.closed |= !open;
        self.shared.in_handler.store(!idle, Ordering::Release);
    }

    /// Refuses all further sends.
    pub(crate) fn mark_closed(&self) {
        self.lock().closed = true;
    }
}

fn control_payload(payload: Bytes) -> Result<Bytes, SendError> {
    if payload.len() > MAX_CONTROL_PAYLOAD as usize {
        Err(SendError::ControlPayloadTooLong(payload.len()))
    } else {
        Ok(payload)
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.shared.id)
            .field("remote_addr", &self.shared.remote_addr)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_queue_until_the_bound_then_refuse() {
        let conn = Connection::new(1, None, None, 10);
        conn.send_binary(vec![0u8; 6]).unwrap();
        assert_eq!(
            conn.send_text("12345"),
            Err(SendError::QueueFull { limit: 10 })
        );
        conn.send_text("1234").unwrap();
        conn.drain(|commands| {
            assert_eq!(commands.len(), 2);
            commands.clear();
            (8, true, false)
        });
        // 8 bytes still unwritten: only 2 more fit.
        assert!(conn.send_text("123").is_err());
        conn.drain(|commands| {
            commands.clear();
            (0, true, false)
        });
        conn.send_text("123").unwrap();
    }

    #[test]
    fn sends_after_close_are_errors() {
        let conn = Connection::new(1, None, None, 1 << 20);
        conn.close(CloseCode::NORMAL, "bye").unwrap();
        assert_eq!(conn.send_text("x"), Err(SendError::Closed));
        assert_eq!(conn.close(CloseCode::NORMAL, ""), Err(SendError::Closed));
        assert!(!conn.is_open());
    }

    #[test]
    fn oversized_control_payloads_are_refused() {
        let conn = Connection::new(1, None, None, 1 << 20);
        assert_eq!(
            conn.send_ping(vec![0u8; 126]),
            Err(SendError::ControlPayloadTooLong(126))
        );
        conn.send_pong(vec![0u8; 125]).unwrap();
    }

    #[test]
    fn connection_is_send_sync_and_cheap_to_clone() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<Connection>();
        assert_eq!(
            std::mem::size_of::<Connection>(),
            std::mem::size_of::<usize>()
        );
    }
}
