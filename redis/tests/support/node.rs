//! A wsroute node with a Redis broker, in a process of its own: this test
//! binary run again with `WSROUTE_REDIS_NODE` set to the Redis URL.
//!
//! Its route `/ws` takes text commands: `sub T1 T2 …` (answered `ok N`),
//! `unsub T`, and `pub T PAYLOAD` (to every subscriber but the sender);
//! `GET /stats` answers the broker's counters as JSON. It stops when its
//! stdin closes, so it never outlives the test.

use std::process::Stdio;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use wsroute::{Config, Connection, Message, RouterExt, WebSockets};
use wsroute_redis::RedisBroker;

pub(crate) const ENV: &str = "WSROUTE_REDIS_NODE";

#[derive(Default)]
struct Node;

#[wsroute::websocket_route("/ws")]
impl Node {
    async fn message(&mut self, conn: &Connection, msg: Message) {
        let Some(text) = msg.as_text() else { return };
        let mut words = text.splitn(3, ' ');
        match (words.next(), words.next(), words.next()) {
            (Some("sub"), Some(first), rest) => {
                let topics =
                    std::iter::once(first).chain(rest.into_iter().flat_map(|r| r.split(' ')));
                let n = topics.filter(|t| conn.subscribe(t) == Ok(true)).count();
                let _ = conn.send_text(format!("ok {n}"));
            }
            (Some("unsub"), Some(topic), None) => {
                conn.unsubscribe(topic);
            }
            (Some("pub"), Some(topic), Some(payload)) => {
                conn.publish(topic, payload.to_owned());
            }
            _ => {
                let _ = conn.send_text(format!("bad command: {text}"));
            }
        }
    }
}

/// The node's own `main`.
pub(crate) async fn run(url: &str) {
    let broker = RedisBroker::builder(url)
        .unwrap()
        .ping_interval(Duration::from_millis(200))
        .timeouts(Duration::from_millis(500), Duration::from_millis(500))
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        .build();
    let config = Config::default().max_send_queue(8 << 20);
    let sockets = WebSockets::with_broker(config, broker.clone());
    let app = Router::new().websocket::<Node>(&sockets).route(
        "/stats",
        get(move || {
            let stats = broker.stats();
            async move {
                serde_json::json!({
                    "published": stats.published,
                    "dropped": stats.dropped,
                    "unconfirmed": stats.unconfirmed,
                    "received": stats.received,
                    "refused": stats.refused,
                    "reconnects": stats.reconnects,
                    "connected": stats.connected,
                    "last_outage_ms": stats.last_outage.map(|d| d.as_millis() as u64),
                })
                .to_string()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("port {}", listener.local_addr().unwrap().port());
    let stdin_closed = async {
        let _ = tokio::io::stdin().read_to_end(&mut Vec::new()).await;
    };
    wsroute::serve(listener, app, &sockets, stdin_closed)
        .await
        .unwrap();
}

/// A node process, killed when dropped.
pub(crate) struct NodeProcess {
    pub(crate) port: u16,
    _child: Child,
}

impl NodeProcess {
    pub(crate) async fn start(redis_url: &str) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(ENV, redis_url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start a node");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .expect("the node says its port")
            .unwrap()
            .expect("a line");
        let port = line.strip_prefix("port ").expect("port N").parse().unwrap();
        Self {
            port,
            _child: child,
        }
    }

    pub(crate) fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }

    /// The broker's counters, from `GET /stats`.
    pub(crate) async fn stats(&self) -> serde_json::Value {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .unwrap();
        stream
            .write_all(b"GET /stats HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let body = response.split("\r\n\r\n").nth(1).expect("a body");
        serde_json::from_str(body).unwrap_or_else(|e| panic!("stats {body:?}: {e}"))
    }
}
