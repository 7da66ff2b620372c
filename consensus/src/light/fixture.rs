//! Signed light blocks for tests of light clients, here and in other crates (feature `testing`):
//! validators are keys from one-byte seeds, headers are signed by the members a test chooses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::skipping::VerifiedBlock;
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

/// A chain of heights 1..=top, one block a second from `start_ms`, each header linked to the one
/// below and signed by every member of its set; `members(h)` names the set of height h.
pub struct Chain {
    /// The blocks from height 1, each with the set of the height above it.
    pub blocks: Vec<(LightBlock, ValidatorSet)>,
}

impl Chain {
    /// The chain `chain_id` of heights 1..=`top`, the set of height `h` being `members(h)`.
    pub fn build(
        chain_id: &ChainId,
        start_ms: u64,
        top: u64,
        members: impl Fn(u64) -> Vec<(u8, VotingPower)>,
    ) -> Chain {
        let mut blocks: Vec<(LightBlock, ValidatorSet)> = Vec::new();
        for h in 1..=top {
            let validators = set(&members(h));
            let next = set(&members(h + 1));
            let mut header = header(
                chain_id,
                h,
                start_ms + h * 1_000,
                &validators,
                &next,
                Hash::digest(&h.to_be_bytes()),
            );
            header.last_block_id = blocks.last().map(|(b, _)| BlockId {
                hash: b.header.hash(),
            });
            let signers: Vec<u8> = members(h).iter().map(|m| m.0).collect();
            let commit = commit(chain_id, &header, &validators, &signers);
            blocks.push((
                LightBlock {
                    header,
                    commit,
                    validators,
                },
                next,
            ));
        }
        Chain { blocks }
    }

    /// The light block of `height` with the set of the height above it.
    pub fn at(&self, height: Height) -> (LightBlock, ValidatorSet) {
        self.blocks[height.0 as usize - 1].clone()
    }

    /// The block of `height` as a root of trust.
    pub fn root(&self, height: u64) -> VerifiedBlock {
        let (block, next) = self.at(Height(height));
        let hash = block.header.hash();
        VerifiedBlock::trust_root(block, next, &hash).unwrap()
    }
}
