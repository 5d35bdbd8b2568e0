//! Keys and events written as raw identifiers are the same keys and events.
#![deny(warnings)]

use axum::Router;
use wsroute::{Connection, Message, Route, RouterExt, WebSockets};

#[derive(Default)]
struct Echo;

#[wsroute::websocket_route("/echo", r#max_payload = 1024)]
impl Echo {
    fn r#message(&mut self, conn: &Connection, msg: Message) {
        let _ = conn.send(msg);
    }
}

const _: () = assert!(matches!(<Echo as Route>::MAX_PAYLOAD, Some(1024)));

fn main() {
    let _app: Router = Router::new().websocket::<Echo>(&WebSockets::default());
}
