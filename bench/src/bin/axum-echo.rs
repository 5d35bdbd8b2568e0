//! Echo server on axum's built-in websockets (`axum::extract::ws`, which is
//! tokio-tungstenite), written as axum's own examples write it: read
//! messages until the stream ends, so a close frame is answered; echo text
//! as text and binary as binary. Pings are answered by tungstenite.
//!
//! `--tls`: the same under `axum::serve`, on a [`Listener`] that hands it
//! connections once their TLS handshake is done (axum has no TLS of its
//! own; axum-server and the like do this).

use std::io;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use axum::serve::{Listener, ListenerExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use wsroute_bench::server::{self, ServerArgs};
use wsroute_bench::tls;

fn main() -> io::Result<()> {
    server::run("axum-echo", |listener, args: ServerArgs| async move {
        let app = Router::new().route("/", get(upgrade));
        if args.tls {
            return axum::serve(TlsListener::start(listener, args)?, app).await;
        }
        let listener = listener.tap_io(move |tcp| server::configure(tcp, &args));
        axum::serve(listener, app).await
    })
}

/// Connections whose TLS handshake is done, each handshake on a task of
/// its own so that a slow one holds up no other.
struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    fn start(listener: TcpListener, args: ServerArgs) -> io::Result<Self> {
        let local = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(tls::server_config());
        let (sender, ready) = mpsc::channel(128);
        tokio::spawn(async move {
            while let Ok((tcp, addr)) = listener.accept().await {
                server::configure(&tcp, &args);
                let (acceptor, sender) = (acceptor.clone(), sender.clone());
                tokio::spawn(async move {
                    if let Ok(stream) = acceptor.accept(tcp).await {
                        let _ = sender.send((stream, addr)).await;
                    }
                });
            }
        });
        Ok(Self { ready, local })
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(next) => next,
            // The accept loop ended (the listener failed): serve what is
            // open and take no more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
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
