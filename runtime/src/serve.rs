//! Serving a router over HTTP/1.1 so that upgraded connections are plain
//! TCP streams again.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;

/// Serves `app` on `listener` until `shutdown` completes — `axum::serve`
/// for WebSocket servers.
///
/// `axum::serve` works with wsroute too, but it speaks HTTP/2 as well and
/// so keeps every connection wrapped in a private type of hyper's; an
/// upgraded WebSocket then has to be read through that wrapper and a
/// buffer of its own. This function speaks HTTP/1.1 only (WebSockets need
/// no more), so each upgraded connection is read straight from its
/// `TcpStream`: no read buffer while idle, fewer copies, less CPU per
/// message. It also sets `TCP_NODELAY` and provides
/// `ConnectInfo<SocketAddr>` to extractors and [`Connection::remote_addr`](crate::Connection::remote_addr)
/// (crate::Connection::remote_addr).
///
/// On `shutdown` it stops accepting, lets requests in progress finish, and
/// returns. Pass [`WebSockets::shutdown_on`](crate::WebSockets::shutdown_on)
/// so WebSocket connections are closed (1001) first.
///
/// ```no_run
/// # async fn run(app: axum::Router, sockets: wsroute::WebSockets) -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// wsroute::serve(listener, app, sockets.shutdown_on(async {
///     let _ = tokio::signal::ctrl_c().await;
/// }))
/// .await
/// # }
/// ```
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let stopping = CancellationToken::new();
    let connections = TaskTracker::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (tcp, addr) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, or a connection reset before it
                // was accepted: neither ends the server.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let stopping = stopping.clone();
        connections.spawn(async move {
            let service =
                hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(addr));
                    let mut app = app.clone();
                    // A Router is always ready: `call` without `poll_ready`.
                    app.call(request.map(Body::new))
                });
            let connection = http1::Builder::new()
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
        });
    }
    stopping.cancel();
    connections.close();
    connections.wait().await;
    Ok(())
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
        let server = tokio::spawn(serve(listener, app, async {
            let _ = stopped.await;
        }));
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
