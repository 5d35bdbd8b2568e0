//! The client side of RFC 6455, written for speed rather than generality:
//! the opening handshake, pre-masked frame templates, and a parser that
//! reads the server's frames in place from whatever buffer a read filled.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The RFC's sample key and the accept value every server must answer it
/// with (§1.3).
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// The masking key of every frame. Any key will do: servers must unmask
/// whatever they get, and a fixed one lets the frames be built once.
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// What one message looks like on the wire, in both directions.
#[derive(Debug, Clone)]
pub(crate) struct MessageShape {
    /// Payload length in bytes.
    pub(crate) size: usize,
    /// Text (opcode 1) or binary (opcode 2).
    pub(crate) text: bool,
    /// Raw TCP mode (tcp-echo): no handshake, and the reply is the masked
    /// frame itself.
    pub(crate) raw: bool,
}

impl MessageShape {
    fn opcode(&self) -> u8 {
        if self.text { 0x1 } else { 0x2 }
    }

    /// The unmasked payload: printable ASCII for text (the common case of
    /// JSON and chat), a byte ramp for binary.
    pub(crate) fn payload(&self) -> Vec<u8> {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789 {}\":,";
        (0..self.size)
            .map(|i| {
                if self.text {
                    ALPHABET[i % ALPHABET.len()]
                } else {
                    i as u8
                }
            })
            .collect()
    }

    /// One masked client frame carrying the payload.
    pub(crate) fn client_frame(&self) -> Vec<u8> {
        let payload = self.payload();
        let mut frame = Vec::with_capacity(payload.len() + 14);
        frame.push(0x80 | self.opcode());
        push_len(&mut frame, 0x80, payload.len());
        frame.extend_from_slice(&MASK);
        frame.extend(
            payload
                .iter()
                .enumerate()
                .map(|(i, byte)| byte ^ MASK[i % 4]),
        );
        frame
    }

    /// The payload the reply must carry: the masked bytes in raw mode.
    pub(crate) fn expected_reply_payload(&self) -> Vec<u8> {
        if self.raw {
            let frame = self.client_frame();
            frame[frame.len() - self.size..].to_vec()
        } else {
            self.payload()
        }
    }
}

fn push_len(frame: &mut Vec<u8>, mask_bit: u8, len: usize) {
    match len {
        0..=125 => frame.push(mask_bit | len as u8),
        126..=0xFFFF => {
            frame.push(mask_bit | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            frame.push(mask_bit | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
}

/// `count` copies of the same masked frame back to back, so that `n ≤
/// count` messages go out as one slice and one write.
#[derive(Debug)]
pub(crate) struct FrameTemplate {
    bytes: Vec<u8>,
    frame_len: usize,
}

impl FrameTemplate {
    pub(crate) fn new(shape: &MessageShape, count: usize) -> Self {
        let frame = shape.client_frame();
        Self {
            bytes: frame.repeat(count.max(1)),
            frame_len: frame.len(),
        }
    }

    pub(crate) fn frame_len(&self) -> usize {
        self.frame_len
    }

    /// The next bytes to write when `owed` bytes of the endless stream of
    /// frames are still to be written. All frames are the same, so where a
    /// frame starts is known from `owed` alone.
    pub(crate) fn next_slice(&self, owed: usize) -> &[u8] {
        let start = (self.frame_len - owed % self.frame_len) % self.frame_len;
        let end = (start + owed).min(self.bytes.len());
        &self.bytes[start..end]
    }
}

/// Opens a connection and, unless `raw`, performs the websocket handshake
/// on path `/`. Returns the stream and any bytes read past the response.
pub(crate) async fn connect(addr: &str, raw: bool) -> io::Result<(TcpStream, Vec<u8>)> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    if raw {
        return Ok((stream, Vec::new()));
    }
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::with_capacity(512);
    let end = loop {
        if stream.read_buf(&mut response).await? == 0 {
            return Err(protocol(
                "the server closed the connection during the handshake",
            ));
        }
        if let Some(pos) = response.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        if response.len() > 16 * 1024 {
            return Err(protocol("handshake response headers over 16 KiB"));
        }
    };
    let head = String::from_utf8_lossy(&response[..end]);
    let status_ok = head.starts_with("HTTP/1.1 101");
    let accept_ok = head.lines().any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.eq_ignore_ascii_case("sec-websocket-accept") && value.trim() == ACCEPT
        })
    });
    if !status_ok || !accept_ok {
        let first = head.lines().next().unwrap_or_default();
        return Err(protocol(&format!("handshake refused: {first}")));
    }
    Ok((stream, response[end..].to_vec()))
}

pub(crate) fn protocol(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// Parses the server's replies from the bytes of successive reads, in
/// place: a payload is checked (or skipped) where it lies, and only a
/// header cut off by the end of a read is carried over (at most 14 bytes).
#[derive(Debug)]
pub(crate) struct ReplyParser {
    opcode: u8,
    size: u64,
    /// Payload bytes of the current frame still to come; 0 between frames.
    remaining: u64,
    /// A header cut off at the end of the last read.
    head: [u8; 14],
    head_len: usize,
    /// How many more replies get their payload compared byte for byte.
    verify_left: u64,
}

impl ReplyParser {
    pub(crate) fn new(shape: &MessageShape, verify: u64) -> Self {
        Self {
            opcode: shape.opcode(),
            size: shape.size as u64,
            remaining: 0,
            head: [0; 14],
            head_len: 0,
            verify_left: verify,
        }
    }

    /// Consumes the bytes of one read; returns how many replies completed.
    /// `expected` is the payload every reply must carry.
    pub(crate) fn feed(&mut self, mut data: &[u8], expected: &[u8]) -> io::Result<usize> {
        let mut done = 0;
        loop {
            if self.remaining > 0 {
                let take = self.remaining.min(data.len() as u64) as usize;
                if self.verify_left > 0 {
                    let at = (self.size - self.remaining) as usize;
                    if data[..take] != expected[at..at + take] {
                        return Err(protocol("an echoed payload differs from what was sent"));
                    }
                }
                self.remaining -= take as u64;
                data = &data[take..];
                if self.remaining > 0 {
                    return Ok(done);
                }
                done += 1;
                self.verify_left = self.verify_left.saturating_sub(1);
            }
            if data.is_empty() {
                return Ok(done);
            }
            let used = match self.header(data)? {
                Some(used) => used,
                None => return Ok(done),
            };
            data = &data[used..];
            if self.remaining == 0 {
                // An empty message is complete with its header.
                done += 1;
            }
        }
    }

    /// Parses the next header, completing a carried-over one first; sets
    /// `remaining` and returns how many bytes of `data` it used, or stashes
    /// an incomplete header and returns `None`.
    fn header(&mut self, data: &[u8]) -> io::Result<Option<usize>> {
        if self.head_len == 0 {
            if let Some((payload_len, len)) = self.check(data)? {
                self.remaining = payload_len;
                return Ok(Some(len));
            }
            self.head[..data.len()].copy_from_slice(data);
            self.head_len = data.len();
            return Ok(None);
        }
        let had = self.head_len;
        let take = (self.head.len() - had).min(data.len());
        self.head[had..had + take].copy_from_slice(&data[..take]);
        let head = self.head;
        match self.check(&head[..had + take])? {
            Some((payload_len, len)) => {
                self.head_len = 0;
                self.remaining = payload_len;
                Ok(Some(len - had))
            }
            None => {
                self.head_len = had + take;
                Ok(None)
            }
        }
    }

    /// Parses and checks a header at the start of `buf`: the expected
    /// opcode, unfragmented, the expected length.
    fn check(&self, buf: &[u8]) -> io::Result<Option<(u64, usize)>> {
        let [first, second, ..] = *buf else {
            return Ok(None);
        };
        let (payload_len, mut len) = match second & 0x7F {
            126 => match buf.get(2..4) {
                Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
                None => return Ok(None),
            },
            127 => match buf.get(2..10) {
                Some(b) => (u64::from_be_bytes(b.try_into().expect("8 bytes")), 10),
                None => return Ok(None),
            },
            n => (u64::from(n), 2),
        };
        if second & 0x80 != 0 {
            len += 4;
            if buf.len() < len {
                return Ok(None);
            }
        }
        if first & 0x0F == 0x8 {
            return Err(protocol("the server sent a close frame"));
        }
        if first != 0x80 | self.opcode || payload_len != self.size {
            return Err(protocol(&format!(
                "unexpected reply header {first:#04x} with {payload_len} bytes"
            )));
        }
        Ok(Some((payload_len, len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(size: usize, raw: bool) -> MessageShape {
        MessageShape {
            size,
            text: true,
            raw,
        }
    }

    fn server_frame(s: &MessageShape) -> Vec<u8> {
        let mut frame = vec![0x81];
        push_len(&mut frame, 0, s.size);
        frame.extend_from_slice(&s.payload());
        frame
    }

    #[test]
    fn replies_split_at_every_byte_parse() {
        for size in [0, 5, 125, 126, 300, 70_000] {
            let s = shape(size, false);
            let stream = server_frame(&s).repeat(3);
            let expected = s.expected_reply_payload();
            for cut in [1, 2, 3, 7, 13, 1000] {
                let mut parser = ReplyParser::new(&s, u64::MAX);
                let done: usize = stream
                    .chunks(cut)
                    .map(|piece| parser.feed(piece, &expected).unwrap())
                    .sum();
                assert_eq!(done, 3, "size {size} cut {cut}");
            }
        }
    }

    #[test]
    fn raw_mode_accepts_its_own_masked_frames() {
        let s = shape(300, true);
        let template = FrameTemplate::new(&s, 4);
        let expected = s.expected_reply_payload();
        let mut parser = ReplyParser::new(&s, u64::MAX);
        assert_eq!(
            parser
                .feed(template.next_slice(4 * template.frame_len()), &expected)
                .unwrap(),
            4
        );
    }

    #[test]
    fn a_changed_payload_is_caught() {
        let s = shape(16, false);
        let mut frame = server_frame(&s);
        frame[5] ^= 1;
        let mut parser = ReplyParser::new(&s, 1);
        assert!(parser.feed(&frame, &s.expected_reply_payload()).is_err());
    }

    #[test]
    fn template_slices_resume_mid_frame() {
        let s = shape(10, false);
        let template = FrameTemplate::new(&s, 2);
        let len = template.frame_len();
        assert_eq!(template.next_slice(2 * len).len(), 2 * len);
        // 3 bytes of the first frame went out: the rest starts at byte 3.
        assert_eq!(
            template.next_slice(2 * len - 3),
            &template.bytes[3..2 * len]
        );
        assert_eq!(template.next_slice(len - 1), &template.bytes[1..len]);
    }
}
