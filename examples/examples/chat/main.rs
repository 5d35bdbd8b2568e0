//! Chat room: everyone connected sees everyone's messages.
//!
//! ```sh
//! cargo run --release -p wsroute-examples --example chat
//! ```
//!
//! Then open <http://127.0.0.1:3000/> in two browser tabs. The WebSocket
//! route is `/ws?name=NAME`; a missing or empty name is refused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::get;
use serde::Deserialize;
use wsroute::{
    CloseReason, Config, Connection, Error, Message, RouterExt, WebSockets, websocket_route,
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
        match join.name.map(|n| n.trim().to_owned()) {
            Some(name) if !name.is_empty() => Ok(Chat { name, room }),
            _ => Err((StatusCode::BAD_REQUEST, "add ?name=YOUR_NAME to the URL")),
        }
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

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = wsroute_examples::addr_from_args("127.0.0.1:3000");
    let sockets = WebSockets::new(Config::default());
    let app = axum::Router::new()
        .route("/", get(|| async { Html(include_str!("page.html")) }))
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
