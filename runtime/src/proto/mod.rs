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
//! - [`Message`] and [`Utf8Bytes`]: what a message carries, in and out.
//!
//! Crow's leniency is kept by default: unmasked client frames are accepted.
//! Built with the `enforce-ws-spec` feature, they fail the connection with
//! close code 1002.

mod close;
mod deflate;
mod error;
mod frame;
// Public under `internals` only (see below).
#[cfg_attr(not(feature = "internals"), allow(unreachable_pub))]
mod mask;
pub(crate) mod message;
mod outbox;
mod server;
mod state;
#[cfg_attr(not(feature = "internals"), allow(unreachable_pub))]
mod utf8;

#[cfg(test)]
mod tests;

pub use close::{CloseCode, CloseFrame, MAX_REASON_LEN};
pub(crate) use deflate::codec::compress_fresh;
pub use deflate::{DeflateConfig, DeflateParams, negotiate as negotiate_deflate};
pub use error::{ProtocolError, QueueError};
pub use frame::{FrameHeader, MAX_CONTROL_PAYLOAD, OpCode};
pub use message::{Message, Utf8Bytes};
pub(crate) use outbox::{COPY_BELOW, encode_frame};
pub use server::{Event, ServerConnection};

/// The core's building blocks, public only for the crate's own benchmarks
/// and fuzz targets (cargo feature `internals`). Not a stable API.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod internals {
    pub use super::mask::apply_mask;
    pub use super::utf8::{InvalidUtf8, Utf8Validator};
}
