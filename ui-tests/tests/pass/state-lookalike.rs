//! An extractor of the user's own named `State` is not axum's: the route
//! stays a `Route<S>` for every `S`, and the extractor runs as any other.
#![deny(warnings)]

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use wsroute::{Connection, Route, RouterExt, WebSockets};

mod session {
    /// The session's id, from a header.
    pub struct State<T>(pub T);
}

impl<S: Send + Sync> FromRequestParts<S> for session::State<u32> {
    type Rejection = axum::http::StatusCode;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let id = parts.headers.get("x-session").and_then(|v| v.to_str().ok());
        let id = id.and_then(|v| v.parse().ok());
        id.map(session::State).ok_or(axum::http::StatusCode::UNAUTHORIZED)
    }
}

struct Chat {
    session: u32,
}

#[wsroute::websocket_route("/chat")]
impl Chat {
    fn accept(session::State(session): session::State<u32>) -> Option<Self> {
        Some(Chat { session })
    }

    fn open(&mut self, conn: &Connection) {
        let _ = conn.send_text(format!("session {}", self.session));
    }
}

#[derive(Clone)]
struct App;

fn assert_route<R: Route<()> + Route<App>>() {}

fn main() {
    assert_route::<Chat>();
    let sockets = WebSockets::default();
    let _app: Router = Router::new()
        .websocket::<Chat>(&sockets)
        .with_state(App);
}
