//! What `loadgen` measured, as the one JSON line it prints last and the
//! runner reads back.

use serde::{Deserialize, Serialize};

/// One echo-throughput run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadReport {
    /// Connections driven at once.
    pub connections: usize,
    /// Payload bytes per message.
    pub size: usize,
    /// Text (UTF-8 validated by the server) or binary messages.
    pub text: bool,
    /// Messages each connection keeps in flight.
    pub in_flight: usize,
    /// The measured interval (after the warm-up), in seconds.
    pub duration_s: f64,
    /// Echoed messages received during the measured interval.
    pub messages: u64,
    /// `messages / duration_s`.
    pub msgs_per_s: f64,
    /// Payload megabytes (10^6) echoed per second, one direction.
    pub mb_per_s: f64,
    /// Round-trip latency percentiles in microseconds, from the moment a
    /// message was queued for writing to the moment its echo was parsed.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Server CPU time (user + system) over the measured interval per
    /// echoed message, in microseconds; absent without `--server-pid`.
    pub server_cpu_us_per_msg: Option<f64>,
    /// Share of one core the server used over the measured interval.
    pub server_cpu_util: Option<f64>,
    /// Share of one core the load generator itself used: near 1.0 means
    /// the load generator, not the server, set the pace.
    pub loadgen_cpu_util: f64,
    /// Frame bytes (header, mask, payload) the load generator wrote per
    /// echoed message, as sent: compressed when deflate was agreed.
    #[serde(default)]
    pub wire_sent_per_msg: Option<f64>,
    /// Frame bytes (header, payload) the load generator read per echo.
    #[serde(default)]
    pub wire_received_per_msg: Option<f64>,
    /// permessage-deflate, when it was offered (`--deflate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deflate: Option<DeflateOutcome>,
}

/// What became of the permessage-deflate offer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeflateOutcome {
    /// The offer, as sent in `Sec-WebSocket-Extensions`.
    pub offered: String,
    /// The server's answer, or `None` when it declined (no extension in
    /// its 101): the messages then went uncompressed.
    pub answer: Option<String>,
    /// Whether the client's messages went out compressed (RSV1).
    pub client_compressed: bool,
}

impl DeflateOutcome {
    /// The answer for a table: the header value, or "not negotiated".
    pub fn answer_or_declined(&self) -> &str {
        self.answer.as_deref().unwrap_or("not negotiated")
    }
}

/// One idle-memory run: the server's resident memory per connection after
/// each phase, in KiB, measured against its memory before any connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemoryReport {
    /// Connections opened (and upgraded, for websocket servers).
    pub connections: usize,
    /// Server RSS before the first connection, KiB.
    pub rss_before_kib: u64,
    /// KiB per connection with every connection open and idle.
    pub idle_kib_per_conn: f64,
    /// KiB per connection after each has echoed one 16-byte message.
    pub after_16b_kib_per_conn: f64,
    /// KiB per connection after each has echoed one 64 KiB message.
    pub after_64k_kib_per_conn: f64,
    /// permessage-deflate, when it was offered (`--deflate`): the messages
    /// were realistic JSON text, compressed if agreed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deflate: Option<DeflateOutcome>,
}
