//! The tree's hash functions: BLAKE2s-256 with the domain separators of the published `ProofSpec`.
//!
//! The layout is the one of penumbra-zone's Jellyfish Merkle Tree (which Basalt used before this tree),
//! so roots, and therefore app hashes, are the same as jmt's for the same contents:
//!
//! - key hash: `blake2s(key)`, value hash: `blake2s(value)`;
//! - leaf: `blake2s("JMT::LeafNode" ‖ key hash ‖ value hash)`;
//! - inner: `blake2s("JMT::IntrnalNode" ‖ left ‖ right)`, an empty subtree hashing as
//!   [`EMPTY_CHILD`] and a subtree holding one leaf as that leaf.

use blake2::{Blake2s256, Digest};

/// A 32-byte BLAKE2s-256 digest.
pub type Hash = [u8; 32];

/// BLAKE2s-256 of a key: its position in the tree.
pub type KeyHash = [u8; 32];

/// Domain separator hashed in front of every leaf.
pub const LEAF_PREFIX: &[u8] = b"JMT::LeafNode";
/// Domain separator hashed in front of every inner node.
pub const INNER_PREFIX: &[u8] = b"JMT::IntrnalNode";
/// Hash standing for an empty subtree.
pub const EMPTY_CHILD: Hash = *b"SPARSE_MERKLE_PLACEHOLDER_HASH__";

/// `blake2s(key)`.
pub fn key_hash(key: &[u8]) -> KeyHash {
    Blake2s256::digest(key).into()
}

/// `blake2s(value)`.
pub fn value_hash(value: &[u8]) -> Hash {
    Blake2s256::digest(value).into()
}

/// Hash of the leaf holding a value whose hash is `value_hash` under `key_hash`.
pub fn leaf_hash(key_hash: &KeyHash, value_hash: &Hash) -> Hash {
    Blake2s256::new()
        .chain_update(LEAF_PREFIX)
        .chain_update(key_hash)
        .chain_update(value_hash)
        .finalize()
        .into()
}

/// Hash of an inner node with children hashing to `left` and `right`.
pub fn inner_hash(left: &Hash, right: &Hash) -> Hash {
    Blake2s256::new()
        .chain_update(INNER_PREFIX)
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// Bit `depth` of a key hash, most significant bit of byte 0 first (the tree's order, which is also
/// the byte order ics23 compares pre-hashed keys in).
pub fn bit(key_hash: &KeyHash, depth: usize) -> bool {
    (key_hash[depth / 8] >> (7 - depth % 8)) & 1 == 1
}
