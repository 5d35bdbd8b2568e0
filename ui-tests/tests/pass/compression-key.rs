//! `compression = false` turns permessage-deflate off for one route.

use wsroute::{Connection, Message, Route};

#[derive(Default)]
struct Plain;

#[wsroute::websocket_route("/plain", compression = false)]
impl Plain {
    async fn message(&mut self, conn: &Connection, msg: Message) {
        let _ = conn.send(msg);
    }
}

#[derive(Default)]
struct Default_;

#[wsroute::websocket_route("/default")]
impl Default_ {}

fn main() {
    assert_eq!(<Plain as Route<()>>::COMPRESSION, Some(false));
    assert_eq!(<Default_ as Route<()>>::COMPRESSION, None);
}
