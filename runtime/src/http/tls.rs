//! Serving wss:// directly: the TLS handshake in each connection's own
//! task, then HTTP/1.1 or HTTP/2 as ALPN chose.

use std::future::Future;
use std::io;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;

use super::serve::{HttpVersion, accept_loop, serve_connection};
use crate::api::websockets::WebSockets;

/// [`serve`](crate::serve) over TLS: serves `app` as `https://` and its
/// WebSocket routes as `wss://` on `listener`, until `signal` completes.
///
/// `tls` is a rustls [`ServerConfig`] (re-exported as
/// [`wsroute::rustls`](crate::rustls)). List `h2` in its
/// `alpn_protocols` to offer HTTP/2 — its WebSockets are then extended
/// CONNECT streams (RFC 8441) — and `http/1.1` for clients that only speak
/// that; with no ALPN, every connection is HTTP/1.1.
///
/// Each TLS handshake runs in the connection's own task and must finish
/// within [`handshake_timeout`](crate::Config::handshake_timeout), so a
/// client that stalls mid-handshake holds up nobody else. A WebSocket
/// upgraded over HTTP/1.1 is read from the `TlsStream` itself, not
/// through hyper's wrapper. Shutdown is the same as `serve`'s.
///
/// ```no_run
/// # async fn run(app: axum::Router, sockets: wsroute::WebSockets,
/// #     certs: Vec<wsroute::rustls::pki_types::CertificateDer<'static>>,
/// #     key: wsroute::rustls::pki_types::PrivateKeyDer<'static>) -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// let mut tls = wsroute::rustls::ServerConfig::builder()
///     .with_no_client_auth()
///     .with_single_cert(certs, key)?;
/// tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
/// let listener = tokio::net::TcpListener::bind("0.0.0.0:443").await?;
/// wsroute::serve_tls(listener, Arc::new(tls), app, &sockets, async {
///     let _ = tokio::signal::ctrl_c().await;
/// })
/// .await?;
/// # Ok(())
/// # }
/// ```
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    app: Router,
    sockets: &WebSockets,
    signal: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let acceptor = TlsAcceptor::from(tls);
    accept_loop(listener, sockets, signal, move |tcp, addr, handshake_timeout, stopping| {
        let acceptor = acceptor.clone();
        let app = app.clone();
        async move {
            let stream = match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, %addr, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%addr, "TLS handshake did not finish within the handshake timeout");
                    return;
                }
            };
            let version = match stream.get_ref().1.alpn_protocol() {
                Some(b"h2") => HttpVersion::Http2,
                _ => HttpVersion::Http1,
            };
            serve_connection(stream, version, addr, app, handshake_timeout, stopping).await;
        }
    })
    .await
}
