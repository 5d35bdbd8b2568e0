//! How long to wait before reconnecting: doubling from a first delay up
//! to a ceiling, with jitter so that the nodes of a cluster, cut off
//! together, do not all come back in the same millisecond.

use std::time::Duration;

#[derive(Debug)]
pub(crate) struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
    /// A cheap generator for the jitter (xorshift), seeded per node.
    seed: u64,
}

impl Backoff {
    pub(crate) fn new(first: Duration, max: Duration, seed: u64) -> Self {
        Self {
            first,
            max,
            next: first,
            seed: seed | 1,
        }
    }

    /// The next delay: the current step, less up to a quarter at random.
    pub(crate) fn next_delay(&mut self) -> Duration {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let step = self.next;
        self.next = (self.next * 2).min(self.max);
        let quarter = step.as_micros() as u64 / 4;
        step - Duration::from_micros(self.seed % (quarter + 1))
    }

    /// Back to the first delay, after a connection that worked.
    pub(crate) fn reset(&mut self) {
        self.next = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_ceiling_with_at_most_a_quarter_off() {
        let (first, max) = (Duration::from_millis(100), Duration::from_secs(1));
        let mut backoff = Backoff::new(first, max, 42);
        let steps = [100, 200, 400, 800, 1000, 1000].map(Duration::from_millis);
        for step in steps {
            let delay = backoff.next_delay();
            assert!(
                delay <= step && delay >= step * 3 / 4,
                "{delay:?} for {step:?}"
            );
        }
        backoff.reset();
        assert!(backoff.next_delay() <= first);
    }
}
