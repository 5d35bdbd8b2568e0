//! The WebSocket side of a server: its settings, its open connections,
//! and shutting them down. Mounting is in `http::mount`, answering an
//! upgrade in `http::upgrade`.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::task::TaskTracker;

use super::broker::{Broker, Inbox};
use super::config::Config;
use super::connection::{Connection, SendLimits};
use super::send_error::{SendError, json_message};
use super::topics::{Published, Topic, Topics};
use crate::proto::{DeflateConfig, Message};
use crate::task::budget::Budget;
use crate::task::keepalive::Wheel;

/// The WebSocket side of a server: settings shared by its routes, and the
/// open connections, so they can all be closed at shutdown — Crow's `app`
/// as far as WebSockets go.
///
/// ```no_run
/// use wsroute::{Config, RouterExt, WebSockets};
/// # #[derive(Default)]
/// # struct Echo;
/// # #[wsroute::websocket_route("/ws")]
/// # impl Echo {}
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
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: Config,
    /// Every connection's send limits, one for all: the queue bound, the
    /// slow-consumer policy, and the budget of what all connections hold
    /// for their clients, against `max_buffered`.
    pub(crate) limits: Arc<SendLimits>,
    /// The coarse clock of every connection's keepalive.
    pub(crate) wheel: Arc<Wheel>,
    pub(crate) next_id: AtomicU64,
    live: Mutex<Live>,
    /// Who subscribes to what.
    pub(crate) topics: Arc<Topics>,
    pub(crate) connections: TaskTracker,
}

/// The open connections' handles, for shutdown to signal each of them
/// directly: a connection's task then waits on its own handle alone,
/// with no shared shutdown future to poll on every wake-up.
#[derive(Default)]
pub(crate) struct Live {
    pub(crate) shutting_down: bool,
    handles: HashMap<u64, Connection>,
}

/// Takes a connection out of [`Live`] when its task ends, however it ends.
pub(crate) struct Registration {
    inner: Arc<Inner>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.inner.live().handles.remove(&self.id);
    }
}

impl Inner {
    pub(crate) fn live(&self) -> MutexGuard<'_, Live> {
        // Every update under this lock is a single insert, remove or
        // store: a panic elsewhere cannot leave it inconsistent.
        self.live
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Adds a new connection; signals it at once if shutdown has begun
    /// since its upgrade was accepted.
    pub(crate) fn register(self: &Arc<Self>, conn: &Connection) -> Registration {
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
    /// Routes mounted through this value share `config`. Topics are local
    /// to this node: see [`with_broker`](Self::with_broker) for several.
    pub fn new(config: Config) -> Self {
        Self::build(config, None)
    }

    /// As [`new`](Self::new), for one node of several: every
    /// [`publish`](Self::publish) here also goes to `broker`, which
    /// delivers here what the other nodes publish, for the topics this
    /// node has subscribers to (see [`Broker`]).
    ///
    /// ```no_run
    /// # fn broker() -> impl wsroute::Broker { struct B; impl wsroute::Broker for B {
    /// #  fn start(&self, _: wsroute::Inbox) {} fn subscribe(&self, _: &str) {}
    /// #  fn unsubscribe(&self, _: &str) {}
    /// #  fn publish(&self, _: &str, _: &wsroute::Message) -> wsroute::Forward { wsroute::Forward::Queued } } B }
    /// // With the crate wsroute-redis:
    /// // let broker = wsroute_redis::RedisBroker::new("redis://127.0.0.1:6379")?;
    /// let sockets = wsroute::WebSockets::with_broker(wsroute::Config::default(), broker());
    /// ```
    pub fn with_broker(config: Config, broker: impl Broker) -> Self {
        let sockets = Self::build(config, Some(Box::new(broker)));
        let topics = &sockets.inner.topics;
        if let Some(broker) = topics.broker() {
            broker.start(Inbox::new(topics));
        }
        sockets
    }

    fn build(config: Config, broker: Option<Box<dyn Broker>>) -> Self {
        let min_compressed = config
            .get_compression()
            .map_or(DeflateConfig::default().min_size, |d| d.min_size);
        Self {
            inner: Arc::new(Inner {
                limits: Arc::new(SendLimits {
                    max_send_queue: config.get_max_send_queue(),
                    slow_consumer: config.get_slow_consumer(),
                    budget: Arc::new(Budget::new(config.get_max_buffered())),
                }),
                wheel: Wheel::new(),
                config,
                next_id: AtomicU64::new(1),
                live: Mutex::new(Live::default()),
                topics: Arc::new(Topics::new(min_compressed, broker)),
                connections: TaskTracker::new(),
            }),
        }
    }

    /// The shared settings.
    pub fn config(&self) -> &Config {
        &self.inner.config
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

    /// Sends `message` to every subscriber of `topic` (see
    /// [`Connection::subscribe`]), from any task, handler or not; returns
    /// how many got it queued and how many were skipped. With a
    /// [`Broker`], it also goes to the other nodes
    /// ([`Published::forward`] says whether the broker took it).
    ///
    /// The message is encoded once, into one buffer that every
    /// subscriber's queue shares. It never waits: a subscriber whose send
    /// queue is full is skipped under [`SlowConsumer::Error`](crate::SlowConsumer::Error),
    /// and closed with 1008 under [`SlowConsumer::Close`](crate::SlowConsumer::Close).
    /// Messages one task publishes to a topic reach each subscriber in the
    /// order published, in line with what is sent to that subscriber
    /// directly.
    ///
    /// With permessage-deflate, a message of at least
    /// [`min_size`](crate::proto::DeflateConfig::min_size) is compressed
    /// once for all the subscribers whose server side keeps no context
    /// (the default), once per window size in use; subscribers whose
    /// server keeps its context ([`server_context_takeover`](crate::proto::DeflateConfig::server_context_takeover))
    /// get it uncompressed, which RFC 7692 allows for any message.
    ///
    /// ```no_run
    /// # async fn tick(sockets: wsroute::WebSockets) {
    /// let mut clock = tokio::time::interval(std::time::Duration::from_secs(1));
    /// loop {
    ///     clock.tick().await;
    ///     let report = sockets.publish("clock", "tick");
    ///     if report.skipped() > 0 {
    ///         tracing::warn!(full = report.full, "slow clock subscribers");
    ///     }
    /// }
    /// # }
    /// ```
    pub fn publish(&self, topic: &str, message: impl Into<Message>) -> Published {
        self.inner.topics.publish(topic, &message.into(), None)
    }

    /// Publishes `value` as a JSON text message to every subscriber of
    /// `topic`; fails with [`SendError::Json`] if `value` cannot be
    /// serialized.
    pub fn publish_json<T: serde::Serialize + ?Sized>(
        &self,
        topic: &str,
        value: &T,
    ) -> Result<Published, SendError> {
        Ok(self.publish(topic, json_message(value)?))
    }

    /// How many connections of this node subscribe to `topic`. A
    /// connection leaves its topics as soon as its task starts closing it
    /// (a close sent or answered), not when the close handshake ends; in
    /// the moment between a close being asked for and its task running,
    /// it still counts, and publishes skip it, counted in
    /// [`Published::closed`](crate::Published::closed).
    pub fn subscribers(&self, topic: &str) -> usize {
        self.inner.topics.read().get(topic).map_or(0, Topic::len)
    }

    /// How many topics have at least one subscriber: a topic is gone once
    /// its last subscriber leaves or ends.
    pub fn topic_count(&self) -> usize {
        self.inner.topics.read().len()
    }
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
