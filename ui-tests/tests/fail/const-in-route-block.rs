use axum::Router;
use wsroute::{Connection, Message, RouterExt, WebSockets};

#[derive(Default)]
struct Echo;

// Looks like a setting and, before, was silently ignored.
#[wsroute::websocket_route("/ws")]
impl Echo {
    const MAX_PAYLOAD: u64 = 16;

    fn message(&mut self, conn: &Connection, msg: Message) {
        let _ = conn.send(msg);
    }
}

fn main() {
    let _app: Router = Router::new().websocket::<Echo>(&WebSockets::default());
}
