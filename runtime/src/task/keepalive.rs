//! Keepalive deadlines on a shared coarse clock.
//!
//! A per-connection `Sleep` would cost every idle connection a timer
//! entry and its allocation, and resetting it on every frame would put
//! timer work on the hot path. Instead a connection keeps the tick of the
//! last byte it read (a plain integer, stored when a read delivers bytes)
//! and parks its waker in the [`Wheel`] bucket of its deadline, once per
//! deadline. One ticker task per [`WebSockets`](crate::WebSockets) wakes
//! the buckets whose time has come; a woken connection checks whether it
//! really idled, and parks again for its new deadline if not. So an idle
//! connection costs one waker in a bucket, and a busy one a lock per
//! `ping_interval`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::Instant;

/// The clock's resolution: deadlines fire up to one tick late.
pub(crate) const TICK: Duration = Duration::from_millis(100);

/// Buckets of wakers by deadline tick, and the clock they run on.
pub(crate) struct Wheel {
    epoch: Instant,
    /// The current tick, kept by the ticker while it runs.
    now: AtomicU32,
    inner: Mutex<Buckets>,
}

#[derive(Default)]
struct Buckets {
    /// Each waker with the id of the [`Keepalive`] that parked it, so a
    /// connection that ends can take its own back: a parked waker keeps
    /// the ended task's memory alive until its deadline.
    by_tick: BTreeMap<u32, Vec<(u32, Waker)>>,
    /// The id the next [`Keepalive`] gets. 32 bits keep the connection
    /// task small; ids wrap after 2^32 connections, and two connections
    /// that far apart would have to be parked in the same bucket at once
    /// for one to take the other's waker back.
    next_id: u32,
    /// A ticker task is running (it stops when no bucket is left).
    ticking: bool,
}

impl Wheel {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            now: AtomicU32::new(0),
            inner: Mutex::new(Buckets::default()),
        })
    }

    /// The current tick, read from the clock: for a connection's start,
    /// and wherever the ticker may not be running.
    pub(crate) fn now_exact(&self) -> u32 {
        let elapsed = Instant::now().saturating_duration_since(self.epoch);
        u32::try_from(elapsed.as_nanos() / TICK.as_nanos()).unwrap_or(u32::MAX)
    }

    /// The current tick as the ticker last set it: one atomic load, for
    /// the hot path. Behind [`now_exact`](Self::now_exact) by up to a
    /// tick, or more while no deadline is parked (nothing then needs it).
    pub(crate) fn now(&self) -> u32 {
        self.now.load(Ordering::Relaxed)
    }

    /// The number of ticks in `duration`, rounded up, at least one.
    pub(crate) fn ticks(duration: Duration) -> u32 {
        let ticks = duration.as_nanos().div_ceil(TICK.as_nanos()).max(1);
        u32::try_from(ticks).unwrap_or(u32::MAX)
    }

    fn new_id(&self) -> u32 {
        let mut buckets = self.buckets();
        buckets.next_id = buckets.next_id.wrapping_add(1);
        buckets.next_id
    }

    /// Takes back the waker `id` parked for `deadline`, if it is still
    /// there.
    fn unpark(&self, id: u32, deadline: u32) {
        let mut buckets = self.buckets();
        if let Some(bucket) = buckets.by_tick.get_mut(&deadline) {
            bucket.retain(|(parked, _)| *parked != id);
            if bucket.is_empty() {
                buckets.by_tick.remove(&deadline);
            }
        }
    }

    fn buckets(&self) -> MutexGuard<'_, Buckets> {
        // Each update is a single insert or removal: a panic cannot leave
        // the map inconsistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ready once tick `deadline` has come; otherwise parks `cx`'s waker
    /// in its bucket, unless `parked` (the deadline parked last) comes
    /// first. Must be called within a tokio runtime (it may start the
    /// ticker).
    pub(crate) fn poll_deadline(
        self: &Arc<Self>,
        cx: &mut Context<'_>,
        id: u32,
        deadline: u32,
        parked: &mut u32,
    ) -> Poll<()> {
        let now = self.now();
        if now >= deadline {
            return Poll::Ready(());
        }
        // Parked for an earlier deadline that has not come yet: the wake-up
        // then will park again for this one. So a busy connection, whose
        // deadline moves with every read, takes the lock once per
        // interval, not once per message.
        if *parked <= deadline && *parked > now {
            return Poll::Pending;
        }
        let mut buckets = self.buckets();
        // The ticker may have stopped, leaving `now` behind: the clock
        // decides.
        let now = self.now_exact();
        if now >= deadline {
            self.now.fetch_max(now, Ordering::Relaxed);
            return Poll::Ready(());
        }
        buckets
            .by_tick
            .entry(deadline)
            .or_default()
            .push((id, cx.waker().clone()));
        *parked = deadline;
        if !buckets.ticking {
            buckets.ticking = true;
            self.now.fetch_max(now, Ordering::Relaxed);
            tokio::spawn(Arc::clone(self).tick());
        }
        Poll::Pending
    }

    /// The ticker: every tick, wakes the buckets that are due; stops when
    /// none is left, so a server without connections runs no task for it.
    async fn tick(self: Arc<Self>) {
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let now = self.now_exact();
            self.now.fetch_max(now, Ordering::Relaxed);
            let (due, stop) = {
                let mut buckets = self.buckets();
                let later = buckets.by_tick.split_off(&(now.saturating_add(1)));
                let due = std::mem::replace(&mut buckets.by_tick, later);
                let stop = buckets.by_tick.is_empty();
                if stop {
                    buckets.ticking = false;
                }
                (due, stop)
            };
            for (_, waker) in due.into_values().flatten() {
                waker.wake();
            }
            if stop {
                return;
            }
        }
    }
}

impl fmt::Debug for Wheel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wheel")
            .field("now", &self.now())
            .finish_non_exhaustive()
    }
}

/// One connection's keepalive: when to ping, and when a ping went
/// unanswered.
#[derive(Debug)]
pub(crate) struct Keepalive {
    wheel: Arc<Wheel>,
    /// Tells this connection's wakers apart in the wheel.
    id: u32,
    interval: u32,
    timeout: u32,
    /// The tick at which bytes last arrived.
    last_seen: u32,
    /// The tick a keepalive ping was sent at, while it waits for an answer.
    /// ([`NOT_PINGED`] when none waits: an `Option` would take 4 more
    /// bytes of every connection task.)
    pinged_at: u32,
    /// The deadline whose bucket holds this connection's waker.
    parked: u32,
}

/// `Keepalive::pinged_at` when no ping waits for an answer.
const NOT_PINGED: u32 = u32::MAX;

/// What a due keepalive deadline asks of the connection.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Due {
    /// Idle for `ping_interval`: send a ping.
    Ping,
    /// Nothing arrived within `ping_timeout` of the ping: the peer is gone.
    Dead,
}

impl Keepalive {
    pub(crate) fn new(wheel: Arc<Wheel>, interval: Duration, timeout: Duration) -> Self {
        let now = wheel.now_exact();
        Self {
            id: wheel.new_id(),
            wheel,
            interval: Wheel::ticks(interval),
            timeout: Wheel::ticks(timeout),
            last_seen: now,
            pinged_at: NOT_PINGED,
            parked: u32::MAX,
        }
    }

    /// The connection starts running (its keepalive was made when the
    /// handshake was answered): the first interval counts from now, read
    /// from the clock, since the ticker may be idle.
    pub(crate) fn start(&mut self) {
        self.last_seen = self.wheel.now_exact();
        self.pinged_at = NOT_PINGED;
    }

    /// Bytes arrived: the peer is alive.
    pub(crate) fn seen(&mut self) {
        self.last_seen = self.wheel.now();
        self.pinged_at = NOT_PINGED;
    }

    fn deadline(&self) -> u32 {
        if self.pinged_at == NOT_PINGED {
            self.last_seen.saturating_add(self.interval)
        } else {
            self.pinged_at.saturating_add(self.timeout)
        }
    }

    /// Ready when a deadline is due, with what it calls for.
    pub(crate) fn poll_due(&mut self, cx: &mut Context<'_>) -> Poll<Due> {
        let deadline = self.deadline();
        match self
            .wheel
            .poll_deadline(cx, self.id, deadline, &mut self.parked)
        {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => Poll::Ready(if self.pinged_at == NOT_PINGED {
                Due::Ping
            } else {
                Due::Dead
            }),
        }
    }

    /// The ping was sent: start the wait for an answer.
    pub(crate) fn pinged(&mut self) {
        // `u32::MAX - 1` at most: a tick count 13 years past the epoch.
        self.pinged_at = self.wheel.now().max(self.deadline()).min(NOT_PINGED - 1);
    }
}

impl Drop for Keepalive {
    fn drop(&mut self) {
        // Parked for a deadline still to come: leave no waker behind.
        if self.parked != u32::MAX && self.parked > self.wheel.now() {
            self.wheel.unpark(self.id, self.parked);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_moving_deadline_parks_once_per_interval() {
        let wheel = Wheel::new();
        let mut k = Keepalive::new(
            Arc::clone(&wheel),
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        for _ in 0..50 {
            assert_eq!(poll(&mut k), Poll::Pending);
            tokio::time::sleep(TICK).await;
            k.seen();
        }
        // 5 s of reads every tick: about one bucket per second, not 50.
        let parked: usize = wheel.buckets().by_tick.values().map(Vec::len).sum();
        assert!(parked <= 2, "{parked} wakers parked");
    }

    fn poll(keepalive: &mut Keepalive) -> Poll<Due> {
        let mut cx = Context::from_waker(Waker::noop());
        keepalive.poll_due(&mut cx)
    }

    #[tokio::test(start_paused = true)]
    async fn pings_after_the_interval_then_declares_the_peer_dead() {
        let wheel = Wheel::new();
        let mut k = Keepalive::new(
            Arc::clone(&wheel),
            Duration::from_secs(1),
            Duration::from_secs(2),
        );
        assert_eq!(poll(&mut k), Poll::Pending);
        tokio::time::sleep(Duration::from_millis(1150)).await;
        assert_eq!(poll(&mut k), Poll::Ready(Due::Ping));
        k.pinged();
        assert_eq!(poll(&mut k), Poll::Pending);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(poll(&mut k), Poll::Pending, "the timeout has not run out");
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(poll(&mut k), Poll::Ready(Due::Dead));
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_put_the_deadline_back() {
        let wheel = Wheel::new();
        let mut k = Keepalive::new(
            Arc::clone(&wheel),
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        assert_eq!(poll(&mut k), Poll::Pending);
        tokio::time::sleep(Duration::from_millis(700)).await;
        k.seen();
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(poll(&mut k), Poll::Pending, "bytes came 0.7 s ago");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(poll(&mut k), Poll::Ready(Due::Ping));
    }

    #[tokio::test(start_paused = true)]
    async fn an_ended_connection_leaves_no_waker_behind() {
        let wheel = Wheel::new();
        let mut k = Keepalive::new(
            Arc::clone(&wheel),
            Duration::from_secs(30),
            Duration::from_secs(1),
        );
        let mut other = Keepalive::new(
            Arc::clone(&wheel),
            Duration::from_secs(30),
            Duration::from_secs(1),
        );
        assert_eq!(poll(&mut k), Poll::Pending);
        assert_eq!(poll(&mut other), Poll::Pending);
        drop(k);
        let parked: Vec<u32> = wheel
            .buckets()
            .by_tick
            .values()
            .flatten()
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(parked, [other.id]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_ticker_stops_when_nothing_is_parked() {
        let wheel = Wheel::new();
        let mut k = Keepalive::new(
            Arc::clone(&wheel),
            Duration::from_millis(300),
            Duration::from_secs(1),
        );
        assert_eq!(poll(&mut k), Poll::Pending);
        assert!(wheel.buckets().ticking);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!wheel.buckets().ticking);
        assert!(wheel.buckets().by_tick.is_empty());
        // And a new deadline starts it again, on the real clock.
        assert_eq!(poll(&mut k), Poll::Ready(Due::Ping));
    }
}
