//! Property tests of the sans-IO core (`wsroute::proto::ServerConnection`)
//! over generated client byte streams:
//!
//! - however a stream is cut into reads (random cuts, 1-byte pieces, through
//!   `receive` or `read_buf` + `process`), the events and output bytes are
//!   those of the stream fed in one piece;
//! - with a handler that echoes each message as its event is polled, the
//!   events are the same, and every reply goes out, in order, before the
//!   close frame;
//! - the events and output follow an RFC 6455 reference model written here
//!   over the generated frames, for valid and invalid streams alike;
//! - valid streams decode to exactly the messages that were encoded;
//! - random and mutated bytes never panic, and keep the output well-formed.
//!
//! Case counts are modest so the file runs in seconds in debug builds; set
//! `PROPTEST_CASES` to run more.

use bytes::Bytes;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;
use wsroute::Message;
use wsroute::proto::{CloseCode, CloseFrame, Event, ProtocolError, ServerConnection, apply_mask};

/// Whether this build refuses unmasked client frames (close 1002).
const ENFORCE: bool = cfg!(feature = "enforce-ws-spec");

/// The close frame a connection that closes first sends.
const SERVER_CLOSE_REASON: &str = "bye";

fn config(default_cases: u32) -> Config {
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
enum LenForm {
    Shortest,
    Sixteen,
    SixtyFour,
}

/// One frame as a client puts it on the wire. The opcode and RSV bits are
/// raw, so reserved values can be written.
#[derive(Debug, Clone)]
struct ClientFrame {
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    payload: Vec<u8>,
    len_form: LenForm,
}

impl ClientFrame {
    fn new(fin: bool, opcode: u8, payload: Vec<u8>, mask: Option<[u8; 4]>) -> Self {
        Self {
            fin,
            rsv: 0,
            opcode,
            mask,
            payload,
            len_form: LenForm::Shortest,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
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
            apply_mask(&mut out[start..], key, 0);
        }
    }
}

fn encode_header(
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
struct HugeHeader {
    fin: bool,
    opcode: u8,
    mask: Option<[u8; 4]>,
    len: u64,
}

/// A generated client stream: whole frames, then maybe a huge header.
#[derive(Debug, Clone)]
struct Stream {
    frames: Vec<ClientFrame>,
    tail: Option<HugeHeader>,
}

impl Stream {
    fn encode(&self) -> Vec<u8> {
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
fn mask(p_masked: f64) -> impl Strategy<Value = Option<[u8; 4]>> {
    (prop::bool::weighted(p_masked), any::<[u8; 4]>())
        .prop_map(|(masked, key)| masked.then_some(key))
}

fn len_form() -> impl Strategy<Value = LenForm> {
    prop_oneof![
        8 => Just(LenForm::Shortest),
        1 => Just(LenForm::Sixteen),
        1 => Just(LenForm::SixtyFour),
    ]
}

/// Valid UTF-8: ASCII, arbitrary code points (multi-byte, astral), and
/// longer multi-byte runs for 16-bit lengths.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,30}",
        prop::collection::vec(any::<char>(), 0..30).prop_map(String::from_iter),
        "[aé€😀]{40,80}",
    ]
}

fn binary() -> impl Strategy<Value = Vec<u8>> {
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
const BAD_UTF8: &[&[u8]] = &[
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
fn bad_text() -> impl Strategy<Value = Vec<u8>> {
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

fn control_payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..8),
        1 => prop::collection::vec(any::<u8>(), 120..=125),
    ]
}

/// A valid ping or pong.
fn ping_or_pong(p_masked: f64) -> impl Strategy<Value = ClientFrame> {
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
struct Layout {
    /// Fragment boundaries; equal boundaries give empty fragments.
    cuts: Vec<Index>,
    /// Control frames sent after each fragment but the last.
    controls: Vec<Vec<ClientFrame>>,
    masks: Vec<Option<[u8; 4]>>,
    len_forms: Vec<LenForm>,
}

const MAX_CUTS: usize = 4;

fn layout(p_masked: f64) -> impl Strategy<Value = Layout> {
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
fn lay_out(opcode: u8, payload: &[u8], layout: &Layout) -> Vec<ClientFrame> {
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
fn data_message(p_masked: f64) -> impl Strategy<Value = (Message, Vec<ClientFrame>)> {
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

const VALID_CODES: &[u16] = &[
    1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999,
];

fn close_code_and_reason(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    p
}

/// A valid close payload: empty, or a sendable code and a short reason.
fn valid_close_payload() -> impl Strategy<Value = Vec<u8>> {
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
fn close_payload() -> impl Strategy<Value = Vec<u8>> {
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

const RESERVED_OPCODES: &[u8] = &[0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF];

/// Frames that break a rule on their own or depending on what precedes
/// them.
fn defect(p_masked: f64) -> impl Strategy<Value = Vec<ClientFrame>> {
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
fn mixed_frames(p_masked: f64) -> impl Strategy<Value = Vec<ClientFrame>> {
    let segment = prop_oneof![
        6 => data_message(p_masked).prop_map(|(_, frames)| frames),
        3 => ping_or_pong(p_masked).prop_map(|f| vec![f]),
        1 => (close_payload(), mask(p_masked))
            .prop_map(|(p, m)| vec![ClientFrame::new(true, 0x8, p, m)]),
        2 => defect(p_masked),
    ];
    prop::collection::vec(segment, 0..8).prop_map(|segments| segments.concat())
}

fn huge_header(p_masked: f64) -> impl Strategy<Value = HugeHeader> {
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

fn mixed_stream() -> impl Strategy<Value = Stream> {
    (
        mixed_frames(0.9),
        prop::option::weighted(0.1, huge_header(0.9)),
    )
        .prop_map(|(frames, tail)| Stream { frames, tail })
}

fn max_payload() -> impl Strategy<Value = Option<u64>> {
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(u64::MAX)),
        3 => (0..400u64).prop_map(Some),
    ]
}

/// How a byte stream is cut into reads.
#[derive(Debug, Clone)]
enum Cuts {
    /// At these positions (repeats give empty reads).
    At(Vec<Index>),
    /// Into 1-byte pieces.
    Bytewise,
}

fn cuts() -> impl Strategy<Value = Cuts> {
    prop_oneof![
        4 => prop::collection::vec(any::<Index>(), 0..12).prop_map(Cuts::At),
        1 => Just(Cuts::Bytewise),
    ]
}

fn pieces<'a>(bytes: &'a [u8], cuts: &Cuts) -> Vec<&'a [u8]> {
    match cuts {
        Cuts::Bytewise => bytes.chunks(1).collect(),
        Cuts::At(at) => {
            let mut bounds: Vec<usize> = at.iter().map(|i| i.index(bytes.len() + 1)).collect();
            bounds.sort_unstable();
            bounds.insert(0, 0);
            bounds.push(bytes.len());
            bounds.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
        }
    }
}

// ---- running the connection ---------------------------------------------------------

#[derive(Debug, PartialEq)]
struct Run {
    events: Vec<Event>,
    output: Vec<u8>,
    finished: bool,
    failed: bool,
}

/// How the test drives the connection.
#[derive(Debug, Clone, Copy)]
struct Driver {
    max_payload: Option<u64>,
    /// Call `close` before any input.
    server_closes_first: bool,
    /// Feed through `read_buf` + `process` rather than `receive`.
    via_read_buf: bool,
    /// Send each message back as its event is polled, as an echo handler.
    echo: bool,
}

impl Driver {
    fn new(max_payload: Option<u64>, server_closes_first: bool) -> Self {
        Self {
            max_payload,
            server_closes_first,
            via_read_buf: false,
            echo: false,
        }
    }

    /// Feeds `pieces` one at a time, polling events and taking output
    /// after each.
    fn run(self, pieces: &[&[u8]]) -> Run {
        let mut ws = ServerConnection::new(self.max_payload);
        let mut events = Vec::new();
        let mut output = Vec::new();
        if self.server_closes_first {
            ws.close(CloseCode::NORMAL, SERVER_CLOSE_REASON).unwrap();
            output.extend(ws.take_output());
        }
        for piece in pieces {
            if self.via_read_buf {
                ws.read_buf().extend_from_slice(piece);
                ws.process();
            } else {
                ws.receive(piece);
            }
            while let Some(event) = ws.poll_event() {
                if let (true, Event::Message(m)) = (self.echo, &event) {
                    // The close or failure that follows a message takes
                    // effect only when its own event is polled.
                    ws.send(m.clone())
                        .expect("replies are accepted until the close is polled");
                }
                events.push(event);
            }
            output.extend(ws.take_output());
        }
        Run {
            events,
            output,
            finished: ws.is_finished(),
            failed: ws.is_failed(),
        }
    }
}

/// One frame the server wrote.
#[derive(Debug)]
struct ServerFrame {
    opcode: u8,
    payload: Vec<u8>,
}

/// Splits server output into frames, asserting it is well-formed: final,
/// unmasked, RSV clear, data frames or pongs and at most one close, the
/// close last, control frames under 126 bytes.
fn server_frames(output: &[u8]) -> Vec<ServerFrame> {
    let mut frames = Vec::new();
    let mut rest = output;
    while !rest.is_empty() {
        assert!(rest.len() >= 2, "truncated server frame: {output:x?}");
        let first = rest[0];
        assert!(
            matches!(first, 0x81 | 0x82 | 0x88 | 0x8A),
            "not a final text, binary, close or pong frame: {output:x?}"
        );
        assert_eq!(rest[1] & 0x80, 0, "masked server frame: {output:x?}");
        let (len, header_len) = match rest[1] {
            126 => (usize::from(u16::from_be_bytes([rest[2], rest[3]])), 4),
            127 => {
                let len = u64::from_be_bytes(rest[2..10].try_into().unwrap());
                (usize::try_from(len).unwrap(), 10)
            }
            n => (usize::from(n), 2),
        };
        assert!(
            len <= 125 || first & 0x08 == 0,
            "server control frame too long: {output:x?}"
        );
        assert!(
            rest.len() >= header_len + len,
            "truncated server frame: {output:x?}"
        );
        frames.push(ServerFrame {
            opcode: first & 0x0F,
            payload: rest[header_len..header_len + len].to_vec(),
        });
        rest = &rest[header_len + len..];
    }
    let closes = frames.iter().filter(|f| f.opcode == 0x8).count();
    assert!(closes <= 1, "more than one close frame: {output:x?}");
    if let Some(close) = frames.iter().position(|f| f.opcode == 0x8) {
        // Only pongs may follow a close: pings crossing the server's own
        // close are still answered (RFC 6455 §5.5.2).
        assert!(
            frames[close + 1..].iter().all(|f| f.opcode == 0xA),
            "frames after close: {output:x?}"
        );
    }
    frames
}

/// Invariants every run keeps, whatever its input.
fn check_invariants(run: &Run, driver: Driver) {
    let terminal = run
        .events
        .iter()
        .position(|e| matches!(e, Event::Close(_) | Event::Error(_)));
    if let Some(i) = terminal {
        assert_eq!(i + 1, run.events.len(), "events after the end: {run:?}");
        assert!(run.finished);
    } else {
        assert!(!run.finished);
    }
    assert_eq!(
        run.failed,
        matches!(run.events.last(), Some(Event::Error(_))),
        "{run:?}"
    );
    let frames = server_frames(&run.output);
    let payloads = |opcodes: &[u8]| -> Vec<Vec<u8>> {
        frames
            .iter()
            .filter(|f| opcodes.contains(&f.opcode))
            .map(|f| f.payload.clone())
            .collect()
    };
    let pings: Vec<Vec<u8>> = run
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Ping(p) => Some(p.to_vec()),
            _ => None,
        })
        .collect();
    if !driver.server_closes_first {
        // (After our own close, pings are answered but not reported.)
        assert_eq!(
            payloads(&[0xA]),
            pings,
            "each reported ping answered, in order"
        );
    }
    let messages: Vec<Vec<u8>> = run
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) if driver.echo => Some(m.as_bytes().to_vec()),
            _ => None,
        })
        .collect();
    // Replies to messages before a close or failure go out before the
    // close frame (which `server_frames` checks is last).
    assert_eq!(
        payloads(&[0x1, 0x2]),
        messages,
        "each message echoed, in order"
    );
    if driver.server_closes_first {
        // After our close: data, pings and pongs are not reported, but
        // pings are still answered (RFC 6455 §5.5.2).
        assert!(
            !run.events
                .iter()
                .any(|e| matches!(e, Event::Message(_) | Event::Ping(_) | Event::Pong(_))),
            "{run:?}"
        );
        assert_eq!(frames[0].opcode, 0x8, "our own close first: {run:?}");
        assert!(
            frames[1..].iter().all(|f| f.opcode == 0xA),
            "only pongs after our close: {run:?}"
        );
    } else if run.finished {
        assert_eq!(frames.last().map(|f| f.opcode), Some(0x8), "{run:?}");
    }
}

// ---- the reference model ----------------------------------------------------------------

/// Codes a close frame may carry (RFC 6455 §7.4, IANA registry).
fn sendable_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() <= 125);
    let mut out = vec![0x80 | opcode, payload.len() as u8];
    out.extend_from_slice(payload);
    out
}

fn server_close(code: u16, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    server_frame(0x8, &close_code_and_reason(code, &reason.as_bytes()[..end]))
}

/// Whether `bytes` cannot be the start of valid UTF-8.
fn utf8_impossible(bytes: &[u8]) -> bool {
    matches!(std::str::from_utf8(bytes), Err(e) if e.error_len().is_some())
}

/// The rules a frame header alone decides, in the order RFC 6455 §5.2, §5.5
/// and §5.4 are applied (the first broken rule is reported).
fn check_header(
    fin: bool,
    rsv: u8,
    opcode: u8,
    masked: bool,
    len: u64,
    in_message: Option<usize>,
    max_payload: Option<u64>,
) -> Result<(), ProtocolError> {
    if !matches!(opcode, 0x0..=0x2 | 0x8..=0xA) {
        return Err(ProtocolError::ReservedOpcode(opcode));
    }
    if len >> 63 != 0 {
        return Err(ProtocolError::InvalidLength);
    }
    let control = opcode >= 0x8;
    if control && !fin {
        return Err(ProtocolError::FragmentedControlFrame);
    }
    if control && len > 125 {
        return Err(ProtocolError::ControlFrameTooLong(len));
    }
    if rsv != 0 {
        return Err(ProtocolError::ReservedBits(rsv));
    }
    if ENFORCE && !masked {
        return Err(ProtocolError::UnmaskedFrame);
    }
    match (opcode, in_message) {
        (0x0, None) => return Err(ProtocolError::UnexpectedContinuation),
        (0x1 | 0x2, Some(_)) => return Err(ProtocolError::ExpectedContinuation),
        _ => {}
    }
    if !control {
        let size = (in_message.unwrap_or(0) as u64).saturating_add(len);
        let limit = max_payload.unwrap_or(u64::MAX);
        if size > limit {
            return Err(ProtocolError::PayloadTooBig { limit, size });
        }
    }
    Ok(())
}

/// What the server should report and write for `stream`, by RFC 6455.
fn model(stream: &Stream, max_payload: Option<u64>, server_closes_first: bool) -> Run {
    let open = !server_closes_first;
    let mut events = Vec::new();
    let mut output = Vec::new();
    if server_closes_first {
        output = server_close(1000, SERVER_CLOSE_REASON);
    }
    let fail = |e: ProtocolError, events: &mut Vec<Event>, output: &mut Vec<u8>, open: bool| {
        events.push(Event::Error(e));
        if open {
            output.extend(server_close(e.close_code().0, &e.to_string()));
        }
        Run {
            events: std::mem::take(events),
            output: std::mem::take(output),
            finished: true,
            failed: true,
        }
    };
    // The fragmented message in progress: whether text, and its bytes.
    let mut message: Option<(bool, Vec<u8>)> = None;
    for f in &stream.frames {
        let in_message = message.as_ref().map(|(_, data)| data.len());
        let header = check_header(
            f.fin,
            f.rsv,
            f.opcode,
            f.mask.is_some(),
            f.payload.len() as u64,
            in_message,
            max_payload,
        );
        if let Err(e) = header {
            return fail(e, &mut events, &mut output, open);
        }
        match f.opcode {
            0x0..=0x2 => {
                let (text, mut data) = message
                    .take()
                    .unwrap_or_else(|| (f.opcode == 0x1, Vec::new()));
                data.extend_from_slice(&f.payload);
                // Text is checked as it arrives (fail fast), and once more
                // at the end for a cut-off code point.
                if text && utf8_impossible(&data) {
                    return fail(ProtocolError::InvalidUtf8, &mut events, &mut output, open);
                }
                if !f.fin {
                    message = Some((text, data));
                    continue;
                }
                let m = if text {
                    match String::from_utf8(data) {
                        Ok(s) => Message::from(s),
                        Err(_) => {
                            return fail(
                                ProtocolError::InvalidUtf8,
                                &mut events,
                                &mut output,
                                open,
                            );
                        }
                    }
                } else {
                    Message::from(data)
                };
                // Data crossing our close is dropped.
                if open {
                    events.push(Event::Message(m));
                }
            }
            0x9 => {
                // Every ping before the peer's close is answered (§5.5.2),
                // even one crossing our close; only then is it not reported.
                output.extend(server_frame(0xA, &f.payload));
                if open {
                    events.push(Event::Ping(Bytes::from(f.payload.clone())));
                }
            }
            0xA => {
                if open {
                    events.push(Event::Pong(Bytes::from(f.payload.clone())));
                }
            }
            0x8 => {
                let frame = match &f.payload[..] {
                    [] => CloseFrame {
                        code: None,
                        reason: String::new(),
                    },
                    [_] => {
                        return fail(
                            ProtocolError::InvalidClosePayload,
                            &mut events,
                            &mut output,
                            open,
                        );
                    }
                    [hi, lo, reason @ ..] => {
                        let code = u16::from_be_bytes([*hi, *lo]);
                        if !sendable_code(code) {
                            return fail(
                                ProtocolError::InvalidCloseCode(code),
                                &mut events,
                                &mut output,
                                open,
                            );
                        }
                        let Ok(reason) = std::str::from_utf8(reason) else {
                            return fail(
                                ProtocolError::InvalidCloseReason,
                                &mut events,
                                &mut output,
                                open,
                            );
                        };
                        CloseFrame {
                            code: Some(CloseCode(code)),
                            reason: reason.to_owned(),
                        }
                    }
                };
                // Echo the code, without a reason (§5.5.1); after our own
                // close, the peer's is the answer and gets none.
                if open {
                    output.extend(match frame.code {
                        Some(code) => server_close(code.0, ""),
                        None => server_frame(0x8, &[]),
                    });
                }
                events.push(Event::Close(frame));
                return Run {
                    events,
                    output,
                    finished: true,
                    failed: false,
                };
            }
            _ => unreachable!("check_header refuses reserved opcodes"),
        }
    }
    if let Some(h) = &stream.tail {
        let in_message = message.as_ref().map(|(_, data)| data.len());
        let header = check_header(
            h.fin,
            0,
            h.opcode,
            h.mask.is_some(),
            h.len,
            in_message,
            max_payload,
        );
        if let Err(e) = header {
            return fail(e, &mut events, &mut output, open);
        }
        // Otherwise the frame is still arriving.
    }
    Run {
        events,
        output,
        finished: false,
        failed: false,
    }
}

// ---- properties -----------------------------------------------------------------------

/// Feeds `bytes` whole and cut by `cuts`, to a plain driver and to an echo
/// handler: cutting must change nothing, and the invariants must hold.
fn check_cuts(
    bytes: &[u8],
    cuts: &Cuts,
    base: Driver,
    via_read_buf: bool,
) -> Result<(), TestCaseError> {
    let whole = base.run(&[bytes]);
    let chunked = Driver {
        via_read_buf,
        ..base
    }
    .run(&pieces(bytes, cuts));
    prop_assert_eq!(&chunked, &whole);
    check_invariants(&whole, base);

    // With replies the output interleaves differently (pongs are queued as
    // frames are parsed, replies as events are polled), so only the events
    // and flags are compared, and the invariants checked.
    let echo = Driver { echo: true, ..base };
    for echoed in [
        echo.run(&[bytes]),
        Driver {
            via_read_buf,
            ..echo
        }
        .run(&pieces(bytes, cuts)),
    ] {
        prop_assert_eq!(&echoed.events, &whole.events);
        prop_assert_eq!(
            (echoed.finished, echoed.failed),
            (whole.finished, whole.failed)
        );
        check_invariants(&echoed, echo);
    }
    Ok(())
}

/// Flips (`0`), inserts (`1`) or removes (`2`) a byte at each position.
fn mutate(bytes: &mut Vec<u8>, mutations: Vec<(Index, u8, u8)>) {
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

proptest! {
    #![proptest_config(config(256))]

    /// The same bytes cut differently give the same events and output.
    #[test]
    fn chunked_input_gives_the_same_result_as_whole_input(
        stream in mixed_stream(),
        truncate in prop::option::weighted(0.2, any::<Index>()),
        max_payload in max_payload(),
        server_closes_first in prop::bool::weighted(0.2),
        cuts in cuts(),
        via_read_buf in any::<bool>(),
    ) {
        let mut bytes = stream.encode();
        if let Some(at) = truncate {
            bytes.truncate(at.index(bytes.len() + 1));
        }
        check_cuts(&bytes, &cuts, Driver::new(max_payload, server_closes_first), via_read_buf)?;
    }

    /// Events and output are what RFC 6455 prescribes for the frames sent.
    #[test]
    fn events_and_output_follow_the_reference_model(
        stream in mixed_stream(),
        max_payload in max_payload(),
        server_closes_first in prop::bool::weighted(0.2),
        cuts in cuts(),
    ) {
        let bytes = stream.encode();
        let expected = model(&stream, max_payload, server_closes_first);
        let got = Driver::new(max_payload, server_closes_first).run(&pieces(&bytes, &cuts));
        prop_assert_eq!(got, expected);
    }

    /// Valid streams, cut anywhere, decode to exactly the messages sent,
    /// with every ping answered and a closing handshake echoed.
    #[test]
    fn valid_streams_decode_to_the_messages_sent(
        items in prop::collection::vec(
            prop_oneof![
                3 => data_message(if ENFORCE { 1.0 } else { 0.8 }).prop_map(|(m, f)| (Some(m), f)),
                1 => ping_or_pong(if ENFORCE { 1.0 } else { 0.8 }).prop_map(|f| (None, vec![f])),
            ],
            0..10,
        ),
        close in prop::option::of((valid_close_payload(), any::<[u8; 4]>())),
        limit in 0..3u8,
        cuts in cuts(),
        via_read_buf in any::<bool>(),
    ) {
        let mut frames = Vec::new();
        let mut sent = Vec::new();
        for (message, item_frames) in items {
            sent.extend(message);
            frames.extend(item_frames);
        }
        if let Some((payload, key)) = &close {
            frames.push(ClientFrame::new(true, 0x8, payload.clone(), Some(*key)));
        }
        // No limit, the largest limit, or exactly the largest message.
        let largest = sent.iter().map(|m| m.len() as u64).max().unwrap_or(0);
        let max_payload = [None, Some(u64::MAX), Some(largest)][usize::from(limit)];
        let stream = Stream { frames, tail: None };
        let bytes = stream.encode();
        let driver = Driver { via_read_buf, echo: true, ..Driver::new(max_payload, false) };
        let got = driver.run(&pieces(&bytes, &cuts));

        let received: Vec<Message> = got
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Message(m) => Some(m.clone()),
                _ => None,
            })
            .collect();
        prop_assert_eq!(&received, &sent);
        prop_assert!(!got.failed, "{:?}", got);
        prop_assert_eq!(got.finished, close.is_some());
        check_invariants(&got, driver);
        let expected = model(&stream, max_payload, false);
        prop_assert_eq!(&got.events, &expected.events);
    }

    /// Random bytes never panic, give well-formed output, and do not
    /// depend on how they are cut.
    #[test]
    fn random_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        max_payload in prop_oneof![Just(None), (0..64u64).prop_map(Some)],
        server_closes_first in any::<bool>(),
        cuts in cuts(),
        via_read_buf in any::<bool>(),
    ) {
        check_cuts(&bytes, &cuts, Driver::new(max_payload, server_closes_first), via_read_buf)?;
    }

    /// Streams of frames with a few bytes flipped, inserted or removed:
    /// garbage that gets past the first header more often.
    #[test]
    fn mutated_streams_never_panic(
        stream in mixed_stream(),
        mutations in prop::collection::vec((any::<Index>(), any::<u8>(), 0..3u8), 1..4),
        max_payload in prop_oneof![Just(None), (0..64u64).prop_map(Some)],
        server_closes_first in any::<bool>(),
        cuts in cuts(),
        via_read_buf in any::<bool>(),
    ) {
        let mut bytes = stream.encode();
        mutate(&mut bytes, mutations);
        check_cuts(&bytes, &cuts, Driver::new(max_payload, server_closes_first), via_read_buf)?;
    }
}
