//! Raw TCP fan-out on tokio: the physical limit the fan-out benchmark
//! measures wsroute against (`fanout-runner`, see `bench/README.md`).
//!
//! A client's first byte says what it is: `S` a subscriber, `P` the
//! publisher. Every masked WebSocket frame the publisher sends is unmasked
//! into one unmasked frame — the very bytes a WebSocket server sends — and
//! written, by the publisher's task itself, to every subscriber socket in
//! turn: one `write` system call per subscriber for all the frames one
//! read brought (one frame in the closed loop with one message in flight,
//! a whole burst with `--burst`), no per-subscriber task, queue or
//! wake-up. That is the cheapest honest fan-out: a socket whose
//! buffer is full holds the loop up (`write_all`) instead of being queued,
//! which in the benchmark's closed loop (one message in flight) never
//! happens.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wsroute_bench::server::{self, ServerArgs};

/// Frames above this close the publisher: memory stays bounded.
const MAX_PAYLOAD: usize = 1 << 20;

type Subscribers = Arc<Mutex<Vec<TcpStream>>>;

fn main() -> io::Result<()> {
    server::run("tcp-fanout", |listener, args: ServerArgs| async move {
        let subscribers = Subscribers::default();
        loop {
            let (stream, _) = listener.accept().await?;
            server::configure(&stream, &args);
            let subscribers = subscribers.clone();
            tokio::spawn(async move {
                let _ = serve(stream, subscribers).await;
            });
        }
    })
}

async fn serve(mut stream: TcpStream, subscribers: Subscribers) -> io::Result<()> {
    match stream.read_u8().await? {
        b'S' => {
            lock(&subscribers).push(stream);
            Ok(())
        }
        b'P' => publish_loop(stream, subscribers).await,
        other => Err(io::Error::other(format!("unknown role byte {other:#x}"))),
    }
}

async fn publish_loop(mut stream: TcpStream, subscribers: Subscribers) -> io::Result<()> {
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut frames = Vec::new();
    loop {
        // Every whole frame this read brought goes out in one write per
        // subscriber, as a server that batches its writes would send it.
        while let Some((frame, used)) = unmasked_frame(&buf)? {
            buf.drain(..used);
            frames.extend_from_slice(&frame);
        }
        if !frames.is_empty() {
            fan_out(&frames, &subscribers).await;
            frames.clear();
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    }
}

/// Writes `frame` to every subscriber; drops those whose socket failed.
async fn fan_out(frame: &[u8], subscribers: &Subscribers) {
    // Out of the lock while writing, so `write_all` may wait.
    let mut sockets = std::mem::take(&mut *lock(subscribers));
    let mut failed = Vec::new();
    for (i, socket) in sockets.iter_mut().enumerate() {
        let ok = match socket.try_write(frame) {
            Ok(n) if n == frame.len() => true,
            Ok(n) => socket.write_all(&frame[n..]).await.is_ok(),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                socket.write_all(frame).await.is_ok()
            }
            Err(_) => false,
        };
        if !ok {
            failed.push(i);
        }
    }
    for i in failed.into_iter().rev() {
        sockets.swap_remove(i);
    }
    // Subscribers that joined while we wrote come after the old ones.
    let mut shared = lock(subscribers);
    sockets.append(&mut shared);
    *shared = sockets;
}

fn lock(subscribers: &Subscribers) -> std::sync::MutexGuard<'_, Vec<TcpStream>> {
    subscribers.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The first complete masked frame of `buf`, unmasked (header and
/// payload, as a server sends it), and how many bytes of `buf` it took.
fn unmasked_frame(buf: &[u8]) -> io::Result<Option<(Vec<u8>, usize)>> {
    let Some(head) = wsroute_bench::raw_client::FrameHead::parse(buf) else {
        return Ok(None);
    };
    let Some(mask) = head.mask else {
        return Err(io::Error::other("client frame not masked"));
    };
    if head.payload_len > MAX_PAYLOAD as u64 {
        return Err(io::Error::other(format!(
            "frame of {} bytes",
            head.payload_len
        )));
    }
    let (at, len, b0) = (head.len, head.payload_len as usize, head.first);
    if buf.len() < at + len {
        return Ok(None);
    }
    let mut frame = Vec::with_capacity(10 + len);
    frame.push(b0);
    match len {
        0..=125 => frame.push(len as u8),
        126..=0xFFFF => {
            frame.push(126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            frame.push(127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend(
        buf[at..at + len]
            .iter()
            .zip(mask.iter().cycle())
            .map(|(b, m)| b ^ m),
    );
    Ok(Some((frame, at + len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masked_frame_becomes_the_servers_frame() {
        let mask = [1, 2, 3, 4];
        let payload: Vec<u8> = (0..200u8).collect();
        let mut masked = vec![0x82, 0x80 | 126, 0, 200];
        masked.extend_from_slice(&mask);
        masked.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
        masked.extend_from_slice(&[0x82]); // the start of the next frame
        let (frame, used) = unmasked_frame(&masked).unwrap().unwrap();
        assert_eq!(used, 4 + 4 + 200);
        assert_eq!(frame[..4], [0x82, 126, 0, 200]);
        assert_eq!(frame[4..], payload[..]);
        assert!(unmasked_frame(&masked[..100]).unwrap().is_none());
    }
}
