//! Key encodings of the block-hash index (`blocks`) and of the tx index (`tx_index`).
//!
//! Every `tx_index` key starts with a one-byte tag naming its key space, so the spaces never interleave
//! and each can be range-scanned on its own. Integers are big-endian (byte order = numeric order).

use crate::error::{Result, StateError};
use crate::merkle::codec::hex;
use crate::storage::Cf;

/// `tx_index` tag: tx hash → where the transaction is and its bytes.
pub(crate) const TAG_TX: u8 = b't';
/// `tx_index` tag: per-height records (the block record and one result per transaction).
pub(crate) const TAG_RESULTS: u8 = b'r';
/// `tx_index` tag: event attribute index entries.
pub(crate) const TAG_EVENT: u8 = b'e';
/// `tx_index` tag: committed evidence key → the height whose block committed it.
pub(crate) const TAG_EVIDENCE: u8 = b'v';
/// `tx_index` tag: height → the evidence keys its block committed (for pruning).
pub(crate) const TAG_EVIDENCE_LIST: u8 = b'w';
/// `tx_index` tag: height → (transactions of all blocks below it, transactions through it), two u64 BE:
/// the position of its transactions among every indexed transaction, so a height range's count and any
/// page of it are found without reading the blocks in between.
pub(crate) const TAG_TX_COUNT: u8 = b'n';
/// `tx_index` tag: ordinal of a block's first transaction → its height (blocks with transactions only).
pub(crate) const TAG_TX_ORDINAL: u8 = b'o';
/// `blocks` prefix of the block hash → height index (8-byte height keys never start with it in
/// practice: a height would need its top byte to be `b'h'`, above 7.5 × 10¹⁸).
pub(crate) const BLOCK_HASH_PREFIX: &[u8] = b"hash/";

/// `blocks` key of the height of the block with `hash`.
pub(crate) fn block_hash_key(hash: &[u8; 32]) -> Vec<u8> {
    let mut key = Vec::with_capacity(BLOCK_HASH_PREFIX.len() + 32);
    key.extend_from_slice(BLOCK_HASH_PREFIX);
    key.extend_from_slice(hash);
    key
}

/// `tx_index` key of a transaction's location record.
pub(crate) fn tx_key(hash: &[u8; 32]) -> [u8; 33] {
    let mut key = [0u8; 33];
    key[0] = TAG_TX;
    key[1..].copy_from_slice(hash);
    key
}

/// `tx_index` key of a committed piece of evidence.
pub(crate) fn evidence_key(key: &[u8; 32]) -> [u8; 33] {
    let mut out = [0u8; 33];
    out[0] = TAG_EVIDENCE;
    out[1..].copy_from_slice(key);
    out
}

/// `tx_index` key of the list of evidence keys committed at `height`.
pub(crate) fn evidence_list_key(height: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = TAG_EVIDENCE_LIST;
    key[1..].copy_from_slice(&height.to_be_bytes());
    key
}

/// `tx_index` key of the block record of `height`.
pub(crate) fn block_record_key(height: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = TAG_RESULTS;
    key[1..].copy_from_slice(&height.to_be_bytes());
    key
}

/// `tx_index` key of the transaction counts of block `height`.
pub(crate) fn tx_count_key(height: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = TAG_TX_COUNT;
    key[1..].copy_from_slice(&height.to_be_bytes());
    key
}

/// `tx_index` key of the block whose first transaction has ordinal `ordinal`.
pub(crate) fn tx_ordinal_key(ordinal: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = TAG_TX_ORDINAL;
    key[1..].copy_from_slice(&ordinal.to_be_bytes());
    key
}

/// The big-endian u64 after a 1-byte tag (`tx_count_key`, `tx_ordinal_key`).
pub(crate) fn tagged_u64(cf: Cf, key: &[u8]) -> Result<u64> {
    decode_u64(cf, key, key.get(1..).unwrap_or_default())
}

/// Encodes a block's transaction counts: (before it, through it).
pub(crate) fn tx_counts_value(before: u64, through: u64) -> [u8; 16] {
    let mut value = [0u8; 16];
    value[..8].copy_from_slice(&before.to_be_bytes());
    value[8..].copy_from_slice(&through.to_be_bytes());
    value
}

/// Decodes [`tx_counts_value`].
pub(crate) fn split_tx_counts(key: &[u8], value: &[u8]) -> Result<(u64, u64)> {
    let corrupt = || StateError::Corrupt {
        cf: Cf::TxIndex.name(),
        key_hex: hex(key),
        reason: format!(
            "expected 16 bytes of transaction counts, found {}",
            value.len()
        ),
    };
    if value.len() != 16 {
        return Err(corrupt());
    }
    let (before, through) = value.split_at(8);
    let before = u64::from_be_bytes(before.try_into().map_err(|_| corrupt())?);
    let through = u64::from_be_bytes(through.try_into().map_err(|_| corrupt())?);
    if through < before {
        return Err(corrupt());
    }
    Ok((before, through))
}

/// `tx_index` key of the result of transaction `index` of `height`; sorts right after the block
/// record of `height` (a 9-byte prefix of it).
pub(crate) fn result_key(height: u64, index: u32) -> [u8; 13] {
    let mut key = [0u8; 13];
    key[..9].copy_from_slice(&block_record_key(height));
    key[9..].copy_from_slice(&index.to_be_bytes());
    key
}

/// The common prefix of every event entry for `composite_key = value`:
/// `e ‖ len(key) u8 ‖ key ‖ len(value) u16 BE ‖ value`. Length prefixes (not separators) keep any byte
/// legal in keys and values without ambiguity. `None` if either is too long to be indexed.
pub(crate) fn event_prefix(composite_key: &str, value: &str) -> Option<Vec<u8>> {
    let k = composite_key.as_bytes();
    let v = value.as_bytes();
    if k.len() > super::MAX_INDEXED_KEY_BYTES || v.len() > super::MAX_INDEXED_VALUE_BYTES {
        return None;
    }
    let klen = u8::try_from(k.len()).ok()?;
    let vlen = u16::try_from(v.len()).ok()?;
    let mut key = Vec::with_capacity(4 + k.len() + v.len() + 12);
    key.push(TAG_EVENT);
    key.push(klen);
    key.extend_from_slice(k);
    key.extend_from_slice(&vlen.to_be_bytes());
    key.extend_from_slice(v);
    Some(key)
}

/// `prefix ‖ height ‖ index`.
pub(crate) fn event_key(prefix: &[u8], height: u64, index: u32) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + 12);
    key.extend_from_slice(prefix);
    key.extend_from_slice(&height.to_be_bytes());
    key.extend_from_slice(&index.to_be_bytes());
    key
}

/// The `(height, index)` at the end of an event entry's key.
pub(crate) fn split_event_key(key: &[u8]) -> Result<(u64, u32)> {
    let corrupt = || StateError::Corrupt {
        cf: Cf::TxIndex.name(),
        key_hex: hex(key),
        reason: "event index key shorter than its height and index".to_owned(),
    };
    let split = key.len().checked_sub(12).ok_or_else(corrupt)?;
    let tail = key.get(split..).ok_or_else(corrupt)?;
    let (h, i) = tail.split_at(8);
    let height = u64::from_be_bytes(h.try_into().map_err(|_| corrupt())?);
    let index = u32::from_be_bytes(i.try_into().map_err(|_| corrupt())?);
    Ok((height, index))
}

/// Decodes a big-endian u64 stored at (`cf`, `key`).
pub(crate) fn decode_u64(cf: Cf, key: &[u8], bytes: &[u8]) -> Result<u64> {
    let arr: [u8; 8] = bytes.try_into().map_err(|_| StateError::Corrupt {
        cf: cf.name(),
        key_hex: hex(key),
        reason: format!("expected an 8-byte height, found {} bytes", bytes.len()),
    })?;
    Ok(u64::from_be_bytes(arr))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn event_keys_order_by_height_then_index_and_round_trip() {
        let p = event_prefix("transfer.sender", "AB").unwrap();
        let a = event_key(&p, 5, 9);
        let b = event_key(&p, 6, 0);
        let c = event_key(&p, 6, 1);
        assert!(a < b && b < c);
        assert_eq!(split_event_key(&c).unwrap(), (6, 1));
        // A value that is a prefix of another does not share its key prefix.
        let q = event_prefix("transfer.sender", "ABC").unwrap();
        assert!(!event_key(&q, 1, 0).starts_with(&p));
    }

    #[test]
    fn oversized_attributes_are_not_indexed() {
        let long = "x".repeat(super::super::MAX_INDEXED_VALUE_BYTES + 1);
        assert!(event_prefix("a.b", &long).is_none());
        let long_key = "k".repeat(super::super::MAX_INDEXED_KEY_BYTES + 1);
        assert!(event_prefix(&long_key, "v").is_none());
    }

    #[test]
    fn results_sort_after_their_block_record() {
        assert!(block_record_key(7).as_slice() < result_key(7, 0).as_slice());
        assert!(result_key(7, u32::MAX).as_slice() < block_record_key(8).as_slice());
    }
}
