//! The tree's stored shapes: node keys, child references and inner nodes, with their byte encodings.
//!
//! Only inner nodes are stored as records. A leaf lives inside its parent's child slot (its key hash,
//! hash and the version its value was written at), so an update never reads a leaf record, and a proof
//! step is one record read. Every child slot carries the child's hash, so proofs are reads, never
//! re-hashing.

use super::hash::{Hash, KeyHash, EMPTY_CHILD};

/// Where an inner node sits (`depth` bits of the key-hash prefix in `path`) and the version that
/// wrote it. Nodes are immutable: a changed node is written under a new key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeKey {
    /// Number of key-hash bits above the node (0 for the root), at most 255.
    pub depth: u8,
    /// The prefix, with every bit from `depth` on cleared.
    pub path: [u8; 32],
    /// Version that wrote the node.
    pub version: u64,
}

/// Longest encoded node key: depth byte, 32 path bytes, version.
pub const MAX_NODE_KEY_BYTES: usize = 1 + 32 + 8;

impl NodeKey {
    /// Encodes as `version (u64 BE) ‖ depth ‖ path[..⌈depth/8⌉]`: the length follows from the depth,
    /// so decoding is unambiguous.
    ///
    /// The version comes first because every read is a point lookup by the exact key (a child slot
    /// holds its node's version), so key order serves only the writes: a version's nodes then form
    /// one contiguous key range above every earlier one, each memtable flush is an SST file that
    /// overlaps no other, and leveled compaction moves such files down without rewriting them. With
    /// the depth first instead, every version's nodes would be scattered over the whole key space
    /// and compaction would rewrite the tree's files again and again.
    pub fn encode(&self) -> Vec<u8> {
        let path_len = usize::from(self.depth).div_ceil(8);
        let mut out = Vec::with_capacity(8 + 1 + path_len);
        out.extend_from_slice(&self.version.to_be_bytes());
        out.push(self.depth);
        out.extend_from_slice(&self.path[..path_len]);
        out
    }

    /// Decodes [`NodeKey::encode`]'s output; `None` when the bytes are not a well-formed key.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < 9 {
            return None;
        }
        let (version, rest) = bytes.split_at(8);
        let version = u64::from_be_bytes(version.try_into().ok()?);
        let (&depth, rest) = rest.split_first()?;
        let path_len = usize::from(depth).div_ceil(8);
        if rest.len() != path_len {
            return None;
        }
        let mut path = [0u8; 32];
        path.get_mut(..path_len)?.copy_from_slice(rest);
        if clear_from(path, usize::from(depth)) != path {
            return None;
        }
        Some(Self {
            depth,
            path,
            version,
        })
    }
}

/// `path` with every bit from `depth` on cleared.
pub fn clear_from(mut path: [u8; 32], depth: usize) -> [u8; 32] {
    if depth >= 256 {
        return path;
    }
    let byte = depth / 8;
    let keep = depth % 8;
    path[byte] &= if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
    for b in &mut path[byte + 1..] {
        *b = 0;
    }
    path
}

/// `path` with bit `depth` set.
pub fn with_bit(mut path: [u8; 32], depth: usize) -> [u8; 32] {
    path[depth / 8] |= 0x80 >> (depth % 8);
    path
}

/// A leaf as its parent holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leaf {
    /// `blake2s(key)`.
    pub key_hash: KeyHash,
    /// The leaf's hash (key hash and value hash under the leaf separator).
    pub hash: Hash,
    /// The version whose write set the current value (where its value record is).
    pub version: u64,
}

/// What a child slot (or a version's root) holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Child {
    /// An empty subtree.
    Empty,
    /// A subtree of exactly one leaf, which sits here.
    Leaf(Leaf),
    /// A subtree of two or more leaves: the inner node written at `version` at this position.
    Inner {
        /// Version that wrote the node.
        version: u64,
        /// The node's hash.
        hash: Hash,
    },
}

impl Child {
    /// The subtree's hash.
    pub fn hash(&self) -> Hash {
        match self {
            Child::Empty => EMPTY_CHILD,
            Child::Leaf(leaf) => leaf.hash,
            Child::Inner { hash, .. } => *hash,
        }
    }

    /// Appends the encoding: a tag byte, then for a leaf its key hash, hash and version, for an inner
    /// node its hash and version.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Child::Empty => out.push(TAG_EMPTY),
            Child::Leaf(leaf) => {
                out.push(TAG_LEAF);
                out.extend_from_slice(&leaf.key_hash);
                out.extend_from_slice(&leaf.hash);
                out.extend_from_slice(&leaf.version.to_be_bytes());
            }
            Child::Inner { version, hash } => {
                out.push(TAG_INNER);
                out.extend_from_slice(hash);
                out.extend_from_slice(&version.to_be_bytes());
            }
        }
    }

    /// Decodes one child from the front of `bytes`; returns it and the rest.
    pub fn decode_from(bytes: &[u8]) -> Result<(Self, &[u8]), &'static str> {
        let (&tag, rest) = bytes.split_first().ok_or("missing child tag")?;
        match tag {
            TAG_EMPTY => Ok((Child::Empty, rest)),
            TAG_LEAF => {
                if rest.len() < 72 {
                    return Err("truncated leaf child");
                }
                let (body, rest) = rest.split_at(72);
                let leaf = Leaf {
                    key_hash: array(&body[..32]),
                    hash: array(&body[32..64]),
                    version: u64::from_be_bytes(array(&body[64..])),
                };
                Ok((Child::Leaf(leaf), rest))
            }
            TAG_INNER => {
                if rest.len() < 40 {
                    return Err("truncated inner child");
                }
                let (body, rest) = rest.split_at(40);
                let child = Child::Inner {
                    hash: array(&body[..32]),
                    version: u64::from_be_bytes(array(&body[32..])),
                };
                Ok((child, rest))
            }
            _ => Err("unknown child tag"),
        }
    }

    /// Encodes a lone child (a version's root record).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(73);
        self.encode_into(&mut out);
        out
    }

    /// Decodes [`Child::encode`]'s output exactly.
    pub fn decode(bytes: &[u8]) -> Result<Self, &'static str> {
        match Child::decode_from(bytes)? {
            (child, []) => Ok(child),
            _ => Err("trailing bytes after child"),
        }
    }
}

const TAG_EMPTY: u8 = 0;
const TAG_LEAF: u8 = 1;
const TAG_INNER: u8 = 2;

/// An inner node: two child slots. Stored nodes always have two or more leaves below them, so never
/// two empty children nor one leaf beside an empty slot (that leaf would sit one level up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InnerNode {
    /// Subtree of keys whose bit at this depth is 0.
    pub left: Child,
    /// Subtree of keys whose bit at this depth is 1.
    pub right: Child,
}

impl InnerNode {
    /// The node's hash.
    pub fn hash(&self) -> Hash {
        super::hash::inner_hash(&self.left.hash(), &self.right.hash())
    }

    /// Encodes both children.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 * 73);
        self.left.encode_into(&mut out);
        self.right.encode_into(&mut out);
        out
    }

    /// Decodes [`InnerNode::encode`]'s output exactly, refusing shapes a stored node cannot have.
    pub fn decode(bytes: &[u8]) -> Result<Self, &'static str> {
        let (left, rest) = Child::decode_from(bytes)?;
        let (right, rest) = Child::decode_from(rest)?;
        if !rest.is_empty() {
            return Err("trailing bytes after inner node");
        }
        match (left, right) {
            (Child::Empty, Child::Empty) => Err("inner node with two empty children"),
            (Child::Empty, Child::Leaf(_)) | (Child::Leaf(_), Child::Empty) => {
                Err("inner node with a lone leaf")
            }
            _ => Ok(Self { left, right }),
        }
    }
}

fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn node_keys_round_trip_and_reject_malformed_bytes() {
        for depth in [0u8, 1, 7, 8, 9, 100, 255] {
            let path = clear_from([0xa5; 32], usize::from(depth));
            let key = NodeKey {
                depth,
                path,
                version: 0x0102_0304_0506_0708,
            };
            let bytes = key.encode();
            assert_eq!(NodeKey::decode(&bytes), Some(key));
            assert_eq!(NodeKey::decode(&bytes[..bytes.len() - 1]), None);
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(NodeKey::decode(&longer), None);
        }
        // A set bit past the depth is not a canonical key.
        let mut bytes = NodeKey {
            depth: 3,
            path: [0; 32],
            version: 1,
        }
        .encode();
        bytes[9] = 0x10;
        assert_eq!(NodeKey::decode(&bytes), None);
    }

    #[test]
    fn nodes_round_trip_and_reject_impossible_shapes() {
        let leaf = Child::Leaf(Leaf {
            key_hash: [1; 32],
            hash: [2; 32],
            version: 9,
        });
        let inner = Child::Inner {
            version: 4,
            hash: [3; 32],
        };
        for node in [
            InnerNode {
                left: leaf,
                right: inner,
            },
            InnerNode {
                left: Child::Empty,
                right: inner,
            },
            InnerNode {
                left: leaf,
                right: leaf,
            },
        ] {
            let bytes = node.encode();
            assert_eq!(InnerNode::decode(&bytes), Ok(node));
            assert!(InnerNode::decode(&bytes[..bytes.len() - 1]).is_err());
        }
        let lone = InnerNode {
            left: leaf,
            right: Child::Empty,
        };
        assert!(InnerNode::decode(&lone.encode()).is_err());
        assert!(InnerNode::decode(&[0, 0]).is_err());
        assert!(InnerNode::decode(&[7]).is_err());
        assert_eq!(Child::decode(&leaf.encode()), Ok(leaf));
    }

    #[test]
    fn path_bits() {
        assert_eq!(clear_from([0xff; 32], 0), [0; 32]);
        assert_eq!(clear_from([0xff; 32], 3)[0], 0xe0);
        assert_eq!(clear_from([0xff; 32], 256), [0xff; 32]);
        assert_eq!(with_bit([0; 32], 9)[1], 0x40);
    }
}
