use axum::Router;
use wsroute::{Connection, RouterExt, WebSockets};

#[derive(Default)]
struct Chat;

#[wsroute::websocket_route("/ws")]
impl Chat {
    fn open<'a>(&'a mut self, conn: &Connection) {
        let _ = conn.send_text("hi");
    }
}

fn main() {
    let _app: Router = Router::new().websocket::<Chat>(&WebSockets::default());
}
