//! A path with a parameter, read with axum's `Path`.
#![deny(warnings)]

use axum::Router;
use axum::extract::Path;
use wsroute::{Connection, Message, Route, RouterExt, WebSockets};

struct Room {
    id: u32,
}

#[wsroute::websocket_route("/rooms/{id}")]
impl Room {
    fn accept(Path(id): Path<u32>) -> Option<Self> {
        Some(Room { id })
    }

    fn message(&mut self, conn: &Connection, msg: Message) {
        let _ = conn.send_text(format!("room {}: {} bytes", self.id, msg.len()));
    }
}

fn main() {
    assert_eq!(<Room as Route>::PATH, "/rooms/{id}");
    let sockets = WebSockets::default();
    let _app: Router = Router::new().websocket::<Room>(&sockets);
}
