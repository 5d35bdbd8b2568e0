//! Why a message could not be queued on a [`Connection`](crate::Connection).

/// Why a frame could not be queued for sending.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The connection is closing or closed: a close frame was sent or
    /// received, or the connection failed.
    Closed,
    /// A ping or pong payload over 125 bytes.
    ControlPayloadTooLong(usize),
    /// More than [`Config::max_send_queue`](crate::Config::max_send_queue) bytes already wait to be written
    /// (the client is not reading fast enough); nothing was queued.
    QueueFull {
        /// The configured bound in bytes.
        limit: usize,
    },
    /// [`Connection::send_json`](crate::Connection::send_json) could not serialize the value.
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

/// `value` as a JSON text message, for the `*_json` sends and publishes.
pub(crate) fn json_message<T: serde::Serialize + ?Sized>(
    value: &T,
) -> Result<crate::Message, SendError> {
    let text = serde_json::to_string(value).map_err(|e| SendError::Json(e.to_string()))?;
    Ok(crate::Message::Text(text.into()))
}
