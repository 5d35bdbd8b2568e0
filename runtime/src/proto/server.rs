//! The server side of one WebSocket connection, as a state machine over
//! bytes.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};

use super::close::{CloseCode, CloseFrame};
use super::deflate::codec::Codec;
use super::deflate::{DeflateConfig, DeflateParams};
use super::frame::{FrameHeader, OpCode};
use super::mask::apply_mask;
use super::message::{Message, Utf8Bytes};
use super::outbox::Outbox;
use super::state::{Cause, State};
use super::utf8::Utf8Validator;
use super::{ProtocolError, QueueError};

/// Spare room offered to each socket read when no large frame is pending,
/// and beyond the end of one that is: a read that does not fill its room
/// shows the socket drained, which spares the driver a read that would
/// find nothing.
const READ_CHUNK: usize = 4 * 1024;
/// The most spare room reserved at once for a large frame still arriving,
/// so an untrusted length header never sizes an allocation.
const MAX_READ_RESERVE: usize = 256 * 1024;
/// An output buffer larger than this is given back once written.
const KEEP_IDLE: usize = 4 * 1024;

/// What the peer's bytes amounted to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A complete text or binary message.
    Message(Message),
    /// A ping; the pong carrying its payload is already queued.
    Ping(Bytes),
    /// A pong.
    Pong(Bytes),
    /// The peer's close frame. If the peer started the handshake, polling
    /// it queues the answering close frame.
    Close(CloseFrame),
    /// The peer broke the protocol or a limit. Polling it queues a close
    /// frame with the error's code, unless one was sent before.
    Error(ProtocolError),
}

/// The frame being received: its header is parsed, its payload may still
/// be arriving.
#[derive(Debug)]
struct FrameInProgress {
    header: FrameHeader,
    header_len: usize,
    /// Payload bytes already unmasked and, for text, UTF-8 checked.
    checked: usize,
}

/// A fragmented message whose final frame has not arrived.
#[derive(Debug)]
struct MessageInProgress {
    text: bool,
    /// The payload so far; for a compressed message, the compressed frames
    /// are inflated into `inflated` instead and this stays empty.
    data: BytesMut,
    /// Frames of the message received so far.
    frames: usize,
    /// Whether the message is compressed (RSV1 on its first frame): its
    /// inflated payload so far is then in the codec.
    compressed: bool,
}

/// RSV1: the message is compressed (RFC 7692 §6).
const RSV1: u8 = 0b100;

/// The sans-IO core of a server-side WebSocket connection: no sockets, no
/// clock, no runtime.
///
/// # Methods by role
///
/// - **Input**: [`receive`](Self::receive) copies bytes in;
///   [`read_buf`](Self::read_buf) + [`process`](Self::process) read
///   straight into the connection's buffer; [`receive_from`](Self::receive_from)
///   takes payloads out of the caller's buffer without a copy.
///   [`payload_pending`](Self::payload_pending) says how much of a large
///   frame is still to come. [`fail_with`](Self::fail_with) fails the
///   connection for a reason outside the byte stream (a server-wide
///   limit).
/// - **Events**: [`poll_event`](Self::poll_event) (and
///   [`peek_event`](Self::peek_event)) hand out what the bytes meant.
///   Polling an [`Event::Close`] or [`Event::Error`] is what moves the
///   close handshake on.
/// - **Output**: [`send`](Self::send), [`send_ping`](Self::send_ping),
///   [`send_pong`](Self::send_pong) and [`close`](Self::close) queue
///   frames; [`chunks_vectored`](Self::chunks_vectored) lends what waits
///   to be written, [`advance_output`](Self::advance_output) marks it
///   written, [`output_len`](Self::output_len) says how much waits.
/// - **State**: [`is_open`](Self::is_open), [`is_finished`](Self::is_finished),
///   [`is_failed`](Self::is_failed), [`error`](Self::error),
///   [`sent_close`](Self::sent_close), [`received_close`](Self::received_close),
///   [`peer_started_close`](Self::peer_started_close),
///   [`error_close_code`](Self::error_close_code), and
///   [`buffered_capacity`](Self::buffered_capacity) for memory accounting.
///
/// # Driving it
///
/// A driver loops:
///
/// 1. When the socket is readable, read into [`read_buf`](Self::read_buf)
///    and call [`process`](Self::process) (or feed what was read to
///    [`receive`](Self::receive)).
/// 2. Take every event with [`poll_event`](Self::poll_event) and handle it,
///    queueing replies with [`send`](Self::send) as it goes. Replies to a
///    message are thus queued before the close frame that polling a later
///    `Close` or `Error` queues.
/// 3. Queue what the application sends at any time; write
///    [`chunks_vectored`](Self::chunks_vectored) and call
///    [`advance_output`](Self::advance_output) with what was written.
/// 4. Once [`is_finished`](Self::is_finished) and the output is written,
///    end the TCP connection. After its own [`close`](Self::close), a
///    driver bounds the wait for the peer's with a timer of its own: there
///    is no clock here.
///
/// ```
/// use wsroute::proto::{Event, ServerConnection};
/// use wsroute::Message;
///
/// let mut ws = ServerConnection::new(None);
/// // A masked text frame "Hello" (RFC 6455 §5.7).
/// ws.receive(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
/// let Some(Event::Message(msg)) = ws.poll_event() else { panic!() };
/// assert_eq!(msg.as_text(), Some("Hello"));
/// ws.send(msg).unwrap();
///
/// // What to write: a driver hands these slices to a vectored write.
/// let mut slices = [std::io::IoSlice::new(&[]); 4];
/// let n = ws.chunks_vectored(&mut slices);
/// let written: Vec<u8> = slices[..n].iter().flat_map(|s| s.iter().copied()).collect();
/// assert_eq!(written, b"\x81\x05Hello");
/// ws.advance_output(written.len());
/// assert_eq!(ws.output_len(), 0);
/// ```
#[derive(Debug)]
pub struct ServerConnection {
    state: State,
    /// The most a message may hold; `u64::MAX` for no limit.
    max_payload: u64,
    /// The most frames a message may come in.
    max_fragments: usize,
    recv: BytesMut,
    frame: Option<FrameInProgress>,
    message: Option<MessageInProgress>,
    utf8: Utf8Validator,
    events: VecDeque<Event>,
    outbox: Outbox,
    /// permessage-deflate, when negotiated. Boxed: a connection without
    /// it pays one pointer.
    deflate: Option<Box<Codec>>,
}

impl ServerConnection {
    /// A connection in the open state, right after the handshake.
    /// `max_payload` limits each message (the sum of its fragments);
    /// `None` or `Some(u64::MAX)` means no limit. Allocates nothing until
    /// bytes arrive.
    pub fn new(max_payload: Option<u64>) -> Self {
        Self {
            state: State::Open,
            max_payload: max_payload.unwrap_or(u64::MAX),
            max_fragments: usize::MAX,
            recv: BytesMut::new(),
            frame: None,
            message: None,
            utf8: Utf8Validator::default(),
            events: VecDeque::new(),
            outbox: Outbox::default(),
            deflate: None,
        }
    }

    /// Turns permessage-deflate on with the parameters agreed in the
    /// handshake (see [`negotiate_deflate`](super::negotiate_deflate)); the
    /// level and the size worth compressing come from `config`. Call it
    /// before any bytes are fed.
    pub fn enable_deflate(&mut self, params: DeflateParams, config: &DeflateConfig) {
        self.deflate = Some(Box::new(Codec::new(params, config)));
    }

    /// The permessage-deflate parameters in force, if it was negotiated.
    pub fn deflate_params(&self) -> Option<&DeflateParams> {
        self.deflate.as_deref().map(Codec::params)
    }

    /// Limits each message to `frames` frames (no limit by default). A
    /// message in more fails the connection with
    /// [`ProtocolError::TooManyFragments`] (1009): empty continuation
    /// frames never grow a message past `max_payload`, so without this a
    /// client could keep one going, and the server busy, for ever.
    pub fn set_max_fragments(&mut self, frames: usize) {
        self.max_fragments = frames.max(1);
    }

    /// Fails the connection for a reason found outside the byte stream (a
    /// server-wide limit): as for a protocol error, parsing stops, the
    /// partial message is dropped, and an [`Event::Error`] is queued whose
    /// polling sends the close frame. Does nothing once the connection is
    /// not reading any more.
    pub fn fail_with(&mut self, error: ProtocolError) {
        if self.accepts_input() {
            self.fail(error);
            self.recv = BytesMut::new();
        }
    }

    // ---- input ----------------------------------------------------------

    /// Feeds received bytes and processes them.
    pub fn receive(&mut self, bytes: &[u8]) {
        if !self.accepts_input() {
            return;
        }
        if self.recv.is_empty() {
            self.receive_from(&mut BytesMut::from(bytes));
        } else {
            self.recv.extend_from_slice(bytes);
            self.process();
        }
    }

    /// The buffer to read socket bytes into, with spare capacity reserved;
    /// call [`process`](Self::process) after filling it. Reading straight
    /// into it lets a message's payload reach the handler without a copy.
    ///
    /// The spare room is bounded: a header announcing a huge payload
    /// grows the buffer only as bytes really arrive.
    pub fn read_buf(&mut self) -> &mut BytesMut {
        let want = self.pending_reserve() + READ_CHUNK;
        if self.recv.capacity() - self.recv.len() < want / 2 {
            self.recv.reserve(want);
        }
        &mut self.recv
    }

    /// How many bytes of the frame being received have not arrived yet
    /// (0 between frames). A driver can read these straight into
    /// [`read_buf`](Self::read_buf), so a large payload is never copied.
    pub fn payload_pending(&self) -> u64 {
        self.frame.as_ref().map_or(0, |f| {
            (f.header_len as u64 + f.header.payload_len).saturating_sub(self.recv.len() as u64)
        })
    }

    /// Feeds the bytes in `buf` and processes them, taking the payloads of
    /// complete frames out of `buf` itself. A driver that reads into one
    /// buffer, reused from read to read, thus hands payloads to the
    /// handler with neither a copy nor an allocation.
    ///
    /// `buf` is left empty. The payloads taken out of it share its
    /// allocation, which [`BytesMut::reserve`] reuses once they are all
    /// dropped. The bytes of an incomplete frame are copied into the
    /// connection's own buffer, so `buf` never waits on a slow peer.
    pub fn receive_from(&mut self, buf: &mut BytesMut) {
        if !self.accepts_input() {
            buf.clear();
            return;
        }
        if !self.recv.is_empty() {
            // Part of a frame is buffered here already: append to it.
            self.receive(buf);
            buf.clear();
            return;
        }
        std::mem::swap(&mut self.recv, buf);
        self.parse_frames();
        // `buf` now holds the connection's own (empty) buffer, and
        // `self.recv` what is left of the caller's.
        std::mem::swap(&mut self.recv, buf);
        if self.accepts_input() && !buf.is_empty() {
            self.reserve_for(buf.len());
            self.recv.extend_from_slice(buf);
        }
        buf.clear();
        self.release_if_empty();
    }

    /// Sizes an empty receive buffer for the whole frame being received
    /// (at least `have` bytes), so the rest of a large payload is read
    /// into it without a reallocation (and the copy of everything before
    /// it). Bounded like [`read_buf`](Self::read_buf): the header is
    /// untrusted.
    fn reserve_for(&mut self, have: usize) {
        // The buffer is empty: what is pending is the whole frame.
        let want = match self.frame {
            Some(_) => self.pending_reserve() + READ_CHUNK,
            None => 0,
        };
        self.recv.reserve(want.max(have));
    }

    /// The room to reserve for the rest of the frame being received:
    /// what is pending, capped so an untrusted header never sizes an
    /// allocation.
    fn pending_reserve(&self) -> usize {
        self.payload_pending().min(MAX_READ_RESERVE as u64) as usize
    }

    /// Parses everything complete in the receive buffer into events.
    pub fn process(&mut self) {
        self.parse_frames();
        self.release_if_empty();
    }

    /// An empty buffer is given back at once: an idle connection holds
    /// none, and payloads handed out keep only their own bytes alive.
    fn release_if_empty(&mut self) {
        if !self.accepts_input() || self.recv.is_empty() {
            self.recv = BytesMut::new();
        }
    }

    fn parse_frames(&mut self) {
        while self.accepts_input() {
            if self.frame.is_none() {
                match FrameHeader::parse(&self.recv) {
                    Ok(None) => break,
                    Ok(Some((header, header_len))) => {
                        if let Err(e) = self.check_header(&header) {
                            self.fail(e);
                            break;
                        }
                        self.frame = Some(FrameInProgress {
                            header,
                            header_len,
                            checked: 0,
                        });
                    }
                    Err(e) => {
                        self.fail(e);
                        break;
                    }
                }
            }
            if !self.advance_frame() {
                break;
            }
        }
    }

    /// The next event, oldest first. Taking a [`Event::Close`] or
    /// [`Event::Error`] moves the close handshake on (see the state
    /// diagram): it queues the answering close frame.
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front()?;
        match &event {
            Event::Close(frame) => self.close_received(frame.clone()),
            Event::Error(error) => self.failed(*error),
            _ => {}
        }
        Some(event)
    }

    /// The next event, without taking it.
    pub fn peek_event(&self) -> Option<&Event> {
        self.events.front()
    }

    // ---- output ---------------------------------------------------------

    /// Queues a text or binary message as one frame.
    pub fn send(&mut self, message: Message) -> Result<(), QueueError> {
        self.check_open()?;
        let (opcode, payload) = match message {
            Message::Text(text) => (OpCode::Text, text.into_bytes()),
            Message::Binary(bytes) => (OpCode::Binary, bytes),
        };
        match self
            .deflate
            .as_mut()
            .and_then(|codec| codec.compress(&payload))
        {
            Some(compressed) => {
                self.outbox
                    .push_frame_with_rsv(opcode, RSV1, Bytes::from(compressed));
            }
            None => self.outbox.push_frame(opcode, payload),
        }
        Ok(())
    }

    /// Queues a frame encoded once for many connections by
    /// [`encode_frame`](super::outbox::encode_frame): one whole, unmasked,
    /// uncompressed data frame, queued as it is. It bypasses the
    /// permessage-deflate compressor, which is fine: an uncompressed
    /// message does not touch the compression context.
    pub(crate) fn send_encoded(&mut self, frame: Bytes) -> Result<(), QueueError> {
        self.check_open()?;
        self.outbox.push_encoded(frame);
        Ok(())
    }

    /// Queues the end of a frame whose start a publisher wrote to the
    /// socket directly, ahead of all other output and whatever the state:
    /// without it the stream would be cut mid-frame. The driver calls it
    /// only while none of the output has been written.
    pub(crate) fn resume_output(&mut self, rest: Bytes) {
        self.outbox.push_front_rest(rest);
    }

    /// Queues a ping (at most 125 bytes of payload).
    pub fn send_ping(&mut self, payload: Bytes) -> Result<(), QueueError> {
        self.send_control(OpCode::Ping, payload)
    }

    /// Queues an unsolicited pong (at most 125 bytes of payload).
    pub fn send_pong(&mut self, payload: Bytes) -> Result<(), QueueError> {
        self.send_control(OpCode::Pong, payload)
    }

    /// Starts the close handshake: queues a close frame and stops sending.
    /// Codes that may not go on the wire (1005, 1006, 1015, …) send an
    /// empty close frame; the reason is cut to 123 bytes.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), QueueError> {
        self.check_open()?;
        let frame = CloseFrame {
            code: Some(code),
            reason: reason.to_owned(),
        };
        self.queue_close(&frame);
        self.state.close_sent(frame);
        Ok(())
    }

    /// Fills `dst` with the bytes waiting to be written; returns how many
    /// slices were filled.
    pub fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        self.outbox.chunks_vectored(dst)
    }

    /// Marks `n` bytes of output as written.
    pub fn advance_output(&mut self, n: usize) {
        self.outbox.advance(n);
        self.outbox.shrink_if_idle(KEEP_IDLE);
    }

    /// Bytes waiting to be written.
    pub fn output_len(&self) -> usize {
        self.outbox.len()
    }

    /// Takes all waiting output as one buffer (tests and benchmarks; a
    /// driver writes [`chunks_vectored`](Self::chunks_vectored) instead).
    #[cfg(any(test, feature = "internals"))]
    pub fn take_output(&mut self) -> Vec<u8> {
        let out = self.outbox.take_all();
        self.outbox.shrink_if_idle(KEEP_IDLE);
        out
    }

    // ---- state ----------------------------------------------------------

    /// Whether messages may still be sent: no close frame was sent, and
    /// the peer's close (or a failure) has not been polled yet.
    pub fn is_open(&self) -> bool {
        self.state.may_send()
    }

    /// Whether the close handshake is over (or the connection failed): once
    /// the output is written, the server should end the TCP connection.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Closed(_))
    }

    /// Whether the connection was failed for a protocol error (its
    /// [`Event::Error`] polled).
    pub fn is_failed(&self) -> bool {
        matches!(self.state.cause(), Some(Cause::Failed { .. }))
    }

    /// The error that failed the connection, once its event was polled.
    pub fn error(&self) -> Option<ProtocolError> {
        self.state.error()
    }

    /// The close frame this side sent, if any.
    pub fn sent_close(&self) -> Option<&CloseFrame> {
        self.state.sent_close()
    }

    /// The close frame the peer sent, once its [`Event::Close`] was polled.
    pub fn received_close(&self) -> Option<&CloseFrame> {
        self.state.received_close()
    }

    /// The code of the close frame sent because of the failure, if the
    /// connection failed while it could still send one.
    pub fn error_close_code(&self) -> Option<CloseCode> {
        self.state.error_close_code()
    }

    /// Whether the peer's close frame started the close handshake (rather
    /// than answering ours).
    pub fn peer_started_close(&self) -> bool {
        self.state.peer_started_close()
    }

    /// Bytes held in receive buffers (their capacity): what a driver
    /// charges against a server-wide memory budget after each read, as
    /// wsroute's own does for [`Config::max_buffered`](crate::Config::max_buffered).
    pub fn buffered_capacity(&self) -> usize {
        self.recv.capacity()
            + self.message.as_ref().map_or(0, |m| m.data.capacity())
            + self.deflate.as_deref().map_or(0, Codec::pending_capacity)
    }

    // ---- internals --------------------------------------------------------

    fn accepts_input(&self) -> bool {
        self.state.reads()
    }

    fn check_open(&self) -> Result<(), QueueError> {
        if self.state.may_send() {
            Ok(())
        } else {
            Err(QueueError::Closed)
        }
    }

    fn send_control(&mut self, opcode: OpCode, payload: Bytes) -> Result<(), QueueError> {
        self.check_open()?;
        if payload.len() > super::frame::MAX_CONTROL_PAYLOAD as usize {
            return Err(QueueError::ControlPayloadTooLong(payload.len()));
        }
        self.outbox.push_frame(opcode, payload);
        Ok(())
    }

    fn queue_close(&mut self, frame: &CloseFrame) {
        self.outbox.push_frame(OpCode::Close, frame.to_payload());
    }

    /// Rules that depend on the connection's state, checked before any of
    /// the frame's payload is buffered.
    fn check_header(&self, header: &FrameHeader) -> Result<(), ProtocolError> {
        // RSV1 means compressed, on the first frame of a data message and
        // only once permessage-deflate was agreed (RFC 7692 §6.1); on a
        // control frame or a continuation it breaks the protocol.
        let rsv1_allowed =
            self.deflate.is_some() && matches!(header.opcode, OpCode::Text | OpCode::Binary);
        if header.rsv & !RSV1 != 0 || header.rsv & RSV1 != 0 && !rsv1_allowed {
            return Err(ProtocolError::ReservedBits(header.rsv));
        }
        #[cfg(feature = "enforce-ws-spec")]
        if header.mask.is_none() {
            return Err(ProtocolError::UnmaskedFrame);
        }
        match (header.opcode, &self.message) {
            (OpCode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
            (OpCode::Text | OpCode::Binary, Some(_)) => {
                return Err(ProtocolError::ExpectedContinuation);
            }
            (OpCode::Continuation, Some(message)) if message.frames >= self.max_fragments => {
                return Err(ProtocolError::TooManyFragments {
                    limit: self.max_fragments,
                });
            }
            _ => {}
        }
        if !header.opcode.is_control() {
            let compressed =
                header.rsv & RSV1 != 0 || self.message.as_ref().is_some_and(|m| m.compressed);
            let so_far = match (&self.message, &self.deflate) {
                (Some(m), Some(codec)) if m.compressed => codec.pending_wire(),
                (Some(m), _) => m.data.len() as u64,
                (None, _) => 0,
            };
            let size = so_far.saturating_add(header.payload_len);
            // A payload must also fit in memory's address space. The
            // inflated size is checked while inflating; what arrives
            // compressed is held too, and a message that does not compress
            // grows a little, so its bound has some slack.
            let limit = self.max_payload.min(isize::MAX as u64);
            let limit = if compressed {
                limit
                    .saturating_add(limit / 64 + 1024)
                    .min(isize::MAX as u64)
            } else {
                limit
            };
            if size > limit {
                return Err(ProtocolError::PayloadTooBig {
                    limit: self.max_payload,
                    size,
                });
            }
        }
        Ok(())
    }

    /// Unmasks and checks the newly arrived part of the current frame;
    /// dispatches the frame once it is whole. Returns whether to go on
    /// parsing.
    fn advance_frame(&mut self) -> bool {
        let Some(frame) = &mut self.frame else {
            return false;
        };
        // `check_header` bounded the length by `isize::MAX`.
        let payload_len = frame.header.payload_len as usize;
        let start = frame.header_len;
        let available = (self.recv.len() - start).min(payload_len);
        if available > frame.checked {
            let fresh = &mut self.recv[start + frame.checked..start + available];
            if let Some(key) = frame.header.mask {
                apply_mask(fresh, key, frame.checked);
            }
            // Compressed text is checked once inflated, not here.
            let text = match frame.header.opcode {
                OpCode::Text => frame.header.rsv & RSV1 == 0,
                OpCode::Continuation => self
                    .message
                    .as_ref()
                    .is_some_and(|m| m.text && !m.compressed),
                _ => false,
            };
            // Checked as bytes arrive, not when the frame ends: invalid
            // text fails the connection before the rest is read.
            if text && self.utf8.feed(fresh).is_err() {
                self.fail(ProtocolError::InvalidUtf8);
                return false;
            }
            frame.checked = available;
        }
        if available < payload_len {
            return false;
        }
        let header = frame.header;
        self.frame = None;
        self.recv.advance(start);
        let payload = self.recv.split_to(payload_len);
        self.on_frame(header, payload);
        true
    }

    fn on_frame(&mut self, header: FrameHeader, payload: BytesMut) {
        match header.opcode {
            OpCode::Text | OpCode::Binary => {
                let text = header.opcode == OpCode::Text;
                let compressed = header.rsv & RSV1 != 0;
                if compressed {
                    let Some(inflated) = self.inflate_frame(&payload, true, header.fin, text)
                    else {
                        return;
                    };
                    if header.fin {
                        self.finish_message(text, inflated);
                        return;
                    }
                }
                match header.fin {
                    true => self.finish_message(text, payload.freeze()),
                    false => {
                        self.message = Some(MessageInProgress {
                            text,
                            data: if compressed { BytesMut::new() } else { payload },
                            frames: 1,
                            compressed,
                        });
                    }
                }
            }
            OpCode::Continuation => {
                let Some(message) = &mut self.message else {
                    unreachable!("check_header refuses a continuation outside a message");
                };
                message.frames += 1;
                let text = message.text;
                if message.compressed {
                    let Some(inflated) = self.inflate_frame(&payload, false, header.fin, text)
                    else {
                        return;
                    };
                    if header.fin {
                        self.message = None;
                        self.finish_message(text, inflated);
                    }
                } else {
                    message.data.extend_from_slice(&payload);
                    if header.fin {
                        let MessageInProgress { data, .. } =
                            self.message.take().expect("checked above");
                        self.finish_message(text, data.freeze());
                    }
                }
            }
            OpCode::Ping => {
                // Reading stops at a received Close, so every ping seen here
                // must be answered (§5.5.2), even after our own Close.
                let payload = payload.freeze();
                self.outbox.push_frame(OpCode::Pong, payload.clone());
                if matches!(self.state, State::Open) {
                    self.events.push_back(Event::Ping(payload));
                }
            }
            OpCode::Pong => {
                if matches!(self.state, State::Open) {
                    self.events.push_back(Event::Pong(payload.freeze()));
                }
            }
            OpCode::Close => match CloseFrame::parse(&payload) {
                Ok(frame) => {
                    self.stop_reading();
                    self.events.push_back(Event::Close(frame));
                }
                Err(e) => self.fail(e),
            },
        }
    }

    /// Inflates one frame of a compressed message; at its final frame,
    /// returns the whole inflated message. On failure fails the
    /// connection and returns `None`.
    fn inflate_frame(
        &mut self,
        payload: &[u8],
        first: bool,
        fin: bool,
        text: bool,
    ) -> Option<Bytes> {
        let Some(codec) = &mut self.deflate else {
            unreachable!("check_header refuses RSV1 without permessage-deflate");
        };
        let utf8 = text.then_some(&mut self.utf8);
        match codec.inflate(payload, first, fin, self.max_payload, utf8) {
            Ok(message) => Some(message),
            Err(e) => {
                self.fail(e);
                None
            }
        }
    }

    fn finish_message(&mut self, text: bool, data: Bytes) {
        let message = if text {
            if self.utf8.finish().is_err() {
                self.fail(ProtocolError::InvalidUtf8);
                return;
            }
            // SAFETY: every payload byte of this message went through
            // `self.utf8.feed`, failing the connection at the first invalid
            // byte: in `advance_frame` as it arrived (the text frame and
            // each continuation of it, unmasked first), or, for a
            // compressed message, in `Codec::inflate` as it was inflated
            // (`inflate_frame` passes `self.utf8` for every text frame).
            // `finish` has just checked that no sequence is cut off at the
            // end.
            #[allow(unsafe_code)]
            let text = unsafe { Utf8Bytes::from_validated(data) };
            Message::Text(text)
        } else {
            Message::Binary(data)
        };
        // After our close, the peer's remaining data is dropped (§5.5.1).
        if matches!(self.state, State::Open) {
            self.events.push_back(Event::Message(message));
        }
    }

    /// Applies the peer's close, when its event is polled.
    fn close_received(&mut self, received: CloseFrame) {
        // Echo the peer's code (§5.5.1); an empty close gets an empty one.
        let echo = || CloseFrame {
            code: received.code,
            reason: String::new(),
        };
        if let Some((sent, peer_started)) = self.leave_ending(echo) {
            self.state = State::Closed(Box::new(Cause::Handshake {
                sent,
                received,
                peer_started,
            }));
        }
    }

    /// Applies a failure, when its event is polled.
    fn failed(&mut self, error: ProtocolError) {
        let frame = || CloseFrame {
            code: Some(error.close_code()),
            reason: error.to_string(),
        };
        if let Some((sent, sent_for_error)) = self.leave_ending(frame) {
            self.state = State::Closed(Box::new(Cause::Failed {
                error,
                sent,
                sent_for_error,
            }));
        }
    }

    /// The close frame that ends the handshake once the event that ended
    /// reading is polled: ours if we sent one first (`false`), else
    /// `answer`, queued now (`true`).
    fn leave_ending(&mut self, answer: impl FnOnce() -> CloseFrame) -> Option<(CloseFrame, bool)> {
        let State::Ending { sent } = &mut self.state else {
            // Close and Error events are queued only on the way into `Ending`.
            debug_assert!(false, "a Close or Error polled in {:?}", self.state);
            return None;
        };
        Some(match sent.take() {
            Some(sent) => (*sent, false),
            None => {
                let frame = answer();
                self.queue_close(&frame);
                (frame, true)
            }
        })
    }

    /// Records a violation: parsing stops now; the close follows when the
    /// event is polled.
    fn fail(&mut self, error: ProtocolError) {
        self.stop_reading();
        self.events.push_back(Event::Error(error));
    }

    fn stop_reading(&mut self) {
        self.state.stop_reading();
        if let Some(codec) = &mut self.deflate {
            codec.release_inflater();
        }
        self.frame = None;
        self.message = None;
    }
}
