//! The consensus wire messages and their size-checked decoding.

use borsh::{BorshDeserialize, BorshSerialize};

use crate::types::encoding::{decode, encode, DecodeError, MAX_BLOCK_BYTES};
use crate::types::{Block, Commit, DuplicateVoteEvidence, ProposalMessage, SignedVote};

/// Largest encoded consensus message: a full block plus its proposal or commit.
pub const MAX_CONSENSUS_MESSAGE_BYTES: usize = MAX_BLOCK_BYTES + 64 * 1024;

/// Everything validators send each other about consensus.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum ConsensusMessage {
    /// A signed proposal with its block.
    Proposal(ProposalMessage),
    /// A signed prevote or precommit.
    Vote(SignedVote),
    /// A decided block with the commit that proves it: how a node that missed a decision catches up.
    Decision {
        /// The decided block.
        block: Block,
        /// +2/3 precommits for it.
        commit: Commit,
    },
    /// Where the sender is (unauthenticated, a hint only): a peer that is ahead answers a sender that is
    /// behind with the [`ConsensusMessage::Decision`] it is missing. The engine itself ignores it.
    Status {
        /// The sender's current height.
        height: crate::Height,
        /// The sender's current round.
        round: crate::Round,
    },
    /// Proof that a validator signed two conflicting votes, gossiped so every proposer can commit it. The
    /// engine ignores it: the node verifies it against the validator set of its height and pools it.
    Evidence(DuplicateVoteEvidence),
}

impl ConsensusMessage {
    /// Canonical bytes for the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes and structurally validates a message from the wire (signatures are checked by the engine,
    /// which knows the validator set).
    pub fn from_bytes(bytes: &[u8]) -> Result<ConsensusMessage, DecodeError> {
        decode("consensus message", bytes, MAX_CONSENSUS_MESSAGE_BYTES)
    }

    /// Its encoded length in bytes, counted without building the encoding (a proposal carries a whole
    /// block, so buffers of messages are bounded by this rather than by a count).
    pub fn encoded_len(&self) -> usize {
        /// Counts what is written and keeps nothing.
        struct Counter(usize);
        impl std::io::Write for Counter {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0 = self.0.saturating_add(buf.len());
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut counter = Counter(0);
        // Writing to a counter cannot fail; a failure would leave a lower count, never a panic.
        let _ = borsh::to_writer(&mut counter, self);
        counter.0
    }

    /// The height the message is about.
    pub fn height(&self) -> crate::Height {
        match self {
            ConsensusMessage::Proposal(p) => p.signed.proposal.height(),
            ConsensusMessage::Vote(v) => v.vote.height,
            ConsensusMessage::Decision { block, .. } => block.height(),
            ConsensusMessage::Status { height, .. } => *height,
            ConsensusMessage::Evidence(evidence) => evidence.height(),
        }
    }

    /// The round a signed vote or proposal is about (`None` for the other kinds).
    pub fn round(&self) -> Option<crate::Round> {
        match self {
            ConsensusMessage::Proposal(p) => Some(p.signed.proposal.round()),
            ConsensusMessage::Vote(v) => Some(v.vote.round),
            ConsensusMessage::Decision { .. }
            | ConsensusMessage::Status { .. }
            | ConsensusMessage::Evidence(_) => None,
        }
    }
}
