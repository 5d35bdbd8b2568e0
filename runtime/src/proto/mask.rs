//! Client-to-server masking (§5.3), applied in place.

/// XORs `buf` with the masking `key`, where `buf` starts `offset` bytes into
/// the frame's payload (so a payload unmasked piece by piece, as it
/// arrives, gets the same result as one unmasked whole).
///
/// Works a machine word at a time over 32-byte blocks, which the compiler
/// turns into vector instructions; only the last few bytes go one by one.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let key = rotate(key, offset % 4);
    let word = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);

    let mut blocks = buf.chunks_exact_mut(32);
    for block in &mut blocks {
        for lane in block.chunks_exact_mut(8) {
            xor_word(lane, word);
        }
    }
    // Block and word sizes are multiples of 4, so the rest starts at key[0].
    let rest = blocks.into_remainder();
    let mut words = rest.chunks_exact_mut(8);
    for lane in &mut words {
        xor_word(lane, word);
    }
    for (i, byte) in words.into_remainder().iter_mut().enumerate() {
        *byte ^= key[i % 4];
    }
}

#[inline(always)]
fn xor_word(lane: &mut [u8], word: u64) {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(lane);
    lane.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
}

fn rotate(key: [u8; 4], by: usize) -> [u8; 4] {
    [
        key[by % 4],
        key[(by + 1) % 4],
        key[(by + 2) % 4],
        key[(by + 3) % 4],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn byte_at_a_time(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[(offset + i) % 4];
        }
    }

    #[test]
    fn rfc_hello_example() {
        let mut payload = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
        apply_mask(&mut payload, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(&payload, b"Hello");
    }

    #[test]
    fn matches_the_definition_for_every_length_and_offset() {
        let key = [0xA1, 0x5B, 0x3C, 0xD7];
        for len in 0..100 {
            for offset in 0..8 {
                let original: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
                let mut fast = original.clone();
                let mut slow = original.clone();
                apply_mask(&mut fast, key, offset);
                byte_at_a_time(&mut slow, key, offset);
                assert_eq!(fast, slow, "len {len} offset {offset}");
            }
        }
    }

    #[test]
    fn unmasking_in_pieces_equals_unmasking_whole() {
        let key = [1, 2, 3, 4];
        let original: Vec<u8> = (0..77u8).collect();
        let mut whole = original.clone();
        apply_mask(&mut whole, key, 0);
        let mut pieces = original.clone();
        let (a, rest) = pieces.split_at_mut(5);
        let (b, c) = rest.split_at_mut(33);
        apply_mask(a, key, 0);
        apply_mask(b, key, 5);
        apply_mask(c, key, 38);
        assert_eq!(whole, pieces);
    }
}
