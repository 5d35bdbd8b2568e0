//! Echo server: every text message comes back as text, every binary
//! message as binary. The target of the Autobahn conformance suite.
//!
//! ```sh
//! cargo run --release -p wsroute-examples --example echo -- --addr 127.0.0.1:9001
//! RUST_LOG=wsroute=debug cargo run -p wsroute-examples --example echo   # a line per open and close
//! ```

use wsroute::{Config, Connection, Message, RouterExt, WebSockets, websocket_route};

/// No per-connection state; `Default` stands in for `accept`.
#[derive(Default)]
struct Echo;

// Autobahn sends messages of up to 16 MiB: the default limit (64 MiB)
// leaves room.
#[websocket_route("/")]
impl Echo {
    fn message(&mut self, conn: &Connection, msg: Message) {
        // The only possible failure is a connection that is closing.
        let _ = conn.send(msg);
    }
}

// One thread: the benchmark pins this server to one core, where a
// multi-thread runtime gets a single worker anyway and serves a thousand
// connections less fairly (see bench/README.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    // Warnings only unless RUST_LOG says otherwise: at that level the
    // connection span is disabled, so the benchmarked echo path pays
    // nothing for it.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let addr = wsroute_examples::addr_from_args("127.0.0.1:9001");
    let sockets = WebSockets::new(Config::default());
    let app = axum::Router::new().websocket::<Echo>(&sockets);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("echo server listening on ws://{}", listener.local_addr()?);
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    wsroute::serve(listener, app, &sockets, ctrl_c).await
}
