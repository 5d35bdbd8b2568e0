//! Cross-node delivery through Redis: a publisher on node A, 1000
//! subscribers on node B, each node a wsroute process with a
//! `wsroute-redis` broker, and a `redis-server` of the benchmark's own.
//! Beside it, the same load with the subscribers on A, delivered
//! directly (A still sends each message to Redis, and drops it when
//! Redis sends it back), for what the hop costs.
//!
//! Two phases per round: 300 messages paced at 100/s for latency
//! (publish to each delivery, and publish to the last of the 1000
//! deliveries), then a burst of 2000 for throughput (messages/s until the
//! last subscriber has them all, and node CPU per delivery). Every
//! message must reach every subscriber: a round that loses one says so.
//!
//! `cargo run --release -p wsroute-bench --bin cross-node [-- --subscribers N --rounds R]`
//! writes `bench/results/cross-node.md`.

mod node;
mod subscriber;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::io::AsyncWriteExt;
use wsroute_bench::raw_client::{self, TEXT};
use wsroute_bench::{procfs, spawned};

const PACED: u32 = 300;
const PACE: Duration = Duration::from_millis(10);
const BURST: u32 = 2000;
const PAYLOAD: usize = 64;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(url) = flag(&args, "--node") {
        return node::run(&url);
    }
    let subscribers: usize =
        flag(&args, "--subscribers").map_or(1000, |s| s.parse().expect("a count"));
    let rounds: usize = flag(&args, "--rounds").map_or(3, |s| s.parse().expect("a count"));
    spawned::raise_own_fd_limit(subscribers as u64 * 2 + 256);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let redis = Redis::start();
    let nodes = [Node::start(&redis.url()), Node::start(&redis.url())];
    let mut table = String::new();
    table.push_str(&format!(
        "| path | round | deliver p50 | deliver p99 | last of {subscribers} p50 | last p99 | burst msg/s | deliveries/s | CPU µs/delivery (subscribers' node) | lost |\n|---|---|---|---|---|---|---|---|---|---|\n"
    ));
    let mut summary: Vec<(&str, Vec<Round>)> = Vec::new();
    for (path, sub_node) in [
        ("cross-node (A → Redis → B)", 1),
        ("same node (A → A; Redis still sent it)", 0),
    ] {
        let mut results = Vec::new();
        for round in 1..=rounds {
            let r = runtime.block_on(one_round(&redis, &nodes, sub_node, subscribers));
            table.push_str(&format!(
                "| {path} | {round} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.0} | {:.0} | {:.2} | {} |\n",
                r.deliver_p50, r.deliver_p99, r.last_p50, r.last_p99, r.msgs_per_s, r.deliveries_per_s, r.cpu_us_per_delivery, r.lost
            ));
            eprintln!("{path} round {round}: {r:?}");
            results.push(r);
        }
        summary.push((path, results));
    }
    let mut medians = String::from(
        "| path | deliver p50 | deliver p99 | last-of-N p50 | last-of-N p99 | burst msg/s | deliveries/s | CPU µs/delivery | lost |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for (path, results) in &summary {
        let m = |f: fn(&Round) -> f64| median_spread(results.iter().map(f).collect());
        medians.push_str(&format!(
            "| {path} | {} ms | {} ms | {} ms | {} ms | {} | {} | {} | {} |\n",
            m(|r| r.deliver_p50),
            m(|r| r.deliver_p99),
            m(|r| r.last_p50),
            m(|r| r.last_p99),
            m(|r| r.msgs_per_s),
            m(|r| r.deliveries_per_s),
            m(|r| r.cpu_us_per_delivery),
            results.iter().map(|r| r.lost).sum::<u64>()
        ));
    }
    let report = format!(
        "# Cross-node delivery through Redis\n\n`cargo run --release -p wsroute-bench --bin cross-node -- --subscribers {subscribers} --rounds {rounds}`\n\n\
         {subscribers} subscribers on one node, one publisher on node A; redis-server {}; {} cores, load average before {:.2}. \
         Medians of {rounds} rounds, with (min–max).\n\n{medians}\n## Every round\n\n{table}",
        redis.version(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    println!("{report}");
    let out = concat!(env!("CARGO_MANIFEST_DIR"), "/results/cross-node.md");
    std::fs::write(out, report).expect("write the results");
    eprintln!("wrote {out}");
}

#[derive(Debug, Default)]
struct Round {
    deliver_p50: f64,
    deliver_p99: f64,
    last_p50: f64,
    last_p99: f64,
    msgs_per_s: f64,
    deliveries_per_s: f64,
    cpu_us_per_delivery: f64,
    lost: u64,
}

async fn one_round(redis: &Redis, nodes: &[Node; 2], sub_node: usize, n: usize) -> Round {
    let received = Arc::new(AtomicU64::new(0));
    let total = PACED + BURST;
    let mut readers = Vec::with_capacity(n);
    for _ in 0..n {
        let (stream, rest) = raw_client::upgrade(&nodes[sub_node].addr(), "/sub")
            .await
            .expect("subscribe");
        readers.push(tokio::spawn(subscriber::read(
            stream,
            rest,
            total,
            Arc::clone(&received),
        )));
    }
    // Until the subscribers' node listens upstream, and only it.
    let settle = Instant::now();
    while redis.numsub("wsroute:bench").await != 1 {
        assert!(
            settle.elapsed() < Duration::from_secs(10),
            "node never subscribed upstream"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (mut publisher, _) = raw_client::upgrade(&nodes[0].addr(), "/pub")
        .await
        .expect("publisher");

    let mut clock = tokio::time::interval(PACE);
    for seq in 0..PACED {
        clock.tick().await;
        publisher.write_all(&message(seq)).await.unwrap();
    }
    wait_for(
        &received,
        n as u64 * u64::from(PACED),
        Duration::from_secs(10),
    )
    .await;

    let cpu = |node: &Node| procfs::cpu_time(node.pid()).unwrap();
    let cpu_sub0 = cpu(&nodes[sub_node]);
    let start = Instant::now();
    let mut burst = Vec::with_capacity(BURST as usize * (PAYLOAD + 8));
    for seq in PACED..total {
        burst.extend_from_slice(&message(seq));
    }
    publisher.write_all(&burst).await.unwrap();
    let target = n as u64 * u64::from(total);
    let complete = wait_for(&received, target, Duration::from_secs(60)).await;
    let elapsed = start.elapsed().as_secs_f64();
    let cpu_sub = cpu(&nodes[sub_node]) - cpu_sub0;

    let mut deliver = Histogram::<u64>::new(3).unwrap();
    let mut last = vec![0u64; PACED as usize];
    for reader in readers {
        for (seq, latency) in reader.await.unwrap() {
            if seq < PACED {
                deliver.record(latency.max(1)).unwrap();
                last[seq as usize] = last[seq as usize].max(latency);
            }
        }
    }
    let mut last_hist = Histogram::<u64>::new(3).unwrap();
    for l in last {
        last_hist.record(l.max(1)).unwrap();
    }
    let ms = |ns: u64| ns as f64 / 1e6;
    let burst_deliveries = n as f64 * f64::from(BURST);
    Round {
        deliver_p50: ms(deliver.value_at_quantile(0.5)),
        deliver_p99: ms(deliver.value_at_quantile(0.99)),
        last_p50: ms(last_hist.value_at_quantile(0.5)),
        last_p99: ms(last_hist.value_at_quantile(0.99)),
        msgs_per_s: f64::from(BURST) / elapsed,
        deliveries_per_s: burst_deliveries / elapsed,
        cpu_us_per_delivery: cpu_sub.as_secs_f64() * 1e6 / burst_deliveries,
        lost: target - complete,
    }
}

/// A masked text frame of `PAYLOAD` bytes: the sequence number and the
/// wall-clock time it was made, in nanoseconds.
fn message(seq: u32) -> Vec<u8> {
    let mut text = format!("{seq:010} {:020} ", subscriber::now_ns());
    text.extend(std::iter::repeat_n('x', PAYLOAD - text.len()));
    raw_client::frame(true, TEXT, text.as_bytes())
}

/// Waits until `counter` reaches `target` or `limit` passes; returns it.
async fn wait_for(counter: &AtomicU64, target: u64, limit: Duration) -> u64 {
    let start = Instant::now();
    loop {
        let now = counter.load(Ordering::Acquire);
        if now >= target || start.elapsed() > limit {
            return now;
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .map(|i| args.get(i + 1).cloned().expect("a value"))
}

fn median_spread(mut values: Vec<f64>) -> String {
    values.sort_by(f64::total_cmp);
    let (min, max) = (values[0], values[values.len() - 1]);
    let median = values[values.len() / 2];
    let digits = if median >= 100.0 { 0 } else { 2 };
    format!("{median:.digits$} ({min:.digits$}–{max:.digits$})")
}

fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split(' ').next().and_then(|l| l.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// A wsroute node: this binary again, with `--node`.
struct Node {
    child: Child,
    port: u16,
}

impl Node {
    fn start(redis_url: &str) -> Self {
        use std::io::BufRead;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--node", redis_url])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start a node");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("port ")
            .expect("port N")
            .parse()
            .unwrap();
        Self { child, port }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The benchmark's own `redis-server`, on a free loopback port.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (bash .ci/setup installs it)");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Self { child, port }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn version(&self) -> String {
        let out = Command::new("redis-server")
            .arg("--version")
            .output()
            .map(|o| o.stdout)
            .unwrap_or_default();
        let out = String::from_utf8_lossy(&out);
        out.split_whitespace()
            .find_map(|w| w.strip_prefix("v="))
            .unwrap_or("?")
            .to_owned()
    }

    async fn numsub(&self, channel: &str) -> i64 {
        use wsroute_redis::redis;
        let mut conn = redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let pairs: Vec<(String, i64)> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query_async(&mut conn)
            .await
            .unwrap();
        pairs[0].1
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
