//! Validators, validator sets and CometBFT's weighted round-robin proposer selection.

use borsh::{BorshDeserialize, BorshSerialize};
use std::io;

use super::crypto::{Address, PublicKey};
use super::encoding::{encode, invalid_data, MAX_VALIDATORS};
use super::hash::{merkle_root, Hash};
use crate::primitives::{Round, ValidatorIndex, VotingPower, MAX_TOTAL_VOTING_POWER};

mod changes;
pub use changes::{ValidatorChange, ValidatorUpdateError};

/// CometBFT's `PriorityWindowSizeFactor`: priorities are rescaled to stay within 2 × total power.
const PRIORITY_WINDOW_SIZE_FACTOR: i64 = 2;

/// Why a validator set is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorSetError {
    /// A set must have at least one validator.
    #[error("validator set is empty")]
    Empty,
    /// More than [`MAX_VALIDATORS`] validators.
    #[error("validator set has {count} validators, more than the limit of {max}")]
    TooMany {
        /// Number given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A validator with zero power.
    #[error("validator {address} has zero voting power")]
    ZeroPower {
        /// The validator.
        address: Address,
    },
    /// Total power above [`MAX_TOTAL_VOTING_POWER`].
    #[error("total voting power exceeds the maximum of {max}")]
    TotalPowerTooLarge {
        /// The limit.
        max: VotingPower,
    },
    /// Two validators with the same key (hence address).
    #[error("duplicate validator {address}")]
    Duplicate {
        /// The repeated address.
        address: Address,
    },
}

/// One validator of a set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validator {
    /// Its address, derived from the key.
    pub address: Address,
    /// Its consensus key.
    pub public_key: PublicKey,
    /// Its voting power (> 0).
    pub voting_power: VotingPower,
    /// Its proposer priority (CometBFT's weighted round robin state).
    pub proposer_priority: i64,
}

/// An ordered, validated validator set: sorted by voting power (descending), then address (ascending), as in
/// CometBFT, so validator indices agree on every node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    total_power: VotingPower,
    proposer: usize,
}

impl ValidatorSet {
    /// Builds a set from keys and powers, with CometBFT's initial proposer state (priorities start at zero and
    /// are incremented once, so the first proposer is the most powerful validator).
    pub fn new(members: Vec<(PublicKey, VotingPower)>) -> Result<ValidatorSet, ValidatorSetError> {
        let mut validators: Vec<Validator> = members
            .into_iter()
            .map(|(public_key, voting_power)| Validator {
                address: public_key.address(),
                public_key,
                voting_power,
                proposer_priority: 0,
            })
            .collect();
        let total_power = Self::check_members(&validators)?;
        validators.sort_by(|a, b| {
            b.voting_power
                .cmp(&a.voting_power)
                .then(a.address.cmp(&b.address))
        });
        let mut set = ValidatorSet {
            validators,
            total_power,
            proposer: 0,
        };
        set.increment_proposer_priority(1);
        Ok(set)
    }

    fn check_members(validators: &[Validator]) -> Result<VotingPower, ValidatorSetError> {
        if validators.is_empty() {
            return Err(ValidatorSetError::Empty);
        }
        if validators.len() > MAX_VALIDATORS {
            return Err(ValidatorSetError::TooMany {
                count: validators.len(),
                max: MAX_VALIDATORS,
            });
        }
        let mut total: VotingPower = 0;
        let mut seen = std::collections::BTreeSet::new();
        for v in validators {
            if v.voting_power == 0 {
                return Err(ValidatorSetError::ZeroPower { address: v.address });
            }
            if !seen.insert(v.address) {
                return Err(ValidatorSetError::Duplicate { address: v.address });
            }
            total = total
                .checked_add(v.voting_power)
                .filter(|t| *t <= MAX_TOTAL_VOTING_POWER)
                .ok_or(ValidatorSetError::TotalPowerTooLarge {
                    max: MAX_TOTAL_VOTING_POWER,
                })?;
        }
        Ok(total)
    }

    /// The validators in index order.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// Number of validators.
    pub fn len(&self) -> usize {
        self.validators.len()
    }

    /// Always false: a validated set is never empty (kept for clippy's `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    /// Sum of all voting power.
    pub fn total_power(&self) -> VotingPower {
        self.total_power
    }

    /// The validator at an index.
    pub fn get(&self, index: ValidatorIndex) -> Option<&Validator> {
        self.validators.get(index.0 as usize)
    }

    /// The index of an address.
    pub fn index_of(&self, address: &Address) -> Option<ValidatorIndex> {
        self.validators
            .iter()
            .position(|v| v.address == *address)
            .map(|i| ValidatorIndex(i as u32))
    }

    /// Voting powers in index order (what the consensus core's vote keeper needs).
    pub fn powers(&self) -> Vec<VotingPower> {
        self.validators.iter().map(|v| v.voting_power).collect()
    }

    /// The proposer of round 0 of the height this set is for.
    pub fn proposer(&self) -> ValidatorIndex {
        ValidatorIndex(self.proposer as u32)
    }

    /// The proposer of `round`: the round-0 state advanced `round` more times (CometBFT's
    /// `IncrementProposerPriority(round)` on a copy).
    pub fn proposer_for_round(&self, round: Round) -> ValidatorIndex {
        if round.0 == 0 {
            return self.proposer();
        }
        let mut copy = self.clone();
        copy.increment_proposer_priority(round.0);
        copy.proposer()
    }

    /// The set for the next height when validators do not change (priorities advanced once).
    pub fn next_height(&self) -> ValidatorSet {
        let mut next = self.clone();
        next.increment_proposer_priority(1);
        next
    }

    /// Hash of the set: Merkle root of each validator's (key, power) encoding. Priorities are excluded, as in
    /// CometBFT, so the hash only changes when membership or power does.
    pub fn hash(&self) -> Hash {
        let leaves: Vec<Vec<u8>> = self
            .validators
            .iter()
            .map(|v| encode(&(v.public_key, v.voting_power)))
            .collect();
        merkle_root(&leaves)
    }

    /// CometBFT's `IncrementProposerPriority(times)`: rescale, centre, then `times` rounds of
    /// "everyone gains their power, the leader pays the total". All arithmetic saturates (CometBFT's
    /// `safeAddClip`/`safeSubClip`), so no input can overflow.
    fn increment_proposer_priority(&mut self, times: u32) {
        let diff_max = PRIORITY_WINDOW_SIZE_FACTOR.saturating_mul(self.total_power as i64);
        self.rescale_priorities(diff_max);
        self.shift_by_average_priority();
        for _ in 0..times {
            self.proposer = self.increment_once();
        }
    }

    fn increment_once(&mut self) -> usize {
        for v in &mut self.validators {
            v.proposer_priority = v.proposer_priority.saturating_add(v.voting_power as i64);
        }
        let leader = self.highest_priority();
        let total = self.total_power as i64;
        let v = &mut self.validators[leader];
        v.proposer_priority = v.proposer_priority.saturating_sub(total);
        leader
    }

    /// Highest priority; ties go to the lower address (CometBFT `CompareProposerPriority`).
    fn highest_priority(&self) -> usize {
        let mut best = 0;
        for (i, v) in self.validators.iter().enumerate().skip(1) {
            let b = &self.validators[best];
            if v.proposer_priority > b.proposer_priority
                || (v.proposer_priority == b.proposer_priority && v.address < b.address)
            {
                best = i;
            }
        }
        best
    }

    fn rescale_priorities(&mut self, diff_max: i64) {
        if diff_max <= 0 {
            return;
        }
        let max = self.validators.iter().map(|v| v.proposer_priority).max();
        let min = self.validators.iter().map(|v| v.proposer_priority).min();
        let (Some(max), Some(min)) = (max, min) else {
            return;
        };
        let diff = (max as i128 - min as i128).unsigned_abs();
        let diff_max = diff_max as u128;
        if diff > diff_max {
            let ratio = diff.div_ceil(diff_max) as i128;
            for v in &mut self.validators {
                // Go's `/=` truncates toward zero, as Rust's `/` does.
                v.proposer_priority = (v.proposer_priority as i128 / ratio) as i64;
            }
        }
    }

    fn shift_by_average_priority(&mut self) {
        let n = self.validators.len() as i128;
        let sum: i128 = self
            .validators
            .iter()
            .map(|v| v.proposer_priority as i128)
            .sum();
        // CometBFT uses big.Int.Div, which is Euclidean division.
        let avg = sum.div_euclid(n).clamp(i64::MIN as i128, i64::MAX as i128) as i64;
        for v in &mut self.validators {
            v.proposer_priority = v.proposer_priority.saturating_sub(avg);
        }
    }
}

/// Wire form: (key, power, priority) per validator, proposer index. Decoding re-validates everything.
impl BorshSerialize for ValidatorSet {
    fn serialize<W: io::Write>(&self, writer: &mut W) -> io::Result<()> {
        let members: Vec<(PublicKey, VotingPower, i64)> = self
            .validators
            .iter()
            .map(|v| (v.public_key, v.voting_power, v.proposer_priority))
            .collect();
        members.serialize(writer)?;
        (self.proposer as u32).serialize(writer)
    }
}

impl BorshDeserialize for ValidatorSet {
    fn deserialize_reader<R: io::Read>(reader: &mut R) -> io::Result<Self> {
        let members = Vec::<(PublicKey, VotingPower, i64)>::deserialize_reader(reader)?;
        let proposer = u32::deserialize_reader(reader)? as usize;
        let validators: Vec<Validator> = members
            .into_iter()
            .map(|(public_key, voting_power, proposer_priority)| Validator {
                address: public_key.address(),
                public_key,
                voting_power,
                proposer_priority,
            })
            .collect();
        let total_power = Self::check_members(&validators).map_err(invalid_data)?;
        let sorted = validators.windows(2).all(|w| {
            (w[0].voting_power, std::cmp::Reverse(w[0].address))
                > (w[1].voting_power, std::cmp::Reverse(w[1].address))
        });
        if !sorted {
            return Err(invalid_data("validators are not in canonical order"));
        }
        if proposer >= validators.len() {
            return Err(invalid_data("proposer index out of range"));
        }
        Ok(ValidatorSet {
            validators,
            total_power,
            proposer,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::types::crypto::PrivateKey;

    fn set(powers: &[u64]) -> ValidatorSet {
        ValidatorSet::new(
            powers
                .iter()
                .enumerate()
                .map(|(i, p)| (PrivateKey::from_seed(&[i as u8 + 1; 32]).public_key(), *p))
                .collect(),
        )
        .unwrap()
    }

    /// Over `total` consecutive heights, each validator proposes in proportion to its power.
    #[test]
    fn proposer_frequency_follows_power() {
        let mut vs = set(&[1, 2, 3, 4]);
        let mut counts = [0u32; 4];
        for _ in 0..(10 * vs.total_power()) {
            counts[vs.proposer().0 as usize] += 1;
            vs = vs.next_height();
        }
        // Sorted by power descending: indices hold powers 4, 3, 2, 1.
        assert_eq!(counts, [40, 30, 20, 10]);
    }

    #[test]
    fn equal_powers_rotate_round_robin() {
        let vs = set(&[10, 10, 10]);
        let rounds: Vec<u32> = (0..6).map(|r| vs.proposer_for_round(Round(r)).0).collect();
        assert_eq!(
            rounds[0..3]
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            3
        );
        assert_eq!(rounds[0..3], rounds[3..6]);
    }

    #[test]
    fn extreme_powers_do_not_overflow() {
        let big = MAX_TOTAL_VOTING_POWER / 2;
        let mut vs = set(&[big, big - 1, 1]);
        let small = (0..3u32)
            .find(|&i| {
                vs.get(ValidatorIndex(i))
                    .is_some_and(|v| v.voting_power == 1)
            })
            .unwrap();
        let mut proposed = [0u32; 3];
        for _ in 0..1000 {
            vs = vs.next_height();
            proposed[vs.proposer().0 as usize] += 1;
        }
        // Priorities stayed meaningful at the largest powers: the two big validators alternate and the one
        // with power 1 (a 2^-60 share) never proposes, even far into the rounds.
        assert_eq!(proposed[small as usize], 0, "{proposed:?}");
        for (i, count) in proposed.iter().enumerate() {
            if i != small as usize {
                assert!((499..=501).contains(count), "{proposed:?}");
            }
        }
        assert!(vs.proposer_for_round(Round(10_000)).0 < 3);
        assert_ne!(vs.proposer_for_round(Round(10_000)).0, small);
    }

    #[test]
    fn invalid_sets_are_rejected() {
        assert_eq!(ValidatorSet::new(vec![]), Err(ValidatorSetError::Empty));
        let k = PrivateKey::from_seed(&[1; 32]).public_key();
        assert!(matches!(
            ValidatorSet::new(vec![(k, 1), (k, 2)]),
            Err(ValidatorSetError::Duplicate { .. })
        ));
        assert!(matches!(
            ValidatorSet::new(vec![(k, 0)]),
            Err(ValidatorSetError::ZeroPower { .. })
        ));
        let k2 = PrivateKey::from_seed(&[2; 32]).public_key();
        assert!(matches!(
            ValidatorSet::new(vec![(k, MAX_TOTAL_VOTING_POWER), (k2, 1)]),
            Err(ValidatorSetError::TotalPowerTooLarge { .. })
        ));
    }

    #[test]
    fn encoding_roundtrips_and_rejects_reordering() {
        let vs = set(&[5, 3, 1]).next_height();
        let bytes = encode(&vs);
        let back: ValidatorSet = borsh::from_slice(&bytes).unwrap();
        assert_eq!(back, vs);
        assert_eq!(back.hash(), vs.hash());
    }
}
