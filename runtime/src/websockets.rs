//! Mounting routes on an axum `Router`, and shutting their connections
//! down.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use axum::routing::MethodRouter;
use bytes::Bytes;
use http::StatusCode;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_util::task::TaskTracker;

use crate::budget::Budget;
use crate::config::Config;
use crate::connection::{Connection, SHUTDOWN, SendLimits};
use crate::driver::{self, KeepaliveSettings, Settings};
use crate::handshake;
use crate::keepalive::Wheel;
use crate::origin;
use crate::route::Route;
use crate::transport::Buffered;

/// The WebSocket side of a server: settings shared by its routes, and the
/// open connections, so they can all be closed at shutdown — Crow's `app`
/// as far as WebSockets go.
///
/// ```no_run
/// use wsroute::{Config, RouterExt, WebSockets};
/// # use wsroute::{Connection, Message, Route, __private::{Parts, Response}};
/// # struct Echo;
/// # impl Route for Echo {
/// #     const PATH: &'static str = "/ws";
/// #     async fn accept(_: &mut Parts, _: &()) -> Result<Self, Response> { Ok(Echo) }
/// # }
///
/// # async fn run() -> std::io::Result<()> {
/// let sockets = WebSockets::new(Config::default().max_payload(1 << 20));
/// let app = axum::Router::new().websocket::<Echo>(&sockets);
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// // On Ctrl-C: close every WebSocket with 1001, wait for their `close`
/// // events, then stop the HTTP server. (Under `axum::serve`, pass
/// // `sockets.shutdown_on(signal)` to `with_graceful_shutdown`.)
/// wsroute::serve(listener, app, &sockets, async {
///     let _ = tokio::signal::ctrl_c().await;
/// })
/// .await
/// # }
/// ```
#[derive(Clone)]
pub struct WebSockets {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    /// What all connections hold for their clients, against `max_buffered`.
    budget: Arc<Budget>,
    /// The coarse clock of every connection's keepalive.
    wheel: Arc<Wheel>,
    next_id: AtomicU64,
    live: Mutex<Live>,
    connections: TaskTracker,
}

/// The open connections' handles, for shutdown to signal each of them
/// directly: a connection's task then waits on its own handle alone,
/// with no shared shutdown future to poll on every wake-up.
#[derive(Default)]
struct Live {
    shutting_down: bool,
    handles: HashMap<u64, Connection>,
}

/// Takes a connection out of [`Live`] when its task ends, however it ends.
struct Registration {
    inner: Arc<Inner>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.inner.live().handles.remove(&self.id);
    }
}

impl Inner {
    fn live(&self) -> MutexGuard<'_, Live> {
        // Every update under this lock is a single insert, remove or
        // store: a panic elsewhere cannot leave it inconsistent.
        self.live
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Adds a new connection; signals it at once if shutdown has begun
    /// since its upgrade was accepted.
    fn register(self: &Arc<Self>, conn: &Connection) -> Registration {
        let mut live = self.live();
        if live.shutting_down {
            conn.signal_shutdown();
        }
        live.handles.insert(conn.id(), conn.clone());
        Registration {
            inner: Arc::clone(self),
            id: conn.id(),
        }
    }
}

impl WebSockets {
    /// Routes mounted through this value share `config`.
    pub fn new(config: Config) -> Self {
        Self {
            inner: Arc::new(Inner {
                budget: Arc::new(Budget::new(config.get_max_buffered())),
                wheel: Wheel::new(),
                config,
                next_id: AtomicU64::new(1),
                live: Mutex::new(Live::default()),
                connections: TaskTracker::new(),
            }),
        }
    }

    /// The shared settings.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The axum handler for route `R`, to mount yourself
    /// (`router.route(R::PATH, sockets.handler::<R, _>())`);
    /// [`RouterExt::websocket`] does both in one call.
    pub fn handler<R, S>(&self) -> MethodRouter<S>
    where
        R: Route<S>,
        S: Clone + Send + Sync + 'static,
    {
        let sockets = self.clone();
        axum::routing::get(move |State(state): State<S>, request: Request| {
            let sockets = sockets.clone();
            async move { sockets.upgrade::<R, S>(state, request).await }
        })
    }

    /// Closes every open connection with 1001 (going away), refuses new
    /// upgrades with 503, and waits until every connection has run its
    /// `close` event.
    pub async fn shutdown(&self) {
        {
            let mut live = self.inner.live();
            live.shutting_down = true;
            for conn in live.handles.values() {
                conn.signal_shutdown();
            }
        }
        self.inner.connections.close();
        self.inner.connections.wait().await;
    }

    /// Waits for `signal`, then [`shutdown`](Self::shutdown)s: pass it to
    /// axum's `with_graceful_shutdown`, so WebSockets are closed properly
    /// before the HTTP server stops. ([`serve`](crate::serve) does this
    /// itself.)
    pub fn shutdown_on(
        &self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let sockets = self.clone();
        async move {
            signal.await;
            sockets.shutdown().await;
        }
    }

    /// How many connections are open (upgraded and not yet past `close`).
    pub fn open_connections(&self) -> usize {
        self.inner.connections.len()
    }

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

    async fn upgrade<R, S>(self, state: S, request: Request) -> Response
    where
        R: Route<S>,
        S: Send + Sync + 'static,
    {
        let (mut parts, _body) = request.into_parts();
        let accept = match handshake::check(&parts) {
            Ok(accept) => accept,
            Err(rejection) => return rejection.into_response(),
        };
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
        let limits = SendLimits {
            max_send_queue: config.get_max_send_queue(),
            slow_consumer: config.get_slow_consumer(),
            budget: Arc::clone(&self.inner.budget),
        };
        let conn = Connection::new(id, remote_addr, protocol, limits);
        let keepalive = (!config.get_ping_interval().is_zero()).then(|| KeepaliveSettings {
            wheel: Arc::clone(&self.inner.wheel),
            interval: config.get_ping_interval(),
            timeout: config.get_ping_timeout(),
        });
        let settings = Settings {
            max_payload: config.max_payload_for(R::MAX_PAYLOAD),
            max_fragments: config.get_max_fragments(),
            close_timeout: config.get_close_timeout(),
            keepalive,
        };
        let upgrade_timeout = config.get_handshake_timeout();
        let registration = self.inner.register(&conn);
        self.inner.connections.spawn(async move {
            let _registration = registration;
            // hyper hands the connection over once the 101 is written; a
            // client that never lets it be written, or a shutdown in the
            // meantime, must not keep this task (and shutdown) waiting.
            let upgraded = tokio::select! {
                upgraded = tokio::time::timeout(upgrade_timeout, on_upgrade) => upgraded,
                () = shutdown_signalled(&conn) => {
                    tracing::debug!("server shut down before the WebSocket upgrade completed");
                    return;
                }
            };
            let upgraded = match upgraded {
                Ok(Ok(upgraded)) => upgraded,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "WebSocket upgrade did not complete");
                    return;
                }
                Err(_) => {
                    tracing::debug!(
                        "WebSocket upgrade did not complete within the handshake timeout"
                    );
                    return;
                }
            };
            // Under `wsroute::serve` (HTTP/1.1 only) the connection is a
            // plain TCP stream: take it back from hyper to read it on
            // readiness, without a buffer while idle and without hyper's
            // indirection. `axum::serve` keeps it wrapped.
            match upgraded.downcast::<TokioIo<TcpStream>>() {
                Ok(parts) => {
                    let tcp = parts.io.into_inner();
                    // Frames are written whole, in batches: Nagle's delay
                    // would only hold the last one back.
                    let _ = tcp.set_nodelay(true);
                    driver::run(tcp, parts.read_buf, route, conn, settings).await;
                }
                Err(upgraded) => {
                    let io = Buffered::new(TokioIo::new(upgraded));
                    driver::run(io, Bytes::new(), route, conn, settings).await;
                }
            }
        });
        handshake::switching_protocols(accept, protocol)
    }
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

impl Default for WebSockets {
    fn default() -> Self {
        Self::new(Config::default())
    }
}

impl fmt::Debug for WebSockets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSockets")
            .field("config", &self.inner.config)
            .field("open_connections", &self.open_connections())
            .finish()
    }
}

/// Mounts WebSocket routes on an axum [`Router`] in one call.
pub trait RouterExt<S> {
    /// Adds route `R` at `R::PATH`, with `sockets`' settings.
    fn websocket<R: Route<S>>(self, sockets: &WebSockets) -> Self;
}

impl<S: Clone + Send + Sync + 'static> RouterExt<S> for Router<S> {
    fn websocket<R: Route<S>>(self, sockets: &WebSockets) -> Self {
        self.route(R::PATH, sockets.handler::<R, S>())
    }
}
