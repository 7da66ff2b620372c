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
        1 => Hash::digest_parts(&[&[LEAF_PREFIX], items[0].as_ref()]),
        n => {
            let split = split_point(n);
            let left = merkle_root(&items[..split]);
            let right = merkle_root(&items[split..]);
            Hash::digest_parts(&[&[INNER_PREFIX], &left.0, &right.0])
        }
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
    fn hex_roundtrip_is_upper_case() {
        let h = Hash::digest(b"basalt");
        let s = h.to_hex_upper();
        assert_eq!(s, s.to_uppercase());
        assert_eq!(Hash::from_hex(&s.to_lowercase()), Ok(h));
        assert!(Hash::from_hex("abcd").is_err());
    }
}
