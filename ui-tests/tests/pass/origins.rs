//! `origins = [...]` becomes the route's `ORIGINS`; without it, `None`.
#![deny(warnings)]

use axum::Router;
use wsroute::{Route, RouterExt, WebSockets};

#[derive(Default)]
struct Listed;

#[wsroute::websocket_route("/listed", origins = ["https://a.example", "http://localhost:3000"])]
impl Listed {}

#[derive(Default)]
struct Global;

#[wsroute::websocket_route("/default", max_payload = 1024)]
impl Global {}

fn main() {
    assert_eq!(
        <Listed as Route>::ORIGINS,
        Some(&["https://a.example", "http://localhost:3000"][..])
    );
    assert_eq!(<Global as Route>::ORIGINS, None);
    let sockets = WebSockets::default();
    let _app: Router = Router::new()
        .websocket::<Listed>(&sockets)
        .websocket::<Global>(&sockets);
}
