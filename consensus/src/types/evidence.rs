//! Evidence of misbehaviour: two conflicting votes by one validator at the same height, round and type.

use borsh::{BorshDeserialize, BorshSerialize};
use std::io;

use super::chain_id::ChainId;
use super::encoding::invalid_data;
use super::hash::Hash;
use super::validator::ValidatorSet;
use super::vote::{SignedVote, VoteError};
use crate::primitives::{Height, ValidatorIndex, VoteType};

/// Two signed votes by the same validator for the same (height, round, type) but different blocks.
/// Invariant: the pair is in canonical order (`vote_a`'s block id sorts before `vote_b`'s, nil first), so
/// the same equivocation always encodes, hashes and deduplicates the same way.
#[derive(Clone, Debug, PartialEq, Eq, Hash, BorshSerialize)]
pub struct DuplicateVoteEvidence {
    vote_a: SignedVote,
    vote_b: SignedVote,
}

/// Why a pair of votes is not evidence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    /// The votes differ in height, round, type or validator.
    #[error("votes are not for the same height, round, type and validator")]
    NotConflicting,
    /// The votes are for the same block: no equivocation.
    #[error("votes are for the same block")]
    SameBlock,
    /// The pair is not in canonical order.
    #[error("evidence votes are not in canonical order")]
    NotCanonical,
    /// A vote's signature does not verify.
    #[error("evidence vote is invalid: {0}")]
    BadVote(#[from] VoteError),
}

impl DuplicateVoteEvidence {
    /// Builds evidence from two conflicting votes in either order.
    pub fn new(a: SignedVote, b: SignedVote) -> Result<DuplicateVoteEvidence, EvidenceError> {
        let (va, vb) = (&a.vote, &b.vote);
        if va.height != vb.height
            || va.round != vb.round
            || va.vote_type != vb.vote_type
            || va.validator_index != vb.validator_index
        {
            return Err(EvidenceError::NotConflicting);
        }
        if va.block_id == vb.block_id {
            return Err(EvidenceError::SameBlock);
        }
        let (vote_a, vote_b) = if va.block_id < vb.block_id {
            (a, b)
        } else {
            (b, a)
        };
        Ok(DuplicateVoteEvidence { vote_a, vote_b })
    }

    /// The first vote (canonical order).
    pub fn vote_a(&self) -> &SignedVote {
        &self.vote_a
    }

    /// The second vote (canonical order).
    pub fn vote_b(&self) -> &SignedVote {
        &self.vote_b
    }

    /// Height of the equivocation.
    pub fn height(&self) -> Height {
        self.vote_a.vote.height
    }

    /// The equivocating validator.
    pub fn validator_index(&self) -> ValidatorIndex {
        self.vote_a.vote.validator_index
    }

    /// What identifies the offence, whatever pair of votes proves it: a domain-separated hash of the
    /// height, round, vote type and validator. One offence is committed at most once.
    pub fn offence_key(&self) -> Hash {
        let v = &self.vote_a.vote;
        let vote_type: u8 = match v.vote_type {
            VoteType::Prevote => 1,
            VoteType::Precommit => 2,
        };
        Hash::digest_parts(&[
            b"basalt/offence/duplicate-vote/v1",
            &v.height.0.to_be_bytes(),
            &v.round.0.to_be_bytes(),
            &[vote_type],
            &v.validator_index.0.to_be_bytes(),
        ])
    }

    /// Verifies both signatures against the validator set of the evidence's height.
    pub fn verify(
        &self,
        chain_id: &ChainId,
        validators: &ValidatorSet,
    ) -> Result<(), EvidenceError> {
        validators.verify_vote(chain_id, self.vote_a.clone())?;
        validators.verify_vote(chain_id, self.vote_b.clone())?;
        Ok(())
    }
}

impl BorshDeserialize for DuplicateVoteEvidence {
    fn deserialize_reader<R: io::Read>(reader: &mut R) -> io::Result<Self> {
        let a = SignedVote::deserialize_reader(reader)?;
        let b = SignedVote::deserialize_reader(reader)?;
        let ordered = a.vote.block_id < b.vote.block_id;
        let evidence = DuplicateVoteEvidence::new(a, b).map_err(invalid_data)?;
        if !ordered {
            return Err(invalid_data(EvidenceError::NotCanonical));
        }
        Ok(evidence)
    }
}
