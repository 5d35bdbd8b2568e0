use axum::Router;
use wsroute::{Connection, Message, RouterExt, WebSockets};

#[derive(Default)]
struct Echo;

// Would compile and never match: origins are compared exactly.
#[wsroute::websocket_route("/ws", origins = ["https://*.example.com", "https://a b.example", "https://[::1"])]
impl Echo {
    fn message(&mut self, conn: &Connection, msg: Message) {
        let _ = conn.send(msg);
    }
}

fn main() {
    let _app: Router = Router::new().websocket::<Echo>(&WebSockets::default());
}
