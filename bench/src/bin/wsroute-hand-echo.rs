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

/// The default config, with permessage-deflate changed by the
/// environment, so one benchmark run can put other compression settings
/// beside `examples/echo`'s defaults: `WSROUTE_DEFLATE_LEVEL` (0–9),
/// `WSROUTE_DEFLATE_TAKEOVER=1` (context takeover both ways),
/// `WSROUTE_DEFLATE_MIN_SIZE` (bytes), `WSROUTE_DEFLATE=0` (off).
fn config_from_env() -> Config {
    let var = |name: &str| std::env::var(name).ok();
    let number = |name: &str| {
        var(name).map(|v| {
            v.parse::<u64>()
                .unwrap_or_else(|_| panic!("{name} is not a number: {v}"))
        })
    };
    if var("WSROUTE_DEFLATE").as_deref() == Some("0") {
        return Config::default().compression(false);
    }
    let mut deflate = wsroute::proto::DeflateConfig::default();
    if let Some(level) = number("WSROUTE_DEFLATE_LEVEL") {
        deflate.level = level.min(9) as u32;
    }
    if let Some(min) = number("WSROUTE_DEFLATE_MIN_SIZE") {
        deflate.min_size = min as usize;
    }
    if var("WSROUTE_DEFLATE_TAKEOVER").as_deref() == Some("1") {
        deflate.server_context_takeover = true;
        deflate.client_context_takeover = true;
    }
    Config::default().deflate(deflate)
}

fn main() -> io::Result<()> {
    server::run(
        "wsroute-hand-echo",
        |listener, args: ServerArgs| async move {
            // wsroute::serve sets TCP_NODELAY itself, so `--no-nodelay`
            // does not apply; the runtime flavor and `--tls` do.
            let sockets = WebSockets::new(config_from_env());
            let app = axum::Router::new().websocket::<Echo>(&sockets);
            let app = app.route("/stats", stats_route(sockets.clone()));
            let forever = std::future::pending();
            if args.tls {
                let tls = wsroute_bench::tls::server_config();
                wsroute::serve_tls(listener, tls, app, &sockets, forever).await
            } else {
                wsroute::serve(listener, app, &sockets, forever).await
            }
        },
    )
}
