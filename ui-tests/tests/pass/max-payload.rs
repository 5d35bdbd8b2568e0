//! `max_payload` as a number, and as `u64::MAX` (no limit for the route).
#![deny(warnings)]

use axum::Router;
use wsroute::{Route, RouterExt, WebSockets};

#[derive(Default)]
struct Small;

#[wsroute::websocket_route("/small", max_payload = 65536)]
impl Small {}

#[derive(Default)]
struct Unlimited;

#[wsroute::websocket_route("/unlimited", max_payload = u64::MAX)]
impl Unlimited {}

#[derive(Default)]
struct Spelt;

#[wsroute::websocket_route("/spelt", max_payload = 18446744073709551615)]
impl Spelt {}

fn main() {
    assert_eq!(<Small as Route>::MAX_PAYLOAD, Some(65536));
    assert_eq!(<Unlimited as Route>::MAX_PAYLOAD, Some(u64::MAX));
    assert_eq!(<Spelt as Route>::MAX_PAYLOAD, Some(u64::MAX));
    let sockets = WebSockets::default();
    let _app: Router = Router::new()
        .websocket::<Small>(&sockets)
        .websocket::<Unlimited>(&sockets)
        .websocket::<Spelt>(&sockets);
}
