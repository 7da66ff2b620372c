//! The simulated application: how honest nodes build and judge blocks. State is a hash chain over the
//! decided blocks' transactions, so the app hash in each header can be checked like a real one.

use basalt_consensus::core::Validity;
use basalt_consensus::types::{
    Address, Block, ChainId, Commit, DuplicateVoteEvidence, Hash, Header, Tx, ValidatorSet,
};
use basalt_consensus::Height;
use basalt_node::runtime::valsets::SetHistory;
use std::rc::Rc;

/// A transaction with this content makes a block invalid: byzantine proposers use it.
pub const POISON_TX: &[u8] = b"INVALID";

/// The chain as one node has it: decided blocks with their commits.
#[derive(Clone, Debug, Default)]
pub struct Chain {
    /// Block and commit of height i+1 at index i.
    pub blocks: Vec<(Block, Commit)>,
}

impl Chain {
    /// Height of the last decided block (0 before genesis).
    pub fn height(&self) -> u64 {
        self.blocks.len() as u64
    }

    /// App hash after all decided blocks: H(previous app hash || data hash) per block.
    pub fn app_hash(&self) -> Hash {
        self.blocks.iter().fold(Hash::ZERO, |acc, (b, _)| {
            Hash::digest_parts(&[&acc.0, &b.header().data_hash.0])
        })
    }
}

/// Everything fixed for a run: chain id and the validator set of every height.
#[derive(Clone, Debug)]
pub struct Genesis {
    /// Chain id.
    pub chain_id: ChainId,
    /// Genesis time, ms.
    pub time_ms: u64,
    /// The set of every height: the genesis set with proposer priorities rotating and the
    /// application's validator updates applied, kept by the node's own [`SetHistory`].
    pub history: Rc<SetHistory>,
}

impl Genesis {
    /// Validator set of `height`.
    pub fn set_for(&self, height: Height) -> ValidatorSet {
        self.history.at(height.0)
    }
}

/// Builds the next block on top of `chain`.
pub fn build_block(
    genesis: &mut Genesis,
    chain: &Chain,
    proposer: Address,
    now_ms: u64,
    txs: Vec<Tx>,
    evidence: Vec<DuplicateVoteEvidence>,
) -> Option<Block> {
    let last_commit = chain.blocks.last().map(|(_, c)| c.clone());
    build_block_with(genesis, chain, last_commit, proposer, now_ms, txs, evidence)
}

/// Builds the next block on top of `chain` with `last_commit` (the stored one, or one the engine
/// completed with precommits that arrived later).
pub fn build_block_with(
    genesis: &mut Genesis,
    chain: &Chain,
    last_commit: Option<Commit>,
    proposer: Address,
    now_ms: u64,
    txs: Vec<Tx>,
    evidence: Vec<DuplicateVoteEvidence>,
) -> Option<Block> {
    let height = Height(chain.height() + 1);
    let set = genesis.set_for(height);
    let next = genesis.set_for(Height(height.0 + 1));
    let last = chain.blocks.last();
    let (data_hash, evidence_hash, last_commit_hash) =
        Block::content_hashes(&txs, &evidence, last_commit.as_ref());
    let prev_time = last.map_or(genesis.time_ms, |(b, _)| b.header().time_ms);
    let header = Header {
        chain_id: genesis.chain_id.clone(),
        height,
        time_ms: now_ms.max(prev_time + 1),
        last_block_id: last.map(|(b, _)| b.id()),
        last_commit_hash,
        data_hash,
        validators_hash: set.hash(),
        next_validators_hash: next.hash(),
        app_hash: chain.app_hash(),
        last_results_hash: Hash::ZERO,
        evidence_hash,
        proposer_address: proposer,
    };
    Block::new(header, txs, evidence, last_commit).ok()
}

/// The honest validity check (`valid(v)`): header consistent with our chain, the previous block's commit
/// proves it, evidence verifies, and no poisoned transaction.
pub fn validate(genesis: &mut Genesis, chain: &Chain, block: &Block) -> Validity {
    if is_valid(genesis, chain, block) {
        Validity::Valid
    } else {
        Validity::Invalid
    }
}

fn is_valid(genesis: &mut Genesis, chain: &Chain, block: &Block) -> bool {
    let h = block.header();
    let height = Height(chain.height() + 1);
    let set = genesis.set_for(height);
    let next = genesis.set_for(Height(height.0 + 1));
    if h.height != height
        || h.chain_id != genesis.chain_id
        || h.validators_hash != set.hash()
        || h.next_validators_hash != next.hash()
        || h.app_hash != chain.app_hash()
        || set.index_of(&h.proposer_address).is_none()
    {
        return false;
    }
    match (chain.blocks.last(), block.last_commit()) {
        (None, None) => {}
        (Some((prev, _)), Some(commit)) => {
            let prev_set = genesis.set_for(prev.height());
            if h.time_ms <= prev.header().time_ms
                || commit
                    .verify_for(&genesis.chain_id, &prev_set, prev.height(), &prev.id())
                    .is_err()
            {
                return false;
            }
        }
        _ => return false,
    }
    let evidence_ok = block.evidence().iter().all(|e| {
        let set = genesis.set_for(e.height());
        e.height() < height && e.verify(&genesis.chain_id, &set).is_ok()
    });
    evidence_ok && block.txs().iter().all(|tx| tx.as_bytes() != POISON_TX)
}
