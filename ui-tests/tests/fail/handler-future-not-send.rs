use std::sync::Mutex;

use wsroute::{Connection, Message};

#[derive(Default)]
struct Chat {
    seen: Mutex<u32>,
}

#[wsroute::websocket_route("/ws")]
impl Chat {
    async fn message(&mut self, conn: &Connection, msg: Message) {
        let mut seen = self.seen.lock().unwrap();
        *seen += 1;
        let _ = conn.send_when_ready(msg).await;
    }
}

fn main() {}
