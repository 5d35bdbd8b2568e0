//! Chat rooms on topics, on one node or several sharing a Redis server.
//!
//! ```sh
//! cargo run --release -p wsroute-examples --example chat
//! # or two nodes of one chat, through Redis:
//! cargo run --release -p wsroute-examples --example chat -- --port 3000 --redis redis://127.0.0.1:6379
//! cargo run --release -p wsroute-examples --example chat -- --port 3001 --redis redis://127.0.0.1:6379
//! ```
//!
//! Then open <http://127.0.0.1:3000/> (and :3001) in browser tabs. The
//! WebSocket route is `/ws?name=NAME&room=ROOM` (room `lobby` if none); a
//! blank name or an over-long room is refused, and `/name?name=&room=`
//! answers the same check over plain HTTP, because a browser's WebSocket
//! cannot read why an upgrade was refused.
//!
//! Each member subscribes to two topics: its room's (`room:ROOM`: lines,
//! joins and leaves) and [`rooms::ROOMS`] (the room list, see `rooms.rs`).
//! There is no registry of connections here: the topics are it, and with
//! `--redis` they span the nodes. `examples/browser/run.sh` tests the
//! page in headless Chromium, on one node and on two.

mod args;
mod rooms;

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use wsroute::{
    CloseReason, Config, Connection, Error, Message, Route, RouterExt, WebSockets, websocket_route,
};

use crate::rooms::LocalRooms;

/// Room names are at most this many characters, so that one page cannot
/// make every room list on every node large.
const MAX_ROOM: usize = 32;

/// What the server sends a page, as JSON: `{"kind":"line","text":..}`.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum ToPage<'a> {
    /// Someone's message, as `name: text`.
    Line { text: &'a str },
    /// A join or leave, as `* name joined`.
    Notice { text: &'a str },
    /// One node's rooms (see `rooms.rs`).
    Rooms(rooms::Snapshot<'a>),
}

/// The router's state.
#[derive(Clone)]
struct Node {
    sockets: WebSockets,
    rooms: Arc<LocalRooms>,
}

#[derive(Deserialize)]
struct Join {
    name: Option<String>,
    room: Option<String>,
}

type Refusal = (StatusCode, &'static str);

impl Join {
    /// The one rule for names and rooms, shared by the upgrade and `/name`.
    fn check(self) -> Result<(String, String), Refusal> {
        let name = match self.name.map(|n| n.trim().to_owned()) {
            Some(name) if !name.is_empty() => name,
            _ => {
                return Err((
                    StatusCode::BAD_REQUEST,
                    "a name is required (not just spaces)",
                ));
            }
        };
        let room = match self.room.map(|r| r.trim().to_owned()) {
            Some(room) if !room.is_empty() => room,
            _ => "lobby".to_owned(),
        };
        if room.chars().count() > MAX_ROOM {
            return Err((
                StatusCode::BAD_REQUEST,
                "a room name is at most 32 characters: shorten it",
            ));
        }
        Ok((name, room))
    }
}

/// One member's connection.
struct Chat {
    name: String,
    room: String,
    /// The room's topic.
    topic: String,
    node: Node,
}

impl Chat {
    fn notice(&self, text: &str) {
        // Everyone in the room, this member too, on every node.
        let _ = self
            .node
            .sockets
            .publish_json(&self.topic, &ToPage::Notice { text });
    }
}

#[websocket_route("/ws", max_payload = 4096)]
impl Chat {
    async fn accept(Query(join): Query<Join>, State(node): State<Node>) -> Result<Self, Refusal> {
        let (name, room) = join.check()?;
        Ok(Chat {
            name,
            topic: rooms::topic(&room),
            room,
            node,
        })
    }

    async fn open(&mut self, conn: &Connection) {
        // Subscribed before the notice, so the member sees its own join.
        // Both fail only if the connection is already closing.
        if conn.subscribe(&self.topic).is_err() || conn.subscribe(rooms::ROOMS).is_err() {
            return;
        }
        self.node.rooms.joined(&self.room);
        self.notice(&format!("* {} joined", self.name));
    }

    async fn message(&mut self, _conn: &Connection, msg: Message) {
        // Binary messages have no place in a text chat.
        if let Some(text) = msg.as_text() {
            let text = format!("{}: {text}", self.name);
            // A member whose queue is full (not reading) misses this line.
            let _ = self
                .node
                .sockets
                .publish_json(&self.topic, &ToPage::Line { text: &text });
        }
    }

    async fn error(&mut self, _conn: &Connection, err: &Error) {
        eprintln!("{}: {err}", self.name);
    }

    async fn close(&mut self, _conn: &Connection, _reason: CloseReason) {
        // Its topics are left already; the others hear it go.
        self.notice(&format!("* {} left", self.name));
        self.node.rooms.left();
    }
}

/// The page, told the route's message limits so that it can refuse an
/// over-limit line itself: the server would close the connection (1009).
fn page() -> String {
    let max = <Chat as Route<Node>>::MAX_PAYLOAD.expect("the route sets max_payload");
    include_str!("page.html")
        .replace("{{max_payload}}", &max.to_string())
        .replace("{{max_room}}", &MAX_ROOM.to_string())
        .replace(
            "{{stale_ms}}",
            &(4 * rooms::REFRESH.as_millis()).to_string(),
        )
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // The Redis broker's losses and recoveries (info and warn), and
    // warnings from the rest, unless RUST_LOG says otherwise.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,wsroute_redis=info")),
        )
        .init();
    let args = args::Args::from_env();
    let page: &'static str = page().leak();
    let sockets = match &args.redis {
        None => WebSockets::new(Config::default()),
        Some(url) => match wsroute_redis::RedisBroker::new(url.as_str()) {
            Ok(broker) => WebSockets::with_broker(Config::default(), broker),
            Err(err) => {
                let url = args::without_password(url);
                eprintln!("--redis {url}: {err}; write it as redis://HOST:PORT");
                std::process::exit(2)
            }
        },
    };
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    let addr = listener.local_addr()?;
    // Unique among nodes that share a Redis, and across restarts.
    let node_id = format!("{addr}/{}", std::process::id());
    let node = Node {
        rooms: LocalRooms::new(node_id, sockets.clone()),
        sockets: sockets.clone(),
    };
    tokio::spawn(Arc::clone(&node.rooms).refresh());
    let app = axum::Router::new()
        .route("/", get(move || async move { Html(page) }))
        .route(
            "/name",
            get(|Query(join): Query<Join>| async { join.check().map(|_| StatusCode::NO_CONTENT) }),
        )
        .websocket::<Chat>(&sockets)
        .with_state(node);
    match &args.redis {
        Some(url) => println!(
            "chat on http://{addr}/ (a node of the chat on {})",
            args::without_password(url)
        ),
        None => println!("chat on http://{addr}/"),
    }
    // On Ctrl-C every member gets close 1001 and leaves its room properly.
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    wsroute::serve(listener, app, &sockets, ctrl_c).await
}
