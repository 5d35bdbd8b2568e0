//! The connection task: a thin tokio loop that moves bytes between the
//! socket and the sans-IO core, and calls the route's handlers.
//!
//! One task per connection. Each turn of the loop: encode what handles
//! queued, write all pending frames at once, then wait for bytes, a wake-up
//! from another task, server shutdown or the close timeout. Every complete
//! frame a read delivered is handled before the next write, so the replies
//! to a burst of messages leave in one write.

use std::io::{self, IoSlice};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::Sleep;

use crate::connection::{Command, Connection, SHUTDOWN};
use crate::error::{CloseReason, Error, ErrorKind};
use crate::proto::{CloseCode, Event, ServerConnection};
use crate::route::Route;
use crate::transport::Transport;

/// Per-connection settings, resolved from the global config and the route.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) max_payload: Option<u64>,
    pub(crate) close_timeout: Duration,
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
}

/// What woke the loop.
enum Wake {
    Readable(io::Result<()>),
    /// Signal bits from the connection handle.
    Signals(u8),
    CloseTimeout,
}

/// Most slices handed to one vectored write.
const MAX_IOVECS: usize = 64;
/// Most bytes read in one wake-up before the frames are handled, so one
/// fast client cannot make the task read forever.
const MAX_READ_PER_WAKE: usize = 1 << 20;

/// Runs one upgraded connection to its end, calling `route`'s events.
/// `early` holds bytes the client sent right behind its handshake, which
/// the HTTP server had already read.
pub(crate) async fn run<R, S, T>(
    mut io: T,
    early: Bytes,
    mut route: R,
    conn: Connection,
    settings: Settings,
) where
    R: Route<S>,
    T: Transport,
{
    let mut proto = ServerConnection::new(settings.max_payload);
    // Only a closing connection needs a timer: boxed on demand, it costs
    // an open connection nothing.
    let mut close_deadline: Option<Pin<Box<Sleep>>> = None;

    if guarded(route.open(&conn)).await.is_err() {
        abort_after_panic(&mut proto);
    }
    if !early.is_empty() {
        proto.receive(&early);
    }
    // `early` is a view into the HTTP server's read buffer: let go of it
    // now, not when the connection ends.
    drop(early);
    dispatch(&mut route, &conn, &mut proto).await;

    let ending = loop {
        let idle = apply_sends(&conn, &mut proto, true);
        if !idle {
            if let Err(e) = flush(&mut io, &mut proto).await {
                break Ending::Io(e);
            }
            continue;
        }
        if proto.is_finished() {
            break Ending::Closed;
        }
        if !proto.is_open() && close_deadline.is_none() {
            close_deadline = Some(Box::pin(tokio::time::sleep(settings.close_timeout)));
        }

        let wake = tokio::select! {
            biased;
            ready = io.readable() => Wake::Readable(ready),
            bits = std::future::poll_fn(|cx| conn.poll_signals(cx)) => Wake::Signals(bits),
            () = expired(&mut close_deadline) => Wake::CloseTimeout,
        };
        conn.enter_handlers();

        match wake {
            Wake::Readable(Ok(())) => {
                let read = read_available(&mut io, &mut proto);
                // Frames that arrived before an end of stream or an error
                // are still handled, in order.
                proto.process();
                dispatch(&mut route, &conn, &mut proto).await;
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
                // Queued sends are encoded at the top of the loop.
                if bits & SHUTDOWN != 0 {
                    // Fails only if a close is already under way, which is fine.
                    let _ = proto.close(CloseCode::GOING_AWAY, "server shutting down");
                }
            }
            Wake::CloseTimeout => break Ending::CloseTimeout,
        }
    };
    conn.mark_closed();

    let polite = matches!(ending, Ending::Closed);
    let err = match ending {
        Ending::Closed => None,
        Ending::Io(e) => Some(Error::new(ErrorKind::Io(e), None)),
        Ending::CloseTimeout => {
            let code = proto.sent_close().and_then(|f| f.code);
            Some(Error::new(ErrorKind::CloseTimeout, code))
        }
    };
    if let Some(err) = err {
        let _ = guarded(route.error(&conn, &err)).await;
    }
    let _ = guarded(route.close(&conn, close_reason(&proto))).await;

    if polite {
        end_tcp(&mut io, &mut proto, settings.close_timeout).await;
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
fn read_available<T: Transport>(io: &mut T, proto: &mut ServerConnection) -> io::Result<bool> {
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
async fn dispatch<R: Route<S>, S>(route: &mut R, conn: &Connection, proto: &mut ServerConnection) {
    loop {
        // Taking a Close or Error event queues the close frame: first
        // encode what the handlers sent for the messages before it.
        if let Some(Event::Close(_) | Event::Error(_)) = proto.peek_event() {
            apply_sends(conn, proto, false);
        }
        let Some(event) = proto.poll_event() else {
            break;
        };
        match event {
            Event::Message(message) => {
                if guarded(route.message(conn, message)).await.is_err() {
                    abort_after_panic(proto);
                }
            }
            Event::Error(e) => {
                let err = Error::new(ErrorKind::Protocol(e), proto.error_close_code());
                // The connection is failing already: a panic changes nothing.
                let _ = guarded(route.error(conn, &err)).await;
            }
            Event::Ping(_) | Event::Pong(_) | Event::Close(_) => {}
        }
    }
}

/// Encodes what the handles queued. With `may_idle`, returns true when
/// nothing is queued or waiting to be written, in which case the handles
/// now wake the task for their next send.
fn apply_sends(conn: &Connection, proto: &mut ServerConnection, may_idle: bool) -> bool {
    let mut idle = false;
    conn.drain(|commands| {
        idle = may_idle && commands.is_empty() && proto.output_len() == 0;
        for command in commands.drain(..) {
            // A send racing a close is refused by the core; the handle
            // already told its caller the send was accepted, as a socket
            // write would have.
            let _ = match command {
                Command::Message(message) => proto.send(message),
                Command::Ping(payload) => proto.send_ping(payload),
                Command::Pong(payload) => proto.send_pong(payload),
                Command::Close(code, reason) => proto.close(code, &reason),
            };
        }
        (proto.output_len(), proto.is_open(), idle)
    });
    idle
}

/// Writes all pending output, vectored.
async fn flush<IO: AsyncWrite + Unpin>(
    io: &mut IO,
    proto: &mut ServerConnection,
) -> io::Result<()> {
    while proto.output_len() > 0 {
        // The slices are built on the stack at each poll, so they take no
        // room in the connection's future while it waits.
        let written = std::future::poll_fn(|cx| {
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
        })
        .await?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        proto.advance_output(written);
    }
    io.flush().await
}

/// Ends TCP once the close frames are out: write what is left and send FIN
/// (the server closes first, RFC 6455 §7.1.1).
///
/// After a completed handshake the client has nothing more to send. After
/// a failure it may still be sending (frames in flight, its answer to our
/// close), so we read until it closes too: closing a socket with unread
/// bytes sends a reset, which can destroy our close frame before the
/// client reads it.
async fn end_tcp<T: Transport>(io: &mut T, proto: &mut ServerConnection, timeout: Duration) {
    let linger = proto.is_failed();
    let finish = async {
        flush(io, proto).await?;
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
    let _ = tokio::time::timeout(timeout, finish).await;
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

/// Completes when the close timeout, if one is running, expires.
async fn expired(deadline: &mut Option<Pin<Box<Sleep>>>) {
    match deadline {
        Some(sleep) => sleep.await,
        None => std::future::pending().await,
    }
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
        Some(frame) => CloseReason {
            code: frame.code.unwrap_or(CloseCode::NO_STATUS),
            reason: frame.reason.clone(),
            clean: received.is_some() && proto.sent_close().is_some(),
        },
        None => CloseReason {
            code: CloseCode::ABNORMAL,
            reason: String::new(),
            clean: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio::task::JoinHandle;

    use super::*;
    use crate::__private::{Parts, Response};
    use crate::message::Message;
    use crate::transport::Buffered;

    /// A masked text frame "hi" (zero key), sent right behind the handshake.
    const EARLY_HI: &[u8] = b"\x81\x82\0\0\0\0hi";
    /// A masked close 1000 (zero key).
    const CLOSE_1000: [u8; 8] = [0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8];

    fn settings() -> Settings {
        Settings {
            max_payload: None,
            close_timeout: Duration::from_secs(1),
        }
    }

    /// Runs `route` over an in-memory pipe, starting with `early` bytes;
    /// returns the client's end.
    fn spawn_route<R: Route>(route: R, early: &'static [u8]) -> (DuplexStream, JoinHandle<()>) {
        let (client, server) = tokio::io::duplex(1024);
        let task = tokio::spawn(async move {
            let conn = Connection::new(1, None, None, 1 << 20);
            let early = Bytes::from_static(early);
            run(Buffered::new(server), early, route, conn, settings()).await;
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
        let conn = Connection::new(1, None, None, 1 << 20);
        let task = run(Buffered::new(server), Bytes::new(), Echo, conn, settings());
        let size = std::mem::size_of_val(&task);
        eprintln!("driver future: {size} bytes");
        assert!(size <= 1024, "driver future is {size} bytes");
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
