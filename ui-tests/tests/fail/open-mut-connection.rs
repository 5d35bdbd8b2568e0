use wsroute::Connection;

#[derive(Default)]
struct Chat;

#[wsroute::websocket_route("/ws")]
impl Chat {
    fn open(&mut self, conn: &mut Connection) {
        let _ = conn.send_text("hello");
    }
}

fn main() {}
