use axum::Router;
use wsroute::{RouterExt, WebSockets};

struct Chat;

#[wsroute::websocket_route("/ws")]
impl Chat {
    fn accept() -> u32 {
        42
    }
}

fn main() {
    let _app: Router = Router::new().websocket::<Chat>(&WebSockets::default());
}
