use axum::Router;
use wsroute::{Connection, Error, RouterExt, WebSockets};

#[derive(Default)]
struct Chat;

#[wsroute::websocket_route("/ws")]
impl Chat {
    fn error(&mut self, _conn: &Connection, err: Error) {
        eprintln!("{err}");
    }
}

fn main() {
    let _app: Router = Router::new().websocket::<Chat>(&WebSockets::default());
}
