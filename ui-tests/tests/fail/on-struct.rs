#[wsroute::websocket_route("/ws")]
struct Chat;

fn main() {
    let _ = Chat;
}
