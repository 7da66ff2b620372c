//! The canonical binary encoding and the size limits of every wire message.
//!
//! **Choice: Borsh** (`borsh` 1.x). It is specified byte for byte (little-endian fixed-width integers,
//! `u32` length prefixes, one tag byte for `Option`/enums, no floats, no maps) and its decoder is strict:
//! an invalid tag, a short input or trailing bytes are errors. So each value has exactly one encoding,
//! which is what hashing and signing need. Vectors are pre-allocated cautiously by borsh (never from an
//! untrusted length), and every decode here first checks the input against a per-message byte limit.
//!
//! Decoding is the only way bytes become values, and types with invariants (keys, signatures, votes,
//! blocks) check them in their `BorshDeserialize` impls, so a decoded value is a *validated* value.

use borsh::{BorshDeserialize, BorshSerialize};

/// Longest chain id (CometBFT's limit).
pub const MAX_CHAIN_ID_LEN: usize = 50;
/// Largest single transaction.
pub const MAX_TX_BYTES: usize = 1024 * 1024;
/// Most transactions in one block.
pub const MAX_BLOCK_TXS: usize = 100_000;
/// Largest encoded block.
pub const MAX_BLOCK_BYTES: usize = 16 * 1024 * 1024;
/// Most validators in a set (bounds commits, vote tallies and proposer-priority work).
pub const MAX_VALIDATORS: usize = 10_000;
/// Most evidence items in one block.
pub const MAX_EVIDENCE_PER_BLOCK: usize = 100;
/// Largest encoded vote or proposal header (anything larger is garbage).
pub const MAX_VOTE_BYTES: usize = 1024;

/// Why bytes could not become a value.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The input is longer than the limit for this kind of message.
    #[error("{kind}: {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// What was being decoded.
        kind: &'static str,
        /// Input length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes are not a canonical encoding, or the value breaks an invariant.
    #[error("{kind}: {source}")]
    Invalid {
        /// What was being decoded.
        kind: &'static str,
        /// The underlying reason.
        #[source]
        source: std::io::Error,
    },
}

/// Encodes a value canonically.
pub fn encode<T: BorshSerialize>(value: &T) -> Vec<u8> {
    // Writing into a Vec cannot fail; borsh only fails on I/O or on types we never use (HashMap keys).
    borsh::to_vec(value).unwrap_or_default()
}

/// Decodes a value of kind `kind` from `bytes` of at most `max_len` bytes, requiring all bytes be used.
pub fn decode<T: BorshDeserialize>(
    kind: &'static str,
    bytes: &[u8],
    max_len: usize,
) -> Result<T, DecodeError> {
    if bytes.len() > max_len {
        return Err(DecodeError::TooLarge {
            kind,
            len: bytes.len(),
            max: max_len,
        });
    }
    borsh::from_slice(bytes).map_err(|source| DecodeError::Invalid { kind, source })
}

/// Turns an invariant violation found while decoding into the error borsh expects.
pub(crate) fn invalid_data(error: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, error.to_string())
}
