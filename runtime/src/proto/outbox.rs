//! Encoded frames waiting to be written, as a list of chunks for one
//! vectored write.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};

use super::frame::{FrameHeader, OpCode};

/// Payloads at least this long are queued by reference rather than copied
/// next to their header. Below it a copy costs less than what a second
/// iovec costs: a socket write of one slice is a plain `send`, while
/// `writev` goes through the VFS layer and imports the iovec array
/// (measured: about 0.5 µs per 1 KiB message, more than copying 16 KiB).
pub(crate) const COPY_BELOW: usize = 16 * 1024;

/// Frames encoded for sending. Small frames are packed together into one
/// buffer; large payloads are queued as the caller's `Bytes`, uncopied.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    /// Finished chunks, oldest first; written before `tail`.
    chunks: VecDeque<Bytes>,
    /// Where new headers and small payloads are appended.
    tail: BytesMut,
    /// Bytes queued in all, for bounding and for `len()`.
    len: usize,
}

impl Outbox {
    /// Queues one unmasked server frame.
    pub(crate) fn push_frame(&mut self, opcode: OpCode, payload: Bytes) {
        self.push_frame_with_rsv(opcode, 0, payload);
    }

    /// Queues one whole frame with the RSV bits given (`0b100`: a
    /// compressed message, RFC 7692 §6).
    pub(crate) fn push_frame_with_rsv(&mut self, opcode: OpCode, rsv: u8, payload: Bytes) {
        let header = FrameHeader::server(opcode, rsv, payload.len());
        self.len += header.encoded_len() + payload.len();
        header.encode(&mut self.tail);
        if payload.len() < COPY_BELOW {
            self.tail.extend_from_slice(&payload);
        } else {
            self.chunks.push_back(self.tail.split().freeze());
            self.chunks.push_back(payload);
        }
    }

    /// Queues one whole frame encoded elsewhere (see [`encode_frame`]),
    /// as it is: a small one is copied into the tail with its neighbours,
    /// a large one queued as the caller's `Bytes`, uncopied.
    pub(crate) fn push_encoded(&mut self, frame: Bytes) {
        self.len += frame.len();
        if frame.len() < COPY_BELOW {
            self.tail.extend_from_slice(&frame);
        } else {
            if !self.tail.is_empty() {
                self.chunks.push_back(self.tail.split().freeze());
            }
            self.chunks.push_back(frame);
        }
    }

    /// Queues the unwritten end of a frame whose start was written to the
    /// socket behind this outbox's back, ahead of everything queued: the
    /// peer must get the frame whole before any other byte. Only valid
    /// while nothing queued here has been written in part.
    pub(crate) fn push_front_rest(&mut self, rest: Bytes) {
        self.len += rest.len();
        self.chunks.push_front(rest);
    }

    /// Bytes waiting to be written.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing waits to be written.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Fills `dst` with the waiting bytes, in order; returns how many slices
    /// were filled.
    pub(crate) fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        let pieces = self
            .chunks
            .iter()
            .map(|c| &c[..])
            .chain(std::iter::once(&self.tail[..]));
        for piece in pieces.filter(|p| !p.is_empty()) {
            if n == dst.len() {
                break;
            }
            dst[n] = IoSlice::new(piece);
            n += 1;
        }
        n
    }

    /// Marks `n` bytes as written.
    pub(crate) fn advance(&mut self, mut n: usize) {
        assert!(n <= self.len, "advanced past the queued bytes");
        self.len -= n;
        while n > 0 {
            match self.chunks.front_mut() {
                Some(front) if front.len() <= n => {
                    n -= front.len();
                    self.chunks.pop_front();
                }
                Some(front) => {
                    front.advance(n);
                    n = 0;
                }
                None => {
                    self.tail.advance(n);
                    n = 0;
                }
            }
        }
        // `advance` on an emptied BytesMut keeps its capacity; clearing
        // lets the next frame reuse the allocation from its start.
        if self.tail.is_empty() {
            self.tail.clear();
        }
    }

    /// Takes every waiting byte as one contiguous buffer (for tests and
    /// simple drivers; the tokio driver writes vectored).
    #[cfg(any(test, feature = "internals"))]
    pub(crate) fn take_all(&mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        for chunk in self.chunks.drain(..) {
            out.extend_from_slice(&chunk);
        }
        out.extend_from_slice(&self.tail);
        self.tail.clear();
        self.len = 0;
        out
    }

    /// Gives back a large tail buffer once everything has been written.
    pub(crate) fn shrink_if_idle(&mut self, keep: usize) {
        if self.is_empty() && self.tail.capacity() > keep {
            self.tail = BytesMut::new();
        }
    }
}

/// Encodes one whole, unmasked server frame (header and payload in one
/// buffer), for a message sent as it is to many connections: with `rsv`
/// 0 an uncompressed frame, valid whatever a connection negotiated (RSV1
/// is per message), which leaves its compressor's context alone; with
/// `rsv` 0b100 a payload compressed once for every connection without
/// server context takeover and with the same window and level.
pub(crate) fn encode_frame(opcode: OpCode, rsv: u8, payload: &[u8]) -> Bytes {
    let header = FrameHeader::server(opcode, rsv, payload.len());
    let mut buf = BytesMut::with_capacity(header.encoded_len() + payload.len());
    header.encode(&mut buf);
    buf.extend_from_slice(payload);
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vectored(outbox: &Outbox) -> Vec<u8> {
        let mut slices = [IoSlice::new(&[]); 16];
        let n = outbox.chunks_vectored(&mut slices);
        slices[..n].iter().flat_map(|s| s.iter().copied()).collect()
    }

    #[test]
    fn small_frames_pack_into_one_chunk() {
        let mut o = Outbox::default();
        o.push_frame(OpCode::Text, Bytes::from_static(b"hi"));
        o.push_frame(OpCode::Binary, Bytes::from_static(&[1, 2, 3]));
        let mut slices = [IoSlice::new(&[]); 4];
        assert_eq!(o.chunks_vectored(&mut slices), 1);
        assert_eq!(vectored(&o), [0x81, 2, b'h', b'i', 0x82, 3, 1, 2, 3]);
        assert_eq!(o.len(), 9);
    }

    #[test]
    fn large_payloads_are_queued_uncopied_and_partial_writes_resume() {
        let big = Bytes::from(vec![7u8; COPY_BELOW + 5000]);
        let mut o = Outbox::default();
        o.push_frame(OpCode::Binary, big.clone());
        o.push_frame(OpCode::Pong, Bytes::new());
        let len = (COPY_BELOW + 5000) as u16;
        let mut expected = vec![0x82, 126];
        expected.extend_from_slice(&len.to_be_bytes());
        expected.extend_from_slice(&big);
        expected.extend_from_slice(&[0x8A, 0]);
        assert_eq!(vectored(&o), expected);

        // Write in odd-sized pieces: the remaining bytes stay in order.
        let mut written = Vec::new();
        while !o.is_empty() {
            let step = vectored(&o).len().min(777);
            written.extend_from_slice(&vectored(&o)[..step]);
            o.advance(step);
        }
        assert_eq!(written, expected);
    }

    #[test]
    fn the_rest_of_a_frame_written_elsewhere_goes_first() {
        let mut o = Outbox::default();
        o.push_frame(OpCode::Pong, Bytes::new());
        o.push_encoded(Bytes::from(vec![9u8; COPY_BELOW]));
        o.push_front_rest(Bytes::from_static(b"st"));
        let written = vectored(&o);
        assert_eq!(&written[..4], [b's', b't', 0x8A, 0]);
        assert_eq!(o.len(), written.len());
        o.advance(3);
        assert_eq!(&vectored(&o)[..1], [0]);
    }

    #[test]
    fn pre_encoded_frames_keep_their_order_and_large_ones_their_allocation() {
        let small = encode_frame(OpCode::Text, 0, b"hi");
        assert_eq!(&small[..], [0x81, 2, b'h', b'i']);
        let big = encode_frame(OpCode::Binary, 0, &vec![7u8; COPY_BELOW]);
        let mut o = Outbox::default();
        o.push_frame(OpCode::Text, Bytes::from_static(b"a"));
        o.push_encoded(small.clone());
        o.push_encoded(big.clone());
        o.push_frame(OpCode::Text, Bytes::from_static(b"b"));
        let mut expected = vec![0x81, 1, b'a'];
        expected.extend_from_slice(&small);
        expected.extend_from_slice(&big);
        expected.extend_from_slice(&[0x81, 1, b'b']);
        assert_eq!(vectored(&o), expected);
        assert_eq!(o.len(), expected.len());
        let mut slices = [IoSlice::new(&[]); 4];
        assert_eq!(o.chunks_vectored(&mut slices), 3);
        assert_eq!(slices[1].as_ptr(), big.as_ptr(), "queued uncopied");
    }
}
