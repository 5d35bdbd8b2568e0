use axum::Router;
use wsroute::{Connection, Message, RouterExt, WebSockets};

#[derive(Default)]
struct Echo;

#[wsroute::websocket_route("/ws", max_payload)]
impl Echo {
    fn message(&mut self, conn: &Connection, msg: Message) {
        let _ = conn.send(msg);
    }
}

fn main() {
    let _app: Router = Router::new().websocket::<Echo>(&WebSockets::default());
}
