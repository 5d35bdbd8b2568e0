use axum::Router;
use wsroute::{Connection, Message, RouterExt, WebSockets};

#[derive(Default)]
struct Chat<T> {
    last: Option<T>,
}

#[wsroute::websocket_route("/ws")]
impl<T: Send + 'static> Chat<T> {
    fn message(&mut self, conn: &Connection, msg: Message) {
        let _ = conn.send(msg);
        self.last = None;
    }
}

fn main() {
    let _app: Router = Router::new().websocket::<Chat<u32>>(&WebSockets::default());
}
