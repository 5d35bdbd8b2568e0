//! What the node tests run on: a real `redis-server`, wsroute nodes in
//! their own processes, and WebSocket clients.

pub(crate) mod client;
pub(crate) mod node;
pub(crate) mod redis_server;

use std::time::{Duration, Instant};

/// Polls `check` until it holds, or panics with `what` after `limit`.
pub(crate) async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
