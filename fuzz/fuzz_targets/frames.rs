//! The sans-IO core (`wsroute::proto::ServerConnection`) on arbitrary
//! client bytes, cut into reads by the fuzzer.
//!
//! Input layout (see `Plan::parse`):
//! - bytes 0–1: `max_payload` (big-endian; top bit set: no limit, else the
//!   low 10 bits, 0..=1023);
//! - byte 2: low 4 bits the number of read steps, bit 4 echo messages back,
//!   bit 5 permessage-deflate on (no context takeover), bit 6 with the
//!   client keeping its context;
//! - one byte per read step: low 2 bits how the read is fed (`receive`,
//!   `receive_from` with a reused buffer, `read_buf` + `process`), the
//!   high 6 bits its length (0..=63); the steps repeat until the stream
//!   is used up;
//! - the rest: the client's byte stream.
//!
//! The same stream is also fed whole to a second connection. Checked:
//! - chunked and whole give the same events (and, without echo, the same
//!   output bytes);
//! - no event follows a `Close` or an `Error`;
//! - every text message is valid UTF-8, no message exceeds `max_payload`;
//! - after an `Error`, the output ends with a close frame carrying the
//!   error's `close_code()`; after the peer's `Close`, with the echo of
//!   its code;
//! - under `enforce-ws-spec`, no unmasked data frame ends up in a message;
//! - echoing messages back with `send` never panics.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wsroute::Message;
use wsroute::proto::{DeflateConfig, DeflateParams, Event, ServerConnection};

#[derive(Debug, Clone, Copy)]
enum Feed {
    Receive,
    ReceiveFrom,
    ReadBuf,
}

#[derive(Debug)]
struct Plan<'a> {
    max_payload: Option<u64>,
    echo: bool,
    deflate: Option<DeflateParams>,
    steps: Vec<(Feed, usize)>,
    stream: &'a [u8],
}

impl<'a> Plan<'a> {
    fn parse(data: &'a [u8]) -> Option<Self> {
        let (&[hi, lo, flags], rest) = data.split_first_chunk::<3>()?;
        let raw = u16::from_be_bytes([hi, lo]);
        let max_payload = (raw & 0x8000 == 0).then_some(u64::from(raw & 0x3ff));
        let n = usize::from(flags & 0x0f).min(rest.len());
        let (steps, stream) = rest.split_at(n);
        let steps = steps
            .iter()
            .map(|&b| {
                let feed = match b & 3 {
                    1 => Feed::ReceiveFrom,
                    2 => Feed::ReadBuf,
                    _ => Feed::Receive,
                };
                (feed, usize::from(b >> 2))
            })
            .collect();
        Some(Self {
            max_payload,
            echo: flags & 0x10 != 0,
            deflate: (flags & 0x20 != 0).then_some(DeflateParams {
                server_no_context_takeover: true,
                client_no_context_takeover: flags & 0x40 == 0,
                server_max_window_bits: 15,
                client_max_window_bits: 15,
            }),
            steps,
            stream,
        })
    }
}

/// Polls every pending event, echoing messages if asked; checks that
/// nothing follows a `Close` or an `Error`.
fn drain(ws: &mut ServerConnection, echo: bool, events: &mut Vec<Event>) {
    while let Some(event) = ws.poll_event() {
        if let Some(last @ (Event::Close(_) | Event::Error(_))) = events.last() {
            panic!("event {event:?} after {last:?}");
        }
        if echo && let Event::Message(msg) = &event {
            // Refused once closing; must never panic.
            let _ = ws.send(msg.clone());
            let _ = ws.send(Message::Binary(msg.as_bytes().to_vec().into()));
        }
        events.push(event);
    }
}

fn connection(plan: &Plan<'_>) -> ServerConnection {
    let mut ws = ServerConnection::new(plan.max_payload);
    if let Some(params) = plan.deflate {
        let config = DeflateConfig {
            min_size: 0,
            ..DeflateConfig::default()
        };
        ws.enable_deflate(params, &config);
    }
    ws
}

fn run_chunked(plan: &Plan<'_>) -> (Vec<Event>, Vec<u8>, ServerConnection) {
    let mut ws = connection(plan);
    let mut events = Vec::new();
    let mut reused = BytesMut::new();
    let mut rest = plan.stream;
    let steps: &[(Feed, usize)] = if plan.steps.is_empty() {
        &[(Feed::Receive, usize::MAX)]
    } else {
        &plan.steps
    };
    let mut i = 0;
    let mut empty_reads = 0;
    while !rest.is_empty() {
        let (feed, len) = steps[i % steps.len()];
        i += 1;
        // Empty reads are allowed, but a plan of only empty reads must end.
        if len == 0 {
            empty_reads += 1;
            if empty_reads > 64 {
                break;
            }
        }
        let (piece, tail) = rest.split_at(len.min(rest.len()));
        rest = tail;
        match feed {
            Feed::Receive => ws.receive(piece),
            Feed::ReceiveFrom => {
                reused.extend_from_slice(piece);
                ws.receive_from(&mut reused);
                assert!(reused.is_empty(), "receive_from left bytes in the buffer");
            }
            Feed::ReadBuf => {
                ws.read_buf().extend_from_slice(piece);
                ws.process();
            }
        }
        drain(&mut ws, plan.echo, &mut events);
    }
    if !rest.is_empty() {
        ws.receive(rest);
        drain(&mut ws, plan.echo, &mut events);
    }
    let out = ws.take_output();
    (events, out, ws)
}

fn run_whole(plan: &Plan<'_>) -> (Vec<Event>, Vec<u8>) {
    let mut ws = connection(plan);
    let mut events = Vec::new();
    ws.receive(plan.stream);
    drain(&mut ws, plan.echo, &mut events);
    // More input changes nothing once closed or failed.
    if ws.is_finished() {
        ws.receive(plan.stream);
        drain(&mut ws, plan.echo, &mut events);
    }
    (events, ws.take_output())
}

/// A server frame in the output: opcode and payload. RSV1 (compressed)
/// may be set on data frames when permessage-deflate is on, nothing else.
fn output_frames(mut out: &[u8], deflate: bool) -> Vec<(u8, &[u8])> {
    let mut frames = Vec::new();
    while !out.is_empty() {
        assert!(out.len() >= 2, "truncated frame header in output");
        let opcode = out[0] & 0x0f;
        let rsv = out[0] & 0x70;
        assert!(
            rsv == 0 || rsv == 0x40 && deflate && opcode <= 2,
            "server set RSV bits {rsv:#x} on opcode {opcode}"
        );
        assert_eq!(out[1] & 0x80, 0, "server masked a frame");
        let (len, at) = match out[1] & 0x7f {
            126 => (u64::from(u16::from_be_bytes([out[2], out[3]])), 4),
            127 => (u64::from_be_bytes(out[2..10].try_into().unwrap()), 10),
            n => (u64::from(n), 2),
        };
        let len = usize::try_from(len).unwrap();
        assert!(out.len() >= at + len, "truncated frame payload in output");
        frames.push((opcode, &out[at..at + len]));
        out = &out[at + len..];
    }
    frames
}

/// How many data frames with FIN set start before the first unmasked
/// frame of the client's stream: a bound on the messages that may be
/// delivered under `enforce-ws-spec`.
#[cfg_attr(not(feature = "enforce-ws-spec"), allow(dead_code))]
fn messages_before_unmasked(mut stream: &[u8]) -> usize {
    let mut fins = 0;
    while stream.len() >= 2 {
        let (fin, opcode, masked) = (
            stream[0] & 0x80 != 0,
            stream[0] & 0x0f,
            stream[1] & 0x80 != 0,
        );
        if !masked {
            break;
        }
        let (len, at) = match stream[1] & 0x7f {
            126 if stream.len() >= 4 => (u64::from(u16::from_be_bytes([stream[2], stream[3]])), 4),
            127 if stream.len() >= 10 => {
                (u64::from_be_bytes(stream[2..10].try_into().unwrap()), 10)
            }
            126 | 127 => break,
            n => (u64::from(n), 2),
        };
        if fin && opcode <= 2 {
            fins += 1;
        }
        let Some(next) = usize::try_from(len)
            .ok()
            .and_then(|l| l.checked_add(at + 4))
        else {
            break;
        };
        if next > stream.len() {
            break;
        }
        stream = &stream[next..];
    }
    fins
}

fuzz_target!(|data: &[u8]| {
    let Some(plan) = Plan::parse(data) else {
        return;
    };
    let (events, out, ws) = run_chunked(&plan);
    let (whole_events, whole_out) = run_whole(&plan);
    assert_eq!(events, whole_events, "chunked and whole input differ");
    if !plan.echo {
        assert_eq!(out, whole_out, "chunked and whole output differ");
    }

    let limit = plan.max_payload.unwrap_or(u64::MAX);
    let mut messages = 0;
    for event in &events {
        if let Event::Message(msg) = event {
            messages += 1;
            if let Message::Text(text) = msg {
                assert!(
                    std::str::from_utf8(text.as_bytes()).is_ok(),
                    "invalid UTF-8 text"
                );
            }
            assert!(
                msg.len() as u64 <= limit,
                "message of {} bytes over {limit}",
                msg.len()
            );
        }
    }

    let frames = output_frames(&out, plan.deflate.is_some());
    match events.last() {
        Some(Event::Error(e)) => {
            let code = e.close_code();
            let &(opcode, payload) = frames.last().expect("no close frame after an error");
            assert_eq!(
                opcode, 0x8,
                "output does not end with a close frame after {e:?}"
            );
            assert!(payload.len() >= 2, "close frame without a code after {e:?}");
            assert_eq!(
                u16::from_be_bytes([payload[0], payload[1]]),
                code.0,
                "{e:?}"
            );
            assert!(ws.is_failed() && ws.is_finished());
            assert_eq!(ws.error_close_code(), Some(code));
        }
        Some(Event::Close(frame)) => {
            let &(opcode, payload) = frames.last().expect("no close frame after a close");
            assert_eq!(opcode, 0x8, "output does not end with a close frame");
            match frame.code {
                Some(code) => assert_eq!(payload, &code.0.to_be_bytes()[..]),
                None => assert!(payload.is_empty()),
            }
            assert!(ws.is_finished() && ws.peer_started_close());
        }
        _ => assert!(ws.is_open() && !frames.iter().any(|&(op, _)| op == 0x8)),
    }
    // The only close frame is the last frame.
    let closes = frames.iter().filter(|&&(op, _)| op == 0x8).count();
    assert!(closes <= 1, "{closes} close frames sent");

    #[cfg(feature = "enforce-ws-spec")]
    {
        let bound = messages_before_unmasked(plan.stream);
        assert!(
            messages <= bound,
            "{messages} messages delivered, only {bound} complete before the first unmasked frame"
        );
    }
    let _ = messages;
});
