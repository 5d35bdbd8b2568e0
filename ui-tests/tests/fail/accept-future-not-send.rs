use std::rc::Rc;

use wsroute::Request;

struct Chat;

#[wsroute::websocket_route("/ws")]
impl Chat {
    async fn accept(req: Request) -> Option<Self> {
        let token = Rc::new(req.header("x-token").is_some());
        std::future::ready(()).await;
        token.then_some(Chat)
    }
}

fn main() {}
