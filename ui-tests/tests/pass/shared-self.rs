//! Events taking `&self`, sync and async: the state is shared, so it is
//! `Sync`; counters use atomics.
#![deny(warnings)]

use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use wsroute::{CloseReason, Connection, Error, Message, RouterExt, WebSockets};

#[derive(Default)]
struct Counter {
    messages: AtomicUsize,
}

#[wsroute::websocket_route("/count")]
impl Counter {
    async fn open(&self, conn: &Connection) {
        let _ = conn.send_text("counting");
    }

    fn message(&self, conn: &Connection, _msg: Message) {
        let n = self.messages.fetch_add(1, Ordering::Relaxed) + 1;
        let _ = conn.send_text(n.to_string());
    }

    async fn error(&self, _conn: &Connection, err: &Error) {
        eprintln!("{err}");
    }

    fn close(&self, _conn: &Connection, reason: CloseReason) {
        println!(
            "{} messages: {reason}",
            self.messages.load(Ordering::Relaxed)
        );
    }
}

fn main() {
    let sockets = WebSockets::default();
    let _app: Router = Router::new().websocket::<Counter>(&sockets);
}
