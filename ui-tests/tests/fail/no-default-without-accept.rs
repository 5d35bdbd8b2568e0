use axum::Router;
use wsroute::{Connection, RouterExt, WebSockets};

struct Chat {
    name: String,
}

#[wsroute::websocket_route("/ws")]
impl Chat {
    fn open(&mut self, conn: &Connection) {
        let _ = conn.send_text(format!("hello {}", self.name));
    }
}

fn main() {
    let _app: Router = Router::new().websocket::<Chat>(&WebSockets::default());
}
