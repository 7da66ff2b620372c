//! Validator sets of past heights.
//!
//! Each height's set is the previous one with proposer priorities rotated (`ValidatorSet::next_height`),
//! or, at a height h + 2 whose block h returned validator updates, the previous one with the updates
//! applied (`ValidatorSet::next_height_with`, CometBFT's rule). So the set of height h is the genesis set
//! stepped h − initial_height times, applying the recorded updates ([`SetHistory::record`]) on the way.
//! The updates are small (a key and a power each) and all kept; the node rebuilds them at start from
//! the store, where each block's are kept with it. Recomputing that from genesis for every query is O(h): at a million heights an RPC `validators`
//! query for an old height, or evidence from one, would cost a million rotations. [`SetHistory`] keeps
//! checkpoints along the way, so a query costs at most one checkpoint interval of rotations.
//!
//! Bounded: at most [`MAX_CHECKPOINTS`] checkpoints; when they would exceed that, the interval doubles and
//! every other checkpoint is dropped.

use std::collections::BTreeMap;
use std::sync::Mutex;

use basalt_consensus::types::{ValidatorChange, ValidatorSet, ValidatorUpdateError};

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

/// Why a recorded update cannot be part of the history.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// Updates recorded out of order (a block's updates must come after every earlier block's).
    #[error("validator updates of block {height} recorded after those of block {latest}")]
    OutOfOrder {
        /// The block whose updates were given.
        height: u64,
        /// The latest block with recorded updates.
        latest: u64,
    },
    /// The updates do not apply to the set they change.
    #[error("validator updates of block {height} do not apply: {source}")]
    Invalid {
        /// The block.
        height: u64,
        /// Why.
        #[source]
        source: ValidatorUpdateError,
    },
}

#[derive(Debug)]
struct Checkpoints {
    /// Heights between checkpoints (a power of two times [`FIRST_INTERVAL`]).
    every: u64,
    /// Sets at `initial_height + k * every`, k ≥ 1.
    sets: BTreeMap<u64, ValidatorSet>,
    /// The last set computed (sequential queries then cost one rotation).
    last: Option<(u64, ValidatorSet)>,
    /// Updates by the height they take effect at (their block's height + 2).
    changes: BTreeMap<u64, Vec<ValidatorChange>>,
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
                changes: BTreeMap::new(),
            }),
        }
    }

    /// Records the validator updates block `height` returned: they shape the set of `height + 2`.
    /// Blocks must be recorded in order; the updates are checked against the set they change, so a
    /// history never holds updates that do not apply.
    pub fn record(&self, height: u64, updates: Vec<ValidatorChange>) -> Result<(), HistoryError> {
        if updates.is_empty() {
            return Ok(());
        }
        let effective = height.saturating_add(2);
        {
            let state = self.lock();
            if let Some((&latest, _)) = state.changes.last_key_value() {
                if latest >= effective {
                    return Err(HistoryError::OutOfOrder {
                        height,
                        latest: latest - 2,
                    });
                }
            }
        }
        let before = self.at(effective - 1);
        before
            .next_height_with(&updates)
            .map_err(|source| HistoryError::Invalid { height, source })?;
        let mut state = self.lock();
        // Sets computed for heights from `effective` on did not know these updates.
        state.sets.retain(|h, _| *h < effective);
        if state.last.as_ref().is_some_and(|(h, _)| *h >= effective) {
            state.last = None;
        }
        state.changes.insert(effective, updates);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Checkpoints> {
        // A poisoned lock only means a panic elsewhere mid-update; the maps are still consistent
        // (every entry is inserted whole), so keep using them.
        match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The set of `height` (heights below the initial one get the genesis set).
    pub fn at(&self, height: u64) -> ValidatorSet {
        let height = height.max(self.initial_height);
        let mut state = self.lock();
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
            at += 1;
            set = match state.changes.get(&at) {
                None => set.next_height(),
                // Checked when recorded; were it ever to fail, the rotation keeps the node answering.
                Some(updates) => set
                    .next_height_with(updates)
                    .unwrap_or_else(|_| set.next_height()),
            };
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
        self.lock().sets.len()
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

    fn change(seed: u8, power: u64) -> ValidatorChange {
        ValidatorChange {
            public_key: PrivateKey::from_seed(&[seed; 32]).public_key(),
            power,
        }
    }

    #[test]
    fn updates_take_effect_two_heights_after_their_block() {
        let history = SetHistory::new(1, genesis());
        // Queried before and after the record: cached sets above the effective height are redone.
        let before = history.at(600);
        history.record(300, vec![change(9, 15)]).unwrap();
        history.record(500, vec![change(1, 0)]).unwrap();
        let mut expected = genesis();
        for h in 2..=700u64 {
            expected = match h {
                302 => expected.next_height_with(&[change(9, 15)]).unwrap(),
                502 => expected.next_height_with(&[change(1, 0)]).unwrap(),
                _ => expected.next_height(),
            };
            if [2, 301, 302, 303, 501, 502, 600, 700].contains(&h) {
                assert_eq!(history.at(h), expected, "height {h}");
            }
        }
        assert_ne!(history.at(600), before);
        assert_eq!(history.at(301).len(), 4);
        assert_eq!(history.at(302).len(), 5);
        assert_eq!(history.at(502).len(), 4);
    }

    #[test]
    fn updates_out_of_order_or_that_do_not_apply_are_refused() {
        let history = SetHistory::new(1, genesis());
        history.record(10, vec![change(9, 5)]).unwrap();
        assert!(matches!(
            history.record(10, vec![change(8, 5)]),
            Err(HistoryError::OutOfOrder { .. })
        ));
        assert!(matches!(
            history.record(20, vec![change(7, 0)]),
            Err(HistoryError::Invalid { height: 20, .. })
        ));
        // Nothing of the refused records took effect.
        assert_eq!(history.at(30).len(), 5);
        assert!(history.record(20, vec![]).is_ok());
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
