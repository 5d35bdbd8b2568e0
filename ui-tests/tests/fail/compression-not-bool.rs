use wsroute::{Connection, Message};

#[derive(Default)]
struct Echo;

#[wsroute::websocket_route("/ws", compression = "off")]
impl Echo {
    async fn message(&mut self, conn: &Connection, msg: Message) {
        let _ = conn.send(msg);
    }
}

fn main() {}
