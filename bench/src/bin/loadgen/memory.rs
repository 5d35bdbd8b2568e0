//! The idle-memory run: open many connections and leave them idle, then
//! have each echo one small and then one large message, reading the
//! server's resident memory after each phase. With `deflate` the offer
//! goes into every handshake and the messages are realistic JSON text,
//! compressed if the server agreed.

use std::io;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use wsroute_bench::procfs;
use wsroute_bench::report::MemoryReport;

use crate::deflate::Agreed;
use crate::echo_load::{self, Plan};
use crate::wire::{Content, MessageShape, ReplyParser};

/// Connections echoing at the same time. Bounded so that the server's
/// peak memory stays small: what is measured is what it keeps afterwards,
/// not what it needed at once.
const ECHO_BATCH: usize = 100;

/// Runs the three phases against the server at `addr` (process `pid`);
/// returns the report and what the server agreed to.
pub(crate) async fn run(
    addr: &str,
    raw: bool,
    deflate: bool,
    connections: usize,
    pid: u32,
    settle: Duration,
) -> io::Result<(MemoryReport, Option<Agreed>)> {
    let rss_before = procfs::rss_kib(pid)?;
    let mut small = MessageShape {
        size: 16,
        text: deflate,
        raw,
        content: if deflate {
            Content::Json
        } else {
            Content::Pattern
        },
        compress: (raw && deflate).then_some(15),
    };
    let plan = Plan {
        addr: addr.to_owned(),
        shape: small.clone(),
        connections,
        in_flight: 1,
        verify: 0,
        offer_deflate: deflate && !raw,
        tls: false,
    };
    let opened = echo_load::open_all(&plan).await?;
    let agreed = echo_load::agreement(&opened)?;
    if let Some(agreed) = &agreed {
        small.compress = Some(
            agreed
                .client_window()
                .map_err(|e| crate::wire::protocol(&e))?,
        );
    }
    let mut streams = opened
        .into_iter()
        .map(|c| c.stream.into_tcp())
        .collect::<io::Result<Vec<TcpStream>>>()?;
    let per_conn = |rss: u64| (rss as f64 - rss_before as f64) / connections.max(1) as f64;

    tokio::time::sleep(settle).await;
    let idle = per_conn(procfs::rss_kib(pid)?);

    echo_each(&mut streams, &small, agreed.as_ref()).await?;
    tokio::time::sleep(settle).await;
    let after_small = per_conn(procfs::rss_kib(pid)?);

    let large = MessageShape {
        size: 64 * 1024,
        ..small
    };
    echo_each(&mut streams, &large, agreed.as_ref()).await?;
    tokio::time::sleep(settle).await;
    let after_large = per_conn(procfs::rss_kib(pid)?);

    let report = MemoryReport {
        connections,
        rss_before_kib: rss_before,
        idle_kib_per_conn: idle,
        after_16b_kib_per_conn: after_small,
        after_64k_kib_per_conn: after_large,
        deflate: None,
    };
    Ok((report, agreed))
}

/// Every connection echoes one message, `ECHO_BATCH` connections at a
/// time: all frames of a batch are written, then all replies read (the
/// socket buffers hold a 64 KiB reply while the others are written).
async fn echo_each(
    streams: &mut [TcpStream],
    shape: &MessageShape,
    agreed: Option<&Agreed>,
) -> io::Result<()> {
    let frame = shape.client_frame();
    let expected = shape.expected_reply_payload();
    let reply = shape.reply_header();
    let mut buf = vec![0; 128 * 1024];
    for batch in streams.chunks_mut(ECHO_BATCH) {
        for stream in batch.iter_mut() {
            stream.write_all(&frame).await?;
        }
        for stream in batch.iter_mut() {
            let mut parser = ReplyParser::new(reply, 1, agreed);
            let mut done = 0;
            while done == 0 {
                stream.readable().await?;
                let n = match stream.try_read(&mut buf) {
                    Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                };
                done = parser.feed(&buf[..n], &expected)?;
            }
        }
    }
    Ok(())
}
