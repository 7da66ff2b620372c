//! The simulated network: per-message delay, loss, duplication (hence reordering) and partitions.

use rand_chacha::ChaCha8Rng;
use rand_core::RngCore;

/// Index of a simulated node.
pub type NodeId = usize;

/// Link behaviour, in simulated milliseconds and parts per thousand.
#[derive(Clone, Copy, Debug)]
pub struct LinkProfile {
    /// Smallest one-way delay.
    pub min_delay_ms: u64,
    /// Largest one-way delay.
    pub max_delay_ms: u64,
    /// Chance a message is lost, per mille.
    pub drop_per_mille: u32,
    /// Chance a message is delivered twice, per mille.
    pub duplicate_per_mille: u32,
}

impl LinkProfile {
    /// A well-behaved link (after global stabilisation): bounded delay, no loss.
    pub fn synchronous() -> LinkProfile {
        LinkProfile {
            min_delay_ms: 1,
            max_delay_ms: 20,
            drop_per_mille: 0,
            duplicate_per_mille: 0,
        }
    }
}

/// Which nodes can talk. `None` = everyone; `Some(groups)` = only within a group.
#[derive(Clone, Debug, Default)]
pub struct Partition {
    groups: Option<Vec<Vec<NodeId>>>,
}

impl Partition {
    /// No partition.
    pub fn healed() -> Partition {
        Partition { groups: None }
    }

    /// Nodes talk only within their group; a node in no group is isolated.
    pub fn split(groups: Vec<Vec<NodeId>>) -> Partition {
        Partition {
            groups: Some(groups),
        }
    }

    /// Can `from` reach `to`?
    pub fn connected(&self, from: NodeId, to: NodeId) -> bool {
        match &self.groups {
            None => true,
            Some(groups) => groups.iter().any(|g| g.contains(&from) && g.contains(&to)),
        }
    }
}

/// Decides the fate of each message: the delivery delays (0, 1 or 2 deliveries).
pub fn deliveries(rng: &mut ChaCha8Rng, profile: &LinkProfile) -> Vec<u64> {
    if per_mille(rng, profile.drop_per_mille) {
        return Vec::new();
    }
    let mut out = vec![delay(rng, profile)];
    if per_mille(rng, profile.duplicate_per_mille) {
        out.push(delay(rng, profile));
    }
    out
}

fn delay(rng: &mut ChaCha8Rng, profile: &LinkProfile) -> u64 {
    let span = profile.max_delay_ms.saturating_sub(profile.min_delay_ms) + 1;
    profile.min_delay_ms + rng.next_u64() % span
}

/// True with probability `p`/1000.
pub fn per_mille(rng: &mut ChaCha8Rng, p: u32) -> bool {
    (rng.next_u32() % 1000) < p
}
