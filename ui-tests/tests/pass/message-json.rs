//! `message` taking `Json<T>`; a message that does not decode goes to
//! `error`.
#![deny(warnings)]

use axum::Router;
use wsroute::{Connection, Error, Json, RouterExt, WebSockets};

#[derive(serde::Deserialize)]
struct Say {
    text: String,
}

#[derive(Default)]
struct Chat {
    bad_messages: usize,
}

#[wsroute::websocket_route("/chat")]
impl Chat {
    async fn message(&mut self, conn: &Connection, Json(say): Json<Say>) {
        let _ = conn.send_text(say.text);
    }

    fn error(&mut self, _conn: &Connection, err: &Error) {
        self.bad_messages += 1;
        eprintln!("{err}");
    }
}

fn main() {
    let sockets = WebSockets::default();
    let _app: Router = Router::new().websocket::<Chat>(&sockets);
}
