//! Fixtures shared by the engine's integration tests (each test file uses some of them).
#![allow(clippy::unwrap_used, dead_code)]

use basalt_consensus::types::{Block, ChainId, Hash, Header, PrivateKey, Tx, ValidatorSet};
use basalt_consensus::Height;

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

/// A height-1 block of `set`'s chain whose content is `tag`, proposed by `set`'s round-0 proposer.
pub fn block(set: &ValidatorSet, tag: &[u8]) -> Block {
    let txs = vec![Tx::new(tag.to_vec()).unwrap()];
    let (data_hash, evidence_hash, last_commit_hash) = Block::content_hashes(&txs, &[], None);
    let header = Header {
        chain_id: chain(),
        height: Height(1),
        time_ms: 1_700_000_000_000,
        last_block_id: None,
        last_commit_hash,
        data_hash,
        validators_hash: set.hash(),
        next_validators_hash: set.next_height().hash(),
        app_hash: Hash::ZERO,
        last_results_hash: Hash::ZERO,
        evidence_hash,
        proposer_address: set.validators()[set.proposer().0 as usize].address,
    };
    Block::new(header, txs, vec![], None).unwrap()
}
