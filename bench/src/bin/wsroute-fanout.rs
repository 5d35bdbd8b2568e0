//! Fan-out on wsroute's topics: the server the fan-out benchmark measures
//! (`fanout-runner`, see `bench/README.md`).
//!
//! `GET /sub` upgrades a subscriber, which subscribes to topic `t` in
//! `open`; `GET /pub` upgrades a publisher, whose every message is
//! `conn.publish("t", msg)`: encoded once, queued on every subscriber.

use std::io;

use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use wsroute::{Config, Connection, Message, Route, RouterExt, WebSockets};
use wsroute_bench::server::{self, ServerArgs};

const TOPIC: &str = "t";

/// One connection, by the path it upgraded on.
enum Fanout {
    Subscriber,
    Publisher,
}

impl Route for Fanout {
    const PATH: &'static str = "/{role}";

    async fn accept(request: &mut Parts, _state: &()) -> Result<Self, Response> {
        match request.uri.path() {
            "/sub" => Ok(Fanout::Subscriber),
            "/pub" => Ok(Fanout::Publisher),
            _ => Err((StatusCode::NOT_FOUND, "upgrade on /sub or /pub").into_response()),
        }
    }

    async fn open(&mut self, conn: &Connection) {
        if let Fanout::Subscriber = self {
            // Fails only for a connection already closing.
            let _ = conn.subscribe(TOPIC);
        }
    }

    async fn message(&mut self, conn: &Connection, msg: Message) {
        if let Fanout::Publisher = self {
            // The load generator counts what every subscriber received;
            // the report's `full` and `closed` would only repeat that.
            let _ = conn.publish(TOPIC, msg);
        }
    }
}

fn main() -> io::Result<()> {
    server::run("wsroute-fanout", |listener, args: ServerArgs| async move {
        // wsroute::serve sets TCP_NODELAY itself; the runtime flavor applies.
        let _ = args;
        let sockets = WebSockets::new(Config::default().compression(false));
        let app = axum::Router::new().websocket::<Fanout>(&sockets);
        wsroute::serve(listener, app, &sockets, std::future::pending()).await
    })
}
