use axum::Router;
use wsroute::{Request, RouterExt, WebSockets};

struct Chat;

#[wsroute::websocket_route("/ws")]
impl Chat {
    async fn accept(req: Request) -> Result<Self, ()> {
        req.query_param("token").map(|_| Chat).ok_or(())
    }
}

fn main() {
    let _app: Router = Router::new().websocket::<Chat>(&WebSockets::default());
}
