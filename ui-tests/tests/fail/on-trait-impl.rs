use wsroute::__private::{Parts, Response};
use wsroute::{RouterExt, WebSockets};

struct Chat;

#[wsroute::websocket_route("/ws")]
impl wsroute::Route for Chat {
    const PATH: &'static str = "/ws";

    async fn accept(_: &mut Parts, _: &()) -> Result<Self, Response> {
        Ok(Chat)
    }
}

fn main() {
    let _app: axum::Router = axum::Router::new().websocket::<Chat>(&WebSockets::default());
}
