//! A hostile websocket client's tools, for `attacks` and `soak`: requests
//! written by hand (with or without `Host`, with a body, a foreign
//! `Origin`), masked frames of any shape, and a scanner that reads the
//! server's frames only far enough to find its close code.
//!
//! Frames are masked with the all-zero key: the mask bit is set, as RFC
//! 6455 requires of a client, and the payload goes out as it is, so a
//! payload of any length costs nothing to build.

use std::io;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The RFC's sample key (§1.3).
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// Opcodes.
pub const CONTINUATION: u8 = 0x0;
/// Text frame.
pub const TEXT: u8 = 0x1;
/// Binary frame.
pub const BINARY: u8 = 0x2;
/// Close frame.
pub const CLOSE: u8 = 0x8;

/// An upgrade request for `path`. `host: None` leaves the `Host` header
/// out; `extra` are more header lines (`"Origin: …"`); `body` is sent after
/// the head (with a `Content-Length` when not empty).
pub fn upgrade_request(host: Option<&str>, path: &str, extra: &[&str], body: &[u8]) -> Vec<u8> {
    let mut head = format!("GET {path} HTTP/1.1\r\n");
    if let Some(host) = host {
        head.push_str(&format!("Host: {host}\r\n"));
    }
    head.push_str(&format!(
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n\
         Sec-WebSocket-Version: 13\r\n"
    ));
    for line in extra {
        head.push_str(line);
        head.push_str("\r\n");
    }
    if !body.is_empty() {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    request
}

/// What the server answered a request with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A status line with this code; bytes past the head follow.
    Status(u16, Vec<u8>),
    /// The connection closed (or reset) before a complete head.
    Closed,
    /// Nothing complete within the time allowed.
    Silent,
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Status(code, _) => write!(f, "{code}"),
            Answer::Closed => write!(f, "closed, no response"),
            Answer::Silent => write!(f, "no response"),
        }
    }
}

/// Reads an HTTP response head, for at most `wait`.
pub async fn read_answer(stream: &mut TcpStream, wait: Duration) -> Answer {
    let mut buf = Vec::with_capacity(1024);
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)).await {
            Err(_) => return Answer::Silent,
            Ok(Err(_)) | Ok(Ok(0)) => return Answer::Closed,
            Ok(Ok(_)) => {}
        }
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]);
            let code = head
                .split_ascii_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            return Answer::Status(code, buf[end + 4..].to_vec());
        }
        if buf.len() > 64 * 1024 {
            return Answer::Status(0, Vec::new());
        }
    }
}

/// Connects to `addr` and upgrades on `path`; returns the stream and any
/// bytes read past the 101 response.
pub async fn upgrade(addr: &str, path: &str) -> io::Result<(TcpStream, Vec<u8>)> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    stream
        .write_all(&upgrade_request(Some(addr), path, &[], &[]))
        .await?;
    match read_answer(&mut stream, Duration::from_secs(10)).await {
        Answer::Status(101, rest) => Ok((stream, rest)),
        other => Err(io::Error::other(format!("upgrade refused: {other}"))),
    }
}

/// A masked frame header for a payload of `len` bytes, zero masking key.
pub fn frame_header(fin: bool, opcode: u8, len: u64) -> Vec<u8> {
    let mut head = Vec::with_capacity(14);
    head.push(if fin { 0x80 } else { 0 } | opcode);
    match len {
        0..=125 => head.push(0x80 | len as u8),
        126..=0xFFFF => {
            head.push(0x80 | 126);
            head.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            head.push(0x80 | 127);
            head.extend_from_slice(&len.to_be_bytes());
        }
    }
    head.extend_from_slice(&[0; 4]);
    head
}

/// A whole masked frame.
pub fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut bytes = frame_header(fin, opcode, payload.len() as u64);
    bytes.extend_from_slice(payload);
    bytes
}

/// A masked close frame with `code`.
pub fn close_frame(code: u16) -> Vec<u8> {
    frame(true, CLOSE, &code.to_be_bytes())
}

/// Follows the server's (unmasked) frames through whatever reads deliver:
/// counts data frames and their payload bytes, and keeps the close
/// frame's code. Payloads are skipped, not stored.
#[derive(Debug, Default)]
pub struct FrameScanner {
    head: Vec<u8>,
    /// Payload bytes of the current frame still to come.
    remaining: u64,
    /// Whether the current frame is a close frame (its payload is kept).
    in_close: bool,
    close_payload: Vec<u8>,
    /// Data frames (text, binary, continuation) seen complete.
    pub data_frames: u64,
    /// Their payload bytes so far.
    pub data_bytes: u64,
    /// The close frame's code (1005 for an empty close), once complete.
    pub close_code: Option<u16>,
}

impl FrameScanner {
    /// Consumes one read's bytes.
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() && self.close_code.is_none() {
            if self.remaining > 0 {
                let take = self.remaining.min(data.len() as u64) as usize;
                if self.in_close {
                    self.close_payload.extend_from_slice(&data[..take]);
                } else {
                    self.data_bytes += take as u64;
                }
                self.remaining -= take as u64;
                data = &data[take..];
                if self.remaining == 0 {
                    self.frame_done();
                }
                continue;
            }
            self.head.push(data[0]);
            data = &data[1..];
            let Some((opcode, len)) = parse_header(&self.head) else {
                continue;
            };
            self.head.clear();
            self.in_close = opcode == CLOSE;
            self.remaining = len;
            if len == 0 {
                self.frame_done();
            }
        }
    }

    fn frame_done(&mut self) {
        if self.in_close {
            self.close_code = Some(match self.close_payload.as_slice() {
                [a, b, ..] => u16::from_be_bytes([*a, *b]),
                _ => 1005,
            });
        } else {
            self.data_frames += 1;
        }
    }
}

/// `(opcode, payload length)` once `head` holds a complete header.
fn parse_header(head: &[u8]) -> Option<(u8, u64)> {
    let header = FrameHead::parse(head)?;
    (head.len() == header.len).then_some((header.first & 0x0F, header.payload_len))
}

/// A frame header read off the start of a buffer, either side's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHead {
    /// FIN, RSV and opcode.
    pub first: u8,
    /// The masking key, for a client's frame.
    pub mask: Option<[u8; 4]>,
    pub payload_len: u64,
    /// Bytes the header takes, masking key included.
    pub len: usize,
}

impl FrameHead {
    /// The header at the start of `buf`, once it is all there.
    pub fn parse(buf: &[u8]) -> Option<Self> {
        let [first, second, ..] = *buf else {
            return None;
        };
        let (payload_len, mut len) = match second & 0x7F {
            126 => (
                u64::from(u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?)),
                4,
            ),
            127 => (u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?), 10),
            short => (u64::from(short), 2),
        };
        let mask = if second & 0x80 != 0 {
            let key = buf.get(len..len + 4)?.try_into().ok()?;
            len += 4;
            Some(key)
        } else {
            None
        };
        Some(Self {
            first,
            mask,
            payload_len,
            len,
        })
    }
}

/// How a connection ended, seen from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// A close frame with this code.
    Close(u16),
    /// TCP ended (FIN) with no close frame.
    Eof,
    /// TCP reset.
    Reset,
    /// Still open, nothing more arriving.
    Open,
}

impl std::fmt::Display for Ending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ending::Close(code) => write!(f, "{code}"),
            Ending::Eof => write!(f, "EOF"),
            Ending::Reset => write!(f, "RST"),
            Ending::Open => write!(f, "open"),
        }
    }
}

/// Reads (and discards) until a close frame, the end of the stream, `idle`
/// without a byte, or `cap` in all.
pub async fn read_until_close(
    stream: &mut TcpStream,
    scanner: &mut FrameScanner,
    idle: Duration,
    cap: Duration,
) -> Ending {
    let mut buf = vec![0; 64 * 1024];
    let started = Instant::now();
    loop {
        if let Some(code) = scanner.close_code {
            return Ending::Close(code);
        }
        let wait = idle.min(cap.saturating_sub(started.elapsed()));
        match tokio::time::timeout(wait, stream.read(&mut buf)).await {
            Err(_) => return Ending::Open,
            Ok(Ok(0)) => return Ending::Eof,
            Ok(Err(_)) => return Ending::Reset,
            Ok(Ok(n)) => scanner.feed(&buf[..n]),
        }
    }
}

/// Counts of each way connections ended, as `1001 ×500, EOF ×2`.
pub fn tally(endings: &[Ending]) -> String {
    let mut counts: Vec<(Ending, usize)> = Vec::new();
    for ending in endings {
        match counts.iter_mut().find(|(e, _)| e == ending) {
            Some((_, n)) => *n += 1,
            None => counts.push((*ending, 1)),
        }
    }
    counts
        .iter()
        .map(|(e, n)| format!("{e} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = frame(true, opcode, payload);
        f[1] &= 0x7F;
        f.drain(f.len() - payload.len() - 4..f.len() - payload.len());
        f
    }

    #[test]
    fn close_code_found_behind_data_at_any_cut() {
        let mut stream = server_frame(BINARY, &[7; 300]);
        stream.extend(server_frame(TEXT, b"hi"));
        stream.extend(server_frame(CLOSE, &1001u16.to_be_bytes()));
        for cut in [1, 2, 3, 5, 100, 1000] {
            let mut s = FrameScanner::default();
            stream.chunks(cut).for_each(|c| s.feed(c));
            assert_eq!(s.close_code, Some(1001), "cut {cut}");
            assert_eq!((s.data_frames, s.data_bytes), (2, 302));
        }
    }

    #[test]
    fn long_header_lengths() {
        assert_eq!(frame_header(false, BINARY, 70_000).len(), 14);
        assert_eq!(
            parse_header(&frame_header(true, 2, 70_000)),
            Some((2, 70_000))
        );
        assert_eq!(parse_header(&frame_header(true, 2, 300)), Some((2, 300)));
    }
}
