//! Where a connection stands in the close handshake, with what each state
//! knows.

use super::ProtocolError;
use super::close::{CloseCode, CloseFrame};

/// Where the connection stands in the close handshake (RFC 6455 §7). Each
/// state carries what is known in it, so no combination of flags can
/// contradict another.
///
/// ```text
///                   peer's Close, or a violation, parsed
///   Open ─────────────────────────────────────────────▶ Ending { sent: None }
///    │                                                       │       │
///    │ close()                                       close() │       │
///    ▼                                                       ▼       │
///   CloseSent { sent } ──────────────────────────▶ Ending { sent: Some(..) }
///    │         peer's Close, or a violation, parsed          │       │
///    │                                                       │       │
///    │ the driver's close timeout:                its event polled:  │
///    │ TCP ends here                      (Close echoed, or a Close  │
///    ▼                                    with the error's code, if  │
///    ·                                    none was sent before)      ▼
///                                     Closed(Handshake | Failed) ──▶ TCP ends
/// ```
///
/// - `Open`: messages flow both ways.
/// - `CloseSent`: incoming frames are still parsed, to find the peer's
///   Close; its data is dropped (§5.5.1), but pings are still answered:
///   §5.5.2 excuses a pong only once a Close has been *received*.
/// - `Ending`: the peer's Close (or a frame that broke the protocol) has
///   been parsed and nothing after it is read, but its event waits behind
///   the ones before it. The handshake moves on only when that event is
///   polled, so that replies to the earlier messages — sent while handling
///   them — still go out ahead of the close frame. Sending stays possible
///   until then if no close was sent.
/// - `Closed`: input is ignored, the byte stream being finished or
///   untrustworthy; once the output is written the server ends TCP.
///
/// What the closing states know is boxed: every connection holds a
/// `State` for as long as it is open, and only its last moments need the
/// room (72 bytes inline, 16 boxed; one allocation when it closes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum State {
    Open,
    CloseSent {
        sent: Box<CloseFrame>,
    },
    Ending {
        /// Our close frame, if we had sent one before the peer's arrived.
        sent: Option<Box<CloseFrame>>,
    },
    Closed(Box<Cause>),
}

/// How a connection reached [`State::Closed`]. A close frame was always
/// sent by then: either before, or in answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Cause {
    /// Both close frames were exchanged.
    Handshake {
        sent: CloseFrame,
        received: CloseFrame,
        /// Whether the peer's close started the handshake (ours answered it).
        peer_started: bool,
    },
    /// The peer broke the protocol or a limit.
    Failed {
        error: ProtocolError,
        sent: CloseFrame,
        /// Whether `sent` was sent because of `error` (rather than before it).
        sent_for_error: bool,
    },
}

impl State {
    /// Whether the connection still parses what the peer sends.
    pub(super) fn reads(&self) -> bool {
        matches!(self, Self::Open | Self::CloseSent { .. })
    }

    /// Whether messages and a close frame may still be queued.
    pub(super) fn may_send(&self) -> bool {
        matches!(self, Self::Open | Self::Ending { sent: None })
    }

    /// The state once a close frame or a violation has been parsed.
    pub(super) fn stop_reading(&mut self) {
        *self = match std::mem::replace(self, Self::Open) {
            Self::Open => Self::Ending { sent: None },
            Self::CloseSent { sent } => Self::Ending { sent: Some(sent) },
            other => other,
        };
    }

    /// The state once the application has queued `frame`. Only called
    /// when [`may_send`](Self::may_send).
    pub(super) fn close_sent(&mut self, frame: CloseFrame) {
        *self = match std::mem::replace(self, Self::Open) {
            Self::Open => Self::CloseSent {
                sent: Box::new(frame),
            },
            Self::Ending { sent: None } => Self::Ending {
                sent: Some(Box::new(frame)),
            },
            other => other,
        };
    }

    /// How the connection closed, once it has.
    pub(super) fn cause(&self) -> Option<&Cause> {
        match self {
            Self::Closed(cause) => Some(cause),
            _ => None,
        }
    }

    /// The close frame this side sent, if any.
    pub(super) fn sent_close(&self) -> Option<&CloseFrame> {
        match self {
            Self::Open | Self::Ending { sent: None } => None,
            Self::CloseSent { sent } | Self::Ending { sent: Some(sent) } => Some(sent),
            Self::Closed(cause) => match &**cause {
                Cause::Handshake { sent, .. } | Cause::Failed { sent, .. } => Some(sent),
            },
        }
    }

    /// The close frame the peer sent, once its event was polled.
    pub(super) fn received_close(&self) -> Option<&CloseFrame> {
        match self.cause() {
            Some(Cause::Handshake { received, .. }) => Some(received),
            _ => None,
        }
    }

    pub(super) fn peer_started_close(&self) -> bool {
        matches!(
            self.cause(),
            Some(Cause::Handshake {
                peer_started: true,
                ..
            })
        )
    }

    /// The error that failed the connection, once its event was polled.
    pub(super) fn error(&self) -> Option<ProtocolError> {
        match self.cause() {
            Some(Cause::Failed { error, .. }) => Some(*error),
            _ => None,
        }
    }

    /// The code of the close frame sent because of the failure.
    pub(super) fn error_close_code(&self) -> Option<CloseCode> {
        match self.cause() {
            Some(Cause::Failed {
                sent,
                sent_for_error: true,
                ..
            }) => sent.code,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Every open connection holds one; the close frames it may come to
    // carry must not cost room before then.
    #[test]
    fn an_open_connections_state_is_two_words() {
        assert_eq!(std::mem::size_of::<State>(), 16);
    }
}
