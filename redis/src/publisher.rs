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
use redis::RedisResult;
use redis::aio::MultiplexedConnection;
use tokio::sync::mpsc;
use wsroute::Inbox;

use crate::Shared;
use crate::stats::Link;

/// Channel and payload of one message to publish.
pub(crate) type Outgoing = (String, Bytes);

/// Messages sent in one pipeline, at most.
const MAX_BATCH: usize = 256;

/// Payload bytes one pipeline takes more messages up to: a pipeline of
/// large messages is slow to send, and is answered only when all of it
/// has arrived.
const MAX_BATCH_BYTES: usize = 1 << 20;

/// The slowest link to Redis a batch is given time for, in bytes per
/// second, on top of the response timeout: a 64 MiB message is not a
/// lost connection for taking longer to send than a short one.
const MIN_BYTES_PER_SECOND: u64 = 8 << 20;

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
        let mut idle = Duration::ZERO;
        loop {
            match tokio::time::timeout(IDLE_CHECK, next_batch(&shared, &mut queue, &mut batch))
                .await
            {
                Ok(false) => return,
                Ok(true) => idle = Duration::ZERO,
                Err(_) if inbox.is_closed() => return,
                Err(_) => {
                    // A connection Redis closed while nothing was sent
                    // shows here, not on the next publishes.
                    idle += IDLE_CHECK;
                    if idle >= shared.options.ping_interval {
                        idle = Duration::ZERO;
                        if let Err(error) = ping(&shared, &mut conn).await {
                            tracing::warn!(%error, "wsroute-redis: publishing connection lost");
                            shared.counters.down(Link::Publisher);
                            break;
                        }
                    }
                    continue;
                }
            }
            match send(&shared, &mut conn, &mut batch).await {
                // Only a connection that published resets the backoff: one
                // Redis accepts but answers every command with an error
                // (a missing password) is tried again ever more slowly.
                Sent::Published => backoff.reset(),
                Sent::Refused => {
                    shared.counters.down(Link::Publisher);
                    drop_queued(&shared, &mut queue);
                    tokio::time::sleep(backoff.next_delay()).await;
                    break;
                }
                Sent::Lost => {
                    shared.counters.down(Link::Publisher);
                    drop_queued(&shared, &mut queue);
                    break;
                }
            }
        }
    }
}

/// Waits for the next message, then takes what else waits behind it, up
/// to a batch; `false` once the broker is gone.
async fn next_batch(
    shared: &Shared,
    queue: &mut mpsc::Receiver<Outgoing>,
    batch: &mut Vec<Outgoing>,
) -> bool {
    let Some(first) = queue.recv().await else {
        return false;
    };
    let mut bytes = first.1.len();
    batch.push(first);
    while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
        let Ok(next) = queue.try_recv() else { break };
        bytes += next.1.len();
        batch.push(next);
    }
    shared.unqueue(bytes);
    true
}

/// What became of a batch.
enum Sent {
    /// Redis answered for each message: took it, or refused it alone
    /// (no permission for its channel, say).
    Published,
    /// Redis refused this connection everything (not authenticated, still
    /// loading its data).
    Refused,
    /// No answer, or the connection broke.
    Lost,
}

async fn send(
    shared: &Shared,
    conn: &mut MultiplexedConnection,
    batch: &mut Vec<Outgoing>,
) -> Sent {
    let counters = &shared.counters;
    let count = batch.len() as u64;
    let bytes: usize = batch.iter().map(|(_, payload)| payload.len()).sum();
    let mut pipe = redis::pipe();
    // Each message's answer on its own: an error reply (no permission for
    // one channel, say) is that message's, not the connection's.
    pipe.ignore_errors();
    for (channel, payload) in batch.drain(..) {
        pipe.cmd("PUBLISH").arg(channel).arg(&payload[..]);
    }
    let limit = shared.options.response_timeout
        + Duration::from_secs_f64(bytes as f64 / MIN_BYTES_PER_SECOND as f64);
    let answers =
        tokio::time::timeout(limit, pipe.query_async::<Vec<RedisResult<i64>>>(conn)).await;
    let answers = match answers {
        Ok(Ok(answers)) => answers,
        failed => {
            // Sent, or not: at most once, so never again.
            counters.unconfirmed.fetch_add(count, Relaxed);
            let error = match failed {
                Ok(Err(error)) => error.to_string(),
                _ => format!("no answer within {limit:?}"),
            };
            tracing::warn!(%error, lost = count, "wsroute-redis: publishing connection lost");
            return Sent::Lost;
        }
    };
    let mut refused = 0;
    let mut first_error = None;
    for answer in answers {
        if let Err(error) = answer {
            refused += 1;
            first_error.get_or_insert(error);
        }
    }
    counters.published.fetch_add(count - refused, Relaxed);
    counters.dropped.fetch_add(refused, Relaxed);
    let Some(error) = first_error else {
        return Sent::Published;
    };
    tracing::warn!(%error, refused, of = count, "wsroute-redis: Redis refused to publish");
    if refuses_the_connection(&error) {
        Sent::Refused
    } else {
        Sent::Published
    }
}

/// Whether Redis answers `error` to every command on this connection, not
/// only to the message it answered.
fn refuses_the_connection(error: &redis::RedisError) -> bool {
    matches!(error.code(), Some("NOAUTH" | "WRONGPASS" | "LOADING"))
}

async fn ping(shared: &Shared, conn: &mut MultiplexedConnection) -> RedisResult<()> {
    let ping = redis::cmd("PING");
    let answer = ping.query_async::<redis::Value>(conn);
    match tokio::time::timeout(shared.options.response_timeout, answer).await {
        Ok(answer) => answer.map(drop),
        Err(_) => Err(std::io::Error::from(std::io::ErrorKind::TimedOut).into()),
    }
}

async fn connect(shared: &Shared) -> RedisResult<MultiplexedConnection> {
    // No response timeout on the connection: each batch has its own, by
    // its size (`send`).
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(shared.options.connect_timeout))
        .set_response_timeout(None);
    shared
        .client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// Counts what waited in the queue as dropped: while Redis is away,
/// messages are not kept to be sent late (at most once, never stale).
fn drop_queued(shared: &Shared, queue: &mut mpsc::Receiver<Outgoing>) {
    let (mut dropped, mut bytes) = (0, 0);
    while let Ok((_, payload)) = queue.try_recv() {
        dropped += 1;
        bytes += payload.len();
    }
    shared.unqueue(bytes);
    shared.counters.dropped.fetch_add(dropped, Relaxed);
}
