use axum::Router;
use wsroute::{Connection, Message, RouterExt, WebSockets};

#[derive(Default)]
struct Chat;

#[wsroute::websocket_route("/ws")]
impl Chat {
    fn message(&mut self, conn: &Connection, msg: Message) {
        let _ = conn.send_text(self.shout(msg.as_text().unwrap_or_default()));
    }

    fn shout(&self, text: &str) -> String {
        text.to_uppercase()
    }
}

fn main() {
    let _app: Router = Router::new().websocket::<Chat>(&WebSockets::default());
}
