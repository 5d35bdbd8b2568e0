//! Client frame streams for the property tests: a model of client frames,
//! their encoding (masked or not, any length form), and proptest strategies
//! for valid, invalid and mixed streams. Shared by `proto_chunking.rs` and
//! `differential_tungstenite.rs`.

// Each test crate that includes this module uses a different part of it.
#![allow(dead_code)]

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;
use wsroute::Message;
use wsroute::proto::ServerConnection;

/// Whether this build refuses unmasked client frames (close 1002).
pub(crate) const ENFORCE: bool = cfg!(feature = "enforce-ws-spec");

/// The close frame a connection that closes first sends.
pub(crate) const SERVER_CLOSE_REASON: &str = "bye";

pub(crate) fn config(default_cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    Config {
        cases,
        // A failure is to be turned into a unit test in `proto/tests.rs`, not
        // kept in a regressions file next to this one.
        failure_persistence: None,
        ..Config::default()
    }
}

// ---- client frames ------------------------------------------------------------

/// How a frame's payload length is written. RFC 6455 §5.2 asks senders for
/// the shortest form; receivers accept the longer ones too.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LenForm {
    Shortest,
    Sixteen,
    SixtyFour,
}

/// One frame as a client puts it on the wire. The opcode and RSV bits are
/// raw, so reserved values can be written.
#[derive(Debug, Clone)]
pub(crate) struct ClientFrame {
    pub(crate) fin: bool,
    pub(crate) rsv: u8,
    pub(crate) opcode: u8,
    pub(crate) mask: Option<[u8; 4]>,
    pub(crate) payload: Vec<u8>,
    pub(crate) len_form: LenForm,
}

impl ClientFrame {
    pub(crate) fn new(fin: bool, opcode: u8, payload: Vec<u8>, mask: Option<[u8; 4]>) -> Self {
        Self {
            fin,
            rsv: 0,
            opcode,
            mask,
            payload,
            len_form: LenForm::Shortest,
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        encode_header(
            out,
            self.fin,
            self.rsv,
            self.opcode,
            self.mask,
            self.payload.len() as u64,
            self.len_form,
        );
        let start = out.len();
        out.extend_from_slice(&self.payload);
        if let Some(key) = self.mask {
            xor_mask(&mut out[start..], key);
        }
    }
}

pub(crate) fn encode_header(
    out: &mut Vec<u8>,
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    len: u64,
    form: LenForm,
) {
    out.push(u8::from(fin) << 7 | (rsv & 0x07) << 4 | (opcode & 0x0F));
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match (form, len) {
        (LenForm::Shortest, 0..=125) => out.push(mask_bit | len as u8),
        (LenForm::Shortest | LenForm::Sixteen, 0..=0xFFFF) => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
}

/// A header announcing far more payload than the stream holds; only ever
/// the last thing in a stream.
#[derive(Debug, Clone)]
pub(crate) struct HugeHeader {
    pub(crate) fin: bool,
    pub(crate) opcode: u8,
    pub(crate) mask: Option<[u8; 4]>,
    pub(crate) len: u64,
}

/// A generated client stream: whole frames, then maybe a huge header.
#[derive(Debug, Clone)]
pub(crate) struct Stream {
    pub(crate) frames: Vec<ClientFrame>,
    pub(crate) tail: Option<HugeHeader>,
}

impl Stream {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for f in &self.frames {
            f.encode(&mut out);
        }
        if let Some(h) = &self.tail {
            encode_header(
                &mut out,
                h.fin,
                0,
                h.opcode,
                h.mask,
                h.len,
                LenForm::SixtyFour,
            );
        }
        out
    }
}

// ---- strategies -------------------------------------------------------------------

/// `Some(key)` with probability `p_masked`.
pub(crate) fn mask(p_masked: f64) -> impl Strategy<Value = Option<[u8; 4]>> {
    (prop::bool::weighted(p_masked), any::<[u8; 4]>())
        .prop_map(|(masked, key)| masked.then_some(key))
}

pub(crate) fn len_form() -> impl Strategy<Value = LenForm> {
    prop_oneof![
        8 => Just(LenForm::Shortest),
        1 => Just(LenForm::Sixteen),
        1 => Just(LenForm::SixtyFour),
    ]
}

/// Valid UTF-8: ASCII, arbitrary code points (multi-byte, astral), and
/// longer multi-byte runs for 16-bit lengths.
pub(crate) fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,30}",
        prop::collection::vec(any::<char>(), 0..30).prop_map(String::from_iter),
        "[aé€😀]{40,80}",
    ]
}

pub(crate) fn binary() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        30 => prop::collection::vec(any::<u8>(), 0..20),
        10 => prop::collection::vec(any::<u8>(), 100..300),
        // Rarely, a payload that needs a 64-bit length.
        1 => prop::collection::vec(any::<u8>(), 65536..65600),
    ]
}

/// Byte sequences that make text invalid: impossible bytes, overlong
/// forms, surrogates, code points above U+10FFFF, and truncated sequences
/// (invalid when followed by anything, or at the end of a message).
pub(crate) const BAD_UTF8: &[&[u8]] = &[
    &[0xFF],
    &[0x80],
    &[0xC0, 0xAF],
    &[0xE0, 0x80, 0x80],
    &[0xED, 0xA0, 0x80],
    &[0xF4, 0x90, 0x80, 0x80],
    &[0xE2, 0x82],
    &[0xF0, 0x9F, 0x98],
];

/// Text with one bad sequence inserted at a char boundary, or random bytes.
pub(crate) fn bad_text() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => (text(), prop::sample::select(BAD_UTF8), any::<Index>(), any::<bool>()).prop_map(
            |(s, bad, at, at_end)| {
                let mut boundaries: Vec<usize> = s.char_indices().map(|(i, _)| i).collect();
                boundaries.push(s.len());
                let pos = if at_end { s.len() } else { *at.get(&boundaries) };
                let mut bytes = s.into_bytes();
                bytes.splice(pos..pos, bad.iter().copied());
                bytes
            }
        ),
        1 => prop::collection::vec(any::<u8>(), 1..40),
    ]
}

pub(crate) fn control_payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..8),
        1 => prop::collection::vec(any::<u8>(), 120..=125),
    ]
}

/// A valid ping or pong.
pub(crate) fn ping_or_pong(p_masked: f64) -> impl Strategy<Value = ClientFrame> {
    (
        prop::sample::select(&[0x9u8, 0xA][..]),
        control_payload(),
        mask(p_masked),
        len_form(),
    )
        .prop_map(|(opcode, payload, mask, len_form)| ClientFrame {
            len_form,
            ..ClientFrame::new(true, opcode, payload, mask)
        })
}

/// How a message is cut into fragments and what is interleaved.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// Fragment boundaries; equal boundaries give empty fragments.
    pub(crate) cuts: Vec<Index>,
    /// Control frames sent after each fragment but the last.
    pub(crate) controls: Vec<Vec<ClientFrame>>,
    pub(crate) masks: Vec<Option<[u8; 4]>>,
    pub(crate) len_forms: Vec<LenForm>,
}

pub(crate) const MAX_CUTS: usize = 4;

pub(crate) fn layout(p_masked: f64) -> impl Strategy<Value = Layout> {
    (
        prop_oneof![
            2 => Just(Vec::new()),
            3 => prop::collection::vec(any::<Index>(), 1..=MAX_CUTS),
        ],
        prop::collection::vec(
            prop::collection::vec(ping_or_pong(p_masked), 0..3),
            MAX_CUTS,
        ),
        prop::collection::vec(mask(p_masked), MAX_CUTS + 1),
        prop::collection::vec(len_form(), MAX_CUTS + 1),
    )
        .prop_map(|(cuts, controls, masks, len_forms)| Layout {
            cuts,
            controls,
            masks,
            len_forms,
        })
}

/// The frames of one data message: fragments with control frames between.
pub(crate) fn lay_out(opcode: u8, payload: &[u8], layout: &Layout) -> Vec<ClientFrame> {
    let mut bounds: Vec<usize> = layout
        .cuts
        .iter()
        .map(|i| i.index(payload.len() + 1))
        .collect();
    bounds.sort_unstable();
    bounds.insert(0, 0);
    bounds.push(payload.len());
    let n = bounds.len() - 1;
    let mut frames = Vec::new();
    for i in 0..n {
        let fin = i + 1 == n;
        let op = if i == 0 { opcode } else { 0x0 };
        frames.push(ClientFrame {
            len_form: layout.len_forms[i],
            ..ClientFrame::new(
                fin,
                op,
                payload[bounds[i]..bounds[i + 1]].to_vec(),
                layout.masks[i],
            )
        });
        if !fin {
            frames.extend(layout.controls[i].iter().cloned());
        }
    }
    frames
}

/// A complete, valid text or binary message, maybe fragmented.
pub(crate) fn data_message(p_masked: f64) -> impl Strategy<Value = (Message, Vec<ClientFrame>)> {
    let message = prop_oneof![
        text().prop_map(Message::from),
        binary().prop_map(Message::from),
    ];
    (message, layout(p_masked)).prop_map(|(message, layout)| {
        let opcode = if message.is_binary() { 0x2 } else { 0x1 };
        let frames = lay_out(opcode, message.as_bytes(), &layout);
        (message, frames)
    })
}

pub(crate) const VALID_CODES: &[u16] = &[
    1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999,
];

pub(crate) fn close_code_and_reason(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    p
}

/// A valid close payload: empty, or a sendable code and a short reason.
pub(crate) fn valid_close_payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => Just(Vec::new()),
        4 => (
            prop_oneof![prop::sample::select(VALID_CODES), 3000..=4999u16],
            "[ -~é😀]{0,20}",
        )
            .prop_map(|(code, reason)| close_code_and_reason(code, reason.as_bytes())),
    ]
}

/// Close payloads, valid or not.
pub(crate) fn close_payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => valid_close_payload(),
        1 => any::<u8>().prop_map(|b| vec![b]),
        1 => (any::<u16>(), "[a-z]{0,5}")
            .prop_map(|(code, reason)| close_code_and_reason(code, reason.as_bytes())),
        1 => (
            prop::sample::select(&[0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000][..]),
            "[a-z]{0,5}",
        )
            .prop_map(|(code, reason)| close_code_and_reason(code, reason.as_bytes())),
        1 => (prop::sample::select(VALID_CODES), bad_text())
            .prop_map(|(code, reason)| close_code_and_reason(code, &reason)),
    ]
}

pub(crate) const RESERVED_OPCODES: &[u8] = &[0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF];

/// Frames that break a rule on their own or depending on what precedes
/// them.
pub(crate) fn defect(p_masked: f64) -> impl Strategy<Value = Vec<ClientFrame>> {
    let small = || prop::collection::vec(any::<u8>(), 0..10);
    prop_oneof![
        // Reserved opcode.
        (
            prop::sample::select(RESERVED_OPCODES),
            any::<bool>(),
            small(),
            mask(p_masked)
        )
            .prop_map(|(op, fin, p, m)| vec![ClientFrame::new(fin, op, p, m)]),
        // RSV bits without an extension.
        (
            prop::sample::select(&[0x1u8, 0x2, 0x9, 0xA][..]),
            1..=7u8,
            small(),
            mask(p_masked)
        )
            .prop_map(|(op, rsv, p, m)| vec![ClientFrame {
                rsv,
                ..ClientFrame::new(true, op, p, m)
            }]),
        // A continuation: unexpected, unless an unfinished message precedes.
        (any::<bool>(), small(), mask(p_masked))
            .prop_map(|(fin, p, m)| vec![ClientFrame::new(fin, 0x0, p, m)]),
        // The start of a message that is never finished: the next data
        // frame must be a continuation.
        (
            prop_oneof![
                text().prop_map(|s| (0x1u8, s.into_bytes())),
                binary().prop_map(|b| (0x2, b))
            ],
            mask(p_masked)
        )
            .prop_map(|((op, p), m)| vec![ClientFrame::new(false, op, p, m)]),
        // A fragmented control frame.
        (
            prop::sample::select(&[0x8u8, 0x9, 0xA][..]),
            small(),
            mask(p_masked)
        )
            .prop_map(|(op, p, m)| vec![ClientFrame::new(false, op, p, m)]),
        // A control frame over 125 bytes.
        (
            prop::sample::select(&[0x8u8, 0x9, 0xA][..]),
            prop::collection::vec(any::<u8>(), 126..140),
            mask(p_masked)
        )
            .prop_map(|(op, p, m)| vec![ClientFrame::new(true, op, p, m)]),
        // Text that is not UTF-8, maybe fragmented.
        (bad_text(), layout(p_masked)).prop_map(|(bytes, layout)| lay_out(0x1, &bytes, &layout)),
    ]
}

/// Mostly valid frames with some rule breaking mixed in: any stream a
/// client could send, in whole frames.
pub(crate) fn mixed_frames(p_masked: f64) -> impl Strategy<Value = Vec<ClientFrame>> {
    let segment = prop_oneof![
        6 => data_message(p_masked).prop_map(|(_, frames)| frames),
        3 => ping_or_pong(p_masked).prop_map(|f| vec![f]),
        1 => (close_payload(), mask(p_masked))
            .prop_map(|(p, m)| vec![ClientFrame::new(true, 0x8, p, m)]),
        2 => defect(p_masked),
    ];
    prop::collection::vec(segment, 0..8).prop_map(|segments| segments.concat())
}

pub(crate) fn huge_header(p_masked: f64) -> impl Strategy<Value = HugeHeader> {
    (
        any::<bool>(),
        prop::sample::select(&[0x0u8, 0x1, 0x2, 0x9][..]),
        mask(p_masked),
        prop_oneof![1u64 << 32..1 << 40, 1u64 << 63..=u64::MAX],
    )
        .prop_map(|(fin, opcode, mask, len)| HugeHeader {
            fin,
            opcode,
            mask,
            len,
        })
}

pub(crate) fn mixed_stream() -> impl Strategy<Value = Stream> {
    (
        mixed_frames(0.9),
        prop::option::weighted(0.1, huge_header(0.9)),
    )
        .prop_map(|(frames, tail)| Stream { frames, tail })
}

/// Flips (`0`), inserts (`1`) or removes (`2`) a byte at each position.
pub(crate) fn mutate(bytes: &mut Vec<u8>, mutations: Vec<(Index, u8, u8)>) {
    for (at, byte, kind) in mutations {
        let i = at.index(bytes.len() + 1);
        match kind {
            0 if i < bytes.len() => bytes[i] ^= byte | 1,
            1 => bytes.insert(i, byte),
            _ if i < bytes.len() => {
                bytes.remove(i);
            }
            _ => bytes.push(byte),
        }
    }
}

/// Masks (or unmasks) `payload` with `key`, byte by byte: the RFC's own
/// definition (§5.3), independent of the core's word-at-a-time version.
pub(crate) fn xor_mask(payload: &mut [u8], key: [u8; 4]) {
    for (i, byte) in payload.iter_mut().enumerate() {
        *byte ^= key[i % 4];
    }
}

/// Everything `ws` has queued to write, taken the way a driver takes it.
pub(crate) fn take_output(ws: &mut ServerConnection) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let mut slices = [std::io::IoSlice::new(&[]); 16];
        let n = ws.chunks_vectored(&mut slices);
        if n == 0 {
            return out;
        }
        let before = out.len();
        for slice in &slices[..n] {
            out.extend_from_slice(slice);
        }
        ws.advance_output(out.len() - before);
    }
}
