use axum::Router;
use wsroute::{Connection, RouterExt, WebSockets};

#[derive(Default)]
struct Chat;

#[wsroute::websocket_route("/ws")]
impl Chat {
    fn message(&mut self, conn: &Connection, msg: String) {
        let _ = conn.send_text(msg);
    }
}

fn main() {
    let _app: Router = Router::new().websocket::<Chat>(&WebSockets::default());
}
