//! What the broker counts, for [`RedisBroker::stats`](crate::RedisBroker::stats).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// A snapshot of what a [`RedisBroker`](crate::RedisBroker) has done since
/// it started: what went to Redis, what did not, and its connections.
///
/// Every message published on this node lands in exactly one of
/// `published`, `dropped` and `unconfirmed`, once its fate is known
/// (messages still queued are in none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Messages Redis accepted (`PUBLISH` answered).
    pub published: u64,
    /// Messages other nodes did not get: published while Redis was
    /// unreachable or the broker too far behind (its queue full), queued
    /// when the publishing connection broke and so never sent, or
    /// refused by Redis with an error reply (a missing password, an ACL
    /// that forbids the channel: logged, with the error).
    pub dropped: u64,
    /// Messages handed to a connection that broke, or went silent, before
    /// Redis answered for them: other nodes may or may not have got them.
    pub unconfirmed: u64,
    /// Messages from other nodes handed to this node's subscribers of
    /// their topic (to none, if the last one left while the message
    /// waited). Every message from another node that reached this node
    /// lands in exactly one of `received`, `lagged` and `refused`.
    pub received: u64,
    /// Messages from other nodes this node dropped unread because it was
    /// too far behind delivering them (more than
    /// [`Builder::backlog_bytes`](crate::Builder::backlog_bytes) waiting).
    pub lagged: u64,
    /// Payloads on our channels that were not from wsroute-redis, or not
    /// valid, and were not delivered.
    pub refused: u64,
    /// Times a connection to Redis was lost, or could not be made at the
    /// start, and was made later.
    pub reconnects: u64,
    /// Whether both connections (publishing and subscribed) are up now.
    pub connected: bool,
    /// How long the last outage lasted, from the first connection lost (or
    /// the first attempt that failed, at the start) to both working again
    /// (`None` before any outage, or during one).
    pub last_outage: Option<Duration>,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) published: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) unconfirmed: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) lagged: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) publisher_up: AtomicBool,
    pub(crate) subscriber_up: AtomicBool,
    outage: Mutex<Outage>,
}

#[derive(Debug, Default)]
struct Outage {
    since: Option<Instant>,
    last: Option<Duration>,
}

/// One of the broker's two connections.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Link {
    Publisher,
    Subscriber,
}

impl Counters {
    fn flag(&self, link: Link) -> &AtomicBool {
        match link {
            Link::Publisher => &self.publisher_up,
            Link::Subscriber => &self.subscriber_up,
        }
    }

    pub(crate) fn up(&self, link: Link) {
        let was_down = !self.flag(link).swap(true, Relaxed);
        let mut outage = self.outage.lock().unwrap_or_else(|p| p.into_inner());
        if was_down && outage.since.is_some() {
            self.reconnects.fetch_add(1, Relaxed);
        }
        let both = self.publisher_up.load(Relaxed) && self.subscriber_up.load(Relaxed);
        if both && let Some(since) = outage.since.take() {
            let lasted = since.elapsed();
            outage.last = Some(lasted);
            tracing::info!(
                outage_ms = lasted.as_millis() as u64,
                "wsroute-redis: connected again"
            );
        }
    }

    /// `link` was lost, or could not be made: also at the start, when
    /// Redis was never reached, which is an outage all the same (other
    /// nodes' messages were missed meanwhile).
    pub(crate) fn down(&self, link: Link) {
        self.flag(link).store(false, Relaxed);
        let mut outage = self.outage.lock().unwrap_or_else(|p| p.into_inner());
        outage.since.get_or_insert_with(Instant::now);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let outage = self.outage.lock().unwrap_or_else(|p| p.into_inner());
        Stats {
            published: self.published.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            unconfirmed: self.unconfirmed.load(Relaxed),
            received: self.received.load(Relaxed),
            lagged: self.lagged.load(Relaxed),
            refused: self.refused.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
            connected: self.publisher_up.load(Relaxed) && self.subscriber_up.load(Relaxed),
            last_outage: if outage.since.is_some() {
                None
            } else {
                outage.last
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_counts_once_per_link_and_lasts_until_both_are_back() {
        let counters = Counters::default();
        counters.up(Link::Publisher);
        counters.up(Link::Subscriber);
        let first = counters.snapshot();
        assert!(first.connected && first.reconnects == 0 && first.last_outage.is_none());
        counters.down(Link::Publisher);
        counters.down(Link::Subscriber);
        counters.down(Link::Subscriber);
        std::thread::sleep(Duration::from_millis(20));
        counters.up(Link::Publisher);
        let during = counters.snapshot();
        assert!(!during.connected && during.last_outage.is_none());
        counters.up(Link::Subscriber);
        let after = counters.snapshot();
        assert!(after.connected);
        assert_eq!(after.reconnects, 2);
        assert!(after.last_outage.unwrap() >= Duration::from_millis(20));
    }

    #[test]
    fn redis_out_of_reach_at_the_start_is_an_outage_too() {
        let counters = Counters::default();
        counters.up(Link::Publisher);
        counters.down(Link::Subscriber);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(counters.snapshot().last_outage, None, "not over yet");
        counters.up(Link::Subscriber);
        let after = counters.snapshot();
        assert!(after.connected);
        assert_eq!(after.reconnects, 1);
        assert!(after.last_outage.unwrap() >= Duration::from_millis(20));
    }
}
