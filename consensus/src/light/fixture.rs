//! Signed light blocks for tests of light clients, here and in other crates (feature `testing`):
//! validators are keys from one-byte seeds, headers are signed by the members a test chooses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::LightBlock;
use crate::primitives::{Height, Round, ValidatorIndex, VoteType, VotingPower};
use crate::types::{
    Address, BlockId, ChainId, Commit, CommitSig, Hash, Header, PrivateKey, ValidatorSet, Vote,
};

/// The key of seed `seed` (`[seed; 32]`).
pub fn key(seed: u8) -> PrivateKey {
    PrivateKey::from_seed(&[seed; 32])
}

/// The set of the validators with key seeds and powers `members`.
pub fn set(members: &[(u8, VotingPower)]) -> ValidatorSet {
    ValidatorSet::new(
        members
            .iter()
            .map(|(seed, power)| (key(*seed).public_key(), *power))
            .collect(),
    )
    .unwrap()
}

/// The key seed (1..=64) of the validator at `index` of `set`.
pub fn seed_of(set: &ValidatorSet, index: usize) -> u8 {
    let address = set.validators()[index].address;
    (1..=64u8)
        .find(|seed| key(*seed).public_key().address() == address)
        .expect("a validator made from a seed of 1..=64")
}

/// A header of `chain` signed by `validators`, naming `next` as the next set.
pub fn header(
    chain: &ChainId,
    height: u64,
    time_ms: u64,
    validators: &ValidatorSet,
    next: &ValidatorSet,
    app_hash: Hash,
) -> Header {
    Header {
        chain_id: chain.clone(),
        height: Height(height),
        time_ms,
        last_block_id: None,
        last_commit_hash: Hash::ZERO,
        data_hash: Hash::ZERO,
        validators_hash: validators.hash(),
        next_validators_hash: next.hash(),
        app_hash,
        last_results_hash: Hash::ZERO,
        evidence_hash: Hash::ZERO,
        proposer_address: Address([0; 20]),
    }
}

/// A round-0 commit of `header` with precommits for it by the members of `validators` whose seeds are
/// in `signers` (the others absent).
pub fn commit(
    chain: &ChainId,
    header: &Header,
    validators: &ValidatorSet,
    signers: &[u8],
) -> Commit {
    let block_id = BlockId {
        hash: header.hash(),
    };
    let signatures = (0..validators.len())
        .map(|index| {
            let seed = seed_of(validators, index);
            if !signers.contains(&seed) {
                return CommitSig::Absent;
            }
            let vote = Vote {
                vote_type: VoteType::Precommit,
                height: header.height,
                round: Round(0),
                block_id: Some(block_id),
                validator_index: ValidatorIndex(index as u32),
            };
            CommitSig::ForBlock(key(seed).sign(&vote.sign_bytes(chain)))
        })
        .collect();
    Commit {
        height: header.height,
        round: Round(0),
        block_id,
        signatures,
    }
}

/// [`header`] with its [`commit`] by `signers` and its validator set.
pub fn light_block(
    chain: &ChainId,
    height: u64,
    time_ms: u64,
    validators: &ValidatorSet,
    next: &ValidatorSet,
    app_hash: Hash,
    signers: &[u8],
) -> LightBlock {
    let header = header(chain, height, time_ms, validators, next, app_hash);
    LightBlock {
        commit: commit(chain, &header, validators, signers),
        header,
        validators: validators.clone(),
    }
}
