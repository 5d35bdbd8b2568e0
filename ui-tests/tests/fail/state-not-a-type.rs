#[derive(Clone)]
struct App;

#[derive(Default)]
struct Chat;

#[wsroute::websocket_route("/ws", state = "App")]
impl Chat {}

fn main() {}
