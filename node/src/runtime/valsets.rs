//! Validator sets of past heights.
//!
//! Membership is fixed at genesis; each height's set is the previous one with proposer priorities rotated
//! (`ValidatorSet::next_height`), so the set of height h is h − initial_height rotations of the genesis
//! set. Recomputing that from genesis for every query is O(h): at a million heights an RPC `validators`
//! query for an old height, or evidence from one, would cost a million rotations. [`SetHistory`] keeps
//! checkpoints along the way, so a query costs at most one checkpoint interval of rotations.
//!
//! Bounded: at most [`MAX_CHECKPOINTS`] checkpoints; when they would exceed that, the interval doubles and
//! every other checkpoint is dropped.

use std::collections::BTreeMap;
use std::sync::Mutex;

use basalt_consensus::types::ValidatorSet;

/// Most checkpoints kept.
pub const MAX_CHECKPOINTS: usize = 1024;
/// Heights between checkpoints to begin with.
const FIRST_INTERVAL: u64 = 256;

/// Checkpointed validator-set history of one chain (thread-safe; queries lock briefly).
#[derive(Debug)]
pub struct SetHistory {
    initial_height: u64,
    genesis_set: ValidatorSet,
    state: Mutex<Checkpoints>,
}

#[derive(Debug)]
struct Checkpoints {
    /// Heights between checkpoints (a power of two times [`FIRST_INTERVAL`]).
    every: u64,
    /// Sets at `initial_height + k * every`, k ≥ 1.
    sets: BTreeMap<u64, ValidatorSet>,
    /// The last set computed (sequential queries then cost one rotation).
    last: Option<(u64, ValidatorSet)>,
}

impl SetHistory {
    /// The history of a chain starting at `initial_height` with `genesis_set`.
    pub fn new(initial_height: u64, genesis_set: ValidatorSet) -> Self {
        Self {
            initial_height,
            genesis_set,
            state: Mutex::new(Checkpoints {
                every: FIRST_INTERVAL,
                sets: BTreeMap::new(),
                last: None,
            }),
        }
    }

    /// The set of `height` (heights below the initial one get the genesis set).
    pub fn at(&self, height: u64) -> ValidatorSet {
        let height = height.max(self.initial_height);
        // A poisoned lock only means a panic elsewhere mid-update; the map is still consistent (every
        // entry is inserted whole), so keep using it.
        let mut state = match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        let from_checkpoint = state
            .sets
            .range(..=height)
            .next_back()
            .map(|(h, s)| (*h, s.clone()));
        let from_last = state
            .last
            .as_ref()
            .filter(|(h, _)| *h <= height)
            .map(|(h, s)| (*h, s.clone()));
        let genesis = (self.initial_height, self.genesis_set.clone());
        let (mut at, mut set) = [from_checkpoint, from_last]
            .into_iter()
            .flatten()
            .max_by_key(|(h, _)| *h)
            .unwrap_or(genesis);
        while at < height {
            set = set.next_height();
            at += 1;
            if (at - self.initial_height).is_multiple_of(state.every)
                && !state.sets.contains_key(&at)
            {
                state.sets.insert(at, set.clone());
                state.thin(self.initial_height);
            }
        }
        state.last = Some((at, set.clone()));
        set
    }

    /// Checkpoints kept (for tests).
    pub fn checkpoints(&self) -> usize {
        match self.state.lock() {
            Ok(s) => s.sets.len(),
            Err(poisoned) => poisoned.into_inner().sets.len(),
        }
    }
}

impl Checkpoints {
    /// Doubles the interval, dropping every other checkpoint, while there are too many.
    fn thin(&mut self, initial_height: u64) {
        while self.sets.len() > MAX_CHECKPOINTS {
            self.every = self.every.saturating_mul(2);
            let every = self.every;
            self.sets
                .retain(|h, _| (h - initial_height).is_multiple_of(every));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use basalt_consensus::types::PrivateKey;

    fn genesis() -> ValidatorSet {
        let members = (1..=4u8)
            .map(|i| {
                (
                    PrivateKey::from_seed(&[i; 32]).public_key(),
                    u64::from(i) * 10,
                )
            })
            .collect();
        ValidatorSet::new(members).unwrap()
    }

    /// The set of `height` the slow way: rotations from genesis.
    fn rotated(initial: u64, height: u64) -> ValidatorSet {
        let mut set = genesis();
        for _ in initial..height {
            set = set.next_height();
        }
        set
    }

    #[test]
    fn any_order_of_queries_gives_the_rotated_set() {
        let history = SetHistory::new(5, genesis());
        for height in [5, 700, 3, 6, 1_000, 999, 257, 261, 5_000, 4_321, 12, 5_001] {
            assert_eq!(
                history.at(height),
                rotated(5, height.max(5)),
                "height {height}"
            );
        }
    }

    #[test]
    fn checkpoints_stay_bounded_and_queries_stay_right() {
        let history = SetHistory::new(1, genesis());
        let far = FIRST_INTERVAL * (MAX_CHECKPOINTS as u64) * 3;
        let expected = rotated(1, far);
        assert_eq!(history.at(far), expected);
        assert!(history.checkpoints() <= MAX_CHECKPOINTS);
        assert!(history.checkpoints() >= MAX_CHECKPOINTS / 4);
        // An old height far from the last query is served from a checkpoint, and is right.
        assert_eq!(history.at(1_234), rotated(1, 1_234));
    }
}
