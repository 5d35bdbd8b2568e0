//! Settings shared by every WebSocket route of a server.

use std::time::Duration;

/// Settings for all routes mounted through one [`WebSockets`](crate::WebSockets)
/// — Crow's `app.websocket_max_payload()` and friends. A route's own
/// attribute (`max_payload = …`) wins for that route.
///
/// ```
/// use std::time::Duration;
/// let config = wsroute::Config::default()
///     .max_payload(1 << 20)
///     .close_timeout(Duration::from_secs(2));
/// assert_eq!(config.get_max_payload(), Some(1 << 20));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    max_payload: Option<u64>,
    close_timeout: Duration,
    max_send_queue: usize,
    protocols: Vec<String>,
}

/// The default message size limit: 64 MiB.
pub const DEFAULT_MAX_PAYLOAD: u64 = 64 << 20;

impl Default for Config {
    /// `max_payload` 64 MiB, `close_timeout` 5 s, `max_send_queue` 16 MiB.
    ///
    /// Unlike Crow, whose limit is off by default, a limit is on: without
    /// one a single client can make the server buffer any amount. Turn it
    /// off with `.max_payload(u64::MAX)`.
    fn default() -> Self {
        Self {
            max_payload: Some(DEFAULT_MAX_PAYLOAD),
            close_timeout: Duration::from_secs(5),
            max_send_queue: 16 << 20,
            protocols: Vec::new(),
        }
    }
}

impl Config {
    /// The largest message (the sum of its fragments) a connection accepts,
    /// in bytes; `u64::MAX` turns the limit off. A larger message closes
    /// the connection with 1009 and fires the route's `error` event.
    pub fn max_payload(mut self, bytes: u64) -> Self {
        self.max_payload = (bytes != u64::MAX).then_some(bytes);
        self
    }

    /// How long a server-initiated close waits for the peer's close frame
    /// before the TCP connection is dropped.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// How many bytes of outgoing messages may wait unwritten per
    /// connection; beyond it `Connection::send_*` returns
    /// [`SendError::QueueFull`](crate::SendError::QueueFull) and queues
    /// nothing, so a client that stops reading cannot make the server
    /// buffer without bound.
    pub fn max_send_queue(mut self, bytes: usize) -> Self {
        self.max_send_queue = bytes;
        self
    }

    /// The subprotocols the server speaks, most preferred first. In the
    /// handshake the server picks the first of these that the client
    /// offers in `Sec-WebSocket-Protocol`;
    /// [`Connection::subprotocol`](crate::Connection::subprotocol) tells which. A client offering
    /// none of them is still accepted, without a subprotocol.
    pub fn protocols<I, P>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// The subprotocols, most preferred first.
    pub fn get_protocols(&self) -> &[String] {
        &self.protocols
    }

    /// The message size limit; `None` when it is off.
    pub fn get_max_payload(&self) -> Option<u64> {
        self.max_payload
    }

    /// The close handshake timeout.
    pub fn get_close_timeout(&self) -> Duration {
        self.close_timeout
    }

    /// The outgoing queue bound in bytes.
    pub fn get_max_send_queue(&self) -> usize {
        self.max_send_queue
    }

    /// The limit for a route: its own, if it set one, else this global one.
    /// `u64::MAX` from the route turns the limit off.
    pub(crate) fn max_payload_for(&self, route: Option<u64>) -> Option<u64> {
        match route {
            Some(u64::MAX) => None,
            Some(limit) => Some(limit),
            None => self.max_payload,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_limit_wins_and_u64_max_turns_it_off() {
        let config = Config::default().max_payload(100);
        assert_eq!(config.max_payload_for(None), Some(100));
        assert_eq!(config.max_payload_for(Some(10)), Some(10));
        assert_eq!(config.max_payload_for(Some(u64::MAX)), None);
        let off = Config::default().max_payload(u64::MAX);
        assert_eq!(off.max_payload_for(None), None);
        assert_eq!(off.max_payload_for(Some(5)), Some(5));
    }
}
