use axum::Router;
use axum::extract::State;
use wsroute::{RouterExt, WebSockets};

#[derive(Clone)]
struct App;

#[derive(Clone)]
struct Db;

struct Chat {
    db: Db,
}

#[wsroute::websocket_route("/ws", state = App)]
impl Chat {
    fn accept(State(db): State<Db>) -> Option<Self> {
        Some(Chat { db })
    }
}

fn main() {
    let _app: Router = Router::new()
        .websocket::<Chat>(&WebSockets::default())
        .with_state(App);
    let _ = |chat: Chat| chat.db;
}
