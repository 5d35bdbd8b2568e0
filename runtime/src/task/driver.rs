//! The connection task: a thin tokio loop that moves bytes between the
//! socket and the sans-IO core, and calls the route's handlers.
//!
//! One task per connection. Each turn of the loop: encode what handles
//! queued, write all pending frames at once, then wait for bytes, a wake-up
//! from another task, server shutdown or the close timeout. Every complete
//! frame a read delivered is handled before the next write, so the replies
//! to a burst of messages leave in one write. While the task waits with
//! nothing to write, publishes write to a plain TCP socket themselves
//! (`Connection::send_frame`); the task writes only after a drain of its
//! queue, which ends that under the queue's lock.

use std::io::{self, IoSlice};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, Sleep};

use crate::api::connection::{Command, Connection, SHUTDOWN};
use crate::api::error::{CloseReason, Error, ErrorKind};
use crate::api::route::Route;
use crate::proto::{
    CloseCode, DeflateConfig, DeflateParams, Event, ProtocolError, ServerConnection,
};
use crate::task::cork;
use crate::task::keepalive::{Due, Keepalive, Wheel};
use crate::task::transport::Transport;

/// Per-connection settings, resolved from the global config and the route.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) max_payload: Option<u64>,
    pub(crate) max_fragments: usize,
    pub(crate) close_timeout: Duration,
    /// permessage-deflate, when negotiated.
    pub(crate) deflate: Option<Box<(DeflateParams, DeflateConfig)>>,
    /// `None` when keepalive is off.
    pub(crate) keepalive: Option<KeepaliveSettings>,
}

/// `ping_interval` and `ping_timeout`, on the server's shared clock.
#[derive(Debug, Clone)]
pub(crate) struct KeepaliveSettings {
    pub(crate) wheel: Arc<Wheel>,
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
}

/// How the read/write loop ended.
enum Ending {
    /// The close handshake finished, or the connection failed with a close
    /// frame sent: end TCP politely.
    Closed,
    /// The socket broke or the client left without a close frame.
    Io(io::Error),
    /// The client did not answer our close frame in time.
    CloseTimeout,
    /// Nothing arrived within `ping_timeout` of a keepalive ping.
    PeerTimeout,
}

/// The write side's state, and what the connection moved, for its close
/// event. Bytes are counted on the wire (frame headers included, after
/// compression).
struct Traffic {
    /// A flush is under way (a TLS stream holds written bytes back).
    flushing: bool,
    /// The socket took no more at the last write: our output waits on the
    /// peer.
    blocked: bool,
    /// The socket took more after being full: it only frees room as the
    /// peer acknowledges what it read, so the peer is alive, if silent.
    drained: bool,
    opened: std::time::Instant,
    messages_in: u64,
    messages_out: u64,
    bytes_in: u64,
    bytes_out: u64,
}

/// What woke the loop.
enum Wake {
    /// Some output was written (or writing failed).
    Wrote(io::Result<()>),
    Readable(io::Result<()>),
    /// Signal bits from the connection handle.
    Signals(u8),
    CloseTimeout,
    Keepalive(Due),
}

/// Most slices handed to one vectored write.
const MAX_IOVECS: usize = 64;
/// Most bytes read in one wake-up before the frames are handled, so one
/// fast client cannot make the task read forever.
const MAX_READ_PER_WAKE: usize = 1 << 20;
/// Reading pauses while more than this much of the core's own output
/// (pongs, echoes queued past the send bound) waits unwritten, whatever
/// `max_send_queue` says: a client that sends pings but never reads
/// then fills its own TCP window, not the server's memory.
const MIN_READ_PAUSE: usize = 64 * 1024;

/// A connection's protocol core and timers, built from its [`Settings`]
/// when the handshake is answered. The outermost future of the
/// connection's task owns it and [`run`] borrows it, so that it is held
/// once (see `http::upgrade`'s `connection_task`).
pub(crate) struct Session {
    proto: ServerConnection,
    keepalive: Option<Keepalive>,
    close_timeout: Duration,
}

impl Session {
    pub(crate) fn new(settings: Settings) -> Self {
        let Settings {
            max_payload,
            max_fragments,
            close_timeout,
            deflate,
            keepalive,
        } = settings;
        let mut proto = ServerConnection::new(max_payload);
        proto.set_max_fragments(max_fragments);
        if let Some((params, config)) = deflate.map(|agreed| *agreed) {
            proto.enable_deflate(params, &config);
        }
        Self {
            proto,
            keepalive: keepalive.map(|k| Keepalive::new(k.wheel, k.interval, k.timeout)),
            close_timeout,
        }
    }
}

/// Runs one upgraded connection to its end, calling `route`'s events.
/// `early` holds bytes the client sent right behind its handshake, which
/// the HTTP server had already read.
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn would hold `io` and `early` twice"
)]
pub(crate) fn run<'a, R, S, T>(
    mut io: T,
    early: Bytes,
    route: &'a mut R,
    conn: &'a Connection,
    session: &'a mut Session,
) -> impl Future<Output = ()> + 'a
where
    R: Route<S>,
    T: Transport + 'a,
{
    async move {
        let Session {
            proto,
            keepalive,
            close_timeout,
        } = session;
        if let Some(keepalive) = keepalive.as_mut() {
            keepalive.start();
        }
        let mut held = Held {
            conn,
            inbound: 0,
            traffic: Traffic {
                flushing: false,
                blocked: false,
                drained: false,
                opened: std::time::Instant::now(),
                messages_in: 0,
                messages_out: 0,
                bytes_in: 0,
                bytes_out: 0,
            },
        };
        // Only a closing connection needs a timer: boxed on demand, it costs
        // an open connection nothing.
        let mut close_deadline: Option<Pin<Box<Sleep>>> = None;

        // The connection's span (see `http::upgrade`) is entered around this
        // whole task, so these events, and the handlers' own, carry it.
        tracing::debug!("WebSocket opened");
        if guarded(route.open(conn)).await.is_err() {
            abort_after_panic(proto);
        }
        if !early.is_empty() {
            held.traffic.bytes_in += early.len() as u64;
            proto.receive(&early);
            held.charge(proto);
        }
        // `early` is a view into the HTTP server's read buffer: let go of it
        // now, not when the connection ends.
        drop(early);
        dispatch(route, &mut held, proto).await;

        let ending = loop {
            apply_sends(conn, proto, &mut held.traffic, true);
            if proto.is_finished() {
                break Ending::Closed;
            }
            if !proto.is_open() && close_deadline.is_none() {
                close_deadline = Some(Box::pin(tokio::time::sleep(*close_timeout)));
            }
            // While our output backs up, the peer is not reading: stop
            // reading it too, so what it sends waits in its own buffers.
            // (Worked out each turn rather than kept: the task's size is what
            // every idle connection costs.)
            let can_read = proto.output_len() <= conn.limits().max_send_queue.max(MIN_READ_PAUSE);
            let open = proto.is_open();

            // One poll over every source, so that writing — which a peer that
            // never reads can stall for ever — never stands between the task
            // and its shutdown signal, the close timer or the keepalive.
            let wake = std::future::poll_fn(|cx| {
                if (proto.output_len() > 0 || held.traffic.flushing)
                    && let Poll::Ready(wrote) =
                        poll_write_out(&mut io, proto, &mut held.traffic, cx)
                {
                    return Poll::Ready(Wake::Wrote(wrote));
                }
                if can_read && let Poll::Ready(ready) = io.poll_readable(cx) {
                    return Poll::Ready(Wake::Readable(ready));
                }
                if let Poll::Ready(bits) = conn.poll_signals(cx) {
                    return Poll::Ready(Wake::Signals(bits));
                }
                if let Some(sleep) = &mut close_deadline
                    && sleep.as_mut().poll(cx).is_ready()
                {
                    return Poll::Ready(Wake::CloseTimeout);
                }
                if open
                    && let Some(keepalive) = keepalive.as_mut()
                    && let Poll::Ready(due) = keepalive.poll_due(cx)
                {
                    return Poll::Ready(Wake::Keepalive(due));
                }
                Poll::Pending
            })
            .await;
            conn.enter_handlers();

            match wake {
                // A client reading a long backlog sends nothing, and our
                // ping waits behind the backlog: its reading is its sign
                // of life until then.
                Wake::Wrote(Ok(())) => {
                    if std::mem::take(&mut held.traffic.drained)
                        && let Some(keepalive) = keepalive.as_mut()
                    {
                        keepalive.seen();
                    }
                }
                Wake::Wrote(Err(e)) => break Ending::Io(e),
                Wake::Readable(Ok(())) => {
                    let read = read_available(&mut io, proto, &mut held.traffic);
                    // Frames that arrived before an end of stream or an error
                    // are still handled, in order.
                    proto.process();
                    if let (Some(keepalive), Ok(true)) = (keepalive.as_mut(), &read) {
                        keepalive.seen();
                    }
                    held.charge(proto);
                    dispatch(route, &mut held, proto).await;
                    match read {
                        Ok(true) => {}
                        Ok(false) if proto.is_finished() => {}
                        Ok(false) => {
                            break Ending::Io(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "the client closed the TCP connection without a close frame",
                            ));
                        }
                        Err(e) => break Ending::Io(e),
                    }
                }
                Wake::Readable(Err(e)) => break Ending::Io(e),
                Wake::Signals(bits) => {
                    // Queued sends are encoded at the top of the loop, but
                    // before a shutdown's close here: they were sent before it,
                    // and a close among them is the one the client gets.
                    if bits & SHUTDOWN != 0 {
                        apply_sends(conn, proto, &mut held.traffic, false);
                        // Fails only if a close is already under way, which is fine.
                        let _ = proto.close(CloseCode::GOING_AWAY, "server shutting down");
                    }
                }
                Wake::CloseTimeout => break Ending::CloseTimeout,
                Wake::Keepalive(Due::Ping) => {
                    let _ = proto.send_ping(Bytes::new());
                    if let Some(keepalive) = keepalive.as_mut() {
                        keepalive.pinged();
                    }
                }
                Wake::Keepalive(Due::Dead) => break Ending::PeerTimeout,
            }
        };
        let (direct_messages, direct_bytes) = conn.mark_closed();
        held.traffic.messages_out += direct_messages;
        held.traffic.bytes_out += direct_bytes;
        held.release_inbound();

        let polite = matches!(ending, Ending::Closed);
        let err = if conn.tripped_slow_consumer() {
            Some(Error::new(
                ErrorKind::SlowConsumer,
                Some(CloseCode::POLICY_VIOLATION),
            ))
        } else {
            match ending {
                Ending::Closed => None,
                Ending::Io(e) => Some(Error::new(ErrorKind::Io(e), None)),
                Ending::CloseTimeout => {
                    let code = proto.sent_close().and_then(|f| f.code);
                    Some(Error::new(ErrorKind::CloseTimeout, code))
                }
                Ending::PeerTimeout => Some(Error::new(ErrorKind::PeerTimeout, None)),
            }
        };
        if let Some(err) = err {
            tracing::debug!(error = %err, "WebSocket error");
            let _ = guarded(route.error(conn, &err)).await;
        }
        let _ = guarded(route.close(conn, logged_close(proto, &held.traffic))).await;

        if polite {
            // Within what is left of the close timeout, if one was running:
            // shutdown waits for this task, and must not wait twice as long.
            let deadline = close_deadline
                .map_or_else(|| Instant::now() + *close_timeout, |sleep| sleep.deadline());
            // Boxed: only a closing connection needs the room this takes.
            Box::pin(end_tcp(&mut io, proto, &mut held.traffic, deadline)).await;
        }
    }
}

/// What a connection has charged to the server's budget (the one its
/// handle charges outgoing queues to); given back however the task ends,
/// also if it is dropped.
///
/// It also carries what the connection moved: the handlers' calls carry
/// this one reference for both. (Inline: boxed, it was one more heap
/// block per connection, and the task's allocation had room for it.)
struct Held<'a> {
    conn: &'a Connection,
    /// Bytes of receive buffers charged.
    inbound: usize,
    traffic: Traffic,
}

impl Held<'_> {
    /// Charges the core's receive buffers as they stand. A connection
    /// whose buffers would take the server past its budget is failed with
    /// 1013 (try again later), which also lets its buffers go.
    fn charge(&mut self, proto: &mut ServerConnection) {
        let budget = &self.conn.limits().budget;
        if !budget.adjust(&mut self.inbound, proto.buffered_capacity()) {
            proto.fail_with(ProtocolError::Overloaded);
            budget.adjust(&mut self.inbound, proto.buffered_capacity());
        }
    }

    fn release_inbound(&mut self) {
        self.conn.limits().budget.adjust(&mut self.inbound, 0);
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.release_inbound();
        let _ = self.conn.mark_closed();
    }
}

/// Writes what the socket takes without waiting. Ready once something was
/// written (the loop then updates the queue's accounting and goes on) or
/// writing failed; pending, with the waker registered, when the socket is
/// full.
fn poll_write_out<IO: AsyncWrite + Unpin>(
    io: &mut IO,
    proto: &mut ServerConnection,
    traffic: &mut Traffic,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    let mut wrote = false;
    while proto.output_len() > 0 {
        let result = {
            // The slices are built on the stack at each poll, so they take
            // no room in the connection's future while it waits.
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let n = proto.chunks_vectored(&mut slices);
            // One slice (the common case: small frames are packed
            // together) goes out with a plain write: on a socket that is
            // `send`, which skips the VFS layer `writev` passes through.
            if n == 1 {
                Pin::new(&mut *io).poll_write(cx, &slices[0])
            } else {
                Pin::new(&mut *io).poll_write_vectored(cx, &slices[..n])
            }
        };
        match result {
            Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
            Poll::Ready(Ok(n)) => {
                proto.advance_output(n);
                traffic.bytes_out += n as u64;
                traffic.drained |= std::mem::take(&mut traffic.blocked);
                wrote = true;
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => {
                traffic.blocked = true;
                return if wrote {
                    Poll::Ready(Ok(()))
                } else {
                    Poll::Pending
                };
            }
        }
    }
    // Everything is handed over: flush (a no-op on TCP; TLS writes its
    // records here).
    match Pin::new(&mut *io).poll_flush(cx) {
        Poll::Ready(result) => {
            traffic.flushing = false;
            Poll::Ready(result)
        }
        Poll::Pending => {
            traffic.flushing = true;
            if wrote {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            }
        }
    }
}

/// Size of the per-thread read buffer.
const POOL_BUF: usize = 16 * 1024;
/// A read is offered at least this much room in the per-thread buffer;
/// below it the buffer is reclaimed (or replaced) before reading.
const POOL_MIN_READ: usize = 4 * 1024;

thread_local! {
    /// Where reads land unless a large payload is pending: one buffer per
    /// thread, shared by every connection it serves. Messages are split
    /// out of it without a copy, and once they are dropped `reserve`
    /// reuses the allocation, so the hot path allocates nothing and idle
    /// connections hold no read buffer of their own.
    static READ_POOL: std::cell::RefCell<BytesMut> =
        std::cell::RefCell::new(BytesMut::with_capacity(POOL_BUF));
}

/// Reads every byte the transport has, up to [`MAX_READ_PER_WAKE`], and
/// feeds it to the core. Returns false at the end of the stream.
///
/// The rest of a large frame is read straight into the core's buffer for
/// that frame; everything else goes through the per-thread buffer.
fn read_available<T: Transport>(
    io: &mut T,
    proto: &mut ServerConnection,
    traffic: &mut Traffic,
) -> io::Result<bool> {
    let mut total = 0;
    while total < MAX_READ_PER_WAKE {
        let (read, room) = if proto.payload_pending() >= POOL_MIN_READ as u64 {
            let buf = proto.read_buf();
            let room = buf.capacity() - buf.len();
            (io.try_read_buf(buf)?, room)
        } else {
            READ_POOL.with_borrow_mut(|pool| {
                if pool.capacity() < POOL_MIN_READ {
                    // Reuses the allocation if no message still holds a
                    // part of it, else allocates a fresh one.
                    pool.reserve(POOL_BUF);
                }
                let room = pool.capacity();
                let read = io.try_read_buf(pool)?;
                proto.receive_from(pool);
                io::Result::Ok((read, room))
            })?
        };
        if let Some(n) = read {
            traffic.bytes_in += n as u64;
        }
        match read {
            Some(0) => return Ok(false),
            // A read that did not fill the room drained the socket (and
            // cleared its readiness): another would only find nothing.
            Some(n) if n < room => break,
            Some(n) => total += n,
            None => break,
        }
    }
    Ok(true)
}

/// Hands each event of the last read to the route, in order.
async fn dispatch<R: Route<S>, S>(
    route: &mut R,
    held: &mut Held<'_>,
    proto: &mut ServerConnection,
) {
    loop {
        // Taking a Close or Error event queues the close frame: first
        // encode what the handlers sent for the messages before it.
        if let Some(Event::Close(_) | Event::Error(_)) = proto.peek_event() {
            apply_sends(held.conn, proto, &mut held.traffic, false);
        }
        let Some(event) = proto.poll_event() else {
            break;
        };
        match event {
            Event::Message(message) => {
                held.traffic.messages_in += 1;
                cork::more_to_come(proto.peek_event().is_some());
                if guarded(route.message(held.conn, message)).await.is_err() {
                    abort_after_panic(proto);
                }
            }
            Event::Error(e) => {
                let err = Error::new(ErrorKind::Protocol(e), proto.error_close_code());
                tracing::debug!(error = %err, "WebSocket error");
                // The connection is failing already: a panic changes nothing.
                let _ = guarded(route.error(held.conn, &err)).await;
            }
            Event::Ping(_) | Event::Pong(_) | Event::Close(_) => {}
        }
    }
}

/// Encodes what the handles queued. With `may_idle` (the task is about to
/// wait), the handles wake the task for their next send from now on.
fn apply_sends(
    conn: &Connection,
    proto: &mut ServerConnection,
    traffic: &mut Traffic,
    may_idle: bool,
) {
    let (direct_messages, direct_bytes) = conn.drain(|commands| {
        for command in commands.drain(..) {
            // A send racing a close is refused by the core; the handle
            // already told its caller the send was accepted, as a socket
            // write would have.
            if let Command::Message(_) | Command::Frame(_) = command {
                traffic.messages_out += 1;
            }
            let _ = match command {
                Command::Message(message) => proto.send(message),
                Command::Ping(payload) => proto.send_ping(payload),
                Command::Pong(payload) => proto.send_pong(payload),
                Command::Frame(frame) => proto.send_encoded(frame),
                Command::Rest(rest) => {
                    proto.resume_output(rest);
                    Ok(())
                }
                Command::Close(code, reason) => proto.close(code, &reason),
                Command::SlowConsumer => proto.close(
                    CloseCode::POLICY_VIOLATION,
                    "slow consumer: send queue full",
                ),
            };
        }
        (proto.output_len(), proto.is_open(), may_idle)
    });
    traffic.messages_out += direct_messages;
    traffic.bytes_out += direct_bytes;
    // Closing (a close sent or answered): publishes would only be refused
    // by the core, so the topics are left now, not when the handshake ends.
    if !proto.is_open() {
        conn.leave_topics();
    }
}

/// Writes all pending output.
async fn flush<IO: AsyncWrite + Unpin>(
    io: &mut IO,
    proto: &mut ServerConnection,
    traffic: &mut Traffic,
) -> io::Result<()> {
    traffic.flushing = true;
    while proto.output_len() > 0 || traffic.flushing {
        std::future::poll_fn(|cx| poll_write_out(io, proto, traffic, cx)).await?;
    }
    Ok(())
}

/// Ends TCP once the close frames are out: write what is left and send FIN
/// (the server closes first, RFC 6455 §7.1.1).
///
/// After a completed handshake the client has nothing more to send. After
/// a failure it may still be sending (frames in flight, its answer to our
/// close), so we read until it closes too: closing a socket with unread
/// bytes sends a reset, which can destroy our close frame before the
/// client reads it.
async fn end_tcp<T: Transport>(
    io: &mut T,
    proto: &mut ServerConnection,
    traffic: &mut Traffic,
    deadline: Instant,
) {
    let linger = proto.is_failed();
    let finish = async {
        flush(io, proto, traffic).await?;
        io.shutdown().await?;
        if linger {
            let mut sink = BytesMut::new();
            loop {
                io.readable().await?;
                match io.try_read_buf(&mut sink)? {
                    Some(0) => break,
                    _ => sink.clear(),
                }
            }
        }
        io::Result::Ok(())
    };
    let _ = tokio::time::timeout_at(deadline, finish).await;
}

/// The `close` event's reason, logged at debug level with the traffic.
/// Out of line: its fields take no room in the connection's task.
fn logged_close(proto: &ServerConnection, traffic: &Traffic) -> CloseReason {
    let reason = close_reason(proto);
    tracing::debug!(
        code = reason.code().0,
        reason = reason.reason(),
        clean = reason.is_clean(),
        duration = ?traffic.opened.elapsed(),
        messages_in = traffic.messages_in,
        messages_out = traffic.messages_out,
        bytes_in = traffic.bytes_in,
        bytes_out = traffic.bytes_out,
        "WebSocket closed"
    );
    reason
}

/// Runs a handler, turning a panic into an `Err` so the connection still
/// closes properly and its `close` event still runs.
async fn guarded(handler: impl Future<Output = ()>) -> Result<(), ()> {
    match AssertUnwindSafe(handler).catch_unwind().await {
        Ok(()) => Ok(()),
        Err(_) => {
            // The panic hook has already printed the message.
            tracing::error!("a WebSocket handler panicked; closing the connection with 1011");
            Err(())
        }
    }
}

/// After a handler panicked the route's state may be half-updated: stop
/// delivering messages, close with 1011 (internal error).
fn abort_after_panic(proto: &mut ServerConnection) {
    let _ = proto.close(CloseCode::INTERNAL_ERROR, "internal error");
}

/// The `close` event's reason: whoever started the close handshake
/// names the code; no close frame at all is 1006.
fn close_reason(proto: &ServerConnection) -> CloseReason {
    let received = proto.received_close();
    let started = if proto.peer_started_close() {
        received
    } else {
        proto.sent_close()
    };
    match started {
        Some(frame) => CloseReason::new(
            frame.code.unwrap_or(CloseCode::NO_STATUS),
            frame.reason.clone(),
            received.is_some() && proto.sent_close().is_some(),
        ),
        None => CloseReason::new(CloseCode::ABNORMAL, String::new(), false),
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio::task::JoinHandle;

    use super::*;
    use crate::api::connection::SendLimits;
    use crate::proto::Message;
    use crate::task::transport::Buffered;
    use axum::response::Response;
    use http::request::Parts;

    /// A masked text frame "hi" (zero key), sent right behind the handshake.
    const EARLY_HI: &[u8] = b"\x81\x82\0\0\0\0hi";
    /// A masked close 1000 (zero key).
    const CLOSE_1000: [u8; 8] = [0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8];

    fn settings() -> Settings {
        Settings {
            max_payload: None,
            max_fragments: usize::MAX,
            deflate: None,
            close_timeout: Duration::from_secs(1),
            keepalive: None,
        }
    }

    /// Runs `route` over an in-memory pipe, starting with `early` bytes;
    /// returns the client's end.
    fn spawn_route<R: Route>(route: R, early: &'static [u8]) -> (DuplexStream, JoinHandle<()>) {
        let (client, server) = tokio::io::duplex(1024);
        let task = tokio::spawn(async move {
            let conn = Connection::new(1, None, None, SendLimits::queue(1 << 20), Arc::default());
            let early = Bytes::from_static(early);
            let (mut route, mut session) = (route, Session::new(settings()));
            run(
                Buffered::new(server),
                early,
                &mut route,
                &conn,
                &mut session,
            )
            .await;
        });
        (client, task)
    }

    /// Sends a close and reads to the end of the stream.
    async fn close_and_finish(mut client: DuplexStream, task: JoinHandle<()>) -> Vec<u8> {
        client.write_all(&CLOSE_1000).await.unwrap();
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        task.await.unwrap();
        rest
    }

    struct Echo;

    impl Route for Echo {
        const PATH: &'static str = "/";

        async fn accept(_: &mut Parts, _: &()) -> Result<Self, Response> {
            Ok(Echo)
        }

        async fn message(&mut self, conn: &Connection, msg: Message) {
            conn.send(msg).unwrap();
        }
    }

    /// On each message: another thread sends "x" (and is joined), then the
    /// handler sends "y" itself, yields, and sends "z".
    struct Mixed;

    impl Route for Mixed {
        const PATH: &'static str = "/";

        async fn accept(_: &mut Parts, _: &()) -> Result<Self, Response> {
            Ok(Mixed)
        }

        async fn message(&mut self, conn: &Connection, _: Message) {
            let other = conn.clone();
            std::thread::spawn(move || other.send_text("x").unwrap())
                .join()
                .unwrap();
            conn.send_text("y").unwrap();
            tokio::task::yield_now().await;
            conn.send_text("z").unwrap();
        }
    }

    #[test]
    fn the_connection_task_is_small() {
        let (_, server) = tokio::io::duplex(1);
        let conn = Connection::new(1, None, None, SendLimits::queue(1 << 20), Arc::default());
        let (mut route, mut session) = (Echo, Session::new(settings()));
        let task = run(
            Buffered::new(server),
            Bytes::new(),
            &mut route,
            &conn,
            &mut session,
        );
        let size = std::mem::size_of_val(&task);
        eprintln!("driver future: {size} bytes");
        assert!(size <= 640, "driver future is {size} bytes");
    }

    #[tokio::test]
    async fn runs_over_any_byte_stream_through_buffered() {
        let (mut client, task) = spawn_route(Echo, EARLY_HI);
        let mut echo = [0u8; 4];
        client.read_exact(&mut echo).await.unwrap();
        assert_eq!(&echo, b"\x81\x02hi");
        // The server echoes the close and ends the stream.
        let rest = close_and_finish(client, task).await;
        assert!(rest.ends_with(&[0x88, 0x02, 0x03, 0xE8]), "{rest:x?}");
    }

    #[tokio::test]
    async fn a_send_from_another_thread_that_came_first_goes_out_first() {
        let (mut client, task) = spawn_route(Mixed, EARLY_HI);
        let mut replies = [0u8; 9];
        client.read_exact(&mut replies).await.unwrap();
        assert_eq!(&replies, b"\x81\x01x\x81\x01y\x81\x01z");
        close_and_finish(client, task).await;
    }
}
