//! The idle-memory run: open many connections and leave them idle, then
//! have each echo one small and then one large message, reading the
//! server's resident memory after each phase.

use std::io;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use wsroute_bench::procfs;
use wsroute_bench::report::MemoryReport;

use crate::echo_load::{self, Plan};
use crate::wire::{MessageShape, ReplyParser};

/// Connections echoing at the same time. Bounded so that the server's
/// peak memory stays small: what is measured is what it keeps afterwards,
/// not what it needed at once.
const ECHO_BATCH: usize = 100;

/// Runs the three phases against the server at `addr` (process `pid`).
pub(crate) async fn run(
    addr: &str,
    raw: bool,
    connections: usize,
    pid: u32,
    settle: Duration,
) -> io::Result<MemoryReport> {
    let rss_before = procfs::rss_kib(pid)?;
    let small = MessageShape {
        size: 16,
        text: false,
        raw,
    };
    let plan = Plan {
        addr: addr.to_owned(),
        shape: small.clone(),
        connections,
        in_flight: 1,
        verify: 0,
    };
    let mut streams: Vec<TcpStream> = echo_load::open_all(&plan)
        .await?
        .into_iter()
        .map(|(stream, _)| stream)
        .collect();
    let per_conn = |rss: u64| (rss as f64 - rss_before as f64) / connections.max(1) as f64;

    tokio::time::sleep(settle).await;
    let idle = per_conn(procfs::rss_kib(pid)?);

    echo_each(&mut streams, &small).await?;
    tokio::time::sleep(settle).await;
    let after_small = per_conn(procfs::rss_kib(pid)?);

    let large = MessageShape {
        size: 64 * 1024,
        ..small
    };
    echo_each(&mut streams, &large).await?;
    tokio::time::sleep(settle).await;
    let after_large = per_conn(procfs::rss_kib(pid)?);

    Ok(MemoryReport {
        connections,
        rss_before_kib: rss_before,
        idle_kib_per_conn: idle,
        after_16b_kib_per_conn: after_small,
        after_64k_kib_per_conn: after_large,
    })
}

/// Every connection echoes one message, `ECHO_BATCH` connections at a
/// time: all frames of a batch are written, then all replies read (the
/// socket buffers hold a 64 KiB reply while the others are written).
async fn echo_each(streams: &mut [TcpStream], shape: &MessageShape) -> io::Result<()> {
    let frame = shape.client_frame();
    let expected = shape.expected_reply_payload();
    let mut buf = vec![0; 128 * 1024];
    for batch in streams.chunks_mut(ECHO_BATCH) {
        for stream in batch.iter_mut() {
            stream.write_all(&frame).await?;
        }
        for stream in batch.iter_mut() {
            let mut parser = ReplyParser::new(shape, 1);
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
