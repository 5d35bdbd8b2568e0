use axum::extract::State;

struct App;

struct Chat;

#[wsroute::websocket_route("/ws")]
impl Chat {
    fn accept(State(_app): State<App>) -> Option<Self> {
        Some(Chat)
    }
}

fn main() {}
