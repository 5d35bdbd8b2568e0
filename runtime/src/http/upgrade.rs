//! Answering an upgrade request: the checks of the handshake and of the
//! server's own limits, `accept`, the `101`, and then the connection's task
//! on the stream hyper hands back.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use bytes::Bytes;
use futures_util::future::{Either, OptionFuture};
use http::header::SEC_WEBSOCKET_EXTENSIONS;
use http::{HeaderValue, StatusCode};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tracing::Instrument;

use super::{handshake, origin};
use crate::api::connection::{Connection, SHUTDOWN};
use crate::api::route::Route;
use crate::api::websockets::{Registration, WebSockets};
use crate::proto::negotiate_deflate;
use crate::task::cork;
use crate::task::driver::{self, KeepaliveSettings, Session, Settings};
use crate::task::shared_tcp::SharedTcp;
use crate::task::transport::Buffered;

impl WebSockets {
    /// The answer to a valid upgrade the server still refuses: from a
    /// disallowed origin, or past the connection limit.
    fn refusal<R: Route<S>, S>(&self, parts: &http::request::Parts) -> Option<Response> {
        let config = &self.inner.config;
        if !origin::check(&parts.headers, R::ORIGINS, config.origins()) {
            return Some(handshake::Rejection::CrossOrigin.into_response());
        }
        if config
            .get_max_connections()
            .is_some_and(|limit| self.open_connections() >= limit)
        {
            return Some(handshake::reject(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many WebSocket connections open: try again later",
            ));
        }
        None
    }

    pub(crate) async fn upgrade<R, S>(self, state: S, request: Request) -> Response
    where
        R: Route<S>,
        S: Send + Sync + 'static,
    {
        let (mut parts, _body) = request.into_parts();
        let accept = match handshake::check(&parts) {
            Ok(accept) => accept,
            Err(rejection) => return rejection.into_response(),
        };
        handshake::authority_as_host(&mut parts);
        if let Some(response) = self.refusal::<R, S>(&parts) {
            return response;
        }
        if self.inner.live().shutting_down {
            return handshake::reject(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is shutting down",
            );
        }
        let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
            return handshake::reject(
                StatusCode::UPGRADE_REQUIRED,
                "this connection cannot be upgraded: serve the router with axum::serve or hyper's HTTP/1.1 with upgrades",
            );
        };
        let remote_addr = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0);

        let route = match R::accept(&mut parts, &state).await {
            Ok(route) => route,
            Err(response) => return response,
        };

        let config = &self.inner.config;
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let protocol = handshake::choose_protocol(&parts.headers, config.get_protocols());
        let keepalive = (!config.get_ping_interval().is_zero()).then(|| KeepaliveSettings {
            wheel: Arc::clone(&self.inner.wheel),
            interval: config.get_ping_interval(),
            timeout: config.get_ping_timeout(),
        });
        let deflate = config.compression_for(R::COMPRESSION).and_then(|deflate| {
            let offers = parts.headers.get_all(SEC_WEBSOCKET_EXTENSIONS);
            let (params, answer) =
                negotiate_deflate(offers.iter().map(HeaderValue::as_bytes), &deflate)?;
            Some((params, deflate, answer))
        });
        let mut conn = Connection::new(
            id,
            remote_addr,
            protocol,
            Arc::clone(&self.inner.limits),
            Arc::clone(&self.inner.topics),
        );
        if let Some((params, config, _)) = &deflate {
            conn.set_deflate(params, config);
        }
        let answer = deflate
            .as_ref()
            .and_then(|(_, _, answer)| HeaderValue::from_str(answer).ok());
        let session = Session::new(Settings {
            deflate: deflate.map(|(params, config, _)| Box::new((params, config))),
            max_payload: config.max_payload_for(R::MAX_PAYLOAD),
            max_fragments: config.get_max_fragments(),
            close_timeout: config.get_close_timeout(),
            keepalive,
        });
        let upgrade_timeout = config.get_handshake_timeout();
        // At info level, so that a handler's `info!` carries the connection
        // at the usual filter; the crate's own events are at debug. With
        // no subscriber interested the span is disabled, and entering it on
        // each poll of the task is a branch on `None`.
        let span = tracing::info_span!(
            "websocket",
            route = R::PATH,
            id,
            peer = remote_addr.map(tracing::field::display),
            protocol,
            extensions = answer.as_ref().and_then(|answer| answer.to_str().ok()),
        );
        let registration = self.inner.register(&conn);
        let task = connection_task(
            registration,
            on_upgrade,
            upgrade_timeout,
            route,
            conn,
            session,
        );
        self.inner
            .connections
            .spawn(cork::connection_task(task).instrument(span));
        handshake::switching_protocols(accept, protocol, answer)
    }
}

/// A connection's task: waits for hyper to hand the connection over after
/// the 101, then runs it on the plain TCP stream if it is one, else on
/// whatever hyper hands back.
///
/// Not an async fn, and neither is what it calls with the connection's
/// state: the future of an async fn holds each argument twice (as passed,
/// and as the local the body moves it into) for as long as it runs, and a
/// local moved out before an `.await` keeps its room across it. Every idle
/// connection pays for that room, so this future captures each value once
/// and lends it down the chain.
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn would hold each argument twice"
)]
fn connection_task<R: Route<S>, S>(
    registration: Registration,
    on_upgrade: OnUpgrade,
    upgrade_timeout: Duration,
    mut route: R,
    conn: Connection,
    mut session: Session,
) -> impl Future<Output = ()> {
    async move {
        // Handed straight to `run_on`, which takes the stream apart before
        // the run's first await: an `if let` on it would keep its room in
        // the task for as long as the connection lives.
        let upgraded = upgraded(on_upgrade, upgrade_timeout, &conn).await;
        let run = OptionFuture::from(upgraded.map(|u| run_on(u, &mut route, &conn, &mut session)));
        run.await;
        drop(registration);
    }
}

/// What hyper hands over once the 101 is written. A client that never
/// lets it be written, or a shutdown in the meantime, must not keep the
/// task (and shutdown) waiting.
async fn upgraded(
    on_upgrade: OnUpgrade,
    upgrade_timeout: Duration,
    conn: &Connection,
) -> Option<Upgraded> {
    let upgraded = tokio::select! {
        upgraded = tokio::time::timeout(upgrade_timeout, on_upgrade) => upgraded,
        () = shutdown_signalled(conn) => {
            tracing::debug!("server shut down before the WebSocket upgrade completed");
            return None;
        }
    };
    match upgraded {
        Ok(Ok(upgraded)) => Some(upgraded),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "WebSocket upgrade did not complete");
            None
        }
        Err(_) => {
            tracing::debug!("WebSocket upgrade did not complete within the handshake timeout");
            None
        }
    }
}

/// The connection's run on what hyper handed over. Under `wsroute::serve`
/// over HTTP/1.1 that is a plain TCP stream: taken back from hyper, it is
/// read on readiness, without a buffer while idle and without hyper's
/// indirection. Anything else is boxed: it may hold kilobytes (a TLS
/// session), and every plain connection's task would carry room for it.
fn run_on<'a, R: Route<S>, S: 'a>(
    upgraded: Upgraded,
    route: &'a mut R,
    conn: &'a Connection,
    session: &'a mut Session,
) -> impl Future<Output = ()> + 'a {
    match upgraded.downcast::<TokioIo<TcpStream>>() {
        Ok(parts) => {
            let tcp = parts.io.into_inner();
            // Frames are written whole, in batches: Nagle's delay would
            // only hold the last one back.
            let _ = tcp.set_nodelay(true);
            // Shared with the connection's handle, so a publish can write
            // to an idle connection itself.
            let tcp = Arc::new(tcp);
            conn.share_socket(Arc::clone(&tcp));
            let io = SharedTcp::new(tcp);
            Either::Left(driver::run(io, parts.read_buf, route, conn, session))
        }
        Err(upgraded) => Either::Right(Box::pin(run_upgraded(upgraded, route, conn, session))),
    }
}

/// Runs a connection on what hyper handed back when it is not a plain TCP
/// stream: under `serve_tls` the decrypted stream itself, else (HTTP/2,
/// `axum::serve`) hyper's `Upgraded`.
async fn run_upgraded<R: Route<S>, S>(
    upgraded: Upgraded,
    route: &mut R,
    conn: &Connection,
    session: &mut Session,
) {
    #[cfg(feature = "tls")]
    let upgraded = match upgraded.downcast::<TokioIo<tokio_rustls::server::TlsStream<TcpStream>>>()
    {
        Ok(parts) => {
            let io = Buffered::new(parts.io.into_inner());
            return driver::run(io, parts.read_buf, route, conn, session).await;
        }
        Err(upgraded) => upgraded,
    };
    let io = Buffered::new(TokioIo::new(upgraded));
    driver::run(io, Bytes::new(), route, conn, session).await;
}

/// Completes once the connection's handle carries the shutdown signal.
/// Nothing else signals a connection before it is opened.
async fn shutdown_signalled(conn: &Connection) {
    std::future::poll_fn(|cx| {
        // A ready poll does not register the waker: poll until one does.
        while let std::task::Poll::Ready(bits) = conn.poll_signals(cx) {
            if bits & SHUTDOWN != 0 {
                return std::task::Poll::Ready(());
            }
        }
        std::task::Poll::Pending
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::connection::SendLimits;
    use http::request::Parts;

    struct Echo;

    impl Route for Echo {
        const PATH: &'static str = "/";

        async fn accept(_: &mut Parts, _: &()) -> Result<Self, Response> {
            Ok(Echo)
        }
    }

    // What every connection's task costs while it waits: with the TLS
    // session inline (kilobytes), a plain connection held 7.5 KiB instead
    // of 2.5; as an async fn holding each argument twice, 1304 bytes; with
    // the close handshake's frames inline and the handed-over stream kept
    // across the run, 880 (this build; 928 in release, which put the task's
    // cell at 1152 bytes rather than 1024).
    #[test]
    fn a_connection_task_holds_no_room_for_a_tls_session() {
        let sockets = WebSockets::default();
        let conn = Connection::new(1, None, None, SendLimits::queue(1 << 20), Arc::default());
        let mut request = http::Request::new(());
        let settings = Settings {
            max_payload: None,
            max_fragments: usize::MAX,
            close_timeout: Duration::from_secs(1),
            deflate: None,
            keepalive: None,
        };
        let task = connection_task(
            sockets.inner.register(&conn),
            hyper::upgrade::on(&mut request),
            Duration::from_secs(1),
            Echo,
            conn,
            Session::new(settings),
        );
        let size = std::mem::size_of_val(&task);
        eprintln!("connection task: {size} bytes");
        assert!(size <= 800, "connection task is {size} bytes");
    }
}
