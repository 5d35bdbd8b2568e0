//! An impl block with no events at all: a route that accepts and ignores.
#![deny(warnings)]

use axum::Router;
use wsroute::{Route, RouterExt, WebSockets};

#[derive(Default)]
struct Sink;

#[wsroute::websocket_route("/sink")]
impl Sink {}

fn main() {
    assert_eq!(<Sink as Route>::PATH, "/sink");
    assert_eq!(<Sink as Route>::MAX_PAYLOAD, None);
    let sockets = WebSockets::default();
    let _app: Router = Router::new().websocket::<Sink>(&sockets);
}
