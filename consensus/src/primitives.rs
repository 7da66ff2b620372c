//! Small primitive types shared by the chain types and the consensus core.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A block height. Heights start at the genesis `initial_height` (normally 1).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
pub struct Height(pub u64);

impl Height {
    /// The next height, or `None` on overflow (a chain cannot reach it, but the type must not wrap).
    pub fn next(self) -> Option<Height> {
        self.0.checked_add(1).map(Height)
    }
}

impl fmt::Display for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A consensus round within a height. Rounds start at 0. "No round" (CometBFT's `-1`) is `Option<Round>`.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
pub struct Round(pub u32);

impl Round {
    /// The next round, saturating at `u32::MAX` (unreachable in practice; timeouts grow per round).
    pub fn next(self) -> Round {
        Round(self.0.saturating_add(1))
    }
}

impl fmt::Display for Round {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Position of a validator in the (sorted) validator set of a height.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
pub struct ValidatorIndex(pub u32);

impl fmt::Display for ValidatorIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Voting power of one validator. Total power of a set is bounded by [`MAX_TOTAL_VOTING_POWER`].
pub type VotingPower = u64;

/// CometBFT's bound on total voting power (`MaxInt64 / 8`), which keeps priority arithmetic far from overflow.
pub const MAX_TOTAL_VOTING_POWER: VotingPower = (i64::MAX / 8) as u64;

/// The two kinds of vote.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
pub enum VoteType {
    /// First-stage vote (CometBFT `SignedMsgType` 1).
    Prevote,
    /// Second-stage vote (CometBFT `SignedMsgType` 2).
    Precommit,
}

impl fmt::Display for VoteType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VoteType::Prevote => write!(f, "prevote"),
            VoteType::Precommit => write!(f, "precommit"),
        }
    }
}

/// The timeouts of the Tendermint algorithm (Algorithm 1, lines 57-65).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
)]
#[borsh(use_discriminant = false)]
pub enum TimeoutKind {
    /// `timeoutPropose` (line 57).
    Propose,
    /// `timeoutPrevote` (line 61).
    Prevote,
    /// `timeoutPrecommit` (line 65).
    Precommit,
}

/// A timeout for a given round of the current height.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
)]
pub struct Timeout {
    /// Which timeout.
    pub kind: TimeoutKind,
    /// The round it was scheduled for.
    pub round: Round,
}
