//! Serving a router over HTTP/1.1 and HTTP/2 so that connections upgraded
//! over HTTP/1.1 are plain TCP streams again.
//!
//! Entry point: [`serve`]. The accept loop is [`accept_loop`] (shared with
//! TLS), its error handling [`AcceptErrors`]; each connection runs in
//! [`serve_connection`].

use std::future::{Future, pending};
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;

use super::preface::{Prefixed, http_version};
use crate::api::websockets::WebSockets;

/// How long the accept loop pauses after a failed accept: out of file
/// descriptors, retrying at once would spin a core at 100 %.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// Serves `app` on `listener` until `signal` completes — `axum::serve`
/// for WebSocket servers, with `sockets`' [`Config`](crate::Config)
/// applied to the HTTP side too.
///
/// `axum::serve` works with wsroute too, but it keeps every connection
/// wrapped in a private type of hyper's; an upgraded WebSocket then has to
/// be read through that wrapper and a buffer of its own. This function
/// tells HTTP/1.1 from HTTP/2 itself, from the first bytes, so each
/// WebSocket upgraded over HTTP/1.1 is read straight from its
/// `TcpStream`: no read buffer while idle, fewer copies, less CPU per
/// message. It also sets `TCP_NODELAY` and provides
/// `ConnectInfo<SocketAddr>` to extractors and
/// [`Connection::remote_addr`](crate::Connection::remote_addr).
///
/// A client that opens with the HTTP/2 preface (h2c with prior
/// knowledge) is served HTTP/2 with `SETTINGS_ENABLE_CONNECT_PROTOCOL`,
/// and its WebSockets are extended CONNECT streams (RFC 8441), any number
/// of them on one connection.
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
    accept_loop(
        listener,
        sockets,
        signal,
        move |tcp, addr, handshake_timeout, stopping| {
            let app = app.clone();
            async move {
                match tokio::time::timeout(handshake_timeout, http_version(&tcp)).await {
                    Ok(Ok((version, head))) if head.is_empty() => {
                        serve_connection(tcp, version, addr, app, handshake_timeout, stopping)
                            .await;
                    }
                    // Rare (a client's first bytes were a part of the HTTP/2
                    // preface): boxed, so the usual connection's task keeps
                    // no room for it.
                    Ok(Ok((version, head))) => {
                        let tcp = Prefixed::new(head, tcp);
                        Box::pin(serve_connection(
                            tcp,
                            version,
                            addr,
                            app,
                            handshake_timeout,
                            stopping,
                        ))
                        .await;
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, %addr, "connection failed before a request")
                    }
                    Err(_) => tracing::debug!(%addr, "no request within the handshake timeout"),
                }
            }
        },
    )
    .await
}

/// The accept loop shared by [`serve`] and `serve_tls`: accepts, hands each
/// connection to `connection` in a task of its own (so a slow handshake
/// never holds up the next accept), and shuts down on `signal`.
pub(crate) async fn accept_loop<F, C>(
    listener: TcpListener,
    sockets: &WebSockets,
    signal: impl Future<Output = ()> + Send,
    connection: F,
) -> io::Result<()>
where
    F: Fn(TcpStream, SocketAddr, Duration, CancellationToken) -> C,
    C: Future<Output = ()> + Send + 'static,
{
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
        let connection = connection(tcp, addr, handshake_timeout, stopping.clone());
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

/// Which HTTP a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HttpVersion {
    Http1,
    Http2,
}

/// One HTTP connection, until it ends, is upgraded, or `stopping` fires
/// and its requests in progress are answered.
pub(crate) async fn serve_connection<IO>(
    io: IO,
    version: HttpVersion,
    addr: SocketAddr,
    app: Router,
    handshake_timeout: Duration,
    stopping: CancellationToken,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Only HTTP/2 needs to know whether a request came: hyper's HTTP/1.1
    // header timer covers that case itself.
    let requested = (version == HttpVersion::Http2).then(Arc::<AtomicBool>::default);
    let seen = requested.clone();
    let service = hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
        if let Some(seen) = &seen {
            seen.store(true, Ordering::Relaxed);
        }
        request.extensions_mut().insert(ConnectInfo(addr));
        let mut app = app.clone();
        // A Router is always ready: `call` without `poll_ready`.
        app.call(request.map(Body::new))
    });
    let result = match version {
        HttpVersion::Http1 => {
            // hyper's header read timer runs whenever it waits for a head:
            // from the first byte it waits for, and again between
            // keep-alive requests, so a client that sends nothing, or half
            // a head, is cut off too.
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(handshake_timeout)
                .serve_connection(TokioIo::new(io), service)
                .with_upgrades();
            until_done(connection, &stopping, pending(), |c| c.graceful_shutdown()).await
        }
        HttpVersion::Http2 => {
            // Extended CONNECT (RFC 8441) is what WebSockets over HTTP/2
            // are; hyper announces it only when asked.
            let connection = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .enable_connect_protocol()
                .serve_connection(TokioIo::new(io), service);
            // Boxed: inline, an HTTP/2 connection's state would be room in
            // every HTTP/1.1 connection's task too (3360 bytes, not 1632),
            // held through each handshake and left behind as fragmented
            // heap.
            // hyper has no timer for a client that opens HTTP/2 and sends
            // no request: the handshake timeout applies to it here.
            let idle = no_request_within(handshake_timeout, requested.unwrap_or_default());
            Box::pin(until_done(connection, &stopping, idle, |c| {
                c.graceful_shutdown()
            }))
            .await
        }
    };
    match result {
        Some(Err(e)) => tracing::debug!(error = %e, %addr, "HTTP connection ended with an error"),
        Some(Ok(())) => {}
        None => {
            tracing::debug!(%addr, "HTTP/2 client cut off: no request, nor an answer to GOAWAY")
        }
    }
}

/// Drives an HTTP connection to its end; once `stopping` fires, or
/// `idle` does, asks it to finish what it has in progress
/// (`graceful_shutdown`, which hyper's HTTP/1.1 and HTTP/2 connections
/// each have without a common trait) and waits for that. `None`: `idle`
/// fired and the client did not let the connection end within the same
/// time again (HTTP/2's graceful close waits for the client's answer to a
/// ping, which a client that sends nothing never gives).
async fn until_done<C: Future>(
    connection: C,
    stopping: &CancellationToken,
    idle: impl Future<Output = Duration>,
    graceful_shutdown: fn(Pin<&mut C>),
) -> Option<C::Output> {
    let mut connection = pin!(connection);
    tokio::select! {
        result = connection.as_mut() => Some(result),
        // Bounded by the accept loop's `dropping`.
        () = stopping.cancelled() => {
            graceful_shutdown(connection.as_mut());
            Some(connection.await)
        }
        grace = idle => {
            graceful_shutdown(connection.as_mut());
            tokio::time::timeout(grace, connection).await.ok()
        }
    }
}

/// Ready, with the time the client then has to answer a GOAWAY, once
/// `timeout` has passed with no request on the connection; never, if one
/// came.
async fn no_request_within(timeout: Duration, requested: Arc<AtomicBool>) -> Duration {
    tokio::time::sleep(timeout).await;
    if requested.load(Ordering::Relaxed) {
        pending::<()>().await;
    }
    tracing::debug!("no HTTP/2 request within the handshake timeout");
    timeout
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

    // Every connection's task holds this while its handshake runs, and the
    // heap it leaves behind stays in the server's RSS: with an HTTP/2
    // session inline (3360 bytes) an idle echo connection held 2.8 to
    // 3.6 KiB of RSS, boxed (1632) 2.8 every time.
    #[tokio::test]
    async fn an_http1_connection_holds_no_room_for_an_http2_session() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tcp = TcpStream::connect(addr).await.unwrap();
        let connection = serve_connection(
            tcp,
            HttpVersion::Http1,
            addr,
            Router::new(),
            Duration::from_secs(1),
            CancellationToken::new(),
        );
        let size = std::mem::size_of_val(&connection);
        assert!(size <= 2048, "an HTTP connection's future is {size} bytes");
    }

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

    /// `app` under [`serve`] on a free loopback port, until the test ends.
    async fn serving(app: Router, config: crate::Config) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let sockets = WebSockets::new(config);
            serve(listener, app, &sockets, std::future::pending()).await
        });
        addr
    }

    // The bytes read while telling HTTP/1.1 from a preface are hyper's too.
    #[tokio::test]
    async fn a_request_whose_first_byte_came_alone_is_served_whole() {
        let app = Router::new().route("/", axum::routing::post(|| async { "posted" }));
        let addr = serving(app, crate::Config::default()).await;
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"P").await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        tcp.write_all(
            b"OST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
        let mut response = String::new();
        tcp.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with("posted"), "{response}");
    }

    // hyper times out an HTTP/1.1 client that sends no head; for HTTP/2
    // the handshake timeout is ours to apply.
    #[tokio::test]
    async fn an_http2_client_that_sends_no_request_is_closed_after_the_handshake_timeout() {
        let config = crate::Config::default().handshake_timeout(Duration::from_millis(200));
        let addr = serving(Router::new(), config).await;
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
            .await
            .unwrap();
        let mut received = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut received));
        assert!(
            closed.await.is_ok(),
            "still open 5 s after a handshake timeout of 200 ms"
        );
        // The server's SETTINGS, then a GOAWAY (8 bytes, type 7).
        assert!(received.len() > 9 && received[3] == 4, "{received:x?}");
        assert!(
            received.windows(4).any(|w| w == [0, 0, 8, 7]),
            "{received:x?}"
        );
    }
}
