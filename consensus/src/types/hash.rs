//! BLAKE2s-256 hashes and the binary Merkle root used for lists (transactions, validators, evidence).

use blake2::{Blake2s256, Digest};
use borsh::{BorshDeserialize, BorshSerialize};
use std::fmt;

/// Length of a [`Hash`] in bytes.
pub const HASH_LEN: usize = 32;

/// A BLAKE2s-256 digest. BLAKE2s is the hash ICS-23 supports at 32 bytes, so one function serves block
/// hashes, transaction hashes and the Merkle state.
#[derive(
    Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
)]
pub struct Hash(pub [u8; HASH_LEN]);

impl Hash {
    /// The all-zero hash, used where CometBFT uses an empty hash (e.g. the genesis `last_block_id`).
    pub const ZERO: Hash = Hash([0; HASH_LEN]);

    /// Hashes one byte string.
    pub fn digest(data: &[u8]) -> Hash {
        Hash(Blake2s256::digest(data).into())
    }

    /// Hashes the concatenation of several byte strings without allocating it.
    pub fn digest_parts(parts: &[&[u8]]) -> Hash {
        let mut hasher = Blake2s256::new();
        for part in parts {
            hasher.update(part);
        }
        Hash(hasher.finalize().into())
    }

    /// The bytes of the hash.
    pub fn as_bytes(&self) -> &[u8; HASH_LEN] {
        &self.0
    }

    /// Upper-case hex, the way CometBFT prints hashes.
    pub fn to_hex_upper(&self) -> String {
        hex::encode_upper(self.0)
    }

    /// Parses hex (either case) of exactly 32 bytes.
    pub fn from_hex(s: &str) -> Result<Hash, hex::FromHexError> {
        let mut out = [0u8; HASH_LEN];
        hex::decode_to_slice(s, &mut out)?;
        Ok(Hash(out))
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex_upper())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Short form keeps traces readable; the full hash is in Display.
        write!(f, "Hash({}…)", &self.to_hex_upper()[..12])
    }
}

/// Domain prefixes of RFC 6962, so a leaf can never be reinterpreted as an inner node.
const LEAF_PREFIX: u8 = 0x00;
const INNER_PREFIX: u8 = 0x01;

/// The Merkle root of a list of byte strings, with CometBFT's tree shape (RFC 6962: split at the largest
/// power of two below the length) and BLAKE2s instead of SHA-256. The empty list hashes to `H("")`.
pub fn merkle_root<T: AsRef<[u8]>>(items: &[T]) -> Hash {
    match items.len() {
        0 => Hash::digest(&[]),
        1 => leaf_hash(items[0].as_ref()),
        n => {
            let split = split_point(n);
            let left = merkle_root(&items[..split]);
            let right = merkle_root(&items[split..]);
            Hash::digest_parts(&[&[INNER_PREFIX], &left.0, &right.0])
        }
    }
}

/// A proof that one item is at `index` among `total` items under a [`merkle_root`]: CometBFT's
/// `merkle.Proof` (RFC 6962 shape) over BLAKE2s-256, with the sibling hashes from the leaf upwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerkleProof {
    /// Number of items in the tree.
    pub total: u64,
    /// Position of the proven item.
    pub index: u64,
    /// Hash of the proven item's leaf.
    pub leaf_hash: Hash,
    /// Sibling subtree roots on the path, the leaf's sibling first.
    pub aunts: Vec<Hash>,
}

/// The proof for `items[index]` under [`merkle_root`]`(items)`; `None` when `index` is out of range.
pub fn merkle_proof<T: AsRef<[u8]>>(items: &[T], index: usize) -> Option<MerkleProof> {
    let item = items.get(index)?;
    let mut aunts = Vec::new();
    collect_aunts(items, index, &mut aunts);
    Some(MerkleProof {
        total: items.len() as u64,
        index: index as u64,
        leaf_hash: leaf_hash(item.as_ref()),
        aunts,
    })
}

/// Pushes the aunts of `items[index]`, deepest first (the recursion returns bottom-up).
fn collect_aunts<T: AsRef<[u8]>>(items: &[T], index: usize, aunts: &mut Vec<Hash>) {
    if items.len() < 2 {
        return;
    }
    let split = split_point(items.len());
    if index < split {
        collect_aunts(&items[..split], index, aunts);
        aunts.push(merkle_root(&items[split..]));
    } else {
        collect_aunts(&items[split..], index - split, aunts);
        aunts.push(merkle_root(&items[..split]));
    }
}

fn leaf_hash(item: &[u8]) -> Hash {
    Hash::digest_parts(&[&[LEAF_PREFIX], item])
}

impl MerkleProof {
    /// Whether this proves `item` at [`MerkleProof::index`] under `root`.
    pub fn verify(&self, root: &Hash, item: &[u8]) -> bool {
        if self.index >= self.total || leaf_hash(item) != self.leaf_hash {
            return false;
        }
        match root_from_aunts(self.index, self.total, self.leaf_hash, &self.aunts) {
            Some(computed) => computed == *root,
            None => false,
        }
    }
}

/// Recomputes the root from the leaf and its aunts (CometBFT's `computeHashFromAunts`); `None` when the
/// number of aunts does not fit the tree's shape.
fn root_from_aunts(index: u64, total: u64, leaf: Hash, aunts: &[Hash]) -> Option<Hash> {
    if total == 1 {
        return aunts.is_empty().then_some(leaf);
    }
    let (last, below) = aunts.split_last()?;
    let split = split_point(usize::try_from(total).ok()?) as u64;
    let inner = |left: Hash, right: Hash| Hash::digest_parts(&[&[INNER_PREFIX], &left.0, &right.0]);
    if index < split {
        let left = root_from_aunts(index, split, leaf, below)?;
        Some(inner(left, *last))
    } else {
        let right = root_from_aunts(index - split, total - split, leaf, below)?;
        Some(inner(*last, right))
    }
}

/// Largest power of two strictly less than `n` (for `n >= 2`).
fn split_point(n: usize) -> usize {
    debug_assert!(n >= 2);
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn split_point_matches_rfc6962() {
        assert_eq!(split_point(2), 1);
        assert_eq!(split_point(3), 2);
        assert_eq!(split_point(4), 2);
        assert_eq!(split_point(5), 4);
        assert_eq!(split_point(9), 8);
    }

    #[test]
    fn merkle_root_depends_on_order_and_content() {
        let a = merkle_root(&[b"a".as_slice(), b"b", b"c"]);
        let b = merkle_root(&[b"b".as_slice(), b"a", b"c"]);
        let c = merkle_root(&[b"a".as_slice(), b"b", b"d"]);
        assert_ne!(a, b);
        assert_ne!(a, c);
        // A single leaf is domain separated from the raw hash of its bytes.
        assert_ne!(merkle_root(&[b"x"]), Hash::digest(b"x"));
    }

    #[test]
    fn every_proof_verifies_and_tampered_ones_do_not() {
        for n in 1..=33usize {
            let items: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; i % 5 + 1]).collect();
            let root = merkle_root(&items);
            for (i, item) in items.iter().enumerate() {
                let proof = merkle_proof(&items, i).unwrap();
                assert!(proof.verify(&root, item), "n={n} i={i}");
                assert!(!proof.verify(&root, b"other"), "wrong item, n={n} i={i}");
                assert!(!proof.verify(&Hash::digest(b"x"), item), "wrong root");
                let mut moved = proof.clone();
                moved.index = (moved.index + 1) % n as u64;
                assert!(
                    n == 1 || !moved.verify(&root, item),
                    "wrong index, n={n} i={i}"
                );
                for a in 0..proof.aunts.len() {
                    let mut bad = proof.clone();
                    bad.aunts[a].0[0] ^= 1;
                    assert!(!bad.verify(&root, item), "flipped aunt {a}, n={n} i={i}");
                }
                let mut short = proof.clone();
                if short.aunts.pop().is_some() {
                    assert!(!short.verify(&root, item), "dropped aunt, n={n} i={i}");
                }
                let mut long = proof.clone();
                long.aunts.push(root);
                assert!(!long.verify(&root, item), "extra aunt, n={n} i={i}");
                // (A wrong `total` can give the same path shape — e.g. index 0 of 3 or of 4 — and then
                // still verifies, as in CometBFT: the total is not committed to. One that changes the
                // depth does not.)
                let mut total = proof.clone();
                total.total = 2 * n as u64 + 2;
                assert!(!total.verify(&root, item), "wrong total, n={n} i={i}");
            }
            assert!(merkle_proof(&items, n).is_none());
        }
    }

    #[test]
    fn hex_roundtrip_is_upper_case() {
        let h = Hash::digest(b"basalt");
        let s = h.to_hex_upper();
        assert_eq!(s, s.to_uppercase());
        assert_eq!(Hash::from_hex(&s.to_lowercase()), Ok(h));
        assert!(Hash::from_hex("abcd").is_err());
    }
}
