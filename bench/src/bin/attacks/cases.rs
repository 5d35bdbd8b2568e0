//! The attacks of issue 8, each against its own fresh server. Each ends
//! with a SIGINT while the attack's connections are still there, and the
//! time until the server exits.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::timeout;

use wsroute_bench::procfs;
use wsroute_bench::raw_client::{
    self, BINARY, CONTINUATION, Ending, FrameScanner, TEXT, frame, frame_header, read_answer,
    read_until_close, tally, upgrade, upgrade_request,
};
use wsroute_bench::spawned::Spawned;

use crate::{Ctx, Row};

type Boxed<'a> = Pin<Box<dyn Future<Output = io::Result<Row>> + 'a>>;

type Attack = fn(&Ctx) -> Boxed<'_>;

pub(crate) const ALL: &[(&str, Attack)] = &[
    ("A1", a1),
    ("A2", a2),
    ("A2b", a2b),
    ("A3", a3),
    ("A4", a4),
    ("A5a", a5a),
    ("A5b", a5b),
    ("A6", a6),
    ("A7", a7),
    ("A8", a8),
    ("A9a", a9a),
    ("A9b", a9b),
    ("A10", a10),
];

const IDLE: Duration = Duration::from_secs(2);

fn peak(server: &Spawned) -> Option<u64> {
    procfs::peak_rss_kib(server.pid).ok()
}

/// Opens `n` upgraded connections on `path`.
async fn upgrade_many(addr: &str, path: &str, n: usize) -> io::Result<Vec<TcpStream>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(upgrade(addr, path).await?.0);
    }
    Ok(out)
}

/// Reads every stream until its close frame, EOF or `IDLE` of silence.
async fn endings(streams: Vec<TcpStream>) -> String {
    let mut set = JoinSet::new();
    for mut s in streams {
        set.spawn(async move {
            let mut scanner = FrameScanner::default();
            read_until_close(&mut s, &mut scanner, IDLE, Duration::from_secs(20)).await
        });
    }
    let mut all = Vec::new();
    while let Some(e) = set.join_next().await {
        all.push(e.unwrap_or(Ending::Open));
    }
    tally(&all)
}

/// Stop reading: each client sends messages it never reads the echoes of.
fn a1(ctx: &Ctx) -> Boxed<'_> {
    Box::pin(async move {
        let n = ctx.size(500, 100);
        let per_client = ctx.size(1024, 256);
        let mut server = ctx.start(false, "A1")?;
        let addr = server.addr.to_string();
        let streams = upgrade_many(&addr, "/", n).await?;
        let burst = frame(true, BINARY, &[b'x'; 1024]).repeat(per_client);
        let mut set = JoinSet::new();
        for mut s in streams {
            let burst = burst.clone();
            set.spawn(async move {
                let _ = timeout(Duration::from_secs(10), s.write_all(&burst)).await;
                s
            });
        }
        let mut streams = Vec::new();
        while let Some(s) = set.join_next().await {
            streams.extend(s.ok());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss = peak(&server);
        let exit = server.interrupt(ctx.exit_cap);
        let close = endings(streams).await;
        Ok(Row {
            id: "A1",
            server: "echo",
            did: format!("{n} clients sent {per_client} × 1 KiB each, never read; SIGINT"),
            rss_peak_kib: rss,
            exit: Some(exit),
            close,
            ..Row::default()
        })
    })
}

/// Half an upgrade request's head, then SIGINT.
fn a2(ctx: &Ctx) -> Boxed<'_> {
    Box::pin(async move {
        let mut server = ctx.start(false, "A2")?;
        let mut s = TcpStream::connect(server.addr).await?;
        s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: webs")
            .await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let exit = server.interrupt(ctx.exit_cap);
        Ok(Row {
            id: "A2",
            server: "echo",
            did: "1 connection, half-sent request head; SIGINT 1 s later".into(),
            exit: Some(exit),
            ..Row::default()
        })
    })
}

/// Half a head and nothing more: how long the server keeps it.
fn a2b(ctx: &Ctx) -> Boxed<'_> {
    Box::pin(async move {
        let mut server = ctx.start(false, "A2b")?;
        let mut s = TcpStream::connect(server.addr).await?;
        s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: webs")
            .await?;
        let started = Instant::now();
        let cap = ctx.hold_cap.min(Duration::from_secs(ctx.size(30, 15)));
        let answer = read_answer(&mut s, cap).await;
        let held = match answer {
            raw_client::Answer::Silent => format!("> {:.0} s (still open)", cap.as_secs_f64()),
            _ => format!("closed after {:.1} s", started.elapsed().as_secs_f64()),
        };
        let exit = server.interrupt(ctx.exit_cap);
        Ok(Row {
            id: "A2b",
            server: "echo",
            did: "1 connection, half-sent request head, then waits (no SIGINT until the end)"
                .into(),
            exit: Some(exit),
            held,
            http: answer.to_string(),
            ..Row::default()
        })
    })
}

/// One client floods and never reads.
fn a3(ctx: &Ctx) -> Boxed<'_> {
    Box::pin(async move {
        let mut server = ctx.start(false, "A3")?;
        let (mut s, _) = upgrade(&server.addr.to_string(), "/").await?;
        let messages = 20_000;
        let one = frame(true, BINARY, &[b'x'; 1024]);
        let mut written = 0usize;
        let deadline = Instant::now() + Duration::from_secs(ctx.size(15, 8));
        for chunk in one.repeat(messages).chunks(64 * 1024) {
            let left = deadline.saturating_duration_since(Instant::now());
            match timeout(left, s.write_all(chunk)).await {
                Ok(Ok(())) => written += chunk.len(),
                _ => break,
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss = peak(&server);
        let exit = server.interrupt(ctx.exit_cap);
        let close = endings(vec![s]).await;
        Ok(Row {
            id: "A3",
            server: "echo",
            did: "1 client sent 20k × 1 KiB, never read; SIGINT".into(),
            rss_peak_kib: rss,
            exit: Some(exit),
            close,
            note: format!("{:.1} MiB written", written as f64 / 1048576.0),
            ..Row::default()
        })
    })
}

/// Upgraded, then silent: does the server ever let them go?
fn a4(ctx: &Ctx) -> Boxed<'_> {
    Box::pin(async move {
        let n = ctx.size(350, 100);
        let mut server = ctx.start(false, "A4")?;
        let port = server.addr.port();
        let streams = upgrade_many(&server.addr.to_string(), "/", n).await?;
        let started = Instant::now();
        let open = || -> usize {
            procfs::connections_on_port(port)
                .map(|c| c.iter().map(|(_, n)| n).sum())
                .unwrap_or(0)
        };
        let mut first_drop = None;
        let mut last = open();
        while started.elapsed() < ctx.hold_cap && last > 0 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            last = open();
            if last < n && first_drop.is_none() {
                first_drop = Some(started.elapsed());
            }
        }
        let held = match (last, first_drop) {
            (0, Some(first)) => format!(
                "all dropped by {:.0} s (first at {:.0} s)",
                started.elapsed().as_secs_f64(),
                first.as_secs_f64()
            ),
            (left, _) => format!(
                "{left} of {n} still open at {:.0} s",
                started.elapsed().as_secs_f64()
            ),
        };
        let exit = server.interrupt(ctx.exit_cap);
        let close = endings(streams).await;
        Ok(Row {
            id: "A4",
            server: "echo",
            did: format!("{n} upgraded clients silent (no byte, no pong); dead-peer case = silent"),
            rss_peak_kib: None,
            exit: Some(exit),
            held,
            close,
            ..Row::default()
        })
    })
}

/// Announce a large message, trickle its payload, watch for a close.
async fn trickle(
    mut s: TcpStream,
    announce: u64,
    chunk: usize,
    every: Duration,
    total: u64,
    until: Instant,
) -> (Ending, u64) {
    let mut sent = 0u64;
    if s.write_all(&frame_header(true, BINARY, announce))
        .await
        .is_err()
    {
        return (Ending::Reset, 0);
    }
    let (mut rd, mut wr) = s.split();
    let data = vec![b'x'; chunk];
    let mut scanner = FrameScanner::default();
    let reader = read_until_close_half(&mut rd, &mut scanner, until);
    tokio::pin!(reader);
    let writer = async {
        while sent < total && Instant::now() < until {
            let n = (chunk as u64).min(total - sent) as usize;
            if wr.write_all(&data[..n]).await.is_err() {
                break;
            }
            sent += n as u64;
            if !every.is_zero() {
                tokio::time::sleep(every).await;
            }
        }
        std::future::pending::<()>().await;
    };
    let ending = tokio::select! {
        e = &mut reader => e,
        () = writer => Ending::Open,
        () = tokio::time::sleep_until(until.into()) => Ending::Open,
    };
    (ending, sent)
}

async fn read_until_close_half(
    rd: &mut tokio::net::tcp::ReadHalf<'_>,
    scanner: &mut FrameScanner,
    until: Instant,
) -> Ending {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0; 16 * 1024];
    loop {
        if let Some(code) = scanner.close_code {
            return Ending::Close(code);
        }
        match tokio::time::timeout_at(until.into(), rd.read(&mut buf)).await {
            Err(_) => return Ending::Open,
            Ok(Ok(0)) => return Ending::Eof,
            Ok(Err(_)) => return Ending::Reset,
            Ok(Ok(n)) => scanner.feed(&buf[..n]),
        }
    }
}

/// A5's shape: how many clients, what they announce and how they send it.
#[derive(Debug, Clone, Copy)]
struct Trickle {
    clients: usize,
    announce: u64,
    chunk: usize,
    every: Duration,
    total: u64,
    secs: u64,
}

async fn trickle_attack(ctx: &Ctx, id: &'static str, t: Trickle) -> io::Result<Row> {
    let Trickle {
        clients,
        announce,
        chunk,
        every,
        total,
        secs,
    } = t;
    let mut server = ctx.start(false, id)?;
    let addr = server.addr.to_string();
    let streams = upgrade_many(&addr, "/", clients).await?;
    let until = Instant::now() + Duration::from_secs(secs);
    let mut set = JoinSet::new();
    for s in streams {
        set.spawn(trickle(s, announce, chunk, every, total, until));
    }
    let mut ends = Vec::new();
    let mut sent = 0;
    while let Some(r) = set.join_next().await {
        let (e, n) = r.unwrap_or((Ending::Open, 0));
        ends.push(e);
        sent += n;
    }
    let rss = peak(&server);
    let exit = server.interrupt(ctx.exit_cap);
    Ok(Row {
        id,
        server: "echo",
        did: format!(
            "{clients} clients announce {} MiB, send up to {:.1} MiB each ({})",
            announce >> 20,
            total as f64 / 1048576.0,
            if every.is_zero() {
                "at once".to_owned()
            } else {
                format!("{} KiB every {} ms", chunk / 1024, every.as_millis())
            }
        ),
        rss_peak_kib: rss,
        exit: Some(exit),
        close: tally(&ends),
        note: format!("{:.0} MiB sent in all", sent as f64 / 1048576.0),
        ..Row::default()
    })
}

fn a5a(ctx: &Ctx) -> Boxed<'_> {
    Box::pin(async move {
        let clients = ctx.size(1000, 200);
        let secs = ctx.size(12, 6);
        let t = Trickle {
            clients,
            announce: 32 << 20,
            chunk: 16 * 1024,
            every: Duration::from_millis(100),
            total: 2 << 20,
            secs,
        };
        trickle_attack(ctx, "A5a", t).await
    })
}

fn a5b(ctx: &Ctx) -> Boxed<'_> {
    Box::pin(async move {
        let clients = ctx.size(10, 4);
        let t = Trickle {
            clients,
            announce: 60 << 20,
            chunk: 256 * 1024,
            every: Duration::ZERO,
            total: (60 << 20) - 1,
            secs: 20,
        };
        trickle_attack(ctx, "A5b", t).await
    })
}

/// Chat members who stop reading while others talk.
fn a6(ctx: &Ctx) -> Boxed<'_> {
    Box::pin(async move {
        let mut server = ctx.start(true, "A6")?;
        let addr = server.addr.to_string();
        let mut slow = Vec::new();
        for i in 0..20 {
            slow.push(upgrade(&addr, &format!("/ws?name=slow{i}")).await?.0);
        }
        let talkers = 5;
        let secs = ctx.size(10, 5);
        let until = Instant::now() + Duration::from_secs(secs);
        let line = frame(true, TEXT, &[b'y'; 4000]);
        let mut set = JoinSet::new();
        for i in 0..talkers {
            let (s, _) = upgrade(&addr, &format!("/ws?name=talk{i}")).await?;
            let line = line.clone();
            set.spawn(async move {
                let (mut rd, mut wr) = s.into_split();
                // Talkers read everything so that only the slow ones lag.
                let drain = tokio::spawn(async move {
                    let mut buf = vec![0; 64 * 1024];
                    use tokio::io::AsyncReadExt;
                    while let Ok(n) = rd.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                    }
                });
                let mut sent = 0u64;
                while Instant::now() < until {
                    if timeout(Duration::from_secs(2), wr.write_all(&line))
                        .await
                        .is_err()
                    {
                        break;
                    }
                    sent += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                drain.abort();
                sent
            });
        }
        let mut lines = 0;
        while let Some(n) = set.join_next().await {
            lines += n.unwrap_or(0);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss = peak(&server);
        let exit = server.interrupt(ctx.exit_cap);
        let close = endings(slow).await;
        Ok(Row {
            id: "A6",
            server: "chat",
            did: format!(
                "20 members never read; {talkers} others sent {lines} lines of 4000 B in {secs} s"
            ),
            rss_peak_kib: rss,
            exit: Some(exit),
            close,
            ..Row::default()
        })
    })
}

/// A message of empty continuation frames that never ends.
fn a7(ctx: &Ctx) -> Boxed<'_> {
    Box::pin(async move {
        let frames: usize = ctx.size(10_000_000, 2_000_000);
        let mut server = ctx.start(false, "A7")?;
        let (s, _) = upgrade(&server.addr.to_string(), "/").await?;
        let cpu_before = procfs::cpu_time(server.pid)?;
        let (mut rd, mut wr) = s.into_split();
        let reader = tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut scanner = FrameScanner::default();
            let mut buf = vec![0; 16 * 1024];
            loop {
                if let Some(code) = scanner.close_code {
                    return Ending::Close(code);
                }
                match rd.read(&mut buf).await {
                    Ok(0) => return Ending::Eof,
                    Err(_) => return Ending::Reset,
                    Ok(n) => scanner.feed(&buf[..n]),
                }
            }
        });
        let started = Instant::now();
        let cap = Duration::from_secs(ctx.size(60, 20));
        let mut written = 0usize;
        let _ = wr.write_all(&frame(false, BINARY, &[])).await;
        let empty = frame(false, CONTINUATION, &[]);
        let block = empty.repeat(10_000);
        while written < frames && started.elapsed() < cap && !reader.is_finished() {
            match timeout(Duration::from_secs(5), wr.write_all(&block)).await {
                Ok(Ok(())) => written += 10_000,
                _ => break,
            }
        }
        if written >= frames {
            let _ = wr.write_all(&frame(true, CONTINUATION, &[])).await;
        }
        let writing = started.elapsed();
        // Let the server catch up with what is in the socket buffers.
        let ending = timeout(Duration::from_secs(ctx.size(30, 10)), reader)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(Ending::Open);
        let cpu = procfs::cpu_time(server.pid)? - cpu_before;
        let rss = peak(&server);
        let exit = server.interrupt(ctx.exit_cap);
        Ok(Row {
            id: "A7",
            server: "echo",
            did: format!("1 message of {frames} empty continuation frames"),
            rss_peak_kib: rss,
            exit: Some(exit),
            close: ending.to_string(),
            note: format!(
                "server CPU {:.1} s; {written} frames written in {:.1} s",
                cpu.as_secs_f64(),
                writing.as_secs_f64()
            ),
            ..Row::default()
        })
    })
}

/// A message one byte over 16 MiB: does its echo come back?
fn a8(ctx: &Ctx) -> Boxed<'_> {
    Box::pin(async move {
        let mut server = ctx.start(false, "A8")?;
        let (mut s, _) = upgrade(&server.addr.to_string(), "/").await?;
        let size = (16 << 20) + 1;
        s.write_all(&frame_header(true, BINARY, size)).await?;
        let (mut rd, mut wr) = s.split();
        let payload = vec![b'z'; size as usize];
        let mut scanner = FrameScanner::default();
        let until = Instant::now() + Duration::from_secs(10);
        let (_, ending) = tokio::join!(
            wr.write_all(&payload),
            read_until_close_half(&mut rd, &mut scanner, until)
        );
        let rss = peak(&server);
        let exit = server.interrupt(ctx.exit_cap);
        let note = if scanner.data_frames > 0 {
            format!("echo received: {} B", scanner.data_bytes)
        } else {
            format!("no echo in 10 s ({} B of one arrived)", scanner.data_bytes)
        };
        Ok(Row {
            id: "A8",
            server: "echo",
            did: "1 binary message of 16 MiB + 1 B".into(),
            rss_peak_kib: rss,
            exit: Some(exit),
            close: ending.to_string(),
            note,
            ..Row::default()
        })
    })
}

async fn request_attack(
    ctx: &Ctx,
    id: &'static str,
    did: &str,
    request: impl Fn(&str) -> Vec<u8>,
) -> io::Result<Row> {
    let mut server = ctx.start(false, id)?;
    let addr = server.addr.to_string();
    let mut s = TcpStream::connect(&addr).await?;
    s.write_all(&request(&addr)).await?;
    let answer = read_answer(&mut s, Duration::from_secs(5)).await;
    let exit = server.interrupt(ctx.exit_cap);
    Ok(Row {
        id,
        server: "echo",
        did: did.into(),
        exit: Some(exit),
        http: answer.to_string(),
        ..Row::default()
    })
}

fn a9a(ctx: &Ctx) -> Boxed<'_> {
    Box::pin(request_attack(
        ctx,
        "A9a",
        "upgrade request with `Content-Length: 5` and a body",
        |addr| upgrade_request(Some(addr), "/", &[], b"hello"),
    ))
}

fn a9b(ctx: &Ctx) -> Boxed<'_> {
    Box::pin(request_attack(
        ctx,
        "A9b",
        "upgrade request without `Host`",
        |_| upgrade_request(None, "/", &[], &[]),
    ))
}

fn a10(ctx: &Ctx) -> Boxed<'_> {
    Box::pin(request_attack(
        ctx,
        "A10",
        "upgrade with `Origin: http://evil.example`",
        |addr| upgrade_request(Some(addr), "/", &["Origin: http://evil.example"], &[]),
    ))
}
