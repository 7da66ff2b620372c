//! The committed chain as the consensus driver needs it: the tip (last block, its commit, the app hash
//! after it), the validator set of every height, how to build the next block and how to judge one.

use std::collections::VecDeque;
use std::sync::Arc;

use basalt_consensus::core::Validity;
use basalt_consensus::types::{
    Address, Block, BlockError, BlockId, ChainId, Commit, DuplicateVoteEvidence, EvidenceError,
    Hash, Header, Tx, ValidatorChange, ValidatorSet,
};
use basalt_consensus::Height;
use basalt_state::app::{Application, ProposalVerdict};
use basalt_state::StateStore;

use super::valsets::{HistoryError, SetHistory};

/// How far ahead of our clock a proposed block's time may be (proposer clocks drift).
pub const MAX_CLOCK_DRIFT_MS: u64 = 30_000;

/// Validator sets kept in memory (older ones are recomputed from genesis on demand).
const RECENT_SETS: usize = 256;

/// Evidence older than this many heights is not accepted into blocks.
pub const MAX_EVIDENCE_AGE: u64 = 100_000;

/// Why a proposed block is not acceptable (logged; the engine only sees "invalid").
#[derive(Debug, thiserror::Error)]
pub enum InvalidBlock {
    /// A header field disagrees with our chain.
    #[error("header field {field} is wrong")]
    Header {
        /// The field.
        field: &'static str,
    },
    /// The block's last commit does not prove our last block.
    #[error("last commit does not prove block {height}: {reason}")]
    LastCommit {
        /// Height of our last block.
        height: u64,
        /// Why.
        reason: String,
    },
    /// The same evidence twice in one block.
    #[error("evidence #{index} repeats an earlier one")]
    DuplicateEvidence {
        /// Position in the block.
        index: usize,
    },
    /// Evidence that does not verify or is too old/new.
    #[error("evidence #{index} is not acceptable: {source}")]
    Evidence {
        /// Position in the block.
        index: usize,
        /// Why.
        source: EvidenceRefused,
    },
    /// The application refused the transactions.
    #[error("application refused the block: {reason}")]
    App {
        /// The application's reason.
        reason: String,
    },
}

/// Why a piece of evidence cannot be committed at a height.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceRefused {
    /// Evidence of a height after the one consensus works on: its validator set is not known here, and
    /// nothing is computed for it (a peer could name any height).
    #[error("evidence of height {of} is beyond the height consensus works on ({working})")]
    Future {
        /// The evidence's height.
        of: u64,
        /// The height consensus works on.
        working: u64,
    },
    /// Evidence must be of a height below the block that commits it, and not before the chain began.
    #[error("evidence height {of} is not below {height} (or before the chain's first height)")]
    NotBelow {
        /// The evidence's height.
        of: u64,
        /// The committing block's height.
        height: u64,
    },
    /// A block of this chain committed the same offence already.
    #[error("the offence of height {of} was committed already, at height {at}")]
    AlreadyCommitted {
        /// The evidence's height.
        of: u64,
        /// The height of the block that committed it.
        at: u64,
    },
    /// Blocks that could have committed it are pruned here: whether it was committed cannot be known.
    #[error(
        "evidence of height {of} could have been committed below this node's oldest block {base}"
    )]
    BeforeBase {
        /// The evidence's height.
        of: u64,
        /// The oldest stored block.
        base: u64,
    },
    /// Reading the committed-evidence index failed.
    #[error("reading committed evidence: {0}")]
    Store(#[from] basalt_state::StateError),
    /// Older than [`MAX_EVIDENCE_AGE`] heights.
    #[error("evidence of height {of} is too old for a block at {height}")]
    TooOld {
        /// The evidence's height.
        of: u64,
        /// The committing block's height.
        height: u64,
    },
    /// The votes do not prove an equivocation by a validator of that height (provable by anyone).
    #[error(transparent)]
    Invalid(#[from] EvidenceError),
}

/// A block that +2/3 of the validators committed does not continue the chain this node executed: its
/// state has diverged from the network's (a bug or a corrupted store), and going on would build on it.
#[derive(Debug, thiserror::Error)]
#[error("block {height} does not continue our chain: its {field} is {theirs}, ours is {ours}")]
pub struct Diverged {
    /// The committed block's height.
    pub height: u64,
    /// The header field that disagrees.
    pub field: &'static str,
    /// The header's value.
    pub theirs: String,
    /// This node's value.
    pub ours: String,
}

/// The chain state of one node: everything needed to build and check the block at `height() + 1`.
#[derive(Debug)]
pub struct ChainState {
    chain_id: ChainId,
    initial_height: u64,
    genesis_time_ms: u64,
    /// Sets of any past height (checkpointed rotations of the genesis set), shared with the RPC backend.
    history: Arc<SetHistory>,
    /// Last committed height (`initial_height - 1` before the first block).
    height: u64,
    /// The last committed block and the commit that decided it.
    last: Option<(Block, Commit)>,
    /// App hash after `height` (goes into the header of `height + 1`).
    app_hash: Hash,
    /// Results hash of block `height` (goes into the header of `height + 1`).
    last_results_hash: Hash,
    /// Validator sets of heights `sets_from ..`, the last one being the set of `height + 2`.
    sets: VecDeque<ValidatorSet>,
    sets_from: u64,
    /// The store whose index records committed evidence (`None` in tests of the chain state alone).
    committed_evidence: Option<Arc<StateStore>>,
}

impl ChainState {
    /// The chain state after `height` (with its block and commit if `height >= initial_height`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        chain_id: ChainId,
        initial_height: u64,
        genesis_time_ms: u64,
        history: Arc<SetHistory>,
        height: u64,
        last: Option<(Block, Commit)>,
        app_hash: Hash,
        last_results_hash: Hash,
    ) -> ChainState {
        let mut state = ChainState {
            chain_id,
            initial_height,
            genesis_time_ms,
            history,
            height,
            last,
            app_hash,
            last_results_hash,
            sets: VecDeque::new(),
            sets_from: initial_height,
            committed_evidence: None,
        };
        // Sets of height-1 (to check the last commit) through height+2, from the history (which
        // knows every committed block's validator updates).
        let first = height.saturating_sub(1).max(initial_height);
        state.sets_from = first;
        for h in first..=height.saturating_add(2) {
            let set = state.history.at(h);
            state.sets.push_back(set);
        }
        state
    }

    /// Checks evidence against the committed-evidence index of `store` too (what blocks committed is
    /// remembered across restarts there, so no offence is committed twice).
    pub fn with_committed_evidence(mut self, store: Arc<StateStore>) -> ChainState {
        self.committed_evidence = Some(store);
        self
    }

    /// The chain id.
    pub fn chain_id(&self) -> &ChainId {
        &self.chain_id
    }

    /// The first height of the chain.
    pub fn initial_height(&self) -> u64 {
        self.initial_height
    }

    /// Last committed height.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// The height consensus works on.
    pub fn next_height(&self) -> Height {
        Height(self.height.saturating_add(1))
    }

    /// The last committed block and its commit.
    pub fn last(&self) -> Option<&(Block, Commit)> {
        self.last.as_ref()
    }

    /// App hash after the last committed block.
    pub fn app_hash(&self) -> Hash {
        self.app_hash
    }

    /// Whether the next block must be made even with no transaction to carry (CometBFT's
    /// `needProofBlock`): it is the first block, or the last block changed the application state — only
    /// the next header carries the new app hash, which light clients and IBC proofs of that state need.
    pub fn needs_proof_block(&self) -> bool {
        self.last
            .as_ref()
            .is_none_or(|(block, _)| block.header().app_hash != self.app_hash)
    }

    /// The validator set of `height` (any height from `initial_height`).
    pub fn validators_at(&self, height: u64) -> ValidatorSet {
        if height >= self.sets_from {
            let index = usize::try_from(height - self.sets_from).unwrap_or(usize::MAX);
            if let Some(set) = self.sets.get(index) {
                return set.clone();
            }
        }
        self.history.at(height)
    }

    /// Records that `block` (the next height) was committed with `commit`, leaving `app_hash` and a block
    /// whose results hash is `results_hash`, and returning validator `updates`: the set of the block's
    /// height + 2 is the set of height + 1 with them applied (CometBFT's rule). Updates that do not
    /// apply (the application returned what the consensus rules refuse) change nothing and are the
    /// error: the node cannot know its next validators.
    pub fn advance(
        &mut self,
        block: Block,
        commit: Commit,
        app_hash: Hash,
        results_hash: Hash,
        updates: &[ValidatorChange],
    ) -> Result<(), HistoryError> {
        let height = block.height().0;
        self.history.record(height, updates.to_vec())?;
        if let Some(last) = self.sets.back() {
            let next = if updates.is_empty() {
                last.next_height()
            } else {
                last.next_height_with(updates)
                    .map_err(|source| HistoryError::Invalid { height, source })?
            };
            self.sets.push_back(next);
        }
        self.height = height;
        self.last = Some((block, commit));
        self.app_hash = app_hash;
        self.last_results_hash = results_hash;
        while self.sets.len() > RECENT_SETS {
            self.sets.pop_front();
            self.sets_from += 1;
        }
        Ok(())
    }

    /// Builds the block to propose at the next height. `complete_last_commit` may add precommits to the
    /// last block's commit (see `Engine::complete_last_commit`); the block is checked like any other, so a
    /// commit that does not prove the last block is refused by the engine.
    pub fn build_block(
        &self,
        proposer: Address,
        now_ms: u64,
        txs: Vec<Tx>,
        evidence: Vec<DuplicateVoteEvidence>,
        complete_last_commit: impl FnOnce(&Commit) -> Commit,
    ) -> Result<Block, BlockError> {
        let height = self.next_height();
        let set = self.validators_at(height.0);
        let next = self.validators_at(height.0 + 1);
        let last_commit = self
            .last
            .as_ref()
            .map(|(_, decided)| complete_last_commit(decided));
        let (data_hash, evidence_hash, last_commit_hash) =
            Block::content_hashes(&txs, &evidence, last_commit.as_ref());
        let prev_time = self
            .last
            .as_ref()
            .map_or(self.genesis_time_ms, |(b, _)| b.header().time_ms);
        let header = Header {
            chain_id: self.chain_id.clone(),
            height,
            time_ms: now_ms.max(prev_time.saturating_add(1)),
            last_block_id: self.last.as_ref().map(|(b, _)| b.id()),
            last_commit_hash,
            data_hash,
            validators_hash: set.hash(),
            next_validators_hash: next.hash(),
            app_hash: self.app_hash,
            last_results_hash: self.last_results_hash,
            evidence_hash,
            proposer_address: proposer,
        };
        Block::new(header, txs, evidence, last_commit)
    }

    /// `valid(v)`: the block is the correct next block of our chain and the application accepts it.
    pub fn validate<A: Application>(
        &self,
        block: &Block,
        app: &A,
        now_ms: u64,
    ) -> Result<(), InvalidBlock> {
        self.validate_header(block, now_ms)?;
        self.validate_evidence(block)?;
        match app.process_proposal(block) {
            ProposalVerdict::Accept => Ok(()),
            ProposalVerdict::Reject { reason } => Err(InvalidBlock::App { reason }),
        }
    }

    /// The same judgement as a [`Validity`] for the engine.
    pub fn validity<A: Application>(&self, block: &Block, app: &A, now_ms: u64) -> Validity {
        match self.validate(block, app, now_ms) {
            Ok(()) => Validity::Valid,
            Err(e) => {
                tracing::warn!(height = block.height().0, error = %e, "invalid proposed block");
                Validity::Invalid
            }
        }
    }

    fn validate_header(&self, block: &Block, now_ms: u64) -> Result<(), InvalidBlock> {
        let h = block.header();
        let height = self.next_height();
        let set = self.validators_at(height.0);
        let next = self.validators_at(height.0 + 1);
        let bad = |field| Err(InvalidBlock::Header { field });
        if h.height != height {
            return bad("height");
        }
        if h.chain_id != self.chain_id {
            return bad("chain_id");
        }
        if h.validators_hash != set.hash() {
            return bad("validators_hash");
        }
        if h.next_validators_hash != next.hash() {
            return bad("next_validators_hash");
        }
        if h.app_hash != self.app_hash {
            return bad("app_hash");
        }
        if h.last_results_hash != self.last_results_hash {
            return bad("last_results_hash");
        }
        if set.index_of(&h.proposer_address).is_none() {
            return bad("proposer_address");
        }
        if h.time_ms > now_ms.saturating_add(MAX_CLOCK_DRIFT_MS) {
            return bad("time (too far in the future)");
        }
        match (&self.last, block.last_commit()) {
            (None, None) => {
                if h.time_ms < self.genesis_time_ms {
                    return bad("time (before genesis)");
                }
                Ok(())
            }
            (Some((prev, _)), Some(commit)) => {
                if h.time_ms <= prev.header().time_ms {
                    return bad("time (not after the previous block)");
                }
                let prev_set = self.validators_at(prev.height().0);
                commit
                    .verify_for(&self.chain_id, &prev_set, prev.height(), &prev.id())
                    .map_err(|e| InvalidBlock::LastCommit {
                        height: prev.height().0,
                        reason: e.to_string(),
                    })
            }
            (None, Some(_)) => bad("last_commit (present on the first block)"),
            (Some(_), None) => bad("last_commit (missing)"),
        }
    }

    fn validate_evidence(&self, block: &Block) -> Result<(), InvalidBlock> {
        let height = block.height().0;
        for (index, e) in block.evidence().iter().enumerate() {
            if block.evidence()[..index].contains(e) {
                return Err(InvalidBlock::DuplicateEvidence { index });
            }
            self.check_evidence(e, height)
                .map_err(|source| InvalidBlock::Evidence { index, source })?;
        }
        Ok(())
    }

    /// Checks that a committed `block` (decided here, or proven by a commit from a peer or block sync)
    /// continues the chain this node executed: it extends our last block and its header carries the app
    /// hash and results hash our execution produced. A commit proves what the validators agreed on; if
    /// our own results differ, our state is not theirs.
    pub fn check_continues(&self, block: &Block) -> Result<(), Diverged> {
        let h = block.header();
        let diverged = |field: &'static str, theirs: String, ours: String| Diverged {
            height: h.height.0,
            field,
            theirs,
            ours,
        };
        let show_id =
            |id: Option<BlockId>| id.map_or("none".to_string(), |id| id.hash.to_hex_upper());
        let our_last = self.last.as_ref().map(|(b, _)| b.id());
        if h.last_block_id != our_last {
            return Err(diverged(
                "last_block_id",
                show_id(h.last_block_id),
                show_id(our_last),
            ));
        }
        if h.app_hash != self.app_hash {
            return Err(diverged(
                "app_hash",
                h.app_hash.to_hex_upper(),
                self.app_hash.to_hex_upper(),
            ));
        }
        if h.last_results_hash != self.last_results_hash {
            return Err(diverged(
                "last_results_hash",
                h.last_results_hash.to_hex_upper(),
                self.last_results_hash.to_hex_upper(),
            ));
        }
        Ok(())
    }

    /// Whether `evidence` may be committed in a block at `height`: it is of an earlier height that is not
    /// after the one consensus works on, not too old, and verifies against that height's validator set.
    /// The height tests come first and are cheap: only then is a validator set looked up (one that is
    /// held in memory or derived from a checkpoint) and are signatures checked.
    pub fn check_evidence(
        &self,
        e: &DuplicateVoteEvidence,
        height: u64,
    ) -> Result<(), EvidenceRefused> {
        let of = e.height().0;
        evidence_window(of, self.next_height().0, height, self.initial_height)?;
        if let Some(store) = &self.committed_evidence {
            // Blocks of heights of+1 .. are the ones that could have committed it: all must be stored.
            if let Some(base) = store.base_height()? {
                if base > of.saturating_add(1) && base > self.initial_height {
                    return Err(EvidenceRefused::BeforeBase { of, base });
                }
            }
            if let Some(at) = store.evidence_height(&e.offence_key().0)? {
                return Err(EvidenceRefused::AlreadyCommitted { of, at });
            }
        }
        let set = self.validators_at(of);
        Ok(e.verify(&self.chain_id, &set)?)
    }
}

/// Whether evidence of height `of` may be committed at `height` while consensus works on `working`, by
/// heights alone (checked before anything is looked up, so a peer naming any height costs nothing):
/// not of a height after the one we work on (its validator set is not known here), below the
/// committing height and not before the chain's `initial_height`, and at most [`MAX_EVIDENCE_AGE`] old.
pub fn evidence_window(
    of: u64,
    working: u64,
    height: u64,
    initial_height: u64,
) -> Result<(), EvidenceRefused> {
    if of > working {
        return Err(EvidenceRefused::Future { of, working });
    }
    if of >= height || of < initial_height {
        return Err(EvidenceRefused::NotBelow { of, height });
    }
    if height - of > MAX_EVIDENCE_AGE {
        return Err(EvidenceRefused::TooOld { of, height });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use basalt_consensus::types::{PrivateKey, SignedVote, Vote};
    use basalt_consensus::{Round, ValidatorIndex, VoteType};

    fn keys() -> Vec<PrivateKey> {
        (1..=4u8).map(|i| PrivateKey::from_seed(&[i; 32])).collect()
    }

    fn chain_at(height: u64) -> (ChainState, Arc<SetHistory>) {
        let set = ValidatorSet::new(keys().iter().map(|k| (k.public_key(), 10)).collect()).unwrap();
        let history = Arc::new(SetHistory::new(1, set));
        let chain = ChainState::new(
            ChainId::new("evidence-test").unwrap(),
            1,
            0,
            history.clone(),
            height,
            None,
            Hash::ZERO,
            Hash::ZERO,
        );
        (chain, history)
    }

    /// Two conflicting prevotes of `height` by the validator at index 0 of the set (membership and order
    /// are fixed; only proposer priorities rotate between heights).
    fn evidence_at(chain: &ChainState, height: u64) -> DuplicateVoteEvidence {
        let set = chain.validators_at(chain.height());
        let signer = set.get(ValidatorIndex(0)).unwrap().public_key;
        let key = keys()
            .into_iter()
            .find(|k| k.public_key() == signer)
            .unwrap();
        let vote = |byte: u8| {
            let vote = Vote {
                vote_type: VoteType::Prevote,
                height: Height(height),
                round: Round(0),
                block_id: Some(BlockId {
                    hash: Hash([byte; 32]),
                }),
                validator_index: ValidatorIndex(0),
            };
            let signature = key.sign(&vote.sign_bytes(chain.chain_id()));
            SignedVote { vote, signature }
        };
        DuplicateVoteEvidence::new(vote(1), vote(2)).unwrap()
    }

    /// Issue 14, hole 1: on 9496b9c gossiped evidence of height 2^62 was checked at that height + 1, so the
    /// height test passed and looking up its validator set walked one rotation per height (on the consensus
    /// thread, holding the lock the RPC `validators` method takes) — the node hung. Now the height is
    /// refused before any set is looked up: the history computes nothing.
    #[test]
    fn evidence_of_a_far_future_height_is_refused_before_any_lookup() {
        let (chain, history) = chain_at(10);
        let before = history.checkpoints();
        for of in [12, 1_000_000, 1 << 62, u64::MAX - 1] {
            let e = evidence_at(&chain, of);
            let committing = chain.next_height().0.max(of.saturating_add(1));
            let refused = chain.check_evidence(&e, committing).unwrap_err();
            assert!(
                matches!(refused, EvidenceRefused::Future { working: 11, .. }),
                "{of}: {refused}"
            );
        }
        assert_eq!(history.checkpoints(), before, "no set was computed");
    }

    #[test]
    fn evidence_of_the_working_height_and_earlier_is_checked() {
        let (chain, _) = chain_at(10);
        // The height consensus works on (an equivocation seen this height), committed at the next.
        chain.check_evidence(&evidence_at(&chain, 11), 12).unwrap();
        // Not below the committing height.
        let e = evidence_at(&chain, 11);
        assert!(matches!(
            chain.check_evidence(&e, 11),
            Err(EvidenceRefused::NotBelow { .. })
        ));
        let forged = {
            let (a, b) = (e.vote_a().clone(), e.vote_b().clone());
            let mut b = b;
            b.signature = a.signature;
            DuplicateVoteEvidence::new(a, b).unwrap()
        };
        assert!(matches!(
            chain.check_evidence(&forged, 12),
            Err(EvidenceRefused::Invalid(_))
        ));
    }

    /// Issue 14, item 5: on 9496b9c committed evidence was remembered in memory only, so after a restart
    /// the same offence could be committed again. The store's index answers for committed evidence, and
    /// evidence whose possible committing blocks are pruned is refused.
    #[test]
    fn committed_evidence_is_refused_across_restarts_and_pruning() {
        use basalt_state::{BlockCommit, StoreConfig};
        let dir = tempfile::tempdir().unwrap();
        let (chain, _) = chain_at(10);
        let offence = evidence_at(&chain, 2);
        {
            let store = StateStore::open(dir.path(), StoreConfig::default()).unwrap();
            for height in 1..=6u64 {
                store
                    .commit_block(BlockCommit {
                        height,
                        block: format!("block {height}").into_bytes(),
                        evidence: if height == 3 {
                            vec![offence.offence_key().0]
                        } else {
                            Vec::new()
                        },
                        ..BlockCommit::default()
                    })
                    .unwrap();
            }
        }
        // A new process: nothing in memory, the store remembers.
        let store = Arc::new(StateStore::open(dir.path(), StoreConfig::default()).unwrap());
        let (chain, _) = chain_at(10);
        let chain = chain.with_committed_evidence(store.clone());
        assert!(matches!(
            chain.check_evidence(&offence, 11),
            Err(EvidenceRefused::AlreadyCommitted { of: 2, at: 3 })
        ));
        // Another offence is still fine.
        chain.check_evidence(&evidence_at(&chain, 5), 11).unwrap();
        // Blocks 1..=3 pruned: evidence of height 2 could have been committed there.
        store.prune_blocks(4).unwrap();
        assert!(matches!(
            chain.check_evidence(&offence, 11),
            Err(EvidenceRefused::BeforeBase { of: 2, base: 4 })
        ));
        chain.check_evidence(&evidence_at(&chain, 5), 11).unwrap();
    }

    fn block_on(chain: &ChainState, app_hash: Hash) -> Block {
        let (data_hash, evidence_hash, last_commit_hash) = Block::content_hashes(&[], &[], None);
        let set = chain.validators_at(1);
        let header = Header {
            chain_id: chain.chain_id().clone(),
            height: Height(1),
            time_ms: 1,
            last_block_id: None,
            last_commit_hash,
            data_hash,
            validators_hash: set.hash(),
            next_validators_hash: chain.validators_at(2).hash(),
            app_hash,
            last_results_hash: Hash::ZERO,
            evidence_hash,
            proposer_address: set.get(ValidatorIndex(0)).unwrap().address,
        };
        Block::new(header, vec![], vec![], None).unwrap()
    }

    /// Issue 14, hole 3 (block sync): a committed block whose header disagrees with our execution is a
    /// divergence, reported with the field, instead of being built upon.
    #[test]
    fn a_committed_block_must_continue_our_chain() {
        let (chain, _) = chain_at(0);
        chain
            .check_continues(&block_on(&chain, Hash::ZERO))
            .unwrap();
        let diverged = chain
            .check_continues(&block_on(&chain, Hash([9; 32])))
            .unwrap_err();
        assert_eq!(diverged.field, "app_hash");
        assert_eq!(diverged.height, 1);
    }
}
