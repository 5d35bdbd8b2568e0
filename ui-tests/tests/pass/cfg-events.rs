//! Events under `#[cfg]`: one compiled out (`cfg(any())` is always off) is
//! as if absent, the trait's default runs; one compiled in (`cfg(all())`
//! is always on) is forwarded; of two alternatives, the one compiled in.
#![deny(warnings)]

use axum::Router;
use wsroute::{CloseReason, Connection, Json, Request, RouterExt, WebSockets};

/// Every event compiled out: upgraded with `Self::default()`.
#[derive(Default)]
struct Quiet;

#[wsroute::websocket_route("/quiet")]
impl Quiet {
    #[cfg(any())]
    async fn accept(req: Request) -> Option<Self> {
        req.query_param("name").map(|_| Quiet)
    }

    #[cfg_attr(all(), cfg(any()))]
    fn open(&mut self, _conn: &Connection) {}

    #[cfg(any())]
    async fn error(&mut self, _conn: &Connection, err: &wsroute::Error) {
        eprintln!("{err}");
    }

    #[cfg(any())]
    fn close(&mut self, _conn: &Connection, _reason: CloseReason) {}
}

#[derive(serde::Deserialize)]
struct Say {
    text: String,
}

struct Alternatives {
    name: String,
}

#[wsroute::websocket_route("/alternatives")]
impl Alternatives {
    #[cfg(any())]
    fn accept() -> Option<Self> {
        None
    }

    #[cfg(all())]
    fn accept(req: Request) -> Option<Self> {
        let name = req.query_param("name")?.into_owned();
        Some(Alternatives { name })
    }

    // Taking another type than the one compiled in: forwarding to it
    // would not compile.
    #[cfg(any())]
    fn message(&mut self, conn: &Connection, msg: wsroute::Message) {
        let _ = conn.send(msg);
    }

    #[cfg(all())]
    async fn message(&mut self, conn: &Connection, Json(say): Json<Say>) {
        let _ = conn.send_text(format!("{}: {}", self.name, say.text));
    }

    #[cfg(all())]
    fn close(&mut self, _conn: &Connection, reason: CloseReason) {
        println!("{} left: {reason}", self.name);
    }
}

fn main() {
    let sockets = WebSockets::default();
    let _app: Router = Router::new()
        .websocket::<Quiet>(&sockets)
        .websocket::<Alternatives>(&sockets);
}
