//! Blocks: header, transactions, evidence and the previous block's commit.

use borsh::{BorshDeserialize, BorshSerialize};
use std::io;

use super::chain_id::ChainId;
use super::commit::Commit;
use super::crypto::Address;
use super::encoding::{encode, invalid_data, MAX_BLOCK_TXS, MAX_EVIDENCE_PER_BLOCK, MAX_TX_BYTES};
use super::evidence::DuplicateVoteEvidence;
use super::hash::{merkle_root, Hash};
use crate::primitives::Height;

/// Identifies a block by the hash of its header.
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
)]
pub struct BlockId {
    /// Hash of the block's header.
    pub hash: Hash,
}

/// A transaction: opaque bytes for consensus, at most [`MAX_TX_BYTES`] long.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize)]
pub struct Tx(Vec<u8>);

/// Why a transaction is rejected before the application sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// Empty transactions carry nothing and are refused.
    #[error("transaction is empty")]
    Empty,
    /// Larger than [`MAX_TX_BYTES`].
    #[error("transaction of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl Tx {
    /// The only constructor: non-empty and within the size limit.
    pub fn new(bytes: Vec<u8>) -> Result<Tx, TxError> {
        if bytes.is_empty() {
            return Err(TxError::Empty);
        }
        if bytes.len() > MAX_TX_BYTES {
            return Err(TxError::TooLarge {
                len: bytes.len(),
                max: MAX_TX_BYTES,
            });
        }
        Ok(Tx(bytes))
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Its hash, [`tx_hash`] of its bytes: what clients name it by, the key of the tx index and of
    /// mempool deduplication.
    pub fn hash(&self) -> Hash {
        tx_hash(&self.0)
    }
}

/// The hash of a transaction's bytes: SHA-256, as CometBFT computes it, so the hash CosmJS, explorers and
/// wallets compute for a transaction finds it here (RPC `hash`, `tx`, `tx.hash=` queries, events).
/// Everything else Basalt hashes (headers, Merkle trees, addresses) stays BLAKE2s.
pub fn tx_hash(bytes: &[u8]) -> Hash {
    use sha2::Digest;
    Hash(sha2::Sha256::digest(bytes).into())
}

impl AsRef<[u8]> for Tx {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tx({} bytes, {})", self.0.len(), self.hash())
    }
}

impl BorshDeserialize for Tx {
    fn deserialize_reader<R: io::Read>(reader: &mut R) -> io::Result<Self> {
        let len = u32::deserialize_reader(reader)? as usize;
        if len == 0 || len > MAX_TX_BYTES {
            return Err(invalid_data(TxError::TooLarge {
                len,
                max: MAX_TX_BYTES,
            }));
        }
        let mut bytes = vec![0u8; len];
        reader.read_exact(&mut bytes)?;
        Ok(Tx(bytes))
    }
}

/// A block header. Hash fields commit to the block's parts, so the header hash commits to the whole block.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Header {
    /// Chain the block belongs to.
    pub chain_id: ChainId,
    /// Its height.
    pub height: Height,
    /// Proposer's time, milliseconds since the Unix epoch; strictly increasing along the chain.
    pub time_ms: u64,
    /// The previous block (none at the initial height).
    pub last_block_id: Option<BlockId>,
    /// Hash of `last_commit`.
    pub last_commit_hash: Hash,
    /// Merkle root of the transactions.
    pub data_hash: Hash,
    /// Hash of the validator set that signs this block.
    pub validators_hash: Hash,
    /// Hash of the validator set for the next height.
    pub next_validators_hash: Hash,
    /// Application state root after the previous block (CometBFT's deferred-execution convention).
    pub app_hash: Hash,
    /// Merkle root of the previous block's transaction results.
    pub last_results_hash: Hash,
    /// Merkle root of the evidence.
    pub evidence_hash: Hash,
    /// Address of the proposer.
    pub proposer_address: Address,
}

impl Header {
    /// The header's hash: BLAKE2s of its canonical encoding.
    pub fn hash(&self) -> Hash {
        Hash::digest(&encode(self))
    }
}

/// Why a block is structurally invalid (before any state is consulted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// More transactions than [`MAX_BLOCK_TXS`].
    #[error("block has {count} transactions, more than the limit of {max}")]
    TooManyTxs {
        /// Count.
        count: usize,
        /// Limit.
        max: usize,
    },
    /// More evidence than [`MAX_EVIDENCE_PER_BLOCK`].
    #[error("block has {count} evidence items, more than the limit of {max}")]
    TooMuchEvidence {
        /// Count.
        count: usize,
        /// Limit.
        max: usize,
    },
    /// A header hash field does not match the block's contents.
    #[error("header field {field} is {in_header} but the block's contents hash to {computed}")]
    HashMismatch {
        /// Which field.
        field: &'static str,
        /// What the header says.
        in_header: Hash,
        /// What the contents give.
        computed: Hash,
    },
    /// The last commit is missing, present at the first height, or for the wrong height/block.
    #[error("last commit inconsistent with header at height {height}: {reason}")]
    LastCommit {
        /// Block height.
        height: Height,
        /// What is wrong.
        reason: &'static str,
    },
}

/// A block. Its structural invariants (bounded contents, header hashes matching contents, last commit
/// consistent with `last_block_id`) hold for every value: they are checked by [`Block::new`] and on decode.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize)]
pub struct Block {
    header: Header,
    txs: Vec<Tx>,
    evidence: Vec<DuplicateVoteEvidence>,
    last_commit: Option<Commit>,
}

impl Block {
    /// Assembles a block, checking structure. Callers fill the header's content hashes with
    /// [`Block::content_hashes`].
    pub fn new(
        header: Header,
        txs: Vec<Tx>,
        evidence: Vec<DuplicateVoteEvidence>,
        last_commit: Option<Commit>,
    ) -> Result<Block, BlockError> {
        let block = Block {
            header,
            txs,
            evidence,
            last_commit,
        };
        block.check()?;
        Ok(block)
    }

    /// (data_hash, evidence_hash, last_commit_hash) for the given contents.
    pub fn content_hashes(
        txs: &[Tx],
        evidence: &[DuplicateVoteEvidence],
        last_commit: Option<&Commit>,
    ) -> (Hash, Hash, Hash) {
        let evidence_leaves: Vec<Vec<u8>> = evidence.iter().map(encode).collect();
        let commit_hash = last_commit.map(Commit::hash).unwrap_or(Hash::ZERO);
        (merkle_root(txs), merkle_root(&evidence_leaves), commit_hash)
    }

    fn check(&self) -> Result<(), BlockError> {
        if self.txs.len() > MAX_BLOCK_TXS {
            return Err(BlockError::TooManyTxs {
                count: self.txs.len(),
                max: MAX_BLOCK_TXS,
            });
        }
        if self.evidence.len() > MAX_EVIDENCE_PER_BLOCK {
            return Err(BlockError::TooMuchEvidence {
                count: self.evidence.len(),
                max: MAX_EVIDENCE_PER_BLOCK,
            });
        }
        let (data, evidence, commit) =
            Self::content_hashes(&self.txs, &self.evidence, self.last_commit.as_ref());
        let h = &self.header;
        for (field, in_header, computed) in [
            ("data_hash", h.data_hash, data),
            ("evidence_hash", h.evidence_hash, evidence),
            ("last_commit_hash", h.last_commit_hash, commit),
        ] {
            if in_header != computed {
                return Err(BlockError::HashMismatch {
                    field,
                    in_header,
                    computed,
                });
            }
        }
        let bad = |reason| BlockError::LastCommit {
            height: h.height,
            reason,
        };
        match (&h.last_block_id, &self.last_commit) {
            (None, None) => Ok(()),
            (Some(id), Some(commit)) => {
                if commit.block_id != *id {
                    return Err(bad("commit is for a different block than last_block_id"));
                }
                if commit.height.next() != Some(h.height) {
                    return Err(bad("commit is not for the previous height"));
                }
                Ok(())
            }
            (None, Some(_)) => Err(bad("commit present without last_block_id")),
            (Some(_), None) => Err(bad("last_block_id present without commit")),
        }
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The transactions.
    pub fn txs(&self) -> &[Tx] {
        &self.txs
    }

    /// The evidence of misbehaviour included.
    pub fn evidence(&self) -> &[DuplicateVoteEvidence] {
        &self.evidence
    }

    /// The commit for the previous block (none at the initial height).
    pub fn last_commit(&self) -> Option<&Commit> {
        self.last_commit.as_ref()
    }

    /// Height.
    pub fn height(&self) -> Height {
        self.header.height
    }

    /// The block id (header hash).
    pub fn id(&self) -> BlockId {
        BlockId {
            hash: self.header.hash(),
        }
    }
}

impl BorshDeserialize for Block {
    fn deserialize_reader<R: io::Read>(reader: &mut R) -> io::Result<Self> {
        let header = Header::deserialize_reader(reader)?;
        let txs = Vec::<Tx>::deserialize_reader(reader)?;
        let evidence = Vec::<DuplicateVoteEvidence>::deserialize_reader(reader)?;
        let last_commit = Option::<Commit>::deserialize_reader(reader)?;
        Block::new(header, txs, evidence, last_commit).map_err(invalid_data)
    }
}
