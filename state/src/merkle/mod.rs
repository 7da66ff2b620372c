//! Authenticated, versioned state: a binary sparse Merkle tree over RocksDB with BLAKE2s-256 and ICS-23
//! proofs.
//!
//! - [`hash`]: the hash functions and domain separators (jmt's layout, so roots equal jmt's).
//! - [`node`]: node keys, child slots and inner nodes, with their encodings. Only inner nodes are
//!   records; leaves live in their parent's slot, and every slot carries its child's hash.
//! - `tree`: one version's update from the previous version's nodes (only touched paths are read and
//!   re-hashed; big batches use both cores).
//! - `proof`: ICS-23 existence and non-existence proofs, one node read per step.
//! - `cache`: a bounded cache of committed nodes in front of RocksDB.
//! - [`spec`]: the published `ProofSpec` and verification helpers.
//!
//! Why not jmt (Basalt's first tree): jmt stores 16-ary nodes without their internal binary hashes, so
//! every update re-hashes 15 hashes per touched node and every proof step re-derives its sibling, and it
//! re-encodes every touched node with all 16 slots; at 1M keys that bounded updates at ~15k/s and proofs
//! at ~7k/s per core (BENCHMARKS.md). This tree keeps jmt's hashing layout and proof format, so app
//! hashes and the `ProofSpec` are unchanged, and a test checks its roots against jmt's.

pub(crate) mod cache;
pub(crate) mod codec;
pub mod hash;
pub mod node;
pub(crate) mod proof;
pub(crate) mod reader;
pub mod spec;
pub(crate) mod tree;

/// Keys with this prefix are reserved for the tree's own sentinel leaves; writes to them are rejected.
pub const RESERVED_PREFIX: &[u8] = b"\xff\xffbasalt/reserved/";

/// Two leaves written with the first version. A tree with at least two leaves gives every proof at
/// least one inner step, which lets the `ProofSpec` set `min_depth = 1` and so have ics23 enforce
/// `max_depth` (ics23 skips both depth checks when `min_depth` is 0).
pub const SENTINEL_KEYS: [&[u8]; 2] = [
    b"\xff\xffbasalt/reserved/sentinel-a",
    b"\xff\xffbasalt/reserved/sentinel-b",
];

/// Value stored under each sentinel key.
pub const SENTINEL_VALUE: &[u8] = b"basalt";
