use axum::Router;
use wsroute::{Connection, RouterExt, WebSockets};

#[derive(Default)]
struct Chat;

#[wsroute::websocket_route("/ws")]
impl Chat {
    fn message<M: std::fmt::Debug>(&mut self, _conn: &Connection, msg: M) {
        println!("{msg:?}");
    }
}

fn main() {
    let _app: Router = Router::new().websocket::<Chat>(&WebSockets::default());
}
