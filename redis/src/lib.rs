//! Several wsroute nodes, one set of topics: a [`Broker`] on Redis
//! pub/sub.
//!
//! Each node's [`WebSockets`](wsroute::WebSockets), built with
//! [`WebSockets::with_broker`](wsroute::WebSockets::with_broker), sends
//! every message published on it to Redis and delivers what the other
//! nodes publish to its own subscribers:
//!
//! ```no_run
//! use wsroute::{Config, WebSockets};
//! use wsroute_redis::RedisBroker;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let broker = RedisBroker::new("redis://127.0.0.1:6379")?;
//! let sockets = WebSockets::with_broker(Config::default(), broker.clone());
//! // Subscribers on every node get it; `forward` says whether Redis will.
//! let report = sockets.publish("news", "hello, cluster");
//! println!("{report:?}; so far {:?}", broker.stats());
//! # Ok(()) }
//! ```
//!
//! # What is delivered
//!
//! - **At most once across nodes, ordered per publisher per topic.** Redis
//!   pub/sub keeps nothing: a node that is not connected when a message
//!   passes does not get it later. A node's messages go out on one
//!   connection, in the order published, so each subscriber elsewhere
//!   receives one node's messages to one topic in that order.
//! - **Each subscriber once.** A node's own subscribers get its messages
//!   directly, never through Redis; when Redis hands a node its own
//!   message back, the node drops it.
//! - **Local delivery never waits for Redis.** Publishing queues the
//!   message for the broker's task and returns; while Redis is
//!   unreachable, subscribers on the same node are served as usual.
//! - **Nothing is silently lost.** While the publishing connection is
//!   down, or when the queue is full ([`Builder::queue`],
//!   [`Builder::queue_bytes`]), a publish is not sent at all:
//!   [`Published::forward`](wsroute::Published::forward) is
//!   [`Forward::Dropped`] and [`Stats::dropped`] counts it.
//!   [`Forward::Queued`] means the message waits its turn to be sent; its
//!   fate is counted once known. Messages still queued when the
//!   publishing connection breaks are not sent late ([`Stats::dropped`]),
//!   nor are those Redis answers with an error (logged). Messages in
//!   flight when a connection breaks are counted in [`Stats::unconfirmed`]
//!   (Redis may or may not have passed them on) and never sent twice.
//!   Every message published lands in exactly one of
//!   [`Stats::published`], `dropped` and `unconfirmed`.
//!   What other nodes published while this node's subscribed connection
//!   was down cannot be counted here; [`Stats::reconnects`] and
//!   [`Stats::last_outage`] say that, and for how long, it happened —
//!   also when Redis could not be reached at the start.
//! - **A node that cannot keep up.** Redis hands each node the messages
//!   of its channels as fast as it can; what this node has not delivered
//!   yet waits in its memory, not in Redis, up to
//!   [`Builder::backlog_bytes`] (64 MiB). Beyond that, what arrives is
//!   dropped until the node catches up, counted in [`Stats::lagged`] and
//!   logged: at most once, and the node's memory stays bounded. Size a
//!   cluster so that each node delivers what it subscribes to. Redis has
//!   a bound of its own per subscriber (`client-output-buffer-limit
//!   pubsub`, 32 MB by default): one message larger than that makes Redis
//!   close the connection instead, which shows as an outage
//!   ([`Stats::reconnects`]), not in `lagged`.
//!   Subscribing and unsubscribing never wait behind that backlog.
//! - **Reconnecting.** Each connection is made again with backoff (50 ms
//!   doubling to 5 s, with jitter), and the subscribed one subscribes
//!   again to every topic the node needs. A silent peer is noticed by a
//!   `PING` every 5 s. Each loss and recovery is logged (`tracing`, warn
//!   and info).
//!
//! # Redis
//!
//! Redis 6 or newer (or a server that speaks its protocol, RESP3): the
//! subscribed connection takes messages as RESP3 pushes, which is what
//! lets the node bound what it holds. A password, a user and a database
//! go in the URL (`redis://user:password@host:port/db`).
//!
//! # Channels
//!
//! Topic `T` is the Redis channel `wsroute:T` (see [`Builder::prefix`]);
//! a node subscribes to a channel while it has a subscriber to the topic
//! (`PUBSUB CHANNELS wsroute:*` lists them). A payload is a 9-byte header
//! (kind, sending node) and the message; payloads that are not wsroute's
//! are refused and counted ([`Stats::refused`]), never delivered.

#![warn(missing_docs)]

mod backlog;
mod backoff;
mod publisher;
mod stats;
mod subscriber;
mod wire;

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use redis::{IntoConnectionInfo, RedisResult};
use tokio::sync::{Notify, mpsc};
use wsroute::{Broker, Forward, Inbox, Message};

pub use redis;
pub use stats::Stats;

use crate::backlog::Backlog;
use crate::backoff::Backoff;
use crate::publisher::Outgoing;
use crate::stats::Counters;
use crate::subscriber::Wanted;

/// A [`Broker`] on Redis pub/sub: pass it (or a clone: clones share one
/// pair of connections) to [`WebSockets::with_broker`](wsroute::WebSockets::with_broker).
///
/// It opens two connections when the `WebSockets` starts it — one to
/// publish, one subscribed — and runs a task for each on the current
/// tokio runtime; they stop once that `WebSockets` and its connections
/// are gone. See the [crate docs](crate) for what is delivered.
#[derive(Clone)]
pub struct RedisBroker {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    /// This node, in the payloads it publishes.
    pub(crate) node: u64,
    pub(crate) options: Options,
    pub(crate) client: redis::Client,
    /// `client` speaking RESP3, for the subscribed connection.
    pub(crate) subscriber_client: redis::Client,
    pub(crate) backlog: Backlog,
    queue: mpsc::Sender<Outgoing>,
    /// Payload bytes in `queue`, bounded by [`Options::queue_bytes`].
    queued_bytes: AtomicUsize,
    /// Taken by [`Broker::start`].
    receiver: Mutex<Option<mpsc::Receiver<Outgoing>>>,
    wanted: Mutex<Wanted>,
    pub(crate) changed: Notify,
    pub(crate) counters: Counters,
}

#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) prefix: String,
    pub(crate) queue: usize,
    pub(crate) queue_bytes: usize,
    pub(crate) backlog_bytes: usize,
    pub(crate) connect_timeout: Duration,
    pub(crate) response_timeout: Duration,
    pub(crate) ping_interval: Duration,
    pub(crate) backoff: (Duration, Duration),
}

impl Options {
    pub(crate) fn backoff(&self, seed: u64) -> Backoff {
        Backoff::new(self.backoff.0, self.backoff.1, seed)
    }
}

impl Shared {
    pub(crate) fn wanted(&self) -> MutexGuard<'_, Wanted> {
        // Each update is one insert or remove.
        self.wanted.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes `bytes` of payload off the count of what waits to be sent.
    pub(crate) fn unqueue(&self, bytes: usize) {
        self.queued_bytes.fetch_sub(bytes, Relaxed);
    }

    fn change(&self, topic: &str, subscribe: bool) {
        let mut wanted = self.wanted();
        if subscribe {
            wanted.topics.insert(topic.to_owned());
        } else {
            wanted.topics.remove(topic);
        }
        wanted.changed.insert(topic.to_owned());
        drop(wanted);
        self.changed.notify_one();
    }
}

impl RedisBroker {
    /// A broker for the Redis server at `url` (`redis://[:password@]host[:port][/db]`),
    /// with the defaults of [`Builder`]. Fails only if `url` is not one;
    /// the server need not be up yet.
    pub fn new(url: impl IntoConnectionInfo) -> RedisResult<Self> {
        Ok(Self::builder(url)?.build())
    }

    /// A [`Builder`], to change the defaults.
    pub fn builder(url: impl IntoConnectionInfo) -> RedisResult<Builder> {
        Ok(Builder {
            client: redis::Client::open(url)?,
            options: Options {
                prefix: "wsroute:".to_owned(),
                queue: 1 << 16,
                queue_bytes: 64 << 20,
                backlog_bytes: 64 << 20,
                connect_timeout: Duration::from_secs(2),
                response_timeout: Duration::from_secs(2),
                ping_interval: Duration::from_secs(5),
                backoff: (Duration::from_millis(50), Duration::from_secs(5)),
            },
        })
    }

    /// What it has sent, dropped and received so far, and whether it is
    /// connected.
    pub fn stats(&self) -> Stats {
        self.shared.counters.snapshot()
    }

    /// This node's id in the payloads it publishes (random per broker).
    pub fn node_id(&self) -> u64 {
        self.shared.node
    }
}

/// Settings of a [`RedisBroker`], from [`RedisBroker::builder`].
#[derive(Debug)]
pub struct Builder {
    client: redis::Client,
    options: Options,
}

impl Builder {
    /// Put before each topic to name its channel; default `wsroute:`.
    /// Nodes that share topics must share it; apps that share a Redis
    /// but not topics should not, and neither prefix may begin the other
    /// (`app` and `app:` would share channels: topic `:x` of the first is
    /// topic `x` of the second). End each with a separator such as `:`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.options.prefix = prefix.into();
        self
    }

    /// How many messages may wait to be sent to Redis; default 65,536.
    /// When it is full, a publish is dropped ([`Forward::Dropped`]).
    pub fn queue(mut self, messages: usize) -> Self {
        self.options.queue = messages.max(1);
        self
    }

    /// How many bytes of messages may wait to be sent to Redis; default
    /// 64 MiB. Beyond it, as beyond [`queue`](Self::queue), a publish is
    /// dropped: while Redis is slow or stalled, what a node holds for it
    /// is bounded in bytes, whatever the size of the messages. A message
    /// larger than this is always dropped.
    pub fn queue_bytes(mut self, bytes: usize) -> Self {
        self.options.queue_bytes = bytes;
        self
    }

    /// How many bytes of other nodes' messages may wait in this node to be
    /// delivered; default 64 MiB. A node that falls further behind drops
    /// what arrives until it catches up, counts it in [`Stats::lagged`]
    /// and logs a warning: its memory stays bounded however fast the
    /// other nodes publish.
    pub fn backlog_bytes(mut self, bytes: usize) -> Self {
        self.options.backlog_bytes = bytes;
        self
    }

    /// How long connecting and each answer may take before the connection
    /// counts as lost; default 2 s each.
    pub fn timeouts(mut self, connect: Duration, response: Duration) -> Self {
        self.options.connect_timeout = connect;
        self.options.response_timeout = response;
        self
    }

    /// How often the subscribed connection is checked with `PING`;
    /// default 5 s.
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.options.ping_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// The first and the longest wait before reconnecting; default 50 ms
    /// and 5 s.
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.options.backoff = (first, max.max(first));
        self
    }

    /// The broker: its connections open when a `WebSockets` starts it.
    pub fn build(self) -> RedisBroker {
        let (queue, receiver) = mpsc::channel(self.options.queue);
        let info = self.client.get_connection_info().clone();
        let resp3 = info
            .redis_settings()
            .clone()
            .set_protocol(redis::ProtocolVersion::RESP3);
        let subscriber_client = redis::Client::open(info.set_redis_settings(resp3))
            .expect("the settings of a client that opened are valid");
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        RedisBroker {
            shared: Arc::new(Shared {
                node: hasher.finish(),
                backlog: Backlog::new(self.options.backlog_bytes),
                options: self.options,
                client: self.client,
                subscriber_client,
                queue,
                queued_bytes: AtomicUsize::new(0),
                receiver: Mutex::new(Some(receiver)),
                wanted: Mutex::default(),
                changed: Notify::new(),
                counters: Counters::default(),
            }),
        }
    }
}

impl Broker for RedisBroker {
    /// Spawns the two connections' tasks on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, or if this broker (or a clone) was
    /// started already: one broker serves one `WebSockets`.
    fn start(&self, inbox: Inbox) {
        let receiver = self
            .shared
            .receiver
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .expect("a RedisBroker serves one WebSockets: build one per WebSockets");
        tokio::spawn(publisher::run(
            Arc::clone(&self.shared),
            receiver,
            inbox.clone(),
        ));
        // Corked: the messages one read from Redis brought leave in one
        // write per subscriber when the task's poll ends, not one each.
        tokio::spawn(wsroute::corked(subscriber::run(
            Arc::clone(&self.shared),
            inbox,
        )));
    }

    fn subscribe(&self, topic: &str) {
        self.shared.change(topic, true);
    }

    fn unsubscribe(&self, topic: &str) {
        self.shared.change(topic, false);
    }

    fn publish(&self, topic: &str, message: &Message) -> Forward {
        let shared = &self.shared;
        if !shared.counters.publisher_up.load(Relaxed) {
            shared.counters.dropped.fetch_add(1, Relaxed);
            return Forward::Dropped;
        }
        let payload = wire::encode(shared.node, message);
        let len = payload.len();
        let room = shared.queued_bytes.fetch_add(len, Relaxed) + len <= shared.options.queue_bytes;
        let channel = wire::channel(&shared.options.prefix, topic);
        if room && shared.queue.try_send((channel, payload)).is_ok() {
            return Forward::Queued;
        }
        shared.unqueue(len);
        shared.counters.dropped.fetch_add(1, Relaxed);
        Forward::Dropped
    }
}

impl fmt::Debug for RedisBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBroker")
            .field("node", &self.shared.node)
            .field("prefix", &self.shared.options.prefix)
            .field("stats", &self.stats())
            .finish()
    }
}
