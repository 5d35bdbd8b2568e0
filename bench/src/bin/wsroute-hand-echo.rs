//! Echo server on wsroute with a hand-written `impl wsroute::Route` — the
//! shape `examples/examples/echo.rs` had before the route macro — so the
//! benchmark can show that the macro-built `examples/echo` costs nothing
//! more.

use std::io;

use axum::http::request::Parts;
use axum::response::Response;
use wsroute::{Config, Connection, Message, Route, RouterExt, WebSockets};
use wsroute_bench::server::{self, ServerArgs};

struct Echo;

impl Route for Echo {
    const PATH: &'static str = "/";

    async fn accept(_request: &mut Parts, _state: &()) -> Result<Self, Response> {
        Ok(Echo)
    }

    async fn message(&mut self, conn: &Connection, msg: Message) {
        // The only possible failure is a connection that is closing.
        let _ = conn.send(msg);
    }
}

/// `GET /stats`: what the soak test reads before and after its run to see
/// that nothing is left behind — open connections and live tokio tasks.
fn stats_route(sockets: WebSockets) -> axum::routing::MethodRouter {
    axum::routing::get(move || {
        let sockets = sockets.clone();
        async move {
            let tasks = tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks();
            let body = serde_json::json!({
                "open_connections": sockets.open_connections(),
                "alive_tasks": tasks,
            });
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
        }
    })
}

fn main() -> io::Result<()> {
    server::run(
        "wsroute-hand-echo",
        |listener, args: ServerArgs| async move {
            // wsroute::serve sets TCP_NODELAY itself, so `--no-nodelay`
            // does not apply; the runtime flavor does.
            let _ = args;
            let sockets = WebSockets::new(Config::default());
            let app = axum::Router::new().websocket::<Echo>(&sockets);
            let app = app.route("/stats", stats_route(sockets.clone()));
            wsroute::serve(listener, app, &sockets, std::future::pending()).await
        },
    )
}
