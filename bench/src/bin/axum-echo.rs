//! Echo server on axum's built-in websockets (`axum::extract::ws`, which is
//! tokio-tungstenite), written as axum's own examples write it: read
//! messages until the stream ends, so a close frame is answered; echo text
//! as text and binary as binary. Pings are answered by tungstenite.

use std::io;

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use axum::serve::ListenerExt;
use wsroute_bench::server::{self, ServerArgs};

fn main() -> io::Result<()> {
    server::run("axum-echo", |listener, args: ServerArgs| async move {
        let app = Router::new().route("/", get(upgrade));
        let listener = listener.tap_io(move |tcp| server::configure(tcp, &args));
        axum::serve(listener, app).await
    })
}

async fn upgrade(ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(echo)
}

async fn echo(mut socket: WebSocket) {
    while let Some(Ok(msg)) = socket.recv().await {
        match msg {
            Message::Text(_) | Message::Binary(_) => {
                if socket.send(msg).await.is_err() {
                    return;
                }
            }
            // Pongs go out by themselves, and the close is answered by the
            // next `recv`, which then ends the stream.
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) => {}
        }
    }
}
