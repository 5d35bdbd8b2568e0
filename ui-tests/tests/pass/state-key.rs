//! `state = App`: the route is a `Route<App>`, mounted on a `Router<App>`,
//! and `accept` takes sub-states of `App` (`FromRef<App>`) as axum
//! handlers do, besides `App` itself.
#![deny(warnings)]

use axum::Router;
use axum::extract::{FromRef, Query, State};
use wsroute::{Connection, Route, RouterExt, WebSockets};

#[derive(Clone)]
struct App {
    db: Db,
    limits: Limits,
}

#[derive(Clone)]
struct Db {
    url: String,
}

#[derive(Clone)]
struct Limits {
    rooms: usize,
}

impl FromRef<App> for Db {
    fn from_ref(app: &App) -> Db {
        app.db.clone()
    }
}

impl FromRef<App> for Limits {
    fn from_ref(app: &App) -> Limits {
        app.limits.clone()
    }
}

#[derive(serde::Deserialize)]
struct Params {
    room: usize,
}

struct Chat {
    db: Db,
}

#[wsroute::websocket_route("/chat", state = App)]
impl Chat {
    async fn accept(
        State(db): State<Db>,
        Query(params): Query<Params>,
        State(limits): State<Limits>,
        State(app): State<App>,
    ) -> Option<Self> {
        let _ = app.db.url;
        (params.room < limits.rooms).then_some(Chat { db })
    }

    fn open(&mut self, conn: &Connection) {
        let _ = conn.send_text(self.db.url.clone());
    }
}

fn assert_route<R: Route<App>>() {}

fn main() {
    assert_route::<Chat>();
    let app = App {
        db: Db {
            url: "postgres://localhost".to_owned(),
        },
        limits: Limits { rooms: 10 },
    };
    let _app: Router = Router::new()
        .websocket::<Chat>(&WebSockets::default())
        .with_state(app);
}
