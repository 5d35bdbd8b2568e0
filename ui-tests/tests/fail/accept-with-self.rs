use axum::Router;
use wsroute::{Request, RouterExt, WebSockets};

#[derive(Default)]
struct Chat;

#[wsroute::websocket_route("/ws")]
impl Chat {
    fn accept(&self, req: Request) -> bool {
        req.header("x-token").is_some()
    }
}

fn main() {
    let _app: Router = Router::new().websocket::<Chat>(&WebSockets::default());
}
