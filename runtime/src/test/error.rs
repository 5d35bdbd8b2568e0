//! What a `try_` helper of the test client reports.

use std::fmt;
use std::time::Duration;

use http::StatusCode;

/// Why a step of a test connection failed; its `Display` says what was
/// expected and what happened instead.
#[derive(Debug)]
#[non_exhaustive]
pub enum TestError {
    /// The server answered the upgrade request with this status, not 101
    /// (for example `accept` refused it).
    Refused {
        /// The HTTP status.
        status: StatusCode,
        /// The response body, as text.
        body: String,
    },
    /// Nothing came within the timeout.
    Timeout {
        /// What was awaited, e.g. "a message".
        awaited: &'static str,
        /// The timeout that ran out.
        after: Duration,
    },
    /// The server sent its close frame while a message was awaited.
    Closed(super::ReceivedClose),
    /// The stream ended without a close frame.
    Ended,
    /// A message arrived, but not of the kind awaited (or not valid JSON of
    /// the type asked for).
    Unexpected(String),
    /// The WebSocket client failed: a protocol violation by the server, or
    /// a broken pipe.
    Client(tokio_tungstenite::tungstenite::Error),
}

impl fmt::Display for TestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused { status, body } => {
                write!(f, "the server refused the WebSocket upgrade with {status}")?;
                if !body.is_empty() {
                    write!(f, ": {body}")?;
                }
                Ok(())
            }
            Self::Timeout { awaited, after } => write!(
                f,
                "timed out after {after:?} waiting for {awaited}: \
                 raise it with `TestSocket::set_timeout` if the server is just slow"
            ),
            Self::Closed(close) => write!(
                f,
                "the server closed the connection ({} {:?}) instead of sending a message",
                close.code, close.reason
            ),
            Self::Ended => f.write_str("the connection ended without a close frame"),
            Self::Unexpected(what) => f.write_str(what),
            Self::Client(e) => write!(f, "the WebSocket client failed: {e}"),
        }
    }
}

impl std::error::Error for TestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Client(e) => Some(e),
            _ => None,
        }
    }
}
