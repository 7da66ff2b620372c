//! Commits: +2/3 precommits for a block, aligned with the validator set, and their (batch) verification.

use borsh::{BorshDeserialize, BorshSerialize};

use super::block::BlockId;
use super::chain_id::ChainId;
use super::crypto::{verify_batch, CryptoError, PublicKey, Signature};
use super::encoding::encode;
use super::hash::Hash;
use super::validator::ValidatorSet;
use super::vote::{sign_bytes, VerifiedVote};
use crate::primitives::{Height, Round, ValidatorIndex, VoteType, VotingPower};

/// One validator's slot in a commit.
#[derive(Clone, Debug, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize)]
pub enum CommitSig {
    /// No precommit from this validator was included.
    Absent,
    /// A precommit for the committed block.
    ForBlock(Signature),
    /// A precommit for nil (included for accountability; it does not count towards the quorum).
    Nil(Signature),
}

/// The precommits that committed a block: one [`CommitSig`] per validator, in validator-set order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize)]
pub struct Commit {
    /// Height of the committed block.
    pub height: Height,
    /// Round in which it was committed.
    pub round: Round,
    /// The committed block.
    pub block_id: BlockId,
    /// One entry per validator of the height's set.
    pub signatures: Vec<CommitSig>,
}

/// Why a commit does not prove its block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitError {
    /// Signature slots must match the validator set one to one.
    #[error(
        "commit for height {height} has {got} signature slots, the validator set has {expected}"
    )]
    WrongSize {
        /// Height.
        height: Height,
        /// Slots in the commit.
        got: usize,
        /// Validators in the set.
        expected: usize,
    },
    /// A signature does not verify.
    #[error("commit for height {height}: signature of validator {index} is invalid")]
    BadSignature {
        /// Height.
        height: Height,
        /// The signer's index.
        index: ValidatorIndex,
    },
    /// Not more than 2/3 of the power signed for the block.
    #[error("commit for height {height} has {signed} of {total} voting power for the block; more than 2/3 is needed")]
    InsufficientPower {
        /// Height.
        height: Height,
        /// Power that signed for the block.
        signed: VotingPower,
        /// Total power.
        total: VotingPower,
    },
    /// The commit is for another block or height than expected.
    #[error("commit is for height {got_height} block {got_block}, expected height {expected_height} block {expected_block}")]
    WrongBlock {
        /// Commit height.
        got_height: Height,
        /// Commit block hash.
        got_block: Hash,
        /// Expected height.
        expected_height: Height,
        /// Expected block hash.
        expected_block: Hash,
    },
}

impl Commit {
    /// Builds a commit from verified precommits of one round (others are ignored). `set_len` is the number
    /// of validators; slots without a precommit are [`CommitSig::Absent`].
    pub fn from_precommits<'a>(
        height: Height,
        round: Round,
        block_id: BlockId,
        set_len: usize,
        precommits: impl IntoIterator<Item = &'a VerifiedVote>,
    ) -> Commit {
        let mut signatures = vec![CommitSig::Absent; set_len];
        for verified in precommits {
            let vote = verified.vote();
            let slot = signatures.get_mut(vote.validator_index.0 as usize);
            let (Some(slot), true) = (
                slot,
                vote.vote_type == VoteType::Precommit
                    && vote.height == height
                    && vote.round == round,
            ) else {
                continue;
            };
            let signature = verified.signed().signature;
            *slot = match vote.block_id {
                Some(id) if id == block_id => CommitSig::ForBlock(signature),
                Some(_) => continue, // a precommit for another block has no place in this commit
                None => CommitSig::Nil(signature),
            };
        }
        Commit {
            height,
            round,
            block_id,
            signatures,
        }
    }

    /// Hash of the commit's canonical encoding (the header's `last_commit_hash`).
    pub fn hash(&self) -> Hash {
        Hash::digest(&encode(self))
    }

    /// Checks the commit is for `expected_height`/`expected_block`, then verifies it against `validators`.
    pub fn verify_for(
        &self,
        chain_id: &ChainId,
        validators: &ValidatorSet,
        expected_height: Height,
        expected_block: &BlockId,
    ) -> Result<(), CommitError> {
        if self.height != expected_height || self.block_id != *expected_block {
            return Err(CommitError::WrongBlock {
                got_height: self.height,
                got_block: self.block_id.hash,
                expected_height,
                expected_block: expected_block.hash,
            });
        }
        self.verify(chain_id, validators)
    }

    /// Verifies every included signature (batched) and that more than 2/3 of the power signed the block.
    pub fn verify(&self, chain_id: &ChainId, validators: &ValidatorSet) -> Result<(), CommitError> {
        if self.signatures.len() != validators.len() {
            return Err(CommitError::WrongSize {
                height: self.height,
                got: self.signatures.len(),
                expected: validators.len(),
            });
        }
        let for_block = sign_bytes(
            chain_id,
            VoteType::Precommit,
            self.height,
            self.round,
            Some(&self.block_id),
        );
        let for_nil = sign_bytes(chain_id, VoteType::Precommit, self.height, self.round, None);
        let mut messages: Vec<&[u8]> = Vec::with_capacity(self.signatures.len());
        let mut signatures: Vec<Signature> = Vec::with_capacity(self.signatures.len());
        let mut keys: Vec<PublicKey> = Vec::with_capacity(self.signatures.len());
        let mut indices: Vec<usize> = Vec::with_capacity(self.signatures.len());
        let mut signed: u128 = 0;
        for (i, (sig, validator)) in self
            .signatures
            .iter()
            .zip(validators.validators())
            .enumerate()
        {
            let (message, signature) = match sig {
                CommitSig::Absent => continue,
                CommitSig::ForBlock(s) => {
                    signed += validator.voting_power as u128;
                    (for_block.as_slice(), s)
                }
                CommitSig::Nil(s) => (for_nil.as_slice(), s),
            };
            messages.push(message);
            signatures.push(*signature);
            keys.push(validator.public_key);
            indices.push(i);
        }
        let total = validators.total_power();
        // Check power first: it is cheap, and a commit without a quorum needs no signature work.
        if signed * 3 <= total as u128 * 2 {
            return Err(CommitError::InsufficientPower {
                height: self.height,
                signed: signed as VotingPower,
                total,
            });
        }
        verify_batch(&messages, &signatures, &keys).map_err(|e| {
            let batch_index = match e {
                CryptoError::BatchFailed { index } => index,
                _ => 0,
            };
            CommitError::BadSignature {
                height: self.height,
                index: ValidatorIndex(indices.get(batch_index).copied().unwrap_or(0) as u32),
            }
        })
    }
}
