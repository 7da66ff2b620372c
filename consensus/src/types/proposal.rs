//! Proposals: a proposer's signed statement "in round r I propose block B (justified by a POL of round vr)".

use borsh::{BorshDeserialize, BorshSerialize};
use std::io;

use super::block::{Block, BlockId};
use super::chain_id::ChainId;
use super::crypto::{CryptoError, Signature};
use super::encoding::{encode, invalid_data};
use super::validator::ValidatorSet;
use crate::primitives::{Height, Round, ValidatorIndex};

/// Domain tag of proposal sign bytes.
const PROPOSAL_DOMAIN: &[u8] = b"basalt/v1/proposal";

/// A proposal. Invariant (checked when decoded or built): `pol_round < round` when present.
#[derive(Clone, Debug, PartialEq, Eq, Hash, BorshSerialize)]
pub struct Proposal {
    height: Height,
    round: Round,
    pol_round: Option<Round>,
    block_id: BlockId,
}

/// Why a proposal is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposalError {
    /// The POL round must be earlier than the proposal's round (Algorithm 1 line 28: `vr < round_p`).
    #[error("proposal POL round {pol_round} is not below its round {round}")]
    PolRoundNotBelowRound {
        /// POL round.
        pol_round: Round,
        /// Round.
        round: Round,
    },
    /// Signed by someone other than the round's proposer.
    #[error("proposal for height {height} round {round} is not from the proposer (expected validator {expected})")]
    WrongProposer {
        /// Height.
        height: Height,
        /// Round.
        round: Round,
        /// Who should have proposed.
        expected: ValidatorIndex,
    },
    /// The signature does not verify.
    #[error("bad proposal signature at height {height} round {round}: {source}")]
    BadSignature {
        /// Height.
        height: Height,
        /// Round.
        round: Round,
        /// The crypto error.
        #[source]
        source: CryptoError,
    },
    /// The block attached does not match the proposal's block id.
    #[error("proposed block {actual} does not match the signed block id {expected}")]
    BlockMismatch {
        /// Signed id.
        expected: super::hash::Hash,
        /// Hash of the attached block.
        actual: super::hash::Hash,
    },
}

impl Proposal {
    /// Builds a proposal, enforcing `pol_round < round`.
    pub fn new(
        height: Height,
        round: Round,
        pol_round: Option<Round>,
        block_id: BlockId,
    ) -> Result<Proposal, ProposalError> {
        if let Some(pol_round) = pol_round {
            if pol_round >= round {
                return Err(ProposalError::PolRoundNotBelowRound { pol_round, round });
            }
        }
        Ok(Proposal {
            height,
            round,
            pol_round,
            block_id,
        })
    }

    /// Height.
    pub fn height(&self) -> Height {
        self.height
    }

    /// Round.
    pub fn round(&self) -> Round {
        self.round
    }

    /// The round of the proof-of-lock justifying a re-proposal, if any.
    pub fn pol_round(&self) -> Option<Round> {
        self.pol_round
    }

    /// The proposed block.
    pub fn block_id(&self) -> &BlockId {
        &self.block_id
    }

    /// Sign bytes: domain tag, chain id, and the proposal.
    pub fn sign_bytes(&self, chain_id: &ChainId) -> Vec<u8> {
        let mut out = encode(&PROPOSAL_DOMAIN);
        out.extend_from_slice(&encode(chain_id));
        out.extend_from_slice(&encode(self));
        out
    }
}

impl BorshDeserialize for Proposal {
    fn deserialize_reader<R: io::Read>(reader: &mut R) -> io::Result<Self> {
        let height = Height::deserialize_reader(reader)?;
        let round = Round::deserialize_reader(reader)?;
        let pol_round = Option::<Round>::deserialize_reader(reader)?;
        let block_id = BlockId::deserialize_reader(reader)?;
        Proposal::new(height, round, pol_round, block_id).map_err(invalid_data)
    }
}

/// A proposal with the proposer's signature.
#[derive(Clone, Debug, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize)]
pub struct SignedProposal {
    /// The proposal.
    pub proposal: Proposal,
    /// Signature over [`Proposal::sign_bytes`].
    pub signature: Signature,
}

/// The gossip message carrying a signed proposal and the whole proposed block.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ProposalMessage {
    /// The signed proposal.
    pub signed: SignedProposal,
    /// The block it proposes.
    pub block: Block,
}

/// A proposal whose signature was verified to be the round's proposer's, and whose block matches it.
/// Only [`ValidatorSet::verify_proposal`] makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedProposal {
    message: ProposalMessage,
    proposer: ValidatorIndex,
}

impl VerifiedProposal {
    /// The signed proposal.
    pub fn signed(&self) -> &SignedProposal {
        &self.message.signed
    }

    /// The proposal.
    pub fn proposal(&self) -> &Proposal {
        &self.message.signed.proposal
    }

    /// The proposed block.
    pub fn block(&self) -> &Block {
        &self.message.block
    }

    /// The proposer's index.
    pub fn proposer(&self) -> ValidatorIndex {
        self.proposer
    }

    /// The wire message back (for re-gossip).
    pub fn message(&self) -> &ProposalMessage {
        &self.message
    }

    /// The wire message back, by value (keeps a verified block without copying it).
    pub fn into_message(self) -> ProposalMessage {
        self.message
    }
}

impl ValidatorSet {
    /// Checks that the proposal is signed by the proposer of its round (this set must be the set of the
    /// proposal's height) and that the attached block is the one signed.
    pub fn verify_proposal(
        &self,
        chain_id: &ChainId,
        message: ProposalMessage,
    ) -> Result<VerifiedProposal, ProposalError> {
        let proposal = &message.signed.proposal;
        let expected = self.proposer_for_round(proposal.round);
        let validator = self.get(expected).ok_or(ProposalError::WrongProposer {
            height: proposal.height,
            round: proposal.round,
            expected,
        })?;
        validator
            .public_key
            .verify(&proposal.sign_bytes(chain_id), &message.signed.signature)
            .map_err(|source| ProposalError::BadSignature {
                height: proposal.height,
                round: proposal.round,
                source,
            })?;
        let actual = message.block.id();
        if actual != proposal.block_id {
            return Err(ProposalError::BlockMismatch {
                expected: proposal.block_id.hash,
                actual: actual.hash,
            });
        }
        Ok(VerifiedProposal {
            message,
            proposer: expected,
        })
    }
}
