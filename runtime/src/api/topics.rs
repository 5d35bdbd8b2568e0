//! Topics on one node: which connections subscribe to what, and fan-out.
//!
//! Entry points: [`Connection::subscribe`](crate::Connection::subscribe),
//! [`Connection::publish`](crate::Connection::publish) and
//! [`WebSockets::publish`](crate::WebSockets::publish).
//!
//! One registry per [`WebSockets`](crate::WebSockets): a map from topic to
//! its subscribers behind one `RwLock`, taken only by subscribe,
//! unsubscribe, publish and a connection's end — never by a connection's
//! task while it reads or writes frames. A publish encodes its message
//! once, into one `Bytes` (header and payload). A subscriber whose task is
//! idle, with nothing queued or unwritten, gets it written to its socket
//! by the publishing task itself, without a wake-up of its own (plain TCP
//! only; see `Connection::send_frame`); the others get a reference to it
//! on their send queue, under their send-queue limit and slow-consumer
//! policy. Within a corked poll (every connection task's, see
//! [`cork`]), a publish behind another one or with more events behind it
//! is queued on the idle subscribers without a wake-up, and written to
//! each in one write when the poll ends. Elsewhere, a publish right behind
//! the last one on its topic (a burst, see [`BURST_GAP`]) is queued for
//! everyone, so the burst leaves in one write per subscriber from its own
//! task. A publish never waits for a subscriber.
//! Subscribers with permessage-deflate and no server context takeover
//! share a second frame, compressed once per window size and level; those
//! whose server keeps its context get the uncompressed one, which leaves
//! that context alone.
//!
//! With a [`Broker`], the registry also tells it, under the write lock,
//! when a topic gains its first subscriber and loses its last, and hands
//! it every local publish after the local fan-out.
//!
//! Lock order: the registry, then a connection's queue.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::broker::{Broker, Forward};
use super::connection::Connection;
use super::send_error::SendError;
use crate::proto::{DeflateConfig, DeflateParams, Message, OpCode, compress_fresh, encode_frame};
use crate::task::cork::{self, Mode};

/// RSV1: a compressed message (RFC 7692 §6).
const RSV1: u8 = 0b100;

/// Topic → the connections subscribed to it.
pub(crate) type Subscribers = HashMap<Arc<str>, Topic>;

/// Outside a cork: a publish that starts within this long of the end of
/// the previous one on its topic is part of a burst (a loop of publishes,
/// a batch from a broker): it is queued, not written through, so each
/// subscriber's task writes the rest of the burst in one write instead of
/// one `send` per message. An isolated publish — anything a client's round
/// trip, even on loopback (about 25 µs), separates from the last — is
/// written through.
const BURST_GAP: Duration = Duration::from_micros(10);

/// One topic's subscribers.
#[derive(Default)]
pub(crate) struct Topic {
    /// In the order they subscribed, which for a server's connections is
    /// mostly the order their state was allocated in: a publish walks
    /// memory forwards, where a hash map's order would jump about it —
    /// at 10,000 subscribers a cache miss on nearly every subscriber.
    members: Vec<Member>,
    /// Connection id → its place in `members`.
    index: HashMap<u64, usize>,
    /// When the last publish here ended (see [`BURST_GAP`]), in
    /// nanoseconds of [`Topics::clock`].
    last_publish: AtomicU64,
}

/// A subscriber, with what a publish needs to know of it before it
/// touches the connection itself.
struct Member {
    id: u64,
    /// [`shared_deflate`] of the connection.
    deflate: u8,
    conn: Connection,
}

impl Topic {
    /// How many connections subscribe.
    pub(crate) fn len(&self) -> usize {
        self.members.len()
    }

    fn push(&mut self, conn: &Connection) {
        self.index.insert(conn.id(), self.members.len());
        self.members.push(Member {
            id: conn.id(),
            deflate: conn.shared_deflate(),
            conn: conn.clone(),
        });
    }

    /// Removes connection `id`; whether it was here.
    fn take(&mut self, id: u64) -> bool {
        let Some(at) = self.index.remove(&id) else {
            return false;
        };
        self.members.swap_remove(at);
        if let Some(moved) = self.members.get(at) {
            self.index.insert(moved.id, at);
        }
        true
    }
}

/// The topics of one [`WebSockets`](crate::WebSockets).
pub(crate) struct Topics {
    map: RwLock<Subscribers>,
    /// Published messages shorter than this go uncompressed to everyone.
    min_compressed: usize,
    /// Other nodes, if any.
    broker: Option<Box<dyn Broker>>,
    /// Where the topics' publish times count from.
    clock: Instant,
}

impl Default for Topics {
    fn default() -> Self {
        Self::new(DeflateConfig::default().min_size, None)
    }
}

impl Topics {
    /// Messages shorter than `min_compressed` are never compressed.
    pub(crate) fn new(min_compressed: usize, broker: Option<Box<dyn Broker>>) -> Self {
        Self {
            map: RwLock::default(),
            min_compressed,
            broker,
            clock: Instant::now(),
        }
    }

    fn now(&self) -> u64 {
        // Wraps after 584 years.
        self.clock.elapsed().as_nanos() as u64
    }

    pub(crate) fn broker(&self) -> Option<&dyn Broker> {
        self.broker.as_deref()
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Subscribers> {
        // Every update under this lock is one insert or remove: a panic
        // elsewhere cannot leave the map inconsistent.
        self.map.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, Subscribers> {
        self.map.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Delivers `message` here (see [`deliver`](Self::deliver)), then
    /// hands it to the broker for the other nodes.
    pub(crate) fn publish(&self, topic: &str, message: &Message, skip: Option<u64>) -> Published {
        let mut report = self.deliver(topic, message, skip);
        if let Some(broker) = &self.broker {
            report.forward = broker.publish(topic, message);
        }
        report
    }

    /// Queues `message` on every local subscriber of `topic` but `skip`:
    /// one uncompressed frame shared by all, except the subscribers that
    /// compress from a fresh context ([`shared_deflate`]), which share one
    /// compressed frame per window size and level.
    pub(crate) fn deliver(&self, topic: &str, message: &Message, skip: Option<u64>) -> Published {
        let mut report = Published::default();
        let map = self.read();
        let Some(subscribers) = map.get(topic) else {
            return report;
        };
        let mode = cork::publishing();
        let write_through = match mode {
            Mode::Uncorked => {
                let last = subscribers.last_publish.load(Ordering::Relaxed);
                self.now().wrapping_sub(last) >= BURST_GAP.as_nanos() as u64
            }
            Mode::WriteThrough => true,
            Mode::Corked => false,
        };
        let plain = encode(message);
        // Corked, each frame goes in the topic's log for this poll.
        let topic_at = std::ptr::from_ref(subscribers).addr();
        let log = |key: u8, frame: &Bytes| {
            (mode == Mode::Corked)
                .then(|| cork::log(topic_at, key, frame))
                .flatten()
        };
        let plain_logged = log(0, &plain);
        let compress = message.len() >= self.min_compressed;
        // At most a few: one per window size and level in use.
        let mut compressed: Vec<(u8, Bytes, Option<cork::Logged>)> = Vec::new();
        for Member { id, deflate, conn } in &subscribers.members {
            if Some(*id) == skip {
                continue;
            }
            let key = *deflate;
            let (frame, logged) = if key == 0 || !compress {
                (&plain, &plain_logged)
            } else if let Some(i) = compressed.iter().position(|(k, ..)| *k == key) {
                (&compressed[i].1, &compressed[i].2)
            } else {
                let frame = compress_frame(message, key).unwrap_or_else(|| plain.clone());
                let logged = log(key, &frame);
                compressed.push((key, frame, logged));
                let (_, frame, logged) = &compressed[compressed.len() - 1];
                (frame, logged)
            };
            let sent = if mode == Mode::Corked {
                conn.send_frame_corked(frame, logged.as_ref())
            } else {
                conn.send_frame(frame, write_through)
            };
            match sent {
                Ok(()) => report.delivered += 1,
                Err(SendError::QueueFull { .. }) => report.full += 1,
                Err(_) => report.closed += 1,
            }
        }
        subscribers
            .last_publish
            .store(self.now(), Ordering::Relaxed);
        report
    }

    /// Takes connection `id` out of `topics` (the ones it subscribed to).
    pub(crate) fn leave(&self, id: u64, topics: BTreeSet<Arc<str>>) {
        if topics.is_empty() {
            return;
        }
        let mut map = self.write();
        for topic in topics {
            self.remove(&mut map, &topic, id);
        }
    }

    /// Adds `conn` to `topic` in `map` (this registry's, write-locked);
    /// tells the broker if it is the topic's first subscriber. Returns the
    /// topic's shared name, or `None` if `conn` was subscribed already.
    pub(crate) fn insert(
        &self,
        map: &mut Subscribers,
        topic: &str,
        conn: &Connection,
    ) -> Option<Arc<str>> {
        let key = match map.get_key_value(topic) {
            Some((_, subscribers)) if subscribers.index.contains_key(&conn.id()) => return None,
            Some((key, _)) => Arc::clone(key),
            None => {
                if let Some(broker) = &self.broker {
                    broker.subscribe(topic);
                }
                Arc::from(topic)
            }
        };
        map.entry(Arc::clone(&key)).or_default().push(conn);
        Some(key)
    }

    /// Removes `id` from `topic` in `map` (this registry's, write-locked),
    /// and the topic once nobody is left on it, telling the broker.
    /// Returns whether `id` was subscribed.
    pub(crate) fn remove(&self, map: &mut Subscribers, topic: &str, id: u64) -> bool {
        let Some(subscribers) = map.get_mut(topic) else {
            return false;
        };
        // Dropping the handle here is never the last one: its caller holds
        // one too.
        let was = subscribers.take(id);
        if subscribers.members.is_empty() {
            map.remove(topic);
            if let Some(broker) = &self.broker {
                broker.unsubscribe(topic);
            }
        }
        was
    }
}

fn opcode(message: &Message) -> OpCode {
    if message.is_binary() {
        OpCode::Binary
    } else {
        OpCode::Text
    }
}

/// Encodes `message` once, as a whole unmasked uncompressed frame.
pub(crate) fn encode(message: &Message) -> Bytes {
    encode_frame(opcode(message), 0, message.as_bytes())
}

/// Encodes `message` compressed from a fresh context with the window and
/// level of `key` (see [`shared_deflate`]), if that makes it smaller.
fn compress_frame(message: &Message, key: u8) -> Option<Bytes> {
    let (bits, level) = (key & 0x0f, u32::from(key >> 4));
    let payload = compress_fresh(level, bits, message.as_bytes())?;
    Some(encode_frame(opcode(message), RSV1, &payload))
}

/// How a connection takes published messages compressed, in one byte: 0
/// when they go to it uncompressed (no permessage-deflate, or a server
/// that keeps its compression context, whose window a frame compressed
/// elsewhere would not match, or an 8-bit window zlib cannot compress
/// with); otherwise the window bits (9–15) in the low four bits and the
/// zlib level (0–9) in the high four. Connections with the same key
/// receive the same compressed bytes.
pub(crate) fn shared_deflate(params: &DeflateParams, config: &DeflateConfig) -> u8 {
    let bits = params.server_max_window_bits;
    if !params.server_no_context_takeover || !(9..=15).contains(&bits) {
        return 0;
    }
    bits | ((config.level.min(9) as u8) << 4)
}

/// What became of one publish: how many subscribers got the message
/// queued, and how many were skipped.
///
/// A subscriber is skipped, never waited for, when its send queue is
/// full ([`Config::max_send_queue`](crate::Config::max_send_queue), or
/// the server-wide [`max_buffered`](crate::Config::max_buffered)) — under
/// [`SlowConsumer::Close`](crate::SlowConsumer::Close) that also closes it
/// with 1008 — or when it is closing. "Delivered" means handed to the
/// socket or queued, as for [`Connection::send`](crate::Connection::send):
/// a subscriber that is idle gets the frame written to its socket by the
/// publishing task at once, the others from their own task soon after.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Published {
    /// Subscribers the message was queued for.
    pub delivered: usize,
    /// Subscribers skipped because their send queue was full.
    pub full: usize,
    /// Subscribers skipped because they are closing or closed.
    pub closed: usize,
    /// Whether the message went on to other nodes: always
    /// [`Forward::Local`] without a [`Broker`], and for messages
    /// delivered from other nodes.
    pub forward: Forward,
}

impl Published {
    /// Subscribers skipped, full or closing.
    pub fn skipped(&self) -> usize {
        self.full + self.closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::config::SlowConsumer;
    use crate::api::connection::{Command, SendLimits};
    use crate::proto::DeflateParams;
    use crate::task::budget::Budget;

    fn member(topics: &Arc<Topics>, id: u64, limits: SendLimits) -> Connection {
        Connection::new(id, None, None, limits, Arc::clone(topics))
    }

    /// The frames queued on `conn`, taken off its queue.
    fn queued_frames(conn: &Connection) -> Vec<Bytes> {
        let mut frames = Vec::new();
        conn.drain(|commands| {
            for command in commands.drain(..) {
                if let Command::Frame(frame) = command {
                    frames.push(frame);
                }
            }
            (0, true, false)
        });
        frames
    }

    #[test]
    fn one_publish_shares_one_allocation_among_the_subscribers() {
        let topics = Arc::new(Topics::default());
        let a = member(&topics, 1, SendLimits::queue(1 << 20));
        let b = member(&topics, 2, SendLimits::queue(1 << 20));
        let sender = member(&topics, 3, SendLimits::queue(1 << 20));
        for conn in [&a, &b, &sender] {
            assert_eq!(conn.subscribe("room"), Ok(true));
        }
        let payload = vec![7u8; 100_000];
        let report = sender.publish("room", payload.clone());
        assert_eq!(
            report,
            Published {
                delivered: 2,
                ..Published::default()
            }
        );
        let (fa, fb) = (queued_frames(&a), queued_frames(&b));
        assert_eq!((fa.len(), fb.len()), (1, 1));
        assert_eq!(fa[0].as_ptr(), fb[0].as_ptr(), "one buffer, not a copy");
        assert_eq!(fa[0].len(), 10 + payload.len(), "header and payload");
        assert_eq!(&fa[0][..2], [0x82, 127]);
        assert_eq!(&fa[0][10..], &payload[..]);
        assert!(queued_frames(&sender).is_empty(), "the sender is skipped");
    }

    #[test]
    fn leaving_from_the_middle_keeps_every_other_subscriber() {
        let topics = Arc::new(Topics::default());
        let conns: Vec<Connection> = (1..=6)
            .map(|id| member(&topics, id, SendLimits::queue(1 << 20)))
            .collect();
        for conn in &conns {
            conn.subscribe("room").unwrap();
        }
        // Each leave moves the last subscriber into the gap; the next
        // leave must still find the one it names.
        for (leaving, id) in [(1usize, 2u64), (5, 6), (0, 1), (3, 4)] {
            assert_eq!(conns[leaving].id(), id);
            assert!(conns[leaving].unsubscribe("room"));
            assert!(!conns[leaving].unsubscribe("room"));
        }
        let report = topics.publish("room", &"hi".into(), None);
        assert_eq!(report.delivered, 2);
        for conn in &conns {
            let expect = usize::from([3, 5].contains(&conn.id()));
            assert_eq!(
                queued_frames(conn).len(),
                expect,
                "connection {}",
                conn.id()
            );
        }
        for conn in [&conns[2], &conns[4]] {
            assert!(conn.unsubscribe("room"));
        }
        assert!(topics.read().get("room").is_none(), "the empty topic goes");
    }

    #[tokio::test]
    async fn a_burst_is_queued_after_its_first_message_is_written_through() {
        use tokio::io::AsyncReadExt;
        let topics = Arc::new(Topics::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = tokio::net::TcpStream::connect(listener.local_addr().unwrap());
        let (peer, accepted) = tokio::join!(peer, listener.accept());
        let mut peer = peer.unwrap();
        let conn = member(&topics, 1, SendLimits::queue(1 << 20));
        conn.share_socket(Arc::new(accepted.unwrap().0));
        conn.subscribe("t").unwrap();
        let one = encode(&"one".into());
        // Two publishes right behind each other: the first goes to the
        // idle subscriber's socket, the second waits for its task. (Tried
        // a few times: a pause between the two, on a loaded machine,
        // makes the second an isolated publish.)
        let mut burst = false;
        for _ in 0..20 {
            conn.drain(|_| (0, true, true));
            std::thread::sleep(BURST_GAP * 2);
            topics.publish("t", &"one".into(), None);
            topics.publish("t", &"two".into(), None);
            let queued = queued_frames(&conn);
            let mut written = vec![0; one.len()];
            peer.read_exact(&mut written).await.unwrap();
            assert_eq!(written, one, "the first is written through");
            if queued.is_empty() {
                let mut two = [0; 5];
                peer.read_exact(&mut two).await.unwrap();
                continue;
            }
            assert_eq!(queued, [encode(&"two".into())]);
            burst = true;
            break;
        }
        assert!(burst, "the second publish of a burst is queued");
    }

    #[test]
    fn subscribe_unsubscribe_and_the_end_of_a_connection_keep_the_map_exact() {
        let topics = Arc::new(Topics::default());
        let a = member(&topics, 1, SendLimits::queue(1 << 20));
        let b = member(&topics, 2, SendLimits::queue(1 << 20));
        assert_eq!(a.subscribe("x"), Ok(true));
        assert_eq!(a.subscribe("x"), Ok(false));
        a.subscribe("y").unwrap();
        b.subscribe("y").unwrap();
        assert_eq!(topics.read().len(), 2);
        assert!(a.unsubscribe("x"));
        assert!(!a.unsubscribe("x"));
        assert!(
            !topics.read().contains_key("x"),
            "the last one out removes it"
        );
        a.mark_closed();
        assert_eq!(topics.read()["y"].len(), 1);
        assert_eq!(a.subscribe("z"), Err(SendError::Closed));
        b.mark_closed();
        assert!(topics.read().is_empty());
        // Nothing left holds the handles: no cycle through the registry.
        assert_eq!(Arc::strong_count(&topics), 3);
        drop((a, b));
        assert_eq!(Arc::strong_count(&topics), 1);
    }

    #[test]
    fn a_full_subscriber_is_skipped_or_closed_never_waited_for() {
        let topics = Arc::new(Topics::default());
        let limits = |slow_consumer| SendLimits {
            max_send_queue: 10,
            slow_consumer,
            budget: Arc::new(Budget::new(usize::MAX)),
        };
        let skipped = member(&topics, 1, limits(SlowConsumer::Error));
        let closed = member(&topics, 2, limits(SlowConsumer::Close));
        skipped.subscribe("t").unwrap();
        closed.subscribe("t").unwrap();
        let sockets_publish = |msg: &str| topics.publish("t", &msg.into(), None);
        assert_eq!(sockets_publish("12345678").delivered, 2);
        let report = sockets_publish("more");
        assert_eq!((report.delivered, report.full, report.closed), (0, 2, 0));
        assert!(closed.tripped_slow_consumer());
        let report = sockets_publish("again");
        assert_eq!((report.full, report.closed), (1, 1));
        assert_eq!(report.skipped(), 2);
    }

    #[test]
    fn subscribers_without_server_context_share_one_compressed_frame() {
        let topics = Arc::new(Topics::default());
        let params = |bits, no_takeover| DeflateParams {
            server_no_context_takeover: no_takeover,
            client_no_context_takeover: true,
            server_max_window_bits: bits,
            client_max_window_bits: 15,
        };
        let config = DeflateConfig::default();
        let with = |id, params: DeflateParams| {
            let mut conn = member(&topics, id, SendLimits::queue(1 << 20));
            conn.set_deflate(&params, &config);
            conn.subscribe("t").unwrap();
            conn
        };
        let fresh = [with(1, params(15, true)), with(2, params(15, true))];
        let smaller_window = with(3, params(10, true));
        let takeover = with(4, params(15, false));
        let plain = member(&topics, 5, SendLimits::queue(1 << 20));
        plain.subscribe("t").unwrap();

        let text = "compressible text, ".repeat(100);
        assert_eq!(
            topics.publish("t", &text.as_str().into(), None).delivered,
            5
        );
        let [a, b] = fresh.each_ref().map(|c| queued_frames(c).remove(0));
        assert_eq!(a.as_ptr(), b.as_ptr(), "compressed once for both");
        assert_eq!(a[0], 0xC1, "FIN, RSV1, text");
        assert!(a.len() < text.len() / 4);
        let window_10 = queued_frames(&smaller_window).remove(0);
        assert_eq!(window_10[0], 0xC1);
        assert_ne!(
            window_10.as_ptr(),
            a.as_ptr(),
            "another window, another frame"
        );
        let [t, p] = [&takeover, &plain].map(|c| queued_frames(c).remove(0));
        assert_eq!(t.as_ptr(), p.as_ptr(), "the plain frame");
        assert_eq!(&t[..], &encode(&text.as_str().into())[..]);

        // Short messages go plain to everyone.
        topics.publish("t", &"short".into(), None);
        assert_eq!(&queued_frames(&fresh[0])[0][..], b"\x81\x05short");
    }
}
