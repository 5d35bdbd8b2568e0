//! The load generator: drives a websocket (or, with `--raw`, TCP) echo
//! server and reports messages/s, MB/s, round-trip latency and — given the
//! server's PID — the server's CPU time per message. With `--memory` it
//! runs the idle-memory measurement instead.
//!
//! ```text
//! loadgen --addr 127.0.0.1:9001 --connections 64 --size 1k --text \
//!         --in-flight 1 --warmup 1 --duration 3 --server-pid 1234
//! loadgen --memory --addr 127.0.0.1:9001 --connections 10000 --server-pid 1234
//! loadgen --addr 127.0.0.1:9001 --connections 64 --size 16k --text \
//!         --content json --deflate --server-pid 1234
//! loadgen --addr 127.0.0.1:9001 --connections 64 --size 1k --tls --server-pid 1234
//! ```
//!
//! With `--deflate` it offers permessage-deflate ([`deflate::OFFER`]);
//! if the server agrees, every message goes out compressed and every
//! compressed echo is inflated (the first `--verify` compared); if it declines,
//! messages go out plain and the report says "not negotiated". With
//! `--tls` every connection is TLS 1.3 ([`wsroute_bench::tls`]), the
//! websocket (or, with `--raw`, the echoed bytes) inside it.
//!
//! It prints a few lines for people, then one JSON line (the last line of
//! its output; `--json` prints only that) that the runner reads.

mod deflate;
mod echo_load;
mod json;
mod memory;
mod wire;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use wsroute_bench::procfs;
use wsroute_bench::report::{DeflateOutcome, LoadReport};

use deflate::Agreed;
use echo_load::{MEASURE, Plan, STOP, Tally};
use wire::{Content, MessageShape};

const USAGE: &str = "\
usage: loadgen --addr HOST:PORT [options]
  --raw                 plain TCP echo: no handshake, replies are the sent frames
  --connections N       connections (default 64)
  --size BYTES          payload size, e.g. 16, 1k, 64k (default 16)
  --text | --binary     message type (default binary)
  --content C           payload: pattern (default; ASCII cycle or byte ramp) or json
                        (realistic JSON from a fixed seed, exactly --size bytes)
  --deflate             offer permessage-deflate (client_no_context_takeover,
                        client_max_window_bits); compress if agreed. With --raw:
                        send the frames compressed as if agreed
  --tls                 over TLS 1.3 (rustls, ring; any server certificate taken)
  --in-flight K         messages in flight per connection (default 1)
  --warmup S            seconds before measuring (default 1)
  --duration S          seconds measured (default 5)
  --threads T           threads, each with its own connections (default 1)
  --verify N            replies per connection compared byte for byte, inflated
                        first if compressed (default 4)
  --server-pid PID      report the server's CPU time per message
  --json                print only the JSON line
  --memory              the idle-memory run instead (needs --server-pid)
  --settle S            memory run: seconds to wait before each reading (default 1)";

#[derive(Debug)]
struct Args {
    addr: String,
    raw: bool,
    connections: usize,
    size: usize,
    text: bool,
    content: Content,
    deflate: bool,
    tls: bool,
    in_flight: usize,
    warmup: f64,
    duration: f64,
    threads: usize,
    verify: u64,
    server_pid: Option<u32>,
    json_only: bool,
    memory: bool,
    settle: f64,
}

fn main() {
    let args = parse_args().unwrap_or_else(|problem| {
        eprintln!("{problem}\n{USAGE}");
        std::process::exit(2)
    });
    let result = if args.memory {
        memory_run(&args)
    } else {
        load_run(&args)
    };
    if let Err(e) = result {
        eprintln!("loadgen: {e}");
        std::process::exit(1);
    }
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        addr: String::new(),
        raw: false,
        connections: 64,
        size: 16,
        text: false,
        content: Content::Pattern,
        deflate: false,
        tls: false,
        in_flight: 1,
        warmup: 1.0,
        duration: 5.0,
        threads: 1,
        verify: 4,
        server_pid: None,
        json_only: false,
        memory: false,
        settle: 1.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => args.addr = value()?,
            "--raw" => args.raw = true,
            "--connections" => args.connections = number(&value()?)?,
            "--size" => args.size = parse_size(&value()?)?,
            "--text" => args.text = true,
            "--binary" => args.text = false,
            "--content" => {
                args.content = match value()?.as_str() {
                    "pattern" => Content::Pattern,
                    "json" => Content::Json,
                    other => return Err(format!("--content takes pattern or json, not `{other}`")),
                }
            }
            "--deflate" => args.deflate = true,
            "--tls" => args.tls = true,
            "--in-flight" => args.in_flight = number::<usize>(&value()?)?.max(1),
            "--warmup" => args.warmup = number(&value()?)?,
            "--duration" => args.duration = number(&value()?)?,
            "--threads" => args.threads = number::<usize>(&value()?)?.max(1),
            "--verify" => args.verify = number(&value()?)?,
            "--server-pid" => args.server_pid = Some(number(&value()?)?),
            "--json" => args.json_only = true,
            "--memory" => args.memory = true,
            "--settle" => args.settle = number(&value()?)?,
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0)
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if args.addr.is_empty() {
        return Err("--addr is required".into());
    }
    if args.memory && args.server_pid.is_none() {
        return Err("--memory needs --server-pid".into());
    }
    if args.tls && args.memory {
        return Err("--memory is measured without TLS: drop --tls".into());
    }
    // A frame's header is at most 14 bytes.
    if args.tls && args.in_flight * (args.size + 14) > echo_load::TLS_MAX_IN_FLIGHT {
        return Err(format!(
            "--tls keeps at most {} KiB of frames in flight per connection",
            echo_load::TLS_MAX_IN_FLIGHT / 1024
        ));
    }
    Ok(args)
}

fn number<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("not a number: `{s}`"))
}

/// `16`, `1k`, `1KiB`, `64k`, `1m`: binary multiples.
fn parse_size(s: &str) -> Result<usize, String> {
    let lower = s.to_ascii_lowercase();
    let digits = lower.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = match &lower[digits.len()..] {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1024,
        "m" | "mib" | "mb" => 1024 * 1024,
        _ => return Err(format!("not a size: `{s}`")),
    };
    Ok(number::<usize>(digits)? * unit)
}

/// A current-thread runtime with I/O and timers: the load generator is
/// pinned to one core, and one thread wastes nothing on hand-offs.
fn runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

fn load_run(args: &Args) -> io::Result<()> {
    raise_fd_limit(args.connections + 64);
    let shape = MessageShape {
        size: args.size,
        text: args.text,
        raw: args.raw,
        content: args.content,
        // Raw TCP has no handshake: the frames go out as a client that
        // had the offer accepted would send them.
        compress: (args.raw && args.deflate).then_some(15),
    };
    let phase = Arc::new(AtomicU8::new(echo_load::WARMUP));
    let (ready_tx, ready_rx) = mpsc::channel::<io::Result<()>>();
    let mut workers = Vec::new();
    for thread in 0..args.threads {
        // Spread connections evenly; the first threads take the remainder.
        let share =
            args.connections / args.threads + usize::from(thread < args.connections % args.threads);
        let plan = Plan {
            addr: args.addr.clone(),
            shape: shape.clone(),
            connections: share,
            in_flight: args.in_flight,
            verify: args.verify,
            offer_deflate: args.deflate && !args.raw,
            tls: args.tls,
        };
        let phase = phase.clone();
        let ready_tx = ready_tx.clone();
        workers.push(std::thread::spawn(move || -> io::Result<Tally> {
            let opened = runtime().and_then(|rt| {
                let streams = rt.block_on(echo_load::open_all(&plan))?;
                Ok((rt, streams))
            });
            let (rt, streams) = match opened {
                Ok(opened) => {
                    let _ = ready_tx.send(Ok(()));
                    opened
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                    return Err(e);
                }
            };
            rt.block_on(echo_load::drive(&plan, streams, phase))
        }));
    }
    drop(ready_tx);
    for _ in 0..args.threads {
        // A closed channel means a thread died before reporting: its error
        // comes out of `join` below.
        if let Ok(Err(e)) = ready_rx.recv() {
            phase.store(STOP, Ordering::Relaxed);
            return Err(io::Error::new(e.kind(), format!("connecting: {e}")));
        }
    }

    std::thread::sleep(Duration::from_secs_f64(args.warmup));
    let server_cpu_before = args.server_pid.map(procfs::cpu_time).transpose()?;
    let own_cpu_before = procfs::own_cpu_time()?;
    let started = Instant::now();
    phase.store(MEASURE, Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs_f64(args.duration));
    phase.store(STOP, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let own_cpu = (procfs::own_cpu_time()? - own_cpu_before).as_secs_f64();
    let server_cpu = match (args.server_pid, server_cpu_before) {
        (Some(pid), Some(before)) => Some((procfs::cpu_time(pid)? - before).as_secs_f64()),
        _ => None,
    };

    let mut total = Tally::new();
    for worker in workers {
        let tally = worker
            .join()
            .map_err(|_| io::Error::other("a load thread panicked"))??;
        total.messages += tally.messages;
        total.wire_sent += tally.wire_sent;
        total.wire_received += tally.wire_received;
        if total.deflate.is_none() {
            total.deflate = tally.deflate;
        }
        total
            .latency
            .add(&tally.latency)
            .map_err(|e| io::Error::other(format!("{e:?}")))?;
    }

    let messages = total.messages;
    let us = |q: f64| total.latency.value_at_quantile(q) as f64 / 1000.0;
    let report = LoadReport {
        connections: args.connections,
        size: args.size,
        text: args.text,
        in_flight: args.in_flight,
        duration_s: elapsed,
        messages,
        msgs_per_s: messages as f64 / elapsed,
        mb_per_s: (messages as f64 * args.size as f64) / elapsed / 1e6,
        p50_us: us(0.5),
        p99_us: us(0.99),
        p999_us: us(0.999),
        server_cpu_us_per_msg: server_cpu.map(|cpu| cpu * 1e6 / messages.max(1) as f64),
        server_cpu_util: server_cpu.map(|cpu| cpu / elapsed),
        loadgen_cpu_util: own_cpu / elapsed,
        wire_sent_per_msg: Some(total.wire_sent as f64 / messages.max(1) as f64),
        wire_received_per_msg: Some(total.wire_received as f64 / messages.max(1) as f64),
        deflate: deflate_outcome(args, total.deflate.as_ref()),
    };
    if !args.json_only {
        print_human(args, &report);
    }
    println!(
        "{}",
        serde_json::to_string(&report).map_err(io::Error::other)?
    );
    Ok(())
}

/// The report's view of the offer: what the server answered, and whether
/// the messages went out compressed.
fn deflate_outcome(args: &Args, agreed: Option<&Agreed>) -> Option<DeflateOutcome> {
    if !args.deflate {
        return None;
    }
    Some(DeflateOutcome {
        offered: deflate::OFFER.to_owned(),
        answer: if args.raw {
            Some("(raw TCP: no handshake, frames compressed as if agreed)".to_owned())
        } else {
            agreed.map(|a| a.answer.clone())
        },
        client_compressed: args.raw || agreed.is_some(),
    })
}

fn print_human(args: &Args, r: &LoadReport) {
    let kind = if args.raw {
        "raw TCP"
    } else if args.text {
        "text"
    } else {
        "binary"
    };
    println!(
        "loadgen: {} connections × {} B {kind}, {} in flight, {:.1} s after {:.1} s warm-up",
        r.connections, r.size, r.in_flight, r.duration_s, args.warmup
    );
    println!(
        "  messages/s  {:.0}   ({:.2} MB/s)",
        r.msgs_per_s, r.mb_per_s
    );
    println!(
        "  round trip  p50 {:.1} µs   p99 {:.1} µs   p99.9 {:.1} µs",
        r.p50_us, r.p99_us, r.p999_us
    );
    if let (Some(per_msg), Some(util)) = (r.server_cpu_us_per_msg, r.server_cpu_util) {
        println!(
            "  server CPU  {per_msg:.3} µs/message ({:.0}% of a core)",
            util * 100.0
        );
    }
    println!("  loadgen CPU {:.0}% of a core", r.loadgen_cpu_util * 100.0);
    if let (Some(sent), Some(received)) = (r.wire_sent_per_msg, r.wire_received_per_msg) {
        println!("  wire bytes  {sent:.1} sent, {received:.1} received per message");
    }
    if let Some(d) = &r.deflate {
        println!("  deflate     offered `{}`", d.offered);
        println!("              answer  `{}`", d.answer_or_declined());
    }
}

fn memory_run(args: &Args) -> io::Result<()> {
    raise_fd_limit(args.connections + 64);
    let pid = args.server_pid.expect("checked by parse_args");
    let (mut report, agreed) = runtime()?.block_on(memory::run(
        &args.addr,
        args.raw,
        args.deflate,
        args.connections,
        pid,
        Duration::from_secs_f64(args.settle),
    ))?;
    report.deflate = deflate_outcome(args, agreed.as_ref());
    if !args.json_only {
        println!(
            "memory: {} connections, server RSS {} KiB before; KiB per connection: \
             idle {:.2}, after 16 B {:.2}, after 64 KiB {:.2}",
            report.connections,
            report.rss_before_kib,
            report.idle_kib_per_conn,
            report.after_16b_kib_per_conn,
            report.after_64k_kib_per_conn
        );
        if let Some(d) = &report.deflate {
            println!("  deflate answer `{}`", d.answer_or_declined());
        }
    }
    println!(
        "{}",
        serde_json::to_string(&report).map_err(io::Error::other)?
    );
    Ok(())
}

/// Raises the soft open-file limit to at least `needed` (up to the hard
/// limit); the runner raises the hard limit before starting us.
fn raise_fd_limit(needed: usize) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct passed in.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0
            && (limit.rlim_cur as usize) < needed
        {
            limit.rlim_cur = limit.rlim_max.min(needed as libc::rlim_t);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
