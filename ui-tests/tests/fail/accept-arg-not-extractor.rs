use axum::Router;
use wsroute::{RouterExt, WebSockets};

struct Chat;

#[wsroute::websocket_route("/ws")]
impl Chat {
    fn accept(id: u32) -> Option<Self> {
        (id > 0).then_some(Chat)
    }
}

fn main() {
    let _app: Router = Router::new().websocket::<Chat>(&WebSockets::default());
}
