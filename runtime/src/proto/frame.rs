//! RFC 6455 §5.2 frame headers: parsing from received bytes, encoding into a
//! caller's buffer.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! |     Extended payload length continued, if payload len == 127  |
//! + - - - - - - - - - - - - - - - +-------------------------------+
//! |                               |Masking-key, if MASK set to 1  |
//! +-------------------------------+-------------------------------+
//! ```

use bytes::BufMut;

use super::ProtocolError;

/// Longest payload a control frame may carry (§5.5).
pub const MAX_CONTROL_PAYLOAD: u64 = 125;

/// A frame's opcode (§5.2). Reserved opcodes never make it into this type:
/// parsing refuses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// `0x0`: the next fragment of a message.
    Continuation,
    /// `0x1`: the first frame of a text message.
    Text,
    /// `0x2`: the first frame of a binary message.
    Binary,
    /// `0x8`: the close handshake.
    Close,
    /// `0x9`: a ping, to be answered with a pong.
    Ping,
    /// `0xA`: a pong.
    Pong,
}

impl OpCode {
    /// Decodes the low four bits of a frame's first byte.
    pub fn from_bits(bits: u8) -> Result<Self, ProtocolError> {
        Ok(match bits {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            other => return Err(ProtocolError::ReservedOpcode(other)),
        })
    }

    /// The opcode's four bits.
    pub fn bits(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    /// Close, ping and pong are control frames (§5.5).
    pub fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Whether this is the final fragment of its message.
    pub fin: bool,
    /// The three RSV bits, in the low bits (RSV1 = `0b100`).
    pub rsv: u8,
    /// What the frame carries.
    pub opcode: OpCode,
    /// The masking key, if the MASK bit was set.
    pub mask: Option<[u8; 4]>,
    /// The payload length the header announces. Untrusted: never size an
    /// allocation from it.
    pub payload_len: u64,
}

impl FrameHeader {
    /// The header of a whole, unmasked server frame.
    pub(crate) fn server(opcode: OpCode, rsv: u8, payload_len: usize) -> Self {
        Self {
            fin: true,
            rsv,
            opcode,
            mask: None,
            payload_len: payload_len as u64,
        }
    }

    /// Parses a header from the start of `buf` without consuming anything.
    ///
    /// Returns `Ok(None)` while `buf` holds only part of a header, so a
    /// header split across reads at any byte parses once the rest arrives.
    /// On success returns the header and its length in bytes.
    ///
    /// Rules that a header alone decides are checked here: reserved
    /// opcodes, a 64-bit length with its top bit set, and control frames
    /// that are fragmented or longer than 125 bytes.
    pub fn parse(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        let [first, second, ..] = *buf else {
            return Ok(None);
        };
        let fin = first & 0x80 != 0;
        let rsv = (first >> 4) & 0x07;
        let opcode = OpCode::from_bits(first & 0x0F)?;
        let masked = second & 0x80 != 0;
        let short_len = second & 0x7F;

        let (payload_len, len_bytes) = match short_len {
            126 => {
                let Some(bytes) = buf.get(2..4) else {
                    return Ok(None);
                };
                (u64::from(u16::from_be_bytes([bytes[0], bytes[1]])), 2)
            }
            127 => {
                let Some(bytes) = buf.get(2..10) else {
                    return Ok(None);
                };
                let mut be = [0u8; 8];
                be.copy_from_slice(bytes);
                let len = u64::from_be_bytes(be);
                if len >> 63 != 0 {
                    return Err(ProtocolError::InvalidLength);
                }
                (len, 8)
            }
            n => (u64::from(n), 0),
        };

        if opcode.is_control() {
            if !fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
            if payload_len > MAX_CONTROL_PAYLOAD {
                return Err(ProtocolError::ControlFrameTooLong(payload_len));
            }
        }

        let mut header_len = 2 + len_bytes;
        let mask = if masked {
            let Some(key) = buf.get(header_len..header_len + 4) else {
                return Ok(None);
            };
            header_len += 4;
            Some([key[0], key[1], key[2], key[3]])
        } else {
            None
        };

        Ok(Some((
            FrameHeader {
                fin,
                rsv,
                opcode,
                mask,
                payload_len,
            },
            header_len,
        )))
    }

    /// How many bytes [`encode`](Self::encode) writes.
    pub fn encoded_len(&self) -> usize {
        let len_bytes = match self.payload_len {
            0..=125 => 0,
            126..=0xFFFF => 2,
            _ => 8,
        };
        2 + len_bytes + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Appends the header to `dst`, using the shortest length encoding as
    /// §5.2 requires.
    pub fn encode(&self, dst: &mut impl BufMut) {
        let first = u8::from(self.fin) << 7 | (self.rsv & 0x07) << 4 | self.opcode.bits();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        dst.put_u8(first);
        match self.payload_len {
            // The match arm bounds the value, so the cast cannot truncate.
            len @ 0..=125 => dst.put_u8(mask_bit | len as u8),
            len @ 126..=0xFFFF => {
                dst.put_u8(mask_bit | 126);
                dst.put_u16(len as u16);
            }
            len => {
                dst.put_u8(mask_bit | 127);
                dst.put_u64(len);
            }
        }
        if let Some(key) = self.mask {
            dst.put_slice(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(opcode: OpCode, len: u64, mask: Option<[u8; 4]>) -> FrameHeader {
        FrameHeader {
            fin: true,
            rsv: 0,
            opcode,
            mask,
            payload_len: len,
        }
    }

    fn encoded(h: &FrameHeader) -> Vec<u8> {
        let mut v = Vec::new();
        h.encode(&mut v);
        assert_eq!(v.len(), h.encoded_len());
        v
    }

    #[test]
    fn rfc_example_single_frame_unmasked_text() {
        // §5.7: a single-frame unmasked text message "Hello".
        let bytes = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        let (h, n) = FrameHeader::parse(&bytes).unwrap().unwrap();
        assert_eq!(n, 2);
        assert_eq!(h, header(OpCode::Text, 5, None));
    }

    #[test]
    fn rfc_example_single_frame_masked_text() {
        let bytes = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let (h, n) = FrameHeader::parse(&bytes).unwrap().unwrap();
        assert_eq!(n, 6);
        assert_eq!(h, header(OpCode::Text, 5, Some([0x37, 0xfa, 0x21, 0x3d])));
    }

    #[test]
    fn rfc_example_fragmented_text() {
        let (h, _) = FrameHeader::parse(&[0x01, 0x03]).unwrap().unwrap();
        assert!(!h.fin);
        assert_eq!(h.opcode, OpCode::Text);
        let (h, _) = FrameHeader::parse(&[0x80, 0x02]).unwrap().unwrap();
        assert!(h.fin);
        assert_eq!(h.opcode, OpCode::Continuation);
    }

    #[test]
    fn sixteen_and_sixty_four_bit_lengths() {
        // §5.7: 256 bytes binary in a single unmasked frame.
        let (h, n) = FrameHeader::parse(&[0x82, 0x7E, 0x01, 0x00])
            .unwrap()
            .unwrap();
        assert_eq!((h.payload_len, n), (256, 4));
        // §5.7: 64 KiB binary in a single unmasked frame.
        let bytes = [0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00];
        let (h, n) = FrameHeader::parse(&bytes).unwrap().unwrap();
        assert_eq!((h.payload_len, n), (65536, 10));
    }

    #[test]
    fn sixty_four_bit_length_with_top_bit_set_is_refused() {
        let bytes = [0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            FrameHeader::parse(&bytes),
            Err(ProtocolError::InvalidLength)
        );
        let largest = [0x82, 0x7F, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        let (h, _) = FrameHeader::parse(&largest).unwrap().unwrap();
        assert_eq!(h.payload_len, i64::MAX as u64);
    }

    #[test]
    fn every_split_point_of_every_length_form_waits_then_parses() {
        let key = Some([1, 2, 3, 4]);
        for h in [
            header(OpCode::Binary, 5, None),
            header(OpCode::Binary, 5, key),
            header(OpCode::Text, 300, None),
            header(OpCode::Text, 300, key),
            header(OpCode::Binary, 1 << 40, None),
            header(OpCode::Binary, 1 << 40, key),
        ] {
            let bytes = encoded(&h);
            for cut in 0..bytes.len() {
                assert_eq!(
                    FrameHeader::parse(&bytes[..cut]),
                    Ok(None),
                    "{h:?} cut at {cut}"
                );
            }
            assert_eq!(FrameHeader::parse(&bytes), Ok(Some((h, bytes.len()))));
        }
    }

    #[test]
    fn reserved_opcodes_are_refused() {
        for bits in [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assert_eq!(
                FrameHeader::parse(&[0x80 | bits, 0x00]),
                Err(ProtocolError::ReservedOpcode(bits))
            );
        }
    }

    #[test]
    fn rsv_bits_are_reported_not_judged() {
        // Whether RSV bits are allowed depends on negotiated extensions, so
        // the connection decides; the parser only reports them.
        let (h, _) = FrameHeader::parse(&[0xC1, 0x00]).unwrap().unwrap();
        assert_eq!(h.rsv, 0b100);
        let (h, _) = FrameHeader::parse(&[0x91, 0x00]).unwrap().unwrap();
        assert_eq!(h.rsv, 0b001);
    }

    #[test]
    fn control_frames_must_be_short_and_final() {
        assert_eq!(
            FrameHeader::parse(&[0x89, 0x7E, 0x00, 0x7E]),
            Err(ProtocolError::ControlFrameTooLong(126))
        );
        assert!(FrameHeader::parse(&[0x89, 0x7D]).unwrap().is_some());
        assert_eq!(
            FrameHeader::parse(&[0x09, 0x00]),
            Err(ProtocolError::FragmentedControlFrame)
        );
        assert_eq!(
            FrameHeader::parse(&[0x08, 0x00]),
            Err(ProtocolError::FragmentedControlFrame)
        );
    }

    #[test]
    fn encoding_uses_the_shortest_length_form() {
        assert_eq!(encoded(&header(OpCode::Text, 125, None))[..2], [0x81, 125]);
        assert_eq!(
            encoded(&header(OpCode::Text, 126, None)),
            [0x81, 126, 0, 126]
        );
        assert_eq!(
            encoded(&header(OpCode::Binary, 0x1_0000, None)),
            [0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]
        );
        assert_eq!(
            encoded(&header(OpCode::Close, 2, Some([9, 8, 7, 6]))),
            [0x88, 0x82, 9, 8, 7, 6]
        );
    }
}
