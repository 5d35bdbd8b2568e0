//! Load generator of the fan-out benchmark: N subscribers and one
//! publisher against `wsroute-fanout`, `registry-fanout` or `tcp-fanout`
//! (`--tcp`). Driven by `fanout-runner`; see `bench/README.md`.
//!
//! Closed loop: the publisher sends a burst of `--burst` messages (one by
//! default) in one write and sends the next burst only once every
//! subscriber has received the last message of this one. The time between
//! the two is the publish-to-last-delivery latency. Every message carries
//! its sequence number; each subscriber checks that it gets every
//! one exactly once, in order, from the first it saw, and a count
//! mismatch fails the run (exit 1). A warm-up publishes until every
//! subscriber has joined the topic (joining is asynchronous on every
//! server), then the measured phase runs for `--seconds` and at least
//! `--min-publishes` bursts (default 30, so that 10,000 subscribers still
//! give a latency distribution), or exactly `--publishes` bursts.
//!
//! Prints one JSON line: server CPU (from `/proc`, `--server-pid`) per
//! delivery, latency percentiles, deliveries per second and, for the
//! callgrind run, `all_deliveries` (warm-up included).

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore};
use wsroute_bench::{procfs, raw_client, spawned};

const USAGE: &str = "--addr HOST:PORT --subscribers N --size BYTES \
    [--burst B] [--seconds S [--min-publishes K] | --publishes K] [--server-pid PID] [--tcp] \
    [--timeout S]";

/// Connections opened at once while setting up.
const CONNECTING: usize = 128;
/// Fewest warm-up messages.
const WARM_UP: u64 = 5;
/// The most errors kept for the report (all are counted).
const ERRORS_KEPT: usize = 5;

struct Options {
    addr: String,
    subscribers: usize,
    size: usize,
    /// Messages per write of the publisher.
    burst: u64,
    seconds: f64,
    publishes: Option<u64>,
    min_publishes: u64,
    server_pid: Option<u32>,
    tcp: bool,
    timeout: Duration,
}

fn parse_options() -> Result<Options, String> {
    let mut o = Options {
        addr: String::new(),
        subscribers: 0,
        size: 64,
        burst: 1,
        seconds: 2.0,
        publishes: None,
        min_publishes: 30,
        server_pid: None,
        tcp: false,
        timeout: Duration::from_secs(10),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--addr" => o.addr = value()?,
            "--subscribers" => o.subscribers = number(&value()?)?,
            "--size" => o.size = number(&value()?)?,
            "--burst" => o.burst = number(&value()?)?,
            "--seconds" => o.seconds = number(&value()?)?,
            "--publishes" => o.publishes = Some(number(&value()?)?),
            "--min-publishes" => o.min_publishes = number(&value()?)?,
            "--server-pid" => o.server_pid = Some(number(&value()?)?),
            "--timeout" => o.timeout = Duration::from_secs_f64(number(&value()?)?),
            "--tcp" => o.tcp = true,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if o.addr.is_empty() || o.subscribers == 0 {
        return Err("--addr and --subscribers are required".into());
    }
    if o.burst == 0 {
        return Err("--burst must be at least 1".into());
    }
    if o.size < 9 {
        return Err("--size must be at least 9 (sequence number and a check byte)".into());
    }
    Ok(o)
}

fn number<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("not a number: {s}"))
}

fn main() {
    let o = parse_options().unwrap_or_else(|e| {
        eprintln!("{e}\nusage: fanout-load {USAGE}");
        std::process::exit(2)
    });
    let needed = o.subscribers as u64 + 64;
    if spawned::raise_own_fd_limit(needed) < needed {
        eprintln!("open-file limit below {needed}: raise the hard limit (ulimit -Hn)");
        std::process::exit(2);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    let local = tokio::task::LocalSet::new();
    match local.block_on(&runtime, run(&o)) {
        Ok(report) => println!("{report}"),
        Err(e) => {
            eprintln!("fanout-load: {e}");
            std::process::exit(1);
        }
    }
}

/// What one subscriber saw: the first sequence number and how many since.
#[derive(Clone, Copy, Default)]
struct Tally {
    first: Option<u64>,
    count: u64,
}

/// Shared by the publisher and the subscriber tasks (one thread).
struct Shared {
    subscribers: usize,
    size: usize,
    /// The message the publisher waits for, and how many have it.
    current: Cell<u64>,
    have_current: Cell<usize>,
    /// When the last subscriber received `current`.
    last_at: Cell<Option<Instant>>,
    /// Subscribers that have received anything.
    joined: Cell<usize>,
    connected: Cell<usize>,
    /// Every message received, warm-up included.
    delivered: Cell<u64>,
    tallies: RefCell<Vec<Tally>>,
    errors: RefCell<Vec<String>>,
    error_count: Cell<usize>,
    wake: Notify,
}

impl Shared {
    fn error(&self, e: String) {
        self.error_count.set(self.error_count.get() + 1);
        let mut kept = self.errors.borrow_mut();
        if kept.len() < ERRORS_KEPT {
            kept.push(e);
        }
        self.wake.notify_one();
    }

    /// Subscriber `i` received a message with this payload.
    fn received(&self, i: usize, payload: &[u8]) {
        let mut seq = [0; 8];
        seq.copy_from_slice(&payload[..8.min(payload.len())]);
        let seq = u64::from_le_bytes(seq);
        if payload.len() != self.size || payload.last() != Some(&(seq as u8)) {
            self.error(format!(
                "subscriber {i}: message {seq} of {} bytes is not the one sent",
                payload.len()
            ));
        }
        self.delivered.set(self.delivered.get() + 1);
        let mut tallies = self.tallies.borrow_mut();
        let tally = &mut tallies[i];
        match tally.first {
            None => {
                tally.first = Some(seq);
                self.joined.set(self.joined.get() + 1);
            }
            Some(first) if first + tally.count != seq => self.error(format!(
                "subscriber {i}: message {seq} where {} was due",
                first + tally.count
            )),
            Some(_) => {}
        }
        tally.count += 1;
        if seq == self.current.get() {
            self.have_current.set(self.have_current.get() + 1);
            if self.have_current.get() == self.subscribers {
                self.last_at.set(Some(Instant::now()));
                self.wake.notify_one();
            }
        }
    }
}

async fn run(o: &Options) -> io::Result<String> {
    let shared = Rc::new(Shared {
        subscribers: o.subscribers,
        size: o.size,
        current: Cell::new(u64::MAX),
        have_current: Cell::new(0),
        last_at: Cell::new(None),
        joined: Cell::new(0),
        connected: Cell::new(0),
        delivered: Cell::new(0),
        tallies: RefCell::new(vec![Tally::default(); o.subscribers]),
        errors: RefCell::default(),
        error_count: Cell::new(0),
        wake: Notify::new(),
    });
    let started = Instant::now();
    let gate = Rc::new(Semaphore::new(CONNECTING));
    let mut tasks = Vec::with_capacity(o.subscribers);
    for i in 0..o.subscribers {
        let (shared, gate, addr, tcp) = (shared.clone(), gate.clone(), o.addr.clone(), o.tcp);
        tasks.push(tokio::task::spawn_local(async move {
            let permit = gate.acquire().await;
            let opened = connect(&addr, tcp, "/sub", b'S').await;
            drop(permit);
            match opened {
                Ok((stream, rest)) => {
                    shared.connected.set(shared.connected.get() + 1);
                    shared.wake.notify_one();
                    subscribe(i, stream, rest, &shared).await;
                }
                Err(e) => shared.error(format!("subscriber {i}: {e}")),
            }
        }));
    }
    let outcome = publish(o, &shared, started).await;
    for task in tasks {
        task.abort();
    }
    outcome
}

/// Opens a connection: a WebSocket upgrade on `path`, or with `--tcp` a
/// plain connection that says what it is in its first byte.
async fn connect(addr: &str, tcp: bool, path: &str, role: u8) -> io::Result<(TcpStream, Vec<u8>)> {
    let (mut stream, rest) = if tcp {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        (stream, Vec::new())
    } else {
        raw_client::upgrade(addr, path).await?
    };
    if tcp {
        stream.write_all(&[role]).await?;
    }
    // Closed with a reset, not a FIN: 10,000 ports in TIME_WAIT after
    // each run would exhaust the ephemeral range across runs.
    stream.set_zero_linger()?;
    Ok((stream, rest))
}

/// Reads server frames (unmasked) until the connection ends.
async fn subscribe(i: usize, mut stream: TcpStream, mut buf: Vec<u8>, shared: &Shared) {
    buf.reserve(4096 + shared.size);
    loop {
        let mut used = 0;
        loop {
            match server_frame(&buf[used..]) {
                Ok(Some(frame)) => {
                    let payload = &buf[used + frame.payload.start..used + frame.payload.end];
                    match frame.opcode {
                        raw_client::BINARY => shared.received(i, payload),
                        raw_client::CLOSE => {
                            return shared.error(format!("subscriber {i}: closed by the server"));
                        }
                        // Pings and pongs: nothing to count.
                        _ => {}
                    }
                    used += frame.len;
                }
                Ok(None) => break,
                Err(e) => return shared.error(format!("subscriber {i}: {e}")),
            }
        }
        buf.drain(..used);
        match stream.read_buf(&mut buf).await {
            Ok(0) => return shared.error(format!("subscriber {i}: connection closed")),
            Ok(_) => {}
            Err(e) => return shared.error(format!("subscriber {i}: {e}")),
        }
    }
}

/// A complete server frame at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
struct ServerFrame {
    opcode: u8,
    /// Where its payload is in the buffer.
    payload: std::ops::Range<usize>,
    /// Header and payload.
    len: usize,
}

/// The first complete server frame of `buf`.
fn server_frame(buf: &[u8]) -> Result<Option<ServerFrame>, String> {
    let Some(head) = raw_client::FrameHead::parse(buf) else {
        return Ok(None);
    };
    if head.mask.is_some() {
        return Err("masked frame from the server".into());
    }
    if head.first & 0x80 == 0 {
        return Err("fragmented message from the server".into());
    }
    if head.payload_len > 1 << 20 {
        return Err(format!("frame of {} bytes", head.payload_len));
    }
    let (at, len) = (head.len, head.payload_len as usize);
    Ok((buf.len() >= at + len).then_some(ServerFrame {
        opcode: head.first & 0x0f,
        payload: at..at + len,
        len: at + len,
    }))
}

/// The message with sequence number `seq`: the number, then its low byte.
fn message(seq: u64, size: usize) -> Vec<u8> {
    let mut payload = vec![seq as u8; size];
    payload[..8].copy_from_slice(&seq.to_le_bytes());
    raw_client::frame(true, raw_client::BINARY, &payload)
}

/// Waits until `done` holds, an error is reported, or `timeout` passes.
async fn wait(shared: &Shared, timeout: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while !done() && shared.error_count.get() == 0 {
        if tokio::time::timeout_at(deadline, shared.wake.notified())
            .await
            .is_err()
        {
            return done();
        }
    }
    done()
}

fn failed(shared: &Shared) -> io::Error {
    let kept = shared.errors.borrow().join("; ");
    io::Error::other(format!("{} errors: {kept}", shared.error_count.get()))
}

async fn publish(o: &Options, shared: &Shared, started: Instant) -> io::Result<String> {
    let n = o.subscribers;
    let setup_cap = o.timeout.max(Duration::from_secs(n as u64 / 100 + 10));
    if !wait(shared, setup_cap, || shared.connected.get() == n).await {
        return Err(io::Error::other(format!(
            "{} of {n} subscribers connected in {setup_cap:?}; {}",
            shared.connected.get(),
            failed(shared)
        )));
    }
    let connected_after = started.elapsed();
    let (mut publisher, _) = connect(&o.addr, o.tcp, "/pub", b'P').await?;
    let mut seq = 0;
    // Messages `seq..seq + burst` in one write; the last is awaited.
    let mut send = async |seq: u64| {
        shared.current.set(seq + o.burst - 1);
        shared.have_current.set(0);
        shared.last_at.set(None);
        let frames: Vec<u8> = (seq..seq + o.burst)
            .flat_map(|k| message(k, o.size))
            .collect();
        let sent_at = Instant::now();
        publisher.write_all(&frames).await.map(|()| sent_at)
    };

    // Warm-up: until every subscriber has joined and got a whole message,
    // and at least `WARM_UP` messages. A message that misses a subscriber
    // not yet joined is given up on after a second.
    let warm_up_cap = Instant::now() + setup_cap;
    loop {
        send(seq).await?;
        let all = wait(shared, o.timeout.min(Duration::from_secs(1)), || {
            shared.have_current.get() == n
        })
        .await;
        seq += o.burst;
        if shared.error_count.get() > 0 {
            return Err(failed(shared));
        }
        if all && seq >= WARM_UP {
            break;
        }
        if Instant::now() > warm_up_cap {
            return Err(io::Error::other(format!(
                "after {seq} warm-up messages, {} of {n} subscribers receive them",
                shared.joined.get()
            )));
        }
    }

    let mut latency =
        hdrhistogram::Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("valid bounds");
    let cpu_before = o.server_pid.map(procfs::cpu_times).transpose()?;
    let own_before = procfs::own_cpu_time()?;
    let measured = Instant::now();
    let mut bursts = 0u64;
    loop {
        let done = match o.publishes {
            Some(k) => bursts >= k,
            None => measured.elapsed().as_secs_f64() >= o.seconds && bursts >= o.min_publishes,
        };
        if done {
            break;
        }
        let sent_at = send(seq).await?;
        if !wait(shared, o.timeout, || shared.have_current.get() == n).await {
            if shared.error_count.get() > 0 {
                return Err(failed(shared));
            }
            return Err(io::Error::other(format!(
                "message {}: {} of {n} subscribers received it within {:?}",
                shared.current.get(),
                shared.have_current.get(),
                o.timeout
            )));
        }
        let last = shared.last_at.get().unwrap_or_else(Instant::now);
        latency.saturating_record((last.duration_since(sent_at).as_micros() as u64).max(1));
        bursts += 1;
        seq += o.burst;
    }
    let publishes = bursts * o.burst;
    let deliveries = publishes * n as u64;
    let elapsed = measured.elapsed();
    let cpu = match (o.server_pid, cpu_before) {
        (Some(pid), Some(before)) => Some(procfs::cpu_times(pid)?.since(&before)),
        _ => None,
    };
    let own_cpu = (procfs::own_cpu_time()? - own_before).as_secs_f64();
    let per_delivery = |t: Duration| t.as_secs_f64() * 1e6 / deliveries.max(1) as f64;

    // Anything late — a duplicate, say — would show within this pause.
    tokio::time::sleep(Duration::from_millis(100)).await;
    if shared.error_count.get() > 0 {
        return Err(failed(shared));
    }
    check_counts(shared, seq)?;

    let secs = elapsed.as_secs_f64();
    Ok(serde_json::json!({
        "subscribers": n,
        "size": o.size,
        "tcp": o.tcp,
        "burst": o.burst,
        "bursts": bursts,
        "publishes": publishes,
        "deliveries": deliveries,
        "all_deliveries": shared.delivered.get(),
        "all_publishes": seq,
        "seconds": secs,
        "connect_seconds": connected_after.as_secs_f64(),
        "server_cpu_seconds": cpu.map(|c| c.total().as_secs_f64()),
        "cpu_us_per_delivery": cpu.map(|c| per_delivery(c.total())),
        "user_us_per_delivery": cpu.map(|c| per_delivery(c.user)),
        "system_us_per_delivery": cpu.map(|c| per_delivery(c.system)),
        "p50_us": latency.value_at_quantile(0.50),
        "p99_us": latency.value_at_quantile(0.99),
        "max_us": latency.max(),
        "deliveries_per_second": deliveries as f64 / secs,
        "loadgen_cpu_share": own_cpu / secs,
    })
    .to_string())
}

/// Every subscriber received every message from its first to the last
/// sent (`next` is the one after it), once each.
fn check_counts(shared: &Shared, next: u64) -> io::Result<()> {
    let tallies = shared.tallies.borrow();
    let wrong: Vec<String> = tallies
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            let first = t.first?;
            (t.count != next - first).then(|| {
                format!(
                    "subscriber {i}: {} messages from {first} to {}",
                    t.count,
                    next - 1
                )
            })
        })
        .chain(
            tallies
                .iter()
                .enumerate()
                .filter(|(_, t)| t.first.is_none())
                .map(|(i, _)| format!("subscriber {i}: no message")),
        )
        .collect();
    if wrong.is_empty() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "{} subscribers with a wrong count: {}",
        wrong.len(),
        wrong[..wrong.len().min(ERRORS_KEPT)].join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(subscribers: usize) -> Shared {
        Shared {
            subscribers,
            size: 64,
            current: Cell::new(u64::MAX),
            have_current: Cell::new(0),
            last_at: Cell::new(None),
            joined: Cell::new(0),
            connected: Cell::new(0),
            delivered: Cell::new(0),
            tallies: RefCell::new(vec![Tally::default(); subscribers]),
            errors: RefCell::default(),
            error_count: Cell::new(0),
            wake: Notify::new(),
        }
    }

    /// The payload of the frame `message` builds.
    fn payload(seq: u64) -> Vec<u8> {
        let frame = message(seq, 64);
        frame[frame.len() - 64..].to_vec()
    }

    #[test]
    fn every_message_once_in_order_passes() {
        let s = shared(2);
        for seq in 3..6 {
            s.current.set(seq);
            s.received(0, &payload(seq));
            s.received(1, &payload(seq));
            assert_eq!(s.have_current.get(), 2);
            s.have_current.set(0);
        }
        assert_eq!(s.error_count.get(), 0);
        assert!(check_counts(&s, 6).is_ok());
    }

    #[test]
    fn a_gap_a_duplicate_and_a_wrong_payload_fail() {
        let s = shared(1);
        s.received(0, &payload(0));
        s.received(0, &payload(2));
        assert_eq!(s.error_count.get(), 1, "a gap");
        let s = shared(1);
        s.received(0, &payload(0));
        s.received(0, &payload(0));
        assert_eq!(s.error_count.get(), 1, "a duplicate");
        let s = shared(1);
        let mut wrong = payload(0);
        wrong[63] = 9;
        s.received(0, &wrong);
        assert_eq!(s.error_count.get(), 1, "a wrong payload");
    }

    #[test]
    fn a_count_short_of_the_last_message_fails() {
        let s = shared(2);
        for seq in 0..3 {
            s.received(0, &payload(seq));
        }
        s.received(1, &payload(0));
        s.received(1, &payload(1));
        assert!(
            check_counts(&s, 3).is_err(),
            "one message missing at the end"
        );
        let s = shared(2);
        s.received(0, &payload(0));
        assert!(check_counts(&s, 1).is_err(), "a subscriber with nothing");
    }

    #[test]
    fn server_frames_are_whole_or_nothing() {
        let mut frame = vec![0x82, 126, 0, 200];
        frame.extend_from_slice(&[7; 200]);
        let whole = ServerFrame {
            opcode: 2,
            payload: 4..204,
            len: 204,
        };
        assert_eq!(server_frame(&frame), Ok(Some(whole)));
        assert_eq!(server_frame(&frame[..100]), Ok(None));
        assert!(server_frame(&[0x82, 0x85, 0, 0, 0, 0]).is_err(), "masked");
    }
}
