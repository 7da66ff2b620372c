//! When a node re-sends its consensus messages: only while its round makes no progress, first after one
//! gossip interval, then after twice as long each time up to a cap, with whole proposals at most once per
//! `proposals_every`. A round that moves (a new round or height seen on a tick, a block committed,
//! consensus joined) starts the cadence again from the base.
//!
//! Pure: the caller passes the time, so the driver's shell and the simulation share this one rule.

use std::time::{Duration, Instant};

use basalt_consensus::{Height, Round};

/// The pacing of re-gossip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegossipConfig {
    /// First pause after progress (the node's `consensus.gossip_interval`).
    pub base: Duration,
    /// Longest pause between re-gossip rounds while stuck.
    pub max: Duration,
    /// Proposals (whole blocks, up to megabytes) go out at most this often: re-sending them at the vote
    /// cadence saturates the gossip queues of a loaded network and turns a slow round into a stall.
    pub proposals_every: Duration,
}

impl RegossipConfig {
    /// The node's pacing for a gossip interval of `base`: pauses up to 2 s, proposals every 2 s.
    pub fn node(base: Duration) -> RegossipConfig {
        RegossipConfig {
            base,
            max: Duration::from_secs(2),
            proposals_every: Duration::from_secs(2),
        }
    }
}

/// A node's re-gossip clock (see the module docs).
#[derive(Clone, Debug)]
pub struct RegossipPacer {
    config: RegossipConfig,
    position: (Height, Round),
    last_progress: Instant,
    /// The last new height (a commit, consensus joined, a height seen on a tick): block sync probes
    /// measure their stall from here, not from round changes (see [`RegossipPacer::last_height_progress`]).
    last_height_progress: Instant,
    next: Instant,
    interval: Duration,
    last_proposals: Option<Instant>,
}

impl RegossipPacer {
    /// A pacer that counts `now` as progress.
    pub fn new(config: RegossipConfig, now: Instant) -> RegossipPacer {
        RegossipPacer {
            config,
            position: (Height(0), Round(0)),
            last_progress: now,
            last_height_progress: now,
            next: now + config.base,
            interval: config.base,
            last_proposals: None,
        }
    }

    /// Progress was made (a decision, consensus joined): the cadence starts again from the base.
    pub fn progressed(&mut self, now: Instant) {
        self.last_progress = now;
        self.last_height_progress = now;
        self.interval = self.config.base;
        self.next = now + self.interval;
    }

    /// When progress was last made (how long a round has been stalled is measured from here).
    pub fn last_progress(&self) -> Instant {
        self.last_progress
    }

    /// When the node last reached a new height. A node whose peers decided without it can keep moving
    /// through rounds of the old height (each a "progress" for re-gossip), with round timeouts shorter
    /// than the block sync probe's wait; measured from here, the probe for the block it missed still
    /// comes (the simulation found validators lagging for dozens of rounds behind the others).
    pub fn last_height_progress(&self) -> Instant {
        self.last_height_progress
    }

    /// A gossip tick at `now` with the engine at `position`: a new position counts as progress.
    /// Returns `Some(with_proposals)` when the node should re-send its messages now (never while block
    /// syncing), and then waits twice as long (up to the cap) before the next time.
    pub fn tick(&mut self, position: (Height, Round), syncing: bool, now: Instant) -> Option<bool> {
        if position != self.position {
            if position.0 != self.position.0 {
                self.last_height_progress = now;
            }
            self.position = position;
            self.last_progress = now;
            self.interval = self.config.base;
            self.next = now + self.interval;
        }
        if syncing || now < self.next {
            return None;
        }
        self.interval = (self.interval * 2)
            .max(self.config.base)
            .min(self.config.max);
        self.next = now + self.interval;
        let proposals_due = self
            .last_proposals
            .is_none_or(|t| now.duration_since(t) >= self.config.proposals_every);
        if proposals_due {
            self.last_proposals = Some(now);
        }
        Some(proposals_due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn config() -> RegossipConfig {
        RegossipConfig {
            base: ms(100),
            max: ms(400),
            proposals_every: ms(500),
        }
    }

    /// The ticks (every 50 ms from `start` to `end`) at which a pacer stuck at one position re-sends.
    fn due_ticks(p: &mut RegossipPacer, t0: Instant, start: u64, end: u64) -> Vec<(u64, bool)> {
        (start..=end)
            .step_by(50)
            .filter_map(|t| {
                p.tick((Height(1), Round(0)), false, t0 + ms(t))
                    .map(|w| (t, w))
            })
            .collect()
    }

    #[test]
    fn a_stuck_node_re_sends_after_doubling_pauses_up_to_the_cap() {
        let t0 = Instant::now();
        let mut p = RegossipPacer::new(config(), t0);
        let due = due_ticks(&mut p, t0, 0, 2000);
        let times: Vec<u64> = due.iter().map(|(t, _)| *t).collect();
        // First at the base (after the position was first seen at 0), then +200, +400, +400, ...
        assert_eq!(times, vec![100, 300, 700, 1100, 1500, 1900]);
        // Proposals at most every 500 ms.
        let with: Vec<u64> = due.iter().filter(|(_, w)| *w).map(|(t, _)| *t).collect();
        assert_eq!(with, vec![100, 700, 1500]);
    }

    #[test]
    fn progress_restarts_the_cadence_and_syncing_sends_nothing() {
        let t0 = Instant::now();
        let mut p = RegossipPacer::new(config(), t0);
        due_ticks(&mut p, t0, 0, 1000);
        // A new round seen on a tick is progress: nothing until one base interval later. It is no new
        // height: the block sync probe's stall clock runs on.
        assert_eq!(p.tick((Height(1), Round(1)), false, t0 + ms(1050)), None);
        assert_eq!(p.last_progress(), t0 + ms(1050));
        assert_eq!(p.last_height_progress(), t0);
        assert_eq!(p.tick((Height(1), Round(1)), false, t0 + ms(1100)), None);
        assert!(p
            .tick((Height(1), Round(1)), false, t0 + ms(1150))
            .is_some());
        // A commit (reported by the caller) likewise, and it is a new height.
        p.progressed(t0 + ms(1200));
        assert_eq!(p.last_height_progress(), t0 + ms(1200));
        assert_eq!(p.tick((Height(2), Round(0)), false, t0 + ms(1210)), None);
        assert_eq!(p.last_height_progress(), t0 + ms(1210));
        assert_eq!(p.tick((Height(1), Round(1)), false, t0 + ms(1250)), None);
        // While block syncing nothing is re-sent, however long the stall.
        assert_eq!(p.tick((Height(1), Round(1)), true, t0 + ms(5000)), None);
    }
}
