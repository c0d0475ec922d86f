//! Hybrid logical clocks: wall-clock-ordered timestamps that never go backwards, with remote
//! timestamps from the future clamped so one skewed clock cannot win every conflict.

use crate::Millis;
use serde::{Deserialize, Serialize};

/// Remote timestamps further than this ahead of the local physical clock are clamped.
pub const MAX_CLOCK_SKEW_MS: Millis = 5 * 60 * 1000;

/// A hybrid logical timestamp, totally ordered by `(wall, counter, node)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Hlc {
    /// Milliseconds since the Unix epoch (the largest physical time seen).
    pub wall: Millis,
    /// Logical counter for events within the same millisecond.
    pub counter: u32,
    /// The issuing client's node number: breaks ties between clients (32 bits, so it stays
    /// exact in JavaScript numbers).
    pub node: u32,
}

crate::deserialize_object!(Hlc {
    "wall" => wall: Millis,
    "counter" => counter: u32,
    "node" => node: u32,
});

impl Hlc {
    /// This timestamp with its wall time limited to `physical + MAX_CLOCK_SKEW_MS`.
    pub fn clamped(self, physical: Millis) -> Hlc {
        let limit = physical.saturating_add(MAX_CLOCK_SKEW_MS);
        if self.wall > limit {
            Hlc {
                wall: limit,
                ..self
            }
        } else {
            self
        }
    }
}

/// A node's clock: issues local timestamps and absorbs remote ones.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HybridClock {
    last: Hlc,
}

impl HybridClock {
    /// A clock for `node`, resuming after `last` (the last timestamp it issued, after a reload).
    pub fn new(node: u32, last: Hlc) -> Self {
        Self {
            last: Hlc { node, ..last },
        }
    }

    /// The last timestamp issued or observed.
    pub fn last(&self) -> Hlc {
        self.last
    }

    /// A new timestamp for a local event at `physical` time, greater than every one before.
    pub fn now(&mut self, physical: Millis) -> Hlc {
        if physical > self.last.wall {
            self.last.wall = physical;
            self.last.counter = 0;
        } else {
            self.advance_counter();
        }
        self.last
    }

    /// Absorbs a remote timestamp (clamped against `physical`) so later local timestamps order
    /// after it. Returns the clamped remote timestamp.
    pub fn observe(&mut self, remote: Hlc, physical: Millis) -> Hlc {
        let remote = remote.clamped(physical);
        let wall = self.last.wall.max(remote.wall).max(physical);
        if wall == self.last.wall && wall == remote.wall {
            self.last.counter = self.last.counter.max(remote.counter);
            self.advance_counter();
        } else if wall == self.last.wall {
            self.advance_counter();
        } else if wall == remote.wall {
            self.last.wall = wall;
            self.last.counter = remote.counter;
            self.advance_counter();
        } else {
            self.last.wall = wall;
            self.last.counter = 0;
        }
        remote
    }

    fn advance_counter(&mut self) {
        match self.last.counter.checked_add(1) {
            Some(c) => self.last.counter = c,
            None => {
                self.last.wall += 1;
                self.last.counter = 0;
            }
        }
    }
}

/// A stable node number for a client id (32-bit FNV-1a), used as the HLC tie-breaker.
pub fn node_of(client_id: &str) -> u32 {
    client_id.bytes().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_timestamps_strictly_increase_even_when_the_wall_clock_goes_back() {
        let mut clock = HybridClock::new(1, Hlc::default());
        let a = clock.now(1_000);
        let b = clock.now(1_000);
        let c = clock.now(500);
        assert!(a < b && b < c);
        assert_eq!(c.wall, 1_000);
    }

    #[test]
    fn observing_a_later_remote_orders_local_events_after_it() {
        let mut clock = HybridClock::new(1, Hlc::default());
        clock.now(1_000);
        let remote = Hlc {
            wall: 2_000,
            counter: 7,
            node: 2,
        };
        clock.observe(remote, 1_001);
        let next = clock.now(1_002);
        assert!(next > remote);
    }

    #[test]
    fn a_remote_timestamp_more_than_five_minutes_ahead_is_clamped() {
        let mut clock = HybridClock::new(1, Hlc::default());
        let now = 1_000_000;
        let remote = Hlc {
            wall: now + MAX_CLOCK_SKEW_MS + 60_000,
            counter: 0,
            node: 2,
        };
        let seen = clock.observe(remote, now);
        assert_eq!(seen.wall, now + MAX_CLOCK_SKEW_MS);
        assert_eq!(clock.last().wall, now + MAX_CLOCK_SKEW_MS);
        // Within the bound nothing is changed.
        let near = Hlc {
            wall: now + 1_000,
            counter: 3,
            node: 2,
        };
        assert_eq!(near.clamped(now), near);
    }

    #[test]
    fn node_numbers_are_stable_and_distinct() {
        assert_eq!(node_of("client-a"), node_of("client-a"));
        assert_ne!(node_of("client-a"), node_of("client-b"));
    }
}
