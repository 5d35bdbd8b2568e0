//! The echo-throughput run: N connections, each keeping K messages in
//! flight, for a warm-up and then a measured interval.
//!
//! Per connection, one task: it writes K frames at once, and every read
//! that completes n replies is answered with n new frames in one write
//! (slices of a pre-masked template). Reads go into one large buffer per
//! thread, and replies are parsed there in place, so an idle connection
//! holds no buffer and a busy one copies nothing.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use wsroute_bench::tls;

use crate::deflate::Agreed;
use crate::wire::{self, Connected, FrameTemplate, MessageShape, ReplyParser, Stream};

/// Before the measured interval: replies are not counted.
pub(crate) const WARMUP: u8 = 0;
/// Replies count.
pub(crate) const MEASURE: u8 = 1;
/// The run is over: tasks stop at their next reply.
pub(crate) const STOP: u8 = 2;

/// Big enough for several 64 KiB replies per read.
const SCRATCH_LEN: usize = 512 * 1024;

/// A TLS connection's read buffer: a few records' plaintext.
const TLS_READ_LEN: usize = 64 * 1024;

/// The most frame bytes a TLS connection keeps in flight (see
/// [`tls_connection`]).
pub(crate) const TLS_MAX_IN_FLIGHT: usize = 1024 * 1024;

/// Connections opening (and upgrading) at once.
const CONNECT_CONCURRENCY: usize = 128;

/// What one thread of the load generator drives.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) addr: String,
    pub(crate) shape: MessageShape,
    pub(crate) connections: usize,
    pub(crate) in_flight: usize,
    /// Replies per connection whose payload is compared byte for byte
    /// (inflated first, when compressed).
    pub(crate) verify: u64,
    /// Offer permessage-deflate in the handshake.
    pub(crate) offer_deflate: bool,
    /// Connect over TLS (`--tls`).
    pub(crate) tls: bool,
}

/// What one thread counted during the measured interval.
#[derive(Debug)]
pub(crate) struct Tally {
    pub(crate) messages: u64,
    /// Round trips in nanoseconds.
    pub(crate) latency: Histogram<u64>,
    /// Frame bytes written for the counted messages (headers, masks and
    /// payloads as sent).
    pub(crate) wire_sent: u64,
    /// Frame bytes read for the counted replies.
    pub(crate) wire_received: u64,
    /// What the server answered to the permessage-deflate offer (`None`:
    /// declined, or not offered).
    pub(crate) deflate: Option<Agreed>,
}

impl Tally {
    pub(crate) fn new() -> Self {
        Self {
            messages: 0,
            // 1 ns to 100 s at 3 significant digits.
            latency: Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid bounds"),
            wire_sent: 0,
            wire_received: 0,
            deflate: None,
        }
    }
}

/// What every task of one thread shares.
struct Shared {
    phase: Arc<AtomicU8>,
    template: FrameTemplate,
    expected: Vec<u8>,
    scratch: RefCell<Vec<u8>>,
    tally: RefCell<Tally>,
}

impl Shared {
    /// A connection's start: the bytes of its first `in_flight` frames,
    /// still to be written, with their send times; `leftover` (what came
    /// after the handshake response) parsed.
    fn begin(
        &self,
        in_flight: usize,
        leftover: &[u8],
        parser: &mut ReplyParser,
    ) -> io::Result<(usize, VecDeque<Instant>)> {
        let mut sent_at = VecDeque::with_capacity(in_flight);
        sent_at.extend(std::iter::repeat_n(Instant::now(), in_flight));
        if !leftover.is_empty() {
            parser.feed(leftover, &self.expected)?;
        }
        Ok((in_flight * self.template.frame_len(), sent_at))
    }

    /// Counts `done` replies that have just completed: their round trips,
    /// and the bytes they took, while measuring; their successors are
    /// sent from now on. False once the run is over.
    fn replied(
        &self,
        done: usize,
        sent_at: &mut VecDeque<Instant>,
        parser: &mut ReplyParser,
    ) -> bool {
        let now = Instant::now();
        let phase = self.phase.load(Ordering::Relaxed);
        if phase == STOP {
            return false;
        }
        let mut tally = self.tally.borrow_mut();
        for _ in 0..done {
            let sent = sent_at.pop_front().unwrap_or(now);
            if phase == MEASURE {
                let nanos = now.duration_since(sent).as_nanos() as u64;
                tally.latency.saturating_record(nanos.max(1));
            }
        }
        let wire_bytes = parser.take_wire_bytes();
        if phase == MEASURE {
            tally.messages += done as u64;
            tally.wire_received += wire_bytes;
            tally.wire_sent += (done * self.template.frame_len()) as u64;
        }
        sent_at.extend(std::iter::repeat_n(now, done));
        true
    }
}

/// Opens this thread's connections (with handshakes, `CONNECT_CONCURRENCY`
/// at a time).
pub(crate) async fn open_all(plan: &Plan) -> io::Result<Vec<Connected>> {
    let mut streams = Vec::with_capacity(plan.connections);
    let mut pending = JoinSet::new();
    let tls = plan.tls.then(|| TlsConnector::from(tls::client_config()));
    for _ in 0..plan.connections {
        if pending.len() >= CONNECT_CONCURRENCY {
            streams.push(joined(pending.join_next().await)?);
        }
        let addr = plan.addr.clone();
        let (raw, offer, tls) = (plan.shape.raw, plan.offer_deflate, tls.clone());
        pending.spawn(async move { wire::connect(&addr, raw, offer, tls.as_ref()).await });
    }
    while let Some(result) = pending.join_next().await {
        streams.push(joined(Some(result))?);
    }
    Ok(streams)
}

fn joined<T>(result: Option<Result<io::Result<T>, tokio::task::JoinError>>) -> io::Result<T> {
    match result {
        Some(Ok(r)) => r,
        Some(Err(e)) => Err(io::Error::other(e)),
        None => Err(io::Error::other("no connection task left")),
    }
}

/// Drives `streams` until the phase becomes [`STOP`]; returns what was
/// counted while it was [`MEASURE`]. The first error of any connection
/// ends the run.
pub(crate) async fn drive(
    plan: &Plan,
    streams: Vec<Connected>,
    phase: Arc<AtomicU8>,
) -> io::Result<Tally> {
    let agreed = agreement(&streams)?;
    let mut shape = plan.shape.clone();
    if let Some(agreed) = &agreed {
        shape.compress = Some(agreed.client_window().map_err(|e| wire::protocol(&e))?);
    }
    let mut tally = Tally::new();
    tally.deflate = agreed.clone();
    let shared = Rc::new(Shared {
        phase,
        template: FrameTemplate::new(&shape, plan.in_flight),
        expected: shape.expected_reply_payload(),
        scratch: RefCell::new(vec![0; SCRATCH_LEN]),
        tally: RefCell::new(tally),
    });
    let local = tokio::task::LocalSet::new();
    let mut tasks = JoinSet::new();
    let reply = shape.reply_header();
    for connected in streams {
        let parser = ReplyParser::new(reply, plan.verify, agreed.as_ref());
        let (leftover, shared) = (connected.leftover, shared.clone());
        match connected.stream {
            Stream::Tcp(tcp) => {
                let task = connection(tcp, leftover, parser, plan.in_flight, shared);
                tasks.spawn_local_on(task, &local);
            }
            Stream::Tls(session) => {
                let task = tls_connection(*session, leftover, parser, plan.in_flight, shared);
                tasks.spawn_local_on(task, &local);
            }
        }
    }
    let phase = shared.phase.clone();
    let mut watcher = std::pin::pin!(async move {
        while phase.load(Ordering::Relaxed) != STOP {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let failure = local
        .run_until(async {
            loop {
                tokio::select! {
                    () = &mut watcher => break None,
                    next = tasks.join_next() => match next {
                        Some(Ok(Ok(()))) => {}
                        Some(Ok(Err(e))) => break Some(e),
                        Some(Err(e)) => break Some(io::Error::other(e)),
                        // Every task saw the phase turn to STOP.
                        None => break None,
                    },
                }
            }
        })
        .await;
    // The tasks hold `shared`: drop them before taking the tally.
    drop(tasks);
    drop(local);
    if let Some(e) = failure {
        return Err(e);
    }
    let shared = Rc::into_inner(shared).expect("tasks were dropped");
    Ok(shared.tally.into_inner())
}

/// What every connection agreed to: one answer for all (a server that
/// answers differently from one connection to the next is not measured).
pub(crate) fn agreement(streams: &[Connected]) -> io::Result<Option<Agreed>> {
    let first = streams.first().and_then(|c| c.deflate.clone());
    if streams.iter().any(|c| c.deflate != first) {
        return Err(wire::protocol(
            "the server answered the deflate offer differently on different connections",
        ));
    }
    Ok(first)
}

/// One connection's loop: keep `in_flight` messages outstanding.
async fn connection(
    stream: TcpStream,
    leftover: Vec<u8>,
    mut parser: ReplyParser,
    in_flight: usize,
    shared: Rc<Shared>,
) -> io::Result<()> {
    let frame_len = shared.template.frame_len();
    // Bytes of the endless frame stream still to be written.
    let (mut owed, mut sent_at) = shared.begin(in_flight, &leftover, &mut parser)?;
    loop {
        if owed > 0 {
            match stream.try_write(shared.template.next_slice(owed)) {
                Ok(n) => owed -= n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        let interest = if owed > 0 {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        let ready = stream.ready(interest).await?;
        if !ready.is_readable() {
            continue;
        }
        let done = match read_replies(&stream, &mut parser, &shared) {
            Ok(done) => done,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        if done == 0 {
            continue;
        }
        if !shared.replied(done, &mut sent_at, &mut parser) {
            return Ok(());
        }
        owed += done * frame_len;
    }
}

/// One connection's loop over TLS: the same frames and counting as
/// [`connection`], through tokio-rustls. Each turn writes every owed frame
/// and then reads, which cannot deadlock while the frames in flight fit in
/// the sockets' buffers (`--tls` refuses more than [`TLS_MAX_IN_FLIGHT`]
/// bytes of them). Its read buffer is its own: a read that awaits cannot
/// hold the shared one.
async fn tls_connection(
    mut stream: TlsStream<TcpStream>,
    leftover: Vec<u8>,
    mut parser: ReplyParser,
    in_flight: usize,
    shared: Rc<Shared>,
) -> io::Result<()> {
    let frame_len = shared.template.frame_len();
    // Bytes of the endless frame stream still to be written.
    let (mut owed, mut sent_at) = shared.begin(in_flight, &leftover, &mut parser)?;
    let mut buf = vec![0; TLS_READ_LEN];
    loop {
        while owed > 0 {
            owed -= stream.write(shared.template.next_slice(owed)).await?;
        }
        stream.flush().await?;
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        let done = parser.feed(&buf[..n], &shared.expected)?;
        if done == 0 {
            continue;
        }
        if !shared.replied(done, &mut sent_at, &mut parser) {
            return Ok(());
        }
        owed += done * frame_len;
    }
}

/// One read into the shared buffer, parsed in place.
fn read_replies(
    stream: &TcpStream,
    parser: &mut ReplyParser,
    shared: &Shared,
) -> io::Result<usize> {
    let mut scratch = shared.scratch.borrow_mut();
    let n = stream.try_read(&mut scratch)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection",
        ));
    }
    if n < scratch.len() {
        // A short read drained the socket: drop the readiness now instead
        // of paying a read that returns WouldBlock on the next turn.
        let _ = stream.try_io(Interest::READABLE, || {
            Err::<(), _>(io::ErrorKind::WouldBlock.into())
        });
    }
    parser.feed(&scratch[..n], &shared.expected)
}
