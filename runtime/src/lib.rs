//! WebSocket routes for axum, in the style of Crow's `CROW_WEBSOCKET_ROUTE`:
//! a struct holds each connection's state, and its methods handle the
//! connection's events — `accept`, `open`, `message`, `error`, `close` —
//! in that order, with `close` called exactly once.
//!
//! The wire protocol is this crate's own RFC 6455 implementation
//! ([`proto`]), a sans-IO core driven by one tokio task per connection.
//!
//! # Example
//!
//! An echo route that greets each client by the name in its URL, refuses
//! a client without one, and counts what it echoed:
//!
//! ```no_run
//! use axum::extract::Query;
//! use serde::Deserialize;
//! use wsroute::{CloseReason, Config, Connection, Message, RouterExt, WebSockets};
//!
//! #[derive(Deserialize)]
//! struct Hello {
//!     name: String,
//! }
//!
//! /// One connection's state.
//! struct Echo {
//!     name: String,
//!     echoed: u64,
//! }
//!
//! #[wsroute::websocket_route("/echo", max_payload = 65536)]
//! impl Echo {
//!     // Before the upgrade: without `?name=`, `Query` answers 400.
//!     async fn accept(Query(hello): Query<Hello>) -> Option<Self> {
//!         Some(Echo { name: hello.name, echoed: 0 })
//!     }
//!
//!     async fn open(&mut self, conn: &Connection) {
//!         let _ = conn.send_text(format!("hello, {}", self.name));
//!     }
//!
//!     async fn message(&mut self, conn: &Connection, msg: Message) {
//!         self.echoed += 1;
//!         // Fails only if the client is gone or not reading.
//!         let _ = conn.send(msg);
//!     }
//!
//!     async fn close(&mut self, _conn: &Connection, reason: CloseReason) {
//!         println!("{} left ({reason}) after {} messages", self.name, self.echoed);
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let sockets = WebSockets::new(Config::default());
//!     let app = axum::Router::new().websocket::<Echo>(&sockets);
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     // On Ctrl-C every client gets close 1001 and its `close` event runs.
//!     wsroute::serve(listener, app, &sockets, async {
//!         let _ = tokio::signal::ctrl_c().await;
//!     })
//!     .await
//! }
//! ```
//!
//! The attribute checks the impl block: each event's signature, the
//! arguments of `accept` (any axum extractors), the state being `Send`.
//! [`Route`] says what each event means, [`Connection`] what a handler can
//! do with its connection.
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
//! # Compression
//!
//! permessage-deflate (RFC 7692) is agreed with every client that offers
//! it, as browsers do; [`Config::compression`] and the attribute key
//! `compression = false` turn it off. By default neither side keeps its
//! compression context between messages, so an idle connection holds no
//! zlib state; [`Config::deflate`] takes a [`proto::DeflateConfig`] with
//! context takeover, windows, the zlib level (1 by default) and the size
//! below which messages go uncompressed (64 B). `max_payload` limits the
//! inflated size. The README's "Compression" section has the figures.
//!
//! # Topics
//!
//! [`Connection::subscribe`] puts a connection on a topic (a string) until
//! it [unsubscribes](Connection::unsubscribe) or ends;
//! [`Connection::publish`] sends to every subscriber but the publisher,
//! [`WebSockets::publish`] to all of them, from any task. A published
//! message is encoded once and shared by every subscriber's queue; a
//! subscriber that does not read is skipped or closed by its
//! [`SlowConsumer`] policy, never waited for ([`Published`] counts both).
//!
//! Across nodes, [`WebSockets::with_broker`] takes a [`Broker`] that
//! forwards each publish and delivers the other nodes' through an
//! [`Inbox`]; the crate `wsroute-redis` is one, on Redis pub/sub.
//!
//! # Testing
//!
// The module exists only with the feature; without it the paragraph
// names it in plain text rather than linking nowhere.
#![cfg_attr(
    feature = "test-util",
    doc = "With the feature `test-util`, [`test::TestServer`]"
)]
#![cfg_attr(
    not(feature = "test-util"),
    doc = "With the feature `test-util`, `test::TestServer`"
)]
//! connects to a route of a `Router` without opening a port, through the
//! same upgrade and connection task as production; the module `test` has
//! a chat room tested in ten lines.
//!
//! # Logging
//!
//! Each connection runs in an `INFO` `tracing` span named `websocket`
//! (fields `route`, `id`, `peer`, `protocol`, `extensions`), entered
//! around every handler call, so a handler's own events carry it. The
//! crate's events are at `DEBUG`: `WebSocket opened`, `WebSocket error`
//! (`error`), and `WebSocket closed` (`code`, `reason`, `clean`,
//! `duration`, `messages_in`, `messages_out`, `bytes_in`, `bytes_out`).
//! Nothing is logged per message. The README's "Logging" section shows
//! how to turn them on with `RUST_LOG`.
//!
//! # Cargo features
//! - `enforce-ws-spec` — Crow's `CROW_ENFORCE_WS_SPEC`: refuse unmasked
//!   client frames (close 1002). Off by default, as in Crow, which accepts
//!   them to ease debugging.
//! - `internals` — exposes building blocks of [`proto`] to this crate's
//!   benchmarks and fuzz targets; not a stable API.
//! - `test-util` — the module `test`: an in-process test client that connects to a
//!   `Router` without opening a port. Enable it for tests:
//!   `wsroute = { version = "0.1", features = ["test-util"] }` under
//!   `[dev-dependencies]`.
#![warn(missing_docs)]
// Two `unsafe`s, each allowed where it is: `Utf8Bytes::as_str` over bytes
// vouched for by `Utf8Bytes::from_validated` (an `unsafe fn`), and a
// subscriber's socket descriptor borrowed from its copy in the send queue
// (`task::direct_socket`).
#![deny(unsafe_code)]

// The layers, from the wire up (the README's "Layout" says more): `proto`
// knows nothing of the others, `task` drives it over a socket, `http`
// turns an upgrade request into a running task, `api` holds the types an
// application names.
mod api;
mod http;
pub mod proto;
mod task;
#[cfg(feature = "test-util")]
pub mod test;

pub use api::accept::AcceptOutcome;
pub use api::broker::{Broker, Forward, Inbox};
pub use api::config::{Config, DEFAULT_MAX_PAYLOAD, SlowConsumer};
pub use api::connection::Connection;
pub use api::error::{CloseReason, Error, ErrorKind};
pub use api::json::{FromMessage, Json};
pub use api::route::Route;
pub use api::send_error::SendError;
pub use api::topics::Published;
pub use api::websockets::WebSockets;
pub use http::mount::RouterExt;
pub use http::request::Request;
pub use http::serve::serve;
#[cfg(feature = "tls")]
pub use http::tls::serve_tls;
pub use proto::{CloseCode, Message, Utf8Bytes};
pub use task::cork::{Corked, corked};
/// The rustls that [`serve_tls`] takes a `ServerConfig` of.
#[cfg(feature = "tls")]
pub use tokio_rustls::rustls;

pub use wsroute_macros::websocket_route;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
