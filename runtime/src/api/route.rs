//! The trait a WebSocket route implements: Crow's five events.

use std::future::Future;

use axum::response::Response;
use http::request::Parts;

use crate::api::connection::Connection;
use crate::api::error::{CloseReason, Error};
use crate::proto::Message;

/// A WebSocket route: the per-connection state (Crow's `userdata`) and its
/// event handlers.
///
/// The `#[websocket_route]` attribute implements this trait from an impl
/// block; it can also be implemented by hand. For every connection the
/// driver calls, in this order:
///
/// 1. [`accept`](Self::accept) — decides the upgrade and builds the state;
/// 2. [`open`](Self::open) — once the connection is upgraded;
/// 3. [`message`](Self::message) — for each text or binary message;
/// 4. [`error`](Self::error) — once when the connection fails (protocol
///    error, message too big, I/O error, timeout), before `close`; and
///    once per message that does not decode as the `Json<T>` `message`
///    takes, the connection staying open;
/// 5. [`close`](Self::close) — exactly once, whatever ended the connection.
///
/// `S` is the axum router's state type. By hand, `accept` gets the
/// request's head as axum's [`Parts`] and refuses with any axum
/// [`Response`]:
///
/// ```
/// use axum::http::request::Parts;
/// use axum::response::Response;
/// use wsroute::{Connection, Message, Route};
///
/// struct Echo;
///
/// impl Route for Echo {
///     const PATH: &'static str = "/echo";
///
///     async fn accept(_: &mut Parts, _: &()) -> Result<Self, Response> {
///         Ok(Echo)
///     }
///
///     async fn message(&mut self, conn: &Connection, msg: Message) {
///         let _ = conn.send(msg);
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a WebSocket route for a `Router<{S}>`",
    label = "not a `Route<{S}>`",
    note = "`#[websocket_route]` makes a `Route<X>` for the `X` of its `state = X` key, else of an `accept` argument `State<X>`, else for every `X`: to mount it on a `Router<{S}>`, write `state = {S}` in its attribute"
)]
pub trait Route<S = ()>: Sized + Send + 'static {
    /// The path the route is mounted at, in axum's syntax (`/ws`,
    /// `/rooms/{id}`).
    const PATH: &'static str;

    /// The route's own message size limit, in bytes. `None` uses the
    /// global [`Config::max_payload`](crate::Config::max_payload);
    /// `Some(u64::MAX)` turns the limit off for this route.
    const MAX_PAYLOAD: Option<u64> = None;

    /// The origins this route accepts upgrades from (exact
    /// `scheme://host[:port]` strings), replacing the global
    /// [`Config::allowed_origins`](crate::Config::allowed_origins) rule for
    /// this route; `None` uses the global rule. Set with the attribute key
    /// `origins = ["https://app.example.com"]`.
    const ORIGINS: Option<&'static [&'static str]> = None;

    /// Whether this route agrees to permessage-deflate, replacing the
    /// global [`Config::compression`](crate::Config::compression) switch;
    /// `None` follows it. Set with the attribute key `compression = false`.
    const COMPRESSION: Option<bool> = None;

    /// Decides whether to upgrade the request, and builds the
    /// per-connection state. `Err` answers the request with that response
    /// instead; the connection is never opened.
    fn accept(
        request: &mut Parts,
        state: &S,
    ) -> impl Future<Output = Result<Self, Response>> + Send;

    /// The connection is open.
    fn open(&mut self, conn: &Connection) -> impl Future<Output = ()> + Send {
        let _ = conn;
        async {}
    }

    /// A complete text or binary message arrived.
    fn message(&mut self, conn: &Connection, msg: Message) -> impl Future<Output = ()> + Send {
        let _ = (conn, msg);
        async {}
    }

    /// Something went wrong. Either the connection failed — reported once,
    /// and [`close`](Self::close) follows — or a message taken as
    /// [`Json<T>`](crate::Json) did not decode ([`ErrorKind::Json`](crate::ErrorKind::Json)),
    /// reported once per such message while the connection stays open.
    fn error(&mut self, conn: &Connection, err: &Error) -> impl Future<Output = ()> + Send {
        let _ = (conn, err);
        async {}
    }

    /// The connection ended. Called exactly once per opened connection.
    fn close(&mut self, conn: &Connection, reason: CloseReason) -> impl Future<Output = ()> + Send {
        let _ = (conn, reason);
        async {}
    }
}
