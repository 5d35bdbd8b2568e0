//! Crow's form: `accept` returns `bool`, and the state is `Default`.
#![deny(warnings)]

use axum::Router;
use wsroute::{Connection, Message, Request, RouterExt, WebSockets};

#[derive(Default)]
struct Echo;

#[wsroute::websocket_route("/echo")]
impl Echo {
    fn accept(req: Request) -> bool {
        req.header("origin") != Some("https://evil.example")
    }

    fn message(&mut self, conn: &Connection, msg: Message) {
        let _ = conn.send(msg);
    }
}

fn main() {
    let sockets = WebSockets::default();
    let _app: Router = Router::new().websocket::<Echo>(&sockets);
}
