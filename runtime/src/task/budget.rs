//! The server-wide budget for bytes held on behalf of clients
//! ([`Config::max_buffered`](crate::Config::max_buffered)).
//!
//! One atomic counter shared by every connection of a
//! [`WebSockets`](crate::WebSockets): partial incoming messages are
//! charged by the connection's task as its buffers grow, outgoing queues
//! by the handles as messages are queued. A charge that would pass the
//! limit is refused; what the caller does then (close 1013, refuse the
//! send) is its policy.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

pub(crate) struct Budget {
    limit: usize,
    used: AtomicUsize,
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            used: AtomicUsize::new(0),
        }
    }

    /// Charges `bytes` if they fit under the limit.
    pub(crate) fn try_charge(&self, bytes: usize) -> bool {
        if bytes == 0 {
            return true;
        }
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    /// Whether `bytes` more would fit under the limit now.
    pub(crate) fn has_room(&self, bytes: usize) -> bool {
        self.used
            .load(Ordering::Acquire)
            .checked_add(bytes)
            .is_some_and(|total| total <= self.limit)
    }

    /// Charges `bytes` whatever the limit: for the few bytes the protocol
    /// itself must write (pongs, close frames, frame headers).
    pub(crate) fn force_charge(&self, bytes: usize) {
        self.used.fetch_add(bytes, Ordering::AcqRel);
    }

    pub(crate) fn release(&self, bytes: usize) {
        if bytes != 0 {
            self.used.fetch_sub(bytes, Ordering::AcqRel);
        }
    }

    /// Moves a holder's charge from `held` to `want` bytes: shrinking always
    /// works, growing only within the limit. Returns whether `held` is now
    /// `want`.
    pub(crate) fn adjust(&self, held: &mut usize, want: usize) -> bool {
        if want <= *held {
            self.release(*held - want);
            *held = want;
            true
        } else if self.try_charge(want - *held) {
            *held = want;
            true
        } else {
            false
        }
    }

    /// Bytes charged now.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

impl fmt::Debug for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Budget")
            .field("limit", &self.limit)
            .field("used", &self.used())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_within_the_limit_and_releases() {
        let budget = Budget::new(100);
        assert!(budget.try_charge(60));
        assert!(budget.has_room(40) && !budget.has_room(41));
        assert!(!budget.try_charge(41));
        assert!(budget.try_charge(40));
        budget.release(50);
        let mut held = 0;
        assert!(budget.adjust(&mut held, 50));
        assert!(!budget.adjust(&mut held, 51));
        assert_eq!(held, 50);
        assert!(budget.adjust(&mut held, 10));
        assert_eq!(budget.used(), 60);
        budget.force_charge(1000);
        assert!(!budget.try_charge(1));
    }
}
