//! The handle handlers use to talk to one client.

use std::cell::RefCell;
use std::collections::{BTreeSet, VecDeque};
use std::ffi::c_int;
use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use socket2::SockRef;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use super::send_error::{SendError, json_message};
use super::topics::{self, Published, Topics};
use crate::api::config::SlowConsumer;
use crate::proto::{COPY_BELOW, CloseCode, DeflateConfig, DeflateParams, MAX_CONTROL_PAYLOAD};
use crate::proto::{Message, Utf8Bytes};
use crate::task::budget::Budget;
use crate::task::cork::{self, Log, Logged};
use crate::task::direct_socket::DirectSocket;

/// One client's connection: send messages, close it, see who it is.
///
/// Cheap to clone (a reference count), `Send + Sync`: keep clones in other
/// tasks to push messages to the client at any time. Sends never block:
/// they queue the message and return. Sends made while a handler runs are
/// written together, in one write, when the handler returns; sends from
/// other tasks wake the connection's task.
///
/// **Backpressure.** At most [`Config::max_send_queue`](crate::Config::max_send_queue)
/// bytes may wait unwritten (a larger message is still taken when nothing
/// waits). A send beyond that returns [`SendError::QueueFull`] and queues
/// nothing: the message is the caller's to drop, retry or answer by
/// closing the connection — or, with
/// [`SlowConsumer::Close`](crate::SlowConsumer::Close), the connection is
/// closed with 1008. A producer that must not drop waits for room with
/// [`ready`](Self::ready) or [`send_when_ready`](Self::send_when_ready).
/// After the connection starts closing, sends return [`SendError::Closed`].
#[derive(Clone)]
pub struct Connection {
    shared: Arc<Shared>,
}

/// `repr(C)`, on a line of its own: what a publish reads and writes — the
/// limits, the lock, the queue and its counts — are the first 64 bytes,
/// one cache line. At 10,000 subscribers a publish misses every line it
/// touches on each of them; spread over the struct as the compiler laid
/// it out, they were four. A test below keeps them together.
#[repr(C, align(64))]
struct Shared {
    /// One for all the connections of a server: its line stays cached.
    limits: Arc<SendLimits>,
    queue: Mutex<SendQueue>,
    id: u64,
    remote_addr: Option<SocketAddr>,
    subprotocol: Option<Box<str>>,
    /// The server's topics, for subscribe and publish.
    topics: Arc<Topics>,
    /// Producers waiting in [`Connection::ready`] for room in the queue.
    room: Notify,
    /// The task is running handlers and drains the queue before it next
    /// waits, so senders need not wake it. Set without the lock (a sender
    /// that misses it wakes the task for nothing); cleared under the lock,
    /// together with the check that nothing is queued.
    in_handler: AtomicBool,
    /// How published messages reach this connection compressed (0: not
    /// at all); see [`topics::shared_deflate`].
    shared_deflate: u8,
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

/// Frames waiting for the connection's task to encode them. `repr(C)`:
/// the fields a publish uses come first, in [`Shared`]'s first line.
#[derive(Default)]
#[repr(C)]
pub(crate) struct SendQueue {
    pub(crate) commands: VecDeque<Command>,
    /// Bytes waiting: queued in `commands`, or encoded by the task and not
    /// yet written. What the send-queue bound limits, and all of it
    /// charged to the server's budget.
    pending: usize,
    /// A close was requested or happened: refuse further sends.
    closed: bool,
    /// A publish may write its frame to `socket` itself, at once: the task
    /// is idle, with nothing queued or unwritten, and the connection open.
    /// Set by the task's last drain before it waits; cleared by its next
    /// drain, by a direct write the socket did not take whole, and at the
    /// end. While it is set the task writes nothing (it writes only after
    /// a drain, which clears it under this lock), so the two never write
    /// at once, and frames go out whole and in the order they were sent.
    direct: bool,
    /// Publishes queued frames here without waking the task, and a cork
    /// (see [`cork`]) holds this connection to write them when the
    /// publishing task's poll ends.
    corked: bool,
    /// The number of the last frame of the run this connection holds, if
    /// it holds one (see [`cork::Log`]): then `commands` is empty, and
    /// `pending` counts the run's bytes.
    run_last: Option<NonZeroU32>,
    /// A producer waits in `ready`: the task notifies `room` at its next
    /// drain.
    waiting: bool,
    /// A send overflowed the queue under [`SlowConsumer::Close`].
    slow: bool,
    /// The connection's socket, when its task runs on a plain TCP stream
    /// (not TLS, HTTP/2 or a test pipe); dropped when the task ends.
    /// Here, with the run and the counts, on the queue's second line:
    /// what a corked write reads of a subscriber is these two lines.
    socket: Option<DirectSocket>,
    /// The log of the run and the run's first place in it, with `run_last`.
    run: Option<(Arc<Log>, u32)>,
    /// Messages and bytes written directly since the last drain, for the
    /// task's traffic counts.
    direct_out: (u64, u64),
    /// The topics subscribed to, to leave when the connection ends. Kept
    /// under this lock (not the registry's) so that the end of the
    /// connection and a subscribe racing it agree: see
    /// [`Connection::subscribe`]. A set: leaving one of many topics is
    /// done under the registry's write lock, which every publish waits for.
    topics: BTreeSet<Arc<str>>,
}

/// The send-side limits of a connection, from the [`Config`](crate::Config).
#[derive(Debug, Clone)]
pub(crate) struct SendLimits {
    pub(crate) max_send_queue: usize,
    pub(crate) slow_consumer: SlowConsumer,
    pub(crate) budget: Arc<Budget>,
}

impl SendLimits {
    /// A queue bound with its own, unbounded, budget: for tests.
    #[cfg(test)]
    pub(crate) fn queue(max_send_queue: usize) -> Self {
        Self {
            max_send_queue,
            slow_consumer: SlowConsumer::Error,
            budget: Arc::new(Budget::new(usize::MAX)),
        }
    }
}

/// Something a handle asked the connection's task to send.
#[derive(Debug)]
pub(crate) enum Command {
    Message(Message),
    Ping(Bytes),
    Pong(Bytes),
    Close(CloseCode, String),
    /// A whole frame encoded once for many connections (a publish).
    Frame(Bytes),
    /// The end of a frame a publish wrote in part to the socket: written
    /// before all other output, whatever the connection's state.
    Rest(Bytes),
    /// The queue overflowed under [`SlowConsumer::Close`]: close with 1008
    /// and report it.
    SlowConsumer,
}

impl Connection {
    pub(crate) fn new(
        id: u64,
        remote_addr: Option<SocketAddr>,
        subprotocol: Option<&str>,
        limits: impl Into<Arc<SendLimits>>,
        topics: Arc<Topics>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                limits: limits.into(),
                queue: Mutex::new(SendQueue::default()),
                id,
                remote_addr,
                subprotocol: subprotocol.map(Into::into),
                topics,
                shared_deflate: 0,
                room: Notify::new(),
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

    /// The client's address: always under [`wsroute::serve`](crate::serve);
    /// under `axum::serve`, when the router was served with
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
        self.send(json_message(value)?)
    }

    /// Sends a message, text or binary.
    pub fn send(&self, message: Message) -> Result<(), SendError> {
        let len = message.len();
        self.push(len, Command::Message(message))
    }

    /// Subscribes this connection to `topic`: from now on it gets what is
    /// [`publish`](Self::publish)ed there, until it
    /// [`unsubscribe`](Self::unsubscribe)s or ends — a connection leaves
    /// all its topics by itself when it ends. Returns `Ok(false)` if it was
    /// subscribed already, [`SendError::Closed`] once it is closing.
    ///
    /// A topic is any string; it exists while someone subscribes to it.
    ///
    /// ```no_run
    /// use wsroute::{Connection, Message};
    ///
    /// #[derive(Default)]
    /// struct Room;
    ///
    /// #[wsroute::websocket_route("/room")]
    /// impl Room {
    ///     async fn open(&mut self, conn: &Connection) {
    ///         let _ = conn.subscribe("lobby");
    ///     }
    ///     async fn message(&mut self, conn: &Connection, msg: Message) {
    ///         // Everyone in the lobby but the sender.
    ///         conn.publish("lobby", msg);
    ///     }
    /// }
    /// ```
    pub fn subscribe(&self, topic: &str) -> Result<bool, SendError> {
        let mut map = self.shared.topics.write();
        let mut queue = self.lock();
        // Checked under both locks: `mark_closed` sets `closed` before it
        // takes the list of topics to leave, so a subscribe either comes
        // before (and is left) or sees `closed`.
        if queue.closed {
            return Err(SendError::Closed);
        }
        let Some(key) = self.shared.topics.insert(&mut map, topic, self) else {
            return Ok(false);
        };
        queue.topics.insert(key);
        Ok(true)
    }

    /// Leaves `topic`; returns whether this connection was subscribed.
    pub fn unsubscribe(&self, topic: &str) -> bool {
        let mut map = self.shared.topics.write();
        let mut queue = self.lock();
        queue.topics.remove(topic);
        self.shared.topics.remove(&mut map, topic, self.shared.id)
    }

    /// Sends `message` to every subscriber of `topic` but this connection
    /// (subscribed or not): see [`WebSockets::publish`](crate::WebSockets::publish),
    /// which sends to all.
    pub fn publish(&self, topic: &str, message: impl Into<Message>) -> Published {
        self.shared
            .topics
            .publish(topic, &message.into(), Some(self.shared.id))
    }

    /// Publishes `value` as a JSON text message to every subscriber of
    /// `topic` but this connection; fails with [`SendError::Json`] if
    /// `value` cannot be serialized.
    pub fn publish_json<T: serde::Serialize + ?Sized>(
        &self,
        topic: &str,
        value: &T,
    ) -> Result<Published, SendError> {
        Ok(self.publish(topic, json_message(value)?))
    }

    /// Lets publishes send this connection frames compressed once for
    /// every connection with the same parameters (see
    /// [`topics::shared_deflate`]). Before the handle is cloned.
    pub(crate) fn set_deflate(&mut self, params: &DeflateParams, config: &DeflateConfig) {
        let shared = Arc::get_mut(&mut self.shared).expect("set before the handle is shared");
        shared.shared_deflate = topics::shared_deflate(params, config);
    }

    /// See [`set_deflate`](Self::set_deflate).
    pub(crate) fn shared_deflate(&self) -> u8 {
        self.shared.shared_deflate
    }

    /// Sends a frame encoded once for many connections: with
    /// `write_through`, written to the socket right here when the
    /// connection's task is idle (see [`SendQueue::direct`]), else queued
    /// for the task.
    pub(crate) fn send_frame(&self, frame: &Bytes, write_through: bool) -> Result<(), SendError> {
        let mut queue = self.lock();
        if queue.closed {
            return Err(SendError::Closed);
        }
        // Only if the server's budget could hold it: the socket may take
        // just part of it, and the rest then waits, charged, like any
        // queued frame. (A look rather than a charge and a refund: only a
        // publish on another thread, between the two, can take the budget
        // past its limit, by at most its own frame.)
        let budget = &self.shared.limits.budget;
        if write_through
            && queue.direct
            && queue.commands.is_empty()
            && budget.has_room(frame.len())
        {
            let (command, len) = match queue.write_direct(frame) {
                Some(n) if n == frame.len() => return Ok(()),
                // The socket took part of it: the task writes the rest,
                // before anything else.
                Some(n) => (Command::Rest(frame.slice(n..)), frame.len() - n),
                // Full, or broken (which the task finds on its own next
                // read or write): the task takes over.
                None => (Command::Frame(frame.clone()), frame.len()),
            };
            budget.force_charge(len);
            queue.pending += len;
            queue.direct = false;
            queue.commands.push_back(command);
            self.wake_unless_in_handler(&queue);
            return Ok(());
        }
        self.push_locked(queue, frame.len(), Command::Frame(frame.clone()))
    }

    /// Sends a frame encoded once for many connections from a task that
    /// holds a cork (see [`cork`]): when this connection's task is idle,
    /// the frame is queued without waking it, and the cork writes it,
    /// with whatever else publishes queue here before then, in one write
    /// when the publishing task's poll ends. Otherwise queued for the task.
    /// `logged`: where the frame is in its poll's log, if it is; a burst of
    /// logged frames is held as a run of the log, not frame by frame.
    pub(crate) fn send_frame_corked(
        &self,
        frame: &Bytes,
        logged: Option<&Logged>,
    ) -> Result<(), SendError> {
        let mut queue = self.lock_raw();
        if queue.closed {
            return Err(SendError::Closed);
        }
        let len = frame.len();
        // The run goes on, up to one write's worth.
        if let Some(logged) = logged
            && queue.run_last.is_some()
            && queue.run_last == logged.prev
            && queue.pending + len <= WRITE_MAX
            && self.reserve(&mut queue, len)
        {
            queue.run_last = Some(logged.seq);
            return Ok(());
        }
        queue.unrun();
        // Anything else queued was a send that woke the task already.
        if let Some(logged) = logged
            && queue.direct
            && queue.commands.is_empty()
            && self.reserve(&mut queue, len)
        {
            queue.run = Some((Arc::clone(&logged.log), logged.index));
            queue.run_last = Some(logged.seq);
            self.hold_corked(&mut queue);
            return Ok(());
        }
        let frame = Command::Frame(frame.clone());
        if queue.direct && (queue.corked || queue.commands.is_empty()) {
            let Err(frame) = self.try_queue(&mut queue, len, frame) else {
                self.hold_corked(&mut queue);
                return Ok(());
            };
            // Over the bound: refused as any send is, under its policy.
            return self.push_locked(queue, len, frame);
        }
        self.push_locked(queue, len, frame)
    }

    /// Writes what corked publishes queued here (see
    /// [`send_frame_corked`](Self::send_frame_corked)), up to
    /// [`WRITE_MAX`] bytes of them in each write, if the task is still
    /// idle; what the socket does not take, the task writes.
    pub(crate) fn flush_corked(&self) {
        let mut guard = self.lock_raw();
        let queue = &mut *guard;
        if !std::mem::take(&mut queue.corked) || !queue.direct {
            // The task drained (and writes) them, or the connection ended.
            queue.unrun();
            return;
        }
        if queue.run_last.is_some() {
            let (written, whole) = queue.write_run();
            self.wrote(queue, written);
            if !whole {
                self.take_over(queue);
            }
            return;
        }
        while !queue.commands.is_empty() {
            let (written, whole) = queue.write_frames();
            self.wrote(queue, written);
            if !whole {
                // A send that is not a shared frame (which woke the task),
                // a full or broken socket: the task takes over.
                self.take_over(queue);
                return;
            }
        }
    }

    /// Marks the queue corked, and has the cork write it when its poll
    /// ends, once.
    fn hold_corked(&self, queue: &mut SendQueue) {
        if !std::mem::replace(&mut queue.corked, true) {
            cork::hold(self);
        }
    }

    /// Counts `written` bytes of the queue as gone.
    fn wrote(&self, queue: &mut SendQueue, written: usize) {
        queue.pending -= written;
        self.shared.limits.budget.release(written);
    }

    /// Leaves the rest of the queue to the task.
    fn take_over(&self, queue: &mut SendQueue) {
        queue.direct = false;
        self.wake_unless_in_handler(queue);
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

    /// Waits until the send queue is below its bound (`Ok`) or the
    /// connection is closing (`Err(SendError::Closed)`): for producers
    /// that must not drop messages. A message sent right after may still
    /// find the queue full if it is larger than the room left, or another
    /// task filled it first; [`send_when_ready`](Self::send_when_ready)
    /// waits for room for one given message.
    ///
    /// ```no_run
    /// # async fn stream(conn: wsroute::Connection, rows: Vec<String>) -> Result<(), wsroute::SendError> {
    /// for row in rows {
    ///     conn.send_when_ready(wsroute::Message::Text(row.into())).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn ready(&self) -> Result<(), SendError> {
        self.wait_for_room(|_, _| true).await
    }

    /// Queues `message` once there is room for it: unlike
    /// [`send`](Self::send), a full queue makes it wait, never fail, and
    /// never trips [`SlowConsumer::Close`]. Fails with
    /// [`SendError::Closed`] if the connection closes first, and with
    /// [`SendError::QueueFull`] only if the server-wide
    /// [`max_buffered`](crate::Config::max_buffered) budget cannot take it
    /// even though this connection's queue is empty.
    pub async fn send_when_ready(&self, message: Message) -> Result<(), SendError> {
        let mut message = Some(message);
        self.wait_for_room(|conn, queue| {
            let msg = message.take().expect("taken once: the wait ends here");
            let len = msg.len();
            match conn.try_push(queue, len, Command::Message(msg)) {
                Ok(()) => true,
                Err(refused) => {
                    if let Command::Message(msg) = refused {
                        message = Some(msg);
                    }
                    // Refused on an empty queue: only the server's budget
                    // stands in the way, and nothing this queue does will
                    // wake the wait, so give up.
                    queue.pending == 0
                }
            }
        })
        .await?;
        match message {
            None => Ok(()),
            Some(_) => Err(SendError::QueueFull {
                limit: self.shared.limits.max_send_queue,
            }),
        }
    }

    /// Waits until `done` says so, calling it under the queue lock each
    /// time the queue is below its bound.
    async fn wait_for_room(
        &self,
        mut done: impl FnMut(&Self, &mut SendQueue) -> bool,
    ) -> Result<(), SendError> {
        loop {
            let notified = self.shared.room.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before the check, so a drain in between is seen.
            notified.as_mut().enable();
            {
                let mut queue = self.lock();
                if queue.closed {
                    return Err(SendError::Closed);
                }
                if queue.pending < self.shared.limits.max_send_queue && done(self, &mut queue) {
                    return Ok(());
                }
                queue.waiting = true;
            }
            notified.await;
        }
    }

    fn push(&self, len: usize, command: Command) -> Result<(), SendError> {
        let queue = self.lock();
        if queue.closed {
            return Err(SendError::Closed);
        }
        self.push_locked(queue, len, command)
    }

    fn push_locked(
        &self,
        mut queue: MutexGuard<'_, SendQueue>,
        len: usize,
        command: Command,
    ) -> Result<(), SendError> {
        if self.try_push(&mut queue, len, command).is_ok() {
            return Ok(());
        }
        let limit = self.shared.limits.max_send_queue;
        if self.shared.limits.slow_consumer == SlowConsumer::Close {
            queue.closed = true;
            queue.slow = true;
            queue.commands.push_back(Command::SlowConsumer);
            self.wake_unless_in_handler(&queue);
        }
        Err(SendError::QueueFull { limit })
    }

    /// Queues `command` if it fits in the connection's bound (or the queue
    /// is empty: the bound is on what waits) and in the server's budget;
    /// else hands it back.
    fn try_push(&self, queue: &mut SendQueue, len: usize, command: Command) -> Result<(), Command> {
        self.try_queue(queue, len, command)?;
        self.wake_unless_in_handler(queue);
        Ok(())
    }

    /// [`try_push`](Self::try_push) without waking the task.
    fn try_queue(
        &self,
        queue: &mut SendQueue,
        len: usize,
        command: Command,
    ) -> Result<(), Command> {
        if !self.reserve(queue, len) {
            return Err(command);
        }
        queue.commands.push_back(command);
        Ok(())
    }

    /// Counts `len` more bytes as pending if they fit in the connection's
    /// bound (or nothing waits: the bound is on what waits) and in the
    /// server's budget.
    fn reserve(&self, queue: &mut SendQueue, len: usize) -> bool {
        let pending = queue.pending;
        if pending > 0 && pending + len > self.shared.limits.max_send_queue {
            return false;
        }
        if !self.shared.limits.budget.try_charge(len) {
            return false;
        }
        queue.pending += len;
        true
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

    /// The queue, with any run turned into frames: all but the corked
    /// publish and its write see only commands.
    fn lock(&self) -> MutexGuard<'_, SendQueue> {
        let mut queue = self.lock_raw();
        queue.unrun();
        queue
    }

    fn lock_raw(&self) -> MutexGuard<'_, SendQueue> {
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

    /// Lets publishes write straight to `socket`, the plain TCP stream the
    /// task runs on, whenever the task is idle (see [`SendQueue::direct`]).
    pub(crate) fn share_socket(&self, socket: Arc<TcpStream>) {
        self.lock().socket = Some(DirectSocket::new(socket));
    }

    /// Runs `f` on the queued commands under the lock; `f` returns how many
    /// bytes wait unwritten, whether the connection still takes sends, and
    /// whether the task goes idle (from then on, sends wake it). Returns
    /// the messages and bytes publishes wrote to the socket directly since
    /// the last drain.
    pub(crate) fn drain(
        &self,
        f: impl FnOnce(&mut VecDeque<Command>) -> (usize, bool, bool),
    ) -> (u64, u64) {
        let mut queue = self.lock();
        let (unwritten, open, idle) = f(&mut queue.commands);
        queue.direct = idle && open && unwritten == 0 && queue.socket.is_some();
        queue.closed |= !open;
        // What the core queued itself (frame headers, pongs, close frames)
        // is charged too, whatever the budget: it is small and bounded by
        // the read pause.
        let budget = &self.shared.limits.budget;
        if unwritten >= queue.pending {
            budget.force_charge(unwritten - queue.pending);
        } else {
            budget.release(queue.pending - unwritten);
        }
        queue.pending = unwritten;
        if queue.waiting && (unwritten < self.shared.limits.max_send_queue || queue.closed) {
            queue.waiting = false;
            self.shared.room.notify_waiters();
        }
        self.shared.in_handler.store(!idle, Ordering::Release);
        std::mem::take(&mut queue.direct_out)
    }

    /// Refuses all further sends, drops what is still queued and gives its
    /// bytes back to the server's budget: the connection's task has ended.
    /// Returns the messages and bytes publishes wrote to the socket
    /// directly since the last drain.
    pub(crate) fn mark_closed(&self) -> (u64, u64) {
        let mut queue = self.lock();
        queue.closed = true;
        queue.direct = false;
        queue.socket = None;
        queue.commands.clear();
        self.shared.limits.budget.release(queue.pending);
        queue.pending = 0;
        if queue.waiting {
            queue.waiting = false;
            self.shared.room.notify_waiters();
        }
        let topics = std::mem::take(&mut queue.topics);
        let direct_out = std::mem::take(&mut queue.direct_out);
        // The registry comes before the queue in the lock order.
        drop(queue);
        self.shared.topics.leave(self.shared.id, topics);
        direct_out
    }

    /// Leaves every topic now: the connection is closing and takes no
    /// more publishes, so it should not count as a subscriber while its
    /// close handshake lasts. A subscribe that races this is left by
    /// [`mark_closed`](Self::mark_closed), when the task ends.
    pub(crate) fn leave_topics(&self) {
        let topics = std::mem::take(&mut self.lock().topics);
        // The registry comes before the queue in the lock order.
        self.shared.topics.leave(self.shared.id, topics);
    }

    /// Whether a send overflowed the queue under [`SlowConsumer::Close`].
    pub(crate) fn tripped_slow_consumer(&self) -> bool {
        self.lock().slow
    }

    /// The connection's outgoing limits.
    pub(crate) fn limits(&self) -> &SendLimits {
        &self.shared.limits
    }
}

/// Bytes of small corked frames (below [`COPY_BELOW`], the outbox's rule)
/// one write takes, copied into one buffer: one slice rather than a
/// vectored write of one slice per frame, as the task's outbox packs them,
/// since the kernel's cost per iovec is more than the copy's. Measured on
/// bursts of 16 messages, same-time A/B, medians of 3 to 7 rounds: kernel
/// CPU per delivery 0.437 → 0.396 µs (64 B, 1000 subscribers), 0.573 →
/// 0.490 µs (64 B, 10,000), 0.545 → 0.491 µs (1 KiB, 1000). The pack is
/// built once per burst and sent as it is to every subscriber holding the
/// same frames (see [`Pack`]): under callgrind at 1000 subscribers × 16,
/// 407 → 292 instructions per delivery at 1 KiB, 307 → 292 at 64 B; a
/// burst held as a run of its topic's log ([`cork::Log`]) rather than
/// frame by frame, at 10,000 × 1 KiB × 16: 287 → 133.
const WRITE_MAX: usize = 64 * 1024;

thread_local! {
    /// Where [`SendQueue::write_frames`] packs frames: one per thread, at
    /// most about [`WRITE_MAX`] long, rather than an allocation per write.
    static PACKED: RefCell<Pack> = const { RefCell::new(Pack::new()) };
}

/// Frames packed into one buffer, kept for the next subscriber: the
/// subscribers of one topic hold the same frames of a burst, so the pack
/// is built once per burst and then sent to each of them as it is,
/// rather than copied again for each (at 1 KiB, a copy of the whole burst
/// per subscriber).
struct Pack {
    bytes: Vec<u8>,
    /// The frames `bytes` is made of, in order. Held, so that while they
    /// are here no other frame can live at their address: a queued frame
    /// with the same address and length as one of these is that frame
    /// (a `Bytes` never changes), and its bytes are already in the pack.
    frames: Vec<Bytes>,
    /// Or the run `bytes` is made of: its log (held, for the same reason),
    /// first place, last frame's number, and how many frames.
    run: Option<(Arc<Log>, u32, NonZeroU32, usize)>,
}

impl Pack {
    const fn new() -> Self {
        Self {
            bytes: Vec::new(),
            frames: Vec::new(),
            run: None,
        }
    }

    /// Makes the pack the frames of a run (`len` bytes): the log's frames
    /// from place `start` through the one numbered `last`. Returns those
    /// bytes and how many frames they are.
    fn of_run(
        &mut self,
        log: &Arc<Log>,
        start: u32,
        last: NonZeroU32,
        len: usize,
    ) -> (&[u8], usize) {
        let count = match &self.run {
            Some((packed, at, end, count))
                if Arc::ptr_eq(packed, log) && *at == start && *end == last =>
            {
                *count
            }
            _ => {
                self.frames.clear();
                self.bytes.clear();
                let bytes = &mut self.bytes;
                let count = log.through(start, last, |frame| bytes.extend_from_slice(frame));
                self.run = Some((Arc::clone(log), start, last, count));
                count
            }
        };
        debug_assert_eq!(self.bytes.len(), len, "a run's bytes are what it counts");
        (&self.bytes[..len.min(self.bytes.len())], count)
    }

    /// Makes the pack begin with `frames` (their lengths summing to `len`),
    /// keeping what it already begins with, and returns those bytes.
    fn of<'a>(&mut self, frames: impl Iterator<Item = &'a Bytes>, len: usize) -> &[u8] {
        let mut frames = frames.peekable();
        let (mut kept, mut at) = (0, 0);
        while let (Some(frame), Some(packed)) = (frames.peek(), self.frames.get(kept)) {
            if frame.as_ptr() != packed.as_ptr() || frame.len() != packed.len() {
                break;
            }
            at += frame.len();
            kept += 1;
            frames.next();
        }
        if frames.peek().is_some() {
            self.run = None;
            self.frames.truncate(kept);
            self.bytes.truncate(at);
            for frame in frames {
                self.bytes.extend_from_slice(frame);
                self.frames.push(frame.clone());
            }
        }
        &self.bytes[..len]
    }
}

/// Lets go of the frames the last pack held: called when a cork has
/// written what it held, so no frame outlives its burst here. The lists
/// keep their room, bounded as the pack is by [`WRITE_MAX`].
pub(crate) fn forget_pack() {
    PACKED.with_borrow_mut(|pack| {
        pack.frames.clear();
        pack.bytes.clear();
        pack.run = None;
    });
}

/// The flags of a direct write: a peer that has gone must not raise
/// SIGPIPE, whatever the host program does with that signal. Apple has no
/// such flag (mio sets `SO_NOSIGPIPE` on its sockets there instead), and
/// Windows no such signal.
#[cfg(all(unix, not(target_vendor = "apple")))]
const NO_SIGNAL: c_int = libc::MSG_NOSIGNAL;
#[cfg(not(all(unix, not(target_vendor = "apple"))))]
const NO_SIGNAL: c_int = 0;

impl SendQueue {
    /// Writes the shared frames at the head of `commands` to the socket
    /// without waiting — small ones packed together, up to [`WRITE_MAX`]
    /// bytes, a large one on its own, uncopied — and takes what it wrote
    /// off the queue, the end of a frame written in part left as a
    /// [`Command::Rest`]. Returns the bytes written and whether they were
    /// all the frames it tried; `(0, false)` if the head is not a shared
    /// frame.
    fn write_frames(&mut self) -> (usize, bool) {
        let (Some(socket), Some(Command::Frame(first))) = (&self.socket, self.commands.front())
        else {
            return (0, false);
        };
        let socket = SockRef::from(socket);
        let (mut count, mut len) = (1, first.len());
        if len < COPY_BELOW {
            for command in self.commands.range(1..) {
                let Command::Frame(frame) = command else {
                    break;
                };
                if frame.len() >= COPY_BELOW || len + frame.len() > WRITE_MAX {
                    break;
                }
                count += 1;
                len += frame.len();
            }
        }
        // A lone frame (the common case) or a large one goes as it is.
        let written = if count == 1 {
            socket.send_with_flags(first, NO_SIGNAL)
        } else {
            let frames = self
                .commands
                .iter()
                .take(count)
                .filter_map(|command| match command {
                    Command::Frame(frame) => Some(frame),
                    _ => None,
                });
            PACKED.with_borrow_mut(|pack| socket.send_with_flags(pack.of(frames, len), NO_SIGNAL))
        }
        .unwrap_or(0);
        self.consume(written);
        (written, written == len)
    }

    /// Writes the run this connection holds, as one pack (see
    /// [`Pack::of_run`]); if the socket takes only part of it, the rest
    /// is left as frames. Returns the bytes written and whether that was
    /// all of them.
    fn write_run(&mut self) -> (usize, bool) {
        let (Some(socket), Some((log, start)), Some(last)) =
            (&self.socket, &self.run, self.run_last)
        else {
            return (0, false);
        };
        let socket = SockRef::from(socket);
        let len = self.pending;
        let (written, count) = PACKED.with_borrow_mut(|pack| {
            let (bytes, count) = pack.of_run(log, *start, last, len);
            (socket.send_with_flags(bytes, NO_SIGNAL).unwrap_or(0), count)
        });
        if written == len {
            self.run = None;
            self.run_last = None;
            self.direct_out.0 += count as u64;
            self.direct_out.1 += written as u64;
            return (written, true);
        }
        self.unrun();
        self.consume(written);
        (written, false)
    }

    /// Turns the run this connection holds, if any, back into frames.
    fn unrun(&mut self) {
        // Read, not taken: `take` would store to the queue's line on every
        // lock.
        let Some(last) = self.run_last else {
            return;
        };
        self.run_last = None;
        if let Some((log, start)) = self.run.take() {
            log.through(start, last, |frame| {
                self.commands.push_back(Command::Frame(frame.clone()));
            });
        }
    }

    /// Takes the `written` bytes the socket took off the shared frames at
    /// the head of the queue, the end of a frame written in part left as
    /// a [`Command::Rest`].
    fn consume(&mut self, written: usize) {
        let mut n = written;
        while n > 0 {
            let Some(Command::Frame(frame)) = self.commands.front_mut() else {
                break;
            };
            self.direct_out.0 += 1;
            if n < frame.len() {
                let rest = Command::Rest(frame.slice(n..));
                self.commands[0] = rest;
                break;
            }
            n -= frame.len();
            self.commands.pop_front();
        }
        self.direct_out.1 += written as u64;
    }

    /// Writes `frame` to the socket without waiting; `None` if it took
    /// nothing (full, or broken), else how much it took.
    ///
    /// Here and in [`write_frames`](Self::write_frames) the write goes
    /// straight to the (non-blocking) socket, past tokio's record of its
    /// readiness: that record is one more cache line per subscriber, and
    /// at 10,000 subscribers a publish misses it on every one. Nothing is
    /// lost by it: after a refused write the task takes over, and its own
    /// write, through tokio, finds the socket full and waits for it.
    fn write_direct(&mut self, frame: &Bytes) -> Option<usize> {
        let socket = SockRef::from(self.socket.as_ref()?);
        let n = socket
            .send_with_flags(frame, NO_SIGNAL)
            .ok()
            .filter(|&n| n > 0)?;
        self.direct_out.0 += 1;
        self.direct_out.1 += n as u64;
        Some(n)
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
        let conn = Connection::new(1, None, None, SendLimits::queue(10), Arc::default());
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
    fn a_message_larger_than_the_bound_goes_on_an_empty_queue_only() {
        let conn = Connection::new(1, None, None, SendLimits::queue(10), Arc::default());
        conn.send_binary(vec![0u8; 100]).unwrap();
        assert_eq!(conn.send_text("x"), Err(SendError::QueueFull { limit: 10 }));
    }

    #[test]
    fn the_server_budget_refuses_what_the_queue_would_take() {
        let budget = Arc::new(Budget::new(100));
        let limits = |slow_consumer| SendLimits {
            max_send_queue: 1000,
            slow_consumer,
            budget: Arc::clone(&budget),
        };
        let a = Connection::new(1, None, None, limits(SlowConsumer::Error), Arc::default());
        let b = Connection::new(2, None, None, limits(SlowConsumer::Close), Arc::default());
        a.send_binary(vec![0u8; 80]).unwrap();
        assert!(b.send_binary(vec![0u8; 30]).is_err());
        // Under `Close`, the refusal closes b: one close command queued.
        assert_eq!(b.send_text("x"), Err(SendError::Closed));
        assert!(b.tripped_slow_consumer());
        b.drain(|commands| {
            assert!(matches!(commands.pop_front(), Some(Command::SlowConsumer)));
            (0, false, true)
        });
        // a's bytes come back to the budget once written, or when it ends.
        a.drain(|commands| {
            commands.clear();
            (50, true, true)
        });
        assert_eq!(budget.used(), 50);
        a.mark_closed();
        assert_eq!(budget.used(), 0);
    }

    #[tokio::test]
    async fn send_when_ready_fails_when_only_the_server_budget_is_in_the_way() {
        let limits = SendLimits {
            max_send_queue: 1000,
            slow_consumer: SlowConsumer::Close,
            budget: Arc::new(Budget::new(10)),
        };
        let conn = Connection::new(1, None, None, limits, Arc::default());
        let sent = conn
            .send_when_ready(Message::Binary(vec![0u8; 20].into()))
            .await;
        assert_eq!(sent, Err(SendError::QueueFull { limit: 1000 }));
        assert!(conn.is_open(), "waiting never trips SlowConsumer::Close");
    }

    #[test]
    fn sends_after_close_are_errors() {
        let conn = Connection::new(1, None, None, SendLimits::queue(1 << 20), Arc::default());
        conn.close(CloseCode::NORMAL, "bye").unwrap();
        assert_eq!(conn.send_text("x"), Err(SendError::Closed));
        assert_eq!(conn.close(CloseCode::NORMAL, ""), Err(SendError::Closed));
        assert!(!conn.is_open());
    }

    #[test]
    fn oversized_control_payloads_are_refused() {
        let conn = Connection::new(1, None, None, SendLimits::queue(1 << 20), Arc::default());
        assert_eq!(
            conn.send_ping(vec![0u8; 126]),
            Err(SendError::ControlPayloadTooLong(126))
        );
        conn.send_pong(vec![0u8; 125]).unwrap();
    }

    /// A connection over a real socket, its peer, and the socket shared.
    async fn over_tcp(limits: SendLimits) -> (Connection, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = TcpStream::connect(listener.local_addr().unwrap());
        let (peer, accepted) = tokio::join!(peer, listener.accept());
        let conn = Connection::new(1, None, None, limits, Arc::default());
        conn.share_socket(Arc::new(accepted.unwrap().0));
        (conn, peer.unwrap())
    }

    /// What the peer can read now, without waiting long.
    async fn received(peer: &mut TcpStream, len: usize) -> Vec<u8> {
        use tokio::io::AsyncReadExt;
        let mut got = vec![0; len];
        tokio::time::timeout(std::time::Duration::from_secs(5), peer.read_exact(&mut got))
            .await
            .expect("written to the socket")
            .unwrap();
        got
    }

    #[tokio::test]
    async fn a_frame_for_an_idle_connection_is_written_to_its_socket_at_once() {
        let (conn, mut peer) = over_tcp(SendLimits::queue(1 << 20)).await;
        let frame = topics::encode(&Message::Text("hi".into()));
        // Not yet idle (the task starts in `open`): queued.
        conn.send_frame(&frame, true).unwrap();
        let drained = conn.drain(|commands| {
            assert!(matches!(commands.pop_front(), Some(Command::Frame(_))));
            (0, true, true)
        });
        assert_eq!(drained, (0, 0));
        // Idle, nothing unwritten: straight to the socket, nothing queued.
        conn.send_frame(&frame, true).unwrap();
        conn.send_frame(&frame, true).unwrap();
        assert_eq!(received(&mut peer, 8).await, b"\x81\x02hi\x81\x02hi");
        // Behind a queued send, a frame waits its turn.
        conn.send_text("mine").unwrap();
        conn.send_frame(&frame, true).unwrap();
        let drained = conn.drain(|commands| {
            assert!(matches!(commands.pop_front(), Some(Command::Message(_))));
            assert!(matches!(commands.pop_front(), Some(Command::Frame(_))));
            (0, true, true)
        });
        assert_eq!(drained, (2, 8), "the direct writes are counted once");
        // Not while the task has output unwritten, nor once it closes.
        conn.drain(|_| (10, true, true));
        conn.send_frame(&frame, true).unwrap();
        conn.drain(|commands| {
            commands.clear();
            (0, false, true)
        });
        assert_eq!(conn.send_frame(&frame, true), Err(SendError::Closed));
        conn.mark_closed();
        assert!(conn.lock().socket.is_none(), "the socket is let go");
    }

    #[tokio::test]
    async fn the_rest_of_a_frame_the_socket_took_in_part_is_queued_first() {
        let limits = SendLimits::queue(64 << 20);
        let (conn, mut peer) = over_tcp(limits.clone()).await;
        conn.drain(|_| (0, true, true));
        let frame = topics::encode(&Message::Binary(vec![7u8; 8 << 20].into()));
        // The peer does not read: 8 MiB is more than loopback buffers take
        // at once, so the socket takes the start of the first frame only.
        conn.send_frame(&frame, true).unwrap();
        conn.send_frame(&frame, true).unwrap();
        let mut rest = Bytes::new();
        let direct = conn.drain(|commands| {
            let Some(Command::Rest(end)) = commands.pop_front() else {
                panic!("the rest of the first frame comes first")
            };
            rest = end;
            assert!(matches!(commands.pop_front(), Some(Command::Frame(_))));
            assert!(commands.is_empty());
            // What the task would write: all it was handed.
            (0, true, false)
        });
        let written = direct.1 as usize;
        assert_eq!(direct.0, 1);
        assert!(written > 0 && written < frame.len(), "{written}");
        assert_eq!(&rest[..], &frame[written..]);
        let start = received(&mut peer, written).await;
        assert_eq!(&start[..], &frame[..written]);
        assert_eq!(limits.budget.used(), 0, "charged and given back");
    }

    #[tokio::test]
    async fn a_frame_the_server_budget_cannot_hold_is_refused_before_any_of_it_is_written() {
        let limits = SendLimits {
            max_send_queue: 64 << 20,
            slow_consumer: SlowConsumer::Error,
            budget: Arc::new(Budget::new(1 << 20)),
        };
        let (conn, mut peer) = over_tcp(limits.clone()).await;
        conn.drain(|_| (0, true, true));
        // More than loopback takes at once: a write would leave a rest
        // the budget has no room for.
        let big = topics::encode(&Message::Binary(vec![7u8; 8 << 20].into()));
        assert_eq!(
            conn.send_frame(&big, true),
            Err(SendError::QueueFull { limit: 64 << 20 })
        );
        assert_eq!(limits.budget.used(), 0, "nothing charged");
        // The socket got none of it: what fits still goes straight through.
        let small = topics::encode(&Message::Text("hi".into()));
        conn.send_frame(&small, true).unwrap();
        assert_eq!(received(&mut peer, 4).await, b"\x81\x02hi");
        assert_eq!(limits.budget.used(), 0, "charged and given back");
    }

    /// Runs `f` as one poll of a corked connection task would.
    fn in_one_poll<T>(f: impl FnOnce() -> T) -> T {
        let mut f = Some(f);
        let poll = cork::corked(std::future::poll_fn(|_| {
            std::task::Poll::Ready(f.take().expect("polled once")())
        }));
        futures_util::FutureExt::now_or_never(poll).expect("ready at once")
    }

    fn woken(conn: &Connection) -> bool {
        conn.shared.signals.load(Ordering::Acquire) != 0
    }

    /// A corked send of `frame` as a publish to one topic makes it: in
    /// the topic's log, held as a run.
    fn send_logged(conn: &Connection, frame: &Bytes) -> Result<(), SendError> {
        let logged = cork::log(1, 0, frame);
        conn.send_frame_corked(frame, logged.as_ref())
    }

    #[tokio::test]
    async fn corked_frames_leave_in_one_write_when_the_poll_ends_without_a_wake_up() {
        for logged in [false, true] {
            corked_frames_leave_in_one_write(logged).await;
        }
    }

    async fn corked_frames_leave_in_one_write(logged: bool) {
        use tokio::io::AsyncReadExt;
        let limits = SendLimits::queue(1 << 20);
        let (conn, mut peer) = over_tcp(limits.clone()).await;
        conn.drain(|_| (0, true, true));
        let frames: Vec<Bytes> = ["a", "bb", "ccc"]
            .iter()
            .map(|t| topics::encode(&Message::Text((*t).into())))
            .collect();
        in_one_poll(|| {
            for frame in &frames {
                if logged {
                    send_logged(&conn, frame).unwrap();
                } else {
                    conn.send_frame_corked(frame, None).unwrap();
                }
            }
            let mut buf = [0; 16];
            assert!(
                peer.try_read(&mut buf).is_err(),
                "nothing is written before the poll ends"
            );
            let queue = conn.lock_raw();
            if logged {
                assert!(queue.commands.is_empty(), "no entry per frame");
                assert_eq!(queue.pending, 12, "held as one run of 12 bytes");
                assert!(queue.run_last.is_some());
            } else {
                assert_eq!(queue.commands.len(), 3, "queued in order");
            }
        });
        assert!(conn.lock().commands.is_empty(), "written by the cork");
        assert!(!woken(&conn), "the subscriber's task is not woken");
        assert_eq!(limits.budget.used(), 0, "charged and given back");
        let mut got = vec![0; 64];
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), peer.read(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&got[..n], b"\x81\x01a\x81\x02bb\x81\x03ccc", "one write");
        // Counted once, at the task's next drain.
        assert_eq!(conn.drain(|_| (0, true, true)), (3, 12));
    }

    #[tokio::test]
    async fn a_corked_frame_a_busy_task_took_is_not_written_twice() {
        let (conn, peer) = over_tcp(SendLimits::queue(1 << 20)).await;
        conn.drain(|_| (0, true, true));
        let frame = topics::encode(&Message::Text("x".into()));
        in_one_poll(|| {
            send_logged(&conn, &frame).unwrap();
            // The task wakes for a read and drains before the poll ends.
            conn.enter_handlers();
            conn.drain(|commands| {
                assert!(matches!(commands.pop_front(), Some(Command::Frame(_))));
                (0, true, false)
            });
            // A busy task's queue is its own: queued and left to it.
            send_logged(&conn, &frame).unwrap();
        });
        let mut buf = [0; 16];
        assert!(peer.try_read(&mut buf).is_err(), "the cork wrote nothing");
        assert_eq!(conn.lock().commands.len(), 1);
    }

    #[tokio::test]
    async fn what_a_corked_write_leaves_the_task_writes_first_and_in_order() {
        let limits = SendLimits::queue(64 << 20);
        let (conn, mut peer) = over_tcp(limits.clone()).await;
        conn.drain(|_| (0, true, true));
        // More than loopback buffers take at once, and the peer does not
        // read: the socket takes part of the first frame only.
        let big = topics::encode(&Message::Binary(vec![7u8; 8 << 20].into()));
        let small = topics::encode(&Message::Text("after".into()));
        in_one_poll(|| {
            send_logged(&conn, &big).unwrap();
            send_logged(&conn, &small).unwrap();
        });
        assert!(woken(&conn), "the task takes over");
        let mut rest = Bytes::new();
        let direct = conn.drain(|commands| {
            let Some(Command::Rest(end)) = commands.pop_front() else {
                panic!("the rest of the first frame comes first")
            };
            rest = end;
            assert!(matches!(commands.pop_front(), Some(Command::Frame(f)) if f == small));
            assert!(commands.is_empty());
            (0, true, false)
        });
        let written = direct.1 as usize;
        assert!(written > 0 && written < big.len(), "{written}");
        assert_eq!(&rest[..], &big[written..]);
        assert_eq!(&received(&mut peer, written).await[..], &big[..written]);
        assert_eq!(limits.budget.used(), 0, "charged and given back");
    }

    #[tokio::test]
    async fn a_send_behind_corked_frames_keeps_its_place() {
        let (conn, mut peer) = over_tcp(SendLimits::queue(1 << 20)).await;
        conn.drain(|_| (0, true, true));
        let frame = topics::encode(&Message::Text("t".into()));
        in_one_poll(|| {
            send_logged(&conn, &frame).unwrap();
            conn.send_text("mine").unwrap();
            send_logged(&conn, &frame).unwrap();
        });
        // The cork wrote the frame ahead of the send; the rest is the
        // task's, in order.
        assert_eq!(received(&mut peer, 3).await, b"\x81\x01t");
        assert!(woken(&conn));
        conn.drain(|commands| {
            assert!(matches!(commands.pop_front(), Some(Command::Message(_))));
            assert!(matches!(commands.pop_front(), Some(Command::Frame(_))));
            (0, true, true)
        });
    }

    #[test]
    fn a_publish_touches_one_line_of_a_connection_and_its_write_two() {
        let conn = Connection::new(1, None, None, SendLimits::queue(1), Arc::default());
        let shared = &*conn.shared;
        let start = std::ptr::from_ref(shared).addr();
        assert_eq!(align_of::<Shared>(), 64, "Shared starts a cache line");
        assert_eq!(start % 64, 0);
        let at = |field: usize| field - start;
        let mutex = at(std::ptr::from_ref(&shared.queue).addr());
        let queue = conn.lock();
        let data = at(std::ptr::from_ref(&*queue).addr());
        assert_eq!(
            data - mutex,
            size_of::<Mutex<SendQueue>>() - size_of::<SendQueue>(),
            "the lock's own state comes before the queue"
        );
        let ends = [
            at(std::ptr::from_ref(&shared.limits).addr()) + size_of::<Arc<SendLimits>>(),
            at(std::ptr::from_ref(&queue.commands).addr()) + size_of::<VecDeque<Command>>(),
            at(std::ptr::from_ref(&queue.pending).addr()) + size_of::<usize>(),
            at(std::ptr::from_ref(&queue.closed).addr()) + 1,
            at(std::ptr::from_ref(&queue.direct).addr()) + 1,
            at(std::ptr::from_ref(&queue.corked).addr()) + 1,
        ];
        assert!(ends.iter().all(|&end| end <= 64), "{ends:?}");
        // A corked write reads the socket, the run and the counts too: on
        // the next line, and nothing outside these two (the descriptor is
        // in `socket` itself, not behind it).
        let flush = [
            at(std::ptr::from_ref(&queue.run_last).addr()) + size_of::<Option<NonZeroU32>>(),
            at(std::ptr::from_ref(&queue.socket).addr()) + size_of::<Option<DirectSocket>>(),
            at(std::ptr::from_ref(&queue.run).addr()) + size_of::<Option<(Arc<Log>, u32)>>(),
            at(std::ptr::from_ref(&queue.direct_out).addr()) + size_of::<(u64, u64)>(),
        ];
        assert!(flush.iter().all(|&end| end <= 128), "{flush:?}");
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
