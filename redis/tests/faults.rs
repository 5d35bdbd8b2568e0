//! What a Redis that misbehaves does to a node, with the nodes in this
//! process (served by `wsroute::test`, no port) and a real `redis-server`
//! of each test's own: error replies to `PUBLISH`, large messages, a
//! stalled server, and a flood from other nodes.

#[allow(dead_code)] // shared with `nodes.rs`, which uses all of it
#[path = "support/redis_server.rs"]
mod redis_server;

use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use redis::aio::MultiplexedConnection;
use redis_server::RedisServer;
use wsroute::test::{TestServer, TestSocket};
use wsroute::{Config, Connection, Forward, Message, RouterExt, WebSockets};
use wsroute_redis::{Builder, RedisBroker, Stats};

/// Subscribes to the topic of its first message and answers `ok`.
#[derive(Default)]
struct Subscriber;

#[wsroute::websocket_route("/ws")]
impl Subscriber {
    async fn message(&mut self, conn: &Connection, msg: Message) {
        if let Some(topic) = msg.as_text() {
            conn.subscribe(topic).unwrap();
            conn.send_text("ok").unwrap();
        }
    }
}

struct Node {
    sockets: WebSockets,
    broker: RedisBroker,
    server: TestServer,
}

impl Node {
    fn new(builder: Builder) -> Self {
        let broker = builder.build();
        let config = Config::default().max_send_queue(64 << 20);
        let sockets = WebSockets::with_broker(config, broker.clone());
        let server = TestServer::new(axum::Router::new().websocket::<Subscriber>(&sockets));
        Self {
            sockets,
            broker,
            server,
        }
    }

    async fn subscriber(&self, topic: &str) -> TestSocket {
        let mut client = self.server.connect("/ws").await;
        client.send_text(topic).await;
        assert_eq!(client.recv_text().await, "ok");
        client
    }

    async fn until(&self, what: &str, done: impl Fn(&Stats) -> bool) -> Stats {
        let start = Instant::now();
        loop {
            let stats = self.broker.stats();
            if done(&stats) {
                return stats;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "gave up waiting until {what}: {stats:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Quick to notice and to retry, so the tests are short.
fn builder(url: &str) -> Builder {
    RedisBroker::builder(url)
        .unwrap()
        .timeouts(Duration::from_millis(500), Duration::from_millis(300))
        .ping_interval(Duration::from_millis(200))
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
}

/// Lets Redis's default user use only the channels of topics `ok…`.
async fn only_channels_ok(redis: &RedisServer) {
    redis::cmd("ACL")
        .arg("SETUSER")
        .arg("default")
        .arg("resetchannels")
        .arg("&wsroute:ok*")
        .query_async::<()>(&mut redis.connection().await)
        .await
        .unwrap();
}

/// Waits until Redis lists `channel` as subscribed.
async fn listed(redis: &RedisServer, channel: &str) {
    let start = Instant::now();
    while redis.channels(channel).await.is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{channel} never subscribed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// What another node's publish of `text` looks like on the channel.
fn payload(text: &str) -> Vec<u8> {
    let mut out = BytesMut::new();
    out.put_u8(0x10); // text
    out.put_u64_le(1); // from node 1: not one of this test's
    out.put_slice(text.as_bytes());
    out.to_vec()
}

/// Another node's publish of `text` to `channel`.
async fn publish_elsewhere(conn: &mut MultiplexedConnection, channel: &str, text: &str) {
    redis::cmd("PUBLISH")
        .arg(channel)
        .arg(payload(text))
        .query_async::<i64>(conn)
        .await
        .unwrap();
}

/// Another node's burst: `count` publishes of `text`, pipelined 5000 at
/// a time, so that Redis takes them faster than a node delivers them.
async fn flood(conn: &mut MultiplexedConnection, channel: &str, text: &str, count: u64) {
    let message = payload(text);
    let mut left = count;
    while left > 0 {
        let mut pipe = redis::pipe();
        for _ in 0..left.min(5_000) {
            pipe.cmd("PUBLISH").arg(channel).arg(&message).ignore();
        }
        pipe.query_async::<()>(conn).await.unwrap();
        left -= left.min(5_000);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_refuses_every_publish_is_retried_with_backoff() {
    let redis = RedisServer::start_with(&["--requirepass", "secret"]);
    // No password: Redis takes the connection, then answers every command
    // with NOAUTH.
    let node = Node::new(builder(&redis.url()));
    let start = Instant::now();
    let mut sent = 0;
    while start.elapsed() < Duration::from_millis(1500) {
        node.sockets.publish("news", "hello");
        sent += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stats = node
        .until("every publish is accounted for", |s| {
            s.published + s.dropped + s.unconfirmed == sent
        })
        .await;
    assert_eq!(stats.published, 0, "{stats:?}");
    assert_eq!(
        stats.unconfirmed, 0,
        "refused is not unconfirmed: {stats:?}"
    );
    // 20 ms doubling to 200 ms: about nine attempts in 1.5 s, where a
    // reconnect after each batch made one every 10 ms.
    assert!(stats.reconnects <= 15, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_redis_forbids_costs_only_its_own_messages() {
    let redis = RedisServer::start();
    only_channels_ok(&redis).await;
    let node = Node::new(builder(&redis.url()));
    node.until("connected", |s| s.connected).await;
    for i in 0..300 {
        let topic = if i % 3 == 0 { "secret" } else { "ok" };
        node.sockets.publish(topic, format!("{i}"));
    }
    let stats = node
        .until("every publish is accounted for", |s| {
            s.published + s.dropped + s.unconfirmed == 300
        })
        .await;
    assert_eq!((stats.published, stats.dropped), (200, 100), "{stats:?}");
    assert_eq!(stats.unconfirmed, 0, "{stats:?}");
    assert_eq!(stats.reconnects, 0, "the connection was fine: {stats:?}");
}

// On one thread: the broker's task starts sending only once all of it is
// queued, as when a node publishes faster than Redis takes it.
#[tokio::test]
async fn large_messages_are_not_taken_for_a_lost_connection() {
    let redis = RedisServer::start();
    // A short wait for answers, and room for all of it in the queue.
    let builder = builder(&redis.url())
        .timeouts(Duration::from_millis(500), Duration::from_millis(100))
        .queue_bytes(256 << 20);
    let node = Node::new(builder);
    node.until("connected", |s| s.connected).await;
    // 160 MiB in all, more than Redis reads in the 100 ms: sent in one
    // pipeline, it timed out, and what it held was counted unconfirmed.
    let big = bytes::Bytes::from(vec![b'x'; 4 << 20]);
    for _ in 0..40 {
        let report = node.sockets.publish("big", big.clone());
        assert_eq!(report.forward, Forward::Queued);
    }
    let stats = node
        .until("every publish is accounted for", |s| {
            s.published + s.dropped + s.unconfirmed == 40
        })
        .await;
    assert_eq!(stats.published, 40, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_waits_for_a_stalled_redis_is_bounded_in_bytes() {
    let redis = RedisServer::start();
    let node = Node::new(builder(&redis.url()).queue_bytes(8 << 20));
    node.until("connected", |s| s.connected).await;
    redis.pause(true);
    let message = vec![b'x'; 1 << 20];
    let mut queued = 0;
    for _ in 0..100 {
        if node.sockets.publish("news", message.clone()).forward == Forward::Queued {
            queued += 1;
        }
    }
    redis.pause(false);
    // What the queue holds, and at most one batch on its way out.
    assert!(
        queued <= 8 + 2,
        "{queued} of 100 MiB queued for a stalled Redis"
    );
    let stats = node
        .until("every publish is accounted for", |s| {
            s.published + s.dropped + s.unconfirmed == 100
        })
        .await;
    assert!(stats.dropped >= 100 - queued, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_other_nodes_does_not_hold_back_a_new_subscription() {
    const FLOOD: u64 = 50_000;
    let redis = RedisServer::start();
    // The usual answer timeout: a PING waits behind the flood on the
    // wire, which a debug build reads slowly.
    let node =
        Node::new(builder(&redis.url()).timeouts(Duration::from_secs(2), Duration::from_secs(2)));
    let mut hot = Vec::new();
    for _ in 0..100 {
        hot.push(node.subscriber("hot").await);
    }
    let mut publisher = redis.connection().await;
    listed(&redis, "wsroute:hot").await;
    // Another node's burst: Redis takes it at once, and this node
    // delivers it to its hundred subscribers for seconds.
    flood(&mut publisher, "wsroute:hot", "x", FLOOD).await;
    node.until("the flood arrives", |s| s.received > 0).await;
    let _cold = node.subscriber("cold").await;
    listed(&redis, "wsroute:cold").await;
    let received = node.broker.stats().received;
    assert!(
        received < FLOOD,
        "SUBSCRIBE went out only after all {received} flooded messages were delivered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_redis_forbids_does_not_cut_the_node_off_from_the_others() {
    let redis = RedisServer::start();
    only_channels_ok(&redis).await;
    let node = Node::new(builder(&redis.url()));
    let _secret = node.subscriber("secret").await;
    let mut ok = node.subscriber("ok").await;
    listed(&redis, "wsroute:ok").await;
    let mut other_node = redis.connection().await;
    publish_elsewhere(&mut other_node, "wsroute:ok", "still here").await;
    assert_eq!(ok.recv_text().await, "still here");
    assert!(redis.channels("wsroute:secret").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_falls_behind_drops_and_counts_what_it_cannot_hold() {
    const FLOOD: u64 = 20_000;
    let redis = RedisServer::start();
    let node = Node::new(
        builder(&redis.url())
            .timeouts(Duration::from_secs(2), Duration::from_secs(2))
            .backlog_bytes(256 << 10),
    );
    let mut hot = Vec::new();
    for _ in 0..100 {
        hot.push(node.subscriber("hot").await);
    }
    let mut publisher = redis.connection().await;
    listed(&redis, "wsroute:hot").await;
    // 20 MiB that Redis hands over at once, to a node that delivers each
    // message a hundred times.
    flood(&mut publisher, "wsroute:hot", &"x".repeat(1024), FLOOD).await;
    let stats = node
        .until("every flooded message is delivered or counted", |s| {
            s.received + s.lagged == FLOOD
        })
        .await;
    assert!(
        stats.lagged > 0 && stats.received < FLOOD,
        "all {} held and delivered: the backlog was not bounded",
        stats.received
    );
    // Caught up, it delivers again as usual.
    let mut late = node.subscriber("hot").await;
    publish_elsewhere(&mut publisher, "wsroute:hot", "after").await;
    assert_eq!(late.recv_text().await, "after");
    let after = node
        .until("it is delivered", |s| s.received > stats.received)
        .await;
    assert_eq!(after.lagged, stats.lagged);
    assert!(after.connected, "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nodes_own_messages_back_from_redis_are_not_held_or_counted() {
    let redis = RedisServer::start();
    // Room for nothing: whatever is held is counted lagged.
    let node = Node::new(builder(&redis.url()).backlog_bytes(0));
    let _subscriber = node.subscriber("news").await;
    listed(&redis, "wsroute:news").await;
    // The subscribed connection is up; the publishing one may not be yet,
    // and a publish before it is dropped (counted so), not sent.
    node.until("connected", |s| s.connected).await;
    for i in 0..100 {
        node.sockets.publish("news", format!("{i}"));
    }
    node.until("Redis takes them", |s| s.published == 100).await;
    // Another node's message after them: once it is counted, every one
    // of ours has come back.
    let mut other_node = redis.connection().await;
    publish_elsewhere(&mut other_node, "wsroute:news", "from elsewhere").await;
    let stats = node.until("it arrives", |s| s.lagged > 0).await;
    assert_eq!(
        (stats.lagged, stats.received),
        (1, 0),
        "the node's own messages took room from other nodes' ones"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_redis_own_subscriber_limit_costs_a_reconnect_not_the_node() {
    let redis = RedisServer::start();
    let node = Node::new(builder(&redis.url()));
    let mut subscriber = node.subscriber("big").await;
    listed(&redis, "wsroute:big").await;
    let mut other_node = redis.connection().await;
    // Over the 32 MB that Redis lets wait for one subscriber by default.
    publish_elsewhere(&mut other_node, "wsroute:big", &"x".repeat(40 << 20)).await;
    node.until("Redis cuts it off and it is back", |s| {
        s.reconnects >= 1 && s.connected
    })
    .await;
    listed(&redis, "wsroute:big").await;
    publish_elsewhere(&mut other_node, "wsroute:big", "small").await;
    assert_eq!(subscriber.recv_text().await, "small");
}
