//! Fixtures shared by the engine's integration tests.
#![allow(clippy::unwrap_used)]

use basalt_consensus::types::{ChainId, PrivateKey, ValidatorSet};

/// The chain id every test signs for.
pub fn chain() -> ChainId {
    ChainId::new("basalt-test").unwrap()
}

/// A four-validator set of equal power (10 each) and its keys in the set's order, so `keys[i]` signs as
/// validator index `i`.
pub fn set_and_keys() -> (ValidatorSet, Vec<PrivateKey>) {
    let keys: Vec<PrivateKey> = (0..4u8)
        .map(|i| PrivateKey::from_seed(&[i + 1; 32]))
        .collect();
    let set = ValidatorSet::new(keys.iter().map(|k| (k.public_key(), 10)).collect()).unwrap();
    let ordered = set
        .validators()
        .iter()
        .map(|v| {
            keys.iter()
                .find(|k| k.public_key() == v.public_key)
                .unwrap()
                .clone()
        })
        .collect();
    (set, ordered)
}
