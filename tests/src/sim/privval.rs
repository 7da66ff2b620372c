//! The validator's signer with double-sign protection: the in-memory model of
//! `data/priv_validator_state.json`, with the same contract as the on-disk version.
//!
//! The last signed (height, round, step) and its sign bytes are persisted *before* a signature is released.
//! A request for an earlier (height, round, step) is refused; for the same one it returns the same
//! signature if the sign bytes are identical and refuses otherwise. So replaying the WAL after a crash can
//! re-send what was signed, and nothing can make the validator sign a conflicting message.

use basalt_consensus::types::{ChainId, PrivateKey, Proposal, Signature, Vote};
use basalt_consensus::{Height, Round, VoteType};

/// Step of a signed message, ordered as CometBFT's `stepPropose < stepPrevote < stepPrecommit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SignStep {
    /// A proposal.
    Propose = 1,
    /// A prevote.
    Prevote = 2,
    /// A precommit.
    Precommit = 3,
}

/// What survives a crash: the last signature made.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct LastSigned {
    /// (height, round, step) of the last signature, if any.
    pub hrs: Option<(Height, Round, SignStep)>,
    /// Its sign bytes.
    pub sign_bytes: Vec<u8>,
    /// The signature.
    pub signature: Option<Signature>,
}

/// Why the signer refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The request is for an earlier height/round/step than already signed.
    #[error("refusing to sign {requested:?}: already signed {last:?}")]
    Regression {
        /// Requested.
        requested: (Height, Round, SignStep),
        /// Last signed.
        last: (Height, Round, SignStep),
    },
    /// Same height/round/step but different content: a double sign.
    #[error("refusing to double-sign at {hrs:?}")]
    Conflict {
        /// The height/round/step.
        hrs: (Height, Round, SignStep),
    },
}

/// Signs with double-sign protection against `state`, which the caller persists (it is returned updated
/// *before* the signature may be used).
pub fn sign(
    key: &PrivateKey,
    state: &mut LastSigned,
    hrs: (Height, Round, SignStep),
    sign_bytes: Vec<u8>,
) -> Result<Signature, SignError> {
    if let Some(last) = state.hrs {
        if hrs < last {
            return Err(SignError::Regression {
                requested: hrs,
                last,
            });
        }
        if hrs == last {
            return match state.signature {
                Some(signature) if state.sign_bytes == sign_bytes => Ok(signature),
                _ => Err(SignError::Conflict { hrs }),
            };
        }
    }
    let signature = key.sign(&sign_bytes);
    *state = LastSigned {
        hrs: Some(hrs),
        sign_bytes,
        signature: Some(signature),
    };
    Ok(signature)
}

/// Sign bytes and step of a vote.
pub fn vote_request(chain_id: &ChainId, vote: &Vote) -> ((Height, Round, SignStep), Vec<u8>) {
    let step = match vote.vote_type {
        VoteType::Prevote => SignStep::Prevote,
        VoteType::Precommit => SignStep::Precommit,
    };
    ((vote.height, vote.round, step), vote.sign_bytes(chain_id))
}

/// Sign bytes and step of a proposal.
pub fn proposal_request(
    chain_id: &ChainId,
    proposal: &Proposal,
) -> ((Height, Round, SignStep), Vec<u8>) {
    (
        (proposal.height(), proposal.round(), SignStep::Propose),
        proposal.sign_bytes(chain_id),
    )
}
