//! Votes: the unsigned vote, its sign bytes, the signed wire form and the verified form.

use borsh::{BorshDeserialize, BorshSerialize};

use super::block::BlockId;
use super::chain_id::ChainId;
use super::crypto::{Address, CryptoError, Signature};
use super::encoding::encode;
use super::validator::ValidatorSet;
use crate::primitives::{Height, Round, ValidatorIndex, VoteType, VotingPower};

/// Domain tag of vote sign bytes; distinct from every other message kind's tag.
const VOTE_DOMAIN: &[u8] = b"basalt/v1/vote";

/// A vote for a block (or for nil) at a height and round.
#[derive(Clone, Debug, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize)]
pub struct Vote {
    /// Prevote or precommit.
    pub vote_type: VoteType,
    /// Height voted at.
    pub height: Height,
    /// Round voted at.
    pub round: Round,
    /// The block voted for; `None` is a vote for nil.
    pub block_id: Option<BlockId>,
    /// The voter's position in the validator set of `height`.
    pub validator_index: ValidatorIndex,
}

impl Vote {
    /// The bytes a validator signs: domain tag, chain id, vote type, height, round, block id. The validator
    /// index is not signed (the key identifies the signer), as in CometBFT's canonical vote, so a commit can
    /// rebuild every signer's sign bytes from the commit alone.
    pub fn sign_bytes(&self, chain_id: &ChainId) -> Vec<u8> {
        sign_bytes(
            chain_id,
            self.vote_type,
            self.height,
            self.round,
            self.block_id.as_ref(),
        )
    }
}

/// Sign bytes of a vote from its parts (shared by votes and commit signatures).
pub(crate) fn sign_bytes(
    chain_id: &ChainId,
    vote_type: VoteType,
    height: Height,
    round: Round,
    block_id: Option<&BlockId>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(&encode(&VOTE_DOMAIN));
    out.extend_from_slice(&encode(chain_id));
    out.extend_from_slice(&encode(&(vote_type, height, round, block_id)));
    out
}

/// A vote with its signature, as it travels on the wire. Decoding checks the signature's form, not whether
/// it verifies: that needs the validator set, see [`ValidatorSet::verify_vote`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize)]
pub struct SignedVote {
    /// The vote.
    pub vote: Vote,
    /// The validator's signature over [`Vote::sign_bytes`].
    pub signature: Signature,
}

/// Why a vote was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoteError {
    /// The index is not in the validator set.
    #[error("vote from unknown validator index {index} (set has {set_len} validators)")]
    UnknownValidator {
        /// The index claimed.
        index: ValidatorIndex,
        /// Size of the set.
        set_len: usize,
    },
    /// The signature does not verify.
    #[error("bad signature on {vote_type} at height {height} round {round} from validator {index}: {source}")]
    BadSignature {
        /// Vote type.
        vote_type: VoteType,
        /// Height.
        height: Height,
        /// Round.
        round: Round,
        /// Signer index.
        index: ValidatorIndex,
        /// The crypto error.
        #[source]
        source: CryptoError,
    },
}

/// A vote whose signature was checked against the validator set of its height. Only
/// [`ValidatorSet::verify_vote`] makes one, so holding one is proof of the check.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VerifiedVote {
    signed: SignedVote,
    address: Address,
    voting_power: VotingPower,
}

impl VerifiedVote {
    /// The signed vote back, by value.
    pub fn into_signed(self) -> SignedVote {
        self.signed
    }

    /// The vote.
    pub fn vote(&self) -> &Vote {
        &self.signed.vote
    }

    /// The signed wire form (for gossip, commits and evidence).
    pub fn signed(&self) -> &SignedVote {
        &self.signed
    }

    /// The signer's address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// The signer's voting power.
    pub fn voting_power(&self) -> VotingPower {
        self.voting_power
    }
}

impl ValidatorSet {
    /// Checks a vote's signer and signature; the result is the only way to get a [`VerifiedVote`].
    pub fn verify_vote(
        &self,
        chain_id: &ChainId,
        signed: SignedVote,
    ) -> Result<VerifiedVote, VoteError> {
        let vote = &signed.vote;
        let validator = self
            .get(vote.validator_index)
            .ok_or(VoteError::UnknownValidator {
                index: vote.validator_index,
                set_len: self.len(),
            })?;
        validator
            .public_key
            .verify(&vote.sign_bytes(chain_id), &signed.signature)
            .map_err(|source| VoteError::BadSignature {
                vote_type: vote.vote_type,
                height: vote.height,
                round: vote.round,
                index: vote.validator_index,
                source,
            })?;
        Ok(VerifiedVote {
            address: validator.address,
            voting_power: validator.voting_power,
            signed,
        })
    }
}
