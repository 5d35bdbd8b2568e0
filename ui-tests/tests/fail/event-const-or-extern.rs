use axum::Router;
use wsroute::{CloseReason, Connection, RouterExt, WebSockets};

#[derive(Default)]
struct Echo;

#[wsroute::websocket_route("/ws")]
impl Echo {
    const fn open(&mut self, _conn: &Connection) {}

    extern "C" fn close(&mut self, _conn: &Connection, _reason: CloseReason) {}
}

fn main() {
    let _app: Router = Router::new().websocket::<Echo>(&WebSockets::default());
}
