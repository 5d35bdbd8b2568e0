//! Property tests of the sans-IO core (`wsroute::proto::ServerConnection`)
//! over generated client byte streams:
//!
//! - however a stream is cut into reads (random cuts, 1-byte pieces, through
//!   `receive`, `read_buf` + `process`, or `receive_from` with one buffer
//!   reused for every read), the events and output bytes are those of the
//!   stream fed in one piece;
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

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use proptest::sample::Index;
use wsroute::Message;
use wsroute::proto::{CloseCode, CloseFrame, Event, ProtocolError, ServerConnection};

mod frames;

use frames::*;

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
    /// How pieces are fed.
    feed: Feed,
    /// Send each message back as its event is polled, as an echo handler.
    echo: bool,
}

impl Driver {
    fn new(max_payload: Option<u64>, server_closes_first: bool) -> Self {
        Self {
            max_payload,
            server_closes_first,
            feed: Feed::Receive,
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
            output.extend(take_output(&mut ws));
        }
        // One buffer for every read, as the tokio driver's per-thread
        // buffer: payloads taken out of it must survive its reuse.
        let mut reused = BytesMut::with_capacity(64);
        for piece in pieces {
            match self.feed {
                Feed::Receive => ws.receive(piece),
                Feed::ReadBuf => {
                    ws.read_buf().extend_from_slice(piece);
                    ws.process();
                }
                Feed::Reused => {
                    reused.reserve(64);
                    reused.extend_from_slice(piece);
                    ws.receive_from(&mut reused);
                    assert!(reused.is_empty(), "receive_from leaves the buffer empty");
                }
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
            output.extend(take_output(&mut ws));
        }
        Run {
            events,
            output,
            finished: ws.is_finished(),
            failed: ws.is_failed(),
        }
    }
}

/// The ways bytes are fed to the connection.
#[derive(Debug, Clone, Copy)]
enum Feed {
    /// `receive(&[u8])`.
    Receive,
    /// Written into `read_buf()`, then `process()`.
    ReadBuf,
    /// `receive_from(&mut BytesMut)`, one buffer reused for all reads.
    Reused,
}

fn feed() -> impl Strategy<Value = Feed> {
    prop_oneof![Just(Feed::Receive), Just(Feed::ReadBuf), Just(Feed::Reused)]
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
fn check_cuts(bytes: &[u8], cuts: &Cuts, base: Driver, feed: Feed) -> Result<(), TestCaseError> {
    let whole = base.run(&[bytes]);
    let chunked = Driver { feed, ..base }.run(&pieces(bytes, cuts));
    prop_assert_eq!(&chunked, &whole);
    check_invariants(&whole, base);

    // With replies the output interleaves differently (pongs are queued as
    // frames are parsed, replies as events are polled), so only the events
    // and flags are compared, and the invariants checked.
    let echo = Driver { echo: true, ..base };
    for echoed in [
        echo.run(&[bytes]),
        Driver { feed, ..echo }.run(&pieces(bytes, cuts)),
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
        feed in feed(),
    ) {
        let mut bytes = stream.encode();
        if let Some(at) = truncate {
            bytes.truncate(at.index(bytes.len() + 1));
        }
        check_cuts(&bytes, &cuts, Driver::new(max_payload, server_closes_first), feed)?;
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
        feed in feed(),
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
        let driver = Driver { feed, echo: true, ..Driver::new(max_payload, false) };
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
        feed in feed(),
    ) {
        check_cuts(&bytes, &cuts, Driver::new(max_payload, server_closes_first), feed)?;
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
        feed in feed(),
    ) {
        let mut bytes = stream.encode();
        mutate(&mut bytes, mutations);
        check_cuts(&bytes, &cuts, Driver::new(max_payload, server_closes_first), feed)?;
    }
}
