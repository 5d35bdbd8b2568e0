//! An in-process test client: connect to a route of a [`Router`](axum::Router) without
//! opening a port (feature `test-util`).
//!
//! [`TestServer::new`] takes the router as you would serve it;
//! [`TestServer::connect`] (or [`TestServer::request`] for headers, query
//! and the remote address) returns a [`TestSocket`], the client side of
//! one WebSocket. Each connection is an in-memory pipe
//! ([`tokio::io::duplex`]): hyper's HTTP/1.1 server on one end, as under
//! `axum::serve`, so the upgrade, `accept`, the limits and the connection
//! task are the production ones; tungstenite's client on the other, which
//! masks what it sends and checks every frame the server sends.
//!
//! The helpers panic with a message naming what failed (a test helper's
//! job); each has a `try_` twin returning a `Result` for tests of failure.
//!
//! # Example
//!
//! Two users in a chat room: what one says, the other hears.
//!
//! ```
//! use wsroute::test::TestServer;
//! use wsroute::{Config, Connection, Message, RouterExt, WebSockets};
//!
//! #[derive(Default)]
//! struct Chat;
//!
//! #[wsroute::websocket_route("/room")]
//! impl Chat {
//!     fn open(&mut self, conn: &Connection) {
//!         let _ = conn.subscribe("room");
//!         let _ = conn.send_text("welcome");
//!     }
//!
//!     fn message(&mut self, conn: &Connection, msg: Message) {
//!         conn.publish("room", msg);
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let sockets = WebSockets::new(Config::default());
//! let server = TestServer::new(axum::Router::new().websocket::<Chat>(&sockets));
//! let mut ann = server.connect("/room").await;
//! let mut bob = server.connect("/room").await;
//! // Once welcomed, each is in the room.
//! assert_eq!(ann.recv_text().await, "welcome");
//! assert_eq!(bob.recv_text().await, "welcome");
//! ann.send_text("hi bob").await;
//! assert_eq!(bob.recv_text().await, "hi bob");
//! # }
//! ```

mod error;
mod server;
mod socket;

pub use error::TestError;
pub use server::{DEFAULT_REMOTE_ADDR, TestRequest, TestServer};
pub use socket::{DEFAULT_TIMEOUT, ReceivedClose, TestSocket};
