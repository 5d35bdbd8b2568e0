//! Soak: holds many connections with mixed traffic for minutes against a
//! wsroute server, lets them all go, and checks that the server is back
//! where it started — memory, file descriptors, connections, tasks.
//!
//! ```text
//! soak [--server 'target/release/wsroute-hand-echo'] [--connections 10000]
//!      [--duration 180] [--settle-cap 60]
//! ```
//!
//! The server gets `--addr 127.0.0.1:PORT` appended and must serve
//! websockets on `/` and `GET /stats` (`{"open_connections", "alive_tasks"}`,
//! as `wsroute-hand-echo` does). Connections are, by index: 40 % echo
//! clients (64 B a second, replies read), 30 % idle (an unsolicited pong
//! every 20 s, so that keepalive does not drop them), 10 % slow readers
//! (4 KiB a second, never read), 10 % abrupt resets (SO_LINGER 0 and close
//! every 5–15 s, then reconnect), 10 % polite reconnects (close 1000 every
//! 5–15 s, then reconnect).

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use wsroute_bench::procfs;
use wsroute_bench::raw_client::{BINARY, close_frame, frame, upgrade};
use wsroute_bench::spawned::{ServerCommand, Spawned, raise_own_fd_limit};

#[derive(Debug, Clone, Copy)]
enum Kind {
    Echo,
    Idle,
    SlowReader,
    Reset,
    Reconnect,
}

fn kind(i: usize) -> Kind {
    match i % 10 {
        0..=3 => Kind::Echo,
        4..=6 => Kind::Idle,
        7 => Kind::SlowReader,
        8 => Kind::Reset,
        _ => Kind::Reconnect,
    }
}

#[derive(Debug, Default)]
struct Counters {
    echoes: AtomicU64,
    resets: AtomicU64,
    reconnects: AtomicU64,
    errors: AtomicU64,
}

#[derive(Debug, serde::Deserialize)]
struct Stats {
    open_connections: usize,
    alive_tasks: usize,
}

async fn stats(addr: &str) -> io::Result<Stats> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(
        format!("GET /stats HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .map_err(|_| io::Error::other("/stats timed out"))??;
    let text = String::from_utf8_lossy(&buf);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).map_err(|e| io::Error::other(format!("/stats: {e}: {text}")))
}

/// A small deterministic spread of periods, so connections do not act in
/// lockstep.
fn period(i: usize, min_s: u64, spread_s: u64) -> Duration {
    Duration::from_millis(min_s * 1000 + (i as u64 * 7919) % (spread_s * 1000))
}

async fn client(
    i: usize,
    addr: Arc<String>,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    connecting: Arc<Semaphore>,
) {
    let k = kind(i);
    while !stop.load(Ordering::Relaxed) {
        let permit = connecting.acquire().await;
        let conn = upgrade(&addr, "/").await;
        drop(permit);
        let Ok((mut s, _)) = conn else {
            counters.errors.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        let lifetime = match k {
            Kind::Reset | Kind::Reconnect => period(i, 5, 10),
            _ => Duration::MAX,
        };
        let born = Instant::now();
        let tick = period(i, 1, 1);
        let message = frame(true, BINARY, &[b'e'; 64]);
        let slow = frame(true, BINARY, &[b's'; 4096]);
        // An unsolicited pong (RFC 6455 §5.5.3) every 20 s keeps an idle
        // client alive under a keepalive (30 s ping interval by default)
        // without it having to read: the server never needs to ping it.
        let heartbeat = frame(true, 0xA, &[]);
        let mut last_heartbeat = Instant::now();
        let mut buf = vec![0; 4096];
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            if born.elapsed() >= lifetime {
                break;
            }
            tokio::time::sleep(tick).await;
            let ok = match k {
                Kind::Echo => {
                    s.write_all(&message).await.is_ok()
                        && matches!(
                            tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await,
                            Ok(Ok(n)) if n > 0
                        )
                }
                Kind::SlowReader => {
                    // Never reads; a write that cannot go out is fine.
                    let _ =
                        tokio::time::timeout(Duration::from_millis(10), s.write_all(&slow)).await;
                    true
                }
                Kind::Idle if last_heartbeat.elapsed() >= Duration::from_secs(20) => {
                    last_heartbeat = Instant::now();
                    s.write_all(&heartbeat).await.is_ok()
                }
                _ => true,
            };
            if !ok {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                break;
            }
            if matches!(k, Kind::Echo) {
                counters.echoes.fetch_add(1, Ordering::Relaxed);
            }
        }
        match k {
            Kind::Reset => {
                let _ = s.set_zero_linger();
                counters.resets.fetch_add(1, Ordering::Relaxed);
            }
            Kind::Reconnect => {
                let _ = s.write_all(&close_frame(1000)).await;
                let _ =
                    tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut Vec::new()))
                        .await;
                counters.reconnects.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

/// The server's state once every connection of a round has gone.
struct Settled {
    rss: u64,
    fds: usize,
    stats: Stats,
}

/// Runs `connections` mixed clients for `duration`, printing progress
/// every 10 s, then drops them all; returns the server's peak RSS.
fn soak_round(
    rt: &tokio::runtime::Runtime,
    addr: &Arc<String>,
    pid: u32,
    connections: usize,
    duration: Duration,
) -> io::Result<u64> {
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Counters::default());
    let connecting = Arc::new(Semaphore::new(200));
    let started = Instant::now();
    rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..connections {
            tasks.spawn(client(
                i,
                addr.clone(),
                stop.clone(),
                counters.clone(),
                connecting.clone(),
            ));
        }
        while started.elapsed() < duration {
            let left = duration.saturating_sub(started.elapsed());
            tokio::time::sleep(Duration::from_secs(10).min(left)).await;
            let s = stats(addr).await;
            println!(
                "{:>4.0} s: RSS {}, {} fds, {}, {} echoes, {} resets, {} reconnects, {} errors",
                started.elapsed().as_secs_f64(),
                mib(procfs::rss_kib(pid).unwrap_or(0)),
                procfs::fd_count(pid).unwrap_or(0),
                match s {
                    Ok(s) => format!("{} open, {} tasks", s.open_connections, s.alive_tasks),
                    Err(e) => format!("stats: {e}"),
                },
                counters.echoes.load(Ordering::Relaxed),
                counters.resets.load(Ordering::Relaxed),
                counters.reconnects.load(Ordering::Relaxed),
                counters.errors.load(Ordering::Relaxed),
            );
        }
        stop.store(true, Ordering::Relaxed);
        // Dropping the tasks drops their streams: every connection goes.
        tasks.shutdown().await;
    });
    procfs::peak_rss_kib(pid)
}

/// Waits (up to `cap`) until descriptors, connections and tasks are back
/// to the start's, then reads RSS; returns it with the time it took.
fn settle(
    rt: &tokio::runtime::Runtime,
    addr: &str,
    pid: u32,
    fds_start: usize,
    stats_start: &Stats,
    cap: Duration,
) -> io::Result<(Settled, Duration)> {
    let released = Instant::now();
    let mut fds = procfs::fd_count(pid)?;
    let mut stats_now = rt.block_on(stats(addr))?;
    while released.elapsed() < cap
        && (fds > fds_start
            || stats_now.open_connections > 0
            || stats_now.alive_tasks > stats_start.alive_tasks)
    {
        std::thread::sleep(Duration::from_millis(500));
        fds = procfs::fd_count(pid)?;
        stats_now = rt.block_on(stats(addr))?;
    }
    let waited = released.elapsed();
    // Give glibc a moment; RSS is read once the server holds nothing.
    std::thread::sleep(Duration::from_secs(1));
    let rss = procfs::rss_kib(pid)?;
    println!(
        "settled ({:.1} s after release): RSS {}, {fds} fds, {} open connections, {} alive tasks",
        waited.as_secs_f64(),
        mib(rss),
        stats_now.open_connections,
        stats_now.alive_tasks
    );
    Ok((
        Settled {
            rss,
            fds,
            stats: stats_now,
        },
        waited,
    ))
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn main() -> io::Result<()> {
    let mut server = ServerCommand::parse("target/release/wsroute-hand-echo").expect("default");
    let mut connections = 10_000usize;
    let mut duration = Duration::from_secs(180);
    let mut settle_cap = Duration::from_secs(60);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--server" => server = ServerCommand::parse(&value).expect("--server PROGRAM"),
            "--connections" => connections = value.parse().expect("--connections N"),
            "--duration" => duration = Duration::from_secs(value.parse().expect("--duration S")),
            "--settle-cap" => {
                settle_cap = Duration::from_secs(value.parse().expect("--settle-cap S"))
            }
            _ => {
                eprintln!(
                    "usage: soak [--server 'PROGRAM ARGS'] [--connections N] [--duration S] [--settle-cap S]"
                );
                std::process::exit(2)
            }
        }
    }
    let limit = connections as u64 + 1024;
    let own = raise_own_fd_limit(limit);
    if own < connections as u64 + 64 {
        eprintln!("soak: open-file limit {own} is too low for {connections} connections");
        std::process::exit(1)
    }
    server.nofile = Some(limit);
    let _ = std::fs::create_dir_all("target/soak");
    let mut spawned = Spawned::start(&server, std::path::Path::new("target/soak/server.log"))?;
    let pid = spawned.pid;
    let addr = Arc::new(spawned.addr.to_string());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    // Warm-up: a few connections come and go so that lazily built state
    // (the router, the allocator's arenas) is part of the baseline.
    rt.block_on(async {
        for _ in 0..50 {
            if let Ok((mut s, _)) = upgrade(&addr, "/").await {
                let _ = s.write_all(&close_frame(1000)).await;
                let _ = s.read_to_end(&mut Vec::new()).await;
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    });
    let rss_start = procfs::rss_kib(pid)?;
    let fds_start = procfs::fd_count(pid)?;
    let stats_start = rt.block_on(stats(&addr))?;
    println!(
        "soak: {connections} connections for {} s against {} (pid {pid})",
        duration.as_secs(),
        server.program.display()
    );
    println!(
        "start: RSS {}, {fds_start} fds, {} open connections, {} alive tasks",
        mib(rss_start),
        stats_start.open_connections,
        stats_start.alive_tasks
    );

    // Round 1 brings the server to its working size; round 2 must end
    // where round 1 ended. glibc keeps what a first round freed (the
    // bench README's RSS caveat), so "before any connection" cannot be the
    // baseline of a leak check; growth from one round to the next is.
    // Both rounds equally long: slow readers pile up more the longer a
    // round runs, and a longer second round would grow the heap for that
    // alone.
    let warm = duration;
    println!("round 1 ({} s):", warm.as_secs());
    let peak_1 = soak_round(&rt, &addr, pid, connections, warm)?;
    let (base, _) = settle(&rt, &addr, pid, fds_start, &stats_start, settle_cap)?;
    println!("round 2 ({} s):", duration.as_secs());
    let rss_peak = soak_round(&rt, &addr, pid, connections, duration)?.max(peak_1);
    let (end, released) = settle(&rt, &addr, pid, fds_start, &stats_start, settle_cap)?;
    let (rss_end, fds_end, stats_end) = (end.rss, end.fds, end.stats);
    let rss_base = base.rss;
    spawned.kill();

    println!("end: settled {:.1} s after release", released.as_secs_f64());
    println!(
        "RSS before any connection {} / after round 1 {} / peak {} / after round 2 {}",
        mib(rss_start),
        mib(rss_base),
        mib(rss_peak),
        mib(rss_end)
    );
    let checks = [
        (
            "RSS after round 2 within 10 % of after round 1",
            rss_end as f64 <= rss_base as f64 * 1.10,
        ),
        ("fds back to baseline", fds_end <= fds_start),
        ("open connections 0", stats_end.open_connections == 0),
        (
            "alive tasks back to baseline",
            stats_end.alive_tasks <= stats_start.alive_tasks,
        ),
    ];
    let mut all = true;
    for (what, ok) in checks {
        println!("{} {what}", if ok { "PASS" } else { "FAIL" });
        all &= ok;
    }
    std::process::exit(if all { 0 } else { 1 })
}
