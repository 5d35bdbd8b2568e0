//! The sans-IO RFC 6455 core: bytes in, events out, bytes to write polled
//! out. No sockets, no clock, no runtime — everything here is tested on
//! byte strings.
//!
//! Entry points:
//! - [`ServerConnection`]: one connection's state machine. Feed it bytes
//!   ([`receive`](ServerConnection::receive), or
//!   [`read_buf`](ServerConnection::read_buf) +
//!   [`process`](ServerConnection::process)), take [`Event`]s, queue
//!   messages, write what [`chunks_vectored`](ServerConnection::chunks_vectored)
//!   returns.
//! - [`FrameHeader`]: parsing and encoding of one frame header.
//! - [`apply_mask`]: in-place (un)masking.
//! - [`Utf8Validator`]: incremental, fail-fast UTF-8 checking.
//!
//! Crow's leniency is kept by default: unmasked client frames are accepted.
//! Built with the `enforce-ws-spec` feature, they fail the connection with
//! close code 1002.

mod close;
mod connection;
mod error;
mod frame;
mod mask;
mod outbox;
mod utf8;

#[cfg(test)]
mod tests;

pub use close::{CloseCode, CloseFrame, MAX_REASON_LEN};
pub use connection::{Event, ServerConnection};
pub use error::ProtocolError;
pub use frame::{FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode};
pub use mask::apply_mask;
pub use utf8::{InvalidUtf8, Utf8Validator};

/// Why a frame could not be queued for sending.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The connection is closing or closed: a close frame was sent or
    /// received, or the connection failed.
    Closed,
    /// A ping or pong payload over 125 bytes.
    ControlPayloadTooLong(usize),
    /// More than `Config::max_send_queue` bytes already wait to be written
    /// (the client is not reading fast enough); nothing was queued.
    QueueFull {
        /// The configured bound in bytes.
        limit: usize,
    },
    /// `Connection::send_json` could not serialize the value.
    Json(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Closed => f.write_str("the connection is closing or closed"),
            Self::ControlPayloadTooLong(len) => {
                write!(f, "control frame payload of {len} bytes (at most 125)")
            }
            Self::QueueFull { limit } => {
                write!(f, "more than {limit} bytes wait to be sent to this client")
            }
            Self::Json(e) => write!(f, "cannot serialize the message as JSON: {e}"),
        }
    }
}

impl std::error::Error for SendError {}
