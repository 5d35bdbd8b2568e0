//! Topics across nodes: the [`Broker`] trait a node forwards its
//! publishes through, and the [`Inbox`] it delivers other nodes' into.
//!
//! Without a broker, topics stay on one node. With one
//! ([`WebSockets::with_broker`](crate::WebSockets::with_broker)), a node
//! tells it which topics it needs — when a topic's first local subscriber
//! arrives and when its last one leaves — and hands it every message
//! published here; the broker delivers what other nodes publish through
//! the [`Inbox`]. The crate `wsroute-redis` is one, on Redis pub/sub.

use std::fmt;
use std::sync::{Arc, Weak};

use super::topics::{Published, Topics};
use crate::proto::Message;

/// What carries published messages between the nodes of a cluster.
///
/// A node calls [`subscribe`](Self::subscribe) when a topic gets its first
/// local subscriber and [`unsubscribe`](Self::unsubscribe) when its last
/// one leaves or ends, so the broker listens upstream exactly to the
/// topics someone here reads; and [`publish`](Self::publish) after every
/// local publish, whether or not anyone here subscribes. Messages that
/// arrive from other nodes go to [`Inbox::deliver`], which serves the
/// local subscribers only and never forwards again.
///
/// **The calls must not block or wait:** they run on the publishing or
/// subscribing task. `subscribe` and `unsubscribe` run with the node's
/// topic registry write-locked, so for one topic they come in the order
/// the registry changed; `publish` runs after the local fan-out, with no
/// lock held, and for one publisher in the order it published. Queue the
/// work for a task of the broker's own, and do not call back into the
/// [`WebSockets`](crate::WebSockets) from them.
///
/// Delivery between nodes is whatever the broker provides (at most once
/// for Redis pub/sub); a node's own subscribers always get its publishes
/// directly, never through the broker, so a broker must not hand a node
/// its own messages back.
///
/// A broker that counts what it relays, written by hand:
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use wsroute::{Broker, Config, Forward, Inbox, Message, WebSockets};
///
/// #[derive(Default)]
/// struct Log {
///     upstream: Mutex<Vec<String>>,
///     inbox: Mutex<Option<Inbox>>,
/// }
///
/// impl Broker for Log {
///     fn start(&self, inbox: Inbox) {
///         *self.inbox.lock().unwrap() = Some(inbox);
///     }
///     fn subscribe(&self, topic: &str) {
///         self.upstream.lock().unwrap().push(format!("+{topic}"));
///     }
///     fn unsubscribe(&self, topic: &str) {
///         self.upstream.lock().unwrap().push(format!("-{topic}"));
///     }
///     fn publish(&self, topic: &str, _message: &Message) -> Forward {
///         self.upstream.lock().unwrap().push(format!(">{topic}"));
///         Forward::Queued
///     }
/// }
///
/// let log = Arc::new(Log::default());
/// let sockets = WebSockets::with_broker(Config::default(), Arc::clone(&log));
/// let report = sockets.publish("news", "hello");
/// assert_eq!(report.forward, Forward::Queued);
/// assert_eq!(*log.upstream.lock().unwrap(), [">news"]);
/// // What another node published reaches the subscribers here.
/// let inbox = log.inbox.lock().unwrap().clone().unwrap();
/// assert_eq!(inbox.deliver("news", &"from afar".into()).unwrap().delivered, 0);
/// ```
pub trait Broker: Send + Sync + 'static {
    /// Called once, when the [`WebSockets`](crate::WebSockets) is built:
    /// where to deliver what other nodes publish.
    fn start(&self, inbox: Inbox);

    /// `topic` has its first subscriber on this node: listen to it
    /// upstream.
    fn subscribe(&self, topic: &str);

    /// `topic`'s last subscriber on this node has left: stop listening.
    fn unsubscribe(&self, topic: &str);

    /// Forwards a message published on this node to the other nodes.
    /// Returns whether it was taken, so a publisher can tell when it was
    /// not (a broker cut off from its engine, or too far behind).
    fn publish(&self, topic: &str, message: &Message) -> Forward;
}

/// A broker shared with the code that made it, to read its state later.
impl<B: Broker + ?Sized> Broker for Arc<B> {
    fn start(&self, inbox: Inbox) {
        (**self).start(inbox);
    }
    fn subscribe(&self, topic: &str) {
        (**self).subscribe(topic);
    }
    fn unsubscribe(&self, topic: &str) {
        (**self).unsubscribe(topic);
    }
    fn publish(&self, topic: &str, message: &Message) -> Forward {
        (**self).publish(topic, message)
    }
}

/// What became of a publish on its way to other nodes (see
/// [`Published::forward`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Forward {
    /// No broker: topics are local to this node.
    #[default]
    Local,
    /// The broker took it, to send on.
    Queued,
    /// The broker could not take it — its engine is unreachable or it is
    /// too far behind — so other nodes will not get it. Local subscribers
    /// got it all the same.
    Dropped,
}

/// Where a [`Broker`] delivers the messages other nodes publish.
///
/// Holds the node's topics weakly: once its [`WebSockets`](crate::WebSockets)
/// and every connection are gone, [`deliver`](Self::deliver) returns
/// `None` and [`is_closed`](Self::is_closed) is true, the broker's cue to
/// stop.
#[derive(Clone)]
pub struct Inbox {
    topics: Weak<Topics>,
}

impl Inbox {
    pub(crate) fn new(topics: &Arc<Topics>) -> Self {
        Self {
            topics: Arc::downgrade(topics),
        }
    }

    /// Sends `message` to this node's subscribers of `topic`, as
    /// [`WebSockets::publish`](crate::WebSockets::publish) does, without
    /// forwarding it again. `None` once the node is gone.
    pub fn deliver(&self, topic: &str, message: &Message) -> Option<Published> {
        let topics = self.topics.upgrade()?;
        Some(topics.deliver(topic, message, None))
    }

    /// The topics this node has subscribers for now: what a broker must
    /// listen to, for instance after reconnecting to its engine.
    pub fn topics(&self) -> Vec<String> {
        self.topics.upgrade().map_or_else(Vec::new, |topics| {
            topics.read().keys().map(|t| t.to_string()).collect()
        })
    }

    /// Whether the node is gone.
    pub fn is_closed(&self) -> bool {
        self.topics.strong_count() == 0
    }
}

impl fmt::Debug for Inbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbox")
            .field("closed", &self.is_closed())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::Config;
    use crate::api::connection::{Connection, SendLimits};
    use crate::api::websockets::WebSockets;

    /// Records every call, in order.
    #[derive(Default)]
    struct Recorder {
        calls: Mutex<Vec<String>>,
        inbox: Mutex<Option<Inbox>>,
    }

    impl Broker for Recorder {
        fn start(&self, inbox: Inbox) {
            *self.inbox.lock().unwrap() = Some(inbox);
        }
        fn subscribe(&self, topic: &str) {
            self.calls.lock().unwrap().push(format!("+{topic}"));
        }
        fn unsubscribe(&self, topic: &str) {
            self.calls.lock().unwrap().push(format!("-{topic}"));
        }
        fn publish(&self, topic: &str, message: &Message) -> Forward {
            let text = std::str::from_utf8(message.as_bytes()).unwrap();
            self.calls.lock().unwrap().push(format!(">{topic}:{text}"));
            Forward::Queued
        }
    }

    impl Recorder {
        fn take(&self) -> Vec<String> {
            std::mem::take(&mut self.calls.lock().unwrap())
        }
    }

    fn member(sockets: &WebSockets, id: u64) -> Connection {
        let topics = Arc::clone(&sockets.inner.topics);
        Connection::new(id, None, None, SendLimits::queue(1 << 20), topics)
    }

    #[test]
    fn upstream_follows_the_first_subscriber_in_and_the_last_one_out() {
        let recorder = Arc::new(Recorder::default());
        let sockets = WebSockets::with_broker(Config::default(), Arc::clone(&recorder));
        let (a, b) = (member(&sockets, 1), member(&sockets, 2));
        a.subscribe("x").unwrap();
        b.subscribe("x").unwrap();
        a.subscribe("x").unwrap();
        assert_eq!(recorder.take(), ["+x"], "once, for the first");
        a.unsubscribe("x");
        assert_eq!(recorder.take(), Vec::<String>::new(), "b is still there");
        b.subscribe("y").unwrap();
        b.mark_closed();
        let mut left = recorder.take();
        left.sort();
        assert_eq!(left, ["+y", "-x", "-y"], "the end of b leaves both");
        assert!(!a.unsubscribe("x") && recorder.take().is_empty());
    }

    #[test]
    fn local_publishes_are_forwarded_and_delivered_ones_are_not() {
        let recorder = Arc::new(Recorder::default());
        let sockets = WebSockets::with_broker(Config::default(), Arc::clone(&recorder));
        // Forwarded even with nobody here.
        let report = sockets.publish("t", "one");
        assert_eq!((report.delivered, report.forward), (0, Forward::Queued));
        let a = member(&sockets, 1);
        a.subscribe("t").unwrap();
        let report = a.publish("t", "two");
        assert_eq!(report.forward, Forward::Queued);
        assert_eq!(recorder.take(), [">t:one", "+t", ">t:two"]);

        let inbox = recorder.inbox.lock().unwrap().clone().unwrap();
        assert_eq!(inbox.topics(), ["t"]);
        let report = inbox.deliver("t", &"three".into()).unwrap();
        assert_eq!((report.delivered, report.forward), (1, Forward::Local));
        assert!(recorder.take().is_empty(), "not sent back upstream");

        // As a connection's task does when it ends.
        a.mark_closed();
        drop((a, sockets));
        assert!(inbox.is_closed());
        assert_eq!(inbox.deliver("t", &"late".into()), None);
        assert!(inbox.topics().is_empty());
    }

    #[test]
    fn without_a_broker_publishes_stay_local() {
        let sockets = WebSockets::new(Config::default());
        assert_eq!(sockets.publish("t", "x").forward, Forward::Local);
    }
}
