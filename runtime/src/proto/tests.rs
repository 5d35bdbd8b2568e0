//! Byte-level tests of the connection state machine: one RFC 6455 rule
//! each, written as the bytes a client sends and the bytes and events the
//! server produces.

use bytes::Bytes;

use super::mask::apply_mask;
use super::*;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A client frame: masked with `KEY` unless `mask` is false.
fn frame_with(first_byte: u8, payload: &[u8], mask: bool) -> Vec<u8> {
    let mut out = vec![first_byte];
    let mask_bit = if mask { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(mask_bit | n as u8),
        n @ 126..=0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let mut body = payload.to_vec();
    if mask {
        out.extend_from_slice(&KEY);
        apply_mask(&mut body, KEY, 0);
    }
    out.extend_from_slice(&body);
    out
}

fn frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    frame_with(u8::from(fin) << 7 | opcode.bits(), payload, true)
}

fn text(s: &str) -> Vec<u8> {
    frame(OpCode::Text, true, s.as_bytes())
}

fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    p
}

fn events(ws: &mut ServerConnection) -> Vec<Event> {
    std::iter::from_fn(|| ws.poll_event()).collect()
}

/// The unmasked server frame the output should contain.
fn server_frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    frame_with(0x80 | opcode.bits(), payload, false)
}

fn server_close(code: u16) -> Vec<u8> {
    server_frame(OpCode::Close, &close_payload(code, b""))
}

/// The status code of the close frame that `output` consists of.
fn close_code_sent(output: &[u8]) -> u16 {
    assert_eq!(output[0], 0x88, "not a close frame: {output:x?}");
    assert_eq!(usize::from(output[1]) + 2, output.len(), "not one frame");
    u16::from_be_bytes([output[2], output[3]])
}

/// Feeds `input`, expects exactly one error event with `error`, and a close
/// frame with its code as the only output.
fn assert_fails(input: &[u8], error: ProtocolError) {
    let mut ws = ServerConnection::new(None);
    ws.receive(input);
    assert_eq!(events(&mut ws), [Event::Error(error)], "input {input:x?}");
    assert_eq!(close_code_sent(&ws.take_output()), error.close_code().0);
    assert!(ws.is_finished() && ws.is_failed());
    assert_eq!(ws.sent_close().unwrap().code, Some(error.close_code()));
}

fn message(ws: &mut ServerConnection) -> Message {
    match events(ws).as_slice() {
        [Event::Message(m)] => m.clone(),
        other => panic!("expected one message, got {other:?}"),
    }
}

// ---- data frames ------------------------------------------------------------

#[test]
fn masked_text_and_binary_messages() {
    let mut ws = ServerConnection::new(None);
    ws.receive(&text("Hello"));
    assert_eq!(message(&mut ws), Message::from("Hello"));
    ws.receive(&frame(OpCode::Binary, true, &[0, 1, 255]));
    assert_eq!(message(&mut ws), Message::from(vec![0u8, 1, 255]));
    ws.receive(&text(""));
    assert_eq!(message(&mut ws), Message::from(""));
    assert!(ws.take_output().is_empty());
}

#[test]
fn sixteen_and_sixty_four_bit_lengths_are_received() {
    let mut ws = ServerConnection::new(None);
    for len in [125, 126, 65535, 65536, 100_000] {
        let payload = vec![b'x'; len];
        ws.receive(&frame(OpCode::Binary, true, &payload));
        assert_eq!(message(&mut ws).len(), len);
    }
}

#[test]
fn several_frames_in_one_read_give_several_events_in_order() {
    let mut input = text("a");
    input.extend(text("b"));
    input.extend(frame(OpCode::Ping, true, b"p"));
    input.extend(text("c"));
    let mut ws = ServerConnection::new(None);
    ws.receive(&input);
    assert_eq!(
        events(&mut ws),
        [
            Event::Message("a".into()),
            Event::Message("b".into()),
            Event::Ping(Bytes::from_static(b"p")),
            Event::Message("c".into()),
        ]
    );
}

#[test]
fn unmasked_client_frames_follow_the_build_mode() {
    let unmasked = frame_with(0x81, b"hi", false);
    if cfg!(feature = "enforce-ws-spec") {
        assert_fails(&unmasked, ProtocolError::UnmaskedFrame);
    } else {
        let mut ws = ServerConnection::new(None);
        ws.receive(&unmasked);
        assert_eq!(message(&mut ws), Message::from("hi"));
    }
}

// ---- opcodes and reserved bits ----------------------------------------------

#[test]
fn reserved_opcodes_fail_with_1002() {
    for op in [0x3, 0x7, 0xB, 0xF] {
        assert_fails(
            &frame_with(0x80 | op, b"", true),
            ProtocolError::ReservedOpcode(op),
        );
    }
}

#[test]
fn rsv_bits_without_an_extension_fail_with_1002() {
    for rsv in [0b100, 0b010, 0b001, 0b111] {
        assert_fails(
            &frame_with(0x80 | rsv << 4 | 0x1, b"x", true),
            ProtocolError::ReservedBits(rsv),
        );
    }
}

#[test]
fn sixty_four_bit_length_with_top_bit_fails_with_1002() {
    let mut input = vec![0x82, 0xFF];
    input.extend_from_slice(&(1u64 << 63).to_be_bytes());
    input.extend_from_slice(&KEY);
    assert_fails(&input, ProtocolError::InvalidLength);
}

// ---- control frames -----------------------------------------------------------

#[test]
fn ping_is_answered_with_a_pong_carrying_its_payload() {
    let mut ws = ServerConnection::new(None);
    ws.receive(&frame(OpCode::Ping, true, b"are you there"));
    assert_eq!(
        events(&mut ws),
        [Event::Ping(Bytes::from_static(b"are you there"))]
    );
    assert_eq!(
        ws.take_output(),
        server_frame(OpCode::Pong, b"are you there")
    );
    let full = [7u8; 125];
    ws.receive(&frame(OpCode::Ping, true, &full));
    events(&mut ws);
    assert_eq!(ws.take_output(), server_frame(OpCode::Pong, &full));
}

#[test]
fn pong_is_reported_and_not_answered() {
    let mut ws = ServerConnection::new(None);
    ws.receive(&frame(OpCode::Pong, true, b"x"));
    assert_eq!(events(&mut ws), [Event::Pong(Bytes::from_static(b"x"))]);
    assert!(ws.take_output().is_empty());
}

#[test]
fn control_frame_over_125_bytes_fails_with_1002() {
    assert_fails(
        &frame(OpCode::Ping, true, &[0; 126]),
        ProtocolError::ControlFrameTooLong(126),
    );
}

#[test]
fn fragmented_control_frame_fails_with_1002() {
    assert_fails(
        &frame(OpCode::Ping, false, b"x"),
        ProtocolError::FragmentedControlFrame,
    );
    assert_fails(
        &frame(OpCode::Close, false, &[]),
        ProtocolError::FragmentedControlFrame,
    );
}

#[test]
fn control_frames_may_interleave_with_fragments() {
    let mut input = frame(OpCode::Text, false, b"Hel");
    input.extend(frame(OpCode::Ping, true, b"1"));
    input.extend(frame(OpCode::Continuation, false, b"l"));
    input.extend(frame(OpCode::Pong, true, b"2"));
    input.extend(frame(OpCode::Continuation, true, b"o"));
    let mut ws = ServerConnection::new(None);
    ws.receive(&input);
    assert_eq!(
        events(&mut ws),
        [
            Event::Ping(Bytes::from_static(b"1")),
            Event::Pong(Bytes::from_static(b"2")),
            Event::Message("Hello".into()),
        ]
    );
    assert_eq!(ws.take_output(), server_frame(OpCode::Pong, b"1"));
}

// ---- fragmentation --------------------------------------------------------------

#[test]
fn fragmented_binary_message_is_reassembled() {
    let mut ws = ServerConnection::new(None);
    ws.receive(&frame(OpCode::Binary, false, &[1, 2]));
    ws.receive(&frame(OpCode::Continuation, false, &[]));
    assert!(events(&mut ws).is_empty());
    ws.receive(&frame(OpCode::Continuation, true, &[3]));
    assert_eq!(message(&mut ws), Message::from(vec![1u8, 2, 3]));
}

#[test]
fn continuation_without_a_message_fails_with_1002() {
    assert_fails(
        &frame(OpCode::Continuation, true, b"x"),
        ProtocolError::UnexpectedContinuation,
    );
}

#[test]
fn new_message_inside_a_fragmented_one_fails_with_1002() {
    for opcode in [OpCode::Text, OpCode::Binary] {
        let mut input = frame(OpCode::Text, false, b"a");
        input.extend(frame(opcode, true, b"b"));
        assert_fails(&input, ProtocolError::ExpectedContinuation);
    }
}

// ---- UTF-8 ----------------------------------------------------------------------

#[test]
fn invalid_utf8_text_fails_with_1007() {
    assert_fails(
        &frame(OpCode::Text, true, &[b'a', 0xFF]),
        ProtocolError::InvalidUtf8,
    );
    // Truncated code point at the end of the message.
    assert_fails(
        &frame(OpCode::Text, true, &[0xCE]),
        ProtocolError::InvalidUtf8,
    );
}

#[test]
fn binary_messages_are_not_utf8_checked() {
    let mut ws = ServerConnection::new(None);
    ws.receive(&frame(OpCode::Binary, true, &[0xFF, 0xFE]));
    assert!(message(&mut ws).is_binary());
}

#[test]
fn utf8_code_point_split_across_fragments_is_valid() {
    let kappa = "κ".as_bytes();
    let mut ws = ServerConnection::new(None);
    ws.receive(&frame(OpCode::Text, false, &kappa[..1]));
    ws.receive(&frame(OpCode::Continuation, true, &kappa[1..]));
    assert_eq!(message(&mut ws), Message::from("κ"));
}

#[test]
fn invalid_utf8_fails_at_the_fragment_that_makes_it_impossible() {
    let mut ws = ServerConnection::new(None);
    ws.receive(&frame(OpCode::Text, false, b"valid "));
    assert!(events(&mut ws).is_empty());
    // 0xF4 0x90 lies above U+10FFFF; the message is not over yet.
    ws.receive(&frame(OpCode::Continuation, false, &[0xF4, 0x90]));
    assert_eq!(events(&mut ws), [Event::Error(ProtocolError::InvalidUtf8)]);
    assert_eq!(close_code_sent(&ws.take_output()), 1007);
}

#[test]
fn invalid_utf8_fails_inside_a_frame_that_is_still_arriving() {
    let mut payload = b"hello ".to_vec();
    payload.extend_from_slice(&[0xCE, 0xBA, 0xF4, 0x90, 0x80, 0x80]);
    payload.extend_from_slice(&[b'z'; 1000]);
    let bytes = frame(OpCode::Text, true, &payload);
    // Header (4 + 4 bytes) and the first 10 payload bytes: the bad bytes
    // are in, the other 1002 bytes of the frame are not.
    let mut ws = ServerConnection::new(None);
    ws.receive(&bytes[..8 + 10]);
    assert_eq!(events(&mut ws), [Event::Error(ProtocolError::InvalidUtf8)]);
    // And byte by byte: fails on the byte after 0xF4.
    let mut ws = ServerConnection::new(None);
    for (i, b) in bytes.iter().enumerate() {
        ws.receive(&[*b]);
        if let Some(event) = ws.poll_event() {
            assert_eq!(event, Event::Error(ProtocolError::InvalidUtf8));
            assert!(ws.is_failed());
            assert_eq!(i, 8 + 9, "failed at byte {i}");
            return;
        }
    }
    panic!("never failed");
}

// ---- close ------------------------------------------------------------------------

#[test]
fn peer_close_is_echoed_and_finishes_the_connection() {
    let mut ws = ServerConnection::new(None);
    ws.receive(&frame(OpCode::Close, true, &close_payload(1000, b"done")));
    assert_eq!(
        events(&mut ws),
        [Event::Close(CloseFrame {
            code: Some(CloseCode::NORMAL),
            reason: "done".into()
        })]
    );
    assert_eq!(ws.take_output(), server_close(1000));
    assert!(ws.is_finished() && !ws.is_failed());
    assert_eq!(ws.send("late".into()), Err(QueueError::Closed));
    // Nothing after the close is read.
    ws.receive(&text("ignored"));
    assert!(events(&mut ws).is_empty());
}

#[test]
fn empty_close_is_answered_with_an_empty_close() {
    let mut ws = ServerConnection::new(None);
    ws.receive(&frame(OpCode::Close, true, &[]));
    assert_eq!(
        events(&mut ws),
        [Event::Close(CloseFrame {
            code: None,
            reason: String::new()
        })]
    );
    assert_eq!(ws.take_output(), [0x88, 0x00]);
}

#[test]
fn valid_close_codes_are_echoed() {
    for code in [1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999] {
        let mut ws = ServerConnection::new(None);
        ws.receive(&frame(OpCode::Close, true, &close_payload(code, b"")));
        assert!(matches!(events(&mut ws)[..], [Event::Close(_)]), "{code}");
        assert_eq!(ws.take_output(), server_close(code));
    }
}

#[test]
fn invalid_close_codes_fail_with_1002() {
    for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
        assert_fails(
            &frame(OpCode::Close, true, &close_payload(code, b"")),
            ProtocolError::InvalidCloseCode(code),
        );
    }
}

#[test]
fn one_byte_close_payload_fails_with_1002() {
    assert_fails(
        &frame(OpCode::Close, true, &[0x03]),
        ProtocolError::InvalidClosePayload,
    );
}

#[test]
fn close_reason_that_is_not_utf8_fails_with_1007() {
    assert_fails(
        &frame(OpCode::Close, true, &close_payload(1000, &[0xFF])),
        ProtocolError::InvalidCloseReason,
    );
}

#[test]
fn server_initiated_close_waits_for_the_peer() {
    let mut ws = ServerConnection::new(None);
    ws.close(CloseCode::GOING_AWAY, "shutting down").unwrap();
    let mut expected = server_frame(OpCode::Close, &close_payload(1001, b"shutting down"));
    assert_eq!(ws.take_output(), expected);
    assert!(!ws.is_open() && !ws.is_finished());
    assert_eq!(ws.send("more".into()), Err(QueueError::Closed));
    assert_eq!(ws.close(CloseCode::NORMAL, ""), Err(QueueError::Closed));

    // Data that crosses our close is dropped; a ping is still answered
    // (§5.5.2: only a *received* Close excuses the pong).
    ws.receive(&text("in flight"));
    ws.receive(&frame(OpCode::Ping, true, b"p"));
    assert!(events(&mut ws).is_empty());
    assert_eq!(ws.take_output(), server_frame(OpCode::Pong, b"p"));

    ws.receive(&frame(OpCode::Close, true, &close_payload(1001, b"")));
    assert!(matches!(events(&mut ws)[..], [Event::Close(_)]));
    assert!(ws.is_finished());
    expected.clear();
    assert_eq!(ws.take_output(), expected, "no second close frame");
}

#[test]
fn codes_1005_and_1006_never_go_on_the_wire() {
    for code in [CloseCode::NO_STATUS, CloseCode::ABNORMAL, CloseCode::TLS] {
        let mut ws = ServerConnection::new(None);
        ws.close(code, "reason").unwrap();
        assert_eq!(ws.take_output(), [0x88, 0x00]);
    }
}

#[test]
fn a_protocol_error_after_our_close_sends_no_second_close() {
    let mut ws = ServerConnection::new(None);
    ws.close(CloseCode::NORMAL, "").unwrap();
    ws.take_output();
    ws.receive(&frame_with(0x83, b"", true));
    assert_eq!(
        events(&mut ws),
        [Event::Error(ProtocolError::ReservedOpcode(3))]
    );
    assert!(ws.take_output().is_empty());
    assert!(ws.is_finished());
}

#[test]
fn input_after_a_failure_is_ignored() {
    let mut ws = ServerConnection::new(None);
    ws.receive(&frame_with(0x83, b"", true));
    events(&mut ws);
    ws.receive(&text("after"));
    assert!(events(&mut ws).is_empty());
}

#[test]
fn replies_to_messages_before_a_failure_go_out_before_the_close() {
    // Autobahn 3.2 / 4.1.3 / 5.15: a valid message and a bad frame in one read.
    let mut input = text("first");
    input.extend(frame_with(0x83, b"", true));
    let mut ws = ServerConnection::new(None);
    ws.receive(&input);
    let Some(Event::Message(m)) = ws.poll_event() else {
        panic!("message first")
    };
    assert!(ws.is_open(), "the failure takes effect when polled");
    ws.send(m).unwrap();
    assert_eq!(
        ws.poll_event(),
        Some(Event::Error(ProtocolError::ReservedOpcode(3)))
    );
    assert!(ws.is_failed());
    assert_eq!(ws.error_close_code(), Some(CloseCode::PROTOCOL_ERROR));
    let out = ws.take_output();
    let echo = server_frame(OpCode::Text, b"first");
    assert_eq!(out[..echo.len()], echo);
    assert_eq!(close_code_sent(&out[echo.len()..]), 1002);
}

#[test]
fn replies_to_messages_before_a_peer_close_go_out_before_the_echoed_close() {
    let mut input = text("last words");
    input.extend(frame(OpCode::Close, true, &close_payload(1000, b"")));
    let mut ws = ServerConnection::new(None);
    ws.receive(&input);
    let Some(Event::Message(m)) = ws.poll_event() else {
        panic!("message first")
    };
    ws.send(m).unwrap();
    assert!(matches!(ws.poll_event(), Some(Event::Close(_))));
    let mut expected = server_frame(OpCode::Text, b"last words");
    expected.extend(server_close(1000));
    assert_eq!(ws.take_output(), expected);
}

#[test]
fn an_app_close_between_message_and_failure_means_no_second_close() {
    let mut input = text("bye");
    input.extend(frame_with(0x83, b"", true));
    let mut ws = ServerConnection::new(None);
    ws.receive(&input);
    assert!(matches!(ws.poll_event(), Some(Event::Message(_))));
    ws.close(CloseCode::NORMAL, "").unwrap();
    assert!(matches!(ws.poll_event(), Some(Event::Error(_))));
    assert_eq!(ws.error_close_code(), None);
    assert_eq!(ws.take_output(), server_close(1000));
}

#[test]
fn an_app_close_between_message_and_peer_close_is_not_answered_again() {
    let mut input = text("bye");
    input.extend(frame(OpCode::Close, true, &close_payload(1000, b"done")));
    let mut ws = ServerConnection::new(None);
    ws.receive(&input);
    assert!(matches!(ws.poll_event(), Some(Event::Message(_))));
    assert_eq!(
        ws.received_close(),
        None,
        "the peer's close is not polled yet"
    );
    ws.close(CloseCode::GOING_AWAY, "").unwrap();
    assert!(!ws.is_open());
    assert!(matches!(ws.poll_event(), Some(Event::Close(_))));
    assert!(ws.is_finished() && !ws.is_failed());
    assert!(!ws.peer_started_close(), "our close went first");
    assert_eq!(ws.received_close().unwrap().reason, "done");
    assert_eq!(ws.sent_close().unwrap().code, Some(CloseCode::GOING_AWAY));
    assert_eq!(
        ws.take_output(),
        server_close(1001),
        "one close frame, ours"
    );
}

#[test]
fn a_failed_connection_reports_its_error_once_polled() {
    let mut ws = ServerConnection::new(None);
    ws.receive(&frame_with(0x83, b"", true));
    assert_eq!(ws.error(), None);
    events(&mut ws);
    assert_eq!(ws.error(), Some(ProtocolError::ReservedOpcode(3)));
    assert_eq!(ws.received_close(), None);
}

// ---- max payload --------------------------------------------------------------------

#[test]
fn message_at_the_limit_passes() {
    let mut ws = ServerConnection::new(Some(10));
    ws.receive(&frame(OpCode::Binary, true, &[0; 10]));
    assert_eq!(message(&mut ws).len(), 10);
}

#[test]
fn frame_over_the_limit_is_refused_before_its_payload_arrives() {
    let bytes = frame(OpCode::Binary, true, &[0; 11]);
    let mut ws = ServerConnection::new(Some(10));
    ws.receive(&bytes[..6]); // the header only
    assert_eq!(
        events(&mut ws),
        [Event::Error(ProtocolError::PayloadTooBig {
            limit: 10,
            size: 11
        })]
    );
    assert_eq!(close_code_sent(&ws.take_output()), 1009);
}

#[test]
fn fragments_each_under_the_limit_but_over_it_together_fail_with_1009() {
    let mut ws = ServerConnection::new(Some(10));
    ws.receive(&frame(OpCode::Text, false, b"12345"));
    ws.receive(&frame(OpCode::Continuation, false, b"12345"));
    assert!(events(&mut ws).is_empty());
    ws.receive(&frame(OpCode::Continuation, true, b"1"));
    assert_eq!(
        events(&mut ws),
        [Event::Error(ProtocolError::PayloadTooBig {
            limit: 10,
            size: 11
        })]
    );
    assert_eq!(close_code_sent(&ws.take_output()), 1009);
}

#[test]
fn control_frames_do_not_count_toward_the_limit() {
    let mut ws = ServerConnection::new(Some(4));
    ws.receive(&frame(OpCode::Text, false, b"ab"));
    ws.receive(&frame(OpCode::Ping, true, &[0; 100]));
    ws.receive(&frame(OpCode::Continuation, true, b"cd"));
    let evs = events(&mut ws);
    assert_eq!(evs.len(), 2);
    assert_eq!(evs[1], Event::Message("abcd".into()));
}

#[test]
fn u64_max_limit_means_no_limit() {
    let mut ws = ServerConnection::new(Some(u64::MAX));
    ws.receive(&frame(OpCode::Binary, true, &[0; 70_000]));
    assert_eq!(message(&mut ws).len(), 70_000);
}

#[test]
fn a_huge_length_header_allocates_nothing_large() {
    let mut header = vec![0x82, 0xFF];
    header.extend_from_slice(&(1u64 << 62).to_be_bytes());
    header.extend_from_slice(&KEY);

    // No limit: the connection waits for the payload, reserving only a
    // bounded read window.
    let mut ws = ServerConnection::new(None);
    ws.receive(&header);
    assert!(events(&mut ws).is_empty());
    for _ in 0..3 {
        let buf = ws.read_buf();
        assert!(buf.capacity() <= 1 << 20, "reserved {}", buf.capacity());
        buf.extend_from_slice(&[0u8; 1000]);
        ws.process();
    }
    assert!(ws.buffered_capacity() <= 1 << 20);

    // With a limit: refused at once.
    let mut ws = ServerConnection::new(Some(1 << 20));
    ws.receive(&header);
    assert!(matches!(
        events(&mut ws)[..],
        [Event::Error(ProtocolError::PayloadTooBig { .. })]
    ));
    assert_eq!(ws.buffered_capacity(), 0);
}

// ---- buffers -------------------------------------------------------------------------

#[test]
fn a_fresh_connection_allocates_nothing() {
    let ws = ServerConnection::new(Some(1024));
    assert_eq!(ws.buffered_capacity(), 0);
}

#[test]
fn buffers_shrink_back_after_a_large_message() {
    let bytes = frame(OpCode::Binary, true, &vec![1u8; 1 << 20]);
    let mut ws = ServerConnection::new(None);
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let buf = ws.read_buf();
        let n = rest.len().min(buf.capacity() - buf.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        ws.process();
    }
    assert_eq!(message(&mut ws).len(), 1 << 20);
    assert_eq!(ws.buffered_capacity(), 0);

    ws.send(Message::Binary(Bytes::from(vec![0u8; 1 << 20])))
        .unwrap();
    assert_eq!(ws.take_output().len(), (1 << 20) + 10);
    ws.receive(&text("small"));
    assert_eq!(message(&mut ws), Message::from("small"));
    assert!(ws.buffered_capacity() <= 16 * 1024);
}

#[test]
fn reading_through_read_buf_hands_over_the_payload_without_a_copy() {
    let bytes = frame(OpCode::Binary, true, &[9u8; 2000]);
    let mut ws = ServerConnection::new(None);
    let buf = ws.read_buf();
    buf.extend_from_slice(&bytes);
    let region = buf.as_ptr_range();
    ws.process();
    let msg = message(&mut ws);
    let payload = msg.as_bytes().as_ptr();
    assert!(region.contains(&payload), "payload was copied");
}

#[test]
fn receive_from_splits_messages_out_of_the_callers_buffer() {
    let mut bytes = frame(OpCode::Binary, true, &[7u8; 300]);
    bytes.extend(text("two"));
    let mut ws = ServerConnection::new(None);
    let mut shared = bytes::BytesMut::with_capacity(4096);
    shared.extend_from_slice(&bytes);
    let region = shared.as_ptr_range();
    ws.receive_from(&mut shared);
    assert!(shared.is_empty());
    let [Event::Message(first), Event::Message(second)] = &events(&mut ws)[..] else {
        panic!("expected two messages");
    };
    assert!(
        region.contains(&first.as_bytes().as_ptr()),
        "payload was copied"
    );
    assert_eq!(first.len(), 300);
    assert_eq!(second, &Message::from("two"));
    // Nothing was left over, so the connection keeps no buffer.
    assert_eq!(ws.buffered_capacity(), 0);
}

#[test]
fn a_large_frame_gets_one_buffer_sized_from_its_header_with_room_past_its_end() {
    let bytes = frame(OpCode::Binary, true, &[5u8; 64 * 1024]);
    let mut ws = ServerConnection::new(None);
    // The first read, into a shared buffer, brings the header and a part.
    let mut shared = bytes::BytesMut::from(&bytes[..16 * 1024]);
    ws.receive_from(&mut shared);
    assert!(events(&mut ws).is_empty());
    let pending = ws.payload_pending() as usize;
    assert_eq!(pending, bytes.len() - 16 * 1024);

    // The rest fits without a reallocation, and the room is larger than
    // what is pending: a read that drains the socket comes back short.
    let buf = ws.read_buf();
    let start = buf.as_ptr();
    assert!(buf.capacity() - buf.len() > pending);
    buf.extend_from_slice(&bytes[16 * 1024..]);
    assert_eq!(buf.as_ptr(), start, "the buffer was reallocated");
    ws.process();
    assert_eq!(message(&mut ws).len(), 64 * 1024);
    assert_eq!(ws.buffered_capacity(), 0);
}

// ---- arbitrary splits -------------------------------------------------------------------

#[test]
fn a_stream_split_at_every_point_gives_the_same_events_and_output() {
    let mut stream = text("first");
    stream.extend(frame(OpCode::Binary, false, &[1; 130]));
    stream.extend(frame(OpCode::Ping, true, b"ping"));
    stream.extend(frame(OpCode::Continuation, true, &[2; 200]));
    stream.extend(frame(OpCode::Text, true, "κόσμε".as_bytes()));
    stream.extend(frame(OpCode::Close, true, &close_payload(1000, b"bye")));

    let mut whole = ServerConnection::new(None);
    whole.receive(&stream);
    let expected_events = events(&mut whole);
    let expected_output = whole.take_output();
    assert_eq!(expected_events.len(), 5);

    for cut in 0..=stream.len() {
        let mut ws = ServerConnection::new(None);
        ws.receive(&stream[..cut]);
        ws.receive(&stream[cut..]);
        assert_eq!(events(&mut ws), expected_events, "cut at {cut}");
        assert_eq!(ws.take_output(), expected_output, "cut at {cut}");
    }
}

#[test]
fn a_message_in_more_frames_than_max_fragments_fails_with_1009() {
    let mut ws = ServerConnection::new(None);
    ws.set_max_fragments(3);
    let mut ok = frame(OpCode::Text, false, b"a");
    ok.extend(frame(OpCode::Continuation, false, b""));
    ok.extend(frame(OpCode::Continuation, true, b"b"));
    ws.receive(&ok);
    assert_eq!(message(&mut ws).as_text(), Some("ab"));

    let mut endless = frame(OpCode::Binary, false, b"");
    for _ in 0..5 {
        endless.extend(frame(OpCode::Continuation, false, b""));
    }
    ws.receive(&endless);
    assert_eq!(
        events(&mut ws),
        [Event::Error(ProtocolError::TooManyFragments { limit: 3 })]
    );
    assert_eq!(close_code_sent(&ws.take_output()), 1009);
    assert!(ws.is_failed());
}

#[test]
fn fail_with_drops_the_partial_message_and_closes_with_its_code() {
    let mut ws = ServerConnection::new(None);
    // Half of a 64 KiB frame.
    let big = frame(OpCode::Binary, true, &[1u8; 65536]);
    ws.receive(&big[..32 * 1024]);
    assert!(ws.buffered_capacity() >= 32 * 1024);
    ws.fail_with(ProtocolError::Overloaded);
    assert_eq!(ws.buffered_capacity(), 0);
    assert_eq!(events(&mut ws), [Event::Error(ProtocolError::Overloaded)]);
    assert_eq!(close_code_sent(&ws.take_output()), 1013);
    // The rest of the frame is ignored.
    ws.receive(&big[32 * 1024..]);
    assert_eq!(events(&mut ws), []);
}
