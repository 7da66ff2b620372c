//! On-disk encodings of the value and pruning column families (see the table in [`crate::storage`];
//! node encodings are in [`super::node`]).

use super::hash::KeyHash;
use super::node::NodeKey;
use crate::error::{Result, StateError};
use crate::storage::Cf;

/// Tag byte of a present value in `merkle_values`.
const VALUE_PRESENT: u8 = 0x01;
/// Tag byte of a deletion marker in `merkle_values`.
const VALUE_DELETED: u8 = 0x00;

/// Key of a value in `merkle_values`: key hash then big-endian version, so versions of one key are
/// adjacent and ordered.
pub(crate) fn value_key(key_hash: &KeyHash, version: u64) -> [u8; 40] {
    let mut out = [0u8; 40];
    out[..32].copy_from_slice(key_hash);
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

/// What a `merkle_stale` entry points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StaleRecord {
    /// An inner node in `merkle_nodes`.
    Node(NodeKey),
    /// A value record (or deletion marker) in `merkle_values`: key hash and version.
    Value(KeyHash, u64),
}

const STALE_NODE: u8 = b'n';
const STALE_VALUE: u8 = b'v';

/// Key of an entry in `merkle_stale`: the version since which the record is unreachable (big-endian,
/// so pruning walks oldest first), a kind byte, then the record's key. Within one version, a key's
/// value records sort oldest first, so a deletion marker is never pruned before the value it hides.
pub(crate) fn stale_key(stale_since: u64, record: &StaleRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + 1 + 41);
    out.extend_from_slice(&stale_since.to_be_bytes());
    match record {
        StaleRecord::Node(key) => {
            out.push(STALE_NODE);
            out.extend_from_slice(&key.encode());
        }
        StaleRecord::Value(key_hash, version) => {
            out.push(STALE_VALUE);
            out.extend_from_slice(&value_key(key_hash, *version));
        }
    }
    out
}

/// Splits a `merkle_stale` key into its version and record.
pub(crate) fn split_stale_key(key: &[u8]) -> Result<(u64, StaleRecord)> {
    let corrupt = |reason: &str| StateError::Corrupt {
        cf: Cf::MerkleStale.name(),
        key_hex: hex(key),
        reason: reason.to_owned(),
    };
    if key.len() < 9 {
        return Err(corrupt("stale key shorter than 9 bytes"));
    }
    let (since, rest) = key.split_at(8);
    let since = u64::from_be_bytes(since.try_into().map_err(|_| corrupt("bad version"))?);
    let record = match rest.split_first() {
        Some((&STALE_NODE, node)) => {
            StaleRecord::Node(NodeKey::decode(node).ok_or_else(|| corrupt("bad node key"))?)
        }
        Some((&STALE_VALUE, value)) if value.len() == 40 => {
            let mut key_hash = [0u8; 32];
            key_hash.copy_from_slice(&value[..32]);
            let mut version = [0u8; 8];
            version.copy_from_slice(&value[32..]);
            StaleRecord::Value(key_hash, u64::from_be_bytes(version))
        }
        _ => return Err(corrupt("unknown stale record kind")),
    };
    Ok((since, record))
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn stale_keys_round_trip() {
        let node = StaleRecord::Node(NodeKey {
            depth: 12,
            path: crate::merkle::node::clear_from([0x5a; 32], 12),
            version: 3,
        });
        let value = StaleRecord::Value([9; 32], 77);
        for record in [node, value] {
            assert_eq!(
                split_stale_key(&stale_key(41, &record)).unwrap(),
                (41, record)
            );
        }
        assert!(split_stale_key(&[0; 8]).is_err());
        assert!(split_stale_key(&[0, 0, 0, 0, 0, 0, 0, 1, b'x', 1]).is_err());
        // A marker written at 5 sorts after the value at 2 it hides, within one stale-since version.
        assert!(
            stale_key(9, &StaleRecord::Value([1; 32], 2))
                < stale_key(9, &StaleRecord::Value([1; 32], 5))
        );
    }
}
