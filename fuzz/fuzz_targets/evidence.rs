//! Any bytes as gossiped duplicate-vote evidence, decoded then verified against a fixed validator set
//! (what a node does before pooling it): never a panic; what decodes is two conflicting votes of one
//! validator at one height, round and type, in canonical order.
#![no_main]

use std::sync::OnceLock;

use basalt_consensus::engine::ConsensusMessage;
use basalt_consensus::types::{ChainId, PrivateKey, ValidatorSet};
use libfuzzer_sys::fuzz_target;

fn setup() -> &'static (ChainId, ValidatorSet) {
    static SETUP: OnceLock<(ChainId, ValidatorSet)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let keys = (1..=4u8).map(|i| PrivateKey::from_seed(&[i; 32]));
        let set = ValidatorSet::new(keys.map(|k| (k.public_key(), 10)).collect());
        let chain = ChainId::new("basalt-fuzz");
        match (chain, set) {
            (Ok(chain), Ok(set)) => (chain, set),
            _ => std::process::abort(),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(ConsensusMessage::Evidence(evidence)) = ConsensusMessage::from_bytes(data) else {
        return;
    };
    let (a, b) = (&evidence.vote_a().vote, &evidence.vote_b().vote);
    assert_eq!(
        (a.height, a.round, a.vote_type, a.validator_index),
        (b.height, b.round, b.vote_type, b.validator_index)
    );
    assert!(a.block_id < b.block_id);
    let (chain, set) = setup();
    let _ = evidence.verify(chain, set);
    let _ = evidence.offence_key();
});
