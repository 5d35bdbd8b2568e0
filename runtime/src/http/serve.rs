//! Serving a router over HTTP/1.1 so that upgraded connections are plain
//! TCP streams again.
//!
//! Entry point: [`serve`]. The accept loop's error handling lives in
//! [`AcceptErrors`]; each connection runs in [`serve_connection`].

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;

use crate::api::websockets::WebSockets;

/// How long the accept loop pauses after a failed accept: out of file
/// descriptors, retrying at once would spin a core at 100 %.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// Serves `app` on `listener` until `signal` completes — `axum::serve`
/// for WebSocket servers, with `sockets`' [`Config`](crate::Config)
/// applied to the HTTP side too.
///
/// `axum::serve` works with wsroute too, but it speaks HTTP/2 as well and
/// so keeps every connection wrapped in a private type of hyper's; an
/// upgraded WebSocket then has to be read through that wrapper and a
/// buffer of its own. This function speaks HTTP/1.1 only (WebSockets need
/// no more), so each upgraded connection is read straight from its
/// `TcpStream`: no read buffer while idle, fewer copies, less CPU per
/// message. It also sets `TCP_NODELAY` and provides
/// `ConnectInfo<SocketAddr>` to extractors and
/// [`Connection::remote_addr`](crate::Connection::remote_addr).
///
/// A client must send a complete request head within
/// [`handshake_timeout`](crate::Config::handshake_timeout) of connecting
/// (and of its previous request, on a keep-alive connection), or its TCP
/// connection is closed.
///
/// When `signal` completes it stops accepting, closes every WebSocket with
/// 1001 ([`WebSockets::shutdown`]), lets HTTP requests in progress finish,
/// and returns. HTTP connections get at most
/// [`close_timeout`](crate::Config::close_timeout) to do so; past it they
/// are dropped, so a stalled client cannot keep the process alive.
///
/// ```no_run
/// # async fn run(app: axum::Router, sockets: wsroute::WebSockets) -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// wsroute::serve(listener, app, &sockets, async {
///     let _ = tokio::signal::ctrl_c().await;
/// })
/// .await
/// # }
/// ```
pub async fn serve(
    listener: TcpListener,
    app: Router,
    sockets: &WebSockets,
    signal: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let config = sockets.config();
    let handshake_timeout = config.get_handshake_timeout();
    let close_timeout = config.get_close_timeout();
    // `stopping` asks connections to finish their request and close;
    // `dropping` ends those that did not within `close_timeout`.
    let stopping = CancellationToken::new();
    let dropping = CancellationToken::new();
    let connections = TaskTracker::new();
    let mut errors = AcceptErrors::default();
    let mut signal = pin!(signal);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut signal => break,
        };
        let (tcp, addr) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, or a connection reset before it
                // was accepted: neither ends the server.
                errors.failed(&e);
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        errors.succeeded();
        let _ = tcp.set_nodelay(true);
        let connection =
            serve_connection(tcp, addr, app.clone(), handshake_timeout, stopping.clone());
        let dropping = dropping.clone();
        connections.spawn(async move {
            tokio::select! {
                () = connection => {}
                () = dropping.cancelled() => {}
            }
        });
    }
    drop(listener);
    sockets.shutdown().await;
    stopping.cancel();
    connections.close();
    if tokio::time::timeout(close_timeout, connections.wait())
        .await
        .is_err()
    {
        tracing::debug!(
            connections = connections.len(),
            "dropping HTTP connections still open after close_timeout"
        );
        dropping.cancel();
        connections.wait().await;
    }
    Ok(())
}

/// One HTTP/1.1 connection, until it ends, is upgraded, or `stopping`
/// fires and its request in progress is answered.
async fn serve_connection(
    tcp: TcpStream,
    addr: SocketAddr,
    app: Router,
    handshake_timeout: Duration,
    stopping: CancellationToken,
) {
    let service = hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(addr));
        let mut app = app.clone();
        // A Router is always ready: `call` without `poll_ready`.
        app.call(request.map(Body::new))
    });
    // hyper's header read timer runs whenever it waits for a head: from
    // the first byte it waits for, and again between keep-alive requests,
    // so a client that sends nothing, or half a head, is cut off too.
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(handshake_timeout)
        .serve_connection(TokioIo::new(tcp), service)
        .with_upgrades();
    let mut connection = pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = stopping.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, %addr, "HTTP connection ended with an error");
    }
}

/// Logs failed accepts once per episode rather than once per attempt: out
/// of file descriptors, the loop fails 50 times a second until a
/// connection closes, and a line each time would flood the log.
#[derive(Debug, Default)]
struct AcceptErrors {
    /// Failed accepts since the last one that worked.
    failed: u64,
}

impl AcceptErrors {
    fn failed(&mut self, error: &io::Error) {
        if self.failed == 0 {
            tracing::warn!(
                %error,
                "accept failed; retrying every {} ms until it works",
                ACCEPT_BACKOFF.as_millis()
            );
        }
        self.failed += 1;
    }

    fn succeeded(&mut self) {
        if self.failed > 0 {
            tracing::warn!(failed = self.failed, "accepting connections again");
            self.failed = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn serves_http_and_stops_on_shutdown() {
        let app = Router::new().route(
            "/",
            axum::routing::get(|ConnectInfo(addr): ConnectInfo<SocketAddr>| async move {
                addr.ip().to_string()
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let sockets = WebSockets::default();
            serve(listener, app, &sockets, async {
                let _ = stopped.await;
            })
            .await
        });
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        tcp.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with("127.0.0.1"), "{response}");
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}
