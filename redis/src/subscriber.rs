//! The subscribed connection: listens to the channels of the topics this
//! node has subscribers for, and delivers what other nodes publish there.
//!
//! The topics wanted are in [`Wanted`]; the node changes them from its
//! own tasks (without waiting), and this task brings Redis in line: all
//! of them on each new connection, then each change as it comes.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use redis::aio::MultiplexedConnection;
use redis::{RedisError, RedisResult};
use wsroute::Inbox;

use crate::backlog::{Backlog, Received};
use crate::stats::Link;
use crate::{Shared, wire};

/// Channels per SUBSCRIBE command, at most.
const CHUNK: usize = 512;

/// The topics the node needs, and those changed since this task last
/// looked.
#[derive(Debug, Default)]
pub(crate) struct Wanted {
    pub(crate) topics: HashSet<String>,
    pub(crate) changed: HashSet<String>,
}

pub(crate) async fn run(shared: Arc<Shared>, inbox: Inbox) {
    let mut backoff = shared.options.backoff(shared.node.rotate_left(17));
    while !inbox.is_closed() {
        match session(&shared, &inbox, &mut backoff).await {
            Ok(()) => return,
            Err(error) => tracing::warn!(%error, "wsroute-redis: subscribed connection lost"),
        }
        shared.counters.down(Link::Subscriber);
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

/// Messages delivered in one poll of the task, at most: enough that a
/// read's worth leaves in one write per subscriber, few enough that the
/// runtime's other tasks get their turn.
const BATCH: usize = 128;

/// One connection, until it fails (`Err`) or the node is gone (`Ok`).
async fn session(
    shared: &Arc<Shared>,
    inbox: &Inbox,
    backoff: &mut crate::backoff::Backoff,
) -> RedisResult<()> {
    let options = &shared.options;
    // RESP3: messages arrive as pushes, which go to the bounded backlog
    // (RESP2's subscriber connection queues them without bound). The
    // client's own timeouts are off: `within` bounds each step.
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(None)
        .set_response_timeout(None)
        .set_push_sender(Backlog::session(shared));
    let mut conn = within(
        options.connect_timeout,
        shared
            .subscriber_client
            .get_multiplexed_async_connection_with_config(&config),
    )
    .await?;
    let wanted: Vec<String> = {
        let mut wanted = shared.wanted();
        wanted.changed.clear();
        wanted.topics.iter().cloned().collect()
    };
    let mut have = HashSet::new();
    subscribe(shared, &mut conn, wanted, &mut have).await?;
    shared.counters.up(Link::Subscriber);
    backoff.reset();
    let mut health = tokio::time::interval(options.ping_interval);
    health.tick().await;
    // One waiter for the whole session, not one registered and dropped
    // for every message that arrives.
    let mut change = std::pin::pin!(shared.changed.notified());
    loop {
        tokio::select! {
            biased;
            () = &mut change => {
                change.set(shared.changed.notified());
                let changed = std::mem::take(&mut shared.wanted().changed);
                let (mut new, mut unsubscribe) = (Vec::new(), Vec::new());
                for topic in changed {
                    let wanted = shared.wanted().topics.contains(&topic);
                    if wanted && !have.contains(&topic) {
                        new.push(topic);
                    } else if !wanted && have.remove(&topic) {
                        unsubscribe.push(wire::channel(&options.prefix, &topic));
                    }
                }
                subscribe(shared, &mut conn, new, &mut have).await?;
                for chunk in unsubscribe.chunks(CHUNK) {
                    within(options.response_timeout, conn.unsubscribe(chunk)).await?;
                }
            }
            _ = health.tick() => {
                if inbox.is_closed() {
                    return Ok(());
                }
                // A peer that vanished without a FIN shows up here.
                within(
                    options.response_timeout,
                    redis::cmd("PING").query_async::<()>(&mut conn),
                )
                .await?;
            }
            // Last: while other nodes publish faster than this one
            // delivers, messages are always ready, and the topics this
            // node starts or stops needing must not wait behind them.
            () = shared.backlog.ready() => {
                let batch = shared.backlog.take(BATCH);
                for msg in batch.messages {
                    if !deliver(shared, inbox, msg) {
                        return Ok(());
                    }
                }
                if batch.lost {
                    return Err(lost("the server closed it"));
                }
                // Ends the poll: the batch leaves (corked) and the other
                // branches are looked at again.
                tokio::task::yield_now().await;
            }
        }
    }
}

/// Subscribes to the channels of `topics`, adding those Redis took to
/// `have`. A channel Redis refuses (an ACL that does not allow it) is
/// left out, logged, and asked for again on the next connection: one
/// topic a node may not listen to must not cut it off from all others.
async fn subscribe(
    shared: &Shared,
    conn: &mut MultiplexedConnection,
    topics: Vec<String>,
    have: &mut HashSet<String>,
) -> RedisResult<()> {
    let options = &shared.options;
    for chunk in topics.chunks(CHUNK) {
        let channels: Vec<String> = chunk
            .iter()
            .map(|t| wire::channel(&options.prefix, t))
            .collect();
        match within(options.response_timeout, conn.subscribe(&channels)).await {
            Ok(()) => have.extend(chunk.iter().cloned()),
            // One refused channel fails the whole command: one by one,
            // to find which.
            Err(error) if refused(&error) => {
                for (topic, channel) in chunk.iter().zip(&channels) {
                    match within(options.response_timeout, conn.subscribe(channel)).await {
                        Ok(()) => {
                            have.insert(topic.clone());
                        }
                        Err(error) if refused(&error) => {
                            tracing::warn!(%error, channel, "wsroute-redis: Redis refused a subscription");
                        }
                        Err(error) => return Err(error),
                    }
                }
            }
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// An error reply to a command, where the connection itself is fine.
fn refused(error: &RedisError) -> bool {
    matches!(
        error.kind(),
        redis::ErrorKind::Server(_) | redis::ErrorKind::Extension
    )
}

/// Hands `msg` to this node's subscribers; `false` once the node is gone.
fn deliver(shared: &Shared, inbox: &Inbox, msg: Received) -> bool {
    let counters = &shared.counters;
    let topic = std::str::from_utf8(&msg.channel)
        .ok()
        .and_then(|channel| wire::topic(&shared.options.prefix, channel));
    let Some(topic) = topic else {
        counters.refused.fetch_add(1, Relaxed);
        return true;
    };
    match wire::decode(msg.payload) {
        Ok((_, message)) => {
            if inbox.deliver(topic, &message).is_none() {
                return false;
            }
            counters.received.fetch_add(1, Relaxed);
        }
        Err(why) => {
            counters.refused.fetch_add(1, Relaxed);
            tracing::debug!(?why, channel = topic, "wsroute-redis: payload refused");
        }
    }
    true
}

async fn within<T>(
    limit: std::time::Duration,
    fut: impl Future<Output = RedisResult<T>>,
) -> RedisResult<T> {
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| lost("no answer in time"))?
}

fn lost(why: &'static str) -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::ConnectionAborted,
        why,
    ))
}
