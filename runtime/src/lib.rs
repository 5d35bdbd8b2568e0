//! WebSocket routes for axum, in the style of Crow's `CROW_WEBSOCKET_ROUTE`:
//! a struct holds each connection's state, and its methods handle the
//! connection's events — `accept`, `open`, `message`, `error`, `close` —
//! in that order, with `close` called exactly once.
//!
//! The wire protocol is this crate's own RFC 6455 implementation
//! ([`proto`]), a sans-IO core driven by one tokio task per connection.
//!
//! # Cargo features
//! - `enforce-ws-spec` — Crow's `CROW_ENFORCE_WS_SPEC`: refuse unmasked
//!   client frames (close 1002). Off by default, as in Crow, which accepts
//!   them to ease debugging.
#![warn(missing_docs)]

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

/// Makes a WebSocket route of an inherent impl block whose methods are the
/// events: `#[websocket_route("/ws", max_payload = 65536)] impl Chat { … }`
/// implements [`Route`] for `Chat`.
pub use wsroute_macros::websocket_route;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
