//! ICS-23 proofs from the stored tree: every step is one node read (each child slot carries its hash),
//! nothing is re-hashed.
//!
//! An existence proof is the leaf op and, from the leaf up, one inner op per inner node on the key's
//! path: `prefix = INNER_PREFIX`, `suffix = right sibling` when the path goes left, `prefix =
//! INNER_PREFIX ‖ left sibling`, empty suffix when it goes right (empty siblings are
//! [`EMPTY_CHILD`](super::hash::EMPTY_CHILD)). A non-existence proof is the existence proofs of the
//! key's neighbours in key-hash order (one of them at either end of the tree).

use std::sync::Arc;

use ics23::{ExistenceProof, HashOp, InnerOp, LeafOp, LengthOp, NonExistenceProof};

use super::cache::LeafRecord;
use super::hash::{bit, key_hash, KeyHash, INNER_PREFIX, LEAF_PREFIX};
use super::node::{with_bit, Child, Leaf, NodeKey};
use super::tree::NodeSource;
use crate::error::{Result, StateError};

/// One inner node on a walked path.
#[derive(Clone, Copy, Debug)]
struct Step {
    /// The node's depth.
    depth: usize,
    /// The node's path.
    path: [u8; 32],
    /// Whether the walk went to the right child.
    went_right: bool,
    /// The other child.
    sibling: Child,
}

/// The path from a version's root towards a key hash, and where it ended.
struct Walk {
    steps: Vec<Step>,
    end: Child,
}

fn walk<S: NodeSource>(source: &S, root: Child, target: &KeyHash) -> Result<Walk> {
    let mut steps = Vec::with_capacity(32);
    let (mut current, mut depth, mut path) = (root, 0usize, [0u8; 32]);
    while let Child::Inner { version, .. } = current {
        let key = NodeKey {
            depth: u8::try_from(depth).map_err(|_| corrupt_depth(depth))?,
            path,
            version,
        };
        let node = source.node(&key)?;
        let went_right = bit(target, depth);
        let (next, sibling) = if went_right {
            (node.right, node.left)
        } else {
            (node.left, node.right)
        };
        steps.push(Step {
            depth,
            path,
            went_right,
            sibling,
        });
        if went_right {
            path = with_bit(path, depth);
        }
        depth += 1;
        current = next;
    }
    Ok(Walk {
        steps,
        end: current,
    })
}

fn corrupt_depth(depth: usize) -> StateError {
    StateError::Corrupt {
        cf: crate::storage::Cf::MerkleNodes.name(),
        key_hex: String::new(),
        reason: format!("inner node below depth {depth}: the tree has a cycle or is corrupt"),
    }
}

/// The leaf of `key_hash` at `root`, if present.
pub(crate) fn find_leaf<S: NodeSource>(
    source: &S,
    root: Child,
    key_hash: &KeyHash,
) -> Result<Option<Leaf>> {
    Ok(match walk(source, root, key_hash)?.end {
        Child::Leaf(leaf) if leaf.key_hash == *key_hash => Some(leaf),
        _ => None,
    })
}

/// The ics23 leaf op of this tree.
pub fn leaf_op() -> LeafOp {
    LeafOp {
        hash: HashOp::Blake2s256.into(),
        prehash_key: HashOp::Blake2s256.into(),
        prehash_value: HashOp::Blake2s256.into(),
        length: LengthOp::NoPrefix.into(),
        prefix: LEAF_PREFIX.to_vec(),
    }
}

fn inner_ops(steps: &[Step]) -> Vec<InnerOp> {
    steps
        .iter()
        .rev()
        .map(|step| {
            let sibling = step.sibling.hash();
            let (prefix, suffix) = if step.went_right {
                let mut prefix = Vec::with_capacity(INNER_PREFIX.len() + 32);
                prefix.extend_from_slice(INNER_PREFIX);
                prefix.extend_from_slice(&sibling);
                (prefix, Vec::new())
            } else {
                (INNER_PREFIX.to_vec(), sibling.to_vec())
            };
            InnerOp {
                hash: HashOp::Blake2s256.into(),
                prefix,
                suffix,
            }
        })
        .collect()
}

/// What a proof needs besides the tree: the original key (the key hash's preimage) and the value
/// behind a leaf.
pub(crate) trait LeafData {
    /// The key and value of `leaf` (its slot names the version of its value record).
    fn record(&self, leaf: &Leaf) -> Result<Arc<LeafRecord>>;
}

/// The proof for `key` at `root`: existence (with its value) or non-existence.
pub(crate) fn prove<S: NodeSource, D: LeafData>(
    source: &S,
    data: &D,
    root: Child,
    key: &[u8],
) -> Result<(Option<Vec<u8>>, ics23::CommitmentProof)> {
    use ics23::commitment_proof::Proof;
    let target = key_hash(key);
    let path = walk(source, root, &target)?;
    if let Child::Leaf(leaf) = path.end {
        if leaf.key_hash == target {
            let value = data.record(&leaf)?.value.clone();
            let proof = ExistenceProof {
                key: key.to_vec(),
                value: value.clone(),
                leaf: Some(leaf_op()),
                path: inner_ops(&path.steps),
            };
            return Ok((Some(value), commitment(Proof::Exist(proof))));
        }
    }
    // Absent: the largest key hash below the target and the smallest above it.
    let (mut left, mut right) = (None, None);
    if let Child::Leaf(leaf) = path.end {
        if leaf.key_hash < target {
            left = Some(leaf);
        } else {
            right = Some(leaf);
        }
    }
    for step in path.steps.iter().rev() {
        if left.is_some() && right.is_some() {
            break;
        }
        if step.sibling == Child::Empty {
            continue;
        }
        let sibling_path = if step.went_right {
            step.path
        } else {
            with_bit(step.path, step.depth)
        };
        if step.went_right && left.is_none() {
            left = Some(extreme_leaf(
                source,
                step.sibling,
                step.depth + 1,
                sibling_path,
                true,
            )?);
        } else if !step.went_right && right.is_none() {
            right = Some(extreme_leaf(
                source,
                step.sibling,
                step.depth + 1,
                sibling_path,
                false,
            )?);
        }
    }
    let neighbour = |leaf: Option<Leaf>| -> Result<Option<ExistenceProof>> {
        let Some(leaf) = leaf else { return Ok(None) };
        let steps = walk(source, root, &leaf.key_hash)?.steps;
        let record = data.record(&leaf)?;
        Ok(Some(ExistenceProof {
            key: record.key.clone(),
            value: record.value.clone(),
            leaf: Some(leaf_op()),
            path: inner_ops(&steps),
        }))
    };
    let proof = NonExistenceProof {
        key: key.to_vec(),
        left: neighbour(left)?,
        right: neighbour(right)?,
    };
    Ok((None, commitment(Proof::Nonexist(proof))))
}

/// The rightmost (`rightmost`) or leftmost leaf of the non-empty subtree `child` at (`depth`, `path`).
fn extreme_leaf<S: NodeSource>(
    source: &S,
    mut child: Child,
    mut depth: usize,
    mut path: [u8; 32],
    rightmost: bool,
) -> Result<Leaf> {
    loop {
        match child {
            Child::Leaf(leaf) => return Ok(leaf),
            Child::Empty => {
                return Err(StateError::Corrupt {
                    cf: crate::storage::Cf::MerkleNodes.name(),
                    key_hex: String::new(),
                    reason: format!("empty subtree at depth {depth} below a non-empty slot"),
                })
            }
            Child::Inner { version, .. } => {
                let key = NodeKey {
                    depth: u8::try_from(depth).map_err(|_| corrupt_depth(depth))?,
                    path,
                    version,
                };
                let node = source.node(&key)?;
                let go_right = if rightmost {
                    node.right != Child::Empty
                } else {
                    node.left == Child::Empty
                };
                if go_right {
                    path = with_bit(path, depth);
                    child = node.right;
                } else {
                    child = node.left;
                }
                depth += 1;
            }
        }
    }
}

fn commitment(proof: ics23::commitment_proof::Proof) -> ics23::CommitmentProof {
    ics23::CommitmentProof { proof: Some(proof) }
}
