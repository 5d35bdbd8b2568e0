//! permessage-deflate in the connection state machine, on bytes: RSV1
//! rules (RFC 7692 §6.1), compressed messages in one frame and in many,
//! the limit on the inflated size, and compressed output.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

use super::super::mask::apply_mask;
use super::super::*;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn params() -> DeflateParams {
    DeflateParams {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    }
}

fn deflating() -> ServerConnection {
    let mut ws = ServerConnection::new(Some(1 << 20));
    ws.enable_deflate(params(), &DeflateConfig::default());
    ws
}

/// A masked client frame with the given first byte (FIN, RSV, opcode).
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&KEY);
    let mut body = payload.to_vec();
    apply_mask(&mut body, KEY, 0);
    out.extend(body);
    out
}

/// What a client sends: raw deflate with a sync flush, trailer stripped.
fn compress(data: &[u8]) -> Vec<u8> {
    let mut c = Compress::new_with_window_bits(Compression::new(6), false, 15);
    let mut out = Vec::with_capacity(data.len() + 1024);
    c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

fn only_event(ws: &mut ServerConnection) -> Event {
    let events: Vec<Event> = std::iter::from_fn(|| ws.poll_event()).collect();
    assert_eq!(events.len(), 1, "{events:?}");
    events.into_iter().next().unwrap()
}

fn fails_with(ws: &mut ServerConnection, input: &[u8], code: u16) {
    ws.receive(input);
    match only_event(ws) {
        Event::Error(e) => assert_eq!(e.close_code().0, code, "{e:?}"),
        other => panic!("expected an error, got {other:?}"),
    }
}

const TEXT: &str = r#"{"user":"alice","text":"hello, hello, hello, hello"}"#;

#[test]
fn a_compressed_text_message_in_one_frame() {
    let mut ws = deflating();
    ws.receive(&frame(0xC1, &compress(TEXT.as_bytes())));
    assert_eq!(only_event(&mut ws), Event::Message(TEXT.into()));
}

#[test]
fn rfc_7692_hello_in_two_fragments() {
    // §7.2.3.1: "Hello" compressed, split over a text frame with RSV1 and
    // a continuation without it.
    let mut ws = deflating();
    let mut input = frame(0x41, &[0xf2, 0x48, 0xcd]);
    input.extend(frame(0x80, &[0xc9, 0xc9, 0x07, 0x00]));
    ws.receive(&input);
    assert_eq!(only_event(&mut ws), Event::Message("Hello".into()));
}

#[test]
fn compressed_and_plain_messages_mix() {
    let mut ws = deflating();
    let mut input = frame(0x81, b"plain");
    input.extend(frame(0xC2, &compress(&[7u8; 3000])));
    ws.receive(&input);
    let events: Vec<Event> = std::iter::from_fn(|| ws.poll_event()).collect();
    assert_eq!(
        events,
        [
            Event::Message("plain".into()),
            Event::Message(Message::Binary(vec![7u8; 3000].into()))
        ]
    );
}

#[test]
fn rsv1_without_the_extension_fails_with_1002() {
    let mut ws = ServerConnection::new(None);
    fails_with(&mut ws, &frame(0xC1, &compress(b"hi")), 1002);
}

#[test]
fn rsv1_on_a_control_frame_fails_with_1002() {
    fails_with(&mut deflating(), &frame(0xC9, b"ping"), 1002);
}

#[test]
fn rsv1_on_a_continuation_fails_with_1002() {
    let mut input = frame(0x01, b"part");
    input.extend(frame(0xC0, b"rest"));
    fails_with(&mut deflating(), &input, 1002);
}

#[test]
fn rsv2_and_rsv3_still_fail_with_1002() {
    fails_with(&mut deflating(), &frame(0xA1, b"x"), 1002);
    fails_with(&mut deflating(), &frame(0x91, b"x"), 1002);
}

#[test]
fn a_bomb_fails_with_1009_at_the_inflated_limit() {
    // 64 MiB of zeros, about 64 KiB on the wire, against a 1 MiB limit.
    let wire = compress(&vec![0u8; 64 << 20]);
    assert!(wire.len() < 128 << 10);
    let mut ws = deflating();
    ws.receive(&frame(0xC2, &wire));
    match only_event(&mut ws) {
        Event::Error(ProtocolError::PayloadTooBig { limit, size }) => {
            assert_eq!(limit, 1 << 20);
            assert!(size > limit && size <= limit + 1, "{size}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        ws.buffered_capacity() <= (1 << 20) + 1,
        "{}",
        ws.buffered_capacity()
    );
}

#[test]
fn compressed_text_that_inflates_to_bad_utf8_fails_with_1007() {
    fails_with(&mut deflating(), &frame(0xC1, &compress(b"ok \xff")), 1007);
}

#[test]
fn bytes_that_do_not_inflate_fail_with_1007() {
    fails_with(&mut deflating(), &frame(0xC2, &[0xff; 8]), 1007);
}

#[test]
fn messages_go_out_compressed_with_rsv1_and_inflate_back() {
    let mut ws = deflating();
    let text = TEXT.repeat(20);
    ws.send(text.as_str().into()).unwrap();
    let out = ws.take_output();
    assert_eq!(out[0], 0xC1, "FIN, RSV1, text");
    let (header, len) = FrameHeader::parse(&out).unwrap().unwrap();
    assert!((header.payload_len as usize) < text.len() / 4);
    let mut payload = out[len..].to_vec();
    payload.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut inflater = Decompress::new_with_window_bits(false, 15);
    let mut inflated = Vec::with_capacity(text.len() + 64);
    inflater
        .decompress_vec(&payload, &mut inflated, FlushDecompress::Sync)
        .unwrap();
    assert_eq!(inflated, text.as_bytes());
}

#[test]
fn small_messages_and_control_frames_go_out_plain() {
    let mut ws = deflating();
    ws.send("hi".into()).unwrap();
    ws.send_ping(bytes::Bytes::from_static(b"p")).unwrap();
    assert_eq!(ws.take_output(), b"\x81\x02hi\x89\x01p");
}

#[test]
fn an_idle_deflating_connection_holds_no_buffers() {
    let mut ws = deflating();
    ws.receive(&frame(0xC1, &compress(TEXT.as_bytes())));
    let _ = ws.poll_event();
    assert_eq!(ws.buffered_capacity(), 0);
}
