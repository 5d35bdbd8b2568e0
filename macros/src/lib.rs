//! Procedural macros for `wsroute`. Use them through the `wsroute` crate,
//! which re-exports them and provides everything the generated code names.
//!
//! The one entry point is [`macro@websocket_route`]. It works in four steps,
//! one module each: `args` parses the attribute's arguments, `model` reads
//! the impl block, `validate` checks it, `expand` writes the `Route` impl
//! (or, after a mistake, `fallback` writes one that cannot fail). `errors`
//! collects every mistake so they are reported together; `suggest` finds
//! the name a typo stands for.
#![forbid(unsafe_code)]

mod args;
mod errors;
mod expand;
mod fallback;
mod model;
mod path;
mod suggest;
mod validate;

use proc_macro::TokenStream;

/// Makes a WebSocket route of an inherent impl block: the type is each
/// connection's state (Crow's `userdata`), its methods are the connection's
/// events, and the attribute implements `wsroute::Route` for the type.
///
/// ```
/// use axum::extract::{Query, State};
/// use wsroute::{CloseReason, Connection, Error, Json, RouterExt, WebSockets};
///
/// #[derive(Clone)]
/// struct App {
///     motd: String,
/// }
///
/// #[derive(serde::Deserialize)]
/// struct Join {
///     name: String,
/// }
///
/// #[derive(serde::Deserialize)]
/// struct Say {
///     text: String,
/// }
///
/// /// One connection's state.
/// struct Chat {
///     name: String,
/// }
///
/// #[wsroute::websocket_route("/chat", max_payload = 65536)]
/// impl Chat {
///     // Before the upgrade. `None` answers 403; without `?name=`, `Query`
///     // answers 400 itself.
///     async fn accept(State(app): State<App>, Query(join): Query<Join>) -> Option<Self> {
///         println!("{} joins; {}", join.name, app.motd);
///         (!join.name.is_empty()).then_some(Chat { name: join.name })
///     }
///
///     fn open(&mut self, conn: &Connection) {
///         let _ = conn.send_text(format!("welcome, {}", self.name));
///     }
///
///     // A message that is not a `Say` goes to `error`; the connection stays open.
///     async fn message(&mut self, conn: &Connection, Json(say): Json<Say>) {
///         let _ = conn.send_text(format!("{}: {}", self.name, say.text));
///     }
///
///     fn error(&mut self, _conn: &Connection, err: &Error) {
///         eprintln!("{}: {err}", self.name);
///     }
///
///     fn close(&self, _conn: &Connection, reason: CloseReason) {
///         println!("{} left: {reason}", self.name);
///     }
/// }
///
/// let sockets = WebSockets::default();
/// let motd = "be nice".to_owned();
/// let app: axum::Router = axum::Router::new()
///     .websocket::<Chat>(&sockets)
///     .with_state(App { motd });
/// # let _ = app;
/// ```
///
/// # Arguments
///
/// - the path, first: a string literal in axum's syntax, starting with `/`
///   (`"/ws"`, `"/rooms/{id}"`);
/// - `max_payload = <bytes>`, optional: the route's own message size limit,
///   an integer literal greater than 0; `u64::MAX` turns the limit off for
///   the route. Without it the global `Config::max_payload` applies.
/// - `origins = ["https://app.example.com", "http://localhost:3000"]`,
///   optional: the only page origins (`scheme://host[:port]`, `http` or
///   `https`, no path, no wildcards) allowed to open this route, replacing
///   the global rule (`Config::allowed_origins`, same-origin by default).
/// - `state = AppState`, optional: the state of the router the route is
///   mounted on (see below).
///
/// # Events
///
/// Every method is optional, and may be `async fn` or plain `fn`, and may
/// be under `#[cfg(..)]` (one compiled out is as if absent; two under
/// exclusive `cfg`s are alternatives); events
/// other than `accept` take `&mut self` or `&self`. The block holds events
/// only: put helper methods in a separate `impl` block.
///
/// | event | signature | when |
/// |---|---|---|
/// | `accept` | `fn accept(extractors…) -> Option<Self>` | before the upgrade |
/// | `open` | `fn open(&mut self, conn: &Connection)` | upgraded |
/// | `message` | `fn message(&mut self, conn: &Connection, msg: Message)` | each message |
/// | `error` | `fn error(&mut self, conn: &Connection, err: &Error)` | the connection failed; `close` follows |
/// | `close` | `fn close(&mut self, conn: &Connection, reason: CloseReason)` | once, at the end |
///
/// - **`accept`** takes any number of axum extractors (`wsroute::Request`,
///   `State<T>`, `Query<T>`, `Path<T>`, `HeaderMap`, `ConnectInfo<T>`, …;
///   anything `FromRequestParts`), run in order; a rejection answers the
///   request. It returns `Option<Self>` (`None`: 403), `Result<Self, E>`
///   with `E: IntoResponse` (`Err`: that response), or `bool` when the
///   state is `Default` (`false`: 403): the forms of
///   `wsroute::AcceptOutcome`. Without `accept`, every request is
///   upgraded with `Self::default()`.
/// - **`message`** takes `Message`, or `Json<T>` for a `T: Deserialize`: a
///   message that does not decode goes to `error` (if the block has it),
///   and the connection stays open.
///
/// # The router's state
///
/// With `state = App`, the route is implemented as `Route<App>`, to mount
/// on a `Router<App>`, and `accept` may take any `State<X>` with
/// `X: FromRef<App>`, as an axum handler may:
///
/// ```
/// use axum::extract::{FromRef, State};
/// use wsroute::{Connection, RouterExt, WebSockets};
///
/// #[derive(Clone)]
/// struct App {
///     db: Db,
/// }
///
/// #[derive(Clone)]
/// struct Db {
///     url: String,
/// }
///
/// impl FromRef<App> for Db {
///     fn from_ref(app: &App) -> Db {
///         app.db.clone()
///     }
/// }
///
/// struct Chat {
///     db: Db,
/// }
///
/// #[wsroute::websocket_route("/chat", state = App)]
/// impl Chat {
///     fn accept(State(db): State<Db>) -> Option<Self> {
///         Some(Chat { db })
///     }
///
///     fn open(&mut self, conn: &Connection) {
///         let _ = conn.send_text(format!("using {}", self.db.url));
///     }
/// }
///
/// let db = Db { url: "postgres://localhost".to_owned() };
/// let app: axum::Router = axum::Router::new()
///     .websocket::<Chat>(&WebSockets::default())
///     .with_state(App { db });
/// # let _ = app;
/// ```
///
/// Without `state`, if an argument of `accept` is axum's `State<X>` (written
/// `State<X>` or `axum::extract::State<X>`; another path ending in `State`
/// is an ordinary extractor), the route is
/// a `Route<X>`, to mount on a `Router<X>` (axum-macros' `debug_handler`
/// infers the state the same way); otherwise it is a `Route<S>` for every
/// router state `S`. So a route taking `State<Db>` cannot be mounted on a
/// `Router<App>` ("expected `Db`, found `App`" at `with_state`): write
/// `state = App`.
///
/// # What it generates
///
/// The block as written, plus one `impl wsroute::Route<S> for T` whose
/// methods forward to it: the path and limit as the `PATH` and
/// `MAX_PAYLOAD` constants, and a call to each method the block has. All
/// behaviour lives in the runtime. The state must be `Send + 'static`, and
/// `Sync` if an `async` event takes `&self`, since connections run on
/// tokio's worker threads: a state that is not `Send` is an error on the
/// impl's type, and an event whose future is not `Send` (a `MutexGuard`
/// held across `.await`) an error on the event's name.
///
/// Mistakes are compile errors on the offending token, all reported
/// together: an unknown event name (with the nearest event), a wrong
/// number of parameters, `self` by value, generics, a bad path or
/// argument. Wrong parameter types are rustc's errors, pointed at the
/// parameter's type.
#[proc_macro_attribute]
pub fn websocket_route(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::websocket_route(args.into(), item.into()).into()
}
