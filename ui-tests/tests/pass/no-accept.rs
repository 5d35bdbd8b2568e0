//! Without `accept`, every upgrade is accepted with `Default::default()`;
//! without `open`, `error` and `close`, the runtime's defaults apply.
#![deny(warnings)]

use axum::Router;
use wsroute::{Connection, Message, RouterExt, WebSockets};

#[derive(Default)]
struct Echo;

#[wsroute::websocket_route("/echo")]
impl Echo {
    async fn message(&mut self, conn: &Connection, msg: Message) {
        let _ = conn.send(msg);
    }
}

/// Helpers live in their own impl block.
impl Echo {
    fn unused_by_the_macro(&self) -> &'static str {
        "helper"
    }
}

fn main() {
    let sockets = WebSockets::default();
    let _app: Router = Router::new().websocket::<Echo>(&sockets);
    assert_eq!(Echo.unused_by_the_macro(), "helper");
}
