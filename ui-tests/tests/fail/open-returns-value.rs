use axum::Router;
use wsroute::{Connection, RouterExt, WebSockets};

#[derive(Default)]
struct Chat;

#[wsroute::websocket_route("/ws")]
impl Chat {
    fn open(&mut self, conn: &Connection) -> bool {
        conn.send_text("hello").is_ok()
    }
}

fn main() {
    let _app: Router = Router::new().websocket::<Chat>(&WebSockets::default());
}
