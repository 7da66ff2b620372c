//! Basalt storage: one RocksDB instance holding the versioned Merkle state (with ICS-23 proofs), blocks,
//! commits and the consensus WAL.
//!
//! - [`storage`]: the database, its column families and the options chosen for them.
//! - [`StateStore`]: versioned authenticated state (binary sparse Merkle tree, BLAKE2s-256:
//!   [`merkle`]), per-block atomic commits ([`StateStore::commit_block`]) and incremental pruning ([`StateStore::prune`]).
//! - [`index`]: blocks by hash, transactions by hash, per-block results and the event index, written
//!   in the block's commit batch; [`StateStore::prune_blocks`] retires old blocks with their indexes.
//! - [`snapshot`]: one version's state as a manifest and hashed chunks, and the restore of an empty
//!   store from them (state sync).
//! - [`proof_spec`], [`verify_membership`], [`verify_non_membership`]: the published ICS-23 spec and
//!   verification helpers.
#![forbid(unsafe_code)]

pub mod app;
pub mod bank;
mod error;
pub mod index;
pub mod merkle;
mod meta;
mod prune;
mod retain;
pub mod snapshot;
pub mod storage;
mod store;

pub use error::{Result, StateError};
pub use index::{CommittedTx, IndexedTx};
pub use merkle::spec::{proof_spec, verify_membership, verify_non_membership, TreeHasher};
pub use retain::BlocksPruned;
pub use store::{
    BlockCommit, PreparedState, PruneReport, RootHash, StateStore, StoreConfig, Write,
    DEFAULT_LEAF_CACHE_ENTRIES, DEFAULT_NODE_CACHE_ENTRIES,
};

pub use ics23;
pub use rocksdb;
