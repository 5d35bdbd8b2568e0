//! The publishing connection: takes what this node publishes off the
//! broker's queue and sends it to Redis, in order, pipelined.
//!
//! One connection and one task keep the order Redis sees the same as the
//! order the node published in, so each subscriber elsewhere gets one
//! publisher's messages to one topic in order.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use tokio::sync::mpsc;
use wsroute::Inbox;

use crate::Shared;
use crate::stats::Link;

/// Channel and payload of one message to publish.
pub(crate) type Outgoing = (String, Bytes);

/// Messages sent in one pipeline, at most.
const MAX_BATCH: usize = 256;

/// How often an idle publisher looks whether its node is gone.
const IDLE_CHECK: Duration = Duration::from_secs(1);

pub(crate) async fn run(shared: Arc<Shared>, mut queue: mpsc::Receiver<Outgoing>, inbox: Inbox) {
    let mut backoff = shared.options.backoff(shared.node);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while !inbox.is_closed() {
        let mut conn = match connect(&shared).await {
            Ok(conn) => conn,
            Err(error) => {
                tracing::warn!(%error, "wsroute-redis: cannot connect to publish");
                shared.counters.down(Link::Publisher);
                drop_queued(&shared, &mut queue);
                tokio::time::sleep(backoff.next_delay()).await;
                continue;
            }
        };
        shared.counters.up(Link::Publisher);
        backoff.reset();
        loop {
            match tokio::time::timeout(IDLE_CHECK, queue.recv_many(&mut batch, MAX_BATCH)).await {
                Ok(0) => return,
                Ok(_) => {}
                Err(_) if inbox.is_closed() => return,
                Err(_) => continue,
            }
            let sent = batch.len() as u64;
            let mut pipe = redis::pipe();
            for (channel, payload) in batch.drain(..) {
                pipe.cmd("PUBLISH").arg(channel).arg(&payload[..]).ignore();
            }
            match pipe.query_async::<()>(&mut conn).await {
                Ok(()) => {
                    shared.counters.published.fetch_add(sent, Relaxed);
                }
                Err(error) => {
                    // Sent, or not: at most once, so never again.
                    shared.counters.unconfirmed.fetch_add(sent, Relaxed);
                    shared.counters.down(Link::Publisher);
                    tracing::warn!(%error, lost = sent, "wsroute-redis: publishing connection lost");
                    drop_queued(&shared, &mut queue);
                    break;
                }
            }
        }
    }
}

async fn connect(shared: &Shared) -> redis::RedisResult<MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(shared.options.connect_timeout))
        .set_response_timeout(Some(shared.options.response_timeout));
    shared
        .client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// Counts what waited in the queue as dropped: while Redis is away,
/// messages are not kept to be sent late (at most once, never stale).
fn drop_queued(shared: &Shared, queue: &mut mpsc::Receiver<Outgoing>) {
    let mut dropped = 0;
    while queue.try_recv().is_ok() {
        dropped += 1;
    }
    shared.counters.dropped.fetch_add(dropped, Relaxed);
}
