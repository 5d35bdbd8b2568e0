//! One subscriber of the cross-node benchmark: reads the server's frames
//! and notes, per message, its sequence number and how long it took.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Wall-clock nanoseconds: publisher and subscribers are on one machine.
pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Reads until `expected` messages came (or 60 s pass), counting each in
/// `received`; returns `(sequence, latency in ns)` of each.
pub(crate) async fn read(
    mut stream: TcpStream,
    rest: Vec<u8>,
    expected: u32,
    received: Arc<AtomicU64>,
) -> Vec<(u32, u64)> {
    let mut got = Vec::with_capacity(expected as usize);
    let mut buf = rest;
    let mut chunk = vec![0u8; 64 << 10];
    while got.len() < expected as usize {
        let mut at = 0;
        while let Some((payload, used)) = frame(&buf[at..]) {
            if payload.len() >= 31 {
                let text = std::str::from_utf8(&payload[..31]).unwrap_or("");
                if let (Ok(seq), Ok(sent)) =
                    (text[..10].parse::<u32>(), text[11..31].parse::<u64>())
                {
                    got.push((seq, now_ns().saturating_sub(sent)));
                    received.fetch_add(1, Ordering::Release);
                }
            }
            at += used;
        }
        buf.drain(..at);
        if got.len() >= expected as usize {
            break;
        }
        match tokio::time::timeout(Duration::from_secs(60), stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    got
}

/// The payload of one unmasked server frame at the start of `buf`, and
/// the bytes it takes; `None` until it is all there.
fn frame(buf: &[u8]) -> Option<(&[u8], usize)> {
    let header = wsroute_bench::raw_client::FrameHead::parse(buf)?;
    let (head, len) = (header.len, usize::try_from(header.payload_len).ok()?);
    let payload = buf.get(head..head + len)?;
    Some((payload, head + len))
}
