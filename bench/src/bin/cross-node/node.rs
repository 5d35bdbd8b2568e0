//! One node of the cross-node benchmark: wsroute with a Redis broker.
//! `/sub` subscribes to the topic `bench` on open; what `/pub` receives
//! is published there (to every subscriber, on every node).

use wsroute::{Config, Connection, Message, RouterExt, WebSockets};
use wsroute_redis::RedisBroker;

pub(crate) const TOPIC: &str = "bench";

#[derive(Default)]
struct Sub;

#[wsroute::websocket_route("/sub")]
impl Sub {
    async fn open(&mut self, conn: &Connection) {
        let _ = conn.subscribe(TOPIC);
    }
}

#[derive(Default)]
struct Pub;

#[wsroute::websocket_route("/pub")]
impl Pub {
    async fn message(&mut self, conn: &Connection, msg: Message) {
        conn.publish(TOPIC, msg);
    }
}

/// Serves until stdin closes; prints `port N` first.
pub(crate) fn run(redis_url: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let broker = RedisBroker::new(redis_url).expect("a redis:// URL");
        // Room for a whole burst per subscriber: the benchmark counts
        // every message, so none may be skipped for a full queue.
        let config = Config::default()
            .max_send_queue(16 << 20)
            .max_buffered(4 << 30);
        let sockets = WebSockets::with_broker(config, broker);
        let app = axum::Router::new()
            .websocket::<Sub>(&sockets)
            .websocket::<Pub>(&sockets);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!("port {}", listener.local_addr().expect("addr").port());
        let stdin_closed = async {
            use tokio::io::AsyncReadExt;
            let _ = tokio::io::stdin().read_to_end(&mut Vec::new()).await;
        };
        wsroute::serve(listener, app, &sockets, stdin_closed)
            .await
            .expect("serve");
    });
}
