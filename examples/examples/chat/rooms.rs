//! The list of rooms, with member counts, across every node.
//!
//! A node knows only its own members: `WebSockets::subscribers` counts the
//! local subscribers of a room's topic, and a broker carries messages, not
//! counts. So each node publishes *its own* counts — a [`Snapshot`] tagged
//! with the node's id — on the topic [`ROOMS`], which every member
//! subscribes to on every node; each page adds up the latest snapshot of
//! each node. A node publishes one at once when a member joins or leaves
//! there, and every [`REFRESH`] while it has members, so that:
//! - a page that just joined learns the other nodes' rooms within one
//!   `REFRESH` (their servers cannot hear that it joined: a publish goes
//!   to the pages, not to the other nodes' code);
//! - a node that stops (or loses Redis) without a word drops out of every
//!   page's list after a few missed refreshes (the page's `STALE_MS`).
//!
//! The alternative, pages announcing themselves and answering newcomers,
//! costs a message per member per join; this costs one per node per
//! `REFRESH`, whatever the number of members.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use wsroute::WebSockets;

use crate::ToPage;

/// The topic every member subscribes to, on which the nodes' snapshots go.
pub(crate) const ROOMS: &str = "rooms";

/// How often a node with members repeats its snapshot.
pub(crate) const REFRESH: Duration = Duration::from_secs(1);

/// The topic of one room: its lines and its join and leave notices.
pub(crate) fn topic(room: &str) -> String {
    format!("room:{room}")
}

/// One node's rooms and how many members each has there.
#[derive(Serialize)]
pub(crate) struct Snapshot<'a> {
    node: &'a str,
    rooms: BTreeMap<&'a str, usize>,
}

/// The rooms this node has members in, by name.
pub(crate) struct LocalRooms {
    node: String,
    sockets: WebSockets,
    // Names only: `sockets.subscribers` counts the members, so there is
    // no second count to keep in step. A name stays until a snapshot
    // finds its room empty.
    names: Mutex<BTreeSet<String>>,
}

impl LocalRooms {
    pub(crate) fn new(node: String, sockets: WebSockets) -> Arc<Self> {
        Arc::new(Self {
            node,
            sockets,
            names: Mutex::default(),
        })
    }

    /// Records `room` (after its member subscribed) and tells every page.
    pub(crate) fn joined(&self, room: &str) {
        self.names().insert(room.to_owned());
        self.publish();
    }

    /// Tells every page that a member left (its subscriptions are already
    /// gone: they end before the route's `close`).
    pub(crate) fn left(&self) {
        self.publish();
    }

    /// Publishes this node's snapshot on [`ROOMS`], forgetting empty rooms.
    fn publish(&self) {
        let mut names = self.names();
        // Under the lock: a join subscribes before it inserts, so a room
        // found empty here and removed is inserted again by that join.
        names.retain(|room| self.sockets.subscribers(&topic(room)) > 0);
        let rooms = names
            .iter()
            .map(|room| (room.as_str(), self.sockets.subscribers(&topic(room))))
            .collect();
        let snapshot = ToPage::Rooms(Snapshot {
            node: &self.node,
            rooms,
        });
        // Cannot fail: strings and numbers.
        let _ = self.sockets.publish_json(ROOMS, &snapshot);
    }

    /// Repeats the snapshot every [`REFRESH`] while there are members.
    pub(crate) async fn refresh(self: Arc<Self>) {
        let mut clock = tokio::time::interval(REFRESH);
        clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            clock.tick().await;
            if !self.names().is_empty() {
                self.publish();
            }
        }
    }

    fn names(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        // Each update is one insert or retain: a panic cannot leave it torn.
        self.names.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
