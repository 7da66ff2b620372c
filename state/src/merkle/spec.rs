//! The ICS-23 `ProofSpec` of Basalt's state tree, and proof verification helpers.
//!
//! The tree ([`super::tree`]) is a binary sparse Merkle tree over BLAKE2s-256 key hashes whose nodes hash
//! as (see [`super::hash`])
//!
//! - leaf: `blake2s("JMT::LeafNode" ‖ blake2s(key) ‖ blake2s(value))`
//! - inner: `blake2s("JMT::IntrnalNode" ‖ left ‖ right)`, with the 32-byte placeholder
//!   `"SPARSE_MERKLE_PLACEHOLDER_HASH__"` for empty subtrees,
//!
//! which is the layout of penumbra-zone's Jellyfish Merkle Tree (`jmt::ics23_spec()`) with every SHA-256
//! replaced by BLAKE2s-256: Basalt's first tree was jmt, and the roots are unchanged.
//!
//! # Why forgeries fail
//!
//! - The leaf prefix `JMT::LeafNode` (13 bytes) is not a prefix of the inner prefix `JMT::IntrnalNode`
//!   (16 bytes), and ics23 rejects any inner op whose prefix starts with the leaf prefix, so a leaf can
//!   never be presented as an inner node (the Dragonberry forgery) nor the other way round.
//! - Inner prefixes must be 16 to 48 bytes (the separator, plus at most one 32-byte left sibling), and
//!   suffixes a multiple of 32 bytes.
//! - `min_depth = 1`, `max_depth = 256`: a binary path over 256-bit key hashes has at most 256 steps, and
//!   at least one because the tree always holds two reserved sentinel leaves (see
//!   [`crate::merkle::SENTINEL_KEYS`]); non-zero `min_depth` is what makes ics23 enforce `max_depth`.
//! - Keys are pre-hashed before comparison, so non-existence neighbours are checked in key-hash order,
//!   which is the tree's order.

use ics23::{HashOp, HostFunctionsManager, InnerSpec, ProofSpec};

pub use super::hash::{EMPTY_CHILD, INNER_PREFIX, LEAF_PREFIX};

/// The hash function of the tree: BLAKE2s with 256-bit output.
pub type TreeHasher = blake2::Blake2s256;

/// Deepest possible binary path: one step per bit of a 256-bit key hash.
pub const MAX_DEPTH: i32 = 256;

/// The `ProofSpec` under which every proof of this crate verifies.
pub fn proof_spec() -> ProofSpec {
    ProofSpec {
        leaf_spec: Some(super::proof::leaf_op()),
        inner_spec: Some(InnerSpec {
            hash: HashOp::Blake2s256.into(),
            child_order: vec![0, 1],
            min_prefix_length: INNER_PREFIX.len() as i32,
            max_prefix_length: INNER_PREFIX.len() as i32,
            child_size: 32,
            empty_child: EMPTY_CHILD.to_vec(),
        }),
        min_depth: 1,
        max_depth: MAX_DEPTH,
        prehash_key_before_comparison: true,
    }
}

/// [`proof_spec`], built once: verification is a hot path and the spec owns heap buffers.
fn cached_spec() -> &'static ProofSpec {
    static SPEC: std::sync::OnceLock<ProofSpec> = std::sync::OnceLock::new();
    SPEC.get_or_init(proof_spec)
}

/// Checks that `proof` proves `key ↦ value` under `root` with [`proof_spec`].
pub fn verify_membership(
    proof: &ics23::CommitmentProof,
    root: &[u8; 32],
    key: &[u8],
    value: &[u8],
) -> bool {
    ics23::verify_membership::<HostFunctionsManager>(
        proof,
        cached_spec(),
        &root.to_vec(),
        key,
        value,
    )
}

/// Checks that `proof` proves `key` absent under `root` with [`proof_spec`].
pub fn verify_non_membership(proof: &ics23::CommitmentProof, root: &[u8; 32], key: &[u8]) -> bool {
    ics23::verify_non_membership::<HostFunctionsManager>(proof, cached_spec(), &root.to_vec(), key)
}
