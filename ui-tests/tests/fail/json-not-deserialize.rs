use axum::Router;
use wsroute::{Connection, Json, RouterExt, WebSockets};

#[derive(Default)]
struct Chat;

struct Say {
    text: String,
}

#[wsroute::websocket_route("/ws")]
impl Chat {
    fn message(&mut self, conn: &Connection, Json(say): Json<Say>) {
        let _ = conn.send_text(say.text);
    }
}

fn main() {
    let _app: Router = Router::new().websocket::<Chat>(&WebSockets::default());
}
