//! Changing a validator set: CometBFT's `UpdateWithChangeSet` followed by `IncrementProposerPriority(1)`,
//! which is how a chain's next-next set is made from its next set and one block's validator updates.
//!
//! - A change of power 0 removes the validator (it must be a member); any other power adds the key or
//!   sets its power.
//! - A validator that stays keeps its proposer priority; a new one starts at −1.125 × the total power
//!   after the updates and before the removals, so leaving and rejoining never resets a validator to a
//!   better place in the proposer rotation.
//! - Priorities are then rescaled to a window of 2 × the new total and centred, the set is re-sorted
//!   (power descending, then address), and the proposer advances once.
//!
//! Refused, leaving the set unchanged: two changes for one address, a power above
//! [`MAX_TOTAL_VOTING_POWER`], removing a non-member, a total above the maximum at any point of
//! applying the changes in CometBFT's order, an empty or oversized result.

use std::collections::BTreeMap;

use super::{Validator, ValidatorSet, PRIORITY_WINDOW_SIZE_FACTOR};
use crate::primitives::{VotingPower, MAX_TOTAL_VOTING_POWER};
use crate::types::crypto::{Address, PublicKey};
use crate::types::encoding::MAX_VALIDATORS;

/// One validator update: `power` 0 removes the key's validator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValidatorChange {
    /// The validator's consensus key.
    pub public_key: PublicKey,
    /// Its new power (0: removed).
    pub power: VotingPower,
}

/// Why a change set cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorUpdateError {
    /// Two changes name the same validator.
    #[error("validator {address} is changed twice")]
    Duplicate {
        /// Its address.
        address: Address,
    },
    /// A power above the largest total.
    #[error("validator {address} power {power} exceeds the maximum total {max}")]
    PowerTooLarge {
        /// Its address.
        address: Address,
        /// The power asked for.
        power: VotingPower,
        /// The largest total.
        max: VotingPower,
    },
    /// Removal of a validator that is not in the set.
    #[error("cannot remove validator {address}: not in the set")]
    RemovingAbsent {
        /// Its address.
        address: Address,
    },
    /// The changes would leave no validator.
    #[error("the changes would leave the validator set empty")]
    Empty,
    /// The total would exceed [`MAX_TOTAL_VOTING_POWER`].
    #[error("the changes would make the total voting power exceed {max}")]
    TotalPowerTooLarge {
        /// The limit.
        max: VotingPower,
    },
    /// More than [`MAX_VALIDATORS`] validators.
    #[error("the changes would make {count} validators, more than the limit of {max}")]
    TooMany {
        /// The count.
        count: usize,
        /// The limit.
        max: usize,
    },
}

impl ValidatorSet {
    /// This set's successor with `changes` applied — CometBFT's `Copy().UpdateWithChangeSet(changes)`
    /// then `IncrementProposerPriority(1)`, i.e. the set of height h + 2 made from the set of h + 1
    /// when block h returned `changes` (see the module docs). With no changes this is
    /// [`ValidatorSet::next_height`].
    pub fn next_height_with(
        &self,
        changes: &[ValidatorChange],
    ) -> Result<ValidatorSet, ValidatorUpdateError> {
        if changes.is_empty() {
            return Ok(self.next_height());
        }
        let max = MAX_TOTAL_VOTING_POWER;
        // Split into updates and removals, by address, refusing duplicates and oversized powers.
        let mut updates: BTreeMap<Address, ValidatorChange> = BTreeMap::new();
        let mut removals: BTreeMap<Address, ValidatorChange> = BTreeMap::new();
        for change in changes {
            let address = change.public_key.address();
            if updates.contains_key(&address) || removals.contains_key(&address) {
                return Err(ValidatorUpdateError::Duplicate { address });
            }
            if change.power > max {
                return Err(ValidatorUpdateError::PowerTooLarge {
                    address,
                    power: change.power,
                    max,
                });
            }
            if change.power == 0 {
                removals.insert(address, *change);
            } else {
                updates.insert(address, *change);
            }
        }
        let members: BTreeMap<Address, &Validator> =
            self.validators.iter().map(|v| (v.address, v)).collect();
        let new_count = updates.keys().filter(|a| !members.contains_key(*a)).count();
        if new_count == 0 && removals.len() == self.validators.len() {
            return Err(ValidatorUpdateError::Empty);
        }
        let mut removed: i128 = 0;
        for address in removals.keys() {
            let member = members
                .get(address)
                .ok_or(ValidatorUpdateError::RemovingAbsent { address: *address })?;
            removed += i128::from(member.voting_power);
        }
        // CometBFT's verifyUpdates: apply the updates in increasing order of their power change to
        // the total after removals; no intermediate total may exceed the maximum.
        let delta = |c: &ValidatorChange, address: &Address| -> i128 {
            let old = members.get(address).map_or(0, |v| v.voting_power);
            i128::from(c.power) - i128::from(old)
        };
        let mut deltas: Vec<i128> = updates.iter().map(|(a, c)| delta(c, a)).collect();
        deltas.sort_unstable();
        let mut total = i128::from(self.total_power) - removed;
        for d in deltas {
            total += d;
            if total > i128::from(max) {
                return Err(ValidatorUpdateError::TotalPowerTooLarge { max });
            }
        }
        let after_updates_before_removals = total + removed;
        // New validators start behind everyone: −1.125 × that total (CometBFT's `computeNewPriorities`).
        let new_priority = -(after_updates_before_removals + (after_updates_before_removals >> 3));
        let new_priority = i64::try_from(new_priority)
            .map_err(|_| ValidatorUpdateError::TotalPowerTooLarge { max })?;
        let mut validators: Vec<Validator> = self
            .validators
            .iter()
            .filter(|v| !removals.contains_key(&v.address))
            .map(|v| match updates.get(&v.address) {
                Some(change) => Validator {
                    voting_power: change.power,
                    ..v.clone()
                },
                None => v.clone(),
            })
            .collect();
        validators.extend(
            updates
                .iter()
                .filter(|(a, _)| !members.contains_key(*a))
                .map(|(address, change)| Validator {
                    address: *address,
                    public_key: change.public_key,
                    voting_power: change.power,
                    proposer_priority: new_priority,
                }),
        );
        if validators.len() > MAX_VALIDATORS {
            return Err(ValidatorUpdateError::TooMany {
                count: validators.len(),
                max: MAX_VALIDATORS,
            });
        }
        let total_power = ValidatorSet::check_members(&validators).map_err(|e| match e {
            super::ValidatorSetError::Empty => ValidatorUpdateError::Empty,
            _ => ValidatorUpdateError::TotalPowerTooLarge { max },
        })?;
        let mut set = ValidatorSet {
            validators,
            total_power,
            proposer: 0,
        };
        set.rescale_priorities(PRIORITY_WINDOW_SIZE_FACTOR.saturating_mul(total_power as i64));
        set.shift_by_average_priority();
        set.validators.sort_by(|a, b| {
            b.voting_power
                .cmp(&a.voting_power)
                .then(a.address.cmp(&b.address))
        });
        set.increment_proposer_priority(1);
        Ok(set)
    }
}

#[cfg(test)]
mod tests;
