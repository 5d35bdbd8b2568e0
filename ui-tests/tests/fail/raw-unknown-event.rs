use axum::Router;
use wsroute::{Connection, Message, RouterExt, WebSockets};

#[derive(Default)]
struct Echo;

#[wsroute::websocket_route("/ws")]
impl Echo {
    fn r#mesage(&mut self, conn: &Connection, msg: Message) {
        let _ = conn.send(msg);
    }
}

fn main() {
    let _app: Router = Router::new().websocket::<Echo>(&WebSockets::default());
}
