//! `accept` taking `State<App>`: the route is a `Route<App>`, mounted on a
//! `Router<App>`, and the other extractors work with that state.
#![deny(warnings)]

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::HeaderMap;
use wsroute::{Connection, Request, Route, RouterExt, WebSockets};

#[derive(Clone)]
struct App {
    motd: String,
}

#[derive(serde::Deserialize)]
struct Params {
    name: String,
}

struct Chat {
    motd: String,
    name: String,
}

#[wsroute::websocket_route("/chat")]
impl Chat {
    async fn accept(
        State(app): State<App>,
        Query(params): Query<Params>,
        headers: HeaderMap,
        req: Request,
        ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ) -> Option<Self> {
        let _ = (headers.len(), req.uri(), addr);
        Some(Chat {
            motd: app.motd,
            name: params.name,
        })
    }

    fn open(&mut self, conn: &Connection) {
        let _ = conn.send_text(format!("{}, {}", self.motd, self.name));
    }
}

fn assert_route<R: Route<App>>() {}

fn main() {
    assert_route::<Chat>();
    let sockets = WebSockets::default();
    let _app: Router = Router::new().websocket::<Chat>(&sockets).with_state(App {
        motd: "hi".to_owned(),
    });
}
