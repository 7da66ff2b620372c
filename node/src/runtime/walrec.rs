//! What the consensus WAL records: every input the engine processed, in order.
//!
//! Replaying these records through a fresh engine at the same height reproduces its state exactly (the
//! engine is deterministic), so the signer is asked for the same votes again and hands back the same
//! signatures; nothing new or conflicting is signed. Proposed blocks are recorded because the mempool a
//! restarted node sees differs from the one the block was built from.

use basalt_consensus::engine::{ConsensusMessage, EngineInput};
use basalt_consensus::types::{decode, encode, Block, DecodeError};
use basalt_consensus::{Height, Round, Timeout};
use borsh::{BorshDeserialize, BorshSerialize};

use crate::durability::wal::MAX_WAL_RECORD_BYTES;

/// One WAL record: an engine input in wire form.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum WalRecord {
    /// A consensus message (a peer's, or one of our own signed ones fed back).
    Message(ConsensusMessage),
    /// A timeout that fired.
    Timeout {
        /// The height it was scheduled for.
        height: Height,
        /// Which timeout (kind and round).
        timeout: Timeout,
    },
    /// The block we built to propose in `round`.
    ProposeBlock {
        /// The round asked for.
        round: Round,
        /// The block.
        block: Block,
    },
}

impl WalRecord {
    /// The record of an engine input.
    pub fn from_input(input: &EngineInput) -> WalRecord {
        match input {
            EngineInput::Message(m) => WalRecord::Message(m.clone()),
            EngineInput::TimeoutElapsed { height, timeout } => WalRecord::Timeout {
                height: *height,
                timeout: *timeout,
            },
            EngineInput::ProposeBlock { round, block } => WalRecord::ProposeBlock {
                round: *round,
                block: block.clone(),
            },
        }
    }

    /// The engine input this record replays.
    pub fn into_input(self) -> EngineInput {
        match self {
            WalRecord::Message(m) => EngineInput::Message(m),
            WalRecord::Timeout { height, timeout } => {
                EngineInput::TimeoutElapsed { height, timeout }
            }
            WalRecord::ProposeBlock { round, block } => EngineInput::ProposeBlock { round, block },
        }
    }

    /// The height the record belongs to.
    pub fn height(&self) -> Height {
        match self {
            WalRecord::Message(m) => m.height(),
            WalRecord::Timeout { height, .. } => *height,
            WalRecord::ProposeBlock { block, .. } => block.height(),
        }
    }

    /// Canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes a record read back from the WAL (size-checked like any untrusted input: a disk can lie).
    pub fn from_bytes(bytes: &[u8]) -> Result<WalRecord, DecodeError> {
        decode("WAL record", bytes, MAX_WAL_RECORD_BYTES)
    }
}
