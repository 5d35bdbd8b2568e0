//! wsroute nodes in separate processes sharing one real `redis-server`:
//! cross-node delivery, upstream subscriptions, a Redis restart mid
//! traffic, and 1000 topics × 10 subscribers over 3 nodes.
//!
//! A plain `main` (harness = false): the same binary is also each node's
//! process (see `support::node`). Run one scenario with
//! `cargo test -p wsroute-redis --test nodes -- NAME`.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use support::client::Client;
use support::eventually;
use support::node::{self, NodeProcess};
use support::redis_server::RedisServer;

const SETTLE: Duration = Duration::from_secs(10);

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Ok(url) = std::env::var(node::ENV) {
        return runtime.block_on(node::run(&url));
    }
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    type Scenario = fn() -> std::pin::Pin<Box<dyn Future<Output = ()>>>;
    let scenarios: [(&str, Scenario); 5] = [
        ("two_nodes_deliver_to_each_other_once", || {
            Box::pin(two_nodes_deliver_to_each_other_once())
        }),
        ("three_nodes_each_get_every_other_nodes_messages", || {
            Box::pin(three_nodes())
        }),
        ("upstream_subscriptions_follow_local_subscribers", || {
            Box::pin(upstream_follows_local_subscribers())
        }),
        (
            "a_redis_restart_mid_traffic_is_survived_and_reported",
            || Box::pin(redis_restart()),
        ),
        (
            "thousand_topics_ten_subscribers_three_nodes_exactly_once_in_order",
            || Box::pin(thousand_topics()),
        ),
    ];
    let mut ran = 0;
    for (name, scenario) in scenarios {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let start = Instant::now();
        println!("test {name} ...");
        runtime.block_on(scenario());
        println!(
            "test {name} ... ok ({:.1} s)",
            start.elapsed().as_secs_f64()
        );
        ran += 1;
    }
    println!("\ntest result: ok. {ran} passed");
}

/// Waits until Redis shows `channel` listened to by `nodes` nodes.
async fn listened(redis: &RedisServer, channels: &[String], nodes: i64) {
    eventually(
        &format!("{} channels have {nodes} subscribed nodes", channels.len()),
        SETTLE,
        || async { redis.numsub(channels).await.iter().all(|&n| n == nodes) },
    )
    .await;
}

fn topics(names: &[&str]) -> Vec<String> {
    names.iter().map(|t| t.to_string()).collect()
}

async fn two_nodes_deliver_to_each_other_once() {
    let redis = RedisServer::start();
    let (a, b) = (
        NodeProcess::start(&redis.url()).await,
        NodeProcess::start(&redis.url()).await,
    );
    let mut on_a = Client::connect(&a.ws_url()).await;
    let mut on_b = Client::connect(&b.ws_url()).await;
    on_a.subscribe(&topics(&["room"])).await;
    on_b.subscribe(&topics(&["room"])).await;
    listened(&redis, &topics(&["wsroute:room"]), 2).await;

    let mut publisher_a = Client::connect(&a.ws_url()).await;
    let sent: Vec<String> = (0..50).map(|i| format!("from-a-{i}")).collect();
    for line in &sent {
        publisher_a.publish("room", line).await;
    }
    let quiet = Duration::from_millis(300);
    assert_eq!(
        on_b.drain(quiet).await,
        sent,
        "B gets A's messages, in order"
    );
    assert_eq!(
        on_a.drain(quiet).await,
        sent,
        "A's own subscriber: once, not again from Redis"
    );
    // The other way, from a subscriber: it is skipped, the others get it.
    on_b.publish("room", "from-b").await;
    assert_eq!(
        on_a.drain(quiet).await,
        ["from-b"],
        "{} {}",
        a.stats().await,
        b.stats().await
    );
    assert_eq!(
        on_b.drain(quiet).await,
        Vec::<String>::new(),
        "the sender is skipped"
    );
    assert!(publisher_a.drain(quiet).await.is_empty(), "not subscribed");

    let (sa, sb) = (a.stats().await, b.stats().await);
    assert_eq!(
        (sa["published"].as_u64(), sa["dropped"].as_u64()),
        (Some(50), Some(0)),
        "{sa}"
    );
    assert_eq!(
        (sa["received"].as_u64(), sb["received"].as_u64()),
        (Some(1), Some(50)),
        "{sa} {sb}"
    );
    // The health checks (a PING every 200 ms here) pass on a healthy link.
    assert_eq!(
        (sa["reconnects"].as_u64(), sb["reconnects"].as_u64()),
        (Some(0), Some(0)),
        "{sa} {sb}"
    );
}

async fn three_nodes() {
    let redis = RedisServer::start();
    let mut nodes = Vec::new();
    let mut subscribers = Vec::new();
    for _ in 0..3 {
        let node = NodeProcess::start(&redis.url()).await;
        let mut client = Client::connect(&node.ws_url()).await;
        client.subscribe(&topics(&["news"])).await;
        subscribers.push(client);
        nodes.push(node);
    }
    listened(&redis, &topics(&["wsroute:news"]), 3).await;
    let mut publishers = Vec::new();
    for node in &nodes {
        publishers.push(Client::connect(&node.ws_url()).await);
    }
    for round in 0..10 {
        for (n, publisher) in publishers.iter_mut().enumerate() {
            publisher.publish("news", &format!("{n}:{round}")).await;
        }
    }
    for (at, subscriber) in subscribers.iter_mut().enumerate() {
        let got = subscriber.drain(Duration::from_millis(300)).await;
        for n in 0..3 {
            let from_n: Vec<&String> = got
                .iter()
                .filter(|m| m.starts_with(&format!("{n}:")))
                .collect();
            let want: Vec<String> = (0..10).map(|r| format!("{n}:{r}")).collect();
            assert_eq!(
                from_n,
                want.iter().collect::<Vec<_>>(),
                "node {at} from node {n}"
            );
        }
        assert_eq!(got.len(), 30, "node {at}: nothing twice, nothing else");
    }
}

async fn upstream_follows_local_subscribers() {
    let redis = RedisServer::start();
    let a = NodeProcess::start(&redis.url()).await;
    let b = NodeProcess::start(&redis.url()).await;
    let ours = "wsroute:*";
    assert!(redis.channels(ours).await.is_empty());
    let mut first = Client::connect(&a.ws_url()).await;
    first.subscribe(&topics(&["x", "y"])).await;
    let mut second = Client::connect(&a.ws_url()).await;
    second.subscribe(&topics(&["x"])).await;
    let mut on_b = Client::connect(&b.ws_url()).await;
    on_b.subscribe(&topics(&["y"])).await;
    let both = topics(&["wsroute:x", "wsroute:y"]);
    eventually("x and y are listened to", SETTLE, || async {
        redis.channels(ours).await == both
    })
    .await;
    eventually("A once on x, A and B on y", SETTLE, || async {
        redis.numsub(&both).await == [1, 2]
    })
    .await;

    first.close().await;
    eventually(
        "y is B's alone; x stays, second is on it",
        SETTLE,
        || async { redis.numsub(&both).await == [1, 1] },
    )
    .await;
    second.send("unsub x".into()).await;
    eventually("nobody on x: A left it upstream", SETTLE, || async {
        redis.channels(ours).await == ["wsroute:y"]
    })
    .await;
    on_b.close().await;
    eventually("no channel left", SETTLE, || async {
        redis.channels(ours).await.is_empty()
    })
    .await;
    // And back, on a topic left before.
    second.subscribe(&topics(&["x"])).await;
    eventually("x again", SETTLE, || async {
        redis.channels(ours).await == ["wsroute:x"]
    })
    .await;
}

/// A publisher on A sends a numbered tick every 5 ms to a subscriber on A
/// and one on B; Redis is killed for a while, then started again.
async fn redis_restart() {
    let mut redis = RedisServer::start();
    let (a, b) = (
        NodeProcess::start(&redis.url()).await,
        NodeProcess::start(&redis.url()).await,
    );
    let mut on_a = Client::connect(&a.ws_url()).await;
    let mut on_b = Client::connect(&b.ws_url()).await;
    on_a.subscribe(&topics(&["tick"])).await;
    on_b.subscribe(&topics(&["tick"])).await;
    listened(&redis, &topics(&["wsroute:tick"]), 2).await;

    let tick = Duration::from_millis(5);
    let publisher = {
        let url = a.ws_url();
        tokio::spawn(async move {
            let mut client = Client::connect(&url).await;
            let mut clock = tokio::time::interval(tick);
            for seq in 0..1200u32 {
                clock.tick().await;
                client.publish("tick", &seq.to_string()).await;
            }
            client
        })
    };
    let receive = |mut client: Client| {
        tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(text) = client.recv_within(Duration::from_secs(3)).await {
                got.push((Instant::now(), text.parse::<u32>().unwrap()));
                if got.last().unwrap().1 == 1199 {
                    break;
                }
            }
            got
        })
    };
    let (at_a, at_b) = (receive(on_a), receive(on_b));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let killed = Instant::now();
    redis.kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    redis.restart();
    let restarted = Instant::now();
    let _publisher = publisher.await.unwrap();
    let (at_a, at_b) = (at_a.await.unwrap(), at_b.await.unwrap());

    let seqs = |got: &[(Instant, u32)]| got.iter().map(|(_, s)| *s).collect::<Vec<_>>();
    assert_eq!(
        seqs(&at_a),
        (0..1200).collect::<Vec<_>>(),
        "A's own subscriber got every tick, Redis or not"
    );
    let b_seqs = seqs(&at_b);
    assert!(
        b_seqs.windows(2).all(|w| w[0] < w[1]),
        "B: in order, nothing twice"
    );
    assert_eq!(
        b_seqs.last(),
        Some(&1199),
        "B gets ticks again after the restart"
    );
    let (gap_at, gap) = at_b
        .windows(2)
        .map(|w| (w[0].1, w[1].0 - w[0].0))
        .max_by_key(|(_, gap)| *gap)
        .unwrap();
    let missing = 1200 - b_seqs.len() as u64;
    let (sa, sb) = (a.stats().await, b.stats().await);
    let dropped = sa["dropped"].as_u64().unwrap() + sa["unconfirmed"].as_u64().unwrap();
    println!(
        "  redis down {:.0} ms; B's delivery stopped for {:.0} ms after tick {gap_at} \
         (back {:.0} ms after redis-server restarted); B missed {missing} of 1200 ticks; \
         A reported {} dropped + {} unconfirmed; reconnects A {} B {}; outage A {} ms, B {} ms",
        (restarted - killed).as_secs_f64() * 1e3,
        gap.as_secs_f64() * 1e3,
        (at_b.iter().find(|(t, _)| *t > restarted).unwrap().0 - restarted).as_secs_f64() * 1e3,
        sa["dropped"],
        sa["unconfirmed"],
        sa["reconnects"],
        sb["reconnects"],
        sa["last_outage_ms"],
        sb["last_outage_ms"],
    );
    assert!(
        missing > 0 && dropped > 0,
        "an outage of 1.5 s loses ticks, and A says so: {sa}"
    );
    assert!(
        dropped <= missing,
        "whatever A reports lost B did not get: {dropped} > {missing}"
    );
    for stats in [&sa, &sb] {
        assert_eq!(stats["connected"], true, "{stats}");
        assert!(stats["reconnects"].as_u64().unwrap() >= 1, "{stats}");
        assert!(stats["last_outage_ms"].as_u64().unwrap() >= 1000, "{stats}");
    }
}

async fn thousand_topics() {
    const TOPICS: usize = 1000;
    const PER_TOPIC: usize = 10;
    const CONNECTIONS: usize = 30;
    const ROUNDS: usize = 3;
    let redis = RedisServer::start();
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(NodeProcess::start(&redis.url()).await);
    }
    // Connection c is on node c % 3; topic t's subscribers are the ten
    // connections from t on, so every topic has subscribers on each node.
    let mut subscribed: Vec<Vec<String>> = vec![Vec::new(); CONNECTIONS];
    for t in 0..TOPICS {
        for k in 0..PER_TOPIC {
            subscribed[(t + k) % CONNECTIONS].push(format!("t{t}"));
        }
    }
    let mut clients = Vec::new();
    for (c, topics) in subscribed.iter().enumerate() {
        let mut client = Client::connect(&nodes[c % 3].ws_url()).await;
        client.subscribe(topics).await;
        clients.push(client);
    }
    let channels: Vec<String> = (0..TOPICS).map(|t| format!("wsroute:t{t}")).collect();
    listened(&redis, &channels, 3).await;

    let start = Instant::now();
    let mut publishers = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        let url = node.ws_url();
        publishers.push(tokio::spawn(async move {
            let mut client = Client::connect(&url).await;
            for round in 0..ROUNDS {
                for t in 0..TOPICS {
                    client
                        .publish(&format!("t{t}"), &format!("t{t}/{n}/{round}"))
                        .await;
                }
            }
            client
        }));
    }
    let expected_each: Vec<usize> = subscribed.iter().map(|t| t.len() * 3 * ROUNDS).collect();
    let mut receivers = Vec::new();
    for (client, want) in clients.into_iter().zip(expected_each.clone()) {
        receivers.push(tokio::spawn(async move {
            let mut client = client;
            let mut got = Vec::with_capacity(want);
            while got.len() < want {
                match client.recv_within(Duration::from_secs(10)).await {
                    Some(text) => got.push(text),
                    None => break,
                }
            }
            // Anything past what was sent would be a duplicate.
            got.extend(client.drain(Duration::from_millis(300)).await);
            got
        }));
    }
    for publisher in publishers {
        publisher.await.unwrap();
    }
    let mut delivered = 0;
    for (c, receiver) in receivers.into_iter().enumerate() {
        let got = receiver.await.unwrap();
        assert_eq!(
            got.len(),
            expected_each[c],
            "connection {c}: every message once"
        );
        // Per (topic, publishing node): rounds 0, 1, 2 in order.
        let mut next: HashMap<(String, String), usize> = HashMap::new();
        for message in &got {
            let mut parts = message.split('/');
            let (topic, node, round) = (
                parts.next().unwrap(),
                parts.next().unwrap(),
                parts.next().unwrap(),
            );
            assert!(
                subscribed[c].iter().any(|t| t == topic),
                "connection {c} got {message}, not subscribed"
            );
            let slot = next.entry((topic.to_owned(), node.to_owned())).or_default();
            assert_eq!(
                round.parse::<usize>().unwrap(),
                *slot,
                "connection {c}: {message} out of order"
            );
            *slot += 1;
        }
        assert!(
            next.values().all(|&n| n == ROUNDS),
            "connection {c}: all rounds of all publishers"
        );
        delivered += got.len();
    }
    println!(
        "  {} publishes, {delivered} deliveries checked in {:.1} s",
        3 * ROUNDS * TOPICS,
        start.elapsed().as_secs_f64()
    );
}
