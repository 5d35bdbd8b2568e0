use axum::Router;
use wsroute::{Connection, Error, RouterExt, WebSockets};

#[derive(Default)]
struct Chat;

#[wsroute::websocket_route("/ws")]
impl Chat {
    fn error(&mut self, conn: &Connection, err: &Error, fatal: bool) {
        eprintln!("{} {err} {fatal}", conn.id());
    }
}

fn main() {
    let _app: Router = Router::new().websocket::<Chat>(&WebSockets::default());
}
