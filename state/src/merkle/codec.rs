//! On-disk encodings of the Merkle column families (see the table in [`crate::storage`]).

use borsh::BorshDeserialize;
use jmt::storage::{NibblePath, Node, NodeKey};
use jmt::KeyHash;

use crate::error::{Result, StateError};
use crate::storage::Cf;

/// Tag byte of a present value in `merkle_values`.
const VALUE_PRESENT: u8 = 0x01;
/// Tag byte of a deletion marker in `merkle_values`.
const VALUE_DELETED: u8 = 0x00;

/// The key of the root node of `version` (jmt keeps its own constructor private).
pub(crate) fn root_node_key(version: u64) -> Result<NodeKey> {
    // borsh(NibblePath { num_nibbles: 0usize as u64, bytes: vec![] }) is twelve zero bytes.
    let empty = NibblePath::try_from_slice(&[0u8; 12]).map_err(|e| StateError::Corrupt {
        cf: Cf::MerkleNodes.name(),
        key_hex: String::new(),
        reason: format!("cannot build the empty nibble path: {e}"),
    })?;
    Ok(NodeKey::new(version, empty))
}

/// Key of a node in `merkle_nodes`.
pub(crate) fn node_key_bytes(key: &NodeKey) -> Result<Vec<u8>> {
    borsh::to_vec(key).map_err(|e| StateError::Corrupt {
        cf: Cf::MerkleNodes.name(),
        key_hex: format!("{key:?}"),
        reason: format!("cannot encode node key: {e}"),
    })
}

/// Decodes a node key (the inverse of [`node_key_bytes`]); `cf` names where it was read.
pub(crate) fn decode_node_key(cf: Cf, bytes: &[u8]) -> Result<NodeKey> {
    NodeKey::try_from_slice(bytes).map_err(|e| StateError::Corrupt {
        cf: cf.name(),
        key_hex: hex(bytes),
        reason: format!("undecodable node key: {e}"),
    })
}

/// Encodes a node for `merkle_nodes`.
pub(crate) fn encode_node(key: &NodeKey, node: &Node) -> Result<Vec<u8>> {
    borsh::to_vec(node).map_err(|e| StateError::Corrupt {
        cf: Cf::MerkleNodes.name(),
        key_hex: format!("{key:?}"),
        reason: format!("cannot encode node: {e}"),
    })
}

/// Decodes a node read from `merkle_nodes` at `key`.
pub(crate) fn decode_node(key: &[u8], bytes: &[u8]) -> Result<Node> {
    Node::try_from_slice(bytes).map_err(|e| StateError::Corrupt {
        cf: Cf::MerkleNodes.name(),
        key_hex: hex(key),
        reason: format!("undecodable node ({} bytes): {e}", bytes.len()),
    })
}

/// Key of a value in `merkle_values`: key hash then big-endian version, so versions of one key are
/// adjacent and ordered.
pub(crate) fn value_key(key_hash: &KeyHash, version: u64) -> [u8; 40] {
    let mut out = [0u8; 40];
    out[..32].copy_from_slice(&key_hash.0);
    out[32..].copy_from_slice(&version.to_be_bytes());
    out
}

/// Encodes a value (or a deletion) for `merkle_values`.
pub(crate) fn encode_value(value: Option<&[u8]>) -> Vec<u8> {
    match value {
        Some(v) => {
            let mut out = Vec::with_capacity(v.len() + 1);
            out.push(VALUE_PRESENT);
            out.extend_from_slice(v);
            out
        }
        None => vec![VALUE_DELETED],
    }
}

/// Decodes a `merkle_values` record read at `key`.
pub(crate) fn decode_value(key: &[u8], bytes: &[u8]) -> Result<Option<Vec<u8>>> {
    match bytes.split_first() {
        Some((&VALUE_PRESENT, rest)) if !rest.is_empty() => Ok(Some(rest.to_vec())),
        Some((&VALUE_DELETED, [])) => Ok(None),
        _ => Err(StateError::Corrupt {
            cf: Cf::MerkleValues.name(),
            key_hex: hex(key),
            reason: format!("bad value record of {} bytes", bytes.len()),
        }),
    }
}

/// Key of an entry in `merkle_stale`: the version since which the node is stale (big-endian, so
/// pruning walks oldest first), then the node key.
pub(crate) fn stale_key(stale_since: u64, node_key: &NodeKey) -> Result<Vec<u8>> {
    let mut out = stale_since.to_be_bytes().to_vec();
    out.extend_from_slice(&node_key_bytes(node_key)?);
    Ok(out)
}

/// Splits a `merkle_stale` key.
pub(crate) fn split_stale_key(key: &[u8]) -> Result<(u64, NodeKey)> {
    let version: [u8; 8] = key
        .get(..8)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| StateError::Corrupt {
            cf: Cf::MerkleStale.name(),
            key_hex: hex(key),
            reason: "stale key shorter than 8 bytes".to_owned(),
        })?;
    let node_key = decode_node_key(Cf::MerkleStale, key.get(8..).unwrap_or_default())?;
    Ok((u64::from_be_bytes(version), node_key))
}

/// Lower-case hex, for error messages.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}
