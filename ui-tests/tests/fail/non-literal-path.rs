use axum::Router;
use wsroute::{Connection, Message, RouterExt, WebSockets};

const PATH: &str = "/ws";

#[derive(Default)]
struct Echo;

#[wsroute::websocket_route(PATH)]
impl Echo {
    fn message(&mut self, conn: &Connection, msg: Message) {
        let _ = conn.send(msg);
    }
}

fn main() {
    println!("serving {PATH}");
    let _app: Router = Router::new().websocket::<Echo>(&WebSockets::default());
}
