//! Compressing and inflating messages (RFC 7692 §7.2), with the zlib
//! state shared per thread wherever the parameters allow.
//!
//! A zlib compressor with a 32 KiB window holds about 256 KiB, an inflater
//! about 40 KiB. With no context takeover, a context carries nothing from
//! one message to the next, so each thread keeps one of each and lends it
//! to whichever connection is compressing or inflating a whole message: a
//! connection at rest holds no zlib state at all. A connection owns a
//! context only when the parameters make it keep one (context takeover),
//! or, for the inflater, while a fragmented message is arriving.

use std::cell::RefCell;

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::{DeflateConfig, DeflateParams};
use crate::proto::ProtocolError;
use crate::proto::utf8::Utf8Validator;

/// What every compressed message ends with once compressed with a sync
/// flush, and what the sender strips (RFC 7692 §7.2.1) and the receiver
/// appends back (§7.2.2).
const TRAILER: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// How much an inflated message may grow by at first: the output then
/// doubles, but never past the limit plus one byte, so a small message
/// costs a small buffer and a bomb is stopped having allocated at most
/// the limit.
const FIRST_STEP: usize = 4 * 1024;

/// The window the inflaters use: the largest, which inflates what any
/// smaller window produced.
const INFLATE_WINDOW_BITS: u8 = 15;

thread_local! {
    /// One compressor per window size and level in use on this thread, and
    /// one inflater, lent for one message at a time.
    static SHARED: RefCell<Shared> = const {
        RefCell::new(Shared {
            compressors: Vec::new(),
            inflater: None,
        })
    };
}

struct Shared {
    compressors: Vec<(u8, u32, Compress)>,
    inflater: Option<Decompress>,
}

/// One connection's permessage-deflate state: the parameters agreed, and
/// the zlib contexts it owns (none at rest under the default parameters).
pub(crate) struct Codec {
    params: DeflateParams,
    level: u32,
    min_size: usize,
    /// Kept between messages when the server keeps its context.
    compressor: Option<Box<Compress>>,
    /// Kept between messages when the client keeps its context; otherwise
    /// held only while a fragmented message arrives.
    inflater: Option<Box<Decompress>>,
    /// What a fragmented compressed message has inflated to so far.
    pending: Vec<u8>,
    /// Its compressed bytes so far.
    pending_wire: u64,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codec")
            .field("params", &self.params)
            .field("level", &self.level)
            .field("min_size", &self.min_size)
            .field("owns_compressor", &self.compressor.is_some())
            .field("owns_inflater", &self.inflater.is_some())
            .finish()
    }
}

impl Codec {
    pub(crate) fn new(params: DeflateParams, config: &DeflateConfig) -> Self {
        Self {
            params,
            level: config.level.min(9),
            min_size: config.min_size,
            compressor: None,
            inflater: None,
            pending: Vec::new(),
            pending_wire: 0,
        }
    }

    pub(crate) fn params(&self) -> &DeflateParams {
        &self.params
    }

    /// Whether this connection holds zlib state now.
    #[cfg(test)]
    pub(crate) fn holds_context(&self) -> bool {
        self.compressor.is_some() || self.inflater.is_some()
    }

    /// The payload of `data` compressed for a frame with RSV1, or `None`
    /// to send it as it is — allowed for any message (RFC 7692 §6): when
    /// it is below the size worth compressing, when compressing would not
    /// make it smaller, or when the client asked for a window zlib cannot
    /// compress with (8 bits: the message then goes uncompressed, which
    /// honours any window).
    pub(crate) fn compress(&mut self, data: &[u8]) -> Option<Vec<u8>> {
        let bits = self.params.server_max_window_bits;
        if data.len() < self.min_size || !(9..=15).contains(&bits) {
            return None;
        }
        if !self.params.server_no_context_takeover {
            let level = self.level;
            let compressor = self
                .compressor
                .get_or_insert_with(|| Box::new(new_compressor(level, bits)));
            // Sent whatever its size: the client's window must see what
            // ours saw.
            return deflate(compressor, data);
        }
        compress_fresh(self.level, bits, data)
    }

    /// Compressed bytes of the fragmented message arriving.
    pub(crate) fn pending_wire(&self) -> u64 {
        self.pending_wire
    }

    /// What the fragmented message arriving holds inflated (capacity).
    pub(crate) fn pending_capacity(&self) -> usize {
        self.pending.capacity()
    }

    /// Inflates one frame's `payload` of a compressed message, checking
    /// each new piece as UTF-8 if `utf8` is given, and failing once the
    /// message inflates to more than `limit` bytes. Returns the whole
    /// message at its final frame (`fin`), and an empty one before.
    pub(crate) fn inflate(
        &mut self,
        payload: &[u8],
        first: bool,
        fin: bool,
        limit: u64,
        utf8: Option<&mut Utf8Validator>,
    ) -> Result<Bytes, ProtocolError> {
        let mut out = std::mem::take(&mut self.pending);
        let result = self.inflate_onto(payload, first, fin, &mut out, limit, utf8);
        match result {
            Ok(()) if fin => {
                self.pending_wire = 0;
                Ok(Bytes::from(out))
            }
            Ok(()) => {
                self.pending_wire += payload.len() as u64;
                self.pending = out;
                Ok(Bytes::new())
            }
            Err(e) => {
                self.pending_wire = 0;
                Err(e)
            }
        }
    }

    /// See [`inflate`](Self::inflate): a message in one frame borrows the
    /// thread's inflater, a fragmented one gets its own until its end.
    fn inflate_onto(
        &mut self,
        payload: &[u8],
        first: bool,
        fin: bool,
        out: &mut Vec<u8>,
        limit: u64,
        utf8: Option<&mut Utf8Validator>,
    ) -> Result<(), ProtocolError> {
        let keep = !self.params.client_no_context_takeover;
        if keep || !(first && fin) {
            let inflater = self
                .inflater
                .get_or_insert_with(|| Box::new(new_inflater()));
            let result = inflate(inflater, payload, fin, out, limit, utf8);
            if fin && !keep || result.is_err() {
                self.inflater = None;
            }
            return result;
        }
        SHARED.with(|shared| {
            let mut shared = shared.borrow_mut();
            let inflater = shared.inflater.get_or_insert_with(new_inflater);
            let result = inflate(inflater, payload, fin, out, limit, utf8);
            inflater.reset(false);
            result
        })
    }

    /// Drops the inflater and the partial message of a connection that
    /// reads no more.
    pub(crate) fn release_inflater(&mut self) {
        self.inflater = None;
        self.pending = Vec::new();
        self.pending_wire = 0;
    }
}

/// `data` compressed from a fresh context with this thread's compressor
/// for `level` and `bits` (9–15), or `None` if that would not make it
/// smaller: what a connection without server context takeover sends, the
/// same bytes for every such connection with these parameters.
pub(crate) fn compress_fresh(level: u32, bits: u8, data: &[u8]) -> Option<Vec<u8>> {
    SHARED.with(|shared| {
        let mut shared = shared.borrow_mut();
        let compressor = shared.compressor(level, bits);
        let out = deflate(compressor, data);
        compressor.reset();
        out.filter(|out| out.len() < data.len())
    })
}

impl Shared {
    fn compressor(&mut self, level: u32, bits: u8) -> &mut Compress {
        let at = match self
            .compressors
            .iter()
            .position(|(b, l, _)| *b == bits && *l == level)
        {
            Some(at) => at,
            None => {
                self.compressors
                    .push((bits, level, new_compressor(level, bits)));
                self.compressors.len() - 1
            }
        };
        &mut self.compressors[at].2
    }
}

fn new_compressor(level: u32, bits: u8) -> Compress {
    Compress::new_with_window_bits(Compression::new(level), false, bits)
}

fn new_inflater() -> Decompress {
    Decompress::new_with_window_bits(false, INFLATE_WINDOW_BITS)
}

/// Raw deflate of `data` with a sync flush, the trailer stripped.
fn deflate(compressor: &mut Compress, data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    let start = compressor.total_in();
    loop {
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(64));
        }
        let consumed = (compressor.total_in() - start) as usize;
        compressor
            .compress_vec(&data[consumed..], &mut out, FlushCompress::Sync)
            .ok()?;
        let consumed = (compressor.total_in() - start) as usize;
        // Room left after a sync flush means the flush is complete.
        if consumed == data.len() && out.len() < out.capacity() {
            break;
        }
    }
    if !out.ends_with(&TRAILER) {
        return None;
    }
    out.truncate(out.len() - TRAILER.len());
    Some(out)
}

/// Inflates `payload` (and, at the message's end, the trailer) onto `out`.
fn inflate(
    inflater: &mut Decompress,
    payload: &[u8],
    fin: bool,
    out: &mut Vec<u8>,
    limit: u64,
    mut utf8: Option<&mut Utf8Validator>,
) -> Result<(), ProtocolError> {
    let trailer: &[u8] = if fin { &TRAILER } else { &[] };
    for (at_trailer, input) in [(false, payload), (true, trailer)] {
        let mut consumed = 0;
        loop {
            if out.len() == out.capacity() {
                grow(out, limit)?;
            }
            let (in_before, out_before) = (inflater.total_in(), out.len());
            let status = inflater
                .decompress_vec(&input[consumed..], out, FlushDecompress::None)
                .map_err(|_| ProtocolError::InvalidCompressedData)?;
            consumed += (inflater.total_in() - in_before) as usize;
            if let Some(utf8) = utf8.as_deref_mut() {
                // Fail fast: invalid text fails before the rest inflates.
                utf8.feed(&out[out_before..])
                    .map_err(|_| ProtocolError::InvalidUtf8)?;
            }
            if out.len() as u64 > limit {
                return Err(ProtocolError::PayloadTooBig {
                    limit,
                    size: out.len() as u64,
                });
            }
            if status == Status::StreamEnd {
                // The client closed its deflate stream (a final block):
                // nothing may follow in this message, and the next one
                // starts a new stream.
                inflater.reset(false);
                if consumed < input.len() && !at_trailer {
                    return Err(ProtocolError::InvalidCompressedData);
                }
                return Ok(());
            }
            let stalled = inflater.total_in() == in_before && out.len() == out_before;
            // Done with this input once it is all taken and the inflater
            // left room unfilled: it has nothing more to give.
            if consumed == input.len() && out.len() < out.capacity() || stalled {
                break;
            }
        }
    }
    Ok(())
}

/// Makes room in `out`: doubling, from a small first step, but never past
/// one byte over `limit`, which is enough to tell it was passed.
fn grow(out: &mut Vec<u8>, limit: u64) -> Result<(), ProtocolError> {
    let cap = usize::try_from(limit.saturating_add(1)).unwrap_or(usize::MAX);
    let target = out.capacity().saturating_mul(2).max(FIRST_STEP).min(cap);
    if target <= out.len() {
        return Err(ProtocolError::PayloadTooBig {
            limit,
            size: out.len() as u64,
        });
    }
    out.reserve_exact(target - out.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(server_keeps: bool, client_keeps: bool, server_bits: u8) -> DeflateParams {
        DeflateParams {
            server_no_context_takeover: !server_keeps,
            client_no_context_takeover: !client_keeps,
            server_max_window_bits: server_bits,
            client_max_window_bits: 15,
        }
    }

    fn codec(p: DeflateParams) -> Codec {
        let config = DeflateConfig {
            min_size: 0,
            ..DeflateConfig::default()
        };
        Codec::new(p, &config)
    }

    /// What a client would do with our frames: inflate with the trailer.
    fn client_inflate(inflater: &mut Decompress, payload: &[u8]) -> Vec<u8> {
        let mut input = payload.to_vec();
        input.extend_from_slice(&TRAILER);
        let mut out = Vec::with_capacity(1 << 20);
        inflater
            .decompress_vec(&input, &mut out, FlushDecompress::Sync)
            .unwrap();
        out
    }

    /// What a client sends: raw deflate with a sync flush, trailer stripped.
    fn client_deflate(data: &[u8]) -> Vec<u8> {
        deflate(&mut new_compressor(6, 15), data).unwrap()
    }

    const TEXT: &[u8] = br#"{"id":1,"name":"alice","text":"hello hello hello hello hello"}"#;

    #[test]
    fn rfc_7692_example_hello_inflates() {
        // §7.2.3.1: "Hello" compressed in one frame.
        let mut c = codec(params(false, false, 15));
        let mut out = Vec::new();
        c.inflate_onto(
            &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
            true,
            true,
            &mut out,
            100,
            None,
        )
        .unwrap();
        assert_eq!(out, b"Hello");
        assert!(
            !c.holds_context(),
            "a one-frame message borrows the thread's inflater"
        );
    }

    #[test]
    fn rfc_7692_example_fragmented_hello_inflates_across_frames() {
        // §7.2.3.1, the same compressed bytes split over two frames.
        let mut c = codec(params(false, false, 15));
        let mut out = Vec::new();
        c.inflate_onto(&[0xf2, 0x48, 0xcd], true, false, &mut out, 100, None)
            .unwrap();
        assert!(c.holds_context(), "a fragmented message owns an inflater");
        c.inflate_onto(&[0xc9, 0xc9, 0x07, 0x00], false, true, &mut out, 100, None)
            .unwrap();
        assert_eq!(out, b"Hello");
        assert!(!c.holds_context(), "given back at the message's end");
    }

    #[test]
    fn what_we_compress_a_client_inflates() {
        for server_keeps in [false, true] {
            let mut c = codec(params(server_keeps, false, 15));
            let mut client = new_inflater();
            for _ in 0..3 {
                let wire = c.compress(TEXT).unwrap();
                assert!(wire.len() < TEXT.len());
                assert_eq!(client_inflate(&mut client, &wire), TEXT);
                if !server_keeps {
                    client.reset(false);
                }
            }
            assert_eq!(c.holds_context(), server_keeps);
        }
    }

    #[test]
    fn context_takeover_makes_a_repeated_message_smaller() {
        let mut keeps = codec(params(true, false, 15));
        let mut resets = codec(params(false, false, 15));
        let first = keeps.compress(TEXT).unwrap();
        let again = keeps.compress(TEXT).unwrap();
        assert!(
            again.len() < first.len() / 2,
            "{} vs {}",
            again.len(),
            first.len()
        );
        assert_eq!(
            resets.compress(TEXT).unwrap(),
            resets.compress(TEXT).unwrap()
        );
    }

    #[test]
    fn small_incompressible_and_window_8_messages_go_uncompressed() {
        let config = DeflateConfig {
            min_size: 32,
            ..DeflateConfig::default()
        };
        let mut c = Codec::new(params(false, false, 15), &config);
        assert_eq!(c.compress(b"short"), None);
        let noise: Vec<u8> = (0..200u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        assert_eq!(c.compress(&noise), None, "not smaller: sent as it is");
        let mut c = codec(params(false, false, 8));
        assert_eq!(c.compress(TEXT), None);
    }

    #[test]
    fn the_client_s_context_is_kept_when_it_keeps_it() {
        let mut c = codec(params(false, true, 15));
        let mut client = new_compressor(6, 15);
        let mut message = Vec::new();
        for _ in 0..3 {
            let wire = deflate(&mut client, TEXT).unwrap();
            let mut out = Vec::new();
            c.inflate_onto(&wire, true, true, &mut out, 1 << 20, None)
                .unwrap();
            assert_eq!(out, TEXT);
            message = wire;
        }
        assert!(message.len() < 20, "the client's later messages refer back");
        assert!(c.holds_context());
    }

    #[test]
    fn a_bomb_stops_at_the_limit_without_allocating_the_whole() {
        let zeros = vec![0u8; 64 << 20];
        let wire = client_deflate(&zeros);
        assert!(wire.len() < 128 << 10, "{}", wire.len());
        let mut c = codec(params(false, false, 15));
        let mut out = Vec::new();
        let limit = 1 << 20;
        let err = c
            .inflate_onto(&wire, true, true, &mut out, limit, None)
            .unwrap_err();
        assert!(
            matches!(err, ProtocolError::PayloadTooBig { .. }),
            "{err:?}"
        );
        assert!(out.capacity() as u64 <= limit + 1, "{}", out.capacity());
    }

    #[test]
    fn inflated_text_is_checked_as_it_comes() {
        let mut bad = vec![b'a'; 100_000];
        bad[10] = 0xff;
        let wire = client_deflate(&bad);
        let mut c = codec(params(false, false, 15));
        let mut out = Vec::new();
        let mut utf8 = Utf8Validator::default();
        let err = c
            .inflate_onto(&wire, true, true, &mut out, u64::MAX, Some(&mut utf8))
            .unwrap_err();
        assert_eq!(err, ProtocolError::InvalidUtf8);
        assert!(out.len() < bad.len(), "failed before inflating it all");
    }

    #[test]
    fn garbage_is_invalid_compressed_data() {
        let mut c = codec(params(false, false, 15));
        let mut out = Vec::new();
        let err = c
            .inflate_onto(&[0xff, 0xff, 0xff, 0xff], true, true, &mut out, 1000, None)
            .unwrap_err();
        assert_eq!(err, ProtocolError::InvalidCompressedData);
    }
}
