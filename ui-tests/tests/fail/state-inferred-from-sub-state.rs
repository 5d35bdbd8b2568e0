use axum::Router;
use axum::extract::{FromRef, State};
use wsroute::{RouterExt, WebSockets};

#[derive(Clone)]
struct App {
    db: Db,
}

#[derive(Clone)]
struct Db;

impl FromRef<App> for Db {
    fn from_ref(app: &App) -> Db {
        app.db.clone()
    }
}

struct Chat;

// Without `state = App`, `State<App>` makes `Chat` a `Route<App>`.
#[wsroute::websocket_route("/chat")]
impl Chat {
    fn accept(State(_app): State<App>) -> Option<Self> {
        Some(Chat)
    }
}

struct Feed;

// Likewise, `State<Db>` makes `Feed` a `Route<Db>` only.
#[wsroute::websocket_route("/feed")]
impl Feed {
    fn accept(State(_db): State<Db>) -> Option<Self> {
        Some(Feed)
    }
}

fn main() {
    let sockets = WebSockets::default();
    let _app: Router = Router::new()
        .websocket::<Chat>(&sockets)
        .websocket::<Feed>(&sockets)
        .with_state(App { db: Db });
}
