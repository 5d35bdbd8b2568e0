use std::sync::{Arc, Mutex};

use wsroute::{Connection, Error, Json};

#[derive(Default)]
struct Chat {
    errors: Arc<Mutex<Vec<String>>>,
}

#[wsroute::websocket_route("/ws")]
impl Chat {
    // A message that is not JSON goes to `error`: its future is awaited
    // here, yet reported once, on `error`.
    fn message(&mut self, _conn: &Connection, Json(_text): Json<String>) {}

    async fn error(&mut self, conn: &Connection, err: &Error) {
        let mut errors = self.errors.lock().unwrap();
        errors.push(err.to_string());
        let _ = conn.ready().await;
    }
}

fn main() {}
