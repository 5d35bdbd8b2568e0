use axum::Router;
use wsroute::{Connection, Request, RouterExt, WebSockets};

struct Chat {
    name: String,
}

#[wsroute::websocket_route("/ws")]
impl Chat {
    fn accept(req: Request) -> bool {
        req.header("x-token").is_some()
    }

    fn open(&mut self, conn: &Connection) {
        let _ = conn.send_text(format!("hello {}", self.name));
    }
}

fn main() {
    let _app: Router = Router::new().websocket::<Chat>(&WebSockets::default());
}
