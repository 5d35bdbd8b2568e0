use axum::Router;
use wsroute::{CloseReason, RouterExt, WebSockets};

#[derive(Default)]
struct Chat;

#[wsroute::websocket_route("/ws")]
impl Chat {
    fn close(&mut self, reason: CloseReason) {
        eprintln!("{reason}");
    }
}

fn main() {
    let _app: Router = Router::new().websocket::<Chat>(&WebSockets::default());
}
