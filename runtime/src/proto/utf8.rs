//! Incremental, fail-fast UTF-8 validation for text messages that arrive in
//! pieces: across fragments and inside a frame that is still arriving.

/// Validates a byte stream fed in arbitrary pieces.
///
/// [`feed`](Self::feed) fails as soon as the bytes seen so far cannot be the
/// start of valid UTF-8 — not when the message ends — so a peer sending
/// garbage is stopped early (Autobahn 6.4.x checks exactly this).
#[derive(Debug, Default, Clone)]
pub struct Utf8Validator {
    /// The start of a code point cut off at the end of the last piece.
    partial: [u8; 4],
    partial_len: u8,
}

/// The bytes fed so far are not, and cannot become, valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

impl Utf8Validator {
    /// Checks the next piece of the stream.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), InvalidUtf8> {
        if self.partial_len > 0 {
            bytes = self.complete_partial(bytes)?;
            if self.partial_len > 0 {
                // Still incomplete: `bytes` was used up.
                return Ok(());
            }
        }
        // The SIMD check answers only valid or not, several times faster
        // than `std` on non-ASCII text; std then locates a failure, which
        // is rare (an invalid message, or a code point cut between pieces).
        if simdutf8::basic::from_utf8(bytes).is_ok() {
            return Ok(());
        }
        match std::str::from_utf8(bytes) {
            Ok(_) => Ok(()),
            // `error_len() == None` means the input ended inside a code
            // point that may still be completed by the next piece.
            Err(e) if e.error_len().is_none() => {
                let tail = &bytes[e.valid_up_to()..];
                self.partial[..tail.len()].copy_from_slice(tail);
                self.partial_len = tail.len() as u8;
                Ok(())
            }
            Err(_) => Err(InvalidUtf8),
        }
    }

    /// Checks that the stream did not end inside a code point, and resets
    /// the validator for the next message.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let complete = self.partial_len == 0;
        *self = Self::default();
        if complete { Ok(()) } else { Err(InvalidUtf8) }
    }

    /// Appends bytes to the cut-off code point until it is whole or `bytes`
    /// runs out; returns what is left of `bytes`.
    fn complete_partial<'a>(&mut self, bytes: &'a [u8]) -> Result<&'a [u8], InvalidUtf8> {
        let have = usize::from(self.partial_len);
        let want = sequence_len(self.partial[0]);
        let take = (want - have).min(bytes.len());
        self.partial[have..have + take].copy_from_slice(&bytes[..take]);
        let candidate = &self.partial[..have + take];
        match std::str::from_utf8(candidate) {
            Ok(_) => self.partial_len = 0,
            Err(e) if e.error_len().is_none() => self.partial_len = candidate.len() as u8,
            Err(_) => return Err(InvalidUtf8),
        }
        Ok(&bytes[take..])
    }
}

/// The length of the code point a lead byte starts. Only called on bytes
/// that `from_utf8` left as an incomplete sequence, so always a lead byte.
fn sequence_len(lead: u8) -> usize {
    match lead {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(pieces: &[&[u8]]) -> Result<(), InvalidUtf8> {
        let mut v = Utf8Validator::default();
        for p in pieces {
            v.feed(p)?;
        }
        v.finish()
    }

    #[test]
    fn valid_text_split_at_every_byte_passes() {
        let text = "κόσμε → 𝄞 ascii 😀 end".as_bytes();
        for cut in 0..=text.len() {
            assert_eq!(feed_all(&[&text[..cut], &text[cut..]]), Ok(()), "cut {cut}");
        }
        let bytewise: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(feed_all(&bytewise), Ok(()));
    }

    #[test]
    fn fails_fast_on_an_impossible_prefix() {
        // 0xF4 0x90 is above U+10FFFF: invalid before the code point ends.
        let mut v = Utf8Validator::default();
        assert_eq!(v.feed(&[b'a', 0xF4]), Ok(()));
        assert_eq!(v.feed(&[0x90]), Err(InvalidUtf8));
        // A surrogate half (ED A0 ..) is refused on its second byte.
        let mut v = Utf8Validator::default();
        assert_eq!(v.feed(&[0xED]), Ok(()));
        assert_eq!(v.feed(&[0xA0]), Err(InvalidUtf8));
        // A stray continuation byte is refused at once.
        assert_eq!(Utf8Validator::default().feed(&[0x80]), Err(InvalidUtf8));
        // Overlong encodings.
        assert_eq!(Utf8Validator::default().feed(&[0xC0]), Err(InvalidUtf8));
        assert_eq!(
            Utf8Validator::default().feed(&[0xE0, 0x80]),
            Err(InvalidUtf8)
        );
    }

    #[test]
    fn a_code_point_cut_off_at_the_end_fails_on_finish() {
        let mut v = Utf8Validator::default();
        assert_eq!(v.feed(&[0xF0, 0x9F, 0x98]), Ok(()));
        assert_eq!(v.finish(), Err(InvalidUtf8));
        // finish resets: the next message starts clean.
        assert_eq!(v.feed(b"ok"), Ok(()));
        assert_eq!(v.finish(), Ok(()));
    }

    #[test]
    fn agrees_with_std_on_every_two_byte_split_of_short_inputs() {
        let samples: [&[u8]; 6] = [
            &[0xCE, 0xBA, 0xE1, 0xBD, 0xB9],
            &[0xF0, 0x90, 0x80, 0x80, 0x41],
            &[0xF4, 0x8F, 0xBF, 0xBF],
            &[0xF4, 0x90, 0x80, 0x80],
            &[0xED, 0x9F, 0xBF, 0xED, 0xA0, 0x80],
            &[0x61, 0xFF, 0x62],
        ];
        for s in samples {
            let expected = std::str::from_utf8(s).is_ok();
            for a in 0..=s.len() {
                for b in a..=s.len() {
                    let got = feed_all(&[&s[..a], &s[a..b], &s[b..]]).is_ok();
                    assert_eq!(got, expected, "{s:x?} cut {a},{b}");
                }
            }
        }
    }
}
