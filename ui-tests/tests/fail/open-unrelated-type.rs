use wsroute::Request;

#[derive(Default)]
struct Chat;

#[wsroute::websocket_route("/ws")]
impl Chat {
    fn open(&mut self, req: &Request) {
        let _ = req.uri();
    }
}

fn main() {}
