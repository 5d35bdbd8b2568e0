//! permessage-deflate (RFC 7692): what was agreed in the handshake
//! ([`DeflateParams`], reached from the client's offers and the server's
//! [`DeflateConfig`]), and the compression of messages.

pub(crate) mod codec;
mod negotiate;
#[cfg(test)]
mod tests;

pub use negotiate::negotiate;

/// The permessage-deflate parameters in force on one connection, as the
/// server's answer in the handshake stated them (RFC 7692 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server resets its compressor after each message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after each message, so the server
    /// needs no inflater between messages.
    pub client_no_context_takeover: bool,
    /// The largest LZ77 window the server may compress with: 2^bits bytes,
    /// 8–15. At 8 (a client may ask for it) the server sends every message
    /// uncompressed: zlib cannot compress raw deflate in a 256-byte window,
    /// and an uncompressed message honours any window (RFC 7692 §6).
    pub server_max_window_bits: u8,
    /// The largest LZ77 window the client may compress with, 8–15.
    pub client_max_window_bits: u8,
}

/// What the server is willing to agree to: the policy applied to each
/// offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateConfig {
    /// Keep the server's compressor between messages, if the client lets
    /// it: better ratios, at the cost of a compressor per connection.
    /// When false the server always answers `server_no_context_takeover`
    /// and compresses with one compressor per thread.
    pub server_context_takeover: bool,
    /// Let the client keep its compressor between messages: the server
    /// then needs an inflater per connection. When false the server asks
    /// for `client_no_context_takeover` (RFC 7692 §7.1.1.2 lets it, even
    /// when the client did not offer it) and inflates with one inflater
    /// per thread.
    pub client_context_takeover: bool,
    /// The largest window the server compresses with, 9–15 (zlib cannot
    /// compress raw deflate with a 256-byte window); values outside 8–15
    /// are clamped into it.
    pub server_max_window_bits: u8,
    /// The largest window asked of the client, 8–15; asked only when the
    /// client's offer has `client_max_window_bits`.
    pub client_max_window_bits: u8,
    /// The zlib level, 0 (store) to 9 (smallest, slowest).
    pub level: u32,
    /// Messages shorter than this go uncompressed (RFC 7692 §6 lets each
    /// message choose): below it, compressing costs more time than it
    /// saves bytes.
    pub min_size: usize,
}

/// See [`DeflateConfig::level`].
const DEFAULT_LEVEL: u32 = 1;
/// See [`DeflateConfig::min_size`].
const DEFAULT_MIN_SIZE: usize = 64;

impl Default for DeflateConfig {
    /// No context takeover either way, full windows: a connection holds no
    /// compression state between messages.
    fn default() -> Self {
        Self {
            server_context_takeover: false,
            client_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            level: DEFAULT_LEVEL,
            min_size: DEFAULT_MIN_SIZE,
        }
    }
}
