//! The client's side of permessage-deflate (RFC 7692): the offer, the
//! server's answer, and the per-message compression and inflation.
//!
//! - [`OFFER`] goes into the handshake; [`Agreed::from_answer`] reads the
//!   server's `Sec-WebSocket-Extensions` back.
//! - [`compress_message`] turns a payload into what a frame with RSV1
//!   carries: raw deflate, the final `00 00 ff ff` of the sync flush
//!   stripped (§7.2.1). The context is reset for every message (a new
//!   compressor each time), which the client may always do and our offer
//!   announces (`client_no_context_takeover`); so the same payload always
//!   compresses to the same bytes, and the load generator compresses its
//!   one message once and repeats the frame.
//! - [`Inflater`] takes a compressed reply in pieces, as reads deliver it,
//!   appends the trailer at the end (§7.2.2) and resets between messages
//!   when the server said `server_no_context_takeover`.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

/// What the load generator offers: permessage-deflate with no context
/// takeover on its own side, and any client window the server wants
/// (`client_max_window_bits` without a value). The wsroute default answers
/// `permessage-deflate; server_no_context_takeover; client_no_context_takeover`.
pub(crate) const OFFER: &str =
    "permessage-deflate; client_no_context_takeover; client_max_window_bits";

/// The zlib level the client compresses with: zlib's default, as browsers
/// use it. It sets what the server inflates, not what it compresses.
pub(crate) const CLIENT_LEVEL: u32 = 6;

/// The trailer a sync flush ends with, stripped from every compressed
/// message and put back before inflating.
pub(crate) const TRAILER: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The parameters the server's answer agreed to (RFC 7692 §7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Agreed {
    /// The server resets its compressor after each message: its replies
    /// can be inflated each on its own.
    pub(crate) server_no_context_takeover: bool,
    /// The client must reset its compressor (it always does).
    pub(crate) client_no_context_takeover: bool,
    /// The server's window, 8–15 (15 unless stated).
    pub(crate) server_max_window_bits: u8,
    /// The window the client may use, 8–15 (15 unless stated).
    pub(crate) client_max_window_bits: u8,
    /// The header value as the server sent it, for the report.
    pub(crate) answer: String,
}

impl Agreed {
    /// Reads the value of the server's `Sec-WebSocket-Extensions` header.
    /// An answer the offer did not allow is an error (the client must fail
    /// the connection, §7.1).
    pub(crate) fn from_answer(value: &str) -> Result<Self, String> {
        let mut extensions = value.split(',');
        let first = extensions.next().unwrap_or_default();
        if extensions.next().is_some() {
            return Err(format!("more than one extension accepted: `{value}`"));
        }
        let mut params = first.split(';').map(str::trim);
        if !params
            .next()
            .is_some_and(|name| name.eq_ignore_ascii_case("permessage-deflate"))
        {
            return Err(format!("an extension that was not offered: `{value}`"));
        }
        let mut agreed = Self {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            answer: value.trim().to_owned(),
        };
        let mut seen = Vec::new();
        for param in params {
            let (name, bits) = match param.split_once('=') {
                Some((name, bits)) => (name.trim(), Some(bits.trim().trim_matches('"'))),
                None => (param, None),
            };
            let name = name.to_ascii_lowercase();
            if seen.contains(&name) {
                return Err(format!("`{name}` twice in `{value}`"));
            }
            let window = |bits: Option<&str>| -> Result<u8, String> {
                bits.and_then(|b| b.parse::<u8>().ok())
                    .filter(|b| (8..=15).contains(b))
                    .ok_or(format!("`{name}` needs a value 8–15 in `{value}`"))
            };
            match (name.as_str(), bits) {
                ("server_no_context_takeover", None) => agreed.server_no_context_takeover = true,
                ("client_no_context_takeover", None) => agreed.client_no_context_takeover = true,
                ("server_max_window_bits", _) => agreed.server_max_window_bits = window(bits)?,
                ("client_max_window_bits", _) => agreed.client_max_window_bits = window(bits)?,
                _ => return Err(format!("unexpected parameter `{param}` in `{value}`")),
            }
            seen.push(name);
        }
        Ok(agreed)
    }

    /// The window the client compresses with: zlib cannot write raw
    /// deflate with a 256-byte window, so an answer of 8 cannot be met.
    pub(crate) fn client_window(&self) -> Result<u8, String> {
        if self.client_max_window_bits < 9 {
            return Err(format!(
                "client_max_window_bits={} is below what zlib can compress with",
                self.client_max_window_bits
            ));
        }
        Ok(self.client_max_window_bits)
    }
}

/// One message's payload as a compressed frame carries it: a fresh
/// compressor (no context taken over), a sync flush, the trailer removed.
pub(crate) fn compress_message(payload: &[u8], window_bits: u8) -> Vec<u8> {
    let mut compress =
        Compress::new_with_window_bits(Compression::new(CLIENT_LEVEL), false, window_bits);
    // Room for the worst case (stored blocks) and the flush, so that one
    // call does it all: a second sync flush would add an empty block.
    let mut out = Vec::with_capacity(payload.len() + payload.len() / 8 + 128);
    compress
        .compress_vec(payload, &mut out, FlushCompress::Sync)
        .expect("deflate of an in-memory buffer");
    assert!(
        compress.total_in() as usize == payload.len() && out.len() < out.capacity(),
        "the output buffer held the whole message"
    );
    if out.ends_with(&TRAILER) {
        out.truncate(out.len() - TRAILER.len());
    }
    out
}

/// Inflates compressed replies fed in pieces.
#[derive(Debug)]
pub(crate) struct Inflater {
    decompress: Decompress,
    /// Reset after each message (the server said
    /// `server_no_context_takeover`); otherwise the window carries over.
    reset_each: bool,
    out: Vec<u8>,
}

impl Inflater {
    pub(crate) fn new(agreed: &Agreed, expected_len: usize) -> Self {
        Self {
            // A 15-bit window inflates whatever window the server used.
            decompress: Decompress::new_with_window_bits(false, 15),
            reset_each: agreed.server_no_context_takeover,
            out: Vec::with_capacity(expected_len + 64),
        }
    }

    /// Inflates the next piece of the current message.
    pub(crate) fn feed(&mut self, piece: &[u8]) -> Result<(), String> {
        self.inflate(piece)
    }

    /// Ends the message: inflates the trailer and returns the payload.
    pub(crate) fn finish(&mut self) -> Result<&[u8], String> {
        self.inflate(&TRAILER)?;
        if self.reset_each {
            self.decompress.reset(false);
        }
        Ok(&self.out)
    }

    /// Inflates all of `input`, growing the output as it fills; returns
    /// with room to spare, so that nothing is left inside the inflater.
    fn inflate(&mut self, mut input: &[u8]) -> Result<(), String> {
        loop {
            if self.out.capacity() - self.out.len() < 1024 {
                self.out.reserve(self.out.capacity().max(4096));
            }
            let (in_before, out_before) = (self.decompress.total_in(), self.out.len());
            self.decompress
                .decompress_vec(input, &mut self.out, FlushDecompress::Sync)
                .map_err(|e| format!("inflate: {e}"))?;
            let used = (self.decompress.total_in() - in_before) as usize;
            input = &input[used..];
            if input.is_empty() && self.out.len() < self.out.capacity() {
                return Ok(());
            }
            if used == 0 && self.out.len() == out_before {
                return Err("inflate made no progress".into());
            }
        }
    }

    /// Forgets the last message's payload (after [`Self::finish`]).
    pub(crate) fn clear(&mut self) {
        self.out.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agreed(answer: &str) -> Agreed {
        Agreed::from_answer(answer).unwrap()
    }

    #[test]
    fn the_wsroute_default_answer_is_read() {
        let a =
            agreed("permessage-deflate; server_no_context_takeover; client_no_context_takeover");
        assert!(a.server_no_context_takeover && a.client_no_context_takeover);
        assert_eq!(
            (a.server_max_window_bits, a.client_max_window_bits),
            (15, 15)
        );
        let a =
            agreed("permessage-deflate;client_max_window_bits=10; server_max_window_bits=\"12\"");
        assert_eq!(
            (a.server_max_window_bits, a.client_max_window_bits),
            (12, 10)
        );
        assert!(!a.server_no_context_takeover);
    }

    #[test]
    fn answers_the_offer_did_not_allow_are_refused() {
        for bad in [
            "x-webkit-deflate-frame",
            "permessage-deflate; foo",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate, permessage-deflate",
        ] {
            assert!(Agreed::from_answer(bad).is_err(), "{bad}");
        }
        assert!(
            agreed("permessage-deflate; client_max_window_bits=8")
                .client_window()
                .is_err()
        );
    }

    #[test]
    fn a_compressed_message_drops_the_trailer_and_inflates_back() {
        let payload =
            br#"[{"id":1,"name":"a"},{"id":2,"name":"a"},{"id":3,"name":"a"}]"#.repeat(50);
        let compressed = compress_message(&payload, 15);
        assert!(!compressed.ends_with(&TRAILER));
        assert!(compressed.len() < payload.len() / 4, "{}", compressed.len());
        // No context carried over: the same payload gives the same bytes.
        assert_eq!(compress_message(&payload, 15), compressed);

        let mut inflater =
            Inflater::new(&agreed("permessage-deflate; server_no_context_takeover"), 0);
        for _ in 0..2 {
            for piece in compressed.chunks(7) {
                inflater.feed(piece).unwrap();
            }
            assert_eq!(inflater.finish().unwrap(), &payload[..]);
            inflater.clear();
        }
    }

    #[test]
    fn with_context_takeover_the_window_carries_over() {
        // The server's compressor keeps its window: the second message
        // refers back into the first, so the inflater must not reset.
        let payload = b"{\"hello\":\"world\",\"n\":12345}".repeat(20);
        let mut server = Compress::new_with_window_bits(Compression::new(6), false, 15);
        let mut frames = Vec::new();
        for _ in 0..2 {
            let mut out = Vec::with_capacity(payload.len() + 64);
            server
                .compress_vec(&payload, &mut out, FlushCompress::Sync)
                .unwrap();
            assert!(out.ends_with(&TRAILER));
            out.truncate(out.len() - 4);
            frames.push(out);
        }
        assert!(frames[1].len() < frames[0].len());
        let mut inflater = Inflater::new(&agreed("permessage-deflate"), payload.len());
        for frame in &frames {
            inflater.feed(frame).unwrap();
            assert_eq!(inflater.finish().unwrap(), &payload[..]);
            inflater.clear();
        }
    }

    #[test]
    fn an_empty_message_compresses_and_inflates() {
        let compressed = compress_message(b"", 15);
        let mut inflater = Inflater::new(&agreed("permessage-deflate"), 0);
        inflater.feed(&compressed).unwrap();
        assert!(inflater.finish().unwrap().is_empty());
    }
}
