//! WebSocket routes for axum, in the style of Crow's `CROW_WEBSOCKET_ROUTE`:
//! a struct holds each connection's state, and its methods handle the
//! connection's events — `accept`, `open`, `message`, `error`, `close` —
//! in that order, with `close` called exactly once.
//!
//! The wire protocol is this crate's own RFC 6455 implementation
//! ([`proto`]), a sans-IO core driven by one tokio task per connection.
//!
//! # Production
//!
//! The defaults of [`Config`] bound what any client can make the server
//! hold or wait for; each is a setter of the same name.
//!
//! | limit | default | the client sees |
//! |---|---|---|
//! | [`max_payload`](Config::max_payload) | 64 MiB per message | close 1009 |
//! | [`max_fragments`](Config::max_fragments) | 131072 frames per message | close 1009 |
//! | [`max_buffered`](Config::max_buffered) | 256 MiB for the whole server | close 1013 |
//! | [`max_send_queue`](Config::max_send_queue) | 1 MiB per connection | `SendError::QueueFull`, or close 1008 with [`SlowConsumer::Close`] |
//! | [`ping_interval`](Config::ping_interval) / [`ping_timeout`](Config::ping_timeout) | 30 s / 30 s | a ping; then, silent, TCP dropped (`close` reports 1006) |
//! | [`close_timeout`](Config::close_timeout) | 5 s | TCP dropped |
//! | [`handshake_timeout`](Config::handshake_timeout) | 10 s ([`serve`]) | TCP closed |
//! | [`max_connections`](Config::max_connections) | none | HTTP 503 |
//! | [`allowed_origins`](Config::allowed_origins) | same origin only | HTTP 403 |
//!
//! [`WebSockets::shutdown`] returns within about `close_timeout` whatever
//! the peers do. The README's "Production" section says more of each.
//!
//! # Cargo features
//! - `enforce-ws-spec` — Crow's `CROW_ENFORCE_WS_SPEC`: refuse unmasked
//!   client frames (close 1002). Off by default, as in Crow, which accepts
//!   them to ease debugging.
#![warn(missing_docs)]
// The one `unsafe` is `Utf8Bytes::as_str` over bytes vouched for by
// `Utf8Bytes::from_validated` (an `unsafe fn`); each is allowed where it is.
#![deny(unsafe_code)]

mod accept;
mod budget;
mod config;
mod connection;
mod driver;
mod error;
mod handshake;
mod json;
mod keepalive;
mod message;
mod origin;
pub mod proto;
mod request;
mod route;
mod serve;
mod transport;
mod websockets;

pub use accept::AcceptOutcome;
pub use config::{Config, DEFAULT_MAX_PAYLOAD, SlowConsumer};
pub use connection::Connection;
pub use error::{CloseReason, Error, ErrorKind};
pub use json::{FromMessage, Json};
pub use message::{Message, Utf8Bytes};
pub use proto::{CloseCode, SendError};
pub use request::Request;
pub use route::Route;
pub use serve::serve;
pub use websockets::{RouterExt, WebSockets};

pub use wsroute_macros::websocket_route;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
