//! The chain identifier, part of every signature's domain.

use borsh::{BorshDeserialize, BorshSerialize};
use std::fmt;
use std::io;

use super::encoding::{invalid_data, MAX_CHAIN_ID_LEN};

/// Why a chain id is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainIdError {
    /// Empty, or longer than [`MAX_CHAIN_ID_LEN`].
    #[error("chain id must be 1 to {max} bytes, got {len}")]
    BadLength {
        /// Length given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Characters outside printable ASCII without spaces.
    #[error("chain id {chain_id:?} may only contain printable ASCII without spaces")]
    BadCharacters {
        /// The rejected id.
        chain_id: String,
    },
}

/// A validated chain id: 1 to 50 printable ASCII characters, no whitespace.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChainId(String);

impl ChainId {
    /// The only constructor: checks length and characters.
    pub fn new(chain_id: impl Into<String>) -> Result<ChainId, ChainIdError> {
        let chain_id = chain_id.into();
        if chain_id.is_empty() || chain_id.len() > MAX_CHAIN_ID_LEN {
            return Err(ChainIdError::BadLength {
                len: chain_id.len(),
                max: MAX_CHAIN_ID_LEN,
            });
        }
        if !chain_id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ChainIdError::BadCharacters { chain_id });
        }
        Ok(ChainId(chain_id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainId({})", self.0)
    }
}

impl BorshSerialize for ChainId {
    fn serialize<W: io::Write>(&self, writer: &mut W) -> io::Result<()> {
        self.0.serialize(writer)
    }
}

impl BorshDeserialize for ChainId {
    fn deserialize_reader<R: io::Read>(reader: &mut R) -> io::Result<Self> {
        // Bound the read before allocating: the length prefix comes first.
        let len = u32::deserialize_reader(reader)? as usize;
        if len == 0 || len > MAX_CHAIN_ID_LEN {
            return Err(invalid_data(ChainIdError::BadLength {
                len,
                max: MAX_CHAIN_ID_LEN,
            }));
        }
        let mut buf = vec![0u8; len];
        reader.read_exact(&mut buf)?;
        let s = String::from_utf8(buf).map_err(invalid_data)?;
        ChainId::new(s).map_err(invalid_data)
    }
}
