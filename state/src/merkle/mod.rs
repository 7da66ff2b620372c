//! Authenticated, versioned state: a Jellyfish Merkle Tree (penumbra-zone's `jmt`) over RocksDB with
//! BLAKE2s-256 and ICS-23 proofs.
//!
//! Why `jmt` rather than a hand-written sparse Merkle tree: it is maintained, already does versioned
//! nodes, path compression (a lone leaf sits as high as it can), stale-node indices for pruning,
//! batched updates that only re-hash the touched paths, and existence / non-existence proofs in ICS-23
//! form. Its hasher is pluggable; the only thing it hard-codes is the hash-op label inside the ICS-23
//! proofs, which [`spec`] rewrites (see there for the published `ProofSpec`).

pub(crate) mod codec;
pub(crate) mod reader;
pub mod spec;

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
