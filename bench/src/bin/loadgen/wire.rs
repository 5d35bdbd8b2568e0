//! The client side of RFC 6455, written for speed rather than generality:
//! the opening handshake, pre-masked frame templates, and a parser that
//! reads the server's frames in place from whatever buffer a read filled.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use wsroute_bench::tls;

use crate::deflate::{self, Agreed, Inflater};
use crate::json;

/// The RFC's sample key and the accept value every server must answer it
/// with (§1.3).
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// The masking key of every frame. Any key will do: servers must unmask
/// whatever they get, and a fixed one lets the frames be built once.
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// What the payload of a message is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Content {
    /// Printable ASCII cycling through a short alphabet for text, a byte
    /// ramp for binary: the uncompressed matrix.
    Pattern,
    /// Realistic JSON from a fixed seed ([`json::message`]): the
    /// compressed cells.
    Json,
}

/// What one message looks like on the wire, in both directions.
#[derive(Debug, Clone)]
pub(crate) struct MessageShape {
    /// Payload length in bytes (before compression).
    pub(crate) size: usize,
    /// Text (opcode 1) or binary (opcode 2).
    pub(crate) text: bool,
    /// Raw TCP mode (tcp-echo): no handshake, and the reply is the masked
    /// frame itself.
    pub(crate) raw: bool,
    pub(crate) content: Content,
    /// Client frames are compressed with this window (RSV1 set, see
    /// [`deflate::compress_message`]); `None` sends them plain.
    pub(crate) compress: Option<u8>,
}

impl MessageShape {
    fn opcode(&self) -> u8 {
        if self.text { 0x1 } else { 0x2 }
    }

    /// The unmasked payload, before any compression.
    pub(crate) fn payload(&self) -> Vec<u8> {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789 {}\":,";
        match self.content {
            Content::Json => json::message(self.size),
            Content::Pattern => (0..self.size)
                .map(|i| {
                    if self.text {
                        ALPHABET[i % ALPHABET.len()]
                    } else {
                        i as u8
                    }
                })
                .collect(),
        }
    }

    /// One masked client frame carrying the payload, compressed when
    /// `compress` says so.
    pub(crate) fn client_frame(&self) -> Vec<u8> {
        let (payload, rsv1) = match self.compress {
            Some(window) => (deflate::compress_message(&self.payload(), window), 0x40),
            None => (self.payload(), 0),
        };
        let mut frame = Vec::with_capacity(payload.len() + 14);
        frame.push(0x80 | rsv1 | self.opcode());
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

    /// The payload the reply must carry: the masked bytes in raw mode
    /// (compressed, if the frame is), else the payload before compression.
    pub(crate) fn expected_reply_payload(&self) -> Vec<u8> {
        if self.raw {
            let frame = self.client_frame();
            let header = frame_header_len(&frame);
            frame[header..].to_vec()
        } else {
            self.payload()
        }
    }
}

/// The header length of a masked client frame.
fn frame_header_len(frame: &[u8]) -> usize {
    let len = match frame[1] & 0x7F {
        126 => 4,
        127 => 10,
        _ => 2,
    };
    len + 4
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

/// An open connection, upgraded unless raw.
#[derive(Debug)]
pub(crate) struct Connected {
    pub(crate) stream: Stream,
    /// Bytes read past the handshake response.
    pub(crate) leftover: Vec<u8>,
    /// What the server agreed to, when permessage-deflate was offered and
    /// accepted.
    pub(crate) deflate: Option<Agreed>,
}

/// A connection's transport.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    /// `--tls` ([`wsroute_bench::tls::client_config`]); boxed, as its
    /// session is some 1 KiB beside the socket's few bytes.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// The plain socket; an error for a TLS connection (the idle-memory
    /// run is measured in plain TCP only).
    pub(crate) fn into_tcp(self) -> io::Result<TcpStream> {
        match self {
            Stream::Tcp(tcp) => Ok(tcp),
            Stream::Tls(_) => Err(protocol("this run has no TLS variant")),
        }
    }
}

/// Opens a connection (over TLS when `tls`) and, unless `raw`, performs
/// the websocket handshake on path `/`, offering permessage-deflate
/// ([`deflate::OFFER`]) when `offer_deflate`.
pub(crate) async fn connect(
    addr: &str,
    raw: bool,
    offer_deflate: bool,
    tls: Option<&TlsConnector>,
) -> io::Result<Connected> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let mut connected = Connected {
        stream: Stream::Tcp(tcp),
        leftover: Vec::new(),
        deflate: None,
    };
    if let Some(connector) = tls {
        let Stream::Tcp(tcp) = connected.stream else {
            unreachable!("made plain just above")
        };
        let session = connector.connect(tls::server_name(), tcp).await?;
        connected.stream = Stream::Tls(Box::new(session));
    }
    if raw {
        return Ok(connected);
    }
    let (leftover, deflate) = match &mut connected.stream {
        Stream::Tcp(tcp) => upgrade(tcp, addr, offer_deflate).await?,
        Stream::Tls(session) => upgrade(session.as_mut(), addr, offer_deflate).await?,
    };
    connected.leftover = leftover;
    connected.deflate = deflate;
    Ok(connected)
}

/// The opening handshake on `stream`: what was read past the response,
/// and what the server agreed to.
async fn upgrade<S>(
    stream: &mut S,
    addr: &str,
    offer_deflate: bool,
) -> io::Result<(Vec<u8>, Option<Agreed>)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let extensions = if offer_deflate {
        format!("Sec-WebSocket-Extensions: {}\r\n", deflate::OFFER)
    } else {
        String::new()
    };
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extensions}\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    stream.flush().await?;
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
    let header = |wanted: &str| {
        head.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case(wanted).then(|| value.trim())
        })
    };
    let accept_ok = header("sec-websocket-accept") == Some(ACCEPT);
    if !status_ok || !accept_ok {
        let first = head.lines().next().unwrap_or_default();
        return Err(protocol(&format!("handshake refused: {first}")));
    }
    let deflate = match header("sec-websocket-extensions") {
        None => None,
        Some(_) if !offer_deflate => {
            return Err(protocol(
                "the server answered an extension that was not offered",
            ));
        }
        Some(answer) => Some(Agreed::from_answer(answer).map_err(|e| protocol(&e))?),
    };
    Ok((response[end..].to_vec(), deflate))
}

pub(crate) fn protocol(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// What a plain reply's header must say: the first byte (FIN, RSV1,
/// opcode) and the payload length. Compressed replies, when agreed, are
/// checked by opcode alone: their length is the server's to choose.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReplyHeader {
    first: u8,
    size: u64,
}

impl MessageShape {
    /// The header every plain reply carries: in raw mode the client's own
    /// (RSV1 and compressed length included), else FIN + opcode and the
    /// payload size.
    pub(crate) fn reply_header(&self) -> ReplyHeader {
        if self.raw {
            let frame = self.client_frame();
            ReplyHeader {
                first: frame[0],
                size: (frame.len() - frame_header_len(&frame)) as u64,
            }
        } else {
            ReplyHeader {
                first: 0x80 | self.opcode(),
                size: self.size as u64,
            }
        }
    }
}

/// Parses the server's replies from the bytes of successive reads, in
/// place: a payload is checked (or skipped) where it lies, and only a
/// header cut off by the end of a read is carried over (at most 14 bytes).
/// A compressed reply (RSV1) goes through the inflater piece by piece.
#[derive(Debug)]
pub(crate) struct ReplyParser {
    reply: ReplyHeader,
    /// Present when permessage-deflate was agreed: RSV1 replies are
    /// accepted and inflated.
    inflater: Option<Inflater>,
    /// Payload bytes of the current frame still to come; 0 between frames.
    remaining: u64,
    /// Header plus payload bytes of the current frame.
    frame_len: u64,
    /// The current frame has RSV1 set and goes through the inflater.
    inflating: bool,
    /// A header cut off at the end of the last read.
    head: [u8; 14],
    head_len: usize,
    /// How many more replies get their payload compared byte for byte.
    verify_left: u64,
    /// Frame bytes (headers and payloads) of the replies completed since
    /// the last [`Self::take_wire_bytes`].
    wire_bytes: u64,
}

impl ReplyParser {
    pub(crate) fn new(reply: ReplyHeader, verify: u64, deflate: Option<&Agreed>) -> Self {
        Self {
            reply,
            inflater: deflate.map(|agreed| Inflater::new(agreed, reply.size as usize)),
            remaining: 0,
            frame_len: 0,
            inflating: false,
            head: [0; 14],
            head_len: 0,
            verify_left: verify,
            wire_bytes: 0,
        }
    }

    /// The frame bytes of the replies completed since the last call.
    pub(crate) fn take_wire_bytes(&mut self) -> u64 {
        std::mem::take(&mut self.wire_bytes)
    }

    /// Consumes the bytes of one read; returns how many replies completed.
    /// `expected` is the payload every reply must carry (after inflating).
    pub(crate) fn feed(&mut self, mut data: &[u8], expected: &[u8]) -> io::Result<usize> {
        let mut done = 0;
        loop {
            if self.remaining > 0 {
                let take = self.remaining.min(data.len() as u64) as usize;
                if self.inflating {
                    let inflater = self.inflater.as_mut().expect("inflating");
                    inflater.feed(&data[..take]).map_err(|e| protocol(&e))?;
                } else if self.verify_left > 0 {
                    let at = (self.reply.size - self.remaining) as usize;
                    if data[..take] != expected[at..at + take] {
                        return Err(protocol("an echoed payload differs from what was sent"));
                    }
                }
                self.remaining -= take as u64;
                data = &data[take..];
                if self.remaining > 0 {
                    return Ok(done);
                }
                self.complete(expected)?;
                done += 1;
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
                self.complete(expected)?;
                done += 1;
            }
        }
    }

    /// A reply's last byte arrived: count it, and check an inflated one.
    fn complete(&mut self, expected: &[u8]) -> io::Result<()> {
        self.wire_bytes += self.frame_len;
        if self.inflating {
            let inflater = self.inflater.as_mut().expect("inflating");
            let payload = inflater.finish().map_err(|e| protocol(&e))?;
            if self.verify_left > 0 && payload != expected {
                return Err(protocol(
                    "an inflated echo differs from the message that was sent",
                ));
            }
            inflater.clear();
        }
        self.verify_left = self.verify_left.saturating_sub(1);
        Ok(())
    }

    /// Parses the next header, completing a carried-over one first; sets
    /// `remaining` and returns how many bytes of `data` it used, or stashes
    /// an incomplete header and returns `None`.
    fn header(&mut self, data: &[u8]) -> io::Result<Option<usize>> {
        if self.head_len == 0 {
            if let Some((payload_len, len)) = self.check(data)? {
                self.start(payload_len, len);
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
                self.start(payload_len, len);
                Ok(Some(len - had))
            }
            None => {
                self.head_len = had + take;
                Ok(None)
            }
        }
    }

    fn start(&mut self, payload_len: u64, header_len: usize) {
        self.remaining = payload_len;
        self.frame_len = payload_len + header_len as u64;
    }

    /// Parses and checks a header at the start of `buf`: the expected
    /// opcode, unfragmented, the expected length (any length when
    /// compressed). Sets whether the frame is compressed and inflated.
    fn check(&mut self, buf: &[u8]) -> io::Result<Option<(u64, usize)>> {
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
        let compressed = match &self.inflater {
            Some(_) if first == (self.reply.first | 0x40) => true,
            _ if first == self.reply.first && payload_len == self.reply.size => false,
            _ => {
                return Err(protocol(&format!(
                    "unexpected reply header {first:#04x} with {payload_len} bytes"
                )));
            }
        };
        // Every compressed reply is inflated, as a client must to read it;
        // only the first `verify` are compared.
        self.inflating = compressed;
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
            content: Content::Pattern,
            compress: None,
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
                let mut parser = ReplyParser::new(s.reply_header(), u64::MAX, None);
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
        let mut parser = ReplyParser::new(s.reply_header(), u64::MAX, None);
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
        let mut parser = ReplyParser::new(s.reply_header(), 1, None);
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

    fn json_shape(size: usize, raw: bool) -> MessageShape {
        MessageShape {
            content: Content::Json,
            compress: Some(15),
            ..shape(size, raw)
        }
    }

    /// A server's compressed reply: the client frame's payload unmasked,
    /// RSV1 set, no mask.
    fn compressed_server_frame(s: &MessageShape) -> Vec<u8> {
        let payload = deflate::compress_message(&s.payload(), 15);
        let mut frame = vec![0xC1];
        push_len(&mut frame, 0, payload.len());
        frame.extend_from_slice(&payload);
        frame
    }

    fn agreed() -> Agreed {
        Agreed::from_answer(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        )
        .unwrap()
    }

    #[test]
    fn client_frames_are_compressed_with_rsv1_and_masked() {
        let s = json_shape(16 * 1024, false);
        let frame = s.client_frame();
        assert_eq!(frame[0], 0xC1);
        assert_eq!(frame[1] & 0x80, 0x80);
        let header = frame_header_len(&frame);
        let unmasked: Vec<u8> = frame[header..]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ MASK[i % 4])
            .collect();
        assert_eq!(unmasked, deflate::compress_message(&s.payload(), 15));
        // Realistic JSON shrinks several-fold.
        assert!(frame.len() * 4 < s.size, "{} bytes", frame.len());
    }

    #[test]
    fn compressed_replies_split_anywhere_inflate_and_count_wire_bytes() {
        for size in [256, 1024, 16 * 1024] {
            let s = json_shape(size, false);
            let frame = compressed_server_frame(&s);
            // Compressed, plain, compressed: a server may leave some out.
            let mut plain = s.clone();
            plain.compress = None;
            let mut plain_frame = vec![0x81];
            push_len(&mut plain_frame, 0, size);
            plain_frame.extend_from_slice(&plain.payload());
            let stream = [frame.clone(), plain_frame.clone(), frame.clone()].concat();
            let expected = s.expected_reply_payload();
            for cut in [1, 3, 13, 1000, 1 << 20] {
                let mut parser = ReplyParser::new(s.reply_header(), u64::MAX, Some(&agreed()));
                let done: usize = stream
                    .chunks(cut)
                    .map(|piece| parser.feed(piece, &expected).unwrap())
                    .sum();
                assert_eq!(done, 3, "size {size} cut {cut}");
                assert_eq!(parser.take_wire_bytes(), stream.len() as u64);
                assert_eq!(parser.take_wire_bytes(), 0);
            }
        }
    }

    #[test]
    fn a_changed_compressed_payload_is_caught() {
        let s = json_shape(1024, false);
        let mut other = s.clone();
        other.size = 1000;
        let mut frame = compressed_server_frame(&other);
        let mut parser = ReplyParser::new(s.reply_header(), 1, Some(&agreed()));
        assert!(parser.feed(&frame, &s.expected_reply_payload()).is_err());
        // Without deflate agreed, RSV1 is refused outright.
        frame = compressed_server_frame(&s);
        let mut parser = ReplyParser::new(s.reply_header(), 1, None);
        assert!(parser.feed(&frame, &s.expected_reply_payload()).is_err());
    }

    #[test]
    fn raw_mode_echoes_the_compressed_frame_itself() {
        let s = json_shape(1024, true);
        let template = FrameTemplate::new(&s, 2);
        let mut parser = ReplyParser::new(s.reply_header(), u64::MAX, None);
        let sent = template.next_slice(2 * template.frame_len());
        assert_eq!(parser.feed(sent, &s.expected_reply_payload()).unwrap(), 2);
        assert_eq!(parser.take_wire_bytes(), sent.len() as u64);
    }
}
