//! Chat room: everyone connected sees everyone's messages.
//!
//! ```sh
//! cargo run --release -p wsroute-examples --example chat
//! ```
//!
//! Then open <http://127.0.0.1:3000/> in two browser tabs. The WebSocket
//! route is `/ws?name=NAME`; a missing or blank name is refused, and
//! `/name?name=NAME` answers the same check over plain HTTP, because a
//! browser's WebSocket cannot read why an upgrade was refused.
//! `examples/browser/run.sh` tests the page in headless Chromium.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::get;
use serde::Deserialize;
use wsroute::{
    CloseReason, Config, Connection, Error, Message, Route, RouterExt, WebSockets, websocket_route,
};

/// Who is in the room: shared by all connections (the router's state).
#[derive(Clone, Default)]
struct Room {
    members: Arc<Mutex<HashMap<u64, Connection>>>,
}

impl Room {
    fn broadcast(&self, line: &str) {
        for conn in self.members.lock().unwrap().values() {
            // A member whose queue is full (not reading) misses this line;
            // one that is closing is about to leave anyway.
            let _ = conn.send_text(line);
        }
    }
}

#[derive(Deserialize)]
struct Join {
    name: Option<String>,
}

impl Join {
    /// The one rule for names, shared by the upgrade and `/name`.
    fn name(self) -> Result<String, (StatusCode, &'static str)> {
        match self.name.map(|n| n.trim().to_owned()) {
            Some(name) if !name.is_empty() => Ok(name),
            _ => Err((
                StatusCode::BAD_REQUEST,
                "a name is required (not just spaces)",
            )),
        }
    }
}

/// One member's connection.
struct Chat {
    name: String,
    room: Room,
}

#[websocket_route("/ws", max_payload = 4096)]
impl Chat {
    async fn accept(
        Query(join): Query<Join>,
        State(room): State<Room>,
    ) -> Result<Self, (StatusCode, &'static str)> {
        Ok(Chat {
            name: join.name()?,
            room,
        })
    }

    async fn open(&mut self, conn: &Connection) {
        self.room
            .members
            .lock()
            .unwrap()
            .insert(conn.id(), conn.clone());
        self.room.broadcast(&format!("* {} joined", self.name));
    }

    async fn message(&mut self, _conn: &Connection, msg: Message) {
        // Binary messages have no place in a text chat.
        if let Some(text) = msg.as_text() {
            self.room.broadcast(&format!("{}: {text}", self.name));
        }
    }

    async fn error(&mut self, _conn: &Connection, err: &Error) {
        eprintln!("{}: {err}", self.name);
    }

    async fn close(&mut self, conn: &Connection, _reason: CloseReason) {
        self.room.members.lock().unwrap().remove(&conn.id());
        self.room.broadcast(&format!("* {} left", self.name));
    }
}

/// The page, told the route's message limit so that it can refuse an
/// over-limit line itself: the server would close the connection (1009).
fn page() -> String {
    let max = <Chat as Route<Room>>::MAX_PAYLOAD.expect("the route sets max_payload");
    include_str!("page.html").replace("{{max_payload}}", &max.to_string())
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = wsroute_examples::addr_from_args("127.0.0.1:3000");
    let page: &'static str = page().leak();
    let sockets = WebSockets::new(Config::default());
    let app = axum::Router::new()
        .route("/", get(move || async move { Html(page) }))
        .route(
            "/name",
            get(|Query(join): Query<Join>| async { join.name().map(|_| StatusCode::NO_CONTENT) }),
        )
        .websocket::<Chat>(&sockets)
        .with_state(Room::default());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("chat on http://{}/", listener.local_addr()?);
    // On Ctrl-C every member gets close 1001 and leaves the room properly.
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    wsroute::serve(listener, app, &sockets, ctrl_c).await
}
