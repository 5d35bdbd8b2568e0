use wsroute::{Connection, Message};

#[wsroute::websocket_route("/ws")]
fn message(conn: &Connection, msg: Message) {
    let _ = conn.send(msg);
}

fn main() {}
