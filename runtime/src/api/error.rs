//! What the `error` and `close` events report.

use std::fmt;
use std::io;

use crate::proto::{CloseCode, Message, ProtocolError};

/// Why a connection reported an error: passed to the route's `error`
/// event. Says what happened and which close code was sent because of it.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    close_code: Option<CloseCode>,
}

/// What went wrong.
#[derive(Debug)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The client broke RFC 6455 or a limit: a bad frame, invalid UTF-8,
    /// a message over `max_payload`, …
    Protocol(ProtocolError),
    /// Reading or writing the socket failed, or the client went away
    /// without a close frame.
    Io(io::Error),
    /// The client did not answer the server's close frame in time.
    CloseTimeout,
    /// A message taken as `Json<T>` did not decode. Reported once per such
    /// message; the connection stays open and no close code is sent.
    Json {
        /// What serde_json found wrong.
        error: serde_json::Error,
        /// The message that did not decode, as it arrived. (Boxed: every
        /// connection's task has room for an error, and this variant
        /// should not make that room larger.)
        message: Box<Message>,
    },
    /// Nothing at all arrived within `ping_timeout` of a keepalive ping:
    /// the peer is gone. The connection was dropped without a close
    /// handshake (the `close` event reports 1006).
    PeerTimeout,
    /// A send found the queue full under
    /// [`SlowConsumer::Close`](crate::SlowConsumer::Close): the connection
    /// is closed with 1008.
    SlowConsumer,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, close_code: Option<CloseCode>) -> Self {
        Self { kind, close_code }
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The close code the server sent because of this error, if it sent
    /// one (an I/O error leaves no connection to send it on).
    pub fn close_code(&self) -> Option<CloseCode> {
        self.close_code
    }

    /// Whether a message exceeded the route's `max_payload`.
    pub fn is_payload_too_big(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Protocol(ProtocolError::PayloadTooBig { .. })
        )
    }

    /// The protocol violation, if that is what this is.
    pub fn as_protocol(&self) -> Option<&ProtocolError> {
        match &self.kind {
            ErrorKind::Protocol(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::Protocol(e) => write!(f, "protocol error: {e}")?,
            ErrorKind::Io(e) => write!(f, "I/O error: {e}")?,
            ErrorKind::CloseTimeout => f.write_str("the client did not answer the close frame")?,
            ErrorKind::Json { error, message } => {
                write!(f, "message is not the expected JSON: {error}; ")?;
                write_excerpt(f, message)?;
            }
            ErrorKind::PeerTimeout => {
                f.write_str("the client stopped answering (keepalive ping timed out)")?
            }
            ErrorKind::SlowConsumer => {
                f.write_str("the client does not read fast enough (send queue full)")?;
            }
        }
        if let Some(code) = self.close_code {
            write!(f, " (closed with {code})")?;
        }
        Ok(())
    }
}

/// The start of a message, for an error line: enough to recognise it,
/// never the whole of a large one.
fn write_excerpt(f: &mut fmt::Formatter<'_>, message: &Message) -> fmt::Result {
    const EXCERPT: usize = 64;
    match message.as_text() {
        Some(text) if text.len() <= EXCERPT => write!(f, "got {text:?}"),
        Some(text) => {
            let mut end = EXCERPT;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            write!(f, "got {:?}… ({} bytes)", &text[..end], text.len())
        }
        None => write!(f, "got a binary message of {} bytes", message.len()),
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Protocol(e) => Some(e),
            ErrorKind::Io(e) => Some(e),
            ErrorKind::Json { error, .. } => Some(error),
            ErrorKind::CloseTimeout | ErrorKind::PeerTimeout | ErrorKind::SlowConsumer => None,
        }
    }
}

/// How a connection ended: passed to the route's `close` event, once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseReason {
    code: CloseCode,
    reason: String,
    clean: bool,
}

impl CloseReason {
    pub(crate) fn new(code: CloseCode, reason: String, clean: bool) -> Self {
        Self {
            code,
            reason,
            clean,
        }
    }

    /// The code of the close handshake: the client's, if it started the
    /// close; the server's, if the server did (`conn.close()`, an error,
    /// shutdown). [`CloseCode::NO_STATUS`] (1005) for a close frame
    /// without a code, [`CloseCode::ABNORMAL`] (1006) when the connection
    /// ended without one.
    pub fn code(&self) -> CloseCode {
        self.code
    }

    /// The reason text that went with the code (empty if none).
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Whether both close frames were exchanged.
    pub fn is_clean(&self) -> bool {
        self.clean
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if !self.reason.is_empty() {
            write!(f, " {:?}", self.reason)?;
        }
        if !self.clean {
            f.write_str(" (unclean)")?;
        }
        Ok(())
    }
}
