//! `Json<T>` without an `error` event: undecodable messages are dropped.
#![deny(warnings)]

use axum::Router;
use wsroute::{Connection, Json, RouterExt, WebSockets};

#[derive(serde::Deserialize)]
struct Move {
    x: i32,
    y: i32,
}

#[derive(Default)]
struct Game;

#[wsroute::websocket_route("/game")]
impl Game {
    fn message(&mut self, conn: &Connection, msg: Json<Move>) {
        let _ = conn.send_text(format!("{},{}", msg.0.x, msg.0.y));
    }
}

fn main() {
    let sockets = WebSockets::default();
    let _app: Router = Router::new().websocket::<Game>(&sockets);
}
