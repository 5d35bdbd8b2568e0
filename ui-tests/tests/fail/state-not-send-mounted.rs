use axum::Router;
use wsroute::{Connection, Message, RouterExt, WebSockets};

#[derive(Default)]
struct Chat {
    seen: std::rc::Rc<std::cell::Cell<u32>>,
}

#[wsroute::websocket_route("/ws")]
impl Chat {
    fn message(&mut self, _conn: &Connection, _msg: Message) {
        self.seen.set(self.seen.get() + 1);
    }
}

fn main() {
    let _app: Router = Router::new().websocket::<Chat>(&WebSockets::default());
}
