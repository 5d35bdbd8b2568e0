//! Why a connection failed, and the close code each reason is answered with.

use std::fmt;

use super::CloseCode;

/// A violation of RFC 6455 by the peer, or of this server's limits. Each
/// fails the connection: the server sends a close frame with
/// [`close_code`](Self::close_code) and stops reading messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// An opcode the RFC reserves (`0x3`–`0x7`, `0xB`–`0xF`).
    ReservedOpcode(u8),
    /// RSV bits set, but no extension was negotiated that defines them.
    ReservedBits(u8),
    /// A 64-bit payload length with its most significant bit set.
    InvalidLength,
    /// A control frame with more than 125 bytes of payload.
    ControlFrameTooLong(u64),
    /// A control frame without the FIN bit.
    FragmentedControlFrame,
    /// A continuation frame while no fragmented message was in progress.
    UnexpectedContinuation,
    /// A new text or binary frame inside a fragmented message.
    ExpectedContinuation,
    /// A client frame without a mask (refused under `enforce-ws-spec`).
    UnmaskedFrame,
    /// A text message that is not valid UTF-8.
    InvalidUtf8,
    /// A compressed message (permessage-deflate) that does not inflate.
    InvalidCompressedData,
    /// A close frame with a status code that may not be sent.
    InvalidCloseCode(u16),
    /// A close frame with a one-byte payload.
    InvalidClosePayload,
    /// A close frame whose reason is not valid UTF-8.
    InvalidCloseReason,
    /// A message larger than the route's `max_payload`.
    PayloadTooBig {
        /// The limit in bytes.
        limit: u64,
        /// The size the message reached, counting the frame that crossed
        /// the limit at the length its header announced.
        size: u64,
    },
    /// A message in more frames than the configured `max_fragments`.
    TooManyFragments {
        /// The limit in frames.
        limit: usize,
    },
    /// The server's budget for buffered bytes (`max_buffered`) is spent:
    /// this connection's message cannot be held now.
    Overloaded,
}

impl ProtocolError {
    /// The close code the connection is failed with.
    pub fn close_code(&self) -> CloseCode {
        match self {
            Self::InvalidUtf8 | Self::InvalidCloseReason | Self::InvalidCompressedData => {
                CloseCode::INVALID_PAYLOAD
            }
            Self::PayloadTooBig { .. } | Self::TooManyFragments { .. } => {
                CloseCode::MESSAGE_TOO_BIG
            }
            Self::Overloaded => CloseCode::TRY_AGAIN_LATER,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            Self::ReservedBits(bits) => write!(f, "reserved bits {bits:#05b} set"),
            Self::InvalidLength => f.write_str("payload length has its top bit set"),
            Self::ControlFrameTooLong(len) => {
                write!(f, "control frame of {len} bytes (at most 125)")
            }
            Self::FragmentedControlFrame => f.write_str("fragmented control frame"),
            Self::UnexpectedContinuation => f.write_str("continuation frame outside a message"),
            Self::ExpectedContinuation => f.write_str("new message inside a fragmented message"),
            Self::UnmaskedFrame => f.write_str("unmasked client frame"),
            Self::InvalidUtf8 => f.write_str("text message is not valid UTF-8"),
            Self::InvalidCompressedData => f.write_str("compressed message does not inflate"),
            Self::InvalidCloseCode(code) => write!(f, "invalid close code {code}"),
            Self::InvalidClosePayload => f.write_str("close frame with a 1-byte payload"),
            Self::InvalidCloseReason => f.write_str("close reason is not valid UTF-8"),
            Self::PayloadTooBig { limit, size } => {
                write!(f, "message of {size} bytes exceeds max_payload {limit}")
            }
            Self::TooManyFragments { limit } => {
                write!(f, "message in more than {limit} frames (max_fragments)")
            }
            Self::Overloaded => {
                f.write_str("server busy: its buffer budget is spent, try again later")
            }
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Why [`ServerConnection`](super::ServerConnection) refused to queue a
/// frame. Nothing was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueueError {
    /// A close frame was sent or received, or the connection failed.
    Closed,
    /// A ping or pong payload over 125 bytes (RFC 6455 §5.5).
    ControlPayloadTooLong(usize),
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed => f.write_str("the connection is closing or closed"),
            Self::ControlPayloadTooLong(len) => {
                write!(f, "control frame payload of {len} bytes (at most 125)")
            }
        }
    }
}

impl std::error::Error for QueueError {}
