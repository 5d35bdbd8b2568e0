//! Settings shared by every WebSocket route of a server.

use std::time::Duration;

use crate::proto::DeflateConfig;

/// Settings for all routes mounted through one [`WebSockets`](crate::WebSockets)
/// — Crow's `app.websocket_max_payload()` and friends. A route's own
/// attribute (`max_payload = …`, `origins = […]`) wins for that route.
///
/// Every limit has a default that is on: a server built with
/// `Config::default()` bounds its memory, notices dead peers and refuses
/// cross-site upgrades. The README's "Production" section lists each
/// limit with what a client sees when it trips it.
///
/// ```
/// use std::time::Duration;
/// use wsroute::{Config, SlowConsumer};
///
/// let config = Config::default()
///     .max_payload(1 << 20)
///     .close_timeout(Duration::from_secs(2))
///     .ping_interval(Duration::from_secs(20))
///     .slow_consumer(SlowConsumer::Close)
///     .allowed_origins(["https://app.example.com"]);
/// assert_eq!(config.get_max_payload(), Some(1 << 20));
/// assert_eq!(config.get_ping_timeout(), Duration::from_secs(30));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    max_payload: Option<u64>,
    close_timeout: Duration,
    max_send_queue: usize,
    protocols: Vec<String>,
    ping_interval: Duration,
    ping_timeout: Duration,
    handshake_timeout: Duration,
    max_buffered: usize,
    slow_consumer: SlowConsumer,
    max_fragments: usize,
    max_connections: Option<usize>,
    origins: Origins,
    compression: Option<DeflateConfig>,
}

/// The default message size limit: 64 MiB.
pub const DEFAULT_MAX_PAYLOAD: u64 = 64 << 20;

/// What a full send queue means (see [`Config::slow_consumer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SlowConsumer {
    /// The send fails with [`SendError::QueueFull`](crate::SendError::QueueFull)
    /// and nothing is queued; the connection stays open. The caller may
    /// drop the message, wait with [`Connection::ready`](crate::Connection::ready)
    /// and retry, or close.
    #[default]
    Error,
    /// The connection is closed with 1008 (policy violation): the send
    /// fails with `QueueFull`, the route's `error` event reports
    /// [`ErrorKind::SlowConsumer`](crate::ErrorKind::SlowConsumer) and
    /// `close` follows. uWebSockets calls this `closeOnBackpressureLimit`.
    Close,
}

/// Which `Origin` headers an upgrade may carry (see
/// [`Config::allowed_origins`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Origins {
    /// An `Origin` whose host (and port) differ from `Host` gets 403.
    #[default]
    SameOrigin,
    /// Only these exact origins (`scheme://host[:port]`, lowercase).
    List(Vec<String>),
    /// No check.
    Any,
}

impl Default for Config {
    /// `max_payload` 64 MiB, `close_timeout` 5 s, `max_send_queue` 1 MiB,
    /// `ping_interval` 30 s, `ping_timeout` 30 s, `handshake_timeout`
    /// 10 s, `max_buffered` 256 MiB, `slow_consumer`
    /// [`SlowConsumer::Error`], `max_fragments` 131072, no
    /// `max_connections`, same-origin upgrades only, permessage-deflate
    /// offered to clients that ask for it, with no context takeover.
    ///
    /// Unlike Crow, whose limit is off by default, a payload limit is on:
    /// without one a single client can make the server buffer any amount.
    /// Turn it off with `.max_payload(u64::MAX)`.
    fn default() -> Self {
        Self {
            max_payload: Some(DEFAULT_MAX_PAYLOAD),
            close_timeout: Duration::from_secs(5),
            max_send_queue: 1 << 20,
            protocols: Vec::new(),
            ping_interval: Duration::from_secs(30),
            ping_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            max_buffered: 256 << 20,
            slow_consumer: SlowConsumer::Error,
            max_fragments: 131_072,
            max_connections: None,
            origins: Origins::SameOrigin,
            compression: Some(DeflateConfig::default()),
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

    /// How long a server-initiated close (including the 1001 of a
    /// shutdown) waits for the peer's close frame, and then for the close
    /// frames to be written and TCP to end, before the connection is
    /// dropped. [`WebSockets::shutdown`](crate::WebSockets::shutdown)
    /// returns within about this long, whatever the peers do.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// How many bytes of outgoing messages may wait unwritten per
    /// connection; beyond it a send is refused as
    /// [`slow_consumer`](Self::slow_consumer) says. The bound is on what
    /// *waits*: a message larger than it is still accepted when nothing
    /// else is queued, so anything a route may receive it can send back.
    /// Reading from a client whose own replies (pongs, close frames) have
    /// piled up past this bound pauses until it reads them.
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

    /// After this long without a single byte from the peer, the server
    /// sends it a ping. A peer that sends nothing while it reads a backlog
    /// the server's socket was full with counts as heard from each time
    /// the socket takes more: the socket frees room only as the peer
    /// acknowledges what it read. (A ping queued behind what the kernel
    /// already holds still waits for the peer to read that far.)
    /// `Duration::ZERO` turns keepalive off. Deadlines
    /// are kept on a shared coarse clock (100 ms ticks), so an idle
    /// connection holds no timer of its own.
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.ping_interval = interval;
        self
    }

    /// If nothing at all arrives within this long after a keepalive ping,
    /// the peer is taken for dead: the connection is dropped without a
    /// close handshake, `error` reports
    /// [`ErrorKind::PeerTimeout`](crate::ErrorKind::PeerTimeout) and
    /// `close` reports 1006.
    pub fn ping_timeout(mut self, timeout: Duration) -> Self {
        self.ping_timeout = timeout;
        self
    }

    /// How long a client has, under [`wsroute::serve`](crate::serve), to
    /// send a complete HTTP request head once connected (or after its
    /// previous request, on a keep-alive connection); past it the TCP
    /// connection is closed, with no response. An HTTP/2 client with prior
    /// knowledge has as long to open its first stream; then it gets a
    /// `GOAWAY`, and as long again to let the connection end. Under
    /// `axum::serve`, hyper's own header read timeout (30 s by default in
    /// hyper 1.x when a timer is set) applies instead.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// A server-wide budget, in bytes, for what is held on behalf of
    /// clients: partial incoming messages and outgoing queues of all
    /// connections together. A connection whose incoming message would
    /// take the total past it is closed with 1013 (try again later) and
    /// its `error` event reports [`ProtocolError::Overloaded`](crate::proto::ProtocolError::Overloaded);
    /// a send that would is refused like a full queue. Connections that
    /// hold nothing — small messages, handled as they arrive — are still
    /// served. A published message waiting for several subscribers is
    /// held once in memory but counted for each of them, as each would be
    /// if sent to them one by one.
    pub fn max_buffered(mut self, bytes: usize) -> Self {
        self.max_buffered = bytes;
        self
    }

    /// What a full send queue means: refuse the send (the default) or
    /// close the connection with 1008. See [`SlowConsumer`].
    pub fn slow_consumer(mut self, policy: SlowConsumer) -> Self {
        self.slow_consumer = policy;
        self
    }

    /// The most frames one message may come in. A message in more fails
    /// the connection with 1009, like one over `max_payload`: without it a
    /// client could send a message of empty fragments that never ends.
    pub fn max_fragments(mut self, frames: usize) -> Self {
        self.max_fragments = frames;
        self
    }

    /// Whether to agree to permessage-deflate (RFC 7692) when a client
    /// offers it — every browser does. On by default, with
    /// [`DeflateConfig::default`]: no context takeover either way, so a
    /// connection holds no compression state between messages (one
    /// compressor and one inflater per thread serve them all). A route
    /// can turn it off or on with the attribute key `compression = false`.
    pub fn compression(mut self, on: bool) -> Self {
        self.compression = on.then(|| self.compression.unwrap_or_default());
        self
    }

    /// Turns permessage-deflate on with these parameters: context
    /// takeover (better ratios; a compressor of about 256 KiB, or an
    /// inflater of about 40 KiB, per connection that keeps one), window
    /// sizes, the zlib level, the size below which messages go
    /// uncompressed.
    pub fn deflate(mut self, config: DeflateConfig) -> Self {
        self.compression = Some(config);
        self
    }

    /// The most WebSocket connections open at once; upgrades past it get
    /// `503 Service Unavailable`. No limit by default.
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = Some(connections);
        self
    }

    /// Accepts upgrades only from pages of these origins, exactly as a
    /// browser sends them in `Origin` (`https://app.example.com`,
    /// `http://localhost:3000`); compared case-insensitively, no
    /// wildcards. Replaces the default same-origin rule. Requests without
    /// an `Origin` header (non-browser clients) still pass.
    pub fn allowed_origins<I, O>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = O>,
        O: Into<String>,
    {
        let list = origins
            .into_iter()
            .map(|o| o.into().to_ascii_lowercase())
            .collect();
        self.origins = Origins::List(list);
        self
    }

    /// Turns the origin check off: any web page may open a WebSocket to
    /// this server with its visitors' cookies. Only for servers that do
    /// not authenticate by cookie.
    pub fn allow_any_origin(mut self) -> Self {
        self.origins = Origins::Any;
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

    /// The keepalive interval; `Duration::ZERO` when keepalive is off.
    pub fn get_ping_interval(&self) -> Duration {
        self.ping_interval
    }

    /// How long a keepalive ping waits for any sign of life.
    pub fn get_ping_timeout(&self) -> Duration {
        self.ping_timeout
    }

    /// The handshake timeout of [`wsroute::serve`](crate::serve).
    pub fn get_handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// The server-wide buffer budget in bytes.
    pub fn get_max_buffered(&self) -> usize {
        self.max_buffered
    }

    /// What a full send queue means.
    pub fn get_slow_consumer(&self) -> SlowConsumer {
        self.slow_consumer
    }

    /// The most frames per message.
    pub fn get_max_fragments(&self) -> usize {
        self.max_fragments
    }

    /// The permessage-deflate settings, or `None` when it is off.
    pub fn get_compression(&self) -> Option<&DeflateConfig> {
        self.compression.as_ref()
    }

    /// The permessage-deflate settings of a route, given its own switch.
    pub(crate) fn compression_for(&self, route: Option<bool>) -> Option<DeflateConfig> {
        match route {
            Some(false) => None,
            Some(true) => Some(self.compression.unwrap_or_default()),
            None => self.compression,
        }
    }

    /// The connection limit, if any.
    pub fn get_max_connections(&self) -> Option<usize> {
        self.max_connections
    }

    /// The allowed origins: `None` for the same-origin rule, `Some(&[])`
    /// never (an empty list refuses every browser), and
    /// [`allow_any_origin`](Self::allow_any_origin) shows as `Some(["*"])`.
    pub fn get_allowed_origins(&self) -> Option<Vec<&str>> {
        match &self.origins {
            Origins::SameOrigin => None,
            Origins::List(list) => Some(list.iter().map(String::as_str).collect()),
            Origins::Any => Some(vec!["*"]),
        }
    }

    pub(crate) fn origins(&self) -> &Origins {
        &self.origins
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

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = Config::default();
        assert_eq!(c.get_max_send_queue(), 1 << 20);
        assert_eq!(c.get_ping_interval(), Duration::from_secs(30));
        assert_eq!(c.get_ping_timeout(), Duration::from_secs(30));
        assert_eq!(c.get_handshake_timeout(), Duration::from_secs(10));
        assert_eq!(c.get_max_buffered(), 256 << 20);
        assert_eq!(c.get_slow_consumer(), SlowConsumer::Error);
        assert_eq!(c.get_max_fragments(), 131_072);
        assert_eq!(c.get_max_connections(), None);
        assert_eq!(c.get_allowed_origins(), None);
        let list = c.allowed_origins(["https://App.example.com"]);
        assert_eq!(
            list.get_allowed_origins(),
            Some(vec!["https://app.example.com"])
        );
    }
}
